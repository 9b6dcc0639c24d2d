/* The notification pipeline end to end: the real `im serve`, the test
 * connector (tests/plugins/testconn.c) and the fake platform of
 * tests/fakes, on loopback. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "../fakes/fake_platform.h"
#include "harness.h"

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

TestSuite(notify, .init = setup, .fini = teardown, .timeout = 120);

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The connector instance `tc` pointed at the fake, plus `extra` YAML. */
static void config(const char *extra)
{
	srv_conf(&s, "10-notify.yaml",
		 "plugins:\n  instances:\n"
		 "    - id: tc\n      module: testconn\n      config:\n"
		 "        base_url: %s\n        timeout: 1s\n"
		 "%s",
		 fp_url(fp), extra);
}

static void start(void)
{
	srv_must_start(&s);
}

/* Stops the server and wants a clean exit (leaks fail under ASan). */
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

static void declare(const char *sev, const char *title)
{
	char body[256];
	snprintf(body, sizeof(body), "{\"title\":\"%s\",\"severity\":\"%s\"}",
		 title, sev);
	reply r = http(&s, false, "POST", "/api/v1/incidents", body,
		       strlen(body), json_ct);
	cr_assert_eq(r.status, 201, "%s", r.body);
	reply_free(&r);
}

static void transition(const char *id, const char *verb)
{
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/incidents/%s/%s", id, verb);
	reply r = http(&s, false, "POST", path, "{}", 2, json_ct);
	cr_assert_eq(r.status, 200, "%s", r.body);
	reply_free(&r);
}

static size_t accepted(void)
{
	json_t *m = fp_messages(fp);
	size_t n = json_array_size(m);
	json_decref(m);
	return n;
}

/* Waits until the fake accepted `n` messages; false after `secs`. */
static bool wait_accepted(size_t n, double secs)
{
	for (double t = 0; t < secs; t += 0.05) {
		if (accepted() >= n)
			return true;
		sleep_s(0.05);
	}
	return accepted() >= n;
}

static double metric(const char *series)
{
	reply r = http(&s, true, "GET", "/metrics", NULL, 0, NULL);
	char line[256];
	snprintf(line, sizeof(line), "\n%s", series); /* not the # HELP */
	const char *p = strstr(r.body, line);
	double v = p ? strtod(p + strlen(line), NULL) : -1;
	reply_free(&r);
	return v;
}

static const char *text_of(const json_t *msg)
{
	return json_string_value(
	    json_object_get(json_object_get(msg, "body"), "text"));
}

/* No dedup key accepted twice. */
static void expect_no_duplicates(void)
{
	json_t *m = fp_messages(fp), *seen = json_object();
	size_t i;
	json_t *msg;
	json_array_foreach(m, i, msg)
	{
		const char *k = sfield(msg, "dedup");
		if (json_object_get(seen, k)) {
			char *all = json_dumps(m, JSON_COMPACT);
			cr_expect(false, "%s delivered twice: %s", k, all);
			free(all);
		}
		json_object_set_new(seen, k, json_true());
	}
	json_decref(seen);
	json_decref(m);
}

static const char *fast = "chatops:\n  batch_window: 1s\n"
			  "  rate_limits: {tc: {per_channel: 50, burst: 50}}\n";

Test(notify, delivers_every_committed_notification_exactly_once)
{
	fp_set_limits(fp, 50, 50);
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
		 "%ssubscriptions:\n  - {connector: tc, channel: C1}\n"
		 "  - {connector: tc, channel: C2, min_severity: SEV-2}\n",
		 fast);
	config(yaml);
	start();
	for (int i = 0; i < 8; i++)
		declare("SEV-1", "down");
	for (int i = 1; i <= 8; i++) {
		char id[16];
		snprintf(id, sizeof(id), "INC-%d", i);
		transition(id, "ack");
	}
	cr_assert(wait_accepted(32, 20), "only %zu of 32", accepted());
	sleep_s(0.5);
	cr_expect_eq(accepted(), 32);
	expect_no_duplicates();
	json_t *st = fp_stats(fp);
	cr_expect_eq(json_integer_value(json_object_get(st, "rate_limited")),
		     0);
	json_decref(st);
	cr_expect_eq(metric("chatops_messages_sent_total{platform=\"test\"} "),
		     32);
	cr_expect_eq(run(ARGS("chatops", "outbox", "list")), 0, "%s", err);
	cr_expect(strstr(out, "0 pending, 0 dead letters"), "%s", out);
	finish();
}

