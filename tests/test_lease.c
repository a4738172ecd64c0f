// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The trust model end to end (DESIGN.md sections 3 and 5): real client
 * processes that misbehave against the real daemon.  A chunk is a single
 * lease (a client that keeps writing into chunks it gave back never
 * reaches another client); a closed connection is not an exit (pidfd);
 * scribbling on the lease memfd harms only the scribbler; idle and
 * flooding peers cost a bounded amount and a bounded log.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <cmocka.h>

#include "lend.h"
#include "proto.h"
#include "stats.h"
#include "testd.h"

#define RESERVE                                                                \
	"[reserve]\npages_per_cpu = 64\nglobal_pages = 256\n"                  \
	"[balance]\ninterval = 10ms\ncensus_interval = 50ms\n"                 \
	"[limits]\nclient_max_pages = 100%\nprotect_pages = 0\n"
#define CP	    16
#define CHUNK_BYTES ((size_t)CP * 4096)
#define MAX_HELD    64

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t status(const struct testd *t, int attr)
{
	return testd_status_field(t->sock, attr);
}

/* What a child tells the parent: the inodes of what it was lent. */
struct report {
	uint32_t n;
	uint64_t ino[MAX_HELD];
	int err;
};

static void send_report(int fd, const struct report *r)
{
	if (write(fd, r, sizeof(*r)) != (ssize_t)sizeof(*r))
		_exit(90);
}

static void recv_report(int fd, struct report *r)
{
	ssize_t n = read(fd, r, sizeof(*r));

	if (n != (ssize_t)sizeof(*r))
		fail_msg("child report: %zd bytes", n);
}

static void wait_byte(int fd)
{
	char c;

	if (read(fd, &c, 1) != 1)
		_exit(91);
}

static void *map_chunk(int fd)
{
	void *p = mmap(NULL, CHUNK_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
		       fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Take chunks (up to want) as this process: inodes in r, maps in maps. */
static int take(struct lender *l, uint32_t want, struct report *r,
		void **maps, uint64_t *ids)
{
	struct lend_chunk ch[LEND_GET_MAX];
	struct stat st;
	uint32_t got;
	int e = 0;

	while (r->n < want) {
		uint32_t ask = want - r->n < LEND_GET_MAX ? want - r->n
							  : LEND_GET_MAX;

		e = l->ops->get(l, -1, ask, ch, &got);
		if (e < 0)
			break;
		for (uint32_t i = 0; i < got; i++) {
			if (fstat(ch[i].fd, &st) < 0)
				return -errno;
			r->ino[r->n] = st.st_ino;
			if (maps)
				maps[r->n] = map_chunk(ch[i].fd);
			if (ids)
				ids[r->n] = ch[i].id;
			close(ch[i].fd);
			r->n++;
		}
	}
	r->err = e;
	return e;
}

/*
 * The cheat: take 12 chunks, fork a child that keeps the mappings and
 * writes into them forever, give every chunk back (one at a time, faster
 * than the return rate), and keep writing itself.
 */
static void cheat(const char *sock, int out, int in)
{
	struct lender *l;
	struct report r = {0};
	void *maps[MAX_HELD];
	uint64_t ids[MAX_HELD];
	char why[256];
	pid_t writer;

	if (lend_daemon_open(sock, "cheat", 0, 0, &l, why, sizeof(why)) < 0)
		_exit(1);
	take(l, 12, &r, maps, ids);
	if (r.n != 12)
		_exit(2);
	writer = fork();
	if (writer == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			for (uint32_t i = 0; i < r.n; i++)
				memset(maps[i], 0xaa, CHUNK_BYTES);
	}
	for (uint32_t i = 0; i < r.n; i++)
		if (l->ops->put(l, &ids[i], 1) < 0)
			_exit(3);
	/* Twice: bad ids, never followed. */
	if (l->ops->put(l, ids, 2) != -EINVAL)
		_exit(4);
	send_report(out, &r);
	for (int k = 0; k < 200; k++)
		for (uint32_t i = 0; i < r.n; i++)
			memset(maps[i], 0xbb, CHUNK_BYTES);
	wait_byte(in);
	kill(writer, SIGKILL);
	waitpid(writer, NULL, 0);
	_exit(0);
}

static bool pristine(const void *p)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < CHUNK_BYTES / 8; i++)
		if (w[i])
			return false;
	return true;
}

