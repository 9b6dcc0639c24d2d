/* The Discord connector end to end: the real `im serve` with discord.so,
 * incident-commands and the templates, against the fake Discord of
 * tests/fakes (its Ed25519 key signs the interactions, its REST API
 * plays Discord's buckets and errors). Interactions (PING, /incident,
 * buttons, late results), every bad request, notifications (nonce,
 * mentions, threads, limits, errors, a revoked token), sync-commands and
 * status. The Gateway has its own file (test_discord_gateway.c). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "../fakes/fake_discord.h"
#include "harness.h"

static srv s;
static fd *f;
static char *out, *err;
static char url[128];

static void setup(void)
{
	f = fd_start(NULL);
	cr_assert(f, "fake Discord did not start");
	srv_init(&s);
	snprintf(url, sizeof url, "http://127.0.0.1:%u/hooks/discord/interactions",
		 s.port);
	out = err = NULL;
}

static void teardown(void)
{
	free(out);
	free(err);
	srv_cleanup(&s);
	fd_stop(f);
}

TestSuite(discord, .init = setup, .fini = teardown, .timeout = 120);

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* discord.so pointed at the fake; `extra` is more top-level YAML. */
static void config(const char *keys, const char *extra)
{
	srv_conf(&s, "10-discord.yaml",
		 "chatops:\n  batch_window: 0s\n"
		 "plugins:\n  instances:\n"
		 "    - {id: mustache, module: mustache}\n"
		 "    - {id: incident, module: incident-commands}\n"
		 "    - id: discord\n      module: discord\n      config:\n"
		 "        application_id: \"%s\"\n        public_key: %s\n"
		 "        bot_token: %s\n        api_base_url: %s\n"
		 "        gateway: false\n        timeout: 2s\n"
		 "        guild_ids: [\"%s\"]\n%s%s",
		 fd_app_id(f), fd_public_key_hex(f), FD_BOT_TOKEN, fd_api_url(f),
		 FD_GUILD_ID, keys ? keys : "", extra ? extra : "");
}

static void start(const char *keys, const char *extra)
{
	config(keys, extra);
	srv_must_start(&s);
}

static int run(const char *const *args)
{
	free(out);
	free(err);
	return cli(&s, &out, &err, args);
}

static json_t *get(const char *path)
{
	reply r = http(&s, false, "GET", path, NULL, 0, NULL);
	json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
	reply_free(&r);
	return j;
}

/* Posts an interaction signed as `kind`; the answer's JSON in *answer. */
static int interact(int type, const char *data, const fd_inter *more,
		    fd_sig kind, json_t **answer)
{
	char *body = fd_interaction(f, type, data, more, NULL, NULL);
	cr_assert(body);
	char *resp = NULL;
	int st = fd_post_interaction(f, url, body, strlen(body), kind, &resp);
	if (answer)
		*answer = resp ? json_loads(resp, 0, NULL) : NULL;
	free(resp);
	free(body);
	return st;
}

static const char *DECLARE =
    "{\"id\":\"1400000000000000001\",\"name\":\"incident\",\"type\":1,"
    "\"options\":[{\"type\":1,\"name\":\"declare\",\"options\":["
    "{\"type\":3,\"name\":\"title\",\"value\":\"Payments down\"},"
    "{\"type\":3,\"name\":\"sev\",\"value\":\"SEV-1\"}]}]}";

static char *timeline(const char *id)
{
	char path[80];
	snprintf(path, sizeof path, "/api/v1/incidents/%s/timeline", id);
	json_t *j = get(path);
	char *txt = j ? json_dumps(j, JSON_COMPACT) : strdup("(none)");
	json_decref(j);
	return txt;
}

static json_t *incident(const char *id)
{
	char path[64];
	snprintf(path, sizeof path, "/api/v1/incidents/%s", id);
	return get(path);
}

/* The content of a type 4/7 answer, or of the @original edit after 5/6. */
static char *result_text(const json_t *answer)
{
	int type = (int)json_integer_value(json_object_get(answer, "type"));
	if (type == 4 || type == 7)
		return strdup(sfield(json_object_get(answer, "data"), "content"));
	for (int i = 0; i < 100; i++) {
		json_t *msgs = fd_messages(f);
		size_t k;
		json_t *m;
		json_array_foreach(msgs, k, m)
		{
			if (strcmp(sfield(m, "op"), "original"))
				continue;
			char *t = strdup(sfield(json_object_get(m, "json"),
						"content"));
			json_decref(msgs);
			return t;
		}
		json_decref(msgs);
		sleep_s(0.05);
	}
	return strdup("(no result)");
}

