// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * rcupoold configuration: typed keys, defaults, file and drop-in loading,
 * command-line and live overrides, consistency checks, printing.
 *
 * inih notes (Debian 12 ships inih 55 built with INI_HANDLER_LINENO=1: the
 * handler gets the line number; tests check the numbers in messages):
 *
 *  - Lines come to inih through our own reader (ini_parse_stream), which
 *    sees every line before inih does.  It rejects continuation lines
 *    (an indented line after a key: inih's multi-line values) and lines too
 *    long for inih's buffer (inih would split them silently), and it
 *    validates section headers, including empty sections.  This works
 *    whatever the library's multi-line setting, so we touch none of its
 *    global knobs.
 *  - inih processes each line right after reading it, so the section the
 *    reader saw last is the one of the key being handled.  We use that full
 *    header: inih's own copy is cut at 50 characters.
 *  - inih keeps parsing after an error; we stop at the first one (the
 *    reader ends the stream) and report whichever error came first.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define INI_HANDLER_LINENO 1
#include <ini.h>

#include "conf.h"
#include "units.h"

#define US_PER_MS  UNITS_US_PER_MS
#define US_PER_S   UNITS_US_PER_S
#define US_PER_MIN UNITS_US_PER_MIN
#define US_PER_H   UNITS_US_PER_H

enum type {
	T_COUNT,
	T_COUNT_PCT,
	T_SIZE,
	T_TIME,
	T_ENUM,
	T_GROUP,
	T_PATH,
	T_MODE
};

struct key_desc {
	const char *section;
	const char *name;
	enum type type;
	size_t off;
	uint64_t min, max; /* counts, bytes, microseconds, mode */
	const char *def;
	const char *const *names; /* T_ENUM, indexed by value */
};

static const char *const lock_names[] = {"no", "yes", "required", NULL};
static const char *const huge_names[] = {"no", "auto", "yes", NULL};

#define OFF(field) offsetof(struct conf, field)

/* Indexed by enum conf_key; the defaults are parsed like any value. */
static const struct key_desc keys[CONF_KEY_COUNT] = {
	[CONF_RESERVE_PAGES_PER_CPU] = {"reserve", "pages_per_cpu", T_COUNT,
					OFF(reserve.pages_per_cpu), 16, 1048576,
					"1024"},
	[CONF_RESERVE_GLOBAL_PAGES] = {"reserve", "global_pages", T_COUNT,
				       OFF(reserve.global_pages), 0, 16777216,
				       "1024"},
	[CONF_RESERVE_PAGE_SIZE] = {"reserve", "page_size", T_SIZE,
				    OFF(reserve.page_size), 4096, 4096, "4K"},
	[CONF_RESERVE_LOCK_MEMORY] = {"reserve", "lock_memory", T_ENUM,
				      OFF(reserve.lock_memory), 0, 0, "yes",
				      lock_names},
	[CONF_RESERVE_HUGEPAGES] = {"reserve", "hugepages", T_ENUM,
				    OFF(reserve.hugepages), 0, 0, "no",
				    huge_names},
	[CONF_RESERVE_CHUNK_PAGES] = {"reserve", "chunk_pages", T_COUNT,
				      OFF(reserve.chunk_pages), 0, 65536, "0"},
	[CONF_BALANCE_LOW] = {"balance", "low", T_COUNT_PCT, OFF(balance.low),
			      0, 1048576, "25%"},
	[CONF_BALANCE_TARGET] = {"balance", "target", T_COUNT_PCT,
				 OFF(balance.target), 0, 1048576, "50%"},
	[CONF_BALANCE_HIGH] = {"balance", "high", T_COUNT_PCT,
			       OFF(balance.high), 0, 1048576, "100%"},
	[CONF_BALANCE_INTERVAL] = {"balance", "interval", T_TIME,
				   OFF(balance.interval_us), US_PER_MS,
				   US_PER_MIN, "100ms"},
	[CONF_BALANCE_CENSUS_INTERVAL] = {"balance", "census_interval", T_TIME,
					  OFF(balance.census_interval_us), 0,
					  US_PER_H, "1s"},
	[CONF_LIMITS_CLIENT_MIN_PAGES] = {"limits", "client_min_pages", T_COUNT,
					  OFF(limits.client_min_pages), 0,
					  UINT32_MAX, "16"},
	[CONF_LIMITS_CLIENT_MAX_PAGES] = {"limits", "client_max_pages",
					  T_COUNT_PCT,
					  OFF(limits.client_max_pages), 0,
					  UINT32_MAX, "50%"},
	[CONF_LIMITS_PROTECT_PAGES] = {"limits", "protect_pages", T_COUNT,
				       OFF(limits.protect_pages), 0, 1048576,
				       "32"},
	[CONF_LIMITS_MAX_CLIENTS] = {"limits", "max_clients", T_COUNT,
				     OFF(limits.max_clients), 1, 4096, "256"},
	[CONF_LIMITS_OVERFLOW_PAGES] = {"limits", "overflow_pages", T_COUNT,
					OFF(limits.overflow_pages), 0, 16777216,
					"256"},
	[CONF_LIMITS_DRAIN_INTERVAL] = {"limits", "drain_interval", T_TIME,
					OFF(limits.drain_interval_us),
					US_PER_MS, US_PER_H, "1s"},
	[CONF_LIMITS_RETURN_RATE] = {"limits", "return_rate", T_COUNT,
				     OFF(limits.return_rate), 1, 1048576,
				     "1000"},
	[CONF_LIMITS_RECLAIM_MIN_GAP] = {"limits", "reclaim_min_gap", T_TIME,
					 OFF(limits.reclaim_min_gap_us), 0,
					 US_PER_S, "1ms"},
	[CONF_ACCESS_ATTACH_GROUP] = {"access", "attach_group", T_GROUP,
				      OFF(access.attach_group), 0,
				      CONF_GROUP_MAX, "rcupool"},
	[CONF_ACCESS_ADMIN_GROUP] = {"access", "admin_group", T_GROUP,
				     OFF(access.admin_group), 0, CONF_GROUP_MAX,
				     "rcupool-admin"},
	[CONF_ACCESS_SOCKET_MODE] = {"access", "socket_mode", T_MODE,
				     OFF(access.socket_mode), 0, 0777, "0666"},
	[CONF_ACCESS_IDLE_TIMEOUT] = {"access", "idle_timeout", T_TIME,
				      OFF(access.idle_timeout_us), US_PER_MS,
				      US_PER_H, "5s"},
	[CONF_ACCESS_MAX_CONNECTIONS_PER_UID] = {"access",
						 "max_connections_per_uid",
						 T_COUNT,
						 OFF(access.max_connections_per_uid),
						 1, 65536, "16"},
	[CONF_DAEMON_SOCKET] = {"daemon", "socket", T_PATH, OFF(daemon.socket),
				0, CONF_SOCKET_MAX, ""},
};

static const char *const sections[] = {"reserve", "balance", "limits", "access",
				       "daemon"};

/* Per-client keys: counts or percents of the whole reserve. */
static const struct key_desc client_key = {"client", "pages",	 T_COUNT_PCT, 0,
					   0,	     UINT32_MAX, NULL};

_Static_assert(sizeof(enum conf_lock) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_huge) == sizeof(int), "enum size");

