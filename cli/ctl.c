// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

const char *ctl_reach_error(int err)
{
	switch (err) {
	case ENOENT:
		return "no such file (is it running?)";
	case EACCES:
	case EPERM:
		return "permission denied";
	case ECONNREFUSED:
		return "connection refused (a stale socket: is it running?)";
	case ENOTSOCK:
	case EPROTOTYPE:
		return "not an rcupoold socket";
	case ENAMETOOLONG:
		return "path too long for a socket";
	case ECONNRESET:
	case EPIPE:
		return "the daemon closed the connection";
	default:
		return strerror(err);
	}
}

static int unreachable(const struct ctl *c, int err, const char *detail)
{
	fprintf(stderr, "rcupoolctl: cannot reach rcupoold at %s: %s%s%s\n",
		c->path, ctl_reach_error(err), detail && *detail ? ": " : "",
		detail ? detail : "");
	return CTL_UNREACHABLE;
}

int ctl_open(struct ctl *c, const char *path)
{
	int r;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	if (path) {
		snprintf(c->path, sizeof(c->path), "%s", path);
		if (strlen(path) >= sizeof(c->path))
			return unreachable(c, ENAMETOOLONG, NULL);
	} else {
		r = proto_socket_path(c->path, sizeof(c->path));
		if (r < 0) {
			fprintf(stderr,
				"rcupoolctl: no socket path (%s): use --socket "
				"or RCUPOOL_SOCKET\n",
				strerror(-r));
			return CTL_UNREACHABLE;
		}
	}
	c->buf = malloc(PROTO_MSG_MAX);
	if (!c->buf) {
		fprintf(stderr, "rcupoolctl: out of memory\n");
		return CTL_DAEMON_ERROR;
	}
	c->fd = proto_connect(c->path);
	if (c->fd < 0)
		return unreachable(c, -c->fd, NULL);
	return CTL_OK;
}

void ctl_close(struct ctl *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
}

int ctl_call(struct ctl *c, uint8_t cmd, char *const *settings, size_t n)
{
	return ctl_call_layer(c, cmd, settings, n, -1, false);
}

int ctl_call_layer(struct ctl *c, uint8_t cmd, char *const *settings,
		   size_t n, int layer, bool dry_run)
{
	static uint32_t seq;
	struct nl_msg *req;
	int r;

	r = proto_new(&req, cmd, ++seq + (uint32_t)getpid() * 65536u, true);
	if (r < 0) {
		fprintf(stderr, "rcupoolctl: %s\n", strerror(-r));
		return CTL_DAEMON_ERROR;
	}
	for (size_t i = 0; i < n; i++) {
		char key[PROTO_KEY_MAX];
		const char *eq = strchr(settings[i], '=');
		size_t klen = eq ? (size_t)(eq - settings[i])
				 : strlen(settings[i]);

		/* UNSET_LIMITS: bare keys, sent with an empty value. */
		if ((!eq && cmd != PROTO_CMD_UNSET_LIMITS) ||
		    klen >= sizeof(key)) {
			nlmsg_free(req);
			fprintf(stderr, "rcupoolctl: bad setting '%s'\n",
				settings[i]);
			return CTL_USAGE;
		}
		memcpy(key, settings[i], klen);
		key[klen] = '\0';
		r = proto_put_setting(req, key, eq ? eq + 1 : "");
		if (r < 0) {
			nlmsg_free(req);
			fprintf(stderr, "rcupoolctl: setting '%s': %s\n",
				settings[i], strerror(-r));
			return CTL_USAGE;
		}
	}
	if ((layer >= 0 &&
	     (r = nla_put_u32(req, PROTO_A_LAYER, (uint32_t)layer)) < 0) ||
	    (dry_run && (r = nla_put_u32(req, PROTO_A_DRY_RUN, 1)) < 0)) {
		nlmsg_free(req);
		fprintf(stderr, "rcupoolctl: %s\n",
			strerror(-proto_errno(r)));
		return CTL_DAEMON_ERROR;
	}
	memset(&c->reply, 0, sizeof(c->reply));
	r = proto_call(c->fd, req, c->buf, PROTO_MSG_MAX, &c->reply, NULL, NULL,
		       c->message, sizeof(c->message));
	nlmsg_free(req);
	if (r == 0) {
		snprintf(c->message, sizeof(c->message), "%s",
			 c->reply.message ? c->reply.message : "");
		return CTL_OK;
	}
	if (c->reply.error) {
		/* The daemon answered: its message says why. */
		fprintf(stderr, "rcupoolctl: %s\n",
			c->message[0] ? c->message : strerror(-r));
		return CTL_DAEMON_ERROR;
	}
	if (r == -EBADMSG || r == -EPROTO || r == -EPROTONOSUPPORT) {
		fprintf(stderr,
			"rcupoolctl: bad reply from rcupoold at %s: %s\n",
			c->path, c->message[0] ? c->message : strerror(-r));
		return CTL_DAEMON_ERROR;
	}
	return unreachable(c, -r, c->message);
}

static int add_row(const struct stats_set *set, const struct nlattr *nla,
		   struct stats_row **rows, size_t *n)
{
	struct stats_row *grown = realloc(*rows, (*n + 1) * sizeof(**rows));

	if (!grown)
		return -ENOMEM;
	*rows = grown;
	if (stats_parse(set, nla, &grown[*n]) < 0)
		return -EBADMSG;
	(*n)++;
	return 0;
}

int ctl_report(struct ctl *c, uint8_t cmd, struct ctl_report *r)
{
	struct nlattr *nla;
	int e = 0;

	memset(r, 0, sizeof(*r));
	e = ctl_call(c, cmd, NULL, 0);
	if (e != CTL_OK)
		return e;
	if (c->reply.tb[PROTO_A_STATUS]) {
		if (stats_parse(&stats_status, c->reply.tb[PROTO_A_STATUS],
				&r->status) < 0)
			goto bad;
		r->has_status = true;
	}
	proto_for_each(nla, &c->reply,
		       PROTO_A_CPU) if (add_row(&stats_cpu, nla, &r->cpus,
						&r->ncpus) < 0) goto bad;
	proto_for_each(nla, &c->reply,
		       PROTO_A_CLIENT) if (add_row(&stats_client, nla,
						   &r->clients,
						   &r->nclients) < 0) goto bad;
	return CTL_OK;
bad:
	ctl_report_free(r);
	fprintf(stderr, "rcupoolctl: bad %s reply from rcupoold at %s\n",
		proto_cmd_name(cmd), c->path);
	return CTL_DAEMON_ERROR;
}

void ctl_report_free(struct ctl_report *r)
{
	free(r->cpus);
	free(r->clients);
	memset(r, 0, sizeof(*r));
}
