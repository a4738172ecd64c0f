// SPDX-License-Identifier: LGPL-2.1-or-later
#include "rcupool.h"

const char *rcupool_version(void)
{
	return RCUPOOL_VERSION;
}
