// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Done pages (grace period over, objects not yet freed) and who frees
 * which: the other half of the reclaim engine (pool_reclaim.c).
 *
 * Every freer -- the reclaim thread, a filler at its page switch, the
 * barrier, a worker, the drain -- claims the filler of the page it takes,
 * so that one thread at a time frees a filler's objects: two threads
 * freeing into one malloc arena at once pay several times the cost of one
 * (bench_arena).  Fillers seen submitting lately are active; with two or
 * more (rmulti), each frees its own pages at its page switch and the
 * reclaim thread spares them (POOL_TAKE_SPARE).  All of it under rlock.
 */
#include <pthread.h>

#include "pool.h"

static bool pool_done_claimed(const struct rcupool *p, const void *filler)
{
	for (unsigned i = 0; i < p->nfreeing; i++)
		if (p->freeing[i] == filler)
			return true;
	return false;
}

/*
 * Under rlock: filler submitted a page in the last POOL_ACTIVE_NS (as of
 * active_now), and two threads or more did: it frees its own done pages
 * (at its page switch), the reclaim thread leaves them to it.
 */
static bool pool_done_active(const struct rcupool *p, const void *filler)
{
	if (!filler || !atomic_load_explicit(&p->rmulti, memory_order_relaxed))
		return false;
	for (unsigned i = 0; i < POOL_FREERS; i++)
		if (p->active[i].filler == filler)
			return p->active[i].last_ns + POOL_ACTIVE_NS >
			       p->active_now;
	return false;
}

/* Under rlock: filler's slot in active[], or the one to reuse for it. */
static unsigned pool_done_active_slot(const struct rcupool *p,
				      const void *filler)
{
	unsigned oldest = 0;

	for (unsigned i = 0; i < POOL_FREERS; i++) {
		if (p->active[i].filler == filler)
			return i;
		if (p->active[i].last_ns < p->active[oldest].last_ns)
			oldest = i;
	}
	/* More fillers than slots: the one seen least lately goes. */
	return oldest;
}

/*
 * Under rlock: filler submitted a page at t (ns), unless its thread had
 * exited by then (a page queued before the exit reaches its round after).
 */
static void pool_done_active_mark(struct rcupool *p, const void *filler,
				  uint64_t t)
{
	unsigned i = pool_done_active_slot(p, filler);

	if (p->active[i].filler != filler)
		p->active[i] = (struct pool_filler_seen){.filler = filler};
	if (t > p->active[i].last_ns && t > p->active[i].gone_ns)
		p->active[i].last_ns = t;
}

/*
 * Under rlock: a page whose grace period is over, for the caller to free,
 * oldest first among those of a filler nobody frees now.  POOL_TAKE_OWN:
 * the caller's own pages first (a filler: its objects, most likely from
 * its own arena, back where it allocates), else one of a filler that does
 * not free its own now (stopped, or exited: pages nobody else would take
 * while the reclaim thread spares them).  POOL_TAKE_SPARE (the reclaim
 * thread, with work of its own): none of an active filler either, which
 * frees its own: freeing into the arena a thread allocates from while it
 * does slows both (its malloc and our free: 58% of a filler's profile was
 * _int_malloc when the reclaim thread freed its objects).  NULL when none
 * fits, or POOL_FREERS free already.  The claim ends in
 * pool_reclaim_free_page().
 */
struct pool_done_pick {
	struct pool_done_list *list;
	struct pool_batch *prev, *b; /* b follows prev (NULL: the head) */
};

static bool pool_done_older(const struct pool_batch *b,
			    const struct pool_done_pick *than)
{
	return !than->b || b->round < than->b->round;
}

static struct pool_batch *pool_done_find(struct rcupool *p, const void *mine,
					 enum pool_take take,
					 struct pool_done_pick *pick)
{
	struct pool_done_pick best = {0}, alt = {0};

	if (p->nfreeing == POOL_FREERS)
		return NULL;
	for (unsigned i = 0; i < POOL_DONE_LISTS; i++) {
		struct pool_done_list *l = &p->done[i];
		/* A filler's own list: its head stands for all of it. */
		unsigned scan = i ? 1 : POOL_DONE_SCAN, n = 0;
		struct pool_batch *b, *prev = NULL;

		for (b = l->head; b && n < scan; prev = b, b = b->next, n++) {
			struct pool_done_pick c = {l, prev, b};

			if (pool_done_claimed(p, b->filler))
				continue;
			if (take == POOL_TAKE_OWN) {
				if (b->filler == mine) {
					*pick = c;
					return b;
				}
				/* Else one nobody else frees as its own. */
				if ((p->free_mode == POOL_FREE_FILLERS ||
				     !pool_done_active(p, b->filler)) &&
				    pool_done_older(b, &alt))
					alt = c;
				continue;
			}
			if (take == POOL_TAKE_SPARE &&
			    pool_done_active(p, b->filler))
				continue;
			if (pool_done_older(b, &best))
				best = c;
			break; /* the rest of [0] is younger */
		}
	}
	*pick = take == POOL_TAKE_OWN ? alt : best;
	return pick->b;
}

struct pool_batch *pool_done_pop(struct rcupool *p, const void *mine,
				 enum pool_take take)
{
	struct pool_done_pick pick;
	struct pool_batch *b = pool_done_find(p, mine, take, &pick);
	struct pool_done_list *l = pick.list;

	if (!b)
		return NULL;
	if (pick.prev)
		pick.prev->next = b->next;
	else
		l->head = b->next;
	if (l->tail == b)
		l->tail = pick.prev;
	l->n--;
	p->dcount--;
	atomic_store_explicit(&p->dlen, p->dcount, memory_order_relaxed);
	p->freeing[p->nfreeing++] = b->filler;
	return b;
}

