// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The configuration parser: any file contents through conf_load (inih and
 * every key's parser), conf_validate, conf_print and conf_foreach; an
 * error names what was wrong, nothing crashes or leaks.
 *
 * Input: the file's bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "fuzz.h"

static void count(void *ud, const char *key, const char *value,
		  const char *source)
{
	(*(size_t *)ud) += strlen(key) + strlen(value) + strlen(source);
}

int fuzz_conf(const uint8_t *data, size_t size)
{
	static char path[64];
	struct conf_error err;
	struct conf c;
	size_t n = 0;
	FILE *f;

	if (!path[0]) {
		char dir[] = "/tmp/rcupool-fuzz-conf-XXXXXX";

		if (!mkdtemp(dir))
			abort();
		snprintf(path, sizeof(path), "%s/rcupoold.conf", dir);
	}
	f = fopen(path, "w");
	if (!f)
		abort();
	fwrite(data, 1, size, f);
	fclose(f);
	conf_init(&c);
	if (conf_load(&c, path, true, &err) == 0 &&
	    conf_validate(&c, 2, &err) == 0) {
		FILE *null = fopen("/dev/null", "w");

		if (null) {
			conf_print(&c, null);
			fclose(null);
		}
		conf_foreach(&c, count, &n);
	} else if (!err.msg[0]) {
		abort(); /* an error always says what was wrong */
	}
	conf_free(&c);
	return 0;
}
