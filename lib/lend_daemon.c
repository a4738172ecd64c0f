// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The daemon lender (lend.h): rcupoold over the control socket.  ATTACH
 * brings the lease memfd (checked once against its size, then mapped);
 * CHUNK_GET brings chunk memfds by SCM_RIGHTS, CHUNK_PUT gives ids back;
 * RECALL notifications (seq 0) may arrive at any time and are read by
 * event() or skipped by a call (the lease's return_chunks says the same).
 * Everything received is checked before it is kept: a bad reply keeps
 * nothing.  Never logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lend.h"
#include "proto.h"

_Static_assert(LEND_GET_MAX == PROTO_GET_MAX, "one get, one message");

struct lend_daemon {
	struct lender l;
	void *buf;
	uint32_t seq;
	uint64_t recalls;
};

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/*
 * A daemon killed after reading a request and before answering it leaves
 * the connection open (the fd store keeps it for the next instance): the
 * call would wait forever.  Every CALL_WAIT_MS without a reply the call
 * looks at the lease: a new instance that adopted us wrote its generation
 * there, and then the request is sent again.  The same daemon, only slow,
 * is waited for as before (a resend would lend twice).  After CALL_TRIES
 * sends to the new one, -ETIMEDOUT.  Before the lease exists (ATTACH) the
 * request is sent again each CALL_WAIT_MS, without a limit: a slow daemon
 * answers the first and then -EALREADY to the others (skipped as stale);
 * an instance that adopted the connection answers -EALREADY and the open
 * fails instead of waiting forever.
 */
#define CALL_WAIT_MS 1000
#define CALL_TRIES   10

/* Receive one message, waiting up to ms for it.  Length or -errno
 * (-ETIMEDOUT: nothing came). */
static int recv_wait(int fd, void *buf, int *fds, size_t *nfds, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	size_t cap = nfds ? *nfds : 0;

	for (;;) {
		int r;

		if (nfds)
			*nfds = cap;
		r = proto_recv(fd, buf, PROTO_MSG_MAX, fds, nfds);
		if (r != -EAGAIN)
			return r;
		r = poll(&p, 1, ms);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
	}
}

/* A notification from the daemon (not a reply): 1 if it was one. */
static int notification(struct lend_daemon *ld, const struct proto_msg *m)
{
	if (m->request || m->seq != 0 || m->cmd != PROTO_CMD_RECALL)
		return 0;
	ld->recalls++;
	return 1;
}

/*
 * Send req (freed) and wait for its reply in ld->buf, skipping
 * notifications and stale replies.  The reply's fds in fds/nfds (capacity
 * in).  0, or -errno (the daemon's error, -EBADMSG, -ECONNRESET,
 * -ETIMEDOUT).  A reply that does not come in CALL_WAIT_MS is asked again
 * (the same request, the same seq: the first of two replies is taken, a
 * late twin is skipped as stale by the next call).
 */
static int call(struct lend_daemon *ld, struct nl_msg *req, struct proto_msg *m,
		int *fds, size_t *nfds, char *why, size_t whylen)
{
	uint32_t seq = nlmsg_hdr(req)->nlmsg_seq;
	uint8_t cmd = ((struct genlmsghdr *)nlmsg_data(nlmsg_hdr(req)))->cmd;
	size_t cap = nfds ? *nfds : 0;
	char text[256];
	int r, tries = 0;
	uint64_t gen = 0;

	if (ld->l.fd < 0) {
		nlmsg_free(req);
		return -ECONNRESET;
	}
send:
	if (ld->l.lease)
		gen = atomic_load(&ld->l.lease->limits.generation);
	r = proto_send(ld->l.fd, req, NULL, 0);
	tries++;
	if (r == -EPIPE)
		r = -ECONNRESET;
	if (r < 0) {
		nlmsg_free(req);
		return r;
	}
	for (;;) {
		size_t n = cap;

		r = recv_wait(ld->l.fd, ld->buf, fds, &n, CALL_WAIT_MS);
		if (r == -ETIMEDOUT && ld->l.lease &&
		    atomic_load(&ld->l.lease->limits.generation) == gen)
			continue; /* the same daemon: wait on */
		if (r == -ETIMEDOUT && (!ld->l.lease || tries < CALL_TRIES))
			goto send;
		if (r < 0) {
			nlmsg_free(req);
			return r == -EMSGSIZE ? -EBADMSG : r;
		}
		r = proto_parse(ld->buf, (size_t)r, m, text, sizeof(text));
		if (r < 0) {
			nlmsg_free(req);
			close_fds(fds, n);
			if (why)
				snprintf(why, whylen, "bad reply: %s", text);
			return -EBADMSG;
		}
		if (notification(ld, m) || m->request || m->seq != seq) {
			close_fds(fds, n);
			if (!m->request && m->seq == 0 && m->cmd == 0 &&
			    m->error) {
				nlmsg_free(req);
				if (why)
					snprintf(why, whylen, "%s", m->message);
				return m->error;
			}
			continue;
		}
		nlmsg_free(req);
		if (m->cmd != cmd) {
			close_fds(fds, n);
			return -EBADMSG;
		}
		if (m->error) {
			close_fds(fds, n);
			if (why)
				snprintf(why, whylen, "%s", m->message);
			return m->error;
		}
		if (nfds)
			*nfds = n;
		return 0;
	}
}

static uint32_t next_seq(struct lend_daemon *ld)
{
	if (++ld->seq == 0)
		ld->seq = 1; /* 0 is the daemon's notifications */
	return ld->seq;
}

static int ld_get(struct lender *l, int cpu, uint32_t want,
		  struct lend_chunk *out, uint32_t *got)
{
	struct lend_daemon *ld = (struct lend_daemon *)l;
	int fds[PROTO_FDS_MAX];
	size_t nfds = PROTO_FDS_MAX, k = 0;
	uint64_t bytes = (uint64_t)l->chunk_pages * l->page_size;
	struct proto_msg m;
	struct nl_msg *req;
	struct nlattr *nla;
	int r;

	*got = 0;
	if (want == 0)
		return 0;
	if (want > LEND_GET_MAX)
		return -EINVAL;
	r = proto_new(&req, PROTO_CMD_CHUNK_GET, next_seq(ld), true);
	if (r < 0)
		return r;
	r = proto_errno(nla_put_u32(req, PROTO_A_COUNT, want));
	if (r >= 0)
		r = proto_errno(nla_put_u32(req, PROTO_A_CPU_ID,
					    cpu < 0 ? PROTO_CPU_ANY
						    : (uint32_t)cpu));
	if (r < 0) {
		nlmsg_free(req);
		return r;
	}
	r = call(ld, req, &m, fds, &nfds, NULL, 0);
	if (r < 0)
		return r;
	proto_for_each(nla, &m, PROTO_A_CHUNK)
	{
		struct nlattr *tb[PROTO_CHUNK_MAX + 1];
		struct stat st;
		uint32_t c;

		if (k >= nfds || k >= want ||
		    nla_parse_nested(tb, PROTO_CHUNK_MAX, nla, NULL) < 0 ||
		    !tb[PROTO_CHUNK_ID] || !tb[PROTO_CHUNK_PAGES] ||
		    !tb[PROTO_CHUNK_CPU] ||
		    nla_get_u32(tb[PROTO_CHUNK_PAGES]) != l->chunk_pages ||
		    fstat(fds[k], &st) < 0 || !S_ISREG(st.st_mode) ||
		    (uint64_t)st.st_size != bytes)
			goto bad;
		c = nla_get_u32(tb[PROTO_CHUNK_CPU]);
		out[k].id = nla_get_u64(tb[PROTO_CHUNK_ID]);
		out[k].fd = fds[k];
		out[k].pages = l->chunk_pages;
		out[k].cpu = c == PROTO_CPU_ANY || c > INT32_MAX ? -1
								 : (int32_t)c;
		k++;
	}
	if (k != nfds)
		goto bad;
	*got = (uint32_t)k;
	return 0;
bad:
	close_fds(fds, nfds);
	return -EBADMSG;
}

static int ld_put(struct lender *l, const uint64_t *ids, uint32_t n)
{
	struct lend_daemon *ld = (struct lend_daemon *)l;
	struct proto_msg m;

	while (n) {
		uint32_t k = n < PROTO_PUT_MAX ? n : PROTO_PUT_MAX;
		struct nl_msg *req;
		int r = proto_new(&req, PROTO_CMD_CHUNK_PUT, next_seq(ld), true);

		if (r < 0)
			return r;
		for (uint32_t i = 0; r >= 0 && i < k; i++)
			r = proto_errno(nla_put_u64(req, PROTO_A_CHUNK_ID,
						    ids[i]));
		if (r < 0) {
			nlmsg_free(req);
			return r;
		}
		r = call(ld, req, &m, NULL, NULL, NULL, 0);
		if (r < 0)
			return r;
		ids += k;
		n -= k;
	}
	return 0;
}

static int ld_event(struct lender *l)
{
	struct lend_daemon *ld = (struct lend_daemon *)l;
	int fds[PROTO_FDS_MAX];

	while (l->fd >= 0) {
		size_t n = PROTO_FDS_MAX;
		struct proto_msg m;
		int r = proto_recv(l->fd, ld->buf, PROTO_MSG_MAX, fds, &n);

		if (r == -EAGAIN)
			return 0;
		if (r == -ECONNRESET) {
			close(l->fd);
			l->fd = -1;
			return -ECONNRESET;
		}
		if (r < 0)
			continue; /* dropped: nothing kept */
		close_fds(fds, n);
		if (proto_parse(ld->buf, (size_t)r, &m, NULL, 0) == 0)
			notification(ld, &m);
	}
	return -ECONNRESET;
}

static void ld_close(struct lender *l)
{
	struct lend_daemon *ld = (struct lend_daemon *)l;

	if (l->fd >= 0)
		close(l->fd);
	if (l->lease)
		munmap(l->lease, LEASE_SIZE);
	free(ld->buf);
	free(ld);
}

static const struct lender_ops daemon_ops = {
	.get = ld_get,
	.put = ld_put,
	.event = ld_event,
	.close = ld_close,
};

/* The lease memfd: sealed, its size, its header; mapped into l->lease. */
static int map_lease(struct lender *l, int fd, const struct proto_msg *m,
		     char *why, size_t whylen)
{
	struct lease_shm *s, h;
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);
	uint32_t ps = nla_get_u32(m->tb[PROTO_A_PAGE_SIZE]);
	uint32_t cp = nla_get_u32(m->tb[PROTO_A_CHUNK_PAGES]);

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size != LEASE_SIZE) {
		snprintf(why, whylen, "the lease is not a %d-byte file",
			 LEASE_SIZE);
		return -EBADMSG;
	}
	if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
		snprintf(why, whylen, "the lease is not sealed against "
				      "shrinking");
		return -EBADMSG;
	}
	s = mmap(NULL, LEASE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s == MAP_FAILED) {
		snprintf(why, whylen, "cannot map the lease: %s",
			 strerror(errno));
		return -errno;
	}
	/* The header, read once into our own copy, then checked. */
	memcpy(&h, s, offsetof(struct lease_shm, limits));
	if (h.magic != LEASE_MAGIC || h.version != LEASE_VERSION ||
	    h.size != sizeof(*s) || h.page_size != ps || h.chunk_pages != cp ||
	    ps < 4096 || (ps & (ps - 1)) || cp == 0 ||
	    (uint64_t)cp * ps > (UINT64_C(1) << 32)) {
		munmap(s, LEASE_SIZE);
		snprintf(why, whylen,
			 "the lease header does not match the reply (magic, "
			 "version %u, size, geometry)",
			 h.version);
		return -EBADMSG;
	}
	l->lease = s;
	l->page_size = ps;
	l->chunk_pages = cp;
	return 0;
}

