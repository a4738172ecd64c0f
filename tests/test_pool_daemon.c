// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * librcupool against the real rcupoold, chunks lent, never shared
 * (DESIGN.md sections 3 and 5):
 *
 *  - attach: a DAEMON pool is attached, asks for chunks ahead of need, and
 *    the daemon lists it (GET_CLIENTS) with what it lent and what the
 *    client holds;
 *  - many processes: several client processes at once, each exact, then
 *    every chunk back and nobody attached;
 *  - kill -9 mid batch: a client killed with pages held (a grace period
 *    blocked): once its process is gone its chunks are retired and
 *    replaced, the reserve whole again;
 *  - daemon dies: the client detaches, frees on through the chunks it has,
 *    then the fallbacks; every object freed exactly once, never early;
 *    rcupool_close works;
 *  - shortage recall: a client idle with a burst's surplus keeps it (ten
 *    drain intervals), until the pools run dry for another client: then
 *    the daemon recalls it down to the idle one's high mark and the
 *    newcomer borrows what came back (pages_recalled);
 *  - reclaim counters and reclaim_min_gap: the pool's reclaim engine's
 *    counters reach the daemon's client row; the pool follows the lease's
 *    reclaim_min_gap (live) unless its own option was set.
 *
 * The daemon is observed from outside only (GET_STATUS, GET_CLIENTS): its
 * memory is its own.  Each test starts its own daemon (tests/lib/testd.h).
 * No timing thresholds: waits are bounded polls of a condition.
 */
#define URCU_API_MAP 1
#include <urcu/urcu-memb.h>

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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "pool.h"
#include "proto.h"
#include "rcupool.h"
#include "stats.h"
#include "testclient.h"
#include "testd.h"

/* Small reserve, short drain: every path runs often. */
static const char *const daemon_args[] = {
	"-o", "reserve.pages_per_cpu=64",      "-o", "reserve.global_pages=64",
	"-o", "reserve.lock_memory=no",	       "-o", "limits.drain_interval=100ms",
	"-o", "limits.client_max_pages=100%", NULL,
};

/* In the file, not -o (which would win over a live set). */
static const char daemon_conf[] = "[limits]\nreclaim_min_gap = 2ms\n";

static uint64_t configured_pages(void)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);

	return 64 * (uint64_t)(n > 0 ? n : 1) + 64;
}

/* --- pools of tclient objects (tests/lib/testclient.h) -------------------- */

static int open_pool(const struct testd *t, const char *name, size_t max,
		     uint32_t min_gap_us, struct rcupool **p)
{
	char err[256] = "";
	struct rcupool_options o = tclient_options(t->sock, name);
	int r;

	o.max_pages = max;
	o.reclaim_min_gap_us = min_gap_us;
	o.errbuf = err;
	o.errbuf_len = sizeof(err);
	r = rcupool_open(&o, p);

	if (r < 0)
		print_message("rcupool_open(%s): %s (%s)\n", name, strerror(-r),
			      err);
	return r;
}

static struct rcupool_stats stats_of(struct rcupool *p)
{
	struct rcupool_stats st = {.size = sizeof(st)};

	assert_int_equal(rcupool_stats(p, &st), 0);
	return st;
}

/* --- the daemon from outside ---------------------------------------------- */

static uint64_t status_u(const struct testd *t, int attr)
{
	return testd_status_field(t->sock, attr);
}

/* The daemon's row for the client with this pid and name (GET_CLIENTS). */
static bool client_row(const struct testd *t, pid_t pid, const char *name,
		       struct stats_row *out)
{
	struct proto_msg m;
	struct nlattr *nla;
	void *buf = NULL;
	char why[256];
	bool found = false;

	if (testd_call(t->sock, PROTO_CMD_GET_CLIENTS, NULL, &m, &buf, why,
		       sizeof(why)) < 0) {
		print_message("GET_CLIENTS: %s\n", why);
		free(buf);
		return false;
	}
	proto_for_each(nla, &m, PROTO_A_CLIENT)
	{
		struct stats_row r;

		if (stats_parse(&stats_client, nla, &r) < 0)
			continue;
		if (r.has[PROTO_CLIENT_PID] &&
		    r.u[PROTO_CLIENT_PID] == (uint64_t)pid &&
		    r.s[PROTO_CLIENT_NAME] &&
		    !strcmp(r.s[PROTO_CLIENT_NAME], name)) {
			*out = r;
			out->s[PROTO_CLIENT_NAME] = NULL; /* points into buf */
			found = true;
		}
	}
	free(buf);
	return found;
}

