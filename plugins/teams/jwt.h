/*
 * plugins/teams/jwt - the inbound token check of the Teams connector: the
 * `Authorization: Bearer <JWT>` Bot Framework puts on every activity it
 * POSTs to the bot (../shared/design/PROTOCOLS.md, "Inbound auth").
 *
 * One verifier per instance, shared by every route handler thread. It owns
 * a cache of the signing keys:
 *   - Bot Framework's: GET the OpenID metadata (openid_metadata_url), take
 *     its `jwks_uri`, GET the JWKS;
 *   - with a tenant: also the tenant's keys, GET tenant_keys_url (default
 *     {login_url}/{tenant}/discovery/v2.0/keys, the URL Microsoft
 *     documents; no metadata round trip).
 * Only RSA keys with a `kid` are kept (with their `endorsements`), at most
 * TMS_JWT_MAX_KEYS per source, from bodies of at most TMS_JWT_MAX_BODY
 * bytes. The keys are fetched at the first verify, again every 24 h, and
 * on an unknown `kid` at most once an hour (a flood of forged kids costs
 * one refresh an hour, not one fetch a token). A failed refresh keeps the
 * keys held and is not retried for 60 s. One refresh runs at a time;
 * callers that hold keys never wait for it (only a verifier with no keys
 * yet, or a caller whose kid is unknown, waits for the refresh in flight).
 *
 * Checks, in this order, nothing from the token trusted before its step:
 *   1. scheme "Bearer " (case-insensitive), token at most TMS_JWT_MAX_TOKEN
 *      bytes of base64url characters and exactly two dots;
 *   2. header: JSON object (duplicate names refused), `alg` exactly
 *      "RS256", no `crit`, a string `kid`;
 *   3. the kid is a cached key (else the refresh above);
 *   4. signature: cjose_jws_verify with the cached RSA key (the alg is
 *      fixed by step 2 and checked again on cjose's parse of the header,
 *      so the token never picks the algorithm or the key type);
 *   5. iss: https://api.botframework.com with a Bot Framework key; with a
 *      tenant configured, also https://sts.windows.net/<tenant>/ and
 *      https://login.microsoftonline.com/<tenant>/v2.0 with a tenant key
 *      (the issuer strings are Microsoft's, whatever login_url says);
 *   6. aud: a string equal to the app id;
 *   7. exp required, nbf optional, each with 5 minutes of skew;
 *   8. claim `serviceurl` equal to the activity's serviceUrl, byte for
 *      byte (no trailing '/' leniency: Bot Framework signs the very string
 *      it puts in the activity, and the bot posts replies to that URL);
 *   9. the activity's channelId is the expected one (channel_id, default
 *      "msteams"; "" accepts any), and when the key has a non-empty
 *      `endorsements` list it includes the activity's channelId.
 *
 * HTTP and time come from the caller (fetch and now callbacks), so the
 * verifier is tested alone; the plugin's fetch is host->http_fetch.
 */
#ifndef IM_TEAMS_JWT_H
#define IM_TEAMS_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

#define TMS_JWT_MAX_TOKEN 8192	       /* bytes after "Bearer " */
#define TMS_JWT_MAX_BODY (256 * 1024) /* metadata or JWKS */
#define TMS_JWT_MAX_KEYS 64	       /* per source */
#define TMS_JWT_SKEW_S 300
#define TMS_JWT_REFRESH_S (24 * 3600)
#define TMS_JWT_UNKNOWN_KID_S 3600 /* at most one kid refresh an hour */
#define TMS_JWT_FAIL_HOLD_S 60	   /* after a failed refresh */

#define TMS_JWT_BOTFRAMEWORK_METADATA \
	"https://login.botframework.com/v1/.well-known/openidconfiguration"
#define TMS_JWT_BOTFRAMEWORK_ISSUER "https://api.botframework.com"

typedef struct tms_jwt tms_jwt;

typedef struct tms_jwt_cfg {
	const char *app_id;		 /* required: aud */
	const char *openid_metadata_url; /* NULL: Bot Framework's */
	const char *tenant;		 /* NULL or "": no tenant issuers */
	const char *login_url;		 /* NULL: https://login.microsoftonline.com */
	const char *tenant_keys_url;	 /* NULL: {login_url}/{tenant}/discovery/v2.0/keys */
	const char *channel_id;		 /* NULL: "msteams"; "": any */
	/* GETs url: 0 with the body (malloc'd, NUL-terminated, freed by
	 * the verifier), or IM_E* (then *body, if set, is freed too). */
	int (*fetch)(void *ud, const char *url, char **body);
	time_t (*now)(void *ud); /* NULL: time() */
	void *ud;
} tms_jwt_cfg;

/* Copies the strings; fetches nothing yet. NULL on a missing app id or
 * fetch callback, or out of memory. */
tms_jwt *tms_jwt_new(const tms_jwt_cfg *cfg);
void tms_jwt_free(tms_jwt *j);

/* 0 when the header carries a valid token for this activity; IM_EPERM
 * with the reason in why (for the log; the route answers 401). */
int tms_jwt_verify(tms_jwt *j, const char *authorization_header,
		   const char *activity_service_url,
		   const char *activity_channel_id, char *why, size_t whylen);

/* tms_jwt_verify with flags: TMS_JWT_NOWAIT never blocks on the network
 * (for HTTP workers): where the check would fetch keys or wait for a
 * refresh in flight it returns IM_EAGAIN (nothing counted) and the
 * caller repeats it without the flag where it may wait. */
#define TMS_JWT_NOWAIT 0x1
/* Checks the token alone (steps 1-7), for a body that is no activity: it
 * decides between 401 and 400, and is never counted as verified. */
#define TMS_JWT_TOKEN_ONLY 0x2
int tms_jwt_check(tms_jwt *j, const char *authorization_header,
		  const char *activity_service_url,
		  const char *activity_channel_id, int flags, char *why,
		  size_t whylen);

/* Fetches the keys when none are held or they are due (blocking); true
 * when keys are held afterwards. */
bool tms_jwt_warm(tms_jwt *j);

typedef struct tms_jwt_stats {
	unsigned long fetches;	 /* HTTP GETs made (metadata and JWKS) */
	unsigned long refreshes; /* key refreshes attempted */
	unsigned long verified, refused;
	size_t keys;		 /* keys held now */
	time_t loaded_at;	 /* of the keys held, 0 when none */
	time_t last_verified;	 /* 0 when none yet */
} tms_jwt_stats;

void tms_jwt_get_stats(tms_jwt *j, tms_jwt_stats *out);

/* {"keys","fetches","refreshes","verified","refused","loaded_at",
 *  "last_verified","last_error"} for `status`. */
json_t *tms_jwt_status(tms_jwt *j);

#endif
