// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * proto/units: the one grammar of durations and sizes that the
 * configuration, rcupoolctl's options and every printed value use.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "units.h"

static void dur_ok(const char *s, uint64_t want)
{
	uint64_t v = 12345;

	if (units_parse_duration(s, &v) != 0)
		fail_msg("\"%s\" should parse", s);
	if (v != want)
		fail_msg("\"%s\" = %llu, want %llu", s, (unsigned long long)v,
			 (unsigned long long)want);
}

static void dur_bad(const char *s, int want)
{
	uint64_t v;
	int r = units_parse_duration(s, &v);

	if (r != want)
		fail_msg("\"%s\": %d, want %d", s, r, want);
}

static void test_duration_parse(void **state)
{
	dur_ok("0", 0);
	dur_ok("5", 5000000);
	dur_ok("250us", 250);
	dur_ok("100ms", 100000);
	dur_ok("5 ms", 5000);
	dur_ok("5\tms", 5000);
	dur_ok("2s", 2000000);
	dur_ok("0.2", 200000);
	dur_ok("1.5s", 1500000);
	dur_ok("1m", 60000000);
	dur_ok("1min", 60000000);
	dur_ok("1 min", 60000000);
	dur_ok("1h", 3600000000ULL);
	dur_ok("1d", 86400000000ULL);
	dur_ok("1.5h", 5400000000ULL);
	dur_ok("100MS", 100000);
	dur_ok("0.001ms", 1);

	dur_bad("", -EINVAL);
	dur_bad("ms", -EINVAL);
	dur_bad("-1s", -EINVAL);
	dur_bad("1x", -EINVAL);
	dur_bad("1 s x", -EINVAL);
	dur_bad("1.s", -EINVAL);
	dur_bad(".5s", -EINVAL);
	dur_bad(" 1s", -EINVAL);
	dur_bad("1s ", -EINVAL);
	dur_bad("1sec", -EINVAL);
	dur_bad("0.5us", -ERANGE); /* finer than a microsecond */
	dur_bad("18446744073709551615h", -ERANGE);
	dur_bad("99999999999999999999999", -ERANGE);
}

static void test_duration_format(void **state)
{
	static const uint64_t values[] = {0,
					  1,
					  999,
					  1000,
					  100000,
					  1500000,
					  60000000,
					  90000000,
					  3600000000ULL,
					  86400000000ULL,
					  5400000000ULL};
	char b[UNITS_BUF];
	uint64_t v;

	assert_string_equal(units_format_duration(0, b, sizeof(b)), "0");
	assert_string_equal(units_format_duration(250, b, sizeof(b)), "250us");
	assert_string_equal(units_format_duration(100000, b, sizeof(b)),
			    "100ms");
	assert_string_equal(units_format_duration(90000000, b, sizeof(b)),
			    "90s");
	assert_string_equal(units_format_duration(120000000, b, sizeof(b)),
			    "2min");
	assert_string_equal(units_format_duration(86400000000ULL, b, sizeof(b)),
			    "1d");
	/* Exact formatting parses back to the same value. */
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		units_format_duration(values[i], b, sizeof(b));
		assert_int_equal(units_parse_duration(b, &v), 0);
		assert_int_equal(v, values[i]);
	}

	assert_string_equal(units_human_duration(999, b, sizeof(b)), "999us");
	assert_string_equal(units_human_duration(305000, b, sizeof(b)),
			    "305ms");
	assert_string_equal(units_human_duration(4200000, b, sizeof(b)),
			    "4.2s");
	assert_string_equal(units_human_duration(242000000, b, sizeof(b)),
			    "4min 02s");
	assert_string_equal(units_human_duration(7500000000ULL, b, sizeof(b)),
			    "2h 05min");
	assert_string_equal(
		units_human_duration(3 * 86400000000ULL + 4 * 3600000000ULL, b,
				     sizeof(b)),
		"3d 04h");
}

static void test_size(void **state)
{
	char b[UNITS_BUF];
	uint64_t v;

	assert_int_equal(units_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(units_parse_size("4096B", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(units_parse_size("4K", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(units_parse_size("4 KiB", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(units_parse_size("4kb", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(units_parse_size("2M", &v), 0);
	assert_int_equal(v, 2 << 20);
	assert_int_equal(units_parse_size("1T", &v), 0);
	assert_int_equal(v, 1ULL << 40);
	assert_int_equal(units_parse_size("0.5K", &v), 0);
	assert_int_equal(v, 512);
	assert_int_equal(units_parse_size("4X", &v), -EINVAL);
	assert_int_equal(units_parse_size("4KX", &v), -EINVAL);
	assert_int_equal(units_parse_size("K", &v), -EINVAL);
	assert_int_equal(units_parse_size("99999999999T", &v), -ERANGE);

	assert_string_equal(units_format_size(4096, b, sizeof(b)), "4K");
	assert_string_equal(units_format_size(2 << 20, b, sizeof(b)), "2M");
	assert_string_equal(units_format_size(4097, b, sizeof(b)), "4097");
	assert_string_equal(units_human_size(512, b, sizeof(b)), "512B");
	assert_string_equal(units_human_size(4096, b, sizeof(b)), "4KiB");
	assert_string_equal(units_human_size(1536 * 1024, b, sizeof(b)),
			    "1.5MiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_duration_format),
		cmocka_unit_test(test_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
