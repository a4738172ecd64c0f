// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Clients and what is lent to them (DESIGN.md sections 3 and 5): a slot
 * per attached client with its lease memfd, its pidfd and the chunks lent
 * to it.  Limits are enforced here, from the daemon's books: a client gets
 * a chunk only within its max (whole chunks, rounded down), and one under
 * its min (rounded up) may take from a CPU pool's protect floor.  A chunk
 * comes back by CHUNK_PUT or when the client's process has exited (its
 * pidfd), never on a closed connection alone; either way it is retired,
 * never lent again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon.h"
#include "fdstore.h"
#include "leaseshm.h"
#include "log.h"

#define WARN_GAP_USEC 1000000 /* a client's rate warnings: one a second */

int lending_init(struct daemon *d)
{
	d->nslots = d->conf.limits.max_clients;
	d->clients = calloc(d->nslots, sizeof(*d->clients));
	if (!d->clients)
		return log_errno(LOG_ERR, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < d->nslots; i++) {
		d->clients[i].d = d;
		d->clients[i].slot = (int)i;
		d->clients[i].pidfd = -1;
		d->clients[i].lease_fd = -1;
	}
	return 0;
}

void lending_destroy(struct daemon *d)
{
	for (uint32_t i = 0; d->clients && i < d->nslots; i++)
		if (d->clients[i].state != CLIENT_FREE)
			lending_release(d, &d->clients[i]);
	free(d->clients);
	d->clients = NULL;
}

static uint32_t chunks_down(const struct daemon *d, uint32_t pages)
{
	return pages / d->chunk_pages;
}

static uint32_t chunks_up(const struct daemon *d, uint32_t pages)
{
	return (uint32_t)(((uint64_t)pages + d->chunk_pages - 1) /
			  d->chunk_pages);
}

/*
 * The client's own lists follow the CPU pools' watermarks (balance.low /
 * high of pages_per_cpu), within its max: below low it asks ahead.  One
 * chunk was far too little: a thread fills a 16-page chunk in ~30 us, less
 * than one round trip, and ran dry (4,177 heap pages in a 1M-object burst
 * at the shipped defaults).  From the daemon's own settings, never read
 * back from the lease (the client can write it).
 */
static void client_marks(const struct daemon *d, const struct client *cl,
			 uint32_t *low, uint32_t *high)
{
	uint32_t cp = d->chunk_pages, per = d->conf.reserve.pages_per_cpu;
	uint32_t lo = (uint32_t)conf_resolve(d->conf.balance.low, per);
	uint32_t hi = (uint32_t)conf_resolve(d->conf.balance.high, per);
	uint32_t max = cl->max_chunks * cp;

	if (lo < cp)
		lo = cp;
	if (hi < lo + 2 * cp)
		hi = lo + 2 * cp;
	if (lo > max)
		lo = max;
	if (hi > max)
		hi = max;
	*low = lo;
	*high = hi;
}

/* Limits from the config (and what the client asked at attach). */
static void set_limits(struct daemon *d, struct client *cl)
{
	struct lease_limits *l = &cl->lease->limits;
	uint32_t cp = d->chunk_pages, lo, hi;

	cl->max_chunks = chunks_down(d, cl->max_pages);
	cl->min_chunks = chunks_up(d, cl->min_pages);
	if (cl->min_chunks > cl->max_chunks)
		cl->min_chunks = cl->max_chunks;
	/* In whole chunks: a max below one chunk is 0, nothing lent. */
	atomic_store(&l->min_pages, cl->min_chunks * cp);
	atomic_store(&l->max_pages, cl->max_chunks * cp);
	atomic_store(&l->overflow_pages, d->conf.limits.overflow_pages);
	atomic_store(&l->drain_interval_ms,
		     (uint32_t)(d->conf.limits.drain_interval_us / 1000));
	client_marks(d, cl, &lo, &hi);
	atomic_store(&l->low_pages, lo);
	atomic_store(&l->high_pages, hi);
	atomic_store(&l->reclaim_min_gap_us,
		     (uint32_t)d->conf.limits.reclaim_min_gap_us);
	atomic_store(&l->generation, d->generation);
}

/*
 * A slot becomes an attached client (a new one, or one adopted from the fd
 * store): who it is, its limits from this configuration, counters from 0.
 * The lease is mapped already.
 */
