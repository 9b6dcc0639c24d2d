/* The Slack connector's pure parts, linked from plugins/slack/: request
 * signatures, form decoding, replies as Slack messages, the event-id set
 * and the mapping of Web API answers to delivery verdicts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "slack.h"

/* Slack's published example (api.slack.com/authentication/verifying-...). */
#define EX_SECRET "8f742231b10e8888abcd99yyyzzz85a5"
#define EX_TS "1531420618"
#define EX_BODY                                                               \
	"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain="       \
	"testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id="       \
	"U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"    \
	"response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%"  \
	"2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015."  \
	"47445629121.803a0bc887a14d10d2c447fce8b6703c"
#define EX_SIG "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

static int verify(const char *ts, const char *sig, const char *body,
		  time_t now, const char **why)
{
	slk_mac *m = slk_mac_new(EX_SECRET);
	cr_assert(m);
	int rc = slk_mac_verify(m, ts, sig, body, strlen(body), now, why);
	slk_mac_free(m);
	return rc;
}

Test(slack_signature, accepts_slacks_published_example)
{
	const char *why = NULL;
	cr_expect_eq(verify(EX_TS, EX_SIG, EX_BODY, 1531420618 + 10, &why), 0,
		     "%s", why ? why : "");
}

Test(slack_signature, signs_like_slack)
{
	slk_mac *m = slk_mac_new(EX_SECRET);
	char sig[68];
	cr_assert_eq(slk_mac_sign(m, EX_TS, EX_BODY, strlen(EX_BODY), sig), 0);
	cr_expect_str_eq(sig, EX_SIG);
	slk_mac_free(m);
}

Test(slack_signature, rejects_stale_timestamp)
{
	const char *why = NULL;
	cr_expect_neq(verify(EX_TS, EX_SIG, EX_BODY, 1531420618 + 301, &why), 0);
	cr_expect(strstr(why, "stale"));
	cr_expect_neq(verify(EX_TS, EX_SIG, EX_BODY, 1531420618 - 301, &why), 0);
}

Test(slack_signature, rejects_a_changed_body_or_signature)
{
	const char *why = NULL;
	char body[] = EX_BODY;
	body[10] ^= 1;
	cr_expect_neq(verify(EX_TS, EX_SIG, body, 1531420618, &why), 0);
	cr_expect(strstr(why, "invalid"));
	char sig[] = EX_SIG;
	sig[66] = sig[66] == '3' ? '4' : '3';
	cr_expect_neq(verify(EX_TS, sig, EX_BODY, 1531420618, &why), 0);
	cr_expect_neq(verify(EX_TS, "v0=abc", EX_BODY, 1531420618, &why), 0);
}

Test(slack_signature, rejects_missing_or_malformed_headers)
{
	const char *why = NULL;
	cr_expect_neq(verify(NULL, EX_SIG, EX_BODY, 1531420618, &why), 0);
	cr_expect(strstr(why, "missing"));
	cr_expect_neq(verify(EX_TS, NULL, EX_BODY, 1531420618, &why), 0);
	cr_expect_neq(verify("15314x0618", EX_SIG, EX_BODY, 1531420618, &why),
		      0);
	cr_expect(strstr(why, "malformed"));
	cr_expect_neq(verify("", EX_SIG, EX_BODY, 1531420618, &why), 0);
}

Test(slack_form, decodes_slash_command_fields)
{
	json_t *f = slk_form_parse(EX_BODY, strlen(EX_BODY));
	cr_assert(f);
	cr_expect_str_eq(json_string_value(json_object_get(f, "command")),
			 "/webhook-collect");
	cr_expect_str_eq(json_string_value(json_object_get(f, "text")), "");
	cr_expect(strstr(json_string_value(json_object_get(f, "response_url")),
			 "https://hooks.slack.com/commands/"));
	json_decref(f);
	f = slk_form_parse("text=a+b%26c", 12);
	cr_expect_str_eq(json_string_value(json_object_get(f, "text")), "a b&c");
	json_decref(f);
}

Test(slack_form, refuses_broken_encoding)
{
	const char *bad[] = {"text=%zz", "text=%4", "a=%00", "=x", "t=%C3%28",
			     NULL};
	for (const char **b = bad; *b; b++)
		cr_expect_null(slk_form_parse(*b, strlen(*b)), "%s", *b);
}

Test(slack_render, escapes_text_so_it_cannot_mention)
{
	char *t = slk_mrkdwn("<!channel> & <@U1> **bold** [docs](https://x.y/a?b=1&c=2)");
	cr_expect_str_eq(t, "&lt;!channel&gt; &amp; &lt;@U1&gt; *bold* "
			    "<https://x.y/a?b=1&amp;c=2|docs>");
	free(t);
}

