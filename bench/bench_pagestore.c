// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The machine's floor for the latency of a page-batching free: what a call
 * that only stores a pointer into a 4 KiB page costs at p99.9 here, with
 * nothing of librcupool in it.  Timed as bench_e2e's latency scenario
 * times rcupool_free(): a malloc(64) outside, a clock_gettime pair around
 * the call.  The call stores the object's pointer in the next slot of its
 * page; the call that fills the last slot submits the page, the next one
 * takes a page.  The pages are cut from one shared memfd mapping, as the
 * reserve's chunks are.  Four kinds, side by side:
 *
 *   hot      a full page stays with the thread, which frees its objects
 *            after that call, outside the clock, and reuses the page: no
 *            other CPU touches the pages or the objects, and the thread
 *            cycles through 64 pages (256 KiB: they stay in its caches);
 *   cold     the same through 1024 pages (4 MiB, more than this VM's L2),
 *            taken again in ascending address order: a page comes back
 *            long after it left the caches, but each page is the one
 *            after the page just filled;
 *   shuffled the same 1024 pages in a fixed random order: a page comes
 *            back from anywhere, as reserve pages do after their trip
 *            through the lists;
 *   handed   a full page goes to a thread on another CPU, which frees its
 *            objects and hands the page back (lock-free rings, 1024
 *            pages, ascending at first), as the reclaim thread does at T=1.
 *
 * Prints p50/p99/p99.9 and, per million calls, the calls over 100 ns by
 * their place in the page: the take (first slot), the submit (last slot),
 * the call after the first store into a cache line (slot 1 mod 8), and
 * the others.  A p99.9 of rcupool_free() is worth reading against the
 * same figure of this program in the same run (bench/RESULTS.md).
 * Nothing is asserted.
 */
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_util.h"

enum kind { K_HOT, K_COLD, K_SHUFFLED, K_HANDED, K_COUNT };

static const char *const kind_name[K_COUNT] = {"hot", "cold", "shuffled",
					       "handed"};

enum {
	PAGE_BYTES = 4096,
	SLOTS = PAGE_BYTES / sizeof(void *), /* as a reserve page: 512 */
	NPAGES = 1024,			     /* 4 MiB of pages */
	HOT_PAGES = 64,			     /* 256 KiB */
	LINE_SLOTS = 64 / sizeof(void *),
};

enum place { P_TAKE, P_SUBMIT, P_LINE_NEXT, P_OTHER, P_COUNT };

static const char *const place_name[P_COUNT] = {"take", "submit", "line_next",
						"other"};

/* A single-producer single-consumer ring of page numbers. */
struct ring {
	_Atomic uint64_t head, tail;
	uint32_t slot[NPAGES];
};

static void **pages[NPAGES];
static uint32_t shuffled[NPAGES]; /* the order of K_SHUFFLED */
static struct ring full, empty;
static _Atomic bool stop;
static int cpu_caller = -1, cpu_freer = -1;

static void ring_push(struct ring *r, uint32_t page)
{
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);

	r->slot[t % NPAGES] = page;
	atomic_store_explicit(&r->tail, t + 1, memory_order_release);
}

static bool ring_pop(struct ring *r, uint32_t *page)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);

	if (h == atomic_load_explicit(&r->tail, memory_order_acquire))
		return false;
	*page = r->slot[h % NPAGES];
	atomic_store_explicit(&r->head, h + 1, memory_order_release);
	return true;
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void free_page_objs(void **page)
{
	for (unsigned i = 0; i < SLOTS; i++)
		free(page[i]);
}

static void *freer_main(void *unused)
{
	uint32_t page;

	(void)unused;
	pin(cpu_freer);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		if (!ring_pop(&full, &page))
			continue;
		free_page_objs(pages[page]);
		ring_push(&empty, page);
	}
	return NULL;
}

struct result {
	bool ran;
	uint32_t p50, p99, p999;
	double over_per_m[P_COUNT]; /* calls over 100 ns per million */
};

static enum place place_of(unsigned slot)
{
	if (slot == 0)
		return P_TAKE;
	if (slot == SLOTS - 1)
		return P_SUBMIT;
	if (slot % LINE_SLOTS == 1)
		return P_LINE_NEXT;
	return P_OTHER;
}

static uint32_t take_page(enum kind k, uint32_t *next_local)
{
	uint32_t page;

	if (k != K_HANDED) {
		page = *next_local;
		*next_local = (page + 1) % (k == K_HOT ? HOT_PAGES : NPAGES);
		return k == K_SHUFFLED ? shuffled[page] : page;
	}
	while (!ring_pop(&empty, &page))
		;
	return page;
}

static struct result run(enum kind k, size_t calls)
{
	struct result r = {.ran = true};
	size_t warm = calls / 10, over[P_COUNT] = {0};
	uint32_t *lat = malloc(calls * sizeof(*lat));
	uint32_t next_local = 0, page = 0, pending = UINT32_MAX;
	unsigned slot = 0;
	bool have = false;
	pthread_t freer;
	struct timespec a, b;

