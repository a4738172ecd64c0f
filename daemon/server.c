// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The control socket: connections, permissions, and every request of the
 * protocol (proto.h).  A request that can be decoded gets a reply, with an
 * error code and a message naming what was wrong; bytes that cannot be
 * decoded close an unattached connection and are dropped (with a warning)
 * on an attached one, whose closing would take its pages back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "census.h"
#include "daemon.h"
#include "listen.h"
#include "log.h"
#include "proto.h"
#include "settings.h"
#include "stats.h"

/* Connections beyond the client slots, for rcupoolctl and friends. */
#define EXTRA_CONNECTIONS 64
#define TOP_CONSUMERS	  5

struct conn {
	struct conn *next, *prev;
	struct daemon *d;
	int fd;
	sd_event_source *src;
	struct peer peer;
	char who[128];
	int slot; /* -1: not attached */
	int kick_fd;
	sd_event_source *kick_src;
	uint64_t attached_usec;
};

static void *rxbuf;

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void conn_detach(struct conn *c)
{
	struct daemon *d = c->d;
	uint32_t n;

	if (c->slot < 0)
		return;
	n = reserve_reclaim_slot(d, (uint32_t)c->slot);
	log_info("%s detached from slot %d; %u pages back to the reserve",
		 c->who, c->slot, n);
	c->slot = -1;
	d->n_attached--;
	c->kick_src = sd_event_source_disable_unref(c->kick_src);
	if (c->kick_fd >= 0)
		close(c->kick_fd);
	c->kick_fd = -1;
	daemon_notify_status(d);
}

