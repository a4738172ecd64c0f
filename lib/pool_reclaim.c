// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The pool's own reclaim engine (DESIGN.md section 4, issue 11).
 *
 * A full or flushed page goes on p->rq, a lock-free LIFO: one CAS per page,
 * nothing per object.  One reclaim thread per pool takes the whole queue at
 * the start of a round, runs one grace period of the pool's flavor
 * (update_synchronize_rcu: liburcu batches concurrent callers), frees every
 * pointer of every page taken with the pool's free function and gives the
 * pages back.  Pages submitted while a grace period runs join the next
 * round, which starts as soon as the previous one ends: the thread never
 * sleeps a fixed interval while pages wait, as liburcu's call_rcu thread
 * does (10 ms).  The only pause is reclaim_min_gap, a bound on the
 * grace-period rate: two rounds start at least that far apart.
 *
 * Wake-up without a lock per page: the thread sets rsleep, then looks at
 * the queue again before it sleeps; a producer that pushes onto an empty
 * queue looks at rsleep after its CAS (both sequentially consistent: one
 * of the two sees the other) and signals under rlock.  For POOL_LINGER_NS
 * after a round the thread does not sleep that way: it looks at the queue
 * every gap on its own, so that a steady load's pages never pay for a
 * wake-up.
 *
 * Which freer takes which done page (one a filler, active fillers their
 * own): pool_done.c.
 *
 * Backpressure (pool_reclaim_wait): a thread denied a page waits until
 * the round in progress ends or POOL_THROTTLE_PAGES pages come back, then
 * retries: one wait per page or more, never one per object.
 *
 * Latency: each page is stamped at submission; the time until its page is
 * given back goes into a log-linear histogram (4 buckets per power of two)
 * from which rcupool_stats() reads p50 and p99.
 *
 * The reclaim thread is not registered with liburcu (synchronize_rcu from
 * an unregistered thread is allowed in every flavor) and blocks every
 * signal.  For qsbr, a grace period ends only when every registered online
 * thread has passed a quiescent state.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"

void pool_lat_record(struct rcupool *p, uint64_t ns)
{
	unsigned idx;

	if (ns < 8) {
		idx = (unsigned)ns;
	} else {
		unsigned l = 63u - (unsigned)__builtin_clzll(ns);

		idx = l * POOL_LAT_SUB +
		      (unsigned)((ns >> (l - 2)) & (POOL_LAT_SUB - 1));
	}
	atomic_fetch_add_explicit(&p->lat[idx], 1, memory_order_relaxed);
}

/* The middle of a histogram bucket, in ns. */
static uint64_t pool_lat_value(unsigned idx)
{
	unsigned l = idx / POOL_LAT_SUB, sub = idx % POOL_LAT_SUB;

	if (idx < 8)
		return idx;
	return ((uint64_t)(2 * (POOL_LAT_SUB + sub) + 1) << (l - 2)) / 2;
}

/* The permille-th latency percentile (500: p50), 0 with no sample. */
uint64_t pool_reclaim_latency(struct rcupool *p, unsigned permille)
{
	uint64_t n[POOL_LAT_BUCKETS], total = 0, want, acc = 0;

	for (unsigned i = 0; i < POOL_LAT_BUCKETS; i++) {
		n[i] = atomic_load_explicit(&p->lat[i], memory_order_relaxed);
		total += n[i];
	}
	if (!total)
		return 0;
	want = (total * permille + 999) / 1000;
	if (!want)
		want = 1;
	for (unsigned i = 0; i < POOL_LAT_BUCKETS; i++) {
		acc += n[i];
		if (acc >= want)
			return pool_lat_value(i);
	}
	return pool_lat_value(POOL_LAT_BUCKETS - 1);
}

static enum pool_free_mode pool_free_mode_env(void)
{
	const char *e = secure_getenv("RCUPOOL_RECLAIM_FREE");

