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
 *  - with the fd store (tests/lib/fdstore.h standing in for systemd's):
 *    the same 8 clients; the daemon SIGKILLed (10 rounds) or stopped with
 *    SIGTERM (3 rounds) and the next one started with the stored fds.
 *    Every client stays attached throughout (attached never 0, reattaches
 *    0: no EOF), the new instance adopted all 8 (status, log, rcupoolctl
 *    status), `rcupoolctl clients` lists the 8 with their held pages, the
 *    census is exact and the reserve whole again, and each client freed
 *    every object once, never early.  The same across a larger [reserve]
 *    (the pools grow to it, lent chunks stay lent) and a smaller one
 *    (surplus pool chunks retired at start, lent ones as they come back).
 *  - garbage in the store (a pipe and a wrong-size memfd named as chunks,
 *    a malformed name, a pipe as a lease): the daemon starts, names each
 *    in its log, counts them, drops them from the store and serves.
 *  - one chunk under its pool and its lent name (killed between the two
 *    steps of a lend): the lent name wins, the books stay exact.
 *  - a client that exits while no daemon runs: its chunks are retired.
 *  - a request the dead daemon read and never answered (taken off a
 *    stored connection while the daemon is stopped): the client sends it
 *    again once its lease shows the next instance, and carries on.
 *
 * A client's verdict is its exit status (tests/lib/testclient.h).
 */
#define URCU_API_MAP 1
#include <urcu/urcu-memb.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fdstore.h"
#include "lease.h"
#include "proto.h"
#include "rcupool.h"
#include "testclient.h"
#include "stats.h"
#include "testd.h"

#define NCLIENTS 8
#define ROUNDS	 20
#define MAX_INO	 4096

/* What a client shows the test (a shared anonymous mapping). */
struct cstate {
	_Atomic int attached;
	_Atomic int lost; /* attached went 0 after it was 1 */
	_Atomic uint64_t reattaches;
	_Atomic uint64_t passed;
	_Atomic uint64_t lent_pages;
};

static struct cstate *shared;

/* --- the client process --------------------------------------------------- */

/* Shows the pool's stats every 2 ms (the freeing loop may be slowed). */
static struct rcupool *c_pool;
static struct cstate *c_me;

static void *client_reporter(void *arg)
{
	struct rcupool_stats st = {.size = sizeof(st)};

	bool seen = false;

	(void)arg;
	while (!atomic_load(&tclient_stop)) {
		if (rcupool_stats(c_pool, &st) == 0) {
			if (st.attached)
				seen = true;
			else if (seen)
				atomic_store(&c_me->lost, 1);
			atomic_store(&c_me->attached, st.attached);
			atomic_store(&c_me->reattaches, st.reattaches);
			atomic_store(&c_me->lent_pages, st.lent_pages);
		}
		usleep(2000);
	}
	return NULL;
}

struct client {
	const char *sock;
	struct cstate *me;
};

static int client_main(void *arg)
{
	const struct client *c = arg;
	struct rcupool_options o = tclient_options(c->sock, "restart");
	struct rcupool *p;
	pthread_t rd, rep;
	uint64_t passed = 0;
	int v;

	if (rcupool_open(&o, &p) < 0)
		return TCLIENT_V_OPEN;
	c_pool = p;
	c_me = c->me;
	rcu_register_thread();
	rd = tclient_reader_start();
	pthread_create(&rep, NULL, client_reporter, NULL);
	while (!atomic_load(&tclient_stop)) {
		passed += tclient_churn(p, 4096);
		atomic_store(&c->me->passed, passed);
	}
	passed += tclient_churn_end(p);
	tclient_reader_stop(rd);
	pthread_join(rep, NULL);
	rcupool_barrier(p);
	rcu_unregister_thread();
	v = tclient_verdict(passed);
	if (v != TCLIENT_V_OK)
		return v;
	rcupool_close(p);
	return TCLIENT_V_OK;
}

static pid_t client_spawn(const char *sock, int i)
{
	/* The child's copy of it is the one it reads. */
	struct client c = {.sock = sock, .me = &shared[i]};
	pid_t pid = tclient_spawn(client_main, &c);

	assert_true(pid > 0);
	return pid;
}

/* --- looking at a client from outside ------------------------------------- */

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
		testd_sleep_ms(10);
	assert_true(all_attached(0));
	testd_sleep_ms(300);
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
			testd_sleep_ms(2);
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
				testd_sleep_ms(10);
			assert_false(maps_any_of(cl[i], old[i], nold[i]));
			/* Ours and the current daemon's lease, no more. */
			assert_true(maps_of(cl[i], "rcupool-lease", NULL, 0) <=
				    2);
		}
		t2 = now_s();
		for (int i = 0; i < NCLIENTS; i++) {
			int n = count_fds(cl[i]);

			for (int k = 0; k < 100 && n != fd0[i]; k++) {
				testd_sleep_ms(10);
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
		int v = tclient_finish(cl[i]);

		if (v != TCLIENT_V_OK) {
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

/* --- with the fd store ------------------------------------------------------
 */

/*
 * Rows of `rcupoolctl clients` (as a user runs it) for the processes in
 * pids (slot pid uid name held ...), their held pages summed in *held;
 * -1 if it failed.
 */
static int ctl_clients(const char *sock, const pid_t *pids, int npids,
		       uint64_t *held)
{
	char prog[PATH_MAX], cmd[2 * PATH_MAX + 64], line[512];
	int n = 0;
	FILE *f;

	*held = 0;
	testd_program("rcupoolctl", prog, sizeof(prog));
	snprintf(cmd, sizeof(cmd), "'%s' --socket='%s' clients", prog, sock);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long h;
		char name[64];
		int slot, pid, uid;

		if (getenv("RESTART_VERBOSE"))
			print_message("clients: %s", line);
		if (sscanf(line, "%d %d %d %63s %llu", &slot, &pid, &uid, name,
			   &h) != 5 ||
		    strcmp(name, "restart"))
			continue;
		for (int i = 0; i < npids; i++)
			if (pids[i] == pid) {
				n++;
				*held += h;
			}
	}
	return pclose(f) == 0 ? n : -1;
}

static bool none_lost(void)
{
	for (int i = 0; i < NCLIENTS; i++)
		if (atomic_load(&shared[i].lost) ||
		    atomic_load(&shared[i].reattaches) != 0 ||
		    atomic_load(&shared[i].attached) != 1)
			return false;
	return true;
}

static bool census_ok(const char *sock, char *msg, size_t len)
{
	struct proto_msg m;
	void *buf = NULL;
	int r = testd_call(sock, PROTO_CMD_CENSUS, NULL, &m, &buf, msg, len);

	free(buf);
	return r == 0;
}

/* The chunks the daemon of sock has, once it has made them all. */
static uint64_t wait_chunks(const char *sock, uint64_t want)
{
	uint64_t n = 0;

	for (int i = 0; i < 500; i++) {
		n = testd_status_field(sock, PROTO_STATUS_CHUNKS_TOTAL);
		if (n == want)
			break;
		testd_sleep_ms(10);
	}
	return n;
}

static const char *const big_args[] = {
	"-o", "reserve.pages_per_cpu=512",
	"-o", "reserve.global_pages=512",
	"-o", "reserve.lock_memory=no",
	"-o", "balance.interval=10ms",
	"-o", "balance.census_interval=10ms",
	"-o", "limits.drain_interval=10ms",
	NULL,
};

static const char *const small_args[] = {
	"-o", "reserve.pages_per_cpu=64",
	"-o", "reserve.global_pages=64",
	"-o", "reserve.lock_memory=no",
	"-o", "balance.interval=10ms",
	"-o", "balance.census_interval=10ms",
	"-o", "limits.drain_interval=10ms",
	NULL,
};

/*
 * 8 clients freeing flat out; the daemon killed (sig) and the next one
 * started with the stored fds, rounds times; next_args for the next
 * instances (a changed [reserve]).
 */
static void store_rounds(struct fdstore *s, int sig, int rounds,
			 const char *const *next_args)
{
	struct testd t;
	const char *env[2];
	pid_t cl[NCLIENTS];
	double sum_ready = 0, sum_served = 0, worst = 0;
	uint64_t chunks0, chunks1, cp, cpus;
	char msg[512];
	int bad = 0;

	shared = mmap(NULL, NCLIENTS * sizeof(*shared), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(shared != MAP_FAILED);
	memset(shared, 0, NCLIENTS * sizeof(*shared));
	assert_int_equal(fdstore_open(s), 0);
	env[0] = s->env;
	env[1] = NULL;
	assert_int_equal(testd_start(&t, NULL, fast_args, env), 0);
	for (int i = 0; i < NCLIENTS; i++)
		cl[i] = client_spawn(t.sock, i);
	for (int i = 0; i < 1000 && !all_attached(0); i++)
		testd_sleep_ms(10);
	assert_true(all_attached(0));
	chunks0 = testd_status_field(t.sock, PROTO_STATUS_CHUNKS_TOTAL);
	cp = testd_status_field(t.sock, PROTO_STATUS_CHUNK_PAGES);
	cpus = testd_status_field(t.sock, PROTO_STATUS_CPUS);
	chunks1 = next_args == big_args	    ? (512 * cpus + 512 + cp - 1) / cp
		  : next_args == small_args ? (64 * cpus + 64 + cp - 1) / cp
					    : chunks0;
	testd_sleep_ms(300);

	for (int round = 1; round <= rounds; round++) {
		double t0, tr, ts;
		uint64_t pid, held = 0;
		int listed = 0;

		t0 = now_s();
		if (sig == SIGKILL)
			assert_int_equal(fdstore_kill(&t), 0);
		else
			assert_int_equal(testd_stop(&t), 0);
		assert_int_equal(fdstore_restart_with(&t, s, next_args), 0);
		tr = now_s();
		/* Served: the new instance answers with all 8 clients. */
		while (now_s() - t0 < 60) {
			pid = testd_status_field(t.sock, PROTO_STATUS_PID);
			if (pid == (uint64_t)t.pid &&
			    testd_status_field(t.sock, PROTO_STATUS_CLIENTS) ==
				    NCLIENTS)
				break;
			testd_sleep_ms(1);
		}
		ts = now_s();
		assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_PID),
				 t.pid);
		assert_int_equal(
			testd_status_field(t.sock, PROTO_STATUS_CLIENTS),
			NCLIENTS);
		assert_int_equal(testd_status_field(
					 t.sock, PROTO_STATUS_CLIENTS_ADOPTED),
				 NCLIENTS);
		/* The operator's view, as a user runs it: all 8, and the
		 * pages they hold. */
		for (int k = 0; k < 100 && listed != NCLIENTS; k++) {
			listed = ctl_clients(t.sock, cl, NCLIENTS, &held);
			if (listed != NCLIENTS)
				testd_sleep_ms(10);
		}
		assert_int_equal(listed, NCLIENTS);
		assert_true(held > 0);
		/* The books: exact, and the reserve made whole again. */
		assert_true(census_ok(t.sock, msg, sizeof(msg)));
		if (next_args == small_args) {
			/* Smaller: no pool chunk beyond it; lent ones stay
			 * lent until they come back.  Both counts from one
			 * reply: a chunk given back between two requests
			 * would leave the total read before it and the lent
			 * count after. */
			struct stats_row row;
			uint64_t n, lent;

			assert_int_equal(testd_status_row(t.sock, &row), 0);
			assert_true(row.has[PROTO_STATUS_CHUNKS_TOTAL] &&
				    row.has[PROTO_STATUS_PAGES_LENT]);
			n = row.u[PROTO_STATUS_CHUNKS_TOTAL];
			lent = row.u[PROTO_STATUS_PAGES_LENT] / cp;

			assert_true(n <= chunks0);
			assert_true(n <= (lent > chunks1 ? lent : chunks1));
		} else {
			assert_int_equal(wait_chunks(t.sock, chunks1), chunks1);
		}
		assert_true(census_ok(t.sock, msg, sizeof(msg)));
		/* The clients saw nothing: no EOF, no re-attach. */
		testd_sleep_ms(50);
		for (int i = 0; i < NCLIENTS; i++)
			if (atomic_load(&shared[i].lost) ||
			    atomic_load(&shared[i].reattaches))
				print_message("round %d: client %d lost %d "
					      "reattaches %llu\n",
					      round, i,
					      atomic_load(&shared[i].lost),
					      (unsigned long long)atomic_load(
						      &shared[i].reattaches));
		assert_true(none_lost());
		if (getenv("RESTART_VERBOSE"))
			print_message("round %d: ready %.1f ms, served %.1f "
				      "ms\n",
				      round, (tr - t0) * 1000,
				      (ts - t0) * 1000);
		sum_ready += tr - t0;
		sum_served += ts - t0;
		if (ts - t0 > worst)
			worst = ts - t0;
	}
	assert_int_equal(testd_log_count(&t, "fd store: adopted 8 clients"),
			 (unsigned)rounds);
	if (next_args != fast_args)
		assert_true(testd_log_has(&t, "configured now"));
	if (next_args == small_args)
		assert_true(testd_log_has(&t, "pool chunks retired"));
	assert_true(ctl_status_has(t.sock, "8 clients adopted at start, 0 "
					   "re-attached since"));
	/* Keep freeing across the last instance a while, then the verdicts. */
	testd_sleep_ms(300);
	for (int i = 0; i < NCLIENTS; i++) {
		int v = tclient_finish(cl[i]);

		if (v != TCLIENT_V_OK) {
			print_message("client %d: verdict %d\n", i, v);
			bad++;
		}
	}
	print_message("fd store: %d rounds x %d clients: %s to the next "
		      "instance ready mean %.1f ms, to all %d served mean %.1f "
		      "ms, worst %.1f ms; bad verdicts %d\n",
		      rounds, NCLIENTS, sig == SIGKILL ? "SIGKILL" : "SIGTERM",
		      sum_ready / rounds * 1000, NCLIENTS,
		      sum_served / rounds * 1000, worst * 1000, bad);
	assert_int_equal(bad, 0);
	if (getenv("RESTART_VERBOSE")) {
		char cmd[PATH_MAX + 64];

		snprintf(cmd, sizeof(cmd),
			 "grep -E 'fd store|reserve|adopted|stopping' '%s'",
			 t.log);
		if (system(cmd) < 0)
			print_message("cannot show %s\n", t.log);
	}
	/* Every client exited: its chunks retired, the books exact. */
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_CLIENTS, 0, 5000));
	assert_true(census_ok(t.sock, msg, sizeof(msg)));
	assert_int_equal(wait_chunks(t.sock, chunks1), chunks1);
	assert_int_equal(testd_stop(&t), 0);
	/* The daemon never stored one open file description twice (systemd
	 * would have kept only the first name). */
	assert_int_equal(s->duplicates, 0);
	testd_cleanup(&t);
	fdstore_close(s);
	munmap(shared, NCLIENTS * sizeof(*shared));
}

