/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_DROPIN_H
#define RCUPOOL_DROPIN_H

/*
 * The two drop-ins rcupoolctl's settings live in: the runtime one (written
 * by rcupoold for "rcupoolctl set") and the persistent one (written by
 * rcupoolctl for "set --persist").  Both are ini files read with inih, the
 * same reader as the rest of the configuration, and edited in place: only
 * the lines of the keys changed are touched; comments, other keys and their
 * order stay.  Linked into rcupoold and rcupoolctl.
 *
 * Keys are dotted: "balance.low", "client.NAME.max_pages".
 * Functions return 0 or -errno; why gets a message naming the file.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define DROPIN_MAX (64 * 1024) /* bytes of one drop-in */

struct dropin_change {
	const char *key;   /* dotted */
	const char *value; /* NULL: remove the key */
};

/* "balance.low" -> "balance", "low"; "client.db.max_pages" -> "client db",
 * "max_pages".  -EINVAL without a dot or when it does not fit. */
int dropin_split(const char *dotted, char *section, size_t slen, char *key,
		 size_t klen);

/* Read path into *text (malloc'ed, NUL-terminated; "" when the file does
 * not exist).  At most DROPIN_MAX bytes; a NUL byte is an error. */
int dropin_read(const char *path, char **text, char *why, size_t wlen);

/*
 * Apply changes to text (path names it in messages): a key set is replaced
 * at its first line (later lines of the same key are dropped) or added at
 * the end of its section (a new section is appended); a key removed loses
 * its lines.  A text inih cannot parse is refused.  *out is malloc'ed;
 * *nkeys counts the keys left in it.  header, if not NULL, starts a text
 * that was empty.
 */
int dropin_edit(const char *path, const char *text,
		const struct dropin_change *ch, size_t n, const char *header,
		char **out, size_t *nkeys, char *why, size_t wlen);

/* Call fn for every key of text in order, dotted; stops at fn's non-zero
 * return, which is returned. */
int dropin_foreach(const char *text,
		   int (*fn)(void *ud, const char *key, const char *value),
		   void *ud);

/*
 * Replace path by text atomically (a temporary file in the same directory,
 * fsync, rename), creating missing directories (0755); or, when remove,
 * unlink path (missing is fine).
 */
int dropin_write(const char *path, const char *text, bool remove, mode_t mode,
		 char *why, size_t wlen);

#endif
