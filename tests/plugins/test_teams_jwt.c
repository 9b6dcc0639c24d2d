/* plugins/teams/jwt.c alone: RSA keys made here with cjose, an OpenID
 * metadata document and JWKS served through the fetch callback, tokens
 * minted with cjose_jws_sign (or by hand for the forgeries), and a clock
 * the tests move. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjose/cjose.h>
#include <criterion/criterion.h>

#include <im/types.h>

#include "jwt.h"

#define META "https://bf.test/v1/.well-known/openidconfiguration"
#define JWKS_URL "https://bf.test/v1/keys"
#define TENANT "tenant-9"
#define TENANT_KEYS "https://login.test/" TENANT "/discovery/v2.0/keys"
#define SVC "https://smba.test/teams/"
#define APP "app-1"
#define T0 1700000000

static struct {
	pthread_mutex_t mu;
	time_t now;
	int fetches, meta_fetches, jwks_fetches, tenant_fetches;
	char *jwks, *tjwks; /* served bodies (NULL: 404) */
	char *meta;
	int delay_ms;
	int fail; /* every fetch fails */
} F = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int fetch(void *ud, const char *url, char **body)
{
	(void)ud;
	if (F.delay_ms)
		usleep((useconds_t)F.delay_ms * 1000);
	pthread_mutex_lock(&F.mu);
	F.fetches++;
	const char *b = NULL;
	if (!strcmp(url, META)) {
		F.meta_fetches++;
		b = F.meta;
	} else if (!strcmp(url, JWKS_URL)) {
		F.jwks_fetches++;
		b = F.jwks;
	} else if (!strcmp(url, TENANT_KEYS)) {
		F.tenant_fetches++;
		b = F.tjwks;
	}
	int rc = 0;
	if (F.fail || !b)
		rc = IM_EIO;
	else
		*body = strdup(b);
	pthread_mutex_unlock(&F.mu);
	return rc;
}

static time_t clock_now(void *ud)
{
	(void)ud;
	pthread_mutex_lock(&F.mu);
	time_t t = F.now;
	pthread_mutex_unlock(&F.mu);
	return t;
}

/* ---- keys: made once per test process, when first needed ---------- */

enum { K1, K1B, K2, KT, NKEYS }; /* K1B: another key for kid k1 */
static cjose_jwk_t *keys[NKEYS];

static cjose_jwk_t *key(int i)
{
	static const uint8_t e[] = {1, 0, 1};
	cjose_err err;
	if (!keys[i])
		keys[i] = cjose_jwk_create_RSA_random(2048, e, sizeof e, &err);
	cr_assert(keys[i], "RSA key");
	return keys[i];
}

/* The public JWK of key i as a JSON object, with kid and endorsements
 * (NULL: none; "": an empty list; else comma-separated). */
static json_t *pub(int i, const char *kid, const char *endorse)
{
	cjose_err err;
	char *js = cjose_jwk_to_json(key(i), false, &err);
	cr_assert(js);
	json_t *o = json_loads(js, 0, NULL);
	free(js);
	json_object_set_new(o, "kid", json_string(kid));
	json_object_set_new(o, "use", json_string("sig"));
	if (endorse) {
		json_t *a = json_array();
		char buf[128];
		snprintf(buf, sizeof buf, "%s", endorse);
		for (char *s = strtok(buf, ","); s; s = strtok(NULL, ","))
			json_array_append_new(a, json_string(s));
		json_object_set_new(o, "endorsements", a);
	}
	return o;
}

