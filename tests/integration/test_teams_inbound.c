/* The Teams connector's messaging endpoint end to end: the real `im
 * serve` with teams.so and incident-commands, activities signed by the
 * fake Bot Framework of tests/fakes (its keys, its OpenID metadata), and
 * replies through its Bot Connector. Commands, card buttons (Submit and
 * Execute), conversation references, and every bad token or body. */
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

TestSuite(teams_inbound, .init = setup, .fini = teardown, .timeout = 120);

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* teams.so pointed at the fake; `extra` adds instance keys (indented). */
static void config(const char *extra)
{
	srv_conf(&s, "10-teams.yaml",
		 "chatops:\n  batch_window: 0s\n"
		 "plugins:\n  instances:\n"
		 "    - {id: mustache, module: mustache}\n"
		 "    - {id: incident, module: incident-commands}\n"
		 "    - id: teams\n      module: teams\n      config:\n"
		 "        app_id: %s\n        app_password: fb-secret-1\n"
		 "        tenant_id: %s\n        login_url: %s\n"
		 "        service_url: %s\n        openid_metadata_url: %s\n"
		 "        timeout: 2s\n%s",
		 fb_app_id(bf), fb_tenant(bf), fb_url(bf), fb_service_url(bf),
		 fb_openid_url(bf), extra ? extra : "");
}

static int run(const char *const *args)
{
	free(out);
	free(err);
	return cli(&s, &out, &err, args);
}

static json_t *get(const char *path);

/* POSTs `activity` with `authorization` (NULL: none). */
static reply post(const char *authorization, const char *activity)
{
	char h[10000];
	snprintf(h, sizeof h, "Authorization: %s",
		 authorization ? authorization : "");
	const char *hdrs[] = {"Content-Type: application/json",
			      authorization ? h : NULL, NULL};
	return http(&s, false, "POST", "/hooks/teams/messages", activity,
		    strlen(activity), hdrs);
}

/* A valid token for activities with the fake's serviceUrl. */
static char *bearer(const fb_claims *c)
{
	char *tok = fb_sign(bf, c);
	cr_assert(tok);
	size_t n = strlen(tok) + 8;
	char *b = malloc(n);
	snprintf(b, n, "Bearer %s", tok);
	free(tok);
	return b;
}

static long post_signed(const char *type, const char *text,
			const fb_act *more, char **body)
{
	char *act = fb_activity(bf, type, text, more);
	char *auth = bearer(NULL);
	reply r = post(auth, act);
	free(act);
	free(auth);
	long st = r.status;
	if (body)
		*body = r.body ? strdup(r.body) : NULL;
	reply_free(&r);
	return st;
}

static json_t *incident(const char *id)
{
	char path[64];
	snprintf(path, sizeof path, "/api/v1/incidents/%s", id);
	return get(path);
}

/* The incident's timeline (its events with their actors), as a string. */
static char *timeline(const char *id)
{
	char path[80];
	snprintf(path, sizeof path, "/api/v1/incidents/%s/timeline", id);
	json_t *j = get(path);
	char *txt = j ? json_dumps(j, JSON_COMPACT) : strdup("(none)");
	json_decref(j);
	return txt;
}

static json_t *get(const char *path)
{
	reply r = http(&s, false, "GET", path, NULL, 0, NULL);
	json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
	reply_free(&r);
	return j;
}

/* Waits for an incident to reach `status` (5 s). */
static bool wait_status(const char *id, const char *status)
{
	for (int i = 0; i < 100; i++) {
		json_t *j = incident(id);
		json_t *inc = json_object_get(j, "incident")
				  ? json_object_get(j, "incident")
				  : j;
		bool ok = !strcmp(sfield(inc, "status"), status);
		json_decref(j);
		if (ok)
			return true;
		sleep_s(0.05);
	}
	return false;
}

/* The replies the bot posted, as one string. */
static char *replies(void)
{
	json_t *m = fb_messages(bf), *rs = json_array();
	size_t i;
	json_t *x;
	json_array_foreach(m, i, x) if (!strcmp(sfield(x, "op"), "reply"))
	    json_array_append(rs, x);
	char *txt = json_dumps(rs, JSON_COMPACT);
	json_decref(rs);
	json_decref(m);
	return txt;
}

static bool wait_reply(const char *needle)
{
	for (int i = 0; i < 200; i++) {
		char *r = replies();
		bool ok = r && strstr(r, needle);
		free(r);
		if (ok)
			return true;
		sleep_s(0.05);
	}
	return false;
}

