/*
 * tests/unit/test_tables.c - a plugin's verb table as the host copies it:
 * entries built against 1.4 (no flags) read as flags 0, entries built
 * against 1.5 keep theirs.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>

#include "plugin/plugin.h"

/* im_command_verb as a 1.4 plugin was built: no flags at the end. */
typedef struct verb_1_4 {
	uint32_t struct_size;
	const char *name, *usage, *summary;
} verb_1_4;

Test(tables, reads_a_1_4_verb_table_as_flags_zero)
{
	static const verb_1_4 old[] = {
	    {sizeof(verb_1_4), "status", "status <id>", "Show"},
	    {sizeof(verb_1_4), "ack", "ack <id>", "Acknowledge"},
	    {0}};
	char err[256] = "";
	im_command_verb *v = im_tables_verbs((const im_command_verb *)old,
					     false, err, sizeof(err));
	cr_assert_not_null(v, "%s", err);
	cr_expect_str_eq(v[0].name, "status");
	cr_expect_str_eq(v[1].summary, "Acknowledge");
	cr_expect_eq(v[0].flags, 0u);
	cr_expect_eq(v[1].flags, 0u);
	cr_expect_eq(v[0].struct_size, sizeof(im_command_verb));
	cr_expect_null(v[2].name);
	free(v);
}

Test(tables, keeps_the_flags_of_a_1_5_verb_table)
{
	static const im_command_verb now[] = {
	    IM_VERB_FLAGS("status", "status <id>", "Show", IM_VERB_FAST),
	    IM_VERB("ack", "ack <id>", "Acknowledge"),
	    {0}};
	char err[256] = "";
	im_command_verb *v = im_tables_verbs(now, false, err, sizeof(err));
	cr_assert_not_null(v, "%s", err);
	cr_expect_eq(v[0].flags, IM_VERB_FAST);
	cr_expect_eq(v[1].flags, 0u);
	free(v);
}
