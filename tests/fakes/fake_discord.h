/*
 * tests/fakes/fake_discord - a fake Discord REST API (v10) and interaction
 * signer on 127.0.0.1 for the Discord connector's tests and benchmarks
 * (built with -DFAKE_DISCORD_MAIN it is the fake-discord program). See
 * ../shared/design/PROTOCOLS.md ("Discord"). Base "http://127.0.0.1:<port>";
 * the API is at <base>/api/v10 (fd_api_url).
 *
 * Keys: an Ed25519 keypair (libsodium) made at fd_start, public half in
 * fd_public_key_hex; a second "forger" keypair signs FD_SIG_FORGED.
 *
 * REST, with "Authorization: Bot <token>" (else, or once fd_revoke_token,
 * 401 {"message":"401: Unauthorized","code":0}):
 *   GET  /users/@me, /users/@me/guilds, /applications/@me, /gateway/bot
 *   GET  /guilds/{g}/channels         (threads excluded; 404 10004)
 *   GET  /channels/{id}               (404 10003 Unknown Channel)
 *   POST /channels/{id}/messages      200 message object
 *   GET, PATCH /channels/{id}/messages/{mid}  (404 10008 Unknown Message)
 *   POST /channels/{id}/messages/{mid}/threads  201 thread channel (type
 *        11, id = the message id as Discord documents; a second one 400
 *        160004; auto_archive_duration one of 60, 1440, 4320, 10080)
 *   GET, PUT /applications/{app}/commands, .../guilds/{g}/commands
 *        (bulk overwrite; wrong app 404 10002; a guild the bot is not in,
 *        or a scope refused by fd_set_commands_scope, 403 50001)
 * Without auth (the interaction token is the credential):
 *   POST /webhooks/{app}/{token}                       follow-up, 200
 *   GET, PATCH /webhooks/{app}/{token}/messages/@original
 *   POST /interactions/{id}/{token}/callback           204
 * A token is valid 15 minutes after fd_interaction made it (else 404
 * 10015 Unknown Webhook; callbacks 404 10062 Unknown interaction). As on
 * Discord, a follow-up before the interaction was acknowledged is 404
 * 10015 and @original before it exists is 404 10008.
 *
 * Validation as Discord does it: invalid JSON 400 50109; no content,
 * embeds or components 400 50006; limits (content 2000 characters, 10
 * embeds, title 256, description 4096, 25 fields of name 256 / value
 * 1024, footer 2048, author 256, all embeds 6000, nonce an integer or a
 * string of <= 25) 400 50035 {"errors":{<path>:{"_errors":[{"code",
 * "message"}]}}}; commands: name ^[-_a-z0-9]{1,32}$, description 1..100,
 * <= 25 options and choices, required options first, unique names,
 * <= 100 chat commands. Bodies over 1 MiB: 413 40005. enforce_nonce with
 * a nonce used in the channel in the last 5 minutes answers the earlier
 * message. Over 200 command creates a day per scope: 429 30034.
 *
 * Rate limits: every answer but a 401 has X-RateLimit-Limit, -Remaining,
 * -Reset (epoch seconds, 3 decimals), -Reset-After and -Bucket (one hash
 * per route template). Buckets are per template + major parameter
 * (channel, guild, or webhook app+token), route_limit per
 * route_window_ms, fixed windows starting at the first request. Over: 429
 * Retry-After (whole seconds, rounded up), X-RateLimit-Scope: user, body
 * {"message":"You are being rate limited.","retry_after":<s>,"global":
 * false}. More than global_per_s authenticated requests in any second:
 * 429 with X-RateLimit-Global: true, Scope global (interaction webhooks
 * and callbacks are exempt). 401, 403 and 429 (not scope shared) count as
 * invalid requests (stats.invalid, stats.invalid_10min).
 *
 * Control (no auth, on <base>): GET /_stats, /_messages, /_requests,
 * POST /_reset, POST /_fail?channel=&times=&status=&code=&retry_after=
 * &scope= (times default 1, status 500), POST /_limits?route_limit=
 * &route_window_ms=&global_per_s= (missing = unchanged).
 *
 * Threads: the fake serves on libmicrohttpd's threads (one per
 * connection); every function here is safe from any thread; one mutex
 * guards the state. JSON returned is new (json_decref), strings returned
 * are new (free). fd_post_interaction must not be called with a lock the
 * app needs to answer.
 */
