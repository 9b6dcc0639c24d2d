/* The fake Bot Framework: OpenID metadata and JWKS, inbound token signing
 * (cjose), client-credentials tokens and the Bot Connector API on one
 * libmicrohttpd server. See fake_botframework.h. Built with -DFAKE_BF_MAIN
 * it is also the fake-botframework program (main at the end). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjose/cjose.h>
#include <microhttpd.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "fake_botframework.h"

#define READ_CAP (4u << 20) /* bodies beyond: 413 without keeping them */

typedef struct fb_key {
	char kid[32];
	EVP_PKEY *pk;
	cjose_jwk_t *jwk; /* private, with kid */
	json_t *pub;	  /* public JWK as published */
	bool published;
} fb_key;

typedef struct rule {
	char *conv; /* NULL = any */
	int times;  /* -1 = forever */
	int status;
	char code[64];
	int retry_after;
} rule;

typedef struct bucket {
	char *conv;
	double tokens;
	double last;
} bucket;

typedef struct tok {
	char *value;
	time_t exp;
	unsigned gen;
} tok;

struct fb {
	pthread_mutex_t mu;
	struct MHD_Daemon *d;
	unsigned port;
	char url[64], service[80], openid[128];
	char app_id[128], secret[128], tenant[128];
	bool multi;
	int ttl;
	int rate_n, rate_ms;
	unsigned secret_gen; /* tokens of older generations: 401 */
	fb_key *keys;
	size_t nkeys;
	size_t current;
	int made;	/* keys taken from the process pool */
	fb_key foreign; /* never published */
	unsigned forged;
	tok *toks;
	size_t ntoks;
	rule *rules;
	size_t nrules;
	bucket *buckets;
	size_t nbuckets;
	json_t *teams; /* {team id: {"name","channels":[{"id","name"}]}} */
	json_t *reqs, *msgs;
	int n_meta, n_jwks, n_token, n_token_ok, n_conn;
	unsigned long next_id;
};

/* --- small helpers ------------------------------------------------------ */

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char *str(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* Percent-decodes n bytes of s into a new string ('+' too when form);
 * NULL when an escape is broken. */
static char *pct_decode(const char *s, size_t n, bool form)
{
	char *out = malloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; out && i < n; i++) {
		if (form && s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%') {
			int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				free(out);
				return NULL;
			}
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	if (out)
		out[o] = '\0';
	return out;
}

static json_t *form_parse(const char *s, size_t n)
{
	json_t *o = json_object();
	for (size_t i = 0; i < n;) {
		size_t e = i;
		while (e < n && s[e] != '&')
			e++;
		const char *eq = memchr(s + i, '=', e - i);
		size_t kl = eq ? (size_t)(eq - (s + i)) : e - i;
		size_t vs = eq ? i + kl + 1 : e;
		char *k = pct_decode(s + i, kl, true);
		char *v = pct_decode(s + vs, e - vs, true);
		if (k && v && *k)
			json_object_set_new(o, k, json_string(v));
		free(k);
		free(v);
		i = e + 1;
	}
	return o;
}

static char *b64url(const void *p, size_t n)
{
	char *out = NULL;
	size_t len = 0;
	cjose_err err;
	if (!cjose_base64url_encode(p, n, &out, &len, &err))
		return NULL;
	char *copy = strndup(out, len);
	cjose_get_dealloc()(out);
	return copy;
}

static char *b64url_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	char *b = s ? b64url(s, strlen(s)) : NULL;
	free(s);
	return b;
}

static void random_hex(char *out, size_t bytes)
{
	unsigned char r[32];
	if (bytes > sizeof(r))
		bytes = sizeof(r);
	if (RAND_bytes(r, (int)bytes) != 1)
		memset(r, 0x5a, bytes);
	for (size_t i = 0; i < bytes; i++)
		sprintf(out + 2 * i, "%02x", r[i]);
}

/* --- keys --------------------------------------------------------------- */

/* RSA-2048 keys made once per process: slot i is the same key for every
 * fake, so a test binary pays for key generation once. */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static EVP_PKEY *pool[32];
static int pool_n;

static EVP_PKEY *pool_key(int i)
{
	EVP_PKEY *k = NULL;
	pthread_mutex_lock(&pool_mu);
	if (i < (int)(sizeof(pool) / sizeof(pool[0]))) {
		while (pool_n <= i) {
			EVP_PKEY *g = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
							(size_t)2048);
			if (!g)
				break;
			pool[pool_n++] = g;
		}
		if (i < pool_n && EVP_PKEY_up_ref(pool[i]))
			k = pool[i];
	}
	pthread_mutex_unlock(&pool_mu);
	if (!k)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	return k;
}

static uint8_t *bn_bytes(const EVP_PKEY *pk, const char *name, size_t *len)
{
	BIGNUM *bn = NULL;
	if (!EVP_PKEY_get_bn_param(pk, name, &bn))
		return NULL;
	*len = (size_t)BN_num_bytes(bn);
	uint8_t *b = malloc(*len ? *len : 1);
	if (b)
		BN_bn2bin(bn, b);
	BN_free(bn);
	return b;
}

/* A cjose JWK holding the OpenSSL key `pk`, with `kid`. */
static cjose_jwk_t *jwk_from(const EVP_PKEY *pk, const char *kid)
{
	cjose_jwk_rsa_keyspec s = {0};
	s.n = bn_bytes(pk, OSSL_PKEY_PARAM_RSA_N, &s.nlen);
	s.e = bn_bytes(pk, OSSL_PKEY_PARAM_RSA_E, &s.elen);
	s.d = bn_bytes(pk, OSSL_PKEY_PARAM_RSA_D, &s.dlen);
	s.p = bn_bytes(pk, OSSL_PKEY_PARAM_RSA_FACTOR1, &s.plen);
	s.q = bn_bytes(pk, OSSL_PKEY_PARAM_RSA_FACTOR2, &s.qlen);
	s.dp = bn_bytes(pk, OSSL_PKEY_PARAM_RSA_EXPONENT1, &s.dplen);
	s.dq = bn_bytes(pk, OSSL_PKEY_PARAM_RSA_EXPONENT2, &s.dqlen);
	s.qi = bn_bytes(pk, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, &s.qilen);
	cjose_jwk_t *j = NULL;
	cjose_err err;
	if (s.n && s.e && s.d && s.p && s.q && s.dp && s.dq && s.qi)
		j = cjose_jwk_create_RSA_spec(&s, &err);
	if (j && !cjose_jwk_set_kid(j, kid, strlen(kid), &err)) {
		cjose_jwk_release(j);
		j = NULL;
	}
	free(s.n);
	free(s.e);
	free(s.d);
	free(s.p);
	free(s.q);
	free(s.dp);
	free(s.dq);
	free(s.qi);
	return j;
}

