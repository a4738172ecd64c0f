// SPDX-License-Identifier: LGPL-2.1-or-later
/* librcupool in private mode with the signal flavor (tests in pool_tests.h). */
#define URCU_API_MAP 1
#include <urcu/urcu-signal.h>

#include "pool_tests.h"

int main(void)
{
	return run_pool_tests();
}
