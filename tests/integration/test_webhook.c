/* The SDK's example connector (sdk/example/webhook.c, built from its source
 * with only the public headers) end to end: the real `im serve`, the
 * example's templates (sdk/example/templates) and the fake platform of
 * tests/fakes. It must get escaping, limits, rate limits, retries and dead
 * letters exactly like the bundled connectors, and take signed commands. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../fakes/fake_platform.h"
#include "harness.h"

#define SECRET "wh-test-secret"
#define ZWSP "\xe2\x80\x8b"
#define ELLIPSIS "\xe2\x80\xa6"

static srv s;
static fake_platform *fp;
static char *out, *err;

static void setup(void)
{
	fp_opts o = {.rate = 1, .burst = 3, .latency_ms = 5};
	fp = fp_start(&o);
	cr_assert(fp, "fake platform did not start");
	srv_init(&s);
	out = err = NULL;
}

static void teardown(void)
{
	free(out);
	free(err);
	srv_cleanup(&s);
	fp_stop(fp);
}

TestSuite(webhook, .init = setup, .fini = teardown, .timeout = 120);

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The webhook instance `wh` pointed at the fake, the example's templates,
 * the chat commands, plus `extra` YAML (chatops: keys first, then
 * subscriptions). */
static void config(const char *chatops, const char *subs)
{
	const char *src = getenv("IM_TEST_SRCDIR");
	cr_assert(src, "IM_TEST_SRCDIR is not set");
	srv_conf(&s, "10-webhook.yaml",
		 "chatops:\n  templates_dir: %s/sdk/example/templates\n%s"
		 "plugins:\n  instances:\n"
		 "    - {id: mustache, module: mustache}\n"
		 "    - {id: incident, module: incident-commands}\n"
		 "    - id: wh\n      module: webhook\n      config:\n"
		 "        url: \"%s/channels/{channel}/messages\"\n"
		 "        secret: " SECRET "\n        timeout: 1s\n"
		 "%s",
		 src, chatops ? chatops : "", fp_url(fp), subs ? subs : "");
}

static const char *const one_channel =
    "subscriptions:\n  - {connector: wh, channel: C1, mode: post}\n";
static const char *const now_window = "  batch_window: 0s\n";

static void start(void)
{
	srv_must_start(&s);
}

static void finish(void)
{
	srv_must_stop(&s);
}

static int run(const char *const *args)
{
	free(out);
	free(err);
	return cli(&s, &out, &err, args);
}

static const char *const json_ct[] = {"Content-Type: application/json", NULL};

/* Declares through the API; `fields` is a JSON object's members. */
static void declare_json(const char *fields)
{
	size_t n = strlen(fields) + 16;
	char *body = malloc(n);
	snprintf(body, n, "{%s}", fields);
	reply r = http(&s, false, "POST", "/api/v1/incidents", body,
		       strlen(body), json_ct);
	cr_assert_eq(r.status, 201, "%s", r.body);
	reply_free(&r);
	free(body);
}

static void declare(const char *sev, const char *title)
{
	char f[512];
	snprintf(f, sizeof(f), "\"title\":\"%s\",\"severity\":\"%s\"", title,
		 sev);
	declare_json(f);
}

static size_t accepted(void)
{
	json_t *m = fp_messages(fp);
	size_t n = json_array_size(m);
	json_decref(m);
	return n;
}

static bool wait_accepted(size_t n, double secs)
{
	for (double t = 0; t < secs; t += 0.05) {
		if (accepted() >= n)
			return true;
		sleep_s(0.05);
	}
	return accepted() >= n;
}

static const char *text_of(const json_t *msg)
{
	return sfield(json_object_get(msg, "body"), "text");
}

static long count_status(long status)
{
	json_t *reqs = fp_requests(fp);
	long n = 0;
	size_t i;
	json_t *r;
	json_array_foreach(reqs, i, r) n +=
	    json_integer_value(json_object_get(r, "status")) == status;
	json_decref(reqs);
	return n;
}

