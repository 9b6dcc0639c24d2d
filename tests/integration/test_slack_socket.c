/* The Slack connector in Socket Mode against the fake Slack's WebSocket
 * endpoint: hello, every envelope acknowledged by its envelope_id within
 * 3 s (slash commands with their answer as the ack payload), reconnects
 * on refresh_requested and on a dropped link, and a stop on
 * link_disabled; chatops_connection_status follows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "slack_util.h"

static void up(void)
{
	slack_start_raw("        mode: socket\n"
			"        bot_token: xoxb-test\n"
			"        app_token: xapp-test\n"
			"        default_channel: C0GENERAL\n",
			"");
	cr_assert(fake_slack_ws_wait_hellos(slack_fake, 1, 5000),
		  "Socket Mode did not connect");
}

TestSuite(slack_socket, .init = up, .fini = slack_stop, .timeout = 60);

/* Polls the metric until it reads `want` (true) or 5 s pass. */
static bool gauge_is(int want)
{
	char line[128];
	snprintf(line, sizeof(line),
		 "chatops_connection_status{platform=\"slack\","
		 "instance=\"slack\"} %d\n",
		 want);
	for (int i = 0; i < 100; i++) {
		reply m = http(&slack_srv, true, "GET", "/metrics", NULL, 0,
			       NULL);
		bool ok = m.body && strstr(m.body, line);
		reply_free(&m);
		if (ok)
			return true;
		sleep_ms(50);
	}
	return false;
}

static json_t *status_detail(void)
{
	reply r = http(&slack_srv, false, "GET",
		       "/api/v1/admin/connectors/slack/status", NULL, 0, NULL);
	json_t *j = slack_json(&r);
	reply_free(&r);
	json_t *d = json_incref(json_object_get(j, "detail"));
	json_decref(j);
	return d;
}

static json_t *slash(const char *text, const char *name)
{
	char rurl[256];
	fake_slack_response_url(slack_fake, name, rurl, sizeof(rurl));
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "command",
			 "/incident", "text", text, "user_id", "U1",
			 "user_name", "ada", "channel_id", "C0GENERAL",
			 "team_id", "T0ACME", "response_url", rurl,
			 "trigger_id", "1.2.3");
}

Test(slack_socket, connects_and_reports_it)
{
	cr_expect(gauge_is(1));
	json_t *d = status_detail();
	cr_expect(json_is_true(json_object_get(d, "connected")));
	cr_expect_str_eq(json_string_value(json_object_get(d, "mode")),
			 "socket");
	cr_expect_str_eq(json_string_value(json_object_get(d, "connection")),
			 "connected");
	json_decref(d);
	json_t *open = fake_slack_last(slack_fake, "apps.connections.open");
	cr_expect_str_eq(json_string_value(json_object_get(open, "auth")),
			 "Bearer xapp-test", "opened with the app token");
	json_decref(open);
}

Test(slack_socket, acks_a_slash_command_with_its_answer)
{
	json_t *p = slash("declare Disk full --sev SEV-3", "s1");
	char id[64];
	double t0 = slack_now_ms();
	cr_assert(fake_slack_ws_envelope(slack_fake, "slash_commands", p, true,
					 id, sizeof(id)));
	json_t *ack = fake_slack_ws_wait_ack(slack_fake, id, 3000);
	double ms = slack_now_ms() - t0;
	cr_assert(ack, "no ack within 3 s");
	cr_expect_lt(ms, 3000);
	const json_t *pl = json_object_get(ack, "payload");
	const char *text = json_string_value(json_object_get(pl, "text"));
	json_t *rec = NULL;
	if (text && strstr(text, "Working on")) {
		/* A loaded machine took longer than the 500 ms budget: the
		 * answer must then come through response_url, whole. */
		cr_assert(fake_slack_wait(slack_fake, "response_url", 1, 5000));
		rec = fake_slack_last(slack_fake, "response_url");
		pl = json_object_get(rec, "json");
		text = json_string_value(json_object_get(pl, "text"));
	}
	cr_expect_str_eq(json_string_value(json_object_get(pl, "response_type")),
			 "in_channel");
	cr_expect(text && strstr(text, "INC-1"), "%s", text);
	json_decref(rec);
	json_decref(ack);
	json_decref(p);
}

