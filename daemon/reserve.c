// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The reserve as the daemon runs it: the segment sized from the config,
 * limits written into it, the balancer, CPU hotplug, reclaim of clients
 * that went away, and the census that finds lost pages.
 *
 * A CPU's lists may only be updated from that CPU (pcpu.h), so the
 * balancer pins this thread to each CPU it has work for, moves pages with
 * rseq sequences there, and goes back to its own affinity.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "census.h"
#include "cpu.h"
#include "daemon.h"
#include "hotplug.h"
#include "log.h"
#include "pcpu.h"
#include "stack.h"

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
	/* The kernel migrates us before the call returns; rseq agrees. */
	return pcpu_current_cpu() == (int)cpu ? 0 : -EAGAIN;
}

static void unpin(void)
{
	if (pinned && sched_setaffinity(0, sizeof(home_affinity),
					&home_affinity) < 0)
		log_warning("cannot restore CPU affinity: %m");
	pinned = false;
}

static uint32_t wm(struct conf_count v, uint32_t whole)
{
	return (uint32_t)conf_resolve(v, whole);
}

void reserve_slot_limits(const struct daemon *d, const char *name,
			 uint32_t req_min, uint32_t req_max, uint32_t *min,
			 uint32_t *max)
{
	const struct conf_client *cc = conf_client_find(&d->conf, name);
	uint64_t total = d->seg.npages;
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

void reserve_apply_limits(struct daemon *d)
{
	struct seg *s = &d->seg;
	uint32_t per = d->conf.reserve.pages_per_cpu;

	atomic_store(&s->hdr->overflow_pages, d->conf.limits.overflow_pages);
	atomic_store(&s->hdr->drain_interval_ms,
		     (uint32_t)(d->conf.limits.drain_interval_us / 1000));
	for (uint32_t c = 0; c < s->ncpus; c++) {
		struct seg_cpu *cpu = &s->cpu[c];

		atomic_store(&cpu->low, wm(d->conf.balance.low, per));
		atomic_store(&cpu->target, wm(d->conf.balance.target, per));
		atomic_store(&cpu->high, wm(d->conf.balance.high, per));
		atomic_store(&cpu->protect_pages, d->conf.limits.protect_pages);
	}
	/* Attached clients get the new limits on their next page request. */
	for (uint32_t i = 0; i < s->nslots; i++) {
		struct seg_slot *slot = &s->slot[i];
		uint32_t min, max;

		if (atomic_load(&slot->state) != SEG_SLOT_ATTACHED)
			continue;
		reserve_slot_limits(d, slot->name, 0, 0, &min, &max);
		atomic_store(&slot->min_pages, min);
		atomic_store(&slot->max_pages, max);
	}
}

int reserve_create(struct daemon *d)
{
	uint64_t npages = conf_reserve_pages(&d->conf, d->ncpus);
	struct seg_params p = {
		.page_size = d->conf.reserve.page_size,
		.ncpus = d->ncpus,
		.npages = (uint32_t)npages,
		.nslots = d->conf.limits.max_clients,
		.lock = (enum seg_lock)d->conf.reserve.lock_memory,
		.huge = (enum seg_huge)d->conf.reserve.hugepages,
		.name = "rcupool-reserve",
	};
	struct seg_error err;
	int r;

	if (npages > SEG_MAX_PAGES)
		return log_errno(LOG_ERR, -E2BIG,
				 "a reserve of %llu pages is more than %u",
				 (unsigned long long)npages, SEG_MAX_PAGES);
	r = seg_create(&p, &d->seg, &err);
	if (r < 0)
		return log_errno(LOG_ERR, r, "%s", err.msg);
	if (p.lock == SEG_LOCK_YES && !d->seg.locked)
		log_warning("the reserve is not locked in memory (RLIMIT_MEMLOCK "
			    "too low?); carrying on, it may be swapped out");
	if (p.huge == SEG_HUGE_AUTO && !d->seg.hugetlb)
		log_info("no huge pages available: the reserve uses normal pages");
	d->lost_seen = calloc(d->seg.npages, 1);
	if (!d->lost_seen)
		return log_errno(LOG_ERR, -ENOMEM, "out of memory");
	d->pinning = pcpu_available();
	if (!d->pinning)
		log_notice("no restartable sequences in this process: every "
			   "page stays in the global pool");
	reserve_apply_limits(d);
	log_info("reserve: %u pages of %u bytes (%llu KiB), %u CPUs, %u client "
		 "slots%s%s",
		 d->seg.npages, d->seg.page_size,
		 (unsigned long long)d->seg.npages * d->seg.page_size / 1024,
		 d->seg.ncpus, d->seg.nslots, d->seg.locked ? ", locked" : "",
		 d->seg.hugetlb ? ", huge pages" : "");
	reserve_balance(d);
	return 0;
}

void reserve_destroy(struct daemon *d)
{
	seg_unmap(&d->seg);
	free(d->lost_seen);
	d->lost_seen = NULL;
}

/* Global pool -> this CPU's list; we are pinned to cpu. */
static int fill(struct daemon *d, unsigned int cpu, enum pcpu_list which,
		uint32_t k)
{
	struct seg *s = &d->seg;
	uint32_t first, last;
	int n, r;

	n = stack_pop_chain(s, &s->global->free, k, &first, &last);
	if (n <= 0)
		return n;
	r = pcpu_push_chain(s, which, first, last);
	if (r < 0) {
		stack_push_chain(s, &s->global->free, first, last);
		return r;
	}
	if ((unsigned int)r != cpu)
		log_debug("balancer: %d pages meant for CPU %u went to CPU %d",
			  n, cpu, r);
	atomic_fetch_add_explicit(&s->cpu[r].stats.moved_in, (uint64_t)n,
				  memory_order_relaxed);
	d->stats.pages_moved += (uint64_t)n;
	return n;
}

/* This CPU's list -> global pool; we are pinned to cpu. */
static int drain(struct daemon *d, unsigned int cpu, enum pcpu_list which,
		 uint32_t k)
{
	struct seg *s = &d->seg;
	uint32_t first, last;
	int n, where = (int)cpu;

	n = pcpu_pop_chain(s, which, k, &first, &last, &where);
	if (n <= 0)
		return n;
	stack_push_chain(s, &s->global->free, first, last);
	atomic_fetch_add_explicit(&s->cpu[where].stats.moved_out, (uint64_t)n,
				  memory_order_relaxed);
	d->stats.pages_moved += (uint64_t)n;
	return n;
}

/* How far one list is from where it should be: pages to add (> 0) or remove. */
static int64_t wanted(struct daemon *d, struct seg_stack *st, uint32_t low,
		      uint32_t target, uint32_t high)
{
	int64_t n = stack_count(&d->seg, st, d->seg.npages);

	if (n < 0)
		return 0; /* corrupt: counted; the census deals with it */
	if (n < low || n > high)
		return (int64_t)target - n;
	return 0;
}

void reserve_balance(struct daemon *d)
{
	struct seg *s = &d->seg;

	d->stats.balance_runs++;
	if (!d->pinning)
		return;
	for (unsigned int c = 0; c < s->ncpus; c++) {
		struct seg_cpu *cpu = &s->cpu[c];
		uint32_t protect = atomic_load(&cpu->protect_pages);
		int64_t want_free, want_protect;
		int r;

		if (!atomic_load(&cpu->online))
			continue;
		want_free = wanted(d, &cpu->free, atomic_load(&cpu->low),
				   atomic_load(&cpu->target),
				   atomic_load(&cpu->high));
		want_protect = wanted(d, &cpu->protect, protect, protect,
				      protect);
		if (!want_free && !want_protect)
			continue;
		r = pin_to(c);
		if (r == -EPERM || r == -EACCES) {
			/* A sandbox refusing sched_setaffinity: say it once. */
			if (!d->pin_refused)
				log_errno(LOG_WARNING, r,
					  "cannot run on CPU %u to fill its "
					  "lists (%m): clients will use the "
					  "global pool only; allow "
					  "sched_setaffinity",
					  c);
			d->pin_refused = true;
			break;
		}
		if (r < 0)
			continue; /* going offline: hotplug will tell us */
		if (want_protect > 0)
			fill(d, c, PCPU_PROTECT, (uint32_t)want_protect);
		else if (want_protect < 0)
			drain(d, c, PCPU_PROTECT, (uint32_t)-want_protect);
		if (want_free > 0)
			fill(d, c, PCPU_FREE, (uint32_t)want_free);
		else if (want_free < 0)
			drain(d, c, PCPU_FREE, (uint32_t)-want_free);
	}
	unpin();
}

void reserve_cpu_offline(struct daemon *d, unsigned int cpu)
{
	struct seg *s = &d->seg;
	int n, m;

	if (cpu >= s->ncpus)
		return;
	/*
	 * No sequence commits on a CPU whose online word is 0.  Either we
	 * run on that CPU now (so nothing else does, and a sequence we
	 * preempted restarts and sees the 0), or it is really offline (so
	 * nothing runs there): both make plain CAS moves safe.
	 */
	atomic_store(&s->cpu[cpu].online, 0);
	(void)pin_to(cpu);
	n = stack_move_all(s, &s->cpu[cpu].free, &s->global->free);
	m = stack_move_all(s, &s->cpu[cpu].protect, &s->global->free);
	unpin();
	if (n > 0 || m > 0) {
		atomic_fetch_add(&s->cpu[cpu].stats.moved_out,
				 (uint64_t)(n > 0 ? n : 0) + (m > 0 ? m : 0));
		d->stats.pages_moved += (uint64_t)(n > 0 ? n : 0) + (m > 0 ? m : 0);
	}
	log_info("CPU %u offline: %d pages back to the global pool", cpu,
		 (n > 0 ? n : 0) + (m > 0 ? m : 0));
}

void reserve_cpu_online(struct daemon *d, unsigned int cpu)
{
	struct seg *s = &d->seg;

	if (cpu >= s->ncpus || atomic_load(&s->cpu[cpu].online))
		return;
	/* Mark it from the CPU itself, then fill it there. */
	if (pin_to(cpu) < 0) {
		log_warning("CPU %u reported online but cannot run there", cpu);
		unpin();
		return;
	}
	atomic_store(&s->cpu[cpu].online, 1);
	unpin();
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
	for (unsigned int c = 0; c < d->seg.ncpus; c++) {
		bool now = atomic_load(&d->seg.cpu[c].online);

		if (now && !online[c])
			reserve_cpu_offline(d, c);
		else if (!now && online[c])
			reserve_cpu_online(d, c);
	}
}

/* Every counter of a slot back to zero; the peak restarts from now. */
static void slot_zero_counters(struct seg_slot *sl)
{
	atomic_store(&sl->held_peak, atomic_load(&sl->held));
	atomic_store(&sl->pages_got, 0);
	atomic_store(&sl->denied, 0);
	atomic_store(&sl->depletions, 0);
	atomic_store(&sl->fb_overflow, 0);
	atomic_store(&sl->fb_head, 0);
	atomic_store(&sl->fb_sync, 0);
	atomic_store(&sl->objects, 0);
}

uint32_t reserve_reclaim_slot(struct daemon *d, uint32_t slot)
{
	struct seg *s = &d->seg;
	struct seg_slot *sl = &s->slot[slot];
	uint32_t owner = seg_owner_of_slot(slot), first = 0, prev = 0, n = 0;

	atomic_store(&sl->state, SEG_SLOT_DEAD);
	/* Every page the slot owns: filling, or waiting for a grace period. */
	for (uint32_t p = 0; p < s->npages; p++) {
		if (atomic_load_explicit(&s->owner[p], memory_order_relaxed) !=
		    owner)
			continue;
		atomic_store_explicit(&s->owner[p], SEG_OWNER_FREE,
				      memory_order_relaxed);
		if (n++ == 0)
			first = p;
		else
			atomic_store_explicit(&s->next[prev], p + 1,
					      memory_order_relaxed);
		prev = p;
	}
	if (n)
		stack_push_chain(s, &s->global->free, first, prev);
	d->stats.pages_reclaimed += n;

	/* Counters fold into nothing: the slot is new for its next client. */
	atomic_store(&sl->held, 0);
	slot_zero_counters(sl);
	atomic_store(&sl->pid, 0);
	memset(sl->name, 0, sizeof(sl->name));
	atomic_store(&sl->state, SEG_SLOT_FREE);
	return n;
}

int reserve_census(struct daemon *d, bool repair)
{
	struct seg *s = &d->seg;
	struct census c;
	uint32_t marked = 0, returned = 0;
	int r;

	r = census_take(s, &c);
	if (r < 0)
		return log_errno(LOG_WARNING, r, "census: %m");
	d->stats.census_runs++;
	if (c.duplicated || c.bad)
		log_warning("census: %u pages on two lists or listed while "
			    "held, %u bad indices",
			    c.duplicated, c.bad);
	for (uint32_t p = 0; p < s->npages && repair; p++) {
		_Atomic uint32_t *o = &s->owner[p];
		uint32_t v = atomic_load(o);

		if (c.where[p] == CENSUS_LISTED) {
			/* Listed after all: drop any mark. */
			uint32_t mark = SEG_OWNER_REPAIR;

			if (v == SEG_OWNER_REPAIR)
				atomic_compare_exchange_strong(o, &mark,
							       SEG_OWNER_FREE);
			d->lost_seen[p] = 0;
			continue;
		}
		if (c.where[p] == CENSUS_HELD) {
			uint32_t slot = v - 1;

			/* Held by a slot nobody is attached to: orphaned. */
			if (atomic_load(&s->slot[slot].state) !=
			    SEG_SLOT_ATTACHED &&
			    ++d->lost_seen[p] >= 2) {
				uint32_t want = v;

				if (atomic_compare_exchange_strong(
					    o, &want, SEG_OWNER_FREE)) {
					stack_push(s, &s->global->free, p);
					returned++;
				}
				d->lost_seen[p] = 0;
			}
			continue;
		}
		if (c.where[p] != CENSUS_LOST) {
			d->lost_seen[p] = 0;
			continue;
		}
		if (c.unstable)
			continue; /* no decision on a census that was not a snapshot */
		if (v == SEG_OWNER_FREE) {
			uint32_t want = SEG_OWNER_FREE;

			/* Step 1: mark the suspect. */
			if (atomic_compare_exchange_strong(o, &want,
							   SEG_OWNER_REPAIR)) {
				d->lost_seen[p] = 1;
				marked++;
			}
		} else if (v == SEG_OWNER_REPAIR && d->lost_seen[p]) {
			uint32_t want = SEG_OWNER_REPAIR;

			/* Step 2: untouched since and still on no list. */
			if (atomic_compare_exchange_strong(o, &want,
							   SEG_OWNER_FREE)) {
				stack_push(s, &s->global->free, p);
				returned++;
			}
			d->lost_seen[p] = 0;
		}
	}
	if (returned) {
		d->stats.pages_repaired += returned;
		log_notice("census: %u lost pages returned to the global pool",
			   returned);
	}
	if (marked)
		log_debug("census: %u pages on no list, checking again", marked);
	census_release(&c);
	return (int)returned;
}

void reserve_reset_stats(struct daemon *d)
{
	struct seg *s = &d->seg;

	memset(&d->stats, 0, sizeof(d->stats));
	atomic_store(&s->global->stats.empty, 0);
	for (uint32_t c = 0; c < s->ncpus; c++) {
		atomic_store(&s->cpu[c].stats.empty, 0);
		atomic_store(&s->cpu[c].stats.moved_in, 0);
		atomic_store(&s->cpu[c].stats.moved_out, 0);
	}
	for (uint32_t i = 0; i < s->nslots; i++) {
		struct seg_slot *sl = &s->slot[i];

		slot_zero_counters(sl);
	}
	atomic_store(&s->hdr->bad_index, 0);
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

	reserve_census(d, true);
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