static void expect_no_duplicates(void)
{
	json_t *m = fp_messages(fp), *seen = json_object();
	size_t i;
	json_t *msg;
	json_array_foreach(m, i, msg)
	{
		const char *k = sfield(msg, "dedup");
		cr_expect(*k, "a send without X-Dedup-Key");
		cr_expect_null(json_object_get(seen, k), "%s delivered twice", k);
		json_object_set_new(seen, k, json_true());
	}
	json_decref(seen);
	json_decref(m);
}

/* Characters of UTF-8 text. */
static size_t chars(const char *t)
{
	size_t n = 0;
	for (; *t; t++)
		n += ((unsigned char)*t & 0xC0) != 0x80;
	return n;
}

static bool ends_with(const char *t, const char *end)
{
	size_t a = strlen(t), b = strlen(end);
	return a >= b && !strcmp(t + a - b, end);
}

/* "v1=<hex HMAC-SHA256(key, ts "." body)>", as a receiver computes it. */
static void signature(const char *key, const char *ts, const char *body,
		      size_t len, char *out_sig, size_t cap)
{
	size_t tl = strlen(ts);
	unsigned char *msg = malloc(tl + 1 + len + 1);
	memcpy(msg, ts, tl);
	msg[tl] = '.';
	memcpy(msg + tl + 1, body, len);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	cr_assert(HMAC(EVP_sha256(), key, (int)strlen(key), msg, tl + 1 + len,
		       md, &mdlen));
	free(msg);
	size_t at = (size_t)snprintf(out_sig, cap, "v1=");
	for (unsigned int i = 0; i < mdlen && at + 2 < cap; i++, at += 2)
		snprintf(out_sig + at, cap - at, "%02x", md[i]);
}

/* --- outbound ------------------------------------------------------------ */

Test(webhook, signs_every_outbound_body)
{
	config(now_window, one_channel);
	start();
	double t0 = now_s();
	declare("SEV-1", "signed");
	cr_assert(wait_accepted(1, 10), "nothing delivered");
	json_t *reqs = fp_requests(fp);
	const json_t *r = json_array_get(reqs, 0);
	const char *raw = sfield(r, "raw"), *ts = sfield(r, "timestamp");
	cr_assert(*raw && *ts, "no X-Im-Timestamp / X-Im-Signature sent");
	char want[160];
	signature(SECRET, ts, raw, strlen(raw), want, sizeof(want));
	cr_expect_str_eq(sfield(r, "signature"), want);
	double t = strtod(ts, NULL);
	cr_expect(t >= t0 - 2 && t <= now_s() + 1, "timestamp %s", ts);
	cr_expect_str_eq(sfield(r, "method"), "POST");
	cr_expect_str_eq(sfield(r, "channel"), "C1");
	/* Rendered from sdk/example/templates/webhook/declare.mustache. */
	const json_t *body = json_object_get(r, "body");
	cr_expect_str_eq(sfield(body, "incident"), "INC-1");
	cr_expect_str_eq(sfield(body, "event"), "im.incident.declare");
	cr_expect(strstr(text_of(r), "INC-1 declared: signed"), "%s",
		  text_of(r));
	cr_expect_eq(json_array_size(json_object_get(body, "fields")), 4);
	json_decref(reqs);
	finish();
}

Test(webhook, edits_the_posted_message_in_update_mode)
{
	config(now_window,
	       "subscriptions:\n  - {connector: wh, channel: CU, mode: "
	       "update}\n");
	start();
	declare("SEV-1", "db down");
	cr_assert(wait_accepted(1, 10));
	reply r = http(&s, false, "POST", "/api/v1/incidents/INC-1/ack", "{}",
		       2, json_ct);
	cr_assert_eq(r.status, 200, "%s", r.body);
	reply_free(&r);
	cr_assert(wait_accepted(2, 10));
	json_t *m = fp_messages(fp);
	const json_t *first = json_array_get(m, 0), *edit = json_array_get(m, 1);
	cr_expect_str_eq(sfield(edit, "method"), "PATCH");
	cr_expect_str_eq(sfield(edit, "id"), sfield(first, "id"));
	cr_expect(strstr(text_of(edit), "acknowledged"), "%s", text_of(edit));
	json_decref(m);
	finish();
}