#ifndef IM_TESTS_FAKE_DISCORD_H
#define IM_TESTS_FAKE_DISCORD_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct fd fd;

typedef struct fd_opts {
	unsigned port;		    /* 0 = any free port */
	const char *application_id; /* NULL = FD_APP_ID */
	const char *bot_token;	    /* NULL = FD_BOT_TOKEN */
	int route_limit;	    /* per-route bucket size; 0 = 5 */
	int route_window_ms;	    /* bucket window; 0 = 5000 */
	int global_per_s;	    /* global requests per second; 0 = 50 */
	unsigned latency_ms;	    /* delay every answer */
} fd_opts;

#define FD_APP_ID "1100000000000000001"
#define FD_BOT_ID FD_APP_ID
#define FD_BOT_TOKEN "MTEwMDAwMDAwMDAwMDAwMDAwMQ.Gfake0.bot-token-one"
#define FD_GUILD_ID "1200000000000000001"   /* "Contoso Ops" */
#define FD_CHANNEL_ID "1300000000000000001" /* in FD_GUILD_ID, "incidents" */
#define FD_CHANNEL2_ID "1300000000000000002" /* in FD_GUILD_ID, "general" */
#define FD_USER_ID "2100000000000000001"    /* "alice" */
#define FD_MAX_BODY (1u << 20)

/* NULL opts = defaults. NULL on failure. */
fd *fd_start(const fd_opts *o);
void fd_stop(fd *f);

/* Borrowed strings, valid until fd_stop. */
const char *fd_url(const fd *f);     /* "http://127.0.0.1:<port>" */
const char *fd_api_url(const fd *f); /* "<url>/api/v10" */
unsigned fd_port(const fd *f);
const char *fd_app_id(const fd *f);
const char *fd_bot_token(const fd *f);
const char *fd_public_key_hex(const fd *f); /* 64 hex characters */

/* --- signing and interactions ------------------------------------------- */

typedef enum fd_sig {
	FD_SIG_VALID = 0,
	FD_SIG_FORGED,	 /* signed by another key */
	FD_SIG_TAMPERED, /* valid signature, one body byte changed after */
	FD_SIG_STALE,	 /* timestamp 10 minutes old, validly signed */
	FD_SIG_MISSING,	 /* no signature headers (ts, sig = "") */
	FD_SIG_GARBAGE,	 /* signature: 128 characters, not all hex */
} fd_sig;

/* ts: decimal unix seconds ("now" unless stale); sig: 128 hex characters,
 * Ed25519 over ts + body. FD_SIG_TAMPERED signs the body with one byte
 * changed, so the signature does not hold for `body`. */
void fd_sign(fd *f, const char *body, size_t len, fd_sig kind, char ts[24],
	     char sig[130]);

typedef struct fd_inter {
	/* NULL = FD_GUILD_ID, FD_CHANNEL_ID, FD_USER_ID, "alice" */
	const char *guild_id, *channel_id, *user_id, *user_name;
	const char *roles;	    /* csv role ids; NULL = none */
	const char *application_id; /* NULL = the fake's */
	const char *message_id;	    /* component: the message it is on;
				     * NULL = the last one the fake accepted
				     * in the channel (else a new id) */
} fd_inter;

/* Interaction JSON as Discord posts it: a fresh snowflake id and a fresh
 * token the fake remembers (its webhooks work 15 minutes), application_id,
 * type, version 1. Type 1 PING has no guild, channel, member or data;
 * others have guild_id, channel_id, channel, member {user, roles}, locale,
 * app_permissions and data = data_json (parsed; NULL = {}); type 3 also
 * "message" {id, channel_id, author, content}. `more` may be NULL.
 * id_out / token_out (64 bytes each) may be NULL. New string; NULL when
 * data_json is not JSON. */
char *fd_interaction(fd *f, int type, const char *data_json,
		     const fd_inter *more, char *id_out, char *token_out);

