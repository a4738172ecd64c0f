// SPDX-License-Identifier: LGPL-2.1-or-later
/* Lists over page indices: edges, bulk moves, corruption, and the census. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "census.h"
#include "seg.h"
#include "stack.h"

#define NPAGES 64

static int setup(void **state)
{
	struct seg *s = calloc(1, sizeof(*s));
	struct seg_params p = {.ncpus = 2, .npages = NPAGES, .nslots = 4};
	struct seg_error err;

	if (!s || seg_create(&p, s, &err) < 0)
		return -1;
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	seg_unmap(*state);
	free(*state);
	return 0;
}

static void assert_census(const struct seg *s, uint32_t global, uint32_t cpu0,
			  uint32_t cpu1)
{
	struct census c;

	assert_int_equal(census_take(s, &c), 0);
	assert_true(census_clean(&c));
	assert_int_equal(c.free, NPAGES);
	assert_int_equal(c.global, global);
	assert_int_equal(c.cpu_free[0], cpu0);
	assert_int_equal(c.cpu_free[1], cpu1);
	census_release(&c);
}

static void test_empty_and_full(void **state)
{
	struct seg *s = *state;
	struct seg_stack *g = &s->global->free, *c0 = &s->cpu[0].free;
	uint32_t page, got[NPAGES];

	assert_int_equal(stack_pop(s, c0, &page), -ENOENT);
	assert_int_equal(stack_count(s, c0, UINT32_MAX), 0);
	assert_int_equal(stack_count(s, g, UINT32_MAX), NPAGES);
	assert_int_equal(stack_count(s, g, 10), 10);

	/* A fresh segment hands out pages in index order, each once. */
	for (uint32_t i = 0; i < NPAGES; i++) {
		assert_int_equal(stack_pop(s, g, &got[i]), 0);
		assert_int_equal(got[i], i);
	}
	assert_int_equal(stack_pop(s, g, &page), -ENOENT);
	assert_int_equal(stack_count(s, g, UINT32_MAX), 0);

	/* LIFO. */
	for (uint32_t i = 0; i < NPAGES; i++)
		assert_int_equal(stack_push(s, c0, got[i]), 0);
	assert_int_equal(stack_count(s, c0, UINT32_MAX), NPAGES);
	assert_int_equal(stack_pop(s, c0, &page), 0);
	assert_int_equal(page, NPAGES - 1);
	assert_int_equal(stack_push(s, c0, page), 0);
	assert_int_equal(stack_push(s, c0, NPAGES), -ERANGE);
	assert_int_equal(stack_push(s, c0, UINT32_MAX), -ERANGE);
	assert_census(s, 0, NPAGES, 0);
	assert_int_equal(stack_move_all(s, c0, g), NPAGES);
	assert_census(s, NPAGES, 0, 0);
}

static void test_tag_changes_on_every_update(void **state)
{
	struct seg *s = *state;
	struct seg_stack *g = &s->global->free;
	uint64_t before = atomic_load(&g->head), stale;
	uint32_t a = 0, b = 0;

	/* The ABA case: pop A, pop B, push A leaves A on top again... */
	stale = before;
	assert_int_equal(stack_pop(s, g, &a), 0);
	assert_int_equal(stack_pop(s, g, &b), 0);
	assert_int_equal(stack_push(s, g, a), 0);
	assert_int_equal(stack_head_top(atomic_load(&g->head)),
			 stack_head_top(stale));
	/* ...but under another tag, so a popper holding the old head fails. */
	assert_int_equal(stack_head_tag(atomic_load(&g->head)),
			 stack_head_tag(stale) + 3);
	assert_false(atomic_compare_exchange_strong(
		&g->head, &stale, stack_head_make(stack_head_tag(stale) + 1, b + 1)));
	assert_int_equal(stack_push(s, g, b), 0);
	assert_int_equal(stack_pop(s, g, &a), 0);
	assert_int_equal(stack_push(s, g, a), 0);
	assert_census(s, NPAGES, 0, 0);
}

static void test_bulk_move_edges(void **state)
{
	struct seg *s = *state;
	struct seg_stack *g = &s->global->free, *c0 = &s->cpu[0].free,
			 *c1 = &s->cpu[1].free;
	uint32_t first = 7, last = 7;

	/* 0 pages: nothing moves, nothing is touched. */
	assert_int_equal(stack_move(s, g, c0, 0), 0);
	assert_int_equal(stack_pop_chain(s, g, 0, &first, &last), 0);
	assert_int_equal(first, 7);
	assert_census(s, NPAGES, 0, 0);
	/* From an empty list. */
	assert_int_equal(stack_move(s, c0, c1, 5), 0);
	assert_int_equal(stack_move_all(s, c0, c1), 0);
	/* 1 page. */
	assert_int_equal(stack_move(s, g, c0, 1), 1);
	assert_census(s, NPAGES - 1, 1, 0);
	/* Several, onto a non-empty list. */
	assert_int_equal(stack_move(s, g, c0, 10), 10);
	assert_census(s, NPAGES - 11, 11, 0);
	/* More than there are: all of them. */
	assert_int_equal(stack_move(s, c0, c1, 1000), 11);
	assert_census(s, NPAGES - 11, 0, 11);
	/* All, exactly. */
	assert_int_equal(stack_move(s, g, c1, NPAGES - 11), NPAGES - 11);
	assert_census(s, 0, 0, NPAGES);
	/* A chain keeps its order: first is the old top. */
	uint32_t top = stack_head_top(atomic_load(&c1->head)) - 1;

	assert_int_equal(stack_pop_chain(s, c1, 3, &first, &last), 3);
	assert_int_equal(first, top);
	uint32_t second = atomic_load(&s->next[first]) - 1;

	assert_int_equal(atomic_load(&s->next[second]) - 1, last);
	stack_push_chain(s, c0, first, last);
	assert_census(s, 0, 3, NPAGES - 3);
	assert_int_equal(stack_move_all(s, c1, g), NPAGES - 3);
	assert_int_equal(stack_move_all(s, c0, g), 3);
	assert_census(s, NPAGES, 0, 0);
	assert_int_equal(atomic_load(&s->hdr->bad_index), 0);
}

