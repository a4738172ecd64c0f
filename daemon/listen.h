/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOLD_LISTEN_H
#define RCUPOOLD_LISTEN_H

#include <stddef.h>
#include <sys/types.h>

/*
 * The control socket: AF_UNIX SOCK_SEQPACKET, listening, O_NONBLOCK and
 * FD_CLOEXEC, either handed over by systemd or bound by the daemon.
 */

/*
 * Socket activation.  Returns 0 when systemd passed no socket (started by
 * hand: bind one), 1 with *fd set when it passed exactly one listening
 * AF_UNIX SOCK_SEQPACKET socket (made non-blocking here), -EINVAL for
 * anything else (several sockets, or a socket of the wrong kind: those
 * are closed), or another -errno from sd_listen_fds_with_names().  The
 * LISTEN_* variables are removed from the environment either way.
 * Suggested message for -EINVAL: "socket activation: expected exactly one
 * listening AF_UNIX SOCK_SEQPACKET socket (check ListenSequentialPacket=
 * in rcupoold.socket)".
 */
int listen_from_systemd(int *fd);

/*
 * Bind and listen on path; returns the fd or -errno, and on error a
 * one-line reason in why (may be NULL).
 *
 * The parent directory is created (mode 0755) if missing, but not its
 * parents.  A socket already at path is probed with connect(): refused
 * means a stale file from a dead daemon, which is replaced; accepted means
 * another instance is live: -EADDRINUSE, "another rcupoold is already
 * listening on PATH".  Anything that is not a seqpacket socket at path:
 * -EEXIST. The socket file ends with exactly mode (whatever the umask), and
 * nobody can connect before it has that mode (listen() comes after chmod()).
 */
int listen_bind(const char *path, mode_t mode, int backlog, char *why,
		size_t whylen);

#endif