union value {
	uint32_t u32;
	uint64_t u64;
	int e;
	struct conf_count cnt;
	char str[CONF_GROUP_MAX + 1];
};

__attribute__((format(printf, 2, 3))) static void errf(struct conf_error *err,
						       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

/* --- value parsing ---------------------------------------------------------
 */

/* Leading decimal digits of s; -EINVAL without any, -ERANGE on overflow. */
static int parse_digits(const char *s, uint64_t *v, const char **end)
{
	uint64_t n = 0;
	bool over = false;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned int d = (unsigned int)(*s - '0');

		if (n > (UINT64_MAX - d) / 10)
			over = true;
		else
			n = n * 10 + d;
	}
	*v = n;
	*end = s;
	return over ? -ERANGE : 0;
}

static void fmt_bound(const struct key_desc *k, uint64_t v, char *buf,
		      size_t size)
{
	switch (k->type) {
	case T_TIME:
		units_format_duration(v, buf, size);
		break;
	case T_SIZE:
		units_format_size(v, buf, size);
		break;
	case T_MODE:
		snprintf(buf, size, "%04" PRIo64, v);
		break;
	default:
		snprintf(buf, size, "%" PRIu64, v);
	}
}

static int out_of_range(const struct key_desc *k, const char *s, char *why,
			size_t wsize)
{
	char lo[32], hi[32];

	fmt_bound(k, k->min, lo, sizeof(lo));
	fmt_bound(k, k->max, hi, sizeof(hi));
	snprintf(why, wsize, "\"%s\" is out of range (%s..%s)", s, lo, hi);
	return -EINVAL;
}

static int parse_count(const struct key_desc *k, const char *s, union value *v,
		       char *why, size_t wsize)
{
	bool pct = k->type == T_COUNT_PCT;
	const char *end;
	uint64_t n;
	int r;

	r = parse_digits(s, &n, &end);
	if (r == -EINVAL || (*end && !(pct && strcmp(end, "%") == 0))) {
		snprintf(why, wsize, "\"%s\" is not a valid count%s", s,
			 pct ? " or percent" : "");
		return -EINVAL;
	}
	if (*end == '%') {
		if (r || n > 100) {
			snprintf(why, wsize,
				 "\"%s\" is out of range (0%%..100%%)", s);
			return -EINVAL;
		}
		v->cnt = (struct conf_count){(uint32_t)n, true};
		return 0;
	}
	if (r || n < k->min || n > k->max)
		return out_of_range(k, s, why, wsize);
	if (pct)
		v->cnt = (struct conf_count){(uint32_t)n, false};
	else
		v->u32 = (uint32_t)n;
	return 0;
}

/* units_parse_size: "4096", "4K", "4 KiB", ... */
static int parse_size(const struct key_desc *k, const char *s, union value *v,
		      char *why, size_t wsize)
{
	uint64_t n;
	int r = units_parse_size(s, &n);

	if (r == -EINVAL) {
		snprintf(why, wsize,
			 "\"%s\" is not a valid size (a number and "
			 UNITS_SIZE_WORDS ")",
			 s);
		return r;
	}
	if (r || n != 4096) {
		snprintf(why, wsize,
			 "\"%s\" is not supported: only 4K pages are supported",
			 s);
		return -EINVAL;
	}
	v->u32 = (uint32_t)n;
	return 0;
}

/* units_parse_duration: "100ms", "5 s", "2min", "1h", "1d"; a plain number
 * is seconds. */
static int parse_time(const struct key_desc *k, const char *s, union value *v,
		      char *why, size_t wsize)
{
	uint64_t n;
	int r = units_parse_duration(s, &n);

	if (r == -EINVAL) {
		snprintf(why, wsize,
			 "\"%s\" is not a valid time (a number and "
			 UNITS_DURATION_WORDS ")",
			 s);
		return r;
	}
	if (r || n < k->min || n > k->max)
		return out_of_range(k, s, why, wsize);
	v->u64 = n;
	return 0;
}