static void test_store_kill(void **state)
{
	static struct fdstore s;

	(void)state;
	store_rounds(&s, SIGKILL, 10, fast_args);
}

/* systemctl restart sends SIGTERM: the store is kept for the next one. */
static void test_store_term(void **state)
{
	static struct fdstore s;

	(void)state;
	store_rounds(&s, SIGTERM, 3, fast_args);
}

/* A larger [reserve]: lent chunks stay lent, the pools grow to it. */
static void test_store_reserve(void **state)
{
	static struct fdstore s;

	(void)state;
	store_rounds(&s, SIGKILL, 1, big_args);
}

/* A smaller [reserve]: surplus pool chunks go at start, lent ones as they
 * come back; once the clients are gone the reserve is the new size. */
static void test_store_reserve_smaller(void **state)
{
	static struct fdstore s;

	(void)state;
	store_rounds(&s, SIGKILL, 1, small_args);
}

/* Garbage in the store: the daemon starts, names and counts it, serves. */
static void test_store_garbage(void **state)
{
	static struct fdstore s;
	struct testd t;
	const char *env[2];
	int pfd[2], mfd, nfd, lfd;
	uint64_t chunks0, cp;
	char name[64], msg[512];

	(void)state;
	assert_int_equal(fdstore_open(&s), 0);
	env[0] = s.env;
	env[1] = NULL;
	assert_int_equal(testd_start(&t, NULL, fast_args, env), 0);
	chunks0 = testd_status_field(t.sock, PROTO_STATUS_CHUNKS_TOTAL);
	cp = testd_status_field(t.sock, PROTO_STATUS_CHUNK_PAGES);
	/* The listener and every chunk are in the store. */
	fdstore_drain(&s);
	assert_int_equal(fdstore_count(&s, "listen"), 1);
	assert_int_equal(fdstore_count(&s, "chunk."), chunks0);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	snprintf(name, sizeof(name), "chunk.999999.p%llu.cany",
		 (unsigned long long)cp);
	assert_int_equal(fdstore_inject(&s, pfd[0], name), 0);
	mfd = memfd_create("wrong", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(mfd >= 0);
	assert_int_equal(ftruncate(mfd, 4096), 0);
	assert_int_equal(fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW),
			 0);
	snprintf(name, sizeof(name), "chunk.999998.p%llu.c0",
		 (unsigned long long)cp);
	assert_int_equal(fdstore_inject(&s, mfd, name), 0);
	nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(nfd >= 0);
	assert_int_equal(fdstore_inject(&s, nfd, "lent.garbage"), 0);
	assert_int_equal(fdstore_inject(&s, pfd[1],
					"lease.s0.g7.pid1.uid0."
					"min0.max0.x"),
			 0);
	/* A lease whose header asks for chunks of 2^30 pages: taken neither
	 * as the geometry nor as a client. */
	lfd = memfd_create("lease", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(lfd >= 0);
	assert_int_equal(ftruncate(lfd, LEASE_SIZE), 0);
	{
		struct lease_shm h = {.magic = LEASE_MAGIC,
				      .version = LEASE_VERSION,
				      .size = sizeof(h),
				      .page_size = 4096,
				      .chunk_pages = 1u << 30,
				      .client_id = 1};

		assert_int_equal(pwrite(lfd, &h, sizeof(h), 0),
				 (ssize_t)sizeof(h));
	}
	assert_int_equal(fcntl(lfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW),
			 0);
	assert_int_equal(fdstore_inject(&s, lfd,
					"lease.s1.g9.pid1.uid0.min0.max0.y"),
			 0);
	assert_int_equal(fdstore_kill(&t), 0);
	assert_int_equal(fdstore_restart_with(&t, &s, fast_args), 0);
	/* Serves, with the reserve it had. */
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_PID), t.pid);
	assert_int_equal(wait_chunks(t.sock, chunks0), chunks0);
	assert_true(census_ok(t.sock, msg, sizeof(msg)));
	/* Each named in the log, and counted. */
	snprintf(name, sizeof(name), "chunk.999999.p%llu.cany",
		 (unsigned long long)cp);
	assert_true(testd_log_has(&t, name));
	snprintf(name, sizeof(name), "chunk.999998.p%llu.c0",
		 (unsigned long long)cp);
	assert_true(testd_log_has(&t, name));
	assert_true(testd_log_has(&t, "lent.garbage"));
	assert_true(testd_log_has(&t, "lease.s0.g7.pid1.uid0.min0.max0.x"));
	assert_true(testd_log_has(&t, "lease.s1.g9.pid1.uid0.min0.max0.y"));
	assert_true(testd_log_has(&t, "5 fds rejected"));
	assert_true(testd_log_has(&t, "adopted 0 clients, 0 lent chunks"));
	/* And taken out of the store. */
	for (int i = 0; i < 200 && fdstore_count(&s, "chunk.99999"); i++)
		testd_sleep_ms(5);
	assert_int_equal(fdstore_count(&s, "chunk.99999"), 0);
	assert_int_equal(fdstore_count(&s, "lent."), 0);
	assert_int_equal(fdstore_count(&s, "chunk."), chunks0);
	close(pfd[0]);
	close(pfd[1]);
	close(mfd);
	close(nfd);
	close(lfd);
	assert_int_equal(s.duplicates, 0);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
	fdstore_close(&s);
}