	if (!lat)
		abort();
	malloc_trim(0);
	memset(&full, 0, sizeof(full));
	memset(&empty, 0, sizeof(empty));
	for (uint32_t i = 0; i < NPAGES; i++)
		ring_push(&empty, i);
	atomic_store(&stop, false);
	if (k == K_HANDED && pthread_create(&freer, NULL, freer_main, NULL))
		abort();
	pin(cpu_caller);
	for (size_t i = 0; i < warm + calls; i++) {
		void *o = malloc(64);
		unsigned s;

		if (!o)
			abort();
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (!have) {
			page = take_page(k, &next_local);
			have = true;
		}
		s = slot;
		pages[page][slot++] = o;
		if (slot == SLOTS) {
			if (k == K_HANDED)
				ring_push(&full, page);
			else
				pending = page;
			have = false;
			slot = 0;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (pending != UINT32_MAX) {
			free_page_objs(pages[pending]);
			pending = UINT32_MAX;
		}
		if (i >= warm) {
			int64_t d = (b.tv_sec - a.tv_sec) * 1000000000ll +
				    (b.tv_nsec - a.tv_nsec);

			lat[i - warm] =
				d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
			over[place_of(s)] += d > 100;
		}
	}
	if (k == K_HANDED) {
		uint32_t left;

		atomic_store(&stop, true);
		pthread_join(freer, NULL);
		/* What the freer had not reached yet. */
		while (ring_pop(&full, &left))
			free_page_objs(pages[left]);
	}
	if (have)
		for (unsigned i = 0; i < slot; i++)
			free(pages[page][i]);
	qsort(lat, calls, sizeof(*lat), bench_cmp_u32);
	r.p50 = bench_pct(lat, calls, 0.5);
	r.p99 = bench_pct(lat, calls, 0.99);
	r.p999 = bench_pct(lat, calls, 0.999);
	for (int p = 0; p < P_COUNT; p++)
		r.over_per_m[p] = (double)over[p] * 1e6 / (double)calls;
	free(lat);
	return r;
}

/*
 * The pages, as the reserve has them: one shared memfd mapping, written
 * once (no fault is timed); and a fixed random order of them.
 */
static int map_pages(void)
{
	size_t len = (size_t)NPAGES * PAGE_BYTES;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	char *m;
	int fd = memfd_create("bench_pagestore", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)len) < 0) {
		close(fd);
		return -1;
	}
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		 fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -1;
	/* Written once: a shared mapping is populated for reading only. */
	memset(m, 0, len);
	for (uint32_t i = 0; i < NPAGES; i++) {
		pages[i] = (void **)(m + (size_t)i * PAGE_BYTES);
		shuffled[i] = i;
	}
	for (uint32_t i = NPAGES - 1; i > 0; i--) {
		uint32_t j, t;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		j = (uint32_t)(x % (i + 1));
		t = shuffled[i];
		shuffled[i] = shuffled[j];
		shuffled[j] = t;
	}
	return 0;
}

/* The caller on the first CPU we may run on, the freer on the second. */
static void pick_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		if (cpu_caller < 0) {
			cpu_caller = c;
		} else {
			cpu_freer = c;
			break;
		}
	}
}

int main(int argc, char **argv)
{
	struct result res[K_COUNT] = {0};
	size_t calls = 1000000;
	bool json = false;
	int c;

	static const struct option opts[] = {
		{"calls", required_argument, NULL, 'n'},
		{"quick", no_argument, NULL, 'q'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{}};
	while ((c = getopt_long(argc, argv, "n:qjh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			calls = strtoul(optarg, NULL, 10);
			break;
		case 'q':
			calls = 200000;
			break;
		case 'j':
			json = true;
			break;
		default:
			printf("usage: %s [--calls N] [--quick] [--json]\n",
			       argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	if (calls < 10 * SLOTS) {
		fprintf(stderr,
			"bench_pagestore: --calls must be at least %d\n",
			10 * SLOTS);
		return 2;
	}
	if (map_pages() < 0) {
		perror("bench_pagestore: memfd");
		return 1;
	}
	pick_cpus();
	res[K_HOT] = run(K_HOT, calls);
	res[K_COLD] = run(K_COLD, calls);
	res[K_SHUFFLED] = run(K_SHUFFLED, calls);
	/* One CPU: no other CPU to hand pages to. */
	if (cpu_freer >= 0)
		res[K_HANDED] = run(K_HANDED, calls);
	if (json) {
		printf("{\"benchmark\":\"pagestore\",\"calls\":%zu,"
		       "\"slots\":%d,\"results\":[",
		       calls, SLOTS);
		for (int k = 0, first = 1; k < K_COUNT; k++) {
			if (!res[k].ran)
				continue;
			printf("%s{\"kind\":\"%s\",\"p50_ns\":%u,\"p99_ns\":%u,"
			       "\"p999_ns\":%u,\"over_100ns_per_million\":{",
			       first ? "" : ",", kind_name[k], res[k].p50,
			       res[k].p99, res[k].p999);
			for (int p = 0; p < P_COUNT; p++)
				printf("%s\"%s\":%.0f", p ? "," : "",
				       place_name[p], res[k].over_per_m[p]);
			printf("}}");
			first = 0;
		}
		printf("]}\n");
	} else {
		printf("a pointer stored into a 4 KiB page per call (%d a "
		       "page), %zu calls after %zu warm-up (ns; clock pair "
		       "not subtracted)\n",
		       SLOTS, calls, calls / 10);
		printf("  %-8s %6s %6s %6s   calls over 100 ns per million: "
		       "%s %s %s %s\n",
		       "", "p50", "p99", "p99.9", place_name[0], place_name[1],
		       place_name[2], place_name[3]);
		for (int k = 0; k < K_COUNT; k++) {
			if (!res[k].ran) {
				printf("  %-8s (one CPU: not run)\n",
				       kind_name[k]);
				continue;
			}
			printf("  %-8s %6u %6u %6u   %6.0f %6.0f %9.0f %5.0f\n",
			       kind_name[k], res[k].p50, res[k].p99,
			       res[k].p999, res[k].over_per_m[P_TAKE],
			       res[k].over_per_m[P_SUBMIT],
			       res[k].over_per_m[P_LINE_NEXT],
			       res[k].over_per_m[P_OTHER]);
		}
	}
	munmap(pages[0], (size_t)NPAGES * PAGE_BYTES);
	return 0;
}
