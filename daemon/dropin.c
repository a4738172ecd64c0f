// SPDX-License-Identifier: LGPL-2.1-or-later
/* rcupoolctl's drop-ins: read, edit in place, write atomically (dropin.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INI_HANDLER_LINENO 1
#include <ini.h>

#include "dropin.h"

#define SECTION_MAX 160
#define KEY_MAX	    128

__attribute__((format(printf, 3, 4))) static int fail(char *why, size_t wlen,
						      const char *fmt, ...)
{
	va_list ap;

	if (why && wlen) {
		va_start(ap, fmt);
		vsnprintf(why, wlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int dropin_split(const char *dotted, char *section, size_t slen, char *key,
		 size_t klen)
{
	const char *dot = strrchr(dotted, '.');
	int n;

	if (!dot || dot == dotted || !dot[1])
		return -EINVAL;
	if (!strncmp(dotted, "client.", 7) && dot > dotted + 7)
		n = snprintf(section, slen, "client %.*s",
			     (int)(dot - dotted - 7), dotted + 7);
	else
		n = snprintf(section, slen, "%.*s", (int)(dot - dotted),
			     dotted);
	if (n < 0 || (size_t)n >= slen)
		return -EINVAL;
	n = snprintf(key, klen, "%s", dot + 1);
	return n < 0 || (size_t)n >= klen ? -EINVAL : 0;
}

/* "client   db " -> "client db"; other sections trimmed. */
static void canon_section(const char *in, char *out, size_t len)
{
	const char *e;

	while (isblank((unsigned char)*in))
		in++;
	for (e = in + strlen(in); e > in && isspace((unsigned char)e[-1]); e--)
		;
	if (e - in > 6 && !strncmp(in, "client", 6) &&
	    isblank((unsigned char)in[6])) {
		const char *p = in + 6;

		while (isblank((unsigned char)*p))
			p++;
		snprintf(out, len, "client %.*s", (int)(e - p), p);
		return;
	}
	snprintf(out, len, "%.*s", (int)(e - in), in);
}

/* "client db" + "max_pages" -> "client.db.max_pages". */
static void dotted_of(const char *section, const char *key, char *out,
		      size_t len)
{
	char sec[SECTION_MAX];

	canon_section(section, sec, sizeof(sec));
	if (!strncmp(sec, "client ", 7))
		snprintf(out, len, "client.%s.%s", sec + 7, key);
	else
		snprintf(out, len, "%s.%s", sec, key);
}

int dropin_read(const char *path, char **text, char *why, size_t wlen)
{
	char *buf;
	ssize_t n;
	size_t len = 0;
	struct stat st;
	int fd, r;

	*text = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT) {
			*text = strdup("");
			return *text ? 0 : -ENOMEM;
		}
		r = -errno;
		fail(why, wlen, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(why, wlen, "%s: not a regular file", path);
	}
	buf = malloc(DROPIN_MAX + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while ((n = read(fd, buf + len, DROPIN_MAX + 1 - len)) > 0) {
		len += (size_t)n;
		if (len > DROPIN_MAX)
			break;
	}
	r = n < 0 ? -errno : 0;
	close(fd);
	if (r < 0) {
		free(buf);
		fail(why, wlen, "%s: read error: %s", path, strerror(-r));
		return r;
	}
	if (len > DROPIN_MAX) {
		free(buf);
		return fail(why, wlen, "%s: larger than %d bytes", path,
			    DROPIN_MAX);
	}
	if (memchr(buf, '\0', len)) {
		free(buf);
		return fail(why, wlen, "%s: contains a NUL byte", path);
	}
	buf[len] = '\0';
	*text = buf;
	return 0;
}

/* --- parsing with inih --------------------------------------------------- */

struct line_key {
	int line;
	char section[SECTION_MAX];
	char dotted[SECTION_MAX + KEY_MAX];
};

struct scan {
	struct line_key *keys;
	size_t n, cap;
	int err;
	int (*fn)(void *ud, const char *key, const char *value);
	void *ud;
	int stop;
};

