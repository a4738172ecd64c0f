/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_ATTACH_H
#define RCUPOOL_ATTACH_H

/*
 * The client side of ATTACH: connect to the daemon, ask for a slot, receive
 * the segment's memfd and a kick eventfd (SCM_RIGHTS), map and validate the
 * segment.  The connection stays open for the client's life: the daemon
 * takes its closing (EOF) as the client's exit and reclaims every page the
 * slot owns.
 */

#include <stdint.h>

#include "seg.h"

struct attach {
	int sock;	     /* control connection, kept open */
	int kick_fd;	     /* eventfd: write 1 when every list ran dry */
	struct seg seg;	     /* mapped and validated */
	uint32_t slot;	     /* our slot in seg.slot[] */
	uint32_t min_pages;  /* as granted (the segment has the live value) */
	uint32_t max_pages;
	uint64_t generation; /* the daemon's instance, to notice a restart */
};

/*
 * Attach to the daemon at path (NULL: proto_socket_path()) as name, asking
 * for min/max pages (0: the daemon's defaults).  0, or -errno with why
 * filled: -ENOENT/-ECONNREFUSED no daemon, -EACCES not allowed to attach,
 * -EUSERS no free slot, -EBADMSG a bad segment or reply.
 */
int attach_open(const char *path, const char *name, uint32_t min_pages,
		uint32_t max_pages, struct attach *a, char *why, size_t whylen);

/*
 * Tell the daemon we are done (DETACH: it takes back whatever the slot
 * still owns) and close everything.  Safe on a zeroed or closed attach.
 */
void attach_close(struct attach *a);

/* Ask the daemon to refill now.  Never blocks; 0 or -errno. */
int attach_kick(const struct attach *a);

#endif
