/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_LEND_H
#define RCUPOOL_LEND_H

/*
 * Where a pool's chunks come from: the borrower's side of a lease.
 *
 * A lender hands out chunks (a memfd of `pages` pages each, lent to this
 * process only) and takes whole chunks back.  Two lenders, one page path:
 *  - lend_daemon.c: rcupoold over the control socket (ATTACH, CHUNK_GET,
 *    CHUNK_PUT; fds by SCM_RIGHTS);
 *  - lend_private.c: an in-process lender for a pool without a daemon.
 *
 * The pool calls get/put from its own background thread only, never on
 * the free path (one round trip each).  A chunk received is the pool's to
 * map (MAP_SHARED, MADV_DONTFORK) and then close: the pool keeps no chunk
 * fd open after mapping it.  A chunk given back is never used again by
 * this process: unmap it before put.
 *
 * Every function returns 0 (or a count) or -errno and never logs.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lease.h"

struct lend_chunk {
	uint64_t id;	/* the lender's name for it, given back in put */
	int fd;		/* memfd of pages * page_size bytes; the caller owns it */
	uint32_t pages; /* == the lease's chunk_pages */
	int32_t cpu;	/* CPU whose pool it came from (populated there); -1 */
};

#define LEND_GET_MAX 8 /* chunks one get may return (fds in one message) */

struct lender;

struct lender_ops {
	/*
	 * Ask for up to want (<= LEND_GET_MAX) chunks, preferably of cpu
	 * (-1: any).  Blocks for one round trip.  *got chunks filled (fds owned
	 * by the caller), or -errno: -EDQUOT (at max_pages), -ENOSPC (the
	 * reserve has none for us), -ECONNRESET (the lender is gone),
	 * -EBADMSG (a bad reply: nothing received is kept).  A partial grant
	 * is 0 with *got < want.
	 */
	int (*get)(struct lender *l, int cpu, uint32_t want,
		   struct lend_chunk *out, uint32_t *got);
	/* Give back n chunks by id (the caller has unmapped them). */
	int (*put)(struct lender *l, const uint64_t *ids, uint32_t n);
	/*
	 * Something arrived on l->fd (the pool's thread polls it): read it.
	 * 0, or -ECONNRESET when the lender is gone (then l->fd is -1).
	 */
	int (*event)(struct lender *l);
	/* Detach and free l (the pool has given back or unmapped its chunks). */
	void (*close)(struct lender *l);
};

struct lender {
	const struct lender_ops *ops;
	/*
	 * Limits (the lender's, read per page request) and our counters.
	 * For the daemon a shared mapping of the per-client memfd.
	 */
	struct lease_shm *lease;
	uint32_t page_size;   /* checked copies of the lease header */
	uint32_t chunk_pages;
	uint32_t min_pages, max_pages; /* as granted at attach */
	int fd; /* to poll for events (the daemon's connection); -1: none */
};

/*
 * Attach to rcupoold at path (NULL: proto_socket_path()) as name, asking
 * for min/max pages (0: the daemon's defaults).  0 and *ret, or -errno with
 * why filled: -ENOENT/-ECONNREFUSED no daemon, -EACCES not allowed to
 * attach, -EUSERS no free client slot, -EBADMSG a bad lease or reply.
 */
int lend_daemon_open(const char *path, const char *name, uint32_t min_pages,
		     uint32_t max_pages, struct lender **ret, char *why,
		     size_t whylen);

/*
 * The same, from a pool that lost its daemon and attaches again (again:
 * how many times so far, 1 the first): the daemon counts and logs it.
 */
int lend_daemon_reopen(const char *path, const char *name, uint32_t min_pages,
		       uint32_t max_pages, uint32_t again,
		       struct lender **ret, char *why, size_t whylen);

struct lend_private_params {
	uint32_t pages;	      /* the whole private reserve */
	uint32_t chunk_pages; /* 0: 16 */
	uint32_t min_pages, max_pages, overflow_pages, drain_interval_ms;
	uint32_t reclaim_min_gap_us;
};

/* An in-process lender of p->pages pages.  0 and *ret, or -errno. */
int lend_private_open(const struct lend_private_params *p,
		      struct lender **ret);

#endif
