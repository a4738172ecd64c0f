// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdlib.h>

#include "census.h"

/* Walk one list, marking its pages; returns how many pages were new. */
static uint32_t census_walk(const struct seg *s, struct census *c,
			    struct seg_stack *st)
{
	uint32_t cur = (uint32_t)atomic_load_explicit(&st->head,
						      memory_order_acquire);
	uint32_t n = 0;

	for (uint32_t steps = 0; cur; steps++) {
		uint32_t page = cur - 1;

		if (cur > s->npages) {
			c->bad++;
			break;
		}
		if (c->where[page] == CENSUS_LISTED || steps >= s->npages) {
			/* Twice on lists: a cross-link or a cycle; stop here. */
			c->duplicated++;
			break;
		}
		c->where[page] = CENSUS_LISTED;
		n++;
		if (atomic_load_explicit(&s->owner[page],
					 memory_order_relaxed) !=
		    SEG_OWNER_FREE)
			c->duplicated++;
		cur = atomic_load_explicit(&s->next[page],
					   memory_order_relaxed);
	}
	return n;
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
	if (!c->cpu_free || !c->cpu_protect || !c->slot_held || !c->where) {
		census_release(c);
		return -ENOMEM;
	}

	c->global = census_walk(s, c, &s->global->free);
	for (uint32_t i = 0; i < s->ncpus; i++) {
		c->cpu_free[i] = census_walk(s, c, &s->cpu[i].free);
		c->cpu_protect[i] = census_walk(s, c, &s->cpu[i].protect);
	}
	for (uint32_t p = 0; p < s->npages; p++) {
		uint32_t owner;

		if (c->where[p] == CENSUS_LISTED) {
			c->free++;
			continue;
		}
		owner = atomic_load_explicit(&s->owner[p], memory_order_relaxed);
		if (owner == SEG_OWNER_FREE) {
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
