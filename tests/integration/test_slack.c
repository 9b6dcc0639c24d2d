/* The Slack connector in HTTP mode, end to end: the real `im serve` with
 * slack.so pointed at the fake Slack (tests/fakes/fake_slack.c), signed
 * requests on its hooks, the CLI against the admin API, and deliveries
 * through send() and the notification pipeline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "slack_util.h"

#define FORM "application/x-www-form-urlencoded"

static void up(void)
{
	slack_start("        default_channel: C0GENERAL\n", "");
}

TestSuite(slack_http, .init = up, .fini = slack_stop, .timeout = 60);

/* --- signatures and request kinds ---------------------------------------- */

Test(slack_http, accepts_a_validly_signed_request)
{
	reply r = slack_command("help", "h");
	cr_expect_eq(r.status, 200, "%ld %s", r.status, r.body);
	cr_expect(strstr(r.body, "Usage"), "%s", r.body);
	reply_free(&r);
}

Test(slack_http, refuses_missing_invalid_and_stale_signatures)
{
	const char *body = "command=%2Fincident&text=help&user_id=U1";
	reply r = slack_post("commands", FORM, body, NULL, 0, NULL);
	cr_expect_eq(r.status, 401);
	cr_expect(strstr(r.body, "missing"), "%s", r.body);
	reply_free(&r);
	r = slack_post("commands", FORM, body, "not-the-secret", 0, NULL);
	cr_expect_eq(r.status, 401);
	cr_expect(strstr(r.body, "invalid"), "%s", r.body);
	reply_free(&r);
	r = slack_post("commands", FORM, body, SLACK_SECRET, -400, NULL);
	cr_expect_eq(r.status, 401);
	cr_expect(strstr(r.body, "stale"), "%s", r.body);
	reply_free(&r);
	r = slack_post("events", "application/json", "{\"type\":\"x\"}",
		       SLACK_SECRET, 400, NULL);
	cr_expect_eq(r.status, 401, "a timestamp from the future is stale too");
	reply_free(&r);
}

