// SPDX-License-Identifier: LGPL-2.1-or-later
#include <unistd.h>

#include "cpu.h"
#include "privseg.h"
#include "stack.h"

int privseg_create(struct seg *s, struct lender **lp, uint32_t ncpus,
		   uint32_t npages, uint32_t chunk, uint32_t spare)
{
	struct lend_private_params pp = {.pages = npages, .chunk_pages = chunk};
	struct lend_chunk c[LEND_GET_MAX];
	struct seg_error err;
	struct lender *l;
	uint32_t slot = 0, got;

	if (!ncpus) {
		int n = cpu_possible_count();

		if (n < 0)
			return 1;
		ncpus = (uint32_t)n;
	}
	if (!chunk || npages % chunk || lend_private_open(&pp, &l) < 0)
		return 1;
	*lp = l;
	if (seg_private_create(s, l->page_size, ncpus, chunk,
			       npages / chunk + spare, &err) < 0)
		return 2;
	while (slot < npages / chunk) {
		if (l->ops->get(l, -1, LEND_GET_MAX, c, &got) < 0 || !got)
			return 3;
		for (uint32_t i = 0; i < got; i++, slot++) {
			uint32_t first = slot * chunk;
			int r = seg_private_map_chunk(s, slot, c[i].fd);

			close(c[i].fd);
			if (r < 0)
				return 4;
			stack_push_chain(s, &s->global->free, first,
					 first + chunk - 1);
		}
	}
	return 0;
}

void privseg_destroy(struct seg *s, struct lender *l)
{
	seg_private_free(s);
	if (l)
		l->ops->close(l);
}
