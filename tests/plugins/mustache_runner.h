/*
 * tests/plugins/mustache_runner - shared by test_mustache.c (the
 * conformance cases kept in tests/plugins/mustache-cases/) and
 * test_mustache_spec.c (the official spec files, -Dmustache_spec).
 *
 * load_engine() loads the mustache plugin through the real registry from
 * $IM_TEST_BUILDDIR/plugins/mustache.so and sets fm and fstate; use it as
 * a TestSuite's .init and unload_engine() as its .fini (criterion forks
 * per test, so each test gets its own engine).
 *
 * A case file has the spec's JSON shape:
 *     {"tests": [{"name", "desc", "data", "template", "expected",
 *                 "partials"?}, ...]}
 * and every case is compiled and rendered with HTML escaping, then
 * compared with "expected" byte for byte.
 */
#ifndef IM_TESTS_MUSTACHE_RUNNER_H
#define IM_TESTS_MUSTACHE_RUNNER_H

#include <stddef.h>

#include "plugin/plugin.h"

extern const im_formatter *fm;
extern void *fstate;

void load_engine(void);
void unload_engine(void);

/* The spec's partial lookup: `ud` is the case's "partials" object (or
 * NULL); a name it lacks renders as nothing. */
int spec_partial(void *ud, const char *name, const char **text,
		 size_t *len);

/* Runs every case of <dir>/<file>.json. The file must load and hold at
 * least one case; each failing case is reported with what it got and
 * what it wanted. Prints "mustache cases <file> N/N passed" and returns
 * the number of cases that failed. */
int run_cases(const char *dir, const char *file);

#endif
