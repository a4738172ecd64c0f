// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Scenario 6: lending.  The real rcupoold of the build under test
 * ($RCUPOOL_BUILD or build/) at its shipped configuration, one client
 * speaking lend.h as the library's drain thread does:
 *
 *   get1   CHUNK_GET of one chunk: request, fds over SCM_RIGHTS, mmap,
 *          first touch of every page, munmap, close (what a pool pays to
 *          put a chunk on its lists), per chunk: p50, p99
 *   get8   the same for LEND_GET_MAX chunks at once, per request
 *   rate   pages lent per second at get8 (the round trips only)
 *
 * Chunks are given back 64 at a time between timed requests (a chunk
 * given back is retired and replaced by the daemon, and returns faster
 * than limits.return_rate are slowed: an untimed request after each
 * give-back takes that wait).
 * Nothing here asserts a time.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_util.h"
#include "lend.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Map, touch every page, unmap, close: what a pool does with a chunk. */
static void use_chunk(const struct lend_chunk *c, uint32_t page_size)
{
	size_t len = (size_t)c->pages * page_size;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd,
		       0);

	close(c->fd);
	if (m == MAP_FAILED)
		return;
	for (size_t off = 0; off < len; off += page_size)
		*(volatile char *)(m + off) = 1;
	munmap(m, len);
}

struct held {
	uint64_t ids[128];
	uint32_t n;
};

/*
 * Give the chunks back, then one untimed request: returns beyond
 * limits.return_rate make the daemon stop reading this connection for a
 * while, and that wait must not land in the next timed request.
 */
static void give_back(struct lender *l, struct held *h, bool settle)
{
	struct lend_chunk c;
	uint32_t got = 0;

	if (!h->n)
		return;
	if (l->ops->put(l, h->ids, h->n) < 0)
		fprintf(stderr, "bench_lend: put failed\n");
	h->n = 0;
	if (settle && l->ops->get(l, -1, 1, &c, &got) == 0 && got == 1) {
		use_chunk(&c, l->page_size);
		h->ids[h->n++] = c.id;
	}
}

/* n requests of want chunks each; per-request ns into t[]. */
static int run(struct lender *l, uint32_t want, int n, uint64_t *t,
	       uint64_t *pages)
{
	struct lend_chunk c[LEND_GET_MAX];
	struct held h = {0};
	int done = 0;

	*pages = 0;
	for (int i = 0; i < n; i++) {
		uint64_t t0 = bench_now_ns();
		uint32_t got = 0;
		int r = l->ops->get(l, -1, want, c, &got);

		for (uint32_t k = 0; r == 0 && k < got; k++)
			use_chunk(&c[k], l->page_size);
		if (r < 0 || !got) {
			/* The pools ran dry: let the daemon replace. */
			give_back(l, &h, true);
			bench_sleep_ms(20);
			continue;
		}
		t[done++] = bench_now_ns() - t0;
		for (uint32_t k = 0; k < got; k++) {
			h.ids[h.n++] = c[k].id;
			*pages += c[k].pages;
		}
		if (h.n + want > 64)
			give_back(l, &h, true);
	}
	give_back(l, &h, false);
	return done;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"quick", no_argument, NULL, 'q'},
		{NULL, 0, NULL, 0},
	};
	int n = 400, opt, json = 0;
	double p50_1, p99_1, p50_8, p99_8, rate;
	struct benchd d;
	struct lender *l;
	char why[256];
	uint64_t *t, pages, sum = 0;
	int done1, done8;

	while ((opt = getopt_long(argc, argv, "n:", longopts, NULL)) != -1)
		if (opt == 'n')
			n = atoi(optarg);
		else if (opt == 'j')
			json = 1;
		else if (opt == 'q')
			n = 100;
	if (n < 10)
		n = 10;
	t = calloc((size_t)n, sizeof(*t));
	if (!t || benchd_start(&d, NULL) < 0)
		return 1;
	if (lend_daemon_open(d.sock, "bench_lend", 0, 0, &l, why,
			     sizeof(why)) < 0) {
		fprintf(stderr, "bench_lend: %s\n", why);
		benchd_stop(&d);
		return 1;
	}
	done1 = run(l, 1, n, t, &pages);
	qsort(t, (size_t)done1, sizeof(*t), cmp_u64);
	p50_1 = done1 ? t[done1 / 2] / 1e3 : 0;
	p99_1 = done1 ? t[done1 * 99 / 100] / 1e3 : 0;
	done8 = run(l, LEND_GET_MAX, n, t, &pages);
	for (int i = 0; i < done8; i++)
		sum += t[i];
	qsort(t, (size_t)done8, sizeof(*t), cmp_u64);
	p50_8 = done8 ? t[done8 / 2] / 1e3 : 0;
	p99_8 = done8 ? t[done8 * 99 / 100] / 1e3 : 0;
	rate = sum ? pages * 1e9 / (double)sum : 0.0;
	if (json) {
		printf("{\"benchmark\":\"lend\",\"chunk_pages\":%u,"
		       "\"get1_p50_us\":%.1f,\"get1_p99_us\":%.1f,"
		       "\"get%d_p50_us\":%.1f,\"get%d_p99_us\":%.1f,"
		       "\"pages_per_s\":%.0f}\n",
		       l->chunk_pages, p50_1, p99_1, LEND_GET_MAX, p50_8,
		       LEND_GET_MAX, p99_8, rate);
	} else {
		printf("lending (shipped configuration, chunks of %u pages)\n",
		       l->chunk_pages);
		printf("  get1  %d requests: p50 %.1f us, p99 %.1f us per "
		       "chunk\n",
		       done1, p50_1, p99_1);
		printf("  get%d  %d requests: p50 %.1f us, p99 %.1f us per "
		       "request\n",
		       LEND_GET_MAX, done8, p50_8, p99_8);
		printf("  rate  %.0f pages/s lent (%llu pages in %.1f ms of "
		       "requests; at the p50: %.0f pages/s)\n",
		       rate, (unsigned long long)pages, sum / 1e6,
		       p50_8 ? LEND_GET_MAX * l->chunk_pages * 1e6 / p50_8
			     : 0.0);
	}
	l->ops->close(l);
	benchd_stop(&d);
	free(t);
	return 0;
}
