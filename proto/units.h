/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_UNITS_H
#define RCUPOOL_UNITS_H

/*
 * The one grammar of durations and sizes, for the configuration, the CLI's
 * options and everything printed (daemon and CLI link it from proto/).
 *
 * Duration: a decimal number, optionally with a fraction, then optional
 * blanks, then a unit: us, ms, s, min, h or d (m is min); a number without
 * a unit is seconds.  Units are case-insensitive.  "100ms", "100 ms",
 * "1.5s", "2min", "1 d".  The value must be a whole number of microseconds.
 *
 * Size: a decimal number, optional blanks, then nothing or B (bytes), or
 * K, M, G or T (binary multiples), optionally followed by B or iB:
 * "4096", "4K", "4 KiB", "4KB".  Case-insensitive.
 *
 * Parsers return 0, -EINVAL (not a number, or an unknown unit: the words
 * are in UNITS_DURATION_WORDS / UNITS_SIZE_WORDS) or -ERANGE (too big for
 * 64 bits, or a duration finer than a microsecond).
 */

#include <stddef.h>
#include <stdint.h>

#define UNITS_US_PER_MS	 1000ULL
#define UNITS_US_PER_S	 1000000ULL
#define UNITS_US_PER_MIN (60 * UNITS_US_PER_S)
#define UNITS_US_PER_H	 (60 * UNITS_US_PER_MIN)
#define UNITS_US_PER_D	 (24 * UNITS_US_PER_H)

#define UNITS_DURATION_WORDS "us, ms, s, min, h or d"
#define UNITS_SIZE_WORDS     "B, K, M, G or T"

/* Buffer big enough for any formatted value. */
#define UNITS_BUF 32

int units_parse_duration(const char *s, uint64_t *usec);
int units_parse_size(const char *s, uint64_t *bytes);

/*
 * Exact: the largest unit that divides the value ("0", "250us", "100ms",
 * "90s", "2min", "1h", "1d"); parses back to the same value.  Used for
 * configuration values.
 */
const char *units_format_duration(uint64_t usec, char *buf, size_t len);

/*
 * For people: at most two figures of precision, same unit words
 * ("999us", "305ms", "4.2s", "4min 02s", "2h 05min", "3d 04h").
 */
const char *units_human_duration(uint64_t usec, char *buf, size_t len);

/* Exact: "4K", "1M", "4097" (bytes when no multiple divides). */
const char *units_format_size(uint64_t bytes, char *buf, size_t len);

/* For people: "512B", "4.0KiB", "1.5MiB", "2.0GiB". */
const char *units_human_size(uint64_t bytes, char *buf, size_t len);

#endif