Test(notify, edits_in_update_mode_and_replies_in_thread_mode)
{
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
		 "%ssubscriptions:\n  - {connector: tc, channel: CU, mode: "
		 "update}\n  - {connector: tc, channel: CT, mode: thread}\n"
		 "  - {connector: tc, channel: CP, mode: post}\n",
		 fast);
	config(yaml);
	start();
	declare("SEV-1", "db down");
	cr_assert(wait_accepted(3, 10));
	transition("INC-1", "ack");
	cr_assert(wait_accepted(6, 10));
	json_t *m = fp_messages(fp);
	const char *first[3] = {0};
	const char *chans[] = {"CU", "CT", "CP"};
	size_t i;
	json_t *msg;
	json_array_foreach(m, i, msg)
	{
		int c = !strcmp(sfield(msg, "channel"), "CU")	? 0
			: !strcmp(sfield(msg, "channel"), "CT") ? 1
								: 2;
		const json_t *body = json_object_get(msg, "body");
		if (!first[c]) {
			first[c] = sfield(msg, "id");
			cr_expect_str_eq(sfield(msg, "method"), "POST");
			continue;
		}
		cr_expect(strstr(text_of(msg), "acknowledged"), "%s",
			  text_of(msg));
		if (c == 0) {
			cr_expect_str_eq(sfield(msg, "method"), "PATCH");
			cr_expect_str_eq(sfield(msg, "id"), first[0]);
		} else if (c == 1) {
			cr_expect_str_eq(sfield(msg, "method"), "POST");
			cr_expect_str_eq(sfield(body, "thread_id"), first[1]);
		} else {
			cr_expect_str_eq(sfield(msg, "method"), "POST");
			cr_expect_null(json_object_get(body, "thread_id"), "%s",
				       chans[c]);
		}
	}
	json_decref(m);
	finish();
}

Test(notify, posts_anew_at_once_when_the_message_to_edit_is_gone)
{
	fp_set_limits(fp, 50, 50);
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
		 "%ssubscriptions:\n  - {connector: tc, channel: CU, mode: "
		 "update}\n",
		 fast);
	config(yaml);
	start();
	declare("SEV-1", "db down");
	cr_assert(wait_accepted(1, 10));
	fp_reset(fp); /* the platform forgets the message: edits get 404 */
	transition("INC-1", "ack");
	cr_assert(wait_accepted(1, 10));
	json_t *reqs = fp_requests(fp);
	cr_assert_eq(json_array_size(reqs), 2, "one failed edit, one post");
	json_t *edit = json_array_get(reqs, 0), *post = json_array_get(reqs, 1);
	cr_expect_str_eq(sfield(edit, "method"), "PATCH");
	cr_expect_eq(json_integer_value(json_object_get(edit, "status")), 404);
	cr_expect_str_eq(sfield(post, "method"), "POST");
	cr_expect_eq(json_integer_value(json_object_get(post, "status")), 200);
	cr_expect(strstr(text_of(post), "acknowledged"), "%s", text_of(post));
	/* Same attempt, same row: no retry wait between the two. */
	cr_expect_str_eq(sfield(edit, "dedup"), sfield(post, "dedup"));
	cr_expect_lt(json_real_value(json_object_get(post, "t")) -
			 json_real_value(json_object_get(edit, "t")),
		     0.9);
	char first[32];
	snprintf(first, sizeof(first), "%s", sfield(post, "id"));
	json_decref(reqs);
	/* The new message is the one later events edit. */
	transition("INC-1", "resolve");
	cr_assert(wait_accepted(2, 10));
	json_t *m = fp_messages(fp);
	json_t *again = json_array_get(m, 1);
	cr_expect_str_eq(sfield(again, "method"), "PATCH");
	cr_expect_str_eq(sfield(again, "id"), first);
	json_decref(m);
	cr_expect_eq(run(ARGS("chatops", "outbox", "list")), 0, "%s", err);
	cr_expect(strstr(out, "0 pending, 0 dead letters"), "%s", out);
	finish();
}

