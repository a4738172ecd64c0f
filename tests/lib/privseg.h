/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_TEST_PRIVSEG_H
#define RCUPOOL_TEST_PRIVSEG_H

#include "lend.h"
#include "seg.h"

/*
 * A client's private segment as a pool builds it: npages (a multiple of
 * chunk) lent by the in-process lender, mapped into slots 0.., every page
 * on the global list, plus `spare` empty slots.  ncpus 0: this machine's.
 * 0, or the step that failed (> 0).
 */
int privseg_create(struct seg *s, struct lender **l, uint32_t ncpus,
		   uint32_t npages, uint32_t chunk, uint32_t spare);
void privseg_destroy(struct seg *s, struct lender *l);

#endif
