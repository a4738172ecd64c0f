/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_POOL_H
#define RCUPOOL_POOL_H

/*
 * librcupool internals (include/rcupool.h is the API).
 *
 *  pool.c        open/close, modes, stats, fork
 *  pool_chunk.c  the client's chunk table: lent chunks mapped into the
 *                pool's private segment, asked for ahead of need and
 *                given back whole (DESIGN.md section 3)
 *  pool_page.c   taking and giving back reserve pages, heap pages, batches
 *  pool_free.c   the per-thread cache and rcupool_free() itself
 *  pool_drain.c  the drain thread, barrier, thread exit
 *  pool_reclaim.c the reclaim engine: queue of full pages, the pool's own
 *                grace periods, backpressure, submission-to-return latency
 *  pool_done.c   pages whose grace period is over: which freer takes which
 *                (one freer a filler; active fillers free their own)
 *
 * A batch is a page being filled with pointers.  Its bookkeeping (queue
 * link, count, page index) lives in a private descriptor,
 * desc[page] for a reserve page, in front of the page for a heap page:
 * the whole page holds pointers.
 *
 * Filling: each thread has a cache entry per pool with `cur`, the batch it
 * fills.  The owner fills inside a read-side section of the pool's flavor
 * with plain stores; another thread (drain, barrier) takes the batch with
 * an atomic exchange of `cur`, then waits one grace period, after which no
 * fill is in progress and every object on it may be freed at once.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <urcu/flavor.h>

#include "lend.h"
#include "rcupool.h"
#include "seg.h"

#define POOL_MAX_OPEN	 32
#define POOL_CACHELINE	 64
#define POOL_HEAP	 UINT32_MAX /* batch page: a heap page */
#define POOL_DEF_OVERFLOW 256
#define POOL_DEF_DRAIN_MS 1000 /* as the daemon's limits.drain_interval */
#define POOL_DEF_MIN_GAP_US 1000 /* reclaim_min_gap: see bench/RESULTS.md */
#define POOL_LAT_SUB	 4	/* latency histogram: 4 buckets per octave */
#define POOL_LAT_BUCKETS (64 * POOL_LAT_SUB)
#define POOL_RING	 64	/* reclaim rounds not yet fully freed, at most */
#define POOL_ROUND_FIRST 32	/* done pages below which a round goes first */
#define POOL_DONE_BEHIND 8	/* done pages from which a filler frees two */
#define POOL_DEF_FREE_MODE POOL_FREE_SHARE
#define POOL_FREERS	 8	/* threads freeing done pages at once */
#define POOL_DONE_SCAN	 64	/* pages of the mixed done list looked at */
#define POOL_DONE_LISTS	 16	/* done lists: [0] mixed, then one a filler */
#define POOL_ACTIVE_NS	 20000000 /* a filler that submitted this lately */
#define POOL_THROTTLE_PAGES 8	/* pages back a throttled thread waits for */
#define POOL_LINGER_NS	 20000000 /* the reclaim thread polls this after work */

/* Which done page a freer takes (pool_done.c). */
enum pool_take {
	POOL_TAKE_ANY,	 /* of a filler nobody frees now */
	POOL_TAKE_OWN,	 /* the caller's own */
	POOL_TAKE_SPARE, /* of a filler that does not free its own now */
};

/* Who frees the pages of a finished round (RCUPOOL_RECLAIM_FREE). */
enum pool_free_mode {
	POOL_FREE_THREAD,  /* the reclaim thread, between grace periods */
	POOL_FREE_SHARE,   /* + fillers at their page switch, when behind */
	POOL_FREE_WORKERS, /* + one worker thread per other CPU */
	/* Tests: the reclaim thread frees nothing while it may (fillers do). */
	POOL_FREE_FILLERS,
};

#define pool_likely(x)	 __builtin_expect(!!(x), 1)
#define pool_unlikely(x) __builtin_expect(!!(x), 0)

struct rcupool;

/*
 * One cache line each (desc[] is allocated aligned): the reclaim thread
 * writes the descriptors of pages it frees while fillers take their
 * neighbours.
 */
