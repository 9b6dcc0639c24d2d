/* The Slack connector's configuration as an operator meets it (channel
 * names refused with a hint, empty credentials leave it unconfigured) and
 * its deliveries through the notification pipeline: posts, edits, thread
 * replies, and dead letters that say what to do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "slack_util.h"

static json_t *status_json(void)
{
	char *out = NULL;
	const char *args[] = {"connector", "slack", "status", "--json", NULL};
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

TestSuite(slack_setup, .fini = slack_stop, .timeout = 60);

Test(slack_setup, refuses_a_channel_name_with_a_hint)
{
	slack_start("        default_channel: \"#general\"\n", "");
	json_t *st = status_json();
	cr_expect_str_eq(s_(st, "state"), "failed");
	cr_expect(strstr(s_(st, "reason"), "use the channel id (C0123ABC)"),
		  "%s", s_(st, "reason"));
	json_decref(st);
	reply r = slack_command("help", "x");
	cr_expect_eq(r.status, 503, "a failed instance serves nothing");
	reply_free(&r);
	reply h = http(&slack_srv, false, "GET", "/health", NULL, 0, NULL);
	cr_expect_eq(h.status, 200);
	reply_free(&h);
}

Test(slack_setup, refuses_channel_names_in_severity_routing)
{
	slack_start("        notification_channels: {SEV-1: \"#incidents\"}\n",
		    "");
	json_t *st = status_json();
	cr_expect_str_eq(s_(st, "state"), "failed");
	cr_expect(strstr(s_(st, "reason"), "notification_channels.SEV-1"),
		  "%s", s_(st, "reason"));
	json_decref(st);
}

Test(slack_setup, refuses_a_bad_mode_and_swapped_tokens)
{
	slack_start_raw("        mode: websocket\n"
			"        bot_token: xoxb-test\n"
			"        signing_secret: s\n",
			"");
	json_t *st = status_json();
	cr_expect_str_eq(s_(st, "state"), "failed");
	cr_expect(strstr(s_(st, "reason"), "use http or socket"));
	json_decref(st);
}

Test(slack_setup, empty_credentials_leave_it_unconfigured)
{
	slack_start_raw("        bot_token: \"\"\n        signing_secret: \"\"\n",
			"");
	char *out = NULL;
	const char *args[] = {"connector", "slack", "status", NULL};
	cr_expect_eq(slack_cli(&out, args), 1, "%s", out);
	cr_expect(strstr(out, "unconfigured"), "%s", out);
	cr_expect(strstr(out, "set bot_token (SLACK_BOT_TOKEN"), "%s", out);
	cr_expect(strstr(out, "signing_secret (SLACK_SIGNING_SECRET)"), "%s",
		  out);
	free(out);
	const char *list[] = {"plugins", "list", NULL};
	slack_cli(&out, list);
	cr_expect(strstr(out, "unconfigured"), "%s", out);
	free(out);
}

Test(slack_setup, socket_mode_without_app_token_is_unconfigured)
{
	slack_start_raw("        mode: socket\n        bot_token: xoxb-test\n",
			"");
	json_t *st = status_json();
	cr_expect_str_eq(s_(st, "state"), "unconfigured");
	cr_expect(strstr(s_(st, "reason"), "SLACK_APP_TOKEN"), "%s",
		  s_(st, "reason"));
	json_decref(st);
}

/* --- the pipeline ---------------------------------------------------------- */

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

static json_t *dead_letters(size_t want)
{
	json_t *items = NULL;
	for (int i = 0; i < 100; i++) {
		reply r = http(&slack_srv, false, "GET",
			       "/api/v1/admin/outbox?dead=1", NULL, 0, NULL);
		json_t *j = slack_json(&r);
		reply_free(&r);
		json_decref(items);
		items = json_incref(json_object_get(j, "items"));
		json_decref(j);
		if (json_array_size(items) >= want)
			break;
		struct timespec ts = {0, 50000000L};
		nanosleep(&ts, NULL);
	}
	return items;
}

static const json_t *dead_for(const json_t *items, const char *channel)
{
	size_t i;
	const json_t *d;
	json_array_foreach(items, i, d) if (!strcmp(s_(d, "channel"), channel))
	    return d;
	return NULL;
}

