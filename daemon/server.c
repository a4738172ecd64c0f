// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The control socket: connections, permissions, and every request of the
 * protocol (proto.h).  A request that can be decoded gets a reply, with an
 * error code and a message naming what was wrong.  Anyone who can connect
 * costs a bounded amount (DESIGN.md section 5, trust model): unattached
 * connections are a budget of their own (at most
 * access.max_connections_per_uid per uid, UNATTACHED_MAX in all), closed
 * after access.idle_timeout without a request; attach slots are only
 * taken by ATTACH; what a peer sends is logged at a bounded rate.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "daemon.h"
#include "fdstore.h"
#include "leaseshm.h"
#include "listen.h"
#include "log.h"
#include "proto.h"
#include "settings.h"
#include "stats.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

#define UNATTACHED_MAX	256 /* connections not attached, all uids */
#define TOP_CONSUMERS	5
#define LOG_BURST	5	  /* lines a peer may cause per window */
#define LOG_WINDOW_USEC 1000000

struct conn {
	struct conn *next, *prev;
	struct daemon *d;
	int fd;
	sd_event_source *src;
	sd_event_source *idle_src;     /* unattached: closed when it fires */
	sd_event_source *throttle_src; /* CHUNK_PUT rate: read again then */
	struct peer peer;
	char who[128];
	int pidfd; /* the peer's process, until attach takes it */
	struct client *client; /* NULL: not attached */
	uint64_t log_usec;
	uint32_t log_lines, log_suppressed;
};

static void *rxbuf;