Test(teams_inbound, a_message_to_the_bot_declares_and_replies_in_thread)
{
	config(NULL);
	srv_must_start(&s);
	fb_act who = {.user_name = "Ada Lovelace"};
	cr_assert_eq(post_signed("message", "declare Payments down --sev SEV-1",
				 &who, NULL),
		     200, "%s", srv_log(&s));
	cr_assert(wait_status("INC-1", "open"),
		  "no incident:\n%s", srv_log(&s));
	json_t *j = incident("INC-1");
	char *d = json_dumps(j, JSON_COMPACT);
	cr_expect(strstr(d, "Payments down") && strstr(d, "SEV-1"), "%s", d);
	free(d);
	json_decref(j);
	d = timeline("INC-1");
	cr_expect(strstr(d, "Ada Lovelace"), "the actor is the sender: %s", d);
	free(d);
	cr_assert(wait_reply("INC-1"), "no threaded reply:\n%s", srv_log(&s));
	json_t *m = fb_messages(bf);
	json_t *rep = NULL;
	size_t i;
	json_t *x;
	json_array_foreach(m, i, x) if (!strcmp(sfield(x, "op"), "reply")) rep = x;
	cr_expect(strstr(sfield(rep, "conversation"), ";messageid="),
		  "the reply goes to the message's thread");
	cr_expect(*sfield(rep, "reply_to"), "replies to the activity");
	json_decref(m);
	/* "incident declare ..." without the mention works too. */
	fb_act plain = {.no_mention = true};
	char *ans = NULL;
	long st = post_signed("message", "incident declare DNS flaps", &plain,
			      &ans);
	cr_assert_eq(st, 200, "%ld %s\n%s", st, ans, srv_log(&s));
	free(ans);
	cr_expect(wait_reply("INC-2"), "%s", srv_log(&s));
	srv_must_stop(&s);
}

Test(teams_inbound, card_buttons_run_verbs_as_the_pressing_user)
{
	config(NULL);
	srv_must_start(&s);
	cr_assert_eq(post_signed("message", "declare Queue stuck", NULL, NULL),
		     200);
	cr_assert(wait_reply("INC-1"), "%s", srv_log(&s));
	/* Action.Execute: answered in the HTTP body. */
	json_t *data = json_pack("{s:s,s:s}", "action", "ack", "incident",
				 "INC-1");
	fb_act ex = {.verb = "ack", .data = data, .user_name = "Grace Hopper"};
	char *body = NULL;
	cr_assert_eq(post_signed("invoke", NULL, &ex, &body), 200);
	json_t *ans = json_loads(body ? body : "", 0, NULL);
	cr_expect_eq(json_integer_value(json_object_get(ans, "statusCode")),
		     200, "%s", body);
	cr_expect_str_eq(sfield(ans, "type"),
			 "application/vnd.microsoft.activity.message");
	cr_expect(strstr(sfield(ans, "value"), "INC-1"), "%s", body);
	json_decref(ans);
	free(body);
	json_decref(data);
	cr_expect(wait_status("INC-1", "acknowledged"), "%s", srv_log(&s));
	char *d = timeline("INC-1");
	cr_expect(strstr(d, "Grace Hopper"), "%s", d);
	free(d);
	/* Action.Submit: a message with value, answered 200, the result in
	 * the thread. */
	data = json_pack("{s:s,s:s}", "action", "resolve", "incident", "INC-1");
	fb_act sub = {.data = data};
	cr_assert_eq(post_signed("message", NULL, &sub, NULL), 200);
	json_decref(data);
	cr_expect(wait_status("INC-1", "resolved"), "%s", srv_log(&s));
	/* An illegal transition says which ones are legal. */
	data = json_pack("{s:s,s:s}", "action", "ack", "incident", "INC-1");
	fb_act again = {.verb = "ack", .data = data};
	body = NULL;
	cr_assert_eq(post_signed("invoke", NULL, &again, &body), 200);
	cr_expect(body && strstr(body, "resolved"), "%s", body);
	free(body);
	json_decref(data);
	srv_must_stop(&s);
}

