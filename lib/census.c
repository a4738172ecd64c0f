// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdlib.h>

#include "census.h"

/*
 * Walk one list into scratch; a walk counts only if the head was the same
 * before and after it.  Returns the pages it newly marked listed.
 */
static uint32_t census_walk(const struct seg *s, struct census *c,
			    struct seg_stack *st, uint32_t *scratch)
{
	for (int tries = 0; tries < 16; tries++) {
		uint64_t head = atomic_load_explicit(&st->head,
						     memory_order_acquire);
		uint32_t cur = (uint32_t)head, n = 0, bad = 0;

		while (cur) {
			if (cur > s->npages) {
				bad = 1;
				break;
			}
			if (n >= s->npages)
				break; /* a cycle: caught below as a repeat */
			scratch[n++] = cur - 1;
			cur = atomic_load_explicit(&s->next[cur - 1],
						   memory_order_relaxed);
		}
		if (atomic_load_explicit(&st->head, memory_order_acquire) != head)
			continue;

		uint32_t fresh = 0;

		c->bad += bad;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t page = scratch[i], owner;

			if (c->where[page] == CENSUS_LISTED) {
				/* Twice on lists: a cross-link or a cycle. */
				c->duplicated++;
				break;
			}
			c->where[page] = CENSUS_LISTED;
			fresh++;
			owner = atomic_load_explicit(&s->owner[page],
						     memory_order_relaxed);
			if (owner != SEG_OWNER_FREE && owner != SEG_OWNER_REPAIR)
				c->duplicated++;
		}
		return fresh;
	}
	c->unstable++;
	return 0;
}

int census_take(const struct seg *s, struct census *c)
{
	*c = (struct census){
		.npages = s->npages,
		.ncpus = s->ncpus,
		.nslots = s->nslots,
		.cpu_free = calloc(s->ncpus, sizeof(uint32_t)),
		.cpu_protect = calloc(s->ncpus, sizeof(uint32_t)),
		.slot_held = calloc(s->nslots, sizeof(uint32_t)),
		.where = calloc(s->npages, 1),
	};
	uint32_t *scratch = malloc((size_t)s->npages * sizeof(uint32_t));

	if (!scratch || !c->cpu_free || !c->cpu_protect || !c->slot_held ||
	    !c->where) {
		free(scratch);
		census_release(c);
		return -ENOMEM;
	}

	c->global = census_walk(s, c, &s->global->free, scratch);
	for (uint32_t i = 0; i < s->ncpus; i++) {
		c->cpu_free[i] = census_walk(s, c, &s->cpu[i].free, scratch);
		c->cpu_protect[i] =
			census_walk(s, c, &s->cpu[i].protect, scratch);
	}
	free(scratch);
	for (uint32_t p = 0; p < s->npages; p++) {
		uint32_t owner;

		if (s->chunk_present &&
		    !atomic_load_explicit(&s->chunk_present[p / s->chunk_pages],
					  memory_order_relaxed)) {
			/* A slot with no chunk: its pages must be nowhere. */
			if (c->where[p] == CENSUS_LISTED) {
				c->where[p] = CENSUS_BAD;
				c->bad++;
			} else if (atomic_load_explicit(&s->owner[p],
							memory_order_relaxed) !=
				   SEG_OWNER_FREE) {
				c->bad++;
			}
			c->absent++;
			continue;
		}
		c->lent++;
		if (c->where[p] == CENSUS_LISTED) {
			c->free++;
			continue;
		}
		owner = atomic_load_explicit(&s->owner[p], memory_order_relaxed);
		if (owner == SEG_OWNER_FREE || owner == SEG_OWNER_REPAIR) {
			c->where[p] = CENSUS_LOST;
			c->lost++;
		} else if (owner <= s->nslots) {
			c->where[p] = CENSUS_HELD;
			c->slot_held[owner - 1]++;
			c->held++;
		} else {
			c->where[p] = CENSUS_BAD;
			c->bad++;
		}
	}
	return 0;
}

void census_release(struct census *c)
{
	free(c->cpu_free);
	free(c->cpu_protect);
	free(c->slot_held);
	free(c->where);
	*c = (struct census){0};
}