/* Serves {"keys":[...]} made of the objects given (stolen). */
static char *jwks_of(int n, ...)
{
	va_list ap;
	va_start(ap, n);
	json_t *a = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(a, va_arg(ap, json_t *));
	va_end(ap);
	json_t *o = json_pack("{s:o}", "keys", a);
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static void serve(char *jwks)
{
	pthread_mutex_lock(&F.mu);
	free(F.jwks);
	F.jwks = jwks;
	pthread_mutex_unlock(&F.mu);
}

/* ---- tokens -------------------------------------------------------- */

static json_t *claims(void)
{
	return json_pack("{s:s,s:s,s:I,s:I,s:s}", "iss",
			 TMS_JWT_BOTFRAMEWORK_ISSUER, "aud", APP, "exp",
			 (json_int_t)F.now + 3600, "nbf", (json_int_t)F.now - 10,
			 "serviceurl", SVC);
}

/* "Bearer <compact JWS>" signed by jwk with alg and kid; claims stolen. */
static char *mint_with(const cjose_jwk_t *jwk, const char *alg,
		       const char *kid, json_t *c)
{
	cjose_err err;
	cjose_header_t *h = cjose_header_new(&err);
	cjose_header_set(h, CJOSE_HDR_ALG, alg, &err);
	if (kid)
		cjose_header_set(h, CJOSE_HDR_KID, kid, &err);
	cjose_header_set(h, "typ", "JWT", &err);
	char *p = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	cjose_jws_t *jws = cjose_jws_sign(jwk, h, (const uint8_t *)p, strlen(p),
					  &err);
	cr_assert(jws, "sign %s: %s", alg, err.message);
	const char *ser;
	cr_assert(cjose_jws_export(jws, &ser, &err));
	char *out = malloc(strlen(ser) + 8);
	sprintf(out, "Bearer %s", ser);
	cjose_jws_release(jws);
	cjose_header_release(h);
	free(p);
	return out;
}

static char *mint(int k, const char *kid, json_t *c)
{
	return mint_with(key(k), "RS256", kid, c);
}

static char *b64(const char *s)
{
	char *o;
	size_t n;
	cjose_err err;
	cr_assert(cjose_base64url_encode((const uint8_t *)s, strlen(s), &o, &n,
					 &err));
	return o;
}

/* A hand-made token: header JSON, claims, signature text as given. */
static char *forge(const char *hdr, json_t *c, const char *sig)
{
	char *p = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	char *h64 = b64(hdr), *p64 = b64(p);
	char *out = malloc(strlen(h64) + strlen(p64) + strlen(sig) + 16);
	sprintf(out, "Bearer %s.%s.%s", h64, p64, sig);
	cjose_get_dealloc()(h64);
	cjose_get_dealloc()(p64);
	free(p);
	return out;
}

/* ---- the verifier -------------------------------------------------- */

static tms_jwt *J;
static char why[512];

static tms_jwt *make_cfg(const char *tenant)
{
	pthread_mutex_lock(&F.mu);
	F.now = T0;
	F.fetches = F.meta_fetches = F.jwks_fetches = F.tenant_fetches = 0;
	F.fail = 0;
	F.delay_ms = 0;
	free(F.meta);
	F.meta = strdup("{\"issuer\":\"https://api.botframework.com\","
			"\"jwks_uri\":\"" JWKS_URL "\"}");
	pthread_mutex_unlock(&F.mu);
	serve(jwks_of(1, pub(K1, "k1", NULL)));
	tms_jwt_cfg c = {.app_id = APP,
			 .openid_metadata_url = META,
			 .tenant = tenant,
			 .login_url = "https://login.test",
			 .fetch = fetch,
			 .now = clock_now};
	tms_jwt *j = tms_jwt_new(&c);
	cr_assert(j);
	return j;
}

static void setup(void)
{
	J = make_cfg(NULL);
}

static void teardown(void)
{
	tms_jwt_free(J);
	J = NULL;
}

/* verify the token (freed) for serviceUrl SVC and channel msteams */
static int v(char *tok)
{
	int rc = tms_jwt_verify(J, tok, SVC, "msteams", why, sizeof why);
	free(tok);
	return rc;
}

#define REFUSED(tok, part)                                                   \
	do {                                                                 \
		cr_expect_eq(v(tok), IM_EPERM, "accepted; expected: %s", part); \
		cr_expect(strstr(why, part), "reason \"%s\", expected \"%s\"", \
			  why, part);                                        \
	} while (0)

static unsigned long refreshes(void)
{
	tms_jwt_stats s;
	tms_jwt_get_stats(J, &s);
	return s.refreshes;
}

TestSuite(teams_jwt, .init = setup, .fini = teardown);

Test(teams_jwt, good_token_accepted_and_keys_fetched_once)
{
	cr_assert_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	cr_expect_eq(F.meta_fetches, 1);
	cr_expect_eq(F.jwks_fetches, 1);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	cr_expect_eq(F.fetches, 2, "warm cache: no more fetches");
	tms_jwt_stats s;
	tms_jwt_get_stats(J, &s);
	cr_expect_eq(s.keys, 1);
	cr_expect_eq(s.verified, 6);
	cr_expect_eq(s.last_verified, T0);
	json_t *st = tms_jwt_status(J);
	cr_expect_eq(json_integer_value(json_object_get(st, "keys")), 1);
	json_decref(st);
}

Test(teams_jwt, missing_or_malformed_header)
{
	cr_expect_eq(tms_jwt_verify(J, NULL, SVC, "msteams", why, sizeof why),
		     IM_EPERM);
	cr_expect(strstr(why, "no Authorization"), "%s", why);
	REFUSED(strdup(""), "no Authorization");
	REFUSED(strdup("Basic dXNlcjpwYXNz"), "not a Bearer");
	REFUSED(strdup("Bearer"), "not a Bearer");
	REFUSED(strdup("Bearer "), "3 parts");
	REFUSED(strdup("Bearer abc.def"), "3 parts");
	REFUSED(strdup("Bearer abc.def.ghi.jkl"), "3 parts");
	REFUSED(strdup("Bearer .def.ghi"), "3 parts");
	REFUSED(strdup("Bearer abc..ghi"), "3 parts");
	REFUSED(strdup("Bearer abc.d+f.ghi"), "not a compact JWS");
	REFUSED(strdup("Bearer abc.def.ghi "), "not a compact JWS");
	cr_expect_eq(F.fetches, 0, "nothing fetched for garbage");
}

Test(teams_jwt, bad_base64_or_json_header)
{
	/* 5 characters cannot be base64 of anything */
	REFUSED(strdup("Bearer abcde.def.ghi"), "not base64url");
	char *nj = b64("not json"), *arr = b64("[\"RS256\"]");
	char t[256];
	snprintf(t, sizeof t, "Bearer %s.e30.c2ln", nj);
	REFUSED(strdup(t), "not a JSON object");
	snprintf(t, sizeof t, "Bearer %s.e30.c2ln", arr);
	REFUSED(strdup(t), "not a JSON object");
	cjose_get_dealloc()(nj);
	cjose_get_dealloc()(arr);
	REFUSED(forge("{\"alg\":\"RS256\",\"alg\":\"none\",\"kid\":\"k1\"}",
		      claims(), "c2ln"),
		"not a JSON object");
	cr_expect_eq(F.fetches, 0);
}

Test(teams_jwt, alg_none_refused)
{
	cr_assert_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	REFUSED(forge("{\"alg\":\"none\",\"kid\":\"k1\"}", claims(), ""),
		"alg none refused");
	REFUSED(forge("{\"alg\":\"none\",\"kid\":\"k1\"}", claims(), "c2ln"),
		"alg none refused");
	REFUSED(forge("{\"alg\":\"rs256\",\"kid\":\"k1\"}", claims(), "c2ln"),
		"alg rs256 refused");
	REFUSED(forge("{\"kid\":\"k1\"}", claims(), "c2ln"), "no alg");
	REFUSED(forge("{\"alg\":null,\"kid\":\"k1\"}", claims(), "c2ln"), "no alg");
}

Test(teams_jwt, hs256_with_the_rsa_public_key_as_secret_refused)
{
	cr_assert_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	cjose_err err;
	char *pubjs = cjose_jwk_to_json(key(K1), false, &err);
	cjose_jwk_t *oct = cjose_jwk_create_oct_spec((const uint8_t *)pubjs,
						     strlen(pubjs), &err);
	cr_assert(oct);
	REFUSED(mint_with(oct, "HS256", "k1", claims()), "alg HS256 refused");
	cjose_jwk_release(oct);
	free(pubjs);
}

Test(teams_jwt, rs512_and_es256_refused)
{
	cr_assert_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	REFUSED(mint_with(key(K1), "RS512", "k1", claims()), "alg RS512 refused");
	REFUSED(mint_with(key(K1), "PS256", "k1", claims()), "alg PS256 refused");
	cjose_err err;
	cjose_jwk_t *ec = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &err);
	cr_assert(ec);
	REFUSED(mint_with(ec, "ES256", "k1", claims()), "alg ES256 refused");
	cjose_jwk_release(ec);
	REFUSED(forge("{\"alg\":\"RS256\",\"kid\":\"k1\",\"crit\":[\"b64\"]}",
		      claims(), "c2ln"),
		"crit");
}

