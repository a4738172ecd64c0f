/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_PCPU_H
#define RCUPOOL_PCPU_H

/*
 * Per-CPU lists through restartable sequences (rseq).
 *
 * The global pool is a Treiber stack updated with CAS by anyone.  A CPU's
 * lists (free, protect) are instead updated only by code running on that
 * CPU, inside an rseq critical section: plain loads, one plain store to
 * commit, and the kernel restarts the sequence if the thread is preempted,
 * migrated or signalled before the commit.  That serialises every update
 * of a CPU's list, across processes too (they share the CPU), with no
 * lock-prefixed instruction: the userspace form of the kernel's
 * preempt-disabled per-CPU page lists.
 *
 * The rule that makes it safe: nobody updates a CPU's list from another
 * CPU while that CPU can run threads.  Readers (census, counts) may look
 * from anywhere.  A process that cannot use rseq (no registration, e.g.
 * under valgrind, or another architecture) uses the global pool only.
 * The daemon moves pages into and out of a CPU's lists from a thread
 * pinned to that CPU; an offline CPU's lists are drained from elsewhere
 * only after its `online` word is cleared and the CPU is seen offline:
 * every sequence checks `online` before it commits.
 *
 * Every update still bumps the head's tag, so a census or a count can tell
 * a list changed under its walk.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/rseq.h>

#include "seg.h"

enum pcpu_list {
	PCPU_FREE,
	PCPU_PROTECT,
};

/*
 * The operations (static inline: they are the reserve's fast path):
 *
 * bool pcpu_available(void)
 *	Whether this thread can use per-CPU lists (rseq registered).
 * int pcpu_current_cpu(void)
 *	This thread's CPU as rseq sees it, or -EOPNOTSUPP.
 * int pcpu_pop(s, which, &page, &cpu)
 *	Pop one page from the list of the CPU this thread runs on.  Returns
 *	that CPU (>= 0) with *page set; -ENOENT when the list is empty (*cpu
 *	still says which CPU), -ENODEV when the CPU is beyond the segment or
 *	marked offline, -EBADMSG when the list is corrupt (counted),
 *	-EOPNOTSUPP without rseq.
 * int pcpu_push_chain(s, which, first, last), pcpu_push(s, which, page)
 *	Push a private chain first..last (linked through next[]), or one
 *	page, onto the list of the CPU this thread runs on.  That CPU (>= 0),
 *	-ENODEV, -ERANGE for an index outside the segment, or -EOPNOTSUPP.
 */

/* Sequences this thread had restarted (preempted, migrated, signalled). */
extern __thread uint64_t pcpu_aborts;

#include "stack.h"

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
/* ThreadSanitizer cannot see into the asm: tell it a list hands pages over. */
#define pcpu_tsan_release(p) __tsan_release(p)
#define pcpu_tsan_acquire(p) __tsan_acquire(p)
#else
#define pcpu_tsan_release(p) ((void)(p))
#define pcpu_tsan_acquire(p) ((void)(p))
#endif

#if defined(__x86_64__)

static inline struct rseq *pcpu_rseq_area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() +
			       __rseq_offset);
}

static inline bool pcpu_available(void)
{
	return __rseq_size > 0 && (int32_t)pcpu_rseq_area()->cpu_id >= 0;
}

static inline int pcpu_current_cpu(void)
{
	int32_t cpu = (int32_t)__atomic_load_n(&pcpu_rseq_area()->cpu_id,
					       __ATOMIC_RELAXED);

	return __rseq_size > 0 && cpu >= 0 ? cpu : -EOPNOTSUPP;
}

#define PCPU_STR_(x) #x
#define PCPU_STR(x)  PCPU_STR_(x)

/* Descriptor `label` for the section 1: ... 2: with abort handler 4:. */
#define PCPU_CS_TABLE(label)                                                   \
	".pushsection __rseq_cs, \"aw\"\n\t"                                   \
	".balign 32\n\t" PCPU_STR(label) ":\n\t"                               \
	".long 0x0, 0x0\n\t"                                                   \
	".quad 1f, (2f - 1f), 4f\n\t"                                          \
	".popsection\n\t"

