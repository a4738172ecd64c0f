// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fdstore.h"

static void fds_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* Instances of a test that failed half way are killed when it exits. */
static pid_t fds_started[256];
static size_t fds_n;

static void fds_kill_leftovers(void)
{
	for (size_t i = 0; i < fds_n; i++)
		if (fds_started[i] > 0 && kill(fds_started[i], SIGKILL) == 0)
			waitpid(fds_started[i], NULL, 0);
}

static void fds_remember(pid_t pid)
{
	if (fds_n == 0)
		atexit(fds_kill_leftovers);
	if (fds_n < sizeof(fds_started) / sizeof(fds_started[0]))
		fds_started[fds_n++] = pid;
}

int fdstore_kill(struct testd *t)
{
	if (t->pid <= 0)
		return 0;
	if (kill(t->pid, SIGKILL) < 0)
		return -errno;
	if (waitpid(t->pid, NULL, 0) != t->pid)
		return -errno;
	t->pid = 0;
	return 0;
}

int fdstore_restart(struct testd *t, const char *const *args)
{
	char prog[PATH_MAX];
	const char *argv[64];
	int n = 0;

	testd_program("rcupoold", prog, sizeof(prog));
	argv[n++] = prog;
	argv[n++] = "--config";
	argv[n++] = t->conf;
	argv[n++] = "--socket";
	argv[n++] = t->sock;
	for (int i = 0; args && args[i] && n < 62; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	t->pid = fork();
	if (t->pid < 0)
		return -errno;
	if (t->pid == 0) {
		int fd = open(t->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			      0644);

		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			dup2(fd, STDOUT_FILENO);
		}
		unsetenv("NOTIFY_SOCKET");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_FDNAMES");
		unsetenv("LISTEN_PID");
		unsetenv("JOURNAL_STREAM");
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	fds_remember(t->pid);
	for (int i = 0; i < 1000; i++) {
		int s = proto_connect(t->sock), status;

		if (s >= 0) {
			close(s);
			return 0;
		}
		if (waitpid(t->pid, &status, WNOHANG) == t->pid) {
			t->pid = 0;
			return -ECHILD;
		}
		fds_sleep_ms(5);
	}
	return -ETIMEDOUT;
}
