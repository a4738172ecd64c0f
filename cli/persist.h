/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_CLI_PERSIST_H
#define RCUPOOL_CLI_PERSIST_H

/*
 * set/unset/revert --persist: rcupoolctl's drop-in in the daemon's
 * configuration directory, CONFDIR/rcupoold.conf.d/90-rcupoolctl.conf
 * (CONF_PERSIST_FILE).  The daemon names the file (the reply to a dry run:
 * PROTO_A_PATH) and checks the configuration it would give before
 * rcupoolctl writes it; the file is read with inih and edited in place
 * (daemon/dropin.h): only the keys changed are touched, comments stay.
 */

#include <stdbool.h>
#include <stddef.h>

#include "dropin.h"

#define PERSIST_FILE "90-rcupoolctl.conf"

/* Where --config-dir/RCUPOOL_CONFDIR says the drop-in is, or NULL when
 * neither is set: DIR/rcupoold.conf.d/PERSIST_FILE into buf. */
const char *persist_expected(const char *config_dir, char *buf, size_t len);

/*
 * Edit path with the changes (value NULL: remove; n == 0 with all: remove
 * every key).  *old gets the content before (for persist_restore); a file
 * left without a key is removed.  0 or -errno, why the reason.
 */
int persist_apply(const char *path, const struct dropin_change *ch, size_t n,
		  bool all, char **old, char *why, size_t wlen);

/* Put back what persist_apply found ("" = no file). */
int persist_restore(const char *path, const char *old, char *why, size_t wlen);

#endif
