/* The Bot Connector token by client credentials; see token.h. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <im/types.h>

#include "token.h"

#define REFRESH_BEFORE_S 300 /* fetch anew 5 minutes before expiry */
#define REFUSED_HOLD_S 30    /* a refusal is answered from memory */
#define TOKEN_MAX 8192

struct tms_token {
	char *url; /* {login_url}/{tenant}/oauth2/v2.0/token */
	char *tenant, *app_id, *form;
	int (*post)(void *, const char *, const char *, long *, char **);
	time_t (*now)(void *);
	void *ud;
	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cv;  /* a fetch ended */
	bool fetching;
	char *token;	    /* NULL when none */
	time_t expires;	    /* of token */
	time_t refresh_at;  /* 5 minutes (at most half its life) before */
	int refused_rc;	    /* of the last failed fetch, 0 when it worked */
	time_t refused_at;
	char error[320];
	unsigned long fetches;
};

static time_t now_of(const tms_token *t)
{
	return t->now ? t->now(t->ud) : time(NULL);
}

size_t tms_pct_encode(char *out, size_t len, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (; *s && o + 4 < len; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~", c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (len)
		out[o] = '\0';
	return o;
}

static char *make_form(const char *app_id, const char *secret)
{
	static const char scope[] = "https%3A%2F%2Fapi.botframework.com%2F."
				    "default";
	size_t n = 3 * (strlen(app_id) + strlen(secret)) + sizeof(scope) + 80;
	char *f = malloc(n), *p = f;
	if (!f)
		return NULL;
	p += sprintf(p, "grant_type=client_credentials&client_id=");
	p += tms_pct_encode(p, n - (size_t)(p - f), app_id);
	p += sprintf(p, "&client_secret=");
	p += tms_pct_encode(p, n - (size_t)(p - f), secret);
	snprintf(p, n - (size_t)(p - f), "&scope=%s", scope);
	return f;
}

tms_token *tms_token_new(const tms_token_cfg *cfg)
{
	if (!cfg || !cfg->post || !cfg->login_url || !cfg->app_id ||
	    !cfg->app_password)
		return NULL;
	tms_token *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	const char *tenant =
	    cfg->tenant && *cfg->tenant ? cfg->tenant : "botframework.com";
	size_t base = strlen(cfg->login_url);
	while (base && cfg->login_url[base - 1] == '/')
		base--;
	size_t n = base + strlen(tenant) + 32;
	t->url = malloc(n);
	t->tenant = strdup(tenant);
	t->app_id = strdup(cfg->app_id);
	t->form = make_form(cfg->app_id, cfg->app_password);
	if (!t->url || !t->tenant || !t->app_id || !t->form) {
		tms_token_free(t);
		return NULL;
	}
	snprintf(t->url, n, "%.*s/%s/oauth2/v2.0/token", (int)base,
		 cfg->login_url, tenant);
	t->post = cfg->post;
	t->now = cfg->now;
	t->ud = cfg->ud;
	return t;
}

void tms_token_free(tms_token *t)
{
	if (!t)
		return;
	if (t->form) /* it holds the secret */
		memset(t->form, 0, strlen(t->form));
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	free(t->url);
	free(t->tenant);
	free(t->app_id);
	free(t->form);
	free(t->token);
	free(t);
}

/* What an AADSTS code in a refusal means for the operator. */
static void explain(const tms_token *t, long status, const char *desc,
		    char *why, size_t whylen)
{
	if (desc && strstr(desc, "AADSTS700016"))
		snprintf(why, whylen,
			 "the login service does not know app %s in tenant "
			 "'%s' (AADSTS700016): set tenant_id to the tenant the "
			 "bot was created in (new bots are single-tenant; "
			 "botframework.com is for legacy multi-tenant bots)",
			 t->app_id, t->tenant);
	else if (desc && (strstr(desc, "AADSTS7000215") ||
			  strstr(desc, "AADSTS7000222")))
		snprintf(why, whylen,
			 "app_password is not a valid client secret of app %s "
			 "(%s): create a new secret in the app registration "
			 "and set app_password",
			 t->app_id,
			 strstr(desc, "AADSTS7000222") ? "AADSTS7000222: "
							 "expired"
						       : "AADSTS7000215");
	else if (desc && strstr(desc, "AADSTS90002"))
		snprintf(why, whylen,
			 "tenant '%s' does not exist (AADSTS90002): set "
			 "tenant_id to the directory (tenant) id of the app",
			 t->tenant);
	else
		snprintf(why, whylen,
			 "the login service refused the token request (HTTP "
			 "%ld): %.200s",
			 status, desc && *desc ? desc : "no reason given");
}

/* One token request, without the lock. 0 with *tok / *ttl, else IM_E*
 * with why. */
static int fetch(tms_token *t, char **tok, long *ttl, char *why,
		 size_t whylen)
{
	long status = 0;
	char *body = NULL;
	int rc = t->post(t->ud, t->url, t->form, &status, &body);
	if (rc != 0) {
		snprintf(why, whylen, "cannot reach the login service at %s: "
				      "%.160s",
			 t->url, body && *body ? body : "no answer");
		free(body);
		return IM_EIO;
	}
	json_t *j = body ? json_loads(body, 0, NULL) : NULL;
	free(body);
	const char *access =
	    json_string_value(json_object_get(j, "access_token"));
	json_t *exp = json_object_get(j, "expires_in");
	long secs = json_is_integer(exp) ? (long)json_integer_value(exp)
		    : json_is_string(exp)  ? strtol(json_string_value(exp),
						    NULL, 10)
					   : 0;
	if (status == 200 && access && *access && strlen(access) < TOKEN_MAX &&
	    secs > 0) {
		*tok = strdup(access);
		*ttl = secs;
		json_decref(j);
		return *tok ? 0 : IM_ENOMEM;
	}
	if (status == 200) {
		snprintf(why, whylen, "the login service answered 200 without "
				      "a usable access_token / expires_in");
		rc = IM_EIO;
	} else if (status >= 400 && status < 500) {
		explain(t, status,
			json_string_value(
			    json_object_get(j, "error_description")),
			why, whylen);
		rc = IM_EPERM;
	} else {
		snprintf(why, whylen, "the login service answered HTTP %ld",
			 status);
		rc = IM_EIO;
	}
	json_decref(j);
	return rc;
}

static bool usable(const tms_token *t, time_t now)
{
	return t->token && now < t->refresh_at;
}

int tms_token_get(tms_token *t, char *out, size_t outlen, char *why,
		  size_t whylen)
{
	if (!t || !out || !outlen)
		return IM_EINVAL;
	pthread_mutex_lock(&t->mu);
	for (;;) {
		time_t now = now_of(t);
		if (usable(t, now))
			break;
		if (t->refused_rc && now - t->refused_at < REFUSED_HOLD_S) {
			int rc = t->refused_rc;
			snprintf(why, whylen, "%s", t->error);
			pthread_mutex_unlock(&t->mu);
			return rc;
		}
		if (t->fetching) {
			/* Another caller fetches: its result serves us. */
			pthread_cond_wait(&t->cv, &t->mu);
			continue;
		}
		t->fetching = true;
		t->fetches++;
		pthread_mutex_unlock(&t->mu);
		char *tok = NULL, err[320] = "";
		long ttl = 0;
		int rc = fetch(t, &tok, &ttl, err, sizeof err);
		pthread_mutex_lock(&t->mu);
		t->fetching = false;
		pthread_cond_broadcast(&t->cv);
		if (rc == 0) {
			free(t->token);
			t->token = tok;
			t->expires = now_of(t) + ttl;
			t->refresh_at = t->expires - (ttl / 2 < REFRESH_BEFORE_S
							  ? ttl / 2
							  : REFRESH_BEFORE_S);
			t->refused_rc = 0;
			t->error[0] = '\0';
			break;
		}
		snprintf(t->error, sizeof t->error, "%s", err);
		t->refused_rc = rc;
		t->refused_at = now_of(t);
		snprintf(why, whylen, "%s", err);
		pthread_mutex_unlock(&t->mu);
		return rc;
	}
	int rc = strlen(t->token) < outlen ? 0 : IM_EINVAL;
	if (rc == 0)
		memcpy(out, t->token, strlen(t->token) + 1);
	else
		snprintf(why, whylen, "token longer than %zu bytes", outlen);
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void tms_token_invalidate(tms_token *t, const char *token)
{
	if (!t || !token)
		return;
	pthread_mutex_lock(&t->mu);
	if (t->token && strcmp(t->token, token) == 0) {
		free(t->token);
		t->token = NULL;
	}
	pthread_mutex_unlock(&t->mu);
}

json_t *tms_token_status(tms_token *t)
{
	if (!t)
		return json_object();
	pthread_mutex_lock(&t->mu);
	time_t now = now_of(t);
	json_t *o = json_pack(
	    "{s:s,s:s,s:b,s:I,s:I,s:s?}", "tenant", t->tenant, "app_id",
	    t->app_id, "valid", t->token && now < t->expires,
	    "expires_in_s", (json_int_t)(t->token ? t->expires - now : 0),
	    "fetches", (json_int_t)t->fetches, "last_error",
	    t->error[0] ? t->error : NULL);
	pthread_mutex_unlock(&t->mu);
	return o;
}