static void test_single_lease(void **state)
{
	struct testd t;
	struct lender *l;
	struct report cheat_r, mine = {0};
	void *maps[MAX_HELD];
	char why[256];
	int to[2], from[2];
	uint64_t total, t0;
	pid_t pid;

	assert_int_equal(testd_start(&t, RESERVE "return_rate = 4\n", NULL,
				     NULL),
			 0);
	total = status(&t, PROTO_STATUS_PAGES_TOTAL);
	assert_int_equal(pipe(to), 0);
	assert_int_equal(pipe(from), 0);
	t0 = now_ms();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(to[1]);
		close(from[0]);
		cheat(t.sock, from[1], to[0]);
	}
	close(to[0]);
	close(from[1]);
	recv_report(from[0], &cheat_r);
	assert_int_equal(cheat_r.n, 12);
	/* 12 chunks and 2 bad ids at 4 a second, a burst of 4: slowed. */
	assert_true(now_ms() - t0 >= 1000);
	assert_true(testd_log_has(&t, "client cheat (pid"));
	assert_true(testd_log_has(&t, "faster than limits.return_rate"));
	/* Replaced while the cheat still writes into what it gave back. */
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_PAGES_TOTAL, total,
				      5000));
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_PAGES_FREE, total,
				      5000));
	assert_int_equal(status(&t, PROTO_STATUS_CHUNKS_RETIRED), 12);

	/* Another client takes the whole reserve: never one of the cheat's
	 * chunks, and every page as the daemon made it. */
	assert_int_equal(lend_daemon_open(t.sock, "honest", 0, 0, &l, why,
					  sizeof(why)),
			 0);
	take(l, MAX_HELD, &mine, maps, NULL);
	/* (max is 100%: the reserve runs out as the max is reached) */
	assert_true(mine.err == -ENOSPC || mine.err == -EDQUOT);
	assert_int_equal(mine.n, total / CP);
	for (uint32_t i = 0; i < mine.n; i++) {
		assert_non_null(maps[i]);
		for (uint32_t k = 0; k < cheat_r.n; k++)
			assert_true(mine.ino[i] != cheat_r.ino[k]);
		sleep_ms(1); /* give the writers time to show up */
		assert_true(pristine(maps[i]));
		munmap(maps[i], CHUNK_BYTES);
	}
	assert_int_equal(write(to[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	l->ops->close(l);
	close(to[1]);
	close(from[0]);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

/* closefrom: the connection goes, the process and its chunks stay. */
static void closer(const char *sock, int out, int in)
{
	struct lender *l;
	struct report r = {0};
	void *maps[MAX_HELD];
	char why[256];

	if (lend_daemon_open(sock, "closer", 0, 0, &l, why, sizeof(why)) < 0)
		_exit(1);
	take(l, 4, &r, maps, NULL);
	if (r.n != 4)
		_exit(2);
	close(l->fd); /* as closefrom(3) would */
	send_report(out, &r);
	for (uint32_t i = 0; i < r.n; i++)
		memset(maps[i], 0xcc, CHUNK_BYTES);
	wait_byte(in);
	_exit(0);
}

static void test_closefrom_keeps_chunks(void **state)
{
	struct testd t;
	struct lender *l;
	struct report closer_r, mine = {0};
	uint64_t total;
	int to[2], from[2];
	char why[256];
	pid_t pid;

	assert_int_equal(testd_start(&t, RESERVE, NULL, NULL), 0);
	total = status(&t, PROTO_STATUS_PAGES_TOTAL);
	assert_int_equal(pipe(to), 0);
	assert_int_equal(pipe(from), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(to[1]);
		close(from[0]);
		closer(t.sock, from[1], to[0]);
	}
	close(to[0]);
	close(from[1]);
	recv_report(from[0], &closer_r);
	assert_int_equal(closer_r.n, 4);
	/* EOF alone: still lent to it, counted against the reserve. */
	sleep_ms(200);
	assert_int_equal(status(&t, PROTO_STATUS_PAGES_LENT), 4 * CP);
	assert_int_equal(status(&t, PROTO_STATUS_CLIENTS), 1);
	assert_int_equal(lend_daemon_open(t.sock, "other", 0, 0, &l, why,
					  sizeof(why)),
			 0);
	take(l, MAX_HELD, &mine, NULL, NULL);
	assert_int_equal(mine.err, -ENOSPC);
	assert_int_equal(mine.n, total / CP - 4);
	for (uint32_t i = 0; i < mine.n; i++)
		for (uint32_t k = 0; k < closer_r.n; k++)
			assert_true(mine.ino[i] != closer_r.ino[k]);
	l->ops->close(l); /* ours stay lent to us: we live on */
	/* The closer exits: its chunks are retired, the slot freed. */
	assert_int_equal(write(to[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_PAGES_LENT,
				      (total / CP - 4) * CP, 5000));
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_PAGES_TOTAL, total,
				      5000));
	assert_int_equal(status(&t, PROTO_STATUS_CHUNKS_RETIRED), 4);
	assert_int_equal(status(&t, PROTO_STATUS_CLIENTS), 1);
	close(to[1]);
	close(from[0]);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

static void scribble(void *p, size_t len, unsigned int seed)
{
	uint8_t *b = p;

	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245 + 12345;
		b[i] = (uint8_t)(seed >> 16);
	}
}

static void scribbler(const char *sock, int out, int in)
{
	struct lender *l;
	struct report r = {0};
	void *maps[MAX_HELD];
	char why[256];

	if (lend_daemon_open(sock, "scribbler", 0, 0, &l, why, sizeof(why)) < 0)
		_exit(1);
	take(l, 4, &r, maps, NULL);
	if (r.n != 4)
		_exit(2);
	/* Random bytes over the whole lease, header and limits included,
	 * and over its chunks. */
	scribble(l->lease, LEASE_SIZE, 1);
	memset(&l->lease->counters, 0xff, sizeof(l->lease->counters));
	for (uint32_t i = 0; i < r.n; i++)
		scribble(maps[i], CHUNK_BYTES, i);
	send_report(out, &r);
	wait_byte(in);
	/* Then zeros: every counter goes backwards. */
	memset(l->lease, 0, LEASE_SIZE);
	send_report(out, &r);
	wait_byte(in);
	_exit(0);
}

static bool row_of(const struct testd *t, const char *name,
		   struct stats_row *out)
{
	struct proto_msg m;
	struct nlattr *nla;
	char why[256];
	void *buf = NULL;
	bool found = false;

	if (testd_call(t->sock, PROTO_CMD_GET_CLIENTS, NULL, &m, &buf, why,
		       sizeof(why)) < 0)
		fail_msg("GET_CLIENTS: %s", why);
	proto_for_each(nla, &m, PROTO_A_CLIENT)
	{
		struct stats_row r;

		assert_int_equal(stats_parse(&stats_client, nla, &r), 0);
		if (!strcmp(r.s[PROTO_CLIENT_NAME], name)) {
			*out = r;
			out->s[PROTO_CLIENT_NAME] = NULL;
			found = true;
		}
	}
	free(buf);
	return found;
}

static void test_scribbled_lease(void **state)
{
	struct testd t;
	struct lender *v;
	struct lend_chunk ch[2];
	struct report r;
	struct stats_row row;
	uint64_t total, objects;
	uint32_t got;
	int to[2], from[2];
	char why[256];
	pid_t pid;

	assert_int_equal(testd_start(&t, RESERVE, NULL, NULL), 0);
	total = status(&t, PROTO_STATUS_PAGES_TOTAL);
	assert_int_equal(lend_daemon_open(t.sock, "victim", 0, 0, &v, why,
					  sizeof(why)),
			 0);
	assert_int_equal(v->ops->get(v, -1, 2, ch, &got), 0);
	assert_int_equal(got, 2);
	atomic_store(&v->lease->counters.objects, 7);
	assert_int_equal(pipe(to), 0);
	assert_int_equal(pipe(from), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(to[1]);
		close(from[0]);
		scribbler(t.sock, from[1], to[0]);
	}
	close(to[0]);
	close(from[1]);
	recv_report(from[0], &r);
	assert_true(row_of(&t, "scribbler", &row));
	/* Sanitized: held clamped to what it is lent, peak not below it. */
	assert_int_equal(row.u[PROTO_CLIENT_LENT], 4 * CP);
	assert_true(row.u[PROTO_CLIENT_HELD] <= 4 * CP);
	assert_true(row.u[PROTO_CLIENT_HELD_PEAK] >= row.u[PROTO_CLIENT_HELD]);
	assert_true(row.u[PROTO_CLIENT_HELD_PEAK] <= 4 * CP);
	objects = row.u[PROTO_CLIENT_OBJECTS];
	assert_int_equal(write(to[1], "x", 1), 1);
	recv_report(from[0], &r);
	sleep_ms(120); /* a census or two */
	assert_true(row_of(&t, "scribbler", &row));
	/* Zeros: never shown going backwards, counted as bad. */
	assert_int_equal(row.u[PROTO_CLIENT_OBJECTS], objects);
	assert_true(row.u[PROTO_CLIENT_BAD] >= 1);
	assert_int_equal(row.u[PROTO_CLIENT_HELD], 0);
	/* The victim is untouched. */
	assert_true(row_of(&t, "victim", &row));
	assert_int_equal(row.u[PROTO_CLIENT_LENT], 2 * CP);
	assert_int_equal(row.u[PROTO_CLIENT_OBJECTS], 7);
	assert_int_equal(row.u[PROTO_CLIENT_BAD], 0);
	assert_int_equal(write(to[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	/* The scribbler's chunks retired and replaced; the victim's kept. */
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_PAGES_LENT, 2 * CP,
				      5000));
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_PAGES_TOTAL, total,
				      5000));
	assert_int_equal(v->ops->put(v, (uint64_t[]){ch[0].id, ch[1].id}, 2), 0);
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_PAGES_FREE, total,
				      5000));
	close(ch[0].fd);
	close(ch[1].fd);
	v->ops->close(v);
	close(to[1]);
	close(from[0]);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