static json_t *csv_array(const char *csv)
{
	json_t *a = json_array();
	for (const char *p = csv; p && *p;) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n)
			json_array_append_new(a, json_stringn(p, n));
		p = e ? e + 1 : p + n;
	}
	return a;
}

static bool key_make(fb *f, fb_key *k, const char *endorse)
{
	int i = f->made++;
	snprintf(k->kid, sizeof(k->kid), "fb-key-%d", i + 1);
	k->pk = pool_key(i);
	k->jwk = k->pk ? jwk_from(k->pk, k->kid) : NULL;
	if (!k->jwk)
		return false;
	cjose_err err;
	char *pub = cjose_jwk_to_json(k->jwk, false, &err);
	k->pub = pub ? json_loads(pub, 0, NULL) : NULL;
	cjose_get_dealloc()(pub);
	if (!k->pub)
		return false;
	json_object_set_new(k->pub, "use", json_string("sig"));
	if (endorse)
		json_object_set_new(k->pub, "endorsements", csv_array(endorse));
	k->published = true;
	return true;
}

static void key_free(fb_key *k)
{
	cjose_jwk_release(k->jwk);
	EVP_PKEY_free(k->pk);
	json_decref(k->pub);
	memset(k, 0, sizeof(*k));
}

static bool key_add(fb *f, const char *endorse)
{
	fb_key *n = realloc(f->keys, (f->nkeys + 1) * sizeof(*n));
	if (!n)
		return false;
	f->keys = n;
	memset(&n[f->nkeys], 0, sizeof(*n));
	if (!key_make(f, &n[f->nkeys], endorse)) {
		key_free(&n[f->nkeys]);
		return false;
	}
	f->nkeys++;
	return true;
}

static fb_key *key_by_kid(fb *f, const char *kid)
{
	for (size_t i = 0; kid && i < f->nkeys; i++)
		if (!strcmp(f->keys[i].kid, kid))
			return &f->keys[i];
	return NULL;
}

static json_t *jwks_locked(fb *f)
{
	json_t *keys = json_array();
	for (size_t i = 0; i < f->nkeys; i++)
		if (f->keys[i].published)
			json_array_append_new(keys,
					      json_deep_copy(f->keys[i].pub));
	return json_pack("{s:o}", "keys", keys);
}

static char *pem_of(const EVP_PKEY *pk)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL;
	if (b && PEM_write_bio_PUBKEY(b, (EVP_PKEY *)pk)) {
		char *p;
		long n = BIO_get_mem_data(b, &p);
		out = n > 0 ? strndup(p, (size_t)n) : NULL;
	}
	BIO_free(b);
	return out;
}

/* --- signing ------------------------------------------------------------ */

static char *sign_rs256(const cjose_jwk_t *jwk, const char *kid,
			const char *payload)
{
	cjose_err err;
	cjose_header_t *h = cjose_header_new(&err);
	char *out = NULL;
	if (h && cjose_header_set(h, CJOSE_HDR_ALG, CJOSE_HDR_ALG_RS256, &err) &&
	    cjose_header_set(h, CJOSE_HDR_KID, kid, &err) &&
	    cjose_header_set(h, "typ", "JWT", &err)) {
		cjose_jws_t *jws = cjose_jws_sign(jwk, h, (const uint8_t *)payload,
						  strlen(payload), &err);
		const char *ser = NULL;
		if (jws && cjose_jws_export(jws, &ser, &err))
			out = strdup(ser);
		cjose_jws_release(jws);
	}
	cjose_header_release(h);
	return out;
}

/* The forms cjose will not make: built by hand (test input only). */
static char *sign_by_hand(const char *alg, const char *kid,
			  const char *payload, const char *hmac_key)
{
	json_t *hdr = json_pack("{s:s,s:s,s:s}", "alg", alg, "typ", "JWT",
				"kid", kid);
	char *h = b64url_json(hdr);
	json_decref(hdr);
	char *p = b64url(payload, strlen(payload));
	char *sig = NULL, *out = NULL;
	if (h && p) {
		size_t n = strlen(h) + strlen(p) + 2;
		char *input = malloc(n);
		if (input) {
			snprintf(input, n, "%s.%s", h, p);
			if (hmac_key) {
				unsigned char mac[EVP_MAX_MD_SIZE];
				unsigned int ml = 0;
				if (HMAC(EVP_sha256(), hmac_key,
					 (int)strlen(hmac_key),
					 (const unsigned char *)input,
					 strlen(input), mac, &ml))
					sig = b64url(mac, ml);
			} else {
				sig = strdup("");
			}
			if (sig && asprintf(&out, "%s.%s", input, sig) < 0)
				out = NULL;
			free(input);
		}
	}
	free(h);
	free(p);
	free(sig);
	return out;
}

static char *sign_locked(fb *f, const fb_claims *c)
{
	static const fb_claims none = {0};
	if (!c)
		c = &none;
	time_t now = time(NULL);
	long long exp = c->exp ? c->exp : (long long)now + 3600;
	long long nbf = c->nbf ? c->nbf : (long long)now - 300;
	const char *iss = c->iss ? c->iss : FB_ISSUER;
	const char *aud = c->aud ? c->aud : f->app_id;
	const char *su = c->serviceurl ? c->serviceurl : f->service;
	switch (c->brk) {
	case FB_EXPIRED:
		exp = (long long)now - 3600;
		nbf = (long long)now - 7200;
		break;
	case FB_NOT_YET_VALID:
		nbf = (long long)now + 3600;
		exp = (long long)now + 7200;
		break;
	case FB_WRONG_ISS:
		iss = FB_ISSUER ".evil";
		break;
	case FB_WRONG_AUD:
		aud = "00000000-0000-0000-0000-00000000dead";
		break;
	case FB_SERVICEURL:
		su = "https://smba.evil.example/teams/";
		break;
	default:
		break;
	}
	fb_key *k = c->kid ? key_by_kid(f, c->kid) : &f->keys[f->current];
	if (!k)
		return NULL;
	json_t *claims = json_pack(
	    "{s:s,s:s,s:I,s:I,s:I,s:s}", "iss", iss, "aud", aud, "exp",
	    (json_int_t)exp, "nbf", (json_int_t)nbf, "iat", (json_int_t)nbf,
	    "serviceurl", su);
	char *payload = json_dumps(claims, JSON_COMPACT);
	json_decref(claims);
	if (!payload)
		return NULL;
	char *out = NULL;
	switch (c->brk) {
	case FB_WRONG_KID: {
		const char *other = NULL;
		for (size_t i = 0; i < f->nkeys && !other; i++)
			if (&f->keys[i] != k && f->keys[i].published)
				other = f->keys[i].kid;
		out = other ? sign_rs256(k->jwk, other, payload) : NULL;
		break;
	}
	case FB_UNKNOWN_KID: {
		char kid[48];
		snprintf(kid, sizeof(kid), "forged-%u", ++f->forged);
		out = sign_rs256(k->jwk, kid, payload);
		break;
	}
	case FB_ALG_NONE:
		out = sign_by_hand("none", k->kid, payload, NULL);
		break;
	case FB_HS256: {
		char *pem = pem_of(k->pk);
		out = pem ? sign_by_hand("HS256", k->kid, payload, pem) : NULL;
		free(pem);
		break;
	}
	case FB_FOREIGN_KEY:
		if (!f->foreign.jwk) {
			f->foreign.pk = pool_key(f->made++);
			f->foreign.jwk = f->foreign.pk
					     ? jwk_from(f->foreign.pk, k->kid)
					     : NULL;
		}
		out = f->foreign.jwk ? sign_rs256(f->foreign.jwk, k->kid,
						  payload)
				     : NULL;
		break;
	case FB_BAD_SIGNATURE:
		out = sign_rs256(k->jwk, k->kid, payload);
		if (out) {
			char *last = out + strlen(out) - 3;
			*last = *last == 'A' ? 'B' : 'A';
		}
		break;
	default:
		out = sign_rs256(k->jwk, k->kid, payload);
		break;
	}
	free(payload);
	return out;
}

