/* Shared by the Slack integration tests: a running `im serve` with
 * slack.so pointed at a fake Slack, and signed requests to its hooks. */
#ifndef IM_TESTS_SLACK_UTIL_H
#define IM_TESTS_SLACK_UTIL_H

#include <stdbool.h>

#include <jansson.h>

#include "fake_slack.h"
#include "harness.h"

#define SLACK_SECRET "test-signing-secret"

extern srv slack_srv;
extern fake_slack *slack_fake;

/* Starts the fake and the server. `slack_cfg` is extra YAML under the
 * slack instance's config (8-space indent; may be ""), `top` extra
 * top-level YAML (may be ""). The instance has bot_token, signing_secret
 * and api_base_url set unless slack_cfg overrides them; incident-commands
 * and testconn (the `sleep` verb) are loaded too. */
void slack_start(const char *slack_cfg, const char *top);
/* When set, runs after the fake started and before the server does;
 * `dir` is the server's temp folder. */
extern void (*slack_prepare)(fake_slack *f, const char *dir);
/* The same with only api_base_url preset: slack_cfg gives the rest. */
void slack_start_raw(const char *slack_cfg, const char *top);
void slack_stop(void);

/* POST to /hooks/slack/<path>, signed with `secret` at now + skew
 * seconds (secret NULL: no signature headers). `extra` is one more
 * "Name: value" header or NULL. */
reply slack_post(const char *path, const char *ctype, const char *body,
		 const char *secret, long skew, const char *extra);
/* The same, signed with the timestamp `when` (seconds since the epoch). */
reply slack_post_at(const char *path, const char *ctype, const char *body,
		    const char *secret, long when, const char *extra);
/* A signed slash command /incident <text> from U1 in C0GENERAL whose
 * response_url is the fake's /response/<name>. */
reply slack_command(const char *text, const char *name);
/* Form-encodes s (malloc'd). */
char *slack_escape(const char *s);
/* Parses a reply body as JSON (NULL if not). */
json_t *slack_json(const reply *r);
/* Runs the CLI against the server; returns the exit code. */
int slack_cli(char **out, const char *const *args);
/* Whether the server log contains `needle`. */
bool slack_log_has(const char *needle);
/* Milliseconds since some fixed point. */
double slack_now_ms(void);

#endif
