// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The in-process lender (lend.h): a private pool borrows its chunks from
 * here, through the same page path as from rcupoold.  Each chunk is a fresh
 * memfd (or, without memfd_create, an unlinked file in /dev/shm) of
 * chunk_pages pages, allocated up front (fallocate: ENOMEM now, not SIGBUS
 * later); a chunk given back is forgotten (its memory goes when the pool
 * unmaps it), as the daemon retires returned chunks.  The lease (limits
 * and counters) lives in this process's memory, its limits from the
 * options.  Books: which ids are out, how many pages; never above `pages`
 * nor the lease's max_pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lend.h"

#define LEND_PRIVATE_DEF_CHUNK 16
#define LEND_PRIVATE_MAX_CHUNK 65536

struct lend_private {
	struct lender l;
	pthread_mutex_t lock;
	uint32_t pages; /* the whole reserve */
	uint32_t nids;	/* chunks the reserve can make: pages / chunk_pages */
	uint32_t lent;	/* pages out */
	uint8_t *out;	/* [nids] lent now */
	uint32_t hint;	/* where to look for a free id */
	struct lease_shm lease;
};

static int lend_private_memfd(size_t bytes)
{
	int fd = memfd_create("rcupool-chunk", MFD_CLOEXEC);

	if (fd < 0 && (errno == ENOSYS || errno == EINVAL))
		fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)bytes) < 0 ||
	    (fallocate(fd, 0, 0, (off_t)bytes) < 0 && errno != EOPNOTSUPP)) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

static int lend_private_get(struct lender *l, int cpu, uint32_t want,
			    struct lend_chunk *out, uint32_t *got)
{
	struct lend_private *lp = (struct lend_private *)l;
	size_t bytes = (size_t)l->chunk_pages * l->page_size;
	uint32_t max, n = 0;
	int r = 0;

	*got = 0;
	if (want > LEND_GET_MAX)
		want = LEND_GET_MAX;
	pthread_mutex_lock(&lp->lock);
	/* Our own limit, written by ourselves: still, never above pages. */
	max = atomic_load_explicit(&lp->lease.limits.max_pages,
				   memory_order_relaxed);
	if (!max || max > lp->pages)
		max = lp->pages;
	while (n < want) {
		uint32_t id;
		int fd;

		if (lp->lent + l->chunk_pages > lp->pages) {
			r = -ENOSPC;
			break;
		}
		if (lp->lent + l->chunk_pages > max) {
			r = -EDQUOT;
			break;
		}
		for (id = lp->hint; id < lp->nids && lp->out[id]; id++)
			;
		if (id == lp->nids)
			for (id = 0; id < lp->nids && lp->out[id]; id++)
				;
		if (id == lp->nids) {
			r = -ENOSPC;
			break;
		}
		fd = lend_private_memfd(bytes);
		if (fd < 0) {
			r = fd == -ENOSPC ? -ENOMEM : fd;
			break;
		}
		lp->out[id] = 1;
		lp->hint = id + 1;
		lp->lent += l->chunk_pages;
		out[n++] = (struct lend_chunk){.id = id,
					       .fd = fd,
					       .pages = l->chunk_pages,
					       .cpu = cpu};
	}
	pthread_mutex_unlock(&lp->lock);
	*got = n;
	return n ? 0 : r;
}

static int lend_private_put(struct lender *l, const uint64_t *ids, uint32_t n)
{
	struct lend_private *lp = (struct lend_private *)l;
	uint32_t back = 0, ask;
	int r = 0;

	pthread_mutex_lock(&lp->lock);
	for (uint32_t i = 0; i < n; i++) {
		if (ids[i] >= lp->nids || !lp->out[ids[i]]) {
			r = -EINVAL; /* not ours: ignored */
			continue;
		}
		lp->out[ids[i]] = 0;
		lp->lent -= l->chunk_pages;
		if (ids[i] < lp->hint)
			lp->hint = (uint32_t)ids[i];
		back++;
	}
	/* As the daemon: a chunk asked back and given lowers the ask. */
	ask = atomic_load(&lp->lease.limits.return_chunks);
	atomic_store(&lp->lease.limits.return_chunks,
		     ask > back ? ask - back : 0);
	pthread_mutex_unlock(&lp->lock);
	return r;
}

static int lend_private_event(struct lender *l)
{
	return 0;
}

static void lend_private_close(struct lender *l)
{
	struct lend_private *lp = (struct lend_private *)l;

	pthread_mutex_destroy(&lp->lock);
	free(lp->out);
	free(lp);
}

static const struct lender_ops lend_private_ops = {
	.get = lend_private_get,
	.put = lend_private_put,
	.event = lend_private_event,
	.close = lend_private_close,
};

int lend_private_open(const struct lend_private_params *p, struct lender **ret)
{
	struct lend_private *lp;
	uint32_t cp = p->chunk_pages ? p->chunk_pages : LEND_PRIVATE_DEF_CHUNK;
	uint32_t max, low, page_size;
	long ps = sysconf(_SC_PAGESIZE);
	void *mem;

	*ret = NULL;
	if (cp > LEND_PRIVATE_MAX_CHUNK || !p->pages)
		return -EINVAL;
	if (p->min_pages && p->max_pages && p->min_pages > p->max_pages)
		return -EINVAL;
	page_size = ps >= 4096 && ps <= 65536 ? (uint32_t)ps : 4096;
	if (posix_memalign(&mem, LEASE_CACHELINE, sizeof(*lp)))
		return -ENOMEM;
	lp = mem;
	memset(lp, 0, sizeof(*lp));
	/* Whole chunks only: a reserve of fewer pages than a chunk has one. */
	lp->nids = (p->pages + cp - 1) / cp;
	lp->pages = lp->nids * cp;
	lp->out = calloc(lp->nids, 1);
	if (!lp->out) {
		free(lp);
		return -ENOMEM;
	}
	pthread_mutex_init(&lp->lock, NULL);
	max = p->max_pages && p->max_pages < lp->pages ? p->max_pages
						       : lp->pages;
	/*
	 * The private reserve is the pool's alone: lent whole at open (low =
	 * max: ask whenever anything is left to ask), as the old private
	 * reserve was populated whole; given back only as a lower max or
	 * return_chunks asks (high = max: never above it).
	 */
	low = max;
	lp->lease = (struct lease_shm){
		.magic = LEASE_MAGIC,
		.version = LEASE_VERSION,
		.size = sizeof(struct lease_shm),
		.page_size = page_size,
		.chunk_pages = cp,
	};
	atomic_store(&lp->lease.limits.min_pages, p->min_pages);
	atomic_store(&lp->lease.limits.max_pages, max);
	atomic_store(&lp->lease.limits.overflow_pages, p->overflow_pages);
	atomic_store(&lp->lease.limits.drain_interval_ms, p->drain_interval_ms);
	atomic_store(&lp->lease.limits.low_pages, low);
	atomic_store(&lp->lease.limits.high_pages, max);
	atomic_store(&lp->lease.limits.reclaim_min_gap_us,
		     p->reclaim_min_gap_us);
	atomic_store(&lp->lease.limits.generation, 1);
	lp->l = (struct lender){
		.ops = &lend_private_ops,
		.lease = &lp->lease,
		.page_size = page_size,
		.chunk_pages = cp,
		.min_pages = p->min_pages,
		.max_pages = max,
		.fd = -1,
	};
	*ret = &lp->l;
	return 0;
}