static int parse_enum(const struct key_desc *k, const char *s, union value *v,
		      char *why, size_t wsize)
{
	int i;

	for (i = 0; k->names[i]; i++) {
		if (strcasecmp(s, k->names[i]) == 0) {
			v->e = i;
			return 0;
		}
	}
	snprintf(why, wsize, "\"%s\" is not one of %s, %s%s%s", s, k->names[0],
		 k->names[1], k->names[2] ? ", " : "",
		 k->names[2] ? k->names[2] : "");
	return -EINVAL;
}

static int parse_string(const struct key_desc *k, const char *s, union value *v,
			char *why, size_t wsize)
{
	size_t len = strlen(s);
	const char *p;

	if (len > k->max) {
		snprintf(why, wsize,
			 "\"%.40s...\" is too long (max %" PRIu64 " bytes)", s,
			 k->max);
		return -EINVAL;
	}
	if (k->type == T_PATH && len && s[0] != '/') {
		snprintf(why, wsize, "\"%s\" is not an absolute path", s);
		return -EINVAL;
	}
	for (p = s; k->type == T_GROUP && *p; p++) {
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p) ||
		    strchr(":,/", *p)) {
			snprintf(why, wsize, "\"%s\" is not a valid group name",
				 s);
			return -EINVAL;
		}
	}
	memcpy(v->str, s, len + 1);
	return 0;
}

static int parse_mode(const struct key_desc *k, const char *s, union value *v,
		      char *why, size_t wsize)
{
	uint64_t n = 0;
	const char *p;

	if (!*s || strspn(s, "01234567") != strlen(s)) {
		snprintf(why, wsize, "\"%s\" is not a valid octal mode", s);
		return -EINVAL;
	}
	for (p = s; *p; p++) {
		n = n * 8 + (uint64_t)(*p - '0');
		if (n > k->max)
			return out_of_range(k, s, why, wsize);
	}
	v->u32 = (uint32_t)n;
	return 0;
}

static int parse_value(const struct key_desc *k, const char *s, union value *v,
		       char *why, size_t wsize)
{
	switch (k->type) {
	case T_COUNT:
	case T_COUNT_PCT:
		return parse_count(k, s, v, why, wsize);
	case T_SIZE:
		return parse_size(k, s, v, why, wsize);
	case T_TIME:
		return parse_time(k, s, v, why, wsize);
	case T_ENUM:
		return parse_enum(k, s, v, why, wsize);
	case T_GROUP:
	case T_PATH:
		return parse_string(k, s, v, why, wsize);
	case T_MODE:
		return parse_mode(k, s, v, why, wsize);
	}
	return -EINVAL;
}

static void store_value(struct conf *c, const struct key_desc *k,
			const union value *v)
{
	char *p = (char *)c + k->off;

	switch (k->type) {
	case T_COUNT:
	case T_SIZE:
	case T_MODE:
		memcpy(p, &v->u32, sizeof(v->u32));
		break;
	case T_COUNT_PCT:
		memcpy(p, &v->cnt, sizeof(v->cnt));
		break;
	case T_TIME:
		memcpy(p, &v->u64, sizeof(v->u64));
		break;
	case T_ENUM:
		memcpy(p, &v->e, sizeof(v->e));
		break;
	case T_GROUP:
	case T_PATH:
		memcpy(p, v->str, strlen(v->str) + 1);
		break;
	}
}

static void fmt_count(struct conf_count v, char *buf, size_t size)
{
	snprintf(buf, size, "%" PRIu32 "%s", v.value, v.percent ? "%" : "");
}

static void fmt_value(const struct conf *c, const struct key_desc *k, char *buf,
		      size_t size)
{
	const char *p = (const char *)c + k->off;
	struct conf_count cnt;
	uint32_t u32;
	uint64_t u64;
	int e;

	switch (k->type) {
	case T_COUNT:
		memcpy(&u32, p, sizeof(u32));
		snprintf(buf, size, "%" PRIu32, u32);
		break;
	case T_SIZE:
		memcpy(&u32, p, sizeof(u32));
		units_format_size(u32, buf, size);
		break;
	case T_MODE:
		memcpy(&u32, p, sizeof(u32));
		snprintf(buf, size, "%04" PRIo32, u32);
		break;
	case T_COUNT_PCT:
		memcpy(&cnt, p, sizeof(cnt));
		fmt_count(cnt, buf, size);
		break;
	case T_TIME:
		memcpy(&u64, p, sizeof(u64));
		units_format_duration(u64, buf, size);
		break;
	case T_ENUM:
		memcpy(&e, p, sizeof(e));
		snprintf(buf, size, "%s", k->names[e]);
		break;
	case T_GROUP:
	case T_PATH:
		snprintf(buf, size, "%s", p);
		break;
	}
}

/* --- init, free, copy, sources ---------------------------------------------
 */

void conf_init(struct conf *c)
{
	char why[256];
	union value v;
	int i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < CONF_KEY_COUNT; i++) {
		/* Built-in defaults always parse (test_conf checks). */
		if (parse_value(&keys[i], keys[i].def, &v, why, sizeof(why)) ==
		    0)
			store_value(c, &keys[i], &v);
	}
}

void conf_free(struct conf *c)
{
	size_t i;

	for (i = 0; i < c->n_files; i++)
		free(c->files[i]);
	free(c->files);
	free(c->clients);
	conf_init(c);
}