Test(discord, answers_ping_and_declares_by_slash_command)
{
	start(NULL, NULL);
	json_t *a = NULL;
	cr_expect_eq(interact(1, NULL, NULL, FD_SIG_VALID, &a), 200);
	cr_expect_eq(json_integer_value(json_object_get(a, "type")), 1);
	json_decref(a);
	cr_assert_eq(interact(2, DECLARE, NULL, FD_SIG_VALID, &a), 200);
	int type = (int)json_integer_value(json_object_get(a, "type"));
	cr_expect(type == 4 || type == 5, "type %d", type);
	char *text = result_text(a);
	cr_expect(strstr(text, "INC-1"), "%s", text);
	free(text);
	json_decref(a);
	json_t *inc = incident("INC-1");
	cr_assert(inc, "INC-1 was not declared");
	cr_expect_str_eq(sfield(inc, "title"), "Payments down");
	cr_expect_str_eq(sfield(inc, "severity"), "SEV-1");
	json_decref(inc);
	char *tl = timeline("INC-1");
	cr_expect(strstr(tl, "alice"), "the actor is the Discord user: %s", tl);
	free(tl);
}

Test(discord, a_button_runs_its_verb_as_the_presser_and_updates_the_message)
{
	start(NULL, NULL);
	cr_assert_eq(interact(2, DECLARE, NULL, FD_SIG_VALID, NULL), 200);
	fd_inter bob = {.user_id = "2100000000000000002", .user_name = "bob",
			.message_id = "1500000000000000001"};
	json_t *a = NULL;
	cr_assert_eq(interact(3, "{\"custom_id\":\"im_ack:INC-1\","
				 "\"component_type\":2}",
			      &bob, FD_SIG_VALID, &a),
		     200);
	int type = (int)json_integer_value(json_object_get(a, "type"));
	cr_expect(type == 7 || type == 6, "a button updates its message: %d",
		  type);
	json_decref(a);
	json_t *inc = NULL;
	for (int i = 0; i < 100; i++) {
		json_decref(inc);
		inc = incident("INC-1");
		if (!strcmp(sfield(inc, "status"), "acknowledged"))
			break;
		sleep_s(0.05);
	}
	cr_expect_str_eq(sfield(inc, "status"), "acknowledged");
	json_decref(inc);
	char *tl = timeline("INC-1");
	cr_expect(strstr(tl, "bob"), "%s", tl);
	free(tl);
	/* An illegal transition is refused, ephemerally, card untouched. */
	cr_assert_eq(interact(3, "{\"custom_id\":\"im_ack:INC-1\","
				 "\"component_type\":2}",
			      &bob, FD_SIG_VALID, &a),
		     200);
	cr_expect_eq(json_integer_value(json_object_get(a, "type")), 4);
	cr_expect_eq(json_integer_value(json_object_get(
			 json_object_get(a, "data"), "flags")),
		     64);
	json_decref(a);
}

Test(discord, refuses_forged_stale_replayed_and_foreign_interactions)
{
	start(NULL, NULL);
	static const fd_sig bad[] = {FD_SIG_FORGED, FD_SIG_TAMPERED,
				     FD_SIG_STALE, FD_SIG_MISSING,
				     FD_SIG_GARBAGE};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_expect_eq(interact(2, DECLARE, NULL, bad[i], NULL), 401,
			     "signature kind %zu", i);
	/* A replay: the very same signed request twice. */
	char *body = fd_interaction(f, 2, DECLARE, NULL, NULL, NULL);
	cr_expect_eq(fd_post_interaction(f, url, body, strlen(body),
					 FD_SIG_VALID, NULL),
		     200);
	cr_expect_eq(fd_post_interaction(f, url, body, strlen(body),
					 FD_SIG_VALID, NULL),
		     401, "a replayed interaction is refused");
	free(body);
	/* Another application's interaction, validly signed. */
	fd_inter other = {.application_id = "1100000000000000999"};
	cr_expect_eq(interact(2, DECLARE, &other, FD_SIG_VALID, NULL), 401);
	/* Exactly one incident: the one accepted request. */
	json_t *list = get("/api/v1/incidents");
	cr_expect_eq(json_array_size(json_object_get(list, "items")), 1);
	json_decref(list);
	char *log = srv_log(&s);
	cr_expect(strstr(log, "does not match"), "reasons are logged");
	cr_expect(strstr(log, "replayed"));
	cr_expect(strstr(log, "stale"));
	free(log);
}

