// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <netlink/errno.h>
#include <cmocka.h>

#include "cpu.h"
#include "../daemon/hotplug.h"
#include "proto.h"

/*
 * A message literal is written without its final NUL: sizeof() counts the
 * one the compiler adds, which is the kernel's last terminator.
 */
#define MSG(s) s, sizeof(s)
#define CPU_EV(act, n)                                                         \
	act "@/devices/system/cpu/cpu" n "\0ACTION=" act                       \
	    "\0DEVPATH=/devices/system/cpu/cpu" n                              \
	    "\0SUBSYSTEM=cpu\0SEQNUM=4711"

static int parse(const char *buf, size_t len, struct hotplug_event *ev)
{
	char *copy;
	int r;

	/* An exact-size heap copy, so ASan sees any read past len. */
	copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, buf, len);
	r = hotplug_parse(copy, len, ev);
	free(copy);
	return r;
}

static void test_parse_valid(void **state)
{
	struct hotplug_event ev = {.action = 99, .cpu = 99};

	assert_int_equal(parse(MSG(CPU_EV("online", "0")), &ev), 1);
	assert_int_equal(ev.action, HOTPLUG_ONLINE);
	assert_int_equal(ev.cpu, 0);
	assert_int_equal(parse(MSG(CPU_EV("offline", "17")), &ev), 1);
	assert_int_equal(ev.action, HOTPLUG_OFFLINE);
	assert_int_equal(ev.cpu, 17);
	assert_int_equal(parse(MSG(CPU_EV("online", "4095")), &ev), 1);
	assert_int_equal(ev.cpu, 4095);
	/* Real kernel messages carry more keys, in this order. */
	assert_int_equal(
		parse(MSG("offline@/devices/system/cpu/cpu1\0ACTION=offline\0"
			  "DEVPATH=/devices/system/cpu/cpu1\0SUBSYSTEM=cpu\0"
			  "DRIVER=processor\0"
			  "MODALIAS=cpu:type:x86,ven0000fam0006mod003F:"
			  "feature:,0000,0001\0SEQNUM=2211"),
		      &ev),
		1);
	assert_int_equal(ev.action, HOTPLUG_OFFLINE);
	assert_int_equal(ev.cpu, 1);
	/* Header only plus SUBSYSTEM is enough. */
	assert_int_equal(parse(MSG("online@/devices/system/cpu/cpu3\0"
				   "SUBSYSTEM=cpu"),
			       &ev),
			 1);
	assert_int_equal(ev.cpu, 3);
}

static void test_parse_ignored(void **state)
{
	struct hotplug_event ev = {.action = 99, .cpu = 99};

	/* Other actions on a CPU: add is not online. */
	assert_int_equal(parse(MSG(CPU_EV("add", "2")), &ev), 0);
	assert_int_equal(parse(MSG(CPU_EV("remove", "2")), &ev), 0);
	assert_int_equal(parse(MSG(CPU_EV("change", "2")), &ev), 0);
	assert_int_equal(parse(MSG(CPU_EV("bind", "2")), &ev), 0);
	/* Memory hotplug uses the same actions. */
	assert_int_equal(
		parse(MSG("offline@/devices/system/memory/memory5\0"
			  "ACTION=offline\0DEVPATH=/devices/system/memory/"
			  "memory5\0SUBSYSTEM=memory\0SEQNUM=9"),
		      &ev),
		0);
	assert_int_equal(parse(MSG("online@/devices/system/memory/memory5\0"
				   "SUBSYSTEM=memory"),
			       &ev),
			 0);
	/* Right path, other subsystem; no subsystem at all. */
	assert_int_equal(parse(MSG("online@/devices/system/cpu/cpu1\0"
				   "SUBSYSTEM=machinecheck"),
			       &ev),
			 0);
	assert_int_equal(parse(MSG("online@/devices/system/cpu/cpu1\0"
				   "ACTION=online"),
			       &ev),
			 0);
	assert_int_equal(parse(MSG("online@/devices/system/cpu/cpu1\0"
				   "SUBSYSTEM=cpus"),
			       &ev),
			 0);
	/* Below a CPU, or beside them. */
	assert_int_equal(parse(MSG("online@/devices/system/cpu/cpu1/cache/"
				   "index0\0SUBSYSTEM=cpu"),
			       &ev),
			 0);
	assert_int_equal(parse(MSG("online@/devices/system/cpu/"
				   "\0SUBSYSTEM=cpu"),
			       &ev),
			 0);
	assert_int_equal(parse(MSG("online@/devices/system/cpu/machinecheck\0"
				   "SUBSYSTEM=cpu"),
			       &ev),
			 0);
	assert_int_equal(parse(MSG("online@/devices/virtual/cpu/cpu1\0"
				   "SUBSYSTEM=cpu"),
			       &ev),
			 0);
	assert_int_equal(parse(MSG("online@/devices/system/cpu\0"
				   "SUBSYSTEM=cpu"),
			       &ev),
			 0);
	/* Network and USB events are well-formed and uninteresting. */
	assert_int_equal(
		parse(MSG("add@/devices/virtual/net/veth0\0ACTION=add\0"
			  "DEVPATH=/devices/virtual/net/veth0\0SUBSYSTEM=net\0"
			  "INTERFACE=veth0\0IFINDEX=7\0SEQNUM=10"),
		      &ev),
		0);
	/* Empty values are fine. */
	assert_int_equal(parse(MSG("change@/x\0FOO=\0SEQNUM=1"), &ev), 0);
	assert_int_equal(ev.action, 99);
	assert_int_equal(ev.cpu, 99);
}

