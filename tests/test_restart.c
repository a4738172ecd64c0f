// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Restarts of the real rcupoold under real librcupool clients.
 *
 *  - reattach: no fd store (the daemon started by hand): 8 clients free
 *    flat out (a reader in each holds objects across their frees); the
 *    daemon is SIGKILLed and a fresh one started on the same socket, 20
 *    times in a row.  Each time every client re-attaches by itself
 *    (attached = 1, reattaches = the round), the new daemon lists all 8,
 *    every chunk of the old daemon is unmapped from each client once its
 *    pages are free, and each client's fds and lease mappings stay flat.
 *    At the end each client freed every object it passed exactly once and
 *    never early (a poisoning free_fn with a reader), and the last
 *    instance says (status, rcupoolctl status, its log) that all 8
 *    re-attached to it and none was adopted.  The same with a graceful
 *    stop (SIGTERM), 5 times.
 *
 * A client's verdict is its exit status (enum verdict).
 */
#define URCU_API_MAP 1
#include <urcu/urcu-memb.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fdstore.h"
#include "proto.h"
#include "rcupool.h"
#include "testd.h"

#define OBJ_LIVE   0x4c4956454f424a31ull
#define OBJ_POISON 0xdeaddeaddeaddeadull
#define NCLIENTS   8
#define ROUNDS	   20
#define MAX_INO	   4096

enum verdict {
	V_OK = 0,
	V_OPEN = 10,   /* rcupool_open failed */
	V_EARLY = 11,  /* a reader saw a poisoned object */
	V_DOUBLE = 12, /* an object freed twice */
	V_COUNT = 13,  /* freed != passed after rcupool_barrier */
};

/* What a client shows the test (a shared anonymous mapping). */
struct cstate {
	_Atomic int attached;
	_Atomic uint64_t reattaches;
	_Atomic uint64_t passed;
	_Atomic uint64_t lent_pages;
};

static struct cstate *shared;

struct obj {
	_Atomic uint64_t magic;
	char pad[40];
};

/* --- the client process --------------------------------------------------- */

static _Atomic uint64_t c_freed, c_double, c_early;
static _Atomic int c_stop;
static struct obj *c_shared;

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

/* Shows the pool's stats every 2 ms (the freeing loop may be slowed). */
static struct rcupool *c_pool;
static struct cstate *c_me;

static void *client_reporter(void *arg)
{
	struct rcupool_stats st = {.size = sizeof(st)};

	(void)arg;
	while (!atomic_load(&c_stop)) {
		if (rcupool_stats(c_pool, &st) == 0) {
			atomic_store(&c_me->attached, st.attached);
			atomic_store(&c_me->reattaches, st.reattaches);
			atomic_store(&c_me->lent_pages, st.lent_pages);
		}
		usleep(2000);
	}
	return NULL;
}

static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&c_stop, 1);
}

static int client_main(const char *sock, struct cstate *me)
{
	struct rcupool_options o = {
		.size = sizeof(o),
		.socket_path = sock,
		.name = "restart",
		.mode = RCUPOOL_MODE_DAEMON,
		.free_fn = obj_free,
	};
	struct rcupool *p;
	pthread_t rd, rep;
	uint64_t passed = 0;

	signal(SIGUSR1, on_usr1);
	if (rcupool_open(&o, &p) < 0)
		return V_OPEN;
	c_pool = p;
	c_me = me;
	rcu_register_thread();
	pthread_create(&rd, NULL, client_reader, NULL);
	pthread_create(&rep, NULL, client_reporter, NULL);
	while (!atomic_load(&c_stop)) {
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
		atomic_store(&me->passed, passed);
	}
	struct obj *last = rcu_xchg_pointer(&c_shared, NULL);

	if (last) {
		rcupool_free(p, last);
		passed++;
	}
	atomic_store(&c_stop, 1);
	pthread_join(rd, NULL);
	pthread_join(rep, NULL);
	rcupool_barrier(p);
	rcu_unregister_thread();
	if (atomic_load(&c_early))
		return V_EARLY;
	if (atomic_load(&c_double))
		return V_DOUBLE;
	if (atomic_load(&c_freed) != passed)
		return V_COUNT;
	rcupool_close(p);
	return V_OK;
}

