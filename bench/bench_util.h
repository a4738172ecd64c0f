/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_BENCH_UTIL_H
#define RCUPOOL_BENCH_UTIL_H

/*
 * Helpers shared by the benchmarks (header only: each bench is one .c).
 *  - bench_now_ns(): CLOCK_MONOTONIC in ns;
 *  - benchd_start()/benchd_stop(): the real rcupoold of the build under
 *    test ($RCUPOOL_BUILD, default build/) on a socket in a fresh temporary
 *    directory, "--config /dev/null" plus the given "-o key=value"s; its
 *    output goes to DIR/stderr;
 *  - percentiles of a sample array.
 * Nothing here asserts a time: benchmarks print, they never fail on speed.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void bench_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

struct benchd {
	pid_t pid;
	char dir[64];
	char sock[100];
};

static inline int benchd_connect(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -1;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

/* opts: "section.key=value" strings, NULL-terminated.  0 or -1 (printed). */
static inline int benchd_start(struct benchd *d, const char *const *opts)
{
	const char *b = getenv("RCUPOOL_BUILD");
	char prog[512], log[160];
	const char *argv[80];
	int n = 0, status;

	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "/tmp/rcupool-bench.XXXXXX");
	if (!mkdtemp(d->dir)) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(d->sock, sizeof(d->sock), "%s/rcupoold.sock", d->dir);
	snprintf(log, sizeof(log), "%s/stderr", d->dir);
	snprintf(prog, sizeof(prog), "%s/rcupoold", b && *b ? b : "build");
	argv[n++] = prog;
	argv[n++] = "--config";
	argv[n++] = "/dev/null";
	argv[n++] = "--socket";
	argv[n++] = d->sock;
	for (int i = 0; opts && opts[i] && n < 76; i++) {
		argv[n++] = "-o";
		argv[n++] = opts[i];
	}
	argv[n] = NULL;
	fflush(NULL);
	d->pid = fork();
	if (d->pid < 0) {
		perror("fork");
		return -1;
	}
	if (d->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			      0644);

		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			dup2(fd, STDOUT_FILENO);
		}
		unsetenv("NOTIFY_SOCKET");
		unsetenv("LISTEN_FDS");
		unsetenv("RCUPOOL_SOCKET");
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 1000; i++) {
		int s = benchd_connect(d->sock);

		if (s >= 0) {
			close(s);
			return 0;
		}
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			char cmd[256];

			fprintf(stderr, "rcupoold (%s) exited at start:\n", prog);
			snprintf(cmd, sizeof(cmd), "cat %s >&2", log);
			if (system(cmd) < 0)
				perror("system");
			d->pid = 0;
			return -1;
		}
		bench_sleep_ms(10);
	}
	fprintf(stderr, "rcupoold did not answer on %s\n", d->sock);
	return -1;
}

static inline void benchd_stop(struct benchd *d)
{
	char path[200];
	int status;

	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		for (int i = 0; i < 500; i++) {
			if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
				d->pid = 0;
				break;
			}
			bench_sleep_ms(10);
		}
		if (d->pid > 0) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &status, 0);
			d->pid = 0;
		}
	}
	if (d->dir[0]) {
		snprintf(path, sizeof(path), "%s/stderr", d->dir);
		unlink(path);
		unlink(d->sock);
		rmdir(d->dir);
		d->dir[0] = 0;
	}
}

static inline int bench_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* q in [0,1] of a sorted array. */
static inline uint32_t bench_pct(const uint32_t *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);

	return n ? v[i < n ? i : n - 1] : 0;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static inline double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
