// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Pages for batches: our lent chunks' pages (this CPU's list, then the
 * global list), then heap pages; submission to the reclaim engine
 * (pool_reclaim.c) and the return of a page after its grace period.
 *
 * Ownership protocol (census.h): held += 1 bounded by max_pages (one CAS,
 * undone if every list is empty), then after taking a page,
 * chunk_free[chunk] -= 1, owner[page] = held; before giving one back,
 * owner[page] = free, chunk_free += 1, held -= 1, then push.  Every list
 * and counter is in this process's private memory (seg.h): nobody else
 * reads them.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "pcpu.h"
#include "pool.h"
#include "stack.h"

uint64_t pool_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void pool_count(struct rcupool *p, _Atomic uint64_t *field, uint64_t n)
{
	atomic_fetch_add_explicit(field, n, memory_order_relaxed);
}

/*
 * One page counted in held, bounded by max: the check and the increment
 * are one step (a compare-and-swap), so threads racing for the last page
 * never take held above max.  Once per page, never per object.  false:
 * held is at max already.
 */
bool pool_held_reserve(struct rcupool *p, uint32_t max,
		       uint64_t *now_held)
{
	struct lease_counters *ctr = p->ctr;
	uint64_t held = atomic_load_explicit(&ctr->held, memory_order_relaxed);
	uint64_t peak;

	do {
		if (held >= max)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
		&ctr->held, &held, held + 1, memory_order_relaxed,
		memory_order_relaxed));
	*now_held = ++held;
	peak = atomic_load_explicit(&ctr->held_peak, memory_order_relaxed);
	while (held > peak &&
	       !atomic_compare_exchange_weak_explicit(&ctr->held_peak, &peak,
						      held, memory_order_relaxed,
						      memory_order_relaxed))
		;
	return true;
}

/* Our CPU list is empty: refill it from the global list, refill at once. */
static int pool_refill_local(struct rcupool *p, uint32_t *page)
{
	struct seg *s = p->seg;
	uint32_t first = 0, last = 0;
	uint32_t want = atomic_load_explicit(&p->refill, memory_order_relaxed);
	int n, r;

	n = stack_pop_chain(s, &s->global->free, want ? want : 1, &first,
			    &last);
	if (n <= 0)
		return -ENOENT;
	*page = first;
	if (n > 1) {
		uint32_t rest = atomic_load_explicit(&s->next[first],
						     memory_order_relaxed) - 1;

		r = pcpu_push_chain(s, PCPU_FREE, rest, last);
		if (r >= 0)
			atomic_fetch_add_explicit(&p->cpu_est[r], (uint32_t)n - 1,
						  memory_order_relaxed);
		else
			stack_push_chain(s, &s->global->free, rest, last);
	}
	return 0;
}

/*
 * Wake the drain thread to ask for chunks: our lists are below their low
 * mark, or empty.  At most one write per millisecond.
 */
static void pool_kick(struct rcupool *p)
{
	int64_t now, last;

	if (atomic_load_explicit(&p->lender_gone, memory_order_relaxed) ||
	    atomic_load_explicit(&p->forked, memory_order_relaxed))
		return;
	now = (int64_t)pool_now_ns();
	last = atomic_load_explicit(&p->last_kick_ns, memory_order_relaxed);
	if (now - last < 1000000 ||
	    !atomic_compare_exchange_strong_explicit(&p->last_kick_ns, &last,
						     now, memory_order_relaxed,
						     memory_order_relaxed))
		return;
	pool_drain_wake(p);
}

/*
 * The page this CPU's next switch will take, unless another thread here
 * takes it first: its first line and its descriptor start on their way
 * from the CPU that freed it while this page fills, not at the switch (a
 * store into a line another CPU read last: bench_pagestore's `handed`
 * row).  A prefetch never faults, even on a page being unmapped.
 */
static inline void pool_prefetch_next(struct rcupool *p, int cpu)
{
	struct seg *s = p->seg;
	uint32_t top = (uint32_t)__atomic_load_n(
		pcpu_list_head(&s->cpu[cpu], PCPU_FREE), __ATOMIC_RELAXED);

	if (top && top <= s->npages) {
		__builtin_prefetch(seg_page(s, top - 1), 1, 3);
		__builtin_prefetch(&p->desc[top - 1], 1, 3);
	}
}

/*
 * A page of our lent chunks, or -EDQUOT (max_pages), -ENOSPC (every list
 * empty: the drain thread is asked for chunks).  Per page: the held count,
 * the chunk's free count, owner[] (for the census); never per object.
 */