char *fb_sign(fb *f, const fb_claims *c)
{
	pthread_mutex_lock(&f->mu);
	char *s = sign_locked(f, c);
	pthread_mutex_unlock(&f->mu);
	return s;
}

bool fb_rotate_keys(fb *f, bool drop_old, char *kid, size_t kidlen)
{
	pthread_mutex_lock(&f->mu);
	size_t old = f->current;
	bool ok = key_add(f, "msteams");
	if (ok) {
		f->current = f->nkeys - 1;
		if (drop_old)
			f->keys[old].published = false;
		if (kid && kidlen)
			snprintf(kid, kidlen, "%s", f->keys[f->current].kid);
	}
	pthread_mutex_unlock(&f->mu);
	return ok;
}

const char *fb_current_kid(fb *f)
{
	pthread_mutex_lock(&f->mu);
	const char *k = f->keys[f->current].kid;
	pthread_mutex_unlock(&f->mu);
	return k;
}

json_t *fb_jwks(fb *f)
{
	pthread_mutex_lock(&f->mu);
	json_t *j = jwks_locked(f);
	pthread_mutex_unlock(&f->mu);
	return j;
}

void fb_set_endorsements(fb *f, const char *kid, const char *csv)
{
	pthread_mutex_lock(&f->mu);
	fb_key *k = key_by_kid(f, kid);
	if (k && csv)
		json_object_set_new(k->pub, "endorsements", csv_array(csv));
	else if (k)
		json_object_del(k->pub, "endorsements");
	pthread_mutex_unlock(&f->mu);
}

char *fb_public_pem(fb *f)
{
	pthread_mutex_lock(&f->mu);
	char *p = pem_of(f->keys[f->current].pk);
	pthread_mutex_unlock(&f->mu);
	return p;
}

/* --- activities --------------------------------------------------------- */

static const char *team_name_locked(fb *f, const char *team)
{
	return str(json_object_get(f->teams, team), "name");
}

static const char *channel_name_locked(fb *f, const char *team,
				       const char *ch)
{
	json_t *chs = json_object_get(json_object_get(f->teams, team),
				      "channels");
	size_t i;
	json_t *c;
	json_array_foreach(chs, i, c) if (!strcmp(str(c, "id"), ch)) return str(
	    c, "name");
	return NULL;
}

char *fb_activity(fb *f, const char *type, const char *text,
		  const fb_act *more)
{
	static const fb_act none = {0};
	const fb_act *m = more ? more : &none;
	if (!type)
		type = "message";
	pthread_mutex_lock(&f->mu);
	unsigned long n = ++f->next_id;
	const char *team = m->team_id ? m->team_id : FB_TEAM_ID;
	const char *ch = m->channel_id ? m->channel_id : FB_CHANNEL_ID;
	const char *tname = m->team_name ? m->team_name
					 : team_name_locked(f, team);
	const char *cname = m->channel_name
				? m->channel_name
				: channel_name_locked(f, team, ch);
	const char *tenant = m->tenant ? m->tenant : f->tenant;
	char conv[512], id[32], bot[160], svc[256];
	snprintf(id, sizeof(id), "%lu%03lu", (unsigned long)time(NULL), n % 1000);
	if (m->conversation)
		snprintf(conv, sizeof(conv), "%s", m->conversation);
	else
		snprintf(conv, sizeof(conv), "%s;messageid=%s", ch, id);
	snprintf(bot, sizeof(bot), "28:%s", f->app_id);
	snprintf(svc, sizeof(svc), "%s",
		 m->service_url ? m->service_url : f->service);
	char ts[40];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
	json_t *team_o = json_pack("{s:s,s:s?,s:s}", "id", team, "name", tname,
				   "aadGroupId",
				   "02ce3874-dd86-41ba-bddc-013f34019978");
	json_t *chan_o = json_pack("{s:s,s:s?}", "id", ch, "name", cname);
	json_t *a = json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s},s:{s:b,s:s,s:s,s:s},"
	    "s:{s:s,s:s},s:{s:o,s:o,s:{s:s}},s:s}",
	    "type", type, "id", id, "timestamp", ts, "serviceUrl", svc,
	    "channelId", "msteams", "from", "id",
	    m->user_id ? m->user_id : "29:1fbUserAliceXyz", "name",
	    m->user_name ? m->user_name : "Alice Example", "aadObjectId",
	    m->aad_id ? m->aad_id : "6f3a1a2e-0d9b-4d2f-9a7e-1c2b3d4e5f60",
	    "conversation", "isGroup", 1, "conversationType", "channel", "id",
	    conv, "tenantId", tenant, "recipient", "id", bot, "name", "im",
	    "channelData", "team", team_o, "channel", chan_o, "tenant", "id",
	    tenant, "locale", "en-US");
	pthread_mutex_unlock(&f->mu);
	json_t *cd = json_object_get(a, "channelData");
	if (!strcmp(type, "message")) {
		char *t = NULL;
		if (asprintf(&t, "%s%s", m->no_mention ? "" : "<at>im</at> ",
			     text ? text : "") < 0)
			t = NULL;
		json_object_set_new(a, "text", json_string(t ? t : ""));
		json_object_set_new(a, "textFormat", json_string("plain"));
		free(t);
		json_t *ents = json_array();
		if (!m->no_mention)
			json_array_append_new(
			    ents, json_pack("{s:s,s:s,s:{s:s,s:s}}", "type",
					    "mention", "text", "<at>im</at>",
					    "mentioned", "id", bot, "name",
					    "im"));
		json_array_append_new(
		    ents, json_pack("{s:s,s:s,s:s}", "type", "clientInfo",
				    "locale", "en-US", "platform", "Web"));
		json_object_set_new(a, "entities", ents);
		if (m->data)
			json_object_set_new(a, "value",
					    json_deep_copy(m->data));
	} else if (!strcmp(type, "invoke")) {
		json_object_set_new(a, "name",
				    json_string("adaptiveCard/action"));
		json_object_set_new(
		    a, "value",
		    json_pack("{s:{s:s,s:s,s:O?},s:{s:s}}", "action", "type",
			      "Action.Execute", "verb", m->verb ? m->verb : "",
			      "data", m->data, "trigger", "type", "manual"));
		json_object_set_new(a, "replyToId", json_string(id));
	} else if (!strcmp(type, "conversationUpdate")) {
		json_object_set_new(cd, "eventType",
				    json_string("teamMemberAdded"));
		json_object_set_new(
		    a, "membersAdded",
		    json_pack("[{s:s}]", "id", bot));
		json_t *conv_o = json_object_get(a, "conversation");
		json_object_set_new(conv_o, "id", json_string(team));
	} else if (!strcmp(type, "installationUpdate")) {
		json_object_set_new(
		    a, "action", json_string(m->action ? m->action : "add"));
		json_t *conv_o = json_object_get(a, "conversation");
		json_object_set_new(conv_o, "id", json_string(team));
	}
	char *s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