Test(slack_socket, acks_a_slow_command_in_time_and_follows_up)
{
	json_t *p = slash("sleep 2000", "slow");
	char id[64];
	double t0 = slack_now_ms();
	cr_assert(fake_slack_ws_envelope(slack_fake, "slash_commands", p, true,
					 id, sizeof(id)));
	json_t *ack = fake_slack_ws_wait_ack(slack_fake, id, 3000);
	cr_assert(ack, "no ack within 3 s");
	cr_expect_lt(slack_now_ms() - t0, 3000, "Slack's ack deadline");
	cr_expect(strstr(json_string_value(json_object_get(
			     json_object_get(ack, "payload"), "text")),
			 "Working on"));
	cr_assert(fake_slack_wait(slack_fake, "response_url", 1, 5000));
	json_t *rec = fake_slack_last(slack_fake, "response_url");
	cr_expect_str_eq(json_string_value(json_object_get(
			     json_object_get(rec, "json"), "text")),
			 "slept 2000 ms");
	json_decref(rec);
	json_decref(ack);
	json_decref(p);
}

Test(slack_socket, acks_events_and_interactions_at_once)
{
	json_t *ev = json_pack("{s:s,s:s,s:{s:s}}", "type", "event_callback",
			       "event_id", "Ev0SOCK", "event", "type",
			       "app_mention");
	char id[64];
	cr_assert(fake_slack_ws_envelope(slack_fake, "events_api", ev, false,
					 id, sizeof(id)));
	json_t *ack = fake_slack_ws_wait_ack(slack_fake, id, 3000);
	cr_expect(ack);
	cr_expect_null(json_object_get(ack, "payload"));
	json_decref(ack);
	json_decref(ev);

	json_t *p = slash("declare Cache cold", "d");
	cr_assert(fake_slack_ws_envelope(slack_fake, "slash_commands", p, true,
					 id, sizeof(id)));
	json_decref(fake_slack_ws_wait_ack(slack_fake, id, 3000));
	json_decref(p);
	char rurl[256];
	fake_slack_response_url(slack_fake, "press", rurl, sizeof(rurl));
	json_t *ia = json_pack(
	    "{s:s,s:{s:s,s:s},s:{s:s},s:{s:s},s:s,s:[{s:s,s:s}]}", "type",
	    "block_actions", "user", "id", "U2", "username", "bob", "team",
	    "id", "T0ACME", "channel", "id", "C0GENERAL", "response_url", rurl,
	    "actions", "action_id", "im_ack", "value", "INC-1");
	cr_assert(fake_slack_ws_envelope(slack_fake, "interactive", ia, false,
					 id, sizeof(id)));
	ack = fake_slack_ws_wait_ack(slack_fake, id, 3000);
	cr_expect(ack, "interactive envelopes are acked");
	json_decref(ack);
	cr_expect(fake_slack_wait(slack_fake, "response_url", 1, 5000),
		  "the button's result goes to response_url");
	json_decref(ia);
}

Test(slack_socket, answers_through_response_url_when_the_ack_cannot_carry_it)
{
	json_t *p = slash("help", "noroom");
	char id[64];
	cr_assert(fake_slack_ws_envelope(slack_fake, "slash_commands", p, false,
					 id, sizeof(id)));
	json_t *ack = fake_slack_ws_wait_ack(slack_fake, id, 3000);
	cr_assert(ack);
	cr_expect_null(json_object_get(ack, "payload"));
	cr_assert(fake_slack_wait(slack_fake, "response_url", 1, 5000));
	json_t *rec = fake_slack_last(slack_fake, "response_url");
	cr_expect(strstr(json_string_value(json_object_get(
			     json_object_get(rec, "json"), "text")),
			 "Usage"));
	json_decref(rec);
	json_decref(ack);
	json_decref(p);
}

Test(slack_socket, reconnects_on_refresh_requested)
{
	size_t opens = fake_slack_count(slack_fake, "apps.connections.open");
	fake_slack_ws_disconnect(slack_fake, "refresh_requested");
	cr_assert(fake_slack_ws_wait_hellos(slack_fake, 2, 5000),
		  "no new connection");
	cr_expect_eq(fake_slack_count(slack_fake, "apps.connections.open"),
		     opens + 1, "a fresh apps.connections.open");
	cr_expect(gauge_is(1));
	for (int i = 0; i < 50 && fake_slack_ws_live(slack_fake) != 1; i++)
		sleep_ms(50);
	cr_expect_eq(fake_slack_ws_live(slack_fake), 1, "the old link closed");
	json_t *p = slash("help", "h");
	char id[64];
	cr_assert(fake_slack_ws_envelope(slack_fake, "slash_commands", p, true,
					 id, sizeof(id)));
	json_t *ack = fake_slack_ws_wait_ack(slack_fake, id, 3000);
	cr_expect(ack, "the new link works");
	json_decref(ack);
	json_decref(p);
}