/* A warning about what a peer did, at most LOG_BURST a second per peer. */
static void conn_log(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void conn_log(struct conn *c, const char *fmt, ...)
{
	uint64_t now = daemon_now_usec();
	char text[512];
	va_list ap;

	if (now - c->log_usec >= LOG_WINDOW_USEC) {
		if (c->log_suppressed)
			log_warning("%s: %u messages suppressed", c->who,
				    c->log_suppressed);
		c->log_usec = now;
		c->log_lines = 0;
		c->log_suppressed = 0;
	}
	if (c->log_lines >= LOG_BURST) {
		c->log_suppressed++;
		return;
	}
	c->log_lines++;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_warning("%s: %s", c->who, text);
}

static void conn_free(struct conn *c)
{
	struct daemon *d = c->d;

	if (c->client) {
		lending_detach(d, c->client);
		c->client = NULL;
	} else {
		d->n_unattached--;
	}
	if (c->log_suppressed)
		log_warning("%s: %u messages suppressed", c->who,
			    c->log_suppressed);
	c->src = sd_event_source_disable_unref(c->src);
	c->idle_src = sd_event_source_disable_unref(c->idle_src);
	c->throttle_src = sd_event_source_disable_unref(c->throttle_src);
	if (c->fd >= 0)
		close(c->fd);
	if (c->pidfd >= 0)
		close(c->pidfd);
	if (c->prev)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	d->n_conns--;
	peer_free(&c->peer);
	free(c);
}

void server_conn_gone(struct conn *c)
{
	/* The process exited (lending_release): the slot goes with it. */
	c->client = NULL;
	c->d->n_unattached++;
	conn_free(c);
}

static int send_reply(struct conn *c, struct nl_msg *msg, const int *fds,
		      size_t nfds)
{
	int r = proto_send(c->fd, msg, fds, nfds);

	nlmsg_free(msg);
	if (r < 0)
		log_errno(LOG_DEBUG, r, "%s: cannot send reply: %m", c->who);
	return r;
}

static int reply_error(struct conn *c, const struct proto_msg *req, int error,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int reply_error(struct conn *c, const struct proto_msg *req, int error,
		       const char *fmt, ...)
{
	struct nl_msg *msg;
	char text[PROTO_MESSAGE_MAX];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	r = proto_new_reply(&msg, req, error, "%s", text);
	if (r < 0)
		return r;
	return send_reply(c, msg, NULL, 0);
}

/* --- what the daemon reports ------------------------------------------- */

static uint64_t shown(const struct client *cl, int i)
{
	return cl->view.v[i] - (cl->view.v[i] >= cl->view.base[i]
					? cl->view.base[i]
					: cl->view.v[i]);
}

static void fill_status(struct daemon *d, struct stats_row *row)
{
	uint64_t fb = 0, held = 0;
	uint32_t online = 0, cp = d->chunk_pages;

	memset(row, 0, sizeof(*row));
	for (uint32_t i = 0; i < d->nslots; i++) {
		struct client *cl = &d->clients[i];

		if (cl->state == CLIENT_FREE)
			continue;
		lending_refresh(d, cl);
		held += cl->view.v[LEASE_C_HELD];
		fb += shown(cl, LEASE_C_FB_OVERFLOW) +
		      shown(cl, LEASE_C_FB_HEAD) + shown(cl, LEASE_C_FB_SYNC);
	}
	for (uint32_t c = 0; c < d->ncpus; c++)
		online += d->cpu[c].online ? 1 : 0;
	stats_set_s(row, PROTO_STATUS_VERSION, RCUPOOL_VERSION);
	stats_set_u(row, PROTO_STATUS_PID, (uint64_t)getpid());
	stats_set_u(row, PROTO_STATUS_UPTIME_USEC,
		    daemon_now_usec() - d->start_usec);
	stats_set_u(row, PROTO_STATUS_PAGE_SIZE, d->page_size);
	stats_set_u(row, PROTO_STATUS_CPUS, d->ncpus);
	stats_set_u(row, PROTO_STATUS_CPUS_ONLINE, online);
	stats_set_u(row, PROTO_STATUS_PAGES_TOTAL,
		    (uint64_t)(d->n_pool + d->n_lent) * cp);
	stats_set_u(row, PROTO_STATUS_PAGES_FREE, (uint64_t)d->n_pool * cp);
	stats_set_u(row, PROTO_STATUS_PAGES_GLOBAL, (uint64_t)d->global.n * cp);
	stats_set_u(row, PROTO_STATUS_PAGES_HELD, held);
	stats_set_u(row, PROTO_STATUS_CLIENTS, d->n_attached);
	stats_set_u(row, PROTO_STATUS_MAX_CLIENTS, d->nslots);
	stats_set_u(row, PROTO_STATUS_DEPLETIONS, d->stats.depletions);
	stats_set_u(row, PROTO_STATUS_DENIED, d->stats.denied);
	stats_set_u(row, PROTO_STATUS_FALLBACKS, fb);
	stats_set_u(row, PROTO_STATUS_KICKS, d->stats.kicks);
	stats_set_u(row, PROTO_STATUS_BALANCE_RUNS, d->stats.balance_runs);
	stats_set_u(row, PROTO_STATUS_PAGES_MOVED,
		    d->stats.chunks_moved * cp);
	stats_set_u(row, PROTO_STATUS_PAGES_RECLAIMED, d->stats.pages_reclaimed);
	stats_set_u(row, PROTO_STATUS_PAGES_REPAIRED, 0);
	stats_set_u(row, PROTO_STATUS_CENSUS_RUNS, d->stats.census_runs);
	stats_set_u(row, PROTO_STATUS_BAD_INDEX, d->stats.census_errors);
	stats_set_u(row, PROTO_STATUS_LOCKED, d->locked);
	stats_set_u(row, PROTO_STATUS_HUGETLB, d->hugetlb);
	stats_set_u(row, PROTO_STATUS_RELOADS, d->stats.reloads);
	stats_set_u(row, PROTO_STATUS_PAGES_LENT, (uint64_t)d->n_lent * cp);
	stats_set_u(row, PROTO_STATUS_CHUNK_PAGES, cp);
	stats_set_u(row, PROTO_STATUS_CHUNKS_TOTAL, d->n_pool + d->n_lent);
	stats_set_u(row, PROTO_STATUS_CHUNKS_FREE, d->n_pool);
	stats_set_u(row, PROTO_STATUS_CHUNKS_RETIRED, d->stats.chunks_retired);
	stats_set_u(row, PROTO_STATUS_BAD, d->stats.bad);
	stats_set_u(row, PROTO_STATUS_STARTED_USEC, d->started_realtime_usec);
	stats_set_u(row, PROTO_STATUS_CLIENTS_ADOPTED, d->clients_adopted);
	stats_set_u(row, PROTO_STATUS_CLIENTS_REATTACHED,
		    d->clients_reattached);
	stats_set_u(row, PROTO_STATUS_PAGES_RECALLED,
		    d->stats.chunks_recalled * cp);
}

static void fill_cpu(struct daemon *d, uint32_t c, struct stats_row *row)
{
	struct pool_cpu *p = &d->cpu[c];
	uint32_t cp = d->chunk_pages;
	uint32_t prot = p->free.n < p->protect ? p->free.n : p->protect;

	memset(row, 0, sizeof(*row));
	stats_set_u(row, PROTO_CPU_ID, c);
	stats_set_u(row, PROTO_CPU_ONLINE, p->online ? 1 : 0);
	stats_set_u(row, PROTO_CPU_FREE, (uint64_t)(p->free.n - prot) * cp);
	stats_set_u(row, PROTO_CPU_PROTECT, (uint64_t)prot * cp);
	stats_set_u(row, PROTO_CPU_LOW, p->low * cp);
	stats_set_u(row, PROTO_CPU_TARGET, p->target * cp);
	stats_set_u(row, PROTO_CPU_HIGH, p->high * cp);
	stats_set_u(row, PROTO_CPU_EMPTY, p->empty);
	stats_set_u(row, PROTO_CPU_MOVED_IN, p->moved_in * cp);
	stats_set_u(row, PROTO_CPU_MOVED_OUT, p->moved_out * cp);
}

static void fill_client(struct daemon *d, struct client *cl,
			struct stats_row *row)
{
	uint32_t cp = d->chunk_pages;

	memset(row, 0, sizeof(*row));
	stats_set_u(row, PROTO_CLIENT_SLOT, (uint64_t)cl->slot);
	stats_set_u(row, PROTO_CLIENT_PID, (uint64_t)cl->pid);
	stats_set_u(row, PROTO_CLIENT_UID, cl->uid);
	stats_set_s(row, PROTO_CLIENT_NAME, cl->name);
	stats_set_u(row, PROTO_CLIENT_HELD, cl->view.v[LEASE_C_HELD]);
	stats_set_u(row, PROTO_CLIENT_HELD_PEAK, cl->view.v[LEASE_C_HELD_PEAK]);
	stats_set_u(row, PROTO_CLIENT_MIN_PAGES, cl->min_chunks * cp);
	stats_set_u(row, PROTO_CLIENT_MAX_PAGES, cl->max_chunks * cp);
	stats_set_u(row, PROTO_CLIENT_PAGES_GOT, shown(cl, LEASE_C_PAGES_GOT));
	stats_set_u(row, PROTO_CLIENT_DENIED, shown(cl, LEASE_C_DENIED));
	stats_set_u(row, PROTO_CLIENT_DEPLETIONS, shown(cl, LEASE_C_DEPLETIONS));
	stats_set_u(row, PROTO_CLIENT_FB_OVERFLOW,
		    shown(cl, LEASE_C_FB_OVERFLOW));
	stats_set_u(row, PROTO_CLIENT_FB_HEAD, shown(cl, LEASE_C_FB_HEAD));
	stats_set_u(row, PROTO_CLIENT_FB_SYNC, shown(cl, LEASE_C_FB_SYNC));
	stats_set_u(row, PROTO_CLIENT_ATTACHED_USEC,
		    daemon_now_usec() - cl->attached_usec);
	stats_set_u(row, PROTO_CLIENT_OBJECTS, shown(cl, LEASE_C_OBJECTS));
	stats_set_u(row, PROTO_CLIENT_LENT, (uint64_t)cl->lent.n * cp);
	stats_set_u(row, PROTO_CLIENT_BAD, cl->bad);
	stats_set_u(row, PROTO_CLIENT_DETACHED,
		    cl->state == CLIENT_DETACHED ? 1 : 0);
	stats_set_u(row, PROTO_CLIENT_THROTTLED, shown(cl, LEASE_C_THROTTLED));
	stats_set_u(row, PROTO_CLIENT_THROTTLED_NS,
		    shown(cl, LEASE_C_THROTTLED_NS));
	stats_set_u(row, PROTO_CLIENT_GRACE_PERIODS,
		    shown(cl, LEASE_C_GRACE_PERIODS));
	stats_set_u(row, PROTO_CLIENT_GP_P50_NS, cl->view.v[LEASE_C_GP_P50]);
	stats_set_u(row, PROTO_CLIENT_GP_P99_NS, cl->view.v[LEASE_C_GP_P99]);
}

static int cmp_lent(const void *a, const void *b)
{
	const struct client *x = *(const struct client *const *)a;
	const struct client *y = *(const struct client *const *)b;

	if (x->lent.n != y->lent.n)
		return x->lent.n < y->lent.n ? 1 : -1;
	return x->slot - y->slot;
}

/* STATUS, CPUs and clients, as the command asks. */
static int put_report(struct conn *c, struct nl_msg *msg, uint8_t cmd)
{
	struct daemon *d = c->d;
	struct stats_row row;
	struct client **list = NULL;
	size_t n = 0, limit;
	int r = 0;

	if (cmd != PROTO_CMD_GET_CLIENTS) {
		fill_status(d, &row);
		r = stats_put(&stats_status, msg, PROTO_A_STATUS, &row);
	}
	for (uint32_t i = 0; r >= 0 && cmd == PROTO_CMD_GET_STATS &&
			     i < d->ncpus;
	     i++) {
		fill_cpu(d, i, &row);
		r = stats_put(&stats_cpu, msg, PROTO_A_CPU, &row);
	}
	if (r >= 0 && d->n_attached) {
		list = calloc(d->n_attached, sizeof(*list));
		if (!list)
			r = -ENOMEM;
	}
	for (uint32_t i = 0; r >= 0 && i < d->nslots; i++)
		if (d->clients[i].state != CLIENT_FREE && n < d->n_attached) {
			lending_refresh(d, &d->clients[i]);
			list[n++] = &d->clients[i];
		}
	if (r >= 0 && n)
		qsort(list, n, sizeof(*list), cmp_lent);
	limit = cmd == PROTO_CMD_GET_STATUS ? TOP_CONSUMERS : n;
	for (size_t i = 0; r >= 0 && i < n && i < limit; i++) {
		fill_client(d, list[i], &row);
		r = stats_put(&stats_client, msg, PROTO_A_CLIENT, &row);
	}
	free(list);
	return r;
}

/* --- requests ----------------------------------------------------------- */

static void read_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(buf, len, "pid%d", (int)pid);
		return;
	}
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0) {
		snprintf(buf, len, "pid%d", (int)pid);
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* A client name as rcupoolctl and [client NAME] sections will see it. */
static void clean_name(const char *in, char *out, size_t len)
{
	size_t i = 0;

	for (; in[i] && i < len - 1; i++) {
		char ch = in[i];

		out[i] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
					 (ch >= '0' && ch <= '9') || ch == '.' ||
					 ch == '-' || ch == '_'
				 ? ch
				 : '_';
	}
	out[i] = '\0';
}

static int do_attach(struct conn *c, const struct proto_msg *m)
{
	struct daemon *d = c->d;
	struct nl_msg *msg;
	struct client *cl;
	char raw[PROTO_NAME_MAX], name[PROTO_NAME_MAX], why[256];
	uint32_t req_min = 0, req_max = 0, cp = d->chunk_pages, again = 0;
	int r, err;

	if (c->client)
		return reply_error(c, m, -EALREADY,
				   "this connection is attached to slot %d "
				   "already",
				   c->client->slot);
	if (!peer_may(&c->peer, PEER_ATTACH, d->attach_gid, d->admin_gid, d->uid))
		return reply_error(c, m, -EACCES,
				   "%s may not attach: not root and not in "
				   "group \"%s\" (access.attach_group)",
				   c->who, d->conf.access.attach_group);
	if (c->pidfd < 0)
		return reply_error(c, m, -ESRCH,
				   "%s: cannot follow the process of the peer "
				   "(no pidfd; another pid namespace?): "
				   "attaching needs it",
				   c->who);
	if (m->tb[PROTO_A_NAME])
		snprintf(raw, sizeof(raw), "%s",
			 nla_get_string(m->tb[PROTO_A_NAME]));
	else
		read_comm(c->peer.pid, raw, sizeof(raw));
	clean_name(raw, name, sizeof(name));
	if (!name[0])
		snprintf(name, sizeof(name), "pid%d", (int)c->peer.pid);
	if (m->tb[PROTO_A_MIN_PAGES])
		req_min = nla_get_u32(m->tb[PROTO_A_MIN_PAGES]);
	if (m->tb[PROTO_A_MAX_PAGES])
		req_max = nla_get_u32(m->tb[PROTO_A_MAX_PAGES]);
	if (m->tb[PROTO_A_REATTACH])
		again = nla_get_u32(m->tb[PROTO_A_REATTACH]);
	cl = lending_attach(d, c, c->peer.pid, c->peer.uid, c->pidfd, name,
			    req_min, req_max, &err, why, sizeof(why));
	if (!cl)
		return reply_error(c, m, err, "%s", why);
	c->pidfd = -1; /* the client's now */
	c->client = cl;
	d->n_unattached--;
	c->idle_src = sd_event_source_disable_unref(c->idle_src);

	r = proto_new_reply(&msg, m, 0, "attached to slot %d", cl->slot);
	if (r >= 0)
		r = proto_errno(nla_put_u32(msg, PROTO_A_SLOT,
					    (uint32_t)cl->slot));
	if (r >= 0)
		r = proto_errno(nla_put_u32(msg, PROTO_A_MIN_PAGES,
					    cl->min_chunks * cp));
	if (r >= 0)
		r = proto_errno(nla_put_u32(msg, PROTO_A_MAX_PAGES,
					    cl->max_chunks * cp));
	if (r >= 0)
		r = proto_errno(nla_put_u64(msg, PROTO_A_GENERATION,
					    d->generation));
	if (r >= 0)
		r = proto_errno(nla_put_u32(msg, PROTO_A_PAGE_SIZE,
					    d->page_size));
	if (r >= 0)
		r = proto_errno(nla_put_u32(msg, PROTO_A_CHUNK_PAGES, cp));
	if (r < 0) {
		nlmsg_free(msg);
		return reply_error(c, m, r, "cannot build the reply: %s",
				   strerror(-r));
	}
	if (again) {
		/* It lost a previous instance (no fd store) and came back. */
		d->clients_reattached++;
		log_info("%s re-attached as \"%s\" to slot %d after losing a "
			 "previous rcupoold (its re-attach %u; %llu clients "
			 "re-attached to this instance)",
			 c->who, name, cl->slot, again,
			 (unsigned long long)d->clients_reattached);
	}
	log_info("%s attached as \"%s\" to slot %d (min %u, max %u pages, "
		 "chunks of %u pages)",
		 c->who, name, cl->slot, cl->min_chunks * cp,
		 cl->max_chunks * cp, cp);
	daemon_notify_status(d);
	/* Kept in the store before the client hears of it. */
	fdstore_put_client(d, cl, c->fd);
	return send_reply(c, msg, &cl->lease_fd, 1);
}

static int do_chunk_get(struct conn *c, const struct proto_msg *m)
{
	struct daemon *d = c->d;
	struct client *cl = c->client;
	struct chunk *got[PROTO_GET_MAX];
	int fds[PROTO_GET_MAX];
	struct nl_msg *msg;
	uint32_t want, cpu = PROTO_CPU_ANY, n = 0;
	int r;

	if (!cl)
		return reply_error(c, m, -ENOTCONN, "CHUNK_GET: not attached");
	want = nla_get_u32(m->tb[PROTO_A_COUNT]);
	if (m->tb[PROTO_A_CPU_ID])
		cpu = nla_get_u32(m->tb[PROTO_A_CPU_ID]);
	if (want < 1 || want > PROTO_GET_MAX)
		return reply_error(c, m, -EINVAL,
				   "CHUNK_GET: COUNT %u is not in 1..%u", want,
				   PROTO_GET_MAX);
	if (cpu != PROTO_CPU_ANY && cpu >= d->ncpus)
		return reply_error(c, m, -EINVAL,
				   "CHUNK_GET: CPU_ID %u is not a possible CPU "
				   "(0..%u)",
				   cpu, d->ncpus - 1);
	r = lending_get(d, cl, cpu == PROTO_CPU_ANY ? -1 : (int)cpu, want, got,
			&n);
	reserve_schedule_refill(d);
	if (r == -EDQUOT)
		return reply_error(c, m, r,
				   "at max_pages: %u pages lent to %s, its max "
				   "is %u",
				   cl->lent.n * d->chunk_pages, cl->name,
				   cl->max_chunks * d->chunk_pages);
	if (r == -ENOSPC)
		return reply_error(c, m, r, "the reserve has no chunk for %s "
				   "now", cl->name);
	r = proto_new_reply(&msg, m, 0, NULL);
	for (uint32_t i = 0; r >= 0 && i < n; i++) {
		struct nlattr *nest = nla_nest_start(msg, PROTO_A_CHUNK);

		if (!nest ||
		    nla_put_u64(msg, PROTO_CHUNK_ID, got[i]->id) < 0 ||
		    nla_put_u32(msg, PROTO_CHUNK_PAGES, d->chunk_pages) < 0 ||
		    nla_put_u32(msg, PROTO_CHUNK_CPU,
				got[i]->cpu < 0 ? PROTO_CPU_ANY
						: (uint32_t)got[i]->cpu) < 0)
			r = -ENOMEM;
		else
			nla_nest_end(msg, nest);
		fds[i] = got[i]->fd;
	}
	/*
	 * The store: each chunk under its lent name before it is sent, its
	 * pool name removed after (a SIGKILL in between leaves both names:
	 * the next instance takes the lent one).
	 */
	for (uint32_t i = 0; i < n; i++)
		fdstore_lend_chunk(d, got[i]);
	if (r >= 0)
		r = send_reply(c, msg, fds, n);
	else
		nlmsg_free(msg);
	/* Lent: the daemon keeps no fd of it (its mapping until retired). */
	for (uint32_t i = 0; i < n; i++) {
		fdstore_unpool_chunk(d, got[i]);
		close(got[i]->fd);
		got[i]->fd = -1;
	}
	return r;
}

static void on_throttle_done(struct conn *c);

static int on_throttle(sd_event_source *src, uint64_t usec, void *data)
{
	on_throttle_done(data);
	return 0;
}

static int do_chunk_put(struct conn *c, const struct proto_msg *m)
{
	struct daemon *d = c->d;
	struct client *cl = c->client;
	uint64_t ids[PROTO_PUT_MAX], bad[PROTO_PUT_MAX], delay;
	uint32_t n = 0, nbad = 0, taken;
	struct nlattr *nla;
	struct nl_msg *msg;
	int r;

	if (!cl)
		return reply_error(c, m, -ENOTCONN, "CHUNK_PUT: not attached");
	proto_for_each(nla, m, PROTO_A_CHUNK_ID)
	{
		if (n == PROTO_PUT_MAX)
			return reply_error(c, m, -E2BIG,
					   "CHUNK_PUT: more than %u ids: none "
					   "taken back",
					   PROTO_PUT_MAX);
		ids[n++] = nla_get_u64(nla);
	}
	taken = lending_put(d, cl, ids, n, bad, &nbad);
	delay = lending_put_delay(d, cl);
	if (delay && !c->throttle_src &&
	    sd_event_add_time_relative(d->event, &c->throttle_src,
				       CLOCK_MONOTONIC, delay, 1000,
				       on_throttle, c) >= 0)
		sd_event_source_set_enabled(c->src, SD_EVENT_OFF);
	if (nbad) {
		char list[PROTO_MESSAGE_MAX - 128];
		size_t off = 0;

		list[0] = '\0';
		for (uint32_t i = 0; i < nbad && off < sizeof(list) - 24; i++)
			off += (size_t)snprintf(list + off, sizeof(list) - off,
						"%s%llu", i ? ", " : "",
						(unsigned long long)bad[i]);
		conn_log(c, "CHUNK_PUT: %u ids not lent to it (%s)", nbad,
			 list);
		return reply_error(c, m, -EINVAL,
				   "CHUNK_PUT: %u of %u ids are not chunks lent "
				   "to this client, ignored: %s; %u taken back",
				   nbad, n, list, taken);
	}
	r = proto_new_reply(&msg, m, 0, NULL);
	if (r < 0)
		return r;
	r = proto_errno(nla_put_u32(msg, PROTO_A_COUNT, taken));
	if (r < 0) {
		nlmsg_free(msg);
		return r;
	}
	return send_reply(c, msg, NULL, 0);
}

void server_recall(struct client *cl, uint32_t return_chunks)
{
	struct conn *c = cl->conn;
	struct nl_msg *msg;

	if (!c || proto_new(&msg, PROTO_CMD_RECALL, 0, false) < 0)
		return;
	if (nla_put_u32(msg, PROTO_A_ERROR, 0) < 0 ||
	    nla_put_string(msg, PROTO_A_MESSAGE, "") < 0 ||
	    nla_put_u32(msg, PROTO_A_RETURN_CHUNKS, return_chunks) < 0) {
		nlmsg_free(msg);
		return;
	}
	log_info("asking client %s (pid %d) to give back %u chunks", cl->name,
		 (int)cl->pid, return_chunks);
	send_reply(c, msg, NULL, 0);
}

static int do_report(struct conn *c, const struct proto_msg *m)
{
	struct nl_msg *msg;
	int r = proto_new_reply(&msg, m, 0, NULL);

	if (r < 0)
		return r;
	r = put_report(c, msg, m->cmd);
	if (r < 0) {
		nlmsg_free(msg);
		return reply_error(c, m, r, "cannot build the report: %s",
				   strerror(-r));
	}
	return send_reply(c, msg, NULL, 0);
}

struct limits_out {
	struct nl_msg *msg;
	int r;
};

static void put_limit(void *ud, const char *key, const char *value,
		      const char *source)
{
	struct limits_out *o = ud;
	struct nlattr *nest;

	if (o->r < 0)
		return;
	nest = nla_nest_start(o->msg, PROTO_A_SETTING);
	if (!nest || nla_put_string(o->msg, PROTO_SETTING_KEY, key) < 0 ||
	    nla_put_string(o->msg, PROTO_SETTING_VALUE, value) < 0 ||
	    nla_put_string(o->msg, PROTO_SETTING_SOURCE, source) < 0) {
		o->r = -ENOMEM;
		return;
	}
	nla_nest_end(o->msg, nest);
}

static int do_get_limits(struct conn *c, const struct proto_msg *m)
{
	struct limits_out o = {.r = proto_new_reply(&o.msg, m, 0, NULL)};

	if (o.r < 0)
		return o.r;
	conf_foreach(&c->d->conf, put_limit, &o);
	if (o.r < 0) {
		nlmsg_free(o.msg);
		return reply_error(c, m, o.r, "cannot build the reply");
	}
	return send_reply(c, o.msg, NULL, 0);
}

static bool require_admin(struct conn *c, const struct proto_msg *m)
{
	struct daemon *d = c->d;

	if (peer_may(&c->peer, PEER_ADMIN, d->attach_gid, d->admin_gid, d->uid))
		return true;
	log_warning("%s: %s refused: not an admin", c->who,
		    proto_cmd_name(m->cmd));
	reply_error(c, m, -EPERM,
		    "%s may not %s: only root%s%s%s may", c->who,
		    proto_cmd_name(m->cmd), d->admin_gid != PEER_NO_GROUP ?
		    " and members of group \"" : "",
		    d->admin_gid != PEER_NO_GROUP ? d->conf.access.admin_group : "",
		    d->admin_gid != PEER_NO_GROUP ? "\"" : "");
	return false;
}

#define SETTINGS_MAX 256 /* SETTING attributes in one request */

/* SET_LIMITS and UNSET_LIMITS: settings in layers (settings.h). */
static int do_set_limits(struct conn *c, const struct proto_msg *m)
{
	struct dropin_change ch[SETTINGS_MAX];
	struct settings_req req = {.unset = m->cmd == PROTO_CMD_UNSET_LIMITS};
	char why[PROTO_MESSAGE_MAX], logwhy[PROTO_MESSAGE_MAX];
	char path[PROTO_PATH_MAX], what[512] = "";
	struct nl_msg *msg;
	struct nlattr *nla;
	size_t off = 0;
	int r;

	if (!require_admin(c, m))
		return 0;
	if (m->tb[PROTO_A_LAYER])
		req.layer = nla_get_u32(m->tb[PROTO_A_LAYER]);
	req.dry_run = m->tb[PROTO_A_DRY_RUN] &&
		      nla_get_u32(m->tb[PROTO_A_DRY_RUN]);
	proto_for_each(nla, m, PROTO_A_SETTING)
	{
		const char *key, *value;

		if (proto_setting_get(nla, &key, &value) < 0)
			return reply_error(c, m, -EINVAL, "malformed SETTING");
		if (req.n == SETTINGS_MAX)
			return reply_error(c, m, -E2BIG,
					   "more than %d settings in one "
					   "request",
					   SETTINGS_MAX);
		ch[req.n++] = (struct dropin_change){key, value};
		if (off < sizeof(what))
			off += (size_t)snprintf(what + off, sizeof(what) - off,
						"%s%s%s%s", off ? " " : "", key,
						req.unset ? "" : "=",
						req.unset ? "" : value);
	}
	/* What a client sent goes to the log: no control characters. */
	for (char *p = what; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	req.ch = ch;
	r = settings_change(c->d, &req, why, sizeof(why), path, sizeof(path));
	/* Every admin request is logged, allowed or refused (the reason may
	 * quote a value: no control characters either). */
	snprintf(logwhy, sizeof(logwhy), "%s", why);
	for (char *p = logwhy; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	log_msg(r < 0 ? LOG_WARNING : LOG_NOTICE, "%s: %s%s %s%s: %s", c->who,
		req.unset ? (req.n ? "unset" : "revert") : "set",
		req.layer < 2 ? (req.layer ? " --persist" : "") : " (bad layer)",
		req.dry_run ? "(check) " : "", *what ? what : "(all)", logwhy);
	r = proto_new_reply(&msg, m, r < 0 ? r : 0, "%s", why);
	if (r < 0)
		return r;
	if (*path && nla_put_string(msg, PROTO_A_PATH, path) < 0) {
		nlmsg_free(msg);
		return reply_error(c, m, -ENOMEM, "cannot build the reply");
	}
	return send_reply(c, msg, NULL, 0);
}

static int on_idle(sd_event_source *src, uint64_t usec, void *data);

/* The books, checked now (they are exact by construction: a disagreement
 * is a bug of the daemon, logged as an error). */
/* The books, checked: the message, then STATUS and every CLIENT as numbers. */
static int do_census(struct conn *c, const struct proto_msg *m)
{
	struct nl_msg *msg;
	char why[256];
	int r = reserve_census(c->d, why, sizeof(why));

	if (r < 0)
		return reply_error(c, m, r, "%s", why);
	r = proto_new_reply(&msg, m, 0, "%s", why);
	if (r < 0)
		return r;
	r = put_report(c, msg, PROTO_CMD_CENSUS);
	if (r < 0) {
		nlmsg_free(msg);
		return reply_error(c, m, r, "cannot build the census: %s",
				   strerror(-r));
	}
	return send_reply(c, msg, NULL, 0);
}

static int do_detach(struct conn *c, const struct proto_msg *m)
{
	struct client *cl = c->client;
	uint32_t n;

	if (!cl)
		return reply_error(c, m, -ENOTCONN, "not attached");
	n = cl->lent.n;
	lending_detach(c->d, cl);
	c->client = NULL;
	c->d->n_unattached++;
	/* Unattached again: the idle timeout applies. */
	sd_event_add_time_relative(c->d->event, &c->idle_src, CLOCK_MONOTONIC,
				   c->d->conf.access.idle_timeout_us, 10000,
				   on_idle, c);
	return reply_error(c, m, 0,
			   "detached; %u chunks stay lent to this process "
			   "until it exits",
			   n);
}

static int do_request(struct conn *c, const struct proto_msg *m)
{
	struct daemon *d = c->d;
	char why[256];
	int r;

	if (!m->request)
		return reply_error(c, m, -EPROTO, "expected a request");
	switch (m->cmd) {
	case PROTO_CMD_ATTACH:
		return do_attach(c, m);
	case PROTO_CMD_DETACH:
		return do_detach(c, m);
	case PROTO_CMD_CHUNK_GET:
		return do_chunk_get(c, m);
	case PROTO_CMD_CHUNK_PUT:
		return do_chunk_put(c, m);
	case PROTO_CMD_GET_STATUS:
	case PROTO_CMD_GET_STATS:
	case PROTO_CMD_GET_CLIENTS:
		return do_report(c, m);
	case PROTO_CMD_GET_LIMITS:
		return do_get_limits(c, m);
	case PROTO_CMD_SET_LIMITS:
	case PROTO_CMD_UNSET_LIMITS:
		return do_set_limits(c, m);
	case PROTO_CMD_RESET_STATS:
		if (!require_admin(c, m))
			return 0;
		reserve_reset_stats(d);
		log_notice("%s reset the statistics", c->who);
		return reply_error(c, m, 0, "statistics reset");
	case PROTO_CMD_RELOAD:
		if (!require_admin(c, m))
			return 0;
		r = daemon_reload(d, why, sizeof(why));
		log_msg(r < 0 ? LOG_WARNING : LOG_NOTICE, "%s: reload: %s",
			c->who, why);
		return reply_error(c, m, r, "%s", why);
	case PROTO_CMD_CENSUS:
		if (!require_admin(c, m))
			return 0;
		return do_census(c, m);
	}
	return reply_error(c, m, -EOPNOTSUPP, "unknown command %u", m->cmd);
}

/*
 * Enough of a header to answer: the command and sequence number of a
 * message whose netlink and genetlink headers are whole.
 */
static bool header_of(const void *buf, size_t len, struct proto_msg *m)
{
	const struct nlmsghdr *nlh = buf;
	const struct genlmsghdr *g;

	if (len < NLMSG_HDRLEN + GENL_HDRLEN || nlh->nlmsg_len != len)
		return false;
	g = (const struct genlmsghdr *)((const char *)buf + NLMSG_HDRLEN);
	memset(m, 0, sizeof(*m));
	m->cmd = g->cmd;
	m->seq = nlh->nlmsg_seq;
	m->request = true;
	return true;
}

static void idle_rearm(struct conn *c)
{
	if (c->idle_src)
		sd_event_source_set_time_relative(
			c->idle_src, c->d->conf.access.idle_timeout_us);
}

static int on_conn(sd_event_source *src, int fd, uint32_t revents, void *data)
{
	struct conn *c = data;
	struct proto_msg m;
	char why[256];
	size_t nfds = 0;
	int len, r;

	for (int budget = 16; budget > 0; budget--) {
		len = proto_recv(fd, rxbuf, PROTO_MSG_MAX, NULL, &nfds);
		if (len == -EAGAIN)
			return 0;
		if (len == -ECONNRESET) {
			log_debug("%s closed the connection", c->who);
			conn_free(c);
			return 0;
		}
		if (len < 0) {
			conn_log(c, "unreadable message: %s%s", strerror(-len),
				 c->client ? " (dropped)" : "; closing");
			if (c->client && len != -ENOTCONN)
				continue;
			conn_free(c);
			return 0;
		}
		idle_rearm(c);
		r = proto_parse(rxbuf, (size_t)len, &m, why, sizeof(why));
		if (r < 0) {
			conn_log(c, "bad message: %s", why);
			if (header_of(rxbuf, (size_t)len, &m)) {
				m.cmd = PROTO_CMD_ERROR; /* any client parses it */
				reply_error(c, &m, r, "bad message: %s", why);
				continue;
			}
			if (c->client)
				continue;
			conn_free(c);
			return 0;
		}
		r = do_request(c, &m);
		if (r == -EPIPE || r == -ECONNRESET) {
			conn_free(c);
			return 0;
		}
		if (c->throttle_src)
			return 0; /* slowed: read again when its bucket refills */
	}
	return 0;
}

static void on_throttle_done(struct conn *c)
{
	c->throttle_src = sd_event_source_disable_unref(c->throttle_src);
	sd_event_source_set_enabled(c->src, SD_EVENT_ON);
}

static int on_idle(sd_event_source *src, uint64_t usec, void *data)
{
	struct conn *c = data;

	log_debug("%s: idle for %llu ms: closing", c->who,
		  (unsigned long long)(c->d->conf.access.idle_timeout_us /
				       1000));
	conn_free(c);
	return 0;
}

/* Refuse a connection with a message the client can show, then close. */
static void refuse(struct daemon *d, int fd, int error, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void refuse(struct daemon *d, int fd, int error, const char *fmt, ...)
{
	struct proto_msg none = {.cmd = PROTO_CMD_UNSPEC, .seq = 0};
	struct nl_msg *msg;
	char text[PROTO_MESSAGE_MAX];
	uint64_t now = daemon_now_usec();
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (proto_new_reply(&msg, &none, error, "%s", text) >= 0) {
		proto_send(fd, msg, NULL, 0);
		nlmsg_free(msg);
	}
	close(fd);
	if (now - d->refused_usec >= LOG_WINDOW_USEC) {
		log_warning("refused a connection: %s%s", text,
			    d->refused_suppressed ? " (and more, not logged)"
						  : "");
		d->refused_usec = now;
		d->refused_suppressed = 0;
	} else {
		d->refused_suppressed++;
	}
}

/* The peer's process as a pidfd, or -1 (then it may not attach). */
static int peer_pidfd(int fd, pid_t pid)
{
	socklen_t len = sizeof(int);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int pidfd = -1;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 &&
	    pidfd >= 0) {
		fcntl(pidfd, F_SETFD, FD_CLOEXEC);
		return pidfd;
	}
	if (pid <= 0)
		return -1;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -1;
	/* Still connected: the pid was not reused by another process. */
	if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR))) {
		close(pidfd);
		return -1;
	}
	fcntl(pidfd, F_SETFD, FD_CLOEXEC);
	return pidfd;
}

