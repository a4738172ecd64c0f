/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_STACK_H
#define RCUPOOL_STACK_H

/*
 * Treiber stacks over page indices in a shared segment.
 *
 * head = {tag:32, index+1:32}; the tag changes on every successful update,
 * so a popper that read head and next[top] and was then overtaken by
 * pops and pushes that put the same page back on top fails its CAS instead
 * of installing a stale link (ABA).  Links live in next[] as index+1, 0 at
 * the bottom.  Honest code only ever stores in-range values, so a racing
 * read may be stale but is always in range: an out-of-range index is
 * corruption (a client scribbled on the segment), counted in
 * hdr->bad_index and reported as -EBADMSG, never followed.
 *
 * Pop and push are one CAS each and nothing else: no counters on this path.
 */

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include "seg.h"

static inline uint64_t stack_head_make(uint32_t tag, uint32_t top)
{
	return ((uint64_t)tag << 32) | top;
}

static inline uint32_t stack_head_top(uint64_t head)
{
	return (uint32_t)head;
}

static inline uint32_t stack_head_tag(uint64_t head)
{
	return (uint32_t)(head >> 32);
}

/* Count a corrupt index seen in st; always returns -EBADMSG. */
int stack_corrupt(const struct seg *s);

/* Pop one page: 0 and *page, -ENOENT when empty, -EBADMSG when corrupt. */
static inline int stack_pop(const struct seg *s, struct seg_stack *st,
			    uint32_t *page)
{
	uint64_t old = atomic_load_explicit(&st->head, memory_order_acquire);

	for (;;) {
		uint32_t top = stack_head_top(old), next;

		if (!top)
			return -ENOENT;
		if (top > s->npages)
			return stack_corrupt(s);
		next = atomic_load_explicit(&s->next[top - 1],
					    memory_order_relaxed);
		if (next > s->npages) {
			uint64_t now = atomic_load_explicit(
				&st->head, memory_order_acquire);

			if (now == old)
				return stack_corrupt(s);
			old = now;
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(
			    &st->head, &old,
			    stack_head_make(stack_head_tag(old) + 1, next),
			    memory_order_acquire, memory_order_acquire)) {
			*page = top - 1;
			return 0;
		}
	}
}

/* Push a private chain first..last (linked through next[]) in one CAS. */
static inline void stack_push_chain(const struct seg *s, struct seg_stack *st,
				    uint32_t first, uint32_t last)
{
	uint64_t old = atomic_load_explicit(&st->head, memory_order_relaxed);

	do {
		atomic_store_explicit(&s->next[last], stack_head_top(old),
				      memory_order_relaxed);
	} while (!atomic_compare_exchange_weak_explicit(
		&st->head, &old,
		stack_head_make(stack_head_tag(old) + 1, first + 1),
		memory_order_release, memory_order_relaxed));
}

/* Push one page: 0, or -ERANGE for an index outside the segment. */
static inline int stack_push(const struct seg *s, struct seg_stack *st,
			     uint32_t page)
{
	if (page >= s->npages)
		return -ERANGE;
	stack_push_chain(s, st, page, page);
	return 0;
}

/*
 * Pop up to max pages in one CAS, as a private chain first..last.  Returns
 * how many (0 when empty), or -EBADMSG.  The walk is validated by the CAS:
 * every change to a list changes its head, so an unchanged head means the
 * walked links were the list's.
 */
int stack_pop_chain(const struct seg *s, struct seg_stack *st, uint32_t max,
		    uint32_t *first, uint32_t *last);

/* Move up to k pages from one list to another: how many, or -EBADMSG. */
int stack_move(const struct seg *s, struct seg_stack *from,
	       struct seg_stack *to, uint32_t k);

/*
 * Move a whole list: how many.  -EBADMSG when its top is corrupt: the list
 * is emptied and the census finds its pages.  A bad link part way cuts the
 * move short there (counted), for the same census to find the rest.
 */
int stack_move_all(const struct seg *s, struct seg_stack *from,
		   struct seg_stack *to);

/*
 * Length of a list, counting at most limit.  Exact when nobody changed
 * the list during the walk (retried a few times), else an estimate: for
 * the balancer and statistics, never for correctness.  -EBADMSG if corrupt.
 */
int64_t stack_count(const struct seg *s, struct seg_stack *st, uint32_t limit);

#endif
