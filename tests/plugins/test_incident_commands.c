/* The /incident chat commands (plugins/incident-commands) against a fake
 * host whose incident_op runs the real repository. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "command_host.h"
#include "incident/repo.h"

const im_plugin_desc *im_plugin_entry(void);

static void setup(void)
{
	fake_cmd_start("{\"channel_binding\": true}");
}

static void teardown(void)
{
	fake_cmd_stop();
}

TestSuite(incident_commands, .init = setup, .fini = teardown);

/* --- helpers -------------------------------------------------------------- */

#define run fake_cmd_run
#define press fake_cmd_press
#define text_of fake_reply_text
#define vis fake_reply_visibility
#define rc_of fake_reply_rc
#define field fake_reply_field

#define expect_text(r, needle)                                                \
	cr_expect(strstr(text_of(r), (needle)), "reply lacks \"%s\": %s",     \
		  (needle), text_of(r))

static size_t n_calls(void)
{
	return json_array_size(fake_cmd_calls());
}

static void expect_stored(const char *id, const char *key, const char *want)
{
	char *v = fake_stored(id, key);
	cr_expect(v && strcmp(v, want) == 0, "%s.%s is %s, not %s", id, key,
		  v ? v : "null", want);
	free(v);
}

/* Runs a command that must succeed. */
static void ok(const char *channel, const char *verb, const char *text)
{
	json_t *r = run(channel, verb, text);
	cr_assert_eq(rc_of(r), 0, "%s %s: %s", verb, text, text_of(r));
	json_decref(r);
}

/* Runs a command that must fail with IM_EINVAL before any incident_op,
 * answering ephemerally with `needle` in the text. */
static void refused(const char *channel, const char *verb, const char *text,
		    const char *needle)
{
	size_t before = n_calls();
	json_t *r = run(channel, verb, text);
	cr_expect_eq(rc_of(r), IM_EINVAL, "%s %s: %s", verb, text, text_of(r));
	cr_expect_str_eq(vis(r), "ephemeral");
	expect_text(r, needle);
	cr_expect_eq(n_calls(), before, "%s %s reached the repository", verb,
		     text);
	json_decref(r);
}

/* --- the descriptor ------------------------------------------------------- */

Test(incident_commands, describes_its_verbs_and_buttons)
{
	const im_plugin_desc *d = im_plugin_entry();
	cr_expect_str_eq(d->name, "incident-commands");
	const im_command *c = (const im_command *)d->components[0];
	cr_expect_null(d->components[1]);
	const char *want[] = {"declare", "ack", "mitigate", "update",
			      "resolve", "close", "cancel", "sev",
			      "raise", "assign", "status", "list"};
	size_t n = 0;
	for (const im_command_verb *v = c->verbs; v->name; v++, n++) {
		cr_expect_str_neq(v->name, "help");
		cr_expect(v->usage && strncmp(v->usage, v->name,
					      strlen(v->name)) == 0,
			  "%s: usage starts with the verb", v->name);
		cr_expect(v->summary && *v->summary);
		if (n < 12)
			cr_expect_str_eq(v->name, want[n]);
	}
	cr_expect_eq(n, 12);
	const char *acts[][2] = {{"im_ack", "ack"},
				 {"im_resolve", "resolve"},
				 {"im_sev_up", "raise"}};
	for (size_t i = 0; i < 3; i++) {
		cr_expect_str_eq(c->actions[i].action_id, acts[i][0]);
		cr_expect_str_eq(c->actions[i].verb, acts[i][1]);
	}
	cr_expect_null(c->actions[3].action_id);
}

/* --- declare -------------------------------------------------------------- */