int conf_copy(struct conf *dst, const struct conf *src)
{
	size_t i;

	*dst = *src;
	dst->clients = NULL;
	dst->files = NULL;
	dst->n_files = 0;
	if (src->n_clients) {
		dst->clients = malloc(src->n_clients * sizeof(*src->clients));
		if (!dst->clients)
			goto fail;
		memcpy(dst->clients, src->clients,
		       src->n_clients * sizeof(*src->clients));
	}
	if (src->n_files) {
		dst->files = calloc(src->n_files, sizeof(*dst->files));
		if (!dst->files)
			goto fail;
		dst->n_files = src->n_files;
		for (i = 1; i < src->n_files; i++) {
			dst->files[i] = strdup(src->files[i]);
			if (!dst->files[i])
				goto fail;
		}
	}
	return 0;
fail:
	conf_free(dst);
	return -ENOMEM;
}

/* Index of name in c->files, adding it if new. */
static int intern(struct conf *c, const char *name, uint32_t *idx)
{
	char **files;
	size_t i, n = c->n_files ? c->n_files : 1;

	for (i = 1; i < c->n_files; i++) {
		if (strcmp(c->files[i], name) == 0) {
			*idx = (uint32_t)i;
			return 0;
		}
	}
	files = realloc(c->files, (n + 1) * sizeof(*files));
	if (!files)
		return -ENOMEM;
	c->files = files;
	files[0] = NULL;
	files[n] = strdup(name);
	if (!files[n]) {
		c->n_files = n;
		return -ENOMEM;
	}
	c->n_files = n + 1;
	*idx = (uint32_t)n;
	return 0;
}

void conf_src_format(const struct conf *c, struct conf_src s, char *buf,
		     size_t size)
{
	if (s.file == 0 || s.file >= c->n_files)
		snprintf(buf, size, "default");
	else if (s.line == 0)
		snprintf(buf, size, "%s", c->files[s.file]);
	else
		snprintf(buf, size, "%s:%" PRIu32, c->files[s.file], s.line);
}

/* --- sections and keys -----------------------------------------------------
 */

enum sec_kind { SEC_FIXED, SEC_CLIENT, SEC_UNKNOWN, SEC_BAD_CLIENT };

static bool valid_client_name(const char *s, size_t len)
{
	size_t i;

	if (len < 1 || len > CONF_CLIENT_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return false;
	return true;
}

/* "reserve", ..., or "client NAME" (blanks around NAME allowed). */
static enum sec_kind parse_section(const char *sec, const char **name,
				   size_t *name_len)
{
	const char *p, *e;
	size_t i;

	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strcmp(sec, sections[i]) == 0)
			return SEC_FIXED;
	if (strncmp(sec, "client", 6) != 0 ||
	    (sec[6] && !isblank((unsigned char)sec[6])))
		return SEC_UNKNOWN;
	for (p = sec + 6; isblank((unsigned char)*p); p++)
		;
	for (e = p + strlen(p); e > p && isblank((unsigned char)e[-1]); e--)
		;
	*name = p;
	*name_len = (size_t)(e - p);
	return valid_client_name(p, *name_len) ? SEC_CLIENT : SEC_BAD_CLIENT;
}

static int section_error(const char *where, const char *sec,
			 struct conf_error *err)
{
	const char *name;
	size_t len;

	switch (parse_section(sec, &name, &len)) {
	case SEC_UNKNOWN:
		errf(err, "%s: [%s]: unknown section", where, sec);
		return -EINVAL;
	case SEC_BAD_CLIENT:
		if (len == 0)
			errf(err,
			     "%s: [%s]: a client section needs a name: "
			     "[client NAME]",
			     where, sec);
		else
			errf(err,
			     "%s: [%s]: \"%.*s\" is not a valid client name "
			     "(1..%d characters of A-Z a-z 0-9 . _ -)",
			     where, sec, (int)len, name, CONF_CLIENT_NAME_MAX);
		return -EINVAL;
	default:
		return 0;
	}
}

static struct conf_client *client_find(const struct conf *c, const char *name,
				       size_t len)
{
	size_t i;

	for (i = 0; i < c->n_clients; i++)
		if (strlen(c->clients[i].name) == len &&
		    memcmp(c->clients[i].name, name, len) == 0)
			return &c->clients[i];
	return NULL;
}

const struct conf_client *conf_client_find(const struct conf *c,
					   const char *name)
{
	return client_find(c, name, strlen(name));
}

/* A key set twice in the same file: warn, naming both lines. */
static void warn_duplicate(const struct conf *c, struct conf_src prev,
			   struct conf_src now, const char *where,
			   const char *sec, const char *key)
{
	char msg[sizeof(((struct conf_error *)0)->msg)];

	if (!c->warn || !now.line || !prev.line || prev.file != now.file)
		return;
	snprintf(msg, sizeof(msg),
		 "%s: [%s] %s: set again (first at line %" PRIu32
		 "); the value of line %" PRIu32 " is used",
		 where, sec, key, prev.line, now.line);
	c->warn(c->warn_ud, msg);
}

/*
 * Set key in section (as written in a header: "balance", "client db") from
 * source label (interned) at line.  where is "FILE:LINE" or the label.  On
 * error *c is unchanged, except that label may have been interned.
 */
