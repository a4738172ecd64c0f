// SPDX-License-Identifier: LGPL-2.1-or-later
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmpdir.h"

int tmpdir_make(char *buf, size_t len)
{
	const char *base = getenv("TMPDIR");
	int n;

	if (!base || !*base)
		base = "/tmp";
	n = snprintf(buf, len, "%s/rcupool-test.XXXXXX", base);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	if (!mkdtemp(buf))
		return -errno;
	if (chmod(buf, 0755) < 0)
		return -errno;
	return 0;
}

static int tmpdir_rm_one(const char *path, const struct stat *st, int type,
			 struct FTW *ftw)
{
	remove(path);
	return 0;
}

void tmpdir_remove(const char *dir)
{
	if (dir && *dir)
		nftw(dir, tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