/* --- tokens ------------------------------------------------------------- */

static char *issue_locked(fb *f, time_t *exp)
{
	char rnd[33];
	random_hex(rnd, 16);
	char *v = NULL;
	if (asprintf(&v, "fbtok.%u.%s", f->secret_gen, rnd) < 0)
		return NULL;
	tok *n = realloc(f->toks, (f->ntoks + 1) * sizeof(*n));
	if (!n) {
		free(v);
		return NULL;
	}
	f->toks = n;
	n[f->ntoks].value = v;
	n[f->ntoks].exp = time(NULL) + f->ttl;
	n[f->ntoks].gen = f->secret_gen;
	if (exp)
		*exp = n[f->ntoks].exp;
	f->ntoks++;
	return strdup(v);
}

char *fb_issue_token(fb *f)
{
	pthread_mutex_lock(&f->mu);
	char *t = issue_locked(f, NULL);
	pthread_mutex_unlock(&f->mu);
	return t;
}

void fb_set_secret(fb *f, const char *secret, bool revoke)
{
	pthread_mutex_lock(&f->mu);
	snprintf(f->secret, sizeof(f->secret), "%s", secret ? secret : "");
	if (revoke)
		f->secret_gen++;
	pthread_mutex_unlock(&f->mu);
}

void fb_set_token_ttl(fb *f, int seconds)
{
	pthread_mutex_lock(&f->mu);
	f->ttl = seconds;
	pthread_mutex_unlock(&f->mu);
}

void fb_set_multi_tenant(fb *f, bool on)
{
	pthread_mutex_lock(&f->mu);
	f->multi = on;
	pthread_mutex_unlock(&f->mu);
}

/* "Bearer <token>" issued by the fake, unexpired, of this secret. */
static bool auth_ok_locked(fb *f, const char *hdr)
{
	if (!hdr || strncmp(hdr, "Bearer ", 7))
		return false;
	const char *t = hdr + 7;
	time_t now = time(NULL);
	for (size_t i = 0; i < f->ntoks; i++)
		if (!strcmp(f->toks[i].value, t))
			return f->toks[i].exp > now &&
			       f->toks[i].gen == f->secret_gen;
	return false;
}

/* --- answers ------------------------------------------------------------ */

typedef struct answer {
	int status;
	json_t *body;
	int retry_after;
	const char *code; /* for the record */
} answer;

static void set(answer *a, int status, json_t *body)
{
	a->status = status;
	json_decref(a->body);
	a->body = body;
}

static const char *default_code(int status)
{
	switch (status) {
	case 400: return "BadArgument";
	case 401: return "Unauthorized";
	case 403: return "BotNotInConversationRoster";
	case 404: return "ConversationNotFound";
	case 412: return "PreconditionFailed";
	case 413: return "MessageSizeTooBig";
	case 429: return "Throttled";
	case 502: return "BadGateway";
	case 504: return "GatewayTimeout";
	default: return "ServiceError";
	}
}

static const char *default_message(const char *code)
{
	static const struct {
		const char *code, *msg;
	} m[] = {
	    {"Unauthorized", "Authorization has been denied for this request."},
	    {"BotNotInConversationRoster",
	     "The bot is not part of the conversation roster."},
	    {"ConversationBlockedByUser", "User blocked the conversation with "
					  "the bot."},
	    {"BotDisabledByAdmin", "The tenant admin disabled this bot"},
	    {"MessageWritesBlocked", "Message writes are blocked for this "
				     "conversation."},
	    {"ConversationNotFound", "Conversation not found."},
	    {"ActivityNotFound", "Activity not found."},
	    {"PreconditionFailed", "Precondition failed, please try again."},
	    {"MessageSizeTooBig", "Message size too large."},
	    {"Throttled", "Too many requests, please retry later."},
	    {"BadArgument", "Invalid request body."},
	};
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (!strcmp(m[i].code, code))
			return m[i].msg;
	return "The service failed to process the request.";
}

static void bf_error(answer *a, int status, const char *code,
		     int retry_after)
{
	if (!code)
		code = default_code(status);
	set(a, status,
	    json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
		      default_message(code)));
	a->retry_after = retry_after;
	a->code = str(json_object_get(a->body, "error"), "code");
}

/* --- the Bot Connector -------------------------------------------------- */

static bool conv_matches(const char *rule_conv, const char *conv)
{
	if (!rule_conv)
		return true;
	if (!conv)
		return false;
	if (!strcmp(rule_conv, conv))
		return true;
	const char *semi = strchr(conv, ';');
	return semi && strlen(rule_conv) == (size_t)(semi - conv) &&
	       !strncmp(rule_conv, conv, (size_t)(semi - conv));
}

/* An injected failure for conv: consumes one and answers; false if none. */
static bool injected_locked(fb *f, const char *conv, answer *a)
{
	for (size_t i = 0; i < f->nrules; i++) {
		rule *r = &f->rules[i];
		if (r->times == 0 || !conv_matches(r->conv, conv))
			continue;
		if (r->times > 0)
			r->times--;
		bf_error(a, r->status, *r->code ? r->code : NULL,
			 r->retry_after);
		return true;
	}
	return false;
}

/* Token bucket per conversation; 0 = allowed, else seconds to wait. */
static int bucket_take_locked(fb *f, const char *conv)
{
	if (f->rate_n <= 0)
		return 0;
	double now = now_s(), rate = f->rate_n / (f->rate_ms / 1000.0);
	bucket *b = NULL;
	for (size_t i = 0; i < f->nbuckets && !b; i++)
		if (!strcmp(f->buckets[i].conv, conv))
			b = &f->buckets[i];
	if (!b) {
		bucket *n = realloc(f->buckets, (f->nbuckets + 1) * sizeof(*n));
		if (!n)
			return 0;
		f->buckets = n;
		b = &n[f->nbuckets++];
		b->conv = strdup(conv);
		b->tokens = f->rate_n;
		b->last = now;
	}
	b->tokens += (now - b->last) * rate;
	if (b->tokens > f->rate_n)
		b->tokens = f->rate_n;
	b->last = now;
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return 0;
	}
	int wait = (int)((1.0 - b->tokens) / rate + 0.999);
	return wait < 1 ? 1 : wait;
}

