/* The official Mustache spec suite (the six required files: comments,
 * delimiters, interpolation, inverted, partials, sections) against the
 * mustache plugin, byte for byte. The files are not part of this
 * repository: meson registers this test only when -Dmustache_spec names
 * their folder, and passes it as $IM_MUSTACHE_SPEC. */
#include <stdlib.h>

#include <criterion/criterion.h>

#include "mustache_runner.h"

TestSuite(mustache_spec, .init = load_engine, .fini = unload_engine,
	  .timeout = 60);

static int run_spec_file(const char *file)
{
	const char *dir = getenv("IM_MUSTACHE_SPEC");
	cr_assert(dir && *dir, "IM_MUSTACHE_SPEC is not set");
	return run_cases(dir, file);
}

Test(mustache_spec, passes_the_comments_spec)
{
	cr_expect_eq(run_spec_file("comments"), 0);
}

Test(mustache_spec, passes_the_delimiters_spec)
{
	cr_expect_eq(run_spec_file("delimiters"), 0);
}

Test(mustache_spec, passes_the_interpolation_spec)
{
	cr_expect_eq(run_spec_file("interpolation"), 0);
}

Test(mustache_spec, passes_the_inverted_spec)
{
	cr_expect_eq(run_spec_file("inverted"), 0);
}

Test(mustache_spec, passes_the_partials_spec)
{
	cr_expect_eq(run_spec_file("partials"), 0);
}

Test(mustache_spec, passes_the_sections_spec)
{
	cr_expect_eq(run_spec_file("sections"), 0);
}