Test(teams_jwt, wrong_signature_refused)
{
	cr_assert_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	REFUSED(mint(K1B, "k1", claims()), "bad signature");
	/* a good token with its payload swapped */
	char *good = mint(K1, "k1", claims());
	json_t *c = claims();
	json_object_set_new(c, "aud", json_string("someone-else"));
	char *p = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	char *p64 = b64(p);
	char *d1 = strchr(good, '.'), *d2 = strchr(d1 + 1, '.');
	char t[8192];
	snprintf(t, sizeof t, "%.*s.%s%s", (int)(d1 - good), good, p64, d2);
	REFUSED(strdup(t), "bad signature");
	cjose_get_dealloc()(p64);
	free(p);
	free(good);
	cr_expect_eq(refreshes(), 1, "a known kid never refreshes");
}

Test(teams_jwt, unknown_kid_flood_costs_one_refresh_an_hour)
{
	cr_assert_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	cr_expect_eq(F.fetches, 2);
	REFUSED(mint(K1, "forged-0", claims()), "unknown kid forged-0");
	cr_expect_eq(refreshes(), 2, "one refresh for the unknown kid");
	cr_expect_eq(F.fetches, 4);
	/* one token, re-headed with 1,000 kids (not signed: the kid is
	 * looked up before the signature) */
	for (int i = 1; i <= 1000; i++) {
		char h[64];
		snprintf(h, sizeof h, "{\"alg\":\"RS256\",\"kid\":\"forged-%d\"}",
			 i);
		cr_assert_eq(v(forge(h, claims(), "c2ln")), IM_EPERM);
		F.now += 3; /* 50 minutes in all */
	}
	cr_expect(strstr(why, "at most once an hour"), "%s", why);
	cr_expect_eq(refreshes(), 2, "still one refresh within the hour");
	cr_expect_eq(F.fetches, 4);
	cr_expect_eq(v(mint(K1, "k1", claims())), 0, "good ones still pass");
	F.now = T0 + 3600;
	REFUSED(mint(K1, "forged-x", claims()), "unknown kid");
	cr_expect_eq(refreshes(), 3, "an hour later: one more");
	cr_expect_eq(F.fetches, 6);
	REFUSED(mint(K1, "forged-y", claims()), "unknown kid");
	cr_expect_eq(refreshes(), 3);
}

