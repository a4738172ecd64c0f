// SPDX-License-Identifier: LGPL-2.1-or-later
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("rcupoold %s\n", RCUPOOL_VERSION);
		return 0;
	}
	fprintf(stderr, "rcupoold: not implemented yet\n");
	return 1;
}
