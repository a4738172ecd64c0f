// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The daemon's request path: an in-process daemon (its reserve, its
 * books, its server on a socket in a temporary directory) and one client
 * connection sending any sequence of messages, raw or built (ATTACH,
 * CHUNK_GET, CHUNK_PUT of ids it was lent or not, reports, DETACH), read
 * by the daemon's own event handlers.  After each input the client
 * "exits" (its slots are released) and the books must agree and the
 * reserve come back to its size.
 *
 * Input: records of [op u8][args...].
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netlink/attr.h>

#include "conf.h"
#include "cpu.h"
#include "daemon.h"
#include "fuzz.h"
#include "log.h"
#include "proto.h"

/* The hooks main.c provides in the real daemon. */
void daemon_notify_status(struct daemon *d)
{
}

int daemon_reload(struct daemon *d, char *why, size_t whylen)
{
	snprintf(why, whylen, "no reload here");
	return -EOPNOTSUPP;
}

static struct daemon *d;
static void *buf;
static char dir[64];

static void setup(void)
{
	struct conf_error err;
	char path[128];

	log_open(LOG_CRIT);
	d = calloc(1, sizeof(*d));
	buf = malloc(PROTO_MSG_MAX);
	if (!d || !buf)
		abort();
	d->listen_fd = -1;
	d->uid = geteuid();
	d->attach_gid = d->admin_gid = PEER_NO_GROUP;
	conf_init(&d->conf);
	if (conf_set(&d->conf, "reserve.pages_per_cpu", "32", "fuzz", &err) ||
	    conf_set(&d->conf, "reserve.global_pages", "64", "fuzz", &err) ||
	    conf_set(&d->conf, "reserve.lock_memory", "no", "fuzz", &err) ||
	    conf_set(&d->conf, "limits.max_clients", "3", "fuzz", &err) ||
	    conf_set(&d->conf, "limits.protect_pages", "16", "fuzz", &err) ||
	    conf_set(&d->conf, "limits.client_max_pages", "80%", "fuzz", &err))
		abort();
	d->ncpus = (unsigned int)cpu_possible_count();
	snprintf(dir, sizeof(dir), "/tmp/rcupool-fuzz-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/sock", dir);
	if (sd_event_new(&d->event) < 0 || lending_init(d) < 0 ||
	    server_listen(d, path) < 0 || reserve_create(d) < 0)
		abort();
}

static void pump(void)
{
	for (int i = 0; i < 64 && sd_event_run(d->event, 0) > 0; i++)
		;
}

struct ids {
	uint64_t id[64];
	unsigned int n;
};

/* Read every reply waiting; remember chunk ids, close fds. */
static void drain(int fd, struct ids *ids)
{
	for (;;) {
		int fds[PROTO_FDS_MAX];
		size_t nfds = PROTO_FDS_MAX;
		struct proto_msg m;
		struct nlattr *nla;
		int n = proto_recv(fd, buf, PROTO_MSG_MAX, fds, &nfds);

		if (n < 0)
			return;
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		if (proto_parse(buf, (size_t)n, &m, NULL, 0) < 0)
			continue;
		proto_for_each(nla, &m, PROTO_A_CHUNK)
		{
			struct nlattr *tb[PROTO_CHUNK_MAX + 1];

			if (nla_parse_nested(tb, PROTO_CHUNK_MAX, nla, NULL) ==
				    0 &&
			    tb[PROTO_CHUNK_ID])
				ids->id[ids->n++ % 64] =
					nla_get_u64(tb[PROTO_CHUNK_ID]);
		}
	}
}

static uint32_t take_u32(const uint8_t **p, size_t *n)
{
	uint32_t v = 0;
	size_t k = *n < 4 ? *n : 4;

	memcpy(&v, *p, k);
	*p += k;
	*n -= k;
	return v;
}

static const uint8_t cmds[] = {
	PROTO_CMD_GET_STATUS, PROTO_CMD_GET_STATS, PROTO_CMD_GET_CLIENTS,
	PROTO_CMD_CENSUS,     PROTO_CMD_DETACH,	   PROTO_CMD_RESET_STATS,
	PROTO_CMD_GET_LIMITS,
};

int fuzz_request(const uint8_t *data, size_t size)
{
	struct ids ids = {.n = 0};
	uint32_t seq = 0;
	char why[256];
	int fd;

	if (!d)
		setup();
	fd = proto_connect(d->socket_path);
	if (fd < 0)
		abort();
	fcntl(fd, F_SETFL, O_NONBLOCK);
	proto_socket_buffers(fd);
	pump();
	while (size > 0) {
		uint8_t op = *data++;
		struct nl_msg *msg = NULL;
		int r = 0;

		size--;
		switch (op % 5) {
		case 0: { /* raw bytes */
			size_t len = size < 2 ? size : (size_t)(data[0] | data[1] << 8);

			if (size >= 2) {
				data += 2;
				size -= 2;
			}
			if (len > size)
				len = size;
			send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			data += len;
			size -= len;
			break;
		}
		case 1: /* ATTACH */
			r = proto_new(&msg, PROTO_CMD_ATTACH, ++seq, true);
			if (r >= 0 && op & 0x10)
				nla_put_string(msg, PROTO_A_NAME, "fuzz");
			if (r >= 0 && op & 0x20)
				nla_put_u32(msg, PROTO_A_MIN_PAGES,
					    take_u32(&data, &size));
			if (r >= 0 && op & 0x40)
				nla_put_u32(msg, PROTO_A_MAX_PAGES,
					    take_u32(&data, &size));
			break;
		case 2: /* CHUNK_GET */
			r = proto_new(&msg, PROTO_CMD_CHUNK_GET, ++seq, true);
			if (r >= 0)
				nla_put_u32(msg, PROTO_A_COUNT, op >> 4);
			if (r >= 0 && op & 0x08)
				nla_put_u32(msg, PROTO_A_CPU_ID,
					    take_u32(&data, &size));
			break;
		case 3: /* CHUNK_PUT: ids lent, or not */
			r = proto_new(&msg, PROTO_CMD_CHUNK_PUT, ++seq, true);
			for (int k = 0; r >= 0 && k <= op >> 5 && size > 0;
			     k++) {
				uint8_t pick = *data++;
				uint64_t id;

				size--;
				id = pick & 0x80 ? ids.id[pick % 64]
						 : (uint64_t)pick;
				nla_put_u64(msg, PROTO_A_CHUNK_ID, id);
			}
			break;
		default:
			r = proto_new(&msg, cmds[(op >> 3) % sizeof(cmds)],
				      ++seq, true);
			break;
		}
		if (msg) {
			if (r >= 0)
				proto_send(fd, msg, NULL, 0);
			nlmsg_free(msg);
		}
		pump();
		drain(fd, &ids);
	}
	close(fd);
	pump();
	/* The client's process "exits": everything lent comes back. */
	for (uint32_t s = 0; s < d->nslots; s++)
		if (d->clients[s].state != CLIENT_FREE)
			lending_release(d, &d->clients[s]);
	for (int i = 0; i < 64 && d->n_pool + d->n_lent < d->nchunks; i++)
		pump();
	if (reserve_census(d, why, sizeof(why)) < 0 || d->n_lent ||
	    d->n_pool != d->nchunks || d->n_attached)
		abort();
	return 0;
}
