// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Contention across threads and processes on one segment: workers pop and
 * push pages on their CPU's lists (rseq) and the global pool (CAS), hopping
 * CPUs now and then, while a mover bulk-moves pages between the global
 * pool and the CPU it runs on, both ways.  Two
 * witnesses catch a page handed out twice while it happens (owner[] not
 * free at pop; a worker's token overwritten in a page it holds), and a
 * census at the end proves every page is in exactly one place.
 *
 * The threads-only variant is the one ThreadSanitizer runs.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "census.h"
#include "pcpu.h"
#include "seg.h"
#include "stack.h"

#define NPAGES	 1024
#define NSLOTS	 8
#define MAX_HELD 32

struct shared {
	_Atomic int stop;
	_Atomic uint64_t pops, pushes, empty, moves, moved, hops, aborts;
	_Atomic uint64_t dup_owner, dup_token, errors;
};

struct worker {
	struct seg *seg;
	struct shared *sh;
	unsigned int id;
};

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Now and then, move to a random CPU or let the scheduler choose. */
static void maybe_hop(struct shared *sh, uint64_t *x)
{
	cpu_set_t set;
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (rnd(x) % 2048)
		return;
	CPU_ZERO(&set);
	if (rnd(x) & 1) {
		CPU_SET(rnd(x) % n, &set);
	} else {
		for (long c = 0; c < n; c++)
			CPU_SET(c, &set);
	}
	sched_setaffinity(0, sizeof(set), &set);
	atomic_fetch_add_explicit(&sh->hops, 1, memory_order_relaxed);
}

/* A page from this CPU's list, else the global pool. */
static int get_page(struct worker *w, uint32_t *page, uint64_t *x)
{
	int cpu, r = -ENOENT;

	if (rnd(x) % 3)
		r = pcpu_pop(w->seg, PCPU_FREE, page, &cpu);
	if (r >= 0)
		return 0;
	if (r != -ENOENT && r != -EOPNOTSUPP)
		return r;
	return stack_pop(w->seg, &w->seg->global->free, page);
}

static void give_back(struct worker *w, uint32_t page, uint64_t token,
		      uint64_t *x)
{
	struct seg *s = w->seg;
	uint64_t *words = seg_page(s, page);

	if (words[0] != token || words[s->page_size / 8 - 1] != token)
		atomic_fetch_add(&w->sh->dup_token, 1);
	atomic_store_explicit(&s->owner[page], SEG_OWNER_FREE,
			      memory_order_relaxed);
	int r = -EOPNOTSUPP;

	if (rnd(x) & 1)
		r = pcpu_push(s, PCPU_FREE, page);
	if (r == -EOPNOTSUPP)
		r = stack_push(s, &s->global->free, page);
	if (r < 0)
		atomic_fetch_add(&w->sh->errors, 1);
	else
		atomic_fetch_add_explicit(&w->sh->pushes, 1,
					  memory_order_relaxed);
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct seg *s = w->seg;
	uint32_t held[MAX_HELD];
	uint64_t token[MAX_HELD], seq = 0, x = 0x9e3779b97f4a7c15ull * (w->id + 1);
	uint32_t owner = seg_owner_of_slot(w->id % NSLOTS);
	unsigned int n = 0;

	while (!atomic_load_explicit(&w->sh->stop, memory_order_relaxed)) {
		if (n == 0 || (n < MAX_HELD && (rnd(&x) & 1))) {
			uint32_t page = 0, was;
			int r;

			maybe_hop(w->sh, &x);
			r = get_page(w, &page, &x);

			if (r == -ENOENT) {
				atomic_fetch_add_explicit(&w->sh->empty, 1,
							  memory_order_relaxed);
				continue;
			}
			if (r < 0) {
				atomic_fetch_add(&w->sh->errors, 1);
				continue;
			}
			was = atomic_exchange_explicit(&s->owner[page], owner,
						       memory_order_relaxed);
			if (was != SEG_OWNER_FREE)
				atomic_fetch_add(&w->sh->dup_owner, 1);
			token[n] = ((uint64_t)w->id << 40) | ++seq;
			uint64_t *words = seg_page(s, page);

			words[0] = token[n];
			words[s->page_size / 8 - 1] = token[n];
			held[n++] = page;
			atomic_fetch_add_explicit(&w->sh->pops, 1,
						  memory_order_relaxed);
		} else {
			unsigned int i = rnd(&x) % n;

			give_back(w, held[i], token[i], &x);
			held[i] = held[--n];
			token[i] = token[n];
		}
	}
	while (n) {
		n--;
		give_back(w, held[n], token[n], &x);
	}
	atomic_fetch_add(&w->sh->aborts, pcpu_aborts);
	return NULL;
}

/* What the balancer does: pool -> this CPU's list, and back. */
static void *mover_run(void *arg)
{
	struct worker *w = arg;
	struct seg *s = w->seg;
	struct seg_stack *global = &s->global->free;
	uint64_t x = 0xdeadbeefcafef00dull;

	while (!atomic_load_explicit(&w->sh->stop, memory_order_relaxed)) {
		uint32_t first = 0, last = 0, k = rnd(&x) % 65;
		int cpu, n, r = 0;

		maybe_hop(w->sh, &x);
		if (rnd(&x) & 1) {
			n = stack_pop_chain(s, global, k, &first, &last);
			if (n > 0)
				r = pcpu_push_chain(s, PCPU_FREE, first, last);
			if (r == -EOPNOTSUPP) {
				stack_push_chain(s, global, first, last);
				r = 0;
			}
		} else {
			n = pcpu_pop_chain(s, PCPU_FREE, k, &first, &last, &cpu);
			if (n == -EOPNOTSUPP)
				n = 0;
			if (n > 0)
				stack_push_chain(s, global, first, last);
		}
		if (n < 0 || r < 0) {
			atomic_fetch_add(&w->sh->errors, 1);
			continue;
		}
		atomic_fetch_add_explicit(&w->sh->moves, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->sh->moved, (uint64_t)n,
					  memory_order_relaxed);
	}
	atomic_fetch_add(&w->sh->aborts, pcpu_aborts);
	return NULL;
}

static unsigned int stress_seconds(void)
{
	const char *e = getenv("RCUPOOL_STRESS_SECONDS");

	return e && atoi(e) > 0 ? (unsigned int)atoi(e) : 2;
}

static struct shared *shared_new(void)
{
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	assert_true(sh != MAP_FAILED);
	memset(sh, 0, sizeof(*sh));
	return sh;
}

static void create_seg(struct seg *s)
{
	struct seg_params p = {.npages = NPAGES, .nslots = NSLOTS,
			       .name = "stress"};
	struct seg_error err;

	assert_int_equal(seg_create(&p, s, &err), 0);
}

static void check_outcome(struct seg *s, struct shared *sh)
{
	struct census c;

	print_message("# pops %llu pushes %llu empty %llu moves %llu "
		      "(%llu pages), CPU hops %llu, rseq restarts %llu\n",
		      (unsigned long long)sh->pops, (unsigned long long)sh->pushes,
		      (unsigned long long)sh->empty, (unsigned long long)sh->moves,
		      (unsigned long long)sh->moved, (unsigned long long)sh->hops,
		      (unsigned long long)sh->aborts);
	assert_int_equal(atomic_load(&sh->dup_owner), 0);
	assert_int_equal(atomic_load(&sh->dup_token), 0);
	assert_int_equal(atomic_load(&sh->errors), 0);
	assert_int_equal(atomic_load(&s->hdr->bad_index), 0);
	/* It really ran: every worker popped, the mover moved. */
	assert_true(sh->pops > 1000);
	assert_int_equal(sh->pops, sh->pushes);
	assert_true(sh->moves > 100);

	assert_int_equal(census_take(s, &c), 0);
	assert_int_equal(c.free, NPAGES);
	assert_int_equal(c.held, 0);
	assert_int_equal(c.lost, 0);
	assert_int_equal(c.duplicated, 0);
	assert_int_equal(c.bad, 0);
	census_release(&c);
}

static void test_stress_threads(void **state)
{
	enum { NWORKERS = 4 };
	struct seg s;
	struct shared *sh = shared_new();
	struct worker w[NWORKERS + 1];
	pthread_t t[NWORKERS + 1];

	create_seg(&s);
	for (unsigned int i = 0; i <= NWORKERS; i++) {
		w[i] = (struct worker){.seg = &s, .sh = sh, .id = i};
		assert_int_equal(pthread_create(&t[i], NULL,
						i < NWORKERS ? worker_run
							     : mover_run,
						&w[i]),
				 0);
	}
	sleep(stress_seconds());
	atomic_store(&sh->stop, 1);
	for (unsigned int i = 0; i <= NWORKERS; i++)
		pthread_join(t[i], NULL);
	check_outcome(&s, sh);
	seg_unmap(&s);
	munmap(sh, sizeof(*sh));
}

/* A child process: maps the segment itself, at its own address. */
static int child_run(int fd, struct shared *sh, unsigned int first_id,
		     unsigned int nthreads, bool mover)
{
	struct seg s;
	struct seg_error err;
	struct worker w[4];
	pthread_t t[4];

	if (seg_map(fd, &s, &err) < 0) {
		fprintf(stderr, "child: %s\n", err.msg);
		return 1;
	}
	for (unsigned int i = 0; i < nthreads; i++) {
		w[i] = (struct worker){.seg = &s, .sh = sh, .id = first_id + i};
		if (pthread_create(&t[i], NULL, mover ? mover_run : worker_run,
				   &w[i]))
			return 2;
	}
	for (unsigned int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	seg_unmap(&s);
	return 0;
}

static void test_stress_processes(void **state)
{
	enum { NPROC = 2, NTHREADS = 2 };
	struct seg s;
	struct shared *sh;
	pid_t pid[NPROC + 1];
	int status;

#if defined(__SANITIZE_THREAD__)
	skip(); /* ThreadSanitizer cannot see into other processes. */
#endif
	sh = shared_new();
	create_seg(&s);
	for (unsigned int p = 0; p <= NPROC; p++) {
		pid[p] = fork();
		assert_true(pid[p] >= 0);
		if (pid[p] == 0)
			_exit(p < NPROC ? child_run(s.fd, sh, p * NTHREADS,
						    NTHREADS, false)
					: child_run(s.fd, sh, 100, 1, true));
	}
	sleep(stress_seconds());
	atomic_store(&sh->stop, 1);
	for (unsigned int p = 0; p <= NPROC; p++) {
		assert_int_equal(waitpid(pid[p], &status, 0), pid[p]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	check_outcome(&s, sh);
	seg_unmap(&s);
	munmap(sh, sizeof(*sh));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stress_threads),
		cmocka_unit_test(test_stress_processes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