Test(slack_setup, dead_letters_say_what_to_do)
{
	slack_start("",
		    "subscriptions:\n"
		    "  - {connector: slack, channel: C0RANDOM}\n"
		    "  - {connector: slack, channel: CNOPE}\n");
	declare("Checkout failing", "SEV-1");
	json_t *items = dead_letters(2);
	const json_t *a = dead_for(items, "C0RANDOM");
	const json_t *b = dead_for(items, "CNOPE");
	cr_assert(a && b, "dead letters: %s",
		  json_dumps(items, JSON_COMPACT));
	cr_expect_str_eq(s_(a, "error"), "not_in_channel");
	cr_expect(strstr(s_(a, "hint"), "/invite @incident-bot"), "%s",
		  s_(a, "hint"));
	cr_expect_str_eq(s_(b, "error"), "channel_not_found");
	cr_expect(strstr(s_(b, "hint"), "use the channel id"), "%s",
		  s_(b, "hint"));
	json_decref(items);
	char *out = NULL;
	const char *args[] = {"connector", "slack", "status", NULL};
	slack_cli(&out, args);
	cr_expect(strstr(out, "last error   delivery to"), "%s", out);
	free(out);
}

Test(slack_setup, a_revoked_token_dead_letters_with_the_reason)
{
	slack_start("",
		    "subscriptions:\n  - {connector: slack, channel: C0GENERAL}\n");
	fake_slack_revoke(slack_fake, "xoxb-test");
	declare("Search down", "SEV-1");
	json_t *items = dead_letters(1);
	const json_t *d = dead_for(items, "C0GENERAL");
	cr_assert(d, "%s", json_dumps(items, JSON_COMPACT));
	cr_expect_str_eq(s_(d, "error"), "invalid_auth", "%s", s_(d, "hint"));
	cr_expect(strstr(s_(d, "hint"), "SLACK_BOT_TOKEN"));
	json_decref(items);
}

Test(slack_setup, updates_edit_the_posted_message)
{
	slack_start("",
		    "subscriptions:\n"
		    "  - {connector: slack, channel: C0INCIDENTS, mode: update}\n"
		    "  - {connector: slack, channel: C0GENERAL, mode: thread}\n");
	declare("API latency", "SEV-1");
	cr_assert(fake_slack_wait(slack_fake, "chat.postMessage", 2, 10000));
	const char *h[] = {"Content-Type: application/json", NULL};
	reply r = http(&slack_srv, false, "POST",
		       "/api/v1/incidents/INC-1/ack", "{}", 2, h);
	cr_expect_lt(r.status, 300, "%ld %s", r.status, r.body);
	reply_free(&r);
	cr_assert(fake_slack_wait(slack_fake, "chat.update", 1, 10000),
		  "no chat.update");
	cr_assert(fake_slack_wait(slack_fake, "chat.postMessage", 3, 10000));
	json_t *posts = fake_slack_requests(slack_fake, "chat.postMessage");
	json_t *upd = fake_slack_last(slack_fake, "chat.update");
	const json_t *uj = json_object_get(upd, "json");
	cr_expect_str_eq(s_(uj, "channel"), "C0INCIDENTS");
	cr_expect(*s_(uj, "ts"), "chat.update names the message");
	bool threaded = false;
	size_t i;
	json_t *p;
	json_array_foreach(posts, i, p)
	{
		const json_t *pj = json_object_get(p, "json");
		threaded |= !strcmp(s_(pj, "channel"), "C0GENERAL") &&
			    *s_(pj, "thread_ts");
	}
	cr_expect(threaded, "the thread subscription replies in the thread");
	json_decref(posts);
	json_decref(upd);
}

Test(slack_setup, notifications_use_block_kit_and_never_ping)
{
	slack_start("", "subscriptions:\n"
			"  - {connector: slack, channel: C0INCIDENTS}\n");
	declare("<!channel> *x* @everyone", "SEV-1");
	cr_assert(fake_slack_wait(slack_fake, "chat.postMessage", 1, 10000));
	json_t *post = fake_slack_last(slack_fake, "chat.postMessage");
	const json_t *pj = json_object_get(post, "json");
	char *dump = json_dumps(pj, JSON_COMPACT);
	cr_expect(json_array_size(json_object_get(pj, "blocks")) > 1,
		  "rendered from the Block Kit template: %s", dump);
	cr_expect(strstr(dump, "&lt;!channel&gt;"), "escaped: %s", dump);
	cr_expect_null(strstr(dump, "<!channel>"), "no mention: %s", dump);
	cr_expect(strstr(dump, "im_ack"), "has the Acknowledge button");
	free(dump);
	json_decref(post);
}
