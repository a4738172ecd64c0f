// SPDX-License-Identifier: LGPL-2.1-or-later
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "print.h"
#include "units.h"

#define PRINT_DEPTH_MAX 16
#define CELL_MAX	64

static struct {
	enum print_mode mode;
	FILE *out;
	bool compact;
	bool failed;
	int depth;
	bool first[PRINT_DEPTH_MAX + 1]; /* nothing printed yet at that depth */
	int human_sections;		 /* for the blank line between them */

	/* The open table. */
	const struct stats_set *set;
	const char *title;
	uint16_t cols[STATS_ATTR_MAX + 1];
	int ncols;
	struct stats_row *rows;
	size_t nrows, cap;
} P;

void print_open(enum print_mode mode, FILE *out, bool compact)
{
	free(P.rows);
	memset(&P, 0, sizeof(P));
	P.mode = mode;
	P.out = out;
	P.compact = compact;
	P.first[0] = true;
}

int print_close(void)
{
	if (P.mode == PRINT_JSON)
		fputc('\n', P.out);
	free(P.rows);
	P.rows = NULL;
	P.nrows = P.cap = 0;
	if (fflush(P.out) != 0 || ferror(P.out) || P.failed)
		return -EIO;
	return 0;
}

enum print_mode print_mode(void)
{
	return P.mode;
}

/* --- JSON ---------------------------------------------------------------- */

void print_json_escaped(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		default:
			/* Names come from clients: any control byte is escaped,
			 * other bytes pass (UTF-8 stays UTF-8). */
			if (*p < 0x20 || *p == 0x7f)
				fprintf(out, "\\u%04x", *p);
			else
				fputc(*p, out);
		}
	}
	fputc('"', out);
}

static void json_newline(void)
{
	if (P.compact)
		return;
	fputc('\n', P.out);
	for (int i = 0; i < P.depth; i++)
		fputs("  ", P.out);
}

/* Separator, indentation and "key": before a value. */
static void json_key(const char *key)
{
	if (!P.first[P.depth])
		fputc(',', P.out);
	if (P.depth > 0)
		json_newline();
	P.first[P.depth] = false;
	if (key) {
		print_json_escaped(P.out, key);
		fputs(P.compact ? ":" : ": ", P.out);
	}
}

static void json_open(const char *key, char c)
{
	json_key(key);
	fputc(c, P.out);
	if (P.depth < PRINT_DEPTH_MAX)
		P.depth++;
	else
		P.failed = true;
	P.first[P.depth] = true;
}

static void json_close(char c)
{
	bool empty = P.first[P.depth];

	if (P.depth > 0)
		P.depth--;
	if (!empty)
		json_newline();
	fputc(c, P.out);
}

void print_open_object(const char *key)
{
	if (P.mode == PRINT_JSON)
		json_open(key, '{');
}

void print_close_object(void)
{
	if (P.mode == PRINT_JSON)
		json_close('}');
}

void print_open_array(const char *key)
{
	if (P.mode == PRINT_JSON)
		json_open(key, '[');
}

void print_close_array(void)
{
	if (P.mode == PRINT_JSON)
		json_close(']');
}

void print_string(const char *key, const char *value)
{
	if (P.mode != PRINT_JSON)
		return;
	json_key(key);
	if (value)
		print_json_escaped(P.out, value);
	else
		fputs("null", P.out);
}

void print_uint(const char *key, uint64_t value)
{
	if (P.mode != PRINT_JSON)
		return;
	json_key(key);
	fprintf(P.out, "%llu", (unsigned long long)value);
}

void print_double(const char *key, double value)
{
	if (P.mode != PRINT_JSON)
		return;
	json_key(key);
	fprintf(P.out, "%.3f", value);
}

/* Every field present in row, as a JSON member. */
static void json_fields(const struct stats_set *set,
			const struct stats_row *row)
{
	for (size_t i = 0; i < set->nfields; i++) {
		const struct stats_field *f = &set->fields[i];

		if (!row->has[f->attr])
			continue;
		if (f->type == STATS_STR)
			print_string(f->name, row->s[f->attr]);
		else
			print_uint(f->name, row->u[f->attr]);
	}
}

/* --- Prometheus ---------------------------------------------------------- */