/* Poll (up to 5 s) until the client's row satisfies ok(row, arg). */
static bool client_row_until(const struct testd *t, pid_t pid,
			     const char *name,
			     bool (*ok)(const struct stats_row *, void *),
			     void *arg, struct stats_row *out)
{
	for (int i = 0; i < 500; i++) {
		if (client_row(t, pid, name, out) && ok(out, arg))
			return true;
		testd_sleep_ms(10);
	}
	return false;
}

/* Every page of the reserve back in the daemon's pools, nobody attached. */
static bool reserve_whole(const struct testd *t, uint64_t total)
{
	for (int i = 0; i < 1000; i++) { /* 10 s */
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

static int setup_with(void **state, const char *const *args)
{
	static struct testd t;

	rcu_register_thread();
	tclient_reset();
	if (testd_start(&t, daemon_conf, args, NULL) < 0) {
		print_message("rcupoold did not start (log %s)\n", t.log);
		return -1;
	}
	*state = &t;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, daemon_args);
}

static int teardown(void **state)
{
	struct testd *t = *state;

	if (t && t->pid > 0)
		assert_int_equal(testd_stop(t), 0);
	if (t)
		testd_cleanup(t);
	rcu_unregister_thread();
	return 0;
}

/* --- attach --------------------------------------------------------------- */

/* The row shows pages lent and held (arg: the pool; NULL: any held > 0). */
static bool row_lent_held(const struct stats_row *r, void *arg)
{
	struct rcupool *p = arg;

	if (!r->has[PROTO_CLIENT_LENT] || !r->has[PROTO_CLIENT_HELD] ||
	    !r->u[PROTO_CLIENT_LENT] ||
	    r->u[PROTO_CLIENT_HELD] > r->u[PROTO_CLIENT_LENT])
		return false;
	if (!p)
		return r->u[PROTO_CLIENT_HELD] > 0;
	/* At rest: exactly what the pool has mapped and holds. */
	return r->u[PROTO_CLIENT_LENT] == stats_of(p).lent_pages &&
	       r->u[PROTO_CLIENT_HELD] == stats_of(p).held;
}

static void test_attach(void **state)
{
	struct testd *t = *state;
	uint64_t total = configured_pages();
	struct rcupool_stats st;
	bool shown;
	struct stats_row row;
	struct rcupool *p;

	assert_true(reserve_whole(t, total));
	assert_int_equal(open_pool(t, "attach", 0, 0, &p), 0);
	st = stats_of(p);
	assert_int_equal(st.mode, RCUPOOL_MODE_DAEMON);
	assert_int_equal(st.attached, 1);
	/* The pool asks ahead of need: chunks lent before the first free. */
	for (int i = 0; i < 500 && !stats_of(p).lent_pages; i++)
		testd_sleep_ms(10);
	st = stats_of(p);
	assert_true(st.lent_pages > 0);
	assert_int_equal(st.lent_pages % st.chunk_pages, 0);
	assert_int_equal(status_u(t, PROTO_STATUS_CLIENTS), 1);

	/* Pages held (our read-side section blocks their grace period). */
	rcu_read_lock();
	for (int i = 0; i < 4 * (int)st.page_capacity; i++)
		rcupool_free(p, tclient_obj_new(0));
	rcupool_flush(p);
	st = stats_of(p);
	shown = client_row_until(t, getpid(), "attach", row_lent_held, NULL,
				 &row);
	rcu_read_unlock(); /* before any assert: a failure must not leave it */
	assert_true(st.held > 0);
	assert_true(shown);
	assert_true(row.u[PROTO_CLIENT_PAGES_GOT] > 0);

	rcupool_barrier(p);
	assert_int_equal(atomic_load(&tclient_freed), 4 * st.page_capacity);
	assert_int_equal(atomic_load(&tclient_double), 0);
	assert_int_equal(stats_of(p).held, 0);
	assert_true(client_row_until(t, getpid(), "attach", row_lent_held, p,
				     &row));
	/* What the daemon counts as lent is what it lent us. */
	assert_int_equal(status_u(t, PROTO_STATUS_PAGES_LENT),
			 stats_of(p).lent_pages);

	rcupool_close(p);
	assert_true(reserve_whole(t, total));
}

/* --- several processes ---------------------------------------------------- */

/* Beyond tclient's verdicts (tests/lib/testclient.h). */
enum verdict {
	V_DETACHED = TCLIENT_V_OWN, /* attached was 0 at the end */
	V_PIPE,			    /* the ready or go byte went astray */
};

struct client {
	const struct testd *t;
	const char *name;
	uint64_t n;
	int *ready, *go; /* pipes: the child writes ready, reads go */
};

/*
 * A client process: attach, say so (a byte on ready), wait for the go (a
 * byte on go), churn n objects with a reader, check, close.
 */
static int client_main(void *arg)
{
	const struct client *cl = arg;
	struct rcupool *p;
	pthread_t rd;
	uint64_t passed;
	char c = 'r';
	int attached, v;

	close(cl->ready[0]);
	close(cl->go[1]);
	/* Registered already: the child is a copy of the test's thread. */
	tclient_reset();
	if (open_pool(cl->t, cl->name, 0, 0, &p) < 0)
		return TCLIENT_V_OPEN;
	rd = tclient_reader_start();
	passed = tclient_churn(p, cl->n / 2);
	if (write(cl->ready[1], &c, 1) != 1 || read(cl->go[0], &c, 1) != 1)
		return V_PIPE;
	passed += tclient_churn(p, cl->n / 2);
	passed += tclient_churn_end(p);
	attached = stats_of(p).attached;
	tclient_reader_stop(rd);
	rcupool_barrier(p);
	if (!attached)
		return V_DETACHED;
	v = tclient_verdict(passed);
	if (v != TCLIENT_V_OK)
		return v;
	rcupool_close(p);
	return TCLIENT_V_OK;
}

static void test_many_processes(void **state)
{
	enum { N = 4 };
	struct testd *t = *state;
	uint64_t total = configured_pages();
	int ready[2], go[2];
	struct client cl = {
		.t = t,
		.name = "many",
		.n = 200000,
		.ready = ready,
		.go = go,
	};
	pid_t kids[N];
	char c;

	assert_true(reserve_whole(t, total));
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	for (int k = 0; k < N; k++) {
		kids[k] = tclient_spawn(client_main, &cl);
		assert_true(kids[k] > 0);
	}
	close(ready[1]);
	close(go[0]);
	for (int k = 0; k < N; k++)
		assert_int_equal(read(ready[0], &c, 1), 1);
	/* All of them at once, each with chunks of its own. */
	assert_int_equal(status_u(t, PROTO_STATUS_CLIENTS), N);
	for (int k = 0; k < N; k++) {
		struct stats_row row;

		assert_true(client_row(t, kids[k], "many", &row));
		assert_true(row.u[PROTO_CLIENT_LENT] > 0);
	}
	assert_true(status_u(t, PROTO_STATUS_PAGES_LENT) > 0);
	for (int k = 0; k < N; k++)
		assert_int_equal(write(go[1], "g", 1), 1);
	for (int k = 0; k < N; k++) {
		/* Killed by a signal: 128 + it, never TCLIENT_V_OK. */
		int v = tclient_wait(kids[k]);

		if (v != TCLIENT_V_OK)
			print_message("client %d: verdict %d\n", (int)kids[k],
				      v);
		assert_int_equal(v, TCLIENT_V_OK);
	}
	close(ready[0]);
	close(go[1]);
	/* Every chunk back, nobody attached. */
	assert_true(reserve_whole(t, total));
}

/* --- kill -9 mid batch ---------------------------------------------------- */

static bool row_holds(const struct stats_row *r, void *arg)
{
	(void)arg;
	return r->u[PROTO_CLIENT_HELD] > 0 && r->u[PROTO_CLIENT_LENT] > 0;
}

/* The killed client: holds full pages and one partial, says so, waits. */
static int killed_main(void *arg)
{
	const struct client *cl = arg;
	struct rcupool *p;

	close(cl->ready[0]);
	if (open_pool(cl->t, cl->name, 0, 0, &p) < 0)
		return TCLIENT_V_OPEN;
	/* Grace periods blocked: full pages held, one partial. */
	rcu_read_lock();
	for (int i = 0; i < 5000; i++)
		rcupool_free(p, tclient_obj_new(0));
	if (write(cl->ready[1], "r", 1) != 1)
		return V_PIPE;
	pause();
	return 0;
}

static void test_kill_mid_batch(void **state)
{
	struct testd *t = *state;
	uint64_t total = configured_pages(), retired0, lent;
	struct stats_row row;
	int fds[2];
	struct client cl = {.t = t, .name = "killed", .ready = fds};
	pid_t kid;
	char c;

	assert_true(reserve_whole(t, total));
	retired0 = status_u(t, PROTO_STATUS_CHUNKS_RETIRED);
	assert_int_equal(pipe(fds), 0);
	kid = tclient_spawn(killed_main, &cl);
	assert_true(kid > 0);
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	close(fds[0]);
	/* The daemon sees it holding pages of the chunks it lent it. */
	assert_true(client_row_until(t, kid, "killed", row_holds, NULL, &row));
	lent = row.u[PROTO_CLIENT_LENT];
	assert_true(status_u(t, PROTO_STATUS_PAGES_FREE) < total);
	kill(kid, SIGKILL);
	assert_int_equal(waitpid(kid, NULL, 0), kid);
	/*
	 * Its process gone: its chunks are retired (never lent again) and
	 * replaced by new ones; the reserve is whole.
	 */
	assert_true(reserve_whole(t, total));
	assert_true(status_u(t, PROTO_STATUS_CHUNKS_RETIRED) >=
		    retired0 + lent / status_u(t, PROTO_STATUS_CHUNK_PAGES));
	assert_int_equal(status_u(t, PROTO_STATUS_PAGES_LENT), 0);
}

/* --- the daemon dies ------------------------------------------------------ */

static void test_daemon_dies(void **state)
{
	struct testd *t = *state;
	struct rcupool_stats st, st1;
	struct rcupool *p;
	uint64_t passed = 0, n;
	pthread_t rd;

	assert_int_equal(open_pool(t, "orphan", 0, 0, &p), 0);
	rd = tclient_reader_start();
	passed += tclient_churn(p, 10000);
	st = stats_of(p);
	assert_int_equal(st.attached, 1);

	kill(t->pid, SIGKILL);
	waitpid(t->pid, NULL, 0);
	t->pid = -1;
	for (int i = 0; i < 500 && stats_of(p).attached; i++)
		testd_sleep_ms(10);
	st = stats_of(p);
	assert_int_equal(st.attached, 0);
	assert_true(st.lent_pages > 0); /* its chunks stay its own */

	/* Frees go on through the chunks it has. */
	passed += tclient_churn(p, 300000);
	st1 = stats_of(p);
	assert_true(st1.pages_got > st.pages_got);
	assert_int_equal(st1.lent_pages, st.lent_pages);

	/*
	 * Then the fallbacks: inside a read-side section no page comes back,
	 * so more objects than its chunks hold take heap pages; none of them
	 * is freed while the section is open.
	 */
	n = (st1.lent_pages + 8) * st1.page_capacity;
	rcu_read_lock();
	atomic_store(&tclient_section_open, 1);
	for (uint64_t i = 0; i < n; i++)
		rcupool_free(p, tclient_obj_new(1));
	passed += n;
	st = stats_of(p);
	assert_true(st.fallback_overflow > st1.fallback_overflow);
	atomic_store(&tclient_section_open, 0);
	rcu_read_unlock();

	passed += tclient_churn_end(p);
	tclient_reader_stop(rd);
	rcupool_barrier(p);
	assert_int_equal(atomic_load(&tclient_freed), passed);
	assert_int_equal(atomic_load(&tclient_double), 0);
	assert_int_equal(atomic_load(&tclient_early), 0);
	assert_int_equal(stats_of(p).held, 0);
	rcupool_close(p);
}

/* --- the reclaim engine seen by the daemon; reclaim_min_gap --------------- */

static bool row_reclaim(const struct stats_row *r, void *arg)
{
	const struct rcupool_stats *st = arg;

	return r->u[PROTO_CLIENT_THROTTLED] == st->throttled &&
	       r->u[PROTO_CLIENT_THROTTLED_NS] == st->throttled_ns &&
	       r->u[PROTO_CLIENT_GRACE_PERIODS] == st->grace_periods &&
	       r->u[PROTO_CLIENT_GP_P50_NS] == st->gp_latency_p50_ns &&
	       r->u[PROTO_CLIENT_GP_P99_NS] == st->gp_latency_p99_ns;
}

/* Poll (5 s) until the pool's gap is want_us. */
static bool gap_becomes(struct rcupool *p, uint64_t want_us)
{
	uint64_t ns = 0;

	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&p->rlock);
		ns = p->min_gap_ns;
		pthread_mutex_unlock(&p->rlock);
		if (ns == want_us * 1000)
			return true;
		testd_sleep_ms(10);
	}
	print_message("gap %llu ns, the lease's %u us, want %llu us\n",
		      (unsigned long long)ns,
		      atomic_load(&p->lim->reclaim_min_gap_us),
		      (unsigned long long)want_us);
	return false;
}

