// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The daemon's reserve logic in-process: the balancer's watermarks, CPU
 * hotplug driven through the uevent parser (offline drain, online refill),
 * and the census's two-step repair of lost pages.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cpupin.h"
#include "census.h"
#include "conf.h"
#include "cpu.h"
#include "daemon.h"
#include "hotplug.h"
#include "log.h"
#include "pcpu.h"
#include "stack.h"

/* The daemon's notify hook; nothing to tell here. */
void daemon_notify_status(struct daemon *d)
{
}

int daemon_reload(struct daemon *d, char *why, size_t whylen)
{
	return -EOPNOTSUPP;
}

static int setup(void **state)
{
	struct daemon *d = calloc(1, sizeof(*d));
	struct conf_error err;
	int r;

	log_open(LOG_WARNING);
	conf_init(&d->conf);
	r = conf_set(&d->conf, "reserve.pages_per_cpu", "64", "test", &err);
	r = r ?: conf_set(&d->conf, "reserve.global_pages", "256", "test", &err);
	r = r ?: conf_set(&d->conf, "reserve.lock_memory", "no", "test", &err);
	r = r ?: conf_set(&d->conf, "limits.protect_pages", "4", "test", &err);
	r = r ?: conf_set(&d->conf, "limits.max_clients", "4", "test", &err);
	if (r < 0)
		return -1;
	d->ncpus = (unsigned int)cpu_possible_count();
	if (reserve_create(d) < 0)
		return -1;
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	struct daemon *d = *state;

	reserve_destroy(d);
	conf_free(&d->conf);
	free(d);
	return 0;
}

static void census_of(struct daemon *d, struct census *c)
{
	assert_int_equal(census_take(&d->seg, c), 0);
	assert_int_equal(c->free + c->held, d->seg.npages);
	assert_true(census_clean(c));
}

static void test_initial_fill_and_watermarks(void **state)
{
	struct daemon *d = *state;
	struct census c;
	uint32_t target = atomic_load(&d->seg.cpu[0].target), first, last;
	int cpu;

	if (!d->pinning)
		skip();
	/* 50% of 64 on every online CPU, 4 protected pages each. */
	assert_int_equal(target, 32);
	census_of(d, &c);
	for (unsigned int i = 0; i < d->seg.ncpus; i++) {
		if (!atomic_load(&d->seg.cpu[i].online))
			continue;
		assert_int_equal(c.cpu_free[i], 32);
		assert_int_equal(c.cpu_protect[i], 4);
	}
	census_release(&c);

	/* Below low (25% = 16): back to target on the next pass. */
	assert_int_equal(pin(0), 0);
	assert_int_equal(pcpu_pop_chain(&d->seg, PCPU_FREE, 20, &first, &last,
					&cpu),
			 20);
	stack_push_chain(&d->seg, &d->seg.global->free, first, last);
	unpin();
	census_of(d, &c);
	assert_int_equal(c.cpu_free[0], 12);
	census_release(&c);
	reserve_balance(d);
	census_of(d, &c);
	assert_int_equal(c.cpu_free[0], 32);
	census_release(&c);

	/* Above high (100% = 64): back down to target. */
	assert_int_equal(pin(0), 0);
	assert_int_equal(stack_pop_chain(&d->seg, &d->seg.global->free, 40,
					 &first, &last),
			 40);
	assert_int_equal(pcpu_push_chain(&d->seg, PCPU_FREE, first, last), 0);
	unpin();
	census_of(d, &c);
	assert_int_equal(c.cpu_free[0], 72);
	census_release(&c);
	reserve_balance(d);
	census_of(d, &c);
	assert_int_equal(c.cpu_free[0], 32);
	census_release(&c);
	/* Between the marks: left alone. */
	uint64_t moved = d->stats.pages_moved;

	reserve_balance(d);
	assert_int_equal(d->stats.pages_moved, moved);
}

/* What the kernel broadcasts, as hotplug_parse reads it. */
static void uevent(struct daemon *d, const char *action, unsigned int cpu)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg),
			 "%s@/devices/system/cpu/cpu%u%cACTION=%s%c"
			 "DEVPATH=/devices/system/cpu/cpu%u%cSUBSYSTEM=cpu%c"
			 "SEQNUM=42%c",
			 action, cpu, 0, action, 0, cpu, 0, 0, 0);
	struct hotplug_event ev;

	assert_int_equal(hotplug_parse(msg, (size_t)n, &ev), 1);
	assert_int_equal(ev.cpu, cpu);
	if (ev.action == HOTPLUG_OFFLINE)
		reserve_cpu_offline(d, ev.cpu);
	else
		reserve_cpu_online(d, ev.cpu);
}