void print_prom_label_escaped(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '"')
			fputs("\\\"", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

static void prom_help_escaped(const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", P.out);
		else if (*s == '\n')
			fputs("\\n", P.out);
		else
			fputc(*s, P.out);
	}
}

/* A legal metric or label name: [a-zA-Z_:][a-zA-Z0-9_:]*, so anything else
 * becomes '_' (the table's names already are legal: this is a guard). */
static void prom_name(const char *a, const char *b, const char *c)
{
	const char *parts[] = {a, b, c};
	bool lead = true;

	for (int i = 0; i < 3; i++) {
		for (const char *s = parts[i]; s && *s; s++) {
			bool ok = isalpha((unsigned char)*s) || *s == '_' ||
				  *s == ':' ||
				  (!lead && isdigit((unsigned char)*s));

			fputc(ok ? *s : '_', P.out);
			lead = false;
		}
	}
}

/* Base unit, then _total for a counter (node_exporter's conventions). */
static const char *prom_suffix(const struct stats_field *f)
{
	static const char *const s[4][2] = {
		{"", "_total"},
		{"_seconds", "_seconds_total"},
		{"_bytes", "_bytes_total"},
		{"_seconds", "_seconds_total"}, /* STATS_UNIT_NSEC */
	};

	return s[f->unit <= STATS_UNIT_NSEC ? f->unit : 0]
		[f->kind == STATS_COUNTER];
}

/* A sample's value in its base unit. */
static void prom_value(const struct stats_field *f, uint64_t v)
{
	if (f->unit == STATS_UNIT_USEC)
		fprintf(P.out, " %llu.%06llu\n", (unsigned long long)(v / 1000000),
			(unsigned long long)(v % 1000000));
	else if (f->unit == STATS_UNIT_NSEC)
		fprintf(P.out, " %llu.%09llu\n",
			(unsigned long long)(v / 1000000000),
			(unsigned long long)(v % 1000000000));
	else
		fprintf(P.out, " %llu\n", (unsigned long long)v);
}

/*
 * The field's part of the metric name.  A gauge must not end in _total
 * (that suffix promises a counter to Prometheus and its linters): "pages_total"
 * is exposed as rcupool_status_pages.
 */
static const char *prom_field(const struct stats_field *f, char *buf,
			      size_t len)
{
	const char *name = stats_base_name(f, buf, len);
	size_t n = strlen(name);

	if (f->kind != STATS_COUNTER && n > 6 &&
	    !strcmp(name + n - 6, "_total")) {
		snprintf(buf, len, "%.*s", (int)(n - 6), name);
		return buf;
	}
	return name;
}

static void prom_family(const struct stats_set *set, const char *name,
			const char *suffix, const char *type, const char *help)
{
	fputs("# HELP ", P.out);
	prom_name("rcupool_", set->name, "_");
	prom_name(NULL, name, suffix);
	fputc(' ', P.out);
	prom_help_escaped(help);
	fputs("\n# TYPE ", P.out);
	prom_name("rcupool_", set->name, "_");
	prom_name(NULL, name, suffix);
	fprintf(P.out, " %s\n", type);
}

/* {name="value",...} of the fields of kind (LABEL; or LABEL and INFO). */
static void prom_labels(const struct stats_set *set,
			const struct stats_row *row, bool info)
{
	bool any = false;

	for (size_t i = 0; i < set->nfields; i++) {
		const struct stats_field *f = &set->fields[i];
		char num[32];

		if (!row->has[f->attr] || !(f->kind == STATS_LABEL ||
					    (info && f->kind == STATS_INFO)))
			continue;
		fputc(any ? ',' : '{', P.out);
		any = true;
		prom_name(NULL, f->name, NULL);
		fputc('=', P.out);
		if (f->type == STATS_STR) {
			print_prom_label_escaped(
				P.out, row->s[f->attr] ? row->s[f->attr] : "");
		} else {
			snprintf(num, sizeof(num), "%llu",
				 (unsigned long long)row->u[f->attr]);
			print_prom_label_escaped(P.out, num);
		}
	}
	if (any)
		fputc('}', P.out);
}

