// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * librcupool against the real rcupoold: attach, several client processes,
 * kill -9 of a client mid-batch (the daemon's census stays clean and the
 * client's pages come back), the daemon dying under a client.
 *
 * Each test starts its own daemon in a fresh directory.
 */
#define URCU_API_MAP 1
#include <urcu/urcu-memb.h>

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "census.h"
#include "proto.h"
#include "stack.h"
#include "pool.h"
#include "rcupool.h"
#include "lib/tmpdir.h"

struct daemon {
	char dir[256];
	char sock[300];
	pid_t pid; /* the real rcupoold */
};

static _Atomic uint64_t freed;

struct daemon;
static void daemon_kill(struct daemon *d);

static void count_free(void *p)
{
	atomic_fetch_add(&freed, 1);
	free(p);
}

static void msleep(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static int open_daemon_pool(const struct daemon *d, struct rcupool **p,
			    size_t min, size_t max)
{
	struct rcupool_options o = {
		.size = sizeof(o),
		.socket_path = d->sock,
		.name = "test_pool_daemon",
		.mode = RCUPOOL_MODE_DAEMON,
		.free_fn = count_free,
		.min_pages = min,
		.max_pages = max,
	};

	return rcupool_open(&o, p);
}

/* Start rcupoold on a socket of its own; false (and why) if it cannot serve. */
static bool daemon_start(struct daemon *d, char *why, size_t len)
{
	const char *b = getenv("RCUPOOL_BUILD");
	char exe[512];
	struct rcupool *p = NULL;
	int r = -1;

	snprintf(exe, sizeof(exe), "%s/rcupoold", b ? b : "build");
	if (tmpdir_make(d->dir, sizeof(d->dir)) < 0) {
		snprintf(why, len, "no temporary directory");
		return false;
	}
	snprintf(d->sock, sizeof(d->sock), "%s/rcupoold.sock", d->dir);
	d->pid = fork();
	if (d->pid == 0) {
		execl(exe, exe, "--config", "/dev/null", "--socket", d->sock, "-o",
		      "reserve.pages_per_cpu=64", "-o", "reserve.global_pages=64",
		      "-o", "reserve.lock_memory=no", "-o",
		      "limits.drain_interval=100ms", "-o",
		      "limits.client_max_pages=100%", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) { /* 2 s */
		int status;

		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = -1;
			snprintf(why, len,
				 "%s exited (status %d)",
				 exe, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			tmpdir_remove(d->dir);
			return false;
		}
		if (access(d->sock, F_OK) == 0) {
			r = open_daemon_pool(d, &p, 0, 0);
			if (r == 0)
				break;
		}
		msleep(10);
	}
	if (r == 0) {
		rcupool_close(p);
		return true;
	}
	snprintf(why, len, "rcupoold at %s does not serve ATTACH (%s)",
		 d->sock, strerror(-r));
	kill(d->pid, SIGKILL);
	waitpid(d->pid, NULL, 0);
	d->pid = -1;
	tmpdir_remove(d->dir);
	return false;
}

static void daemon_stop(struct daemon *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		waitpid(d->pid, NULL, 0);
	}
	d->pid = -1;
	tmpdir_remove(d->dir);
}


/* The daemon dies: every client connection drops. */
static void daemon_kill(struct daemon *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = -1;
	}
}

/* The segment the daemon and its clients share. */
static struct seg *daemon_seg(struct daemon *d, struct rcupool *p)
{
	return p->seg;
}

static struct daemon the_daemon;

/* The real rcupoold. */
static int setup(void **state)
{
	char why[1024];

	rcu_register_thread();
	atomic_store(&freed, 0);
	memset(&the_daemon, 0, sizeof(the_daemon));
	if (!daemon_start(&the_daemon, why, sizeof(why))) {
		printf("# rcupoold did not start: %s\n", why);
		return -1;
	}
	*state = &the_daemon;
	return 0;
}

static int teardown(void **state)
{
	if (*state)
		daemon_stop(*state);
	rcu_unregister_thread();
	return 0;
}

/* A census taken while the daemon balances sees pages in transit: retry. */
static bool census_settles(struct seg *census_seg, int slot, uint64_t held)
{
	for (int i = 0; i < 500; i++) {
		struct census c;
		bool ok;

		if (census_take(census_seg, &c) < 0)
			return false;
		ok = census_clean(&c) &&
		     (slot < 0 || c.slot_held[slot] == held);
		census_release(&c);
		if (ok)
			return true;
		msleep(10);
	}
	return false;
}

static void test_attach(void **state)
{
	struct daemon *d;
	struct rcupool *p;
	struct rcupool_stats st = {.size = sizeof(st)};

	d = *state;
	assert_int_equal(open_daemon_pool(d, &p, 0, 0), 0);
	assert_int_equal(rcupool_stats(p, &st), 0);
	assert_int_equal(st.mode, RCUPOOL_MODE_DAEMON);
	assert_int_equal(st.attached, 1);
	for (int i = 0; i < 100000; i++)
		rcupool_free(p, malloc(64));
	rcupool_barrier(p);
	assert_int_equal(atomic_load(&freed), 100000);
	assert_int_equal(rcupool_stats(p, &st), 0);
	assert_int_equal(st.held, 0);
	assert_true(st.pages_got > 0);
	assert_true(census_settles(daemon_seg(d, p), (int)p->lender->lease->client_id, 0));
	rcupool_close(p);
}

/* Several client processes at once, then a clean census. */
static void test_many_processes(void **state)
{
	struct daemon *d;
	struct rcupool *obs;
	pid_t kids[4];
	int status;

	d = *state;
	for (int k = 0; k < 4; k++) {
		call_rcu_before_fork();
		kids[k] = fork();
		if (kids[k] > 0)
			call_rcu_after_fork_parent();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0) {
			struct rcupool *p;

			/* Registered: the child is a copy of this thread. */
			call_rcu_after_fork_child();
			if (open_daemon_pool(d, &p, 0, 0) < 0)
				_exit(2);
			for (int i = 0; i < 200000; i++)
				rcupool_free(p, malloc(32));
			rcupool_close(p);
			_exit(atomic_load(&freed) == 200000 ? 0 : 1);
		}
	}
	for (int k = 0; k < 4; k++) {
		assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(open_daemon_pool(d, &obs, 0, 0), 0);
	assert_true(census_settles(daemon_seg(d, obs), -1, 0));
	rcupool_close(obs);
}

/* kill -9 with pages held and in flight: the daemon takes them back. */
static void test_kill_mid_batch(void **state)
{
	struct daemon *d;
	struct rcupool *obs;
	int fds[2], slot = -1;
	pid_t kid;

	d = *state;
	assert_int_equal(pipe(fds), 0);
	call_rcu_before_fork();
	kid = fork();
	if (kid > 0)
		call_rcu_after_fork_parent();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct rcupool *p;

		call_rcu_after_fork_child();
		if (open_daemon_pool(d, &p, 0, 0) < 0)
			_exit(2);
		/* Block grace periods: pages stay held, one is partial. */
		rcu_read_lock();
		for (int i = 0; i < 5000; i++)
			rcupool_free(p, malloc(32));
		slot = (int)p->lender->lease->client_id;
		if (write(fds[1], &slot, sizeof(slot)) != sizeof(slot))
			_exit(3);
		pause();
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &slot, sizeof(slot)), sizeof(slot));
	close(fds[0]);
	assert_int_equal(open_daemon_pool(d, &obs, 0, 0), 0);
	assert_true(atomic_load(&obs->seg->slot[slot].held) > 0);
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	/* The daemon saw EOF: every page of the dead slot comes back. */
	assert_true(census_settles(daemon_seg(d, obs), slot, 0));
	rcupool_close(obs);
}

/* The daemon dies: the client carries on, detached, and closes cleanly. */
static void test_daemon_dies(void **state)
{
	struct daemon *d;
	struct rcupool *p;
	struct rcupool_stats st = {.size = sizeof(st)};

	d = *state;
	assert_int_equal(open_daemon_pool(d, &p, 0, 0), 0);
	for (int i = 0; i < 10000; i++)
		rcupool_free(p, malloc(32));
	daemon_kill(d);
	for (int i = 0; i < 500; i++) {
		rcupool_stats(p, &st);
		if (!st.attached)
			break;
		msleep(10);
	}
	assert_int_equal(st.attached, 0);
	for (int i = 0; i < 300000; i++)
		rcupool_free(p, malloc(32));
	rcupool_barrier(p);
	assert_int_equal(atomic_load(&freed), 310000);
	rcupool_close(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_attach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_processes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kill_mid_batch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_daemon_dies, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
