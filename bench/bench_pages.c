// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Page operations: a pop+push pair on the local CPU's list of a client's
 * private segment over lent chunks (rseq, pcpu.h; chunks from the
 * in-process lender, mapped as a pool maps them) and on its global list
 * (CAS, stack.h), against
 * malloc(4096)+free(), side by side in one run, on one thread and on one
 * thread per CPU.  Best of several rounds; prints ns per pair and the
 * ratio malloc/list (how many times faster the reserve's CPU list is).
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

#include "cpu.h"
#include "lend.h"
#include "seg.h"
#include "pcpu.h"
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

/* The local CPU's list: an rseq sequence each way, no atomic instruction. */
static double run_reserve(int cpu)
{
	double t0 = now_ns();
	int where;

	for (unsigned long i = 0; i < iterations; i++) {
		uint32_t page = 0;

		if (pcpu_pop(&seg, PCPU_FREE, &page, &where) < 0)
			abort();
		/* What a client does with it: one store into the page. */
		*(volatile char *)seg_page(&seg, page) = 1;
		pcpu_push(&seg, PCPU_FREE, page);
	}
	return (now_ns() - t0) / iterations;
}

/* The global pool: a CAS each way, what every list would cost without rseq. */
static double run_global(int cpu)
{
	struct seg_stack *st = &seg.global->free;
	double t0 = now_ns();

	for (unsigned long i = 0; i < iterations; i++) {
		uint32_t page = 0;

		if (stack_pop(&seg, st, &page) < 0)
			abort();
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

enum kind { KIND_PCPU, KIND_GLOBAL, KIND_MALLOC };

static double (*const run[])(int) = {
	[KIND_PCPU] = run_reserve,
	[KIND_GLOBAL] = run_global,
	[KIND_MALLOC] = run_malloc,
};

struct job {
	int cpu;
	enum kind kind;
	double best;
};

static void *job_run(void *arg)
{
	struct job *j = arg;

	pin(j->cpu);
	j->best = 1e30;
	for (int r = 0; r < rounds; r++) {
		pthread_barrier_wait(&start_line);
		double ns = run[j->kind](j->cpu);

		if (ns < j->best)
			j->best = ns;
	}
	return NULL;
}

/* nthreads threads, one per CPU, all timing the same thing at once. */
static double measure(int nthreads, enum kind kind)
{
	pthread_t t[nthreads];
	struct job j[nthreads];
	double worst = 0;

	pthread_barrier_init(&start_line, NULL, nthreads);
	for (int i = 0; i < nthreads; i++) {
		j[i] = (struct job){.cpu = i, .kind = kind};
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

static struct lender *lender;

/* 4096 pages lent in chunks of 16 and mapped into a private segment. */
static int private_seg(struct seg_error *err)
{
	struct lend_private_params pp = {.pages = 4096, .chunk_pages = 16};
	struct lend_chunk c[LEND_GET_MAX];
	uint32_t slot = 0, got;
	int ncpus = cpu_possible_count(), r;

	if (ncpus < 0 || (r = lend_private_open(&pp, &lender)) < 0) {
		snprintf(err->msg, sizeof(err->msg), "no private lender");
		return -1;
	}
	r = seg_private_create(&seg, lender->page_size, (uint32_t)ncpus, 16,
			       4096 / 16, err);
	if (r < 0)
		return r;
	while (slot < 4096 / 16) {
		if (lender->ops->get(lender, -1, LEND_GET_MAX, c, &got) < 0 ||
		    !got) {
			snprintf(err->msg, sizeof(err->msg), "lender refused");
			return -1;
		}
		for (uint32_t i = 0; i < got; i++, slot++) {
			if (seg_private_map_chunk(&seg, slot, c[i].fd) < 0) {
				snprintf(err->msg, sizeof(err->msg),
					 "cannot map a chunk");
				return -1;
			}
			close(c[i].fd);
			stack_push_chain(&seg, &seg.global->free, slot * 16,
					 slot * 16 + 15);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
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
	if (private_seg(&err) < 0) {
		fprintf(stderr, "bench_pages: %s\n", err.msg);
		return 1;
	}
	if (ncpu > (int)seg.ncpus)
		ncpu = (int)seg.ncpus;
	for (int i = 0; i < ncpu; i++)
		stack_move(&seg, &seg.global->free, &seg.cpu[i].free, 64);

	if (!pcpu_available()) {
		fprintf(stderr, "bench_pages: this thread has no rseq; per-CPU lists unavailable\n");
		return 1;
	}
	double r[2][3];
	int threads[2] = {1, ncpu};

	for (int t = 0; t < 2; t++)
		for (int k = 0; k < 3; k++)
			r[t][k] = measure(threads[t], (enum kind)k);

	if (json) {
		printf("{\"benchmark\":\"pages\",\"iterations\":%lu,\"rounds\":%d,"
		       "\"results\":[", iterations, rounds);
		for (int t = 0; t < 2; t++)
			printf("%s{\"threads\":%d,\"cpu_list_ns\":%.2f,"
			       "\"global_pool_ns\":%.2f,\"malloc_ns\":%.2f,"
			       "\"ratio_vs_malloc\":%.2f}",
			       t ? "," : "", threads[t], r[t][0], r[t][1], r[t][2],
			       r[t][2] / r[t][0]);
		printf("]}\n");
	} else {
		printf("page operations, ns per get+put pair (best of %d x %lu per thread)\n",
		       rounds, iterations);
		printf("  %-8s %16s %18s %20s %14s\n", "threads", "CPU list (rseq)",
		       "global pool (CAS)", "malloc(4096)+free", "malloc/list");
		for (int t = 0; t < 2; t++)
			printf("  %-8d %16.2f %18.2f %20.2f %13.2fx\n", threads[t],
			       r[t][0], r[t][1], r[t][2], r[t][2] / r[t][0]);
	}
	seg_private_free(&seg);
	lender->ops->close(lender);
	return 0;
}
