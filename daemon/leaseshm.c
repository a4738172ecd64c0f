// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "leaseshm.h"

#define HOUR_NS (UINT64_C(3600) * 1000000000)

int leaseshm_create(const struct lease_geom *g, int *fd,
		    struct lease_shm **map)
{
	struct lease_shm *m;
	int f, r;

	f = memfd_create("rcupool-lease", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (f < 0)
		return -errno;
	if (ftruncate(f, LEASE_SIZE) < 0)
		goto fail;
	m = mmap(NULL, LEASE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
	if (m == MAP_FAILED)
		goto fail;
	memset(m, 0, sizeof(*m));
	m->magic = LEASE_MAGIC;
	m->version = LEASE_VERSION;
	m->size = sizeof(*m);
	m->page_size = g->page_size;
	m->chunk_pages = g->chunk_pages;
	m->client_id = g->client_id;
	if (fcntl(f, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) <
	    0) {
		r = -errno;
		munmap(m, LEASE_SIZE);
		close(f);
		return r;
	}
	*fd = f;
	*map = m;
	return 0;
fail:
	r = -errno;
	close(f);
	return r;
}

void leaseshm_destroy(int fd, struct lease_shm *map)
{
	if (map)
		munmap(map, LEASE_SIZE);
	if (fd >= 0)
		close(fd);
}

unsigned int leaseshm_sanitize(const struct lease_counters *raw, uint64_t *v,
			       uint64_t *raw_seen, uint64_t lent_pages,
			       uint64_t peak_pages)
{
	/* The counters' layout: LEASE_NCOUNTERS _Atomic uint64_t in order. */
	const _Atomic uint64_t *f = (const _Atomic uint64_t *)raw;
	uint64_t x[LEASE_NCOUNTERS];
	unsigned int bad = 0;

	for (int i = 0; i < LEASE_NCOUNTERS; i++)
		x[i] = atomic_load_explicit(&f[i], memory_order_relaxed);

	/* Gauges. */
	if (x[LEASE_C_HELD] > lent_pages)
		x[LEASE_C_HELD] = lent_pages;
	v[LEASE_C_HELD] = x[LEASE_C_HELD];
	if (x[LEASE_C_HELD_PEAK] > peak_pages)
		x[LEASE_C_HELD_PEAK] = peak_pages;
	if (x[LEASE_C_HELD_PEAK] < v[LEASE_C_HELD_PEAK])
		x[LEASE_C_HELD_PEAK] = v[LEASE_C_HELD_PEAK];
	if (x[LEASE_C_HELD_PEAK] < v[LEASE_C_HELD])
		x[LEASE_C_HELD_PEAK] = v[LEASE_C_HELD];
	v[LEASE_C_HELD_PEAK] = x[LEASE_C_HELD_PEAK];
	for (int i = LEASE_C_GP_P50; i <= LEASE_C_GP_P99; i++)
		v[i] = x[i] > HOUR_NS ? HOUR_NS : x[i];
	/* Percentiles of one histogram: p99 is never below p50. */
	if (v[LEASE_C_GP_P99] < v[LEASE_C_GP_P50])
		v[LEASE_C_GP_P99] = v[LEASE_C_GP_P50];

	/* Counters: never shown going backwards. */
	for (int i = LEASE_C_PAGES_GOT; i < LEASE_NCOUNTERS; i++) {
		if (i == LEASE_C_GP_P50 || i == LEASE_C_GP_P99)
			continue;
		if (x[i] >= v[i]) {
			v[i] = x[i];
			continue;
		}
		if (raw_seen[i] != x[i] + 1) {
			raw_seen[i] = x[i] + 1; /* +1: 0 means none yet */
			bad++;
		}
	}
	return bad;
}