Test(notify, sends_a_digest_when_the_window_closes)
{
	config("chatops:\n  batch_window: 1500ms\n"
	       "subscriptions:\n  - {connector: tc, channel: C1}\n");
	start();
	double t0 = now_s();
	declare("SEV-3", "slow a");
	declare("SEV-4", "slow b");
	declare("SEV-3", "slow c");
	sleep_s(1.0);
	cr_expect_eq(accepted(), 0, "nothing before the window closes");
	cr_assert(wait_accepted(1, 10));
	sleep_s(0.5);
	json_t *m = fp_messages(fp);
	cr_assert_eq(json_array_size(m), 1, "one digest");
	const json_t *d = json_array_get(m, 0);
	cr_expect(strstr(text_of(d), "3 incident updates"), "%s", text_of(d));
	cr_expect_str_eq(sfield(json_object_get(d, "body"), "event_type"),
			 "digest");
	double t = json_real_value(json_object_get(d, "t"));
	cr_expect_geq(t, t0 + 1.45, "digest %.3f s after the first commit",
		      t - t0);
	cr_expect_lt(t, t0 + 3.5);
	json_decref(m);
	finish();
}

Test(notify, sends_critical_notifications_without_waiting)
{
	config("chatops:\n  batch_window: 4s\n"
	       "subscriptions:\n  - {connector: tc, channel: C1}\n");
	start();
	declare("SEV-3", "minor");
	double t0 = now_s();
	declare("SEV-1", "major outage");
	cr_assert(wait_accepted(1, 3));
	json_t *m = fp_messages(fp);
	const json_t *c = json_array_get(m, 0);
	cr_expect(strstr(text_of(c), "SEV-1"), "%s", text_of(c));
	cr_expect_lt(json_real_value(json_object_get(c, "t")) - t0, 1.0);
	json_decref(m);
	sleep_s(1);
	cr_expect_eq(accepted(), 1, "the minor one still waits");
	cr_assert(wait_accepted(2, 8));
	finish();
}

Test(notify, waits_exactly_what_a_429_asks_before_the_next_send)
{
	/* We believe 10/s; the platform allows 1/s with no burst. */
	fp_set_limits(fp, 1, 1);
	config(
	    "chatops:\n  rate_limits: {tc: {per_channel: 10, burst: 10}}\n"
	    "subscriptions:\n  - {connector: tc, channel: C1, mode: post}\n");
	start();
	for (int i = 0; i < 4; i++)
		declare("SEV-1", "x");
	cr_assert(wait_accepted(4, 20), "%zu", accepted());
	json_t *reqs = fp_requests(fp);
	int limited = 0;
	size_t i;
	json_t *r;
	json_array_foreach(reqs, i, r)
	{
		if (json_integer_value(json_object_get(r, "status")) != 429)
			continue;
		limited++;
		double t = json_real_value(json_object_get(r, "t"));
		double ra = json_real_value(json_object_get(r, "retry_after"));
		const json_t *next = json_array_get(reqs, i + 1);
		cr_assert(next, "a 429 was the last request");
		double tn = json_real_value(json_object_get(next, "t"));
		cr_expect_geq(tn, t + ra - 0.002,
			      "sent %.3f s after a 429 asking for %.3f s",
			      tn - t, ra);
	}
	cr_expect_geq(limited, 1);
	cr_expect_leq(limited, 4, "one 429 per wait, no hammering");
	json_decref(reqs);
	cr_expect_geq(
	    metric("chatops_rate_limit_hits_total{platform=\"test\"} "), 1);
	finish();
}