/* Needs the template service to apply the connector's im_platform_rules
 * (backslash, replace, defuse, severity_emoji). */
Test(webhook, escapes_hostile_titles_with_the_connectors_rules)
{
	config(now_window, one_channel);
	start();
	declare("SEV-1", "*bold* _x_ @here <tag> [l](u) `c` ~s~ a&b \\\\");
	cr_assert(wait_accepted(1, 10), "nothing delivered");
	json_t *m = fp_messages(fp);
	const char *text = text_of(json_array_get(m, 0));
	cr_expect(strstr(text, "\\*bold\\* \\_x\\_ @" ZWSP "here &lt;tag&gt; "
			       "\\[l\\](u) \\`c\\` \\~s\\~ a&amp;b \\\\"),
		  "not escaped by the webhook rules: %s", text);
	cr_expect_null(strstr(text, "@here"), "a live @here: %s", text);
	cr_expect_null(strstr(text, "<tag>"), "raw markup: %s", text);
	/* The rules' severity emoji for SEV-1. */
	const char *sev1 = "\xf0\x9f\x94\xb4 INC-1 declared";
	cr_expect(!strncmp(text, sev1, strlen(sev1)), "severity emoji: %s",
		  text);
	/* Ids stay usable as button values. */
	const json_t *acts =
	    json_object_get(json_object_get(json_array_get(m, 0), "body"),
			    "actions");
	cr_expect_str_eq(sfield(json_array_get(acts, 0), "value"), "INC-1");
	json_decref(m);
	finish();
}

/* Needs the template service to call the connector's fit_payload. */
Test(webhook, cuts_long_texts_to_the_connectors_limits)
{
	config(now_window, one_channel);
	start();
	size_t n = 10000;
	char *desc = malloc(n + 64);
	int at = snprintf(desc, 64, "\"title\":\"long\",\"severity\":\"SEV-1\","
				    "\"description\":\"");
	memset(desc + at, 'x', n);
	strcpy(desc + at + n, "\"");
	declare_json(desc);
	free(desc);
	cr_assert(wait_accepted(1, 10), "nothing delivered");
	json_t *m = fp_messages(fp);
	const char *text = text_of(json_array_get(m, 0));
	cr_expect_leq(chars(text), 4000, "%zu characters", chars(text));
	cr_expect_geq(chars(text), 3990, "%zu characters", chars(text));
	cr_expect(ends_with(text, ELLIPSIS), "does not end in an ellipsis");
	json_decref(m);
	finish();
}

/* Needs the template service to call the connector's fit_payload. */
Test(webhook, keeps_ten_fields_of_a_long_digest)
{
	config("  batch_window: 3s\n", one_channel);
	start();
	for (int i = 0; i < 12; i++)
		declare("SEV-3", "minor");
	cr_assert(wait_accepted(1, 10), "no digest");
	sleep_s(0.3);
	json_t *m = fp_messages(fp);
	cr_assert_eq(json_array_size(m), 1, "one digest");
	const json_t *body = json_object_get(json_array_get(m, 0), "body");
	cr_expect_str_eq(sfield(body, "text"), "12 incident updates");
	cr_expect_eq(json_array_size(json_object_get(body, "fields")), 10);
	json_decref(m);
	finish();
}

/* --- pacing, retries, dead letters --------------------------------------- */

