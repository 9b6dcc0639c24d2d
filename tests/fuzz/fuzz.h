/*
 * tests/fuzz - one fuzz target per parser (libFuzzer's interface).
 *
 * Each target file defines LLVMFuzzerTestOneInput and may define
 * LLVMFuzzerInitialize. The same file links either with libFuzzer
 * (clang -fsanitize=fuzzer, bench/fuzz.sh) or with replay.c, which runs
 * the seed corpus once as a normal test (tests/fuzz/meson.build).
 *
 * A broken contract is reported with FUZZ_FAIL, which prints the reason
 * and aborts: libFuzzer saves the input as a crash, and the replay test
 * fails.
 */
#ifndef IM_TESTS_FUZZ_H
#define IM_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_FAIL(...)                                                     \
	do {                                                               \
		fprintf(stderr, "fuzz contract broken at %s:%d: ", __FILE__, \
			__LINE__);                                         \
		fprintf(stderr, __VA_ARGS__);                              \
		fputc('\n', stderr);                                       \
		abort();                                                   \
	} while (0)

#define FUZZ_CHECK(cond, ...)                                              \
	do {                                                               \
		if (!(cond))                                               \
			FUZZ_FAIL(__VA_ARGS__);                            \
	} while (0)

#endif