#define PCPU_CS_START(label, rseq_cs)                                          \
	"leaq " PCPU_STR(label) "b(%%rip), %%rax\n\t"                          \
	"movq %%rax, " rseq_cs "\n\t"                                          \
	"1:\n\t"

/* The signature is `ud1 <sig>(%rip),%edi`, so a disassembler reads it. */
#define PCPU_CS_ABORT(c_label)                                                 \
	".pushsection __rseq_failure, \"ax\"\n\t"                              \
	".byte 0x0f, 0xb9, 0x3d\n\t"                                           \
	".long 0x53053053\n\t"                                                 \
	"4:\n\t"                                                               \
	"jmp %l[" c_label "]\n\t"                                              \
	".popsection\n\t"

/*
 * if (cpu_id != cpu) restart; if (!*online) -ENODEV;
 * top = *head; if (!top) -ENOENT; check top, next[top-1] <= npages;
 * *head = {tag + 1, next[top-1]}  <- commit
 */
static inline int pcpu_seq_pop(struct rseq *rs, uint32_t cpu, uint64_t *head,
			   const _Atomic uint32_t *next, uint32_t npages,
			   const _Atomic uint32_t *online, uint32_t *top)
{
	__asm__ goto(PCPU_CS_TABLE(3) PCPU_CS_START(3, "%[rseq_cs]")
		     "cmpl %[cpu], %[current_cpu]\n\t"
		     "jnz 4f\n\t"
		     "cmpl $0, %[online]\n\t"
		     "jz %l[offline]\n\t"
		     "movq %[head], %%rax\n\t"
		     "movl %%eax, %%ecx\n\t"
		     "testl %%ecx, %%ecx\n\t"
		     "jz %l[empty]\n\t"
		     "cmpl %[npages], %%ecx\n\t"
		     "ja %l[corrupt]\n\t"
		     "movl -4(%[next], %%rcx, 4), %%edx\n\t"
		     "cmpl %[npages], %%edx\n\t"
		     "ja %l[corrupt]\n\t"
		     "shrq $32, %%rax\n\t"
		     "incl %%eax\n\t"
		     "shlq $32, %%rax\n\t"
		     "orq %%rdx, %%rax\n\t"
		     "movq %%rax, %[head]\n\t"
		     "2:\n\t"
		     "movl %%ecx, %[top]\n\t" PCPU_CS_ABORT("abort")
		     : /* no outputs: asm goto */
		     : [cpu] "r"(cpu), [current_cpu] "m"(rs->cpu_id),
		       [rseq_cs] "m"(rs->rseq_cs), [online] "m"(*online),
		       [head] "m"(*head), [next] "r"(next),
		       [npages] "r"(npages), [top] "m"(*top)
		     : "memory", "cc", "rax", "rcx", "rdx"
		     : abort, offline, empty, corrupt);
	return 0;
abort:
	pcpu_aborts++;
	return -EAGAIN;
offline:
	return -ENODEV;
empty:
	return -ENOENT;
corrupt:
	return -EBADMSG;
}

/*
 * if (cpu_id != cpu) restart; if (!*online) -ENODEV;
 * old = *head; *link = old.top; *head = {old.tag + 1, newtop}  <- commit
 */
static inline int pcpu_seq_push(struct rseq *rs, uint32_t cpu, uint64_t *head,
			    _Atomic uint32_t *link, uint64_t newtop,
			    const _Atomic uint32_t *online)
{
	__asm__ goto(PCPU_CS_TABLE(3) PCPU_CS_START(3, "%[rseq_cs]")
		     "cmpl %[cpu], %[current_cpu]\n\t"
		     "jnz 4f\n\t"
		     "cmpl $0, %[online]\n\t"
		     "jz %l[offline]\n\t"
		     "movq %[head], %%rax\n\t"
		     "movl %%eax, %[link]\n\t"
		     "shrq $32, %%rax\n\t"
		     "incl %%eax\n\t"
		     "shlq $32, %%rax\n\t"
		     "orq %[newtop], %%rax\n\t"
		     "movq %%rax, %[head]\n\t"
		     "2:\n\t" PCPU_CS_ABORT("abort")
		     : /* no outputs: asm goto */
		     : [cpu] "r"(cpu), [current_cpu] "m"(rs->cpu_id),
		       [rseq_cs] "m"(rs->rseq_cs), [online] "m"(*online),
		       [head] "m"(*head), [link] "m"(*link),
		       [newtop] "r"(newtop)
		     : "memory", "cc", "rax"
		     : abort, offline);
	return 0;
abort:
	pcpu_aborts++;
	return -EAGAIN;
offline:
	return -ENODEV;
}