static int on_accept_resume(sd_event_source *src, uint64_t usec, void *data)
{
	struct daemon *d = data;

	sd_event_source_set_enabled(d->listen_src, SD_EVENT_ON);
	return 0;
}

static int on_listen(sd_event_source *src, int fd, uint32_t revents,
		     void *data)
{
	struct daemon *d = data;

	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct conn *c;
		struct peer peer = {0};
		unsigned int same = 0;
		int r;

		if (cfd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* Out of fds: stop accepting for a while
				 * rather than spin on a readable listener. */
				if (!d->accept_pause_logged)
					log_warning("accept: %m; not accepting "
						    "for 100 ms");
				d->accept_pause_logged = true;
				sd_event_source_set_enabled(src, SD_EVENT_OFF);
				sd_event_add_time_relative(
					d->event, NULL, CLOCK_MONOTONIC, 100000,
					10000, on_accept_resume, d);
			} else if (errno != EAGAIN && errno != EINTR) {
				log_warning("accept: %m");
			}
			return 0;
		}
		d->accept_pause_logged = false;
		r = peer_get(cfd, &peer);
		if (r < 0) {
			log_errno(LOG_WARNING, r, "peer credentials: %m");
			close(cfd);
			continue;
		}
		for (struct conn *k = d->conns; k; k = k->next)
			if (!k->client && k->peer.uid == peer.uid)
				same++;
		/*
		 * Root and the daemon's own user are trusted (they can stop
		 * the daemon anyway): a burst of their clients starting at
		 * once is never refused here, only by UNATTACHED_MAX.
		 */
		if (peer.uid != 0 && peer.uid != d->uid &&
		    same >= d->conf.access.max_connections_per_uid) {
			refuse(d, cfd, -EUSERS,
			       "uid %u has %u connections not attached "
			       "(access.max_connections_per_uid = %u)",
			       (unsigned int)peer.uid, same,
			       d->conf.access.max_connections_per_uid);
			peer_free(&peer);
			continue;
		}
		if (d->n_unattached >= UNATTACHED_MAX) {
			refuse(d, cfd, -EUSERS,
			       "%u connections not attached: no more taken",
			       d->n_unattached);
			peer_free(&peer);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			peer_free(&peer);
			close(cfd);
			continue;
		}
		*c = (struct conn){.d = d, .fd = cfd, .peer = peer, .pidfd = -1};
		peer_describe(&c->peer, c->who, sizeof(c->who));
		c->pidfd = peer_pidfd(cfd, peer.pid);
		proto_socket_buffers(cfd);
		r = sd_event_add_io(d->event, &c->src, cfd, EPOLLIN, on_conn, c);
		if (r >= 0)
			r = sd_event_add_time_relative(
				d->event, &c->idle_src, CLOCK_MONOTONIC,
				d->conf.access.idle_timeout_us, 10000, on_idle,
				c);
		if (r < 0) {
			log_errno(LOG_WARNING, r, "event source: %m");
			c->src = sd_event_source_disable_unref(c->src);
			if (c->pidfd >= 0)
				close(c->pidfd);
			peer_free(&c->peer);
			close(cfd);
			free(c);
			continue;
		}
		c->next = d->conns;
		if (d->conns)
			d->conns->prev = c;
		d->conns = c;
		d->n_conns++;
		d->n_unattached++;
	}
}

