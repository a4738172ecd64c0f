// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * rcupoold end to end: the real daemon on a temporary socket, real client
 * processes borrowing chunks over it (lib/lend_daemon.c), and what the
 * daemon must survive.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <netlink/attr.h>
#include <cmocka.h>

#include "lend.h"
#include "proto.h"
#include "stats.h"
#include "testd.h"
#include "tmpdir.h"

/* 64 pages per CPU + 256: chunks of 16 pages (the automatic minimum). */
#define SMALL_RESERVE                                                          \
	"[reserve]\npages_per_cpu = 64\nglobal_pages = 256\n"                  \
	"[balance]\ninterval = 10ms\ncensus_interval = 100ms\n"
#define CP 16

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static uint64_t status(const struct testd *t, int attr)
{
	return testd_status_field(t->sock, attr);
}

static struct lender *lend(const struct testd *t, const char *name,
			   uint32_t min, uint32_t max)
{
	struct lender *l = NULL;
	char why[512];
	int r = lend_daemon_open(t->sock, name, min, max, &l, why, sizeof(why));

	if (r < 0)
		fail_msg("lend_daemon_open(%s): %s (%s)", name, strerror(-r),
			 why);
	return l;
}

/* Every chunk back, nothing lent: the reserve at its configured size. */
static void assert_reserve_whole(const struct testd *t, uint64_t total)
{
	if (!testd_wait_status(t->sock, PROTO_STATUS_PAGES_LENT, 0, 5000))
		fail_msg("pages_lent stays %llu",
			 (unsigned long long)status(t, PROTO_STATUS_PAGES_LENT));
	if (!testd_wait_status(t->sock, PROTO_STATUS_PAGES_TOTAL, total, 5000))
		fail_msg("pages_total stays %llu, configured %llu",
			 (unsigned long long)status(t, PROTO_STATUS_PAGES_TOTAL),
			 (unsigned long long)total);
	assert_int_equal(status(t, PROTO_STATUS_PAGES_FREE), total);
}

static const struct stats_row *client_row(const struct testd *t,
					  const char *name, struct stats_row *row)
{
	struct proto_msg m;
	struct nlattr *nla;
	char why[256];
	void *buf = NULL;
	const struct stats_row *found = NULL;

	assert_int_equal(testd_call(t->sock, PROTO_CMD_GET_CLIENTS, NULL, &m,
				    &buf, why, sizeof(why)),
			 0);
	proto_for_each(nla, &m, PROTO_A_CLIENT)
	{
		struct stats_row r;

		assert_int_equal(stats_parse(&stats_client, nla, &r), 0);
		if (!strcmp(r.s[PROTO_CLIENT_NAME], name)) {
			*row = r;
			row->s[PROTO_CLIENT_NAME] = NULL; /* points into buf */
			found = row;
		}
	}
	free(buf);
	return found;
}

