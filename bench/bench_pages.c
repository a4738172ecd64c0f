// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Page operations: a pop+push pair on the local CPU's list of a shared
 * segment against malloc(4096)+free(), side by side in one run, on one
 * thread and on one thread per CPU.  Best of several rounds; prints ns per
 * pair and the ratio (how many times faster the reserve is).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "seg.h"
#include "stack.h"

static struct seg seg;
static unsigned long iterations = 5000000;
static int rounds = 5;
static pthread_barrier_t start_line;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static double run_reserve(int cpu)
{
	struct seg_stack *st = &seg.cpu[cpu].free;
	double t0 = now_ns();

	for (unsigned long i = 0; i < iterations; i++) {
		uint32_t page = 0;

		if (stack_pop(&seg, st, &page) < 0)
			abort();
		/* What a client does with it: one store into the page. */
		*(volatile char *)seg_page(&seg, page) = 1;
		stack_push(&seg, st, page);
	}
	return (now_ns() - t0) / iterations;
}

static double run_malloc(int cpu)
{
	double t0 = now_ns();

	for (unsigned long i = 0; i < iterations; i++) {
		char *p = malloc(4096);

		if (!p)
			abort();
		*(volatile char *)p = 1;
		free(p);
	}
	return (now_ns() - t0) / iterations;
}

struct job {
	int cpu;
	bool reserve;
	double best;
};

static void *job_run(void *arg)
{
	struct job *j = arg;

	pin(j->cpu);
	j->best = 1e30;
	for (int r = 0; r < rounds; r++) {
		pthread_barrier_wait(&start_line);
		double ns = j->reserve ? run_reserve(j->cpu) : run_malloc(j->cpu);

		if (ns < j->best)
			j->best = ns;
	}
	return NULL;
}

/* nthreads threads, one per CPU, all timing the same thing at once. */
static double measure(int nthreads, bool reserve)
{
	pthread_t t[nthreads];
	struct job j[nthreads];
	double worst = 0;

	pthread_barrier_init(&start_line, NULL, nthreads);
	for (int i = 0; i < nthreads; i++) {
		j[i] = (struct job){.cpu = i, .reserve = reserve};
		pthread_create(&t[i], NULL, job_run, &j[i]);
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		if (j[i].best > worst)
			worst = j[i].best;
	}
	pthread_barrier_destroy(&start_line);
	return worst;
}

int main(int argc, char **argv)
{
	struct seg_params p = {.npages = 4096, .nslots = 1, .name = "bench"};
	struct seg_error err;
	bool json = false;
	int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN), c;

	static const struct option opts[] = {
		{"iterations", required_argument, NULL, 'n'},
		{"rounds", required_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{}};
	while ((c = getopt_long(argc, argv, "n:r:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			iterations = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'j':
			json = true;
			break;
		default:
			printf("usage: %s [--iterations N] [--rounds N] [--json]\n",
			       argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	if (!iterations || rounds < 1) {
		fprintf(stderr, "bench_pages: --iterations and --rounds must be positive\n");
		return 2;
	}
	if (seg_create(&p, &seg, &err) < 0) {
		fprintf(stderr, "bench_pages: %s\n", err.msg);
		return 1;
	}
	if (ncpu > (int)seg.ncpus)
		ncpu = (int)seg.ncpus;
	for (int i = 0; i < ncpu; i++)
		stack_move(&seg, &seg.global->free, &seg.cpu[i].free, 64);

	double r1 = measure(1, true), m1 = measure(1, false);
	double rn = measure(ncpu, true), mn = measure(ncpu, false);

	if (json) {
		printf("{\"benchmark\":\"pages\",\"iterations\":%lu,\"rounds\":%d,"
		       "\"threads\":%d,\"single\":{\"reserve_ns\":%.2f,"
		       "\"malloc_ns\":%.2f,\"ratio\":%.2f},\"per_cpu\":{"
		       "\"reserve_ns\":%.2f,\"malloc_ns\":%.2f,\"ratio\":%.2f}}\n",
		       iterations, rounds, ncpu, r1, m1, m1 / r1, rn, mn, mn / rn);
	} else {
		printf("page operations (ns per pair, best of %d x %lu)\n", rounds,
		       iterations);
		printf("  %-22s %18s %22s %8s\n", "threads", "reserve pop+push",
		       "malloc(4096)+free", "ratio");
		printf("  %-22s %18.2f %22.2f %7.2fx\n", "1", r1, m1, m1 / r1);
		printf("  %-22d %18.2f %22.2f %7.2fx\n", ncpu, rn, mn, mn / rn);
	}
	seg_unmap(&seg);
	return 0;
}
