/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_H
#define RCUPOOL_H

/*
 * librcupool: deferred frees for liburcu programs, batched into pages of a
 * preallocated reserve owned by rcupoold.  Build with
 * `pkg-config --cflags --libs rcupool`.
 *
 * rcupool_free(pool, p) is a drop-in for call_rcu(&p->head, free_cb) without
 * the rcu_head: the pointer is stored in the calling thread's current batch
 * page (no atomic read-modify-write, no lock, no system call per object).
 *
 * Reclaim engine.  A full page goes on the pool's own reclaim queue (one
 * compare-and-swap per page).  The pool's reclaim thread starts a grace
 * period of the pool's flavor (update_synchronize_rcu) as soon as pages
 * are queued; pages that arrive while one runs join the next, which starts
 * right after (no fixed sleep: liburcu's call_rcu thread sleeps 10 ms
 * between rounds; the pool uses no call_rcu at all).  reclaim_min_gap_us
 * bounds the grace-period rate (not when 64 pages are queued and few are
 * done, nor when a thread waits for pages or in rcupool_barrier()).  After
 * the grace period every pointer of the page is freed with the pool's free
 * function and the page goes back to the reserve.  Who frees: with one
 * thread filling pages, the reclaim thread; with two or more, each takes
 * its own completed page at its page switch, frees its objects itself
 * (where they were most likely allocated) and refills it, so frees scale
 * with the freeing threads, and the reclaim thread frees the pages of
 * threads that stopped or exited (and any while a thread waits for pages
 * or in rcupool_barrier()).  One thread's pages are never freed by two
 * threads at once.
 * Submission-to-return latency (p50, p99) and the grace periods run are in
 * rcupool_stats().
 *
 * The program's own rcu_barrier() does NOT cover objects passed to a pool:
 * use rcupool_barrier().
 *
 * Backpressure.  A thread denied a page (its max_pages, or every list and
 * the overflow bound exhausted) outside a read-side section waits for the
 * reclaim in progress (counted: throttled, throttled_ns) until a round ends
 * or a few pages (8) are given back, takes one and goes on: one wait per
 * page or more, never one grace period per object.  Inside a read-side
 * section it never waits (heap pages, as below).  The per-object
 * synchronize_rcu (fallback_sync) is only the last resort, when nothing
 * of the pool is in flight to wait for.
 *
 * qsbr: the reclaim thread is not registered; a grace period ends when
 * every registered ONLINE thread has passed a quiescent state.  Threads
 * that free must be online (as for call_rcu) and must announce quiescent
 * states (or go offline) for pages to come back; a thread that stays
 * online without one stalls the pool's reclaim as it stalls every
 * synchronize_rcu.  Since an online qsbr thread cannot be told apart from
 * one inside a read-side section, qsbr threads never wait in
 * rcupool_free(): denied a page, they take heap pages (emergency).
 *
 * Rules, as for any liburcu use:
 *  - threads calling rcupool_free(), rcupool_free_head() and rcupool_flush()
 *    must be registered with the pool's flavor (rcu_register_thread()) and,
 *    for qsbr, online;
 *  - rcupool_barrier() and rcupool_close() block for grace periods: never
 *    call them inside a read-side critical section nor from a call_rcu
 *    callback (for qsbr, calling them is a quiescent state);
 *  - rcupool_free() and rcupool_free_head() may be called inside a
 *    read-side critical section: they never block there and never wait
 *    for a grace period, whatever is depleted;
 *  - the pool's free_fn runs in the pool's reclaim thread and, when two
 *    threads or more fill pages, in threads calling rcupool_free() (at a
 *    page switch): it must
 *    not block on anything a thread calling rcupool_free() may hold, nor
 *    wait for a grace period (as a call_rcu callback must not);
 *  - none of these functions is async-signal-safe (as call_rcu is not):
 *    a signal handler must not free into a pool its thread may be
 *    freeing into.
 *
 * Chunks: the reserve lends this process chunks (a memfd of a few pages
 * each, lent to it alone); the pool maps them into its own address range
 * and cuts them into pages on its own per-CPU lists and global list, in
 * private memory nobody else maps.  Per page (never per object): the
 * current CPU's list, then the global list; empty, the pool's drain thread
 * is woken to ask for chunks and the fallbacks below serve the page.  The
 * drain thread asks for chunks ahead of need (below the lease's low mark;
 * never on the free path) and gives back whole chunks whose pages are all
 * free (above the high mark, when max_pages drops, or when the daemon asks
 * for them), unmapping them first.  A private pool (no daemon) borrows from
 * an in-process lender: the same code.
 *
 * Fallbacks when no reserve page may be had (each counted in the stats):
 *  1. overflow: a heap page (mmap, cached; not malloc), up to the lease's
 *     overflow_pages per pool, batched exactly like a reserve page;
 *  2. head (rcupool_free_head() only): the object's own rcu_head is used
 *     to chain it, with no memory at all; chains are freed after one grace
 *     period by the pool's drain thread;
 *  3. backpressure, then sync: outside a read-side section, wait for the
 *     reclaim (above); only with nothing in flight, synchronize_rcu() then
 *     free, per object;
 *  4. emergency: inside a read-side section with 1-3 impossible, a heap
 *     page beyond the overflow bound is taken rather than block.  If even
 *     malloc() fails the object is leaked (counted as `lost`), never freed
 *     early.
 *
 * Limits (max_pages, min_pages, overflow_pages, watermarks) are read from
 * the pool's lease, shared with the daemon only, on every page request: a
 * change made with rcupoolctl takes effect at once.  Each is clamped first.
 *
 * fork(): chunks are mapped MADV_DONTFORK, so a child has none of them; in
 * the child every pool is detached (stats: forked = 1, counters from zero)
 * and frees through heap pages and the fallbacks.  Objects the parent had
 * queued are the parent's: the child never frees its copies of them.
 * The child's reclaim thread starts at its first page request.  Call
 * liburcu's call_rcu_before_fork()/_after_fork_parent()/_child() around
 * fork() as liburcu requires for the program's own call_rcu.
 *
 * Daemon death: chunks already lent stay mapped and in use, frees keep
 * working (lists until they run dry, then the fallbacks), no chunk is asked
 * for or given back until close, rcupool_stats() says attached = 0.  The
 * pool does not re-attach to a new daemon by itself: open a new one.
 */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rcu_head;