static void test_attach_get_put(void **state)
{
	struct testd t;
	struct lender *l;
	struct lend_chunk ch[8];
	struct stats_row row;
	struct stat st;
	uint32_t got = 0;
	uint64_t total;

	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, NULL), 0);
	total = status(&t, PROTO_STATUS_PAGES_TOTAL);
	assert_int_equal(status(&t, PROTO_STATUS_CHUNK_PAGES), CP);
	assert_int_equal(total % CP, 0);
	l = lend(&t, "attach-test", 0, 0);
	/* The lease: its header checked by the library, limits in it. */
	assert_int_equal(l->chunk_pages, CP);
	assert_int_equal(l->page_size, 4096);
	assert_int_equal(l->lease->magic, LEASE_MAGIC);
	assert_int_equal(atomic_load(&l->lease->limits.max_pages), l->max_pages);
	assert_int_equal(l->max_pages % CP, 0);
	assert_true(l->fd >= 0);

	assert_int_equal(l->ops->get(l, 0, 3, ch, &got), 0);
	assert_int_equal(got, 3);
	for (uint32_t i = 0; i < got; i++) {
		assert_int_equal(fstat(ch[i].fd, &st), 0);
		assert_int_equal(st.st_size, CP * 4096);
		assert_int_equal(ch[i].pages, CP);
		/* Sealed: a client cannot grow or shrink what it is lent. */
		assert_int_equal(ftruncate(ch[i].fd, 0), -1);
		assert_int_equal(errno, EPERM);
		for (uint32_t j = 0; j < i; j++)
			assert_true(ch[i].id != ch[j].id);
	}
	assert_int_equal(status(&t, PROTO_STATUS_PAGES_LENT), 3 * CP);
	assert_int_equal(status(&t, PROTO_STATUS_PAGES_TOTAL), total);
	assert_int_equal(status(&t, PROTO_STATUS_PAGES_FREE), total - 3 * CP);
	assert_non_null(client_row(&t, "attach-test", &row));
	assert_int_equal(row.u[PROTO_CLIENT_PID], getpid());
	assert_int_equal(row.u[PROTO_CLIENT_LENT], 3 * CP);
	assert_int_equal(row.u[PROTO_CLIENT_DETACHED], 0);

	/* The client's counters, sanitized: held clamped to what it is lent. */
	atomic_store(&l->lease->counters.held, 1000000);
	atomic_store(&l->lease->counters.objects, 42);
	assert_non_null(client_row(&t, "attach-test", &row));
	assert_int_equal(row.u[PROTO_CLIENT_HELD], 3 * CP);
	assert_int_equal(row.u[PROTO_CLIENT_OBJECTS], 42);
	assert_int_equal(status(&t, PROTO_STATUS_PAGES_HELD), 3 * CP);

	/* One back: retired (never lent again) and replaced. */
	close(ch[0].fd);
	assert_int_equal(l->ops->put(l, &ch[0].id, 1), 0);
	assert_int_equal(status(&t, PROTO_STATUS_PAGES_LENT), 2 * CP);
	assert_int_equal(status(&t, PROTO_STATUS_CHUNKS_RETIRED), 1);
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_PAGES_TOTAL, total,
				      5000));
	/* Closing the connection is not an exit: still lent, detached. */
	l->ops->close(l);
	for (int i = 0; i < 100; i++) {
		assert_non_null(client_row(&t, "attach-test", &row));
		if (row.u[PROTO_CLIENT_DETACHED])
			break;
		sleep_ms(10);
	}
	assert_int_equal(row.u[PROTO_CLIENT_DETACHED], 1);
	assert_int_equal(row.u[PROTO_CLIENT_LENT], 2 * CP);
	assert_int_equal(status(&t, PROTO_STATUS_PAGES_LENT), 2 * CP);
	/* A client holding no chunk frees its slot when it closes. */
	assert_int_equal(status(&t, PROTO_STATUS_CLIENTS), 1);
	l = lend(&t, "empty-handed", 0, 0);
	assert_int_equal(status(&t, PROTO_STATUS_CLIENTS), 2);
	l->ops->close(l);
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_CLIENTS, 1, 5000));
	close(ch[1].fd);
	close(ch[2].fd);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

/* Fork a client running fn; it writes one byte on ready when set up. */
static pid_t child(void (*fn)(const char *sock, int ready, void *arg),
		   const char *sock, void *arg, int *ready_rd)
{
	int p[2];
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		fn(sock, p[1], arg);
		_exit(0);
	}
	close(p[1]);
	*ready_rd = p[0];
	return pid;
}

static int wait_ready(int fd)
{
	char c;
	ssize_t n = read(fd, &c, 1);

	close(fd);
	return n == 1 ? c : -1;
}

/* Take chunks up to the cap, asking for more than allowed, and report. */
static void greedy(const char *sock, int ready, void *arg)
{
	struct lender *l;
	struct lend_chunk ch[8];
	uint32_t got, total = 0;
	char why[256], c;
	int r = 0;

	if (lend_daemon_open(sock, "greedy", 0, (uint32_t)(uintptr_t)arg, &l,
			     why, sizeof(why)) < 0)
		_exit(1);
	for (int i = 0; i < 20; i++) {
		r = l->ops->get(l, -1, 8, ch, &got);
		if (r < 0)
			break;
		for (uint32_t k = 0; k < got; k++) {
			void *p = mmap(NULL, (size_t)CP * 4096,
				       PROT_READ | PROT_WRITE, MAP_SHARED,
				       ch[k].fd, 0);

			if (p == MAP_FAILED)
				_exit(2);
			memset(p, 0xab, (size_t)CP * 4096);
			close(ch[k].fd);
		}
		total += got;
	}
	c = (char)(r == -EDQUOT ? total : 100 + total);
	if (write(ready, &c, 1) != 1)
		_exit(3);
	pause();
}