static void client_arm(struct daemon *d, struct client *cl, pid_t pid,
		       uid_t uid, const char *name, uint32_t req_min,
		       uint32_t req_max)
{
	cl->state = CLIENT_ATTACHED;
	cl->pid = pid;
	cl->uid = uid;
	snprintf(cl->name, sizeof(cl->name), "%s", name);
	cl->req_min = req_min;
	cl->req_max = req_max;
	reserve_slot_limits(d, name, req_min, req_max, &cl->min_pages,
			    &cl->max_pages);
	set_limits(d, cl);
	memset(&cl->view, 0, sizeof(cl->view));
	cl->lent_peak = 0;
	cl->bad = cl->chunks_got = cl->chunks_put = 0;
	cl->denied = cl->empty = cl->throttled = 0;
	cl->recalled = 0;
	cl->tokens = d->conf.limits.return_rate;
	cl->tokens_usec = daemon_now_usec();
	cl->warn_usec = 0;
	cl->warn_suppressed = 0;
	cl->attached_usec = daemon_now_usec();
	d->n_attached++;
}

/*
 * The pools ran dry for needy: every other client with free pages above
 * its high mark -- a past burst's, kept for its next one (DECISIONS.md:
 * the surplus is kept ten drain intervals) -- is asked to give them back
 * now, down to between its marks, as it would on its own.  Its free pages
 * are its lent ones less what its counters say it holds: its own word,
 * clamped to what it was lent, so a client that lies keeps no more than it
 * could hold anyway, within its max.
 */
static void recall_idle(struct daemon *d, const struct client *needy)
{
	uint32_t cp = d->chunk_pages;

	for (uint32_t i = 0; d->clients && i < d->nslots; i++) {
		struct client *cl = &d->clients[i];
		uint64_t lent, held, free, mid;
		uint32_t lo, hi, want;

		if (cl == needy || cl->state != CLIENT_ATTACHED ||
		    !cl->conn || !cl->lease)
			continue;
		lending_refresh(d, cl);
		lent = (uint64_t)cl->lent.n * cp;
		held = cl->view.v[LEASE_C_HELD];
		free = lent - held;
		client_marks(d, cl, &lo, &hi);
		if (free <= hi)
			continue;
		mid = lo + (hi - lo) / 2;
		want = (uint32_t)((free - mid) / cp);
		if (cl->lent.n > cl->max_chunks &&
		    cl->lent.n - cl->max_chunks > want)
			want = cl->lent.n - cl->max_chunks;
		/* What we asked, from our memory: the lease is its to write. */
		if (want <= cl->recalled)
			continue;
		atomic_store(&cl->lease->limits.return_chunks, want);
		d->stats.chunks_recalled += want - cl->recalled;
		cl->recalled = want;
		server_recall(cl, want);
	}
}

/*
 * Ask back what is over the max: return_chunks, and a RECALL if it rose.
 * A shortage recall not answered yet stands (recall_idle).
 */
static void ask_back(struct daemon *d, struct client *cl)
{
	uint32_t want = cl->lent.n > cl->max_chunks
				? cl->lent.n - cl->max_chunks
				: 0;
	uint32_t was;

	if (cl->recalled > want)
		want = cl->recalled;
	was = atomic_exchange(&cl->lease->limits.return_chunks, want);
	if (want > was && cl->conn)
		server_recall(cl, want);
}

void lending_apply_limits(struct daemon *d)
{
	for (uint32_t i = 0; d->clients && i < d->nslots; i++) {
		struct client *cl = &d->clients[i];
		uint32_t was = cl->max_chunks;

		if (cl->state == CLIENT_FREE)
			continue;
		reserve_slot_limits(d, cl->name, cl->req_min, cl->req_max,
				    &cl->min_pages, &cl->max_pages);
		set_limits(d, cl);
		if (cl->max_chunks != was)
			log_info("client %s (pid %d): min %u, max %u pages",
				 cl->name, (int)cl->pid,
				 cl->min_chunks * d->chunk_pages,
				 cl->max_chunks * d->chunk_pages);
		ask_back(d, cl);
	}
}

/* POLLIN on a pidfd: the process has exited. */
static int on_pidfd(sd_event_source *src, int fd, uint32_t revents,
		    void *data)
{
	struct client *cl = data;

	lending_release(cl->d, cl);
	return 0;
}

