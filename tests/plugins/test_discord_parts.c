/* The Discord connector's pure parts: interaction signatures and the
 * replay set (sign.c), and the /incident command built from usage lines,
 * interaction options turned back into text, and the comparison that
 * decides whether sync-commands writes (cmds.c). */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "discord.h"

static uint8_t pk[32], sk[64];

static void keys(void)
{
	cr_assert(sodium_init() >= 0);
	crypto_sign_keypair(pk, sk);
}

static void sign(const char *ts, const char *body, char hex[129])
{
	char msg[4096];
	snprintf(msg, sizeof msg, "%s%s", ts, body);
	uint8_t sig[64];
	crypto_sign_detached(sig, NULL, (const uint8_t *)msg, strlen(msg), sk);
	sodium_bin2hex(hex, 129, sig, 64);
}

TestSuite(discord_sign, .init = keys);

Test(discord_sign, accepts_a_fresh_signature_over_timestamp_and_body)
{
	const char *body = "{\"type\":1}";
	char ts[24], sig[129], why[200];
	time_t now = time(NULL);
	snprintf(ts, sizeof ts, "%lld", (long long)now);
	sign(ts, body, sig);
	cr_expect_eq(dsc_verify(pk, sig, ts, body, strlen(body), now, why,
				sizeof why),
		     0, "%s", why);
}

Test(discord_sign, refuses_a_changed_body_another_key_and_garbage)
{
	const char *body = "{\"type\":1}";
	char ts[24], sig[129], why[200];
	time_t now = time(NULL);
	snprintf(ts, sizeof ts, "%lld", (long long)now);
	sign(ts, body, sig);
	cr_expect_neq(dsc_verify(pk, sig, ts, "{\"type\":2}", 10, now, why,
				 sizeof why),
		      0);
	cr_expect(strstr(why, "does not match"));
	uint8_t other[32], osk[64];
	crypto_sign_keypair(other, osk);
	cr_expect_neq(dsc_verify(other, sig, ts, body, strlen(body), now, why,
				 sizeof why),
		      0);
	cr_expect_neq(dsc_verify(pk, "zz", ts, body, strlen(body), now, why,
				 sizeof why),
		      0);
	cr_expect(strstr(why, "128 hex"));
	cr_expect_neq(dsc_verify(pk, NULL, ts, body, strlen(body), now, why,
				 sizeof why),
		      0);
	cr_expect_neq(dsc_verify(pk, sig, "12x", body, strlen(body), now, why,
				 sizeof why),
		      0);
}

Test(discord_sign, refuses_a_timestamp_over_five_minutes_away)
{
	const char *body = "{}";
	char ts[24], sig[129], why[200];
	time_t now = time(NULL);
	snprintf(ts, sizeof ts, "%lld", (long long)now - 301);
	sign(ts, body, sig);
	cr_expect_neq(dsc_verify(pk, sig, ts, body, 2, now, why, sizeof why), 0);
	cr_expect(strstr(why, "stale"), "%s", why);
	snprintf(ts, sizeof ts, "%lld", (long long)now - 299);
	sign(ts, body, sig);
	cr_expect_eq(dsc_verify(pk, sig, ts, body, 2, now, why, sizeof why), 0);
}

Test(discord_sign, the_replay_set_refuses_an_id_seen_before)
{
	dsc_seen *s = dsc_seen_new();
	cr_assert(s);
	cr_expect(dsc_seen_add(s, 1234567890123ULL));
	cr_expect_not(dsc_seen_add(s, 1234567890123ULL));
	cr_expect(dsc_seen_add(s, 1234567890124ULL));
	cr_expect_not(dsc_seen_add(s, 0));
	dsc_seen_free(s);
}