static void test_max_is_enforced(void **state)
{
	struct testd t;
	uint64_t total;
	int rd, got;
	pid_t pid;

	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, NULL), 0);
	total = status(&t, PROTO_STATUS_PAGES_TOTAL);
	/* 3 chunks and 5 pages: max rounds down to 3 whole chunks. */
	pid = child(greedy, t.sock, (void *)(uintptr_t)(3 * CP + 5), &rd);
	got = wait_ready(rd);
	assert_int_equal(got, 3);
	assert_int_equal(status(&t, PROTO_STATUS_PAGES_LENT), 3 * CP);
	assert_true(status(&t, PROTO_STATUS_DENIED) >= 1);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* Its process exited: retired, replaced. */
	assert_reserve_whole(&t, total);
	assert_int_equal(status(&t, PROTO_STATUS_CHUNKS_RETIRED), 3);
	assert_int_equal(status(&t, PROTO_STATUS_PAGES_RECLAIMED), 3 * CP);
	assert_int_equal(status(&t, PROTO_STATUS_CLIENTS), 0);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

static void test_bad_ids(void **state)
{
	struct testd t;
	struct lender *a, *b;
	struct lend_chunk ca[2], cb[1];
	uint32_t got;
	struct stats_row row;
	uint64_t ids[3];

	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, NULL), 0);
	a = lend(&t, "alice", 0, 0);
	b = lend(&t, "bob", 0, 0);
	assert_int_equal(a->ops->get(a, -1, 2, ca, &got), 0);
	assert_int_equal(got, 2);
	assert_int_equal(b->ops->get(b, -1, 1, cb, &got), 0);
	assert_int_equal(got, 1);
	/* Bob gives back one of Alice's, an unknown id, and his own. */
	ids[0] = ca[0].id;
	ids[1] = 0xdeadbeefULL;
	ids[2] = cb[0].id;
	assert_int_equal(b->ops->put(b, ids, 3), -EINVAL);
	assert_true(testd_log_has(&t, "ids not lent to it"));
	/* Alice's chunk is still hers; Bob's own came back. */
	assert_non_null(client_row(&t, "alice", &row));
	assert_int_equal(row.u[PROTO_CLIENT_LENT], 2 * CP);
	assert_non_null(client_row(&t, "bob", &row));
	assert_int_equal(row.u[PROTO_CLIENT_LENT], 0);
	assert_int_equal(row.u[PROTO_CLIENT_BAD], 2);
	/* A duplicate: taken once, bad once. */
	ids[0] = ids[1] = ca[1].id;
	assert_int_equal(a->ops->put(a, ids, 2), -EINVAL);
	assert_non_null(client_row(&t, "alice", &row));
	assert_int_equal(row.u[PROTO_CLIENT_LENT], CP);
	assert_int_equal(row.u[PROTO_CLIENT_BAD], 1);
	assert_int_equal(status(&t, PROTO_STATUS_BAD), 3);
	for (int i = 0; i < 2; i++)
		close(ca[i].fd);
	close(cb[0].fd);
	a->ops->close(a);
	b->ops->close(b);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

