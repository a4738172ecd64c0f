// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The drain thread (one per pool) and rcupool_barrier().  Full pages do
 * not pass here: they go to the reclaim engine (pool_reclaim.c).
 *
 * Every drain_interval/2 the thread looks at each thread's batch; one it
 * saw at its previous look too (same batch, same install count) is idle:
 * it takes it with an atomic exchange of the thread's slot.  It also takes
 * the batches of exited threads and the head-fallback chain.  No fill of a
 * taken batch may still be in progress: where the kernel has
 * membarrier(PRIVATE_EXPEDITED), owners mark their fills with a plain busy
 * flag and the drain waits for it after one membarrier() (asymmetric
 * fences, as liburcu-memb's readers); elsewhere fills run inside read-side
 * sections of the pool's flavor and the grace period below covers them.
 * Then the taken batches go to the reclaim engine, as full pages do: its
 * round is their grace period (every object on a taken batch was passed to
 * the pool before the exchange).  A partial page is thus freed at most
 * drain_interval plus one round after its first object.
 *
 * The drain thread is not registered with liburcu: synchronize_rcu() from
 * an unregistered thread is allowed in every flavor, and it never reads
 * RCU-protected data.  Each loop it also runs the pool's lending
 * (pool_chunk_tick: the lender's events, whose EOF means the daemon died
 * and the pool carries on detached; CPU hotplug; chunks asked for or
 * given back).
 */
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/membarrier.h>

#include "pool.h"

struct pool_claim {
	struct pool_batch *batches; /* orphans: counted when orphaned */
	struct pool_batch *taken;   /* from threads: counted after the GP */
	struct rcu_head *heads;
};

void pool_drain_wake(struct rcupool *p)
{
	uint64_t one = 1;

	if (p->wake_fd >= 0 && write(p->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: a wake-up is pending anyway. */
	}
}

static int pool_membarrier(int cmd)
{
	return (int)syscall(__NR_membarrier, cmd, 0, 0);
}

bool pool_membarrier_register(void)
{
	const char *e = secure_getenv("RCUPOOL_MEMBARRIER");
	int cmds;

	if (e && *e == '0')
		return false; /* tests: the read-side section path */
	cmds = pool_membarrier(MEMBARRIER_CMD_QUERY);
	if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED))
		return false;
	return pool_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

/*
 * After taking batches from threads that fill without a read-side section:
 * the membarrier() makes every thread of the process pass a full barrier,
 * so an owner that read its batch before our exchange has made its busy
 * mark visible; we wait for it to clear (its stores to the batch are then
 * visible too: release).  An owner that starts after the membarrier sees
 * its slot empty.  Called with p->lock held: no tcache goes away meanwhile.
 */
static void pool_claim_wait_fills(struct rcupool *p)
{
	if (pool_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) < 0)
		abort(); /* registered at open: cannot fail */
	for (struct pool_tcache *tc = p->caches; tc; tc = tc->next) {
		if (!tc->claimed)
			continue;
		tc->claimed = false;
		/* A few instructions, unless the owner was preempted there. */
		while (atomic_load_explicit(&tc->busy, memory_order_acquire))
			sched_yield();
	}
}

/* Take batches to drain.  Called with p->lock held. */
static bool pool_claim(struct rcupool *p, bool all, struct pool_claim *c)
{
	struct pool_batch *b;

	*c = (struct pool_claim){.batches = p->orphans};
	p->orphans = NULL;
	for (struct pool_tcache *tc = p->caches; tc; tc = tc->next) {
		uint64_t gen = atomic_load_explicit(&tc->gen,
						    memory_order_relaxed);

		b = atomic_load_explicit(&tc->cur, memory_order_acquire);
		if (!b) {
			tc->seen = NULL;
			continue;
		}
		if (!all && (b != tc->seen || gen != tc->seen_gen)) {
			tc->seen = b;
			tc->seen_gen = gen;
			continue;
		}
		tc->seen = NULL;
		b = atomic_exchange_explicit(&tc->cur, NULL,
					     memory_order_acq_rel);
		if (b) {
			tc->claimed = p->asym;
			b->next = c->taken;
			c->taken = b;
		}
	}
	if (c->taken && p->asym)
		pool_claim_wait_fills(p);
	c->heads = atomic_exchange_explicit(&p->heads, NULL,
					    memory_order_acquire);
	return c->batches || c->taken || c->heads;
}