static int scan_handler(void *user, const char *section, const char *name,
			const char *value, int lineno)
{
	struct scan *s = user;
	char dotted[SECTION_MAX + KEY_MAX];

	if (s->stop)
		return 1;
	dotted_of(section, name, dotted, sizeof(dotted));
	if (s->fn) {
		s->stop = s->fn(s->ud, dotted, value ? value : "");
		return 1;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		struct line_key *k = realloc(s->keys, cap * sizeof(*k));

		if (!k) {
			s->err = -ENOMEM;
			return 0;
		}
		s->keys = k;
		s->cap = cap;
	}
	s->keys[s->n].line = lineno;
	canon_section(section, s->keys[s->n].section,
		      sizeof(s->keys[s->n].section));
	snprintf(s->keys[s->n].dotted, sizeof(s->keys[s->n].dotted), "%s",
		 dotted);
	s->n++;
	return 1;
}

int dropin_foreach(const char *text,
		   int (*fn)(void *ud, const char *key, const char *value),
		   void *ud)
{
	struct scan s = {.fn = fn, .ud = ud};
	int r = ini_parse_string(text, scan_handler, &s);

	if (s.stop)
		return s.stop;
	return r ? -EINVAL : 0;
}

/* --- editing ------------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, cap;
	int err;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->err)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t cap = (o->len + n + 1) * 2;
		char *b = realloc(o->buf, cap);

		if (!b) {
			o->err = -ENOMEM;
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_key(struct out *o, const char *dotted, const char *value)
{
	char sec[SECTION_MAX], key[KEY_MAX];

	if (dropin_split(dotted, sec, sizeof(sec), key, sizeof(key)) < 0)
		return;
	puts_(o, key);
	puts_(o, " = ");
	puts_(o, value);
	puts_(o, "\n");
}

/* The header of line s ("[ ... ]"), canonical, or false. */
static bool header_of(const char *s, size_t len, char *sec, size_t slen)
{
	char tmp[SECTION_MAX];
	const char *end;

	while (len && isblank((unsigned char)*s))
		s++, len--;
	if (!len || *s != '[')
		return false;
	end = memchr(s, ']', len);
	if (!end || (size_t)(end - s - 1) >= sizeof(tmp))
		return false;
	snprintf(tmp, sizeof(tmp), "%.*s", (int)(end - s - 1), s + 1);
	canon_section(tmp, sec, slen);
	return true;
}

static int count_key(void *ud, const char *key, const char *value)
{
	(*(size_t *)ud)++;
	return 0;
}