static void test_min_takes_protect(void **state)
{
	struct testd t;
	struct lender *a, *b;
	struct lend_chunk ch[8];
	uint32_t got, total = 0;
	uint64_t cpus;
	int r;

	/* No global pool; every CPU pool is 4 chunks, 2 of them protected. */
	assert_int_equal(testd_start(&t,
				     "[reserve]\npages_per_cpu = 64\n"
				     "global_pages = 0\n"
				     "[limits]\nclient_min_pages = 0\n"
				     "client_max_pages = 100%\n"
				     "protect_pages = 32\n"
				     "[client needy]\nmin_pages = 10\n",
				     NULL, NULL),
			 0);
	cpus = status(&t, PROTO_STATUS_CPUS);
	a = lend(&t, "plain", 0, 0);
	while ((r = a->ops->get(a, 0, 8, ch, &got)) == 0) {
		total += got;
		for (uint32_t i = 0; i < got; i++)
			close(ch[i].fd);
	}
	/* Everything but the protect floors. */
	assert_int_equal(r, -ENOSPC);
	assert_int_equal(total, 2 * cpus);
	assert_true(status(&t, PROTO_STATUS_DEPLETIONS) >= 1);
	/* A client under its min (10 pages: rounds up to 1 chunk) gets one
	 * from the floor, and only that one. */
	b = lend(&t, "needy", 0, 0);
	assert_int_equal(b->min_pages, CP);
	assert_int_equal(b->ops->get(b, 0, 4, ch, &got), 0);
	assert_int_equal(got, 1);
	close(ch[0].fd);
	assert_int_equal(b->ops->get(b, 0, 1, ch, &got), -ENOSPC);
	a->ops->close(a);
	b->ops->close(b);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

static void test_client_section(void **state)
{
	struct testd t;
	struct lender *a, *b;
	struct proto_msg m;
	char why[512];
	void *buf = NULL;

	assert_int_equal(testd_start(&t, SMALL_RESERVE
				     "[client special]\nmin_pages = 3\n"
				     "max_pages = 40\n",
				     NULL, NULL),
			 0);
	/* [client NAME] limits apply to a client attaching under that name:
	 * min rounds up, max down, to whole chunks. */
	a = lend(&t, "special", 0, 0);
	assert_int_equal(a->min_pages, CP);
	assert_int_equal(a->max_pages, 2 * CP);
	assert_int_equal(atomic_load(&a->lease->limits.max_pages), 2 * CP);
	/* A client may ask for less than the config allows, never more. */
	b = lend(&t, "special", 1, 100);
	assert_int_equal(b->min_pages, CP);
	assert_int_equal(b->max_pages, 2 * CP);
	b->ops->close(b);
	b = lend(&t, "special", 0, 17);
	assert_int_equal(b->max_pages, CP);
	/* What it asked for survives a change of the config. */
	assert_int_equal(testd_call(t.sock, PROTO_CMD_SET_LIMITS,
				    (const char *[]){"limits.overflow_pages=7",
						     NULL},
				    &m, &buf, why, sizeof(why)),
			 0);
	free(buf);
	assert_int_equal(atomic_load(&b->lease->limits.max_pages), CP);
	assert_int_equal(atomic_load(&b->lease->limits.overflow_pages), 7);
	b->ops->close(b);
	a->ops->close(a);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

static void test_set_lowers_max_recalls(void **state)
{
	struct testd t;
	struct lender *l;
	struct lend_chunk ch[8];
	struct proto_msg m;
	struct pollfd pfd;
	char why[512];
	void *buf = NULL;
	uint32_t got;
	uint64_t ids[2];
	const char *set[] = {"limits.client_max_pages=40",
			     "balance.interval=20ms", NULL};
	const char *bad[] = {"reserve.pages_per_cpu=10", NULL};
	const char *worse[] = {"balance.low=300%", NULL};

	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, NULL), 0);
	l = lend(&t, "tuned", 0, 0);
	assert_int_equal(l->ops->get(l, -1, 4, ch, &got), 0);
	assert_int_equal(got, 4);
	assert_int_equal(atomic_load(&l->lease->limits.return_chunks), 0);
	assert_int_equal(testd_call(t.sock, PROTO_CMD_SET_LIMITS, set, &m, &buf,
				    why, sizeof(why)),
			 0);
	free(buf);
	/* In the lease at once; 2 chunks over the new max: asked back. */
	assert_int_equal(atomic_load(&l->lease->limits.max_pages), 2 * CP);
	assert_int_equal(atomic_load(&l->lease->limits.return_chunks), 2);
	pfd = (struct pollfd){.fd = l->fd, .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(l->ops->event(l), 0);
	assert_true(testd_log_has(&t, "asking client tuned"));
	/* Over the max: nothing more lent. */
	assert_int_equal(l->ops->get(l, -1, 1, ch + 4, &got), -EDQUOT);
	ids[0] = ch[0].id;
	ids[1] = ch[1].id;
	assert_int_equal(l->ops->put(l, ids, 2), 0);
	assert_int_equal(atomic_load(&l->lease->limits.return_chunks), 0);

	assert_int_equal(testd_call(t.sock, PROTO_CMD_SET_LIMITS, bad, &m, &buf,
				    why, sizeof(why)),
			 -EINVAL);
	free(buf);
	assert_non_null(strstr(why, "reserve.pages_per_cpu cannot change"));
	assert_int_equal(testd_call(t.sock, PROTO_CMD_SET_LIMITS, worse, &m,
				    &buf, why, sizeof(why)),
			 -EINVAL);
	free(buf);
	assert_non_null(strstr(why, "rcupoolctl set: [balance] low"));
	assert_int_equal(atomic_load(&l->lease->limits.max_pages), 2 * CP);
	for (int i = 0; i < 4; i++)
		close(ch[i].fd);
	l->ops->close(l);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

static void test_census_exact(void **state)
{
	struct testd t;
	struct lender *l;
	struct lend_chunk ch[8];
	struct proto_msg m;
	char why[512], want[128];
	void *buf = NULL;
	uint32_t got;
	uint64_t total;

	assert_int_equal(testd_start(&t, SMALL_RESERVE, (const char *[]){
		"-o", "balance.census_interval=0", NULL}, NULL),
			 0);
	total = status(&t, PROTO_STATUS_PAGES_TOTAL);
	l = lend(&t, "counted", 0, 0);
	assert_int_equal(l->ops->get(l, -1, 5, ch, &got), 0);
	assert_int_equal(got, 5);
	assert_int_equal(testd_call(t.sock, PROTO_CMD_CENSUS, NULL, &m, &buf,
				    why, sizeof(why)),
			 0);
	snprintf(want, sizeof(want), "%llu pages: %llu free in %llu chunks, "
		 "%u lent in 5 chunks",
		 (unsigned long long)total,
		 (unsigned long long)(total - 5 * CP),
		 (unsigned long long)(total / CP - 5), 5 * CP);
	if (!strstr(m.message, want))
		fail_msg("census: %s (wanted %s)", m.message, want);
	free(buf);
	assert_int_equal(status(&t, PROTO_STATUS_CENSUS_RUNS), 1);
	assert_int_equal(status(&t, PROTO_STATUS_BAD_INDEX), 0);
	for (int i = 0; i < 5; i++)
		close(ch[i].fd);
	l->ops->close(l);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

/* Send raw bytes on a fresh connection; what comes back, if anything. */
static int send_raw(const char *sock, const void *bytes, size_t len,
		    struct proto_msg *reply, void *buf, char *why)
{
	int fd = proto_connect(sock), n, r = -ECONNRESET;
	struct pollfd pfd;

	assert_true(fd >= 0);
	if (send(fd, bytes, len, MSG_NOSIGNAL) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	pfd = (struct pollfd){.fd = fd, .events = POLLIN};
	if (poll(&pfd, 1, 5000) == 1) {
		n = proto_recv(fd, buf, PROTO_MSG_MAX, NULL, NULL);
		r = n < 0 ? n : proto_parse(buf, (size_t)n, reply, why, 256);
		if (r == 0)
			r = reply->error;
	} else {
		r = -ETIMEDOUT;
	}
	close(fd);
	return r;
}

static size_t good_header(void *buf, uint8_t cmd, size_t payload)
{
	struct nlmsghdr *nlh = buf;
	struct genlmsghdr *g = (void *)((char *)buf + NLMSG_HDRLEN);

	memset(buf, 0, NLMSG_HDRLEN + GENL_HDRLEN);
	nlh->nlmsg_len = NLMSG_HDRLEN + GENL_HDRLEN + payload;
	nlh->nlmsg_type = PROTO_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = 77;
	g->cmd = cmd;
	g->version = PROTO_VERSION;
	return nlh->nlmsg_len;
}

static void test_malformed_messages(void **state)
{
	struct testd t;
	struct proto_msg m;
	char why[256];
	uint32_t *msg = calloc(1, 1 << 20);
	void *buf = malloc(PROTO_MSG_MAX);
	size_t len;
	int r;

	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, NULL), 0);

	/* Truncated header: no reply, connection closed. */
	good_header(msg, PROTO_CMD_GET_STATUS, 0);
	r = send_raw(t.sock, msg, 10, &m, buf, why);
	assert_int_equal(r, -ECONNRESET);

	/* An attribute whose nla_len overruns the message: an error reply. */
	len = good_header(msg, PROTO_CMD_ATTACH, 8);
	struct nlattr *nla = (void *)((char *)msg + NLMSG_HDRLEN + GENL_HDRLEN);

	nla->nla_type = PROTO_A_MIN_PAGES;
	nla->nla_len = 200;
	r = send_raw(t.sock, msg, len, &m, buf, why);
	assert_int_equal(r, -EBADMSG);
	assert_int_equal(m.seq, 77);
	assert_non_null(strstr(m.message, "bad message"));

	/* Wrong attribute length: MIN_PAGES of 2 bytes. */
	nla->nla_len = NLA_HDRLEN + 2;
	len = good_header(msg, PROTO_CMD_ATTACH, NLA_ALIGN(nla->nla_len));
	r = send_raw(t.sock, msg, len, &m, buf, why);
	assert_int_equal(r, -EBADMSG);
	assert_non_null(strstr(m.message, "MIN_PAGES"));

	/* Wrong attribute type: a string where a u32 goes, as NAME of 4 bytes
	 * with no NUL. */
	nla->nla_type = PROTO_A_NAME;
	nla->nla_len = NLA_HDRLEN + 4;
	memcpy((char *)nla + NLA_HDRLEN, "abcd", 4);
	len = good_header(msg, PROTO_CMD_ATTACH, NLA_ALIGN(nla->nla_len));
	r = send_raw(t.sock, msg, len, &m, buf, why);
	assert_true(r == -EBADMSG || r == -EINVAL);

	/* Unknown commands (0, 80, 200) and ERROR sent as a request: answered
	 * with a PROTO_CMD_ERROR reply any client parses, with the seq and
	 * the daemon's message. */
	static const uint8_t unknown[] = {0, 80, 200, PROTO_CMD_ERROR};
	for (size_t i = 0; i < sizeof(unknown); i++) {
		len = good_header(msg, unknown[i], 0);
		r = send_raw(t.sock, msg, len, &m, buf, why);
		assert_int_equal(r, -EOPNOTSUPP);
		assert_int_equal(m.cmd, PROTO_CMD_ERROR);
		assert_int_equal(m.seq, 77);
		assert_non_null(strstr(m.message, "bad message"));
	}
	/* A malformed request too (the MIN_PAGES case above): ERROR. */
	nla->nla_type = PROTO_A_MIN_PAGES;
	nla->nla_len = NLA_HDRLEN + 2;
	len = good_header(msg, PROTO_CMD_ATTACH, NLA_ALIGN(nla->nla_len));
	r = send_raw(t.sock, msg, len, &m, buf, why);
	assert_int_equal(r, -EBADMSG);
	assert_int_equal(m.cmd, PROTO_CMD_ERROR);

	/* 1 MiB: too big to receive; connection closed, nothing else. */
	len = good_header(msg, PROTO_CMD_GET_STATUS, (1 << 20) - 20);
	r = send_raw(t.sock, msg, 1 << 20, &m, buf, why);
	assert_true(r == -ECONNRESET || r == -EMSGSIZE || r == -ENOBUFS);

	/* Garbage. */
	for (int i = 0; i < 64; i++)
		((uint32_t *)msg)[i] = 0xdeadbeef * (uint32_t)(i + 1);
	r = send_raw(t.sock, msg, 256, &m, buf, why);
	assert_int_equal(r, -ECONNRESET);

	/* A SET_LIMITS with no SETTING. */
	len = good_header(msg, PROTO_CMD_SET_LIMITS, 0);
	r = send_raw(t.sock, msg, len, &m, buf, why);
	assert_true(r < 0);

	/* Still serving the next client. */
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_CLIENTS), 0);
	assert_true(testd_status_field(t.sock, PROTO_STATUS_PAGES_TOTAL) > 0);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
	free(msg);
	free(buf);
}

