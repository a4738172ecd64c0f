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
 * of the two sees the other) and signals under rlock.
 *
 * Backpressure (pool_reclaim_wait): a thread denied a page waits for the
 * end of the round in progress, or of the next one, then retries: one wait
 * per page or more, never one per object.
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
#include <signal.h>
#include <time.h>

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

void pool_reclaim_init(struct rcupool *p, uint32_t min_gap_us)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&p->rlock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->rcond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&p->rdone, NULL);
	atomic_store(&p->rq, NULL);
	atomic_store(&p->rsleep, 0);
	p->rounds = 0;
	p->rstarted = 0;
	p->rstop = false;
	p->rrunning = false;
	p->min_gap_ns = (uint64_t)min_gap_us * 1000;
}

void pool_reclaim_destroy(struct rcupool *p)
{
	pthread_mutex_destroy(&p->rlock);
	pthread_cond_destroy(&p->rcond);
	pthread_cond_destroy(&p->rdone);
}

/* One round: a grace period, then every page of list freed and returned. */
static void pool_reclaim_round(struct rcupool *p, struct pool_batch *list)
{
	struct pool_batch *b, *next, *fifo = NULL;

	p->flavor->update_synchronize_rcu();
	atomic_fetch_add_explicit(&p->gps, 1, memory_order_relaxed);
	/* Oldest first: the queue is a LIFO. */
	for (b = list; b; b = next) {
		next = b->next;
		b->next = fifo;
		fifo = b;
	}
	for (b = fifo; b; b = next) {
		bool ours = b->fork_gen == p->fork_gen;
		uint64_t t = b->t_submit;

		next = b->next;
		pool_batch_complete(p, b);
		if (!ours)
			continue;
		pool_lat_record(p, pool_now_ns() - t);
		/* Last touch of b's accounting: the barrier may return. */
		atomic_fetch_sub_explicit(&p->inflight, 1, memory_order_release);
	}
}

static void *pool_reclaim_main(void *arg)
{
	struct rcupool *p = arg;
	uint64_t last = 0;

	pthread_mutex_lock(&p->rlock);
	for (;;) {
		struct pool_batch *list;

		if (!atomic_load(&p->rq)) {
			if (p->rstop)
				break;
			atomic_store(&p->rsleep, 1);
			if (!atomic_load(&p->rq))
				pthread_cond_wait(&p->rcond, &p->rlock);
			atomic_store(&p->rsleep, 0);
			continue;
		}
		if (p->min_gap_ns && !p->rstop) {
			uint64_t now = pool_now_ns(), at = last + p->min_gap_ns;

			if (now < at) {
				struct timespec ts = {
					.tv_sec = (time_t)(at / 1000000000u),
					.tv_nsec = (long)(at % 1000000000u),
				};

				pthread_cond_timedwait(&p->rcond, &p->rlock,
						       &ts);
				continue;
			}
		}
		p->rstarted++; /* before the exchange: pool_reclaim_wait_all */
		pthread_mutex_unlock(&p->rlock);
		list = atomic_exchange_explicit(&p->rq, NULL,
						memory_order_acquire);
		last = pool_now_ns();
		pool_reclaim_round(p, list);
		pthread_mutex_lock(&p->rlock);
		p->rounds++;
		pthread_cond_broadcast(&p->rdone);
	}
	pthread_mutex_unlock(&p->rlock);
	return NULL;
}

int pool_reclaim_start(struct rcupool *p)
{
	sigset_t all, old;
	int r = 0;

	pthread_mutex_lock(&p->rlock);
	if (!p->rrunning) {
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		p->rstop = false;
		r = pthread_create(&p->rthread, NULL, pool_reclaim_main, p);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (r == 0)
			p->rrunning = true;
	}
	pthread_mutex_unlock(&p->rlock);
	return -r;
}

/* Runs what is queued, then stops the thread. */
void pool_reclaim_stop(struct rcupool *p)
{
	bool running;

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

	b->t_submit = pool_now_ns();
	atomic_fetch_add_explicit(&p->inflight, 1, memory_order_relaxed);
	do {
		b->next = old;
	} while (!atomic_compare_exchange_weak_explicit(
		&p->rq, &old, b, memory_order_seq_cst, memory_order_relaxed));
	if (!old && atomic_load_explicit(&p->rsleep, memory_order_seq_cst)) {
		pthread_mutex_lock(&p->rlock);
		pthread_cond_signal(&p->rcond);
		pthread_mutex_unlock(&p->rlock);
	}
}

/*
 * Backpressure: wait until the round in progress (or the next, which
 * starts at once) has given its pages back.  Only outside a read-side
 * section.  0 after a wait (counted: throttled), -EAGAIN when nothing is
 * in flight or no reclaim thread runs: waiting cannot help.
 */
int pool_reclaim_wait(struct rcupool *p)
{
	uint64_t t0 = pool_now_ns(), r;

	pthread_mutex_lock(&p->rlock);
	if (!p->rrunning || !atomic_load(&p->inflight)) {
		pthread_mutex_unlock(&p->rlock);
		return -EAGAIN;
	}
	r = p->rounds;
	while (p->rounds == r && p->rrunning && atomic_load(&p->inflight))
		pthread_cond_wait(&p->rdone, &p->rlock);
	pthread_mutex_unlock(&p->rlock);
	pool_count(p, &p->throttled, 1);
	pool_count(p, &p->throttled_ns, pool_now_ns() - t0);
	return 0;
}

/*
 * Until every page submitted before the call is freed and returned
 * (queued, in a grace period, being freed), however busy other threads
 * keep the queue: the first round that starts after the call has taken
 * them all; or, earlier, the queue is seen empty with no round running.
 * Without a reclaim thread, runs the rounds itself.
 */
void pool_reclaim_wait_all(struct rcupool *p)
{
	struct pool_batch *list;
	uint64_t target;

	pthread_mutex_lock(&p->rlock);
	target = p->rstarted + 1;
	while (p->rrunning && p->rounds < target &&
	       !(p->rounds == p->rstarted && !atomic_load(&p->rq)))
		pthread_cond_wait(&p->rdone, &p->rlock);
	if (p->rrunning) {
		pthread_mutex_unlock(&p->rlock);
		return;
	}
	pthread_mutex_unlock(&p->rlock);
	while ((list = atomic_exchange(&p->rq, NULL)))
		pool_reclaim_round(p, list);
}

/* fork() child: no reclaim thread; what was queued is the parent's. */
void pool_reclaim_forked_child(struct rcupool *p)
{
	pool_reclaim_init(p, (uint32_t)(p->min_gap_ns / 1000));
	atomic_store(&p->gps, 0);
	atomic_store(&p->throttled, 0);
	atomic_store(&p->throttled_ns, 0);
	for (unsigned i = 0; i < POOL_LAT_BUCKETS; i++)
		atomic_store(&p->lat[i], 0);
}