static void set_limit(const struct testd *t, const char *setting)
{
	const char *set[] = {setting, NULL};
	struct proto_msg m;
	void *buf = NULL;
	char why[256];

	if (testd_call(t->sock, PROTO_CMD_SET_LIMITS, set, &m, &buf, why,
		       sizeof(why)) < 0)
		fail_msg("SET_LIMITS %s: %s", setting, why);
	free(buf);
}

static void test_reclaim_shown(void **state)
{
	struct testd *t = *state;
	uint64_t cp = status_u(t, PROTO_STATUS_CHUNK_PAGES), passed = 0;
	struct rcupool *p, *own;
	struct rcupool_stats st;
	struct stats_row row;

	assert_true(cp > 0 && cp != UINT64_MAX);
	/* One chunk at most: backpressure at once. */
	assert_int_equal(open_pool(t, "reclaim", cp, 0, &p), 0);
	assert_int_equal(open_pool(t, "own_gap", 0, 5000, &own), 0);
	/* The daemon's [limits] reclaim_min_gap (2ms), not the default. */
	assert_true(gap_becomes(p, 2000));
	assert_true(gap_becomes(own, 5000));
	/* Live: rcupoolctl set reaches the pool that follows the lease. */
	set_limit(t, "limits.reclaim_min_gap=20ms");
	assert_true(gap_becomes(p, 20000));
	assert_true(gap_becomes(own, 5000));
	/*
	 * One heap page beyond the chunk (the lease is written before the
	 * reply): the free path waits for the reclaim (throttled).
	 */
	set_limit(t, "limits.overflow_pages=1");

	for (int round = 0; round < 10; round++)
		passed += tclient_churn(p, 20000);
	passed += tclient_churn_end(p);
	rcupool_barrier(p);
	assert_int_equal(atomic_load(&tclient_freed), passed);
	assert_int_equal(atomic_load(&tclient_double), 0);
	st = stats_of(p);
	print_message("# reclaim: %llu throttled (%llu ns), %llu grace "
		      "periods, p50 %llu ns, p99 %llu ns\n",
		      (unsigned long long)st.throttled,
		      (unsigned long long)st.throttled_ns,
		      (unsigned long long)st.grace_periods,
		      (unsigned long long)st.gp_latency_p50_ns,
		      (unsigned long long)st.gp_latency_p99_ns);
	assert_true(st.throttled > 0);
	assert_true(st.throttled_ns > 0);
	assert_true(st.grace_periods > 0);
	assert_true(st.gp_latency_p50_ns > 0);
	/* The daemon shows what the pool counted (copied each drain tick). */
	assert_true(client_row_until(t, getpid(), "reclaim", row_reclaim, &st, &row) ||
		    (print_message("daemon: throttled %llu/%llu gps %llu/%llu "
				   "p50 %llu/%llu p99 %llu/%llu\n",
				   (unsigned long long)row.u[PROTO_CLIENT_THROTTLED],
				   (unsigned long long)st.throttled,
				   (unsigned long long)row.u[PROTO_CLIENT_GRACE_PERIODS],
				   (unsigned long long)st.grace_periods,
				   (unsigned long long)row.u[PROTO_CLIENT_GP_P50_NS],
				   (unsigned long long)st.gp_latency_p50_ns,
				   (unsigned long long)row.u[PROTO_CLIENT_GP_P99_NS],
				   (unsigned long long)st.gp_latency_p99_ns),
		     false));
	rcupool_close(own);
	rcupool_close(p);
}