static bool is_measure(const struct stats_field *f)
{
	return (f->kind == STATS_GAUGE || f->kind == STATS_COUNTER) &&
	       f->type != STATS_STR;
}

/* The families of set over rows: one per measured field, then
 * rcupool_<set>_info carrying the facts (version, uid) as labels. */
static void prom_rows(const struct stats_set *set, const struct stats_row *rows,
		      size_t n)
{
	bool has_info = false;
	char help[256], fname[64];
	size_t len = 0;

	if (!n)
		return;
	for (size_t i = 0; i < set->nfields; i++) {
		const struct stats_field *f = &set->fields[i];
		bool present = false;

		if (f->kind == STATS_INFO && rows[0].has[f->attr]) {
			has_info = true;
			len += snprintf(help + len,
					len < sizeof(help) ? sizeof(help) - len
							   : 0,
					"%s%s", len ? ", " : "", f->name);
		}
		if (!is_measure(f))
			continue;
		for (size_t r = 0; r < n; r++)
			present |= rows[r].has[f->attr];
		if (!present)
			continue;
		prom_family(set, prom_field(f, fname, sizeof(fname)),
			    prom_suffix(f),
			    f->kind == STATS_COUNTER ? "counter" : "gauge",
			    f->help);
		for (size_t r = 0; r < n; r++) {
			if (!rows[r].has[f->attr])
				continue;
			prom_name("rcupool_", set->name, "_");
			prom_name(NULL, prom_field(f, fname, sizeof(fname)),
				  prom_suffix(f));
			prom_labels(set, &rows[r], false);
			prom_value(f, rows[r].u[f->attr]);
		}
	}
	if (has_info) {
		char text[320];

		snprintf(text, sizeof(text), "Constant 1, labelled with: %s",
			 help);
		prom_family(set, "info", "", "gauge", text);
		for (size_t r = 0; r < n; r++) {
			prom_name("rcupool_", set->name, "_info");
			prom_labels(set, &rows[r], true);
			fputs(" 1\n", P.out);
		}
	}
}

/* --- human --------------------------------------------------------------- */

const char *print_bar(uint64_t part, uint64_t whole, int width, char *buf,
		      size_t len)
{
	int fill = whole ? (int)((part * width + whole / 2) / whole) : 0;
	size_t i = 0;

	if (fill > width)
		fill = width;
	if (len < (size_t)width + 3) {
		buf[0] = '\0';
		return buf;
	}
	buf[i++] = '[';
	for (int k = 0; k < width; k++)
		buf[i++] = k < fill ? '#' : '.';
	buf[i++] = ']';
	buf[i] = '\0';
	return buf;
}

void print_human(const char *fmt, ...)
{
	va_list ap;

	if (P.mode != PRINT_HUMAN)
		return;
	va_start(ap, fmt);
	vfprintf(P.out, fmt, ap);
	va_end(ap);
}

/* A point in time (usec since the epoch) as local date and time. */
static const char *print_started(uint64_t usec, char *buf, size_t len)
{
	time_t t = (time_t)(usec / 1000000);
	struct tm tm;

	if (!usec || !localtime_r(&t, &tm) ||
	    !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, len, "-");
	return buf;
}

static const char *cell(const struct stats_field *f,
			const struct stats_row *row, char *buf, size_t len)
{

	if (!row->has[f->attr])
		return "-";
	if (f->type == STATS_STR)
		return row->s[f->attr] && *row->s[f->attr] ? row->s[f->attr]
							   : "-";
	if (f->attr == PROTO_STATUS_STARTED_USEC &&
	    !strcmp(f->name, "started_usec"))
		return print_started(row->u[f->attr], buf, len);
	if (f->unit == STATS_UNIT_USEC)
		return units_human_duration(row->u[f->attr], buf, len);
	if (f->unit == STATS_UNIT_NSEC)
		return units_human_duration(row->u[f->attr] / 1000, buf, len);
	if (f->unit == STATS_UNIT_BYTES)
		return units_human_size(row->u[f->attr], buf, len);
	snprintf(buf, len, "%llu", (unsigned long long)row->u[f->attr]);
	return buf;
}

/*
 * A column heading: the JSON key without a unit suffix, upper case; a
 * counter of nanoseconds is a total time ("throttled_ns": THROTTLED_TIME,
 * beside the THROTTLED count).
 */