/* As nobody: 400 connections; how many were refused, how many closed. */
static void idle_flood(const char *sock, int out)
{
	static int fds[400];
	int refused = 0, closed = 0, counts[2];

	if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
		_exit(100);
	for (int i = 0; i < 400; i++)
		fds[i] = proto_connect(sock);
	/* Each ends: a refusal message then EOF, or EOF at the idle
	 * timeout. */
	for (int i = 0; i < 400; i++) {
		struct pollfd p = {.fd = fds[i], .events = POLLIN};
		char buf[4096];

		if (fds[i] < 0) {
			refused++;
			continue;
		}
		if (poll(&p, 1, 20000) != 1)
			continue;
		ssize_t n = recv(fds[i], buf, sizeof(buf), 0);

		if (n > 0) {
			refused++;
			continue;
		}
		if (n == 0)
			closed++;
	}
	counts[0] = refused;
	counts[1] = closed;
	if (write(out, counts, sizeof(counts)) != sizeof(counts))
		_exit(101);
	_exit(0);
}

static void test_idle_and_flood(void **state)
{
	struct testd t;
	struct lender *l;
	char why[256];
	int p[2], counts[2] = {0, 0};
	pid_t pid;
	unsigned int lines;

	if (geteuid() != 0)
		skip(); /* needs setuid to an unprivileged user */
	assert_int_equal(testd_start(&t, RESERVE, (const char *[]){
		"-o", "access.idle_timeout=300ms", NULL}, NULL),
			 0);
	assert_int_equal(chmod(t.dir, 0755), 0);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		idle_flood(t.sock, p[1]);
	}
	close(p[1]);
	/* While nobody floods: root reads, and attaches. */
	sleep_ms(100);
	assert_true(status(&t, PROTO_STATUS_PAGES_TOTAL) > 0);
	assert_int_equal(lend_daemon_open(t.sock, "root-client", 0, 0, &l, why,
					  sizeof(why)),
			 0);
	assert_int_equal(read(p[0], counts, sizeof(counts)),
			 (ssize_t)sizeof(counts));
	print_message("# 400 idle connections: %d refused, %d closed idle\n",
		      counts[0], counts[1]);
	/* 16 per uid at once (the default): the rest refused, those 16
	 * closed once idle. */
	assert_int_equal(counts[0] + counts[1], 400);
	assert_true(counts[1] >= 16);
	assert_true(counts[0] >= 400 - 16 * 4);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_true(testd_log_has(&t, "access.max_connections_per_uid = 16"));
	lines = testd_log_count(&t, "refused a connection");
	print_message("# refusal log lines: %u\n", lines);
	assert_true(lines < 50);
	l->ops->close(l);

	/* 100k malformed messages on one connection: a bounded log. */
	{
		int fd = proto_connect(t.sock);
		char msg[64];
		struct nlmsghdr *nlh = (void *)msg;
		struct genlmsghdr *g = (void *)(msg + NLMSG_HDRLEN);
		struct nlattr *a = (void *)(msg + NLMSG_HDRLEN + GENL_HDRLEN);

		assert_true(fd >= 0);
		memset(msg, 0, sizeof(msg));
		nlh->nlmsg_len = NLMSG_HDRLEN + GENL_HDRLEN + 8;
		nlh->nlmsg_type = PROTO_FAMILY;
		nlh->nlmsg_flags = NLM_F_REQUEST;
		g->cmd = PROTO_CMD_ATTACH;
		g->version = PROTO_VERSION;
		a->nla_type = PROTO_A_MIN_PAGES;
		a->nla_len = NLA_HDRLEN + 2; /* a u32 of 2 bytes */
		for (int i = 0; i < 100000; i++) {
			char drain[4096];

			nlh->nlmsg_seq = (uint32_t)i + 1;
			if (send(fd, msg, nlh->nlmsg_len, MSG_NOSIGNAL) < 0)
				fail_msg("send %d: %s", i, strerror(errno));
			while (recv(fd, drain, sizeof(drain), MSG_DONTWAIT) > 0)
				;
		}
		close(fd);
	}
	assert_true(status(&t, PROTO_STATUS_PAGES_TOTAL) > 0);
	lines = testd_log_count(&t, "bad message");
	print_message("# 100000 malformed messages: %u log lines\n", lines);
	assert_true(lines >= 1);
	assert_true(lines < 1000);
	/* Said when the daemon has read the whole queue and the EOF. */
	for (int i = 0; i < 500 && !testd_log_has(&t, "messages suppressed");
	     i++)
		sleep_ms(10);
	assert_true(testd_log_has(&t, "messages suppressed"));
	close(p[0]);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_lease),
		cmocka_unit_test(test_closefrom_keeps_chunks),
		cmocka_unit_test(test_scribbled_lease),
		cmocka_unit_test(test_idle_and_flood),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
