/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_CLI_WATCH_H
#define RCUPOOL_CLI_WATCH_H

#include <stdint.h>

#include "ctl.h"
#include "print.h"

/*
 * rcupoolctl watch: the status every interval_us with rates (pages/s,
 * depletions/s, fallbacks/s) until SIGINT or SIGTERM, which end it with
 * exit 0.  On a terminal the screen is redrawn in place; otherwise (and
 * never with escape codes) one block per refresh, or with PRINT_JSON one
 * JSON document per line.  Returns an exit status (enum ctl_exit).
 */
int watch_run(struct ctl *c, uint64_t interval_us, enum print_mode mode);

#endif
