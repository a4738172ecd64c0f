// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/kcmp.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fdstore.h"
#include "tmpdir.h"

int fdstore_kill(struct testd *t)
{
	if (t->pid <= 0)
		return 0;
	if (kill(t->pid, SIGKILL) < 0)
		return -errno;
	if (waitpid(t->pid, NULL, 0) != t->pid)
		return -errno;
	testd_forget(t->pid);
	t->pid = 0;
	return 0;
}

/* --- the stand-in for systemd's fd store
 * -------------------------------------- */

static void store_remove(struct fdstore *s, const char *name)
{
	for (size_t i = 0; i < s->n;) {
		if (strcmp(s->e[i].name, name)) {
			i++;
			continue;
		}
		close(s->e[i].fd);
		s->e[i] = s->e[--s->n];
		s->removed++;
	}
}

static void store_add(struct fdstore *s, int fd, const char *name)
{
	pid_t me = getpid();

	/* Like systemd: one entry per open file description (kcmp). */
	for (size_t i = 0; i < s->n; i++)
		if (syscall(SYS_kcmp, me, me, KCMP_FILE, s->e[i].fd, fd) == 0) {
			close(fd);
			s->duplicates++;
			return;
		}
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		struct fdstore_entry *e = realloc(s->e, cap * sizeof(*e));

		if (!e) {
			close(fd);
			return;
		}
		s->e = e;
		s->cap = cap;
	}
	s->e[s->n].fd = fd;
	snprintf(s->e[s->n].name, sizeof(s->e[s->n].name), "%s", name);
	s->n++;
	s->stored++;
}

/* One message, if one is waiting: 1, or 0. Under s->lock. */
static int store_read_one(struct fdstore *s)
{
	char buf[4096], name[256] = "stored";
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 64)];
	} cm;
	struct iovec iov = {buf, sizeof(buf) - 1};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = &cm,
			    .msg_controllen = sizeof(cm)};
	int fds[64], nfds = 0;
	bool store = false, remove = false;
	ssize_t n = recvmsg(s->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0)
		return 0;
	buf[n] = '\0';
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int k = (int)((c->cmsg_len - CMSG_LEN(0)) /
				      sizeof(int));

			for (int i = 0; i < k && nfds < 64; i++)
				memcpy(&fds[nfds++],
				       CMSG_DATA(c) + i * sizeof(int),
				       sizeof(int));
		}
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strcmp(line, "FDSTORE=1"))
			store = true;
		else if (!strcmp(line, "FDSTOREREMOVE=1"))
			remove = true;
		else if (!strcmp(line, "READY=1"))
			atomic_fetch_add(&s->ready, 1);
		else if (!strncmp(line, "FDNAME=", 7))
			snprintf(name, sizeof(name), "%s", line + 7);
	}
	if (remove)
		store_remove(s, name);
	for (int i = 0; i < nfds; i++)
		if (store)
			store_add(s, fds[i], name);
		else
			close(fds[i]);
	return 1;
}

void fdstore_drain(struct fdstore *s)
{
	pthread_mutex_lock(&s->lock);
	while (store_read_one(s))
		;
	pthread_mutex_unlock(&s->lock);
}

static void *store_thread(void *arg)
{
	struct fdstore *s = arg;

	while (!atomic_load(&s->stop)) {
		struct pollfd p = {.fd = s->sock, .events = POLLIN};

		if (poll(&p, 1, 20) > 0)
			fdstore_drain(s);
	}
	return NULL;
}

int fdstore_open(struct fdstore *s)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int r;

	memset(s, 0, sizeof(*s));
	s->sock = -1;
	if (tmpdir_make(s->dir, sizeof(s->dir)) < 0)
		return -errno;
	snprintf(s->path, sizeof(s->path), "%s/notify", s->dir);
	snprintf(s->env, sizeof(s->env), "NOTIFY_SOCKET=%s", s->path);
	if (strlen(s->path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
	s->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s->sock < 0)
		return -errno;
	/* A big queue: a daemon blocks in sendmsg while it is full. */
	r = 4 << 20;
	setsockopt(s->sock, SOL_SOCKET, SO_RCVBUF, &r, sizeof(r));
	if (bind(s->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	pthread_mutex_init(&s->lock, NULL);
	r = pthread_create(&s->thread, NULL, store_thread, s);
	return -r;
}

void fdstore_close(struct fdstore *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->thread, NULL);
	for (size_t i = 0; i < s->n; i++)
		close(s->e[i].fd);
	free(s->e);
	s->e = NULL;
	s->n = s->cap = 0;
	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
	pthread_mutex_destroy(&s->lock);
	tmpdir_remove(s->dir);
}

size_t fdstore_count(struct fdstore *s, const char *prefix)
{
	size_t k = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++)
		if (!strncmp(s->e[i].name, prefix, strlen(prefix)))
			k++;
	pthread_mutex_unlock(&s->lock);
	return k;
}

