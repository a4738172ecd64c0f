// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Many borrowers against one real rcupoold, the way it runs in production:
 * client processes built on librcupool (DAEMON mode) free objects flat out
 * while a reader in each holds objects across their frees, with the
 * daemon's timers short.
 *
 *  - soak: 8 clients, one SIGKILLed and replaced every 50 ms; at the end
 *    every chunk is back, the daemon alive, its fd count and RSS flat, and
 *    every client that was stopped politely freed each object exactly once
 *    and never early.  RCUPOOL_SOAK_SECONDS sets its length (make soak).
 *  - scribble: a client writes random bytes, then zeros, over every shared
 *    memory it holds (its lease and its chunks) and keeps freeing; a good
 *    client beside it stays exact; the reserve is whole after it exits.
 *  - closefrom: a client closes every fd it has (its connection too) and
 *    keeps freeing: the daemon keeps its chunks lent to it until the
 *    process exits, and a second client stays exact.
 *  - neighbour: an abuser that pins its grace periods and frees flat out
 *    from two threads, capped at 25%; a protected victim beside it takes
 *    no fallback at all; the abuser never holds more than its max.
 *
 * A client's verdict is its exit status (tests/lib/testclient.h, and
 * enum verdict below).
 */
#define URCU_API_MAP 1
#include <urcu/urcu-memb.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "proto.h"
#include "rcupool.h"
#include "testclient.h"
#include "testd.h"

#define NCLIENTS 8

/* Beyond tclient's verdicts (tests/lib/testclient.h). */
enum verdict {
	V_DETACHED = TCLIENT_V_OWN, /* attached was 0 while the daemon lived */
	V_FALLBACK,		    /* a victim took a fallback */
	V_OVER_MAX,		    /* held more reserve pages than its max */
};

/* --- the client process --------------------------------------------------- */

/* Overwrite every shared mapping of this process (lease and chunks). */
static void scribble_all(unsigned seed, int zeros)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
			continue;
		if (perms[0] != 'r' || perms[1] != 'w' || perms[3] != 's' ||
		    !strstr(line, "memfd:"))
			continue;
		for (unsigned long a = lo; a < hi; a += sizeof(uint32_t)) {
			seed = seed * 1103515245u + 12345u;
			*(volatile uint32_t *)a = zeros ? 0 : seed;
		}
	}
	fclose(f);
}

enum client_kind { C_GOOD, C_SCRIBBLER, C_CLOSEFROM, C_VICTIM, C_ABUSER };

/* The abuser's pinner: in a read-side section 50 ms out of every 51. */
static void *client_pinner(void *arg)
{
	(void)arg;
	rcu_register_thread();
	while (!atomic_load(&tclient_stop)) {
		rcu_read_lock();
		usleep(50000);
		rcu_read_unlock();
		usleep(1000);
	}
	rcu_unregister_thread();
	return NULL;
}

static struct rcupool *c_pool;

/* The abuser's second thread: flat out, nothing to check. */
static void *client_flood(void *arg)
{
	(void)arg;
	rcu_register_thread();
	while (!atomic_load(&tclient_stop))
		for (int i = 0; i < 4096; i++)
			rcupool_free(c_pool, tclient_obj_new(0));
	rcu_unregister_thread();
	return NULL;
}

struct client {
	const char *sock;
	const char *name;
	enum client_kind kind;
};

static int client_main(void *arg)
{
	const struct client *c = arg;
	struct rcupool_options o = tclient_options(c->sock, c->name);
	struct rcupool_stats st = {.size = sizeof(st)};
	struct rcupool *p;
	pthread_t rd, pin = 0, flood = 0;
	uint64_t passed = 0;
	int v;

	if (rcupool_open(&o, &p) < 0)
		return TCLIENT_V_OPEN;
	c_pool = p;
	rcu_register_thread();
	rd = tclient_reader_start();
	if (c->kind == C_ABUSER) {
		pthread_create(&pin, NULL, client_pinner, NULL);
		pthread_create(&flood, NULL, client_flood, NULL);
	}
	while (!atomic_load(&tclient_stop)) {
		if (c->kind == C_VICTIM)
			usleep(20000); /* ~200k objects/s: a steady workload */
		passed += tclient_churn(p, 4096);
		if (c->kind == C_SCRIBBLER && passed >= 200000 &&
		    passed < 200000 + 4096) {
			scribble_all((unsigned)getpid(), 0);
			scribble_all(0, 1);
		}
		if (c->kind == C_CLOSEFROM && passed >= 100000 &&
		    passed < 100000 + 4096)
			syscall(SYS_close_range, 3u, ~0u, 0u);
	}
	passed += tclient_churn_end(p);
	rcupool_stats(p, &st);
	tclient_reader_stop(rd);
	if (c->kind == C_ABUSER) {
		pthread_join(pin, NULL);
		pthread_join(flood, NULL);
	}
	rcupool_barrier(p);
	rcupool_stats(p, &st);
	if (st.held_peak > st.max_pages)
		return V_OVER_MAX;
	if (c->kind == C_VICTIM &&
	    st.fallback_overflow + st.fallback_sync + st.fallback_head) {
		fprintf(stderr,
			"victim: overflow %llu sync %llu head %llu depletions "
			"%llu denied %llu lent %llu held_peak %llu max %u\n",
			(unsigned long long)st.fallback_overflow,
			(unsigned long long)st.fallback_sync,
			(unsigned long long)st.fallback_head,
			(unsigned long long)st.depletions,
			(unsigned long long)st.denied,
			(unsigned long long)st.lent_pages,
			(unsigned long long)st.held_peak, st.max_pages);
		return V_FALLBACK;
	}
	rcu_unregister_thread();
	if (c->kind == C_GOOD && !st.attached)
		return V_DETACHED;
	/* The flood thread's objects are counted in freed, not in passed. */
	v = tclient_verdict(c->kind == C_ABUSER ? TCLIENT_UNCOUNTED : passed);
	if (v != TCLIENT_V_OK)
		return v;
	rcupool_close(p);
	return TCLIENT_V_OK;
}

