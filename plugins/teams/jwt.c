/* The inbound Bot Framework token check; see jwt.h.
 *
 * JWK import and JWS verification are cjose's (cjose_jwk_import,
 * cjose_jws_import, cjose_jws_verify): a maintained JOSE library built on
 * jansson and OpenSSL, the one Apache's mod_auth_openidc verifies tokens
 * with. No RSA or signature code is written here; this file only decides
 * which key and which algorithm cjose may use (RS256 and RSA keys, never
 * what the token asks for) and checks the claims. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjose/cjose.h>

#include <im/types.h>

#include "jwt.h"

#define KID_MAX 256
#define ENDORSE_MAX 32	    /* endorsements kept per key */
#define ENDORSE_LEN_MAX 64
#define RSA_MIN_BITS 2048

enum { SRC_BF = 1, SRC_TENANT = 2 };

struct key {
	char *kid;
	cjose_jwk_t *jwk; /* RSA, public */
	char **endorse;
	size_t nendorse;
	int src;
};

/* An immutable set of keys, reference counted (under tms_jwt.mu) so a
 * verify in progress keeps the set it started with through a refresh. */
struct keyset {
	unsigned refs;
	size_t n;
	struct key k[];
};

struct tms_jwt {
	char *app_id, *metadata_url, *tenant, *tenant_keys_url, *channel_id;
	char *iss_sts, *iss_v2; /* tenant issuers, NULL without a tenant */
	int (*fetch)(void *, const char *, char **);
	time_t (*now)(void *);
	void *ud;

	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cv;  /* a refresh ended */
	bool fetching;
	struct keyset *set; /* NULL until the first refresh worked */
	time_t loaded_at;   /* when set was fetched (sooner: partial) */
	bool kid_refreshed; /* an unknown kid caused a refresh, at: */
	time_t kid_refresh_at;
	time_t fail_until; /* no refresh before, after a failure */
	char last_error[256];
	unsigned long fetches, refreshes, verified, refused;
	time_t last_verified;
};

static time_t now_of(const tms_jwt *j)
{
	return j->now ? j->now(j->ud) : time(NULL);
}

static char *dup_or(const char *s, const char *dflt)
{
	return strdup(s ? s : dflt);
}

static char *fmt(const char *f, const char *a, const char *b)
{
	size_t n = strlen(f) + strlen(a) + strlen(b) + 1;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, f, a, b);
	return s;
}

