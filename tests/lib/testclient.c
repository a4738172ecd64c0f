// SPDX-License-Identifier: LGPL-2.1-or-later
#define URCU_API_MAP 1
#include <urcu/urcu-memb.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testclient.h"

_Atomic uint64_t tclient_freed, tclient_double, tclient_early;
_Atomic int tclient_stop;
_Atomic int tclient_section_open;

static struct tclient_obj *shared; /* what the reader dereferences */

void tclient_reset(void)
{
	atomic_store(&tclient_freed, 0);
	atomic_store(&tclient_double, 0);
	atomic_store(&tclient_early, 0);
	atomic_store(&tclient_stop, 0);
	atomic_store(&tclient_section_open, 0);
	shared = NULL;
}

struct tclient_obj *tclient_obj_new(int guarded)
{
	struct tclient_obj *o = malloc(sizeof(*o));

	if (!o)
		abort();
	atomic_store_explicit(&o->magic, TCLIENT_LIVE, memory_order_relaxed);
	o->guarded = guarded;
	return o;
}

void tclient_obj_free(void *p)
{
	struct tclient_obj *o = p;

	if (atomic_load_explicit(&o->magic, memory_order_relaxed) !=
	    TCLIENT_LIVE) {
		atomic_fetch_add(&tclient_double, 1);
		return;
	}
	/* Passed while the test's own read-side section was open: too early. */
	if (o->guarded && atomic_load(&tclient_section_open))
		atomic_fetch_add(&tclient_early, 1);
	/* A reader still holding it would see this: an early free. */
	atomic_store_explicit(&o->magic, TCLIENT_POISON, memory_order_relaxed);
	atomic_fetch_add(&tclient_freed, 1);
	free(o);
}

struct rcupool_options tclient_options(const char *sock, const char *name)
{
	struct rcupool_options o = {
		.size = sizeof(o),
		.socket_path = sock,
		.name = name,
		.mode = RCUPOOL_MODE_DAEMON,
		.free_fn = tclient_obj_free,
	};

	return o;
}

/* Holds the published object across a few hundred reads: never poisoned. */
static void *reader(void *arg)
{
	(void)arg;
	rcu_register_thread();
	while (!atomic_load(&tclient_stop)) {
		rcu_read_lock();
		struct tclient_obj *o = rcu_dereference(shared);

		for (int i = 0; o && i < 200; i++)
			if (atomic_load_explicit(&o->magic,
						 memory_order_relaxed) !=
			    TCLIENT_LIVE)
				atomic_fetch_add(&tclient_early, 1);
		rcu_read_unlock();
	}
	rcu_unregister_thread();
	return NULL;
}

pthread_t tclient_reader_start(void)
{
	pthread_t t;

	/* Without its reader a client checks nothing: no use going on. */
	if (pthread_create(&t, NULL, reader, NULL))
		abort();
	return t;
}

void tclient_reader_stop(pthread_t reader)
{
	atomic_store(&tclient_stop, 1);
	pthread_join(reader, NULL);
}

uint64_t tclient_churn(struct rcupool *p, uint64_t n)
{
	uint64_t passed = 0;

	for (uint64_t i = 0; i < n; i++) {
		struct tclient_obj *old =
			rcu_xchg_pointer(&shared, tclient_obj_new(0));

		if (old) {
			rcupool_free(p, old);
			passed++;
		}
	}
	return passed;
}

uint64_t tclient_churn_end(struct rcupool *p)
{
	struct tclient_obj *last = rcu_xchg_pointer(&shared, NULL);

	if (!last)
		return 0;
	rcupool_free(p, last);
	return 1;
}

int tclient_verdict(uint64_t passed)
{
	if (atomic_load(&tclient_early))
		return TCLIENT_V_EARLY;
	if (atomic_load(&tclient_double))
		return TCLIENT_V_DOUBLE;
	if (passed != TCLIENT_UNCOUNTED &&
	    atomic_load(&tclient_freed) != passed)
		return TCLIENT_V_COUNT;
	return TCLIENT_V_OK;
}

static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&tclient_stop, 1);
}

pid_t tclient_spawn(int (*fn)(void *arg), void *arg)
{
	sigset_t usr1, old;
	pid_t pid;
	int err;

	/*
	 * SIGUSR1 blocked across fork() until the child has its handler: a
	 * client spawned just before the end is told to finish at once,
	 * and must not die of the default action (verdict 128 + SIGUSR1).
	 */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	/* The test's own call_rcu threads, if any, are consistent in both. */
	call_rcu_before_fork();
	pid = fork();
	if (pid == 0) {
		call_rcu_after_fork_child();
		/* A test killed half way must not leave clients spinning. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/*
		 * Not cmocka's handlers: a client that crashes (the scribbler
		 * of its own memory may) dies of it, it does not report a
		 * failure of the test's process nor run the next test.
		 */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		signal(SIGILL, SIG_DFL);
		signal(SIGFPE, SIG_DFL);
		signal(SIGABRT, SIG_DFL);
		signal(SIGUSR1, on_usr1);
		sigprocmask(SIG_SETMASK, &old, NULL);
		_exit(fn(arg));
	}
	err = errno;
	call_rcu_after_fork_parent();
	sigprocmask(SIG_SETMASK, &old, NULL);
	return pid < 0 ? -err : pid;
}

int tclient_exit_verdict(pid_t pid, int status)
{
	if (WIFSIGNALED(status)) {
		printf("client %d: killed by signal %d\n", (int)pid,
		       WTERMSIG(status));
		return 128 + WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}

int tclient_wait(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return tclient_exit_verdict(pid, status);
}

int tclient_finish(pid_t pid)
{
	kill(pid, SIGUSR1);
	return tclient_wait(pid);
}