static int as_nobody(const char *sock, uint8_t cmd, const char *const *settings,
		     char *message, size_t len)
{
	int p[2], status, r;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct proto_msg m;
		void *buf = NULL;
		char msg[512] = "";

		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 ||
		    setuid(65534) < 0)
			_exit(100);
		r = testd_call(sock, cmd, settings, &m, &buf, msg, sizeof(msg));
		if (write(p[1], msg, strlen(msg) + 1) < 0)
			_exit(101);
		_exit(r < 0 ? -r : 0);
	}
	close(p[1]);
	ssize_t n = read(p[0], message, len - 1);

	message[n > 0 ? n : 0] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_permissions(void **state)
{
	struct testd t;
	const char *set[] = {"limits.client_max_pages=10", NULL};
	char msg[512];

	if (geteuid() != 0)
		skip();
	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, NULL), 0);
	/* The socket is 0666 by default so that anyone may read. */
	assert_int_equal(chmod(t.dir, 0755), 0);
	assert_int_equal(as_nobody(t.sock, PROTO_CMD_GET_STATUS, NULL, msg,
				   sizeof(msg)),
			 0);
	assert_int_equal(as_nobody(t.sock, PROTO_CMD_SET_LIMITS, set, msg,
				   sizeof(msg)),
			 EPERM);
	assert_non_null(strstr(msg, "uid 65534"));
	assert_non_null(strstr(msg, "may not SET_LIMITS"));
	assert_int_equal(as_nobody(t.sock, PROTO_CMD_RESET_STATS, NULL, msg,
				   sizeof(msg)),
			 EPERM);
	assert_int_equal(as_nobody(t.sock, PROTO_CMD_RELOAD, NULL, msg,
				   sizeof(msg)),
			 EPERM);
	assert_int_equal(as_nobody(t.sock, PROTO_CMD_ATTACH, NULL, msg,
				   sizeof(msg)),
			 EACCES);
	assert_non_null(strstr(msg, "may not attach"));
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