static void conn_free(struct conn *c)
{
	struct daemon *d = c->d;

	conn_detach(c);
	c->src = sd_event_source_disable_unref(c->src);
	if (c->fd >= 0)
		close(c->fd);
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

static void fill_status(struct daemon *d, const struct census *cs,
			struct stats_row *row)
{
	struct seg *s = &d->seg;
	uint64_t depl = 0, denied = 0, fb = 0;
	uint32_t online = 0;

	memset(row, 0, sizeof(*row));
	for (uint32_t i = 0; i < s->nslots; i++) {
		struct seg_slot *sl = &s->slot[i];

		if (atomic_load(&sl->state) != SEG_SLOT_ATTACHED)
			continue;
		depl += atomic_load(&sl->depletions);
		denied += atomic_load(&sl->denied);
		fb += atomic_load(&sl->fb_overflow) + atomic_load(&sl->fb_head) +
		      atomic_load(&sl->fb_sync);
	}
	for (uint32_t c = 0; c < s->ncpus; c++)
		online += atomic_load(&s->cpu[c].online) ? 1 : 0;
	stats_set_s(row, PROTO_STATUS_VERSION, RCUPOOL_VERSION);
	stats_set_u(row, PROTO_STATUS_PID, (uint64_t)getpid());
	stats_set_u(row, PROTO_STATUS_UPTIME_USEC, now_usec() - d->start_usec);
	stats_set_u(row, PROTO_STATUS_PAGE_SIZE, s->page_size);
	stats_set_u(row, PROTO_STATUS_CPUS, s->ncpus);
	stats_set_u(row, PROTO_STATUS_CPUS_ONLINE, online);
	stats_set_u(row, PROTO_STATUS_PAGES_TOTAL, s->npages);
	stats_set_u(row, PROTO_STATUS_PAGES_FREE, cs->free);
	stats_set_u(row, PROTO_STATUS_PAGES_GLOBAL, cs->global);
	stats_set_u(row, PROTO_STATUS_PAGES_HELD, cs->held);
	stats_set_u(row, PROTO_STATUS_CLIENTS, d->n_attached);
	stats_set_u(row, PROTO_STATUS_MAX_CLIENTS, s->nslots);
	stats_set_u(row, PROTO_STATUS_DEPLETIONS, depl);
	stats_set_u(row, PROTO_STATUS_DENIED, denied);
	stats_set_u(row, PROTO_STATUS_FALLBACKS, fb);
	stats_set_u(row, PROTO_STATUS_KICKS, d->stats.kicks);
	stats_set_u(row, PROTO_STATUS_BALANCE_RUNS, d->stats.balance_runs);
	stats_set_u(row, PROTO_STATUS_PAGES_MOVED, d->stats.pages_moved);
	stats_set_u(row, PROTO_STATUS_PAGES_RECLAIMED, d->stats.pages_reclaimed);
	stats_set_u(row, PROTO_STATUS_PAGES_REPAIRED, d->stats.pages_repaired);
	stats_set_u(row, PROTO_STATUS_CENSUS_RUNS, d->stats.census_runs);
	stats_set_u(row, PROTO_STATUS_BAD_INDEX, atomic_load(&s->hdr->bad_index));
	stats_set_u(row, PROTO_STATUS_LOCKED, s->locked);
	stats_set_u(row, PROTO_STATUS_HUGETLB, s->hugetlb);
	stats_set_u(row, PROTO_STATUS_RELOADS, d->stats.reloads);
}

static void fill_cpu(struct daemon *d, const struct census *cs, uint32_t c,
		     struct stats_row *row)
{
	struct seg_cpu *cpu = &d->seg.cpu[c];

	memset(row, 0, sizeof(*row));
	stats_set_u(row, PROTO_CPU_ID, c);
	stats_set_u(row, PROTO_CPU_ONLINE, atomic_load(&cpu->online) ? 1 : 0);
	stats_set_u(row, PROTO_CPU_FREE, cs->cpu_free[c]);
	stats_set_u(row, PROTO_CPU_PROTECT, cs->cpu_protect[c]);
	stats_set_u(row, PROTO_CPU_LOW, atomic_load(&cpu->low));
	stats_set_u(row, PROTO_CPU_TARGET, atomic_load(&cpu->target));
	stats_set_u(row, PROTO_CPU_HIGH, atomic_load(&cpu->high));
	stats_set_u(row, PROTO_CPU_EMPTY, atomic_load(&cpu->stats.empty));
	stats_set_u(row, PROTO_CPU_MOVED_IN, atomic_load(&cpu->stats.moved_in));
	stats_set_u(row, PROTO_CPU_MOVED_OUT, atomic_load(&cpu->stats.moved_out));
}

static void fill_client(struct conn *c, const struct census *cs,
			struct stats_row *row)
{
	struct seg_slot *sl = &c->d->seg.slot[c->slot];

	memset(row, 0, sizeof(*row));
	stats_set_u(row, PROTO_CLIENT_SLOT, (uint64_t)c->slot);
	stats_set_u(row, PROTO_CLIENT_PID, atomic_load(&sl->pid));
	stats_set_u(row, PROTO_CLIENT_UID, c->peer.uid);
	stats_set_s(row, PROTO_CLIENT_NAME, sl->name);
	/* The owner table is the truth; the client's own counter a claim. */
	stats_set_u(row, PROTO_CLIENT_HELD, cs->slot_held[c->slot]);
	stats_set_u(row, PROTO_CLIENT_HELD_PEAK, atomic_load(&sl->held_peak));
	stats_set_u(row, PROTO_CLIENT_MIN_PAGES, atomic_load(&sl->min_pages));
	stats_set_u(row, PROTO_CLIENT_MAX_PAGES, atomic_load(&sl->max_pages));
	stats_set_u(row, PROTO_CLIENT_PAGES_GOT, atomic_load(&sl->pages_got));
	stats_set_u(row, PROTO_CLIENT_DENIED, atomic_load(&sl->denied));
	stats_set_u(row, PROTO_CLIENT_DEPLETIONS, atomic_load(&sl->depletions));
	stats_set_u(row, PROTO_CLIENT_FB_OVERFLOW, atomic_load(&sl->fb_overflow));
	stats_set_u(row, PROTO_CLIENT_FB_HEAD, atomic_load(&sl->fb_head));
	stats_set_u(row, PROTO_CLIENT_FB_SYNC, atomic_load(&sl->fb_sync));
	stats_set_u(row, PROTO_CLIENT_ATTACHED_USEC,
		    now_usec() - c->attached_usec);
	stats_set_u(row, PROTO_CLIENT_OBJECTS, atomic_load(&sl->objects));
}

static int cmp_held(const void *a, const void *b, void *arg)
{
	const struct census *cs = arg;
	const struct conn *x = *(const struct conn *const *)a;
	const struct conn *y = *(const struct conn *const *)b;
	uint32_t hx = cs->slot_held[x->slot], hy = cs->slot_held[y->slot];

	return hx < hy ? 1 : hx > hy ? -1 : x->slot - y->slot;
}

/* STATUS, CPUs and clients, as the command asks. */
static int put_report(struct conn *c, struct nl_msg *msg, uint8_t cmd)
{
	struct daemon *d = c->d;
	struct stats_row row;
	struct census cs;
	struct conn **list = NULL;
	size_t n = 0, limit;
	int r;

	r = census_take(&d->seg, &cs);
	if (r < 0)
		return r;
	if (cmd != PROTO_CMD_GET_CLIENTS) {
		fill_status(d, &cs, &row);
		r = stats_put(&stats_status, msg, PROTO_A_STATUS, &row);
	}
	for (uint32_t i = 0; r >= 0 && cmd == PROTO_CMD_GET_STATS &&
			     i < d->seg.ncpus;
	     i++) {
		fill_cpu(d, &cs, i, &row);
		r = stats_put(&stats_cpu, msg, PROTO_A_CPU, &row);
	}
	if (r >= 0 && d->n_attached) {
		list = calloc(d->n_attached, sizeof(*list));
		if (!list)
			r = -ENOMEM;
	}
	for (struct conn *k = d->conns; r >= 0 && k; k = k->next)
		if (k->slot >= 0 && n < d->n_attached)
			list[n++] = k;
	if (r >= 0 && n)
		qsort_r(list, n, sizeof(*list), cmp_held, &cs);
	limit = cmd == PROTO_CMD_GET_STATUS ? TOP_CONSUMERS : n;
	for (size_t i = 0; r >= 0 && i < n && i < limit; i++) {
		fill_client(list[i], &cs, &row);
		r = stats_put(&stats_client, msg, PROTO_A_CLIENT, &row);
	}
	free(list);
	census_release(&cs);
	return r;
}

/* --- requests ----------------------------------------------------------- */

static int on_kick(sd_event_source *src, int fd, uint32_t revents, void *data)
{
	struct conn *c = data;
	uint64_t v;

	if (read(fd, &v, sizeof(v)) == sizeof(v)) {
		c->d->stats.kicks += v;
		reserve_balance(c->d);
	}
	return 0;
}

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
	struct seg *s = &d->seg;
	struct nl_msg *msg;
	char raw[SEG_NAME_MAX], name[SEG_NAME_MAX];
	uint32_t req_min = 0, req_max = 0, min, max, slot;
	int fds[2], r;

	if (c->slot >= 0)
		return reply_error(c, m, -EALREADY,
				   "this connection is attached to slot %d already",
				   c->slot);
	if (!peer_may(&c->peer, PEER_ATTACH, d->attach_gid, d->admin_gid, d->uid))
		return reply_error(c, m, -EACCES,
				   "%s may not attach: not root and not in "
				   "group \"%s\" (access.attach_group)",
				   c->who, d->conf.access.attach_group);
	for (slot = 0; slot < s->nslots; slot++)
		if (atomic_load(&s->slot[slot].state) == SEG_SLOT_FREE)
			break;
	if (slot == s->nslots)
		return reply_error(c, m, -EUSERS,
				   "all %u client slots are in use "
				   "(limits.max_clients)",
				   s->nslots);
	if (m->tb[PROTO_A_NAME])
		snprintf(raw, sizeof(raw), "%s", nla_get_string(m->tb[PROTO_A_NAME]));
	else
		read_comm(c->peer.pid, raw, sizeof(raw));
	clean_name(raw, name, sizeof(name));
	if (!name[0])
		snprintf(name, sizeof(name), "pid%d", (int)c->peer.pid);
	if (m->tb[PROTO_A_MIN_PAGES])
		req_min = nla_get_u32(m->tb[PROTO_A_MIN_PAGES]);
	if (m->tb[PROTO_A_MAX_PAGES])
		req_max = nla_get_u32(m->tb[PROTO_A_MAX_PAGES]);
	reserve_slot_limits(d, name, req_min, req_max, &min, &max);

	c->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->kick_fd < 0)
		return reply_error(c, m, -errno, "eventfd: %s", strerror(errno));
	r = sd_event_add_io(d->event, &c->kick_src, c->kick_fd, EPOLLIN,
			    on_kick, c);
	if (r < 0) {
		close(c->kick_fd);
		c->kick_fd = -1;
		return reply_error(c, m, r, "cannot watch the kick fd: %s",
				   strerror(-r));
	}

	struct seg_slot *sl = &s->slot[slot];

	memcpy(sl->name, name, sizeof(sl->name));
	atomic_store(&sl->pid, (uint32_t)c->peer.pid);
	atomic_store(&sl->min_pages, min);
	atomic_store(&sl->max_pages, max);
	atomic_fetch_add(&sl->generation, 1);
	atomic_store(&sl->state, SEG_SLOT_ATTACHED);
	c->slot = (int)slot;
	c->attached_usec = now_usec();
	d->n_attached++;

	r = proto_new_reply(&msg, m, 0, "attached to slot %u", slot);
	if (r >= 0)
		r = proto_errno(nla_put_u32(msg, PROTO_A_SLOT, slot));
	if (r >= 0)
		r = proto_errno(nla_put_u32(msg, PROTO_A_MIN_PAGES, min));
	if (r >= 0)
		r = proto_errno(nla_put_u32(msg, PROTO_A_MAX_PAGES, max));
	if (r >= 0)
		r = proto_errno(nla_put_u64(msg, PROTO_A_GENERATION,
					    atomic_load(&s->hdr->generation)));
	if (r < 0) {
		conn_detach(c);
		return reply_error(c, m, r, "cannot build the reply: %s",
				   strerror(-r));
	}
	fds[0] = s->fd;
	fds[1] = c->kick_fd;
	log_info("%s attached as \"%s\" to slot %u (min %u, max %u pages)",
		 c->who, name, slot, min, max);
	daemon_notify_status(d);
	return send_reply(c, msg, fds, 2);
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

