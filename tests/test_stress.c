// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Contention on a client's private lists over lent chunks (seg.h): chunks
 * from the in-process lender (lend_private.c) mapped into a private
 * segment, as a pool does; workers pop and push pages on their CPU's lists
 * (rseq) and the global list (CAS), hopping CPUs now and then, while a
 * mover bulk-moves pages between the global list and the CPU it runs on,
 * both ways.  Two witnesses catch a page handed out twice while it happens
 * (owner[] not free at pop; a worker's token overwritten in a page it
 * holds), and a census at the end proves every page lent is in exactly one
 * place (lists + held == lent) and the empty slots hold nothing.
 *
 * Lists are private now, so across processes the stress is several
 * processes at once, each with its own segment and lender and its threads
 * inside (the rseq lists of one CPU are then used by several processes'
 * threads in turn, each on its own lists).  The threads-only variant is
 * the one ThreadSanitizer runs.
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
#include "cpu.h"
#include "lend.h"
#include "privseg.h"
#include "pcpu.h"
#include "seg.h"
#include "stack.h"

#define NPAGES	   1024
#define CHUNK	   16
#define SPARE	   2 /* absent slots: must stay empty */
#define MAX_HELD   32

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
	uint32_t owner = seg_owner_of_slot(0);
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

static int create_seg(struct seg *s, struct lender **lp)
{
	return privseg_create(s, lp, 0, NPAGES, CHUNK, SPARE);
}

static void destroy_seg(struct seg *s, struct lender *l)
{
	privseg_destroy(s, l);
}

/* Every page lent on exactly one list, the spare slots empty: 0, or a step. */
static int census_rc(struct seg *s)
{
	struct census c;
	int r = 0;

	if (census_take(s, &c) < 0)
		return 10;
	if (c.free != NPAGES || c.lent != NPAGES || c.held != 0)
		r = 11;
	else if (c.absent != SPARE * CHUNK)
		r = 12;
	else if (c.lost || c.duplicated || c.bad || c.unstable)
		r = 13;
	if (r)
		fprintf(stderr, "census: free %u lent %u held %u absent %u "
				"lost %u dup %u bad %u unstable %u\n",
			c.free, c.lent, c.held, c.absent, c.lost,
			c.duplicated, c.bad, c.unstable);
	census_release(&c);
	return r;
}

static void check_outcome(struct seg *s, struct shared *sh)
{
	print_message("# pops %llu pushes %llu empty %llu moves %llu "
		      "(%llu pages), CPU hops %llu, rseq restarts %llu\n",
		      (unsigned long long)sh->pops, (unsigned long long)sh->pushes,
		      (unsigned long long)sh->empty, (unsigned long long)sh->moves,
		      (unsigned long long)sh->moved, (unsigned long long)sh->hops,
		      (unsigned long long)sh->aborts);
	assert_int_equal(atomic_load(&sh->dup_owner), 0);
	assert_int_equal(atomic_load(&sh->dup_token), 0);
	assert_int_equal(atomic_load(&sh->errors), 0);
	/* It really ran: every worker popped, the mover moved. */
	assert_true(sh->pops > 1000);
	assert_int_equal(sh->pops, sh->pushes);
	assert_true(sh->moves > 100);
	if (s) {
		assert_int_equal(atomic_load(&s->hdr->bad_index), 0);
		assert_int_equal(census_rc(s), 0);
	}
}

static void test_stress_threads(void **state)
{
	enum { NWORKERS = 4 };
	struct seg s;
	struct lender *l = NULL;
	struct shared *sh = shared_new();
	struct worker w[NWORKERS + 1];
	pthread_t t[NWORKERS + 1];

	assert_int_equal(create_seg(&s, &l), 0);
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
	destroy_seg(&s, l);
	munmap(sh, sizeof(*sh));
}

/* A child process: its own lender and lists, workers and a mover. */
static int child_run(struct shared *sh, unsigned int first_id,
		     unsigned int nthreads)
{
	struct seg s;
	struct lender *l = NULL;
	struct worker w[4];
	pthread_t t[4];
	int r = create_seg(&s, &l);

	if (r) {
		fprintf(stderr, "child: segment step %d\n", r);
		return r;
	}
	for (unsigned int i = 0; i <= nthreads; i++) {
		w[i] = (struct worker){.seg = &s, .sh = sh, .id = first_id + i};
		if (pthread_create(&t[i], NULL,
				   i < nthreads ? worker_run : mover_run,
				   &w[i]))
			return 5;
	}
	for (unsigned int i = 0; i <= nthreads; i++)
		pthread_join(t[i], NULL);
	r = atomic_load(&s.hdr->bad_index) ? 6 : census_rc(&s);
	destroy_seg(&s, l);
	return r;
}

static void test_stress_processes(void **state)
{
	enum { NPROC = 3, NTHREADS = 2 };
	struct shared *sh;
	pid_t pid[NPROC];
	int status;

#if defined(__SANITIZE_THREAD__)
	skip(); /* ThreadSanitizer cannot see into other processes. */
#endif
	sh = shared_new();
	for (unsigned int p = 0; p < NPROC; p++) {
		pid[p] = fork();
		assert_true(pid[p] >= 0);
		if (pid[p] == 0)
			_exit(child_run(sh, p * (NTHREADS + 1), NTHREADS));
	}
	sleep(stress_seconds());
	atomic_store(&sh->stop, 1);
	for (unsigned int p = 0; p < NPROC; p++) {
		assert_int_equal(waitpid(pid[p], &status, 0), pid[p]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	check_outcome(NULL, sh);
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
