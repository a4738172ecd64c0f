// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <cmocka.h>

#include "cpu.h"

static void test_cpu_list_ranges(void **state)
{
	bool set[16];

	assert_int_equal(cpu_list_parse("0-3,8,10-11\n", set, 16), 12);
	assert_true(set[0] && set[3] && set[8] && set[10] && set[11]);
	assert_false(set[4] || set[7] || set[9] || set[12]);
	assert_int_equal(cpu_list_parse("0\n", set, 16), 1);
	assert_int_equal(cpu_list_parse("\n", set, 16), 0);
	assert_int_equal(cpu_list_parse("5", NULL, 0), 6);
}

static void test_cpu_list_malformed(void **state)
{
	bool set[16];

	assert_int_equal(cpu_list_parse("3-1", set, 16), -EINVAL);
	assert_int_equal(cpu_list_parse("a", set, 16), -EINVAL);
	assert_int_equal(cpu_list_parse("1,", set, 16), -EINVAL);
	assert_int_equal(cpu_list_parse("1-", set, 16), -EINVAL);
	assert_int_equal(cpu_list_parse("1 2", set, 16), -EINVAL);
	assert_int_equal(cpu_list_parse("0-16", set, 16), -ERANGE);
	assert_int_equal(cpu_list_parse("99999", NULL, 0), -ERANGE);
}

static void test_cpu_possible(void **state)
{
	int n = cpu_possible_count();

	assert_true(n >= 1 && n <= CPU_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpu_list_ranges),
		cmocka_unit_test(test_cpu_list_malformed),
		cmocka_unit_test(test_cpu_possible),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