Test(discord, bad_bodies_get_400_or_413_with_the_reason)
{
	start(NULL, NULL);
	const char *bodies[] = {"{not json", "{\"id\":\"1\",\"type\":99,"
					     "\"application_id\":\"%s\"}"};
	char body[256], ts[24], sig[130];
	snprintf(body, sizeof body, "%s", bodies[0]);
	fd_sign(f, body, strlen(body), FD_SIG_VALID, ts, sig);
	char *resp = NULL;
	cr_expect_eq(fd_post_interaction(f, url, body, strlen(body),
					 FD_SIG_VALID, &resp),
		     400);
	cr_expect(resp && strstr(resp, "malformed JSON"), "%s", resp);
	free(resp);
	snprintf(body, sizeof body,
		 "{\"id\":\"1600000000000000001\",\"type\":99,"
		 "\"application_id\":\"%s\"}",
		 fd_app_id(f));
	resp = NULL;
	cr_expect_eq(fd_post_interaction(f, url, body, strlen(body),
					 FD_SIG_VALID, &resp),
		     400);
	cr_expect(resp && strstr(resp, "unknown interaction type 99"), "%s",
		  resp);
	free(resp);
	size_t big = 2u << 20;
	char *huge = malloc(big + 1);
	memset(huge, 'a', big);
	huge[big] = '\0';
	const char *hdrs[] = {"Content-Type: application/json",
			      "Expect: 100-continue", NULL};
	reply r = http(&s, false, "POST", "/hooks/discord/interactions", huge,
		       big, hdrs);
	cr_expect_eq(r.status, 413);
	reply_free(&r);
	free(huge);
}

Test(discord, a_slow_result_defers_then_edits_the_original)
{
	/* The test connector's `sleep` verb takes longer than the budget, so
	 * the answer always defers (a real verb could beat a tiny budget). */
	srv_conf(&s, "20-slow.yaml", "chatops:\n  command_budget: 100ms\n"
				     "plugins:\n  instances:\n"
				     "    - {id: tc, module: testconn}\n");
	start(NULL, NULL);
	json_t *a = NULL;
	cr_assert_eq(interact(2,
			      "{\"name\":\"incident\",\"options\":[{\"type\":1,"
			      "\"name\":\"sleep\",\"options\":[{\"type\":3,"
			      "\"name\":\"ms\",\"value\":\"400\"}]}]}",
			      NULL, FD_SIG_VALID, &a),
		     200);
	cr_expect_eq(json_integer_value(json_object_get(a, "type")), 5);
	char *text = result_text(a);
	cr_expect_str_eq(text, "slept 400 ms", "@original edited");
	free(text);
	json_decref(a);
	json_t *reqs = fd_requests(f);
	size_t i;
	json_t *q;
	bool patched = false;
	json_array_foreach(reqs, i, q) if (!strcmp(sfield(q, "method"), "PATCH") &&
					   strstr(sfield(q, "path"), "@original"))
	{
		patched = true;
		cr_expect(json_is_true(json_object_get(q, "allowed_mentions_none")));
		cr_expect_not(json_is_true(json_object_get(q, "auth")),
			      "webhooks take no bot token");
	}
	cr_expect(patched);
	json_decref(reqs);
}

/* --- notifications ---------------------------------------------------------- */

static const char *SUB = "subscriptions:\n  - {connector: discord, channel: "
			 "\"" FD_CHANNEL_ID "\", mode: %s}\n";

static void start_subscribed(const char *mode)
{
	char extra[256];
	snprintf(extra, sizeof extra, SUB, mode);
	start(NULL, extra);
}

static long declare_api(const char *title)
{
	char body[256];
	snprintf(body, sizeof body, "{\"title\":\"%s\",\"severity\":\"SEV-2\"}",
		 title);
	const char *hdrs[] = {"Content-Type: application/json", NULL};
	reply r = http(&s, false, "POST", "/api/v1/incidents", body,
		       strlen(body), hdrs);
	long st = r.status;
	reply_free(&r);
	return st;
}

static long transition(const char *id, const char *verb)
{
	char path[128];
	snprintf(path, sizeof path, "/api/v1/incidents/%s/%s", id, verb);
	const char *hdrs[] = {"Content-Type: application/json", NULL};
	reply r = http(&s, false, "POST", path, "{}", 2, hdrs);
	long st = r.status;
	reply_free(&r);
	return st;
}

