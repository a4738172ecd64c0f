/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOLD_FDSTORE_H
#define RCUPOOLD_FDSTORE_H

/*
 * The service's file descriptor store (DESIGN.md sections 3 and 6): under
 * systemd (NOTIFY_SOCKET set) every chunk memfd, every client's lease
 * memfd, pidfd and connection, and the listening socket the daemon bound
 * itself are kept in systemd's fd store, one FDNAME per fd, and removed
 * (FDSTOREREMOVE=1) when they are gone.  The next instance gets them as
 * LISTEN_FDS/LISTEN_FDNAMES and adopts them: its books are rebuilt from
 * the names, every fd checked against its name first.
 *
 * Names (printable ASCII, no ':', well under 255 characters):
 *   listen                                  the socket bound by the daemon
 *   chunk.ID.pPAGES.cCPU                    a chunk in a pool (CPU: where it
 *                                           was populated, or "any")
 *   lent.ID.pPAGES.cCPU.sSLOT.gGEN          a chunk lent to client SLOT/GEN
 *   lease.sSLOT.gGEN.pidPID.uidUID.minMIN.maxMAX.NAME
 *                                           a client's lease memfd: the
 *                                           client's record
 *   pidfd.sSLOT.gGEN                        its pidfd
 *   conn.sSLOT.gGEN                         its connection
 * GEN is a client generation, never reused (it continues above the highest
 * adopted): a slot reused by another client never matches an old name.
 *
 * Order (a SIGKILL between two steps leaves an adoptable store): a chunk
 * lent is stored under its lent name before it is sent, then its pool name
 * removed, then its fd closed.  The same id under both names is adopted as
 * lent (docs/DECISIONS.md).  A client's lease is stored before its pidfd
 * and connection, and removed after its chunks.
 *
 * Every function is a no-op when the store is off (no NOTIFY_SOCKET) or
 * frozen (stopping: what is in the store stays for the next instance).
 */

#include <stdbool.h>

struct daemon;
struct chunk;
struct client;

/* The store is on when NOTIFY_SOCKET is set. */
void fdstore_init(struct daemon *d);
/* Stopping: leave the store as it is (the next instance adopts it). */
void fdstore_freeze(struct daemon *d);

void fdstore_put_listener(struct daemon *d);
/* The stored listener is bound elsewhere than configured now. */
void fdstore_drop_listener(struct daemon *d);
/* A fresh chunk in a pool. */
void fdstore_put_chunk(struct daemon *d, const struct chunk *c);
/* A chunk being lent (c->where, c->owner set; c->fd still open). */
void fdstore_lend_chunk(struct daemon *d, const struct chunk *c);
/* After the reply: its pool name goes. */
void fdstore_unpool_chunk(struct daemon *d, const struct chunk *c);
/* The chunk is retired: its name (pool or lent) goes. */
void fdstore_drop_chunk(struct daemon *d, const struct chunk *c);
/* A client attached (before its reply): lease, pidfd, connection. */
void fdstore_put_client(struct daemon *d, const struct client *cl, int conn_fd);
/* Its connection closed. */
void fdstore_drop_conn(struct daemon *d, const struct client *cl);
/* Its process exited (after its chunks): pidfd, lease, connection. */
void fdstore_drop_client(struct daemon *d, const struct client *cl);

/*
 * At start, before the socket: take LISTEN_FDS when any of them is ours
 * (else leave socket activation to listen_from_systemd()), sort them, take
 * the listening socket.  0 or -errno (out of memory only).
 */
int fdstore_load(struct daemon *d);
/* In reserve_create, once the geometry is computed: adopted clients keep
 * theirs (a changed chunk size applies when no lease holds the old one). */
void fdstore_geometry(struct daemon *d);
/* In reserve_create, once the pools exist: clients, lent chunks, pool
 * chunks; everything that does not fit is closed, removed, counted. */
void fdstore_adopt(struct daemon *d);

#endif