static json_t *msg_find_locked(fb *f, const char *conv, const char *id)
{
	size_t i;
	json_t *m;
	json_array_foreach(f->msgs, i, m)
	{
		const char *mc = str(m, "conversation"), *mi = str(m, "id");
		if (mi && !strcmp(mi, id) && mc &&
		    (!strcmp(mc, conv) || conv_matches(mc, conv) ||
		     conv_matches(conv, mc)))
			return m;
	}
	return NULL;
}

static void new_id(fb *f, char *out, size_t n)
{
	snprintf(out, n, "%llu%03lu",
		 (unsigned long long)time(NULL) * 1000ull, ++f->next_id % 1000);
}

/* path is after "/teams/v3". */
static void connector(fb *f, const char *method, const char *path,
		      const json_t *body, bool body_ok, size_t body_len,
		      bool auth, answer *a, json_t *rec)
{
	f->n_conn++;
	if (!auth) {
		bf_error(a, 401, "Unauthorized", 0);
		return;
	}
	char *conv = NULL, *aid = NULL;
	bool create = false, list = false;
	char team[512] = "";
	if (!strcmp(path, "/conversations") || !strcmp(path, "/conversations/"))
		create = true;
	else if (!strncmp(path, "/conversations/", 15)) {
		const char *p = path + 15, *sl = strchr(p, '/');
		if (sl && !strncmp(sl, "/activities", 11) &&
		    (sl[11] == '\0' || sl[11] == '/')) {
			/* libmicrohttpd has percent-decoded the path already
			 * (19%3A...%3Bmessageid%3D1 is 19:...;messageid=1
			 * here); decoding again would be wrong for a '%'. */
			conv = strndup(p, (size_t)(sl - p));
			if (sl[11] == '/' && sl[12])
				aid = strdup(sl + 12);
		}
	} else if (!strncmp(path, "/teams/", 7)) {
		const char *p = path + 7, *sl = strchr(p, '/');
		if (sl && !strcmp(sl, "/conversations")) {
			snprintf(team, sizeof(team), "%.*s", (int)(sl - p), p);
			list = true;
		}
	}
	if (conv)
		json_object_set_new(rec, "conversation", json_string(conv));
	if (aid)
		json_object_set_new(rec, "activity_id", json_string(aid));
	const char *target = conv;
	char created_ch[512] = "";
	if (create && body_ok) {
		const char *ch = str(json_object_get(json_object_get(
					 body, "channelData"), "channel"),
				     "id");
		snprintf(created_ch, sizeof(created_ch), "%s", ch ? ch : "");
		target = created_ch;
		json_object_set_new(rec, "conversation",
				    json_string(created_ch));
	}
	if (list)
		target = team;
	bool write = strcmp(method, "GET") != 0;
	if (!create && !list && !conv) {
		bf_error(a, 404, "NotFound", 0);
	} else if (injected_locked(f, target, a)) {
		/* answered */
	} else if (write && body_len > FB_MAX_BODY) {
		bf_error(a, 413, "MessageSizeTooBig", 0);
	} else if (write && strcmp(method, "DELETE") && !body_ok) {
		bf_error(a, 400, "BadArgument", 0);
	} else if (list) {
		json_t *t = json_object_get(f->teams, team);
		if (!t || strcmp(method, "GET"))
			bf_error(a, t ? 405 : 403,
				 t ? "MethodNotAllowed"
				   : "BotNotInConversationRoster",
				 0);
		else
			set(a, 200,
			    json_pack("{s:O}", "conversations",
				      json_object_get(t, "channels")));
	} else if (write) {
		int wait = bucket_take_locked(f, target);
		char id[48];
		if (wait) {
			bf_error(a, 429, "Throttled", wait);
		} else if (create && !strcmp(method, "POST")) {
			if (!*created_ch) {
				bf_error(a, 400, "BadArgument", 0);
			} else {
				new_id(f, id, sizeof(id));
				char *cid = NULL;
				if (asprintf(&cid, "%s;messageid=%s",
					     created_ch, id) < 0)
					cid = NULL;
				json_array_append_new(
				    f->msgs,
				    json_pack("{s:s,s:s,s:s,s:n,s:O?}", "op",
					      "create", "conversation",
					      cid ? cid : "", "id", id,
					      "reply_to", "activity",
					      json_object_get(body, "activity")));
				set(a, 201,
				    json_pack("{s:s,s:s}", "id", cid ? cid : "",
					      "activityId", id));
				free(cid);
			}
		} else if (!strcmp(method, "POST")) {
			new_id(f, id, sizeof(id));
			json_array_append_new(
			    f->msgs,
			    json_pack("{s:s,s:s,s:s,s:s?,s:O}", "op",
				      aid ? "reply" : "send", "conversation",
				      conv, "id", id, "reply_to", aid,
				      "activity", body));
			set(a, 201, json_pack("{s:s}", "id", id));
		} else if ((!strcmp(method, "PUT") ||
			    !strcmp(method, "DELETE")) &&
			   aid) {
			if (!msg_find_locked(f, conv, aid)) {
				bf_error(a, 404, "ActivityNotFound", 0);
			} else {
				bool put = !strcmp(method, "PUT");
				json_array_append_new(
				    f->msgs,
				    json_pack("{s:s,s:s,s:s,s:n,s:O?}", "op",
					      put ? "update" : "delete",
					      "conversation", conv, "id", aid,
					      "reply_to", "activity",
					      put ? body : NULL));
				set(a, 200,
				    put ? json_pack("{s:s}", "id", aid)
					: json_object());
			}
		} else {
			bf_error(a, 405, "MethodNotAllowed", 0);
		}
	} else {
		bf_error(a, 405, "MethodNotAllowed", 0);
	}
	free(conv);
	free(aid);
}

