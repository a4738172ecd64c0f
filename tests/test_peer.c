// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "../daemon/peer.h"
#include "lib/tmpdir.h"

#define NOBODY	    65534
#define CHILD_GID   4000
#define GROUP_A	    4242
#define GROUP_B	    4343
#define GROUP_OTHER 5000

static void test_peer_socketpair(void **state)
{
	gid_t mine[256];
	int sv[2], n;
	struct peer p;
	char desc[128], want[64];

	assert_int_equal(
		socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(peer_get(sv[0], &p), 0);
	assert_int_equal(p.pid, getpid());
	assert_int_equal(p.uid, geteuid());
	assert_int_equal(p.gid, getegid());
	n = getgroups(256, mine);
	assert_true(n >= 0);
	assert_int_equal(p.n_groups, (size_t)n);
	for (int i = 0; i < n; i++)
		assert_true(peer_in_group(&p, mine[i]));
	assert_true(peer_in_group(&p, getegid()));
	assert_false(peer_in_group(&p, PEER_NO_GROUP));

	assert_int_equal(peer_describe(&p, desc, sizeof(desc)), 0);
	snprintf(want, sizeof(want), "pid %d (test_peer) uid %u", (int)getpid(),
		 (unsigned int)geteuid());
	assert_string_equal(desc, want);
	/* Truncation is reported, the buffer stays a string. */
	assert_int_equal(peer_describe(&p, desc, 8), -ENOBUFS);
	assert_int_equal(strlen(desc), 7);

	peer_free(&p);
	assert_null(p.groups);
	assert_int_equal(p.n_groups, 0);
	peer_free(&p);
	close(sv[0]);
	close(sv[1]);
}

static void test_peer_unconnected(void **state)
{
	struct peer p;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(peer_get(fd, &p), -ENOTCONN);
	assert_null(p.groups);
	close(fd);
	assert_int_equal(peer_get(fd, &p), -EBADF);
}

static void test_peer_describe_no_proc(void **state)
{
	struct peer p = {.pid = 0x7ffffff0, .uid = 1000, .gid = 1000};
	char desc[64];

	/* No such process: the comm is left out. */
	assert_int_equal(peer_describe(&p, desc, sizeof(desc)), 0);
	assert_string_equal(desc, "pid 2147483632 uid 1000");
}

static void test_peer_may(void **state)
{
	gid_t groups[] = {20, 30};
	struct peer user = {.pid = 1,
			    .uid = 1000,
			    .gid = 10,
			    .groups = groups,
			    .n_groups = 2};
	struct peer root = {.pid = 1, .uid = 0, .gid = 0};
	struct peer daemon = {.pid = 1, .uid = 999, .gid = 999};
	const gid_t none = PEER_NO_GROUP;

	assert_true(peer_in_group(&user, 10));
	assert_true(peer_in_group(&user, 30));
	assert_false(peer_in_group(&user, 40));

	/* Anyone reads. */
	assert_true(peer_may(&user, PEER_READ, 40, 40, 999));
	/* Attach: no attach group means anyone. */
	assert_true(peer_may(&user, PEER_ATTACH, none, none, 999));
	assert_true(peer_may(&user, PEER_ATTACH, 20, none, 999));
	assert_true(peer_may(&user, PEER_ATTACH, 10, none, 999));
	assert_false(peer_may(&user, PEER_ATTACH, 40, none, 999));
	assert_true(peer_may(&root, PEER_ATTACH, 40, none, 999));
	assert_true(peer_may(&daemon, PEER_ATTACH, 40, none, 999));
	/* Admin implies attach: a member of the admin group (30) attaches
	 * even when not in the attach group (40). */
	assert_true(peer_may(&user, PEER_ATTACH, 40, 30, 999));
	assert_false(peer_may(&user, PEER_ATTACH, 40, 50, 999));
	/* Admin: no admin group means root and the daemon's uid only. */
	assert_false(peer_may(&user, PEER_ADMIN, none, none, 999));
	assert_false(peer_may(&user, PEER_ADMIN, 20, 40, 999));
	assert_true(peer_may(&user, PEER_ADMIN, none, 30, 999));
	assert_true(peer_may(&root, PEER_ADMIN, none, none, 999));
	assert_true(peer_may(&daemon, PEER_ADMIN, none, none, 999));
	assert_true(peer_may(&user, PEER_ADMIN, none, none, 1000));
	assert_false(peer_may(&user, 42, none, none, 999));
}

static void test_peer_group_lookup(void **state)
{
	gid_t g = 1;

	assert_int_equal(peer_group_lookup("", &g), 0);
	assert_int_equal(g, PEER_NO_GROUP);
	g = 1;
	assert_int_equal(peer_group_lookup(NULL, &g), 0);
	assert_int_equal(g, PEER_NO_GROUP);
	assert_int_equal(peer_group_lookup("root", &g), 0);
	assert_int_equal(g, 0);
	g = 7;
	assert_int_equal(peer_group_lookup("no-such-group-rcupool-x", &g),
			 -ENOENT);
	assert_int_equal(g, 7);
}

/*
 * A child drops to nobody with known groups and connects to a listening
 * socket: the daemon side must see those credentials, not its own.
 */
static void test_peer_dropped_child(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[80], desc[128];
	int lfd, cfd, status, sync[2];
	struct peer p;
	pid_t pid;
	char c;

	if (geteuid() != 0)
		skip();
	assert_int_equal(tmpdir_make(dir, sizeof(dir)), 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(chmod(sa.sun_path, 0666), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(pipe(sync), 0);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		gid_t groups[] = {GROUP_A, GROUP_B};
		int fd;

		close(sync[1]);
		prctl(PR_SET_NAME, "peerchild");
		if (setgroups(2, groups) < 0 || setgid(CHILD_GID) < 0 ||
		    setuid(NOBODY) < 0)
			_exit(10);
		if (getuid() != NOBODY || geteuid() != NOBODY)
			_exit(11);
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (fd < 0)
			_exit(12);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(13);
		/* Stay alive (so /proc/PID/comm exists) until told. */
		if (read(sync[0], &c, 1) < 0)
			_exit(14);
		_exit(0);
	}
	close(sync[0]);
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(cfd >= 0);

	assert_int_equal(peer_get(cfd, &p), 0);
	assert_int_equal(p.pid, pid);
	assert_int_equal(p.uid, NOBODY);
	assert_int_equal(p.gid, CHILD_GID);
	assert_int_equal(p.n_groups, 2);
	assert_true(peer_in_group(&p, GROUP_A));
	assert_true(peer_in_group(&p, GROUP_B));
	assert_true(peer_in_group(&p, CHILD_GID));
	assert_false(peer_in_group(&p, 0));
	assert_false(peer_in_group(&p, GROUP_OTHER));

	assert_int_equal(peer_describe(&p, desc, sizeof(desc)), 0);
	{
		char want[64];

		snprintf(want, sizeof(want), "pid %d (peerchild) uid 65534",
			 (int)pid);
		assert_string_equal(desc, want);
	}

	assert_true(peer_may(&p, PEER_READ, GROUP_OTHER, GROUP_OTHER, 0));
	assert_true(peer_may(&p, PEER_ATTACH, PEER_NO_GROUP, PEER_NO_GROUP, 0));
	assert_true(peer_may(&p, PEER_ATTACH, GROUP_A, PEER_NO_GROUP, 0));
	assert_true(peer_may(&p, PEER_ATTACH, CHILD_GID, PEER_NO_GROUP, 0));
	assert_false(peer_may(&p, PEER_ATTACH, GROUP_OTHER, PEER_NO_GROUP, 0));
	assert_false(peer_may(&p, PEER_ADMIN, GROUP_A, PEER_NO_GROUP, 0));
	assert_false(peer_may(&p, PEER_ADMIN, GROUP_A, GROUP_OTHER, 0));
	assert_true(peer_may(&p, PEER_ADMIN, GROUP_OTHER, GROUP_B, 0));
	/* The daemon running as nobody trusts nobody. */
	assert_true(peer_may(&p, PEER_ADMIN, GROUP_OTHER, GROUP_OTHER, NOBODY));
	peer_free(&p);

	close(sync[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(cfd);
	close(lfd);
	tmpdir_remove(dir);
}

/* Many supplementary groups: the SO_PEERGROUPS buffer has to grow. */
static void test_peer_many_groups(void **state)
{
	enum { N = 300 };
	gid_t groups[N];
	int sv[2], status;
	pid_t pid;
	char c;

	if (geteuid() != 0)
		skip();
	for (int i = 0; i < N; i++)
		groups[i] = 10000 + (gid_t)i;
	assert_int_equal(
		socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		socklen_t salen;
		int l, fd;

		/* Credentials are taken at connect(): use a fresh socket. */
		close(sv[0]);
		l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (l < 0 ||
		    bind(l, (struct sockaddr *)&sa, sizeof(sa_family_t)) < 0 ||
		    listen(l, 1) < 0)
			_exit(10);
		salen = sizeof(sa);
		if (getsockname(l, (struct sockaddr *)&sa, &salen) < 0)
			_exit(11);
		if (setgroups(N, groups) < 0)
			_exit(12);
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, salen) < 0)
			_exit(13);
		{
			int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
			struct peer p;
			int ok;

			if (a < 0 || peer_get(a, &p) < 0)
				_exit(14);
			ok = p.n_groups == N && peer_in_group(&p, 10000) &&
			     peer_in_group(&p, 10000 + N - 1);
			peer_free(&p);
			if (!ok)
				_exit(15);
		}
		if (write(sv[1], "k", 1) != 1)
			_exit(16);
		_exit(0);
	}
	close(sv[1]);
	assert_int_equal(read(sv[0], &c, 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(sv[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peer_socketpair),
		cmocka_unit_test(test_peer_unconnected),
		cmocka_unit_test(test_peer_describe_no_proc),
		cmocka_unit_test(test_peer_may),
		cmocka_unit_test(test_peer_group_lookup),
		cmocka_unit_test(test_peer_dropped_child),
		cmocka_unit_test(test_peer_many_groups),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
