/*
 * tests/fakes/fake_slack - a fake Slack on 127.0.0.1 for criterion tests
 * and benchmarks (fake_slack_main.c makes it an executable). It behaves as
 * ../shared/design/PROTOCOLS.md describes Slack:
 *
 *   POST /api/auth.test             ok + team/bot, header x-oauth-scopes
 *   POST /api/chat.postMessage      JSON or form; ts, channel; thread_ts
 *   POST /api/chat.update           channel + ts of an earlier message
 *   POST|GET /api/conversations.list  query or form: types, limit,
 *                                   exclude_archived, cursor; is_member
 *   POST /api/apps.connections.open xapp- token -> ws://127.0.0.1:<p>/link/...
 *   GET  ws://.../link/?ticket=N    Socket Mode: hello, envelopes, acks,
 *                                   disconnect (fake_slack_ws.c)
 *   POST /response/<name>           a response_url receiver
 *
 * Errors as Slack words them: not_authed, invalid_auth (also for a token
 * revoked at run time), not_allowed_token_type, missing_scope (with needed
 * and provided), channel_not_found, not_in_channel, is_archived,
 * message_not_found, no_text; injected ones (429 + Retry-After, or HTTP 200
 * ok:false ratelimited) with fake_slack_fail().
 *
 * Every request is recorded for assertions: {"api","method","path","auth",
 * "content_type","headers":{lowercase names},"raw","json"|"form","query",
 * "status"}; response_url POSTs record "api":"response_url","name".
 *
 * Threads: the fake serves on its own threads; every function here is
 * safe from any thread. JSON returned is new (the caller decrefs).
 * Starting it ignores SIGPIPE in the process (a TLS write to a client
 * that left must fail, not kill the test).
 */
#ifndef IM_TESTS_FAKE_SLACK_H
#define IM_TESTS_FAKE_SLACK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct fake_slack fake_slack;

/* Starts on 127.0.0.1:port (0 = any free port) with a default workspace:
 * team "Acme" (T0ACME), bot "incident-bot" (U0BOT, B0BOT), tokens
 * "xoxb-test" and "xapp-test", every required scope, and channels
 * C0GENERAL #general (bot member), C0INCIDENTS #incidents (member),
 * C0RANDOM #random (not a member), G0OPS #ops-private (private, member),
 * C0OLD #old (archived, member). NULL on failure. */
fake_slack *fake_slack_start(unsigned port);
void fake_slack_stop(fake_slack *f);

unsigned fake_slack_port(const fake_slack *f);
/* "http://127.0.0.1:<port>/api" (borrowed). */
const char *fake_slack_api_url(const fake_slack *f);
/* "http://127.0.0.1:<port>/response/<name>" into buf. */
void fake_slack_response_url(const fake_slack *f, const char *name,
			     char *buf, size_t len);

/* --- the workspace ------------------------------------------------------- */

/* Granted scopes, comma-separated as in x-oauth-scopes. */
void fake_slack_set_scopes(fake_slack *f, const char *scopes);
void fake_slack_set_identity(fake_slack *f, const char *team,
			     const char *team_id, const char *bot_user,
			     const char *bot_user_id);
void fake_slack_set_tokens(fake_slack *f, const char *bot_token,
			   const char *app_token);
/* From now on `token` answers invalid_auth. */
void fake_slack_revoke(fake_slack *f, const char *token);
void fake_slack_add_channel(fake_slack *f, const char *id, const char *name,
			    bool is_private, bool is_member);
void fake_slack_set_member(fake_slack *f, const char *id, bool is_member);
/* conversations.list returns at most `n` channels per page whatever the
 * limit (0 = no cap): "a short page is not the end". */
void fake_slack_set_page_cap(fake_slack *f, unsigned n);
/* The next `times` calls of `api` (e.g. "chat.postMessage", or
 * "response_url") answer HTTP `status` with {"ok":false,"error":error};
 * retry_after > 0 adds a Retry-After header. */
void fake_slack_fail(fake_slack *f, const char *api, int times, int status,
		     const char *error, int retry_after);
/* Delays every answer of `api` by ms (0 = none). */
void fake_slack_delay(fake_slack *f, const char *api, unsigned ms);

/* --- what it received ---------------------------------------------------- */

/* Records of `api` (NULL = all), oldest first. */
json_t *fake_slack_requests(fake_slack *f, const char *api);
size_t fake_slack_count(fake_slack *f, const char *api);
/* Waits until at least n records of `api` exist; false on timeout. */
bool fake_slack_wait(fake_slack *f, const char *api, size_t n, int timeout_ms);
/* The last record of `api`, or NULL. */
json_t *fake_slack_last(fake_slack *f, const char *api);
/* Messages as stored: [{"channel","ts","text","blocks","thread_ts"}]. */
json_t *fake_slack_messages(fake_slack *f);
void fake_slack_clear(fake_slack *f);

/* --- Socket Mode (fake_slack_ws.c) -------------------------------------- */

/* Connections that completed the handshake (got "hello"), since start. */
int fake_slack_ws_hellos(fake_slack *f);
/* Connections open now. */
int fake_slack_ws_live(fake_slack *f);
/* Waits until hellos >= n; false on timeout. */
bool fake_slack_ws_wait_hellos(fake_slack *f, int n, int timeout_ms);
/* Sends an envelope {"envelope_id","type","payload","accepts_response_payload"}
 * on the newest live connection; `payload` is borrowed. Writes the
 * envelope id into id. false when no connection is live. */
bool fake_slack_ws_envelope(fake_slack *f, const char *type,
			    const json_t *payload, bool accepts_response,
			    char *id, size_t idlen);
/* Waits for the ack of `envelope_id`; the ack object or NULL (timeout). */
json_t *fake_slack_ws_wait_ack(fake_slack *f, const char *envelope_id,
			       int timeout_ms);
/* Sends {"type":"disconnect","reason":reason} on every live connection. */
void fake_slack_ws_disconnect(fake_slack *f, const char *reason);
/* Closes every live connection at once, without a close frame. */
void fake_slack_ws_drop(fake_slack *f);
/* Serves later links as wss://localhost:<port>/... with a fresh
 * self-signed certificate (EC P-256; localhost and 127.0.0.1), written as
 * PEM to ca_path for the client to trust. */
bool fake_slack_ws_tls(fake_slack *f, const char *ca_path);

#endif