Test(slack_render, turns_a_reply_into_blocks_and_buttons)
{
	json_t *reply = json_pack(
	    "{s:s,s:s,s:[{s:s,s:s,s:b},{s:s,s:s,s:b}],s:[{s:s,s:s,s:s,s:s}],"
	    "s:s}",
	    "text", "*INC-7* declared", "visibility", "in_channel", "fields",
	    "title", "Status", "value", "open", "short", 1, "title",
	    "Description", "value", "long text", "short", 0, "actions", "id",
	    "im_ack", "label", "Acknowledge", "value", "INC-7", "style",
	    "primary", "status", "ok");
	json_t *m = slk_render_reply(reply);
	cr_assert(m);
	cr_expect_str_eq(json_string_value(json_object_get(m, "response_type")),
			 "in_channel");
	json_t *blocks = json_object_get(m, "blocks");
	cr_assert_eq(json_array_size(blocks), 4);
	json_t *actions = json_array_get(blocks, 3);
	cr_expect_str_eq(json_string_value(json_object_get(actions, "type")),
			 "actions");
	json_t *btn = json_array_get(json_object_get(actions, "elements"), 0);
	cr_expect_str_eq(json_string_value(json_object_get(btn, "action_id")),
			 "im_ack");
	cr_expect_str_eq(json_string_value(json_object_get(btn, "value")),
			 "INC-7");
	cr_expect_str_eq(json_string_value(json_object_get(btn, "style")),
			 "primary");
	json_decref(m);
	json_decref(reply);
}

Test(slack_render, plain_replies_are_ephemeral_text)
{
	json_t *reply = json_pack("{s:s,s:s,s:[],s:[],s:s}", "text", "hi",
				  "visibility", "ephemeral", "fields",
				  "actions", "status", "ok");
	json_t *m = slk_render_reply(reply);
	cr_expect_str_eq(json_string_value(json_object_get(m, "response_type")),
			 "ephemeral");
	cr_expect_str_eq(json_string_value(json_object_get(m, "text")), "hi");
	cr_expect_null(json_object_get(m, "blocks"));
	json_decref(m);
	json_decref(reply);
}

Test(slack_render, cuts_long_text_on_a_character_boundary)
{
	size_t n = 5000;
	char *big = malloc(n * 2 + 1);
	for (size_t i = 0; i < n; i++)
		memcpy(big + 2 * i, "\xC3\xA9", 2); /* é */
	big[2 * n] = '\0';
	json_t *reply = json_pack("{s:s,s:s,s:[{s:s,s:s,s:b}],s:[]}", "text",
				  big, "visibility", "ephemeral", "fields",
				  "title", "t", "value", "v", "short", 1,
				  "actions");
	json_t *m = slk_render_reply(reply);
	const char *t = json_string_value(json_object_get(
	    json_object_get(json_array_get(json_object_get(m, "blocks"), 0),
			    "text"),
	    "text"));
	cr_assert(t);
	cr_expect_leq(strlen(t), 3000);
	json_decref(m);
	json_decref(reply);
	free(big);
}

Test(slack_dedup, remembers_recent_ids_within_its_bound)
{
	slk_dedup *d = slk_dedup_new(4);
	cr_expect_not(slk_dedup_seen(d, "Ev1"));
	cr_expect(slk_dedup_seen(d, "Ev1"));
	char id[16];
	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "Ev%d", 100 + i);
		cr_expect_not(slk_dedup_seen(d, id));
	}
	cr_expect(slk_dedup_seen(d, "Ev1")); /* still in the previous gen */
	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "Ew%d", i);
		slk_dedup_seen(d, id);
	}
	cr_expect_not(slk_dedup_seen(d, "Ev1")); /* forgotten: bounded */
	slk_dedup_free(d);
}

static im_send_result classify(long http, const char *error, double retry,
			       const char *body)
{
	slk_api r = {.http = http, .retry_after = retry, .ok = !error};
	snprintf(r.error, sizeof(r.error), "%s", error ? error : "");
	json_error_t je;
	r.body = body ? json_loads(body, 0, &je) : NULL;
	im_send_result res = {.struct_size = sizeof(res)};
	slk_classify(&r, "C0X", "incident-bot", &res);
	json_decref(r.body);
	return res;
}

Test(slack_delivery, maps_rate_limits_with_retry_after)
{
	im_send_result r = classify(429, "ratelimited", 7, NULL);
	cr_expect_eq(r.verdict, IM_SEND_RATE_LIMITED);
	cr_expect_float_eq(r.retry_after_s, 7, 1e-9);
	r = classify(200, "ratelimited", 0, NULL);
	cr_expect_eq(r.verdict, IM_SEND_RATE_LIMITED);
	cr_expect_gt(r.retry_after_s, 0);
	r = classify(200, "message_limit_exceeded", 0, NULL);
	cr_expect_eq(r.verdict, IM_SEND_RATE_LIMITED);
}

