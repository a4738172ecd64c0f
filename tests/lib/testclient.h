/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_TEST_TESTCLIENT_H
#define RCUPOOL_TEST_TESTCLIENT_H

/*
 * A librcupool borrower for tests, the one test_borrowers, test_restart and
 * test_pool_daemon run: objects published one at a time and freed into the
 * pool while a reader thread holds the published one across its free, with
 * a poisoning free_fn that counts what it saw.  Every object must be freed
 * exactly once (freed == passed, no double free) and never early (the
 * reader never sees a poisoned object).
 *
 * liburcu-memb, like the library: the calling thread must be registered
 * (rcu_register_thread) to churn.  One client a process: the counters are
 * the process's.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "rcupool.h"

#define TCLIENT_LIVE   0x4c4956454f424a31ull
#define TCLIENT_POISON 0xdeaddeaddeaddeadull

struct tclient_obj {
	_Atomic uint64_t magic;
	int guarded; /* passed inside the test's own read-side section */
	char pad[36];
};

/* What tclient_obj_free saw. */
extern _Atomic uint64_t tclient_freed, tclient_double, tclient_early;
/* Tells the reader (and any loop of the test's) to finish; SIGUSR1 sets it. */
extern _Atomic int tclient_stop;
/*
 * Set while the test holds a read-side section of its own: a guarded
 * object freed meanwhile was freed early.
 */
extern _Atomic int tclient_section_open;

/* Counters, stop and the published object back to zero. */
void tclient_reset(void);

/* A live object (aborts if there is no memory: the test cannot go on). */
struct tclient_obj *tclient_obj_new(int guarded);

/* The pool's free_fn: poisons, counts freed, double and early frees. */
void tclient_obj_free(void *p);

/* A DAEMON-mode pool on sock named name, freeing with tclient_obj_free. */
struct rcupool_options tclient_options(const char *sock, const char *name);

/* The reader: runs until tclient_reader_stop (or tclient_stop is set). */
pthread_t tclient_reader_start(void);
void tclient_reader_stop(pthread_t reader);

/*
 * Publish n new objects one after the other, each replacing (and freeing
 * into p) the one before; how many were passed to rcupool_free.
 */
uint64_t tclient_churn(struct rcupool *p, uint64_t n);

/* Unpublish and free the last one: how many were passed (0 or 1). */
uint64_t tclient_churn_end(struct rcupool *p);

/* A client's exit status: its verdict.  A test's own start at _OWN. */
enum tclient_verdict {
	TCLIENT_V_OK = 0,
	TCLIENT_V_OPEN = 10,   /* rcupool_open failed */
	TCLIENT_V_EARLY = 11,  /* a reader saw a poisoned object */
	TCLIENT_V_DOUBLE = 12, /* an object freed twice */
	TCLIENT_V_COUNT = 13,  /* freed != passed after rcupool_barrier */
	TCLIENT_V_OWN = 14,
};

/* For tclient_verdict: other threads freed too, freed cannot be checked. */
#define TCLIENT_UNCOUNTED UINT64_MAX

/* After rcupool_barrier: the verdict of the counters, passed objects. */
int tclient_verdict(uint64_t passed);

/*
 * Fork a client process running fn(arg) and exiting with what it returns.
 * It dies with the test (PR_SET_DEATHSIG), of its own crashes (not by
 * cmocka's handlers), and SIGUSR1 sets tclient_stop in it.  Its pid or
 * -errno.
 */
pid_t tclient_spawn(int (*fn)(void *arg), void *arg);

/* Reap pid: its exit status, or 128 + the signal that killed it; -1. */
int tclient_wait(pid_t pid);

/* SIGUSR1 (finish, check, exit), then tclient_wait. */
int tclient_finish(pid_t pid);

/* A waitpid status as a verdict (as tclient_wait), saying a signal. */
int tclient_exit_verdict(pid_t pid, int status);

#endif
