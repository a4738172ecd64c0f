// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Per-CPU lists through rseq: which list, empty, offline, corrupt, restarts;
 * on a client's private segment over lent chunks (privseg.h).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cpupin.h"
#include "census.h"
#include "pcpu.h"
#include "privseg.h"
#include "seg.h"
#include "stack.h"

#define NPAGES 256

struct fixture {
	struct seg s; /* first: tests use *state as the segment */
	struct lender *l;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || privseg_create(&f->s, &f->l, 0, NPAGES, 16, 0))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	privseg_destroy(&f->s, f->l);
	free(f);
	return 0;
}

static void test_local_list(void **state)
{
	struct seg *s = *state;
	uint32_t first = 0, last = 0, page = 0;
	int cpu = -1, r;
	struct census c;

	if (!pcpu_available())
		skip();
	assert_int_equal(pin(0), 0);
	assert_int_equal(pcpu_current_cpu(), 0);
	assert_int_equal(sched_getcpu(), 0);

	assert_int_equal(pcpu_pop(s, PCPU_FREE, &page, &cpu), -ENOENT);
	assert_int_equal(cpu, 0);
	/* Ten pages from the global pool onto CPU 0's free list. */
	assert_int_equal(stack_pop_chain(s, &s->global->free, 10, &first, &last),
			 10);
	assert_int_equal(pcpu_push_chain(s, PCPU_FREE, first, last), 0);
	assert_int_equal(census_take(s, &c), 0);
	assert_int_equal(c.cpu_free[0], 10);
	assert_int_equal(c.global, NPAGES - 10);
	assert_true(census_clean(&c));
	census_release(&c);

	/* LIFO: the chain's first page comes back first. */
	r = pcpu_pop(s, PCPU_FREE, &page, &cpu);
	assert_int_equal(r, 0);
	assert_int_equal(page, first);
	assert_int_equal(pcpu_push(s, PCPU_FREE, page), 0);
	/* The protect list is another list. */
	assert_int_equal(pcpu_pop(s, PCPU_PROTECT, &page, &cpu), -ENOENT);

	/* Another CPU sees its own, empty, list. */
	if (s->ncpus > 1 && pin(1) == 0) {
		assert_int_equal(pcpu_pop(s, PCPU_FREE, &page, &cpu), -ENOENT);
		assert_int_equal(cpu, 1);
		assert_int_equal(pin(0), 0);
	}
	/* Take them all back, as a chain. */
	assert_int_equal(pcpu_pop_chain(s, PCPU_FREE, 100, &first, &last, &cpu),
			 10);
	stack_push_chain(s, &s->global->free, first, last);
	assert_int_equal(census_take(s, &c), 0);
	assert_int_equal(c.global, NPAGES);
	assert_true(census_clean(&c));
	census_release(&c);

	assert_int_equal(pcpu_push(s, PCPU_FREE, NPAGES), -ERANGE);
	unpin();
}

static void test_offline_cpu_refuses(void **state)
{
	struct seg *s = *state;
	uint32_t page = 0;
	int cpu;

	if (!pcpu_available())
		skip();
	assert_int_equal(pin(0), 0);
	assert_int_equal(stack_pop(s, &s->global->free, &page), 0);
	atomic_store(&s->cpu[0].online, 0);
	assert_int_equal(pcpu_push(s, PCPU_FREE, page), -ENODEV);
	assert_int_equal(pcpu_pop(s, PCPU_FREE, &page, &cpu), -ENODEV);
	atomic_store(&s->cpu[0].online, 1);
	assert_int_equal(pcpu_push(s, PCPU_FREE, page), 0);
	unpin();
}

static void test_corrupt_list(void **state)
{
	struct seg *s = *state;
	uint32_t page = 0;
	int cpu;

	if (!pcpu_available())
		skip();
	assert_int_equal(pin(0), 0);
	atomic_store(&s->cpu[0].free.head, stack_head_make(1, NPAGES + 7));
	assert_int_equal(pcpu_pop(s, PCPU_FREE, &page, &cpu), -EBADMSG);
	assert_int_equal(atomic_load(&s->hdr->bad_index), 1);
	/* A good top whose link is out of range. */
	assert_int_equal(stack_pop(s, &s->global->free, &page), 0);
	atomic_store(&s->cpu[0].free.head, stack_head_make(1, page + 1));
	atomic_store(&s->next[page], UINT32_MAX);
	assert_int_equal(pcpu_pop(s, PCPU_FREE, &page, &cpu), -EBADMSG);
	assert_int_equal(atomic_load(&s->hdr->bad_index), 2);
	unpin();
}

static _Atomic int stop;
static _Atomic unsigned long signals;

static void on_signal(int sig)
{
	atomic_fetch_add(&signals, 1);
}

static void *signaller(void *arg)
{
	pthread_t target = *(pthread_t *)arg;
	struct timespec ts = {0, 20000};

	while (!atomic_load(&stop)) {
		pthread_kill(target, SIGUSR1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/*
 * Signals land inside sequences: each restart must leave the list intact
 * (the census says so) and be counted.
 */
static void test_restarts_keep_lists_intact(void **state)
{
	struct seg *s = *state;
	struct sigaction sa = {.sa_handler = on_signal};
	pthread_t self = pthread_self(), t;
	uint32_t first = 0, last = 0, page = 0;
	uint64_t aborts0 = pcpu_aborts, ops = 0;
	time_t end;
	int cpu;
	struct census c;

	if (!pcpu_available())
		skip();
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
	assert_int_equal(stack_pop_chain(s, &s->global->free, 64, &first, &last),
			 64);
	assert_true(pcpu_push_chain(s, PCPU_FREE, first, last) >= 0);
	assert_int_equal(pthread_create(&t, NULL, signaller, &self), 0);
	end = time(NULL) + 2;
	/* Keep hopping CPUs too: migrations restart sequences as well. */
	while (time(NULL) < end || pcpu_aborts == aborts0) {
		if ((ops & 0xffff) == 0 && s->ncpus > 1)
			pin((int)((ops >> 16) % 2));
		int r = pcpu_pop(s, PCPU_FREE, &page, &cpu);

		if (r == -ENOENT) {
			/* This CPU's list ran dry: refill from the pool. */
			assert_int_equal(stack_pop(s, &s->global->free, &page),
					 0);
		} else {
			assert_true(r >= 0);
		}
		assert_true(pcpu_push(s, PCPU_FREE, page) >= 0);
		ops++;
		if (time(NULL) > end + 20)
			break;
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	unpin();
	print_message("# %llu pairs, %lu signals, %llu restarts\n",
		      (unsigned long long)ops, (unsigned long)signals,
		      (unsigned long long)(pcpu_aborts - aborts0));
	assert_true(pcpu_aborts > aborts0);
	assert_int_equal(census_take(s, &c), 0);
	assert_true(census_clean(&c));
	assert_int_equal(c.free, NPAGES);
	census_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_local_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offline_cpu_refuses, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_list, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_restarts_keep_lists_intact,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