Test(discord, notifications_carry_a_nonce_and_never_mention_anyone)
{
	start_subscribed("update");
	cr_assert_eq(declare_api("@everyone DB on fire"), 201);
	cr_assert(fd_wait_messages(f, 1, 10000), "no message posted");
	cr_assert_eq(transition("INC-1", "ack"), 200);
	cr_assert(fd_wait_messages(f, 2, 10000), "no edit");
	json_t *msgs = fd_messages(f);
	json_t *m0 = json_array_get(msgs, 0), *m1 = json_array_get(msgs, 1);
	cr_expect_str_eq(sfield(m0, "op"), "post");
	cr_expect_str_eq(sfield(m0, "channel"), FD_CHANNEL_ID);
	json_t *body = json_object_get(m0, "json");
	cr_expect(json_array_size(json_object_get(body, "embeds")) >= 1);
	cr_expect(json_is_true(json_object_get(body, "enforce_nonce")));
	cr_expect(strlen(sfield(body, "nonce")) > 0 &&
		  strlen(sfield(body, "nonce")) <= 25);
	char *txt = json_dumps(body, JSON_COMPACT);
	cr_expect_null(strstr(txt, "@everyone DB"), "the mention is defused");
	free(txt);
	cr_expect_str_eq(sfield(m1, "op"), "edit", "ack edits the message");
	cr_expect_str_eq(sfield(m1, "id"), sfield(m0, "id"));
	json_decref(msgs);
	json_t *reqs = fd_requests(f);
	size_t i;
	json_t *q;
	json_array_foreach(reqs, i, q) if (strstr(sfield(q, "path"), "/messages"))
	{
		cr_expect(json_is_true(json_object_get(q, "allowed_mentions_none")),
			  "%s %s", sfield(q, "method"), sfield(q, "path"));
		cr_expect(!strncmp(sfield(q, "user_agent"), "DiscordBot (", 12));
	}
	json_decref(reqs);
	json_t *st = fd_stats(f);
	cr_expect_eq(json_integer_value(json_object_get(st, "duplicates")), 0);
	json_decref(st);
}

Test(discord, thread_mode_opens_a_thread_on_the_first_message)
{
	start_subscribed("thread");
	cr_assert_eq(declare_api("Checkout slow"), 201);
	cr_assert(fd_wait_messages(f, 2, 10000), "post + thread");
	cr_assert_eq(transition("INC-1", "ack"), 200);
	cr_assert(fd_wait_messages(f, 3, 10000));
	json_t *msgs = fd_messages(f);
	const char *thread = NULL;
	size_t i;
	json_t *m;
	json_array_foreach(msgs, i, m) if (!strcmp(sfield(m, "op"), "thread"))
	    thread = sfield(m, "id");
	cr_assert(thread, "a thread was opened");
	json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
	cr_expect_str_eq(sfield(last, "op"), "post");
	cr_expect_str_eq(sfield(last, "channel"), thread,
			 "the ack is posted in the thread");
	json_decref(msgs);
}

Test(discord, many_notifications_keep_to_the_buckets_without_a_429)
{
	fd_set_limits(f, 2, 1000, 50);
	start_subscribed("post");
	for (int i = 0; i < 8; i++) {
		char t[32];
		snprintf(t, sizeof t, "incident %d", i);
		cr_assert_eq(declare_api(t), 201);
	}
	cr_assert(fd_wait_messages(f, 8, 30000), "all 8 delivered");
	json_t *st = fd_stats(f);
	cr_expect_eq(json_integer_value(json_object_get(st, "rate_limited")), 0,
		     "the buckets' headers were honoured");
	cr_expect_eq(json_integer_value(json_object_get(st, "duplicates")), 0);
	json_decref(st);
}

Test(discord, missing_permissions_become_a_dead_letter_with_the_fix)
{
	fd_fail(f, FD_CHANNEL_ID, -1, 403, 50013, 0, NULL);
	start_subscribed("post");
	cr_assert_eq(declare_api("no perms"), 201);
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(run(ARGS("chatops", "outbox", "list", "--dead")), 0);
		if (strstr(out, "Send Messages"))
			break;
		sleep_s(0.1);
	}
	cr_expect(strstr(out, "Send Messages"), "%s", out);
	cr_expect(strstr(out, "Missing Permissions"), "%s", out);
	run(ARGS("connector", "discord", "status"));
	cr_expect(strstr(out, FD_CHANNEL_ID), "status names the channel: %s",
		  out);
}

