// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The client's chunk table and its half of lending (DESIGN.md section 3).
 *
 * At open the pool reserves one virtual range (PROT_NONE, private,
 * NORESERVE) of nchunks chunk-sized slots, enough for its max_pages, and
 * builds its lists over it in private memory (seg_private_create).  A chunk
 * the lender gives is mapped MAP_FIXED|MAP_SHARED into a free slot, its fd
 * closed, the range marked MADV_DONTFORK (a forked child never holds a
 * parent's chunk), and its pages pushed on the global list: page index =
 * slot * chunk_pages + i.
 *
 * Only the drain thread (and open/close) ask or give back, under
 * chunk_lock: one round trip, never on the free path, which at most wakes
 * the drain thread (pool_kick, at most once per ms) when the free pages on
 * our lists fall below the lease's low_pages or run out; it asks for
 * enough to be a chunk above low.
 *
 * Giving back: a chunk is given back only when every one of its pages is
 * on our lists and we hold them all.  pool_chunk_return() takes the whole
 * global list in one CAS, counts its pages per chunk, keeps the chunks
 * whose pages are all there, and pushes the rest back in one CAS.  Pages
 * left on CPU lists are gathered first if the global list alone is not
 * enough: the drain thread pins itself to each online CPU in turn and pops
 * that CPU's list (rseq: a CPU's list is only updated from that CPU), as
 * the old daemon balancer did.  A kept chunk's slot is remapped PROT_NONE
 * (MAP_FIXED anonymous) before the lender's put: a stale pointer into it
 * faults, it never reaches the next borrower's memory.  While the global
 * list is detached a page request may find it empty (counted as a
 * depletion): the window is one walk of the list, and returns are rare.
 *
 * Limits are read from the lease on every use and clamped: a scribbled
 * lease lies only to us, and never makes us follow a bad value.
 *
 * Re-attach (no fd store: the daemon was restarted by hand, or the store
 * was lost).  EOF on the connection marks the lender gone: the pool keeps
 * using the chunks it has (then its fallbacks) and the drain thread tries
 * ATTACH again on the same path, at once, then after 25 ms, doubling up to
 * the drain interval.  Once attached, the old lender's chunks become
 * "retiring" (their slot's generation is older than lender_gen): they are
 * never given to the new daemon (its ids are its own), their pages are
 * taken off the global list as they come back (parked, counted per chunk,
 * never handed out again), and a chunk is unmapped once every page is
 * parked: batches in flight keep their page index until their grace
 * period ends and their objects are freed, so nothing is freed early or
 * twice.  New chunks go into free slots of the same range.  The pool's
 * limits and counters stay in the first lease (home, still mapped: the
 * memfd outlives its daemon); each tick copies the new lease's limits in
 * and our counters out, so `rcupoolctl set` and `clients` work as before,
 * one tick late.  A new daemon with another page or chunk size cannot
 * lend us chunks: we then stop trying.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cpu.h"
#include "pcpu.h"
#include "pool.h"
#include "stack.h"

#define POOL_MAX_OVERFLOW (UINT32_C(1) << 20)
/*
 * Free pages above the high mark for this many drain intervals (10 s by
 * default) are given back; the lender recalls them sooner when another
 * client needs them (a shortage).
 */
#define POOL_SURPLUS_DRAINS 10
#define POOL_MAX_DRAIN_MS (UINT32_C(3600) * 1000)

static inline uint32_t pool_ld(_Atomic uint32_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

uint32_t pool_limit_max(struct rcupool *p)
{
	uint32_t m = pool_ld(&p->lim->max_pages), cap = p->seg->npages;

	return m > cap ? cap : m;
}

uint32_t pool_drain_interval_ms(struct rcupool *p)
{
	uint32_t ms = pool_ld(&p->lim->drain_interval_ms);

	if (!ms)
		return POOL_DEF_DRAIN_MS;
	return ms > POOL_MAX_DRAIN_MS ? POOL_MAX_DRAIN_MS : ms;
}

uint32_t pool_overflow_pages(struct rcupool *p)
{
	uint32_t n = pool_ld(&p->lim->overflow_pages);

	return n > POOL_MAX_OVERFLOW ? POOL_MAX_OVERFLOW : n;
}

void pool_limits_read(struct rcupool *p, struct pool_limits *l)
{
	uint32_t cp = p->seg->chunk_pages;

	l->max = pool_limit_max(p);
	l->min = pool_ld(&p->lim->min_pages);
	if (l->min > l->max)
		l->min = l->max;
	l->low = pool_ld(&p->lim->low_pages);
	if (l->low > l->max)
		l->low = l->max;
	/* Room between the marks: never give back what we would ask again. */
	l->high = pool_ld(&p->lim->high_pages);
	if (l->high < l->low + 2 * cp)
		l->high = l->low + 2 * cp;
	l->overflow = pool_overflow_pages(p);
	l->drain_ms = pool_drain_interval_ms(p);
	l->return_chunks = pool_ld(&p->lim->return_chunks);
	if (l->return_chunks > p->seg->nchunks)
		l->return_chunks = p->seg->nchunks;
}

static int64_t pool_chunk_free_slot(struct rcupool *p)
{
	struct seg *s = p->seg;

	for (uint32_t i = 0; i < s->nchunks; i++)
		if (!atomic_load_explicit(&s->chunk_present[i],
					  memory_order_relaxed))
			return i;
	return -ENOSPC;
}

/* Map one received chunk and put its pages on the global list; fd closed. */
static int pool_chunk_map(struct rcupool *p, const struct lend_chunk *c)
{
	struct seg *s = p->seg;
	int64_t slot = pool_chunk_free_slot(p);
	uint32_t first;
	int r;

	if (slot < 0)
		r = (int)slot;
	else if (c->pages != s->chunk_pages)
		r = -EBADMSG;
	else
		r = seg_private_map_chunk(s, (uint32_t)slot, c->fd);
	close(c->fd);
	if (r < 0) {
		/* Not ours to keep: give it straight back. */
		p->lender->ops->put(p->lender, &c->id, 1);
		return r;
	}
	first = (uint32_t)slot * s->chunk_pages;
	p->chunk_id[slot] = c->id;
	p->chunk_gen[slot] = p->lender_gen;
	p->parked[slot] = 0;
	atomic_fetch_add_explicit(&p->lent_pages, s->chunk_pages,
				  memory_order_relaxed);
	stack_push_chain(s, &s->global->free, first,
			 first + s->chunk_pages - 1);
	return 0;
}

static void pool_lender_lost(struct rcupool *p)
{
	if (!atomic_load(&p->lender_gone)) {
		/* First retry at once (the next tick), then backing off. */
		p->reattach_after_ns = 0;
		p->reattach_backoff_ms = 0;
	}
	atomic_store(&p->lender_gone, true);
	atomic_store(&p->attached, false);
}

/* A chunk of a lender before the current one: never given back to it. */
static bool pool_chunk_old(const struct rcupool *p, uint32_t slot)
{
	return p->chunk_gen[slot] != p->lender_gen;
}

/*
 * Pages mapped from the current lender and free pages we may use: a
 * retiring chunk's parked pages are off every list, its other pages count
 * as before (held ones come back and are parked).
 */
static void pool_chunk_usable(struct rcupool *p, uint32_t *lent,
			      uint64_t *free)
{
	uint32_t all = atomic_load(&p->lent_pages);
	uint64_t held = atomic_load(&p->ctr->held) + p->parked_pages;
	uint32_t old = p->retiring * p->seg->chunk_pages;

	*lent = all > old ? all - old : 0;
	*free = all > held ? all - held : 0;
}

/* One round trip: up to want chunks.  Chunks got, or -errno. */
static int pool_chunk_ask(struct rcupool *p, uint32_t want)
{
	struct lend_chunk got[LEND_GET_MAX];
	uint32_t n = 0, mapped = 0;
	int cpu = pcpu_current_cpu(), r;

	if (want > LEND_GET_MAX)
		want = LEND_GET_MAX;
	pool_count(p, &p->ctr->chunks_asked, 1);
	r = p->lender->ops->get(p->lender, cpu < 0 ? -1 : cpu, want, got, &n);
	if (r == -ECONNRESET)
		pool_lender_lost(p);
	if (r < 0 || !n) {
		/*
		 * Refused (-ENOSPC, -EDQUOT...): the page path keeps waking us
		 * while the lists are low; do not ask again at that rate.
		 * 10 ms, doubling to 1 s, until a request is granted.
		 */
		p->ask_backoff_ms = p->ask_backoff_ms ? p->ask_backoff_ms * 2
						      : 10;
		if (p->ask_backoff_ms > 1000)
			p->ask_backoff_ms = 1000;
		p->ask_after_ns = pool_now_ns() +
				  (uint64_t)p->ask_backoff_ms * 1000000;
		return r < 0 ? r : 0;
	}
	p->ask_backoff_ms = 0;
	if (n > want)
		n = want; /* a lender that lies: never read past our array */
	for (uint32_t i = 0; i < n; i++)
		if (pool_chunk_map(p, &got[i]) == 0)
			mapped++;
	return (int)mapped;
}

/*
 * Ask until the free pages reach a chunk above low, within max.  Filled
 * only to low, the lists fell below it at the next page taken, and the ask
 * that followed had low pages to last its round trip.  Right after open,
 * before a grace period has given anything back, a round trip of 0.2-6.5 ms
 * (a virtualised host waking an idle vCPU) emptied them: in bench_sizing
 * at a steady 4M objects/s every heap page of the smallest reserves came
 * at start.  pool_limits_read() keeps high two chunks above low, so the
 * surplus rule never gives that chunk back.  Under chunk_lock.
 */
static void pool_chunk_fill(struct rcupool *p, const struct pool_limits *l,
			    int rounds)
{
	struct seg *s = p->seg;
	uint32_t cp = s->chunk_pages;
	uint64_t goal = (uint64_t)l->low + cp;

	for (int round = 0; round < rounds; round++) {
		uint64_t free, short_by;
		uint32_t lent, want;

		pool_chunk_usable(p, &lent, &free);
		if (free >= goal)
			break;
		if (lent + cp > l->max)
			break;
		short_by = goal - free; /* > 0: want >= 1 */
		want = (uint32_t)((short_by + cp - 1) / cp);
		if (want > (l->max - lent) / cp)
			want = (l->max - lent) / cp;
		if (pool_chunk_ask(p, want) <= 0)
			break;
	}
}

/* Pin the calling thread to cpu: 0, or -errno. */
static int pool_pin(int cpu)
{
	cpu_set_t *set = CPU_ALLOC(CPU_MAX);
	size_t sz = CPU_ALLOC_SIZE(CPU_MAX);
	int r;

	if (!set)
		return -ENOMEM;
	CPU_ZERO_S(sz, set);
	CPU_SET_S((size_t)cpu, sz, set);
	r = sched_setaffinity(0, sz, set) < 0 ? -errno : 0;
	CPU_FREE(set);
	return r;
}

/*
 * Every online CPU's list onto the global list, popped from a thread pinned
 * there (pcpu.h: a CPU's list is only updated on that CPU).  The thread's
 * affinity is restored after.
 */
static void pool_chunk_gather_cpus(struct rcupool *p)
{
	struct seg *s = p->seg;
	size_t sz = CPU_ALLOC_SIZE(CPU_MAX);
	cpu_set_t *old = CPU_ALLOC(CPU_MAX);

	if (!old || !pcpu_available() || sched_getaffinity(0, sz, old) < 0)
		goto out;
	for (uint32_t c = 0; c < s->ncpus; c++) {
		uint32_t first, last;
		int n, where = -1;

		if (!pool_ld(&s->cpu[c].online) || pool_pin((int)c) < 0)
			continue;
		do {
			n = pcpu_pop_chain(s, PCPU_FREE, 64, &first, &last,
					   &where);
			if (n > 0)
				stack_push_chain(s, &s->global->free, first,
						 last);
		} while (n > 0);
		atomic_store_explicit(&p->cpu_est[c], 0, memory_order_relaxed);
	}
	sched_setaffinity(0, sz, old);
out:
	if (old)
		CPU_FREE(old);
}

/*
 * Take the whole global list, keep up to n chunks whose every page is on
 * it, push the rest back.  Under chunk_lock.  How many kept (slots in
 * out[]).
 */
static uint32_t pool_chunk_pick(struct rcupool *p, uint32_t n, uint32_t *out)
{
	struct seg *s = p->seg;
	uint32_t cp = s->chunk_pages, first = 0, last = 0, cur, k = 0;
	uint32_t keep_first = 0, keep_last = 0, walked = 0;
	bool keep_any = false;
	int got;

	got = stack_pop_chain(s, &s->global->free, UINT32_MAX, &first, &last);
	if (got <= 0)
		return 0;
	memset(p->gather, 0, s->nchunks * sizeof(*p->gather));
	for (cur = first + 1; cur && walked < (uint32_t)got; walked++) {
		p->gather[(cur - 1) / cp]++;
		cur = atomic_load_explicit(&s->next[cur - 1],
					   memory_order_relaxed);
	}
	for (uint32_t i = s->nchunks; i-- > 0 && k < n;)
		if (p->gather[i] == cp && pool_ld(&s->chunk_free[i]) == cp &&
		    !pool_chunk_old(p, i)) {
			p->gather[i] = UINT32_MAX; /* this one goes */
			out[k++] = i;
		}
	/* The rest back, in their order, in one CAS. */
	walked = 0;
	for (cur = first + 1; cur && walked < (uint32_t)got; walked++) {
		uint32_t page = cur - 1;

		cur = atomic_load_explicit(&s->next[page],
					   memory_order_relaxed);
		if (p->gather[page / cp] == UINT32_MAX)
			continue;
		if (pool_chunk_old(p, page / cp)) {
			/* Retiring: off our lists for good. */
			p->parked[page / cp]++;
			p->parked_pages++;
			continue;
		}
		if (keep_any)
			atomic_store_explicit(&s->next[keep_last], page + 1,
					      memory_order_relaxed);
		else
			keep_first = page;
		keep_last = page;
		keep_any = true;
	}
	if (keep_any) {
		atomic_store_explicit(&s->next[keep_last], 0,
				      memory_order_relaxed);
		stack_push_chain(s, &s->global->free, keep_first, keep_last);
	}
	return k;
}

/*
 * Slots out of our lists: unmap, then give back (a retiring chunk is only
 * unmapped: its lender is gone).  Under chunk_lock.
 */
static void pool_chunk_give_back(struct rcupool *p, const uint32_t *slots,
				 uint32_t k)
{
	struct seg *s = p->seg;
	uint64_t ids[64];
	uint32_t n = 0;

	for (uint32_t i = 0; i < k; i++) {
		uint32_t slot = slots[i];

		atomic_fetch_sub_explicit(&p->lent_pages, s->chunk_pages,
					  memory_order_relaxed);
		seg_private_unmap_chunk(s, slot);
		if (pool_chunk_old(p, slot)) {
			p->parked_pages -= p->parked[slot];
			p->parked[slot] = 0;
			p->retiring--;
			pool_count(p, &p->retired, 1);
			p->chunk_gen[slot] = p->lender_gen;
		} else {
			ids[n++] = p->chunk_id[slot];
		}
		if (n && (n == 64 || i + 1 == k)) {
			if (p->lender && !atomic_load(&p->lender_gone)) {
				int r = p->lender->ops->put(p->lender, ids, n);

				if (r == -ECONNRESET)
					pool_lender_lost(p);
			}
			pool_count(p, &p->ctr->chunks_returned, n);
			n = 0;
		}
	}
}

static int pool_chunk_return_locked(struct rcupool *p, uint32_t n)
{
	struct seg *s = p->seg;
	uint32_t *slots, k;

	uint32_t whole = 0;

	/*
	 * Only chunks none of whose pages is held can go: if there are none,
	 * leave the lists alone (no detach, no pinning) and look next tick.
	 */
	for (uint32_t i = 0; i < s->nchunks; i++)
		whole += atomic_load_explicit(&s->chunk_present[i],
					      memory_order_relaxed) &&
			 pool_ld(&s->chunk_free[i]) == s->chunk_pages;
	if (n > whole)
		n = whole;
	if (!n)
		return 0;
	slots = malloc(n * sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	k = pool_chunk_pick(p, n, slots);
	if (k < n) {
		/* Pages left on CPU lists: gather them, look again. */
		pool_chunk_gather_cpus(p);
		k += pool_chunk_pick(p, n - k, slots + k);
	}
	pool_chunk_give_back(p, slots, k);
	free(slots);
	return (int)k;
}

int pool_chunk_return(struct rcupool *p, uint32_t n)
{
	int r;

	pthread_mutex_lock(&p->chunk_lock);
	r = pool_chunk_return_locked(p, n);
	pthread_mutex_unlock(&p->chunk_lock);
	return r;
}

void pool_chunk_hotplug(struct rcupool *p)
{
	struct seg *s = p->seg;
	bool now[CPU_MAX];

	if (cpu_list_read(p->cpu_online_path, now, CPU_MAX) < 0)
		return;
	for (uint32_t c = 0; c < s->ncpus; c++) {
		if (now[c] == p->cpu_online[c])
			continue;
		if (now[c]) {
			/* Back online: its list was emptied when it left. */
			atomic_store(&s->cpu[c].online, 1);
			p->cpu_online[c] = true;
			continue;
		}
		/*
		 * Gone: clear its word first (no sequence commits on it after),
		 * then see it still offline (a sequence that read the word set
		 * was on the CPU before it went, and was aborted), then its
		 * list is ours to move from here.
		 */
		atomic_store(&s->cpu[c].online, 0);
		if (cpu_list_read(p->cpu_online_path, now, CPU_MAX) < 0 ||
		    now[c]) {
			atomic_store(&s->cpu[c].online, 1);
			continue;
		}
		stack_move_all(s, &s->cpu[c].free, &s->global->free);
		atomic_store_explicit(&p->cpu_est[c], 0, memory_order_relaxed);
		p->cpu_online[c] = false;
	}
}

/*
 * Retiring chunks: park their pages that are back on the global list (and,
 * when a chunk is wholly free but some of its pages sit on CPU lists,
 * gather those), unmap every chunk whose pages are all parked.  Under
 * chunk_lock.
 */
static void pool_chunk_retire(struct rcupool *p)
{
	struct seg *s = p->seg;
	uint32_t cp = s->chunk_pages, k = 0, *slots;
	bool on_cpus = false;

	slots = malloc(s->nchunks * sizeof(*slots));
	if (!slots)
		return;
	for (int pass = 0; pass < 2; pass++) {
		pool_chunk_pick(p, 0, NULL);
		for (uint32_t i = 0; i < s->nchunks; i++) {
			if (!atomic_load_explicit(&s->chunk_present[i],
						  memory_order_relaxed) ||
			    !pool_chunk_old(p, i))
				continue;
			if (p->parked[i] == cp)
				slots[k++] = i;
			else if (pool_ld(&s->chunk_free[i]) == cp)
				on_cpus = true;
		}
		pool_chunk_give_back(p, slots, k);
		k = 0;
		if (!on_cpus)
			break;
		pool_chunk_gather_cpus(p);
		on_cpus = false;
	}
	free(slots);
}

/*
 * Copy the current lender's limits into the home lease (the page path
 * reads them there) and our counters out to it (the daemon reads them
 * there).  Nothing to do while the current lease is home.
 */
static void pool_chunk_mirror(struct rcupool *p)
{
	struct lease_shm *cur = p->lender ? p->lender->lease : NULL;
	struct lease_limits *to, *from;
	_Atomic uint64_t *cs, *cd;

	if (!p->home || !cur || cur == p->home)
		return;
	to = &p->home->limits;
	from = &cur->limits;
#define POOL_MIRROR(f) atomic_store(&to->f, atomic_load(&from->f))
	POOL_MIRROR(min_pages);
	POOL_MIRROR(max_pages);
	POOL_MIRROR(overflow_pages);
	POOL_MIRROR(drain_interval_ms);
	POOL_MIRROR(low_pages);
	POOL_MIRROR(high_pages);
	POOL_MIRROR(return_chunks);
	POOL_MIRROR(reclaim_min_gap_us);
	POOL_MIRROR(generation);
#undef POOL_MIRROR
	cs = (_Atomic uint64_t *)&p->home->counters;
	cd = (_Atomic uint64_t *)&cur->counters;
	for (size_t i = 0; i < sizeof(struct lease_counters) / 8; i++)
		atomic_store_explicit(&cd[i],
				      atomic_load_explicit(&cs[i],
							   memory_order_relaxed),
				      memory_order_relaxed);
}

int pool_chunk_reattach_init(struct rcupool *p, const char *path,
			     const char *name, uint32_t min, uint32_t max)
{
	p->re_path = path ? strdup(path) : NULL;
	p->re_name = name ? strdup(name) : NULL;
	if ((path && !p->re_path) || (name && !p->re_name))
		return -ENOMEM;
	p->re_min = min;
	p->re_max = max;
	p->home = p->lender->lease;
	p->can_reattach = true;
	return 0;
}

/* The lender is gone: attach again when due.  Under chunk_lock. */
static void pool_chunk_reattach(struct rcupool *p, uint64_t now)
{
	struct seg *s = p->seg;
	struct lender *nl = NULL, *old = p->lender;
	char why[256];
	uint32_t ms;

	if (!p->can_reattach || now < p->reattach_after_ns)
		return;
	if (lend_daemon_reopen(p->re_path, p->re_name, p->re_min, p->re_max,
			       (uint32_t)atomic_load(&p->reattaches) + 1, &nl,
			       why, sizeof(why)) < 0)
		goto later;
	if (nl->page_size != s->page_size ||
	    nl->chunk_pages != s->chunk_pages) {
		/* Its chunks would not fit our slots: stay on our own. */
		nl->ops->close(nl);
		p->can_reattach = false;
		return;
	}
	if (old->lease == p->home)
		old->lease = NULL; /* still ours: p->lim, p->ctr */
	old->ops->close(old);
	p->lender = nl;
	p->lender_gen++;
	p->retiring = 0;
	for (uint32_t i = 0; i < s->nchunks; i++)
		if (atomic_load_explicit(&s->chunk_present[i],
					 memory_order_relaxed))
			p->retiring += pool_chunk_old(p, i);
	pool_chunk_mirror(p);
	p->ask_after_ns = 0;
	p->ask_backoff_ms = 0;
	p->reattach_backoff_ms = 0;
	pool_count(p, &p->reattaches, 1);
	atomic_store(&p->lender_gone, false);
	atomic_store(&p->attached, true);
	return;
later:
	ms = p->reattach_backoff_ms ? p->reattach_backoff_ms * 2 : 25;
	if (ms > pool_drain_interval_ms(p))
		ms = pool_drain_interval_ms(p);
	p->reattach_backoff_ms = ms;
	p->reattach_after_ns = now + (uint64_t)ms * 1000000;
}

int pool_chunk_wait_ms(struct rcupool *p, int tick_ms)
{
	uint64_t now, after = p->reattach_after_ns;
	int64_t ms;

	if (!p->can_reattach || !atomic_load(&p->lender_gone))
		return tick_ms;
	now = pool_now_ns();
	ms = after > now ? (int64_t)((after - now + 999999) / 1000000) : 0;
	return ms < tick_ms ? (int)ms : tick_ms;
}

void pool_chunk_tick(struct rcupool *p, bool lender_ready)
{
	struct seg *s = p->seg;
	struct pool_limits l;
	uint32_t cp, lent, n = 0, per;
	uint64_t free, now;

	if (!p->use_seg || !p->lender)
		return; /* a forked child: no chunks, no lender */
	pthread_mutex_lock(&p->chunk_lock);
	if (lender_ready && !atomic_load(&p->lender_gone) &&
	    p->lender->ops->event(p->lender) == -ECONNRESET)
		pool_lender_lost(p);
	now = pool_now_ns();
	if (atomic_load(&p->lender_gone))
		pool_chunk_reattach(p, now);
	pool_chunk_mirror(p);
	if (p->retiring)
		pool_chunk_retire(p);
	if (now - p->hotplug_ns >= 500000000) {
		p->hotplug_ns = now;
		pool_chunk_hotplug(p);
	}
	pool_reclaim_publish(p);
	pool_limits_read(p, &l);
	cp = s->chunk_pages;
	/* CPU lists refill in runs of a share of the low mark. */
	per = l.low / (2 * s->ncpus);
	if (per < 1)
		per = 1;
	if (per > 64)
		per = 64;
	atomic_store_explicit(&p->refill, per, memory_order_relaxed);
	pool_chunk_usable(p, &lent, &free);
	if (!atomic_load(&p->lender_gone)) {
		n = l.return_chunks;
		if (lent > l.max && (lent - l.max + cp - 1) / cp > n)
			n = (lent - l.max + cp - 1) / cp;
		/*
		 * Down to between the marks (room both ways), once the
		 * surplus has lasted: a program that frees in bursts would
		 * otherwise give its chunks back after each one and borrow
		 * them again, new, for the next (each a fresh memfd the
		 * daemon zeroes and the client maps and touches: at one
		 * thread, 1M objects cost 21-23 ns each against 15-17
		 * with the chunks kept; at two threads flat out, that work
		 * took the CPUs the fillers needed).  The lender's recall
		 * and a lowered max are obeyed at once.
		 */
		if (free <= l.high)
			p->surplus_ns = 0;
		else if (!p->surplus_ns)
			p->surplus_ns = now;
		if (p->surplus_ns && now - p->surplus_ns >=
					     (uint64_t)POOL_SURPLUS_DRAINS *
						     l.drain_ms * 1000000) {
			uint64_t mid = l.low + (l.high - l.low) / 2;
			uint32_t over = (uint32_t)((free - mid) / cp);

			if (over > n)
				n = over;
		}
	}
	if (n)
		pool_chunk_return_locked(p, n);
	else if (!atomic_load(&p->lender_gone) && (free < l.low || !free) &&
		 now >= p->ask_after_ns)
		pool_chunk_fill(p, &l, 8);
	pthread_mutex_unlock(&p->chunk_lock);
}

int pool_chunk_open(struct rcupool *p, char *why, size_t whylen)
{
	struct lender *ld = p->lender;
	struct seg_error serr = {""};
	uint32_t cp = ld->chunk_pages, ps = ld->page_size, max, nchunks;
	struct pool_limits l;
	int r;

	if (!cp || cp > 65536 || ps < 4096 || ps > 65536 || (ps & (ps - 1))) {
		snprintf(why, whylen, "lease: %u pages of %u bytes per chunk",
			 cp, ps);
		return -EBADMSG;
	}
	r = cpu_possible_count();
	if (r < 0) {
		snprintf(why, whylen, "cannot count possible CPUs");
		return r;
	}
	/* Slots for the max granted at attach (none: 4 GiB of 4 KiB pages). */
	max = ld->max_pages ? ld->max_pages : POOL_CHUNK_VA_PAGES;
	if (max > POOL_CHUNK_VA_PAGES)
		max = POOL_CHUNK_VA_PAGES;
	nchunks = (max + cp - 1) / cp;
	r = seg_private_create(&p->own_seg, ps, (uint32_t)r, cp, nchunks,
			       &serr);
	if (r < 0) {
		snprintf(why, whylen, "%s", serr.msg);
		return r;
	}
	p->seg = &p->own_seg;
	p->cpu_online_path = "/sys/devices/system/cpu/online";
	p->chunk_id = calloc(nchunks, sizeof(*p->chunk_id));
	p->chunk_gen = calloc(nchunks, sizeof(*p->chunk_gen));
	p->parked = calloc(nchunks, sizeof(*p->parked));
	p->gather = calloc(nchunks, sizeof(*p->gather));
	p->cpu_online = calloc(p->seg->ncpus, sizeof(*p->cpu_online));
	if (!p->chunk_id || !p->chunk_gen || !p->parked || !p->gather ||
	    !p->cpu_online) {
		snprintf(why, whylen, "no memory for %u chunk slots", nchunks);
		return -ENOMEM;
	}
	for (uint32_t c = 0; c < p->seg->ncpus; c++)
		p->cpu_online[c] = pool_ld(&p->seg->cpu[c].online);
	pool_limits_read(p, &l);
	pthread_mutex_lock(&p->chunk_lock);
	pool_chunk_fill(p, &l, 1024); /* enough to start */
	pthread_mutex_unlock(&p->chunk_lock);
	return 0;
}

void pool_chunk_forked(struct rcupool *p)
{
	/* No chunk is mapped here (MADV_DONTFORK); the lender is the parent's.
	 */
	if (p->lender && p->lender->fd >= 0)
		close(p->lender->fd);
	p->lender = NULL;
	atomic_store(&p->lender_gone, true);
	atomic_store(&p->lent_pages, 0);
}

void pool_chunk_close(struct rcupool *p)
{
	struct seg *s = p->seg;
	uint32_t *slots, k = 0;

	if (!s || !s->base)
		goto lender;
	/* Nobody uses the pool any more: every mapped chunk goes back. */
	slots = malloc(s->nchunks * sizeof(*slots) + 1);
	pthread_mutex_lock(&p->chunk_lock);
	for (uint32_t i = 0; slots && i < s->nchunks; i++)
		if (p->use_seg && atomic_load(&s->chunk_present[i]))
			slots[k++] = i;
	if (slots)
		pool_chunk_give_back(p, slots, k);
	pthread_mutex_unlock(&p->chunk_lock);
	free(slots);
	seg_private_free(s);
lender:
	if (p->home && (!p->lender || p->lender->lease != p->home))
		munmap(p->home, LEASE_SIZE); /* a re-attached pool's first */
	p->home = NULL;
	if (p->lender)
		p->lender->ops->close(p->lender);
	p->lender = NULL;
	free(p->re_path);
	free(p->re_name);
	p->re_path = p->re_name = NULL;
	free(p->chunk_gen);
	free(p->parked);
	p->chunk_gen = p->parked = NULL;
	free(p->chunk_id);
	free(p->gather);
	free(p->cpu_online);
	p->chunk_id = NULL;
	p->gather = NULL;
	p->cpu_online = NULL;
}
