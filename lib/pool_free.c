// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * rcupool_free(): the per-object path.  A TLS lookup keyed by the pool
 * (an array indexed by the pool's index, validated by its serial: no
 * pthread_getspecific, no dereference of a stale pointer), then, marked
 * busy (or inside a read-side section where membarrier() is missing): load
 * the thread's batch, store the pointer, bump the count, compare with the
 * capacity.  Nothing else until the page is full: no atomic
 * read-modify-write, no fence, no call into liburcu.
 */
#include <stdlib.h>

#include "pool.h"

__thread struct pool_tls_ent pool_tls[POOL_MAX_OPEN]
	__attribute__((tls_model("initial-exec")));

static inline struct pool_tcache *pool_tcache(struct rcupool *p)
{
	struct pool_tls_ent *e = &pool_tls[p->idx];

	return pool_likely(e->serial == p->serial) ? e->tc : NULL;
}

/* Slow path: this thread's first free into p (or after a failed calloc). */
struct pool_tcache *pool_tcache_get(struct rcupool *p)
{
	extern pthread_key_t pool_key;
	struct pool_tls_ent *e = &pool_tls[p->idx];
	struct pool_tcache *tc;

	if (e->serial == p->serial)
		return e->tc;
	if (e->tc) {
		/* Left by a closed pool that had the same index. */
		pthread_mutex_lock(&pool_glock);
		if (!e->tc->pool)
			free(e->tc);
		pthread_mutex_unlock(&pool_glock);
		*e = (struct pool_tls_ent){0};
	}
	tc = calloc(1, sizeof(*tc));
	if (!tc)
		return NULL;
	tc->pool = p;
	pthread_mutex_lock(&p->lock);
	tc->next = p->caches;
	p->caches = tc;
	pthread_mutex_unlock(&p->lock);
	/* Any non-NULL value: the destructor walks pool_tls[]. */
	pthread_setspecific(pool_key, (void *)1);
	e->tc = tc;
	e->serial = p->serial;
	return tc;
}

/* The calling thread's entry for p, freed: p is being closed. */
void pool_tls_forget(struct rcupool *p)
{
	struct pool_tls_ent *e = &pool_tls[p->idx];

	if (e->serial == p->serial) {
		free(e->tc);
		*e = (struct pool_tls_ent){0};
	}
}

static void pool_head_push(struct rcupool *p, void *ptr, size_t off)
{
	void **w = (void **)((char *)ptr + off);
	struct rcu_head *old = atomic_load_explicit(&p->heads,
						    memory_order_relaxed);

	w[1] = (void *)(uintptr_t)off;
	do {
		w[0] = old;
	} while (!atomic_compare_exchange_weak_explicit(
		&p->heads, &old, (struct rcu_head *)w, memory_order_release,
		memory_order_relaxed));
	pool_count(p, &p->ctr->fb_head, 1);
	pool_count(p, &p->ctr->objects, 1);
	if (!old)
		pool_drain_wake(p);
}

static void pool_sync_free(struct rcupool *p, void *ptr)
{
	uint64_t t0 = pool_now_ns();

	p->flavor->update_synchronize_rcu();
	pool_count(p, &p->sync_ns, pool_now_ns() - t0);
	pool_count(p, &p->ctr->fb_sync, 1);
	pool_count(p, &p->ctr->objects, 1);
	p->free_fn(ptr);
}

/*
 * No batch in this thread's slot: get one, or run the fallback chain:
 * overflow (inside pool_batch_get), head, then backpressure -- outside a
 * read-side section, wait for the reclaim round in progress to give pages
 * back (taking one whose grace period is over and freeing its objects
 * here) and retry, one wait per page or more -- and only when nothing is in
 * flight any more, the per-object sync.  Inside a read-side section (for
 * qsbr: while online) never wait: an emergency heap page.
 */
static __attribute__((noinline)) void
pool_free_slow(struct rcupool *p, struct pool_tcache *tc, void *ptr, size_t off)
{
	struct pool_batch *b;
	uint64_t seen;

	if (pool_unlikely(atomic_load_explicit(&p->forked,
					       memory_order_relaxed)))
		pool_drain_start(p); /* a forked child has no drain thread */
	if (!tc)
		tc = pool_tcache_get(p);
	/* Before asking: a page back after this is worth another try. */
	seen = pool_reclaim_seen(p);
	/* The reclaim thread is behind: free one of its pages, here. */
	b = pool_reclaim_take_done(p, tc);
	if (!b)
		b = pool_batch_get(p, false);
	if (!b) {
		if (off != SIZE_MAX) {
			pool_head_push(p, ptr, off);
			return;
		}
		if (!p->flavor->read_ongoing()) {
			while (!b && pool_reclaim_wait(p, &seen, tc) == 0) {
				b = pool_reclaim_take_done(p, tc);
				if (!b)
					b = pool_batch_get(p, false);
			}
			if (!b) {
				pool_sync_free(p, ptr);
				return;
			}
		} else {
			/* Inside a read-side section: never block. */
			b = pool_batch_get(p, true);
			if (!b) {
				pool_count(p, &p->lost, 1);
				return;
			}
		}
	}
	b->ptrs[0] = ptr;
	b->n = 1;
	b->filler = tc;
	if (tc) {
		/*
		 * The owner alone writes gen: no locked add, which would
		 * wait for the stores above to reach lines the reclaim
		 * thread wrote last (the page, its descriptor).
		 */
		uint64_t gen = atomic_load_explicit(&tc->gen,
						    memory_order_relaxed);

		atomic_store_explicit(&tc->gen, gen + 1, memory_order_relaxed);
		atomic_store_explicit(&tc->cur, b, memory_order_release);
	} else {
		pool_batch_submit(p, b);
	}
}