/* POST /{tenant}/oauth2/v2.0/token */
static void token(fb *f, const char *tenant, const json_t *form, answer *a)
{
	f->n_token++;
	const char *gt = str(form, "grant_type"), *id = str(form, "client_id"),
		   *sec = str(form, "client_secret"), *sc = str(form, "scope");
	bool tenant_ok = !strcmp(tenant, f->tenant) ||
			 (f->multi && !strcmp(tenant, "botframework.com"));
	char msg[768];
	if (!gt || strcmp(gt, "client_credentials")) {
		set(a, 400,
		    json_pack("{s:s,s:s,s:[i]}", "error",
			      "unsupported_grant_type", "error_description",
			      "AADSTS70003: The app requested an unsupported "
			      "grant type.",
			      "error_codes", 70003));
	} else if (!id || strcmp(id, f->app_id) || !tenant_ok) {
		snprintf(msg, sizeof(msg),
			 "AADSTS700016: Application with identifier '%.200s' "
			 "was not found in the directory '%.200s'. This can "
			 "happen if the application has not been installed by "
			 "the administrator of the tenant or consented to by "
			 "any user in the tenant.",
			 id ? id : "", tenant);
		set(a, 400,
		    json_pack("{s:s,s:s,s:[i]}", "error", "unauthorized_client",
			      "error_description", msg, "error_codes",
			      700016));
	} else if (!sec || strcmp(sec, f->secret)) {
		snprintf(msg, sizeof(msg),
			 "AADSTS7000215: Invalid client secret provided. "
			 "Ensure the secret being sent in the request is the "
			 "client secret value, not the client secret ID, for "
			 "a secret added to app '%.200s'.",
			 f->app_id);
		set(a, 401,
		    json_pack("{s:s,s:s,s:[i]}", "error", "invalid_client",
			      "error_description", msg, "error_codes",
			      7000215));
	} else if (!sc || strcmp(sc, "https://api.botframework.com/.default")) {
		snprintf(msg, sizeof(msg),
			 "AADSTS1002012: The provided value for scope %.200s "
			 "is not valid. Client credential flows must have a "
			 "scope value with /.default suffixed to the resource "
			 "identifier (application ID URI).",
			 sc ? sc : "");
		set(a, 400,
		    json_pack("{s:s,s:s,s:[i]}", "error", "invalid_scope",
			      "error_description", msg, "error_codes",
			      1002012));
	} else {
		char *t = issue_locked(f, NULL);
		f->n_token_ok++;
		set(a, 200,
		    json_pack("{s:s,s:i,s:i,s:s}", "token_type", "Bearer",
			      "expires_in", f->ttl, "ext_expires_in", f->ttl,
			      "access_token", t ? t : ""));
		free(t);
	}
	if (a->status != 200)
		a->code = str(a->body, "error");
}

/* --- control ------------------------------------------------------------ */

static int break_named(const char *s)
{
	static const char *const names[] = {
	    "valid",	 "wrong_kid", "unknown_kid", "alg_none",
	    "hs256",	 "expired",   "not_yet_valid", "wrong_iss",
	    "wrong_aud", "serviceurl", "foreign_key", "bad_signature"};
	for (int i = 0; s && i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (!strcmp(names[i], s))
			return i;
	return s ? -1 : 0;
}

static const char *arg(struct MHD_Connection *c, const char *k)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
}

static bool control(fb *f, struct MHD_Connection *c, const char *url,
		    const char *method, answer *a)
{
	if (!strcmp(url, "/_stats")) {
		set(a, 200, fb_stats(f));
	} else if (!strcmp(url, "/_messages")) {
		set(a, 200, fb_messages(f));
	} else if (!strcmp(url, "/_requests")) {
		set(a, 200, fb_requests(f));
	} else if (!strcmp(url, "/_reset") && !strcmp(method, "POST")) {
		fb_reset(f);
		set(a, 200, json_pack("{s:b}", "ok", 1));
	} else if (!strcmp(url, "/_mode") && !strcmp(method, "POST")) {
		const char *st = arg(c, "status"), *t = arg(c, "times"),
			   *ra = arg(c, "retry_after"), *rate = arg(c, "rate");
		if (rate)
			fb_set_rate(f, atoi(rate),
				    arg(c, "window_ms")
					? atoi(arg(c, "window_ms"))
					: 1000);
		if (st)
			fb_fail(f, arg(c, "conversation"), t ? atoi(t) : -1,
				atoi(st), arg(c, "code"), ra ? atoi(ra) : 0);
		else if (t && !atoi(t))
			fb_fail(f, arg(c, "conversation"), 0, 0, NULL, 0);
		set(a, 200, json_pack("{s:b}", "ok", 1));
	} else if (!strcmp(url, "/_sign")) {
		int b = break_named(arg(c, "break"));
		if (b < 0) {
			set(a, 400, json_pack("{s:s}", "error", "unknown break"));
			return true;
		}
		fb_claims cl = {.brk = (fb_break)b};
		const char *ttl = arg(c, "ttl");
		if (ttl)
			cl.exp = (long long)time(NULL) + atoll(ttl);
		char *jwt = fb_sign(f, &cl);
		const char *type = arg(c, "type");
		char *act = fb_activity(f, type ? type : "message",
					arg(c, "text") ? arg(c, "text")
						       : "status",
					NULL);
		char *hdr = NULL;
		if (!jwt || asprintf(&hdr, "Bearer %s", jwt) < 0)
			hdr = NULL;
		set(a, jwt && act ? 200 : 500,
		    json_pack("{s:s?,s:s?,s:o?}", "token", jwt, "authorization",
			      hdr, "activity",
			      act ? json_loads(act, 0, NULL) : NULL));
		free(jwt);
		free(act);
		free(hdr);
	} else {
		return false;
	}
	return true;
}

/* --- HTTP --------------------------------------------------------------- */

typedef struct conn {
	char *body;
	size_t len;
	size_t seen;
} conn;