Test(webhook, paces_one_channel_by_the_connectors_default_rate)
{
	/* The receiver allows what the connector declares (1/s, bursts of
	 * 3); no chatops.rate_limits, so only the connector's defaults keep
	 * the pipeline from tripping the receiver's limit. */
	fp_set_limits(fp, 1, 3);
	config(now_window, one_channel);
	start();
	for (int i = 0; i < 6; i++)
		declare("SEV-1", "burst");
	cr_assert(wait_accepted(6, 20), "%zu of 6", accepted());
	json_t *st = fp_stats(fp);
	cr_expect_eq(json_integer_value(json_object_get(st, "rate_limited")),
		     0, "the receiver answered 429");
	cr_expect_eq(json_integer_value(json_object_get(st, "requests")), 6);
	double span = json_real_value(json_object_get(st, "last_t")) -
		      json_real_value(json_object_get(st, "first_t"));
	/* 3 at once, then 1/s: the 6th no sooner than ~3 s after the 1st. */
	cr_expect_geq(span, 2.9, "6 messages in %.3f s", span);
	json_decref(st);
	expect_no_duplicates();
	finish();
}

Test(webhook, waits_out_a_429_from_the_receiver)
{
	/* We believe 10/s; the receiver allows 1/s with no burst. */
	fp_set_limits(fp, 1, 1);
	config("  batch_window: 0s\n  rate_limits: {wh: {per_channel: 10, "
	       "burst: 10}}\n",
	       one_channel);
	start();
	for (int i = 0; i < 3; i++)
		declare("SEV-1", "x");
	cr_assert(wait_accepted(3, 20), "%zu", accepted());
	json_t *reqs = fp_requests(fp);
	size_t i;
	json_t *r;
	long limited = 0;
	json_array_foreach(reqs, i, r)
	{
		if (json_integer_value(json_object_get(r, "status")) != 429)
			continue;
		limited++;
		const json_t *next = json_array_get(reqs, i + 1);
		cr_assert(next, "a 429 was the last request");
		double t = json_real_value(json_object_get(r, "t"));
		double ra = json_real_value(json_object_get(r, "retry_after"));
		double tn = json_real_value(json_object_get(next, "t"));
		cr_expect_geq(tn, t + ra - 0.002,
			      "sent %.3f s after a 429 asking for %.3f s",
			      tn - t, ra);
	}
	cr_expect_geq(limited, 1);
	json_decref(reqs);
	expect_no_duplicates();
	finish();
}

Test(webhook, retries_server_errors_and_delivers_once)
{
	config(now_window, one_channel);
	start();
	fp_set_mode(fp, FPM_500, 2);
	declare("SEV-1", "flaky");
	cr_assert(wait_accepted(1, 15), "not delivered after two 500s");
	sleep_s(1.0);
	cr_expect_eq(accepted(), 1, "delivered more than once");
	json_t *reqs = fp_requests(fp);
	cr_expect_eq(json_array_size(reqs), 3, "two failures, one success");
	const char *k = sfield(json_array_get(reqs, 0), "dedup");
	size_t i;
	json_t *r;
	json_array_foreach(reqs, i, r)
	    cr_expect_str_eq(sfield(r, "dedup"), k, "one row, one key");
	json_decref(reqs);
	cr_expect_eq(run(ARGS("chatops", "outbox", "list")), 0, "%s", err);
	cr_expect(strstr(out, "0 pending, 0 dead letters"), "%s", out);
	finish();
}

Test(webhook, retries_garbage_and_timeouts)
{
	config(now_window, one_channel);
	start();
	fp_set_mode(fp, FPM_GARBAGE, 1);
	declare("SEV-1", "garbage");
	cr_assert(wait_accepted(1, 15), "not delivered after garbage");
	fp_set_mode(fp, FPM_HANG, 1);
	declare("SEV-1", "hang");
	cr_assert(wait_accepted(2, 15), "not delivered after a timeout");
	fp_set_mode(fp, FPM_NORMAL, -1);
	sleep_s(0.5);
	cr_expect_eq(accepted(), 2);
	expect_no_duplicates();
	finish();
}

static long long first_dead_id(void)
{
	cr_assert_eq(run(ARGS("chatops", "outbox", "list", "--dead", "--json")),
		     0, "%s", err);
	json_t *j = json_loads(out, 0, NULL);
	cr_assert(j, "%s", out);
	long long id = json_integer_value(json_object_get(
	    json_array_get(json_object_get(j, "items"), 0), "id"));
	json_decref(j);
	return id;
}