Test(incident_commands, declares_with_a_quoted_title_sev_and_service)
{
	json_t *r = run("C1", "declare",
			"\"Checkout API returns 500\" --sev SEV-2 --service "
			"checkout");
	cr_assert_eq(rc_of(r), 0, "%s", text_of(r));
	cr_expect_str_eq(vis(r), "in_channel");
	expect_text(r, "INC-1: Checkout API returns 500");
	expect_text(r, "declared by Ada");
	expect_text(r, "This channel now follows INC-1");
	cr_expect_str_eq(field(r, "Status"), "open");
	cr_expect_str_eq(field(r, "Severity"), "SEV-2 (major)");
	cr_expect_str_eq(field(r, "Service"), "checkout");
	cr_expect_str_eq(field(r, "Commander"), "unassigned");
	cr_expect(fake_reply_has_action(r, "im_ack", "INC-1"));
	cr_expect(fake_reply_has_action(r, "im_resolve", "INC-1"));
	cr_expect(fake_reply_has_action(r, "im_sev_up", "INC-1"));
	json_decref(r);

	const json_t *a = fake_cmd_last_args();
	const json_t *f = json_object_get(a, "fields");
	cr_expect_str_eq(json_string_value(json_object_get(f, "title")),
			 "Checkout API returns 500");
	cr_expect_str_eq(json_string_value(json_object_get(f, "severity")),
			 "SEV-2");
	const json_t *actor = json_object_get(a, "actor");
	cr_expect_str_eq(json_string_value(json_object_get(actor, "id")), "U1");
	cr_expect_str_eq(json_string_value(json_object_get(actor, "name")),
			 "Ada");
	cr_expect_str_eq(json_string_value(json_object_get(actor, "via")),
			 "slack");
	cr_expect_str_eq(fake_cmd_kv("channel:slack:C1"), "INC-1");
	expect_stored("INC-1", "service", "checkout");
}

Test(incident_commands, declares_from_bare_words_with_inline_options)
{
	json_t *r = run("C1", "declare", "'DB down' in eu-west --sev=critical");
	cr_assert_eq(rc_of(r), 0, "%s", text_of(r));
	expect_text(r, "INC-1: DB down in eu-west");
	cr_expect_str_eq(field(r, "Severity"), "SEV-1 (critical)");
	cr_expect_str_eq(field(r, "Service"), "—");
	cr_expect_not(fake_reply_has_action(r, "im_sev_up", "INC-1"),
		      "no raise button at SEV-1");
	json_decref(r);
	expect_stored("INC-1", "severity", "SEV-1");
}

Test(incident_commands, links_the_id_when_the_server_has_a_public_url)
{
	im_repo_set_public_url("https://im.example.com");
	json_t *r = run("C1", "declare", "db down");
	cr_assert_eq(rc_of(r), 0, "%s", text_of(r));
	expect_text(r, "**[INC-1](https://im.example.com/incidents/INC-1): "
		       "db down** declared by Ada.");
	json_decref(r);
}

Test(incident_commands, declare_without_a_title_asks_for_one)
{
	refused("C1", "declare", "", "Give the incident a title");
	refused("C1", "declare", "\"  \"", "declare <title>");
	refused("C1", "declare", "--sev SEV-2", "Give the incident a title");
}

Test(incident_commands, declare_names_the_valid_severities)
{
	refused("C1", "declare", "db down --sev SEV-9",
		"`SEV-9` is not a severity; use SEV-1 (critical), SEV-2 "
		"(major), SEV-3 (minor) or SEV-4 (informational)");
	refused("C1", "declare", "db down --sev", "`--sev` needs a value");
	refused("C1", "declare", "db down --prio 1",
		"Unknown option `--prio`");
}

Test(incident_commands, declare_relays_the_title_limit)
{
	char text[260];
	memset(text, 'x', 201);
	text[201] = '\0';
	json_t *r = run("C1", "declare", text);
	cr_expect_eq(rc_of(r), IM_EINVAL);
	cr_expect_str_eq(vis(r), "ephemeral");
	expect_text(r, "Could not declare the incident: title is 201 "
		       "characters; the limit is 200");
	json_decref(r);
	cr_expect_null(fake_cmd_kv("channel:slack:C1"));
}

Test(incident_commands, refuses_an_unclosed_quote_with_the_text)
{
	refused("C1", "declare", "\"db down --sev 1",
		"unclosed \" in: \"db down --sev 1");
	refused("C1", "update", "INC-1 it's fine", "unclosed ' in:");
	refused("C1", "declare", "\"db down", "Usage: `/incident declare");
}

/* --- transitions ---------------------------------------------------------- */

Test(incident_commands, acks_by_id_from_any_channel)
{
	ok("C1", "declare", "db down");
	json_t *r = run("C2", "ack", "INC-1");
	cr_assert_eq(rc_of(r), 0, "%s", text_of(r));
	cr_expect_str_eq(vis(r), "in_channel");
	expect_text(r, "INC-1: db down** acknowledged by Ada.");
	json_decref(r);
	expect_stored("INC-1", "status", "acknowledged");
	const json_t *a = fake_cmd_last_args();
	cr_expect_str_eq(json_string_value(json_object_get(a, "verb")),
			 "acknowledge");
}

