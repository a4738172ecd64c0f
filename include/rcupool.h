/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_H
#define RCUPOOL_H

/*
 * librcupool: deferred frees for liburcu programs, batched into pages of a
 * preallocated reserve owned by rcupoold.  Build with
 * `pkg-config --cflags --libs rcupool`.
 */

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH".  Never fails. */
const char *rcupool_version(void);

#ifdef __cplusplus
}
#endif

#endif