static void test_parse_malformed(void **state)
{
	struct hotplug_event ev = {.action = 99, .cpu = 99};
	static const char full[] = CPU_EV("offline", "17");
	const char *sub;

	assert_int_equal(hotplug_parse(NULL, 0, &ev), -EINVAL);
	assert_int_equal(hotplug_parse("", 0, &ev), -EINVAL);
	assert_int_equal(parse("", 1, &ev), -EINVAL); /* just a NUL */
	/* No trailing NUL: every truncation of a good message. */
	sub = memmem(full, sizeof(full), "SUBSYSTEM=cpu", 14);
	assert_non_null(sub);
	for (size_t len = 1; len < sizeof(full); len++) {
		int r = parse(full, len, &ev);

		if (full[len - 1] != '\0')
			assert_int_equal(r, -EINVAL);
		else /* cut at an entry boundary: well-formed */
			assert_int_equal(r, len >= (size_t)(sub - full) + 14);
	}
	assert_int_equal(parse(full, sizeof(full), &ev), 1);
	ev.action = 99;
	ev.cpu = 99;
	/* No '@', empty action, empty devpath. */
	assert_int_equal(parse(MSG("offline/devices/system/cpu/cpu0\0"
				   "SUBSYSTEM=cpu"),
			       &ev),
			 -EINVAL);
	assert_int_equal(
		parse(MSG("@/devices/system/cpu/cpu0\0SUBSYSTEM=cpu"), &ev),
		-EINVAL);
	assert_int_equal(parse(MSG("offline@\0SUBSYSTEM=cpu"), &ev), -EINVAL);
	/* libudev's re-broadcast header is not a kernel message. */
	assert_int_equal(parse(MSG("libudev\0\xfe\xed\xca\xfe"), &ev), -EINVAL);
	/* Truncated key/values: no '=', empty key, empty entry. */
	assert_int_equal(parse(MSG("offline@/devices/system/cpu/cpu0\0"
				   "SUBSYSTEM=cpu\0SEQ"),
			       &ev),
			 -EINVAL);
	assert_int_equal(parse(MSG("offline@/devices/system/cpu/cpu0\0"
				   "SUBSYSTEM=cpu\0=cpu"),
			       &ev),
			 -EINVAL);
	assert_int_equal(parse(MSG("offline@/devices/system/cpu/cpu0\0"
				   "SUBSYSTEM=cpu\0\0SEQNUM=1"),
			       &ev),
			 -EINVAL);
	/* Keys contradicting the header. */
	assert_int_equal(parse(MSG("offline@/devices/system/cpu/cpu0\0"
				   "ACTION=online\0SUBSYSTEM=cpu"),
			       &ev),
			 -EINVAL);
	assert_int_equal(parse(MSG("offline@/devices/system/cpu/cpu0\0"
				   "DEVPATH=/devices/system/cpu/cpu1\0"
				   "SUBSYSTEM=cpu"),
			       &ev),
			 -EINVAL);
	/* Bad CPU numbers. */
	assert_int_equal(parse(MSG(CPU_EV("offline", "")), &ev), -EINVAL);
	assert_int_equal(parse(MSG(CPU_EV("offline", "12x")), &ev), -EINVAL);
	assert_int_equal(parse(MSG(CPU_EV("offline", "-1")), &ev), -EINVAL);
	assert_int_equal(parse(MSG(CPU_EV("offline", "+1")), &ev), -EINVAL);
	assert_int_equal(parse(MSG(CPU_EV("offline", " 1")), &ev), -EINVAL);
	assert_int_equal(parse(MSG(CPU_EV("offline", "007")), &ev), -EINVAL);
	assert_int_equal(parse(MSG(CPU_EV("offline", "4096")), &ev), -EINVAL);
	assert_int_equal(
		parse(MSG(CPU_EV("online", "99999999999999999999999")), &ev),
		-EINVAL);
	assert_int_equal(parse(MSG(CPU_EV("online", "0x1")), &ev), -EINVAL);
	assert_int_equal(ev.action, 99);
	assert_int_equal(ev.cpu, 99);
}

static void test_nle_errno(void **state)
{
	assert_int_equal(proto_errno(0), 0);
	assert_int_equal(proto_errno(-NLE_NOMEM), -ENOMEM);
	assert_int_equal(proto_errno(NLE_NOMEM), -ENOMEM);
	assert_int_equal(proto_errno(-NLE_AGAIN), -EAGAIN);
	assert_int_equal(proto_errno(-NLE_PERM), -EPERM);
	assert_int_equal(proto_errno(-NLE_PROTO_MISMATCH), -EPROTO);
	assert_int_equal(proto_errno(-NLE_BAD_SOCK), -EBADF);
	assert_int_equal(proto_errno(-NLE_FAILURE), -EIO);
	assert_int_equal(proto_errno(-1000), -EIO);
}