static pid_t client_spawn(const char *sock, const char *name,
			  enum client_kind kind)
{
	/* The child's copy of it is the one it reads. */
	struct client c = {.sock = sock, .name = name, .kind = kind};
	pid_t pid = tclient_spawn(client_main, &c);

	assert_true(pid > 0);
	return pid;
}

/* --- the daemon from outside ---------------------------------------------- */

static uint64_t status_u(const struct testd *t, int attr)
{
	return testd_status_field(t->sock, attr);
}

/* Every page of the reserve back in the daemon's pools, nobody attached. */
static bool reserve_whole(const struct testd *t, uint64_t total, int wait_ms)
{
	for (int i = 0; i <= wait_ms / 10; i++) {
		if (status_u(t, PROTO_STATUS_CLIENTS) == 0 &&
		    status_u(t, PROTO_STATUS_PAGES_TOTAL) == total &&
		    status_u(t, PROTO_STATUS_PAGES_FREE) == total)
			return true;
		testd_sleep_ms(10);
	}
	print_message("reserve not whole: clients %llu total %llu/%llu free "
		      "%llu\n",
		      (unsigned long long)status_u(t, PROTO_STATUS_CLIENTS),
		      (unsigned long long)status_u(t, PROTO_STATUS_PAGES_TOTAL),
		      (unsigned long long)total,
		      (unsigned long long)status_u(t, PROTO_STATUS_PAGES_FREE));
	return false;
}

static bool alive(pid_t pid)
{
	return kill(pid, 0) == 0 && waitpid(pid, NULL, WNOHANG) == 0;
}

/* Short timers, a small reserve: every path runs often. */
static const char *const fast_args[] = {
	"-o", "reserve.pages_per_cpu=256", "-o", "reserve.global_pages=256",
	"-o", "reserve.lock_memory=no",	   "-o", "balance.interval=10ms",
	"-o", "balance.census_interval=10ms", "-o",
	"limits.drain_interval=10ms",	   NULL,
};

static uint64_t reserve_of(uint64_t per_cpu, uint64_t global)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);

	return per_cpu * (uint64_t)(n > 0 ? n : 1) + global;
}

static uint64_t configured_pages(void)
{
	return reserve_of(256, 256);
}

/* --- soak ----------------------------------------------------------------- */

static void test_soak(void **state)
{
	const char *env = getenv("RCUPOOL_SOAK_SECONDS");
	double seconds = env ? atof(env) : 20;
	/* RCUPOOL_SOAK_SHIPPED=1: the daemon's shipped configuration. */
	bool shipped = getenv("RCUPOOL_SOAK_SHIPPED") != NULL;
	uint64_t total = shipped ? reserve_of(1024, 1024) : configured_pages();
	struct testd t;
	pid_t cl[NCLIENTS];
	unsigned long kills = 0, bad = 0;
	unsigned seed = (unsigned)time(NULL);
	int fd0, fd1;
	long rss0, rss1;
	struct timespec t0, now;

	(void)state;
	assert_int_equal(testd_start(&t, NULL, shipped ? NULL : fast_args, NULL),
			 0);
	/* The baseline: the whole reserve in the pools, nobody attached. */
	assert_true(reserve_whole(&t, total, 5000));
	fd0 = (int)testd_fd_count(t.pid);
	rss0 = testd_rss_kib(t.pid);
	for (int i = 0; i < NCLIENTS; i++)
		cl[i] = client_spawn(t.sock, "soak", C_GOOD);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		int k = (int)(rand_r(&seed) % NCLIENTS);

		testd_sleep_ms(50);
		kill(cl[k], SIGKILL);
		waitpid(cl[k], NULL, 0);
		kills++;
		cl[k] = client_spawn(t.sock, "soak", C_GOOD);
		clock_gettime(CLOCK_MONOTONIC, &now);
		assert_true(alive(t.pid));
	} while ((double)(now.tv_sec - t0.tv_sec) +
			 (double)(now.tv_nsec - t0.tv_nsec) / 1e9 <
		 seconds);
	for (int i = 0; i < NCLIENTS; i++) {
		int v = tclient_finish(cl[i]);

		if (v != TCLIENT_V_OK) {
			print_message("client %d: verdict %d\n", (int)cl[i], v);
			bad++;
		}
	}
	assert_true(alive(t.pid));
	assert_true(reserve_whole(&t, total, 5000));
	testd_sleep_ms(200); /* replacements created, timers settled */
	fd1 = (int)testd_fd_count(t.pid);
	rss1 = testd_rss_kib(t.pid);
	print_message("soak: %.0f s, %lu kills, %lu bad verdicts, daemon fds "
		      "%d -> %d, RSS %ld -> %ld kB, pages lost %lld, "
		      "depletions %llu, pages recalled %llu\n",
		      seconds, kills, bad, fd0, fd1, rss0, rss1,
		      (long long)total -
			      (long long)status_u(&t, PROTO_STATUS_PAGES_FREE),
		      (unsigned long long)status_u(&t, PROTO_STATUS_DEPLETIONS),
		      (unsigned long long)status_u(&t,
						   PROTO_STATUS_PAGES_RECALLED));
	assert_int_equal(bad, 0);
	/* Flat: the same reserve, nobody attached: no fd leaked per kill. */
	assert_true(fd1 <= fd0);
