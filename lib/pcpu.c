// SPDX-License-Identifier: LGPL-2.1-or-later
#include "pcpu.h"

__thread uint64_t pcpu_aborts;

int pcpu_pop_chain(const struct seg *s, enum pcpu_list which, uint32_t max,
		   uint32_t *first, uint32_t *last, int *cpu_ret)
{
	uint32_t n = 0, page = 0, prev = 0;
	int r;

	/* Page by page: a migration half way mixes CPUs, the chain stays ours. */
	while (n < max) {
		r = pcpu_pop(s, which, &page, cpu_ret);
		if (r < 0) {
			if (r == -ENOENT || n)
				break;
			return r;
		}
		if (n == 0)
			*first = page;
		else
			atomic_store_explicit(&s->next[prev], page + 1,
					      memory_order_relaxed);
		prev = page;
		n++;
	}
	if (n) {
		atomic_store_explicit(&s->next[prev], 0, memory_order_relaxed);
		*last = prev;
	}
	return (int)n;
}
