/*
 * tests/fakes/fake_botframework - a fake Microsoft Bot Framework on
 * 127.0.0.1 for the Teams connector's tests and benchmarks (built with
 * -DFAKE_BF_MAIN it is the fake-botframework program). One server, one
 * base URL "http://127.0.0.1:<port>" that stands for all three hosts of
 * ../shared/design/PROTOCOLS.md ("Microsoft Teams (Bot Framework)"):
 *
 *   openid_metadata_url  <base>/v1/.well-known/openidconfiguration
 *   jwks_uri             <base>/v1/.well-known/keys
 *                        (also <base>/<tenant>/discovery/v2.0/keys)
 *   login_url            <base>  (token at <base>/<tenant>/oauth2/v2.0/token)
 *   service_url          <base>/teams/  (Bot Connector at /teams/v3/...)
 *
 * Keys: RSA-2048 made with OpenSSL EVP, kept as cjose JWKs; published
 * with kid, kty, use "sig", n, e and, on some keys, "endorsements".
 * At start: "fb-key-1" (current, endorsements ["msteams"]), "fb-key-2"
 * (no endorsements), "fb-key-3" (endorsements ["skype"]). Keys are made
 * once per process and reused by later fakes (RSA keygen is slow).
 *
 * Tokens: POST <base>/<tenant>/oauth2/v2.0/token with the client
 * credentials form answers {"token_type":"Bearer","expires_in",
 * "access_token"} for the app id and secret, in the app's tenant (and
 * "botframework.com" when multi_tenant); otherwise AADSTS700016 (400
 * unauthorized_client), AADSTS7000215 (401 invalid_client),
 * AADSTS1002012 (400 invalid_scope), AADSTS70003 (400
 * unsupported_grant_type).
 *
 * Bot Connector, with "Authorization: Bearer <a token the fake issued>"
 * (else 401 {"error":{"code":"Unauthorized","message"}}):
 *   POST /teams/v3/conversations/{id}/activities        201 {"id"}
 *   POST /teams/v3/conversations/{id}/activities/{aid}  201 {"id"} (reply)
 *   PUT  /teams/v3/conversations/{id}/activities/{aid}  200 {"id"}
 *   DELETE same                                         200 {}
 *   POST /teams/v3/conversations                        201 {"id":
 *        "<channel>;messageid=<n>","activityId":"<n>"}
 *   GET  /teams/v3/teams/{teamId}/conversations         {"conversations":
 *        [{"id","name"}]}
 * Conversation ids arrive URL-encoded in paths and are decoded. Errors
 * are {"error":{"code","message"}}: injected ones (fb_fail), 413
 * MessageSizeTooBig for bodies over 100 KiB, 429 Throttled + Retry-After
 * from a per-conversation token bucket (7 per 1 s by default), 400
 * BadArgument for a body that is not JSON, 404 ActivityNotFound for an
 * update of an activity it never made.
 *
 * Control (also in the library): GET /_stats, GET /_messages,
 * GET /_requests, POST /_reset, POST /_mode?conversation=&status=&code=
 * &times=&retry_after=, GET /_sign?text=&break=&ttl= -> {"token",
 * "authorization","activity"}.
 *
 * Threads: the fake serves on its own threads; every function here is
 * safe from any thread. Strings returned by fb_sign/fb_activity and JSON
 * returned are new (free / json_decref).
 */
#ifndef IM_TESTS_FAKE_BOTFRAMEWORK_H
#define IM_TESTS_FAKE_BOTFRAMEWORK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define FB_ISSUER "https://api.botframework.com"
#define FB_MAX_BODY (100 * 1024)

typedef struct fb fb;

typedef struct fb_opts {
	unsigned port;	      /* 0 = any free port */
	const char *app_id;   /* NULL = FB default below */
	const char *secret;   /* NULL = "fb-secret-1" */
	const char *tenant;   /* NULL = FB default tenant below */
	bool multi_tenant;    /* also issue tokens for "botframework.com" */
	int token_ttl;	      /* expires_in, seconds; 0 = 3600 */
	int rate_n;	      /* sends per conversation per window; 0 = 7 */
	int rate_window_ms;   /* 0 = 1000 */
} fb_opts;

#define FB_APP_ID "6b1f0a52-7c1e-4b7e-9a55-0000000b07a1"
#define FB_TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define FB_TEAM_ID "19:fbteam0general@thread.tacv2"
#define FB_CHANNEL_ID "19:fbteam0incidents@thread.tacv2"

/* Starts with a default team FB_TEAM_ID "Contoso Ops" whose channels are
 * General (id = team id) and Incidents (FB_CHANNEL_ID). NULL opts =
 * defaults. NULL on failure. */
fb *fb_start(const fb_opts *o);
void fb_stop(fb *f);

unsigned fb_port(const fb *f);
/* "http://127.0.0.1:<port>" (borrowed): login_url. */
const char *fb_url(const fb *f);
/* "<base>/teams/" (borrowed): service_url and the serviceurl claim. */
const char *fb_service_url(const fb *f);
/* "<base>/v1/.well-known/openidconfiguration" (borrowed). */
const char *fb_openid_url(const fb *f);
const char *fb_app_id(const fb *f);
const char *fb_tenant(const fb *f);

/* --- keys and inbound tokens -------------------------------------------- */