Test(teams_jwt, rotation_new_key_found_by_refresh)
{
	cr_assert_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	serve(jwks_of(2, pub(K1, "k1", NULL), pub(K2, "k2", NULL)));
	F.now += 60;
	cr_expect_eq(v(mint(K2, "k2", claims())), 0, "%s", why);
	cr_expect_eq(refreshes(), 2);
	cr_expect_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	/* k1 retired: gone after the daily refresh */
	serve(jwks_of(1, pub(K2, "k2", NULL)));
	F.now = T0 + 60 + 24 * 3600 - 1; /* 24 h after the last refresh */
	cr_expect_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	cr_expect_eq(refreshes(), 2);
	F.now = T0 + 60 + 24 * 3600;
	REFUSED(mint(K1, "k1", claims()), "unknown kid k1");
	cr_expect_eq(refreshes(), 3, "the daily refresh, no kid refresh on top");
	cr_expect_eq(v(mint(K2, "k2", claims())), 0, "%s", why);
}

Test(teams_jwt, failed_fetch_keeps_keys_and_is_held_60_s)
{
	F.fail = 1;
	REFUSED(mint(K1, "k1", claims()), "no signing keys");
	cr_expect(strstr(why, "GET " META " failed"), "%s", why);
	REFUSED(mint(K1, "k1", claims()), "no signing keys");
	cr_expect_eq(F.fetches, 1, "held after a failure");
	F.now += 60;
	F.fail = 0;
	cr_expect_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	cr_expect_eq(F.fetches, 3);
	/* the daily refresh fails: the keys held still work */
	F.now += 24 * 3600;
	F.fail = 1;
	cr_expect_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	json_t *st = tms_jwt_status(J);
	cr_expect(strstr(json_string_value(json_object_get(st, "last_error")),
			 "failed"));
	json_decref(st);
}