/* A token-supplied string fit for the log: printable ASCII, clipped. */
static const char *clip(char *dst, size_t n, const char *s)
{
	size_t i = 0;
	for (; s && *s && i + 1 < n; s++)
		dst[i++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	dst[i] = '\0';
	if (s && *s && n > 4)
		memcpy(dst + n - 4, "...", 4);
	return dst;
}

/* ---- keys ---------------------------------------------------------- */

static void key_clear(struct key *k)
{
	free(k->kid);
	if (k->jwk)
		cjose_jwk_release(k->jwk);
	for (size_t i = 0; i < k->nendorse; i++)
		free(k->endorse[i]);
	free(k->endorse);
	memset(k, 0, sizeof(*k));
}

static void set_unref(struct keyset *s)
{
	/* called with mu held, or on a set nobody else sees */
	if (!s || --s->refs)
		return;
	for (size_t i = 0; i < s->n; i++)
		key_clear(&s->k[i]);
	free(s);
}

static struct keyset *set_new(size_t cap)
{
	struct keyset *s = calloc(1, sizeof(*s) + cap * sizeof(struct key));
	if (s)
		s->refs = 1;
	return s;
}

/* A copy of key k into d (the cjose key retained). */
static bool key_copy(struct key *d, const struct key *k)
{
	cjose_err err;
	memset(d, 0, sizeof(*d));
	d->src = k->src;
	d->kid = strdup(k->kid);
	d->jwk = cjose_jwk_retain(k->jwk, &err);
	if (k->nendorse)
		d->endorse = calloc(k->nendorse, sizeof(char *));
	if (!d->kid || !d->jwk || (k->nendorse && !d->endorse)) {
		key_clear(d);
		return false;
	}
	for (; d->nendorse < k->nendorse; d->nendorse++)
		if (!(d->endorse[d->nendorse] = strdup(k->endorse[d->nendorse]))) {
			key_clear(d);
			return false;
		}
	return true;
}

/* One JWKS entry into k: RSA, with a kid, for signatures, at least
 * RSA_MIN_BITS. false (k untouched) for anything else. */
static bool key_parse(struct key *k, json_t *o, int src)
{
	const char *kty = json_string_value(json_object_get(o, "kty"));
	const char *kid = json_string_value(json_object_get(o, "kid"));
	json_t *use = json_object_get(o, "use"), *alg = json_object_get(o, "alg");
	json_t *en = json_object_get(o, "endorsements");
	if (!kty || strcmp(kty, "RSA") || !kid || !*kid ||
	    strlen(kid) > KID_MAX)
		return false;
	if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig")))
		return false;
	if (alg && (!json_is_string(alg) || strcmp(json_string_value(alg), "RS256")))
		return false;
	if (en && !json_is_array(en))
		return false;
	char *js = json_dumps(o, JSON_COMPACT);
	if (!js)
		return false;
	cjose_err err;
	cjose_jwk_t *jwk = cjose_jwk_import(js, strlen(js), &err);
	free(js);
	if (!jwk)
		return false;
	if (cjose_jwk_get_kty(jwk, &err) != CJOSE_JWK_KTY_RSA ||
	    cjose_jwk_get_keysize(jwk, &err) < RSA_MIN_BITS) {
		cjose_jwk_release(jwk);
		return false;
	}
	struct key t = {.jwk = jwk, .src = src, .kid = strdup(kid)};
	size_t ne = en ? json_array_size(en) : 0;
	if (ne > ENDORSE_MAX)
		ne = ENDORSE_MAX;
	if (ne)
		t.endorse = calloc(ne, sizeof(char *));
	if (!t.kid || (ne && !t.endorse)) {
		key_clear(&t);
		return false;
	}
	for (size_t i = 0; i < ne; i++) {
		const char *e = json_string_value(json_array_get(en, i));
		if (!e || strlen(e) > ENDORSE_LEN_MAX)
			continue;
		if (!(t.endorse[t.nendorse] = strdup(e))) {
			key_clear(&t);
			return false;
		}
		t.nendorse++;
	}
	*k = t;
	return true;
}

/* GET url into a parsed JSON object; NULL with err set. */
static json_t *get_json(tms_jwt *j, const char *url, unsigned long *fetches,
			char *err, size_t errlen)
{
	char *body = NULL;
	(*fetches)++;
	int rc = j->fetch(j->ud, url, &body);
	if (rc) {
		snprintf(err, errlen, "GET %s failed (%d)", url, rc);
		free(body);
		return NULL;
	}
	if (!body || strlen(body) > TMS_JWT_MAX_BODY) {
		snprintf(err, errlen, "GET %s: %s", url,
			 body ? "body over 256 KiB" : "no body");
		free(body);
		return NULL;
	}
	json_error_t je;
	json_t *o = json_loads(body, JSON_REJECT_DUPLICATES, &je);
	free(body);
	if (!json_is_object(o)) {
		snprintf(err, errlen, "GET %s: not a JSON object", url);
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The keys of one source appended to s (room for TMS_JWT_MAX_KEYS more):
 * via the OpenID metadata's jwks_uri when metadata, else url is the JWKS. */
static bool load_source(tms_jwt *j, const char *url, bool metadata, int src,
			struct keyset *s, unsigned long *fetches, char *err,
			size_t errlen)
{
	json_t *jwks;
	if (metadata) {
		json_t *md = get_json(j, url, fetches, err, errlen);
		if (!md)
			return false;
		const char *uri = json_string_value(json_object_get(md, "jwks_uri"));
		if (!uri || !*uri) {
			snprintf(err, errlen, "%s: no jwks_uri", url);
			json_decref(md);
			return false;
		}
		jwks = get_json(j, uri, fetches, err, errlen);
		json_decref(md);
	} else {
		jwks = get_json(j, url, fetches, err, errlen);
	}
	if (!jwks)
		return false;
	json_t *keys = json_object_get(jwks, "keys");
	size_t added = 0, i;
	json_t *o;
	json_array_foreach(keys, i, o) {
		if (added == TMS_JWT_MAX_KEYS)
			break;
		if (json_is_object(o) && key_parse(&s->k[s->n], o, src)) {
			s->n++;
			added++;
		}
	}
	json_decref(jwks);
	if (!added) {
		snprintf(err, errlen, "%s: no usable RSA signing key",
			 metadata ? "JWKS" : url);
		return false;
	}
	return true;
}

/* Carries the keys of source src from old into s. */
static void carry(struct keyset *s, const struct keyset *old, int src)
{
	for (size_t i = 0; old && i < old->n; i++)
		if (old->k[i].src == src && key_copy(&s->k[s->n], &old->k[i]))
			s->n++;
}

/* One refresh. Called with mu held and no refresh running; returns with
 * mu held. The fetches run unlocked: callers holding keys go on. */
static void refresh_locked(tms_jwt *j, time_t now)
{
	j->fetching = true;
	j->refreshes++;
	struct keyset *old = j->set;
	if (old)
		old->refs++;
	pthread_mutex_unlock(&j->mu);

	unsigned long fetches = 0;
	char err[256] = "", terr[256] = "";
	struct keyset *s = set_new(2 * TMS_JWT_MAX_KEYS);
	bool bf = false, tn = true;
	if (s) {
		bf = load_source(j, j->metadata_url, true, SRC_BF, s, &fetches,
				 err, sizeof err);
		if (j->tenant)
			tn = load_source(j, j->tenant_keys_url, false, SRC_TENANT,
					 s, &fetches, terr, sizeof terr);
	} else {
		snprintf(err, sizeof err, "out of memory");
	}

	pthread_mutex_lock(&j->mu);
	/* a source that failed keeps its keys; under mu, as cjose's key
	 * reference counts are plain integers shared between sets */
	if (s && !bf)
		carry(s, old, SRC_BF);
	if (s && !tn)
		carry(s, old, SRC_TENANT);
	set_unref(old);
	j->fetches += fetches;
	if (s && (bf || (j->tenant && tn)) && s->n) {
		set_unref(j->set);
		j->set = s;
		/* a source that failed is tried again in FAIL_HOLD_S */
		j->loaded_at = (bf && tn) ? now
					  : now - TMS_JWT_REFRESH_S +
						    TMS_JWT_FAIL_HOLD_S;
	} else {
		set_unref(s);
		j->fail_until = now + TMS_JWT_FAIL_HOLD_S;
	}
	if (!bf || !tn)
		snprintf(j->last_error, sizeof j->last_error, "keys: %s%s%s",
			 err, *err && *terr ? "; " : "", terr);
	else
		j->last_error[0] = '\0';
	j->fetching = false;
	pthread_cond_broadcast(&j->cv);
}

static bool has_kid(const struct keyset *s, const char *kid)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (!strcmp(s->k[i].kid, kid))
			return true;
	return false;
}

/* A referenced set holding kid, or NULL with the reason. */
static struct keyset *keys_for(tms_jwt *j, const char *kid, time_t now,
			       bool wait, bool *again, char *why,
			       size_t whylen)
{
	char c[48];
	bool tried = false;
	pthread_mutex_lock(&j->mu);
	for (;;) {
		struct keyset *s = j->set;
		bool stale = !s || now - j->loaded_at >= TMS_JWT_REFRESH_S;
		bool held = now < j->fail_until;
		if (stale && !j->fetching && !held && !tried) {
			if (!wait)
				goto later;
			refresh_locked(j, now);
			tried = true;
			continue;
		}
		if (!s && j->fetching) {
			if (!wait)
				goto later;
			pthread_cond_wait(&j->cv, &j->mu);
			continue;
		}
		if (!s) {
			snprintf(why, whylen, "no signing keys (%s)",
				 *j->last_error ? j->last_error : "not loaded");
			break;
		}
		if (has_kid(s, kid)) {
			s->refs++;
			pthread_mutex_unlock(&j->mu);
			return s;
		}
		if (j->fetching) { /* the refresh in flight may bring it */
			if (!wait)
				goto later;
			pthread_cond_wait(&j->cv, &j->mu);
			continue;
		}
		if (tried) {
			snprintf(why, whylen, "unknown kid %s (not in the keys "
				 "just fetched)", clip(c, sizeof c, kid));
			break;
		}
		if (held || (j->kid_refreshed &&
			     now - j->kid_refresh_at < TMS_JWT_UNKNOWN_KID_S)) {
			snprintf(why, whylen, "unknown kid %s (keys refreshed "
				 "for an unknown kid at most once an hour)",
				 clip(c, sizeof c, kid));
			break;
		}
		if (!wait)
			goto later;
		j->kid_refreshed = true;
		j->kid_refresh_at = now;
		refresh_locked(j, now);
		tried = true;
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
later: /* the caller may not wait for the network: it asks again where
	* it may */
	*again = true;
	snprintf(why, whylen, "signing keys are being fetched");
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

static void keys_release(tms_jwt *j, struct keyset *s)
{
	pthread_mutex_lock(&j->mu);
	set_unref(s);
	pthread_mutex_unlock(&j->mu);
}

/* ---- the check ----------------------------------------------------- */

static bool b64url_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

/* base64url text into JSON (duplicate names refused): NULL when not
 * base64url, JSON null when not JSON. */
static json_t *b64_json(const char *s, size_t n)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	cjose_err err;
	if (n % 4 == 1 || !cjose_base64url_decode(s, n, &buf, &len, &err))
		return NULL;
	json_error_t je;
	json_t *o = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
	cjose_get_dealloc()(buf);
	return o ? o : json_null();
}

#define REFUSE(...)                                  \
	do {                                         \
		snprintf(why, whylen, __VA_ARGS__);  \
		goto out;                            \
	} while (0)

static int check(tms_jwt *j, const char *auth, const char *service_url,
		 const char *channel, int flags, char *why, size_t whylen)
{
	int rc = IM_EPERM;
	char c[48], c2[48];
	json_t *hdr = NULL, *claims = NULL;
	struct keyset *ks = NULL;
	cjose_jws_t *jws = NULL;
	cjose_err err;

	/* 1. scheme and shape */
	if (!auth || !*auth)
		REFUSE("no Authorization header");
	if (strncasecmp(auth, "Bearer ", 7))
		REFUSE("Authorization is not a Bearer token");
	const char *tok = auth + 7;
	while (*tok == ' ')
		tok++;
	size_t len = strnlen(tok, TMS_JWT_MAX_TOKEN + 1);
	if (len > TMS_JWT_MAX_TOKEN)
		REFUSE("token over %d bytes", TMS_JWT_MAX_TOKEN);
	const char *dot[2] = {NULL, NULL};
	int dots = 0;
	for (size_t i = 0; i < len; i++) {
		if (tok[i] == '.') {
			if (dots < 2)
				dot[dots] = tok + i;
			dots++;
		} else if (!b64url_char(tok[i])) {
			REFUSE("token is not a compact JWS (character %zu)", i);
		}
	}
	if (dots != 2 || dot[0] == tok || dot[1] == dot[0] + 1)
		REFUSE("token is not a compact JWS of 3 parts");

	/* 2. header: RS256 only, a kid */
	hdr = b64_json(tok, (size_t)(dot[0] - tok));
	if (!hdr)
		REFUSE("token header is not base64url");
	if (!json_is_object(hdr))
		REFUSE("token header is not a JSON object");
	const char *alg = json_string_value(json_object_get(hdr, "alg"));
	if (!alg)
		REFUSE("token header has no alg");
	if (strcmp(alg, "RS256"))
		REFUSE("alg %s refused (RS256 only)", clip(c, sizeof c, alg));
	if (json_object_get(hdr, "crit"))
		REFUSE("token header has crit extensions");
	const char *kid = json_string_value(json_object_get(hdr, "kid"));
	if (!kid || !*kid || strlen(kid) > KID_MAX)
		REFUSE("token header has no kid");

	/* 3. the key */
	time_t now = now_of(j);
	bool again = false;
	ks = keys_for(j, kid, now, !(flags & TMS_JWT_NOWAIT), &again, why,
		      whylen);
	if (!ks) {
		if (again)
			rc = IM_EAGAIN;
		goto out;
	}

	/* 4. signature, by cjose, with each key of that kid (one, unless a
	 * kid is in both sources); the alg is checked again on cjose's own
	 * parse of the header, so it verifies RS256 and nothing else. */
	const struct key *by[3] = {NULL, NULL, NULL}; /* by source */
	bool parsed = false;
	for (size_t i = 0; i < ks->n; i++) {
		const struct key *k = &ks->k[i];
		if (strcmp(k->kid, kid) || by[k->src])
			continue;
		if (jws)
			cjose_jws_release(jws);
		jws = cjose_jws_import(tok, len, &err);
		if (!jws)
			REFUSE("token is not a JWS (%s)",
			       err.message ? err.message : "cjose");
		const char *a2 = cjose_header_get(cjose_jws_get_protected(jws),
						  CJOSE_HDR_ALG, &err);
		if (!a2 || strcmp(a2, CJOSE_HDR_ALG_RS256))
			REFUSE("alg refused (RS256 only)");
		parsed = true;
		if (cjose_jws_verify(jws, k->jwk, &err))
			by[k->src] = k;
	}
	if (!parsed || (!by[SRC_BF] && !by[SRC_TENANT]))
		REFUSE("bad signature (kid %s)", clip(c, sizeof c, kid));
	/* the last import verified with the last key tried; take the text of
	 * a verified import (all imports read the same token) */
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	if (!cjose_jws_get_plaintext(jws, &pt, &ptlen, &err))
		REFUSE("token payload unreadable");
	json_error_t je;
	claims = json_loadb((const char *)pt, ptlen, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(claims))
		REFUSE("token payload is not a JSON object");

	/* 5. issuer, against the source of the key that signed */
	const char *iss = json_string_value(json_object_get(claims, "iss"));
	const struct key *key = NULL;
	if (!iss)
		REFUSE("token has no iss");
	if (!strcmp(iss, TMS_JWT_BOTFRAMEWORK_ISSUER)) {
		if (!(key = by[SRC_BF]))
			REFUSE("iss %s with a key not from Bot Framework", iss);
	} else if (j->tenant && (!strcmp(iss, j->iss_sts) ||
				 !strcmp(iss, j->iss_v2))) {
		if (!(key = by[SRC_TENANT]))
			REFUSE("iss %s with a key not from the tenant",
			       clip(c, sizeof c, iss));
	} else {
		REFUSE("iss %s refused", clip(c, sizeof c, iss));
	}

	/* 6. audience */
	const char *aud = json_string_value(json_object_get(claims, "aud"));
	if (!aud || strcmp(aud, j->app_id))
		REFUSE("aud %s is not the app id", aud ? clip(c, sizeof c, aud)
							: "(none)");

	/* 7. lifetime */
	json_t *exp = json_object_get(claims, "exp");
	json_t *nbf = json_object_get(claims, "nbf");
	if (!json_is_number(exp))
		REFUSE("token has no exp");
	if ((double)now > json_number_value(exp) + TMS_JWT_SKEW_S)
		REFUSE("token expired %.0f s ago",
		       (double)now - json_number_value(exp));
	if (nbf && !json_is_number(nbf))
		REFUSE("token nbf is not a number");
	if (nbf && json_number_value(nbf) > (double)now + TMS_JWT_SKEW_S)
		REFUSE("token not valid for %.0f s more",
		       json_number_value(nbf) - (double)now);

	if (flags & TMS_JWT_TOKEN_ONLY)
		goto valid;

	/* 8. the service URL the activity names */
	const char *su = json_string_value(json_object_get(claims, "serviceurl"));
	if (!su)
		REFUSE("token has no serviceurl claim");
	if (!service_url || strcmp(su, service_url))
		REFUSE("serviceurl claim %s is not the activity's serviceUrl %s",
		       clip(c, sizeof c, su),
		       service_url ? clip(c2, sizeof c2, service_url) : "(none)");

	/* 9. channel and endorsements */
	if (*j->channel_id && (!channel || strcmp(channel, j->channel_id)))
		REFUSE("channelId %s is not %s",
		       channel ? clip(c, sizeof c, channel) : "(none)",
		       j->channel_id);
	if (key->nendorse) {
		size_t i = 0;
		while (channel && i < key->nendorse &&
		       strcmp(key->endorse[i], channel))
			i++;
		if (!channel || i == key->nendorse)
			REFUSE("key %s is not endorsed for channel %s",
			       clip(c, sizeof c, kid),
			       channel ? clip(c2, sizeof c2, channel) : "(none)");
	}
valid:
	rc = 0;
	if (whylen)
		*why = '\0';
out:
	if (jws)
		cjose_jws_release(jws);
	json_decref(claims);
	json_decref(hdr);
	if (ks)
		keys_release(j, ks);
	return rc;
}

int tms_jwt_check(tms_jwt *j, const char *authorization_header,
		  const char *activity_service_url,
		  const char *activity_channel_id, int flags, char *why,
		  size_t whylen)
{
	char dummy[8];
	if (!why || !whylen) {
		why = dummy;
		whylen = sizeof dummy;
	}
	if (!j) {
		snprintf(why, whylen, "no verifier");
		return IM_EPERM;
	}
	int rc = check(j, authorization_header, activity_service_url,
		       activity_channel_id, flags, why, whylen);
	if (rc == IM_EAGAIN)
		return rc;
	pthread_mutex_lock(&j->mu);
	if (rc) {
		j->refused++;
	} else if (!(flags & TMS_JWT_TOKEN_ONLY)) {
		j->verified++;
		j->last_verified = now_of(j);
	}
	pthread_mutex_unlock(&j->mu);
	return rc;
}

int tms_jwt_verify(tms_jwt *j, const char *authorization_header,
		   const char *activity_service_url,
		   const char *activity_channel_id, char *why, size_t whylen)
{
	return tms_jwt_check(j, authorization_header, activity_service_url,
			     activity_channel_id, 0, why, whylen);
}

bool tms_jwt_warm(tms_jwt *j)
{
	pthread_mutex_lock(&j->mu);
	time_t now = now_of(j);
	if ((!j->set || now - j->loaded_at >= TMS_JWT_REFRESH_S) &&
	    !j->fetching && now >= j->fail_until)
		refresh_locked(j, now);
	bool ok = j->set != NULL;
	pthread_mutex_unlock(&j->mu);
	return ok;
}

/* ---- life ---------------------------------------------------------- */

tms_jwt *tms_jwt_new(const tms_jwt_cfg *cfg)
{
	if (!cfg || !cfg->fetch || !cfg->app_id || !*cfg->app_id)
		return NULL;
	tms_jwt *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	j->fetch = cfg->fetch;
	j->now = cfg->now;
	j->ud = cfg->ud;
	j->app_id = strdup(cfg->app_id);
	j->metadata_url = dup_or(cfg->openid_metadata_url,
				 TMS_JWT_BOTFRAMEWORK_METADATA);
	j->channel_id = dup_or(cfg->channel_id, "msteams");
	bool ok = j->app_id && j->metadata_url && j->channel_id;
	if (ok && cfg->tenant && *cfg->tenant) {
		const char *login = cfg->login_url && *cfg->login_url
					    ? cfg->login_url
					    : "https://login.microsoftonline.com";
		j->tenant = strdup(cfg->tenant);
		j->tenant_keys_url =
			cfg->tenant_keys_url && *cfg->tenant_keys_url
				? strdup(cfg->tenant_keys_url)
				: fmt("%s/%s/discovery/v2.0/keys", login,
				      cfg->tenant);
		j->iss_sts = fmt("https://sts.windows.net/%s%s/", cfg->tenant, "");
		j->iss_v2 = fmt("https://login.microsoftonline.com/%s%s/v2.0",
				cfg->tenant, "");
		ok = j->tenant && j->tenant_keys_url && j->iss_sts && j->iss_v2;
	}
	if (!ok) {
		tms_jwt_free(j);
		return NULL;
	}
	return j;
}

void tms_jwt_free(tms_jwt *j)
{
	if (!j)
		return;
	set_unref(j->set);
	free(j->app_id);
	free(j->metadata_url);
	free(j->tenant);
	free(j->tenant_keys_url);
	free(j->channel_id);
	free(j->iss_sts);
	free(j->iss_v2);
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

void tms_jwt_get_stats(tms_jwt *j, tms_jwt_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&j->mu);
	out->fetches = j->fetches;
	out->refreshes = j->refreshes;
	out->verified = j->verified;
	out->refused = j->refused;
	out->keys = j->set ? j->set->n : 0;
	out->loaded_at = j->set ? j->loaded_at : 0;
	out->last_verified = j->last_verified;
	pthread_mutex_unlock(&j->mu);
}

json_t *tms_jwt_status(tms_jwt *j)
{
	tms_jwt_stats s;
	tms_jwt_get_stats(j, &s);
	pthread_mutex_lock(&j->mu);
	json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s}",
			      "keys", (json_int_t)s.keys,
			      "fetches", (json_int_t)s.fetches,
			      "refreshes", (json_int_t)s.refreshes,
			      "verified", (json_int_t)s.verified,
			      "refused", (json_int_t)s.refused,
			      "loaded_at", (json_int_t)s.loaded_at,
			      "last_verified", (json_int_t)s.last_verified,
			      "last_error", j->last_error);
	pthread_mutex_unlock(&j->mu);
	return o;
}
