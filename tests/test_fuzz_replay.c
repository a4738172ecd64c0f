// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Every file of fuzz/corpus/NAME/ through the fuzz harness NAME, built
 * with the plain compiler (and the sanitizers in make check): what a long
 * libFuzzer run found interesting stays a regression test.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../fuzz/fuzz.h"

static unsigned int replay(const char *name,
			   int (*fn)(const uint8_t *, size_t))
{
	char dirpath[256], path[512];
	struct dirent *e;
	unsigned int n = 0;
	DIR *dir;

	snprintf(dirpath, sizeof(dirpath), "fuzz/corpus/%s", name);
	dir = opendir(dirpath);
	if (!dir)
		fail_msg("%s: no corpus", dirpath);
	while ((e = readdir(dir))) {
		static uint8_t buf[1 << 20];
		size_t len;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dirpath, e->d_name);
		f = fopen(path, "rb");
		if (!f)
			continue;
		len = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		fn(buf, len);
		n++;
	}
	closedir(dir);
	print_message("# %s: %u corpus files replayed\n", name, n);
	return n;
}

static void test_replay_lease(void **state)
{
	assert_true(replay("lease", fuzz_lease) > 0);
}

static void test_replay_request(void **state)
{
	assert_true(replay("request", fuzz_request) > 0);
}

static void test_replay_reply(void **state)
{
	assert_true(replay("reply", fuzz_reply) > 0);
}

static void test_replay_conf(void **state)
{
	assert_true(replay("conf", fuzz_conf) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_lease),
		cmocka_unit_test(test_replay_request),
		cmocka_unit_test(test_replay_reply),
		cmocka_unit_test(test_replay_conf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