static long long wait_dead(void)
{
	long long id = 0;
	for (int i = 0; i < 100 && !id; i++) {
		sleep_s(0.05);
		id = first_dead_id();
	}
	return id;
}

Test(webhook, dead_letters_rejected_payloads_until_retried)
{
	config(now_window, one_channel);
	start();
	fp_set_mode(fp, FPM_REJECT, -1);
	declare("SEV-2", "refused");
	long long id = wait_dead();
	cr_assert_gt(id, 0, "no dead letter");
	cr_expect_eq(run(ARGS("chatops", "outbox", "list", "--dead")), 0);
	cr_expect(strstr(out, "invalid_payload"), "%s", out);
	cr_expect(strstr(out, "templates/webhook/"), "no hint: %s", out);
	cr_expect(strstr(out, "im.incident.declare"), "%s", out);
	cr_expect_eq(accepted(), 0);
	cr_expect_eq(count_status(400), 1, "a refusal is not retried");
	fp_set_mode(fp, FPM_NORMAL, -1);
	char ids[32];
	snprintf(ids, sizeof(ids), "%lld", id);
	cr_expect_eq(run(ARGS("chatops", "outbox", "retry", ids)), 0, "%s",
		     err);
	cr_assert(wait_accepted(1, 5), "not delivered after the retry");
	json_t *m = fp_messages(fp);
	cr_expect(strstr(text_of(json_array_get(m, 0)), "refused"));
	json_decref(m);
	cr_expect_eq(run(ARGS("chatops", "outbox", "list")), 0, "%s", err);
	cr_expect(strstr(out, "0 dead letters"), "%s", out);
	finish();
}

Test(webhook, dead_letters_unknown_channels_with_a_hint)
{
	fp_set_unknown_channel(fp, "C1");
	config(now_window, one_channel);
	start();
	declare("SEV-2", "nowhere");
	cr_assert_gt(wait_dead(), 0, "no dead letter");
	cr_expect_eq(run(ARGS("chatops", "outbox", "list", "--dead")), 0);
	cr_expect(strstr(out, "channel_not_found"), "%s", out);
	cr_expect(strstr(out, "check the channel id / url"), "%s", out);
	finish();
}

/* --- inbound commands ------------------------------------------------------ */

/* POSTs `body` to /hooks/wh/commands signed with `key` at `ts` (0: now);
 * `sign` false sends no signature headers at all. */
static reply command(const char *body, const char *key, long long ts,
		     bool sign)
{
	char tsb[32], sig[160], h1[64], h2[200];
	snprintf(tsb, sizeof(tsb), "%lld", ts ? ts : (long long)time(NULL));
	signature(key, tsb, body, strlen(body), sig, sizeof(sig));
	snprintf(h1, sizeof(h1), "X-Im-Timestamp: %s", tsb);
	snprintf(h2, sizeof(h2), "X-Im-Signature: %s", sig);
	const char *const hs[] = {"Content-Type: application/json", h1, h2,
				  NULL};
	return http(&s, false, "POST", "/hooks/wh/commands", body,
		    strlen(body), sign ? hs : json_ct);
}

static const char *incident_status(const char *id)
{
	static char st[64];
	char path[64];
	snprintf(path, sizeof(path), "/api/v1/incidents/%s", id);
	reply r = http(&s, false, "GET", path, NULL, 0, NULL);
	json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
	snprintf(st, sizeof(st), "%s", sfield(j, "status"));
	json_decref(j);
	reply_free(&r);
	return st;
}

