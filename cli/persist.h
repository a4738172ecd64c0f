/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_CLI_PERSIST_H
#define RCUPOOL_CLI_PERSIST_H

/*
 * set --persist: the settings the daemon accepted, kept for the next start
 * in DIR/rcupoold.conf.d/90-rcupoolctl.conf, a drop-in rcupoolctl owns
 * (rcupoold reads drop-ins after the main file, in name order).  Settings
 * already there stay, the same key is replaced.  DIR: config_dir, else
 * $RCUPOOL_CONFDIR, else SYSCONFDIR/rcupool.
 */

#include <stddef.h>

#define PERSIST_FILE "90-rcupoolctl.conf"

/* "balance.low" -> section "balance", key "low"; "client.db.max_pages" ->
 * "client db", "max_pages".  0 or -EINVAL (no dot). */
int persist_split(const char *dotted, char *section, size_t slen, char *key,
		  size_t klen);

/* Write settings ("key=value"); path gets the file written, why the reason
 * of a failure.  0 or -errno. */
int persist_settings(const char *config_dir, char *const *settings, size_t n,
		     char *path, size_t plen, char *why, size_t wlen);

#endif