Test(incident_commands, accepts_lowercase_and_bare_number_ids)
{
	ok("C1", "declare", "db down");
	ok("C9", "ack", "inc-1");
	ok("C9", "mitigate", "1");
	expect_stored("INC-1", "status", "mitigated");
}

Test(incident_commands, acks_and_resolves_the_channels_incident)
{
	ok("C1", "declare", "db down");
	ok("C2", "declare", "cache cold");
	ok("C1", "ack", "");
	json_t *r = run("C1", "resolve", "rolled back to v41");
	cr_assert_eq(rc_of(r), 0, "%s", text_of(r));
	expect_text(r, "resolved by Ada: rolled back to v41");
	json_decref(r);
	expect_stored("INC-1", "status", "resolved");
	expect_stored("INC-2", "status", "open");
	cr_expect_str_eq(json_string_value(
			     json_object_get(fake_cmd_last_args(), "note")),
			 "rolled back to v41");
}

Test(incident_commands, asks_which_incident_without_id_or_binding)
{
	refused("C7", "ack", "", "Which incident? Name it (e.g. `INC-7`)");
	refused("C7", "status", "", "Usage: `/incident status [INC-n]`");
	refused("C7", "resolve", "INC-x fixed",
		"`INC-x` is not an incident id");
	ok("C1", "declare", "db down");
	refused("C1", "resolve", "inc-0 fixed", "`inc-0` is not an incident id");
}

Test(incident_commands, relays_an_unknown_id)
{
	json_t *r = run("C1", "ack", "INC-99");
	cr_expect_neq(rc_of(r), 0);
	cr_expect_str_eq(vis(r), "ephemeral");
	expect_text(r, "Could not ack INC-99: no incident INC-99");
	expect_text(r, "`/incident list` shows the open incidents");
	json_decref(r);
}

Test(incident_commands, relays_an_illegal_transition_with_next_states)
{
	ok("C1", "declare", "db down");
	json_t *r = run("C1", "close", "INC-1");
	cr_expect_eq(rc_of(r), IM_ECONFLICT);
	cr_expect_str_eq(vis(r), "ephemeral");
	expect_text(r, "INC-1 is open and cannot become closed; from open it "
		       "can go to: acknowledged, resolved, canceled, "
		       "duplicate");
	json_decref(r);
}

Test(incident_commands, relays_a_canned_404_answer)
{
	json_t *e = json_pack("{s:{s:i,s:s,s:s}}", "error", "status", 404,
			      "code", "not_found", "message",
			      "no incident INC-5");
	fake_cmd_canned(e, IM_ENOTFOUND);
	json_decref(e);
	json_t *r = run("C1", "status", "INC-5");
	cr_expect_eq(rc_of(r), IM_ENOTFOUND);
	expect_text(r, "Could not look up INC-5: no incident INC-5");
	json_decref(r);
}

Test(incident_commands, says_so_when_the_host_gives_no_reason)
{
	fake_cmd_canned(NULL, 0);
	json_t *e = json_object();
	fake_cmd_canned(e, IM_EIO);
	json_decref(e);
	json_t *r = run("C1", "ack", "INC-1");
	cr_expect_eq(rc_of(r), IM_EIO);
	expect_text(r, "Could not ack INC-1: the server did not say why");
	json_decref(r);
}

Test(incident_commands, refuses_extra_words_after_a_bare_transition)
{
	ok("C1", "declare", "db down");
	refused("C1", "ack", "INC-1 on it", "takes only an incident id, not "
					    "`on`");
}

Test(incident_commands, close_releases_the_channel)
{
	ok("C1", "declare", "db down");
	ok("C1", "resolve", "");
	json_t *r = run("C1", "close", "");
	cr_assert_eq(rc_of(r), 0, "%s", text_of(r));
	expect_text(r, "This channel no longer follows INC-1");
	json_decref(r);
	cr_expect_null(fake_cmd_kv("channel:slack:C1"));
}

/* --- buttons ---------------------------------------------------------------- */