static enum MHD_Result respond(struct MHD_Connection *c, const answer *a)
{
	char *s = a->body ? json_dumps(a->body, JSON_COMPACT) : strdup("{}");
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    s ? strlen(s) : 0, s ? s : (void *)"", MHD_RESPMEM_MUST_COPY);
	free(s);
	MHD_add_response_header(r, "Content-Type",
				"application/json; charset=utf-8");
	if (a->retry_after > 0) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%d", a->retry_after);
		MHD_add_response_header(r, "Retry-After", ra);
	}
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)a->status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	fb *f = cls;
	conn *cn = *con_cls;
	if (!cn) {
		*con_cls = calloc(1, sizeof(conn));
		return *con_cls ? MHD_YES : MHD_NO;
	}
	if (*upload_size) {
		cn->seen += *upload_size;
		if (cn->len + *upload_size <= READ_CAP) {
			char *b = realloc(cn->body, cn->len + *upload_size + 1);
			if (!b)
				return MHD_NO;
			memcpy(b + cn->len, upload, *upload_size);
			cn->body = b;
			cn->len += *upload_size;
			b[cn->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	answer a = {.status = 404};
	if (!strncmp(url, "/_", 2) && control(f, c, url, method, &a)) {
		enum MHD_Result r = respond(c, &a);
		json_decref(a.body);
		return r;
	}
	json_t *body = cn->len ? json_loadb(cn->body, cn->len, 0, NULL) : NULL;
	const char *auth_h =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	json_t *rec = json_pack("{s:s,s:s,s:n,s:n,s:n,s:b}", "method", method,
				"path", url, "conversation", "activity_id",
				"json", "auth", 0);
	if (body)
		json_object_set(rec, "json", body);
	const char *kind = "unknown";
	pthread_mutex_lock(&f->mu);
	size_t ul = strlen(url);
	const char *tok_suffix = "/oauth2/v2.0/token";
	size_t tsl = strlen(tok_suffix);
	if (!strcmp(url, "/v1/.well-known/openidconfiguration") &&
	    !strcmp(method, "GET")) {
		kind = "metadata";
		f->n_meta++;
		char jw[160];
		snprintf(jw, sizeof(jw), "%s/v1/.well-known/keys", f->url);
		set(&a, 200,
		    json_pack("{s:s,s:s,s:s,s:[s],s:[s],s:[s]}", "issuer",
			      FB_ISSUER, "authorization_endpoint",
			      "https://invalid.botframework.com/v1/auth/"
			      "authorize",
			      "jwks_uri", jw,
			      "id_token_signing_alg_values_supported", "RS256",
			      "token_endpoint_auth_methods_supported",
			      "private_key_jwt", "claims_supported",
			      "serviceurl"));
	} else if ((!strcmp(url, "/v1/.well-known/keys") ||
		    (ul > 21 &&
		     !strcmp(url + ul - 20, "/discovery/v2.0/keys"))) &&
		   !strcmp(method, "GET")) {
		kind = "jwks";
		f->n_jwks++;
		set(&a, 200, jwks_locked(f));
	} else if (ul > tsl + 1 && !strcmp(url + ul - tsl, tok_suffix) &&
		   !strcmp(method, "POST") &&
		   memchr(url + 1, '/', ul - tsl - 1) == NULL) {
		kind = "token";
		char tenant[256];
		snprintf(tenant, sizeof(tenant), "%.*s", (int)(ul - tsl - 1),
			 url + 1);
		json_t *form = form_parse(cn->body ? cn->body : "", cn->len);
		/* never keep the secret in the record */
		json_t *shown = json_deep_copy(form);
		if (json_object_get(shown, "client_secret"))
			json_object_set_new(shown, "client_secret",
					    json_string("***"));
		json_object_set_new(rec, "form", shown);
		json_object_set_new(rec, "tenant", json_string(tenant));
		token(f, tenant, form, &a);
		json_decref(form);
	} else if (!strncmp(url, "/teams/v3/", 10)) {
		kind = "connector";
		bool ok = auth_ok_locked(f, auth_h);
		json_object_set_new(rec, "auth", json_boolean(ok));
		connector(f, method, url + 9, body, body != NULL, cn->seen, ok,
			  &a, rec);
	} else {
		set(&a, 404,
		    json_pack("{s:{s:s,s:s}}", "error", "code", "NotFound",
			      "message", "No such endpoint in the fake."));
	}
	json_object_set_new(rec, "kind", json_string(kind));
	json_object_set_new(rec, "status", json_integer(a.status));
	json_object_set_new(rec, "code", a.code ? json_string(a.code)
						: json_null());
	if (a.retry_after)
		json_object_set_new(rec, "retry_after",
				    json_integer(a.retry_after));
	json_array_append_new(f->reqs, rec);
	pthread_mutex_unlock(&f->mu);
	json_decref(body);
	enum MHD_Result r = respond(c, &a);
	json_decref(a.body);
	return r;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	conn *cn = *con_cls;
	if (cn) {
		free(cn->body);
		free(cn);
	}
	*con_cls = NULL;
}

/* --- life --------------------------------------------------------------- */

void fb_add_channel(fb *f, const char *team_id, const char *team_name,
		    const char *channel_id, const char *channel_name)
{
	pthread_mutex_lock(&f->mu);
	json_t *t = json_object_get(f->teams, team_id);
	if (!t) {
		t = json_pack("{s:s,s:[]}", "name", team_name ? team_name : "",
			      "channels");
		json_object_set_new(f->teams, team_id, t);
	} else if (team_name) {
		json_object_set_new(t, "name", json_string(team_name));
	}
	json_t *chs = json_object_get(t, "channels");
	size_t i;
	json_t *ch, *found = NULL;
	json_array_foreach(chs, i, ch) if (!strcmp(str(ch, "id"), channel_id))
	    found = ch;
	if (found)
		json_object_set_new(found, "name",
				    json_string(channel_name ? channel_name
							     : ""));
	else
		json_array_append_new(chs, json_pack("{s:s,s:s}", "id",
						     channel_id, "name",
						     channel_name ? channel_name
								  : ""));
	pthread_mutex_unlock(&f->mu);
}

static void rules_clear_locked(fb *f, const char *conv, bool all)
{
	size_t o = 0;
	for (size_t i = 0; i < f->nrules; i++) {
		rule *r = &f->rules[i];
		bool same = all || (!conv && !r->conv) ||
			    (conv && r->conv && !strcmp(conv, r->conv));
		if (same)
			free(r->conv);
		else
			f->rules[o++] = *r;
	}
	f->nrules = o;
}

void fb_fail(fb *f, const char *conversation, int times, int status,
	     const char *code, int retry_after)
{
	pthread_mutex_lock(&f->mu);
	rules_clear_locked(f, conversation, false);
	if (times != 0) {
		rule *n = realloc(f->rules, (f->nrules + 1) * sizeof(*n));
		if (n) {
			f->rules = n;
			rule *r = &n[f->nrules++];
			memset(r, 0, sizeof(*r));
			r->conv = conversation ? strdup(conversation) : NULL;
			r->times = times;
			r->status = status;
			snprintf(r->code, sizeof(r->code), "%s",
				 code ? code : "");
			r->retry_after = retry_after;
		}
	}
	pthread_mutex_unlock(&f->mu);
}

void fb_set_rate(fb *f, int n, int window_ms)
{
	pthread_mutex_lock(&f->mu);
	f->rate_n = n;
	f->rate_ms = window_ms > 0 ? window_ms : 1000;
	for (size_t i = 0; i < f->nbuckets; i++)
		free(f->buckets[i].conv);
	f->nbuckets = 0;
	pthread_mutex_unlock(&f->mu);
}

json_t *fb_requests(fb *f)
{
	pthread_mutex_lock(&f->mu);
	json_t *j = json_deep_copy(f->reqs);
	pthread_mutex_unlock(&f->mu);
	return j;
}

json_t *fb_messages(fb *f)
{
	pthread_mutex_lock(&f->mu);
	json_t *j = json_deep_copy(f->msgs);
	pthread_mutex_unlock(&f->mu);
	return j;
}

json_t *fb_stats(fb *f)
{
	pthread_mutex_lock(&f->mu);
	json_t *j = json_pack("{s:i,s:i,s:i,s:i,s:i,s:I,s:I,s:s}", "metadata",
			      f->n_meta, "jwks", f->n_jwks, "token",
			      f->n_token, "token_ok", f->n_token_ok,
			      "connector", f->n_conn, "messages",
			      (json_int_t)json_array_size(f->msgs), "requests",
			      (json_int_t)json_array_size(f->reqs),
			      "current_kid", f->keys[f->current].kid);
	pthread_mutex_unlock(&f->mu);
	return j;
}

static int counter(fb *f, const int *p)
{
	pthread_mutex_lock(&f->mu);
	int n = *p;
	pthread_mutex_unlock(&f->mu);
	return n;
}

int fb_jwks_fetches(fb *f)
{
	return counter(f, &f->n_jwks);
}

int fb_metadata_fetches(fb *f)
{
	return counter(f, &f->n_meta);
}

int fb_token_fetches(fb *f)
{
	return counter(f, &f->n_token);
}

bool fb_wait_messages(fb *f, size_t n, int timeout_ms)
{
	for (int waited = 0;; waited += 10) {
		pthread_mutex_lock(&f->mu);
		size_t have = json_array_size(f->msgs);
		pthread_mutex_unlock(&f->mu);
		if (have >= n)
			return true;
		if (waited >= timeout_ms)
			return false;
		usleep(10000);
	}
}

void fb_reset(fb *f)
{
	pthread_mutex_lock(&f->mu);
	json_array_clear(f->reqs);
	json_array_clear(f->msgs);
	f->n_meta = f->n_jwks = f->n_token = f->n_token_ok = f->n_conn = 0;
	rules_clear_locked(f, NULL, true);
	for (size_t i = 0; i < f->nbuckets; i++)
		free(f->buckets[i].conv);
	f->nbuckets = 0;
	pthread_mutex_unlock(&f->mu);
}

unsigned fb_port(const fb *f)
{
	return f->port;
}

const char *fb_url(const fb *f)
{
	return f->url;
}

const char *fb_service_url(const fb *f)
{
	return f->service;
}

const char *fb_openid_url(const fb *f)
{
	return f->openid;
}

const char *fb_app_id(const fb *f)
{
	return f->app_id;
}

const char *fb_tenant(const fb *f)
{
	return f->tenant;
}

fb *fb_start(const fb_opts *o)
{
	static const fb_opts none = {0};
	if (!o)
		o = &none;
	signal(SIGPIPE, SIG_IGN);
	fb *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	pthread_mutex_init(&f->mu, NULL);
	snprintf(f->app_id, sizeof(f->app_id), "%s",
		 o->app_id ? o->app_id : FB_APP_ID);
	snprintf(f->secret, sizeof(f->secret), "%s",
		 o->secret ? o->secret : "fb-secret-1");
	snprintf(f->tenant, sizeof(f->tenant), "%s",
		 o->tenant ? o->tenant : FB_TENANT);
	f->multi = o->multi_tenant;
	f->ttl = o->token_ttl > 0 ? o->token_ttl : 3600;
	f->rate_n = o->rate_n ? o->rate_n : 7;
	f->rate_ms = o->rate_window_ms > 0 ? o->rate_window_ms : 1000;
	f->reqs = json_array();
	f->msgs = json_array();
	f->teams = json_object();
	bool ok = key_add(f, "msteams") && key_add(f, NULL) &&
		  key_add(f, "skype");
	f->current = 0;
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)o->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (ok)
		f->d = MHD_start_daemon(
		    MHD_USE_THREAD_PER_CONNECTION |
			MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
		    0, NULL, NULL, handle, f, MHD_OPTION_SOCK_ADDR, &sa,
		    MHD_OPTION_NOTIFY_COMPLETED, completed, f,
		    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
		    MHD_OPTION_END);
	if (!f->d) {
		f->port = 0;
		fb_stop(f);
		return NULL;
	}
	const union MHD_DaemonInfo *di =
	    MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT);
	f->port = di ? di->port : 0;
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", f->port);
	snprintf(f->service, sizeof(f->service), "%s/teams/", f->url);
	snprintf(f->openid, sizeof(f->openid),
		 "%s/v1/.well-known/openidconfiguration", f->url);
	fb_add_channel(f, FB_TEAM_ID, "Contoso Ops", FB_TEAM_ID, "General");
	fb_add_channel(f, FB_TEAM_ID, "Contoso Ops", FB_CHANNEL_ID,
		       "Incidents");
	return f;
}

