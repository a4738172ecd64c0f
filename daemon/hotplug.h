/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOLD_HOTPLUG_H
#define RCUPOOLD_HOTPLUG_H

#include <stddef.h>
#include <stdint.h>

/*
 * CPU hotplug through kernel uevents: a libnl-3 socket on
 * NETLINK_KOBJECT_UEVENT, multicast group 1 (the kernel's; group 2 is
 * udev's re-broadcast, which we do not join).
 */

struct hotplug_event {
	enum hotplug_action {
		HOTPLUG_ONLINE,
		HOTPLUG_OFFLINE,
	} action;
	unsigned int cpu; /* < CPU_MAX */
};

/*
 * Parse one uevent datagram: "ACTION@DEVPATH\0KEY=VALUE\0...KEY=VALUE\0".
 * Returns 1 with *ev filled for an "online" or "offline" action on
 * /devices/system/cpu/cpuN with SUBSYSTEM=cpu, 0 for any other well-formed
 * event (ignore it), -EINVAL for a malformed one: empty, not ending in NUL,
 * no '@' or an empty action or devpath, an entry that is empty or has no
 * '=', ACTION=/DEVPATH= disagreeing with the header, or for an online/
 * offline cpu event a CPU number that is not plain decimal below CPU_MAX
 * ("cpu", "cpu12x", "cpu-1", "cpu007", "cpu99999999999").  Never reads
 * buf[len] or beyond; *ev is only written on 1.
 */
int hotplug_parse(const char *buf, size_t len, struct hotplug_event *ev);

struct hotplug;

/* What hotplug_receive() has seen and dropped. */
struct hotplug_counters {
	uint64_t events;    /* returned as 1 */
	uint64_t ignored;   /* well-formed, not a CPU online/offline */
	uint64_t spoofed;   /* sender port id != 0: not the kernel */
	uint64_t malformed; /* from the kernel, but hotplug_parse() < 0 */
	uint64_t truncated; /* larger than the receive buffer */
	uint64_t overruns;  /* ENOBUFS: the kernel dropped events */
};

/*
 * Open the uevent socket: non-blocking, close-on-exec, a receive buffer of
 * 1 MiB (more than rmem_max when privileged).  Returns 0 or -errno; in a
 * container without the uevent netlink family, -EPROTONOSUPPORT or -EPERM.
 */
int hotplug_open(struct hotplug **ret);

/* For sd_event_add_io(..., EPOLLIN, ...). */
int hotplug_fd(const struct hotplug *h);

/* The socket's netlink port id (nl_socket_get_local_port()). */
uint32_t hotplug_port(const struct hotplug *h);

/*
 * Read one datagram.  Returns 1 with *ev filled for a CPU online/offline
 * from the kernel; 0 for a message that was dropped (ignored, spoofed,
 * malformed or truncated; see the counters); -EAGAIN when nothing is
 * pending; -ENOBUFS when the kernel dropped events because the socket was
 * full: the caller must resync from /sys/devices/system/cpu/online (and
 * then keep reading); another -errno on error.
 */
int hotplug_receive(struct hotplug *h, struct hotplug_event *ev);

void hotplug_get_counters(const struct hotplug *h,
			  struct hotplug_counters *ret);

/* Free everything; NULL is fine. */
void hotplug_close(struct hotplug *h);


#endif
