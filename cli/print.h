/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_CLI_PRINT_H
#define RCUPOOL_CLI_PRINT_H

/*
 * rcupoolctl's one printing layer, in the spirit of iproute2's json_print:
 * a command makes the same calls whatever the output mode, and the mode
 * decides what they print.
 *
 *   PRINT_HUMAN       aligned text tables for a person
 *   PRINT_JSON        one JSON document, snake_case keys from stats.h
 *   PRINT_PROMETHEUS  the text exposition format (node_exporter textfile):
 *                     rcupool_<set>_<name>[_total] with # HELP and # TYPE
 *
 * Rows of the stats sets (stats.h) go through print_record (one row: the
 * daemon's status) and print_table_open/print_row/print_table_close (a
 * list: CPUs, clients).  Tables are buffered until closed: the human table
 * needs every width, and Prometheus wants the samples of one metric
 * together.  Row strings must stay valid until the table is closed.
 *
 * Keys name a member of the enclosing JSON object; NULL inside an array
 * or at the top.  Plain values (print_string, print_uint) go to JSON only,
 * or to the human "key value" list when a command has no table.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "stats.h"

enum print_mode {
	PRINT_HUMAN,
	PRINT_JSON,
	PRINT_PROMETHEUS,
};

/* How print_record shows a row to a person. */
enum print_style {
	PRINT_FIELDS,  /* one aligned "name  value" line per field */
	PRINT_SUMMARY, /* the status at a glance: bar, counters, clients */
};

/* Start one document on out.  compact: JSON on one line (watch --json). */
void print_open(enum print_mode mode, FILE *out, bool compact);
/* End the document; flush.  0, or -errno when writing failed. */
int print_close(void);
enum print_mode print_mode(void);

void print_open_object(const char *key);
void print_close_object(void);
void print_open_array(const char *key);
void print_close_array(void);
void print_string(const char *key, const char *value);
void print_uint(const char *key, uint64_t value);
void print_double(const char *key, double value);

/* One row of set: members of a JSON object named key (NULL: the enclosing
 * object's own members), samples without extra labels, or human text. */
void print_record(const struct stats_set *set, const char *key,
		  const struct stats_row *row, enum print_style style);

/*
 * A table of set's rows: a JSON array named key, a metric family per field
 * labelled by the set's label fields, or a human table with a heading
 * (title, may be NULL) of the columns attrs (0-terminated; NULL: every
 * field).  JSON and Prometheus always show every field.
 */
void print_table_open(const struct stats_set *set, const char *key,
		      const char *title, const uint16_t *attrs);
void print_row(const struct stats_row *row);
void print_table_close(void);

/* A human line as is (ignored in the other modes). */
void print_human(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Human forms of values, for the callers' own lines too (durations and
 * sizes: units_human_duration, units_human_size in proto/units.h). */
const char *print_bar(uint64_t part, uint64_t whole, int width, char *buf,
		      size_t len);

/* Writers of the escapes, exposed for the tests. */
void print_json_escaped(FILE *out, const char *s);
void print_prom_label_escaped(FILE *out, const char *s);

#endif