static void test_corrupt_indices_are_counted(void **state)
{
	struct seg *s = *state;
	struct seg_stack *g = &s->global->free, *c0 = &s->cpu[0].free;
	uint64_t saved = atomic_load(&g->head);
	uint32_t page, first, last;
	struct census c;

	/* A top index out of range. */
	atomic_store(&c0->head, stack_head_make(5, NPAGES + 1));
	assert_int_equal(stack_pop(s, c0, &page), -EBADMSG);
	assert_int_equal(stack_pop_chain(s, c0, 4, &first, &last), -EBADMSG);
	assert_int_equal(stack_count(s, c0, 100), -EBADMSG);
	assert_int_equal(atomic_load(&s->hdr->bad_index), 3);
	atomic_store(&c0->head, 0);

	/* A link out of range under a good top. */
	assert_int_equal(stack_move(s, g, c0, 3), 3);
	uint32_t top = stack_head_top(atomic_load(&c0->head)) - 1;
	uint32_t saved_link = atomic_load(&s->next[top]);

	atomic_store(&s->next[top], UINT32_MAX);
	assert_int_equal(stack_pop(s, c0, &page), -EBADMSG);
	assert_int_equal(atomic_load(&s->hdr->bad_index), 4);
	assert_int_equal(census_take(s, &c), 0);
	assert_int_equal(c.bad, 1);
	assert_int_equal(c.lost, 2); /* the two below the bad link */
	census_release(&c);
	/* move_all keeps what it can reach and drops the rest to the census. */
	assert_int_equal(stack_move_all(s, c0, g), 1);
	assert_int_equal(atomic_load(&s->hdr->bad_index), 5);
	atomic_store(&s->next[top], saved_link);
	(void)saved;
}

static void test_census_finds_every_fault(void **state)
{
	struct seg *s = *state;
	struct seg_stack *g = &s->global->free, *c1 = &s->cpu[1].free;
	uint32_t a = 0, b = 0, d = 0;
	struct census c;

	/* Held by slot 2: counted for that slot, not lost. */
	assert_int_equal(stack_pop(s, g, &a), 0);
	atomic_store(&s->owner[a], seg_owner_of_slot(2));
	/* Popped and never owned: lost. */
	assert_int_equal(stack_pop(s, g, &b), 0);
	/* An owner value from nowhere: bad. */
	assert_int_equal(stack_pop(s, g, &d), 0);
	atomic_store(&s->owner[d], 999);
	assert_int_equal(census_take(s, &c), 0);
	assert_int_equal(c.held, 1);
	assert_int_equal(c.slot_held[2], 1);
	assert_int_equal(c.lost, 1);
	assert_int_equal(c.where[b], CENSUS_LOST);
	assert_int_equal(c.bad, 1);
	assert_int_equal(c.free + c.held + c.lost + c.bad, NPAGES);
	assert_false(census_clean(&c));
	census_release(&c);

	/* On a list while owned: duplicated. */
	atomic_store(&s->owner[d], SEG_OWNER_FREE);
	assert_int_equal(stack_push(s, c1, d), 0);
	atomic_store(&s->owner[d], seg_owner_of_slot(0));
	assert_int_equal(census_take(s, &c), 0);
	assert_int_equal(c.duplicated, 1);
	census_release(&c);
	atomic_store(&s->owner[d], SEG_OWNER_FREE);

	/* On two lists at once: duplicated, and the walk terminates. */
	assert_int_equal(stack_push(s, c1, b), 0);
	uint32_t top_g = stack_head_top(atomic_load(&g->head)) - 1;
	uint64_t saved_c1 = atomic_load(&c1->head);

	atomic_store(&s->next[b], top_g + 1); /* c1: b -> d... now b -> g's top */
	assert_int_equal(census_take(s, &c), 0);
	assert_true(c.duplicated >= 1);
	census_release(&c);
	/* Mend: b back onto d, and a home. */
	atomic_store(&s->next[b], d + 1);
	atomic_store(&c1->head, saved_c1);
	atomic_store(&s->owner[a], SEG_OWNER_FREE);
	assert_int_equal(stack_push(s, g, a), 0);
	assert_int_equal(stack_move_all(s, c1, g), 2);

	/* A cycle on one list: the walk stops and reports it. */
	assert_int_equal(stack_move(s, g, c1, 2), 2);
	uint32_t t = stack_head_top(atomic_load(&c1->head)) - 1;
	uint32_t u = atomic_load(&s->next[t]) - 1;

	atomic_store(&s->next[u], t + 1);
	assert_int_equal(census_take(s, &c), 0);
	assert_int_equal(c.duplicated, 1);
	census_release(&c);
	atomic_store(&s->next[u], 0);
	assert_int_equal(stack_move_all(s, c1, g), 2);
	assert_census(s, NPAGES, 0, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_empty_and_full, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tag_changes_on_every_update,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bulk_move_edges, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_indices_are_counted,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_census_finds_every_fault,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