Test(webhook, runs_correctly_signed_commands_and_buttons)
{
	config(now_window, NULL);
	start();
	declare("SEV-2", "db slow");
	reply r = command("{\"user_id\":\"U1\",\"user_name\":\"alice\","
			  "\"channel\":\"C1\",\"text\":\"ack INC-1\"}",
			  SECRET, 0, true);
	cr_expect_eq(r.status, 200, "%s", r.body);
	json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
	cr_expect(j && strstr(sfield(j, "text"), "INC-1"), "reply: %s",
		  r.body);
	json_decref(j);
	reply_free(&r);
	cr_expect_str_eq(incident_status("INC-1"), "acknowledged");
	/* The same through the CLI, and who did it. */
	cr_expect_eq(run(ARGS("incident", "show", "INC-1", "--json")), 0, "%s",
		     err);
	cr_expect(strstr(out, "\"acknowledged\""), "%s", out);
	cr_expect(strstr(out, "\"webhook\""), "not via webhook: %s", out);
	/* A button of the example's templates. */
	r = command("{\"user_id\":\"U1\",\"user_name\":\"alice\","
		    "\"channel\":\"C1\",\"action_id\":\"im_resolve\","
		    "\"value\":\"INC-1\"}",
		    SECRET, 0, true);
	cr_expect_eq(r.status, 200, "%s", r.body);
	reply_free(&r);
	cr_expect_str_eq(incident_status("INC-1"), "resolved");
	finish();
}

Test(webhook, refuses_unsigned_forged_and_stale_commands)
{
	config(now_window, NULL);
	start();
	declare("SEV-2", "db slow");
	const char *ack = "{\"user_id\":\"U1\",\"channel\":\"C1\","
			  "\"text\":\"ack INC-1\"}";
	reply r = command(ack, "not-the-secret", 0, true);
	cr_expect_eq(r.status, 401, "%s", r.body);
	cr_expect(r.body && strstr(r.body, "bad signature"), "%s", r.body);
	reply_free(&r);
	r = command(ack, SECRET, (long long)time(NULL) - 301, true);
	cr_expect_eq(r.status, 401, "%s", r.body);
	cr_expect(r.body && strstr(r.body, "stale timestamp"), "%s", r.body);
	reply_free(&r);
	r = command(ack, SECRET, (long long)time(NULL) + 400, true);
	cr_expect_eq(r.status, 401, "%s", r.body);
	reply_free(&r);
	r = command(ack, SECRET, 0, false);
	cr_expect_eq(r.status, 401, "%s", r.body);
	reply_free(&r);
	cr_expect_str_eq(incident_status("INC-1"), "open");
	/* Signed, but the body is not a command. */
	r = command("{\"user_id\":\"U1\",\"text\":", SECRET, 0, true);
	cr_expect_eq(r.status, 400, "%s", r.body);
	cr_expect(r.body && strstr(r.body, "malformed JSON"), "%s", r.body);
	reply_free(&r);
	r = command("[1,2]", SECRET, 0, true);
	cr_expect_eq(r.status, 400, "%s", r.body);
	reply_free(&r);
	r = command("{\"user_id\":\"U1\",\"text\":7}", SECRET, 0, true);
	cr_expect_eq(r.status, 400, "%s", r.body);
	cr_expect(r.body && strstr(r.body, "\"text\" must be a string"), "%s",
		  r.body);
	reply_free(&r);
	r = command("{\"text\":\"ack INC-1\"}", SECRET, 0, true);
	cr_expect_eq(r.status, 400, "%s", r.body);
	cr_expect(r.body && strstr(r.body, "user_id"), "%s", r.body);
	reply_free(&r);
	cr_expect_str_eq(incident_status("INC-1"), "open");
	/* Still serving: a good one goes through. */
	r = command(ack, SECRET, 0, true);
	cr_expect_eq(r.status, 200, "%s", r.body);
	reply_free(&r);
	cr_expect_str_eq(incident_status("INC-1"), "acknowledged");
	finish();
}