struct pool_batch {
	uint64_t t_submit; /* pool_now_ns() at submission (latency) */
	uint64_t round;	   /* reclaim round that took it */
	void **ptrs; /* the page */
	uint32_t n, cap;
	uint32_t page;	   /* reserve page index, or POOL_HEAP */
	uint32_t fork_gen; /* pool->fork_gen when taken */
	/* On a claimed or orphan list, or the reclaim queue. */
	struct pool_batch *next;
	const void *filler; /* the thread cache that filled it, or NULL */
	bool emergency;
	bool drained; /* submitted by the drain, not by its filler */
} __attribute__((aligned(POOL_CACHELINE)));

/* One per (thread, pool); the thread's TLS points at it. */
struct pool_tcache {
	_Atomic(struct pool_batch *) cur;
	/*
	 * 1 while the owner fills cur (pools with p->asym): plain stores
	 * and compiler barriers on the owner's side, membarrier() on the
	 * drain's (pool_drain.c), as liburcu-memb pairs its readers.
	 */
	_Atomic uint32_t busy;
	bool claimed; /* the drain took cur; under pool->lock */
	struct rcupool *pool;	  /* NULL once the pool is closed (glock) */
	struct pool_tcache *next; /* pool->caches, under pool->lock */
	_Atomic uint64_t gen;	  /* bumped by the owner at each install */
	struct pool_batch *seen;  /* the drain's last look: cur and gen */
	uint64_t seen_gen;
};

struct pool_tls_ent {
	uint64_t serial; /* the pool's, 0: none */
	struct pool_tcache *tc;
};

/*
 * initial-exec: the per-object path must not call __tls_get_addr.  The
 * price is static TLS space (POOL_MAX_OPEN * 16 bytes), which glibc's
 * reserve for libraries loaded with dlopen() covers.
 */
extern __thread struct pool_tls_ent pool_tls[POOL_MAX_OPEN]
	__attribute__((tls_model("initial-exec")));

struct rcupool {
	uint64_t serial; /* unique in the process, never 0 */
	unsigned idx;	 /* into pool_tls[] */
	const struct rcu_flavor_struct *flavor;
	/* flavor->read_lock/unlock, one load nearer the per-object path. */
	void (*read_lock)(void);
	void (*read_unlock)(void);
	void (*free_fn)(void *);
	enum rcupool_mode mode; /* resolved: DAEMON or PRIVATE */
	int attach_error;

	/*
	 * The lender (daemon or in-process) and its lease: limits read per
	 * page request (lim), our counters (ctr).  In a forked child both
	 * point into own_lease and lender is NULL.
	 */
	struct lender *lender;
	struct lease_limits *lim;
	struct lease_counters *ctr;
	/* Our lists over the lent chunks, in private memory (seg.h). */
	struct seg own_seg;
	struct seg *seg;
	bool use_seg;	       /* false in a forked child */
	/* Fills are bracketed by tcache->busy, not a read-side section. */
	bool asym;
	_Atomic bool attached;
	_Atomic bool forked;
	uint32_t fork_gen;
	uint32_t cap;		 /* pointers per page */
	_Atomic uint32_t refill; /* pages moved global -> CPU list at once */
	struct pool_batch *desc; /* [npages] */
	_Atomic uint32_t *cpu_est; /* [ncpus] pages we left on each CPU list */

	_Atomic uint64_t heap_pages; /* heap batches in use */
	_Atomic uint64_t emergency, lost, sync_ns;
	_Atomic int64_t last_kick_ns;
	_Atomic(struct rcu_head *) heads; /* head fallback chain */

	/* Heap pages (overflow, emergency) kept for the next burst. */
	pthread_mutex_t hlock;
	struct pool_batch *hfree;
	uint32_t hcount, htaken; /* cached; taken since the last trim */
	uint64_t hmapped;	 /* pages ever mapped for it (tests) */

	pthread_mutex_t lock; /* caches, orphans, draining, drain thread */
	pthread_cond_t cond;
	struct pool_tcache *caches;
	struct pool_batch *orphans; /* from exited threads, to drain */
	bool draining;		    /* someone holds claimed batches */
	bool stop;
	bool drain_running;
	pthread_t drain_thread;
	int wake_fd; /* eventfd: wakes the drain thread */

