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
 * A client's verdict is its exit status (see enum verdict).
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
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "proto.h"
#include "rcupool.h"
#include "testd.h"

#define OBJ_LIVE   0x4c4956454f424a31ull
#define OBJ_POISON 0xdeaddeaddeaddeadull

#define NCLIENTS 8

enum verdict {
	V_OK = 0,
	V_OPEN = 10,	 /* rcupool_open failed */
	V_EARLY = 11,	 /* a reader saw a poisoned object */
	V_DOUBLE = 12,	 /* an object freed twice */
	V_COUNT = 13,	 /* freed != passed after rcupool_barrier */
	V_DETACHED = 14, /* attached was 0 while the daemon lived */
	V_FALLBACK = 15, /* a victim took a fallback */
	V_OVER_MAX = 16, /* held more reserve pages than its max */
};

struct obj {
	_Atomic uint64_t magic;
	char pad[40];
};

/* --- the client process --------------------------------------------------- */

static _Atomic uint64_t c_freed, c_double;
static _Atomic int c_stop;
static struct obj *c_shared; /* what the reader looks at */
static _Atomic uint64_t c_early;

static void obj_free(void *p)
{
	struct obj *o = p;

	if (atomic_load_explicit(&o->magic, memory_order_relaxed) != OBJ_LIVE) {
		atomic_fetch_add(&c_double, 1);
		return;
	}
	atomic_store_explicit(&o->magic, OBJ_POISON, memory_order_relaxed);
	atomic_fetch_add_explicit(&c_freed, 1, memory_order_relaxed);
	free(o);
}

/* Holds the published object across a few hundred reads: never poisoned. */
static void *client_reader(void *arg)
{
	(void)arg;
	rcu_register_thread();
	while (!atomic_load(&c_stop)) {
		rcu_read_lock();
		struct obj *o = rcu_dereference(c_shared);

		for (int i = 0; o && i < 200; i++)
			if (atomic_load_explicit(&o->magic,
						 memory_order_relaxed) !=
			    OBJ_LIVE)
				atomic_fetch_add(&c_early, 1);
		rcu_read_unlock();
	}
	rcu_unregister_thread();
	return NULL;
}

static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&c_stop, 1);
}

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
	while (!atomic_load(&c_stop)) {
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
	while (!atomic_load(&c_stop))
		for (int i = 0; i < 4096; i++) {
			struct obj *n = malloc(sizeof(*n));

			if (!n)
				abort();
			atomic_store_explicit(&n->magic, OBJ_LIVE,
					      memory_order_relaxed);
			rcupool_free(c_pool, n);
		}
	rcu_unregister_thread();
	return NULL;
}

static int client_main(const char *sock, const char *name,
		       enum client_kind kind)
{
	struct rcupool_options o = {
		.size = sizeof(o),
		.socket_path = sock,
		.name = name,
		.mode = RCUPOOL_MODE_DAEMON,
		.free_fn = obj_free,
	};
	struct rcupool_stats st = {.size = sizeof(st)};
	struct rcupool *p;
	pthread_t rd, pin = 0, flood = 0;
	uint64_t passed = 0, flood_passed;

	if (rcupool_open(&o, &p) < 0)
		return V_OPEN;
	c_pool = p;
	rcu_register_thread();
	pthread_create(&rd, NULL, client_reader, NULL);
	if (kind == C_ABUSER) {
		pthread_create(&pin, NULL, client_pinner, NULL);
		pthread_create(&flood, NULL, client_flood, NULL);
	}
	while (!atomic_load(&c_stop)) {
		if (kind == C_VICTIM)
			usleep(20000); /* ~200k objects/s: a steady workload */
		for (int i = 0; i < 4096; i++) {
			struct obj *n = malloc(sizeof(*n)), *old;

			if (!n)
				abort();
			atomic_store_explicit(&n->magic, OBJ_LIVE,
					      memory_order_relaxed);
			old = rcu_xchg_pointer(&c_shared, n);
			if (old) {
				rcupool_free(p, old);
				passed++;
			}
		}
		if (kind == C_SCRIBBLER && passed >= 200000 &&
		    passed < 200000 + 4096) {
			scribble_all((unsigned)getpid(), 0);
			scribble_all(0, 1);
		}
		if (kind == C_CLOSEFROM && passed >= 100000 &&
		    passed < 100000 + 4096)
			syscall(SYS_close_range, 3u, ~0u, 0u);
	}
	struct obj *last = rcu_xchg_pointer(&c_shared, NULL);

