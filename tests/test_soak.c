// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Soak: 8 client processes borrowing through lib/lend_daemon.c (get
 * chunks, write into them, give some back, hold others) against the real
 * daemon with the balancer and the census every 10 ms; one client
 * SIGKILLed and replaced every 50 ms.  At the end every chunk is back
 * (pages_total as configured, nothing lent), the daemon is alive, and its
 * fd count and RSS are flat.
 *
 * SOAK_SECONDS (default 20) sets the length: `make soak DURATION=600`.
 */
#include <errno.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "lend.h"
#include "proto.h"
#include "stats.h"
#include "testd.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifndef TEST_ASAN
#define TEST_ASAN 0
#endif

#define NCLIENTS 8
#define HOLD_MAX 32

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

/* One client: forever get, write, give back some, keep the rest. */
static void client(const char *sock, unsigned int seed)
{
	struct lender *l = NULL;
	struct {
		uint64_t id;
		void *p;
	} held[HOLD_MAX];
	size_t bytes;
	uint32_t n = 0;
	char why[256], name[32];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	snprintf(name, sizeof(name), "soak%u", seed % 100);
	if (lend_daemon_open(sock, name, 0, 0, &l, why, sizeof(why)) < 0)
		_exit(1);
	bytes = (size_t)l->chunk_pages * l->page_size;
	for (;;) {
		struct lend_chunk ch[LEND_GET_MAX];
		uint32_t want = 1 + rand_r(&seed) % 4, got = 0;
		int r;

		if (n + want > HOLD_MAX)
			want = HOLD_MAX - n;
		r = want ? l->ops->get(l, -1, want, ch, &got) : 0;
		if (r == -ECONNRESET)
			_exit(2);
		for (uint32_t i = 0; i < got; i++) {
			void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
				       MAP_SHARED, ch[i].fd, 0);

			close(ch[i].fd);
			if (p == MAP_FAILED)
				_exit(3);
			memset(p, (int)(seed & 0xff), bytes);
			held[n].id = ch[i].id;
			held[n].p = p;
			n++;
		}
		/* Give back a random few. */
		for (uint32_t k = rand_r(&seed) % 4; k > 0 && n > 0; k--) {
			uint32_t i = (uint32_t)rand_r(&seed) % n;
			uint64_t id = held[i].id;

			munmap(held[i].p, bytes);
			held[i] = held[--n];
			if (l->ops->put(l, &id, 1) < 0)
				_exit(4);
		}
		{
			struct pollfd p = {.fd = l->fd, .events = POLLIN};

			if (poll(&p, 1, 0) == 1 && l->ops->event(l) < 0)
				_exit(5);
		}
		sleep_ms(1 + rand_r(&seed) % 5);
	}
}

static pid_t spawn(const char *sock, unsigned int seed)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		client(sock, seed);
	return pid;
}

static void test_soak(void **state)
{
	const char *env = getenv("SOAK_SECONDS");
	long seconds = env && atol(env) > 0 ? atol(env) : 20;
	struct testd t;
	pid_t pids[NCLIENTS];
	uint64_t total, end, kills = 0, lost;
	long fd0, fd1, rss0, rss1, rss_mid = 0;
	unsigned int seed = 1;

	assert_int_equal(testd_start(&t,
				     "[reserve]\npages_per_cpu = 256\n"
				     "global_pages = 1024\n"
				     "[limits]\nclient_max_pages = 25%\n"
				     "return_rate = 100000\n",
				     (const char *[]){"-o",
						      "balance.interval=10ms",
						      "-o",
						      "balance.census_interval=10ms",
						      NULL},
				     NULL),
			 0);
	total = testd_status_field(t.sock, PROTO_STATUS_PAGES_TOTAL);
	/* The daemon closes the connections of those calls as it reads EOF. */
	sleep_ms(200);
	fd0 = testd_fd_count(t.pid);
	rss0 = testd_rss_kib(t.pid);
	for (int i = 0; i < NCLIENTS; i++)
		pids[i] = spawn(t.sock, seed++);
	end = now_ms() + (uint64_t)seconds * 1000;
	while (now_ms() < end) {
		int i = (int)(seed % NCLIENTS);

		sleep_ms(50);
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
		kills++;
		pids[i] = spawn(t.sock, seed++);
		if (kills == 20)
			rss_mid = testd_rss_kib(t.pid);
	}
	for (int i = 0; i < NCLIENTS; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
	/* Every chunk back, the reserve at its size. */
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_CLIENTS, 0, 10000));
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_PAGES_LENT, 0, 10000));
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_PAGES_FREE, total,
				      10000));
	lost = total - testd_status_field(t.sock, PROTO_STATUS_PAGES_TOTAL);
	for (int i = 0; i < 200 && (fd1 = testd_fd_count(t.pid)) != fd0; i++)
		sleep_ms(10);
	rss1 = testd_rss_kib(t.pid);
	print_message("# soak %lds: %llu kills, %llu chunks retired, %llu "
		      "chunks lost, daemon fds %ld -> %ld, RSS %ld -> %ld KiB "
		      "(%ld after warm-up), census runs %llu, bad %llu\n",
		      seconds, (unsigned long long)kills,
		      (unsigned long long)testd_status_field(
			      t.sock, PROTO_STATUS_CHUNKS_RETIRED),
		      (unsigned long long)lost, fd0, fd1, rss0, rss1, rss_mid,
		      (unsigned long long)testd_status_field(
			      t.sock, PROTO_STATUS_CENSUS_RUNS),
		      (unsigned long long)testd_status_field(t.sock,
							     PROTO_STATUS_BAD));
	assert_int_equal(lost, 0);
	assert_int_equal(fd1, fd0);
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_BAD_INDEX), 0);
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_BAD), 0);
	/*
	 * RSS flat: after warm-up, no growth with the number of kills.  Not
	 * under ASan: its quarantine keeps freed memory (256 MB by default),
	 * so the RSS grows with what the daemon allocates, leak or not
	 * (seen: +4.1 MB in a 20 s run); LeakSanitizer checks leaks there.
	 */
	if (!TEST_ASAN)
		assert_true(rss1 <= (rss_mid ? rss_mid : rss0) + 4096);
	assert_false(testd_log_has(&t, "books disagree"));
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_soak),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
