/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOLD_LEASESHM_H
#define RCUPOOLD_LEASESHM_H

/*
 * The per-client memfd (proto/lease.h), the daemon's side: create it
 * (header and limits written, sealed against growing and shrinking) and
 * sanitize the counters the client writes into it before showing them.
 * The daemon never follows a value it reads there.
 */

#include <stdint.h>

#include "lease.h"

#define LEASE_NCOUNTERS 16 /* uint64_t fields of struct lease_counters */
_Static_assert(sizeof(struct lease_counters) >= LEASE_NCOUNTERS * 8,
	       "lease counters");

enum {
	LEASE_C_HELD,
	LEASE_C_HELD_PEAK,
	LEASE_C_PAGES_GOT,
	LEASE_C_DENIED,
	LEASE_C_DEPLETIONS,
	LEASE_C_FB_OVERFLOW,
	LEASE_C_FB_HEAD,
	LEASE_C_FB_SYNC,
	LEASE_C_OBJECTS,
	LEASE_C_THROTTLED,
	LEASE_C_THROTTLED_NS,
	LEASE_C_GRACE_PERIODS,
	LEASE_C_GP_P50,
	LEASE_C_GP_P99,
	LEASE_C_CHUNKS_ASKED,
	LEASE_C_CHUNKS_RETURNED,
};

struct lease_geom {
	uint32_t page_size, chunk_pages, client_id;
};

/* A sealed LEASE_SIZE memfd with its header: *fd and *map, or -errno. */
int leaseshm_create(const struct lease_geom *g, int *fd,
		    struct lease_shm **map);
void leaseshm_destroy(int fd, struct lease_shm *map);

/*
 * Sanitize: load each counter of raw once; v[] (what was shown) becomes
 * what may be shown now.  held is clamped to lent_pages, held_peak to
 * [held, peak_pages]; a counter never goes backwards (a smaller value is
 * refused, and counted as bad the first time it is seen); latencies are
 * clamped to an hour, p99 to at least p50.  raw_seen[] remembers refused
 * values.  Returns the number of new bad values.
 */
unsigned int leaseshm_sanitize(const struct lease_counters *raw, uint64_t *v,
			       uint64_t *raw_seen, uint64_t lent_pages,
			       uint64_t peak_pages);

#endif