/* Open, or skip when this environment has no uevent socket for us. */
static struct hotplug *open_or_skip(void)
{
	struct hotplug *h = NULL;
	int r = hotplug_open(&h);

	if (r == -EPERM || r == -EACCES || r == -EPROTONOSUPPORT ||
	    r == -EAFNOSUPPORT) {
		print_message("# cannot open a NETLINK_KOBJECT_UEVENT socket "
			      "here (%s): skipping\n",
			      strerror(-r));
		return NULL;
	}
	assert_int_equal(r, 0);
	assert_non_null(h);
	return h;
}

static void test_open(void **state)
{
	struct hotplug_event ev;
	struct hotplug *h = open_or_skip();
	int fd, v;
	socklen_t len = sizeof(v);

	if (!h)
		skip();
	fd = hotplug_fd(h);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_true(hotplug_port(h) != 0);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len), 0);
	assert_true(v > 32768);
	/* Drain whatever the system is doing; then nothing is pending. */
	while (hotplug_receive(h, &ev) != -EAGAIN)
		;
	assert_int_equal(hotplug_receive(h, &ev), -EAGAIN);
	hotplug_close(h);
	hotplug_close(NULL);
}

/*
 * A process with CAP_NET_ADMIN (root, or root of a container sharing the
 * network namespace, or udev) may unicast to a uevent socket's port id: a
 * forged CPU offline from userspace must be dropped, however well-formed.
 */
static void test_spoof_ignored(void **state)
{
	static const char fake[] = CPU_EV("offline", "0");
	struct sockaddr_nl to = {.nl_family = AF_NETLINK};
	struct sockaddr_nl me = {.nl_family = AF_NETLINK};
	struct hotplug_counters c;
	struct hotplug_event ev;
	struct hotplug *h = open_or_skip();
	int s, r, ones = 0;
	ssize_t n;

	if (!h)
		skip();
	/* The same bytes from the kernel would be an event. */
	assert_int_equal(parse(fake, sizeof(fake), &ev), 1);

	s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
		   NETLINK_KOBJECT_UEVENT);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&me, sizeof(me)), 0);
	to.nl_pid = hotplug_port(h);
	to.nl_groups = 0;
	n = sendto(s, fake, sizeof(fake), 0, (struct sockaddr *)&to,
		   sizeof(to));
	if (n < 0 && errno == EPERM) {
		/* Unprivileged senders are refused by the kernel already. */
		print_message("# sending on NETLINK_KOBJECT_UEVENT needs "
			      "CAP_NET_ADMIN: skipping\n");
		close(s);
		hotplug_close(h);
		skip();
	}
	assert_int_equal(n, (ssize_t)sizeof(fake));
	/* libudev's re-broadcast format, sent the same way. */
	assert_int_equal(sendto(s, "libudev\0\xfe\xed\xca\xfe", 12, 0,
				(struct sockaddr *)&to, sizeof(to)),
			 12);

	while ((r = hotplug_receive(h, &ev)) != -EAGAIN) {
		assert_true(r == 0 || r == 1);
		if (r == 1)
			ones++;
	}
	assert_int_equal(ones, 0);
	hotplug_get_counters(h, &c);
	assert_int_equal(c.spoofed, 2);
	assert_int_equal(c.events, 0);
	close(s);
	hotplug_close(h);
}

/*
 * A real kernel uevent: writing an action to a device's uevent file makes
 * the kernel emit a synthetic one.  "online" on an online CPU changes
 * nothing else.
 */
static void test_kernel_synthetic_online(void **state)
{
	const char *path = "/sys/devices/system/cpu/cpu0/uevent";
	struct hotplug_counters c;
	struct hotplug_event ev;
	struct hotplug *h = open_or_skip();
	bool seen = false;
	int fd;

	if (!h)
		skip();
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "online", 6) != 6) {
		print_message("# cannot write %s (%s): skipping\n", path,
			      strerror(errno));
		if (fd >= 0)
			close(fd);
		hotplug_close(h);
		skip();
	}
	close(fd);
	/* Generous bound for delivery; not a timing assertion. */
	while (!seen) {
		struct pollfd p = {.fd = hotplug_fd(h), .events = POLLIN};
		int r;

		if (poll(&p, 1, 10000) != 1)
			break;
		while ((r = hotplug_receive(h, &ev)) != -EAGAIN) {
			assert_true(r == 0 || r == 1);
			if (r == 1 && ev.action == HOTPLUG_ONLINE &&
			    ev.cpu == 0)
				seen = true;
		}
	}
	hotplug_get_counters(h, &c);
	hotplug_close(h);
	if (!seen) {
		print_message("# no kernel uevent arrived (another network "
			      "namespace?): skipping\n");
		skip();
	}
	assert_true(c.events >= 1);
	assert_int_equal(c.spoofed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_ignored),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_nle_errno),
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_spoof_ignored),
		cmocka_unit_test(test_kernel_synthetic_online),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
