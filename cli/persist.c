// SPDX-License-Identifier: LGPL-2.1-or-later
/* rcupoolctl's persistent drop-in (persist.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist.h"

static const char header[] =
	"# Written by rcupoolctl set --persist; rcupoolctl unset --persist "
	"KEY\n"
	"# or revert --persist removes settings.  Comments here are kept.\n";

const char *persist_expected(const char *config_dir, char *buf, size_t len)
{
	if (!config_dir || !*config_dir)
		config_dir = getenv("RCUPOOL_CONFDIR");
	if (!config_dir || !*config_dir)
		return NULL;
	snprintf(buf, len, "%s/rcupoold.conf.d/%s", config_dir, PERSIST_FILE);
	return buf;
}

struct all_keys {
	struct dropin_change *ch;
	size_t n;
	int err;
};

static int add_key(void *ud, const char *key, const char *value)
{
	struct all_keys *a = ud;
	struct dropin_change *ch = realloc(a->ch, (a->n + 1) * sizeof(*ch));
	char *k = strdup(key);

	if (!ch || !k) {
		free(k);
		if (ch)
			a->ch = ch;
		a->err = -ENOMEM;
		return 1;
	}
	a->ch = ch;
	ch[a->n++] = (struct dropin_change){k, NULL};
	return 0;
}

int persist_apply(const char *path, const struct dropin_change *ch, size_t n,
		  bool all, char **old, char *why, size_t wlen)
{
	struct all_keys a = {0};
	char *text = NULL;
	size_t nkeys;
	int r;

	r = dropin_read(path, old, why, wlen);
	if (r < 0)
		return r;
	if (all) {
		dropin_foreach(*old, add_key, &a);
		if (a.err) {
			r = a.err;
			goto out;
		}
		ch = a.ch;
		n = a.n;
	}
	r = dropin_edit(path, *old, ch, n, header, &text, &nkeys, why, wlen);
	if (r < 0)
		goto out;
	if (strcmp(text, *old) || nkeys == 0)
		r = dropin_write(path, text, nkeys == 0, 0644, why, wlen);
out:
	for (size_t i = 0; i < a.n; i++)
		free((char *)a.ch[i].key);
	free(a.ch);
	free(text);
	return r;
}

int persist_restore(const char *path, const char *old, char *why, size_t wlen)
{
	return dropin_write(path, old, !*old, 0644, why, wlen);
}