Test(incident_commands, ack_button_acks_the_incident_in_its_value)
{
	ok("C1", "declare", "db down");
	json_t *r = press("C2", "im_ack", "INC-1");
	cr_assert_eq(rc_of(r), 0, "%s", text_of(r));
	expect_text(r, "acknowledged by Ada");
	json_decref(r);
	expect_stored("INC-1", "status", "acknowledged");
	r = press("C2", "im_resolve", "INC-1");
	cr_expect_eq(rc_of(r), 0, "%s", text_of(r));
	json_decref(r);
	expect_stored("INC-1", "status", "resolved");
}

Test(incident_commands, raise_button_raises_one_level)
{
	ok("C1", "declare", "db down --sev SEV-3");
	json_t *r = press("C1", "im_sev_up", "INC-1");
	cr_assert_eq(rc_of(r), 0, "%s", text_of(r));
	cr_expect_str_eq(vis(r), "in_channel");
	expect_text(r, "raised to SEV-2 (major) by Ada (was SEV-3)");
	json_decref(r);
	expect_stored("INC-1", "severity", "SEV-2");
}

Test(incident_commands, raise_at_sev1_stays_and_says_so)
{
	ok("C1", "declare", "db down --sev SEV-1");
	size_t before = n_calls();
	json_t *r = run("C1", "raise", "");
	cr_expect_eq(rc_of(r), 0);
	cr_expect_str_eq(vis(r), "ephemeral");
	expect_text(r, "INC-1 is already SEV-1 (critical), the highest");
	json_decref(r);
	cr_expect_eq(n_calls(), before + 1, "only the lookup ran");
	expect_stored("INC-1", "severity", "SEV-1");
}

/* --- sev, assign, update ------------------------------------------------------ */

Test(incident_commands, sev_sets_by_id_or_binding)
{
	ok("C1", "declare", "db down");
	json_t *r = run("C2", "sev", "INC-1 SEV-1");
	cr_assert_eq(rc_of(r), 0, "%s", text_of(r));
	expect_text(r, "set to SEV-1 (critical) by Ada (was SEV-3)");
	json_decref(r);
	ok("C1", "sev", "2");
	expect_stored("INC-1", "severity", "SEV-2");
	r = run("C1", "sev", "sev2");
	cr_expect_eq(rc_of(r), 0);
	cr_expect_str_eq(vis(r), "ephemeral");
	expect_text(r, "INC-1 is already SEV-2 (major); nothing changed");
	json_decref(r);
}

Test(incident_commands, sev_names_the_valid_values)
{
	ok("C1", "declare", "db down");
	refused("C1", "sev", "INC-1 SEV-7",
		"`SEV-7` is not a severity; use SEV-1 (critical)");
	refused("C1", "sev", "", "Which severity? use SEV-1");
	refused("C1", "sev", "INC-1 2 3", "takes one severity");
}

Test(incident_commands, assigns_a_mention_in_both_styles)
{
	ok("C1", "declare", "db down");
	json_t *r = run("C1", "assign", "@U1");
	cr_assert_eq(rc_of(r), 0, "%s", text_of(r));
	cr_expect_str_eq(vis(r), "in_channel");
	expect_text(r, "is now led by @U1 (assigned by Ada)");
	json_decref(r);
	expect_stored("INC-1", "commander", "@U1");
	r = run("C2", "assign", "INC-1 <@U1>");
	cr_expect_eq(rc_of(r), 0);
	expect_text(r, "@U1 already leads INC-1");
	json_decref(r);
	ok("C1", "assign", "<@U2|bob>");
	expect_stored("INC-1", "commander", "@U2");
	ok("C1", "assign", "Grace Hopper");
	expect_stored("INC-1", "commander", "Grace Hopper");
}

Test(incident_commands, assign_without_a_person_asks_for_one)
{
	ok("C1", "declare", "db down");
	refused("C1", "assign", "", "Who should lead INC-1? Mention them");
	refused("C1", "assign", "INC-1", "Who should lead INC-1?");
	refused("C1", "assign", "<#C1>", "is a channel or a group, not a "
					 "person");
	refused("C1", "assign", "@a @b", "One commander at a time");
}