static pid_t client_spawn(const char *sock, int i)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(client_main(sock, &shared[i]));
	}
	assert_true(pid > 0);
	return pid;
}

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

/* --- looking at a client from outside ------------------------------------- */

static void msleep(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Inodes of the mappings of pid whose name has what; how many lines. */
static int maps_of(pid_t pid, const char *what, unsigned long *ino, int cap)
{
	char path[64], line[512];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long i;

		if (!strstr(line, what) ||
		    sscanf(line, "%*s %*s %*s %*s %lu", &i) != 1)
			continue;
		if (ino && n < cap)
			ino[n] = i;
		n++;
	}
	fclose(f);
	return n;
}

static bool maps_any_of(pid_t pid, const unsigned long *old, int nold)
{
	unsigned long now[MAX_INO];
	int n = maps_of(pid, "rcupool-chunk", now, MAX_INO);

	for (int i = 0; i < n && i < MAX_INO; i++)
		for (int j = 0; j < nold; j++)
			if (now[i] == old[j])
				return true;
	return false;
}

static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static bool all_attached(uint64_t reattaches)
{
	for (int i = 0; i < NCLIENTS; i++)
		if (atomic_load(&shared[i].attached) != 1 ||
		    atomic_load(&shared[i].reattaches) != reattaches)
			return false;
	return true;
}

/* Whether `rcupoolctl status` (as a user runs it) prints text. */
static bool ctl_status_has(const char *sock, const char *text)
{
	char prog[PATH_MAX], cmd[2 * PATH_MAX + 64], line[512];
	bool found = false;
	FILE *f;

	testd_program("rcupoolctl", prog, sizeof(prog));
	snprintf(cmd, sizeof(cmd), "'%s' --socket='%s' status", prog, sock);
	f = popen(cmd, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, text))
			found = true;
		else if (strstr(line, "instance"))
			print_message("status: %s", line);
	pclose(f);
	return found;
}

static const char *const fast_args[] = {
	"-o", "reserve.pages_per_cpu=256",
	"-o", "reserve.global_pages=256",
	"-o", "reserve.lock_memory=no",
	"-o", "balance.interval=10ms",
	"-o", "balance.census_interval=10ms",
	"-o", "limits.drain_interval=10ms",
	NULL,
};

/* --- reattach ------------------------------------------------------------- */

