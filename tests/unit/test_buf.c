/* im_buf: appends never pass the end, whatever the sizes. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "buf/buf.h"

Test(buf, grows_for_any_number_of_appends)
{
	im_buf b = IM_BUF_INIT;
	cr_expect_str_eq(im_buf_str(&b), "");
	for (int i = 0; i < 10000; i++)
		im_buf_printf(&b, "%d,", i % 10);
	cr_expect_eq(b.len, 20000);
	cr_expect_eq(strlen(im_buf_str(&b)), 20000);
	cr_expect_not(b.oom);
	cr_expect_not(b.truncated);
	size_t len = 0;
	char *s = im_buf_take(&b, &len);
	cr_assert(s);
	cr_expect_eq(len, 20000);
	cr_expect(!strncmp(s, "0,1,2,", 6));
	cr_expect_eq(b.len, 0, "take resets the builder");
	free(s);
}

Test(buf, one_printf_larger_than_the_stack_chunk)
{
	im_buf b = IM_BUF_INIT;
	char big[5000];
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	im_buf_printf(&b, "<%s>", big);
	cr_expect_eq(b.len, sizeof(big) + 1);
	cr_expect_eq(im_buf_str(&b)[0], '<');
	cr_expect_eq(im_buf_str(&b)[b.len - 1], '>');
	im_buf_free(&b);
}

Test(buf, a_max_cuts_and_says_so_but_never_overflows)
{
	for (size_t max = 1; max < 70; max++) {
		im_buf b = {.max = max};
		im_buf_puts(&b, "Unknown command `");
		for (int i = 0; i < 5; i++)
			im_buf_printf(&b, "%s", "0123456789");
		im_buf_putc(&b, '`');
		size_t want = max < 68 ? max : 68;
		cr_expect_eq(b.len, want, "max %zu: len %zu", max, b.len);
		cr_expect_eq(strlen(im_buf_str(&b)), want);
		cr_expect_eq(b.truncated, max < 68, "max %zu", max);
		char *s = im_buf_take(&b, NULL);
		cr_assert(s);
		cr_expect_eq(b.max, max, "take keeps the max");
		free(s);
	}
}

Test(buf, take_of_an_empty_builder_is_an_empty_string)
{
	im_buf b = IM_BUF_INIT;
	size_t len = 7;
	char *s = im_buf_take(&b, &len);
	cr_assert(s);
	cr_expect_str_eq(s, "");
	cr_expect_eq(len, 0);
	free(s);
}

Test(buf, invalid_utf8_is_shown_as_escapes)
{
	struct {
		const char *in, *want;
	} cases[] = {
	    {"plain", "plain"},
	    {"caf\xc3\xa9 \xe2\x80\xa6 \xf0\x9f\x94\xa5", "caf\xc3\xa9 \xe2\x80\xa6 \xf0\x9f\x94\xa5"},
	    {"a\xffz", "a\\xFFz"},
	    {"\xc3", "\\xC3"},                   /* cut sequence */
	    {"\xc0\xaf", "\\xC0\\xAF"},          /* overlong '/' */
	    {"\xed\xa0\x80", "\\xED\\xA0\\x80"}, /* surrogate */
	    {"\xf4\x90\x80\x80", "\\xF4\\x90\\x80\\x80"}, /* > U+10FFFF */
	    {"/api/\xfe/x", "/api/\\xFE/x"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		im_buf b = IM_BUF_INIT;
		im_buf_put_utf8(&b, cases[i].in, strlen(cases[i].in));
		cr_expect_str_eq(im_buf_str(&b), cases[i].want, "case %zu", i);
		im_buf_free(&b);
	}
}