struct client *lending_attach(struct daemon *d, struct conn *conn, pid_t pid,
			      uid_t uid, int pidfd, const char *name,
			      uint32_t req_min, uint32_t req_max, int *err,
			      char *why, size_t whylen)
{
	struct lease_geom g = {.page_size = d->page_size,
			       .chunk_pages = d->chunk_pages};
	struct client *cl = NULL;
	int r;

	for (uint32_t i = 0; i < d->nslots && !cl; i++)
		if (d->clients[i].state == CLIENT_FREE)
			cl = &d->clients[i];
	if (!cl) {
		*err = -EUSERS;
		snprintf(why, whylen,
			 "all %u client slots are in use (limits.max_clients)",
			 d->nslots);
		return NULL;
	}
	g.client_id = (uint32_t)cl->slot;
	r = leaseshm_create(&g, &cl->lease_fd, &cl->lease);
	if (r < 0) {
		*err = r;
		snprintf(why, whylen, "cannot create the lease memfd: %s",
			 strerror(-r));
		return NULL;
	}
	r = sd_event_add_io(d->event, &cl->pidfd_src, pidfd, EPOLLIN,
			    on_pidfd, cl);
	if (r < 0) {
		leaseshm_destroy(cl->lease_fd, cl->lease);
		cl->lease_fd = -1;
		cl->lease = NULL;
		*err = r;
		snprintf(why, whylen, "cannot watch the process: %s",
			 strerror(-r));
		return NULL;
	}
	cl->pidfd = pidfd;
	cl->gen = d->next_client_gen++;
	cl->conn = conn;
	client_arm(d, cl, pid, uid, name, req_min, req_max);
	atomic_store(&cl->lease->limits.return_chunks, 0);
	return cl;
}

struct client *lending_adopt(struct daemon *d, uint32_t slot, uint64_t gen,
			     pid_t pid, uid_t uid, const char *name,
			     uint32_t req_min, uint32_t req_max, int lease_fd,
			     struct lease_shm *lease, int pidfd)
{
	struct client *cl = &d->clients[slot];

	if (sd_event_add_io(d->event, &cl->pidfd_src, pidfd, EPOLLIN,
			    on_pidfd, cl) < 0)
		return NULL;
	cl->pidfd = pidfd;
	cl->gen = gen;
	cl->lease_fd = lease_fd;
	cl->lease = lease;
	cl->conn = NULL;
	/* The limits of this instance's configuration. */
	client_arm(d, cl, pid, uid, name, req_min, req_max);
	log_info("client %s (pid %d) adopted from the fd store into slot %u "
		 "(min %u, max %u pages)",
		 cl->name, (int)pid, slot, cl->min_chunks * d->chunk_pages,
		 cl->max_chunks * d->chunk_pages);
	return cl;
}

void lending_detach(struct daemon *d, struct client *cl)
{
	if (cl->state != CLIENT_ATTACHED)
		return;
	fdstore_drop_conn(d, cl);
	cl->conn = NULL;
	cl->state = CLIENT_DETACHED;
	if (d->fdstore_frozen) {
		/* Stopping, the client left to the next instance. */
		if (!cl->lent.n)
			lending_release(d, cl);
		return;
	}
	if (!cl->lent.n) {
		/* Nothing lent, nothing to wait for: the slot is free now. */
		log_info("client %s (pid %d) closed its connection holding no "
			 "chunk",
			 cl->name, (int)cl->pid);
		lending_release(d, cl);
		return;
	}
	log_info("client %s (pid %d) closed its connection; its %u chunks "
		 "stay lent to it until its process exits",
		 cl->name, (int)cl->pid, cl->lent.n);
	daemon_notify_status(d);
}

void lending_release(struct daemon *d, struct client *cl)
{
	struct chunk *c;
	uint32_t n = 0;

	if (cl->state == CLIENT_FREE)
		return;
	if (cl->conn)
		server_conn_gone(cl->conn);
	cl->conn = NULL;
	while ((c = cl->lent.head)) {
		list_del(&cl->lent, c);
		d->n_lent--;
		reserve_retire(d, c);
		n++;
	}
	d->stats.pages_reclaimed += (uint64_t)n * d->chunk_pages;
	fdstore_drop_client(d, cl);
	if (!d->fdstore_frozen)
		log_info("client %s (pid %d) %s: %u chunks retired, slot %d "
			 "free",
			 cl->name, (int)cl->pid,
			 cl->state == CLIENT_DETACHED && !n ? "detached"
							    : "exited",
			 n, cl->slot);
	cl->pidfd_src = sd_event_source_disable_unref(cl->pidfd_src);
	if (cl->pidfd >= 0)
		close(cl->pidfd);
	cl->pidfd = -1;
	leaseshm_destroy(cl->lease_fd, cl->lease);
	cl->lease_fd = -1;
	cl->lease = NULL;
	cl->state = CLIENT_FREE;
	cl->name[0] = '\0';
	cl->pid = 0;
	d->n_attached--;
	daemon_notify_status(d);
}