	if (e && !strcmp(e, "thread"))
		return POOL_FREE_THREAD;
	if (e && !strcmp(e, "workers"))
		return POOL_FREE_WORKERS;
	if (e && !strcmp(e, "share"))
		return POOL_FREE_SHARE;
	if (e && !strcmp(e, "fillers"))
		return POOL_FREE_FILLERS;
	return POOL_DEF_FREE_MODE;
}

/* RCUPOOL_RECLAIM_SCHED=other keeps SCHED_OTHER (measurement). */
/*
 * Pages queued from which the gap is not waited out, unless enough are
 * done already: a steady 4M objects/s fills ~8 pages a millisecond, a
 * thread freeing flat out ~550.
 */
enum { POOL_GAP_PAGES = 64 };

static bool pool_reclaim_sched_batch(void)
{
	const char *e = secure_getenv("RCUPOOL_RECLAIM_SCHED");

	return !(e && !strcmp(e, "other"));
}

/*
 * Held around every grace period the library runs (reclaim rounds, drain
 * passes, a barrier without a reclaim thread) and by fork()'s prepare
 * handler: no child inherits liburcu's grace-period mutex locked by a
 * thread that does not exist there.  Taken before any other lock of the
 * library, and never with one held.
 */
static pthread_mutex_t pool_gp_mutex = PTHREAD_MUTEX_INITIALIZER;

void pool_synchronize(struct rcupool *p)
{
	pthread_mutex_lock(&pool_gp_mutex);
	p->flavor->update_synchronize_rcu();
	pthread_mutex_unlock(&pool_gp_mutex);
}

void pool_gp_fork_prepare(void)
{
	pthread_mutex_lock(&pool_gp_mutex);
}

void pool_gp_fork_parent(void)
{
	pthread_mutex_unlock(&pool_gp_mutex);
}

void pool_gp_fork_child(void)
{
	pthread_mutex_init(&pool_gp_mutex, NULL);
}

void pool_reclaim_init(struct rcupool *p, uint32_t min_gap_us)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&p->rlock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->rcond, &ca);
	pthread_cond_init(&p->rdone, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&p->rwork, NULL);
	atomic_store(&p->rq, NULL);
	atomic_store(&p->rsubmitted, 0);
	atomic_store(&p->rtaken, 0);
	atomic_store(&p->rreturned, 0);
	atomic_store(&p->rsleep, 0);
	atomic_store(&p->dlen, 0);
	p->rounds = p->rstarted = p->rfreed = 0;
	atomic_store(&p->rfinished, 0);
	p->rwaiters = 0;
	p->rbarriers = 0;
	p->rthrottled = 0;
	p->rwake_at = UINT64_MAX;
	atomic_store(&p->rmulti, false);
	memset(p->pending, 0, sizeof(p->pending));
	memset(p->done, 0, sizeof(p->done));
	p->dcount = 0;
	p->nfreeing = 0;
	memset(p->active, 0, sizeof(p->active));
	p->active_now = 0;
	p->rstop = false;
	p->rrunning = false;
	p->min_gap_ns = (uint64_t)min_gap_us * 1000;
	p->free_mode = pool_free_mode_env();
	p->nworkers = 0;
	p->workers = NULL;
}

void pool_reclaim_destroy(struct rcupool *p)
{
	pthread_mutex_destroy(&p->rlock);
	pthread_cond_destroy(&p->rcond);
	pthread_cond_destroy(&p->rdone);
	pthread_cond_destroy(&p->rwork);
	free(p->workers);
	p->workers = NULL;
}

/*
 * Under rlock, a page just came back: whether a waiter on rdone has a use
 * for a wake-up.  Throttled threads wait for POOL_THROTTLE_PAGES pages
 * each, not one (a round's end wakes them too, in pool_reclaim_round): a
 * wake-up costs the waker 3-4 us on a VM (an IPI to a sleeping CPU), and
 * at T=1 the waker is the thread freeing, the one the filler waits for
 * (bench_e2e T=1 2M: 3,000-4,000 waits a run, a broadcast and a contended
 * unlock each).  The others (a barrier helping, the reclaim thread or a
 * thread without one waiting for a claim to end) at every page.
 */