static const char *limit_value(const struct proto_msg *m, const char *want)
{
	struct nlattr *nla;

	proto_for_each(nla, m, PROTO_A_SETTING)
	{
		const char *k, *v;

		if (proto_setting_get(nla, &k, &v) == 0 && !strcmp(k, want))
			return v;
	}
	return NULL;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_sighup_reload(void **state)
{
	struct testd t;
	struct proto_msg m;
	char why[512];
	void *buf = NULL;
	const char *v;

	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, NULL), 0);
	write_file(t.conf, SMALL_RESERVE "[limits]\nclient_min_pages = 7\n");
	assert_int_equal(kill(t.pid, SIGHUP), 0);
	for (int i = 0; i < 200 && !testd_log_has(&t, "reloaded"); i++)
		sleep_ms(10);
	assert_int_equal(testd_call(t.sock, PROTO_CMD_GET_LIMITS, NULL, &m, &buf,
				    why, sizeof(why)),
			 0);
	v = limit_value(&m, "limits.client_min_pages");
	assert_non_null(v);
	assert_string_equal(v, "7");
	free(buf);

	/* A broken file: the old configuration stays, and the log says why. */
	write_file(t.conf, SMALL_RESERVE "[limits]\nclient_min_pages = 9\n"
					 "bogus_key = 1\n");
	assert_int_equal(kill(t.pid, SIGHUP), 0);
	for (int i = 0; i < 200 && !testd_log_has(&t, "reload failed"); i++)
		sleep_ms(10);
	assert_true(testd_log_has(&t, "keeping the running configuration"));
	assert_true(testd_log_has(&t, "rcupoold.conf:9: [limits] bogus_key"));
	assert_int_equal(testd_call(t.sock, PROTO_CMD_GET_LIMITS, NULL, &m, &buf,
				    why, sizeof(why)),
			 0);
	assert_string_equal(limit_value(&m, "limits.client_min_pages"), "7");
	free(buf);
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_RELOADS), 1);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

