// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * rcupool_open/close/stats, the choice of mode, and fork().
 *
 * Modes: the pool borrows chunks from a lender (lend.h): rcupoold
 * (lend_daemon_open, DAEMON and AUTO) or the in-process one
 * (lend_private_open, PRIVATE and AUTO's fallback).  One page path for
 * both: pool_chunk.c maps the chunks into the pool's private lists.
 *
 * fork(): every chunk is mapped MADV_DONTFORK, so the child has none of
 * them.  In the child (pthread_atfork handler) every pool is marked
 * forked: it stops using its lists, its limits and counters move to a
 * private lease starting at zero, its copy of the lender's connection is
 * closed (the parent's stays open: the daemon sees nothing), the forking
 * thread's partial batch and the parent's pending work are dropped
 * without being touched (their pages are not mapped here; the objects are
 * the parent's to free; in the child they leak), and frees go through
 * heap pages (overflow, bounded by overflow_pages), then sync/emergency.
 * The drain thread is restarted on the child's first page request.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <urcu/urcu-memb.h>

#include "pool.h"
#include "stack.h"

pthread_mutex_t pool_glock = PTHREAD_MUTEX_INITIALIZER;
pthread_key_t pool_key;
static struct rcupool *pool_all;
static uint32_t pool_idx_used;
static uint64_t pool_serial_last;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static int pool_init_err;

/* Flavors the forking thread was online in (qsbr), put offline meanwhile. */
static const struct rcu_flavor_struct *pool_fork_off[POOL_MAX_OPEN];
static unsigned pool_fork_noff;

static void pool_fork_online_again(void)
{
	for (unsigned i = 0; i < pool_fork_noff; i++)
		pool_fork_off[i]->thread_online();
	pool_fork_noff = 0;
}

static void pool_atfork_prepare(void)
{
	/*
	 * First wait until no grace period of the library runs (reclaim.c:
	 * pool_gp_mutex); qsbr: offline meanwhile, as one may wait for us.
	 */
	pthread_mutex_lock(&pool_glock);
	pool_fork_noff = 0;
	for (struct rcupool *p = pool_all; p; p = p->gnext)
		if (p->flavor->read_ongoing() &&
		    pool_fork_noff < POOL_MAX_OPEN) {
			p->flavor->thread_offline();
			pool_fork_off[pool_fork_noff++] = p->flavor;
		}
	pthread_mutex_unlock(&pool_glock);
	pool_gp_fork_prepare();
	pthread_mutex_lock(&pool_glock);
	for (struct rcupool *p = pool_all; p; p = p->gnext)
		pthread_mutex_lock(&p->lock);
}

static void pool_atfork_parent(void)
{
	for (struct rcupool *p = pool_all; p; p = p->gnext)
		pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&pool_glock);
	pool_gp_fork_parent();
	pool_fork_online_again();
}

static void pool_forked_child(struct rcupool *p)
{
	struct pool_tls_ent *e = &pool_tls[p->idx];
	struct pool_tcache *tc, *next, *mine = NULL;
	struct lease_limits *l = p->lim;

	p->use_seg = false;
	p->fork_gen++;
	/* A new process: register again (only this thread runs, none fills). */
	p->asym = p->asym && pool_membarrier_register();
	atomic_store(&p->forked, true);
	atomic_store(&p->attached, false);
	/* Our own lease from now on: the limits as they were, counters 0. */
	memset(&p->own_lease, 0, sizeof(p->own_lease));
	atomic_store(&p->own_lease.limits.min_pages, atomic_load(&l->min_pages));
	atomic_store(&p->own_lease.limits.max_pages, atomic_load(&l->max_pages));
	atomic_store(&p->own_lease.limits.overflow_pages,
		     atomic_load(&l->overflow_pages));
	atomic_store(&p->own_lease.limits.drain_interval_ms,
		     atomic_load(&l->drain_interval_ms));
	p->lim = &p->own_lease.limits;
	p->ctr = &p->own_lease.counters;
	pool_chunk_forked(p);
	atomic_store(&p->heap_pages, 0);
	atomic_store(&p->drained, 0);
	atomic_store(&p->emergency, 0);
	atomic_store(&p->lost, 0);
	atomic_store(&p->sync_ns, 0);
	atomic_store(&p->heads, NULL);
	pool_reclaim_forked_child(p);
	/* Only the forking thread lives on; its batch is the parent's. */
	for (tc = p->caches; tc; tc = next) {
		next = tc->next;
		if (e->serial == p->serial && e->tc == tc) {
			atomic_store(&tc->cur, NULL);
			tc->seen = NULL;
			tc->next = NULL;
			mine = tc;
		} else {
			free(tc);
		}
	}
	p->caches = mine;
	p->orphans = NULL;
	p->draining = false;
	p->stop = false;
	p->drain_running = false;
	pthread_cond_init(&p->cond, NULL);
	/* The drain thread may have held it (a round trip): it is gone here. */
	pthread_mutex_init(&p->chunk_lock, NULL);
	pthread_mutex_init(&p->hlock, NULL); /* as may any filler */
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

static void pool_atfork_child(void)
{
	for (struct rcupool *p = pool_all; p; p = p->gnext) {
		pool_forked_child(p);
		pthread_mutex_unlock(&p->lock);
	}
	pthread_mutex_unlock(&pool_glock);
	pool_gp_fork_child();
	pool_fork_online_again();
}

static void pool_init_once(void)
{
	pool_init_err = pthread_key_create(&pool_key, pool_thread_exit);
	if (!pool_init_err)
		pool_init_err = pthread_atfork(pool_atfork_prepare,
					       pool_atfork_parent,
					       pool_atfork_child);
}

int pool_process_init(void)
{
	pthread_once(&pool_once, pool_init_once);
	return -pool_init_err;
}

static void pool_errmsg(const struct rcupool_options *o, const char *msg)
{
	if (o->errbuf && o->errbuf_len) {
		strncpy(o->errbuf, msg, o->errbuf_len - 1);
		o->errbuf[o->errbuf_len - 1] = 0;
	}
}

static uint32_t pool_u32(size_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static int pool_open_private(struct rcupool *p, const struct rcupool_options *o,
			     char *why, size_t whylen)
{
	struct lend_private_params lp = {
		.min_pages = pool_u32(o->min_pages),
		.max_pages = pool_u32(o->max_pages),
		.overflow_pages = o->overflow_pages ? o->overflow_pages
						    : POOL_DEF_OVERFLOW,
		.drain_interval_ms = o->drain_interval_ms
					     ? o->drain_interval_ms
					     : POOL_DEF_DRAIN_MS,
	};
	size_t npages = o->private_pages;
	int r;

	/*
	 * 256 per CPU (1 MiB each): bench_sizing finds ~120 per CPU enough
	 * for 4M objects/s with no fallback; flat out needs more, and then
	 * the overflow fallback takes the excess.
	 */
	if (!npages) {
		r = (int)sysconf(_SC_NPROCESSORS_CONF);
		npages = 256 * (size_t)(r > 0 ? r : 1);
		if (npages < 512)
			npages = 512;
	}
	if (npages > POOL_CHUNK_VA_PAGES) {
		snprintf(why, whylen,
			 "bad options: private_pages %zu is above %u", npages,
			 POOL_CHUNK_VA_PAGES);
		return -EINVAL;
	}
	lp.pages = pool_u32(npages);
	/* A max below a chunk would get nothing: chunks no larger than max. */
	if (lp.max_pages && lp.max_pages < 16)
		lp.chunk_pages = lp.max_pages;
	r = lend_private_open(&lp, &p->lender);
	if (r < 0) {
		snprintf(why, whylen, "private reserve of %zu pages: %s",
			 npages, strerror(-r));
		return r;
	}
	p->mode = RCUPOOL_MODE_PRIVATE;
	return 0;
}

int rcupool_open(const struct rcupool_options *opts, struct rcupool **ret)
{
	struct rcupool_options o = {0};
	char why[512] = "";
	struct rcupool *p;
	void *mem;
	int r;

	if (!ret)
		return -EINVAL;
	*ret = NULL;
	if (opts) {
		/* size 0: a caller that only knows DESIGN.md's fields. */
		size_t n = opts->size ? opts->size
				      : offsetof(struct rcupool_options,
						 private_pages);
		memcpy(&o, opts, n < sizeof(o) ? n : sizeof(o));
	}
	if ((unsigned)o.mode > RCUPOOL_MODE_PRIVATE ||
	    (o.min_pages && o.max_pages && o.min_pages > o.max_pages)) {
		pool_errmsg(&o, "bad options: unknown mode or min_pages > max_pages");
		return -EINVAL;
	}
	r = pool_process_init();
	if (r < 0)
		return r;
	if (posix_memalign(&mem, SEG_CACHELINE, sizeof(*p)))
		return -ENOMEM;
	p = mem;
	memset(p, 0, sizeof(*p));
	p->own_seg.fd = -1;
	pthread_mutex_init(&p->chunk_lock, NULL);
	p->flavor = o.flavor ? o.flavor : &urcu_memb_flavor;
	p->read_lock = p->flavor->read_lock;
	p->read_unlock = p->flavor->read_unlock;
	p->asym = pool_membarrier_register();
	p->free_fn = o.free_fn ? o.free_fn : free;
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->hlock, NULL);
	pthread_cond_init(&p->cond, NULL);
	pool_reclaim_init(p, o.reclaim_min_gap_us ? o.reclaim_min_gap_us
						  : POOL_DEF_MIN_GAP_US);
	p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->wake_fd < 0) {
		r = -errno;
		goto fail;
	}

	if (o.mode != RCUPOOL_MODE_PRIVATE) {
		r = lend_daemon_open(o.socket_path,
				     o.name ? o.name
					    : program_invocation_short_name,
				     pool_u32(o.min_pages), pool_u32(o.max_pages),
				     &p->lender, why, sizeof(why));
		if (r == 0) {
			p->mode = RCUPOOL_MODE_DAEMON;
			atomic_store(&p->attached, true);
			r = pool_chunk_reattach_init(
				p, o.socket_path,
				o.name ? o.name : program_invocation_short_name,
				pool_u32(o.min_pages), pool_u32(o.max_pages));
			if (r < 0)
				goto fail;
		} else if (o.mode == RCUPOOL_MODE_DAEMON) {
			pool_errmsg(&o, why);
			goto fail;
		} else {
			p->lender = NULL;
			p->attach_error = -r;
		}
	}
	if (!p->lender) {
		r = pool_open_private(p, &o, why, sizeof(why));
		if (r < 0) {
			pool_errmsg(&o, why);
			goto fail;
		}
	}
	p->lim = &p->lender->lease->limits;
	p->ctr = &p->lender->lease->counters;
	p->use_seg = true;
	/* The daemon's reclaim_min_gap unless the caller chose one. */
	p->gap_from_lease = p->mode == RCUPOOL_MODE_DAEMON &&
			    !o.reclaim_min_gap_us;
	if (p->gap_from_lease) {
		p->gap_lease_us = atomic_load(&p->lim->reclaim_min_gap_us);
		pool_reclaim_set_gap(p, p->gap_lease_us);
	}
	r = pool_chunk_open(p, why, sizeof(why));
	if (r < 0) {
		pool_errmsg(&o, why);
		goto fail;
	}
	p->cap = p->seg->page_size / sizeof(void *);
	atomic_store(&p->refill, 1);
	/* A cache line each: see struct pool_batch. */
	if (posix_memalign(&mem, POOL_CACHELINE,
			   (size_t)p->seg->npages * sizeof(*p->desc)))
		mem = NULL;
	else
		memset(mem, 0, (size_t)p->seg->npages * sizeof(*p->desc));
	p->desc = mem;
	p->cpu_est = calloc(p->seg->ncpus, sizeof(*p->cpu_est));
	if (!p->desc || !p->cpu_est) {
		r = -ENOMEM;
		goto fail;
	}

	pthread_mutex_lock(&pool_glock);
	if (pool_idx_used == UINT32_MAX) {
		pthread_mutex_unlock(&pool_glock);
		pool_errmsg(&o, "too many pools open in this process");
		r = -EMFILE;
		goto fail;
	}
	p->idx = (unsigned)__builtin_ctz(~pool_idx_used);
	pool_idx_used |= 1u << p->idx;
	p->serial = ++pool_serial_last;
	p->gnext = pool_all;
	pool_all = p;
	pthread_mutex_unlock(&pool_glock);

	r = pool_drain_start(p);
	if (r < 0) {
		pool_errmsg(&o, "cannot start the drain thread");
		rcupool_close(p);
		return r;
	}
	*ret = p;
	return 0;

fail:
	pool_chunk_close(p);
	free(p->desc);
	free(p->cpu_est);
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->chunk_lock);
	pthread_mutex_destroy(&p->hlock);
	pthread_cond_destroy(&p->cond);
	pool_reclaim_destroy(p);
	free(p);
	return r;
}

int rcupool_stats(struct rcupool *p, struct rcupool_stats *ret)
{
	struct rcupool_stats st = {0};
	struct lease_counters *c;

	if (!p || !ret || ret->size < offsetof(struct rcupool_stats, objects))
		return -EINVAL;
	c = p->ctr;
	st.size = ret->size;
	st.mode = p->mode;
	st.forked = atomic_load(&p->forked);
	st.attached = p->mode == RCUPOOL_MODE_DAEMON && !st.forked &&
		      atomic_load(&p->attached);
	st.attach_error = p->attach_error;
	st.page_size = p->seg->page_size;
	st.page_capacity = p->cap;
	st.min_pages = atomic_load(&p->lim->min_pages);
	st.max_pages = p->use_seg ? pool_limit_max(p)
				  : atomic_load(&p->lim->max_pages);
	st.objects = atomic_load(&c->objects);
	st.pages_submitted = atomic_load(&p->rsubmitted);
	st.pages_drained = atomic_load(&p->drained);
	st.pages_got = atomic_load(&c->pages_got);
	st.fallback_overflow = atomic_load(&c->fb_overflow);
	st.fallback_emergency = atomic_load(&p->emergency);
	st.fallback_head = atomic_load(&c->fb_head);
	st.fallback_sync = atomic_load(&c->fb_sync);
	st.lost = atomic_load(&p->lost);
	st.denied = atomic_load(&c->denied);
	st.depletions = atomic_load(&c->depletions);
	st.held = atomic_load(&c->held);
	st.held_peak = atomic_load(&c->held_peak);
	st.heap_pages = atomic_load(&p->heap_pages);
	st.sync_wait_ns = atomic_load(&p->sync_ns);
	st.lent_pages = atomic_load(&p->lent_pages);
	st.chunk_pages = p->seg->chunk_pages;
	st.chunks_asked = atomic_load(&c->chunks_asked);
	st.chunks_returned = atomic_load(&c->chunks_returned);
	st.throttled = atomic_load(&p->throttled);
	st.throttled_ns = atomic_load(&p->throttled_ns);
	st.grace_periods = atomic_load(&p->gps);
	st.gp_latency_p50_ns = pool_reclaim_latency(p, 500);
	st.gp_latency_p99_ns = pool_reclaim_latency(p, 990);
	st.pages_in_flight = pool_reclaim_inflight(p);
	st.pages_freed_by_fillers = atomic_load(&p->freed_here);
	st.reattaches = atomic_load(&p->reattaches);
	memcpy(ret, &st, ret->size < sizeof(st) ? ret->size : sizeof(st));
	return 0;
}

/* No thread can reach p through its TLS any more (other than stale). */
static void pool_unregister(struct rcupool *p)
{
	struct rcupool **pp;

	pthread_mutex_lock(&pool_glock);
	for (pp = &pool_all; *pp; pp = &(*pp)->gnext)
		if (*pp == p) {
			*pp = p->gnext;
			break;
		}
	pool_idx_used &= ~(1u << p->idx);
	pthread_mutex_lock(&p->lock);
	for (struct pool_tcache *tc = p->caches; tc; tc = tc->next) {
		/* A batch left by a thread that used the pool during close. */
		struct pool_batch *b = atomic_exchange(&tc->cur, NULL);

		if (b) {
			pool_batch_count_claimed(p, b);
			b->next = p->orphans;
			p->orphans = b;
		}
		tc->pool = NULL; /* freed by its thread's exit */
	}
	p->caches = NULL;
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&pool_glock);
	pool_tls_forget(p);
}

void rcupool_close(struct rcupool *p)
{
	const struct rcu_flavor_struct *f;
	int was_online;

	if (!p)
		return;
	/*
	 * qsbr: the drain thread may be inside a grace period that waits for
	 * this thread; it must be offline while it joins the drain thread.
	 */
	f = p->flavor;
	was_online = f->read_ongoing();
	if (was_online)
		f->thread_offline();
	pool_drain_stop(p);
	rcupool_barrier(p);
	pool_unregister(p);
	pool_drain_all(p); /* whatever pool_unregister() found */
	pool_reclaim_stop(p); /* runs what is queued, joins the thread */
	pool_chunk_close(p);  /* every chunk back, the lender closed */
	pool_heap_trim(p, true);
	free(p->desc);
	free(p->cpu_est);
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->chunk_lock);
	pthread_mutex_destroy(&p->hlock);
	pthread_cond_destroy(&p->cond);
	pool_reclaim_destroy(p);
	free(p);
	if (was_online)
		f->thread_online();
}
