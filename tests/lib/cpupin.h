/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_TEST_CPUPIN_H
#define RCUPOOL_TEST_CPUPIN_H

/* Run the calling thread on one CPU only: 0 or -1 (errno). */
int pin(int cpu);

/* Let the calling thread run anywhere again. */
void unpin(void);

#endif