/* A NOTIFY_SOCKET listener: what the daemon tells systemd. */
static void test_sd_notify(void **state)
{
	struct testd t;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[80], env[300], got[8192] = "", buf[1024];
	const char *envs[] = {env, NULL};
	int fd;
	uint64_t t0;

	assert_int_equal(tmpdir_make(dir, sizeof(dir)), 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", dir);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", sa.sun_path);

	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, envs), 0);
	kill(t.pid, SIGHUP);
	t0 = now_ms();
	while (now_ms() - t0 < 3000 && !strstr(got, "RELOADING=1\nMONOTONIC") ) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

		if (n > 0) {
			buf[n] = '\0';
			strncat(got, buf, sizeof(got) - strlen(got) - 2);
			strcat(got, "|");
		} else {
			sleep_ms(10);
		}
	}
	/* The READY after the reload follows quickly. */
	sleep_ms(200);
	for (ssize_t n; (n = recv(fd, buf, sizeof(buf) - 1, 0)) > 0;) {
		buf[n] = '\0';
		strncat(got, buf, sizeof(got) - strlen(got) - 2);
		strcat(got, "|");
	}
	print_message("# notify: %.300s\n", got);
	assert_non_null(strstr(got, "READY=1"));
	assert_non_null(strstr(got, "STATUS="));
	assert_non_null(strstr(got, "pages free"));
	assert_non_null(strstr(got, "RELOADING=1\nMONOTONIC_USEC="));
	assert_non_null(strstr(strstr(got, "RELOADING=1"), "READY=1\nMONOTONIC_USEC="));
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
	close(fd);
	tmpdir_remove(dir);
}

