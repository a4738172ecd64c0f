// SPDX-License-Identifier: LGPL-2.1-or-later
#include "stack.h"

int stack_corrupt(const struct seg *s)
{
	atomic_fetch_add_explicit(&s->hdr->bad_index, 1, memory_order_relaxed);
	return -EBADMSG;
}

int stack_pop_chain(const struct seg *s, struct seg_stack *st, uint32_t max,
		    uint32_t *first, uint32_t *last)
{
	uint64_t old = atomic_load_explicit(&st->head, memory_order_acquire);

	if (!max)
		return 0;
	for (;;) {
		uint32_t top = stack_head_top(old), cur = top, after, n = 1;
		uint64_t now;

		if (!top)
			return 0;
		if (top > s->npages)
			return stack_corrupt(s);
		for (;;) {
			after = atomic_load_explicit(&s->next[cur - 1],
						     memory_order_relaxed);
			if (after > s->npages || n == max || !after)
				break;
			cur = after;
			n++;
		}
		if (after > s->npages) {
			now = atomic_load_explicit(&st->head,
						   memory_order_acquire);
			if (now == old)
				return stack_corrupt(s);
			old = now;
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(
			    &st->head, &old,
			    stack_head_make(stack_head_tag(old) + 1, after),
			    memory_order_acquire, memory_order_acquire)) {
			*first = top - 1;
			*last = cur - 1;
			return (int)n;
		}
	}
}

int stack_move(const struct seg *s, struct seg_stack *from,
	       struct seg_stack *to, uint32_t k)
{
	uint32_t first, last;
	int n = stack_pop_chain(s, from, k, &first, &last);

	if (n > 0)
		stack_push_chain(s, to, first, last);
	return n;
}

int stack_move_all(const struct seg *s, struct seg_stack *from,
		   struct seg_stack *to)
{
	uint64_t old = atomic_load_explicit(&from->head, memory_order_acquire);
	uint32_t top, cur, n = 1;

	/* Detach the whole list; what we walk afterwards is ours alone. */
	do {
		if (!stack_head_top(old))
			return 0;
	} while (!atomic_compare_exchange_weak_explicit(
		&from->head, &old, stack_head_make(stack_head_tag(old) + 1, 0),
		memory_order_acquire, memory_order_acquire));
	top = cur = stack_head_top(old);
	if (top > s->npages)
		return stack_corrupt(s);
	for (;;) {
		uint32_t next = atomic_load_explicit(&s->next[cur - 1],
						     memory_order_relaxed);

		if (!next)
			break;
		/* A cycle or a bad link: the census recovers what we drop. */
		if (next > s->npages || n >= s->npages) {
			atomic_store_explicit(&s->next[cur - 1], 0,
					      memory_order_relaxed);
			stack_corrupt(s);
			break;
		}
		cur = next;
		n++;
	}
	stack_push_chain(s, to, top - 1, cur - 1);
	return (int)n;
}

int64_t stack_count(const struct seg *s, struct seg_stack *st, uint32_t limit)
{
	int64_t n = 0;

	for (int tries = 0; tries < 4; tries++) {
		uint64_t head = atomic_load_explicit(&st->head,
						     memory_order_acquire);
		uint32_t cur = stack_head_top(head);

		for (n = 0; cur && n < limit; n++) {
			if (cur > s->npages)
				break;
			cur = atomic_load_explicit(&s->next[cur - 1],
						   memory_order_relaxed);
		}
		if (atomic_load_explicit(&st->head, memory_order_acquire) ==
		    head) {
			if (cur > s->npages)
				return stack_corrupt(s);
			return n;
		}
	}
	return n;
}