static void test_hotplug_drain_and_refill(void **state)
{
	struct daemon *d = *state;
	unsigned int cpu = d->seg.ncpus > 1 ? 1 : 0;
	uint32_t page;
	int where;
	struct census c;

	if (!d->pinning)
		skip();
	census_of(d, &c);
	assert_int_equal(c.cpu_free[cpu], 32);
	uint32_t global = c.global;

	census_release(&c);

	/* offline: both lists drained into the pool, nothing lost. */
	uevent(d, "offline", cpu);
	assert_int_equal(atomic_load(&d->seg.cpu[cpu].online), 0);
	census_of(d, &c);
	assert_int_equal(c.cpu_free[cpu], 0);
	assert_int_equal(c.cpu_protect[cpu], 0);
	assert_int_equal(c.global, global + 36);
	census_release(&c);
	/* Clients on that CPU are turned away to the pool meanwhile. */
	assert_int_equal(pin((int)cpu), 0);
	assert_int_equal(pcpu_pop(&d->seg, PCPU_FREE, &page, &where), -ENODEV);
	unpin();
	/* The balancer leaves an offline CPU alone. */
	reserve_balance(d);
	census_of(d, &c);
	assert_int_equal(c.cpu_free[cpu], 0);
	census_release(&c);

	/* online: marked from the CPU itself and refilled. */
	uevent(d, "online", cpu);
	assert_int_equal(atomic_load(&d->seg.cpu[cpu].online), 1);
	census_of(d, &c);
	assert_int_equal(c.cpu_free[cpu], 32);
	assert_int_equal(c.cpu_protect[cpu], 4);
	assert_int_equal(c.global, global);
	census_release(&c);

	/* Other subsystems' events change nothing. */
	const char other[] = "offline@/devices/system/memory/memory3\0"
			     "ACTION=offline\0SUBSYSTEM=memory\0";
	struct hotplug_event ev;

	assert_int_equal(hotplug_parse(other, sizeof(other) - 1, &ev), 0);
}

static void test_census_two_step_repair(void **state)
{
	struct daemon *d = *state;
	struct seg *s = &d->seg;
	uint32_t lost = 0, touched = 0, orphan = 0;
	struct census c;

	/* A page popped and never owned: lost. */
	assert_int_equal(stack_pop(s, &s->global->free, &lost), 0);
	/* One that looks lost but a client takes before the second look. */
	assert_int_equal(stack_pop(s, &s->global->free, &touched), 0);
	/* One owned by a slot nobody is attached to. */
	assert_int_equal(stack_pop(s, &s->global->free, &orphan), 0);
	atomic_store(&s->owner[orphan], seg_owner_of_slot(3));

	/* First census: suspects marked, nothing returned yet. */
	assert_int_equal(reserve_census(d, true), 0);
	assert_int_equal(atomic_load(&s->owner[lost]), SEG_OWNER_REPAIR);
	assert_int_equal(atomic_load(&s->owner[touched]), SEG_OWNER_REPAIR);
	/* A client stores its slot over the mark: it was in transit. */
	atomic_store(&s->owner[touched], seg_owner_of_slot(0));
	atomic_store(&s->slot[0].state, SEG_SLOT_ATTACHED);

	/* Second census: the untouched one comes back, and the orphan. */
	assert_int_equal(reserve_census(d, true), 2);
	assert_int_equal(atomic_load(&s->owner[lost]), SEG_OWNER_FREE);
	assert_int_equal(atomic_load(&s->owner[orphan]), SEG_OWNER_FREE);
	assert_int_equal(atomic_load(&s->owner[touched]), seg_owner_of_slot(0));
	assert_int_equal(d->stats.pages_repaired, 2);
	assert_int_equal(census_take(s, &c), 0);
	assert_int_equal(c.lost, 0);
	assert_int_equal(c.duplicated, 0);
	assert_int_equal(c.held, 1);
	census_release(&c);

	/* A marked page that turns up on a list just loses its mark. */
	uint32_t p = 0;

	assert_int_equal(stack_pop(s, &s->global->free, &p), 0);
	assert_int_equal(reserve_census(d, true), 0);
	assert_int_equal(atomic_load(&s->owner[p]), SEG_OWNER_REPAIR);
	assert_int_equal(stack_push(s, &s->global->free, p), 0);
	assert_int_equal(reserve_census(d, true), 0);
	assert_int_equal(atomic_load(&s->owner[p]), SEG_OWNER_FREE);

	/* Reclaim of the attached slot returns the client's page. */
	assert_int_equal(reserve_reclaim_slot(d, 0), 1);
	assert_int_equal(census_take(s, &c), 0);
	assert_int_equal(c.free, s->npages);
	assert_true(census_clean(&c));
	census_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_initial_fill_and_watermarks,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_hotplug_drain_and_refill,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_census_two_step_repair,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
