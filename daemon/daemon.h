/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOLD_DAEMON_H
#define RCUPOOLD_DAEMON_H

/*
 * rcupoold's state, shared by its modules: reserve.c (the segment, the
 * balancer, hotplug, reclaim, census), server.c (the control socket and
 * its requests) and main.c (options, configuration, the event loop).
 * Everything runs on the sd-event loop's one thread.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "conf.h"
#include "peer.h"
#include "seg.h"

struct hotplug;
struct conn;

struct daemon_counters {
	uint64_t kicks;
	uint64_t balance_runs;
	uint64_t pages_moved;
	uint64_t pages_reclaimed;
	uint64_t pages_repaired;
	uint64_t census_runs;
	uint64_t reloads;
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

	/* The reserve. */
	struct seg seg;
	bool pinning; /* this thread can use rseq, so can fill CPU lists */
	bool pin_refused; /* sched_setaffinity refused: warned once */
	uint8_t *lost_seen; /* [npages] censuses in a row a page was lost */

	/* The control socket and its connections. */
	int listen_fd;
	bool listen_owned; /* bound by us: unlink at exit */
	char socket_path[108];
	sd_event_source *listen_src;
	struct conn *conns;
	unsigned int n_conns;
	unsigned int n_attached;

	struct hotplug *hotplug;
	sd_event_source *hotplug_src;
	sd_event_source *balance_timer;
	sd_event_source *census_timer;

	uint64_t start_usec;
	struct daemon_counters stats;
};

/* reserve.c */
int reserve_create(struct daemon *d);
void reserve_destroy(struct daemon *d);
void reserve_apply_limits(struct daemon *d);
void reserve_balance(struct daemon *d);
void reserve_cpu_offline(struct daemon *d, unsigned int cpu);
void reserve_cpu_online(struct daemon *d, unsigned int cpu);
void reserve_resync_cpus(struct daemon *d);
uint32_t reserve_reclaim_slot(struct daemon *d, uint32_t slot);
int reserve_census(struct daemon *d, bool repair);
int reserve_start_timers(struct daemon *d);
int reserve_open_hotplug(struct daemon *d);
void reserve_slot_limits(const struct daemon *d, const char *name,
			 uint32_t req_min, uint32_t req_max, uint32_t *min,
			 uint32_t *max);
void reserve_reset_stats(struct daemon *d);

/* server.c */
int server_listen(struct daemon *d, const char *socket_option);
void server_close(struct daemon *d);
void server_status_line(struct daemon *d, char *buf, size_t len);

/* main.c */
int daemon_reload(struct daemon *d, char *why, size_t whylen);
void daemon_notify_status(struct daemon *d);

#endif