Test(teams_inbound, every_bad_token_is_401_and_runs_nothing)
{
	config(NULL);
	srv_must_start(&s);
	static const fb_break breaks[] = {
	    FB_WRONG_KID,   FB_UNKNOWN_KID,	FB_ALG_NONE,	FB_HS256,
	    FB_EXPIRED,	    FB_NOT_YET_VALID,	FB_WRONG_ISS,	FB_WRONG_AUD,
	    FB_SERVICEURL,  FB_FOREIGN_KEY,	FB_BAD_SIGNATURE};
	char *act = fb_activity(bf, "message", "declare Forged", NULL);
	for (size_t i = 0; i < sizeof breaks / sizeof breaks[0]; i++) {
		fb_claims c = {.brk = breaks[i]};
		char *auth = bearer(&c);
		reply r = post(auth, act);
		cr_expect_eq(r.status, 401, "break %zu answered %ld", i,
			     r.status);
		reply_free(&r);
		free(auth);
	}
	/* No header, another scheme, garbage. */
	const char *auths[] = {NULL, "Basic YWJjOmRlZg==", "Bearer x.y.z",
			       "Bearer "};
	for (size_t i = 0; i < 4; i++) {
		reply r = post(auths[i], act);
		cr_expect_eq(r.status, 401, "%s answered %ld",
			     auths[i] ? auths[i] : "(none)", r.status);
		reply_free(&r);
	}
	free(act);
	json_t *j = incident("INC-1");
	cr_expect_null(j, "nothing was declared");
	json_decref(j);
	char *log = srv_log(&s);
	cr_expect(strstr(log, "alg none refused") || strstr(log, "alg"),
		  "reasons are logged");
	cr_expect(strstr(log, "serviceurl claim"), "%s", log);
	free(log);
	reply hr = http(&s, false, "GET", "/health", NULL, 0, NULL);
	cr_expect_eq(hr.status, 200, "the server keeps running");
	reply_free(&hr);
	srv_must_stop(&s);
}

Test(teams_inbound, a_flood_of_unknown_kids_costs_one_key_refresh)
{
	config(NULL);
	srv_must_start(&s);
	/* The first good activity finds the keys loaded: one load is
	 * `per_load` JWKS fetches (Bot Framework's and the tenant's). */
	cr_assert_eq(post_signed("conversationUpdate", NULL, NULL, NULL), 200,
		     "%s", srv_log(&s));
	int before = fb_jwks_fetches(bf), per_load = before;
	cr_assert_geq(per_load, 1);
	char *act = fb_activity(bf, "message", "declare Forged", NULL);
	for (int i = 0; i < 40; i++) {
		fb_claims c = {.brk = FB_UNKNOWN_KID};
		char *auth = bearer(&c);
		reply r = post(auth, act);
		cr_expect_eq(r.status, 401);
		reply_free(&r);
		free(auth);
	}
	free(act);
	int fetched = fb_jwks_fetches(bf) - before;
	cr_expect_eq(fetched, per_load,
		     "40 forged kids cost %d JWKS fetches, one refresh is %d",
		     fetched, per_load);
	srv_must_stop(&s);
}

Test(teams_inbound, a_rotated_signing_key_is_fetched_once)
{
	config(NULL);
	srv_must_start(&s);
	cr_assert_eq(post_signed("conversationUpdate", NULL, NULL, NULL), 200);
	int before = fb_jwks_fetches(bf), per_load = before;
	char kid[64];
	cr_assert(fb_rotate_keys(bf, true, kid, sizeof kid));
	cr_expect_eq(post_signed("message", "declare After rotation", NULL,
				 NULL),
		     200, "%s", srv_log(&s));
	cr_expect_eq(post_signed("message", "declare Twice", NULL, NULL), 200);
	cr_expect_eq(fb_jwks_fetches(bf) - before, per_load,
		     "one refresh for the new kid");
	cr_expect(wait_reply("INC-2"), "%s", srv_log(&s));
	srv_must_stop(&s);
}