static bool saw_429(void)
{
	json_t *reqs = fp_requests(fp);
	bool seen = false;
	size_t i;
	json_t *r;
	json_array_foreach(reqs, i, r) seen |=
	    json_integer_value(json_object_get(r, "status")) == 429;
	json_decref(reqs);
	return seen;
}

static void declare_for(const char *service)
{
	char body[256];
	snprintf(body, sizeof(body),
		 "{\"title\":\"for %s\",\"severity\":\"SEV-1\","
		 "\"service\":\"%s\"}",
		 service, service);
	reply r = http(&s, false, "POST", "/api/v1/incidents", body,
		       strlen(body), json_ct);
	cr_assert_eq(r.status, 201, "%s", r.body);
	reply_free(&r);
}

Test(notify, holds_every_channel_after_a_global_rate_limit)
{
	config("chatops:\n  rate_limits: {tc: {per_channel: 50, burst: 50}}\n"
	       "subscriptions:\n"
	       "  - {connector: tc, channel: C1, mode: post, services: [a]}\n"
	       "  - {connector: tc, channel: C2, mode: post, services: [b]}\n");
	start();
	fp_set_mode(fp, FPM_GLOBAL_429, 1);
	declare_for("a"); /* C1 is answered with a global 429 */
	/* Wait until the pipeline has the 429 answer (not only until the
	 * fake saw the request): a send can only respect what it knows. */
	const char *hits = "chatops_rate_limit_hits_total{platform=\"test\"} ";
	for (int i = 0; i < 300 && metric(hits) < 1; i++)
		sleep_s(0.01);
	cr_assert(saw_429(), "the fake answered a global 429");
	cr_assert_geq(metric(hits), 1, "the pipeline counted it");
	double t429 = now_s();
	declare_for("b"); /* C2 has never been limited itself */
	cr_assert(wait_accepted(2, 10), "%zu", accepted());
	json_t *m = fp_messages(fp);
	size_t i;
	json_t *msg;
	json_array_foreach(m, i, msg)
	{
		if (strcmp(sfield(msg, "channel"), "C2"))
			continue;
		double t = json_real_value(json_object_get(msg, "t"));
		cr_expect_geq(t - t429, 0.85,
			      "C2 sent %.3f s after a global 429 asking for 1 s",
			      t - t429);
	}
	json_decref(m);
	expect_no_duplicates();
	finish();
}

