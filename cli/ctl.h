/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_CLI_CTL_H
#define RCUPOOL_CLI_CTL_H

/*
 * rcupoolctl's requests to rcupoold: one connection, one call at a time.
 * Functions return an exit status (enum ctl_exit) and have already said
 * why on stderr when it is not CTL_OK: the daemon's message (1), or the
 * path tried and what went wrong with it (3).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "stats.h"

enum ctl_exit {
	CTL_OK = 0,
	CTL_DAEMON_ERROR = 1, /* the daemon answered with an error */
	CTL_USAGE = 2,	      /* bad usage */
	CTL_UNREACHABLE = 3,  /* the daemon cannot be reached */
};

struct ctl {
	char path[108];
	int fd;
	void *buf; /* PROTO_MSG_MAX: the last reply, which rows point into */
	struct proto_msg reply;
	char message[PROTO_MESSAGE_MAX];
};

/* A GET_STATUS / GET_STATS / GET_CLIENTS reply, parsed. */
struct ctl_report {
	bool has_status;
	struct stats_row status;
	struct stats_row *cpus, *clients;
	size_t ncpus, nclients;
};

/* Connect to path (NULL: proto_socket_path's rule). */
int ctl_open(struct ctl *c, const char *path);
void ctl_close(struct ctl *c);

/* One request with settings ("key=value", n of them); the reply is in
 * c->reply and its message in c->message. */
int ctl_call(struct ctl *c, uint8_t cmd, char *const *settings, size_t n);

/* ctl_call with PROTO_A_LAYER (layer >= 0) and PROTO_A_DRY_RUN; for
 * UNSET_LIMITS the settings are bare keys. */
int ctl_call_layer(struct ctl *c, uint8_t cmd, char *const *settings,
		   size_t n, int layer, bool dry_run);

/* Call cmd (GET_STATUS, GET_STATS, GET_CLIENTS) and parse the rows; they
 * point into c->buf until the next call.  ctl_report_free after. */
int ctl_report(struct ctl *c, uint8_t cmd, struct ctl_report *r);
void ctl_report_free(struct ctl_report *r);

/* What rcupoolctl says about a failure to reach path. */
const char *ctl_reach_error(int err);

#endif