	/* pool_chunk.c: the chunk table, under chunk_lock. */
	pthread_mutex_t chunk_lock;
	uint64_t *chunk_id;	      /* [nchunks] the lender's id */
	_Atomic uint32_t lent_pages;  /* pages of the chunks mapped now */
	_Atomic bool lender_gone;     /* EOF: ask no more */
	bool *cpu_online;	      /* [ncpus] as last synced from sysfs */
	uint32_t *gather;	      /* [nchunks] scratch for returns */
	uint64_t hotplug_ns;	      /* last sysfs resync */
	uint64_t surplus_ns; /* free above the high mark since (0: not) */
	uint64_t ask_after_ns;	      /* refused: no request before then */
	uint32_t ask_backoff_ms;
	const char *cpu_online_path;  /* sysfs; tests point it elsewhere */
	/*
	 * Re-attach (pool_chunk.c): after EOF the drain thread attaches
	 * again on the same path.  Each slot is tagged with the generation
	 * of the lender that lent it; a chunk of an older generation is
	 * never given to the new lender: its pages are parked as they come
	 * back (parked[]), and it is unmapped once all of them are.  p->lim
	 * and p->ctr stay in the first lease (home): the current lender's
	 * lease is mirrored each tick (limits in, counters out).
	 */
	uint32_t *chunk_gen;	      /* [nchunks] the lender generation */
	uint32_t *parked;	      /* [nchunks] pages of an old chunk */
	uint32_t lender_gen;	      /* bumped at each re-attach */
	uint32_t retiring;	      /* chunks of an older generation */
	uint64_t parked_pages;	      /* sum of parked[] */
	struct lease_shm *home;	      /* the first lease (daemon mode) */
	bool can_reattach;
	char *re_path, *re_name;      /* as given at open (NULL: default) */
	uint32_t re_min, re_max;
	uint64_t reattach_after_ns;
	uint32_t reattach_backoff_ms;
	_Atomic uint64_t reattaches;
	_Atomic uint64_t retired;     /* old chunks unmapped, never put */

