/*
 * plugins/teams/token - the bot's access token for the Bot Connector, by
 * client credentials (POST {login_url}/{tenant}/oauth2/v2.0/token with
 * scope https://api.botframework.com/.default).
 *
 * One per instance, shared by every delivery thread: a token is reused
 * until 5 minutes before it expires; one fetch runs at a time and the other
 * callers wait for its result. A refused request (wrong tenant, wrong or
 * expired secret) is remembered for 30 s, so a broken secret does not turn
 * every delivery into a login request; its reason says what the AADSTS
 * code means and what to set. HTTP goes through the caller's post()
 * callback (the plugin's is host->http_fetch), so tests drive it alone.
 */
#ifndef IM_TEAMS_TOKEN_H
#define IM_TEAMS_TOKEN_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

typedef struct tms_token tms_token;

typedef struct tms_token_cfg {
	const char *login_url;    /* https://login.microsoftonline.com */
	const char *tenant;       /* "" or NULL: botframework.com (legacy) */
	const char *app_id;
	const char *app_password;
	/* POSTs an application/x-www-form-urlencoded body; 0 with the HTTP
	 * status and the body (malloc'd, may be NULL), or IM_E* when no
	 * answer came (then *body may hold the reason). */
	int (*post)(void *ud, const char *url, const char *form, long *status,
		    char **body);
	time_t (*now)(void *ud); /* NULL: time() */
	void *ud;
} tms_token_cfg;

/* Copies the strings. NULL when out of memory. */
tms_token *tms_token_new(const tms_token_cfg *cfg);
void tms_token_free(tms_token *t);

/* A valid token into out. 0; IM_EPERM when the login service refused the
 * credentials (`why` says what to fix); IM_EIO when it did not answer or
 * answered nonsense (`why` says so); IM_EINVAL when out is too small. */
int tms_token_get(tms_token *t, char *out, size_t outlen, char *why,
		  size_t whylen);

/* The Bot Connector answered 401 to `token`: drop it, once, so the next
 * get fetches a new one (a token already replaced stays). */
void tms_token_invalidate(tms_token *t, const char *token);

/* Percent-encodes `s` (RFC 3986 unreserved kept) into out, NUL-ended,
 * stopping before `len` would overflow; returns the length written. For
 * form values and URL path segments (conversation ids hold ': @ ; ='). */
size_t tms_pct_encode(char *out, size_t len, const char *s);

/* {"tenant","app_id","valid":bool,"expires_in_s","fetches","last_error"} */
json_t *tms_token_status(tms_token *t);

#endif