int lending_get(struct daemon *d, struct client *cl, int cpu, uint32_t want,
		struct chunk **out, uint32_t *n)
{
	*n = 0;
	d->stats.kicks++;
	while (*n < want) {
		struct chunk *c;

		if (cl->lent.n >= cl->max_chunks) {
			if (*n)
				break;
			cl->denied++;
			d->stats.denied++;
			return -EDQUOT;
		}
		c = reserve_take(d, cpu, cl->lent.n < cl->min_chunks);
		if (!c) {
			/* Dry for cl, even if it got some: ask the idle. */
			recall_idle(d, cl);
			if (*n)
				break;
			cl->empty++;
			d->stats.depletions++;
			reserve_balance(d);
			return -ENOSPC;
		}
		c->where = CHUNK_LENT;
		c->owner = cl->slot;
		list_add(&cl->lent, c);
		d->n_lent++;
		out[(*n)++] = c;
	}
	if (cl->lent.n > cl->lent_peak)
		cl->lent_peak = cl->lent.n;
	cl->chunks_got += *n;
	d->stats.chunks_lent += *n;
	/* Pools below their low watermark act now, not on the next tick. */
	reserve_balance(d);
	return 0;
}

uint32_t lending_put(struct daemon *d, struct client *cl, const uint64_t *ids,
		     uint32_t n, uint64_t *bad, uint32_t *nbad)
{
	uint32_t taken = 0;
	uint64_t now = daemon_now_usec();

	*nbad = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct chunk *c = reserve_find(d, ids[i]);

		if (!c || c->where != CHUNK_LENT || c->owner != cl->slot) {
			bad[(*nbad)++] = ids[i];
			continue;
		}
		list_del(&cl->lent, c);
		d->n_lent--;
		reserve_retire(d, c);
		taken++;
	}
	cl->bad += *nbad;
	d->stats.bad += *nbad;
	cl->chunks_put += taken;
	/* What was asked back, minus what came; a recall is answered. */
	cl->recalled = 0;
	atomic_store(&cl->lease->limits.return_chunks,
		     cl->lent.n > cl->max_chunks ? cl->lent.n - cl->max_chunks
						 : 0);
	/* The token bucket: return_rate a second, as many in a burst. */
	cl->tokens += (double)(now - cl->tokens_usec) *
		      d->conf.limits.return_rate / 1e6;
	if (cl->tokens > d->conf.limits.return_rate)
		cl->tokens = d->conf.limits.return_rate;
	cl->tokens_usec = now;
	cl->tokens -= taken + *nbad;
	if (cl->tokens < 0) {
		cl->throttled++;
		if (now - cl->warn_usec >= WARN_GAP_USEC) {
			log_warning("client %s (pid %d) gives chunks back "
				    "faster than limits.return_rate (%u/s): "
				    "slowed%s",
				    cl->name, (int)cl->pid,
				    d->conf.limits.return_rate,
				    cl->warn_suppressed ? " (more warnings "
							  "suppressed)"
							: "");
			cl->warn_usec = now;
			cl->warn_suppressed = 0;
		} else {
			cl->warn_suppressed++;
		}
	}
	return taken;
}

uint64_t lending_put_delay(struct daemon *d, struct client *cl)
{
	if (cl->tokens >= 0)
		return 0;
	return (uint64_t)(-cl->tokens * 1e6 / d->conf.limits.return_rate) + 1;
}

void lending_refresh(struct daemon *d, struct client *cl)
{
	unsigned int bad;

	if (!cl->lease)
		return;
	bad = leaseshm_sanitize(&cl->lease->counters, cl->view.v, cl->view.raw,
				(uint64_t)cl->lent.n * d->chunk_pages,
				(uint64_t)cl->lent_peak * d->chunk_pages);
	if (bad) {
		cl->bad += bad;
		d->stats.bad += bad;
	}
}