/* POSTs body, signed as `kind`, to url as Discord does (X-Signature-
 * Ed25519, X-Signature-Timestamp, Content-Type application/json,
 * User-Agent "Discord-Interactions/1.0 (+https://discord.com)"; the
 * tampered kind sends the changed body). Returns the HTTP status, 0 on a
 * transport error; *resp (may be NULL) gets the body (malloc'd, "" when
 * none). A 2xx JSON answer with "type" 4..9 (1 to a PING) acknowledges
 * the interaction (later callbacks answer 40060); 4, 5 and 7 make the
 * @original message. Every answer is recorded (fd_interaction_answers).
 * Blocks for up to 10 seconds; holds no lock meanwhile. */
int fd_post_interaction(fd *f, const char *url, const char *body,
			size_t len, fd_sig kind, char **resp);

/* Answers to interactions, oldest first: {"id","token","via" ("http" or
 * "callback"),"status","answer" (JSON or null),"first" (bool: this one
 * acknowledged it)}. */
json_t *fd_interaction_answers(fd *f);
/* Makes every interaction token issued so far expired (as 15 minutes
 * later). */
void fd_expire_interactions(fd *f);

/* --- the platform ------------------------------------------------------- */

/* Adds (or renames) a text channel in a guild; the guild exists from then
 * on (named "Contoso Ops" when it is FD_GUILD_ID, else "Guild <id>"). */
void fd_add_channel(fd *f, const char *guild_id, const char *channel_id,
		    const char *name);
void fd_set_gateway_url(fd *f, const char *url); /* default ws://127.0.0.1:9 */
void fd_set_session_remaining(fd *f, int n);	  /* default 1000 */
/* 0 = leave as is; forgets the buckets. */
void fd_set_limits(fd *f, int route_limit, int route_window_ms,
		   int global_per_s);
/* scope: a guild id or "global". !allowed: its command routes answer 403
 * 50001 (the bot was invited without applications.commands). */
void fd_set_commands_scope(fd *f, const char *scope, bool allowed);
/* From now on the bot token answers 401 everywhere. */
void fd_revoke_token(fd *f);

/* The next `times` API requests touching `channel` (a webhook or callback
 * touches its interaction's channel; NULL = any request) answer
 * http_status with {"code":discord_code,"message":<Discord's text>}.
 * times -1 = until cleared; times 0 clears the rule for that channel.
 * For 429 the body is the rate-limit one with retry_after, plus
 * Retry-After and X-RateLimit-Scope: scope ("user", "global" adds
 * X-RateLimit-Global: true, "shared"; NULL = "user"). */
void fd_fail(fd *f, const char *channel, int times, int http_status,
	     int discord_code, double retry_after, const char *scope);

/* --- what it received --------------------------------------------------- */

/* Every API request, oldest first: {"t" (unix seconds),"method","path",
 * "route" ("POST /channels/{id}/messages"; null when unknown),"channel",
 * "status","code" (Discord code or null),"auth" (bool),"user_agent",
 * "json" (body or null),"nonce","enforce_nonce","allowed_mentions_none"
 * (bool: allowed_mentions.parse == [])}. */
json_t *fd_requests(fd *f);
/* Accepted writes, oldest first: {"op" (post, edit, followup, original,
 * thread),"channel","id","nonce","json" (the body sent)}. */
json_t *fd_messages(fd *f);
/* {"requests","posted","edited","duplicates","nonce_hits","rate_limited",
 * "rate_limited_global","invalid","invalid_10min","command_puts",
 * "command_creates","auth_failures","first_t","last_t" (null before any),
 * "channels" (how many distinct channels were posted to)}. */
json_t *fd_stats(fd *f);
/* The stored commands of a guild (NULL = global). */
json_t *fd_commands(fd *f, const char *guild_id);
/* Waits until at least n messages were accepted; false on timeout. */
bool fd_wait_messages(fd *f, size_t n, int timeout_ms);
/* Forgets requests, messages (and their nonces), answers, counters,
 * buckets and failure rules; keeps keys, channels, commands, interaction
 * tokens and the token's revocation. */
void fd_reset(fd *f);

#endif