int server_adopt_conn(struct daemon *d, int fd, struct client *cl)
{
	struct conn *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	*c = (struct conn){.d = d, .fd = fd, .pidfd = -1, .client = cl};
	r = peer_get(fd, &c->peer);
	if (r < 0) {
		free(c);
		return r;
	}
	peer_describe(&c->peer, c->who, sizeof(c->who));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	proto_socket_buffers(fd);
	r = sd_event_add_io(d->event, &c->src, fd, EPOLLIN, on_conn, c);
	if (r < 0) {
		peer_free(&c->peer);
		free(c);
		return r;
	}
	c->next = d->conns;
	if (d->conns)
		d->conns->prev = c;
	d->conns = c;
	d->n_conns++;
	cl->conn = c;
	return 0;
}

int server_listen(struct daemon *d, const char *socket_option)
{
	char why[256];
	int fd, r;

	rxbuf = malloc(PROTO_MSG_MAX);
	if (!rxbuf)
		return log_errno(LOG_ERR, -ENOMEM, "out of memory");
	if (d->listen_adopted && !d->listen_owned) {
		snprintf(d->socket_path, sizeof(d->socket_path), "%s",
			 "(socket activation, from the fd store)");
		goto listening;
	}
	r = d->listen_adopted ? 0 : listen_from_systemd(&fd);
	if (r < 0)
		return log_errno(LOG_ERR, r,
				 "systemd passed sockets that are not one "
				 "AF_UNIX SOCK_SEQPACKET listener");
	if (r > 0) {
		d->listen_fd = fd;
		snprintf(d->socket_path, sizeof(d->socket_path), "%s",
			 "(socket activation)");
	} else {
		const char *path = socket_option;

		if (!path && d->conf.daemon.socket[0])
			path = d->conf.daemon.socket;
		if (!path) {
			const char *rt = getenv("RUNTIME_DIRECTORY");

			if (getenv("RCUPOOL_SOCKET") || !rt || rt[0] != '/')
				r = proto_listen_path(d->socket_path,
						      sizeof(d->socket_path));
			else
				r = snprintf(d->socket_path,
					     sizeof(d->socket_path),
					     "%.*s/rcupoold.sock",
					     (int)strcspn(rt, ":"), rt);
			if (r < 0)
				return log_errno(LOG_ERR, r,
						 "no socket path: set --socket, "
						 "[daemon] socket or RCUPOOL_SOCKET");
		} else {
			snprintf(d->socket_path, sizeof(d->socket_path), "%s",
				 path);
		}
		if (d->listen_adopted) {
			/* Ours, from the fd store: kept if it is bound where
			 * the configuration says now. */
			struct sockaddr_un sa;
			socklen_t salen = sizeof(sa);

			memset(&sa, 0, sizeof(sa));
			if (getsockname(d->listen_fd, (struct sockaddr *)&sa,
					&salen) == 0 &&
			    !strncmp(sa.sun_path, d->socket_path,
				     sizeof(sa.sun_path)))
				goto listening;
			log_notice("the stored listening socket is bound to "
				   "%.108s, the configuration says %s: "
				   "binding that",
				   sa.sun_path, d->socket_path);
			fdstore_drop_listener(d);
			close(d->listen_fd);
			d->listen_fd = -1;
			d->listen_adopted = false;
		}
		fd = listen_bind(d->socket_path, d->conf.access.socket_mode,
				 SOMAXCONN, why, sizeof(why));
		if (fd < 0)
			return log_errno(LOG_ERR, fd, "%s", why);
		d->listen_fd = fd;
		d->listen_owned = true;
		fdstore_put_listener(d);
	}
listening:
	r = sd_event_add_io(d->event, &d->listen_src, d->listen_fd, EPOLLIN,
			    on_listen, d);
	if (r < 0)
		return log_errno(LOG_ERR, r, "listen event source: %m");
	return 0;
}

void server_close(struct daemon *d)
{
	while (d->conns)
		conn_free(d->conns);
	d->listen_src = sd_event_source_disable_unref(d->listen_src);
	if (d->listen_fd >= 0)
		close(d->listen_fd);
	d->listen_fd = -1;
	/* Kept in the fd store for the next instance: the path stays. */
	if (d->listen_owned && !(d->fdstore && d->fdstore_frozen))
		unlink(d->socket_path);
	free(rxbuf);
	rxbuf = NULL;
}

void server_status_line(struct daemon *d, char *buf, size_t len)
{
	snprintf(buf, len,
		 "%llu/%llu pages free, %llu lent, %u client%s (%u adopted, "
		 "%llu re-attached since start), %llu depletions",
		 (unsigned long long)d->n_pool * d->chunk_pages,
		 (unsigned long long)reserve_pages(d),
		 (unsigned long long)d->n_lent * d->chunk_pages, d->n_attached,
		 d->n_attached == 1 ? "" : "s", d->clients_adopted,
		 (unsigned long long)d->clients_reattached,
		 (unsigned long long)d->stats.depletions);
}