Test(teams_inbound, bad_bodies_are_400_or_413_and_tenants_are_checked)
{
	config("        allowed_tenants: [\"11111111-2222-3333-4444-555555555555\"]\n");
	srv_conf(&s, "20-body.yaml", "server:\n  max_body: 64KiB\n");
	srv_must_start(&s);
	char *auth = bearer(NULL);
	reply r = post(auth, "{\"type\":\"message\",");
	cr_expect_eq(r.status, 400, "%ld %s", r.status, r.body);
	cr_expect(r.body && strstr(r.body, "not JSON"), "%s", r.body);
	reply_free(&r);
	r = post(auth, "[1,2]");
	cr_expect_eq(r.status, 400);
	reply_free(&r);
	r = post(NULL, "{\"type\":");
	cr_expect_eq(r.status, 401, "no token: 401 before the body is judged");
	reply_free(&r);
	size_t big = 70 * 1024;
	char *huge = malloc(big + 1);
	memset(huge, 'x', big);
	huge[big] = '\0';
	char ah[10000];
	snprintf(ah, sizeof ah, "Authorization: %s", auth);
	const char *hh[] = {"Content-Type: application/json", ah,
			    "Expect: 100-continue", NULL};
	r = http(&s, false, "POST", "/hooks/teams/messages", huge,
		 strlen(huge), hh);
	cr_expect_eq(r.status, 413, "%ld", r.status);
	reply_free(&r);
	free(huge);
	free(auth);
	/* The fake's tenant is not the allowed one. */
	cr_expect_eq(post_signed("message", "declare Outsider", NULL, NULL),
		     403);
	fb_act ok = {.tenant = "11111111-2222-3333-4444-555555555555"};
	cr_expect_eq(post_signed("message", "declare Insider", &ok, NULL), 200);
	cr_expect(wait_reply("INC-1"), "%s", srv_log(&s));
	json_t *j = incident("INC-2");
	cr_expect_null(j, "the outsider declared nothing");
	json_decref(j);
	srv_must_stop(&s);
}

Test(teams_inbound, conversations_are_learnt_listed_and_kept_across_restarts)
{
	config(NULL);
	srv_must_start(&s);
	fb_act chan = {.team_name = "Contoso Ops", .channel_name = "Incidents"};
	cr_assert_eq(post_signed("conversationUpdate", NULL, &chan, NULL), 200);
	cr_assert_eq(run(ARGS("chatops", "teams", "list-channels", "--json")),
		     0, "%s%s", out, err);
	cr_expect(strstr(out, FB_CHANNEL_ID), "%s", out);
	cr_expect(strstr(out, "Incidents"), "%s", out);
	/* The team's other channels come from the Bot Connector. */
	cr_expect(strstr(out, "\"" FB_TEAM_ID "\"") && strstr(out, "General"),
		  "%s", out);
	srv_must_stop(&s);
	srv_must_start(&s);
	cr_assert_eq(run(ARGS("chatops", "teams", "list-channels")), 0, "%s",
		     err);
	cr_expect(strstr(out, FB_CHANNEL_ID), "kept: %s", out);
	/* status: token, keys, the last activity, the 403 note. */
	cr_expect_eq(run(ARGS("connector", "teams", "status")), 0, "%s", out);
	cr_expect(strstr(out, "signing keys"), "%s", out);
	cr_expect(strstr(out, "Graph"), "%s", out);
	cr_expect(strstr(out, fb_app_id(bf)), "%s", out);
	srv_must_stop(&s);
}

Test(teams_inbound, a_secret_rotated_mid_run_is_reported_and_dead_letters)
{
	srv_conf(&s, "15-subs.yaml",
		 "subscriptions:\n  - {connector: teams, channel: \"%s\", "
		 "mode: update}\n",
		 FB_CHANNEL_ID);
	config(NULL);
	srv_must_start(&s);
	cr_assert_eq(post_signed("message", "declare Before", NULL, NULL), 200);
	cr_assert(wait_reply("INC-1"), "%s", srv_log(&s));
	fb_set_secret(bf, "fb-secret-2", true);
	cr_assert_eq(post_signed("message", "declare After", NULL, NULL), 200,
		     "inbound still served");
	cr_assert(wait_status("INC-2", "open"),
		  "the command ran and nothing was lost");
	json_t *items = NULL;
	for (int i = 0; i < 200 && !json_array_size(items); i++) {
		json_decref(items);
		cr_assert_eq(run(ARGS("chatops", "outbox", "list", "--dead",
				      "--json")),
			     0, "%s", err);
		json_t *o = json_loads(out, 0, NULL);
		items = json_incref(json_object_get(o, "items"));
		json_decref(o);
		if (!json_array_size(items))
			sleep_s(0.05);
	}
	char *d = json_dumps(items, JSON_COMPACT);
	cr_expect(d && strstr(d, "AADSTS7000215"), "%s", d);
	free(d);
	json_decref(items);
	cr_expect_eq(run(ARGS("connector", "teams", "status")), 1, "%s", out);
	cr_expect(strstr(out, "AADSTS7000215"), "%s", out);
	reply hr = http(&s, false, "GET", "/health", NULL, 0, NULL);
	cr_expect_eq(hr.status, 200, "the server keeps running");
	reply_free(&hr);
	srv_must_stop(&s);
}
