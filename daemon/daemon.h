/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOLD_DAEMON_H
#define RCUPOOLD_DAEMON_H

/*
 * rcupoold's state, shared by its modules: reserve.c (chunks, the pools,
 * the balancer, hotplug, the census of the books), lending.c (clients:
 * lending and taking back chunks, limits, leases, process exit),
 * leaseshm.c (the per-client memfd and the sanitizer of its counters),
 * server.c (the control socket and its requests) and main.c (options,
 * configuration, the event loop).  Everything runs on the sd-event loop's
 * one thread; the books (which chunk is where, lent to whom) are in this
 * process's memory only (DESIGN.md section 3).
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "conf.h"
#include "lease.h"
#include "peer.h"
#include "proto.h"

struct hotplug;
struct conn;

enum chunk_where {
	CHUNK_CPU,    /* in the pool of CPU chunk.pool */
	CHUNK_GLOBAL, /* in the global pool */
	CHUNK_LENT,   /* lent to client chunk.owner */
};

/* One chunk: chunk_pages pages in a memfd of their own, lent at most once. */
struct chunk {
	uint64_t id;	/* never reused */
	int fd;		/* held while in a pool; closed once lent */
	void *map;	/* the daemon's mapping (populate, mlock); until retired */
	int32_t cpu;	/* populated on this CPU; -1: anywhere */
	int32_t pool;	/* CHUNK_CPU: which CPU's pool */
	int32_t owner;	/* CHUNK_LENT: client slot */
	enum chunk_where where;
	struct chunk *next, *prev; /* its list (pool or client) */
	struct chunk *hnext;	   /* id hash chain */
};

struct chunk_list {
	struct chunk *head;
	uint32_t n;
};

struct pool_cpu {
	struct chunk_list free;
	bool online;
	uint32_t low, target, high, protect; /* in chunks */
	uint64_t empty, moved_in, moved_out;
};

/* The client's counters as last shown (sanitized), and what was seen. */
struct lease_view {
	uint64_t v[16];	   /* the fields of struct lease_counters, in order */
	uint64_t raw[16];  /* last raw value that was refused */
	uint64_t base[16]; /* RESET_STATS: shown = v - base */
};

enum client_state {
	CLIENT_FREE,
	CLIENT_ATTACHED, /* connection open */
	CLIENT_DETACHED, /* connection closed, process alive: chunks still its */
};

struct client {
	struct daemon *d;
	int slot;
	uint64_t gen; /* this client's generation (fd store names) */
	enum client_state state;
	struct conn *conn; /* NULL once detached */
	pid_t pid;
	uid_t uid;
	char name[PROTO_NAME_MAX];
	int pidfd;
	sd_event_source *pidfd_src;
	int lease_fd;
	struct lease_shm *lease;
	struct chunk_list lent;
	uint32_t req_min, req_max;	 /* asked at attach (0: default) */
	uint32_t min_pages, max_pages;	 /* as configured, pages */
	uint32_t min_chunks, max_chunks; /* as enforced */
	uint32_t lent_peak;		 /* chunks */
	uint64_t attached_usec;
	struct lease_view view;
	uint64_t bad;
	uint64_t chunks_got, chunks_put, denied, empty;
	uint32_t recalled; /* chunks asked back from its surplus (a shortage) */
	/* CHUNK_PUT rate (limits.return_rate): a token bucket. */
	double tokens;
	uint64_t tokens_usec;
	uint64_t throttled;
	uint64_t warn_usec;
	uint32_t warn_suppressed;
};

struct daemon_counters {
	uint64_t kicks; /* CHUNK_GET requests */
	uint64_t balance_runs;
	uint64_t chunks_moved;
	uint64_t pages_reclaimed; /* in chunks of clients that exited */
	uint64_t census_runs;
	uint64_t census_errors;
	uint64_t reloads;
	uint64_t chunks_created, chunks_retired, chunks_lent, create_failed;
	uint64_t depletions; /* CHUNK_GET found no chunk for a client */
	uint64_t denied;     /* CHUNK_GET refused by a client's max */
	uint64_t bad;	     /* bad ids, scribbled counters (all clients) */
	uint64_t chunks_recalled; /* asked back from idle clients (a shortage) */
};

struct daemon {
	sd_event *event;

	/* Configuration: where it came from, so a reload reads the same. */
	struct conf conf;
	const char *config_path;
	bool config_explicit;
	char **options; /* -o assignments, applied after the files */
	size_t n_options;
	unsigned int ncpus; /* possible CPUs */
	gid_t attach_gid, admin_gid;
	uid_t uid;
	uint64_t generation; /* this instance, written into every lease */

	/* The reserve: chunks and where they are. */
	uint32_t page_size, chunk_pages;
	uint64_t chunk_bytes;
	uint32_t nchunks;   /* configured: pools + lent, when all is well */
	bool hugetlb;	    /* chunks are huge pages */
	bool locked;	    /* every chunk so far was mlocked */
	bool lock_warned;
	bool pin_refused;   /* sched_setaffinity refused: warned once */
	struct pool_cpu *cpu; /* [ncpus] */
	struct chunk_list global;
	uint32_t n_pool, n_lent; /* chunks in pools, lent */
	struct chunk **hash;
	uint32_t hash_mask;
	uint64_t next_id;
	sd_event_source *refill_src;

	/* Clients (attach slots). */
	struct client *clients; /* [nslots] */
	uint32_t nslots;
	unsigned int n_attached; /* slots in use (attached or detached) */

	/* The control socket and its connections. */
	int listen_fd;
	bool listen_owned; /* bound by us: unlink at exit */
	char socket_path[108];
	sd_event_source *listen_src;
	struct conn *conns;
	unsigned int n_conns;
	unsigned int n_unattached;
	bool accept_pause_logged;
	uint64_t refused_usec;
	uint32_t refused_suppressed;