static int apply(struct conf *c, const char *sec, const char *key,
		 const char *value, const char *label, uint32_t line,
		 const char *where, struct conf_error *err)
{
	const struct key_desc *k = NULL;
	struct conf_client *cl, *clients;
	const char *name = NULL;
	size_t name_len = 0;
	struct conf_src src;
	char why[384];
	union value v;
	bool is_min;
	int i, r;

	if (!*sec) {
		errf(err, "%s: %s: key outside of any section", where, key);
		return -EINVAL;
	}
	r = section_error(where, sec, err);
	if (r)
		return r;
	if (parse_section(sec, &name, &name_len) == SEC_CLIENT) {
		if (strcmp(key, "min_pages") && strcmp(key, "max_pages"))
			goto unknown_key;
		k = &client_key;
	} else {
		for (i = 0; i < CONF_KEY_COUNT && !k; i++)
			if (strcmp(keys[i].section, sec) == 0 &&
			    strcmp(keys[i].name, key) == 0)
				k = &keys[i];
		if (!k)
			goto unknown_key;
	}

	r = parse_value(k, value, &v, why, sizeof(why));
	if (r) {
		errf(err, "%s: [%s] %s: %s", where, sec, key, why);
		return r;
	}
	r = intern(c, label, &src.file);
	if (r)
		goto nomem;
	src.line = line;
	src.seq = ++c->seq;

	if (k != &client_key) {
		warn_duplicate(c, c->src[k - keys], src, where, sec, key);
		store_value(c, k, &v);
		c->src[k - keys] = src;
		return 0;
	}
	cl = client_find(c, name, name_len);
	if (!cl && c->n_clients >= CONF_CLIENTS_MAX) {
		errf(err, "%s: [%s]: too many client sections (max %d)", where,
		     sec, CONF_CLIENTS_MAX);
		return -EINVAL;
	}
	if (!cl) {
		clients = realloc(c->clients,
				  (c->n_clients + 1) * sizeof(*clients));
		if (!clients)
			goto nomem;
		c->clients = clients;
		cl = &clients[c->n_clients++];
		memset(cl, 0, sizeof(*cl));
		memcpy(cl->name, name, name_len);
	}
	is_min = strcmp(key, "min_pages") == 0;
	if (is_min && cl->has_min)
		warn_duplicate(c, cl->min_src, src, where, sec, key);
	else if (!is_min && cl->has_max)
		warn_duplicate(c, cl->max_src, src, where, sec, key);
	if (is_min) {
		cl->min_pages = v.cnt;
		cl->has_min = true;
		cl->min_src = src;
	} else {
		cl->max_pages = v.cnt;
		cl->has_max = true;
		cl->max_src = src;
	}
	return 0;

unknown_key:
	errf(err, "%s: [%s] %s: unknown key", where, sec, key);
	return -EINVAL;
nomem:
	errf(err, "%s: [%s] %s: out of memory", where, sec, key);
	return -ENOMEM;
}

bool conf_key_exists(const char *dotted_key)
{
	const char *dot;
	size_t len;
	int i;

	if (strncmp(dotted_key, "client.", 7) == 0) {
		dot = strrchr(dotted_key, '.');
		len = (size_t)(dot - dotted_key);
		return len > 7 && valid_client_name(dotted_key + 7, len - 7) &&
		       (!strcmp(dot + 1, "min_pages") ||
			!strcmp(dot + 1, "max_pages"));
	}
	dot = strchr(dotted_key, '.');
	if (!dot)
		return false;
	len = (size_t)(dot - dotted_key);
	for (i = 0; i < CONF_KEY_COUNT; i++)
		if (strlen(keys[i].section) == len &&
		    !strncmp(keys[i].section, dotted_key, len) &&
		    !strcmp(keys[i].name, dot + 1))
			return true;
	return false;
}

int conf_set(struct conf *c, const char *dotted_key, const char *value,
	     const char *label, struct conf_error *err)
{
	char sec[sizeof("client ") + 256];
	const char *dot, *key;
	size_t len;

	if (strncmp(dotted_key, "client.", 7) == 0) {
		dot = strrchr(dotted_key, '.');
		len = (size_t)(dot - dotted_key) - 7;
		if (dot == dotted_key + 6 || len >= 256)
			goto bad;
		snprintf(sec, sizeof(sec), "client %.*s", (int)len,
			 dotted_key + 7);
		if (!valid_client_name(dotted_key + 7, len))
			return section_error(label, sec, err);
	} else {
		dot = strchr(dotted_key, '.');
		if (!dot || (size_t)(dot - dotted_key) >= sizeof(sec))
			goto bad;
		snprintf(sec, sizeof(sec), "%.*s", (int)(dot - dotted_key),
			 dotted_key);
	}
	key = dot + 1;
	if (!*sec || !*key)
		goto bad;
	return apply(c, sec, key, value, label, 0, label, err);
bad:
	errf(err, "%s: %s: expected section.key or client.NAME.key", label,
	     dotted_key);
	return -EINVAL;
}

int conf_set_option(struct conf *c, const char *assignment, const char *label,
		    struct conf_error *err)
{
	const char *eq = strchr(assignment, '=');
	char *key;
	int r;

	if (!eq) {
		errf(err, "%s: %s: expected section.key=value", label,
		     assignment);
		return -EINVAL;
	}
	key = strndup(assignment, (size_t)(eq - assignment));
	if (!key) {
		errf(err, "%s: out of memory", label);
		return -ENOMEM;
	}
	r = conf_set(c, key, eq + 1, label, err);
	free(key);
	return r;
}

/* --- files -----------------------------------------------------------------
 */

struct parse_ctx {
	struct conf *c;
	const char *path;
	const char *label; /* the source's name: path, or "LAYER path" */
	FILE *f;
	unsigned int line; /* lines handed to inih */
	bool have_key;	   /* a key was seen in this section */
	char section[256]; /* current section header, in full */
	int err;	   /* first error we found, with its line */
	unsigned int err_line;
	int read_errno;
	struct conf_error *e;
};

static void ctx_error(struct parse_ctx *p, int r, unsigned int line)
{
	p->err = r;
	p->err_line = line;
}

