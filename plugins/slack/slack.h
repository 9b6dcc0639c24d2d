/*
 * plugins/slack - the Slack connector's private interfaces (never
 * installed). One `slk` per instance, made in create() (plugin.c).
 *
 * Threads: route handlers (inbound.c) run on HTTP workers, several at
 * once; send() on pipeline delivery threads; status() on any thread;
 * Socket Mode (socket.c) owns one thread per instance between start() and
 * stop(). Everything in `slk` is immutable after create() except the
 * fields under `mu` (identity cache, last error) and the objects that
 * carry their own lock (dedup, socket).
 */
#ifndef IM_SLACK_H
#define IM_SLACK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include <im/im.h>

#define SLK_PLATFORM "slack"
/* Scopes of the methods this plugin calls: chat.postMessage and
 * chat.update (chat:write), conversations.list (channels:read; groups:read
 * adds private channels) and slash commands (commands). auth.test needs
 * none; Socket Mode's apps.connections.open takes the app-level token. */
#define SLK_REQUIRED_SCOPES "channels:read chat:write commands"

/* --- request signatures (sign.c) ---------------------------------------- */

typedef struct slk_mac slk_mac;

/* A keyed HMAC-SHA256 for one signing secret; NULL on failure. */
slk_mac *slk_mac_new(const char *secret);
void slk_mac_free(slk_mac *m);
/* "v0=" + lowercase hex HMAC-SHA256(secret, "v0:<ts>:<body>") into out. */
int slk_mac_sign(const slk_mac *m, const char *ts, const char *body,
		 size_t len, char out[68]);
/* Checks X-Slack-Request-Timestamp / X-Slack-Signature over the raw body:
 * 0 when valid; else IM_EPERM with *why a short static reason. `now` is
 * the current Unix time; the window is 5 minutes either way. */
int slk_mac_verify(const slk_mac *m, const char *ts, const char *sig,
		   const char *body, size_t len, time_t now, const char **why);

/* --- form bodies (form.c) ----------------------------------------------- */

/* Decodes application/x-www-form-urlencoded into an object of strings
 * (new). NULL when the encoding is broken: a bad %XX escape, a NUL byte,
 * invalid UTF-8, or more than 64 fields. */
json_t *slk_form_parse(const char *body, size_t len);

/* --- replies as Slack messages (render.c) -------------------------------- */

/* Command markdown to Slack mrkdwn: & < > escaped, [text](url) as
 * <url|text>, **bold** as *bold*. malloc'd. */
char *slk_mrkdwn(const char *markdown);
/* A command reply (im/command.h JSON, borrowed) as a Slack message body
 * {"response_type","text","blocks"} (new). */
json_t *slk_render_reply(const json_t *reply);
/* `v` as compact JSON text, the same bytes as json_dumps(v, JSON_COMPACT |
 * JSON_ENCODE_ANY) but without its loop check, which formats and hashes
 * every object's address (15 % of answering a status command). Every body
 * this plugin sends is written with it. The tree must have no loops (ours
 * are built fresh or parsed). malloc'd; NULL when `v` is NULL or out of
 * memory. */
char *slk_json_text(const json_t *v);

/* --- recently seen event ids (dedup.c) ---------------------------------- */

typedef struct slk_dedup slk_dedup;

/* Remembers between `per_gen` and 2 x `per_gen` recent ids. */
slk_dedup *slk_dedup_new(size_t per_gen);
void slk_dedup_free(slk_dedup *d);
/* True when `id` was seen before; otherwise records it. Thread-safe. */
bool slk_dedup_seen(slk_dedup *d, const char *id);

/* --- the instance -------------------------------------------------------- */

typedef struct slk_socket slk_socket;

/* The instance's settings as the host fills them from the key table
 * (host->config_fill): strings and JSON are borrowed from the validated
 * config and live until destroy(); every string key has a default. */
typedef struct slk_cfg {
	const char *mode;
	const char *bot_token;
	const char *signing_secret;
	const char *app_token;
	const char *api_base_url;
	const char *default_channel;
	const json_t *notification_channels;
	const char *tls_ca_file;
	bool dedupe_requests;
} slk_cfg;

