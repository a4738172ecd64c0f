/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_TEST_TMPDIR_H
#define RCUPOOL_TEST_TMPDIR_H

#include <stddef.h>

/*
 * Test helper: a fresh directory under $TMPDIR (default /tmp), mode 0755 so
 * a child that dropped privileges can still reach sockets in it.  Returns 0
 * or -errno; buf receives the path.
 */
int tmpdir_make(char *buf, size_t len);

/* Remove dir and everything below it (best effort, no symlink following). */
void tmpdir_remove(const char *dir);

#endif
