// SPDX-License-Identifier: LGPL-2.1-or-later
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netlink/attr.h>

#include "stats.h"
#include "testd.h"
#include "tmpdir.h"

const char *testd_program(const char *name, char *buf, size_t len)
{
	const char *b = getenv("RCUPOOL_BUILD");

	snprintf(buf, len, "%s/%s", b && *b ? b : "build", name);
	return buf;
}

void testd_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* Daemons of tests that failed half way are killed when the test exits. */
static pid_t started[64];
static size_t n_started;

static void kill_leftovers(void)
{
	for (size_t i = 0; i < n_started; i++)
		if (started[i] > 0 && kill(started[i], SIGKILL) == 0)
			waitpid(started[i], NULL, 0);
}

void testd_remember(pid_t pid)
{
	if (n_started == 0)
		atexit(kill_leftovers);
	if (n_started < sizeof(started) / sizeof(started[0]))
		started[n_started++] = pid;
}

void testd_forget(pid_t pid)
{
	for (size_t i = 0; i < n_started; i++)
		if (started[i] == pid)
			started[i] = 0;
}

int testd_start(struct testd *t, const char *conf_text,
		const char *const *args, const char *const *env)
{
	char prog[PATH_MAX];
	const char *argv[64];
	int n = 0, fd;
	FILE *f;

	memset(t, 0, sizeof(*t));
	if (tmpdir_make(t->dir, sizeof(t->dir)) < 0)
		return -errno;
	snprintf(t->sock, sizeof(t->sock), "%s/rcupoold.sock", t->dir);
	snprintf(t->conf, sizeof(t->conf), "%s/rcupoold.conf", t->dir);
	snprintf(t->log, sizeof(t->log), "%s/stderr", t->dir);
	f = fopen(t->conf, "w");
	if (!f)
		return -errno;
	fputs(conf_text ? conf_text : "", f);
	fclose(f);

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
		/* A test killed half way takes its daemon with it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(t->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			/* Nothing of the test's stdout: a pipe held open. */
			dup2(fd, STDOUT_FILENO);
		}
		unsetenv("NOTIFY_SOCKET");
		unsetenv("LISTEN_FDS");
		unsetenv("JOURNAL_STREAM");
		for (int i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	testd_remember(t->pid);
	/* Ready when it accepts a connection. */
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
		testd_sleep_ms(10);
	}
	return -ETIMEDOUT;
}

int testd_stop(struct testd *t)
{
	int status;

	if (t->pid <= 0)
		return -1;
	testd_forget(t->pid);
	kill(t->pid, SIGTERM);
	for (int i = 0; i < 1000; i++) {
		if (waitpid(t->pid, &status, WNOHANG) == t->pid) {
			t->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		}
		testd_sleep_ms(10);
	}
	kill(t->pid, SIGKILL);
	waitpid(t->pid, &status, 0);
	t->pid = 0;
	return -1;
}

void testd_cleanup(struct testd *t)
{
	testd_stop(t);
	if (t->dir[0])
		tmpdir_remove(t->dir);
	t->dir[0] = '\0';
}

bool testd_log_has(const struct testd *t, const char *text)
{
	char buf[65536];
	FILE *f = fopen(t->log, "r");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

int testd_call(const char *sock, uint8_t cmd, const char *const *settings,
	       struct proto_msg *reply, void **buf, char *errmsg,
	       size_t errlen)
{
	struct nl_msg *req = NULL;
	int fd, r;

	*buf = malloc(PROTO_MSG_MAX);
	if (!*buf)
		return -ENOMEM;
	fd = proto_connect(sock);
	if (fd < 0)
		return fd;
	r = proto_new(&req, cmd, 1, true);
	for (int i = 0; r >= 0 && settings && settings[i]; i++) {
		char key[PROTO_KEY_MAX];
		const char *eq = strchr(settings[i], '=');

		if (!eq)
			return -EINVAL;
		snprintf(key, sizeof(key), "%.*s", (int)(eq - settings[i]),
			 settings[i]);
		r = proto_put_setting(req, key, eq + 1);
	}
	if (r >= 0)
		r = proto_call(fd, req, *buf, PROTO_MSG_MAX, reply, NULL, NULL,
			       errmsg, errlen);
	nlmsg_free(req);
	close(fd);
	return r;
}

int testd_status_row(const char *sock, struct stats_row *row)
{
	struct proto_msg m;
	char err[256];
	void *buf = NULL;
	int r;

	r = testd_call(sock, PROTO_CMD_GET_STATUS, NULL, &m, &buf, err,
		       sizeof(err));
	if (r >= 0)
		r = m.tb[PROTO_A_STATUS] ? stats_parse(&stats_status,
						       m.tb[PROTO_A_STATUS], row)
					 : -EBADMSG;
	free(buf);
	return r < 0 ? r : 0;
}

uint64_t testd_status_field(const char *sock, int attr)
{
	struct stats_row row;

	if (testd_status_row(sock, &row) == 0 && row.has[attr])
		return row.u[attr];
	return UINT64_MAX;
}

bool testd_wait_status(const char *sock, int attr, uint64_t want, int ms)
{
	for (int i = 0; i <= ms / 10; i++) {
		if (testd_status_field(sock, attr) == want)
			return true;
		testd_sleep_ms(10);
	}
	return false;
}

unsigned int testd_log_count(const struct testd *t, const char *text)
{
	char line[4096];
	unsigned int n = 0;
	FILE *f = fopen(t->log, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, text))
			n++;
	fclose(f);
	return n;
}

long testd_fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	long n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

long testd_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}
