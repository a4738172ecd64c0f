/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_LEASE_H
#define RCUPOOL_LEASE_H

/*
 * The per-client memfd (DESIGN.md section 3): one small file shared by one
 * client and the daemon only, never by two clients.  This header is the ABI
 * between them (LEASE_VERSION changes when a meaning changes).
 *
 *   [header | limits: written by the daemon | counters: written by the client]
 *
 * The daemon creates it at ATTACH (sealed against growing and shrinking)
 * and sends it with the reply; the client maps it read-write.  Neither side
 * trusts the other's half:
 *  - limits are read by the client on every page request, so `rcupoolctl
 *    set` takes effect at once; a client that scribbles on them only lies
 *    to itself, because the daemon lends from its own books, never from
 *    this file;
 *  - counters are written by the client with relaxed atomics; the daemon
 *    loads each field once, sanitizes it (lease_counters_sanitize) and
 *    never follows it.
 * The header is written once by the daemon before the fd is sent; the
 * client checks it against the file's size once, at attach, and keeps its
 * own copy of the geometry.
 *
 * In a private pool (no daemon) the library allocates the same structure
 * in its own memory, so there is one page path.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define LEASE_MAGIC	UINT64_C(0x455341454c4c4f50) /* "POLLEASE" little endian */
#define LEASE_VERSION	1
#define LEASE_SIZE	4096
#define LEASE_CACHELINE 64

/* Written by the daemon (or the private lender) only. */
struct lease_limits {
	_Atomic uint32_t min_pages; /* pages kept available to this client */
	_Atomic uint32_t max_pages; /* pages; never lent more (whole chunks) */
	_Atomic uint32_t overflow_pages;    /* heap pages the client may add */
	_Atomic uint32_t drain_interval_ms; /* how long a partial page waits */
	/*
	 * The client's own lists: below low free pages it asks for a chunk
	 * ahead of need; above high it gives back chunks whose pages are
	 * all free.  In pages.
	 */
	_Atomic uint32_t low_pages;
	_Atomic uint32_t high_pages;
	/*
	 * Chunks the daemon asks back (a lower max_pages, a shortage, shutdown):
	 * the client gives back up to this many whole free chunks, as its
	 * pages free up.  The daemon lowers it as chunks come back.
	 */
	_Atomic uint32_t return_chunks;
	_Atomic uint32_t reclaim_min_gap_us; /* between two grace periods */
	_Atomic uint64_t generation;	     /* the daemon instance */
} __attribute__((aligned(LEASE_CACHELINE)));

/* Written by the client only; the daemon loads each field once. */
struct lease_counters {
	_Atomic uint64_t held;	      /* reserve pages in use now */
	_Atomic uint64_t held_peak;
	_Atomic uint64_t pages_got;   /* pages taken off its lists */
	_Atomic uint64_t denied;      /* page requests refused by max_pages */
	_Atomic uint64_t depletions;  /* page requests that found its lists empty */
	_Atomic uint64_t fb_overflow; /* fallback: heap page */
	_Atomic uint64_t fb_head;     /* fallback: the object's rcu_head */
	_Atomic uint64_t fb_sync;     /* fallback: one grace period per object */
	_Atomic uint64_t objects;     /* objects passed to the pool */
	_Atomic uint64_t throttled;   /* waits for a grace period (backpressure) */
	_Atomic uint64_t throttled_ns;
	_Atomic uint64_t grace_periods;	   /* run by the pool's reclaim */
	_Atomic uint64_t gp_latency_p50_ns; /* page submitted -> back on a list */
	_Atomic uint64_t gp_latency_p99_ns;
	_Atomic uint64_t chunks_asked;	   /* CHUNK_GET requests sent */
	_Atomic uint64_t chunks_returned;  /* chunks given back */
} __attribute__((aligned(LEASE_CACHELINE)));

struct lease_shm {
	uint64_t magic;
	uint32_t version;
	uint32_t size;	      /* sizeof(struct lease_shm), <= LEASE_SIZE */
	uint32_t page_size;   /* bytes per page */
	uint32_t chunk_pages; /* pages per chunk */
	uint32_t client_id;   /* the daemon's id for this client (slot) */
	uint32_t pad;
	struct lease_limits limits;
	struct lease_counters counters;
} __attribute__((aligned(LEASE_CACHELINE)));

_Static_assert(sizeof(struct lease_shm) <= LEASE_SIZE, "lease fits its file");

#endif
