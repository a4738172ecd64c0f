// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <systemd/sd-daemon.h>

#include "../daemon/listen.h"
#include "lib/tmpdir.h"

#define SOCKET_ACTIVATE "/usr/bin/systemd-socket-activate"
#define HELPER_ENV	"RCUPOOL_TEST_LISTEN_HELPER"

struct fixture {
	char dir[80];
	char path[108];
	char why[256];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || tmpdir_make(f->dir, sizeof(f->dir)) < 0)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/rcupoold.sock", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

static void assert_listening_seqpacket(int fd)
{
	int v;
	socklen_t len = sizeof(v);

	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len), 0);
	assert_int_equal(v, SOCK_SEQPACKET);
	len = sizeof(v);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len),
			 0);
	assert_int_equal(v, 1);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static void test_bind_fresh(void **state)
{
	struct fixture *f = *state;
	mode_t old = umask(0077);
	struct stat st;
	int fd, c;

	fd = listen_bind(f->path, 0660, 16, f->why, sizeof(f->why));
	umask(old);
	assert_true(fd >= 0);
	assert_string_equal(f->why, "");
	assert_listening_seqpacket(fd);
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	c = connect_to(f->path);
	assert_true(c >= 0);
	close(c);
	close(fd);

	/* A looser mode than the umask allows still comes out exact. */
	assert_int_equal(unlink(f->path), 0);
	old = umask(0022);
	fd = listen_bind(f->path, 0666, 16, NULL, 0);
	umask(old);
	assert_true(fd >= 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0666);
	close(fd);
}

static void test_bind_stale(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st1, st2;
	int old, fd, c;

	/* A daemon that died: the file stays, nobody listens. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	old = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	assert_true(old >= 0);
	assert_int_equal(bind(old, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(old, 1), 0);
	close(old);
	assert_int_equal(stat(f->path, &st1), 0);
	assert_int_equal(connect_to(f->path), -ECONNREFUSED);

	fd = listen_bind(f->path, 0600, 16, f->why, sizeof(f->why));
	assert_true(fd >= 0);
	assert_int_equal(stat(f->path, &st2), 0);
	assert_true(S_ISSOCK(st2.st_mode));
	assert_int_equal(st2.st_mode & 07777, 0600);
	c = connect_to(f->path);
	assert_true(c >= 0);
	close(c);
	close(fd);
}

static void test_bind_live_refused(void **state)
{
	struct fixture *f = *state;
	char want[256];
	int fd, r, c;

	fd = listen_bind(f->path, 0600, 16, f->why, sizeof(f->why));
	assert_true(fd >= 0);
	r = listen_bind(f->path, 0600, 16, f->why, sizeof(f->why));
	assert_int_equal(r, -EADDRINUSE);
	snprintf(want, sizeof(want),
		 "another rcupoold is already listening on %s", f->path);
	assert_string_equal(f->why, want);
	/* The live instance keeps its socket. */
	c = connect_to(f->path);
	assert_true(c >= 0);
	close(c);
	close(fd);
}

static void test_bind_not_a_socket(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	char want[256];
	int fd;

	fd = open(f->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "data", 4), 4);
	close(fd);
	assert_int_equal(listen_bind(f->path, 0600, 16, f->why, sizeof(f->why)),
			 -EEXIST);
	snprintf(want, sizeof(want),
		 "%s exists and is not a socket; not replacing it", f->path);
	assert_string_equal(f->why, want);
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 4);

	/* A socket of another type is not ours to remove either. */
	{
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		char p2[108];
		int s;

		snprintf(p2, sizeof(p2), "%s/stream.sock", f->dir);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p2);
		s = socket(AF_UNIX, SOCK_STREAM, 0);
		assert_true(s >= 0);
		assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)),
				 0);
		assert_int_equal(listen(s, 1), 0);
		assert_int_equal(
			listen_bind(p2, 0600, 16, f->why, sizeof(f->why)),
			-EEXIST);
		assert_non_null(strstr(f->why, "socket of another type"));
		assert_int_equal(stat(p2, &st), 0);
		close(s);
	}
}