	if (last) {
		rcupool_free(p, last);
		passed++;
	}
	rcupool_stats(p, &st);
	atomic_store(&c_stop, 1);
	pthread_join(rd, NULL);
	if (kind == C_ABUSER) {
		pthread_join(pin, NULL);
		pthread_join(flood, NULL);
	}
	rcupool_barrier(p);
	/* The flood thread's objects are counted in freed, not in passed. */
	flood_passed = kind == C_ABUSER ? atomic_load(&c_freed) - passed : 0;
	(void)flood_passed;
	rcupool_stats(p, &st);
	if (st.held_peak > st.max_pages)
		return V_OVER_MAX;
	if (kind == C_VICTIM &&
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
	if (kind == C_GOOD && !st.attached)
		return V_DETACHED;
	if (atomic_load(&c_early))
		return V_EARLY;
	if (atomic_load(&c_double))
		return V_DOUBLE;
	if (kind != C_ABUSER && atomic_load(&c_freed) != passed)
		return V_COUNT;
	rcupool_close(p);
	return V_OK;
}

static pid_t client_spawn(const char *sock, const char *name,
			  enum client_kind kind)
{
	sigset_t usr1, old;
	pid_t pid;

	/*
	 * SIGUSR1 blocked across fork() until the child has its handler: a
	 * client spawned just before the end is told to finish at once,
	 * and must not die of the default action (verdict 128 + SIGUSR1).
	 */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	pid = fork();
	if (pid == 0) {
		/* A test killed half way must not leave clients spinning. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/*
		 * Not cmocka's handlers: a client that crashes (the scribbler
		 * of its own memory may) dies of it, it does not report a
		 * failure of the test's process nor run the next test.
		 */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		signal(SIGILL, SIG_DFL);
		signal(SIGFPE, SIG_DFL);
		signal(SIGABRT, SIG_DFL);
		signal(SIGUSR1, on_usr1);
		sigprocmask(SIG_SETMASK, &old, NULL);
		_exit(client_main(sock, name, kind));
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	assert_true(pid > 0);
	return pid;
}

/* SIGUSR1 (finish, check, exit) and the verdict. */
static int client_finish(pid_t pid)
{
	int status;

	kill(pid, SIGUSR1);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFSIGNALED(status)) {
		print_message("client %d: killed by signal %d\n", (int)pid,
			      WTERMSIG(status));
		return 128 + WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}

/* --- the daemon from outside ---------------------------------------------- */

static void msleep(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

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
		msleep(10);
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

		msleep(50);
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
		int v = client_finish(cl[i]);

		if (v != V_OK) {
			print_message("client %d: verdict %d\n", (int)cl[i], v);
			bad++;
		}
	}
	assert_true(alive(t.pid));
	assert_true(reserve_whole(&t, total, 5000));
	msleep(200); /* replacements created, timers settled */
	fd1 = (int)testd_fd_count(t.pid);
	rss1 = testd_rss_kib(t.pid);
	print_message("soak: %.0f s, %lu kills, %lu bad verdicts, daemon fds "
		      "%d -> %d, RSS %ld -> %ld kB, pages lost %lld\n",
		      seconds, kills, bad, fd0, fd1, rss0, rss1,
		      (long long)total -
			      (long long)status_u(&t, PROTO_STATUS_PAGES_FREE));
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
	msleep(1500);
	/* The scribbler may have died of its own scribble: that is its own. */
	kill(bad, SIGKILL);
	waitpid(bad, &status, 0);
	assert_true(alive(t.pid));
	assert_int_equal(client_finish(good), V_OK);
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
	msleep(1500);
	assert_true(alive(t.pid));
	assert_int_equal(client_finish(good), V_OK);
	/*
	 * The closer's connection is gone but its process lives: what it
	 * was lent stays lent to it, not free for anyone else, until it
	 * exits.
	 */
	msleep(300);
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
	msleep(300); /* the victim has asked for its chunks */
	abuser = client_spawn(t.sock, "abuser", C_ABUSER);
	msleep(3000);
	assert_true(alive(t.pid));
	/* Zero fallbacks for the victim, exactly once, never early. */
	assert_int_equal(client_finish(victim), V_OK);
	/* The abuser never held more than its max, whatever it tried. */
	assert_int_equal(client_finish(abuser), V_OK);
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