static void reattach_rounds(int sig, int rounds)
{
	static unsigned long old[NCLIENTS][MAX_INO];
	int nold[NCLIENTS], fd0[NCLIENTS];
	struct testd t;
	pid_t cl[NCLIENTS];
	double worst = 0, sum = 0, worst_unmap = 0;
	int bad = 0;

	shared = mmap(NULL, NCLIENTS * sizeof(*shared), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(shared != MAP_FAILED);
	memset(shared, 0, NCLIENTS * sizeof(*shared));
	assert_int_equal(testd_start(&t, NULL, fast_args, NULL), 0);
	for (int i = 0; i < NCLIENTS; i++)
		cl[i] = client_spawn(t.sock, i);
	for (int i = 0; i < 1000 && !all_attached(0); i++)
		msleep(10);
	assert_true(all_attached(0));
	msleep(300);
	for (int i = 0; i < NCLIENTS; i++)
		fd0[i] = count_fds(cl[i]);

	for (uint64_t round = 1; round <= (uint64_t)rounds; round++) {
		double t0, t1, t2, tr;

		for (int i = 0; i < NCLIENTS; i++) {
			nold[i] = maps_of(cl[i], "rcupool-chunk", old[i],
					  MAX_INO);
			assert_true(nold[i] > 0 && nold[i] <= MAX_INO);
		}
		t0 = now_s();
		if (sig == SIGKILL)
			assert_int_equal(fdstore_kill(&t), 0);
		else
			assert_int_equal(testd_stop(&t), 0);
		assert_int_equal(fdstore_restart(&t, fast_args), 0);
		tr = now_s();
		/* A liveness bound, not a timing target (the machine is
		 * shared). */
		while (!all_attached(round) && now_s() - t0 < 60)
			msleep(2);
		t1 = now_s();
		for (int i = 0; i < NCLIENTS; i++)
			if (atomic_load(&shared[i].reattaches) != round ||
			    atomic_load(&shared[i].attached) != 1)
				print_message("round %llu: client %d attached "
					      "%d reattaches %llu\n",
					      (unsigned long long)round, i,
					      atomic_load(&shared[i].attached),
					      (unsigned long long)atomic_load(
						      &shared[i].reattaches));
		assert_true(all_attached(round));
		assert_true(testd_wait_status(t.sock, PROTO_STATUS_CLIENTS,
					      NCLIENTS, 5000));
		/* The old daemon's chunks: unmapped once their pages are free.
		 */
		for (int i = 0; i < NCLIENTS; i++) {
			while (maps_any_of(cl[i], old[i], nold[i]) &&
			       now_s() - t0 < 60)
				msleep(10);
			assert_false(maps_any_of(cl[i], old[i], nold[i]));
			/* Ours and the current daemon's lease, no more. */
			assert_true(maps_of(cl[i], "rcupool-lease", NULL, 0) <=
				    2);
		}
		t2 = now_s();
		for (int i = 0; i < NCLIENTS; i++) {
			int n = count_fds(cl[i]);

			for (int k = 0; k < 100 && n != fd0[i]; k++) {
				msleep(10);
				n = count_fds(cl[i]);
			}
			if (n != fd0[i])
				print_message("client %d: fds %d -> %d\n", i,
					      fd0[i], n);
			assert_int_equal(n, fd0[i]);
		}
		if (getenv("RESTART_VERBOSE"))
			print_message("round %d: daemon up %.0f ms, attached "
				      "%.0f ms, old chunks gone %.0f ms\n",
				      (int)round, (tr - t0) * 1000,
				      (t1 - t0) * 1000, (t2 - t0) * 1000);
		sum += t1 - t0;
		if (t1 - t0 > worst)
			worst = t1 - t0;
		if (t2 - t0 > worst_unmap)
			worst_unmap = t2 - t0;
	}
	/* The operator's view of the last instance: all 8 came back to it. */
	assert_int_equal(
		testd_status_field(t.sock, PROTO_STATUS_CLIENTS_REATTACHED),
		NCLIENTS);
	assert_int_equal(
		testd_status_field(t.sock, PROTO_STATUS_CLIENTS_ADOPTED), 0);
	assert_true(testd_log_count(&t, "after losing a previous rcupoold") >=
		    (unsigned)(NCLIENTS * rounds));
	assert_true(ctl_status_has(t.sock, "0 clients adopted at start, 8 "
					   "re-attached since"));
	for (int i = 0; i < NCLIENTS; i++) {
		int v = client_finish(cl[i]);

		if (v != V_OK) {
			print_message("client %d: verdict %d\n", i, v);
			bad++;
		}
	}
	print_message("reattach: %d rounds x %d clients: %s to all "
		      "re-attached mean %.0f ms, worst %.0f ms; old chunks "
		      "unmapped by %.0f ms (worst); bad verdicts %d\n",
		      rounds, NCLIENTS, sig == SIGKILL ? "SIGKILL" : "SIGTERM",
		      sum / rounds * 1000, worst * 1000, worst_unmap * 1000,
		      bad);
	assert_int_equal(bad, 0);
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_CLIENTS, 0, 5000));
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
	munmap(shared, NCLIENTS * sizeof(*shared));
}

static void test_reattach_kill(void **state)
{
	(void)state;
	reattach_rounds(SIGKILL, ROUNDS);
}

/* A graceful stop (SIGTERM) closes every connection: clients re-attach. */
static void test_reattach_term(void **state)
{
	(void)state;
	reattach_rounds(SIGTERM, 5);
}

int main(void)
{
	const struct CMUnitTest all[] = {
		cmocka_unit_test(test_reattach_kill),
		cmocka_unit_test(test_reattach_term),
	};

	return cmocka_run_group_tests(all, NULL, NULL);
}
