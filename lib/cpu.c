// SPDX-License-Identifier: LGPL-2.1-or-later
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu.h"

static int parse_cpu_number(const char **p, unsigned int *ret)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)**p))
		return -EINVAL;
	errno = 0;
	v = strtoul(*p, &end, 10);
	if (errno || v >= CPU_MAX)
		return -ERANGE;
	*p = end;
	*ret = (unsigned int)v;
	return 0;
}

int cpu_list_parse(const char *text, bool *set, unsigned int nset)
{
	const char *p = text;
	unsigned int top = 0;
	int r;

	if (set)
		memset(set, 0, nset * sizeof(*set));
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\n' || *p == '\0')
		return 0;
	for (;;) {
		unsigned int lo, hi;

		r = parse_cpu_number(&p, &lo);
		if (r < 0)
			return r;
		hi = lo;
		if (*p == '-') {
			p++;
			r = parse_cpu_number(&p, &hi);
			if (r < 0)
				return r;
			if (hi < lo)
				return -EINVAL;
		}
		if (set && hi >= nset)
			return -ERANGE;
		for (unsigned int c = lo; set && c <= hi; c++)
			set[c] = true;
		if (hi + 1 > top)
			top = hi + 1;
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == '\n')
			p++;
		return *p == '\0' ? (int)top : -EINVAL;
	}
}

int cpu_list_read(const char *path, bool *set, unsigned int nset)
{
	char buf[4096];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	close(fd);
	buf[n] = '\0';
	return cpu_list_parse(buf, set, nset);
}

int cpu_possible_count(void)
{
	int r = cpu_list_read("/sys/devices/system/cpu/possible", NULL, 0);

	if (r > 0)
		return r;
	/* No sysfs (some containers): what the C library knows. */
	long n = sysconf(_SC_NPROCESSORS_CONF);

	if (n < 1)
		return r < 0 ? r : -ENODEV;
	return n > CPU_MAX ? CPU_MAX : (int)n;
}