static void pool_claim_finish(struct rcupool *p, struct pool_claim *c)
{
	struct pool_batch *b, *next;

	/*
	 * Fills of taken batches: over (pool_claim_wait_fills), or inside
	 * read-side sections this grace period waits for.  The head chain
	 * needs one of its own.
	 */
	if (!p->asym || c->heads)
		pool_synchronize(p);
	/* No fill of a taken batch is in progress now: its count is final. */
	for (b = c->taken; b; b = next) {
		next = b->next;
		pool_batch_count_claimed(p, b);
		b->next = c->batches;
		c->batches = b;
	}
	/*
	 * To the reclaim engine, as full pages go: its round is the grace
	 * period, and its freers keep to one per filler without waiting on
	 * each other (the drain freeing them itself waited for a claim on
	 * the filler while the reclaim thread freed that filler's pages one
	 * after another: 1-3 ms behind the thread exits of bench_e2e).
	 */
	for (b = c->batches; b; b = next) {
		next = b->next;
		b->drained = true;
		pool_reclaim_submit(p, b);
	}
	pool_heads_free(p, c->heads);
}

/* One drain pass; all: every partial batch, not only idle ones. */
static void pool_drain_pass(struct rcupool *p, bool all)
{
	struct pool_claim c;
	bool any;

	pthread_mutex_lock(&p->lock);
	while (p->draining)
		pthread_cond_wait(&p->cond, &p->lock);
	any = pool_claim(p, all, &c);
	p->draining = any;
	pthread_mutex_unlock(&p->lock);
	if (!any)
		return;
	pool_claim_finish(p, &c);
	pthread_mutex_lock(&p->lock);
	p->draining = false;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void pool_drain_all(struct rcupool *p)
{
	pool_drain_pass(p, true);
}

static void *pool_drain_main(void *arg)
{
	struct rcupool *p = arg;

	for (;;) {
		uint32_t ms = pool_drain_interval_ms(p);
		struct pollfd pfd[2] = {{.fd = p->wake_fd, .events = POLLIN}};
		nfds_t nfds = 1;
		int tick;

		tick = ms / 2 < 1 ? 1 : ms / 2 > 1000 ? 1000 : (int)(ms / 2);
		tick = pool_chunk_wait_ms(p, tick); /* a re-attach due */
		if (p->lender && p->lender->fd >= 0 &&
		    !atomic_load(&p->lender_gone)) {
			pfd[1] = (struct pollfd){.fd = p->lender->fd,
						 .events = POLLIN | POLLRDHUP};
			nfds = 2;
		}
		if (poll(pfd, nfds, tick) > 0) {
			if (pfd[0].revents & POLLIN) {
				uint64_t v;

				if (read(p->wake_fd, &v, sizeof(v)) < 0) {
					/* EAGAIN: someone else read it */
				}
			}
		}
		pthread_mutex_lock(&p->lock);
		if (p->stop) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		pthread_mutex_unlock(&p->lock);
		/* Lending (pool_chunk.c): events, hotplug, ask, give back. */
		pool_chunk_tick(p, nfds == 2 && pfd[1].revents);
		pool_drain_pass(p, false);
		pool_heap_trim(p, false);
	}
	return NULL;
}

int pool_drain_start(struct rcupool *p)
{
	sigset_t all, old;
	int r = 0;

	pthread_mutex_lock(&p->lock);
	if (!p->drain_running) {
		/* No application signal is ever delivered to our thread. */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		p->stop = false;
		r = pthread_create(&p->drain_thread, NULL, pool_drain_main, p);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (r == 0) {
			/* Seen in top -H, perf and gdb: 15 characters at most. */
			pthread_setname_np(p->drain_thread, "rcupool-drain");
			p->drain_running = true;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (r)
		return -r;
	return pool_reclaim_start(p);
}

void pool_drain_stop(struct rcupool *p)
{
	bool running;

	pthread_mutex_lock(&p->lock);
	running = p->drain_running;
	p->stop = true;
	pthread_mutex_unlock(&p->lock);
	if (!running)
		return;
	pool_drain_wake(p);
	pthread_join(p->drain_thread, NULL);
	pthread_mutex_lock(&p->lock);
	p->drain_running = false;
	pthread_mutex_unlock(&p->lock);
}

/*
 * Partial pages of every thread are taken and freed after a grace period
 * (pool_drain_all), then we wait for every page submitted before: queued,
 * in a grace period, being freed.  liburcu's rcu_barrier() is not needed
 * (the pool uses no call_rcu) and not called.
 */
void rcupool_barrier(struct rcupool *p)
{
	const struct rcu_flavor_struct *f = p->flavor;
	int was_online = f->read_ongoing();

	/* As rcu_barrier() does: for qsbr, "online" is not a read section. */
	if (was_online)
		f->thread_offline();
	if (f->read_ongoing()) {
		/* Inside a read-side section: waiting would deadlock. */
		rcupool_flush(p);
	} else {
		pool_drain_all(p);
		pool_reclaim_wait_all(p);
	}
	if (was_online)
		f->thread_online();
}
