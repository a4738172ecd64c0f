// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Why the reclaim engine lets one thread at a time free a filler's pages
 * (docs/DECISIONS.md, "one freer per filler"): the cost of free() when two
 * threads free at once, by whose objects they free.  Two threads each
 * allocate N objects (so each thread's objects sit in its own malloc
 * arena), then, side by side in one run:
 *
 *   own       each frees its own objects (two arenas, one freer each);
 *   other     each frees the other's objects (still one freer an arena);
 *   same      both free the same arena's objects at once, page by page
 *             (512 objects) in turn, then the other arena's;
 *   one       one thread frees all of them, the other idles.
 *
 * Prints ns per free() in the freeing threads and wall ns per object (2N
 * objects).  Best of several rounds.  Nothing is asserted.
 */
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"

enum kind { K_OWN, K_OTHER, K_SAME, K_ONE, K_COUNT };

static const char *const kind_name[K_COUNT] = {"own", "other", "same", "one"};

enum { PAGE_OBJS = 512 };

static size_t n_objects = 1000000, obj_size = 64;
static int rounds = 3;
static void **objs[2];
static pthread_barrier_t line;
static enum kind kind;
static uint64_t spent[2];

static void free_range(void **v, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		free(v[i]);
}

static void *freer(void *arg)
{
	int me = (int)(intptr_t)arg;
	size_t pages = n_objects / PAGE_OBJS;
	uint64_t t0;

	for (size_t i = 0; i < n_objects; i++)
		if (!(objs[me][i] = malloc(obj_size)))
			abort();
	pthread_barrier_wait(&line);
	t0 = bench_now_ns();
	switch (kind) {
	case K_OWN:
		free_range(objs[me], 0, n_objects);
		break;
	case K_OTHER:
		free_range(objs[!me], 0, n_objects);
		break;
	case K_SAME:
		for (int a = 0; a < 2; a++)
			for (size_t p = (size_t)me; p < pages; p += 2)
				free_range(objs[a], p * PAGE_OBJS,
					   (p + 1) * PAGE_OBJS);
		for (int a = 0; me == 0 && a < 2; a++)
			free_range(objs[a], pages * PAGE_OBJS, n_objects);
		break;
	case K_ONE:
		for (int a = 0; me == 0 && a < 2; a++)
			free_range(objs[a], 0, n_objects);
		break;
	default:
		break;
	}
	spent[me] = bench_now_ns() - t0;
	pthread_barrier_wait(&line);
	return NULL;
}

struct result {
	double wall; /* ns per object, 2N objects */
	double per_free; /* ns per free() in a thread that freed */
};

static struct result run_once(enum kind k)
{
	pthread_t t[2];
	uint64_t wall;
	double frees0;

	kind = k;
	/*
	 * From the same heap each time, as bench_e2e does: without it the
	 * objects of a later run come from the scattered fastbins of the
	 * runs before, and cost cache misses (measured: 31 against 8 ns).
	 */
	malloc_trim(0);
	pthread_barrier_init(&line, NULL, 2);
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, freer, (void *)(intptr_t)i))
			abort();
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&line);
	wall = spent[0] > spent[1] ? spent[0] : spent[1];
	/* Thread 0 frees 2N objects in "one", N otherwise. */
	frees0 = (double)n_objects * (k == K_ONE ? 2 : 1);
	return (struct result){
		.wall = (double)wall / (2.0 * (double)n_objects),
		.per_free = (double)spent[0] / frees0,
	};
}

int main(int argc, char **argv)
{
	struct result best[K_COUNT];
	bool json = false;
	int c;

	static const struct option opts[] = {
		{"objects", required_argument, NULL, 'n'},
		{"rounds", required_argument, NULL, 'r'},
		{"quick", no_argument, NULL, 'q'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{}};
	while ((c = getopt_long(argc, argv, "n:r:qjh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			n_objects = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'q':
			n_objects = 200000;
			rounds = 1;
			break;
		case 'j':
			json = true;
			break;
		default:
			printf("usage: %s [--objects N] [--rounds R] [--quick] "
			       "[--json]\n",
			       argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	if (n_objects < PAGE_OBJS || rounds < 1) {
		fprintf(stderr, "bench_arena: --objects must be at least %d "
				"and --rounds positive\n",
			PAGE_OBJS);
		return 2;
	}
	for (int i = 0; i < 2; i++)
		if (!(objs[i] = malloc(n_objects * sizeof(void *))))
			abort();
	for (int k = 0; k < K_COUNT; k++) {
		best[k] = (struct result){0};
		for (int r = 0; r < rounds; r++) {
			struct result x = run_once((enum kind)k);

			if (!r || x.wall < best[k].wall)
				best[k] = x;
		}
	}
	if (json) {
		printf("{\"benchmark\":\"arena\",\"objects_per_thread\":%zu,"
		       "\"object_size\":%zu,\"rounds\":%d,\"results\":[",
		       n_objects, obj_size, rounds);
		for (int k = 0; k < K_COUNT; k++)
			printf("%s{\"kind\":\"%s\",\"wall_ns_per_object\":%.2f,"
			       "\"ns_per_free\":%.2f}",
			       k ? "," : "", kind_name[k], best[k].wall,
			       best[k].per_free);
		printf("]}\n");
	} else {
		printf("free() from two threads, %zu objects of %zu bytes "
		       "allocated by each (best of %d)\n",
		       n_objects, obj_size, rounds);
		printf("  %-44s %12s %14s\n", "", "ns/free()", "wall ns/obj");
		printf("  %-44s %12.1f %14.1f\n",
		       "own: each frees its own (one freer an arena)",
		       best[K_OWN].per_free, best[K_OWN].wall);
		printf("  %-44s %12.1f %14.1f\n",
		       "other: each frees the other's", best[K_OTHER].per_free,
		       best[K_OTHER].wall);
		printf("  %-44s %12.1f %14.1f\n",
		       "same: both free one arena at once", best[K_SAME].per_free,
		       best[K_SAME].wall);
		printf("  %-44s %12.1f %14.1f\n", "one: a single thread frees all",
		       best[K_ONE].per_free, best[K_ONE].wall);
	}
	free(objs[0]);
	free(objs[1]);
	return 0;
}