static const char *heading(const struct stats_field *f, char *buf, size_t len)
{
	char base[64];
	const char *name = stats_base_name(f, base, sizeof(base));
	size_t n = strlen(name), i;

	for (i = 0; i < n && i + 1 < len; i++)
		buf[i] = toupper((unsigned char)name[i]);
	buf[i] = '\0';
	if (f->unit == STATS_UNIT_NSEC && f->kind == STATS_COUNTER &&
	    i + 5 < len)
		memcpy(buf + i, "_TIME", 6);
	return buf;
}

static void human_section(const char *title)
{
	if (P.human_sections++)
		fputc('\n', P.out);
	if (title)
		fprintf(P.out, "%s\n", title);
}

static void human_fields(const struct stats_set *set,
			 const struct stats_row *row)
{
	int nw = 0, vw = 0;
	char buf[CELL_MAX];

	char base[64];

	for (size_t i = 0; i < set->nfields; i++) {
		const struct stats_field *f = &set->fields[i];
		int n = strlen(stats_base_name(f, base, sizeof(base))),
		    v = strlen(cell(f, row, buf, sizeof(buf)));

		nw = n > nw ? n : nw;
		vw = v > vw ? v : vw;
	}
	for (size_t i = 0; i < set->nfields; i++) {
		const struct stats_field *f = &set->fields[i];

		if (!row->has[f->attr])
			continue;
		fprintf(P.out, "  %-*s  %*s  %s\n", nw,
			stats_base_name(f, base, sizeof(base)), vw,
			cell(f, row, buf, sizeof(buf)), f->help);
	}
}

static void human_summary(const struct stats_row *r)
{
	char up[32], bar[64], ver[64];
	uint64_t total = r->u[PROTO_STATUS_PAGES_TOTAL];
	uint64_t free_pages = r->u[PROTO_STATUS_PAGES_FREE];

	snprintf(ver, sizeof(ver), "%s",
		 r->has[PROTO_STATUS_VERSION] ? r->s[PROTO_STATUS_VERSION]
					      : "?");
	fprintf(P.out,
		"rcupoold %s (pid %llu), up %s, %llu of %llu CPUs online\n",
		ver, (unsigned long long)r->u[PROTO_STATUS_PID],
		units_human_duration(r->u[PROTO_STATUS_UPTIME_USEC], up, sizeof(up)),
		(unsigned long long)r->u[PROTO_STATUS_CPUS_ONLINE],
		(unsigned long long)r->u[PROTO_STATUS_CPUS]);
	fprintf(P.out,
		"  pages      %s %llu of %llu free (%llu%%), %llu held, %llu "
		"global; %llu-byte pages%s%s\n",
		print_bar(free_pages, total, 24, bar, sizeof(bar)),
		(unsigned long long)free_pages, (unsigned long long)total,
		(unsigned long long)(total ? free_pages * 100 / total : 0),
		(unsigned long long)r->u[PROTO_STATUS_PAGES_HELD],
		(unsigned long long)r->u[PROTO_STATUS_PAGES_GLOBAL],
		(unsigned long long)r->u[PROTO_STATUS_PAGE_SIZE],
		r->u[PROTO_STATUS_LOCKED] ? ", locked" : "",
		r->u[PROTO_STATUS_HUGETLB] ? ", huge pages" : "");
	fprintf(P.out,
		"  events     %llu depletions, %llu denied, %llu fallbacks, "
		"%llu reclaimed, %llu recalled, %llu repaired\n",
		(unsigned long long)r->u[PROTO_STATUS_DEPLETIONS],
		(unsigned long long)r->u[PROTO_STATUS_DENIED],
		(unsigned long long)r->u[PROTO_STATUS_FALLBACKS],
		(unsigned long long)r->u[PROTO_STATUS_PAGES_RECLAIMED],
		(unsigned long long)r->u[PROTO_STATUS_PAGES_RECALLED],
		(unsigned long long)r->u[PROTO_STATUS_PAGES_REPAIRED]);
	fprintf(P.out, "  clients    %llu attached of %llu slots\n",
		(unsigned long long)r->u[PROTO_STATUS_CLIENTS],
		(unsigned long long)r->u[PROTO_STATUS_MAX_CLIENTS]);
	if (r->has[PROTO_STATUS_STARTED_USEC])
		fprintf(P.out,
			"  instance   started %s, %llu clients adopted at start, "
			"%llu re-attached since\n",
			print_started(r->u[PROTO_STATUS_STARTED_USEC], up,
				      sizeof(up)),
			(unsigned long long)r->u[PROTO_STATUS_CLIENTS_ADOPTED],
			(unsigned long long)
				r->u[PROTO_STATUS_CLIENTS_REATTACHED]);
}

