// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * rcupoolctl set, end to end: the real daemon, a real attached client, the
 * real rcupoolctl.  A limit set from the command line is in the client's
 * slot at once and so governs its very next page request: the library's
 * pool is denied pages beyond the new max_pages.
 */
#define URCU_API_MAP 1
#include <urcu/urcu-memb.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "lend.h"
#include "rcupool.h"
#include "testd.h"

static const char *const daemon_args[] = {
	"-o", "reserve.pages_per_cpu=64", "-o", "reserve.global_pages=256",
	"-o", "reserve.lock_memory=no",	  NULL};

/* Run rcupoolctl --socket sock ARGS... (NULL-terminated); its exit status. */
static int ctl(const char *sock, ...)
{
	char prog[PATH_MAX];
	const char *argv[16];
	int n = 0, status;
	va_list ap;
	pid_t pid;

	testd_program("rcupoolctl", prog, sizeof(prog));
	argv[n++] = prog;
	argv[n++] = "--socket";
	argv[n++] = sock;
	va_start(ap, sock);
	while (n < 15 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0)
			dup2(fd, STDOUT_FILENO);
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int setup(void **state)
{
	struct testd *t = calloc(1, sizeof(*t));

	if (!t || testd_start(t, NULL, daemon_args, NULL) < 0) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct testd *t = *state;

	testd_cleanup(t);
	free(t);
	return 0;
}

/* The lease of an attached client holds the new limit once set returns
 * (in whole chunks of 16 pages: max rounds down, min up). */
static void test_set_reaches_slot(void **state)
{
	struct testd *t = *state;
	struct lender *l;
	char why[256];
	struct lease_limits *lim;

	assert_int_equal(lend_daemon_open(t->sock, "cli_set", 0, 0, &l, why,
					  sizeof(why)),
			 0);
	lim = &l->lease->limits;
	assert_int_not_equal(atomic_load(&lim->max_pages), 32);
	assert_int_equal(
		ctl(t->sock, "set", "limits.client_max_pages=40", NULL), 0);
	assert_int_equal(atomic_load(&lim->max_pages), 32);

	/* A per-client section wins over the default, for that name only. */
	assert_int_equal(ctl(t->sock, "set", "client.cli_set.min_pages=3",
			     "client.cli_set.max_pages=70",
			     "client.other.max_pages=90", NULL),
			 0);
	assert_int_equal(atomic_load(&lim->max_pages), 64);
	assert_int_equal(atomic_load(&lim->min_pages), 16); /* whole chunks */

	/* Refused: not live, or not valid; the lease keeps its limit. */
	assert_int_equal(ctl(t->sock, "set", "reserve.page_size=8K", NULL), 1);
	assert_int_equal(
		ctl(t->sock, "set", "limits.client_max_pages=lots", NULL), 1);
	assert_int_equal(atomic_load(&lim->max_pages), 64);
	l->ops->close(l);
}

/* The library's pool is denied pages beyond a max_pages set while it runs. */
static void test_set_limits_pool(void **state)
{
	struct testd *t = *state;
	struct rcupool_options o = {
		.size = sizeof(o),
		.socket_path = t->sock,
		.name = "cli_set_pool",
		.mode = RCUPOOL_MODE_DAEMON,
	};
	struct rcupool_stats st = {.size = sizeof(st)};
	struct rcupool *p;
	uint32_t max;
	char arg[64];

	assert_int_equal(rcupool_open(&o, &p), 0);
	assert_int_equal(rcupool_stats(p, &st), 0);
	/* One chunk: the smallest max under which pages are lent at all. */
	max = st.chunk_pages;
	assert_true(st.max_pages > 2 * max);
	/* Its background thread asks for chunks ahead of need. */
	for (int i = 0; i < 500 && !st.lent_pages; i++) {
		usleep(10000);
		assert_int_equal(rcupool_stats(p, &st), 0);
	}
	assert_true(st.lent_pages > 0);
	assert_int_equal(st.denied, 0);

	snprintf(arg, sizeof(arg), "limits.client_max_pages=%u", max);
	assert_int_equal(
		ctl(t->sock, "set", "limits.client_min_pages=0", arg, NULL), 0);
	assert_int_equal(rcupool_stats(p, &st), 0);
	assert_int_equal(st.max_pages, max);

	/* No grace period can end: every page filled stays held. */
	rcu_register_thread();
	rcu_read_lock();
	for (uint32_t i = 0; i < (2 * max + 2) * st.page_capacity; i++)
		rcupool_free(p, malloc(16));
	assert_int_equal(rcupool_stats(p, &st), 0);
	rcu_read_unlock();
	assert_true(st.held <= max);
	assert_true(st.denied > 0);
	assert_true(st.fallback_overflow > 0);
	rcupool_close(p);
	rcu_unregister_thread();
}

/*
 * For tests/test_cli.sh: "--attach SOCK NAME" stays attached as client NAME
 * holding a few pages (a grace period it never lets end) until killed, so
 * that clients and stats have a row to show.  Says "ready" on stdout.
 */
static int attach_and_wait(const char *sock, const char *name)
{
	struct rcupool_options o = {
		.size = sizeof(o),
		.socket_path = sock,
		.name = name,
		.mode = RCUPOOL_MODE_DAEMON,
	};
	struct rcupool_stats st = {.size = sizeof(st)};
	struct rcupool *p;

	if (rcupool_open(&o, &p) < 0 || rcupool_stats(p, &st) < 0)
		return 1;
	rcu_register_thread();
	rcu_read_lock();
	for (uint32_t i = 0; i < 3 * st.page_capacity; i++)
		rcupool_free(p, malloc(16));
	printf("ready\n");
	fflush(stdout);
	pause();
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_set_reaches_slot, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_set_limits_pool, setup,
						teardown),
	};

	if (argc == 4 && !strcmp(argv[1], "--attach"))
		return attach_and_wait(argv[2], argv[3]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