/*
 * The fill must not race with the drain thread taking the batch.  With
 * p->asym, the owner marks itself busy with plain stores and compiler
 * barriers only; the drain pairs them with membarrier() (pool_drain.c).
 * Without membarrier, the fill runs inside a read-side section of the
 * pool's flavor and the drain waits a grace period: that variant is out of
 * line (pool_free_rs), so the common one is a leaf with no stack frame.
 */
static __attribute__((noinline)) void pool_free_rs(struct rcupool *p,
						   struct pool_tcache *tc,
						   void *ptr, size_t off)
{
	struct pool_batch *b, *full = NULL;

	p->read_lock();
	b = atomic_load_explicit(&tc->cur, memory_order_relaxed);
	if (b) {
		uint32_t n = b->n;

		b->ptrs[n++] = ptr;
		b->n = n;
		if (pool_unlikely(n == b->cap))
			full = atomic_exchange_explicit(&tc->cur, NULL,
							memory_order_acq_rel);
	}
	p->read_unlock();
	if (full)
		pool_batch_submit(p, full);
	else if (!b)
		pool_free_slow(p, tc, ptr, off);
}

static __attribute__((noinline)) void pool_free_full(struct rcupool *p,
						     struct pool_tcache *tc)
{
	/* NULL if the drain took it meanwhile. */
	struct pool_batch *full = atomic_exchange_explicit(
		&tc->cur, NULL, memory_order_acq_rel);

	atomic_store_explicit(&tc->busy, 0, memory_order_release);
	if (full)
		pool_batch_submit(p, full);
}

static inline void pool_free_common(struct rcupool *p, void *ptr, size_t off)
{
	struct pool_tcache *tc = pool_tcache(p);
	struct pool_batch *b;

	if (pool_unlikely(tc == NULL)) {
		pool_free_slow(p, tc, ptr, off);
		return;
	}
	if (pool_unlikely(!p->asym)) {
		pool_free_rs(p, tc, ptr, off);
		return;
	}
	atomic_store_explicit(&tc->busy, 1, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	b = atomic_load_explicit(&tc->cur, memory_order_relaxed);
	if (pool_likely(b != NULL)) {
		uint32_t n = b->n;

		b->ptrs[n++] = ptr;
		b->n = n;
		if (pool_unlikely(n == b->cap)) {
			pool_free_full(p, tc);
			return;
		}
		atomic_store_explicit(&tc->busy, 0, memory_order_release);
		return;
	}
	atomic_store_explicit(&tc->busy, 0, memory_order_release);
	pool_free_slow(p, tc, ptr, off);
}

void rcupool_free(struct rcupool *p, void *ptr)
{
	pool_free_common(p, ptr, SIZE_MAX);
}

void rcupool_free_head_offset(struct rcupool *p, void *ptr, size_t offset)
{
	pool_free_common(p, ptr, offset);
}

void rcupool_flush(struct rcupool *p)
{
	struct pool_tcache *tc = pool_tcache(p);
	struct pool_batch *b;

	if (!tc)
		return;
	b = atomic_exchange_explicit(&tc->cur, NULL, memory_order_acq_rel);
	if (b)
		pool_batch_submit(p, b);
}

/*
 * pthread key destructor: the thread exits.  It may have unregistered from
 * liburcu already, so no call_rcu here: its partial batch goes to the
 * pool's orphans, which the drain thread frees after a grace period.
 */
void pool_thread_exit(void *unused)
{
	for (unsigned i = 0; i < POOL_MAX_OPEN; i++) {
		struct pool_tls_ent *e = &pool_tls[i];
		struct pool_tcache *tc = e->tc, **pp;
		struct pool_batch *b = NULL;
		struct rcupool *p;

		if (!tc)
			continue;
		pthread_mutex_lock(&pool_glock);
		p = tc->pool;
		if (p) {
			pthread_mutex_lock(&p->lock);
			b = atomic_exchange_explicit(&tc->cur, NULL,
						     memory_order_acq_rel);
			if (b) {
				pool_batch_count_claimed(p, b);
				b->next = p->orphans;
				p->orphans = b;
			}
			for (pp = &p->caches; *pp; pp = &(*pp)->next)
				if (*pp == tc) {
					*pp = tc->next;
					break;
				}
			pthread_mutex_unlock(&p->lock);
			pool_done_filler_gone(p, tc);
			if (b)
				pool_drain_wake(p);
		}
		pthread_mutex_unlock(&pool_glock);
		free(tc);
		*e = (struct pool_tls_ent){0};
	}
}