Test(notify, retries_server_errors_garbage_drops_and_hangs)
{
	config("chatops:\n  batch_window: 0s\n"
	       "subscriptions:\n  - {connector: tc, channel: C1}\n");
	start();
	fp_mode modes[] = {FPM_500, FPM_GARBAGE, FPM_DROP, FPM_HANG};
	for (size_t k = 0; k < 4; k++) {
		fp_set_mode(fp, modes[k], k == 3 ? 1 : 2);
		char title[32];
		snprintf(title, sizeof(title), "t%zu", k);
		declare("SEV-1", title);
		cr_assert(wait_accepted(k + 1, 15), "mode %d: %zu", modes[k],
			  accepted());
		fp_set_mode(fp, FPM_NORMAL, -1);
	}
	json_t *st = fp_stats(fp);
	cr_expect_eq(json_integer_value(json_object_get(st, "errors")), 7);
	json_decref(st);
	expect_no_duplicates();
	cr_expect_geq(metric("im_notify_failures_total{platform=\"test\","
			     "reason=\"server_error\"} "),
		      2);
	cr_expect_geq(metric("im_notify_failures_total{platform=\"test\","
			     "reason=\"timeout\"} "),
		      1);
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

Test(notify, dead_letters_client_errors_until_retried)
{
	fp_set_unknown_channel(fp, "C1");
	config("chatops:\n  batch_window: 0s\n"
	       "subscriptions:\n  - {connector: tc, channel: C1}\n");
	start();
	declare("SEV-2", "lost");
	long long id = 0;
	for (int i = 0; i < 100 && !id; i++) {
		sleep_s(0.05);
		id = first_dead_id();
	}
	cr_assert_gt(id, 0, "no dead letter");
	cr_expect_eq(run(ARGS("chatops", "outbox", "list", "--dead")), 0);
	cr_expect(strstr(out, "channel_not_found"), "%s", out);
	cr_expect(strstr(out, "hint: the test platform refused"), "%s", out);
	cr_expect(strstr(out, "im.incident.declare"), "%s", out);
	sleep_s(2.2); /* the gauge is refreshed every 2 s */
	cr_expect_eq(metric("im_notify_dead_letters "), 1);
	cr_expect_eq(accepted(), 0);
	fp_set_unknown_channel(fp, NULL);
	char ids[32];
	snprintf(ids, sizeof(ids), "%lld", id);
	cr_expect_eq(run(ARGS("chatops", "outbox", "retry", ids)), 0, "%s",
		     err);
	cr_assert(wait_accepted(1, 5));
	cr_expect_eq(run(ARGS("chatops", "outbox", "retry", ids)), 1);
	cr_expect(strstr(err, "no outbox row"), "%s", err);
	finish();
}

Test(notify, delivers_everything_committed_before_a_kill_9)
{
	fp_set_limits(fp, 10, 3);
	config("chatops:\n  rate_limits: {tc: {per_channel: 10, burst: 3}}\n"
	       "subscriptions:\n  - {connector: tc, channel: C1, mode: post}\n"
	       "  - {connector: tc, channel: C2, mode: post}\n"
	       "  - {connector: tc, channel: C3, mode: post}\n");
	start();
	for (int i = 0; i < 30; i++)
		declare("SEV-1", "x");
	sleep_s(1.0);
	size_t before = accepted();
	kill(s.pid, SIGKILL);
	int status;
	waitpid(s.pid, &status, 0);
	s.pid = 0;
	cr_expect_lt(before, 90, "killed before the end (%zu sent)", before);
	start();
	cr_assert(wait_accepted(90, 30), "%zu of 90", accepted());
	sleep_s(0.5);
	json_t *m = fp_messages(fp), *keys = json_object();
	size_t i, dups = 0;
	json_t *msg;
	json_array_foreach(m, i, msg)
	{
		const char *k = sfield(msg, "dedup");
		dups += json_object_get(keys, k) != NULL;
		json_object_set_new(keys, k, json_true());
	}
	cr_expect_eq(json_object_size(keys), 90, "every row delivered");
	cr_expect_leq(dups, 3, "at most one in flight per channel");
	json_decref(keys);
	json_decref(m);
	finish();
}

Test(notify, manages_subscriptions_from_the_cli)
{
	config(fast);
	start();
	cr_expect_eq(run(ARGS("chatops", "subscriptions", "add", "--connector",
			      "ghost", "--channel", "C1")),
		     1);
	cr_expect(strstr(err, "unknown connector instance 'ghost'"), "%s", err);
	cr_expect_eq(run(ARGS("chatops", "subscriptions", "add", "--connector",
			      "tc", "--channel", "#general")),
		     1);
	cr_expect(strstr(err, "channel id"), "%s", err);
	cr_expect_eq(
	    run(ARGS("chatops", "subscriptions", "add", "--connector", "tc")),
	    2);
	cr_expect_eq(run(ARGS("chatops", "subscriptions", "add", "--connector",
			      "tc", "--channel", "C7", "--min-severity",
			      "SEV-2", "--events", "im.incident.declare")),
		     0, "%s", err);
	cr_expect(strstr(out, "subscription 1 added"), "%s", out);
	cr_expect_eq(run(ARGS("chatops", "subscriptions", "list")), 0);
	cr_expect(strstr(out, "C7"), "%s", out);
	declare("SEV-3", "too minor");
	declare("SEV-2", "major");
	cr_assert(wait_accepted(1, 5));
	sleep_s(1.5);
	cr_expect_eq(accepted(), 1);
	json_t *m = fp_messages(fp);
	cr_expect_str_eq(sfield(json_array_get(m, 0), "channel"), "C7");
	json_decref(m);
	/* Stored: still there after a restart. */
	cr_expect_eq(srv_stop(&s), 0);
	start();
	cr_expect_eq(run(ARGS("chatops", "subscriptions", "list", "--json")),
		     0);
	cr_expect(strstr(out, "\"C7\""), "%s", out);
	cr_expect_eq(run(ARGS("chatops", "subscriptions", "remove", "1")), 0);
	cr_expect_eq(run(ARGS("chatops", "subscriptions", "remove", "1")), 1);
	declare("SEV-1", "nobody hears");
	sleep_s(1);
	cr_expect_eq(accepted(), 1);
	finish();
}

Test(notify, warns_about_subscriptions_that_cannot_work)
{
	config("    - {id: g, module: good, config: {greeting: hi}}\n"
	       "subscriptions:\n"
	       "  - {connector: tc, channel: C1}\n"
	       "  - {connector: nope, channel: C2}\n"
	       "  - {connector: tc, channel: \"#general\"}\n"
	       "  - {connector: g, channel: C3}\n");
	start();
	char *log = srv_log(&s);
	cr_expect(strstr(log, "10-notify.yaml:11: subscriptions[1].connector: "
			      "unknown connector instance 'nope'"),
		  "%s", log);
	cr_expect(strstr(log, "10-notify.yaml:12: subscriptions[2]: channel "
			      "'#general' is a channel name"),
		  "%s", log);
	cr_expect(strstr(log, "connector 'g' (platform test) cannot send"),
		  "%s", log);
	free(log);
	reply r = http(&s, false, "POST", "/api/v1/admin/plugins/reload", "", 0,
		       NULL);
	cr_expect_eq(r.status, 200, "%s", r.body);
	reply_free(&r);
	log = srv_log(&s);
	const char *again = strstr(log, "unknown connector instance 'nope'");
	cr_expect(again && strstr(again + 1, "unknown connector instance"),
		  "warned again on reload:\n%s", log);
	free(log);
	finish();
}

Test(notify, keeps_a_runtime_batch_window_across_restarts)
{
	config("chatops:\n  batch_window: 5s\n"
	       "subscriptions:\n  - {connector: tc, channel: C1}\n");
	start();
	cr_expect_eq(
	    run(ARGS("chatops", "configure", "--batch-window", "250ms")), 0,
	    "%s", err);
	cr_expect(strstr(out, "0.25s (set by im chatops configure"), "%s", out);
	double t0 = now_s();
	declare("SEV-4", "quick digest");
	cr_assert(wait_accepted(1, 3));
	json_t *m = fp_messages(fp);
	cr_expect_lt(
	    json_real_value(json_object_get(json_array_get(m, 0), "t")) - t0,
	    1.5);
	json_decref(m);
	cr_expect_eq(srv_stop(&s), 0);
	start();
	cr_expect_eq(run(ARGS("chatops", "configure", "--json")), 0);
	json_t *j = json_loads(out, 0, NULL);
	cr_expect_float_eq(
	    json_number_value(json_object_get(j, "batch_window")), 0.25, 1e-9);
	cr_expect_str_eq(sfield(j, "batch_window_source"), "runtime");
	json_decref(j);
	cr_expect_eq(
	    run(ARGS("chatops", "configure", "--batch-window", "default")), 0);
	cr_expect(strstr(out, "5s (from the config)"), "%s", out);
	/* ... and in effect at once, not after the next reload. */
	cr_expect_eq(run(ARGS("chatops", "configure", "--json")), 0);
	j = json_loads(out, 0, NULL);
	cr_expect_float_eq(
	    json_number_value(json_object_get(j, "batch_window")), 5, 1e-9,
	    "%s", out);
	cr_expect_str_eq(sfield(j, "batch_window_source"), "config");
	json_decref(j);
	cr_expect_eq(
	    run(ARGS("chatops", "configure", "--batch-window", "soon")), 1);
	finish();
}
