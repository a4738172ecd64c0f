/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_STATS_H
#define RCUPOOL_STATS_H

/*
 * What the daemon reports, described once: every field of the STATUS, CPU
 * and CLIENT attribute sets (proto.h) with its snake_case name (the JSON
 * key; the Prometheus metric is rcupool_<set>_<base name>, plus _seconds or
 * _bytes for a unit, plus _total for a counter), its type, whether it is a
 * counter or a gauge, its unit, and one line of help (Prometheus # HELP).
 * Series are labelled only with what identifies a row stably (STATS_LABEL:
 * cpu; client slot and name); facts that change with every restart of a
 * client (pid) or never (uid, version) are labels of one
 * rcupool_<set>_info series (STATS_INFO).  The daemon fills a row by attribute and puts it; the CLI parses a
 * row and prints it as a table, JSON or Prometheus text from this table.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netlink/msg.h>

#include "proto.h"

enum stats_type {
	STATS_U32,
	STATS_U64,
	STATS_STR,
};

enum stats_kind {
	STATS_GAUGE,
	STATS_COUNTER,
	STATS_LABEL, /* identifies the row (cpu id, client slot, pid, name) */
	STATS_INFO,  /* a fact, not a measurement (version) */
};

/* The unit of a number: JSON keeps the raw number under the field's name;
 * Prometheus converts to base units (node_exporter's convention), the
 * human output prints it with the unit words of proto/units.h. */
enum stats_unit {
	STATS_UNIT_NONE,
	STATS_UNIT_USEC,  /* microseconds: _seconds in Prometheus */
	STATS_UNIT_BYTES, /* bytes: _bytes in Prometheus */
	STATS_UNIT_NSEC,  /* nanoseconds: _seconds in Prometheus */
};

struct stats_field {
	uint16_t attr;
	enum stats_type type;
	enum stats_kind kind;
	const char *name;
	const char *help;
	enum stats_unit unit; /* appended: STATS_UNIT_NONE unless set */
};

/*
 * The field's name without its unit ("uptime_usec" -> "uptime",
 * "throttled_ns" -> "throttled"), for the
 * human output and the Prometheus base name, into buf.
 */
const char *stats_base_name(const struct stats_field *f, char *buf,
			    size_t len);

#define STATS_ATTR_MAX 47

struct stats_set {
	const char *name; /* "status", "cpu", "client" */
	int maxattr;
	const struct stats_field *fields;
	size_t nfields;
};

extern const struct stats_set stats_status, stats_cpu, stats_client;

/* One row of values, indexed by attribute. */
struct stats_row {
	bool has[STATS_ATTR_MAX + 1];
	uint64_t u[STATS_ATTR_MAX + 1];
	const char *s[STATS_ATTR_MAX + 1]; /* points into the message */
};

static inline void stats_set_u(struct stats_row *r, int attr, uint64_t v)
{
	r->has[attr] = true;
	r->u[attr] = v;
}

static inline void stats_set_s(struct stats_row *r, int attr, const char *v)
{
	r->has[attr] = true;
	r->s[attr] = v;
}

/* The field of set for attr, or NULL. */
const struct stats_field *stats_field(const struct stats_set *set, int attr);

/* Put row as one nested attribute of type nest_attr.  0 or -errno. */
int stats_put(const struct stats_set *set, struct nl_msg *msg, int nest_attr,
	      const struct stats_row *row);

/* Parse a nested attribute into row, checking each field's type and size;
 * unknown (newer) attributes are ignored.  0 or -EBADMSG. */
int stats_parse(const struct stats_set *set, const struct nlattr *nest,
		struct stats_row *row);

#endif