Test(slack_delivery, retries_server_errors_and_timeouts)
{
	cr_expect_eq(classify(503, "service_unavailable", 0, NULL).verdict,
		     IM_SEND_RETRY);
	cr_expect_eq(classify(500, "HTTP 500", 0, NULL).verdict, IM_SEND_RETRY);
	slk_api r = {.net_error = IM_ETIMEDOUT};
	im_send_result res = {0};
	slk_classify(&r, "C0X", "bot", &res);
	cr_expect_eq(res.verdict, IM_SEND_RETRY);
}

Test(slack_delivery, permanent_errors_say_what_to_do)
{
	im_send_result r = classify(200, "not_in_channel", 0, NULL);
	cr_expect_eq(r.verdict, IM_SEND_PERMANENT);
	cr_expect(strstr(r.hint, "/invite @incident-bot"), "%s", r.hint);
	r = classify(200, "missing_scope", 0,
		     "{\"ok\":false,\"error\":\"missing_scope\",\"needed\":"
		     "\"chat:write\",\"provided\":\"commands\"}");
	cr_expect(strstr(r.hint, "add scope chat:write"), "%s", r.hint);
	cr_expect(strstr(r.hint, "reinstall the app"));
	r = classify(200, "channel_not_found", 0, NULL);
	cr_expect(strstr(r.hint, "use the channel id (C0123ABC)"), "%s", r.hint);
	r = classify(200, "invalid_auth", 0, NULL);
	cr_expect(strstr(r.hint, "SLACK_BOT_TOKEN"), "%s", r.hint);
	cr_expect_str_eq(r.error, "invalid_auth");
}

/* --- slk_json_text: the bytes json_dumps writes -------------------------- */

static unsigned jt_seed;
static unsigned jt_rand(void)
{
	return (unsigned)rand_r(&jt_seed);
}

/* A random string: ASCII of every kind (controls, quotes, backslashes,
 * DEL), 2- to 4-byte UTF-8, and NUL inside. */
static json_t *jt_string(void)
{
	static const char *const pieces[] = {
	    "a", "Z", " ", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t",
	    "\x01", "\x1f", "\x7f", "é", "→", "😀", "<!channel>", "&amp;"};
	char buf[256];
	size_t n = 0, parts = jt_rand() % 12;
	for (size_t i = 0; i < parts; i++) {
		const char *p = pieces[jt_rand() % (sizeof(pieces) /
						      sizeof(pieces[0]))];
		size_t l = strlen(p);
		if (n + l + 1 >= sizeof(buf))
			break;
		memcpy(buf + n, p, l);
		n += l;
		if (jt_rand() % 10 == 0 && n + 1 < sizeof(buf))
			buf[n++] = '\0';
	}
	return json_stringn(buf, n);
}

static json_t *jt_value(int depth)
{
	switch (jt_rand() % (depth > 3 ? 6 : 8)) {
	case 0:
		return jt_string();
	case 1:
		return json_integer((json_int_t)jt_rand() -
				    (json_int_t)jt_rand() * 65536);
	case 2:
		return json_real((double)jt_rand() / 7.0);
	case 3:
		return json_true();
	case 4:
		return jt_rand() % 2 ? json_false() : json_null();
	case 5:
		return json_string("plain");
	case 6: {
		json_t *a = json_array();
		for (unsigned i = jt_rand() % 5; i > 0; i--)
			json_array_append_new(a, jt_value(depth + 1));
		return a;
	}
	default: {
		json_t *o = json_object();
		for (unsigned i = jt_rand() % 5; i > 0; i--) {
			json_t *k = jt_string();
			char key[64];
			snprintf(key, sizeof(key), "%u%s", i,
				 json_string_value(k));
			json_decref(k);
			json_object_set_new(o, key, jt_value(depth + 1));
		}
		return o;
	}
	}
}

Test(slack_json, writes_the_bytes_json_dumps_writes)
{
	jt_seed = (unsigned)time(NULL);
	unsigned first = jt_seed;
	for (int i = 0; i < 2000; i++) {
		json_t *v = jt_value(0);
		char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		char *got = slk_json_text(v);
		cr_assert_not_null(want);
		cr_assert_not_null(got);
		cr_assert_str_eq(got, want, "tree %d (seed %u)", i, first);
		free(want);
		free(got);
		json_decref(v);
	}
	/* And a real reply, as the status command answers. */
	json_t *reply = json_pack(
	    "{s:s,s:[{s:s,s:s}],s:[{s:s,s:s,s:s}]}", "text",
	    "*INC-7* \"db\" is <open>\n", "fields", "label", "Severity",
	    "value", "SEV-1", "actions", "id", "ack", "label", "Acknowledge",
	    "value", "ack INC-7");
	json_t *msg = slk_render_reply(reply);
	char *want = json_dumps(msg, JSON_COMPACT);
	char *got = slk_json_text(msg);
	cr_assert_str_eq(got, want);
	free(want);
	free(got);
	json_decref(msg);
	json_decref(reply);
	cr_assert_null(slk_json_text(NULL));
}