Test(teams_jwt, lifetime_with_five_minutes_of_skew)
{
	json_t *c = claims();
	json_object_set_new(c, "exp", json_integer(T0 - 301));
	REFUSED(mint(K1, "k1", c), "expired");
	c = claims();
	json_object_set_new(c, "exp", json_integer(T0 - 299));
	cr_expect_eq(v(mint(K1, "k1", c)), 0, "within skew: %s", why);
	c = claims();
	json_object_del(c, "exp");
	REFUSED(mint(K1, "k1", c), "no exp");
	c = claims();
	json_object_set_new(c, "exp", json_string("9999999999"));
	REFUSED(mint(K1, "k1", c), "no exp");
	c = claims();
	json_object_set_new(c, "nbf", json_integer(T0 + 301));
	REFUSED(mint(K1, "k1", c), "not valid for");
	c = claims();
	json_object_set_new(c, "nbf", json_integer(T0 + 299));
	cr_expect_eq(v(mint(K1, "k1", c)), 0, "within skew: %s", why);
	c = claims();
	json_object_del(c, "nbf");
	cr_expect_eq(v(mint(K1, "k1", c)), 0, "nbf optional: %s", why);
	/* the clock moves past a token */
	char *tok = mint(K1, "k1", claims());
	F.now += 3600 + 300;
	cr_expect_eq(tms_jwt_verify(J, tok, SVC, "msteams", why, sizeof why), 0);
	F.now += 1;
	cr_expect_eq(tms_jwt_verify(J, tok, SVC, "msteams", why, sizeof why),
		     IM_EPERM);
	free(tok);
}

Test(teams_jwt, wrong_iss_or_aud_refused)
{
	json_t *c = claims();
	json_object_set_new(c, "iss", json_string("https://api.botframework.com/"));
	REFUSED(mint(K1, "k1", c), "iss https://api.botframework.com/ refused");
	c = claims();
	json_object_set_new(c, "iss", json_string("https://evil.test"));
	REFUSED(mint(K1, "k1", c), "refused");
	c = claims();
	json_object_del(c, "iss");
	REFUSED(mint(K1, "k1", c), "no iss");
	c = claims();
	json_object_set_new(c, "aud", json_string("app-2"));
	REFUSED(mint(K1, "k1", c), "aud app-2 is not the app id");
	c = claims();
	json_object_set_new(c, "aud", json_pack("[s]", APP));
	REFUSED(mint(K1, "k1", c), "is not the app id");
	c = claims();
	json_object_del(c, "aud");
	REFUSED(mint(K1, "k1", c), "aud (none)");
}

Test(teams_jwt, serviceurl_must_match_exactly)
{
	char *t = mint(K1, "k1", claims());
	cr_expect_eq(tms_jwt_verify(J, t, SVC, "msteams", why, sizeof why), 0,
		     "%s", why);
	cr_expect_eq(tms_jwt_verify(J, t, "https://smba.test/teams", "msteams",
				    why, sizeof why), IM_EPERM);
	cr_expect(strstr(why, "serviceurl claim"), "%s", why);
	cr_expect_eq(tms_jwt_verify(J, t, "https://evil.test/teams/", "msteams",
				    why, sizeof why), IM_EPERM);
	cr_expect_eq(tms_jwt_verify(J, t, NULL, "msteams", why, sizeof why),
		     IM_EPERM);
	cr_expect(strstr(why, "(none)"), "%s", why);
	free(t);
	json_t *c = claims();
	json_object_del(c, "serviceurl");
	REFUSED(mint(K1, "k1", c), "no serviceurl");
	c = claims();
	json_object_del(c, "serviceurl");
	json_object_set_new(c, "serviceUrl", json_string(SVC));
	REFUSED(mint(K1, "k1", c), "no serviceurl");
}

Test(teams_jwt, endorsements_and_channel)
{
	serve(jwks_of(3, pub(K1, "k1", "skype,webchat"),
		      pub(K2, "k2", "msteams,skype"), pub(K1B, "k3", "")));
	REFUSED(mint(K1, "k1", claims()), "not endorsed for channel msteams");
	cr_expect_eq(v(mint(K2, "k2", claims())), 0, "%s", why);
	cr_expect_eq(v(mint(K1B, "k3", claims())), 0, "empty list: %s", why);
	char *t = mint(K2, "k2", claims());
	cr_expect_eq(tms_jwt_verify(J, t, SVC, "skype", why, sizeof why),
		     IM_EPERM);
	cr_expect(strstr(why, "channelId skype is not msteams"), "%s", why);
	cr_expect_eq(tms_jwt_verify(J, t, SVC, NULL, why, sizeof why), IM_EPERM);
	free(t);
}

