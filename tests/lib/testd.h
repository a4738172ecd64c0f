/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_TEST_TESTD_H
#define RCUPOOL_TEST_TESTD_H

/*
 * The real daemon for tests: started from the build directory under test
 * ($RCUPOOL_BUILD, default build/) on a socket in a fresh temporary
 * directory, with its own config file, its stderr kept in DIR/stderr.
 */

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

struct testd {
	pid_t pid;
	char dir[256];
	char sock[PATH_MAX];
	char conf[PATH_MAX];
	char log[PATH_MAX];
};

/* Path of a program of the build under test ("rcupoold", "rcupoolctl"). */
const char *testd_program(const char *name, char *buf, size_t len);

/*
 * Write conf_text (NULL: empty) to DIR/rcupoold.conf and start the daemon
 * with extra arguments (NULL-terminated, may be NULL) and extra environment
 * entries ("K=V", NULL-terminated, may be NULL); wait until it answers.
 * 0 or -errno.
 */
/*
 * A daemon the test started itself (testd_start, fdstore_restart...):
 * SIGKILLed at exit if still running, so a test failing half way leaves
 * none behind.
 */
void testd_remember(pid_t pid);
/* Reaped: its pid may be another process's by exit. */
void testd_forget(pid_t pid);
void testd_sleep_ms(long ms);

int testd_start(struct testd *t, const char *conf_text,
		const char *const *args, const char *const *env);

/* SIGTERM, wait (SIGKILL after 10 s), return its exit status (or -1). */
int testd_stop(struct testd *t);

/* Stop if running, then remove its directory. */
void testd_cleanup(struct testd *t);

/* Whether DIR/stderr contains text. */
bool testd_log_has(const struct testd *t, const char *text);

/*
 * One request on a fresh connection: cmd with settings ("key=value",
 * NULL-terminated, may be NULL).  reply points into *buf (malloc'ed,
 * caller frees).  Returns proto_call's result; errmsg gets the message.
 */
int testd_call(const char *sock, uint8_t cmd, const char *const *settings,
	       struct proto_msg *reply, void **buf, char *errmsg,
	       size_t errlen);

/*
 * The daemon's whole status from one reply: fields that must agree with
 * each other are read here, never from two requests with the daemon
 * serving clients in between.  0 or -errno.
 */
struct stats_row;
int testd_status_row(const char *sock, struct stats_row *row);

/* A u64/u32 field of the reply's STATUS, or UINT64_MAX if absent. */
uint64_t testd_status_field(const char *sock, int attr);

/* Wait (up to ms) until a STATUS field equals want.  true if it did. */
bool testd_wait_status(const char *sock, int attr, uint64_t want, int ms);

/* Lines of DIR/stderr containing text. */
unsigned int testd_log_count(const struct testd *t, const char *text);

/* Open fds and resident KiB of a process (-1 when unknown). */
long testd_fd_count(pid_t pid);
long testd_rss_kib(pid_t pid);

#endif