Test(webhook, runs_a_replayed_command_once)
{
	config(now_window, NULL);
	start();
	const char *decl = "{\"user_id\":\"U1\",\"channel\":\"C1\","
			   "\"text\":\"declare replayed --sev SEV-3\"}";
	long long ts = (long long)time(NULL);
	reply r = command(decl, SECRET, ts, true);
	cr_expect_eq(r.status, 200, "%s", r.body);
	reply_free(&r);
	r = command(decl, SECRET, ts, true);
	cr_expect_eq(r.status, 409, "%s", r.body);
	cr_expect(r.body && strstr(r.body, "replayed"), "%s", r.body);
	reply_free(&r);
	r = http(&s, false, "GET", "/api/v1/incidents", NULL, 0, NULL);
	json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
	cr_expect_eq(json_array_size(json_object_get(j, "items")), 1,
		     "declared twice: %s", r.body);
	json_decref(j);
	reply_free(&r);
	finish();
}

/* The first signed request to `channel` at the fake, or NULL. */
static json_t *request_to(const char *channel)
{
	json_t *reqs = fp_requests(fp), *found = NULL;
	for (size_t i = 0; i < json_array_size(reqs) && !found; i++) {
		json_t *r = json_array_get(reqs, i);
		if (!strcmp(sfield(r, "channel"), channel))
			found = json_incref(r);
	}
	json_decref(reqs);
	return found;
}

static json_t *wait_request_to(const char *channel, double secs)
{
	json_t *r = NULL;
	for (double t = 0; t < secs && !(r = request_to(channel)); t += 0.05)
		sleep_s(0.05);
	return r;
}

Test(webhook, posts_late_results_signed_to_response_url_or_channel)
{
	/* testconn's `sleep` outlasts the command budget. */
	config("  batch_window: 0s\n  command_budget: 300ms\n",
	       "    - {id: tc, module: testconn}\n");
	start();
	char body[512];
	snprintf(body, sizeof(body),
		 "{\"user_id\":\"U1\",\"channel\":\"C1\",\"text\":\"sleep "
		 "700\",\"response_url\":\"%s/channels/RU/messages\"}",
		 fp_url(fp));
	reply r = command(body, SECRET, 0, true);
	cr_expect_eq(r.status, 200, "%s", r.body);
	json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
	cr_expect_str_eq(sfield(j, "status"), "working", "%s", r.body);
	json_decref(j);
	reply_free(&r);
	json_t *late = wait_request_to("RU", 10);
	cr_assert(late, "no late result at response_url");
	cr_expect_str_eq(sfield(json_object_get(late, "body"), "text"),
			 "slept 700 ms");
	char want[160];
	signature(SECRET, sfield(late, "timestamp"), sfield(late, "raw"),
		  strlen(sfield(late, "raw")), want, sizeof(want));
	cr_expect_str_eq(sfield(late, "signature"), want);
	json_decref(late);
	/* Without a response_url: to the url of the command's channel. */
	r = command("{\"user_id\":\"U1\",\"channel\":\"C9\","
		    "\"text\":\"sleep 600\"}",
		    SECRET, 0, true);
	cr_expect_eq(r.status, 200, "%s", r.body);
	reply_free(&r);
	late = wait_request_to("C9", 10);
	cr_assert(late, "no late result in the channel");
	cr_expect_str_eq(sfield(json_object_get(late, "body"), "text"),
			 "slept 600 ms");
	json_decref(late);
	finish();
}

Test(webhook, is_unconfigured_without_url_and_secret)
{
	srv_conf(&s, "10-webhook.yaml",
		 "plugins:\n  instances:\n    - {id: wh, module: webhook}\n"
		 "    - {id: wh2, module: webhook, config: {url: "
		 "\"http://127.0.0.1:9/{channel}\"}}\n");
	start();
	cr_expect_eq(run(ARGS("plugins", "list")), 0, "%s", err);
	cr_expect(strstr(out, "set url and secret"), "%s", out);
	cr_expect(strstr(out, "set secret"), "%s", out);
	reply r = http(&s, false, "POST", "/hooks/wh/commands", "{}", 2,
		       json_ct);
	cr_expect_neq(r.status, 200, "an unconfigured instance serves");
	reply_free(&r);
	finish();
}
