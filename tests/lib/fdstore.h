/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_TEST_FDSTORE_H
#define RCUPOOL_TEST_FDSTORE_H

/*
 * Restarting the real daemon in tests (tests/test_restart.c).
 *
 * fdstore_restart() starts the next instance of a daemon first started by
 * testd_start(): the same directory, configuration and socket path, its
 * stderr appended to DIR/stderr, and waits until it accepts connections.
 * Started by hand, as an operator would after a crash without systemd:
 * no NOTIFY_SOCKET, no LISTEN_FDS.  (The stand-in for systemd's fd store,
 * a NOTIFY_SOCKET collecting FDSTORE=1 fds and passing them on as
 * LISTEN_FDS/LISTEN_FDNAMES, belongs here too; not written yet.)
 */

#include <sys/types.h>

#include "testd.h"

/*
 * SIGKILL the running instance (if any) and reap it; 0, or -errno.
 * Leaves the stale socket file behind, as a crash does.
 */
int fdstore_kill(struct testd *t);

/*
 * Start the next instance with args (NULL-terminated, may be NULL) on
 * t->sock and t->conf; t->pid is the new one.  0 or -errno.
 */
int fdstore_restart(struct testd *t, const char *const *args);

#endif