struct rcu_flavor_struct;
struct rcupool;

enum rcupool_mode {
	RCUPOOL_MODE_AUTO = 0, /* attach to rcupoold, else a private reserve */
	RCUPOOL_MODE_DAEMON,   /* attach to rcupoold or fail */
	RCUPOOL_MODE_PRIVATE,  /* an in-process reserve of the same layout */
};

struct rcupool_options {
	size_t size;		 /* sizeof(struct rcupool_options) */
	const char *socket_path; /* NULL: $RCUPOOL_SOCKET, then the default */
	const char *name;	 /* shown by rcupoolctl; NULL: program name */
	enum rcupool_mode mode;	 /* RCUPOOL_MODE_AUTO (default), _DAEMON, _PRIVATE */
	const struct rcu_flavor_struct *flavor; /* NULL: urcu_memb_flavor */
	void (*free_fn)(void *);		/* NULL: free() */
	size_t min_pages, max_pages; /* requested limits; 0: daemon's default */
	/* Private reserve only (the daemon's configuration rules otherwise). */
	size_t private_pages;	     /* 0: 256 per CPU, at least 512; <= 2^20 */
	uint32_t overflow_pages;     /* heap pages allowed; 0: 256 */
	uint32_t drain_interval_ms;  /* 0: 1000, the daemon's default */
	/* If not NULL, a human reason when rcupool_open() fails. */
	char *errbuf;
	size_t errbuf_len;
	/*
	 * Least time between the starts of two grace periods of the pool's
	 * reclaim engine, in microseconds: a bound on their rate (each one
	 * costs every CPU running the process an IPI with memb).  0: in
	 * DAEMON mode the daemon's [limits] reclaim_min_gap, followed live;
	 * in PRIVATE mode 1000 (at most 1,000 grace periods/s;
	 * bench/RESULTS.md).  1 is in effect no gap.
	 */
	uint32_t reclaim_min_gap_us;
};

/*
 * Open a pool.  opts may be NULL (all defaults).  Starts the pool's drain
 * thread.  May block: connects to the daemon (AUTO, DAEMON) or allocates
 * and populates the private reserve.  Returns 0 and *ret, or -errno:
 *   -ENOENT, -ECONNREFUSED  (DAEMON) no daemon listens on the socket
 *   -EACCES   (DAEMON) not allowed to attach;  -EUSERS  no free client slot
 *   -EBADMSG  (DAEMON) a bad lease or reply;  -EINVAL  bad options
 *   -EMFILE   too many pools open in this process (32)
 *   -ENOMEM
 * AUTO falls back to a private reserve on any attach failure (the reason
 * is in rcupool_stats().attach_error).
 */
int rcupool_open(const struct rcupool_options *opts, struct rcupool **ret);

/*
 * Free ptr with the pool's free_fn once a grace period has passed.
 * ptr may not be NULL.  Never blocks inside a read-side critical section
 * (nor, for qsbr, while online); outside one, when no page may be had it
 * waits for the pool's reclaim (backpressure: throttled), and blocks in a
 * synchronize_rcu() of its own only when nothing is in flight to wait for
 * (fallback_sync).  At a page switch it may free the objects of one
 * completed page (when two threads or more fill pages).
 */
void rcupool_free(struct rcupool *pool, void *ptr);