/* --- a shortage recalls another client's idle surplus --------------------- */

/*
 * A long drain interval: a client keeps its surplus ten of them (50 s), so
 * what it gives back within the test was recalled, not given on its own.
 */
static const char *const recall_args[] = {
	"-o", "reserve.pages_per_cpu=64",      "-o", "reserve.global_pages=64",
	"-o", "reserve.lock_memory=no",	       "-o", "limits.drain_interval=5s",
	"-o", "limits.client_max_pages=100%", NULL,
};

static int setup_recall(void **state)
{
	return setup_with(state, recall_args);
}

static bool lent_until(struct rcupool *p, bool (*ok)(uint64_t, uint64_t),
		       uint64_t arg)
{
	for (int i = 0; i < 1000; i++) { /* 10 s */
		if (ok(stats_of(p).lent_pages, arg))
			return true;
		testd_sleep_ms(10);
	}
	return false;
}

static bool at_most(uint64_t v, uint64_t arg)
{
	return v <= arg;
}

static bool at_least(uint64_t v, uint64_t arg)
{
	return v >= arg;
}

static void test_recall_idle(void **state)
{
	struct testd *t = *state;
	uint64_t total = configured_pages(), cp, high, lent_a, depl;
	struct rcupool *a, *b;
	struct rcupool_stats st;
	bool ok;
	int i;

	assert_true(reserve_whole(t, total));
	assert_int_equal(open_pool(t, "burst", 0, 0, &a), 0);
	st = stats_of(a);
	cp = st.chunk_pages;
	/*
	 * A burst whose grace period cannot end (our read-side section):
	 * the pool borrows until the daemon has no chunk left for it.
	 */
	depl = status_u(t, PROTO_STATUS_DEPLETIONS);
	rcu_read_lock();
	for (i = 0; i < 2000 && status_u(t, PROTO_STATUS_DEPLETIONS) == depl;
	     i++) {
		for (uint32_t j = 0; j < st.page_capacity; j++)
			rcupool_free(a, tclient_obj_new(0));
		testd_sleep_ms(2);
	}
	rcu_read_unlock();
	assert_true(status_u(t, PROTO_STATUS_DEPLETIONS) > depl);
	rcupool_barrier(a);
	assert_int_equal(stats_of(a).held, 0);
	/* Idle now, every page free, far above its high mark: kept. */
	high = atomic_load(&a->lim->high_pages);
	lent_a = stats_of(a).lent_pages;
	assert_true(lent_a > high);
	/* Nobody was short of pages while it borrowed: nothing recalled. */
	assert_int_equal(status_u(t, PROTO_STATUS_PAGES_RECALLED), 0);

	/*
	 * Another client: the pools are dry, so the daemon asks the idle one
	 * for its surplus, which comes back down to between its marks, and
	 * the newcomer gets its chunk above low.
	 */
	assert_int_equal(open_pool(t, "newcomer", 0, 0, &b), 0);
	assert_true(lent_until(a, at_most, high));
	assert_true(status_u(t, PROTO_STATUS_PAGES_RECALLED) > 0);
	assert_true(status_u(t, PROTO_STATUS_PAGES_RECALLED) % cp == 0);
	assert_true(stats_of(a).chunks_returned > 0);
	/* The newcomer, its pages held, borrows from what came back. */
	rcu_read_lock();
	for (i = 0; i < 3 * (int)st.page_capacity; i++)
		rcupool_free(b, tclient_obj_new(0));
	ok = lent_until(b, at_least, atomic_load(&b->lim->low_pages) + cp);
	rcu_read_unlock(); /* before any assert: a failure must not leave it */
	assert_true(ok);
	rcupool_barrier(b);
	/* The one recalled still works, from what it kept. */
	for (i = 0; i < 4 * (int)st.page_capacity; i++)
		rcupool_free(a, tclient_obj_new(0));
	rcupool_barrier(a);
	assert_int_equal(atomic_load(&tclient_double), 0);
	rcupool_close(b);
	rcupool_close(a);
	assert_true(reserve_whole(t, total));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_attach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_processes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kill_mid_batch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_daemon_dies, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recall_idle, setup_recall,
						teardown),
		cmocka_unit_test_setup_teardown(test_reclaim_shown, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