/*
 * A census now, with repair, and the report after it.  Lost pages need
 * two censuses to come back (census.h): the reply says how many wait.
 */
static int do_census(struct conn *c, const struct proto_msg *m)
{
	struct daemon *d = c->d;
	struct census cs;
	int returned = reserve_census(d, true), r;

	if (returned < 0)
		return reply_error(c, m, returned, "census failed: %s",
				   strerror(-returned));
	r = census_take(&d->seg, &cs);
	if (r < 0)
		return reply_error(c, m, r, "census failed: %s", strerror(-r));
	r = reply_error(c, m, 0,
			"%u pages: %u free, %u held, %u on no list, %u on two "
			"lists, %u bad; %d returned now",
			cs.npages, cs.free, cs.held, cs.lost, cs.duplicated,
			cs.bad, returned);
	census_release(&cs);
	return r;
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
		if (c->slot < 0)
			return reply_error(c, m, -ENOTCONN, "not attached");
		conn_detach(c);
		return reply_error(c, m, 0, "detached");
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
			log_errno(LOG_WARNING, len, "%s: unreadable message: %m%s",
				  c->who, c->slot >= 0 ? " (dropped)" : "; closing");
			if (c->slot >= 0 && len != -ENOTCONN)
				continue;
			conn_free(c);
			return 0;
		}
		r = proto_parse(rxbuf, (size_t)len, &m, why, sizeof(why));
		if (r < 0) {
			log_warning("%s: bad message: %s", c->who, why);
			if (header_of(rxbuf, (size_t)len, &m)) {
				m.cmd = PROTO_CMD_ERROR; /* any client parses it */
				reply_error(c, &m, r, "bad message: %s", why);
				continue;
			}
			if (c->slot >= 0)
				continue;
			conn_free(c);
			return 0;
		}
		r = do_request(c, &m);
		if (r == -EPIPE || r == -ECONNRESET) {
			conn_free(c);
			return 0;
		}
	}
	return 0;
}