Test(discord, a_revoked_token_stops_sends_and_loses_nothing)
{
	start_subscribed("post");
	fd_revoke_token(f);
	cr_assert_eq(declare_api("token gone"), 201);
	json_int_t auth_failures = 0;
	for (int i = 0; i < 200 && !auth_failures; i++) {
		json_t *st = fd_stats(f);
		auth_failures =
		    json_integer_value(json_object_get(st, "auth_failures"));
		json_decref(st);
		sleep_s(0.05);
	}
	/* The pipeline retries meanwhile; the token is not used again. */
	sleep_s(1.5);
	json_t *st = fd_stats(f);
	auth_failures = json_integer_value(json_object_get(st, "auth_failures"));
	cr_expect_eq(auth_failures, 1, "one 401, then the token rests");
	json_decref(st);
	cr_assert_eq(run(ARGS("chatops", "outbox", "list")), 0);
	cr_expect(strstr(out, "INC-1") || strstr(out, "declare"),
		  "the notification waits in the outbox: %s", out);
	cr_expect_neq(run(ARGS("connector", "discord", "status")), 0);
	cr_expect(strstr(out, "401"), "%s", out);
	reply r = http(&s, false, "GET", "/health", NULL, 0, NULL);
	cr_expect_eq(r.status, 200);
	reply_free(&r);
	r = http(&s, true, "GET", "/metrics", NULL, 0, NULL);
	cr_expect(r.body && strstr(r.body, "discord_invalid_requests{instance="
					   "\"discord\"} 1"),
		  "the metric counts the 401");
	reply_free(&r);
}

/* --- sync-commands and status ------------------------------------------------ */

Test(discord, sync_commands_writes_only_when_something_differs)
{
	start(NULL, NULL);
	cr_assert_eq(run(ARGS("connector", "discord", "sync-commands")), 0,
		     "%s%s", out, err);
	cr_expect(strstr(out, "/incident created"), "%s", out);
	cr_expect(strstr(out, "appear at once"), "%s", out);
	json_t *cmds = fd_commands(f, FD_GUILD_ID);
	json_t *inc = json_array_get(cmds, 0);
	cr_expect_str_eq(sfield(inc, "name"), "incident");
	cr_expect(json_array_size(json_object_get(inc, "options")) >= 10,
		  "a subcommand per verb");
	json_decref(cmds);
	cr_assert_eq(run(ARGS("connector", "discord", "sync-commands")), 0);
	cr_expect(strstr(out, "/incident unchanged"), "%s", out);
	cr_expect(strstr(out, "nothing to change"), "%s", out);
	json_t *st = fd_stats(f);
	cr_expect_eq(json_integer_value(json_object_get(st, "command_puts")), 1,
		     "the second run wrote nothing");
	json_decref(st);
	cr_assert_eq(run(ARGS("connector", "discord", "sync-commands",
			      "--global", "--dry-run")),
		     0);
	cr_expect(strstr(out, "global: /incident created"), "%s", out);
	cr_expect(strstr(out, "dry run"), "%s", out);
	fd_set_commands_scope(f, "global", false);
	cr_expect_neq(run(ARGS("connector", "discord", "sync-commands",
			       "--global")),
		      0);
	cr_expect(strstr(out, "applications.commands"), "%s", out);
	cr_expect_neq(run(ARGS("connector", "discord", "sync-commands",
			       "--guild", "not-a-number")),
		      0);
}

Test(discord, status_names_the_bot_the_guild_and_the_command_state)
{
	start("        default_channel: \"" FD_CHANNEL_ID "\"\n", NULL);
	cr_expect_neq(run(ARGS("connector", "discord", "status")), 0,
		      "unhealthy until /incident is registered");
	cr_expect(strstr(out, "out of date"), "%s", out);
	cr_assert_eq(run(ARGS("connector", "discord", "sync-commands")), 0);
	cr_expect_eq(run(ARGS("connector", "discord", "status")), 0, "%s%s",
		     out, err);
	cr_expect(strstr(out, "im-bot"), "%s", out);
	cr_expect(strstr(out, "in sync"), "%s", out);
	cr_expect(strstr(out, "healthy"), "%s", out);
	cr_expect_eq(run(ARGS("chatops", "discord", "list-channels")), 0, "%s",
		     err);
	cr_expect(strstr(out, FD_CHANNEL_ID) && strstr(out, "incidents"), "%s",
		  out);
	cr_expect_eq(run(ARGS("chatops", "test", "discord")), 0, "%s", out);
	cr_expect_eq(run(ARGS("chatops", "notify", "discord", "INC-1")), 1,
		     "no such incident");
	cr_assert_eq(declare_api("notify me"), 201);
	cr_expect_eq(run(ARGS("chatops", "notify", "discord", "INC-1")), 0,
		     "%s%s", out, err);
	cr_expect(fd_wait_messages(f, 1, 5000));
}