/* Two clients on a daemon with the store; their pids in cl. */
static void two_clients(struct fdstore *s, struct testd *t, pid_t *cl)
{
	const char *env[2] = {s->env, NULL};

	shared = mmap(NULL, NCLIENTS * sizeof(*shared), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(shared != MAP_FAILED);
	memset(shared, 0, NCLIENTS * sizeof(*shared));
	assert_int_equal(fdstore_open(s), 0);
	assert_int_equal(testd_start(t, NULL, fast_args, env), 0);
	for (int i = 0; i < 2; i++)
		cl[i] = client_spawn(t->sock, i);
	for (int i = 0; i < 1000 && !(atomic_load(&shared[0].attached) &&
				      atomic_load(&shared[1].attached));
	     i++)
		testd_sleep_ms(10);
	assert_int_equal(atomic_load(&shared[0].attached), 1);
	assert_int_equal(atomic_load(&shared[1].attached), 1);
	testd_sleep_ms(300);
}

/*
 * Killed between storing a chunk's lent name and removing its pool name:
 * the same id under both.  The lent name wins (it may have reached the
 * client); the pool name is dropped; the chunk is counted once, stays
 * lent to that client until it exits, then is retired.
 */
static void test_store_twice(void **state)
{
	static struct fdstore s;
	struct testd t;
	pid_t cl[2];
	char pool[256], lease[256], lent[300], msg[512];
	unsigned long long id, pages;
	unsigned int slot;
	unsigned long long gen;
	char cpu[16];
	uint64_t chunks0;
	int fd;

	(void)state;
	two_clients(&s, &t, cl);
	chunks0 = testd_status_field(t.sock, PROTO_STATUS_CHUNKS_TOTAL);
	assert_int_equal(fdstore_kill(&t), 0);
	fdstore_drain(&s);
	fd = fdstore_find(&s, "chunk.", 0, pool, sizeof(pool));
	assert_true(fd >= 0);
	assert_true(fdstore_find(&s, "lease.", 0, lease, sizeof(lease)) >= 0);
	assert_int_equal(
		sscanf(pool, "chunk.%llu.p%llu.c%15s", &id, &pages, cpu), 3);
	assert_int_equal(sscanf(lease, "lease.s%u.g%llu.", &slot, &gen), 2);
	snprintf(lent, sizeof(lent), "lent.%llu.p%llu.c%s.s%u.g%llu", id, pages,
		 cpu, slot, gen);
	/* As the daemon stores it: a description of its own, read-only. */
	snprintf(msg, sizeof(msg), "/proc/self/fd/%d", fd);
	fd = open(msg, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fdstore_inject(&s, fd, lent), 0);
	close(fd);
	assert_int_equal(fdstore_restart_with(&t, &s, fast_args), 0);
	assert_int_equal(
		testd_status_field(t.sock, PROTO_STATUS_CLIENTS_ADOPTED), 2);
	assert_true(testd_log_has(&t, "1 stale names dropped, 0 fds rejected"));
	assert_true(census_ok(t.sock, msg, sizeof(msg)));
	assert_int_equal(wait_chunks(t.sock, chunks0), chunks0);
	/* The store: the lent name kept, the pool name gone. */
	for (int i = 0; i < 200 && fdstore_count(&s, pool); i++)
		testd_sleep_ms(5);
	assert_int_equal(fdstore_count(&s, pool), 0);
	assert_int_equal(fdstore_count(&s, lent), 1);
	for (int i = 0; i < 2; i++)
		assert_int_equal(tclient_finish(cl[i]), TCLIENT_V_OK);
	assert_false(atomic_load(&shared[0].lost) ||
		     atomic_load(&shared[1].lost));
	/* Its client exited: retired with the rest, the books exact. */
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_CLIENTS, 0, 5000));
	assert_true(census_ok(t.sock, msg, sizeof(msg)));
	assert_int_equal(wait_chunks(t.sock, chunks0), chunks0);
	for (int i = 0; i < 200 && fdstore_count(&s, "lent."); i++)
		testd_sleep_ms(5);
	assert_int_equal(fdstore_count(&s, "lent."), 0);
	assert_int_equal(fdstore_count(&s, "lease."), 0);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
	fdstore_close(&s);
	munmap(shared, NCLIENTS * sizeof(*shared));
}