static void test_socket_activation(void **state)
{
	char dir[256], sock[300], prog[PATH_MAX], conf[300];
	pid_t pid;
	int status;
	uint64_t total = UINT64_MAX;

	if (access("/usr/bin/systemd-socket-activate", X_OK) < 0)
		skip();
	assert_int_equal(tmpdir_make(dir, sizeof(dir)), 0);
	snprintf(sock, sizeof(sock), "%s/activated.sock", dir);
	snprintf(conf, sizeof(conf), "%s/rcupoold.conf", dir);
	write_file(conf, SMALL_RESERVE);
	testd_program("rcupoold", prog, sizeof(prog));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDERR_FILENO);
		execl("/usr/bin/systemd-socket-activate",
		      "systemd-socket-activate", "--seqpacket", "-l", sock, prog,
		      "--config", conf, (char *)NULL);
		_exit(127);
	}
	/* The listener is systemd-socket-activate's; the daemon starts on
	 * the first connection and answers it. */
	for (int i = 0; i < 500 && total == UINT64_MAX; i++) {
		total = testd_status_field(sock, PROTO_STATUS_PAGES_TOTAL);
		if (total == UINT64_MAX)
			sleep_ms(10);
	}
	assert_int_equal(total, 64 * sysconf(_SC_NPROCESSORS_CONF) + 256);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	tmpdir_remove(dir);
}

static void test_second_instance_refused(void **state)
{
	struct testd t;
	char prog[PATH_MAX], cmd[PATH_MAX * 3];

	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, NULL), 0);
	snprintf(cmd, sizeof(cmd), "%s --config %s --socket %s 2>%s/second",
		 testd_program("rcupoold", prog, sizeof(prog)), t.conf, t.sock,
		 t.dir);
	assert_int_equal(WEXITSTATUS(system(cmd)), 1);
	snprintf(cmd, sizeof(cmd),
		 "grep -q 'another rcupoold is already listening' %s/second",
		 t.dir);
	assert_int_equal(system(cmd), 0);
	/* Found before the reserve was allocated (and locked). */
	snprintf(cmd, sizeof(cmd), "grep -q 'reserve:' %s/second", t.dir);
	assert_int_not_equal(system(cmd), 0);
	/* The first is unharmed. */
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_CLIENTS), 0);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attach_get_put),
		cmocka_unit_test(test_max_is_enforced),
		cmocka_unit_test(test_bad_ids),
		cmocka_unit_test(test_min_takes_protect),
		cmocka_unit_test(test_client_section),
		cmocka_unit_test(test_set_lowers_max_recalls),
		cmocka_unit_test(test_census_exact),
		cmocka_unit_test(test_malformed_messages),
		cmocka_unit_test(test_permissions),
		cmocka_unit_test(test_sighup_reload),
		cmocka_unit_test(test_sd_notify),
		cmocka_unit_test(test_socket_activation),
		cmocka_unit_test(test_second_instance_refused),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
