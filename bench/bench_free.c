// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * ns per object, one thread, N 64-byte objects (default 1M; argv[1]):
 * free(), call_rcu() per object (+ rcu_barrier), rcupool_free() in private
 * mode (+ rcupool_barrier).  The objects are allocated before each timed
 * loop; the deferred kinds include waiting until every object is freed.
 */
#define URCU_API_MAP 1
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <urcu/urcu-memb.h>

#include "rcupool.h"

struct obj {
	struct rcu_head head;
	char payload[64 - sizeof(struct rcu_head)];
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void obj_cb(struct rcu_head *h)
{
	free(caa_container_of(h, struct obj, head));
}

static void alloc_all(struct obj **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		v[i] = malloc(sizeof(struct obj));
		if (!v[i]) {
			perror("malloc");
			exit(1);
		}
		v[i]->payload[0] = (char)i;
	}
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 0) : 1000000;
	struct obj **v = malloc(n * sizeof(*v));
	struct rcupool_options o = {.size = sizeof(o),
				    .mode = RCUPOOL_MODE_PRIVATE};
	struct rcupool_stats st = {.size = sizeof(st)};
	struct rcupool *pool;
	double t0, t_free, t_call, t_pool, t_pool_loop;
	int r;

	if (!v || !n)
		return 1;
	rcu_register_thread();

	alloc_all(v, n);
	t0 = now();
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	t_free = (now() - t0) / n;

	alloc_all(v, n);
	t0 = now();
	for (size_t i = 0; i < n; i++)
		call_rcu(&v[i]->head, obj_cb);
	rcu_barrier();
	t_call = (now() - t0) / n;

	/* Enough pages that the reserve is not the limit: 1M / 512 + slack. */
	o.private_pages = n / 512 + 512;
	r = rcupool_open(&o, &pool);
	if (r < 0) {
		fprintf(stderr, "rcupool_open: %d\n", r);
		return 1;
	}
	alloc_all(v, n);
	t0 = now();
	for (size_t i = 0; i < n; i++)
		rcupool_free(pool, v[i]);
	t_pool_loop = (now() - t0) / n;
	rcupool_barrier(pool);
	t_pool = (now() - t0) / n;
	rcupool_stats(pool, &st);
	rcupool_close(pool);

	printf("%zu objects of %zu bytes, one thread\n", n, sizeof(struct obj));
	printf("%-40s %8s %9s\n", "", "ns/obj", "vs free()");
	printf("%-40s %8.1f %9.2f\n", "free()", t_free, 1.0);
	printf("%-40s %8.1f %9.2f\n", "call_rcu() per object + rcu_barrier",
	       t_call, t_call / t_free);
	printf("%-40s %8.1f %9.2f\n", "rcupool_free() + rcupool_barrier",
	       t_pool, t_pool / t_free);
	printf("%-40s %8.1f %9.2f\n", "  of which the rcupool_free() loop",
	       t_pool_loop, t_pool_loop / t_free);
	printf("call_rcu / rcupool_free: %.1fx\n", t_call / t_pool);
	printf("pages: %llu submitted, %llu from the reserve, fallbacks "
	       "overflow %llu sync %llu\n",
	       (unsigned long long)st.pages_submitted,
	       (unsigned long long)st.pages_got,
	       (unsigned long long)st.fallback_overflow,
	       (unsigned long long)st.fallback_sync);
	rcu_unregister_thread();
	free(v);
	return 0;
}