/* A client that exits while no daemon runs: its chunks are retired. */
static void test_store_client_gone(void **state)
{
	static struct fdstore s;
	struct testd t;
	pid_t cl[2];
	char msg[512], text[64];
	uint64_t chunks0;

	(void)state;
	two_clients(&s, &t, cl);
	chunks0 = testd_status_field(t.sock, PROTO_STATUS_CHUNKS_TOTAL);
	assert_int_equal(fdstore_kill(&t), 0);
	kill(cl[1], SIGKILL);
	assert_int_equal(waitpid(cl[1], NULL, 0), cl[1]);
	assert_int_equal(fdstore_restart_with(&t, &s, fast_args), 0);
	assert_int_equal(
		testd_status_field(t.sock, PROTO_STATUS_CLIENTS_ADOPTED), 1);
	snprintf(text, sizeof(text), "(pid %d, slot", (int)cl[1]);
	assert_true(testd_log_has(&t, text));
	assert_true(testd_log_has(&t, "exited while no rcupoold ran"));
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_CLIENTS), 1);
	assert_true(census_ok(t.sock, msg, sizeof(msg)));
	assert_int_equal(wait_chunks(t.sock, chunks0), chunks0);
	for (int i = 0; i < 200 && fdstore_count(&s, "lease.") != 1; i++)
		testd_sleep_ms(5);
	assert_int_equal(fdstore_count(&s, "lease."), 1);
	assert_int_equal(tclient_finish(cl[0]), TCLIENT_V_OK);
	assert_false(atomic_load(&shared[0].lost));
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_CLIENTS, 0, 5000));
	assert_true(census_ok(t.sock, msg, sizeof(msg)));
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
	fdstore_close(&s);
	munmap(shared, NCLIENTS * sizeof(*shared));
}