int lend_daemon_open(const char *path, const char *name, uint32_t min_pages,
		     uint32_t max_pages, struct lender **ret, char *why,
		     size_t whylen)
{
	return lend_daemon_reopen(path, name, min_pages, max_pages, 0, ret,
				  why, whylen);
}

int lend_daemon_reopen(const char *path, const char *name, uint32_t min_pages,
		       uint32_t max_pages, uint32_t again,
		       struct lender **ret, char *why, size_t whylen)
{
	struct lend_daemon *ld = calloc(1, sizeof(*ld));
	char text[PROTO_MESSAGE_MAX];
	struct proto_msg m;
	struct nl_msg *req;
	int fds[PROTO_FDS_MAX];
	size_t nfds = PROTO_FDS_MAX;
	int r;

	snprintf(why, whylen, "%s", "");
	if (!ld)
		return -ENOMEM;
	ld->l.ops = &daemon_ops;
	ld->l.fd = -1;
	ld->buf = malloc(PROTO_MSG_MAX);
	if (!ld->buf) {
		r = -ENOMEM;
		goto fail;
	}
	r = proto_connect(path);
	if (r < 0) {
		char def[108] = "";

		if (!path && proto_socket_path(def, sizeof(def)) >= 0)
			path = def;
		snprintf(why, whylen, "cannot connect to rcupoold at %s: %s",
			 path ? path : "(no socket path)", strerror(-r));
		goto fail;
	}
	ld->l.fd = r;
	fcntl(r, F_SETFL, fcntl(r, F_GETFL) | O_NONBLOCK);
	r = proto_new(&req, PROTO_CMD_ATTACH, next_seq(ld), true);
	if (r < 0)
		goto fail;
	if (name && *name)
		r = proto_errno(nla_put_string(req, PROTO_A_NAME, name));
	if (r >= 0 && min_pages)
		r = proto_errno(nla_put_u32(req, PROTO_A_MIN_PAGES, min_pages));
	if (r >= 0 && max_pages)
		r = proto_errno(nla_put_u32(req, PROTO_A_MAX_PAGES, max_pages));
	if (r >= 0 && again)
		r = proto_errno(nla_put_u32(req, PROTO_A_REATTACH, again));
	if (r < 0) {
		nlmsg_free(req);
		goto fail;
	}
	text[0] = '\0';
	r = call(ld, req, &m, fds, &nfds, text, sizeof(text));
	if (r < 0) {
		snprintf(why, whylen, "attach refused: %s",
			 text[0] ? text : strerror(-r));
		goto fail;
	}
	if (nfds != 1 || !m.tb[PROTO_A_PAGE_SIZE] ||
	    !m.tb[PROTO_A_CHUNK_PAGES] || !m.tb[PROTO_A_MIN_PAGES] ||
	    !m.tb[PROTO_A_MAX_PAGES]) {
		close_fds(fds, nfds);
		snprintf(why, whylen,
			 "ATTACH reply without its lease fd or geometry");
		r = -EBADMSG;
		goto fail;
	}
	r = map_lease(&ld->l, fds[0], &m, why, whylen);
	close(fds[0]);
	if (r < 0)
		goto fail;
	ld->l.min_pages = nla_get_u32(m.tb[PROTO_A_MIN_PAGES]);
	ld->l.max_pages = nla_get_u32(m.tb[PROTO_A_MAX_PAGES]);
	*ret = &ld->l;
	return 0;
fail:
	ld_close(&ld->l);
	return r;
}
