// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "listen.h"

static int listen_fail(int r, char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int listen_fail(int r, char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return r;
}

int listen_from_systemd(int *fd)
{
	char **names = NULL;
	int n, r = -EINVAL;

	n = sd_listen_fds_with_names(1, &names);
	if (n < 0)
		return n;
	if (names) {
		for (char **s = names; *s; s++)
			free(*s);
		free(names);
	}
	if (n == 0)
		return 0;
	if (n == 1 && sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_SEQPACKET, 1,
					NULL, 0) > 0) {
		int flags = fcntl(SD_LISTEN_FDS_START, F_GETFL);

		if (flags < 0 ||
		    fcntl(SD_LISTEN_FDS_START, F_SETFL, flags | O_NONBLOCK) < 0)
			r = -errno;
		else {
			*fd = SD_LISTEN_FDS_START;
			return 1;
		}
	}
	/* Not ours to keep: a stray listening fd would hang connecting clients.
	 */
	for (int i = 0; i < n; i++)
		close(SD_LISTEN_FDS_START + i);
	return r;
}

/* Create the last component of path's directory if it is missing. */
static int listen_make_parent(const char *path, char *why, size_t whylen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0; /* relative name in cwd, or in "/" */
	*slash = '\0';
	if (mkdir(dir, 0755) == 0) {
		/* mkdir() applied the umask; the directory must be 0755. */
		if (chmod(dir, 0755) < 0)
			return listen_fail(-errno, why, whylen, "chmod %s: %s",
					   dir, strerror(errno));
		return 0;
	}
	if (errno != EEXIST)
		return listen_fail(-errno, why, whylen,
				   "cannot create directory %s: %s", dir,
				   strerror(errno));
	if (stat(dir, &st) < 0)
		return listen_fail(-errno, why, whylen, "%s: %s", dir,
				   strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return listen_fail(-ENOTDIR, why, whylen,
				   "%s is not a directory", dir);
	return 0;
}

/*
 * Something exists at path.  Returns 0 when it was a stale socket, now
 * removed (or gone already), or -errno with why.
 */
static int listen_clear_stale(const struct sockaddr_un *sa, socklen_t salen,
			      const struct stat *st, char *why, size_t whylen)
{
	const char *path = sa->sun_path;
	int fd, r, err;

	if (!S_ISSOCK(st->st_mode))
		return listen_fail(-EEXIST, why, whylen,
				   "%s exists and is not a socket; "
				   "not replacing it",
				   path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return listen_fail(-errno, why, whylen, "socket: %s",
				   strerror(errno));
	r = connect(fd, (const struct sockaddr *)sa, salen);
	err = errno;
	close(fd);
	/* EAGAIN: a live listener with a full backlog. */
	if (r == 0 || err == EAGAIN)
		return listen_fail(
			-EADDRINUSE, why, whylen,
			"another rcupoold is already listening on %s", path);
	if (err == ENOENT)
		return 0; /* removed meanwhile */
	if (err == EPROTOTYPE)
		return listen_fail(-EEXIST, why, whylen,
				   "%s is a socket of another type; "
				   "not replacing it",
				   path);
	if (err != ECONNREFUSED)
		return listen_fail(-err, why, whylen, "connect %s: %s", path,
				   strerror(err));
	if (unlink(path) < 0 && errno != ENOENT)
		return listen_fail(-errno, why, whylen,
				   "cannot remove stale socket %s: %s", path,
				   strerror(errno));
	return 0;
}

int listen_bind(const char *path, mode_t mode, int backlog, char *why,
		size_t whylen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t salen;
	struct stat st;
	size_t len;
	int fd, r;

	if (why && whylen)
		why[0] = '\0';
	if (!path || !*path)
		return listen_fail(-EINVAL, why, whylen, "empty socket path");
	len = strlen(path);
	if (len >= sizeof(sa.sun_path))
		return listen_fail(-ENAMETOOLONG, why, whylen,
				   "socket path too long (%zu bytes, at most "
				   "%zu): %s",
				   len, sizeof(sa.sun_path) - 1, path);
	memcpy(sa.sun_path, path, len + 1);
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);

	r = listen_make_parent(path, why, whylen);
	if (r < 0)
		return r;

	if (lstat(path, &st) == 0) {
		r = listen_clear_stale(&sa, salen, &st, why, whylen);
		if (r < 0)
			return r;
	} else if (errno != ENOENT) {
		return listen_fail(-errno, why, whylen, "%s: %s", path,
				   strerror(errno));
	}

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return listen_fail(-errno, why, whylen, "socket: %s",
				   strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, salen) < 0) {
		r = -errno;
		close(fd);
		if (r == -EADDRINUSE) /* lost a race with another instance */
			return listen_fail(r, why, whylen,
					   "another rcupoold is already "
					   "listening on %s",
					   path);
		return listen_fail(r, why, whylen, "bind %s: %s", path,
				   strerror(-r));
	}
	/*
	 * fchmod() does not apply to sockets, and umask() is process-wide.
	 * Not yet listening, so no one connects before the mode is right.
	 */
	if (chmod(path, mode & 07777) < 0) {
		r = listen_fail(-errno, why, whylen, "chmod %s: %s", path,
				strerror(errno));
		goto fail;
	}
	if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
		r = listen_fail(-errno, why, whylen, "listen %s: %s", path,
				strerror(errno));
		goto fail;
	}
	return fd;
fail:
	unlink(path);
	close(fd);
	return r;
}