void fb_stop(fb *f)
{
	if (!f)
		return;
	if (f->d)
		MHD_stop_daemon(f->d);
	for (size_t i = 0; i < f->nkeys; i++)
		key_free(&f->keys[i]);
	free(f->keys);
	key_free(&f->foreign);
	for (size_t i = 0; i < f->ntoks; i++)
		free(f->toks[i].value);
	free(f->toks);
	rules_clear_locked(f, NULL, true);
	free(f->rules);
	for (size_t i = 0; i < f->nbuckets; i++)
		free(f->buckets[i].conv);
	free(f->buckets);
	json_decref(f->teams);
	json_decref(f->reqs);
	json_decref(f->msgs);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

#ifdef FAKE_BF_MAIN
/* fake-botframework: the fake as a program for bench/ and manual runs.
 * Prints its base URL and the values to configure, then serves until
 * SIGINT or SIGTERM.
 *
 *   fake-botframework [--port N] [--app-id ID] [--secret S]
 *                     [--tenant T] [--multi-tenant] [--rate N]
 */
static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
	quit = 1;
}

int main(int argc, char **argv)
{
	fb_opts o = {0};
	for (int i = 1; i < argc; i++) {
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--port") && next)
			o.port = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--app-id") && next)
			o.app_id = argv[++i];
		else if (!strcmp(argv[i], "--secret") && next)
			o.secret = argv[++i];
		else if (!strcmp(argv[i], "--tenant") && next)
			o.tenant = argv[++i];
		else if (!strcmp(argv[i], "--rate") && next)
			o.rate_n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--multi-tenant"))
			o.multi_tenant = true;
		else {
			fprintf(stderr,
				"usage: fake-botframework [--port N] "
				"[--app-id ID] [--secret S] [--tenant T] "
				"[--multi-tenant] [--rate N (-1 = off)]\n");
			return 2;
		}
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fb *f = fb_start(&o);
	if (!f) {
		fprintf(stderr, "fake-botframework: cannot start on port %u\n",
			o.port);
		return 1;
	}
	printf("FAKE_BF_URL=%s\nFAKE_BF_PORT=%u\nFAKE_BF_OPENID=%s\n"
	       "FAKE_BF_SERVICE_URL=%s\nFAKE_BF_APP_ID=%s\nFAKE_BF_TENANT=%s\n",
	       fb_url(f), fb_port(f), fb_openid_url(f), fb_service_url(f),
	       fb_app_id(f), fb_tenant(f));
	fflush(stdout);
	while (!quit)
		pause();
	fb_stop(f);
	return 0;
}
#endif