	struct hotplug *hotplug;
	sd_event_source *hotplug_src;
	sd_event_source *balance_timer;
	sd_event_source *census_timer;

	uint64_t start_usec;
	/* Restarts: this instance's start (CLOCK_REALTIME, usec), clients
	 * taken over at start, clients that re-attached to us after losing
	 * a previous instance (the ATTACH said REATTACH). */
	uint64_t started_realtime_usec;
	uint32_t clients_adopted;
	uint64_t clients_reattached;
	struct daemon_counters stats;

	/* The service's fd store (fdstore.h). */
	bool fdstore;	     /* NOTIFY_SOCKET: keep our fds in systemd */
	bool fdstore_frozen; /* stopping: leave the store as it is */
	bool fdstore_warned;
	bool listen_adopted;
	uint64_t next_client_gen;
	uint32_t fdstore_rejected; /* stored fds that did not fit, at start */
	uint32_t adopt_page_size, adopt_chunk_pages; /* the leases' geometry */
	struct fdstore_in *fds_in; /* at start only */
};

uint64_t daemon_now_usec(void);

/* reserve.c: chunks and pools */
int reserve_create(struct daemon *d);
void reserve_destroy(struct daemon *d);
void reserve_apply_limits(struct daemon *d);
void reserve_balance(struct daemon *d);
void reserve_cpu_offline(struct daemon *d, unsigned int cpu);
void reserve_cpu_online(struct daemon *d, unsigned int cpu);
void reserve_resync_cpus(struct daemon *d);
int reserve_census(struct daemon *d, char *why, size_t whylen);
int reserve_start_timers(struct daemon *d);
int reserve_open_hotplug(struct daemon *d);
void reserve_slot_limits(const struct daemon *d, const char *name,
			 uint32_t req_min, uint32_t req_max, uint32_t *min,
			 uint32_t *max);
void reserve_reset_stats(struct daemon *d);
/* Configured reserve in pages (whole chunks). */
uint64_t reserve_pages(const struct daemon *d);
/* Take a chunk for a client: from cpu's pool (-1: any), the global pool,
 * then the others; below a pool's protect floor only if may_protect. */
struct chunk *reserve_take(struct daemon *d, int cpu, bool may_protect);
/* A chunk whose lease ended: forget it, close it, schedule a fresh one. */
void reserve_retire(struct daemon *d, struct chunk *c);
struct chunk *reserve_find(const struct daemon *d, uint64_t id);
void reserve_schedule_refill(struct daemon *d);
/* A chunk from the fd store: mapped, in the pool of its CPU (or global),
 * or lent to owner (then its fd is closed).  NULL and errno on failure. */
struct chunk *reserve_adopt_chunk(struct daemon *d, uint64_t id, int fd,
				  int32_t cpu, struct client *owner);
void list_add(struct chunk_list *l, struct chunk *c);
void list_del(struct chunk_list *l, struct chunk *c);

/* lending.c: clients */
int lending_init(struct daemon *d);
void lending_destroy(struct daemon *d);
struct client *lending_attach(struct daemon *d, struct conn *conn, pid_t pid,
			      uid_t uid, int pidfd, const char *name,
			      uint32_t req_min, uint32_t req_max, int *err,
			      char *why, size_t whylen);
/* A client from the fd store, limits from the current configuration:
 * takes lease_fd, lease and pidfd.  NULL if its process cannot be
 * watched. */
struct client *lending_adopt(struct daemon *d, uint32_t slot, uint64_t gen,
			     pid_t pid, uid_t uid, const char *name,
			     uint32_t req_min, uint32_t req_max, int lease_fd,
			     struct lease_shm *lease, int pidfd);
/* The connection closed: keep the chunks until the process exits. */
void lending_detach(struct daemon *d, struct client *cl);
/* The process exited: retire its chunks, free its slot. */
void lending_release(struct daemon *d, struct client *cl);
/* Up to want chunks: *n filled, or -EDQUOT / -ENOSPC. */
int lending_get(struct daemon *d, struct client *cl, int cpu, uint32_t want,
		struct chunk **out, uint32_t *n);
/* Take back ids; bad ones are listed in bad[] (*nbad).  Returns taken. */
uint32_t lending_put(struct daemon *d, struct client *cl, const uint64_t *ids,
		     uint32_t n, uint64_t *bad, uint32_t *nbad);
/*
 * Push the configured limits into every lease (after `rcupoolctl set`,
 * a reload): min/max per client; a client now over its max gets
 * return_chunks raised and a RECALL.  Called by reserve_apply_limits.
 */
void lending_apply_limits(struct daemon *d);
/* Sanitize a client's counters (the census timer and every report). */
void lending_refresh(struct daemon *d, struct client *cl);
/* Before reading the connection again (CHUNK_PUT rate): 0 now, or usec. */
uint64_t lending_put_delay(struct daemon *d, struct client *cl);

/* server.c */
int server_listen(struct daemon *d, const char *socket_option);
void server_close(struct daemon *d);
void server_status_line(struct daemon *d, char *buf, size_t len);
/* Send a RECALL (return_chunks) on a client's connection; best effort. */
void server_recall(struct client *cl, uint32_t return_chunks);
/* An attached connection from the fd store.  0 or -errno. */
int server_adopt_conn(struct daemon *d, int fd, struct client *cl);
/* The client's connection is gone: server.c forgets it. */
void server_conn_gone(struct conn *c);

/* main.c */
int daemon_reload(struct daemon *d, char *why, size_t whylen);
void daemon_notify_status(struct daemon *d);

#endif