Test(teams_jwt, endorsements_checked_with_any_channel)
{
	tms_jwt_cfg c = {.app_id = APP, .openid_metadata_url = META,
			 .channel_id = "", .fetch = fetch, .now = clock_now};
	tms_jwt *j = tms_jwt_new(&c);
	serve(jwks_of(2, pub(K1, "k1", "skype"), pub(K2, "k2", NULL)));
	char *t1 = mint(K1, "k1", claims()), *t2 = mint(K2, "k2", claims());
	cr_expect_eq(tms_jwt_verify(j, t1, SVC, "skype", why, sizeof why), 0,
		     "%s", why);
	cr_expect_eq(tms_jwt_verify(j, t1, SVC, "msteams", why, sizeof why),
		     IM_EPERM);
	cr_expect(strstr(why, "not endorsed"), "%s", why);
	cr_expect_eq(tms_jwt_verify(j, t2, SVC, "anything", why, sizeof why), 0,
		     "no endorsements: %s", why);
	free(t1);
	free(t2);
	tms_jwt_free(j);
}

static json_t *tenant_claims(const char *iss)
{
	json_t *c = claims();
	json_object_set_new(c, "iss", json_string(iss));
	return c;
}

#define STS "https://sts.windows.net/" TENANT "/"
#define V2 "https://login.microsoftonline.com/" TENANT "/v2.0"

Test(teams_jwt, tenant_issuers_only_with_a_tenant)
{
	F.tjwks = jwks_of(1, pub(KT, "kt", NULL));
	/* no tenant: refused, and the tenant keys are never fetched */
	REFUSED(mint(KT, "kt", tenant_claims(STS)), "unknown kid kt");
	cr_expect_eq(F.tenant_fetches, 0);
	REFUSED(mint(K1, "k1", tenant_claims(STS)), "iss " STS " refused");
	REFUSED(mint(K1, "k1", tenant_claims(V2)), "refused");
	tms_jwt_free(J);

	J = make_cfg(TENANT);
	pthread_mutex_lock(&F.mu);
	free(F.tjwks);
	F.tjwks = jwks_of(1, pub(KT, "kt", NULL));
	pthread_mutex_unlock(&F.mu);
	cr_expect_eq(v(mint(KT, "kt", tenant_claims(STS))), 0, "%s", why);
	cr_expect_eq(F.tenant_fetches, 1);
	cr_expect_eq(F.jwks_fetches, 1);
	cr_expect_eq(v(mint(KT, "kt", tenant_claims(V2))), 0, "%s", why);
	cr_expect_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	/* another tenant's issuer */
	REFUSED(mint(KT, "kt",
		     tenant_claims("https://sts.windows.net/tenant-8/")),
		"refused");
	/* issuer and key source must agree */
	REFUSED(mint(K1, "k1", tenant_claims(STS)), "key not from the tenant");
	REFUSED(mint(KT, "kt", claims()), "key not from Bot Framework");
	tms_jwt_stats s;
	tms_jwt_get_stats(J, &s);
	cr_expect_eq(s.keys, 2);
}

Test(teams_jwt, tenant_keys_down_keeps_bot_framework_keys)
{
	tms_jwt_free(J);
	J = make_cfg(TENANT);
	free(F.tjwks);
	F.tjwks = NULL; /* 404 */
	cr_expect_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	json_t *st = tms_jwt_status(J);
	cr_expect(strstr(json_string_value(json_object_get(st, "last_error")),
			 TENANT_KEYS), "%s",
		  json_string_value(json_object_get(st, "last_error")));
	json_decref(st);
	/* retried after 60 s, not at every token */
	cr_expect_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	cr_expect_eq(F.tenant_fetches, 1);
	F.now += 60;
	F.tjwks = jwks_of(1, pub(KT, "kt", NULL)); /* was NULL */
	cr_expect_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	cr_expect_eq(F.tenant_fetches, 2);
	cr_expect_eq(v(mint(KT, "kt", tenant_claims(V2))), 0, "%s", why);
	/* the tenant's keys down at the daily refresh: the ones held stay */
	F.now += 24 * 3600;
	free(F.tjwks);
	F.tjwks = NULL;
	cr_expect_eq(v(mint(KT, "kt", tenant_claims(V2))), 0, "%s", why);
	cr_expect_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	cr_expect_eq(F.tenant_fetches, 3);
}