#ifndef __SANITIZE_ADDRESS__
	/* (ASan's quarantine keeps freed memory resident: not a leak.) */
	assert_true(rss1 <= rss0 + rss0 / 2 + 4096);
#endif
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

/* --- scribble ------------------------------------------------------------- */

static void test_scribble(void **state)
{
	struct testd t;
	pid_t good, bad;
	int status;

	(void)state;
	assert_int_equal(testd_start(&t, NULL, fast_args, NULL), 0);
	good = client_spawn(t.sock, "good", C_GOOD);
	bad = client_spawn(t.sock, "scribbler", C_SCRIBBLER);
	testd_sleep_ms(1500);
	/* The scribbler may have died of its own scribble: that is its own. */
	kill(bad, SIGKILL);
	waitpid(bad, &status, 0);
	assert_true(alive(t.pid));
	assert_int_equal(tclient_finish(good), TCLIENT_V_OK);
	assert_true(reserve_whole(&t, configured_pages(), 5000));
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

/* --- closefrom ------------------------------------------------------------ */

static void test_closefrom(void **state)
{
	struct testd t;
	pid_t closer, good;
	uint64_t total = configured_pages();

	(void)state;
	assert_int_equal(testd_start(&t, NULL, fast_args, NULL), 0);
	closer = client_spawn(t.sock, "closer", C_CLOSEFROM);
	good = client_spawn(t.sock, "good", C_GOOD);
	testd_sleep_ms(1500);
	assert_true(alive(t.pid));
	assert_int_equal(tclient_finish(good), TCLIENT_V_OK);
	/*
	 * The closer's connection is gone but its process lives: what it
	 * was lent stays lent to it, not free for anyone else, until it
	 * exits.
	 */
	testd_sleep_ms(300);
	assert_true(alive(closer));
	assert_true(status_u(&t, PROTO_STATUS_PAGES_FREE) < total);
	kill(closer, SIGKILL);
	waitpid(closer, NULL, 0);
	assert_true(reserve_whole(&t, total, 5000));
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

/* --- a victim beside an abuser ------------------------------------------ */

static void test_neighbour(void **state)
{
	/* The abuser is capped; the victim is protected. */
	const char *const args[] = {
		"-o", "reserve.pages_per_cpu=256", "-o",
		"reserve.global_pages=256", "-o", "reserve.lock_memory=no",
		"-o", "balance.interval=10ms", "-o", "limits.client_max_pages=25%",
		"-o", "client.victim.min_pages=128", "-o",
		"client.victim.max_pages=50%", NULL,
	};
	struct testd t;
	pid_t victim, abuser;

	(void)state;
	assert_int_equal(testd_start(&t, NULL, args, NULL), 0);
	victim = client_spawn(t.sock, "victim", C_VICTIM);
	testd_sleep_ms(300); /* the victim has asked for its chunks */
	abuser = client_spawn(t.sock, "abuser", C_ABUSER);
	testd_sleep_ms(3000);
	assert_true(alive(t.pid));
	/* Zero fallbacks for the victim, exactly once, never early. */
	assert_int_equal(tclient_finish(victim), TCLIENT_V_OK);
	/* The abuser never held more than its max, whatever it tried. */
	assert_int_equal(tclient_finish(abuser), TCLIENT_V_OK);
	assert_true(reserve_whole(&t, configured_pages(), 5000));
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest all[] = {
		cmocka_unit_test(test_scribble),
		cmocka_unit_test(test_closefrom),
		cmocka_unit_test(test_neighbour),
		cmocka_unit_test(test_soak),
	};
	const struct CMUnitTest soak_only[] = {
		cmocka_unit_test(test_soak),
	};

	if (argc > 1 && !strcmp(argv[1], "--soak"))
		return cmocka_run_group_tests(soak_only, NULL, NULL);
	(void)argv;
	return cmocka_run_group_tests(all, NULL, NULL);
}