/* Under rlock: a page whose grace period is over joins its filler's list. */
void pool_done_append(struct rcupool *p, struct pool_batch *b)
{
	struct pool_done_list *l = NULL, *empty = NULL;

	for (unsigned i = 1; i < POOL_DONE_LISTS && !l; i++) {
		if (p->done[i].n && p->done[i].filler == b->filler)
			l = &p->done[i];
		else if (!p->done[i].n && !empty)
			empty = &p->done[i];
	}
	if (!l && empty) {
		l = empty;
		l->filler = b->filler; /* n 0: head and tail NULL */
	}
	if (!l)
		l = &p->done[0];
	b->next = NULL;
	if (l->tail)
		l->tail->next = b;
	else
		l->head = b;
	l->tail = b;
	l->n++;
	p->dcount++;
}

/* Under rlock: a done page the caller would take as its own (POOL_TAKE_OWN). */
bool pool_done_takeable(struct rcupool *p, const void *filler)
{
	struct pool_done_pick pick;

	return pool_done_find(p, filler, POOL_TAKE_OWN, &pick) != NULL;
}

/*
 * Under rlock: the pages of a round whose grace period ended (fifo, oldest
 * first, n of them) join their fillers' lists; the fillers seen in them
 * are marked active, and rmulti says whether two or more were lately.
 */
void pool_done_add_round(struct rcupool *p, struct pool_batch *fifo, uint32_t n)
{
	struct pool_batch *b, *next;
	const void *last = NULL;
	unsigned fillers = 0;

	for (b = fifo; b; b = next) {
		next = b->next;
		if (b->filler && !b->drained && b->filler != last)
			pool_done_active_mark(p, last = b->filler, b->t_submit);
		pool_done_append(p, b);
	}
	if (!n)
		return;
	/*
	 * Two fillers or more lately (not in one round: on a busy CPU a
	 * round can hold the pages of the one filler that ran while the
	 * other waited for that CPU, seen for 50 ms on end).
	 */
	p->active_now = pool_now_ns();
	for (unsigned i = 0; i < POOL_FREERS; i++)
		fillers +=
			p->active[i].filler &&
			p->active[i].last_ns + POOL_ACTIVE_NS > p->active_now;
	/* Stored on change only: fillers read it at each switch. */
	if (atomic_load_explicit(&p->rmulti, memory_order_relaxed) !=
	    (fillers >= 2))
		atomic_store_explicit(&p->rmulti, fillers >= 2,
				      memory_order_relaxed);
}

/*
 * The reclaim thread's pick, with work of its own: spare the pages of the
 * fillers active as of now (a filler that stopped for good is spared for
 * POOL_ACTIVE_NS at most; while a thread waits, throttled or in a
 * barrier, it takes any).
 */
struct pool_batch *pool_done_pop_spare(struct rcupool *p)
{
	if (!p->dcount)
		return NULL;
	p->active_now = pool_now_ns();
	return pool_done_pop(p, NULL, POOL_TAKE_SPARE);
}

/* Under rlock: the claim of pool_done_pop() on filler ends. */
void pool_done_unclaim(struct rcupool *p, const void *filler)
{
	for (unsigned i = 0; i < p->nfreeing; i++)
		if (p->freeing[i] == filler) {
			p->freeing[i] = p->freeing[--p->nfreeing];
			break;
		}
	if (!p->dcount)
		return;
	/* Pages it kept from the others: theirs now. */
	if (atomic_load(&p->rsleep))
		pthread_cond_signal(&p->rcond);
	if (p->nworkers)
		pthread_cond_signal(&p->rwork);
	/*
	 * And its own, to the filler itself, which may be throttled: it
	 * found them claimed, went to wait for pages to come back, and if
	 * every filler did, none would (no round runs without a submission:
	 * seen as a hang of test_one_freer_per_filler under ASan).
	 */
	if (!p->rthrottled || !filler || !pool_reclaim_fillers_help(p))
		return;
	for (unsigned i = 0; i < POOL_DONE_LISTS; i++)
		if (p->done[i].n && (!i || p->done[i].filler == filler)) {
			pthread_cond_broadcast(&p->rdone);
			break;
		}
}

/*
 * filler's thread exited: it frees no page of its own any more, so the
 * reclaim thread takes its done pages at once, where it would have spared
 * them for POOL_ACTIVE_NS (while a barrier waited for them: bench_e2e at
 * T=2 spent a third of its time there).  Pages it queued before it exited
 * do not make it active again when their round ends.
 */
void pool_done_filler_gone(struct rcupool *p, const void *filler)
{
	unsigned i;

	pthread_mutex_lock(&p->rlock);
	i = pool_done_active_slot(p, filler);
	p->active[i] = (struct pool_filler_seen){.filler = filler,
						 .gone_ns = pool_now_ns()};
	if (p->dcount && atomic_load(&p->rsleep))
		pthread_cond_signal(&p->rcond);
	if (p->rwaiters)
		pthread_cond_broadcast(&p->rdone);
	pthread_mutex_unlock(&p->rlock);
}

/*
 * A page whose grace period is over, its objects freed by the caller (on
 * its own CPU, from the thread that most likely allocated them), empty,
 * for the caller to fill, when pool_reclaim_fillers_help() says so: its
 * own first (POOL_TAKE_OWN).
 */
struct pool_batch *pool_done_pop_own(struct rcupool *p, const void *filler)
{
	struct pool_batch *b;

	pthread_mutex_lock(&p->rlock);
	p->active_now = pool_now_ns();
	b = pool_done_pop(p, filler, POOL_TAKE_OWN);
	pthread_mutex_unlock(&p->rlock);
	return b;
}
