// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include "cpu.h"
#include "hotplug.h"
#include "proto.h"

/* The kernel's uevent buffer is 2048 bytes; leave room for larger ones. */
#define HOTPLUG_MSG_MAX	     (8 * 1024)
#define HOTPLUG_RCVBUF	     (1024 * 1024)
#define HOTPLUG_GROUP_KERNEL 1

#define CPU_DIR "/devices/system/cpu/"

struct hotplug {
	struct nl_sock *sk;
	struct hotplug_counters counters;
};

/* The string [s, s + n) equals the C string lit. */
static bool span_eq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* "cpuN" with N plain decimal (no sign, no leading zero) and < CPU_MAX. */
static int parse_cpu_name(const char *s, size_t n, unsigned int *cpu)
{
	unsigned long v = 0;

	if (n < 4 || memcmp(s, "cpu", 3) != 0)
		return -EINVAL;
	s += 3;
	n -= 3;
	if (n > 1 && s[0] == '0')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v >= CPU_MAX)
			return -EINVAL;
	}
	*cpu = (unsigned int)v;
	return 0;
}

int hotplug_parse(const char *buf, size_t len, struct hotplug_event *ev)
{
	const char *end, *hdr_end, *at, *action, *devpath, *p;
	const char *subsystem = NULL;
	size_t alen, dlen, slen = 0, rest_len;
	enum hotplug_action act;
	const char *rest;
	unsigned int cpu;

	if (!buf || len == 0 || buf[len - 1] != '\0')
		return -EINVAL;
	end = buf + len;
	/* Found: buf[len - 1] is NUL. */
	hdr_end = memchr(buf, '\0', len);
	at = memchr(buf, '@', (size_t)(hdr_end - buf));
	if (!at || at == buf || at + 1 == hdr_end)
		return -EINVAL;
	action = buf;
	alen = (size_t)(at - buf);
	devpath = at + 1;
	dlen = (size_t)(hdr_end - devpath);

	for (p = hdr_end + 1; p < end;) {
		const char *e = memchr(p, '\0', (size_t)(end - p));
		const char *eq = memchr(p, '=', (size_t)(e - p));
		const char *val;
		size_t klen, vlen;

		if (!eq || eq == p)
			return -EINVAL;
		klen = (size_t)(eq - p);
		val = eq + 1;
		vlen = (size_t)(e - val);
		if (span_eq(p, klen, "ACTION")) {
			if (vlen != alen || memcmp(val, action, alen) != 0)
				return -EINVAL;
		} else if (span_eq(p, klen, "DEVPATH")) {
			if (vlen != dlen || memcmp(val, devpath, dlen) != 0)
				return -EINVAL;
		} else if (span_eq(p, klen, "SUBSYSTEM")) {
			subsystem = val;
			slen = vlen;
		}
		p = e + 1;
	}

	if (span_eq(action, alen, "online"))
		act = HOTPLUG_ONLINE;
	else if (span_eq(action, alen, "offline"))
		act = HOTPLUG_OFFLINE;
	else
		return 0;
	if (!subsystem || !span_eq(subsystem, slen, "cpu"))
		return 0;
	if (dlen <= strlen(CPU_DIR) ||
	    memcmp(devpath, CPU_DIR, strlen(CPU_DIR)))
		return 0;
	rest = devpath + strlen(CPU_DIR);
	rest_len = dlen - strlen(CPU_DIR);
	if (memchr(rest, '/', rest_len) || rest_len < 3 ||
	    memcmp(rest, "cpu", 3) != 0)
		return 0; /* something below a cpu, or not a cpu */
	if (parse_cpu_name(rest, rest_len, &cpu) < 0)
		return -EINVAL;
	ev->action = act;
	ev->cpu = cpu;
	return 1;
}

int hotplug_open(struct hotplug **ret)
{
	struct hotplug *h;
	int r, fd, big = HOTPLUG_RCVBUF;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->sk = nl_socket_alloc();
	if (!h->sk) {
		free(h);
		return -ENOMEM;
	}
	/* Uevents carry no sequence numbers and need no acks. */
	nl_socket_disable_seq_check(h->sk);
	nl_socket_disable_auto_ack(h->sk);
	/* A group mask, applied by the bind() in nl_connect(). */
	nl_join_groups(h->sk, HOTPLUG_GROUP_KERNEL);
	r = nl_connect(h->sk, NETLINK_KOBJECT_UEVENT);
	if (r < 0)
		goto fail;
	r = nl_socket_set_nonblocking(h->sk);
	if (r < 0)
		goto fail;
	r = nl_socket_set_buffer_size(h->sk, HOTPLUG_RCVBUF, 0);
	if (r < 0)
		goto fail;
	fd = nl_socket_get_fd(h->sk);
	/* Past net.core.rmem_max when we may (best effort). */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		r = -errno;
		nl_socket_free(h->sk);
		free(h);
		return r;
	}
	*ret = h;
	return 0;
fail:
	nl_socket_free(h->sk);
	free(h);
	return proto_errno(r);
}

int hotplug_fd(const struct hotplug *h)
{
	return nl_socket_get_fd(h->sk);
}

uint32_t hotplug_port(const struct hotplug *h)
{
	return nl_socket_get_local_port(h->sk);
}

int hotplug_receive(struct hotplug *h, struct hotplug_event *ev)
{
	char buf[HOTPLUG_MSG_MAX];
	struct sockaddr_nl sa;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr msg = {
		.msg_name = &sa,
		.msg_namelen = sizeof(sa),
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	ssize_t n;
	int r;

	do
		n = recvmsg(nl_socket_get_fd(h->sk), &msg, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		if (errno == ENOBUFS) {
			h->counters.overruns++;
			return -ENOBUFS;
		}
		return -errno;
	}
	/* Only the kernel (port id 0) sends uevents; anyone may unicast. */
	if (msg.msg_namelen < sizeof(sa) || sa.nl_family != AF_NETLINK ||
	    sa.nl_pid != 0) {
		h->counters.spoofed++;
		return 0;
	}
	if (msg.msg_flags & MSG_TRUNC) {
		h->counters.truncated++;
		return 0;
	}
	r = hotplug_parse(buf, (size_t)n, ev);
	if (r < 0) {
		h->counters.malformed++;
		return 0;
	}
	if (r == 0) {
		h->counters.ignored++;
		return 0;
	}
	h->counters.events++;
	return 1;
}

void hotplug_get_counters(const struct hotplug *h, struct hotplug_counters *ret)
{
	*ret = h->counters;
}

void hotplug_close(struct hotplug *h)
{
	if (!h)
		return;
	nl_socket_free(h->sk); /* closes the fd */
	free(h);
}
