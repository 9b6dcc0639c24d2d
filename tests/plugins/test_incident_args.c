/* The shell-like argument splitter of the /incident commands. */
#include <string.h>

#include <criterion/criterion.h>

#include <im/types.h>

#include "args.h"

static ic_args split_ok(const char *text)
{
	ic_args a;
	char err[256];
	int rc = ic_args_split(text, &a, err, sizeof(err));
	cr_assert_eq(rc, 0, "split(%s): %s", text, err);
	cr_assert_null(a.v[a.n], "the list ends with NULL");
	return a;
}

static void expect_args(const char *text, size_t n, const char *const *want)
{
	ic_args a = split_ok(text);
	cr_expect_eq(a.n, n, "split(%s) gave %zu arguments", text, a.n);
	for (size_t i = 0; i < n && i < a.n; i++)
		cr_expect_str_eq(a.v[i], want[i], "argument %zu of %s", i,
				 text);
	ic_args_free(&a);
}

Test(incident_args, splits_on_any_whitespace)
{
	const char *want[] = {"ack", "INC-7", "now"};
	expect_args("  ack\tINC-7 \n now  ", 3, want);
}

Test(incident_args, gives_no_arguments_for_empty_or_null_text)
{
	expect_args("", 0, NULL);
	expect_args(" \t\n", 0, NULL);
	ic_args a = split_ok(NULL);
	cr_expect_eq(a.n, 0);
	ic_args_free(&a);
}

Test(incident_args, groups_double_and_single_quotes)
{
	const char *want[] = {"Checkout API returns 500", "--sev", "SEV 2"};
	expect_args("\"Checkout API returns 500\" --sev 'SEV 2'", 3, want);
}

Test(incident_args, joins_adjacent_quoted_and_bare_parts)
{
	const char *want[] = {"ab cd", "x'y"};
	expect_args("a\"b c\"d x\"'\"y", 2, want);
}

Test(incident_args, keeps_empty_quotes_as_an_empty_argument)
{
	const char *want[] = {"", "x", ""};
	expect_args("\"\" x ''", 3, want);
}

Test(incident_args, backslash_escapes_outside_quotes)
{
	const char *want[] = {"a b", "\"", "can't", "\\"};
	expect_args("a\\ b \\\" can\\'t \\\\", 4, want);
}

Test(incident_args, only_quote_and_backslash_escape_in_double_quotes)
{
	const char *want[] = {"say \"hi\" \\ \\n"};
	expect_args("\"say \\\"hi\\\" \\\\ \\n\"", 1, want);
}

Test(incident_args, single_quotes_keep_everything_literal)
{
	const char *want[] = {"a \\\" b"};
	expect_args("'a \\\" b'", 1, want);
}

Test(incident_args, keeps_a_trailing_backslash)
{
	const char *want[] = {"path\\"};
	expect_args("path\\", 1, want);
}

Test(incident_args, accepts_typographic_double_quotes)
{
	const char *want[] = {"DB down", "now"};
	expect_args("\xe2\x80\x9c" "DB down" "\xe2\x80\x9d now", 2, want);
}

Test(incident_args, refuses_an_unclosed_double_quote_naming_the_text)
{
	ic_args a;
	char err[256];
	cr_assert_eq(ic_args_split("\"db down --sev 1", &a, err, sizeof(err)),
		     IM_EINVAL);
	cr_expect(strstr(err, "unclosed \" in: \"db down --sev 1"), "%s", err);
	cr_expect_eq(a.n, 0);
	cr_expect_null(a.v);
	ic_args_free(&a);
}

Test(incident_args, refuses_an_unclosed_apostrophe_and_says_how_to_escape)
{
	ic_args a;
	char err[256];
	cr_assert_eq(ic_args_split("Can't log in", &a, err, sizeof(err)),
		     IM_EINVAL);
	cr_expect(strstr(err, "unclosed ' in: Can't log in"), "%s", err);
	cr_expect(strstr(err, "\\'"), "%s", err);
	ic_args_free(&a);
}

Test(incident_args, refuses_an_escaped_closing_quote_left_open)
{
	ic_args a;
	char err[256];
	cr_expect_eq(ic_args_split("\"abc\\\"", &a, err, sizeof(err)),
		     IM_EINVAL);
	ic_args_free(&a);
}

Test(incident_args, joins_the_rest_with_single_spaces)
{
	ic_args a = split_ok("INC-7 rolled   back \"to v41\"");
	char *s = ic_args_join(&a, 1);
	cr_expect_str_eq(s, "rolled back to v41");
	free(s);
	s = ic_args_join(&a, 4);
	cr_expect_str_eq(s, "");
	free(s);
	ic_args_free(&a);
}