Test(slack_socket, reconnects_after_a_dropped_link)
{
	fake_slack_ws_drop(slack_fake);
	cr_assert(fake_slack_ws_wait_hellos(slack_fake, 2, 8000),
		  "no reconnect after a drop");
	cr_expect(gauge_is(1));
	json_t *d = status_detail();
	cr_expect_geq(json_integer_value(json_object_get(d, "connects")), 2);
	json_decref(d);
}

Test(slack_socket, stops_on_link_disabled)
{
	fake_slack_ws_disconnect(slack_fake, "link_disabled");
	cr_expect(gauge_is(0));
	sleep_ms(1500);
	cr_expect_eq(fake_slack_ws_hellos(slack_fake), 1, "no reconnect");
	cr_expect_eq(fake_slack_count(slack_fake, "apps.connections.open"), 1);
	json_t *d = status_detail();
	cr_expect_str_eq(json_string_value(json_object_get(d, "connection")),
			 "link_disabled");
	cr_expect(strstr(json_string_value(json_object_get(d, "socket_error")),
			 "Socket Mode"));
	json_decref(d);
	char *out = NULL;
	const char *args[] = {"connector", "slack", "status", NULL};
	cr_expect_eq(slack_cli(&out, args), 1, "%s", out);
	cr_expect(strstr(out, "link_disabled"), "%s", out);
	free(out);
	/* The instance is failed, so the reload the message asks for makes a
	 * new one, which connects again. */
	const char *reload[] = {"plugins", "reload", NULL};
	slack_cli(&out, reload);
	free(out);
	long long end = slack_now_ms() + 5000;
	while (fake_slack_ws_hellos(slack_fake) < 2 && slack_now_ms() < end)
		sleep_ms(50);
	cr_expect_eq(fake_slack_ws_hellos(slack_fake), 2,
		     "the reload did not reconnect the link");
}

/* --- wss:// ---------------------------------------------------------------- */

static char ca_path[128];

static void tls_on(fake_slack *f, const char *dir)
{
	cr_assert(fake_slack_ws_tls(f, ca_path));
}

static void up_tls(bool trust)
{
	slack_prepare = tls_on;
	snprintf(ca_path, sizeof(ca_path), "/tmp/im-slack-ca-%d.pem",
		 (int)getpid());
	char cfg[512];
	snprintf(cfg, sizeof(cfg),
		 "        mode: socket\n"
		 "        bot_token: xoxb-test\n"
		 "        app_token: xapp-test\n"
		 "        tls_ca_file: %s\n",
		 trust ? ca_path : "");
	slack_start_raw(cfg, "");
	slack_prepare = NULL;
}

static void up_tls_trusted(void)
{
	up_tls(true);
}

static void up_tls_untrusted(void)
{
	up_tls(false);
}

static void down_tls(void)
{
	slack_stop();
	unlink(ca_path);
}

Test(slack_wss, connects_over_tls_and_acks, .init = up_tls_trusted,
     .fini = down_tls, .timeout = 60)
{
	cr_assert(fake_slack_ws_wait_hellos(slack_fake, 1, 5000),
		  "no wss:// connection");
	json_t *p = slash("help", "h");
	char id[64];
	cr_assert(fake_slack_ws_envelope(slack_fake, "slash_commands", p, true,
					 id, sizeof(id)));
	json_t *ack = fake_slack_ws_wait_ack(slack_fake, id, 3000);
	cr_expect(ack, "no ack over TLS");
	cr_expect(strstr(json_string_value(json_object_get(
			     json_object_get(ack, "payload"), "text")),
			 "Usage"));
	json_decref(ack);
	json_decref(p);
	fake_slack_ws_disconnect(slack_fake, "refresh_requested");
	cr_expect(fake_slack_ws_wait_hellos(slack_fake, 2, 5000),
		  "no TLS reconnect");
}

Test(slack_wss, refuses_a_certificate_it_does_not_trust,
     .init = up_tls_untrusted, .fini = down_tls, .timeout = 60)
{
	json_t *d = NULL;
	for (int i = 0; i < 100; i++) {
		json_decref(d);
		d = status_detail();
		if (json_object_get(d, "socket_error"))
			break;
		sleep_ms(50);
	}
	cr_expect_eq(fake_slack_ws_hellos(slack_fake), 0);
	const char *err = json_string_value(json_object_get(d, "socket_error"));
	cr_expect(err && strstr(err, "TLS"), "%s", err ? err : "(none)");
	cr_expect(json_is_false(json_object_get(d, "connected")));
	json_decref(d);
}