typedef struct slk {
	const im_host *host;
	im_instance *inst;
	const char *id;        /* instance id, borrowed from the host */
	slk_cfg cfg;           /* strings "" when not set (never NULL) */
	bool socket_mode;
	bool debug_bodies;     /* CHATOPS_DEBUG: log Web API bodies */
	char *api_base;        /* cfg.api_base_url without a trailing slash */
	json_t *notify_channels; /* {"SEV-1": "C..."}, a copy */
	slk_mac *mac;          /* NULL in socket mode without a secret */
	slk_dedup *dedup;      /* event ids (Slack retries events) */
	/* Signatures of the signed requests of the last 5 minutes, the window
	 * in which a signature is accepted: a request seen twice (a retry or
	 * a replay) does not run twice. Remembers at least 32,768 requests. */
	slk_dedup *replays;
	slk_socket *sock;      /* Socket Mode only */

	pthread_mutex_t mu;    /* guards the fields below */
	char last_error[320];
	time_t last_error_at;
	char bot_user[96];     /* from auth.test, for hints */
	char bot_user_id[32];
	bool token_revoked;    /* invalid_auth seen since the last good call */
} slk;

/* Records the last error (printf-style) for status(); also logs it. */
void slk_error(slk *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Copies the bot's user name (or "" when unknown). */
void slk_bot_name(slk *s, char *out, size_t len);

/* --- Web API (webapi.c) --------------------------------------------------- */

typedef struct slk_api {
	long http;           /* HTTP status; 0 when the request did not run */
	int net_error;       /* IM_E* of the transport, 0 otherwise */
	bool ok;             /* "ok": true */
	char error[128];     /* Slack's error code, or the transport's text */
	double retry_after;  /* Retry-After seconds, 0 when absent */
	json_t *body;        /* the parsed answer (may be NULL) */
	char *scopes;        /* x-oauth-scopes, malloc'd (may be NULL) */
} slk_api;

/* Calls api_base/<method> with `token`, a JSON body (borrowed) or a form
 * body, or neither (GET-less POST). Blocks (host->http_fetch): never from
 * a route handler. Fills *out; returns 0 when Slack said ok:true. */
int slk_api_call(slk *s, const char *method, const char *token,
		 const json_t *json, const char *form, slk_api *out);
void slk_api_clear(slk_api *r);
/* Remembers identity and token health from an auth.test answer. */
void slk_note_auth(slk *s, const slk_api *r);

/* --- delivery (deliver.c) ------------------------------------------------- */

int slk_send(void *state, const im_send *msg, im_send_result *res);
/* Maps a Web API answer to a verdict, error and operator hint.
 * `channel` and `bot` only word the hints. */
void slk_classify(const slk_api *r, const char *channel, const char *bot,
		  im_send_result *res);
/* The channel id for a send target: an id as is, a severity name
 * ("SEV-1") through notification_channels, "" through default_channel.
 * Borrowed from `s` or `want`; NULL when nothing fits. */
const char *slk_pick_channel(const slk *s, const char *want);

/* --- status (status.c) ---------------------------------------------------- */

int slk_status(void *state, json_t **out);

/* --- inbound HTTP (inbound.c) --------------------------------------------- */

/* Registers the hook routes (create() only). */
int slk_routes_add(slk *s);
int slk_answer(void *state, const im_invocation *inv, const json_t *reply,
	       im_http_response *resp);
int slk_followup(void *state, const im_invocation *inv, const json_t *reply);
/* Fills *inv from a slash-command payload (form fields or the Socket Mode
 * JSON; borrowed strings). */
void slk_inv_from_command(slk *s, const json_t *f, im_invocation *inv);
/* Fills *inv from a block_actions payload; false when it has no action. */
bool slk_inv_from_actions(slk *s, const json_t *p, im_invocation *inv);
/* POSTs a rendered reply to a response_url without waiting (any thread,
 * also host callbacks). */
void slk_post_response_url(slk *s, const char *url, const json_t *reply);

/* --- Socket Mode (socket.c) ----------------------------------------------- */

int slk_socket_start(slk *s);
void slk_socket_stop(slk *s);
/* Stops (if running) and frees; destroy() only. */
void slk_socket_free(slk *s);
/* Connection facts for status() (new object). */
json_t *slk_socket_status(slk *s);

#endif