typedef enum fb_break {
	FB_VALID = 0,
	FB_WRONG_KID,	   /* header kid names another published key */
	FB_UNKNOWN_KID,	   /* a kid never published (new one per call) */
	FB_ALG_NONE,	   /* {"alg":"none"}, empty signature */
	FB_HS256,	   /* HS256, HMAC key = the current key's public PEM */
	FB_EXPIRED,	   /* exp an hour ago (beyond 5 min skew) */
	FB_NOT_YET_VALID,  /* nbf in an hour */
	FB_WRONG_ISS,	   /* iss https://api.botframework.com.evil */
	FB_WRONG_AUD,	   /* aud another app id */
	FB_SERVICEURL,	   /* serviceurl another URL than the activity's */
	FB_FOREIGN_KEY,	   /* current kid, signed by a key not in the JWKS */
	FB_BAD_SIGNATURE,  /* right key, one signature byte changed */
} fb_break;

typedef struct fb_claims {
	const char *aud;	/* NULL = app id */
	const char *iss;	/* NULL = FB_ISSUER */
	const char *serviceurl; /* NULL = fb_service_url() */
	const char *kid;	/* NULL = current key; else a published kid */
	long long exp, nbf;	/* unix seconds; 0 = now+3600, now-300 */
	fb_break brk;
} fb_claims;

/* A compact JWS (JWT) as Bot Framework signs it: header {"alg":"RS256",
 * "kid","typ":"JWT"}, claims iss, aud, exp, nbf, serviceurl; broken as
 * c->brk says. c may be NULL. NULL on failure. */
char *fb_sign(fb *f, const fb_claims *c);
/* Adds a new current key (endorsements ["msteams"]) and, when drop_old,
 * removes the previous current key from the JWKS. Writes the new kid. */
bool fb_rotate_keys(fb *f, bool drop_old, char *kid, size_t kidlen);
/* The current key's kid (borrowed until the next rotation). */
const char *fb_current_kid(fb *f);
/* The published JWKS {"keys":[...]} as served (new). */
json_t *fb_jwks(fb *f);
/* Sets the endorsements of key `kid`: csv "msteams,skype"; NULL drops the
 * member. */
void fb_set_endorsements(fb *f, const char *kid, const char *csv);
/* PEM of the current key's public key (new): the HS256 confusion secret. */
char *fb_public_pem(fb *f);

/* --- activities --------------------------------------------------------- */

typedef struct fb_act {
	const char *conversation; /* NULL = FB_CHANNEL_ID;messageid=<n> */
	const char *service_url;  /* NULL = fb_service_url() */
	const char *team_id, *team_name, *channel_id, *channel_name;
	const char *tenant;	  /* NULL = fb_tenant() */
	const char *user_id, *user_name, *aad_id;
	bool no_mention;	  /* message: no "<at>im</at> " prefix */
	const char *verb;	  /* invoke: Action.Execute verb */
	const json_t *data;	  /* invoke: action data; message: value
				   * (Action.Submit); borrowed */
	const char *action;	  /* installationUpdate: "add" (default) or
				   * "remove" */
} fb_act;

/* Activity JSON as Teams posts it to the messaging endpoint. type:
 * "message" (text after an <at>im</at> mention, with the mention
 * entity), "conversationUpdate" (bot added to the team,
 * eventType channelCreated/teamMemberAdded), "installationUpdate", or
 * "invoke" (name adaptiveCard/action, value {action {type Action.Execute,
 * verb, data}}). `more` may be NULL. New string. */
char *fb_activity(fb *f, const char *type, const char *text,
		  const fb_act *more);

/* --- tokens ------------------------------------------------------------- */

/* Rotates the client secret; when revoke, tokens issued before answer
 * 401 at the Bot Connector from now on. */
void fb_set_secret(fb *f, const char *secret, bool revoke);
void fb_set_token_ttl(fb *f, int seconds);
void fb_set_multi_tenant(fb *f, bool on);
/* A token as the token endpoint would issue it (new string). */
char *fb_issue_token(fb *f);

/* --- the Bot Connector -------------------------------------------------- */

/* Adds (or renames) a channel of a team; the team exists from then on. */
void fb_add_channel(fb *f, const char *team_id, const char *team_name,
		    const char *channel_id, const char *channel_name);
/* The next `times` Bot Connector requests for `conversation` (the full
 * decoded id, or its channel part before ";messageid="; NULL = any) answer
 * HTTP status with {"error":{"code":code,...}} (code NULL = the usual one
 * for status: 403 BotNotInConversationRoster, 404 ConversationNotFound,
 * 412 PreconditionFailed, 413 MessageSizeTooBig, 429 Throttled, 502
 * BadGateway, 504 GatewayTimeout, 401 Unauthorized). times -1 = until
 * cleared; times 0 clears the rules for that conversation.
 * retry_after > 0 adds Retry-After (seconds). */
void fb_fail(fb *f, const char *conversation, int times, int status,
	     const char *code, int retry_after);
/* Sends allowed per conversation per window (n 0 = unlimited). */
void fb_set_rate(fb *f, int n, int window_ms);

/* --- what it received --------------------------------------------------- */

/* Every request, oldest first: {"method","path","kind" (metadata, jwks,
 * token, connector, control, unknown),"conversation","activity_id",
 * "status","code","auth" (bool),"json" (body or null),"form" (token)}. */
json_t *fb_requests(fb *f);
/* Accepted sends/replies/updates/new conversations, oldest first:
 * {"op" (send, reply, update, delete, create),"conversation","id",
 * "reply_to","activity"}. */
json_t *fb_messages(fb *f);
/* {"metadata","jwks","token","token_ok","connector","messages"}. */
json_t *fb_stats(fb *f);
int fb_jwks_fetches(fb *f);
int fb_metadata_fetches(fb *f);
int fb_token_fetches(fb *f);
/* Waits until at least n messages were accepted; false on timeout. */
bool fb_wait_messages(fb *f, size_t n, int timeout_ms);
/* Forgets requests, messages, counters, failure rules and buckets. */
void fb_reset(fb *f);

#endif
