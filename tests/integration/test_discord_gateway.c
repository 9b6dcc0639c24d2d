/* The Discord connector's Gateway link end to end: the real `im serve`
 * with `gateway: true` against the fake REST API (GET /gateway/bot points
 * at the fake Gateway of tests/fakes). Identify with the configured
 * intents and presence, heartbeats with the last sequence, resume after a
 * drop, a reconnect request or a silent server, identify again after an
 * invalid session, and the close codes that stop the link. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "../fakes/fake_discord.h"
#include "../fakes/fake_discord_gw.h"
#include "harness.h"

static srv s;
static fd *f;
static fdg *g;
static char *out, *err;

static void setup(void)
{
	f = fd_start(NULL);
	fdg_opts o = {.heartbeat_ms = 300};
	g = fdg_start(&o);
	cr_assert(f && g, "fakes did not start");
	fd_set_gateway_url(f, fdg_url(g));
	srv_init(&s);
	out = err = NULL;
}

static void teardown(void)
{
	free(out);
	free(err);
	srv_cleanup(&s);
	fdg_stop(g);
	fd_stop(f);
}

TestSuite(discord_gateway, .init = setup, .fini = teardown, .timeout = 120);

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void start(const char *intents)
{
	srv_conf(&s, "10-discord.yaml",
		 "plugins:\n  instances:\n"
		 "    - id: discord\n      module: discord\n      config:\n"
		 "        application_id: \"%s\"\n        public_key: %s\n"
		 "        bot_token: %s\n        api_base_url: %s\n"
		 "        gateway: true\n        timeout: 2s\n"
		 "        intents: %s\n",
		 fd_app_id(f), fd_public_key_hex(f), FD_BOT_TOKEN, fd_api_url(f),
		 intents ? intents : "[GUILDS, GUILD_MESSAGES]");
	srv_must_start(&s);
}

static int run(const char *const *args)
{
	free(out);
	free(err);
	return cli(&s, &out, &err, args);
}

static bool metric_is(const char *line)
{
	reply r = http(&s, true, "GET", "/metrics", NULL, 0, NULL);
	bool yes = r.body && strstr(r.body, line);
	reply_free(&r);
	return yes;
}

static bool wait_metric(const char *line)
{
	for (int i = 0; i < 100; i++) {
		if (metric_is(line))
			return true;
		sleep_ms(100);
	}
	return false;
}

#define CONNECTED "chatops_connection_status{platform=\"discord\",instance=\"discord\"} 1"
#define DOWN "chatops_connection_status{platform=\"discord\",instance=\"discord\"} 0"

Test(discord_gateway, identifies_with_the_intents_and_heartbeats_with_the_sequence)
{
	start(NULL);
	cr_assert(fdg_wait(g, "live", 1, 10000), "no live session");
	cr_expect(wait_metric(CONNECTED));
	json_t *id = fdg_last_identify(g);
	cr_expect_eq(json_integer_value(json_object_get(id, "intents")),
		     (1 << 0) | (1 << 9));
	cr_expect_str_eq(json_string_value(json_object_get(
			     json_object_get(id, "presence"), "status")),
			 "online");
	json_decref(id);
	cr_expect(fdg_dispatch(g, "MESSAGE_CREATE", "{\"id\":\"1\"}"));
	cr_assert(fdg_wait(g, "heartbeats", 3, 10000));
	json_t *log = fdg_heartbeat_log(g);
	json_t *last = json_array_get(log, json_array_size(log) - 1);
	cr_expect(json_integer_value(json_object_get(last, "d")) >= 3,
		  "heartbeats carry the last sequence (READY 1, GUILD_CREATE "
		  "2, the dispatch 3)");
	json_decref(log);
	cr_expect_eq(run(ARGS("connector", "discord", "status")), 1,
		     "unhealthy only because /incident is not registered");
	cr_expect(strstr(out, "gateway connected"), "%s", out);
	cr_expect(strstr(out, "message text in incident channels is not read"),
		  "%s", out);
}

Test(discord_gateway, resumes_after_a_drop_a_reconnect_and_a_silent_server)
{
	start(NULL);
	cr_assert(fdg_wait(g, "live", 1, 10000));
	/* The fake is live once it sent READY; the connector has a session
	 * to resume once it read it (it then reports itself connected). */
	cr_assert(wait_metric(CONNECTED));
	fdg_drop(g);
	if (!fdg_wait(g, "resumes", 1, 15000)) {
		char *log = srv_log(&s);
		json_t *cl = fdg_closes(g);
		char *c = json_dumps(cl, JSON_COMPACT);
		cr_assert_fail("no resume after a drop: closes %s, identifies %d, "
			       "connections %d; log:\n%s",
			       c, fdg_identifies(g), fdg_connections(g), log);
	}
	fdg_reconnect(g);
	cr_assert(fdg_wait(g, "resumes", 2, 15000), "no resume after op 7");
	fdg_set_acks(g, false);
	cr_assert(fdg_wait(g, "resumes", 3, 20000),
		  "a link without heartbeat ACKs is replaced and resumed");
	fdg_set_acks(g, true);
	cr_expect_eq(fdg_identifies(g), 1, "resumes never spend identifies");
	cr_expect(wait_metric(CONNECTED));
}

Test(discord_gateway, identifies_again_after_an_invalid_session)
{
	start(NULL);
	cr_assert(fdg_wait(g, "live", 1, 10000));
	cr_assert(wait_metric(CONNECTED));
	fdg_invalid_session(g, false);
	cr_assert(fdg_wait(g, "identifies", 2, 15000));
	cr_assert(fdg_wait(g, "live", 1, 10000));
	/* The day's identifies survive a restart (a server in a restart
	 * loop must keep to the cap too). */
	srv_must_stop(&s);
	srv_must_start(&s);
	cr_assert(fdg_wait(g, "identifies", 3, 15000));
	run(ARGS("connector", "discord", "status"));
	cr_expect(strstr(out, "gateway_identifies_24h 3"), "%s", out);
}

Test(discord_gateway, a_privileged_intent_not_enabled_stops_the_link_and_says_which)
{
	start("[GUILDS, GUILD_MESSAGES, MESSAGE_CONTENT]");
	cr_assert(fdg_wait(g, "closes", 1, 10000));
	cr_expect(wait_metric(DOWN));
	sleep_ms(1500);
	json_t *closes = fdg_closes(g);
	char *cl = json_dumps(closes, JSON_COMPACT);
	cr_expect_eq(fdg_connections(g), 1, "4014 is not retried: %s", cl);
	free(cl);
	json_decref(closes);
	cr_expect_eq(run(ARGS("connector", "discord", "status")), 1);
	cr_expect(strstr(out, "4014"), "%s", out);
	cr_expect(strstr(out, "enable MESSAGE_CONTENT"), "%s", out);
}

Test(discord_gateway, a_revoked_token_stops_the_link_with_4004)
{
	start(NULL);
	cr_assert(fdg_wait(g, "live", 1, 10000));
	cr_assert(wait_metric(CONNECTED));
	fdg_set_token(g, "another-token");
	fdg_invalid_session(g, false);
	for (int i = 0; i < 100; i++) {
		run(ARGS("connector", "discord", "status"));
		if (strstr(out, "4004"))
			break;
		sleep_ms(100);
	}
	cr_expect(strstr(out, "4004"), "%s", out);
	cr_expect(strstr(out, "bot token"), "%s", out);
	reply r = http(&s, false, "GET", "/health", NULL, 0, NULL);
	cr_expect_eq(r.status, 200, "the server keeps running");
	reply_free(&r);
}