Test(slack_http, answers_url_verification_with_the_challenge)
{
	reply r = slack_post("events", "application/json",
			     "{\"token\":\"t\",\"challenge\":\"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P\",\"type\":\"url_verification\"}",
			     SLACK_SECRET, 0, NULL);
	cr_expect_eq(r.status, 200);
	json_t *j = slack_json(&r);
	cr_expect_str_eq(json_string_value(json_object_get(j, "challenge")),
			 "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
	json_decref(j);
	reply_free(&r);
}

Test(slack_http, handles_a_retried_event_once)
{
	const char *ev = "{\"type\":\"event_callback\",\"team_id\":\"T0ACME\","
			 "\"event_id\":\"Ev0RETRY1\",\"event_time\":1,"
			 "\"event\":{\"type\":\"app_mention\",\"text\":\"hi\"}}";
	reply r = slack_post("events", "application/json", ev, SLACK_SECRET,
			     0, NULL);
	cr_expect_eq(r.status, 200);
	reply_free(&r);
	r = slack_post("events", "application/json", ev, SLACK_SECRET, 0,
		       "X-Slack-Retry-Num: 1");
	cr_expect_eq(r.status, 200, "a retry is acknowledged");
	reply_free(&r);
	r = slack_post("events", "application/json", ev, SLACK_SECRET, 0,
		       "X-Slack-Retry-Num: 2");
	reply_free(&r);
	char *log = srv_log(&slack_srv);
	cr_expect(strstr(log, "event Ev0RETRY1: app_mention"), "%s", log);
	const char *first = strstr(log, "event Ev0RETRY1: app_mention");
	cr_expect_null(first ? strstr(first + 1, "event Ev0RETRY1: app_mention")
			     : NULL,
		       "processed twice");
	cr_expect(strstr(log, "event Ev0RETRY1 already handled (retry 1"));
	free(log);
}

Test(slack_http, answers_ssl_check_and_ignores_unknown_kinds)
{
	reply r = slack_post("commands", FORM, "ssl_check=1&token=x",
			     SLACK_SECRET, 0, NULL);
	cr_expect_eq(r.status, 200);
	reply_free(&r);
	r = slack_post("events", "application/json",
		       "{\"type\":\"something_new\"}", SLACK_SECRET, 0, NULL);
	cr_expect_eq(r.status, 200, "unknown event payloads are acked");
	reply_free(&r);
	char *p = slack_escape("{\"type\":\"view_closed\",\"view\":{}}");
	char body[256];
	snprintf(body, sizeof(body), "payload=%s", p);
	free(p);
	r = slack_post("interactive", FORM, body, SLACK_SECRET, 0, NULL);
	cr_expect_eq(r.status, 200, "unknown interactions are acked");
	reply_free(&r);
	cr_expect(slack_log_has("ignored interaction of type view_closed"));
}

Test(slack_http, refuses_broken_bodies)
{
	reply r = slack_post("commands", FORM, "command=%2Fincident&text=%zz",
			     SLACK_SECRET, 0, NULL);
	cr_expect_eq(r.status, 400, "%s", r.body);
	reply_free(&r);
	r = slack_post("events", "application/json", "{not json",
		       SLACK_SECRET, 0, NULL);
	cr_expect_eq(r.status, 400);
	reply_free(&r);
	r = slack_post("interactive", FORM, "payload=%7Bbroken", SLACK_SECRET,
		       0, NULL);
	cr_expect_eq(r.status, 400);
	reply_free(&r);
	r = slack_post("commands", FORM, "hello=world", SLACK_SECRET, 0, NULL);
	cr_expect_eq(r.status, 400, "neither a command nor a payload");
	reply_free(&r);
}

Test(slack_http, refuses_huge_bodies_with_413)
{
	size_t n = 100 * 1024; /* the harness sets max_body 64KiB */
	char *big = malloc(n + 1);
	memset(big, 'a', n);
	memcpy(big, "text=", 5);
	big[n] = '\0';
	reply r = slack_post("commands", FORM, big, SLACK_SECRET, 0, NULL);
	cr_expect_eq(r.status, 413);
	reply_free(&r);
	free(big);
	r = slack_command("help", "after");
	cr_expect_eq(r.status, 200, "the server keeps serving");
	reply_free(&r);
}

/* --- commands ------------------------------------------------------------- */

Test(slack_http, answers_a_slash_command_within_the_budget)
{
	double t0 = slack_now_ms();
	reply r = slack_command("declare Database down --sev SEV-2", "decl");
	double ms = slack_now_ms() - t0;
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_expect_lt(ms, 1000, "took %.0f ms", ms);
	json_t *j = slack_json(&r);
	cr_expect_str_eq(json_string_value(json_object_get(j, "response_type")),
			 "in_channel");
	cr_expect(strstr(r.body, "INC-1"), "%s", r.body);
	cr_expect(strstr(r.body, "\"action_id\":\"im_ack\""), "%s", r.body);
	json_decref(j);
	reply_free(&r);
}

/* Slack retries a command it timed out on, and a captured request can be
 * replayed inside its 5-minute window: the same signed request runs once. */
Test(slack_http, runs_the_same_signed_request_only_once)
{
	const char *body = "command=%2Fincident&text=declare+Replayed+--sev+"
			   "SEV-3&user_id=U1&channel_id=C0GENERAL&"
			   "response_url=http%3A%2F%2F127.0.0.1%3A9%2Fr";
	/* One timestamp and body, so one signature, sent three times. */
	long ts = (long)time(NULL) - 5;
	reply a = slack_post_at("commands", FORM, body, SLACK_SECRET, ts, NULL);
	reply b = slack_post_at("commands", FORM, body, SLACK_SECRET, ts,
				"X-Slack-Retry-Num: 1");
	reply c = slack_post_at("commands", FORM, body, SLACK_SECRET, ts, NULL);
	cr_expect_eq(a.status, 200, "%s", a.body);
	cr_expect(strstr(a.body, "INC-1"), "%s", a.body);
	cr_expect_eq(b.status, 200, "%s", b.body);
	cr_expect_null(strstr(b.body, "INC-"), "the retry ran again: %s",
		       b.body);
	cr_expect_eq(c.status, 200);
	cr_expect_null(strstr(c.body, "INC-"), "the replay ran again: %s",
		       c.body);
	reply_free(&a);
	reply_free(&b);
	reply_free(&c);
	/* One incident only; a new request (new timestamp) runs. */
	reply d = slack_post_at("commands", FORM, body, SLACK_SECRET, ts + 1,
				NULL);
	cr_expect(strstr(d.body, "INC-2"), "%s", d.body);
	reply_free(&d);
	cr_expect(slack_log_has("the same signed request again"));
}

Test(slack_http, sends_a_late_answer_through_response_url)
{
	double t0 = slack_now_ms();
	reply r = slack_command("sleep 1500", "late");
	double ms = slack_now_ms() - t0;
	cr_assert_eq(r.status, 200);
	cr_expect_lt(ms, 1200, "first answer after %.0f ms", ms);
	cr_expect(strstr(r.body, "Working on"), "%s", r.body);
	cr_expect(strstr(r.body, "ephemeral"), "%s", r.body);
	reply_free(&r);
	cr_assert(fake_slack_wait(slack_fake, "response_url", 1, 5000),
		  "no follow-up");
	json_t *rec = fake_slack_last(slack_fake, "response_url");
	cr_expect_str_eq(json_string_value(json_object_get(rec, "name")),
			 "late");
	const json_t *body = json_object_get(rec, "json");
	cr_expect_str_eq(json_string_value(json_object_get(body, "text")),
			 "slept 1500 ms");
	cr_expect_str_eq(
	    json_string_value(json_object_get(body, "response_type")),
	    "in_channel");
	cr_expect(json_is_false(json_object_get(body, "replace_original")));
	json_decref(rec);
}

Test(slack_http, runs_block_actions_and_replies_via_response_url)
{
	reply r = slack_command("declare Queue stuck", "decl");
	cr_assert_eq(r.status, 200);
	reply_free(&r);
	char rurl[256];
	fake_slack_response_url(slack_fake, "button", rurl, sizeof(rurl));
	json_t *p = json_pack(
	    "{s:s,s:{s:s,s:s},s:{s:s},s:{s:s},s:s,s:s,s:[{s:s,s:s,s:s,s:s}]}",
	    "type", "block_actions", "user", "id", "U2", "username", "bob",
	    "team", "id", "T0ACME", "channel", "id", "C0GENERAL",
	    "response_url", rurl, "trigger_id", "1.2.3", "actions",
	    "action_id", "im_ack", "value", "INC-1", "type", "button",
	    "block_id", "b1");
	char *ps = json_dumps(p, JSON_COMPACT), *pe = slack_escape(ps);
	char *body = malloc(strlen(pe) + 16);
	sprintf(body, "payload=%s", pe);
	r = slack_post("interactive", FORM, body, SLACK_SECRET, 0, NULL);
	cr_expect_eq(r.status, 200, "%s", r.body);
	reply_free(&r);
	cr_assert(fake_slack_wait(slack_fake, "response_url", 1, 5000));
	json_t *rec = fake_slack_last(slack_fake, "response_url");
	cr_expect_str_eq(json_string_value(json_object_get(rec, "name")),
			 "button");
	reply inc = http(&slack_srv, false, "GET", "/api/v1/incidents/INC-1",
			 NULL, 0, NULL);
	cr_expect(strstr(inc.body, "\"acknowledged\""), "%s", inc.body);
	reply_free(&inc);
	json_decref(rec);
	free(body);
	free(pe);
	free(ps);
	json_decref(p);
}

/* --- status, channels, notifications ------------------------------------- */

Test(slack_http, status_names_team_bot_scopes_and_mode)
{
	char *out = NULL;
	const char *args[] = {"connector", "slack", "status", NULL};
	int rc = slack_cli(&out, args);
	cr_expect_eq(rc, 0, "%s", out);
	cr_expect(strstr(out, "valid: team Acme (T0ACME), bot @incident-bot"),
		  "%s", out);
	cr_expect(strstr(out, "all 3 required granted"), "%s", out);
	cr_expect(strstr(out, "http"), "%s", out);
	cr_expect(strstr(out, "healthy"), "%s", out);
	free(out);
	fake_slack_set_scopes(slack_fake,
			      "channels:history,channels:read,users:read");
	rc = slack_cli(&out, args);
	cr_expect_eq(rc, 1, "missing scopes are unhealthy");
	cr_expect(strstr(out, "missing chat:write, commands"), "%s", out);
	cr_expect(strstr(out, "reinstall the app"), "%s", out);
	free(out);
}

Test(slack_http, lists_every_page_of_channels)
{
	fake_slack_set_page_cap(slack_fake, 1);
	char *out = NULL;
	const char *args[] = {"chatops", "slack", "list-channels", NULL};
	int rc = slack_cli(&out, args);
	cr_expect_eq(rc, 0, "%s", out);
	const char *ids[] = {"C0GENERAL", "C0INCIDENTS", "C0RANDOM", "G0OPS"};
	for (int i = 0; i < 4; i++)
		cr_expect(strstr(out, ids[i]), "%s missing:\n%s", ids[i], out);
	cr_expect_null(strstr(out, "C0OLD"), "archived channels are left out");
	cr_expect(strstr(out, "4 channels"), "%s", out);
	json_t *calls = fake_slack_requests(slack_fake, "conversations.list");
	cr_expect_geq(json_array_size(calls), 4);
	const char *cursor = json_string_value(json_object_get(
	    json_object_get(json_array_get(calls, 1), "form"), "cursor"));
	cr_expect(cursor && *cursor, "the second page asks with the cursor");
	json_decref(calls);
	free(out);
	const char *jargs[] = {"chatops", "slack", "list-channels", "--json",
			       NULL};
	rc = slack_cli(&out, jargs);
	json_error_t je;
	json_t *list = json_loads(out, 0, &je);
	cr_assert(json_is_array(list), "%s", out);
	json_t *g = json_array_get(list, 0);
	cr_expect(json_is_true(json_object_get(g, "bot_member")));
	cr_expect(json_is_true(json_object_get(g, "subscribed")),
		  "the default channel gets notifications");
	json_t *rnd = json_array_get(list, 2);
	cr_expect(json_is_false(json_object_get(rnd, "bot_member")));
	json_decref(list);
	free(out);
}

Test(slack_http, chatops_test_checks_and_names_the_fix)
{
	char *out = NULL;
	const char *args[] = {"chatops", "test", "slack", NULL};
	int rc = slack_cli(&out, args);
	cr_expect_eq(rc, 0, "%s", out);
	cr_expect(strstr(out, "connected"), "%s", out);
	cr_expect(strstr(out, "permissions verified"), "%s", out);
	cr_expect(strstr(out, "default channel accessible: #general"), "%s",
		  out);
	cr_expect(strstr(out, "/hooks/slack/commands"), "%s", out);
	free(out);
	fake_slack_set_member(slack_fake, "C0GENERAL", false);
	rc = slack_cli(&out, args);
	cr_expect_eq(rc, 1);
	cr_expect(strstr(out, "/invite @incident-bot"), "%s", out);
	free(out);
}

static void declare(const char *title, const char *sev)
{
	char body[256];
	snprintf(body, sizeof(body), "{\"title\":\"%s\",\"severity\":\"%s\"}",
		 title, sev);
	const char *h[] = {"Content-Type: application/json", NULL};
	reply r = http(&slack_srv, false, "POST", "/api/v1/incidents", body,
		       strlen(body), h);
	cr_assert_eq(r.status, 201, "%ld %s", r.status, r.body);
	reply_free(&r);
}

static json_t *notify(const char *channel)
{
	char *out = NULL;
	const char *args[] = {"chatops", "notify", "slack", "INC-1",
			      "--channel", channel, "--json", NULL};
	slack_cli(&out, args);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	cr_assert(j, "%s", out);
	free(out);
	return j;
}

static const char *s_(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

Test(slack_http, notify_posts_and_maps_delivery_errors)
{
	declare("Login errors", "SEV-3");
	/* The default channel's own notification of the declare goes out in
	 * the background: wait for it (bounded), so it cannot take one of
	 * the failures injected below for the test's sends. */
	size_t seen = 0;
	for (int i = 0; i < 200 && !seen; i++) {
		json_t *bg = fake_slack_messages(slack_fake);
		seen = json_array_size(bg);
		json_decref(bg);
		if (!seen)
			sleep_ms(50);
	}
	cr_assert_gt(seen, 0, "the declare's notification never arrived");
	char *out = NULL;
	const char *args[] = {"chatops", "notify", "slack", "INC-1", NULL};
	cr_expect_eq(slack_cli(&out, args), 0, "%s", out);
	free(out);
	json_t *m = fake_slack_messages(slack_fake);
	cr_expect_str_eq(s_(json_array_get(m, 0), "channel"), "C0GENERAL");
	cr_expect(strstr(s_(json_array_get(m, 0), "text"), "INC-1"));
	json_decref(m);

	json_t *j = notify("C0RANDOM");
	cr_expect_str_eq(s_(j, "verdict"), "permanent");
	cr_expect_str_eq(s_(j, "error"), "not_in_channel");
	cr_expect(strstr(s_(j, "hint"), "/invite @incident-bot"));
	json_decref(j);
	j = notify("CNOPE");
	cr_expect_str_eq(s_(j, "error"), "channel_not_found");
	cr_expect(strstr(s_(j, "hint"), "use the channel id (C0123ABC)"));
	json_decref(j);

	fake_slack_fail(slack_fake, "chat.postMessage", 1, 429, "ratelimited", 3);
	j = notify("C0GENERAL");
	cr_expect_str_eq(s_(j, "verdict"), "rate_limited");
	cr_expect_eq(json_real_value(json_object_get(j, "retry_after_s")), 3);
	json_decref(j);
	fake_slack_fail(slack_fake, "chat.postMessage", 1, 200, "ratelimited", 0);
	j = notify("C0GENERAL");
	cr_expect_str_eq(s_(j, "verdict"), "rate_limited",
			 "HTTP 200 ok:false ratelimited is a rate limit");
	json_decref(j);
	fake_slack_fail(slack_fake, "chat.postMessage", 1, 503, "service_unavailable", 0);
	j = notify("C0GENERAL");
	cr_expect_str_eq(s_(j, "verdict"), "retry");
	json_decref(j);

	fake_slack_set_scopes(slack_fake, "channels:read,commands");
	j = notify("C0GENERAL");
	cr_expect_str_eq(s_(j, "error"), "missing_scope");
	cr_expect(strstr(s_(j, "hint"), "add scope chat:write"), "%s",
		  s_(j, "hint"));
	cr_expect(strstr(s_(j, "hint"), "reinstall the app"));
	json_decref(j);
}

Test(slack_http, survives_a_token_revoked_mid_run)
{
	declare("Payments slow", "SEV-3");
	fake_slack_revoke(slack_fake, "xoxb-test");
	char *out = NULL;
	const char *args[] = {"connector", "slack", "status", NULL};
	cr_expect_eq(slack_cli(&out, args), 1, "%s", out);
	cr_expect(strstr(out, "INVALID: invalid_auth"), "%s", out);
	cr_expect(strstr(out, "SLACK_BOT_TOKEN"), "%s", out);
	free(out);
	json_t *j = notify("C0GENERAL");
	cr_expect_str_eq(s_(j, "verdict"), "permanent");
	cr_expect(strstr(s_(j, "hint"), "the token was revoked or is wrong"));
	json_decref(j);
	reply h = http(&slack_srv, false, "GET", "/health", NULL, 0, NULL);
	cr_expect_eq(h.status, 200, "the server keeps running");
	reply_free(&h);
	reply m = http(&slack_srv, true, "GET", "/metrics", NULL, 0, NULL);
	cr_expect(strstr(m.body, "chatops_connection_status{platform=\"slack\","
				 "instance=\"slack\"} 0"),
		  "%s", m.body);
	reply_free(&m);
}
