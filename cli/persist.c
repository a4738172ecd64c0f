// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist.h"

#define LINE_MAX_ 1024

struct entry {
	char section[160], key[64], value[256];
};

int persist_split(const char *dotted, char *section, size_t slen, char *key,
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

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static int put(struct entry **e, size_t *n, const char *section,
	       const char *key, const char *value)
{
	struct entry *g;

	for (size_t i = 0; i < *n; i++) {
		if (!strcmp((*e)[i].section, section) &&
		    !strcmp((*e)[i].key, key)) {
			snprintf((*e)[i].value, sizeof((*e)[i].value), "%s",
				 value);
			return 0;
		}
	}
	g = realloc(*e, (*n + 1) * sizeof(**e));
	if (!g)
		return -ENOMEM;
	*e = g;
	snprintf(g[*n].section, sizeof(g[*n].section), "%s", section);
	snprintf(g[*n].key, sizeof(g[*n].key), "%s", key);
	snprintf(g[*n].value, sizeof(g[*n].value), "%s", value);
	(*n)++;
	return 0;
}

/* What an earlier set --persist wrote (only this file's own plain form). */
static int load(const char *path, struct entry **e, size_t *n)
{
	char line[LINE_MAX_], section[160] = "";
	FILE *f = fopen(path, "re");
	int r = 0;

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (r == 0 && fgets(line, sizeof(line), f)) {
		char *s = trim(line), *eq;

		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');

			if (end)
				*end = '\0';
			snprintf(section, sizeof(section), "%s", trim(s + 1));
			continue;
		}
		eq = strchr(s, '=');
		if (!eq)
			continue;
		*eq = '\0';
		r = put(e, n, section, trim(s), trim(eq + 1));
	}
	fclose(f);
	return r;
}

int persist_settings(const char *config_dir, char *const *settings, size_t n,
		     char *path, size_t plen, char *why, size_t wlen)
{
	char dir[4096], tmp[4200], section[160], key[64];
	struct entry *e = NULL;
	size_t ne = 0;
	FILE *f;
	int r;

	if (!config_dir || !*config_dir)
		config_dir = getenv("RCUPOOL_CONFDIR");
	if (!config_dir || !*config_dir)
		config_dir = RCUPOOL_SYSCONFDIR "/rcupool";
	snprintf(dir, sizeof(dir), "%s/rcupoold.conf.d", config_dir);
	snprintf(path, plen, "%s/" PERSIST_FILE, dir);
	snprintf(tmp, sizeof(tmp), "%s/." PERSIST_FILE ".%d", dir,
		 (int)getpid());
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(why, wlen, "%s: %s", dir, strerror(-r));
		return r;
	}
	r = load(path, &e, &ne);
	if (r < 0) {
		snprintf(why, wlen, "%s: %s", path, strerror(-r));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char dotted[256];
		const char *eq = strchr(settings[i], '=');

		snprintf(dotted, sizeof(dotted), "%.*s",
			 eq ? (int)(eq - settings[i]) : 0, settings[i]);
		r = !eq ? -EINVAL
			: persist_split(dotted, section, sizeof(section), key,
					sizeof(key));
		if (r == 0)
			r = put(&e, &ne, section, key, eq + 1);
		if (r < 0) {
			snprintf(why, wlen, "cannot write '%s'", settings[i]);
			goto out;
		}
	}
	/* A new file renamed over the old: a reader never sees half. */
	f = fopen(tmp, "we");
	if (!f) {
		r = -errno;
		snprintf(why, wlen, "%s: %s", tmp, strerror(-r));
		goto out;
	}
	fprintf(f, "# Written by rcupoolctl set --persist; later set --persist "
		   "calls update it.\n");
	for (size_t i = 0; i < ne; i++) {
		bool seen = false;

		for (size_t k = 0; k < i; k++)
			seen |= !strcmp(e[k].section, e[i].section);
		if (seen)
			continue;
		fprintf(f, "\n[%s]\n", e[i].section);
		for (size_t k = i; k < ne; k++)
			if (!strcmp(e[k].section, e[i].section))
				fprintf(f, "%s = %s\n", e[k].key, e[k].value);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) < 0 || ferror(f)) {
		r = -errno;
		fclose(f);
		unlink(tmp);
		snprintf(why, wlen, "%s: %s", tmp, strerror(-r));
		goto out;
	}
	fclose(f);
	if (chmod(tmp, 0644) < 0 || rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
		snprintf(why, wlen, "%s: %s", path, strerror(-r));
		goto out;
	}
	r = 0;
out:
	free(e);
	return r;
}