/* tclient_finish, but a client that does not finish in secs is a failure
 * (-2), not a hung test. */
static int client_finish_within(pid_t pid, int secs)
{
	int status;

	kill(pid, SIGUSR1);
	for (int i = 0; i < secs * 100; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return tclient_exit_verdict(pid, status);
		testd_sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -2;
}

/*
 * A request the dead daemon read and never answered: taken off a client's
 * stored connection while the daemon is stopped, then the daemon killed.
 * The client's call sees the next instance's generation in its lease and
 * sends the request again: it carries on, exits cleanly.
 */
static void test_store_lost_request(void **state)
{
	static struct fdstore s;
	struct testd t;
	pid_t cl[2];
	struct pollfd p[2];
	char name[256];
	void *buf = malloc(PROTO_MSG_MAX);
	const struct nlmsghdr *nlh = buf;
	const struct genlmsghdr *g;
	ssize_t n = -1;
	int r;

	(void)state;
	assert_non_null(buf);
	two_clients(&s, &t, cl);
	fdstore_drain(&s);
	assert_int_equal(kill(t.pid, SIGSTOP), 0);
	for (int k = 0; k < 2; k++) {
		p[k].fd = fdstore_find(&s, "conn.", (size_t)k, name,
				       sizeof(name));
		p[k].events = POLLIN;
		assert_true(p[k].fd >= 0);
	}
	/* Freeing flat out, a client asks for chunks within moments. */
	r = poll(p, 2, 10000);
	assert_true(r > 0);
	for (int k = 0; k < 2 && n < 0; k++)
		if (p[k].revents & POLLIN)
			n = recv(p[k].fd, buf, PROTO_MSG_MAX, MSG_DONTWAIT);
	assert_true(n >= (ssize_t)(NLMSG_HDRLEN + GENL_HDRLEN));
	g = (const struct genlmsghdr *)((const char *)buf + NLMSG_HDRLEN);
	assert_true(nlh->nlmsg_flags & NLM_F_REQUEST);
	assert_true(g->cmd == PROTO_CMD_CHUNK_GET ||
		    g->cmd == PROTO_CMD_CHUNK_PUT);
	print_message("took a %s request (seq %u) off a client's connection\n",
		      g->cmd == PROTO_CMD_CHUNK_GET ? "CHUNK_GET" : "CHUNK_PUT",
		      nlh->nlmsg_seq);
	assert_int_equal(fdstore_kill(&t), 0);
	assert_int_equal(fdstore_restart_with(&t, &s, fast_args), 0);
	assert_int_equal(
		testd_status_field(t.sock, PROTO_STATUS_CLIENTS_ADOPTED), 2);
	/* Both keep going a while past the resend, then finish cleanly. */
	testd_sleep_ms(2500);
	for (int i = 0; i < 2; i++)
		assert_int_equal(client_finish_within(cl[i], 30), TCLIENT_V_OK);
	assert_false(atomic_load(&shared[0].lost) ||
		     atomic_load(&shared[1].lost));
	assert_true(testd_wait_status(t.sock, PROTO_STATUS_CLIENTS, 0, 5000));
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
	fdstore_close(&s);
	munmap(shared, NCLIENTS * sizeof(*shared));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest all[] = {
		cmocka_unit_test(test_store_garbage),
		cmocka_unit_test(test_store_twice),
		cmocka_unit_test(test_store_client_gone),
		cmocka_unit_test(test_store_lost_request),
		cmocka_unit_test(test_store_kill),
		cmocka_unit_test(test_store_term),
		cmocka_unit_test(test_store_reserve),
		cmocka_unit_test(test_store_reserve_smaller),
		cmocka_unit_test(test_reattach_kill),
		cmocka_unit_test(test_reattach_term),
	};

	/* RESTART_ONLY=test_store_* runs some of them (cmocka's filter). */
	if (getenv("RESTART_ONLY"))
		cmocka_set_test_filter(getenv("RESTART_ONLY"));
	return cmocka_run_group_tests(all, NULL, NULL);
}