static void test_bind_parent_created(void **state)
{
	struct fixture *f = *state;
	char p[128], sub[96];
	mode_t old;
	struct stat st;
	int fd;

	snprintf(sub, sizeof(sub), "%s/rcupool", f->dir);
	snprintf(p, sizeof(p), "%s/rcupoold.sock", sub);
	old = umask(0077);
	fd = listen_bind(p, 0666, 16, f->why, sizeof(f->why));
	umask(old);
	assert_true(fd >= 0);
	assert_int_equal(stat(sub, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0666);
	close(fd);

	/* Only the last component is created. */
	snprintf(p, sizeof(p), "%s/a/b/rcupoold.sock", f->dir);
	assert_int_equal(listen_bind(p, 0666, 16, f->why, sizeof(f->why)),
			 -ENOENT);
	assert_non_null(strstr(f->why, "cannot create directory"));
	snprintf(sub, sizeof(sub), "%s/a", f->dir);
	assert_int_equal(stat(sub, &st), -1);
}

static void test_bind_bad_path(void **state)
{
	struct fixture *f = *state;
	char p[200];

	memset(p, 'x', sizeof(p) - 1);
	p[0] = '/';
	p[sizeof(p) - 1] = '\0';
	assert_int_equal(listen_bind(p, 0666, 16, f->why, sizeof(f->why)),
			 -ENAMETOOLONG);
	assert_non_null(strstr(f->why, "too long"));
	assert_int_equal(listen_bind("", 0666, 16, f->why, sizeof(f->why)),
			 -EINVAL);
}

/* --- socket activation ----------------------------------------------- */

static void test_systemd_none(void **state)
{
	int fd = -1;

	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	assert_int_equal(listen_from_systemd(&fd), 0);
	assert_int_equal(fd, -1);
}

/*
 * In a child: put the given sockets at fd 3.. and the LISTEN_* variables
 * as systemd would, then call listen_from_systemd().  Exit 0 when it
 * returned want (and, for 1, fd 3 is set; otherwise the fds were closed).
 */
static void run_fake_activation(const int *types, int n, bool pid_matches,
				int want)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		char buf[32];
		int fd = -1, r;

		for (int i = 0; i < n; i++) {
			int s = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
			struct sockaddr_un sa = {.sun_family = AF_UNIX};

			if (s < 0 || bind(s, (struct sockaddr *)&sa,
					  sizeof(sa_family_t)) < 0)
				_exit(20);
			if (types[i] != SOCK_DGRAM && listen(s, 1) < 0)
				_exit(21);
			if (s != SD_LISTEN_FDS_START + i &&
			    (dup2(s, SD_LISTEN_FDS_START + i) < 0 ||
			     close(s) < 0))
				_exit(22);
		}
		snprintf(buf, sizeof(buf), "%d", n);
		setenv("LISTEN_FDS", buf, 1);
		snprintf(buf, sizeof(buf), "%d",
			 (int)getpid() + (pid_matches ? 0 : 1));
		setenv("LISTEN_PID", buf, 1);
		r = listen_from_systemd(&fd);
		if (r != want)
			_exit(30);
		if (getenv("LISTEN_FDS") || getenv("LISTEN_PID"))
			_exit(31);
		if (r == 1 && (fd != SD_LISTEN_FDS_START ||
			       !(fcntl(fd, F_GETFL) & O_NONBLOCK)))
			_exit(32);
		if (r < 0)
			for (int i = 0; i < n; i++)
				if (fcntl(SD_LISTEN_FDS_START + i, F_GETFD) >=
				    0)
					_exit(33);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_systemd_fake(void **state)
{
	const int seq[] = {SOCK_SEQPACKET};
	const int stream[] = {SOCK_STREAM};
	const int dgram[] = {SOCK_DGRAM};
	const int two[] = {SOCK_SEQPACKET, SOCK_SEQPACKET};

	run_fake_activation(seq, 1, true, 1);
	run_fake_activation(stream, 1, true, -EINVAL);
	run_fake_activation(dgram, 1, true, -EINVAL);
	run_fake_activation(two, 2, true, -EINVAL);
	/* Variables meant for another process (our parent): not activated. */
	run_fake_activation(seq, 1, false, 0);
}

/*
 * The test program run by systemd-socket-activate: check what it was
 * given and report to the connection that triggered it.
 */
static int activation_helper(void)
{
	char msg[128];
	struct pollfd pfd;
	int fd = -1, r, c;

	r = listen_from_systemd(&fd);
	if (r != 1)
		return 10;
	pfd = (struct pollfd){.fd = fd, .events = POLLIN};
	if (poll(&pfd, 1, 30000) != 1)
		return 11;
	c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return 12;
	snprintf(msg, sizeof(msg), "r=%d fd=%d seqpacket=%d nonblock=%d env=%s",
		 r, fd, sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0),
		 !!(fcntl(fd, F_GETFL) & O_NONBLOCK),
		 getenv("LISTEN_FDS") ? "set" : "unset");
	if (send(c, msg, strlen(msg), 0) < 0)
		return 13;
	close(c);
	close(fd);
	return 0;
}

static void test_systemd_socket_activate(void **state)
{
	struct fixture *f = *state;
	struct timeval tv = {.tv_sec = 60};
	char exe[PATH_MAX], msg[256];
	struct stat st;
	ssize_t n;
	int c, status;
	pid_t pid;

	if (access(SOCKET_ACTIVATE, X_OK) < 0) {
		print_message("# " SOCKET_ACTIVATE " not found\n");
		skip();
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (null < 0 || dup2(null, STDOUT_FILENO) < 0)
			_exit(127);
		execl(SOCKET_ACTIVATE, SOCKET_ACTIVATE, "--seqpacket", "-l",
		      f->path, "-E", HELPER_ENV "=1", exe, (char *)NULL);
		_exit(127);
	}
	/* Wait for systemd-socket-activate to bind (not a timing check). */
	for (int i = 0; stat(f->path, &st) < 0; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		assert_true(i < 3000);
		assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
		nanosleep(&ts, NULL);
	}
	c = connect_to(f->path);
	assert_true(c >= 0);
	assert_int_equal(
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	n = recv(c, msg, sizeof(msg) - 1, 0);
	assert_true(n > 0);
	msg[n] = '\0';
	assert_string_equal(msg, "r=1 fd=3 seqpacket=1 nonblock=1 env=unset");
	close(c);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bind_fresh, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bind_stale, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bind_live_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bind_not_a_socket, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bind_parent_created, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bind_bad_path, setup,
						teardown),
		cmocka_unit_test(test_systemd_none),
		cmocka_unit_test(test_systemd_fake),
		cmocka_unit_test_setup_teardown(test_systemd_socket_activate,
						setup, teardown),
	};

	if (getenv(HELPER_ENV))
		return activation_helper();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