int fdstore_find(struct fdstore *s, const char *prefix, size_t k, char *buf,
		 size_t len)
{
	int fd = -1;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n && fd < 0; i++)
		if (!strncmp(s->e[i].name, prefix, strlen(prefix)) && !k--) {
			fd = s->e[i].fd;
			snprintf(buf, len, "%s", s->e[i].name);
		}
	pthread_mutex_unlock(&s->lock);
	return fd;
}

int fdstore_inject(struct fdstore *s, int fd, const char *name)
{
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);

	if (d < 0)
		return -errno;
	pthread_mutex_lock(&s->lock);
	store_add(s, d, name);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

bool fdstore_wait_ready(struct fdstore *s, unsigned int n, int ms)
{
	for (int i = 0; i < ms / 2; i++) {
		if (atomic_load(&s->ready) >= n)
			return true;
		testd_sleep_ms(2);
	}
	return atomic_load(&s->ready) >= n;
}

/* --- starting the next instance
 * ------------------------------------------------ */

static int start(struct testd *t, struct fdstore *s, const char *const *args)
{
	char prog[PATH_MAX];
	const char *argv[64];
	unsigned int ready = 0;
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
	if (s) {
		/* Everything the dead instance sent; like systemd, fds that
		 * hung up are not passed on. */
		fdstore_drain(s);
		pthread_mutex_lock(&s->lock);
		for (size_t i = 0; i < s->n;) {
			struct pollfd p = {.fd = s->e[i].fd, .events = 0};

			if (poll(&p, 1, 0) == 1 &&
			    (p.revents & (POLLHUP | POLLERR))) {
				close(s->e[i].fd);
				s->e[i] = s->e[--s->n];
				continue;
			}
			i++;
		}
		ready = atomic_load(&s->ready);
	}
	t->pid = fork();
	if (t->pid < 0) {
		if (s)
			pthread_mutex_unlock(&s->lock);
		return -errno;
	}
	if (t->pid == 0) {
		/* A test killed half way takes its daemon with it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
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
		if (s) {
			size_t len = 1;
			char *names, pid[32], nfds[32];
			int *high = calloc(s->n + 1, sizeof(int));

			for (size_t i = 0; i < s->n; i++)
				len += strlen(s->e[i].name) + 1;
			names = calloc(1, len);
			if (!names || !high)
				_exit(126);
			/* Out of the way first, then at 3.. in order. */
			for (size_t i = 0; i < s->n; i++) {
				high[i] = fcntl(s->e[i].fd, F_DUPFD_CLOEXEC,
						(int)(3 + s->n));
				if (high[i] < 0)
					_exit(126);
				if (i)
					strcat(names, ":");
				strcat(names, s->e[i].name);
			}
			for (size_t i = 0; i < s->n; i++)
				if (dup2(high[i], (int)(3 + i)) < 0)
					_exit(126);
			snprintf(pid, sizeof(pid), "%d", (int)getpid());
			snprintf(nfds, sizeof(nfds), "%zu", s->n);
			setenv("NOTIFY_SOCKET", s->path, 1);
			setenv("LISTEN_PID", pid, 1);
			setenv("LISTEN_FDS", nfds, 1);
			setenv("LISTEN_FDNAMES", names, 1);
		}
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	if (s)
		pthread_mutex_unlock(&s->lock);
	testd_remember(t->pid);
	/* A liveness bound (30 s): an ASan daemon on a loaded machine takes
	 * seconds to start. */
	for (int i = 0; i < (s ? 30000 : 6000); i++) {
		int status;

		if (s && atomic_load(&s->ready) > ready)
			return 0;
		if (!s) {
			int c = proto_connect(t->sock);

			if (c >= 0) {
				close(c);
				return 0;
			}
		}
		if (waitpid(t->pid, &status, WNOHANG) == t->pid) {
			testd_forget(t->pid);
			t->pid = 0;
			return -ECHILD;
		}
		testd_sleep_ms(s ? 1 : 5);
	}
	return -ETIMEDOUT;
}

int fdstore_restart(struct testd *t, const char *const *args)
{
	return start(t, NULL, args);
}

int fdstore_restart_with(struct testd *t, struct fdstore *s,
			 const char *const *args)
{
	return start(t, s, args);
}