Test(discord_sign, a_full_replay_set_forgets_the_oldest_and_refuses_below_it)
{
	dsc_seen *s = dsc_seen_new();
	uint64_t base = 1000000;
	for (uint64_t i = 0; i < DSC_SEEN_MAX + 10; i++)
		cr_assert(dsc_seen_add(s, base + i * 7));
	/* The ten oldest were forgotten: they and anything below are refused,
	 * never accepted again. */
	for (uint64_t i = 0; i < 10; i++)
		cr_expect_not(dsc_seen_add(s, base + i * 7));
	cr_expect_not(dsc_seen_add(s, base + 9 * 7 - 1));
	/* Everything still remembered is refused as a replay. */
	for (uint64_t i = 10; i < DSC_SEEN_MAX + 10; i += 997)
		cr_expect_not(dsc_seen_add(s, base + i * 7));
	/* Gaps above the floor are new ids. */
	cr_expect(dsc_seen_add(s, base + 20 * 7 + 1));
	dsc_seen_free(s);
}

Test(discord_sign, snowflakes_are_decimal_and_fit_64_bits)
{
	uint64_t v;
	cr_expect(dsc_snowflake("1100000000000000001", &v));
	cr_expect_eq(v, 1100000000000000001ULL);
	cr_expect_not(dsc_snowflake("18446744073709551616", &v));
	cr_expect_not(dsc_snowflake("12a", &v));
	cr_expect_not(dsc_snowflake("", &v));
	cr_expect_not(dsc_snowflake(NULL, &v));
}

/* --- the command ----------------------------------------------------------- */

static int verbs(im_instance *in, json_t **out)
{
	(void)in;
	*out = json_pack(
	    "[{s:s,s:s,s:s},{s:s,s:s,s:s},{s:s,s:s,s:s},{s:s,s:s,s:s}]", "verb",
	    "declare", "usage", "declare <title> [--sev SEV-n] [--service S]",
	    "summary", "declare an incident", "verb", "update", "usage",
	    "update [INC-n] <text>", "summary", "add a note to the timeline",
	    "verb", "assign", "usage", "assign [INC-n] @user", "summary",
	    "make someone incident commander", "verb", "sev", "usage",
	    "sev [INC-n] SEV-n", "summary", "change the severity");
	return 0;
}

static im_host host = {.struct_size = sizeof(im_host),
		       .command_verbs = verbs};
static dsc d;

static void setup(void)
{
	memset(&d, 0, sizeof d);
	d.host = &host;
	pthread_mutex_init(&d.mu, NULL);
}

static void teardown(void)
{
	json_decref(d.catalog);
	pthread_mutex_destroy(&d.mu);
}

TestSuite(discord_cmds, .init = setup, .fini = teardown);

static const json_t *sub(const json_t *defs, const char *name)
{
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(json_array_get(defs, 0), "options"),
			   i, s) if (!strcmp(json_string_value(json_object_get(s, "name")),
					     name)) return s;
	return NULL;
}

Test(discord_cmds, every_verb_is_a_subcommand_with_options_from_its_usage)
{
	json_t *defs = dsc_command_defs(&d);
	const json_t *top = json_array_get(defs, 0);
	cr_expect_str_eq(json_string_value(json_object_get(top, "name")),
			 "incident");
	cr_expect_eq(json_array_size(json_object_get(top, "options")), 4);
	const json_t *decl = sub(defs, "declare");
	cr_assert(decl);
	const json_t *opts = json_object_get(decl, "options");
	cr_expect_eq(json_array_size(opts), 3);
	const json_t *title = json_array_get(opts, 0);
	cr_expect_str_eq(json_string_value(json_object_get(title, "name")), "title");
	cr_expect(json_is_true(json_object_get(title, "required")));
	const json_t *sev = json_array_get(opts, 1);
	cr_expect_str_eq(json_string_value(json_object_get(sev, "name")), "sev");
	cr_expect_eq(json_array_size(json_object_get(sev, "choices")), 4);
	cr_expect_not(json_is_true(json_object_get(sev, "required")));
	/* update [INC-n] <text>: the required text comes first for Discord. */
	const json_t *up = json_object_get(sub(defs, "update"), "options");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(up, 0),
							   "name")),
			 "text");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(up, 1),
							   "name")),
			 "incident");
	/* @user is a USER option. */
	const json_t *as = json_object_get(sub(defs, "assign"), "options");
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(as, 0),
							"type")),
		     6);
	json_decref(defs);
}

