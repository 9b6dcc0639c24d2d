/* The Teams connector end to end against the fake Bot Framework of
 * tests/fakes: the real `im serve`, the default templates, the token by
 * client credentials and notifications through the Bot Connector, with
 * the errors Teams answers. (Inbound activities come with the rest of
 * issue 13.) */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "../fakes/fake_botframework.h"
#include "harness.h"

static srv s;
static fb *bf;
static char *out, *err;

static void setup(void)
{
	bf = fb_start(NULL);
	cr_assert(bf, "fake Bot Framework did not start");
	srv_init(&s);
	out = err = NULL;
}

static void teardown(void)
{
	free(out);
	free(err);
	srv_cleanup(&s);
	fb_stop(bf);
}

TestSuite(teams, .init = setup, .fini = teardown, .timeout = 120);

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A teams instance pointed at the fake, with `password` as its secret. */
static void config(const char *password)
{
	srv_conf(&s, "10-teams.yaml",
		 "chatops:\n  batch_window: 0s\n"
		 "plugins:\n  instances:\n"
		 "    - {id: mustache, module: mustache}\n"
		 "    - id: teams\n      module: teams\n      config:\n"
		 "        app_id: %s\n        app_password: %s\n"
		 "        tenant_id: %s\n        login_url: %s\n"
		 "        service_url: %s\n        openid_metadata_url: %s\n"
		 "        timeout: 2s\n"
		 "subscriptions:\n  - {connector: teams, channel: \"%s\", "
		 "mode: update}\n",
		 fb_app_id(bf), password, fb_tenant(bf), fb_url(bf),
		 fb_service_url(bf), fb_openid_url(bf), FB_CHANNEL_ID);
}

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

static void declare(const char *title)
{
	char body[256];
	snprintf(body, sizeof body,
		 "{\"title\":\"%s\",\"severity\":\"SEV-2\"}", title);
	reply r = http(&s, false, "POST", "/api/v1/incidents", body,
		       strlen(body), json_ct);
	cr_assert_eq(r.status, 201, "%s", r.body);
	reply_free(&r);
}

/* The dead letters as `im chatops outbox list --dead --json` gives them,
 * once there is one (or after 5 s). */
static json_t *dead_letters(void)
{
	json_t *items = NULL;
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(run(ARGS("chatops", "outbox", "list", "--dead",
				      "--json")),
			     0, "%s", err);
		json_t *j = json_loads(out, 0, NULL);
		items = json_incref(json_object_get(j, "items"));
		json_decref(j);
		if (json_array_size(items))
			break;
		json_decref(items);
		items = NULL;
		sleep_s(0.05);
	}
	return items;
}

Test(teams, posts_an_adaptive_card_and_updates_it_in_place)
{
	config("fb-secret-1");
	start();
	declare("Payments down");
	cr_assert(fb_wait_messages(bf, 1, 10000), "nothing posted:\n%s",
		  srv_log(&s));
	json_t *m = fb_messages(bf);
	json_t *first = json_array_get(m, 0);
	cr_expect_str_eq(sfield(first, "op"), "send");
	cr_expect_str_eq(sfield(first, "conversation"), FB_CHANNEL_ID);
	json_t *att = json_array_get(
	    json_object_get(json_object_get(first, "activity"), "attachments"),
	    0);
	cr_expect_str_eq(sfield(att, "contentType"),
			 "application/vnd.microsoft.card.adaptive");
	cr_expect_str_eq(sfield(json_object_get(att, "content"), "version"),
			 "1.5");
	char *card = json_dumps(att, JSON_COMPACT);
	cr_expect(strstr(card, "Payments down"), "%s", card);
	free(card);
	char id[128];
	snprintf(id, sizeof id, "%s", sfield(first, "id"));
	json_decref(m);
	cr_expect_eq(fb_token_fetches(bf), 1);
	/* The next event of the incident edits the same message. */
	cr_assert_eq(run(ARGS("incident", "ack", "INC-1")), 0, "%s", err);
	cr_assert(fb_wait_messages(bf, 2, 10000), "no update");
	m = fb_messages(bf);
	json_t *second = json_array_get(m, 1);
	cr_expect_str_eq(sfield(second, "op"), "update");
	cr_expect_str_eq(sfield(second, "id"), id);
	json_decref(m);
	cr_expect_eq(fb_token_fetches(bf), 1, "the token is reused");
	finish();
}

Test(teams, dead_letters_a_team_without_the_app_with_the_fix)
{
	fb_fail(bf, FB_CHANNEL_ID, -1, 403, "BotNotInConversationRoster", 0);
	config("fb-secret-1");
	start();
	declare("Nobody listens");
	json_t *dead = dead_letters();
	cr_assert(json_array_size(dead), "no dead letter:\n%s", srv_log(&s));
	char *d = json_dumps(dead, JSON_COMPACT);
	cr_expect(strstr(d, "BotNotInConversationRoster"), "%s", d);
	cr_expect(strstr(d, "add the app"), "no fix in: %s", d);
	free(d);
	json_decref(dead);
	finish();
}

Test(teams, a_wrong_secret_dead_letters_with_what_the_aadsts_code_means)
{
	config("not-the-secret");
	start();
	declare("Locked out");
	json_t *dead = dead_letters();
	cr_assert(json_array_size(dead), "no dead letter:\n%s", srv_log(&s));
	char *d = json_dumps(dead, JSON_COMPACT);
	cr_expect(strstr(d, "token_refused"), "%s", d);
	cr_expect(strstr(d, "AADSTS7000215") && strstr(d, "app_password"),
		  "%s", d);
	free(d);
	json_decref(dead);
	json_t *m = fb_messages(bf);
	cr_expect_eq(json_array_size(m), 0, "nothing reached Teams");
	json_decref(m);
	/* The connector's status says the same and the CLI exits 1. */
	cr_expect_eq(run(ARGS("connector", "teams", "status", "--json")), 1,
		     "%s", out);
	cr_expect(strstr(out, "AADSTS7000215"), "%s", out);
	finish();
}

Test(teams, waits_out_throttling_and_delivers_once)
{
	fb_fail(bf, FB_CHANNEL_ID, 2, 429, "Throttled", 1);
	config("fb-secret-1");
	start();
	declare("Bumpy road");
	cr_assert(fb_wait_messages(bf, 1, 15000), "not delivered:\n%s",
		  srv_log(&s));
	json_t *m = fb_messages(bf);
	cr_expect_eq(json_array_size(m), 1, "delivered once");
	json_decref(m);
	json_t *reqs = fb_requests(bf);
	long throttled = 0;
	size_t i;
	json_t *r;
	json_array_foreach(reqs, i, r) throttled +=
	    json_integer_value(json_object_get(r, "status")) == 429;
	json_decref(reqs);
	cr_expect_eq(throttled, 2, "each 429 seen once, then delivered");
	finish();
}