	/*
	 * The reclaim engine (pool_reclaim.c).  rq: submitted batches, a
	 * LIFO pushed with one CAS per page, taken whole by the reclaim
	 * thread at the start of each round (one grace period).  What the
	 * fillers write per page has a cache line of its own, what the
	 * reclaim thread writes per page another: a page switch that found
	 * a line the other side had just written waited for it (the
	 * in-flight count, once one counter for both, and the queue shared
	 * lines with the round's lock).
	 */
	_Atomic(struct pool_batch *) rq
		__attribute__((aligned(POOL_CACHELINE)));
	/* Pages submitted to the engine (counted before the push). */
	_Atomic uint64_t rsubmitted;
	_Atomic uint64_t drained; /* pages handed over not full (rcupool_stats) */
	/*
	 * The reclaim thread's side: pages taken off rq by rounds (on rq:
	 * rsubmitted - rtaken) and returned (in flight: rsubmitted -
	 * rreturned).
	 */
	_Atomic uint64_t rtaken __attribute__((aligned(POOL_CACHELINE)));
	_Atomic uint64_t rreturned;
	_Atomic uint32_t rsleep;   /* the reclaim thread waits for work */
	pthread_mutex_t rlock;	   /* rounds, rstop, rrunning; with rcond/rdone */
	pthread_cond_t rcond;	   /* wakes the reclaim thread */
	pthread_cond_t rdone;	   /* progress: waiters, barrier, the thread */
	pthread_cond_t rwork;	   /* done pages for the workers */
	_Atomic uint64_t rfinished; /* pages freed from the done list (under
				     * rlock; read alone by pool_reclaim_seen) */
	unsigned rwaiters;	   /* threads waiting on rdone */
	unsigned rbarriers;	   /* threads in pool_reclaim_wait_all() */
	unsigned rthrottled;	   /* of rwaiters, in pool_reclaim_wait() */
	uint64_t rwake_at;	   /* rfinished the first of them waits for */
	uint64_t rounds;	   /* rounds whose grace period ended */
	uint64_t rstarted;	   /* rounds started */
	uint64_t rfreed;	   /* rounds whose pages are all freed */
	uint32_t pending[POOL_RING]; /* pages of a round not yet freed */
	/*
	 * Done (grace period over): one FIFO per filler, so that a freer
	 * finds a filler nobody frees now in a few steps however the pages
	 * of a round are ordered (a filler that had a CPU alone left runs
	 * of hundreds of its pages, and freers that looked at the first 64
	 * of one list took turns on one filler).  done[0] holds the pages of
	 * fillers beyond the other lists, any mix.
	 */
	struct pool_done_list {
		const void *filler; /* whose pages, while n (not in [0]) */
		struct pool_batch *head, *tail;
		uint64_t n;
	} done[POOL_DONE_LISTS];
	uint64_t dcount;
	_Atomic uint64_t dlen;	   /* dcount, read without rlock */
	/*
	 * The fillers whose pages are being freed now, one freer each
	 * (pool_done_pop): two threads freeing into one malloc arena at once
	 * cost 50-67 ns a free() each, against 8 for one (bench/RESULTS.md).
	 */
	const void *freeing[POOL_FREERS];
	unsigned nfreeing;
	/*
	 * Fillers seen in rounds, when each last submitted a page, and when
	 * its thread exited (0: alive).
	 */
	struct pool_filler_seen {
		const void *filler;
		uint64_t last_ns, gone_ns;
	} active[POOL_FREERS];
	uint64_t active_now; /* the time active[] is read against */
	enum pool_free_mode free_mode;
	/* The last two rounds had pages of two fillers or more. */
	_Atomic bool rmulti;
	unsigned nworkers;
	pthread_t *workers;
	bool rstop, rrunning;
	pthread_t rthread;
	uint64_t min_gap_ns;	   /* between grace-period starts (rlock) */
	/*
	 * DAEMON mode without the reclaim_min_gap_us option: the gap follows
	 * the lease's reclaim_min_gap_us (the daemon's [limits]), read by the
	 * drain thread each tick; gap_lease_us is the value last applied.
	 */
	bool gap_from_lease;
	uint32_t gap_lease_us;
	_Atomic uint64_t gps;	   /* grace periods run by the engine */
	_Atomic uint64_t throttled, throttled_ns; /* backpressure waits */
	_Atomic uint64_t freed_here; /* done pages freed by a filler */
	_Atomic uint64_t lat[POOL_LAT_BUCKETS];  /* submission to return */

	struct rcupool *gnext; /* pool_all, under pool_glock */
	struct lease_shm own_lease __attribute__((aligned(LEASE_CACHELINE)));
};

/* pool.c */
extern pthread_mutex_t pool_glock;
int pool_process_init(void);

/* pool_page.c */
struct pool_batch *pool_batch_get(struct rcupool *p, bool in_read_side);
/*
 * Count one page in held if held < max, as one step (CAS): *now_held is
 * held after.  false at max.  The caller takes a page or undoes it.
 */
bool pool_held_reserve(struct rcupool *p, uint32_t max, uint64_t *now_held);
void pool_batch_submit(struct rcupool *p, struct pool_batch *b);
void pool_batch_complete(struct rcupool *p, struct pool_batch *b);
void pool_batch_free_objs(struct rcupool *p, struct pool_batch *b);
void pool_batch_release(struct rcupool *p, struct pool_batch *b);
void pool_batch_count_claimed(struct rcupool *p, struct pool_batch *b);
void pool_heads_free(struct rcupool *p, struct rcu_head *h);
void pool_count(struct rcupool *p, _Atomic uint64_t *field, uint64_t n);
uint64_t pool_now_ns(void);