static char *text_of(const char *data)
{
	json_t *j = json_loads(data, 0, NULL);
	cr_assert(j, "%s", data);
	char *t = dsc_command_text(&d, j);
	json_decref(j);
	return t;
}

Test(discord_cmds, options_become_the_text_the_verbs_parse)
{
	char *t = text_of(
	    "{\"name\":\"incident\",\"options\":[{\"type\":1,\"name\":\"declare\","
	    "\"options\":[{\"type\":3,\"name\":\"sev\",\"value\":\"SEV-1\"},"
	    "{\"type\":3,\"name\":\"title\",\"value\":\"Payments down\"}]}]}");
	cr_expect_str_eq(t, "declare Payments down --sev SEV-1");
	free(t);
	t = text_of("{\"name\":\"incident\",\"options\":[{\"type\":1,\"name\":"
		    "\"update\",\"options\":[{\"type\":3,\"name\":\"text\","
		    "\"value\":\"rolled back\"},{\"type\":3,\"name\":"
		    "\"incident\",\"value\":\"INC-4\"}]}]}");
	cr_expect_str_eq(t, "update INC-4 rolled back");
	free(t);
	t = text_of("{\"name\":\"incident\",\"options\":[{\"type\":1,\"name\":"
		    "\"assign\",\"options\":[{\"type\":6,\"name\":\"user\","
		    "\"value\":\"2100000000000000001\"}]}]}");
	cr_expect_str_eq(t, "assign <@2100000000000000001>");
	free(t);
	t = text_of("{\"name\":\"incident\"}");
	cr_expect_str_eq(t, "");
	free(t);
}

Test(discord_cmds, the_comparison_ignores_what_discord_adds)
{
	json_t *want = dsc_command_defs(&d);
	json_t *have = json_deep_copy(want);
	json_t *c = json_array_get(have, 0);
	json_object_set_new(c, "id", json_string("1"));
	json_object_set_new(c, "application_id", json_string("2"));
	json_object_set_new(c, "version", json_string("3"));
	json_object_set_new(c, "default_member_permissions", json_null());
	json_t *diff = dsc_commands_diff(want, have);
	cr_expect_eq(json_array_size(json_object_get(diff, "unchanged")), 1);
	cr_expect_eq(json_array_size(json_object_get(diff, "changed")), 0);
	json_decref(diff);
	/* A changed description is a change; an extra command is removed;
	 * nothing there is a create. */
	json_object_set_new(c, "description", json_string("old text"));
	json_array_append_new(have, json_pack("{s:s,s:s}", "name", "old",
					      "description", "x"));
	diff = dsc_commands_diff(want, have);
	cr_expect_eq(json_array_size(json_object_get(diff, "changed")), 1);
	cr_expect_eq(json_array_size(json_object_get(diff, "removed")), 1);
	json_decref(diff);
	diff = dsc_commands_diff(want, json_array_get(have, 5));
	cr_expect_eq(json_array_size(json_object_get(diff, "created")), 1);
	json_decref(diff);
	json_decref(have);
	json_decref(want);
}

static int long_verbs(im_instance *in, json_t **out)
{
	(void)in;
	char summary[400] = "";
	for (int i = 0; i < 120; i++)
		strcat(summary, "\xc3\xa9"); /* é: two bytes, one character */
	*out = json_pack("[{s:s,s:s,s:s}]", "verb", "note", "usage",
			 "note <text>", "summary", summary);
	return 0;
}

Test(discord_cmds, a_long_description_is_cut_to_100_characters_not_bytes)
{
	static im_host h = {.struct_size = sizeof(im_host),
			    .command_verbs = long_verbs};
	d.host = &h;
	json_t *defs = dsc_command_defs(&d);
	const json_t *note = sub(defs, "note");
	cr_assert(note, "the definitions were built");
	const char *desc = json_string_value(json_object_get(note, "description"));
	cr_expect_eq(strlen(desc), 200, "100 two-byte characters");
	json_decref(defs);
	d.host = &host;
}
