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
 * no NOTIFY_SOCKET, no LISTEN_FDS.
 *
 * struct fdstore stands in for systemd's fd store: a NOTIFY_SOCKET
 * (AF_UNIX SOCK_DGRAM in a directory of its own) read by a thread,
 * collecting the fds of FDSTORE=1 messages under their FDNAME (one entry
 * per open file description, as systemd keeps them: a duplicate is
 * dropped), honouring FDSTOREREMOVE=1, counting READY=1. fdstore_restart_with()
 * starts the next instance with those fds at 3.. as LISTEN_FDS, LISTEN_FDNAMES
 * and LISTEN_PID (set in the child, as systemd does), after reading every
 * message the dead instance left; like systemd it drops stored fds that
 * poll POLLHUP or POLLERR first, and keeps its own copies (a stored fd
 * stays stored until removed).
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
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

struct fdstore_entry {
	int fd;
	char name[256];
};

struct fdstore {
	int sock;
	char dir[256];
	char path[300];
	char env[320]; /* "NOTIFY_SOCKET=path", for testd_start() */
	pthread_t thread;
	pthread_mutex_t lock;
	atomic_int stop;
	struct fdstore_entry *e;
	size_t n, cap;
	atomic_uint ready;   /* READY=1 messages */
	unsigned int stored; /* fds received with FDSTORE=1 */
	unsigned int removed;
	unsigned int duplicates; /* dropped: an open file description stored
				  * already (systemd does the same) */
};

/*
 * Bind the socket in a fresh directory and start reading it.  The reader
 * thread holds s until fdstore_close(): give s static storage in a test
 * (a failed assertion leaves the test without closing it).
 */
int fdstore_open(struct fdstore *s);
/* Stop reading, close every stored fd, remove the directory. */
void fdstore_close(struct fdstore *s);
/* Read every message now waiting (the reader thread does it too). */
void fdstore_drain(struct fdstore *s);
/* Stored fds whose name starts with prefix ("" for all). */
size_t fdstore_count(struct fdstore *s, const char *prefix);
/* The k-th stored fd whose name starts with prefix, its name in buf; -1
 * if none (the fd stays the store's). */
int fdstore_find(struct fdstore *s, const char *prefix, size_t k, char *buf,
		 size_t len);
/* Store a dup of fd under name, as if the daemon had sent it. */
int fdstore_inject(struct fdstore *s, int fd, const char *name);
/* Wait up to ms until READY=1 was seen n times in all. */
bool fdstore_wait_ready(struct fdstore *s, unsigned int n, int ms);

/*
 * The next instance with the stored fds (the previous one is dead: reaped
 * by fdstore_kill or testd_stop): NOTIFY_SOCKET s, LISTEN_FDS...; waits
 * for its READY=1 (its listening socket may be the stored one, which
 * accepts connections before anyone serves it).  0 or -errno.
 */
int fdstore_restart_with(struct testd *t, struct fdstore *s,
			 const char *const *args);

#endif
