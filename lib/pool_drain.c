// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The drain thread (one per pool) and rcupool_barrier().
 *
 * Every drain_interval/2 the thread looks at each thread's batch; one it
 * saw at its previous look too (same batch, same install count) is idle:
 * it takes it with an atomic exchange of the thread's slot.  It also takes
 * the batches of exited threads and the head-fallback chain.  Then one
 * grace period (update_synchronize_rcu): no fill of a taken batch is still
 * in progress -- fills run inside read-side sections -- and every object
 * on it was passed to the pool before the exchange, so the objects may be
 * freed right away, with no call_rcu.  A partial page is thus freed at most
 * drain_interval plus one grace period after its first object.
 *
 * The drain thread is not registered with liburcu: synchronize_rcu() from
 * an unregistered thread is allowed in every flavor, and it never reads
 * RCU-protected data.  It also watches the daemon's connection: EOF means
 * the daemon died, and the pool carries on detached.
 */
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pool.h"

struct pool_claim {
	struct pool_batch *batches;
	struct rcu_head *heads;
};

void pool_drain_wake(struct rcupool *p)
{
	uint64_t one = 1;

	if (p->wake_fd >= 0 && write(p->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: a wake-up is pending anyway. */
	}
}

/* Take batches to drain.  Called with p->lock held. */
static bool pool_claim(struct rcupool *p, bool all, struct pool_claim *c)
{
	*c = (struct pool_claim){.batches = p->orphans};
	p->orphans = NULL;
	for (struct pool_tcache *tc = p->caches; tc; tc = tc->next) {
		struct pool_batch *b = atomic_load_explicit(
			&tc->cur, memory_order_acquire);
		uint64_t gen = atomic_load_explicit(&tc->gen,
						    memory_order_relaxed);

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
			pool_batch_count_claimed(p, b);
			b->next = c->batches;
			c->batches = b;
		}
	}
	c->heads = atomic_exchange_explicit(&p->heads, NULL,
					    memory_order_acquire);
	return c->batches || c->heads;
}

static void pool_claim_finish(struct rcupool *p, struct pool_claim *c)
{
	struct pool_batch *b, *next;

	p->flavor->update_synchronize_rcu();
	for (b = c->batches; b; b = next) {
		next = b->next;
		pool_batch_complete(p, b);
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

/* The daemon's connection said something: EOF is its death. */
static void pool_check_daemon(struct rcupool *p, short revents)
{
	char buf[256];
	ssize_t n;

	if (!(revents & (POLLHUP | POLLRDHUP | POLLERR))) {
		n = recv(p->att.sock, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
			return; /* nothing is expected; ignore it */
	}
	atomic_store(&p->attached, false);
}

static void *pool_drain_main(void *arg)
{
	struct rcupool *p = arg;

	for (;;) {
		uint32_t ms = atomic_load_explicit(
			&p->seg->hdr->drain_interval_ms, memory_order_relaxed);
		struct pollfd pfd[2] = {{.fd = p->wake_fd, .events = POLLIN}};
		nfds_t nfds = 1;
		int tick;

		if (!ms)
			ms = POOL_DEF_DRAIN_MS;
		tick = ms / 2 < 1 ? 1 : ms / 2 > 1000 ? 1000 : (int)(ms / 2);
		if (atomic_load(&p->attached) && p->att.sock >= 0) {
			pfd[1] = (struct pollfd){.fd = p->att.sock,
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
			if (nfds == 2 && pfd[1].revents)
				pool_check_daemon(p, pfd[1].revents);
		}
		pthread_mutex_lock(&p->lock);
		if (p->stop) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		pthread_mutex_unlock(&p->lock);
		pool_drain_pass(p, false);
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
		if (r == 0)
			p->drain_running = true;
	}
	pthread_mutex_unlock(&p->lock);
	return -r;
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
		f->barrier();
	}
	if (was_online)
		f->thread_online();
}
