/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_FUZZ_H
#define RCUPOOL_FUZZ_H

/*
 * Fuzz harness bodies: built with libFuzzer (`make fuzz`, clang, each with
 * -DFUZZ_MAIN=fuzz_NAME giving LLVMFuzzerTestOneInput) and, with gcc, into
 * tests/test_fuzz_replay, which runs every file of fuzz/corpus/NAME/
 * through them in make check.  Each returns 0 and aborts on a broken
 * invariant.
 */

#include <stddef.h>
#include <stdint.h>

int fuzz_request(const uint8_t *data, size_t size);
int fuzz_reply(const uint8_t *data, size_t size);
int fuzz_lease(const uint8_t *data, size_t size);
int fuzz_conf(const uint8_t *data, size_t size);

#ifdef FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return FUZZ_MAIN(data, size);
}
#endif

#endif
