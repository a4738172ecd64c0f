// SPDX-License-Identifier: LGPL-2.1-or-later
/* librcupool in private mode with the qsbr flavor (tests in pool_tests.h). */
#define URCU_API_MAP 1
#include <urcu/urcu-qsbr.h>

#define POOL_TEST_QSBR 1
#include "pool_tests.h"

int main(void)
{
	return run_pool_tests();
}