static int pool_page_take(struct rcupool *p, uint32_t *page)
{
	struct seg *s = p->seg;
	struct lease_counters *ctr = p->ctr;
	uint32_t max = pool_limit_max(p), lent, low;
	uint64_t held;
	int cpu = -1, r;

	/* Counted first: given back below if every list is empty. */
	if (!pool_held_reserve(p, max, &held)) {
		pool_count(p, &ctr->denied, 1);
		return -EDQUOT;
	}
	r = pcpu_pop(s, PCPU_FREE, page, &cpu);
	if (r >= 0) {
		uint32_t e = atomic_load_explicit(&p->cpu_est[r],
						  memory_order_relaxed);

		if (e)
			atomic_store_explicit(&p->cpu_est[r], e - 1,
					      memory_order_relaxed);
		pool_prefetch_next(p, r);
		goto got;
	}
	if (r == -ENOENT && pool_refill_local(p, page) == 0)
		goto got;
	if (r == -ENODEV)
		pool_kick(p); /* a CPU we think offline: resync */
	/* -EOPNOTSUPP (no rseq), -ENODEV (CPU offline): the global list. */
	if (stack_pop(s, &s->global->free, page) == 0)
		goto got;
	atomic_fetch_sub_explicit(&ctr->held, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->global->stats.empty, 1,
				  memory_order_relaxed);
	pool_count(p, &ctr->depletions, 1);
	pool_kick(p);
	return -ENOSPC;
got:
	atomic_fetch_sub_explicit(&s->chunk_free[*page / s->chunk_pages], 1,
				  memory_order_relaxed);
	pool_count(p, &ctr->pages_got, 1);
	/*
	 * Plain stores after the last locked instruction: a store to a line
	 * another CPU wrote (owner[] and the descriptor, by the reclaim
	 * thread) then waits in the store buffer while the caller goes on,
	 * instead of stalling the next locked one.
	 */
	atomic_store_explicit(&s->owner[*page], seg_owner_of_slot(0),
			      memory_order_relaxed);
	/* Below the low mark: ask ahead of need (the drain thread asks). */
	lent = atomic_load_explicit(&p->lent_pages, memory_order_relaxed);
	low = atomic_load_explicit(&p->lim->low_pages, memory_order_relaxed);
	if (lent - held < low && lent + s->chunk_pages <= max)
		pool_kick(p);
	return 0;
}

/*
 * A page back on the global list (never a CPU list: the thread that gives
 * pages back after a grace period is rarely one that fills; fillers refill
 * their CPU list from the global list in runs of p->refill).  Counted in
 * its chunk first, so a chunk whose count is full has its every page on a
 * list or about to be.
 */
static void pool_page_give(struct rcupool *p, uint32_t page)
{
	struct seg *s = p->seg;

	atomic_store_explicit(&s->owner[page], SEG_OWNER_FREE,
			      memory_order_relaxed);
	atomic_fetch_add_explicit(&s->chunk_free[page / s->chunk_pages], 1,
				  memory_order_relaxed);
	atomic_fetch_sub_explicit(&p->ctr->held, 1, memory_order_relaxed);
	stack_push(s, &s->global->free, page);
}

/*
 * Heap pages: overflow and emergency batches.  Not from malloc(): to
 * glibc a page is a large request, and each one consolidates the fastbins
 * of its arena first -- the arena the program's objects are being freed
 * into by the reclaim thread -- so every cheap free before it became a
 * coalescing one (malloc_consolidate and unlink_chunk led the reclaim
 * thread's profile of the capped client).  The page comes from mmap (the
 * batch header, a small request, from malloc), and both wait in a small
 * cache for the next burst; the drain thread gives back what stayed idle.
 */
static size_t pool_heap_bytes(struct rcupool *p)
{
	size_t sys = (size_t)sysconf(_SC_PAGESIZE), want = p->seg->page_size;

	return (want + sys - 1) / sys * sys;
}

static void pool_heap_page_free(struct rcupool *p, struct pool_batch *b)
{
	munmap(b->ptrs, pool_heap_bytes(p));
	free(b);
}

static struct pool_batch *pool_heap_page(struct rcupool *p)
{
	struct pool_batch *b;
	void *mem;

	pthread_mutex_lock(&p->hlock);
	b = p->hfree;
	if (b) {
		p->hfree = b->next;
		p->hcount--;
	}
	p->htaken++;
	pthread_mutex_unlock(&p->hlock);
	if (b)
		return b;
	if (posix_memalign(&mem, POOL_CACHELINE, sizeof(*b)))
		return NULL;
	b = mem;
	mem = mmap(NULL, pool_heap_bytes(p), PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		free(b);
		return NULL;
	}
	pthread_mutex_lock(&p->hlock);
	p->hmapped++;
	pthread_mutex_unlock(&p->hlock);
	b->ptrs = mem;
	return b;
}