static int on_listen(sd_event_source *src, int fd, uint32_t revents,
		     void *data)
{
	struct daemon *d = data;

	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct conn *c;
		int r;

		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warning("accept: %m");
			return 0;
		}
		if (d->n_conns >= d->seg.nslots + EXTRA_CONNECTIONS) {
			log_warning("too many connections (%u): refusing one",
				    d->n_conns);
			close(cfd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(cfd);
			continue;
		}
		*c = (struct conn){.d = d, .fd = cfd, .slot = -1, .kick_fd = -1};
		r = peer_get(cfd, &c->peer);
		if (r < 0) {
			log_errno(LOG_WARNING, r, "peer credentials: %m");
			close(cfd);
			free(c);
			continue;
		}
		peer_describe(&c->peer, c->who, sizeof(c->who));
		proto_socket_buffers(cfd);
		r = sd_event_add_io(d->event, &c->src, cfd, EPOLLIN, on_conn, c);
		if (r < 0) {
			log_errno(LOG_WARNING, r, "event source: %m");
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
	}
}

int server_listen(struct daemon *d, const char *socket_option)
{
	char why[256];
	int fd, r;

	rxbuf = malloc(PROTO_MSG_MAX);
	if (!rxbuf)
		return log_errno(LOG_ERR, -ENOMEM, "out of memory");
	r = listen_from_systemd(&fd);
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
		fd = listen_bind(d->socket_path, d->conf.access.socket_mode,
				 SOMAXCONN, why, sizeof(why));
		if (fd < 0)
			return log_errno(LOG_ERR, fd, "%s", why);
		d->listen_fd = fd;
		d->listen_owned = true;
	}
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
	if (d->listen_owned)
		unlink(d->socket_path);
	free(rxbuf);
	rxbuf = NULL;
}

void server_status_line(struct daemon *d, char *buf, size_t len)
{
	struct census cs;
	uint64_t depl = 0;

	for (uint32_t i = 0; i < d->seg.nslots; i++)
		if (atomic_load(&d->seg.slot[i].state) == SEG_SLOT_ATTACHED)
			depl += atomic_load(&d->seg.slot[i].depletions);
	if (census_take(&d->seg, &cs) < 0) {
		snprintf(buf, len, "%u clients", d->n_attached);
		return;
	}
	snprintf(buf, len, "%u/%u pages free, %u client%s, %llu depletions",
		 cs.free, d->seg.npages, d->n_attached,
		 d->n_attached == 1 ? "" : "s", (unsigned long long)depl);
	census_release(&cs);
}