/*
 * As rcupool_free(), with ptr->field (a struct rcu_head) usable as a last
 * resort that needs no page and never blocks (fallback_head).
 */
#define rcupool_free_head(pool, ptr, field)                                    \
	rcupool_free_head_offset(                                              \
		(pool), (ptr),                                                 \
		offsetof(__typeof__(*(ptr)), field) +                          \
			0 * sizeof(&(ptr)->field == (struct rcu_head *)0))

/* What rcupool_free_head() calls; offset is that of the rcu_head in *ptr. */
void rcupool_free_head_offset(struct rcupool *pool, void *ptr, size_t offset);

/*
 * Submit the calling thread's partial page now (to the reclaim queue).
 * Never waits for a grace period; fine inside a read-side critical section.
 */
void rcupool_flush(struct rcupool *pool);

/*
 * Wait until every object passed to the pool so far, by any thread, has
 * been freed: partial pages of every thread are taken and freed after a
 * grace period, and every page submitted before the call -- queued, in a
 * grace period, or being freed by any thread -- is freed and returned,
 * however busy other threads keep the pool.  liburcu's rcu_barrier() is
 * neither needed nor enough.  Blocks.  Inside a read-side critical section
 * (where waiting would deadlock) it only submits the partial pages and
 * returns.
 */
void rcupool_barrier(struct rcupool *pool);

struct rcupool_stats {
	size_t size;	    /* set by the caller: sizeof(struct rcupool_stats) */
	enum rcupool_mode mode; /* DAEMON or PRIVATE: what the pool runs on */
	int attached;	    /* 1 while attached to a live daemon */
	int forked;	    /* 1 in a child forked after rcupool_open() */
	int attach_error;   /* AUTO: errno of the failed attach, else 0 */
	uint32_t page_size; /* bytes per reserve page */
	uint32_t page_capacity; /* pointers per page */
	uint32_t min_pages, max_pages; /* the limits in force now */
	uint64_t objects;	/* objects submitted (pages, heads, syncs) */
	uint64_t pages_submitted; /* batches submitted (reserve + heap) */
	uint64_t pages_drained;	  /* of which partial, by drain/flush/exit */
	uint64_t pages_got;	  /* reserve pages taken */
	uint64_t fallback_overflow; /* heap pages taken (emergency included) */
	uint64_t fallback_emergency; /* heap pages beyond overflow_pages */
	uint64_t fallback_head;	  /* objects chained through their rcu_head */
	uint64_t fallback_sync;	  /* objects freed after synchronize_rcu() */
	uint64_t lost;		  /* objects leaked: no memory at all */
	uint64_t denied;	  /* page requests refused by max_pages */
	uint64_t depletions;	  /* page requests that found every list empty */
	uint64_t held;		  /* reserve pages owned now */
	uint64_t held_peak;
	uint64_t heap_pages;	  /* heap pages in use now */
	uint64_t sync_wait_ns;	  /* time spent blocked in the sync fallback */
	/* Lending (chunks lent to this pool, DESIGN.md section 3). */
	uint64_t lent_pages;	  /* pages of the chunks mapped now */
	uint64_t chunk_pages;	  /* pages per chunk */
	uint64_t chunks_asked;	  /* requests to the lender */
	uint64_t chunks_returned; /* chunks given back */
	/* The reclaim engine (fields from here on: size permitting). */
	uint64_t throttled;	  /* backpressure waits for a reclaim round */
	uint64_t throttled_ns;	  /* their total time */
	uint64_t grace_periods;	  /* run by the pool's reclaim thread */
	uint64_t gp_latency_p50_ns; /* page submission to its return: p50 */
	uint64_t gp_latency_p99_ns; /* ... and p99 (log buckets, +-12%) */
	uint64_t pages_in_flight; /* submitted, not yet returned */
	uint64_t pages_freed_by_fillers; /* completed pages whose objects a
					  * freeing thread freed itself */
	uint64_t reattaches; /* times the pool attached again to a new
			      * rcupoold after the old one went away */
};

/*
 * Fill *ret (set ret->size first; fields beyond it are left alone).
 * Never blocks.  0, or -EINVAL for a NULL argument or a size too small.
 */
int rcupool_stats(struct rcupool *pool, struct rcupool_stats *ret);

/*
 * rcupool_barrier(), stop the drain and reclaim threads, give every page
 * back (held reaches 0), unmap and give back every chunk (lent_pages
 * reaches 0), detach from the daemon, free.  Blocks (for qsbr the caller
 * goes offline meanwhile).  No thread may use the pool during or after the
 * call.  NULL is a no-op.
 */
void rcupool_close(struct rcupool *pool);

/* The library's version, "MAJOR.MINOR.PATCH".  Never fails. */
const char *rcupool_version(void);

#ifdef __cplusplus
}
#endif

#endif