static bool pool_reclaim_wake_now(struct rcupool *p)
{
	if (p->rwaiters > p->rthrottled)
		return true;
	if (!p->rthrottled || p->rfinished < p->rwake_at)
		return false;
	p->rwake_at = UINT64_MAX; /* who waits longer sets it again */
	return true;
}

/*
 * Free the objects of a page taken from the done list; give the page back,
 * or (reuse) keep it for the caller, empty.  Then account for it: latency,
 * in flight, its round.
 */
static void pool_reclaim_free_page(struct rcupool *p, struct pool_batch *b,
				   bool reuse)
{
	uint64_t round = b->round, t = b->t_submit;
	bool ours = b->fork_gen == p->fork_gen;
	const void *filler = b->filler;

	if (reuse) {
		pool_batch_free_objs(p, b);
		b->n = 0;
		b->next = NULL;
		b->drained = false;
	} else {
		pool_batch_complete(p, b); /* b is dead after */
	}
	if (ours) {
		pool_lat_record(p, pool_now_ns() - t);
		atomic_fetch_add_explicit(&p->rreturned, 1,
					  memory_order_release);
	}
	pthread_mutex_lock(&p->rlock);
	pool_done_unclaim(p, filler);
	p->pending[round % POOL_RING]--;
	p->rfinished++;
	while (p->rfreed < p->rounds &&
	       !p->pending[(p->rfreed + 1) % POOL_RING])
		p->rfreed++;
	if (pool_reclaim_wake_now(p))
		pthread_cond_broadcast(&p->rdone);
	pthread_mutex_unlock(&p->rlock);
}

/* Pages on rq (or being pushed): a page is counted before it is taken. */
static uint64_t pool_reclaim_queued(struct rcupool *p)
{
	uint64_t taken = atomic_load_explicit(&p->rtaken, memory_order_relaxed);

	return atomic_load_explicit(&p->rsubmitted, memory_order_relaxed) -
	       taken;
}

/*
 * A round: one grace period for every page on list (the queue, taken
 * whole, LIFO), then they go on the done list, oldest first.  Called
 * without rlock; number is the round's.
 */
static void pool_reclaim_round(struct rcupool *p, struct pool_batch *list,
			       uint64_t number)
{
	struct pool_batch *b, *next, *fifo = NULL;
	uint32_t n = 0;

	for (b = list; b; b = next) {
		next = b->next;
		b->next = fifo;
		b->round = number;
		fifo = b;
		n++;
	}
	atomic_fetch_add_explicit(&p->rtaken, n, memory_order_relaxed);
	pool_synchronize(p);
	atomic_fetch_add_explicit(&p->gps, 1, memory_order_relaxed);
	pthread_mutex_lock(&p->rlock);
	pool_done_add_round(p, fifo, n);
	p->pending[number % POOL_RING] = n;
	atomic_store_explicit(&p->dlen, p->dcount, memory_order_relaxed);
	p->rounds = number;
	if (!n)
		while (p->rfreed < p->rounds &&
		       !p->pending[(p->rfreed + 1) % POOL_RING])
			p->rfreed++;
	pthread_cond_broadcast(&p->rdone);
	if (p->nworkers)
		pthread_cond_broadcast(&p->rwork);
	pthread_mutex_unlock(&p->rlock);
}

/*
 * The reclaim thread.  Under rlock: start a round as soon as pages are
 * queued (the gap and the ring of unfreed rounds permitting); free the
 * done pages before the next round starts; sleep only with nothing to do.
 */
/*
 * SCHED_BATCH: a woken reclaim thread does not preempt the thread that woke
 * it (a filler at its page switch, which would otherwise wait out the
 * whole round on a busy CPU: a 14 us p99.9 of rcupool_free() measured).
 * Best effort; the priority stays.
 */
static void pool_reclaim_batch_sched(void)
{
	struct sched_param sp = {0};

	pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
}