static void human_table(void)
{
	int width[STATS_ATTR_MAX + 1] = {0};
	const struct stats_field *f[STATS_ATTR_MAX + 1];
	char buf[CELL_MAX];

	human_section(P.title);
	if (!P.nrows) {
		fputs("  (none)\n", P.out);
		return;
	}
	for (int c = 0; c < P.ncols; c++) {
		f[c] = stats_field(P.set, P.cols[c]);
		width[c] = strlen(heading(f[c], buf, sizeof(buf)));
		for (size_t r = 0; r < P.nrows; r++) {
			int w = strlen(
				cell(f[c], &P.rows[r], buf, sizeof(buf)));

			width[c] = w > width[c] ? w : width[c];
		}
	}
	/* Text left, numbers right; no trailing blanks on the last column. */
	for (long r = -1; r < (long)P.nrows; r++) {
		fputs(" ", P.out);
		for (int c = 0; c < P.ncols; c++) {
			const char *s = r < 0 ? heading(f[c], buf, sizeof(buf))
					      : cell(f[c], &P.rows[r], buf,
						     sizeof(buf));
			bool left = f[c]->type == STATS_STR;

			if (left && c == P.ncols - 1)
				fprintf(P.out, " %s", s);
			else
				fprintf(P.out, left ? " %-*s" : " %*s",
					width[c], s);
		}
		fputc('\n', P.out);
	}
}

/* --- records and tables -------------------------------------------------- */

void print_record(const struct stats_set *set, const char *key,
		  const struct stats_row *row, enum print_style style)
{
	switch (P.mode) {
	case PRINT_JSON:
		if (key)
			print_open_object(key);
		json_fields(set, row);
		if (key)
			print_close_object();
		break;
	case PRINT_PROMETHEUS:
		prom_rows(set, row, 1);
		break;
	case PRINT_HUMAN:
		if (style == PRINT_SUMMARY && set == &stats_status) {
			human_section(NULL);
			human_summary(row);
		} else {
			human_section(key);
			human_fields(set, row);
		}
		break;
	}
}

void print_table_open(const struct stats_set *set, const char *key,
		      const char *title, const uint16_t *attrs)
{
	P.set = set;
	P.title = title;
	P.nrows = 0;
	P.ncols = 0;
	if (attrs) {
		for (; *attrs && P.ncols < STATS_ATTR_MAX; attrs++)
			if (stats_field(set, *attrs))
				P.cols[P.ncols++] = *attrs;
	} else {
		for (size_t i = 0; i < set->nfields && P.ncols < STATS_ATTR_MAX;
		     i++)
			P.cols[P.ncols++] = set->fields[i].attr;
	}
	if (P.mode == PRINT_JSON)
		print_open_array(key);
}

void print_row(const struct stats_row *row)
{
	if (P.mode == PRINT_JSON) {
		print_open_object(NULL);
		json_fields(P.set, row);
		print_close_object();
		return;
	}
	if (P.nrows == P.cap) {
		size_t cap = P.cap ? 2 * P.cap : 16;
		struct stats_row *rows = realloc(P.rows, cap * sizeof(*rows));

		if (!rows) {
			P.failed = true;
			return;
		}
		P.rows = rows;
		P.cap = cap;
	}
	P.rows[P.nrows++] = *row;
}

void print_table_close(void)
{
	switch (P.mode) {
	case PRINT_JSON:
		print_close_array();
		break;
	case PRINT_PROMETHEUS:
		prom_rows(P.set, P.rows, P.nrows);
		break;
	case PRINT_HUMAN:
		human_table();
		break;
	}
	P.nrows = 0;
	P.set = NULL;
}