/* Cached up to the overflow bound; beyond, back to the kernel. */
static void pool_heap_page_put(struct rcupool *p, struct pool_batch *b)
{
	pthread_mutex_lock(&p->hlock);
	if (p->hcount < pool_overflow_pages(p)) {
		b->next = p->hfree;
		p->hfree = b;
		p->hcount++;
		b = NULL;
	}
	pthread_mutex_unlock(&p->hlock);
	if (b)
		pool_heap_page_free(p, b);
}

void pool_heap_trim(struct rcupool *p, bool all)
{
	struct pool_batch *list = NULL, *b;
	uint32_t keep;

	pthread_mutex_lock(&p->hlock);
	/* Idle since the last pass: half goes (all at close). */
	keep = all ? 0 : p->htaken ? p->hcount : p->hcount / 2;
	p->htaken = 0;
	while (p->hcount > keep) {
		b = p->hfree;
		p->hfree = b->next;
		p->hcount--;
		b->next = list;
		list = b;
	}
	pthread_mutex_unlock(&p->hlock);
	while ((b = list)) {
		list = b->next;
		pool_heap_page_free(p, b);
	}
}

static struct pool_batch *pool_heap_batch(struct rcupool *p, bool emergency)
{
	struct pool_batch *b;
	uint32_t bound = pool_overflow_pages(p);

	if (!emergency && atomic_load_explicit(&p->heap_pages,
					       memory_order_relaxed) >= bound)
		return NULL;
	b = pool_heap_page(p);
	if (!b)
		return NULL;
	atomic_fetch_add_explicit(&p->heap_pages, 1, memory_order_relaxed);
	*b = (struct pool_batch){
		.ptrs = b->ptrs,
		.cap = p->cap,
		.page = POOL_HEAP,
		.emergency = emergency,
	};
	pool_count(p, &p->ctr->fb_overflow, 1);
	if (emergency)
		pool_count(p, &p->emergency, 1);
	return b;
}

struct pool_batch *pool_batch_get(struct rcupool *p, bool emergency)
{
	struct pool_batch *b = NULL;
	uint32_t page = 0;

	if (!emergency && p->use_seg && pool_page_take(p, &page) == 0) {
		b = &p->desc[page];
		b->ptrs = seg_page(p->seg, page);
		b->cap = p->cap;
		b->page = page;
		b->emergency = false;
	} else {
		b = pool_heap_batch(p, emergency);
		if (!b)
			return NULL;
	}
	b->n = 0;
	b->next = NULL;
	b->filler = NULL;
	b->drained = false;
	b->fork_gen = p->fork_gen;
	return b;
}

/* Free every pointer of a batch whose grace period has passed. */
void pool_batch_free_objs(struct rcupool *p, struct pool_batch *b)
{
	void (*fn)(void *) = p->free_fn;

	for (uint32_t i = 0; i < b->n; i++)
		fn(b->ptrs[i]);
}

/* Give the page of a batch back (the batch is dead after). */
void pool_batch_release(struct rcupool *p, struct pool_batch *b)
{
	if (b->page == POOL_HEAP) {
		pool_heap_page_put(p, b);
		atomic_fetch_sub_explicit(&p->heap_pages, 1,
					  memory_order_relaxed);
	} else if (p->use_seg) {
		pool_page_give(p, b->page);
	}
	/* else: a forked child never gives back the parent's pages. */
}

/* Grace period over: free the objects, give the page back. */
void pool_batch_complete(struct rcupool *p, struct pool_batch *b)
{
	if (b->fork_gen != p->fork_gen) {
		/*
		 * Queued by the parent before fork() and run in the child:
		 * the page (shared) and the objects are the parent's to free.
		 */
		if (b->page == POOL_HEAP)
			pool_heap_page_put(p, b); /* our copy of it */
		return;
	}
	pool_batch_free_objs(p, b);
	pool_batch_release(p, b);
}

/* Counted per page: the objects and the page. */
static void pool_batch_count(struct rcupool *p, struct pool_batch *b)
{
	pool_count(p, &p->ctr->objects, b->n);
	if (b->n < b->cap)
		pool_count(p, &p->drained, 1);
}

/* A full (or flushed) page: to the pool's reclaim queue (pool_reclaim.c). */
void pool_batch_submit(struct rcupool *p, struct pool_batch *b)
{
	pool_batch_count(p, b);
	pool_reclaim_submit(p, b);
}

/* Claimed batches are counted here, freed by the drain after a GP. */
void pool_batch_count_claimed(struct rcupool *p, struct pool_batch *b)
{
	pool_batch_count(p, b);
}

/*
 * Head fallback chain: word 0 of each rcu_head links to the next, word 1
 * holds the offset of the head in its object.
 */
void pool_heads_free(struct rcupool *p, struct rcu_head *h)
{
	while (h) {
		void **w = (void **)h;
		struct rcu_head *next = w[0];
		size_t off = (size_t)(uintptr_t)w[1];

		p->free_fn((char *)h - off);
		h = next;
	}
}