/* Validate a "[...]" line; 0 when inih should judge it (no ']'). */
static int reader_section(struct parse_ctx *p, const char *t)
{
	const char *end = strchr(t + 1, ']');
	char where[PATH_MAX + 32];
	const char *rest;
	size_t len;

	if (!end)
		return 0;
	snprintf(where, sizeof(where), "%s:%u", p->path, p->line);
	for (rest = end + 1; isspace((unsigned char)*rest); rest++)
		;
	if (*rest && *rest != ';' && *rest != '#') {
		errf(p->e, "%s: syntax error", where);
		return -EINVAL;
	}
	len = (size_t)(end - t - 1);
	if (len >= sizeof(p->section))
		len = sizeof(p->section) - 1;
	memcpy(p->section, t + 1, len);
	p->section[len] = '\0';
	p->have_key = false;
	return section_error(where, p->section, p->e);
}

/*
 * inih's line reader, bounded: at most num - 1 bytes are read for a line
 * (what inih's buffer holds), so memory stays bounded whatever the input
 * (a file without newlines, a huge line); a longer line, a NUL byte or a
 * continuation line stops the parse with an error naming file:line.
 */
static char *reader(char *str, int num, void *stream)
{
	struct parse_ctx *p = stream;
	const char *s, *t;
	size_t n = 0;
	int ch, r;

	if (p->err || num < 3)
		return NULL;
	errno = 0;
	for (;;) {
		ch = getc(p->f);
		if (ch == EOF)
			break;
		if (n == (size_t)num - 1) {
			p->line++;
			errf(p->e, "%s:%u: line too long (max %d characters)",
			     p->path, p->line, num - 2);
			ctx_error(p, -EINVAL, p->line);
			return NULL;
		}
		str[n++] = (char)ch;
		if (ch == '\0') {
			p->line++;
			errf(p->e, "%s:%u: NUL byte in the line", p->path,
			     p->line);
			ctx_error(p, -EINVAL, p->line);
			return NULL;
		}
		if (ch == '\n')
			break;
	}
	if (n == 0) {
		if (ferror(p->f))
			p->read_errno = errno ? errno : EIO;
		return NULL;
	}
	str[n] = '\0';
	p->line++;

	s = str;
	if (p->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	for (t = s; *t && isspace((unsigned char)*t); t++)
		;
	if (!*t || *t == ';' || *t == '#')
		return str;
	if (t > s && p->have_key) {
		errf(p->e, "%s:%u: [%s]: continuation lines are not supported",
		     p->path, p->line, p->section);
		ctx_error(p, -EINVAL, p->line);
		return NULL;
	}
	if (*t == '[') {
		r = reader_section(p, t);
		if (r) {
			ctx_error(p, r, p->line);
			return NULL;
		}
	}
	return str;
}

static int handler(void *user, const char *section, const char *name,
		   const char *value, int lineno)
{
	struct parse_ctx *p = user;
	char where[PATH_MAX + 32];
	int r;

	if (p->err)
		return 0;
	p->have_key = true;
	snprintf(where, sizeof(where), "%s:%d", p->path, lineno);
	r = apply(p->c, p->section, name, value ? value : "", p->label,
		  (uint32_t)lineno, where, p->e);
	if (r) {
		ctx_error(p, r, (unsigned int)lineno);
		return 0;
	}
	return 1;
}

/* /dev/null: accepted as an empty file (operators and tests use it). */
static bool is_dev_null(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == 1 &&
	       minor(st->st_rdev) == 3;
}

static const char *file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a regular file";
}

static int parse_stream(struct parse_ctx *p);

/* text instead of the file's content (a drop-in as it would be). */
static int load_text(struct conf *c, const char *path, const char *label,
		     const char *text, struct conf_error *err)
{
	struct parse_ctx p = {.c = c, .path = path, .label = label, .e = err};
	int r;

	if (!*text)
		return 0;
	p.f = fmemopen((void *)text, strlen(text), "r");
	if (!p.f) {
		errf(err, "%s: out of memory", path);
		return -ENOMEM;
	}
	r = parse_stream(&p);
	fclose(p.f);
	return r;
}

