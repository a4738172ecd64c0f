// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netlink/attr.h>

#include "attach.h"
#include "proto.h"

static int say(char *why, size_t len, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int say(char *why, size_t len, int r, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return r;
}

int attach_open(const char *path, const char *name, uint32_t min_pages,
		uint32_t max_pages, struct attach *a, char *why, size_t whylen)
{
	char where[108], errmsg[PROTO_MESSAGE_MAX];
	struct nl_msg *req = NULL;
	struct proto_msg reply;
	struct seg_error serr;
	int fds[2] = {-1, -1};
	size_t nfds = 2;
	void *buf = NULL;
	int r;

	*a = (struct attach){.sock = -1, .kick_fd = -1, .seg.fd = -1};
	if (!path) {
		r = proto_socket_path(where, sizeof(where));
		if (r < 0)
			return say(why, whylen, r,
				   "no control socket path (set RCUPOOL_SOCKET)");
		path = where;
	}
	a->sock = proto_connect(path);
	if (a->sock < 0) {
		r = a->sock;
		a->sock = -1;
		return say(why, whylen, r, "cannot connect to %s: %s", path,
			   strerror(-r));
	}
	buf = malloc(PROTO_MSG_MAX);
	r = buf ? proto_new(&req, PROTO_CMD_ATTACH, 1, true) : -ENOMEM;
	if (r < 0)
		goto fail;
	if (name && *name)
		r = proto_errno(nla_put_string(req, PROTO_A_NAME, name));
	if (r >= 0 && min_pages)
		r = proto_errno(nla_put_u32(req, PROTO_A_MIN_PAGES, min_pages));
	if (r >= 0 && max_pages)
		r = proto_errno(nla_put_u32(req, PROTO_A_MAX_PAGES, max_pages));
	if (r < 0)
		goto fail;
	r = proto_call(a->sock, req, buf, PROTO_MSG_MAX, &reply, fds, &nfds,
		       errmsg, sizeof(errmsg));
	if (r < 0) {
		say(why, whylen, r, "%s: attach refused: %s", path,
		    errmsg[0] ? errmsg : strerror(-r));
		goto fail_quiet;
	}
	if (nfds != 2 || !reply.tb[PROTO_A_SLOT]) {
		r = say(why, whylen, -EBADMSG,
			"%s: attach reply without segment, kick fd and slot",
			path);
		goto fail_quiet;
	}
	a->slot = nla_get_u32(reply.tb[PROTO_A_SLOT]);
	if (reply.tb[PROTO_A_MIN_PAGES])
		a->min_pages = nla_get_u32(reply.tb[PROTO_A_MIN_PAGES]);
	if (reply.tb[PROTO_A_MAX_PAGES])
		a->max_pages = nla_get_u32(reply.tb[PROTO_A_MAX_PAGES]);
	if (reply.tb[PROTO_A_GENERATION])
		a->generation = nla_get_u64(reply.tb[PROTO_A_GENERATION]);
	r = seg_map(fds[0], &a->seg, &serr);
	if (r < 0) {
		say(why, whylen, r, "%s: bad segment: %s", path, serr.msg);
		goto fail_quiet;
	}
	if (a->slot >= a->seg.nslots) {
		r = say(why, whylen, -EBADMSG,
			"%s: slot %u outside the segment's %u", path, a->slot,
			a->seg.nslots);
		goto fail_quiet;
	}
	close(fds[0]);
	a->kick_fd = fds[1];
	nlmsg_free(req);
	free(buf);
	return 0;

fail:
	say(why, whylen, r, "%s: %s", path, strerror(-r));
fail_quiet:
	for (size_t i = 0; i < nfds && i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	nlmsg_free(req);
	free(buf);
	if (a->seg.base)
		seg_unmap(&a->seg);
	close(a->sock);
	*a = (struct attach){.sock = -1, .kick_fd = -1, .seg.fd = -1};
	return r;
}

void attach_close(struct attach *a)
{
	if (a->sock >= 0) {
		struct nl_msg *req = NULL;
		void *buf = malloc(PROTO_MSG_MAX);
		struct proto_msg reply;
		char errmsg[128];

		/* Best effort: a daemon that is gone reclaims on EOF anyway. */
		if (buf && proto_new(&req, PROTO_CMD_DETACH, 2, true) == 0)
			proto_call(a->sock, req, buf, PROTO_MSG_MAX, &reply, NULL,
				   NULL, errmsg, sizeof(errmsg));
		nlmsg_free(req);
		free(buf);
		close(a->sock);
	}
	if (a->kick_fd >= 0)
		close(a->kick_fd);
	if (a->seg.base)
		seg_unmap(&a->seg);
	*a = (struct attach){.sock = -1, .kick_fd = -1, .seg.fd = -1};
}

int attach_kick(const struct attach *a)
{
	uint64_t one = 1;

	if (a->kick_fd < 0)
		return -ENOTCONN;
	/* A full counter (EAGAIN) means the daemon has a kick pending anyway. */
	if (write(a->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}
