// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Scenarios 1 and 2 of the benchmark suite.
 *
 * 1. End-to-end free cost: N objects of S bytes on T threads, timed from
 *    the first free until every object is really freed (the barrier of each
 *    kind included).  Kinds, run side by side and interleaved round by
 *    round (median of the rounds):
 *      free()                 the bound
 *      call_rcu               one callback per object, + rcu_barrier()
 *      defer_rcu              + rcu_defer_unregister_thread() (its barrier)
 *      sync+free              synchronize_rcu() then free(), small N
 *      rcupool daemon         rcupool_free() on the real rcupoold's reserve
 *      rcupool private        rcupool_free() on an in-process reserve
 *      proto: free in cb      a bench-local page batcher, one call_rcu per
 *                             page, the callback frees the 509 pointers
 *      proto: local free      the same, but the callback hands the page
 *                             back to the thread that filled it, which frees
 *                             2 of its pointers on each later call (and the
 *                             rest at its own barrier): DESIGN.md section 4
 *    The two "proto" rows are a measurement of what handing pages back would
 *    buy; they are not librcupool.
 * 2. Call latency: one thread, each call timed on its own with
 *    clock_gettime (the clock's own cost is printed and not subtracted):
 *    p50, p99, p99.9, max and calls over 50 us of rcupool_free (daemon and
 *    private), defer_rcu, call_rcu and free().  The first 10% are warm-up.
 *
 * --callgrind KIND runs a fixed one-thread workload of one kind with
 * callgrind instrumentation on only around the frees and the barrier;
 * scripts/run-bench.sh --callgrind turns it into instructions per object.
 * Nothing here asserts a time.
 */
#define URCU_API_MAP 1
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <urcu/urcu-memb.h>
#include <valgrind/callgrind.h>

#include "bench_util.h"
#include "rcupool.h"

enum kind {
	K_FREE,
	K_CALL_RCU,
	K_DEFER,
	K_SYNC,
	K_POOL_DAEMON,
	K_POOL_SHIPPED,
	K_POOL_CAPPED,
	K_POOL_PRIVATE,
	K_POOL_PRIV_DEF,
	K_PROTO_CB,
	K_PROTO_LOCAL,
	K_COUNT
};

static const char *const kind_name[K_COUNT] = {
	[K_FREE] = "free()",
	[K_CALL_RCU] = "call_rcu",
	[K_DEFER] = "defer_rcu",
	[K_SYNC] = "synchronize_rcu+free",
	[K_POOL_DAEMON] = "rcupool daemon 100%",
	[K_POOL_SHIPPED] = "rcupool daemon shipped",
	[K_POOL_CAPPED] = "rcupool capped 256",
	[K_POOL_PRIVATE] = "rcupool private",
	[K_POOL_PRIV_DEF] = "rcupool private defaults",
	[K_PROTO_CB] = "proto: free in callback",
	[K_PROTO_LOCAL] = "proto: local free",
};

static const char *const kind_key[K_COUNT] = {
	[K_FREE] = "free",
	[K_CALL_RCU] = "call_rcu",
	[K_DEFER] = "defer_rcu",
	[K_SYNC] = "sync_free",
	[K_POOL_DAEMON] = "rcupool_daemon",
	[K_POOL_SHIPPED] = "rcupool_shipped",
	[K_POOL_CAPPED] = "rcupool_capped",
	[K_POOL_PRIVATE] = "rcupool_private",
	[K_POOL_PRIV_DEF] = "rcupool_private_defaults",
	[K_PROTO_CB] = "proto_free_in_cb",
	[K_PROTO_LOCAL] = "proto_local_free",
};

struct obj {
	struct rcu_head head;
	char payload[];
};

static size_t n_objects = 1000000, obj_size = 64, n_sync = 2000;
static int n_threads = 1, rounds = 5;
static size_t lat_calls = 1000000;
static bool json, do_latency = true;
static const char *only; /* --only KIND: one row, for perf record */
static struct rcupool *pool_daemon, *pool_private;
/* The pool of each rcupool kind (NULL: not available). */
static struct rcupool *pool_of[K_COUNT];
static struct benchd daemon_, daemon_shipped;

/* ---- the prototype batcher (bench-local, not librcupool) -------------- */

#define PROTO_CAP ((4096 - 4 * sizeof(void *)) / sizeof(void *))
#define PROTO_LOCAL_PER_CALL 2

struct proto_page {
	struct rcu_head head;
	struct proto_thread *owner;
	struct proto_page *next;
	uint32_t n, done;
	void *ptrs[PROTO_CAP];
};

struct proto_thread {
	struct proto_page *cur;	   /* being filled */
	struct proto_page *drain;  /* handed back, being freed locally */
	struct proto_page *spare;  /* empty pages for reuse (owner only) */
	_Atomic(struct proto_page *) back; /* pushed by the callback thread */
	bool local;
};

static void proto_cb_free(struct rcu_head *h)
{
	struct proto_page *pg = caa_container_of(h, struct proto_page, head);
	struct proto_page *old;

	for (uint32_t i = 0; i < pg->n; i++)
		free(pg->ptrs[i]);
	pg->n = 0;
	/* The empty page goes back to its owner's list for reuse. */
	old = atomic_load_explicit(&pg->owner->back, memory_order_relaxed);
	do
		pg->next = old;
	while (!atomic_compare_exchange_weak_explicit(
		&pg->owner->back, &old, pg, memory_order_release,
		memory_order_relaxed));
}

static void proto_cb_handback(struct rcu_head *h)
{
	struct proto_page *pg = caa_container_of(h, struct proto_page, head);
	struct proto_page *old;

	pg->done = 0;
	old = atomic_load_explicit(&pg->owner->back, memory_order_relaxed);
	do
		pg->next = old;
	while (!atomic_compare_exchange_weak_explicit(
		&pg->owner->back, &old, pg, memory_order_release,
		memory_order_relaxed));
}

/* Take what the callback thread handed back: pages to drain or reuse. */
static void proto_take_back(struct proto_thread *t)
{
	struct proto_page *l, *next;

	if (!atomic_load_explicit(&t->back, memory_order_relaxed))
		return;
	l = atomic_exchange_explicit(&t->back, NULL, memory_order_acquire);
	for (; l; l = next) {
		next = l->next;
		if (l->n) { /* local mode: still holds pointers */
			l->next = t->drain;
			t->drain = l;
		} else {
			l->next = t->spare;
			t->spare = l;
		}
	}
}

/* Free up to max pointers of the handed-back pages, in this thread. */
static void proto_drain_some(struct proto_thread *t, uint32_t max)
{
	while (max && t->drain) {
		struct proto_page *pg = t->drain;

		while (max && pg->done < pg->n) {
			free(pg->ptrs[pg->done++]);
			max--;
		}
		if (pg->done == pg->n) {
			t->drain = pg->next;
			pg->n = 0;
			pg->next = t->spare;
			t->spare = pg;
		}
	}
}

static struct proto_page *proto_new_page(struct proto_thread *t)
{
	struct proto_page *pg;

	if (!t->spare)
		proto_take_back(t);
	if (t->spare && !t->spare->n) {
		pg = t->spare;
		t->spare = pg->next;
	} else {
		pg = malloc(sizeof(*pg));
		if (!pg)
			abort();
	}
	pg->owner = t;
	pg->n = 0;
	return pg;
}

static void proto_submit(struct proto_thread *t, struct proto_page *pg)
{
	call_rcu(&pg->head, t->local ? proto_cb_handback : proto_cb_free);
}

static inline void proto_free(struct proto_thread *t, void *p)
{
	struct proto_page *pg = t->cur;

	if (t->local) {
		proto_take_back(t);
		proto_drain_some(t, PROTO_LOCAL_PER_CALL);
	}
	if (caa_unlikely(!pg))
		pg = t->cur = proto_new_page(t);
	pg->ptrs[pg->n++] = p;
	if (caa_unlikely(pg->n == PROTO_CAP)) {
		proto_submit(t, pg);
		t->cur = NULL;
	}
}

/* The thread's barrier: submit, wait for the callbacks, free the rest. */
static void proto_finish(struct proto_thread *t)
{
	struct proto_page *pg;

	if (t->cur && t->cur->n)
		proto_submit(t, t->cur);
	else if (t->cur)
		free(t->cur);
	t->cur = NULL;
	rcu_barrier();
	proto_take_back(t);
	proto_drain_some(t, UINT32_MAX);
	while ((pg = t->spare)) {
		t->spare = pg->next;
		free(pg);
	}
}

/* ---- scenario 1 --------------------------------------------------------- */

struct worker {
	pthread_t tid;
	enum kind kind;
	size_t n;
	struct obj **v;
	uint64_t t_loop_end;
};

static pthread_barrier_t start_line, alloc_done;
static uint64_t t_start;

static void obj_cb(struct rcu_head *h)
{
	free(caa_container_of(h, struct obj, head));
}

static void alloc_objs(struct worker *w)
{
	for (size_t i = 0; i < w->n; i++) {
		w->v[i] = malloc(obj_size);
		if (!w->v[i])
			abort();
		w->v[i]->payload[0] = (char)i;
	}
}

static void run_kind(struct worker *w)
{
	struct proto_thread pt = {0};
	size_t n = w->n;
	struct obj **v = w->v;

	switch (w->kind) {
	case K_FREE:
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		break;
	case K_CALL_RCU:
		for (size_t i = 0; i < n; i++)
			call_rcu(&v[i]->head, obj_cb);
		break;
	case K_DEFER:
		for (size_t i = 0; i < n; i++)
			defer_rcu(free, v[i]);
		break;
	case K_SYNC:
		for (size_t i = 0; i < n; i++) {
			synchronize_rcu();
			free(v[i]);
		}
		break;
	case K_POOL_DAEMON:
	case K_POOL_SHIPPED:
	case K_POOL_CAPPED:
	case K_POOL_PRIVATE:
	case K_POOL_PRIV_DEF: {
		struct rcupool *p = pool_of[w->kind];

		for (size_t i = 0; i < n; i++)
			rcupool_free(p, v[i]);
		w->t_loop_end = bench_now_ns();
		rcupool_flush(p);
		return;
	}
	case K_PROTO_CB:
	case K_PROTO_LOCAL:
		pt.local = w->kind == K_PROTO_LOCAL;
		for (size_t i = 0; i < n; i++)
			proto_free(&pt, v[i]);
		w->t_loop_end = bench_now_ns();
		proto_finish(&pt);
		return;
	default:
		abort();
	}
	w->t_loop_end = bench_now_ns();
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	rcu_register_thread();
	if (w->kind == K_DEFER && rcu_defer_register_thread())
		abort();
	alloc_objs(w);
	pthread_barrier_wait(&alloc_done);
	pthread_barrier_wait(&start_line);
	run_kind(w);
	if (w->kind == K_DEFER)
		rcu_defer_unregister_thread(); /* runs its queue: the barrier */
	rcu_unregister_thread();
	return NULL;
}

struct e2e_result {
	double ns;	/* per object, until all are freed */
	double loop_ns; /* per object, until the last call returned */
	double cpu_ns;	/* per object, CPU time of the whole process */
};

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct e2e_result e2e_once(enum kind k, size_t total)
{
	struct worker w[n_threads];
	uint64_t t_end, loop_end = 0, c0, c1;
	size_t per = total / (size_t)n_threads;

	if (!per)
		per = 1;
	/*
	 * Every kind starts from the same heap: without this a kind run after
	 * one whose frees happened in another thread (defer_rcu, call_rcu)
	 * allocated its objects scattered over the bins that one left, and
	 * paid +10 ns/object in cache misses (measured, per round).
	 */
	malloc_trim(0);
	pthread_barrier_init(&start_line, NULL, (unsigned)n_threads + 1);
	pthread_barrier_init(&alloc_done, NULL, (unsigned)n_threads + 1);
	for (int i = 0; i < n_threads; i++) {
		w[i] = (struct worker){.kind = k, .n = per};
		w[i].v = malloc(per * sizeof(*w[i].v));
		if (!w[i].v)
			abort();
		pthread_create(&w[i].tid, NULL, worker_main, &w[i]);
	}
	pthread_barrier_wait(&alloc_done);
	c0 = cpu_ns();
	t_start = bench_now_ns();
	pthread_barrier_wait(&start_line);
	for (int i = 0; i < n_threads; i++) {
		pthread_join(w[i].tid, NULL);
		if (w[i].t_loop_end > loop_end)
			loop_end = w[i].t_loop_end;
	}
	if (k == K_CALL_RCU)
		rcu_barrier();
	else if (pool_of[k])
		rcupool_barrier(pool_of[k]);
	t_end = bench_now_ns();
	c1 = cpu_ns();
	/*
	 * The harness's own arrays, after the clock: each is an munmap(),
	 * whose TLB shootdown waited ~1 ms for the CPU that ran the
	 * reclaim thread (seen in a timeline of the T=2 rows).
	 */
	for (int i = 0; i < n_threads; i++)
		free(w[i].v);
	pthread_barrier_destroy(&start_line);
	pthread_barrier_destroy(&alloc_done);
	return (struct e2e_result){
		.ns = (double)(t_end - t_start) / (double)(per * n_threads),
		.loop_ns = (double)(loop_end - t_start) /
			   (double)(per * n_threads),
		.cpu_ns = (double)(c1 - c0) / (double)(per * n_threads)};
}

/* Ratios against a row --only left out are not printed (no inf). */
static void print_ratio(bool as_json, double num, double den)
{
	if (num && den)
		printf(as_json ? "%.3f" : "%9.2fx", num / den);
	else
		printf(as_json ? "null" : "%10s", "-");
}

static bool kind_available(enum kind k)
{
	if (only && strcmp(only, kind_key[k]))
		return false;
	switch (k) {
	case K_POOL_DAEMON:
	case K_POOL_SHIPPED:
	case K_POOL_CAPPED:
	case K_POOL_PRIVATE:
	case K_POOL_PRIV_DEF:
		return pool_of[k] != NULL;
	default:
		return true;
	}
}

/* ---- scenario 2 --------------------------------------------------------- */

struct lat_result {
	bool ran;
	uint32_t p50, p99, p999, max;
	size_t over50us, n;
};

static struct lat_result latency(enum kind k)
{
	struct lat_result r = {.ran = true};
	size_t warm = lat_calls / 10, n = lat_calls;
	uint32_t *s = malloc(n * sizeof(*s));
	struct timespec a, b;

	if (!s)
		abort();
	if (k == K_DEFER)
		rcu_defer_register_thread();
	for (size_t i = 0; i < warm + n; i++) {
		struct obj *o = malloc(obj_size);

		if (!o)
			abort();
		clock_gettime(CLOCK_MONOTONIC, &a);
		switch (k) {
		case K_FREE:
			free(o);
			break;
		case K_CALL_RCU:
			call_rcu(&o->head, obj_cb);
			break;
		case K_DEFER:
			defer_rcu(free, o);
			break;
		default:
			if (!pool_of[k])
				abort();
			rcupool_free(pool_of[k], o);
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (i >= warm) {
			int64_t d = (b.tv_sec - a.tv_sec) * 1000000000ll +
				    (b.tv_nsec - a.tv_nsec);

			s[i - warm] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
		}
	}
	if (k == K_DEFER)
		rcu_defer_unregister_thread();
	else if (k == K_CALL_RCU)
		rcu_barrier();
	else if (pool_of[k])
		rcupool_barrier(pool_of[k]);
	qsort(s, n, sizeof(*s), bench_cmp_u32);
	r.n = n;
	r.p50 = bench_pct(s, n, 0.5);
	r.p99 = bench_pct(s, n, 0.99);
	r.p999 = bench_pct(s, n, 0.999);
	r.max = s[n - 1];
	for (size_t i = 0; i < n; i++)
		r.over50us += s[i] > 50000;
	free(s);
	return r;
}

/* The clock pair alone (a malloc'd object freed outside it). */
static struct lat_result latency_clock(void)
{
	size_t n = lat_calls / 4;
	uint32_t *s = malloc(n * sizeof(*s));
	struct lat_result r = {.ran = true, .n = n};
	struct timespec a, b;

	for (size_t i = 0; i < n; i++) {
		clock_gettime(CLOCK_MONOTONIC, &a);
		clock_gettime(CLOCK_MONOTONIC, &b);
		s[i] = (uint32_t)((b.tv_sec - a.tv_sec) * 1000000000ll +
				  (b.tv_nsec - a.tv_nsec));
	}
	qsort(s, n, sizeof(*s), bench_cmp_u32);
	r.p50 = bench_pct(s, n, 0.5);
	r.p99 = bench_pct(s, n, 0.99);
	r.p999 = bench_pct(s, n, 0.999);
	r.max = s[n - 1];
	for (size_t i = 0; i < n; i++)
		r.over50us += s[i] > 50000;
	free(s);
	return r;
}

/* ---- callgrind ---------------------------------------------------------- */

static int callgrind_run(const char *what)
{
	enum kind k = K_COUNT;
	struct worker w = {.n = n_objects};

	for (int i = 0; i < K_COUNT; i++)
		if (!strcmp(what, kind_key[i]))
			k = (enum kind)i;
	if (k == K_COUNT || k == K_SYNC || k == K_POOL_DAEMON ||
	    k == K_POOL_SHIPPED || k == K_POOL_CAPPED) {
		fprintf(stderr, "--callgrind: free, call_rcu, defer_rcu, "
				"rcupool_private, rcupool_private_defaults, "
				"proto_free_in_cb or proto_local_free\n");
		return 2;
	}
	w.kind = k;
	w.v = malloc(w.n * sizeof(*w.v));
	rcu_register_thread();
	if (k == K_DEFER)
		rcu_defer_register_thread();
	alloc_objs(&w);
	CALLGRIND_ZERO_STATS;
	CALLGRIND_START_INSTRUMENTATION;
	run_kind(&w);
	if (k == K_DEFER)
		rcu_defer_barrier();
	else if (k == K_CALL_RCU)
		rcu_barrier();
	else if (pool_of[k])
		rcupool_barrier(pool_of[k]);
	CALLGRIND_STOP_INSTRUMENTATION;
	CALLGRIND_DUMP_STATS_AT(kind_key[k]);
	if (k == K_DEFER)
		rcu_defer_unregister_thread();
	rcu_unregister_thread();
	free(w.v);
	printf("%s %zu objects\n", kind_key[k], w.n);
	return 0;
}

/* ---- main --------------------------------------------------------------- */

static void usage(const char *argv0)
{
	printf("usage: %s [--objects N] [--threads T] [--size S] [--rounds R]\n"
	       "       [--sync-objects N] [--latency-calls N] [--quick]\n"
	       "       [--no-daemon] [--json] [--callgrind KIND] [--only KIND]\n"
	       "       [--min-gap US]\n",
	       argv0);
}

int main(int argc, char **argv)
{
	struct rcupool_options o = {.size = sizeof(o), .name = "bench_e2e"};
	struct rcupool_stats st[K_COUNT];
	const char *cg = NULL;
	bool use_daemon = true;
	int c, r;
	char err[256];
	static const char *const dopts[] = {
		"limits.client_max_pages=100%", "reserve.lock_memory=no", NULL};
	static const char *const sopts[] = {"reserve.lock_memory=no", NULL};
	static const struct option lo[] = {
		{"objects", required_argument, NULL, 'n'},
		{"threads", required_argument, NULL, 't'},
		{"size", required_argument, NULL, 's'},
		{"rounds", required_argument, NULL, 'r'},
		{"sync-objects", required_argument, NULL, 'S'},
		{"latency-calls", required_argument, NULL, 'L'},
		{"quick", no_argument, NULL, 'q'},
		{"no-daemon", no_argument, NULL, 'D'},
		{"no-latency", no_argument, NULL, 'N'},
		{"json", no_argument, NULL, 'j'},
		{"callgrind", required_argument, NULL, 'C'},
		{"only", required_argument, NULL, 'O'},
		{"min-gap", required_argument, NULL, 'g'},
		{"help", no_argument, NULL, 'h'},
		{}};

	while ((c = getopt_long(argc, argv, "n:t:s:r:S:L:qDNjC:O:g:h", lo, NULL)) !=
	       -1) {
		switch (c) {
		case 'n':
			n_objects = strtoul(optarg, NULL, 0);
			break;
		case 't':
			n_threads = atoi(optarg);
			break;
		case 's':
			obj_size = strtoul(optarg, NULL, 0);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'O':
			only = optarg;
			break;
		case 'g':
			o.reclaim_min_gap_us = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'S':
			n_sync = strtoul(optarg, NULL, 0);
			break;
		case 'L':
			lat_calls = strtoul(optarg, NULL, 0);
			break;
		case 'q':
			rounds = 3;
			lat_calls = 500000;
			n_sync = 1000;
			break;
		case 'D':
			use_daemon = false;
			break;
		case 'N':
			do_latency = false;
			break;
		case 'j':
			json = true;
			break;
		case 'C':
			cg = optarg;
			break;
		default:
			usage(argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	if (!n_objects || n_threads < 1 || n_threads > 256 || rounds < 1 ||
	    obj_size < sizeof(struct obj) + 1 || lat_calls < 1000 || !n_sync) {
		fprintf(stderr, "bench_e2e: bad arguments (size >= %zu)\n",
			sizeof(struct obj) + 1);
		return 2;
	}

	o.mode = RCUPOOL_MODE_PRIVATE;
	o.private_pages = n_objects / 400 + 1024;
	o.errbuf = err;
	o.errbuf_len = sizeof(err);
	r = rcupool_open(&o, &pool_private);
	if (r < 0) {
		fprintf(stderr, "bench_e2e: private pool: %d %s\n", r, err);
		return 1;
	}
	pool_of[K_POOL_PRIVATE] = pool_private;
	/* What a user gets from a private pool with no option at all. */
	o.private_pages = 0;
	if (rcupool_open(&o, &pool_of[K_POOL_PRIV_DEF]) < 0)
		pool_of[K_POOL_PRIV_DEF] = NULL;
	if (cg)
		return callgrind_run(cg);

	if (use_daemon && benchd_start(&daemon_, dopts) == 0) {
		o.mode = RCUPOOL_MODE_DAEMON;
		o.socket_path = daemon_.sock;
		o.private_pages = 0;
		r = rcupool_open(&o, &pool_daemon);
		if (r < 0) {
			fprintf(stderr, "bench_e2e: daemon pool: %d %s\n", r,
				err);
			pool_daemon = NULL;
		}
		pool_of[K_POOL_DAEMON] = pool_daemon;
	}
	/*
	 * The daemon as shipped (its embedded defaults, memory not locked
	 * only: a VM may not allow it), one client with the defaults and
	 * one that asks for max_pages = 256.
	 */
	if (use_daemon && benchd_start(&daemon_shipped, sopts) == 0) {
		o.mode = RCUPOOL_MODE_DAEMON;
		o.socket_path = daemon_shipped.sock;
		o.private_pages = 0;
		o.name = "bench_e2e shipped";
		if (rcupool_open(&o, &pool_of[K_POOL_SHIPPED]) < 0) {
			fprintf(stderr, "bench_e2e: shipped daemon pool: %s\n",
				err);
			pool_of[K_POOL_SHIPPED] = NULL;
		}
		o.name = "bench_e2e capped";
		o.max_pages = 256;
		if (rcupool_open(&o, &pool_of[K_POOL_CAPPED]) < 0) {
			fprintf(stderr, "bench_e2e: capped daemon pool: %s\n",
				err);
			pool_of[K_POOL_CAPPED] = NULL;
		}
	}

	/*
	 * Scenario 1: rounds, kinds interleaved within each round, in a new
	 * order each round (fixed seed: the same orders every run), so that
	 * no kind keeps the same predecessor: what one kind leaves behind
	 * (heap layout, liburcu's threads) does not always land on the same
	 * row, and the median drops the odd one out.
	 */
	int order[K_COUNT];
	unsigned seed = 1;

	for (int k = 0; k < K_COUNT; k++)
		order[k] = k;
	double ns[K_COUNT][rounds], loop[K_COUNT][rounds], cpu[K_COUNT][rounds];
	double med[K_COUNT] = {0}, med_loop[K_COUNT] = {0}, med_cpu[K_COUNT] = {0};

	rcu_register_thread();
	for (int rd = 0; rd < rounds; rd++) {
		for (int i = K_COUNT - 1; i > 0; i--) {
			int j = (int)(rand_r(&seed) % (unsigned)(i + 1));
			int t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
		for (int i = 0; i < K_COUNT; i++) {
			int k = order[i];
			struct e2e_result e;

			if (!kind_available((enum kind)k))
				continue;
			e = e2e_once((enum kind)k,
				     k == K_SYNC ? n_sync : n_objects);
			ns[k][rd] = e.ns;
			loop[k][rd] = e.loop_ns;
			cpu[k][rd] = e.cpu_ns;
		}
	}
	for (int k = 0; k < K_COUNT; k++)
		if (kind_available((enum kind)k)) {
			med[k] = bench_median(ns[k], rounds);
			med_loop[k] = bench_median(loop[k], rounds);
			med_cpu[k] = bench_median(cpu[k], rounds);
		}

	/* Scenario 2. */
	static const enum kind lat_kinds[] = {
		K_POOL_DAEMON, K_POOL_SHIPPED, K_POOL_CAPPED, K_POOL_PRIVATE,
		K_POOL_PRIV_DEF, K_DEFER, K_CALL_RCU, K_FREE};
	struct lat_result lat[K_COUNT] = {0}, clk = {0};

	if (do_latency)
		clk = latency_clock();
	for (size_t i = 0; do_latency && i < sizeof(lat_kinds) / sizeof(lat_kinds[0]); i++)
		if (kind_available(lat_kinds[i]))
			lat[lat_kinds[i]] = latency(lat_kinds[i]);

	for (int k = 0; k < K_COUNT; k++) {
		st[k] = (struct rcupool_stats){.size = sizeof(st[k])};
		if (pool_of[k])
			rcupool_stats(pool_of[k], &st[k]);
	}
	rcu_unregister_thread();

	uint64_t fb[K_COUNT];

	for (int i = 0; i < K_COUNT; i++)
		fb[i] = st[i].fallback_overflow + st[i].fallback_head +
			st[i].fallback_sync;
	if (json) {
		printf("{\"benchmark\":\"e2e\",\"objects\":%zu,\"object_size\":%zu,"
		       "\"threads\":%d,\"rounds\":%d,\"sync_objects\":%zu,"
		       "\"results\":[",
		       n_objects, obj_size, n_threads, rounds, n_sync);
		for (int k = 0, first = 1; k < K_COUNT; k++) {
			if (!med[k])
				continue;
			printf("%s{\"kind\":\"%s\",\"ns_per_object\":%.2f,"
			       "\"calls_ns_per_object\":%.2f,"
			       "\"cpu_ns_per_object\":%.2f,\"vs_free\":",
			       first ? "" : ",", kind_key[k], med[k],
			       med_loop[k], med_cpu[k]);
			print_ratio(true, med[k], med[K_FREE]);
			printf(",\"call_rcu_over_this\":");
			print_ratio(true, med[K_CALL_RCU], med[k]);
			printf("}");
			first = 0;
		}
		printf("]");
		if (do_latency)
			printf(",\"latency\":{\"calls\":%zu,\"clock_pair\":{\"p50_ns\":%u,"
		       "\"p99_ns\":%u,\"p999_ns\":%u,\"max_ns\":%u}",
		       lat_calls, clk.p50, clk.p99, clk.p999, clk.max);
		for (int k = 0; k < K_COUNT; k++) {
			if (!lat[k].ran)
				continue;
			printf(",\"%s\":{\"p50_ns\":%u,\"p99_ns\":%u,"
			       "\"p999_ns\":%u,\"max_ns\":%u,\"over_50us\":%zu}",
			       kind_key[k], lat[k].p50, lat[k].p99, lat[k].p999,
			       lat[k].max, lat[k].over50us);
		}
		printf("%s,\"fallbacks\":{", do_latency ? "}" : "");
		for (int k = 0, first = 1; k < K_COUNT; k++) {
			if (!pool_of[k])
				continue;
			printf("%s\"%s\":%llu", first ? "" : ",", kind_key[k],
			       (unsigned long long)fb[k]);
			first = 0;
		}
		printf("},\"reclaim\":{");
		for (int k = 0, first = 1; k < K_COUNT; k++) {
			if (!pool_of[k])
				continue;
			printf("%s\"%s\":{\"fallback_sync\":%llu,"
			       "\"fallback_overflow\":%llu,\"throttled\":%llu,"
			       "\"throttled_ns\":%llu,\"held_peak\":%llu,"
			       "\"grace_periods\":%llu,\"gp_latency_p50_ns\":%llu,"
			       "\"gp_latency_p99_ns\":%llu,"
			       "\"pages_freed_by_fillers\":%llu,"
			       "\"pages_submitted\":%llu}",
			       first ? "" : ",", kind_key[k],
			       (unsigned long long)st[k].fallback_sync,
			       (unsigned long long)st[k].fallback_overflow,
			       (unsigned long long)st[k].throttled,
			       (unsigned long long)st[k].throttled_ns,
			       (unsigned long long)st[k].held_peak,
			       (unsigned long long)st[k].grace_periods,
			       (unsigned long long)st[k].gp_latency_p50_ns,
			       (unsigned long long)st[k].gp_latency_p99_ns,
			       (unsigned long long)st[k].pages_freed_by_fillers,
			       (unsigned long long)st[k].pages_submitted);
			first = 0;
		}
		printf("},\"daemon\":%s}\n", pool_daemon ? "true" : "false");
	} else {
		printf("end-to-end free cost: %zu objects of %zu bytes on %d "
		       "thread(s), until all are freed (median of %d rounds; "
		       "sync+free: %zu objects)\n",
		       n_objects, obj_size, n_threads, rounds, n_sync);
		printf("  %-26s %9s %9s %9s %10s %13s\n", "", "ns/obj",
		       "calls", "cpu", "vs free()", "call_rcu/this");
		for (int k = 0; k < K_COUNT; k++) {
			if (!med[k]) {
				printf("  %-26s %9s\n", kind_name[k], "n/a");
				continue;
			}
			printf("  %-26s %9.1f %9.1f %9.1f ", kind_name[k], med[k],
			       med_loop[k], med_cpu[k]);
			print_ratio(false, med[k], med[K_FREE]);
			printf("    ");
			print_ratio(false, med[K_CALL_RCU], med[k]);
			printf("\n");
		}
		if (med[K_DEFER] && med[K_POOL_DAEMON] && med[K_POOL_PRIVATE])
			printf("  defer_rcu / rcupool daemon: %.2fx, private: "
			       "%.2fx\n",
			       med[K_DEFER] / med[K_POOL_DAEMON],
			       med[K_DEFER] / med[K_POOL_PRIVATE]);
		printf("  rcupool, whole run (latency calls included):\n"
		       "  %-26s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n", "",
		       "sync fb", "overflow", "throttled", "thr. ms", "held pk",
		       "GPs", "gp p50us", "gp p99us", "fillers%");
		for (int k = 0; k < K_COUNT; k++)
			if (pool_of[k])
				printf("  %-26s %9llu %9llu %9llu %9.1f %9llu %9llu "
				       "%9.1f %9.1f %9.1f\n",
				       kind_name[k],
				       (unsigned long long)st[k].fallback_sync,
				       (unsigned long long)st[k].fallback_overflow,
				       (unsigned long long)st[k].throttled,
				       st[k].throttled_ns / 1e6,
				       (unsigned long long)st[k].held_peak,
				       (unsigned long long)st[k].grace_periods,
				       st[k].gp_latency_p50_ns / 1e3,
				       st[k].gp_latency_p99_ns / 1e3,
				       st[k].pages_submitted
					       ? 100.0 *
							 (double)st[k].pages_freed_by_fillers /
							 (double)st[k].pages_submitted
					       : 0.0);
		if (do_latency)
			printf("call latency, one thread, %zu calls each after %zu "
		       "warm-up (ns; clock pair not subtracted)\n",
		       lat_calls, lat_calls / 10);
		if (do_latency) {
			printf("  %-26s %8s %8s %8s %9s %9s\n", "", "p50",
			       "p99", "p99.9", "max", ">50us");
			printf("  %-26s %8u %8u %8u %9u %9zu\n",
			       "clock_gettime pair", clk.p50, clk.p99, clk.p999,
			       clk.max, clk.over50us);
		}
		for (int k = 0; k < K_COUNT; k++)
			if (lat[k].ran)
				printf("  %-26s %8u %8u %8u %9u %9zu\n",
				       kind_name[k], lat[k].p50, lat[k].p99,
				       lat[k].p999, lat[k].max,
				       lat[k].over50us);
	}
	for (int k = 0; k < K_COUNT; k++)
		rcupool_close(pool_of[k]);
	benchd_stop(&daemon_);
	benchd_stop(&daemon_shipped);
	return 0;
}