static void *pool_reclaim_main(void *arg)
{
	struct rcupool *p = arg;
	uint64_t last = 0;

	if (pool_reclaim_sched_batch())
		pool_reclaim_batch_sched();

	pthread_mutex_lock(&p->rlock);
	for (;;) {
		bool work = atomic_load(&p->rq) != NULL;
		bool ring = p->rstarted + 1 - p->rfreed < POOL_RING;
		bool may_free = p->free_mode != POOL_FREE_FILLERS ||
				p->rstop || (work && !ring);
		uint64_t now = 0, at = 0;
		struct pool_batch *b, *list;

		/*
		 * The gap bounds the rate of grace periods a steady load
		 * asks for (a few pages a round).  A burst queues
		 * POOL_GAP_PAGES in well under a gap, and a thread blocked
		 * for pages (or in a barrier) waits on this round: both
		 * start it now, the burst only while few pages are done.
		 * With a backlog of done pages nobody needs the round's
		 * pages soon: counting every page in flight instead ran
		 * rounds of 2-3 pages back to back, 9,000 grace periods a
		 * second (bench_e2e T=2: 15.7-21.4 against 13.3-16.2 ns an
		 * object, four pairs).
		 */
		if (work && p->min_gap_ns && !p->rstop && !p->rwaiters &&
		    !(pool_reclaim_queued(p) >= POOL_GAP_PAGES &&
		      p->dcount < POOL_ROUND_FIRST)) {
			now = pool_now_ns();
			/* No gap before the first round (last 0). */
			at = last ? last + p->min_gap_ns : 0;
		}
		/*
		 * Free done pages first, except when few are done, or a
		 * barrier waits (for pages queued last, behind a backlog
		 * this thread freed first: 2.4 ms of bench_e2e's 20 at T=2;
		 * not for a throttled thread: the done pages are what it
		 * waits for), and a round may start: then the round first,
		 * so that done pages keep coming for the fillers that help
		 * (two threads allocating and freeing flat out outran one
		 * freeing the whole done list between rounds).  The pages of
		 * active fillers only while a thread waits (throttled, a
		 * barrier): taking them whenever no work was queued put this
		 * thread's frees into the arenas the fillers allocated from,
		 * at 40% of their throughput (bench_sizing: 17-25M objects/s
		 * against 50-60M).
		 */
		if (may_free &&
		    !(work && ring && now >= at &&
		      (p->dcount < POOL_ROUND_FIRST || p->rbarriers)) &&
		    ((b = pool_done_pop_spare(p)) ||
		     (p->rwaiters &&
		      (b = pool_done_pop(p, NULL, POOL_TAKE_ANY))))) {
			pthread_mutex_unlock(&p->rlock);
			pool_reclaim_free_page(p, b, false);
			pthread_mutex_lock(&p->rlock);
			continue;
		}
		if (work && !ring) {
			/*
			 * Others still free old rounds' pages: active fillers
			 * their own, or, once they stop (POOL_ACTIVE_NS),
			 * this thread.
			 */
			uint64_t until = pool_now_ns() + POOL_ACTIVE_NS;
			struct timespec ts = {
				.tv_sec = (time_t)(until / 1000000000u),
				.tv_nsec = (long)(until % 1000000000u),
			};

			p->rwaiters++;
			pthread_cond_timedwait(&p->rdone, &p->rlock, &ts);
			p->rwaiters--;
			continue;
		}
		if (work && now < at) {
			struct timespec ts = {
				.tv_sec = (time_t)(at / 1000000000u),
				.tv_nsec = (long)(at % 1000000000u),
			};

			pthread_cond_timedwait(&p->rcond, &p->rlock, &ts);
			continue;
		}
		if (work) {
			uint64_t number = ++p->rstarted;

			pthread_mutex_unlock(&p->rlock);
			list = atomic_exchange_explicit(&p->rq, NULL,
							memory_order_acquire);
			last = pool_now_ns();
			pool_reclaim_round(p, list, number);
			pthread_mutex_lock(&p->rlock);
			continue;
		}
		if (p->rstop)
			break;
		if (last && p->min_gap_ns &&
		    pool_now_ns() - last < POOL_LINGER_NS) {
			/*
			 * Work lately: look again a gap from now (0.1-1 ms),
			 * unasked.
			 * A filler whose page found the queue empty would
			 * otherwise wake this thread, and a wake-up costs
			 * the waker 10-35 us on this VM (an IPI to the idle
			 * CPU): a page's call, at each lull of a steady
			 * load.  Throttled threads and barriers still wake
			 * it (they do not look at rsleep).
			 */
			uint64_t poll = p->min_gap_ns < 100000	 ? 100000
					: p->min_gap_ns > 1000000 ? 1000000
								  : p->min_gap_ns;
			uint64_t until = pool_now_ns() + poll;
			struct timespec ts = {
				.tv_sec = (time_t)(until / 1000000000u),
				.tv_nsec = (long)(until % 1000000000u),
			};

			pthread_cond_timedwait(&p->rcond, &p->rlock, &ts);
			continue;
		}
		atomic_store(&p->rsleep, 1);
		if (!atomic_load(&p->rq))
			pthread_cond_wait(&p->rcond, &p->rlock);
		atomic_store(&p->rsleep, 0);
	}
	pthread_mutex_unlock(&p->rlock);
	return NULL;
}

