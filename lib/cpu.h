/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_CPU_H
#define RCUPOOL_CPU_H

#include <stdbool.h>
#include <stdint.h>

/* Upper bound on CPU numbers we accept from sysfs or a segment header. */
#define CPU_MAX 4096

/*
 * Parse a kernel CPU list ("0-3,8,10-11\n") into set[0..nset).  Returns the
 * highest CPU number + 1 (0 for an empty list), -EINVAL on a malformed list,
 * -ERANGE when a CPU number is >= nset or >= CPU_MAX.  set may be NULL to
 * only validate and measure.
 */
int cpu_list_parse(const char *text, bool *set, unsigned int nset);

/* Read and parse a sysfs CPU list file; same returns, plus -errno of open/read. */
int cpu_list_read(const char *path, bool *set, unsigned int nset);

/* Number of possible CPUs (highest possible + 1), >= 1, or -errno. */
int cpu_possible_count(void);

#endif