Test(teams_jwt, oversized_token_refused)
{
	size_t n = TMS_JWT_MAX_TOKEN + 1;
	char *t = malloc(n + 16);
	strcpy(t, "Bearer ");
	memset(t + 7, 'A', n);
	t[7 + 10] = '.';
	t[7 + 20] = '.';
	t[7 + n] = '\0';
	REFUSED(t, "token over 8192 bytes");
	/* a header megabyte long */
	size_t m = 1 << 20;
	t = malloc(m + 1);
	strcpy(t, "Bearer ");
	memset(t + 7, 'A', m - 7);
	t[m] = '\0';
	REFUSED(t, "token over");
	/* a valid token padded with claims to just over the limit */
	json_t *c = claims();
	char pad[6200];
	memset(pad, 'x', sizeof pad - 1);
	pad[sizeof pad - 1] = '\0';
	json_object_set_new(c, "pad", json_string(pad));
	REFUSED(mint(K1, "k1", c), "token over");
	c = claims();
	pad[5000] = '\0';
	json_object_set_new(c, "pad", json_string(pad));
	cr_expect_eq(v(mint(K1, "k1", c)), 0, "under the limit: %s", why);
	cr_expect_eq(F.fetches, 2);
}

Test(teams_jwt, jwks_bounded_and_filtered)
{
	/* 100 entries: only 64 kept; non-RSA, kid-less, "enc" keys skipped */
	json_t *a = json_array();
	json_t *ec = json_pack("{s:s,s:s,s:s,s:s,s:s}", "kty", "EC", "crv",
			       "P-256", "kid", "ec", "x",
			       "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y",
			       "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0");
	json_array_append_new(a, ec);
	json_t *nokid = pub(K1, "x", NULL);
	json_object_del(nokid, "kid");
	json_array_append_new(a, nokid);
	json_t *enc = pub(K1, "enc", NULL);
	json_object_set_new(enc, "use", json_string("enc"));
	json_array_append_new(a, enc);
	for (int i = 0; i < 100; i++) {
		char kid[16];
		snprintf(kid, sizeof kid, "k%d", i);
		json_array_append_new(a, pub(K1, kid, NULL));
	}
	json_t *o = json_pack("{s:o}", "keys", a);
	serve(json_dumps(o, JSON_COMPACT));
	json_decref(o);
	cr_expect_eq(v(mint(K1, "k1", claims())), 0, "%s", why);
	tms_jwt_stats s;
	tms_jwt_get_stats(J, &s);
	cr_expect_eq(s.keys, TMS_JWT_MAX_KEYS);
	REFUSED(mint(K1, "enc", claims()), "unknown kid");
	REFUSED(mint(K1, "k99", claims()), "unknown kid");
}

Test(teams_jwt, oversized_jwks_refused)
{
	char *big = malloc(TMS_JWT_MAX_BODY + 64);
	memset(big, ' ', TMS_JWT_MAX_BODY + 63);
	memcpy(big, "{\"keys\":[]}", 11);
	big[TMS_JWT_MAX_BODY + 63] = '\0';
	serve(big);
	REFUSED(mint(K1, "k1", claims()), "over 256 KiB");
}

static void *verifier(void *arg)
{
	char *tok = arg, w[256];
	int ok = 0;
	for (int i = 0; i < 50; i++)
		ok += tms_jwt_verify(J, tok, SVC, "msteams", w, sizeof w) == 0;
	return (void *)(long)ok;
}

Test(teams_jwt, concurrent_callers_share_one_refresh)
{
	F.delay_ms = 100;
	json_t *c = claims();
	json_object_set_new(c, "exp", json_integer(T0 + 3 * 24 * 3600));
	char *tok = mint(K1, "k1", c);
	pthread_t th[8];
	for (int i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, verifier, tok);
	int ok = 0;
	for (int i = 0; i < 8; i++) {
		void *r;
		pthread_join(th[i], &r);
		ok += (int)(long)r;
	}
	cr_expect_eq(ok, 8 * 50);
	cr_expect_eq(refreshes(), 1);
	cr_expect_eq(F.fetches, 2);
	/* the daily refresh does not hold the others up: while it runs
	 * (slowly), the old keys serve */
	F.now += 24 * 3600;
	F.delay_ms = 300;
	for (int i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, verifier, tok);
	ok = 0;
	for (int i = 0; i < 8; i++) {
		void *r;
		pthread_join(th[i], &r);
		ok += (int)(long)r;
	}
	cr_expect_eq(ok, 8 * 50);
	cr_expect_eq(refreshes(), 2);
	free(tok);
}
