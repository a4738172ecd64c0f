// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The reserve as the daemon runs it (DESIGN.md section 3): chunks of
 * chunk_pages pages, each its own sealed memfd, populated from the CPU
 * whose pool they join and mlocked through the daemon's mapping when
 * configured; per-CPU pools and a global pool (the books, in this
 * process's memory only); the balancer moving chunks between them; CPU
 * hotplug; the census checking the books; fresh chunks created ahead of
 * need to replace every chunk whose lease ended (a chunk is lent once).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/memfd.h>

#include "cpu.h"
#include "daemon.h"
#include "fdstore.h"
#include "hotplug.h"
#include "log.h"

#define AUTO_MAX_CHUNKS 2048 /* reserve.chunk_pages = 0: at most this many */
#define AUTO_MIN_PAGES	16
#define HUGE_BYTES	(2u << 20)
#define REFILL_BATCH	16 /* fresh chunks per event loop iteration */

static cpu_set_t home_affinity;
static bool pinned;

static int pin_to(unsigned int cpu)
{
	cpu_set_t set;

	if (!pinned && sched_getaffinity(0, sizeof(home_affinity),
					 &home_affinity) < 0)
		return -errno;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	pinned = true;
	/* The kernel migrates us before the call returns. */
	return sched_getcpu() == (int)cpu ? 0 : -EAGAIN;
}

static void unpin(void)
{
	if (pinned && sched_setaffinity(0, sizeof(home_affinity),
					&home_affinity) < 0)
		log_warning("cannot restore CPU affinity: %m");
	pinned = false;
}

uint64_t daemon_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* --- lists and the id hash ----------------------------------------------- */

void list_add(struct chunk_list *l, struct chunk *c)
{
	c->prev = NULL;
	c->next = l->head;
	if (l->head)
		l->head->prev = c;
	l->head = c;
	l->n++;
}

void list_del(struct chunk_list *l, struct chunk *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	l->n--;
}

static void hash_add(struct daemon *d, struct chunk *c)
{
	struct chunk **b = &d->hash[c->id & d->hash_mask];

	c->hnext = *b;
	*b = c;
}

static void hash_del(struct daemon *d, struct chunk *c)
{
	struct chunk **p = &d->hash[c->id & d->hash_mask];

	while (*p && *p != c)
		p = &(*p)->hnext;
	if (*p)
		*p = c->hnext;
}

struct chunk *reserve_find(const struct daemon *d, uint64_t id)
{
	struct chunk *c = d->hash[id & d->hash_mask];

	while (c && c->id != id)
		c = c->hnext;
	return c;
}

/* --- the configured reserve ------------------------------------------------ */

void reserve_slot_limits(const struct daemon *d, const char *name,
			 uint32_t req_min, uint32_t req_max, uint32_t *min,
			 uint32_t *max)
{
	const struct conf_client *cc = conf_client_find(&d->conf, name);
	uint64_t total = reserve_pages(d);
	uint32_t lo = d->conf.limits.client_min_pages;
	uint32_t hi = (uint32_t)conf_resolve(d->conf.limits.client_max_pages,
					     total);

	if (cc && cc->has_min)
		lo = (uint32_t)conf_resolve(cc->min_pages, total);
	if (cc && cc->has_max)
		hi = (uint32_t)conf_resolve(cc->max_pages, total);
	/* A client may ask for less than the config allows, never more. */
	if (req_max && req_max < hi)
		hi = req_max;
	if (req_min && req_min < lo)
		lo = req_min;
	if (lo > hi)
		lo = hi;
	*min = lo;
	*max = hi;
}

uint64_t reserve_pages(const struct daemon *d)
{
	return (uint64_t)d->nchunks * d->chunk_pages;
}

/* Pages -> chunks, rounded up (a floor). */
static uint32_t chunks_up(const struct daemon *d, uint64_t pages)
{
	return (uint32_t)((pages + d->chunk_pages - 1) / d->chunk_pages);
}

void reserve_apply_limits(struct daemon *d)
{
	uint32_t per = d->conf.reserve.pages_per_cpu;

	for (unsigned int c = 0; c < d->ncpus; c++) {
		struct pool_cpu *p = &d->cpu[c];

		p->low = chunks_up(d, conf_resolve(d->conf.balance.low, per));
		p->target = chunks_up(d, conf_resolve(d->conf.balance.target,
						      per));
		p->high = chunks_up(d, conf_resolve(d->conf.balance.high, per));
		p->protect = chunks_up(d, d->conf.limits.protect_pages);
		if (p->target < p->protect)
			p->target = p->protect;
		if (p->low > p->target)
			p->low = p->target;
		if (p->high < p->target)
			p->high = p->target;
	}
	lending_apply_limits(d);
}

/* --- chunks ------------------------------------------------------------------ */

/* A fresh chunk, populated from cpu (-1: wherever we run). */
static struct chunk *chunk_new(struct daemon *d, int cpu)
{
	struct chunk *c = calloc(1, sizeof(*c));
	unsigned int flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	int r;

	if (!c)
		return NULL;
	if (d->hugetlb)
		flags |= MFD_HUGETLB | MFD_HUGE_2MB;
	c->fd = memfd_create("rcupool-chunk", flags);
	if (c->fd < 0)
		goto fail;
	if (ftruncate(c->fd, (off_t)d->chunk_bytes) < 0)
		goto fail;
	if (cpu >= 0 && pin_to((unsigned int)cpu) < 0)
		cpu = -1;
	c->map = mmap(NULL, d->chunk_bytes, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_POPULATE, c->fd, 0);
	if (c->map == MAP_FAILED) {
		c->map = NULL;
		goto fail;
	}
	/* Touch every page from this CPU: the memory is local to it. */
	for (uint64_t off = 0; off < d->chunk_bytes; off += d->page_size)
		((volatile char *)c->map)[off] = 0;
	if (d->conf.reserve.lock_memory != CONF_LOCK_NO &&
	    mlock(c->map, d->chunk_bytes) < 0) {
		d->locked = false;
		if (!d->lock_warned)
			log_warning("cannot lock a chunk in memory (%m; "
				    "RLIMIT_MEMLOCK too low?): carrying on, "
				    "the reserve may be swapped out");
		d->lock_warned = true;
	}
	if (fcntl(c->fd, F_ADD_SEALS,
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail;
	c->id = ++d->next_id;
	c->cpu = cpu;
	c->owner = -1;
	hash_add(d, c);
	d->stats.chunks_created++;
	return c;
fail:
	r = -errno;
	if (c->map)
		munmap(c->map, d->chunk_bytes);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	errno = -r;
	return NULL;
}

static void chunk_free(struct daemon *d, struct chunk *c)
{
	hash_del(d, c);
	if (c->map)
		munmap(c->map, d->chunk_bytes);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

static void to_cpu(struct daemon *d, struct chunk *c, unsigned int cpu)
{
	c->where = CHUNK_CPU;
	c->pool = (int32_t)cpu;
	list_add(&d->cpu[cpu].free, c);
	d->n_pool++;
}

static void to_global(struct daemon *d, struct chunk *c)
{
	c->where = CHUNK_GLOBAL;
	c->pool = -1;
	list_add(&d->global, c);
	d->n_pool++;
}

static void off_pool(struct daemon *d, struct chunk *c)
{
	if (c->where == CHUNK_CPU)
		list_del(&d->cpu[c->pool].free, c);
	else
		list_del(&d->global, c);
	d->n_pool--;
}

/* The online CPU whose pool is furthest below its target, or -1. */
static int neediest_cpu(struct daemon *d)
{
	int best = -1;
	int64_t gap = 0;

	for (unsigned int c = 0; c < d->ncpus; c++) {
		struct pool_cpu *p = &d->cpu[c];
		int64_t g = (int64_t)p->target - p->free.n;

		if (p->online && g > gap) {
			gap = g;
			best = (int)c;
		}
	}
	return best;
}

/* Create up to max fresh chunks toward the configured size.  Count made. */
static int refill(struct daemon *d, uint32_t max)
{
	uint32_t made = 0;

	while (made < max && d->n_pool + d->n_lent < d->nchunks) {
		int cpu = d->pin_refused ? -1 : neediest_cpu(d);
		struct chunk *c = chunk_new(d, cpu);

		if (!c) {
			d->stats.create_failed++;
			log_errno(LOG_WARNING, -errno,
				  "cannot create a chunk: %m; trying again later");
			break;
		}
		if (cpu >= 0)
			to_cpu(d, c, (unsigned int)cpu);
		else
			to_global(d, c);
		fdstore_put_chunk(d, c);
		made++;
	}
	unpin();
	return (int)made;
}

static int on_refill(sd_event_source *src, void *data)
{
	struct daemon *d = data;
	int made = refill(d, REFILL_BATCH);

	if (made <= 0 || d->n_pool + d->n_lent >= d->nchunks)
		sd_event_source_set_enabled(src, SD_EVENT_OFF);
	return 0;
}

void reserve_schedule_refill(struct daemon *d)
{
	if (d->refill_src && d->n_pool + d->n_lent < d->nchunks)
		sd_event_source_set_enabled(d->refill_src, SD_EVENT_ON);
}

struct chunk *reserve_take(struct daemon *d, int cpu, bool may_protect)
{
	struct chunk *c = NULL;

	if (cpu >= 0 && (unsigned int)cpu < d->ncpus) {
		struct pool_cpu *p = &d->cpu[cpu];

		if (p->free.n > (may_protect ? 0 : p->protect))
			c = p->free.head;
		else
			p->empty++;
	}
	if (!c)
		c = d->global.head;
	for (unsigned int k = 0; !c && k < d->ncpus; k++) {
		struct pool_cpu *p = &d->cpu[k];

		if (p->free.n > (may_protect ? 0 : p->protect))
			c = p->free.head;
	}
	if (c)
		off_pool(d, c);
	return c;
}

void reserve_retire(struct daemon *d, struct chunk *c)
{
	fdstore_drop_chunk(d, c);
	d->stats.chunks_retired++;
	chunk_free(d, c);
	reserve_schedule_refill(d);
}

struct chunk *reserve_adopt_chunk(struct daemon *d, uint64_t id, int fd,
				  int32_t cpu, struct client *owner)
{
	struct chunk *c;
	int fl = fcntl(fd, F_GETFL);

	/* A pool chunk is lent as it is: it must be writable. */
	if (fl < 0 || (!owner && (fl & O_ACCMODE) != O_RDWR)) {
		errno = EBADF;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->map = mmap(NULL, d->chunk_bytes,
		      (fl & O_ACCMODE) == O_RDWR ? PROT_READ | PROT_WRITE
						 : PROT_READ,
		      MAP_SHARED | MAP_POPULATE, fd, 0);
	if (c->map == MAP_FAILED) {
		int e = errno;

		free(c);
		errno = e;
		return NULL;
	}
	if (d->conf.reserve.lock_memory != CONF_LOCK_NO &&
	    mlock(c->map, d->chunk_bytes) < 0)
		d->locked = false;
	c->id = id;
	c->fd = fd;
	c->cpu = cpu >= 0 && (uint32_t)cpu < d->ncpus ? cpu : -1;
	c->owner = -1;
	hash_add(d, c);
	if (id > d->next_id)
		d->next_id = id;
	if (owner) {
		/* Lent: the daemon keeps no fd of it (the store does). */
		close(c->fd);
		c->fd = -1;
		c->where = CHUNK_LENT;
		c->owner = owner->slot;
		list_add(&owner->lent, c);
		if (owner->lent.n > owner->lent_peak)
			owner->lent_peak = owner->lent.n;
		d->n_lent++;
	} else if (c->cpu >= 0 && d->cpu[c->cpu].online) {
		to_cpu(d, c, (unsigned int)c->cpu);
	} else {
		to_global(d, c);
	}
	return c;
}

/* More chunks than configured (a smaller [reserve], adopted): pool chunks
 * go now, lent ones stay lent and are retired when they come back. */
static uint32_t trim(struct daemon *d)
{
	uint32_t n = 0;

	while (d->n_pool + d->n_lent > d->nchunks && d->n_pool) {
		struct chunk *c = d->global.head;

		for (unsigned int k = 0; !c && k < d->ncpus; k++)
			c = d->cpu[k].free.head;
		if (!c)
			break;
		off_pool(d, c);
		reserve_retire(d, c);
		n++;
	}
	return n;
}

int reserve_create(struct daemon *d)
{
	uint64_t want = conf_reserve_pages(&d->conf, d->ncpus);
	uint32_t hash_size = 1024;
	long sys = sysconf(_SC_PAGESIZE);
	int made;

	d->page_size = d->conf.reserve.page_size;
	d->chunk_pages = d->conf.reserve.chunk_pages;
	if (d->conf.reserve.hugepages != CONF_HUGE_NO) {
		int fd = memfd_create("rcupool-probe",
				      MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_2MB);

		if (fd >= 0 && ftruncate(fd, HUGE_BYTES) == 0 &&
		    fallocate(fd, 0, 0, HUGE_BYTES) == 0)
			d->hugetlb = true;
		if (fd >= 0)
			close(fd);
		if (!d->hugetlb && d->conf.reserve.hugepages == CONF_HUGE_YES)
			return log_errno(LOG_ERR, -ENOMEM,
					 "reserve.hugepages = yes but no 2 MiB "
					 "huge page can be had");
		if (!d->hugetlb)
			log_info("no huge pages available: the reserve uses "
				 "normal pages");
	}
	if (d->hugetlb) {
		d->chunk_pages = HUGE_BYTES / d->page_size;
	} else if (!d->chunk_pages) {
		d->chunk_pages = (uint32_t)((want + AUTO_MAX_CHUNKS - 1) /
					    AUTO_MAX_CHUNKS);
		if (d->chunk_pages < AUTO_MIN_PAGES)
			d->chunk_pages = AUTO_MIN_PAGES;
	}
	fdstore_geometry(d);
	d->chunk_bytes = (uint64_t)d->chunk_pages * d->page_size;
	if (sys > 0 && d->chunk_bytes % (uint64_t)sys)
		return log_errno(LOG_ERR, -EINVAL,
				 "a chunk of %u pages of %u bytes is not a "
				 "whole number of system pages",
				 d->chunk_pages, d->page_size);
	/* The configured size, rounded up to whole chunks. */
	d->nchunks = (uint32_t)((want + d->chunk_pages - 1) / d->chunk_pages);
	while (hash_size < 2 * (uint64_t)d->nchunks && hash_size < (1u << 24))
		hash_size <<= 1;
	d->hash = calloc(hash_size, sizeof(*d->hash));
	d->hash_mask = hash_size - 1;
	d->cpu = calloc(d->ncpus, sizeof(*d->cpu));
	if (!d->hash || !d->cpu)
		return log_errno(LOG_ERR, -ENOMEM, "out of memory");
	d->locked = d->conf.reserve.lock_memory != CONF_LOCK_NO;
	{
		bool online[CPU_MAX];

		if (cpu_list_read("/sys/devices/system/cpu/online", online,
				  CPU_MAX) < 0)
			memset(online, 1, sizeof(online));
		for (unsigned int c = 0; c < d->ncpus; c++)
			d->cpu[c].online = online[c];
	}
	/* Probe pinning once: a sandbox may refuse it. */
	if (pin_to(0) == -EPERM) {
		log_warning("cannot run on a chosen CPU (sched_setaffinity "
			    "refused): chunks are populated wherever the "
			    "daemon runs");
		d->pin_refused = true;
	}
	unpin();
	if (d->fds_in) {
		uint32_t trimmed;

		fdstore_adopt(d);
		trimmed = trim(d);
		if (d->n_pool + d->n_lent != d->nchunks || trimmed)
			log_notice("reserve: %u chunks adopted (%u in pools, %u "
				   "lent), %u configured now: %u pool chunks "
				   "retired, %u to create; lent chunks stay "
				   "lent and are retired when they come back",
				   d->n_pool + d->n_lent + trimmed,
				   d->n_pool + trimmed, d->n_lent, d->nchunks,
				   trimmed,
				   d->nchunks > d->n_pool + d->n_lent
					   ? d->nchunks - d->n_pool - d->n_lent
					   : 0);
	}
	reserve_apply_limits(d);
	made = refill(d, d->nchunks);
	if (d->n_pool + d->n_lent < d->nchunks)
		return log_errno(LOG_ERR, -ENOMEM,
				 "could create %d of the %u chunks of the "
				 "reserve",
				 made, d->nchunks);
	if (d->conf.reserve.lock_memory == CONF_LOCK_REQUIRED && !d->locked)
		return log_errno(LOG_ERR, -EPERM,
				 "reserve.lock_memory = required but the "
				 "reserve cannot be locked (raise "
				 "LimitMEMLOCK=)");
	log_info("reserve: %u chunks of %u pages of %u bytes (%llu KiB), %u "
		 "CPUs, %u client slots%s%s",
		 d->nchunks, d->chunk_pages, d->page_size,
		 (unsigned long long)(reserve_pages(d) * d->page_size / 1024),
		 d->ncpus, d->nslots, d->locked ? ", locked" : "",
		 d->hugetlb ? ", huge pages" : "");
	reserve_balance(d);
	return sd_event_add_defer(d->event, &d->refill_src, on_refill, d) < 0
		       ? log_errno(LOG_ERR, -ENOMEM, "refill source: %m")
		       : (sd_event_source_set_enabled(d->refill_src,
						      SD_EVENT_OFF),
			  0);
}

void reserve_destroy(struct daemon *d)
{
	struct chunk *c;

	d->refill_src = sd_event_source_disable_unref(d->refill_src);
	for (unsigned int k = 0; d->cpu && k < d->ncpus; k++)
		while ((c = d->cpu[k].free.head)) {
			off_pool(d, c);
			chunk_free(d, c);
		}
	while ((c = d->global.head)) {
		off_pool(d, c);
		chunk_free(d, c);
	}
	free(d->cpu);
	d->cpu = NULL;
	free(d->hash);
	d->hash = NULL;
}

/* --- the balancer: bookkeeping only ----------------------------------------- */

void reserve_balance(struct daemon *d)
{
	d->stats.balance_runs++;
	for (unsigned int k = 0; k < d->ncpus; k++) {
		struct pool_cpu *p = &d->cpu[k];
		struct chunk *c;

		if (!p->online)
			continue;
		if (p->free.n < p->low || p->free.n < p->protect) {
			while (p->free.n < p->target && (c = d->global.head)) {
				off_pool(d, c);
				to_cpu(d, c, k);
				p->moved_in++;
				d->stats.chunks_moved++;
			}
		} else if (p->free.n > p->high) {
			while (p->free.n > p->target) {
				c = p->free.head;
				off_pool(d, c);
				to_global(d, c);
				p->moved_out++;
				d->stats.chunks_moved++;
			}
		}
	}
}

void reserve_cpu_offline(struct daemon *d, unsigned int cpu)
{
	struct pool_cpu *p;
	struct chunk *c;
	uint32_t n = 0;

	if (cpu >= d->ncpus)
		return;
	p = &d->cpu[cpu];
	p->online = false;
	while ((c = p->free.head)) {
		off_pool(d, c);
		to_global(d, c);
		n++;
	}
	p->moved_out += n;
	d->stats.chunks_moved += n;
	log_info("CPU %u offline: %u chunks back to the global pool", cpu, n);
}

void reserve_cpu_online(struct daemon *d, unsigned int cpu)
{
	if (cpu >= d->ncpus || d->cpu[cpu].online)
		return;
	d->cpu[cpu].online = true;
	log_info("CPU %u online", cpu);
	reserve_balance(d);
}

void reserve_resync_cpus(struct daemon *d)
{
	bool online[CPU_MAX];
	int r = cpu_list_read("/sys/devices/system/cpu/online", online, CPU_MAX);

	if (r < 0) {
		log_errno(LOG_WARNING, r,
			  "cannot read /sys/devices/system/cpu/online: %m");
		return;
	}
	for (unsigned int c = 0; c < d->ncpus; c++) {
		if (d->cpu[c].online && !online[c])
			reserve_cpu_offline(d, c);
		else if (!d->cpu[c].online && online[c])
			reserve_cpu_online(d, c);
	}
}

/* --- the census: the books checked against themselves ---------------------- */

static int check(char *why, size_t whylen, const char *what, uint64_t a,
		 uint64_t b)
{
	if (a == b)
		return 0;
	snprintf(why, whylen, "%s: %llu, expected %llu", what,
		 (unsigned long long)a, (unsigned long long)b);
	return -EUCLEAN;
}

int reserve_census(struct daemon *d, char *why, size_t whylen)
{
	uint64_t pool = 0, lent = 0, hashed = 0;
	int r = 0;

	d->stats.census_runs++;
	for (unsigned int k = 0; k < d->ncpus && !r; k++) {
		uint32_t n = 0;

		for (struct chunk *c = d->cpu[k].free.head; c; c = c->next, n++)
			if (c->where != CHUNK_CPU || c->pool != (int32_t)k)
				r = check(why, whylen, "chunk in a CPU pool",
					  c->where, CHUNK_CPU);
		if (!r)
			r = check(why, whylen, "CPU pool count", n,
				  d->cpu[k].free.n);
		pool += n;
	}
	if (!r) {
		uint32_t n = 0;

		for (struct chunk *c = d->global.head; c; c = c->next, n++)
			if (c->where != CHUNK_GLOBAL)
				r = check(why, whylen, "chunk in the global pool",
					  c->where, CHUNK_GLOBAL);
		if (!r)
			r = check(why, whylen, "global pool count", n,
				  d->global.n);
		pool += n;
	}
	for (uint32_t s = 0; s < d->nslots && !r; s++) {
		struct client *cl = &d->clients[s];
		uint32_t n = 0;

		for (struct chunk *c = cl->lent.head; c; c = c->next, n++)
			if (c->where != CHUNK_LENT || c->owner != (int32_t)s)
				r = check(why, whylen, "chunk lent", c->owner,
					  s);
		if (!r)
			r = check(why, whylen, "client's lent count", n,
				  cl->lent.n);
		if (!r && cl->state == CLIENT_FREE)
			r = check(why, whylen, "chunks lent to a free slot", n,
				  0);
		lent += n;
	}
	for (uint32_t b = 0; b <= d->hash_mask && !r; b++)
		for (struct chunk *c = d->hash[b]; c; c = c->hnext)
			hashed++;
	if (!r)
		r = check(why, whylen, "chunks in pools", pool, d->n_pool);
	if (!r)
		r = check(why, whylen, "chunks lent", lent, d->n_lent);
	if (!r)
		r = check(why, whylen, "chunks known", hashed, pool + lent);
	if (r) {
		d->stats.census_errors++;
		log_error("census: the books disagree: %s", why);
		return r;
	}
	for (uint32_t s = 0; s < d->nslots; s++)
		if (d->clients[s].state != CLIENT_FREE)
			lending_refresh(d, &d->clients[s]);
	snprintf(why, whylen,
		 "%llu pages: %llu free in %u chunks, %llu lent in %u chunks, "
		 "%u chunks to create; 0 on no list, 0 on two lists, 0 bad",
		 (unsigned long long)((pool + lent) * d->chunk_pages),
		 (unsigned long long)(pool * d->chunk_pages), d->n_pool,
		 (unsigned long long)(lent * d->chunk_pages), d->n_lent,
		 d->nchunks > d->n_pool + d->n_lent
			 ? d->nchunks - d->n_pool - d->n_lent
			 : 0);
	return 0;
}

void reserve_reset_stats(struct daemon *d)
{
	uint64_t reloads = d->stats.reloads;

	memset(&d->stats, 0, sizeof(d->stats));
	d->stats.reloads = reloads;
	for (unsigned int c = 0; c < d->ncpus; c++) {
		d->cpu[c].empty = 0;
		d->cpu[c].moved_in = 0;
		d->cpu[c].moved_out = 0;
	}
	for (uint32_t i = 0; i < d->nslots; i++) {
		struct client *cl = &d->clients[i];

		memcpy(cl->view.base, cl->view.v, sizeof(cl->view.base));
		cl->bad = cl->chunks_got = cl->chunks_put = 0;
		cl->denied = cl->empty = cl->throttled = 0;
	}
}

static int on_balance_timer(sd_event_source *src, uint64_t usec, void *data)
{
	struct daemon *d = data;

	reserve_balance(d);
	sd_event_source_set_time(src, usec + d->conf.balance.interval_us);
	return 0;
}

static int on_census_timer(sd_event_source *src, uint64_t usec, void *data)
{
	struct daemon *d = data;
	char why[256];

	reserve_census(d, why, sizeof(why));
	daemon_notify_status(d);
	if (d->conf.balance.census_interval_us)
		sd_event_source_set_time(src,
					 usec + d->conf.balance.census_interval_us);
	else
		sd_event_source_set_enabled(src, SD_EVENT_OFF);
	return 0;
}

int reserve_start_timers(struct daemon *d)
{
	uint64_t now;
	int r;

	sd_event_now(d->event, CLOCK_MONOTONIC, &now);
	if (!d->balance_timer) {
		r = sd_event_add_time(d->event, &d->balance_timer,
				      CLOCK_MONOTONIC, 0, 1000, on_balance_timer,
				      d);
		if (r < 0)
			return log_errno(LOG_ERR, r, "balance timer: %m");
		r = sd_event_add_time(d->event, &d->census_timer,
				      CLOCK_MONOTONIC, 0, 10000, on_census_timer,
				      d);
		if (r < 0)
			return log_errno(LOG_ERR, r, "census timer: %m");
	}
	/* (Re)arm with the current intervals: a reload may have changed them. */
	sd_event_source_set_time(d->balance_timer,
				 now + d->conf.balance.interval_us);
	sd_event_source_set_enabled(d->balance_timer, SD_EVENT_ON);
	if (d->conf.balance.census_interval_us) {
		sd_event_source_set_time(d->census_timer,
					 now + d->conf.balance.census_interval_us);
		sd_event_source_set_enabled(d->census_timer, SD_EVENT_ON);
	} else {
		sd_event_source_set_enabled(d->census_timer, SD_EVENT_OFF);
	}
	return 0;
}

static int on_hotplug(sd_event_source *src, int fd, uint32_t revents,
		      void *data)
{
	struct daemon *d = data;
	struct hotplug_event ev;
	int r;

	for (;;) {
		r = hotplug_receive(d->hotplug, &ev);
		if (r == -EAGAIN)
			return 0;
		if (r == -ENOBUFS) {
			/* Events were lost: sysfs says what is true now. */
			log_warning("hotplug: uevents overflowed; resyncing");
			reserve_resync_cpus(d);
			continue;
		}
		if (r < 0) {
			log_errno(LOG_WARNING, r, "hotplug: %m");
			return 0;
		}
		if (r == 0)
			continue;
		if (ev.action == HOTPLUG_OFFLINE)
			reserve_cpu_offline(d, ev.cpu);
		else
			reserve_cpu_online(d, ev.cpu);
		daemon_notify_status(d);
	}
}

int reserve_open_hotplug(struct daemon *d)
{
	int r = hotplug_open(&d->hotplug);

	if (r < 0) {
		/* Not fatal: containers may refuse; resync on reload still works. */
		log_errno(LOG_WARNING, r,
			  "cannot listen for CPU hotplug uevents: %m; following "
			  "/sys/devices/system/cpu/online only at start and reload");
		d->hotplug = NULL;
		return 0;
	}
	r = sd_event_add_io(d->event, &d->hotplug_src, hotplug_fd(d->hotplug),
			    EPOLLIN, on_hotplug, d);
	if (r < 0)
		return log_errno(LOG_ERR, r, "hotplug event source: %m");
	/* Whatever changed before we listened. */
	reserve_resync_cpus(d);
	return 0;
}
