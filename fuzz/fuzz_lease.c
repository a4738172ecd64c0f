// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The daemon's handling of an arbitrary lease memfd: whatever a client
 * writes into its counters, in any sequence, what the daemon shows keeps
 * its invariants (held <= lent, held <= peak <= the most ever lent,
 * counters never going backwards).
 *
 * Input: a u32 of lent pages, then snapshots of struct lease_counters.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "leaseshm.h"

int fuzz_lease(const uint8_t *data, size_t size)
{
	struct lease_shm *shm = aligned_alloc(LEASE_CACHELINE, LEASE_SIZE);
	uint64_t v[LEASE_NCOUNTERS] = {0}, seen[LEASE_NCOUNTERS] = {0};
	uint64_t prev[LEASE_NCOUNTERS] = {0};
	uint64_t lent = 0, peak = 0;
	size_t snap = sizeof(struct lease_counters);

	if (!shm)
		return 0;
	memset(shm, 0, LEASE_SIZE);
	while (size >= 4) {
		uint32_t l;

		memcpy(&l, data, 4);
		data += 4;
		size -= 4;
		lent = l % 65536;
		if (lent > peak)
			peak = lent;
		memcpy(&shm->counters, data, size < snap ? size : snap);
		leaseshm_sanitize(&shm->counters, v, seen, lent, peak);
		if (v[LEASE_C_HELD] > lent || v[LEASE_C_HELD_PEAK] > peak ||
		    v[LEASE_C_HELD_PEAK] < v[LEASE_C_HELD])
			abort();
		for (int i = LEASE_C_PAGES_GOT; i < LEASE_NCOUNTERS; i++)
			if (i != LEASE_C_GP_P50 && i != LEASE_C_GP_P99 &&
			    v[i] < prev[i])
				abort();
		if (v[LEASE_C_HELD_PEAK] < prev[LEASE_C_HELD_PEAK])
			abort();
		memcpy(prev, v, sizeof(v));
		if (size <= snap)
			break;
		data += snap;
		size -= snap;
	}
	free(shm);
	return 0;
}
