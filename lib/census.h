/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_CENSUS_H
#define RCUPOOL_CENSUS_H

/*
 * Where is every page?  (A client's private segment, seg.h: only the pages
 * of slots holding a lent chunk; the others must be nowhere.)  On exactly one list (free), or off every list and
 * owned by one client slot (held).  Anything else is an error a census
 * reports: a page on no list that nobody owns (lost), a page on two lists,
 * twice on one, or on a list while owned (duplicated), an owner value or a
 * link out of range (bad).
 *
 * Each list is walked until a walk starts and ends with the same head (its
 * tag changes on every update), so a walk is a true snapshot of that list;
 * a list that kept changing is counted in `unstable`.  Taken while pages
 * move, a census still sees pages in transit as lost (between a client's
 * pop and its owner[] store, or between two lists), so a live census never
 * proves a page lost.  The daemon repairs in two steps: it marks a suspect
 * (owner FREE -> OWNER_REPAIR, by CAS), and returns it only if a later
 * stable census still finds it on no list with the mark intact: a client
 * that touched it would have overwritten the mark, and a page nobody
 * touched cannot leave its list behind a stable walk.
 */

#include <stdint.h>

#include "seg.h"

enum census_where {
	CENSUS_UNSEEN = 0,
	CENSUS_LISTED = 1,
	CENSUS_HELD = 2,
	CENSUS_LOST = 3,
	CENSUS_BAD = 4,
};

struct census {
	uint32_t npages, ncpus, nslots;
	uint32_t free;	      /* on a list (each page once) */
	uint32_t global;      /* on the global pool */
	uint32_t held;	      /* owned by a client slot */
	uint32_t lost;
	uint32_t duplicated;
	uint32_t bad;
	uint32_t unstable;     /* lists that changed under every walk tried */
	/*
	 * Private segments: pages of slots with a chunk mapped (lent: every
	 * one is free or held, free + held == lent when clean) and of empty
	 * slots (absent: on no list, held by nobody, else counted bad).
	 */
	uint32_t lent;
	uint32_t absent;
	uint32_t *cpu_free;    /* [ncpus] on each CPU's free list */
	uint32_t *cpu_protect; /* [ncpus] on each CPU's protect list */
	uint32_t *slot_held;   /* [nslots] */
	uint8_t *where;	       /* [npages] enum census_where */
};

/* Walk every list and the owner table.  0 or -ENOMEM. */
int census_take(const struct seg *s, struct census *c);

void census_release(struct census *c);

/* True when every page is in exactly one place. */
static inline int census_clean(const struct census *c)
{
	return !c->lost && !c->duplicated && !c->bad && !c->unstable;
}

#endif