/* POOL_FREE_WORKERS: free done pages, nothing else. */
static void *pool_reclaim_worker(void *arg)
{
	struct rcupool *p = arg;
	struct pool_batch *b;

	if (pool_reclaim_sched_batch())
		pool_reclaim_batch_sched();
	pthread_mutex_lock(&p->rlock);
	while (!p->rstop) {
		b = pool_done_pop(p, NULL, POOL_TAKE_ANY);
		if (!b) {
			pthread_cond_wait(&p->rwork, &p->rlock);
			continue;
		}
		pthread_mutex_unlock(&p->rlock);
		pool_reclaim_free_page(p, b, false);
		pthread_mutex_lock(&p->rlock);
	}
	pthread_mutex_unlock(&p->rlock);
	return NULL;
}

static void pool_reclaim_stop_workers(struct rcupool *p)
{
	pthread_mutex_lock(&p->rlock);
	p->rstop = true;
	pthread_cond_broadcast(&p->rwork);
	pthread_mutex_unlock(&p->rlock);
	for (unsigned i = 0; i < p->nworkers; i++)
		pthread_join(p->workers[i], NULL);
	p->nworkers = 0;
}

int pool_reclaim_start(struct rcupool *p)
{
	sigset_t all, old;
	unsigned want = 0;
	int r = 0;

	pthread_mutex_lock(&p->rlock);
	if (p->rrunning) {
		pthread_mutex_unlock(&p->rlock);
		return 0;
	}
	if (p->free_mode == POOL_FREE_WORKERS && !p->workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		want = n > 1 ? (unsigned)n - 1 : 1;
		p->workers = calloc(want, sizeof(*p->workers));
		if (!p->workers)
			want = 0;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	p->rstop = false;
	r = pthread_create(&p->rthread, NULL, pool_reclaim_main, p);
	if (r == 0) {
		pthread_setname_np(p->rthread, "rcupool-gp");
		p->rrunning = true;
	}
	for (unsigned i = 0; r == 0 && i < want; i++) {
		if (pthread_create(&p->workers[i], NULL, pool_reclaim_worker,
				   p))
			break;
		pthread_setname_np(p->workers[i], "rcupool-free");
		p->nworkers++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_unlock(&p->rlock);
	return -r;
}

/* Runs what is queued, then stops the threads. */
void pool_reclaim_stop(struct rcupool *p)
{
	bool running;

	pool_reclaim_stop_workers(p);
	pthread_mutex_lock(&p->rlock);
	running = p->rrunning;
	p->rstop = true;
	pthread_cond_signal(&p->rcond);
	pthread_mutex_unlock(&p->rlock);
	if (running)
		pthread_join(p->rthread, NULL);
	pthread_mutex_lock(&p->rlock);
	p->rrunning = false;
	pthread_cond_broadcast(&p->rdone);
	pthread_mutex_unlock(&p->rlock);
	/* Without a thread (it never started): run the rest here. */
	pool_reclaim_wait_all(p);
}

void pool_reclaim_submit(struct rcupool *p, struct pool_batch *b)
{
	struct pool_batch *old = atomic_load_explicit(&p->rq,
						      memory_order_relaxed);
	uint64_t queued;

	b->t_submit = pool_now_ns();
	/* Wraps when rounds took pages counted after ours: never equal. */
	queued = atomic_fetch_add_explicit(&p->rsubmitted, 1,
					   memory_order_relaxed) +
		 1 - atomic_load_explicit(&p->rtaken, memory_order_relaxed);
	do {
		b->next = old;
	} while (!atomic_compare_exchange_weak_explicit(
		&p->rq, &old, b, memory_order_seq_cst, memory_order_relaxed));
	/*
	 * Asleep with nothing to do, or waiting out the gap when this page
	 * makes POOL_GAP_PAGES wait (that round starts now: see
	 * pool_reclaim_main).
	 */
	if ((!old && atomic_load_explicit(&p->rsleep, memory_order_seq_cst)) ||
	    queued == POOL_GAP_PAGES) {
		pthread_mutex_lock(&p->rlock);
		pthread_cond_signal(&p->rcond);
		pthread_mutex_unlock(&p->rlock);
	}
}

/*
 * Whether a filler frees its own done pages itself.  One filler: it and
 * the reclaim thread free on two CPUs in parallel, the filler filling
 * while the reclaim thread frees (measured: a lone filler that freed too
 * was slower, 14-18 against 10-15 ns/object).  From two on (two threads'
 * pages in the last POOL_ACTIVE_NS: a thread that freed once and sleeps is
 * no filler), each frees its own, at its page switch, and the reclaim thread
 * leaves them to it (POOL_TAKE_SPARE): T threads free on T CPUs, each
 * into the arena it allocates from.
 */
bool pool_reclaim_fillers_help(struct rcupool *p)
{
	if (p->free_mode == POOL_FREE_FILLERS)
		return true;
	return p->free_mode == POOL_FREE_SHARE &&
	       atomic_load_explicit(&p->rmulti, memory_order_relaxed);
}

struct pool_batch *pool_reclaim_take_done(struct rcupool *p,
					  const void *filler)
{
	struct pool_batch *b, *more;

	if (!pool_reclaim_fillers_help(p))
		return NULL;
	if (!atomic_load_explicit(&p->dlen, memory_order_relaxed))
		return NULL;
	b = pool_done_pop_own(p, filler);
	if (!b)
		return NULL;
	if (b->fork_gen != p->fork_gen) {
		pool_reclaim_free_page(p, b, false);
		return NULL;
	}
	pool_reclaim_free_page(p, b, true);
	pool_count(p, &p->freed_here, 1);
	/*
	 * Behind: one more, given back.  One page freed a page filled only
	 * holds the backlog where it is, and each switch that found none
	 * done grew it for good (bench_sizing: in flight crept up over
	 * seconds instead of levelling off).  From 8 done, not 32: at a
	 * steady 4M objects/s the backlog sat wherever it had reached, up
	 * to 32, and pages waited 3-4 ms from submission to return instead
	 * of 1.2 (in flight 22-35 pages against 12).
	 */
	if (atomic_load_explicit(&p->dlen, memory_order_relaxed) >
		    POOL_DONE_BEHIND &&
	    (more = pool_done_pop_own(p, filler))) {
		pool_reclaim_free_page(p, more, false);
		pool_count(p, &p->freed_here, 1);
	}
	return b;
}

uint64_t pool_reclaim_inflight(struct rcupool *p)
{
	/* Returned first: a page is submitted before it can be returned. */
	uint64_t out = atomic_load_explicit(&p->rreturned,
					    memory_order_acquire);

	return atomic_load_explicit(&p->rsubmitted, memory_order_acquire) -
	       out;
}

/*
 * How many pages the engine has given back so far.  A page is back on its
 * list before the count moves (both under rlock, and this load pairs with
 * the unlock), so a thread that reads it before asking for a page, and
 * sees it moved later, knows a page came back in between.
 */
uint64_t pool_reclaim_seen(struct rcupool *p)
{
	return atomic_load_explicit(&p->rfinished, memory_order_acquire);
}

/*
 * Backpressure: wait until the reclaim engine has made progress (a round
 * ended; POOL_THROTTLE_PAGES pages came back, or every page in flight
 * did) since *seen and pages may be had again; *seen
 * moves to what the caller has now seen.  Only outside a read-side
 * section.  0 when it is worth asking again (after a wait, counted:
 * throttled, or at once if a page came back since *seen), -EAGAIN when
 * nothing came back, nothing is in flight or no reclaim thread runs:
 * waiting cannot help.
 */
int pool_reclaim_wait(struct rcupool *p, uint64_t *seen, const void *filler)
{
	uint64_t t0 = pool_now_ns(), r, f, want;

	pthread_mutex_lock(&p->rlock);
	f = atomic_load_explicit(&p->rfinished, memory_order_relaxed);
	p->active_now = pool_now_ns();
	if (f != *seen ||
	    (pool_reclaim_fillers_help(p) && pool_done_takeable(p, filler))) {
		/* A page came back after the caller last asked. */
		*seen = f;
		pthread_mutex_unlock(&p->rlock);
		return 0;
	}
	/* Pages in flight all come back: never wait for more than those. */
	want = pool_reclaim_inflight(p);
	if (!p->rrunning || !want) {
		pthread_mutex_unlock(&p->rlock);
		return -EAGAIN;
	}
	r = p->rounds;
	if (want > POOL_THROTTLE_PAGES)
		want = POOL_THROTTLE_PAGES;
	p->rwaiters++;
	p->rthrottled++;
	/* Sleeping out the gap: start the round now (see pool_reclaim_main). */
	pthread_cond_signal(&p->rcond);
	while (p->rounds == r && p->rfinished - f < want && p->rrunning &&
	       pool_reclaim_inflight(p) &&
	       !(pool_reclaim_fillers_help(p) &&
		 pool_done_takeable(p, filler))) {
		if (f + want < p->rwake_at)
			p->rwake_at = f + want;
		pthread_cond_wait(&p->rdone, &p->rlock);
	}
	if (!--p->rthrottled)
		p->rwake_at = UINT64_MAX;
	p->rwaiters--;
	*seen = atomic_load_explicit(&p->rfinished, memory_order_relaxed);
	pthread_mutex_unlock(&p->rlock);
	pool_count(p, &p->throttled, 1);
	pool_count(p, &p->throttled_ns, pool_now_ns() - t0);
	return 0;
}

/* No reclaim thread: the rounds and the frees, here. */
static void pool_reclaim_inline(struct rcupool *p)
{
	struct pool_batch *list, *b;

	while ((list = atomic_exchange(&p->rq, NULL))) {
		uint64_t number;

		pthread_mutex_lock(&p->rlock);
		number = ++p->rstarted;
		pthread_mutex_unlock(&p->rlock);
		pool_reclaim_round(p, list, number);
	}
	pthread_mutex_lock(&p->rlock);
	for (;;) {
		b = pool_done_pop(p, NULL, POOL_TAKE_ANY);
		if (!b && !p->dcount)
			break;
		if (!b) {
			/* Pages of a filler another thread frees now. */
			p->rwaiters++;
			pthread_cond_wait(&p->rdone, &p->rlock);
			p->rwaiters--;
			continue;
		}
		pthread_mutex_unlock(&p->rlock);
		pool_reclaim_free_page(p, b, false);
		pthread_mutex_lock(&p->rlock);
	}
	pthread_mutex_unlock(&p->rlock);
}

/*
 * Until every page submitted before the call is freed and returned
 * (queued, in a grace period, done, being freed by anyone), however busy
 * other threads keep the queue: the first round that starts after the
 * call took them all, and it is done when it and every round before are
 * freed; or, earlier, nothing is queued, no round runs and every round is
 * freed.  Frees done pages meanwhile.  Without a reclaim thread, runs the
 * rounds itself.
 */
void pool_reclaim_wait_all(struct rcupool *p)
{
	struct pool_batch *b;
	uint64_t target;

	pthread_mutex_lock(&p->rlock);
	target = p->rstarted + 1;
	p->rwaiters++;
	p->rbarriers++;
	pthread_cond_signal(&p->rcond); /* no gap for a barrier either */
	while (p->rrunning && p->rfreed < target &&
	       !(p->rounds == p->rstarted && p->rfreed == p->rounds &&
		 !atomic_load(&p->rq))) {
		b = pool_done_pop(p, NULL, POOL_TAKE_ANY);
		if (b) {
			pthread_mutex_unlock(&p->rlock);
			pool_reclaim_free_page(p, b, false);
			pthread_mutex_lock(&p->rlock);
			continue;
		}
		pthread_cond_wait(&p->rdone, &p->rlock);
	}
	p->rwaiters--;
	p->rbarriers--;
	if (p->rrunning) {
		pthread_mutex_unlock(&p->rlock);
		return;
	}
	pthread_mutex_unlock(&p->rlock);
	pool_reclaim_inline(p);
}

/* A new gap between grace-period starts (the lease's, DAEMON mode). */
void pool_reclaim_set_gap(struct rcupool *p, uint32_t min_gap_us)
{
	uint64_t ns = (uint64_t)min_gap_us * 1000;

	pthread_mutex_lock(&p->rlock);
	if (p->min_gap_ns != ns) {
		p->min_gap_ns = ns;
		pthread_cond_broadcast(&p->rcond); /* a shorter wait, maybe */
	}
	pthread_mutex_unlock(&p->rlock);
}

/*
 * From the drain thread, each tick (never the free path): the engine's
 * counters into the lease, where the lender shows them per client
 * (rcupoolctl clients), and the lease's reclaim_min_gap when the pool
 * follows it.
 */
void pool_reclaim_publish(struct rcupool *p)
{
	struct lease_counters *c = p->ctr;
	const memory_order rx = memory_order_relaxed;
	uint32_t gap;

	atomic_store_explicit(&c->throttled,
			      atomic_load_explicit(&p->throttled, rx), rx);
	atomic_store_explicit(&c->throttled_ns,
			      atomic_load_explicit(&p->throttled_ns, rx), rx);
	atomic_store_explicit(&c->grace_periods,
			      atomic_load_explicit(&p->gps, rx), rx);
	atomic_store_explicit(&c->gp_latency_p50_ns,
			      pool_reclaim_latency(p, 500), rx);
	atomic_store_explicit(&c->gp_latency_p99_ns,
			      pool_reclaim_latency(p, 990), rx);
	if (!p->gap_from_lease)
		return;
	gap = atomic_load_explicit(&p->lim->reclaim_min_gap_us, rx);
	if (gap != p->gap_lease_us) {
		p->gap_lease_us = gap;
		pool_reclaim_set_gap(p, gap);
	}
}

/* fork() child: no reclaim thread; what was queued is the parent's. */
void pool_reclaim_forked_child(struct rcupool *p)
{
	pool_reclaim_init(p, (uint32_t)(p->min_gap_ns / 1000));
	atomic_store(&p->gps, 0);
	atomic_store(&p->throttled, 0);
	atomic_store(&p->throttled_ns, 0);
	atomic_store(&p->freed_here, 0);
	for (unsigned i = 0; i < POOL_LAT_BUCKETS; i++)
		atomic_store(&p->lat[i], 0);
}
