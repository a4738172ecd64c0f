/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOLD_PEER_H
#define RCUPOOLD_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Who is at the other end of a connected AF_UNIX socket. */
struct peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* supplementary groups (SO_PEERGROUPS), malloc'd */
	size_t n_groups;
};

/*
 * Fill *p from SO_PEERCRED and SO_PEERGROUPS of fd (credentials as of
 * connect()).  The group buffer grows on ERANGE.  A kernel without
 * SO_PEERGROUPS (ENOPROTOOPT, before 4.13) leaves n_groups 0: only the
 * primary group counts then.  Returns 0 or -errno; on error *p is empty.
 */
int peer_get(int fd, struct peer *p);

/* Free the group list and reset *p; safe on a zeroed or freed peer. */
void peer_free(struct peer *p);

/* gid is p's primary group or one of its supplementary groups. */
bool peer_in_group(const struct peer *p, gid_t gid);

/*
 * "pid 1234 (comm) uid 1000" for log messages; "(comm)" is left out when
 * /proc/PID/comm cannot be read, and characters of comm that are not
 * printable ASCII are shown as '?' (a peer chooses its own comm).
 * Returns 0, or -ENOBUFS when truncated (buf still NUL-terminated).
 */
int peer_describe(const struct peer *p, char *buf, size_t len);

enum peer_role {
	PEER_READ,   /* status, stats: anyone who can open the socket */
	PEER_ATTACH, /* attach as a client */
	PEER_ADMIN,  /* set limits, reset stats, reload */
};

#define PEER_NO_GROUP ((gid_t)-1)

/*
 * May p act in role?  Reading: anyone.  Attaching: root, daemon_uid, or a
 * member of attach_gid; anyone when attach_gid is PEER_NO_GROUP.
 * Administering: root, daemon_uid, or a member of admin_gid; with
 * admin_gid PEER_NO_GROUP only root and daemon_uid.
 */
bool peer_may(const struct peer *p, enum peer_role role, gid_t attach_gid,
	      gid_t admin_gid, uid_t daemon_uid);

/*
 * Resolve a group name (getgrnam_r).  NULL or "" gives PEER_NO_GROUP ("no
 * group") and 0.  Returns 0, -ENOENT for an unknown group, or -errno.
 */
int peer_group_lookup(const char *name, gid_t *ret);

#endif