int dropin_edit(const char *path, const char *text,
		const struct dropin_change *ch, size_t n, const char *header,
		char **out, size_t *nkeys, char *why, size_t wlen)
{
	char sec[SECTION_MAX], cur[SECTION_MAX] = "", key[KEY_MAX];
	struct scan s = {0};
	struct out o = {0};
	bool *done = NULL;
	const char *p, *nl;
	int line = 0, r, last_line_of_section = 0;
	size_t i, k;

	*out = NULL;
	for (i = 0; i < n; i++)
		if (dropin_split(ch[i].key, sec, sizeof(sec), key,
				 sizeof(key)) < 0)
			return fail(why, wlen, "%s: bad key", ch[i].key);
	r = ini_parse_string(text, scan_handler, &s);
	if (s.err) {
		free(s.keys);
		return s.err;
	}
	if (r) {
		free(s.keys);
		return fail(why, wlen,
			    "%s:%d: syntax error (fix or remove the file)",
			    path, r);
	}
	done = calloc(n ? n : 1, sizeof(*done));
	if (!done) {
		free(s.keys);
		return -ENOMEM;
	}
	if (!*text && header)
		puts_(&o, header);

	/* Pending keys of section sec not in the file go after its last
	 * line: find, for each line, whether it is the section's last. */
	for (p = text; *p; p = nl ? nl + 1 : p + strlen(p)) {
		const struct line_key *lk = NULL;
		size_t len;

		nl = strchr(p, '\n');
		len = nl ? (size_t)(nl - p) + 1 : strlen(p);
		line++;
		if (header_of(p, len, sec, sizeof(sec))) {
			snprintf(cur, sizeof(cur), "%s", sec);
			/* The section's last key line, or this header. */
			last_line_of_section = line;
			for (k = 0; k < s.n; k++) {
				if (s.keys[k].line <= line)
					continue;
				if (strcmp(s.keys[k].section, cur))
					break;
				last_line_of_section = s.keys[k].line;
			}
		}
		for (k = 0; k < s.n; k++)
			if (s.keys[k].line == line)
				lk = &s.keys[k];
		if (lk) {
			for (i = 0; i < n; i++)
				if (!strcmp(ch[i].key, lk->dotted))
					break;
			if (i < n) {
				if (ch[i].value && !done[i])
					put_key(&o, ch[i].key, ch[i].value);
				done[i] = true;
				len = 0; /* the old line goes */
			}
		}
		put(&o, p, len);
		if (len && !nl)
			puts_(&o, "\n");
		if (line == last_line_of_section) {
			for (i = 0; i < n; i++) {
				if (done[i] || !ch[i].value)
					continue;
				dropin_split(ch[i].key, sec, sizeof(sec), key,
					     sizeof(key));
				if (strcmp(sec, cur))
					continue;
				put_key(&o, ch[i].key, ch[i].value);
				done[i] = true;
			}
		}
	}
	/* New sections, in the order of the changes. */
	for (i = 0; i < n; i++) {
		if (done[i] || !ch[i].value)
			continue;
		dropin_split(ch[i].key, cur, sizeof(cur), key, sizeof(key));
		if (o.len && !(o.len >= 2 && o.buf[o.len - 2] == '\n'))
			puts_(&o, "\n");
		puts_(&o, "[");
		puts_(&o, cur);
		puts_(&o, "]\n");
		for (k = i; k < n; k++) {
			if (done[k] || !ch[k].value)
				continue;
			dropin_split(ch[k].key, sec, sizeof(sec), key,
				     sizeof(key));
			if (strcmp(sec, cur))
				continue;
			put_key(&o, ch[k].key, ch[k].value);
			done[k] = true;
		}
	}
	free(done);
	free(s.keys);
	if (!o.buf && !o.err)
		puts_(&o, "");
	if (o.err) {
		free(o.buf);
		return o.err;
	}
	if (o.len > DROPIN_MAX) {
		free(o.buf);
		return fail(why, wlen, "%s: would be larger than %d bytes",
			    path, DROPIN_MAX);
	}
	*nkeys = 0;
	dropin_foreach(o.buf, count_key, nkeys);
	*out = o.buf;
	return 0;
}

/* --- writing ------------------------------------------------------------- */

/* mkdir -p of path's parent directories. */
static int make_parents(const char *path, char *why, size_t wlen)
{
	char dir[PATH_MAX];
	char *p;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return fail(why, wlen, "%s: path too long", path);
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			int r = -errno;

			fail(why, wlen, "%s: cannot create: %s", dir,
			     strerror(-r));
			return r;
		}
		*p = '/';
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		int r = -errno;

		fail(why, wlen, "%s: cannot create: %s", dir, strerror(-r));
		return r;
	}
	return 0;
}

int dropin_write(const char *path, const char *text, bool remove, mode_t mode,
		 char *why, size_t wlen)
{
	char tmp[PATH_MAX];
	size_t len = strlen(text), off = 0;
	ssize_t w;
	int fd, r;

	if (remove) {
		if (unlink(path) < 0 && errno != ENOENT) {
			r = -errno;
			fail(why, wlen, "%s: cannot remove: %s", path,
			     strerror(-r));
			return r;
		}
		return 0;
	}
	r = make_parents(path, why, wlen);
	if (r < 0)
		return r;
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return fail(why, wlen, "%s: path too long", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		fail(why, wlen, "%s: cannot create: %s", tmp, strerror(-r));
		return r;
	}
	while (off < len) {
		w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			break;
		off += (size_t)w;
	}
	r = off < len ? -errno : 0;
	if (r == 0 && fchmod(fd, mode) < 0)
		r = -errno;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		fail(why, wlen, "%s: cannot write: %s", path, strerror(-r));
	}
	return r;
}