static inline uint64_t *pcpu_list_head(struct seg_cpu *c, enum pcpu_list which)
{
	struct seg_stack *st = which == PCPU_PROTECT ? &c->protect : &c->free;

	return (uint64_t *)&st->head;
}

static inline int pcpu_pop(const struct seg *s, enum pcpu_list which,
			   uint32_t *page, int *cpu_ret)
{
	struct rseq *rs = pcpu_rseq_area();
	uint32_t top = 0;
	int r;

	if (__rseq_size == 0)
		return -EOPNOTSUPP;
	do {
		uint32_t cpu = __atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED);
		struct seg_cpu *c;

		if ((int32_t)cpu < 0)
			return -EOPNOTSUPP;
		if (cpu >= s->ncpus)
			return -ENODEV;
		c = &s->cpu[cpu];
		*cpu_ret = (int)cpu;
		r = pcpu_seq_pop(rs, cpu, pcpu_list_head(c, which), s->next, s->npages,
			     &c->online, &top);
		if (r == 0) {
			pcpu_tsan_acquire(pcpu_list_head(c, which));
			*page = top - 1;
			return (int)cpu;
		}
	} while (r == -EAGAIN);
	if (r == -EBADMSG)
		return stack_corrupt(s);
	return r;
}

static inline int pcpu_push_chain(const struct seg *s, enum pcpu_list which,
				  uint32_t first, uint32_t last)
{
	struct rseq *rs = pcpu_rseq_area();
	int r;

	if (__rseq_size == 0)
		return -EOPNOTSUPP;
	if (first >= s->npages || last >= s->npages)
		return -ERANGE;
	do {
		uint32_t cpu = __atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED);
		struct seg_cpu *c;

		if ((int32_t)cpu < 0)
			return -EOPNOTSUPP;
		if (cpu >= s->ncpus)
			return -ENODEV;
		c = &s->cpu[cpu];
		pcpu_tsan_release(pcpu_list_head(c, which));
		r = pcpu_seq_push(rs, cpu, pcpu_list_head(c, which), &s->next[last],
			      (uint64_t)first + 1, &c->online);
		if (r == 0)
			return (int)cpu;
	} while (r == -EAGAIN);
	return r;
}

#else /* no rseq sequences for this architecture: global pool only */

static inline bool pcpu_available(void)
{
	return false;
}

static inline int pcpu_current_cpu(void)
{
	return -EOPNOTSUPP;
}

static inline int pcpu_pop(const struct seg *s, enum pcpu_list which,
			   uint32_t *page, int *cpu_ret)
{
	return -EOPNOTSUPP;
}

static inline int pcpu_push_chain(const struct seg *s, enum pcpu_list which,
				  uint32_t first, uint32_t last)
{
	return -EOPNOTSUPP;
}

#endif

static inline int pcpu_push(const struct seg *s, enum pcpu_list which,
			    uint32_t page)
{
	return pcpu_push_chain(s, which, page, page);
}

/*
 * Pop up to max pages from this CPU's list into a private chain, page by
 * page (each pop one sequence).  How many (0 if empty) or -errno as
 * pcpu_pop.  *cpu_ret says which CPU they came from.
 */
int pcpu_pop_chain(const struct seg *s, enum pcpu_list which, uint32_t max,
		   uint32_t *first, uint32_t *last, int *cpu_ret);

#endif
