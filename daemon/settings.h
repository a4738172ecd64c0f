/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_SETTINGS_H
#define RCUPOOL_SETTINGS_H

/*
 * Settings in layers, as systemd does (README "Configuration"; DECISIONS):
 *
 *   1. built-in defaults;
 *   2. the main file and its drop-ins (conf_load), among them the persist
 *      drop-in CONF_PERSIST_FILE that "rcupoolctl set --persist" writes;
 *   3. the runtime drop-in, RUNDIR/rcupoold.conf.d/CONF_RUNTIME_FILE, that
 *      "rcupoolctl set" makes the daemon write (RUNDIR: $RUNTIME_DIRECTORY
 *      under systemd, /run/rcupool; else the directory of the socket the
 *      daemon listens on); gone at reboot, kept across reloads and
 *      restarts;
 *   4. -o options.
 *
 * A change (set, unset, revert; runtime or persist) is checked on the whole
 * configuration it would give, read again from the files, before anything
 * is written or applied; then the runtime drop-in is written, and the result
 * applied as a reload applies it.  Persist changes are written by
 * rcupoolctl between a dry run and the real request (the daemon may not
 * write the configuration directory).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "dropin.h"

struct daemon;

/* Remember --socket (the runtime directory follows the socket). */
void settings_init(const char *socket_option);

/* Files, runtime drop-in, -o options, validated: into *c (start, check). */
int settings_load(struct daemon *d, struct conf *c, struct conf_error *err);

/* The socket a daemon started by hand listens on (server.c's rule:
 * --socket, [daemon] socket, $RUNTIME_DIRECTORY, proto_listen_path);
 * -ENOENT when there is none. */
int settings_socket_path(const struct conf *files, char *buf, size_t size);

/* The runtime drop-in's path for this daemon ("" when it has none):
 * rcupoold.conf.d/CONF_RUNTIME_FILE beside the socket. */
void settings_runtime_path(const struct conf *files, char *buf, size_t size);

/* Keys "rcupoolctl set" may change while the daemon runs. */
bool settings_live_key(const char *key);

/* d->attach_gid, d->admin_gid from d->conf (a missing group: a warning). */
int settings_resolve_groups(struct daemon *d);

/* Read everything again and apply it (SIGHUP, rcupoolctl reload). */
int settings_reload(struct daemon *d, char *why, size_t whylen);

struct settings_req {
	uint32_t layer; /* enum proto_layer */
	bool dry_run;	/* check only */
	bool unset;	/* remove keys (values ignored) */
	const struct dropin_change *ch;
	size_t n; /* unset with n == 0: every key of the layer (revert) */
};

/*
 * Set or remove keys in a layer.  0 or -errno; why gets the message
 * ("2 settings changed ..." or the reason), path the drop-in of the layer.
 */
int settings_change(struct daemon *d, const struct settings_req *req, char *why,
		    size_t whylen, char *path, size_t plen);

#endif