/* pool_chunk.c */
/* Max chunk slots (virtual range) when the lender sets no max_pages. */
#define POOL_CHUNK_VA_PAGES (UINT32_C(1) << 20)
struct pool_limits {
	uint32_t max;	   /* pages; never above the slots we reserved */
	uint32_t min;
	uint32_t low, high; /* free pages on our lists */
	uint32_t overflow;
	uint32_t drain_ms;
	uint32_t return_chunks;
};
/* The lease's limits, each clamped to a sane range (a scribble is a lie). */
void pool_limits_read(struct rcupool *p, struct pool_limits *l);
/* max_pages alone, clamped: for the page path. */
uint32_t pool_limit_max(struct rcupool *p);
uint32_t pool_drain_interval_ms(struct rcupool *p);
uint32_t pool_overflow_pages(struct rcupool *p);
/* The drain thread, each pass: give idle cached heap pages back. */
void pool_heap_trim(struct rcupool *p, bool all);
/* Reserve the range, build the private segment, get the first chunks. */
int pool_chunk_open(struct rcupool *p, char *why, size_t whylen);
/* Drain thread, each loop: lender events, hotplug, ask or give back. */
void pool_chunk_tick(struct rcupool *p, bool lender_ready);
/* Give every chunk back, close the lender, free the segment. */
void pool_chunk_close(struct rcupool *p);
/* fork child: forget chunks and lender without touching them. */
void pool_chunk_forked(struct rcupool *p);
/* Gather the free pages, give back up to n whole chunks: how many. */
int pool_chunk_return(struct rcupool *p, uint32_t n);
/* Resync the CPUs' online words from sysfs; an offline CPU's list -> global. */
void pool_chunk_hotplug(struct rcupool *p);
/* Remember how to attach again (daemon mode): 0 or -ENOMEM. */
int pool_chunk_reattach_init(struct rcupool *p, const char *path,
			     const char *name, uint32_t min, uint32_t max);
/* The drain thread's poll timeout: shorter while a re-attach is due. */
int pool_chunk_wait_ms(struct rcupool *p, int tick_ms);

/* pool_free.c */
struct pool_tcache *pool_tcache_get(struct rcupool *p);
void pool_tls_forget(struct rcupool *p);
void pool_thread_exit(void *unused);

/* pool_reclaim.c */
void pool_reclaim_init(struct rcupool *p, uint32_t min_gap_us);
void pool_reclaim_destroy(struct rcupool *p);
int pool_reclaim_start(struct rcupool *p);
void pool_reclaim_stop(struct rcupool *p);
void pool_reclaim_submit(struct rcupool *p, struct pool_batch *b);
uint64_t pool_reclaim_seen(struct rcupool *p);
/* Pages submitted to the engine and not yet returned. */
uint64_t pool_reclaim_inflight(struct rcupool *p);
bool pool_reclaim_fillers_help(struct rcupool *p);
int pool_reclaim_wait(struct rcupool *p, uint64_t *seen, const void *filler);
struct pool_batch *pool_reclaim_take_done(struct rcupool *p,
					  const void *filler);
void pool_reclaim_wait_all(struct rcupool *p);
void pool_reclaim_forked_child(struct rcupool *p);
void pool_reclaim_set_gap(struct rcupool *p, uint32_t min_gap_us);
void pool_reclaim_publish(struct rcupool *p);
void pool_gp_fork_prepare(void);
void pool_gp_fork_parent(void);
void pool_gp_fork_child(void);
void pool_synchronize(struct rcupool *p);
uint64_t pool_reclaim_latency(struct rcupool *p, unsigned permille);
void pool_lat_record(struct rcupool *p, uint64_t ns);

/* pool_done.c: under rlock unless said (the tests drive some directly) */
void pool_done_append(struct rcupool *p, struct pool_batch *b);
struct pool_batch *pool_done_pop(struct rcupool *p, const void *mine,
				 enum pool_take take);
struct pool_batch *pool_done_pop_spare(struct rcupool *p);
void pool_done_unclaim(struct rcupool *p, const void *filler);
bool pool_done_takeable(struct rcupool *p, const void *filler);
void pool_done_add_round(struct rcupool *p, struct pool_batch *fifo,
			 uint32_t n);
/* Without rlock. */
struct pool_batch *pool_done_pop_own(struct rcupool *p, const void *filler);
void pool_done_filler_gone(struct rcupool *p, const void *filler);

/* pool_drain.c */
int pool_drain_start(struct rcupool *p);
void pool_drain_stop(struct rcupool *p);
void pool_drain_wake(struct rcupool *p);
void pool_drain_all(struct rcupool *p);
/* Whether this process can use membarrier(PRIVATE_EXPEDITED): registers. */
bool pool_membarrier_register(void);

#endif