Test(incident_commands, update_adds_a_timeline_note)
{
	ok("C1", "declare", "db down");
	json_t *r = run("C1", "update", "failover to \"eu-west\" started");
	cr_assert_eq(rc_of(r), 0, "%s", text_of(r));
	cr_expect_str_eq(vis(r), "in_channel");
	expect_text(r, "**INC-1** update from Ada: failover to eu-west "
		       "started");
	json_decref(r);
	const json_t *a = fake_cmd_last_args();
	cr_expect_str_eq(json_string_value(json_object_get(a, "text")),
			 "failover to eu-west started");
	cr_expect_str_eq(json_string_value(json_object_get(a, "id")), "INC-1");
	refused("C1", "update", "INC-1", "What is the update?");
}

/* --- status and list -------------------------------------------------------- */

Test(incident_commands, status_shows_fields_and_the_buttons_that_apply)
{
	ok("C1", "declare", "db down --service db");
	ok("C1", "ack", "");
	json_t *r = run("C1", "status", "");
	cr_assert_eq(rc_of(r), 0, "%s", text_of(r));
	cr_expect_str_eq(vis(r), "ephemeral");
	expect_text(r, "**INC-1: db down**");
	cr_expect_str_eq(field(r, "Status"), "acknowledged");
	cr_expect_str_eq(field(r, "Service"), "db");
	cr_expect_not(fake_reply_has_action(r, "im_ack", "INC-1"));
	cr_expect(fake_reply_has_action(r, "im_resolve", "INC-1"));
	cr_expect(fake_reply_has_action(r, "im_sev_up", "INC-1"));
	json_decref(r);
	ok("C1", "resolve", "");
	r = run("C1", "status", "INC-1");
	cr_expect_eq(fake_reply_n_actions(r), 0);
	json_decref(r);
}

Test(incident_commands, list_shows_only_open_incidents)
{
	json_t *r = run("C1", "list", "");
	cr_expect_eq(rc_of(r), 0);
	expect_text(r, "No open incidents.");
	json_decref(r);
	ok("C1", "declare", "db down --sev SEV-1 --service db");
	ok("C2", "declare", "cache cold");
	ok("C3", "declare", "typo on status page");
	ok("C3", "resolve", "");
	ok("C2", "ack", "");
	r = run("C4", "list", "");
	cr_assert_eq(rc_of(r), 0, "%s", text_of(r));
	cr_expect_str_eq(vis(r), "ephemeral");
	expect_text(r, "**Open incidents** (2):");
	expect_text(r, "**INC-1** SEV-1 · open · db down · db");
	expect_text(r, "**INC-2** SEV-3 · acknowledged · cache cold");
	cr_expect_null(strstr(text_of(r), "INC-3"), "%s", text_of(r));
	json_decref(r);
	cr_expect_str_eq(json_string_value(json_object_get(
			     fake_cmd_last_args(), "status")),
			 "open,acknowledged,mitigated");
	r = run("C4", "list", "--service db");
	expect_text(r, "(1)");
	json_decref(r);
	refused("C4", "list", "everything", "`list` shows the open incidents");
}

/* --- configuration and threads ------------------------------------------------ */

Test(incident_commands, without_channel_binding_needs_an_id)
{
	fake_cmd_stop();
	fake_cmd_start("{\"channel_binding\": false}");
	json_t *r = run("C1", "declare", "db down");
	cr_expect_eq(rc_of(r), 0);
	cr_expect_null(strstr(text_of(r), "follows"), "%s", text_of(r));
	json_decref(r);
	cr_expect_null(fake_cmd_kv("channel:slack:C1"));
	refused("C1", "ack", "", "Which incident? Name it (e.g. `INC-7`).");
}

#define THREADS 8

static void *declare_and_ack(void *arg)
{
	char channel[16];
	snprintf(channel, sizeof(channel), "C%d", (int)(intptr_t)arg);
	json_t *r = run(channel, "declare", "\"parallel\" --sev SEV-2");
	int failed = rc_of(r) != 0;
	json_decref(r);
	r = run(channel, "ack", "");
	failed |= rc_of(r) != 0;
	json_decref(r);
	return (void *)(intptr_t)failed;
}

Test(incident_commands, serves_many_threads_at_once)
{
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, declare_and_ack,
					    (void *)(intptr_t)i),
			     0);
	for (int i = 0; i < THREADS; i++) {
		void *failed = NULL;
		pthread_join(t[i], &failed);
		cr_expect_null(failed, "thread %d failed", i);
	}
	for (int i = 1; i <= THREADS; i++) {
		char id[16];
		snprintf(id, sizeof(id), "INC-%d", i);
		expect_stored(id, "status", "acknowledged");
	}
}
