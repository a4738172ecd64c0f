// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

static int peer_get_groups(int fd, struct peer *p)
{
	socklen_t sz = 16 * sizeof(gid_t);
	gid_t *g = NULL;

	for (;;) {
		socklen_t len = sz;
		gid_t *ng = realloc(g, sz ? sz : sizeof(gid_t));

		if (!ng) {
			free(g);
			return -ENOMEM;
		}
		g = ng;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) == 0) {
			p->groups = g;
			p->n_groups = len / sizeof(gid_t);
			return 0;
		}
		if (errno == ENOPROTOOPT) {
			free(g);
			return 0;
		}
		if (errno != ERANGE) {
			int r = -errno;

			free(g);
			return r;
		}
		/* The kernel reports the size it needs; grow at least 2x. */
		if (len > sz)
			sz = len;
		else if (sz > (1u << 20))
			break;
		else
			sz *= 2;
	}
	free(g);
	return -E2BIG;
}

int peer_get(int fd, struct peer *p)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	int r;

	*p = (struct peer){0};
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -errno;
	if (len != sizeof(uc))
		return -EIO;
	/* An unconnected socket reports uid/gid -1: nobody to trust. */
	if (uc.uid == (uid_t)-1 || uc.gid == (gid_t)-1)
		return -ENOTCONN;
	r = peer_get_groups(fd, p);
	if (r < 0)
		return r;
	p->pid = uc.pid;
	p->uid = uc.uid;
	p->gid = uc.gid;
	return 0;
}

void peer_free(struct peer *p)
{
	if (!p)
		return;
	free(p->groups);
	*p = (struct peer){0};
}

bool peer_in_group(const struct peer *p, gid_t gid)
{
	if (gid == PEER_NO_GROUP)
		return false;
	if (p->gid == gid)
		return true;
	for (size_t i = 0; i < p->n_groups; i++)
		if (p->groups[i] == gid)
			return true;
	return false;
}

/* Best effort: 0 and the sanitized comm, or -errno. */
static int peer_comm(pid_t pid, char *comm, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	if (pid <= 0 || len < 2)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	do
		n = read(fd, comm, len - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	while (n > 0 && comm[n - 1] == '\n')
		n--;
	if (n == 0)
		return -ENODATA;
	comm[n] = '\0';
	for (ssize_t i = 0; i < n; i++)
		if (comm[i] < 0x20 || comm[i] > 0x7e)
			comm[i] = '?';
	return 0;
}

int peer_describe(const struct peer *p, char *buf, size_t len)
{
	char comm[64];
	int n;

	if (!buf || len == 0)
		return -ENOBUFS;
	if (peer_comm(p->pid, comm, sizeof(comm)) == 0)
		n = snprintf(buf, len, "pid %d (%s) uid %u", (int)p->pid, comm,
			     (unsigned int)p->uid);
	else
		n = snprintf(buf, len, "pid %d uid %u", (int)p->pid,
			     (unsigned int)p->uid);
	if (n < 0 || (size_t)n >= len)
		return -ENOBUFS;
	return 0;
}

bool peer_may(const struct peer *p, enum peer_role role, gid_t attach_gid,
	      gid_t admin_gid, uid_t daemon_uid)
{
	bool trusted = p->uid == 0 || p->uid == daemon_uid;

	switch (role) {
	case PEER_READ:
		return true;
	case PEER_ATTACH:
		/* Admin implies attach. */
		return trusted || attach_gid == PEER_NO_GROUP ||
		       peer_in_group(p, attach_gid) ||
		       (admin_gid != PEER_NO_GROUP &&
			peer_in_group(p, admin_gid));
	case PEER_ADMIN:
		return trusted || (admin_gid != PEER_NO_GROUP &&
				   peer_in_group(p, admin_gid));
	}
	return false;
}

int peer_group_lookup(const char *name, gid_t *ret)
{
	struct group grp, *res = NULL;
	long max = sysconf(_SC_GETGR_R_SIZE_MAX);
	size_t sz = max > 0 ? (size_t)max : 1024;
	char *buf = NULL;
	int r;

	if (!name || !*name) {
		*ret = PEER_NO_GROUP;
		return 0;
	}
	for (;;) {
		char *nb = realloc(buf, sz);

		if (!nb) {
			free(buf);
			return -ENOMEM;
		}
		buf = nb;
		r = getgrnam_r(name, &grp, buf, sz, &res);
		if (r != ERANGE)
			break;
		if (sz >= (1u << 24)) {
			free(buf);
			return -ERANGE;
		}
		sz *= 2;
	}
	if (r == 0 && res)
		*ret = res->gr_gid;
	free(buf);
	/* Some NSS modules say "not found" with an error code. */
	if (r == ENOENT || r == ESRCH)
		return -ENOENT;
	if (r)
		return -r;
	return res ? 0 : -ENOENT;
}