/* 1 when the file does not exist and missing_ok. */
static int load_file(struct conf *c, const char *path, const char *label,
		     bool missing_ok, struct conf_error *err)
{
	struct parse_ctx p = {.c = c, .path = path, .label = label, .e = err};
	struct stat st;
	int fd, r;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT && missing_ok)
			return 1;
		errf(err, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		errf(err, "%s: cannot stat: %s", path, strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		if (is_dev_null(&st))
			return 0;
		errf(err,
		     "%s: is %s: the configuration must be a regular file "
		     "(or /dev/null for none)",
		     path, file_kind(st.st_mode));
		return -EINVAL;
	}
	p.f = fdopen(fd, "r");
	if (!p.f) {
		r = -errno;
		close(fd);
		errf(err, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	r = parse_stream(&p);
	fclose(p.f);
	return r;
}

static int parse_stream(struct parse_ctx *ctx)
{
	struct parse_ctx p = *ctx;
	const char *path = p.path;
	struct conf_error *err = p.e;
	int r = ini_parse_stream(reader, &p, handler, &p);

	if (r > 0 && (!p.err || (unsigned int)r < p.err_line)) {
		errf(err, "%s:%d: syntax error", path, r);
		return -EINVAL;
	}
	if (p.err)
		return p.err;
	if (r == -2) {
		errf(err, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (p.read_errno) {
		errf(err, "%s: read error: %s", path, strerror(p.read_errno));
		return -p.read_errno;
	}
	return r ? -EIO : 0;
}

static int dropin_filter(const struct dirent *d)
{
	size_t len = strlen(d->d_name);

	return d->d_name[0] != '.' && len > 5 &&
	       strcmp(d->d_name + len - 5, ".conf") == 0 &&
	       strcmp(d->d_name, CONF_RUNTIME_FILE) != 0;
}

static int dropin_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

void conf_dropin_dir(const char *main_path, char *buf, size_t size)
{
	const char *slash = strrchr(main_path, '/');

	if (!slash)
		snprintf(buf, size, "%s", CONF_DROPIN_DIR);
	else
		snprintf(buf, size, "%.*s/%s", (int)(slash - main_path),
			 main_path, CONF_DROPIN_DIR);
}

void conf_persist_path(const char *main_path, char *buf, size_t size)
{
	char dir[PATH_MAX];

	conf_dropin_dir(main_path, dir, sizeof(dir));
	snprintf(buf, size, "%s/%s", dir, CONF_PERSIST_FILE);
}

/* "persist PATH" for the persist drop-in, else PATH. */
static int load_one_dropin(struct conf *c, const char *dir, const char *name,
			   const char *persist_text, struct conf_error *err)
{
	char path[PATH_MAX], label[PATH_MAX + 16];
	bool persist = strcmp(name, CONF_PERSIST_FILE) == 0;
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
		return 0;
	snprintf(label, sizeof(label), "%s%s", persist ? "persist " : "",
		 path);
	if (persist && persist_text)
		return load_text(c, path, label, persist_text, err);
	/* Skip directories and dangling links. */
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return 0;
	return load_file(c, path, label, false, err);
}

static int load_dropins(struct conf *c, const char *main_path,
			const char *persist_text, struct conf_error *err)
{
	char dir[PATH_MAX];
	struct dirent **list;
	bool persist_seen = false;
	int i, n, r = 0;

	conf_dropin_dir(main_path, dir, sizeof(dir));
	n = scandir(dir, &list, dropin_filter, dropin_cmp);
	if (n < 0) {
		r = -errno;
		if (r != -ENOENT && r != -ENOTDIR) {
			errf(err, "%s: cannot read directory: %s", dir,
			     strerror(-r));
			return r;
		}
		n = 0;
		list = NULL;
		r = 0;
	}
	for (i = 0; i < n; i++) {
		int cmp = strcmp(list[i]->d_name, CONF_PERSIST_FILE);

		/* The persist drop-in as it would be, in its place. */
		if (r == 0 && persist_text && !persist_seen && cmp > 0) {
			r = load_one_dropin(c, dir, CONF_PERSIST_FILE,
					    persist_text, err);
			persist_seen = true;
		}
		if (cmp == 0)
			persist_seen = true;
		if (r == 0)
			r = load_one_dropin(c, dir, list[i]->d_name,
					    persist_text, err);
		free(list[i]);
	}
	free(list);
	if (r == 0 && persist_text && !persist_seen)
		r = load_one_dropin(c, dir, CONF_PERSIST_FILE, persist_text,
				    err);
	return r;
}

int conf_load_ex(struct conf *c, const char *main_path, bool explicit_path,
		 const char *persist_text, struct conf_error *err)
{
	const char *path = main_path ? main_path : CONF_DEFAULT_PATH;
	struct conf tmp;
	int r;

	r = conf_copy(&tmp, c);
	if (r) {
		errf(err, "%s: out of memory", path);
		return r;
	}
	r = load_file(&tmp, path, path, !explicit_path, err);
	if (r >= 0)
		r = load_dropins(&tmp, path, persist_text, err);
	if (r < 0) {
		conf_free(&tmp);
		return r;
	}
	conf_free(c);
	*c = tmp;
	return 0;
}

int conf_load(struct conf *c, const char *main_path, bool explicit_path,
	      struct conf_error *err)
{
	return conf_load_ex(c, main_path, explicit_path, NULL, err);
}

int conf_load_layer(struct conf *c, const char *path, const char *label,
		    const char *text, struct conf_error *err)
{
	char name[PATH_MAX + 64];
	struct conf tmp;
	int r;

	r = conf_copy(&tmp, c);
	if (r) {
		errf(err, "%s: out of memory", path);
		return r;
	}
	snprintf(name, sizeof(name), "%s %s", label, path);
	r = text ? load_text(&tmp, path, name, text, err)
		 : load_file(&tmp, path, name, true, err);
	if (r < 0) {
		conf_free(&tmp);
		return r;
	}
	conf_free(c);
	*c = tmp;
	return 0;
}

/* --- consistency -----------------------------------------------------------
 */

uint64_t conf_resolve(struct conf_count v, uint64_t whole)
{
	uint64_t n;

	if (!v.percent)
		return v.value;
	n = whole * v.value / 100;
	return n == 0 && whole && v.value ? 1 : n;
}

uint64_t conf_reserve_pages(const struct conf *c, unsigned int ncpus)
{
	return (uint64_t)c->reserve.pages_per_cpu * ncpus +
	       c->reserve.global_pages;
}

static bool src_after(struct conf_src a, struct conf_src b)
{
	return a.seq > b.seq;
}

struct side {
	const char *sec, *key; /* where the key lives */
	const char *what;      /* how the message names it */
	struct conf_count v;
	uint64_t resolved;
	struct conf_src src;
};

/* Error when a > b, naming the side set last. */
static int check_le(const struct conf *c, const struct side *a,
		    const struct side *b, struct conf_error *err)
{
	const struct side *last = src_after(b->src, a->src) ? b : a;
	char where[PATH_MAX + 32], va[64], vb[64];

	if (a->resolved <= b->resolved)
		return 0;
	conf_src_format(c, last->src, where, sizeof(where));
	fmt_count(a->v, va, sizeof(va));
	fmt_count(b->v, vb, sizeof(vb));
	if (a->v.percent)
		snprintf(va + strlen(va), sizeof(va) - strlen(va),
			 " = %" PRIu64, a->resolved);
	if (b->v.percent)
		snprintf(vb + strlen(vb), sizeof(vb) - strlen(vb),
			 " = %" PRIu64, b->resolved);
	errf(err, "%s: [%s] %s: %s (%s) is greater than %s (%s)", where,
	     last->sec, last->key, a->what, va, b->what, vb);
	return -EINVAL;
}

static struct side side_key(const struct conf *c, enum conf_key key,
			    uint64_t whole)
{
	const struct key_desc *k = &keys[key];
	const char *p = (const char *)c + k->off;
	struct side s = {k->section, k->name, k->name};

	if (k->type == T_COUNT_PCT)
		memcpy(&s.v, p, sizeof(s.v));
	else
		memcpy(&s.v.value, p, sizeof(s.v.value));
	s.resolved = conf_resolve(s.v, whole);
	s.src = c->src[key];
	return s;
}

int conf_validate(const struct conf *c, unsigned int ncpus,
		  struct conf_error *err)
{
	uint64_t ppc = c->reserve.pages_per_cpu;
	uint64_t whole = conf_reserve_pages(c, ncpus);
	struct side low = side_key(c, CONF_BALANCE_LOW, ppc);
	struct side target = side_key(c, CONF_BALANCE_TARGET, ppc);
	struct side high = side_key(c, CONF_BALANCE_HIGH, ppc);
	struct side pages = side_key(c, CONF_RESERVE_PAGES_PER_CPU, ppc);
	struct side protect = side_key(c, CONF_LIMITS_PROTECT_PAGES, ppc);
	struct side cmin = side_key(c, CONF_LIMITS_CLIENT_MIN_PAGES, whole);
	struct side cmax = side_key(c, CONF_LIMITS_CLIENT_MAX_PAGES, whole);
	char sec[sizeof("client ") + CONF_CLIENT_NAME_MAX];
	size_t i;
	int r;

	if ((r = check_le(c, &low, &target, err)) ||
	    (r = check_le(c, &target, &high, err)) ||
	    (r = check_le(c, &high, &pages, err)) ||
	    (r = check_le(c, &protect, &pages, err)) ||
	    (r = check_le(c, &cmin, &cmax, err)))
		return r;

	for (i = 0; i < c->n_clients; i++) {
		const struct conf_client *cl = &c->clients[i];
		struct side mn = cmin, mx = cmax;

		snprintf(sec, sizeof(sec), "client %s", cl->name);
		if (cl->has_min) {
			mn = (struct side){sec,
					   "min_pages",
					   "min_pages",
					   cl->min_pages,
					   conf_resolve(cl->min_pages, whole),
					   cl->min_src};
		} else {
			mn.what = "[limits] client_min_pages";
		}
		if (cl->has_max) {
			mx = (struct side){sec,
					   "max_pages",
					   "max_pages",
					   cl->max_pages,
					   conf_resolve(cl->max_pages, whole),
					   cl->max_src};
		} else {
			mx.what = "[limits] client_max_pages";
		}
		r = check_le(c, &mn, &mx, err);
		if (r)
			return r;
	}
	return 0;
}

/* --- printing --------------------------------------------------------------
 */

static void print_line(const struct conf *c, FILE *f, const char *key,
		       const char *value, struct conf_src src)
{
	char where[PATH_MAX + 32];

	conf_src_format(c, src, where, sizeof(where));
	fprintf(f, "%s = %s ; %s\n", key, value, where);
}

void conf_foreach(const struct conf *c,
		  void (*fn)(void *ud, const char *key, const char *value,
			     const char *source),
		  void *ud)
{
	char val[CONF_GROUP_MAX + 1], key[CONF_CLIENT_NAME_MAX + 64],
		src[PATH_MAX + 32];

	for (int k = 0; k < CONF_KEY_COUNT; k++) {
		snprintf(key, sizeof(key), "%s.%s", keys[k].section,
			 keys[k].name);
		fmt_value(c, &keys[k], val, sizeof(val));
		conf_src_format(c, c->src[k], src, sizeof(src));
		fn(ud, key, val, src);
	}
	for (size_t i = 0; i < c->n_clients; i++) {
		const struct conf_client *cl = &c->clients[i];

		if (cl->has_min) {
			snprintf(key, sizeof(key), "client.%s.min_pages",
				 cl->name);
			fmt_count(cl->min_pages, val, sizeof(val));
			conf_src_format(c, cl->min_src, src, sizeof(src));
			fn(ud, key, val, src);
		}
		if (cl->has_max) {
			snprintf(key, sizeof(key), "client.%s.max_pages",
				 cl->name);
			fmt_count(cl->max_pages, val, sizeof(val));
			conf_src_format(c, cl->max_src, src, sizeof(src));
			fn(ud, key, val, src);
		}
	}
}

void conf_print(const struct conf *c, FILE *f)
{
	const char *sec = NULL;
	char val[CONF_GROUP_MAX + 1];
	size_t i;
	int k;

	for (k = 0; k < CONF_KEY_COUNT; k++) {
		if (!sec || strcmp(sec, keys[k].section)) {
			sec = keys[k].section;
			fprintf(f, "%s[%s]\n", k ? "\n" : "", sec);
		}
		fmt_value(c, &keys[k], val, sizeof(val));
		print_line(c, f, keys[k].name, val, c->src[k]);
	}
	for (i = 0; i < c->n_clients; i++) {
		const struct conf_client *cl = &c->clients[i];

		fprintf(f, "\n[client %s]\n", cl->name);
		if (cl->has_min) {
			fmt_count(cl->min_pages, val, sizeof(val));
			print_line(c, f, "min_pages", val, cl->min_src);
		}
		if (cl->has_max) {
			fmt_count(cl->max_pages, val, sizeof(val));
			print_line(c, f, "max_pages", val, cl->max_src);
		}
	}
}
