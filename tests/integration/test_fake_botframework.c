/* The fake Bot Framework checked on its own, over HTTP with libcurl and
 * with cjose verifying its tokens, before the Teams connector's tests
 * lean on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjose/cjose.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fake_botframework.h"

static fb *f;

static void setup(void)
{
	f = fb_start(NULL);
	cr_assert(f, "the fake starts");
}

static void teardown(void)
{
	fb_stop(f);
	f = NULL;
}

TestSuite(fake_botframework, .init = setup, .fini = teardown,
	  .timeout = 60);

/* --- HTTP --------------------------------------------------------------- */

typedef struct resp {
	long status;
	int retry_after;
	char *body;
	size_t len;
	json_t *json;
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	resp *r = ud;
	char *b = realloc(r->body, r->len + sz * n + 1);
	if (!b)
		return 0;
	memcpy(b + r->len, p, sz * n);
	r->body = b;
	r->len += sz * n;
	b[r->len] = '\0';
	return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
	resp *r = ud;
	if (sz * n > 12 && !strncasecmp(p, "Retry-After:", 12))
		r->retry_after = atoi(p + 12);
	return sz * n;
}

/* method on base+path; bearer NULL = no Authorization; body NULL = none. */
static resp http(const char *method, const char *path, const char *bearer,
		 const char *ctype, const char *body)
{
	resp r = {0};
	CURL *c = curl_easy_init();
	cr_assert(c);
	char url[1024], auth[1024], ct[128];
	snprintf(url, sizeof(url), "%s%s",
		 strncmp(path, "http", 4) ? fb_url(f) : "", path);
	struct curl_slist *h = NULL;
	if (bearer) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
			 bearer);
		h = curl_slist_append(h, auth);
	}
	if (body) {
		snprintf(ct, sizeof(ct), "Content-Type: %s",
			 ctype ? ctype : "application/json");
		h = curl_slist_append(h, ct);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	CURLcode rc = curl_easy_perform(c);
	cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, url,
		     curl_easy_strerror(rc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (r.body)
		r.json = json_loads(r.body, 0, NULL);
	return r;
}

static void resp_free(resp *r)
{
	free(r->body);
	json_decref(r->json);
}

static const char *jstr(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static const char *err_code(const resp *r)
{
	return jstr(json_object_get(r->json, "error"), "code");
}

static char *token_form(const char *id, const char *secret,
			const char *scope)
{
	char *s = NULL;
	CURL *c = curl_easy_init();
	char *es = curl_easy_escape(c, secret, 0);
	char *esc = curl_easy_escape(c, scope, 0);
	cr_assert(asprintf(&s,
			   "grant_type=client_credentials&client_id=%s&"
			   "client_secret=%s&scope=%s",
			   id, es, esc) > 0);
	curl_free(es);
	curl_free(esc);
	curl_easy_cleanup(c);
	return s;
}

#define SCOPE "https://api.botframework.com/.default"

static resp get_token(const char *tenant, const char *id, const char *secret)
{
	char path[512];
	snprintf(path, sizeof(path), "/%s/oauth2/v2.0/token", tenant);
	char *form = token_form(id, secret, SCOPE);
	resp r = http("POST", path, NULL, "application/x-www-form-urlencoded",
		      form);
	free(form);
	return r;
}

/* A token from the token endpoint (new string). */
static char *bearer(void)
{
	resp r = get_token(fb_tenant(f), fb_app_id(f), "fb-secret-1");
	cr_assert_eq(r.status, 200, "%s", r.body);
	char *t = strdup(jstr(r.json, "access_token"));
	resp_free(&r);
	return t;
}

/* "/teams/v3/conversations/<escaped conv>/activities[/aid]" */
static char *acts_path(const char *conv, const char *aid)
{
	CURL *c = curl_easy_init();
	char *e = curl_easy_escape(c, conv, 0);
	char *p = NULL;
	cr_assert(asprintf(&p, "/teams/v3/conversations/%s/activities%s%s", e,
			   aid ? "/" : "", aid ? aid : "") > 0);
	curl_free(e);
	curl_easy_cleanup(c);
	return p;
}

static resp send_to(const char *conv, const char *tok, const char *body)
{
	char *p = acts_path(conv, NULL);
	resp r = http("POST", p, tok, NULL,
		      body ? body : "{\"type\":\"message\",\"text\":\"hi\"}");
	free(p);
	return r;
}

#define CONV FB_CHANNEL_ID ";messageid=1700000000001"

/* --- JWS ---------------------------------------------------------------- */

static json_t *jwt_part(const char *jwt, int part)
{
	const char *p = jwt;
	for (int i = 0; i < part; i++) {
		p = strchr(p, '.');
		cr_assert(p, "a compact JWS has three parts");
		p++;
	}
	const char *e = strchr(p, '.');
	size_t n = e ? (size_t)(e - p) : strlen(p);
	uint8_t *raw = NULL;
	size_t rl = 0;
	cjose_err err;
	cr_assert(cjose_base64url_decode(p, n, &raw, &rl, &err));
	json_t *j = json_loadb((const char *)raw, rl, 0, NULL);
	cjose_get_dealloc()(raw);
	cr_assert(j, "part %d is JSON", part);
	return j;
}

/* Does jwt verify (cjose) with the published key named kid? Only RS256
 * reaches cjose: cjose 0.6.2's cjose_jws_verify follows the token's alg,
 * so an HS256 token checked against an RSA JWK makes it HMAC with the RSA
 * key's memory as the secret (valgrind: invalid read). A verifier must
 * pin alg RS256 and kty RSA before calling it, as this one does. */
static bool verifies_with(const char *jwt, const char *kid)
{
	json_t *hdr = jwt_part(jwt, 0);
	bool rs256 = jstr(hdr, "alg") && !strcmp(jstr(hdr, "alg"), "RS256");
	json_decref(hdr);
	if (!rs256)
		return false;
	json_t *jwks = fb_jwks(f);
	size_t i;
	json_t *k, *found = NULL;
	json_array_foreach(json_object_get(jwks, "keys"), i, k) if (
	    !strcmp(jstr(k, "kid"), kid)) found = k;
	cr_assert(found, "kid %s is published", kid);
	char *js = json_dumps(found, JSON_COMPACT);
	cjose_err err;
	cjose_jwk_t *jwk = cjose_jwk_import(js, strlen(js), &err);
	cr_assert(jwk, "the published key imports: %s", err.message);
	cjose_jws_t *jws = cjose_jws_import(jwt, strlen(jwt), &err);
	bool ok = jws && cjose_jws_verify(jws, jwk, &err);
	cjose_jws_release(jws);
	cjose_jwk_release(jwk);
	free(js);
	json_decref(jwks);
	return ok;
}

static bool published(const char *kid)
{
	json_t *jwks = fb_jwks(f);
	size_t i;
	json_t *k;
	bool yes = false;
	json_array_foreach(json_object_get(jwks, "keys"), i, k) yes |=
	    !strcmp(jstr(k, "kid"), kid);
	json_decref(jwks);
	return yes;
}

static char *signed_with(fb_break b)
{
	fb_claims c = {.brk = b};
	char *t = fb_sign(f, &c);
	cr_assert(t, "fb_sign makes break %d", (int)b);
	return t;
}

/* --- metadata and keys -------------------------------------------------- */

Test(fake_botframework, openid_metadata_names_the_jwks)
{
	resp r = http("GET", "/v1/.well-known/openidconfiguration", NULL,
		      NULL, NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(jstr(r.json, "issuer"), "https://api.botframework.com");
	char want[256];
	snprintf(want, sizeof(want), "%s/v1/.well-known/keys", fb_url(f));
	cr_assert_str_eq(jstr(r.json, "jwks_uri"), want);
	json_t *algs =
	    json_object_get(r.json, "id_token_signing_alg_values_supported");
	cr_assert_eq(json_array_size(algs), 1);
	cr_assert_str_eq(json_string_value(json_array_get(algs, 0)), "RS256");
	cr_assert_eq(fb_metadata_fetches(f), 1);
	cr_assert_eq(fb_jwks_fetches(f), 0);
	resp_free(&r);
	char u[256];
	snprintf(u, sizeof(u), "%s", fb_openid_url(f));
	cr_assert(strstr(u, "/v1/.well-known/openidconfiguration"));
}

Test(fake_botframework, jwks_has_rsa_keys_with_and_without_endorsements)
{
	resp r = http("GET", "/v1/.well-known/keys", NULL, NULL, NULL);
	cr_assert_eq(r.status, 200);
	json_t *keys = json_object_get(r.json, "keys");
	cr_assert_geq(json_array_size(keys), 2);
	size_t i;
	json_t *k;
	int with_teams = 0, without = 0;
	json_array_foreach(keys, i, k)
	{
		cr_assert_str_eq(jstr(k, "kty"), "RSA");
		cr_assert_str_eq(jstr(k, "use"), "sig");
		cr_assert(jstr(k, "kid") && jstr(k, "n") && jstr(k, "e"));
		cr_assert_gt(strlen(jstr(k, "n")), 300, "2048-bit modulus");
		cr_assert_null(json_object_get(k, "d"), "no private part");
		cr_assert_null(json_object_get(k, "p"));
		json_t *en = json_object_get(k, "endorsements");
		if (!en) {
			without++;
			continue;
		}
		size_t j;
		json_t *e;
		json_array_foreach(en, j, e) with_teams +=
		    !strcmp(json_string_value(e), "msteams");
	}
	cr_assert_geq(with_teams, 1);
	cr_assert_geq(without, 1);
	cr_assert_eq(fb_jwks_fetches(f), 1);
	json_t *reqs = fb_requests(f);
	cr_assert_str_eq(jstr(json_array_get(reqs, 0), "kind"), "jwks");
	json_decref(reqs);
	size_t nkeys = json_array_size(keys);
	resp_free(&r);
	/* the single-tenant key URL serves the same set, counted too */
	r = http("GET", "/" FB_TENANT "/discovery/v2.0/keys", NULL, NULL,
		 NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(json_array_size(json_object_get(r.json, "keys")), nkeys);
	cr_assert_eq(fb_jwks_fetches(f), 2);
	resp_free(&r);
}

Test(fake_botframework, endorsements_can_be_changed)
{
	fb_set_endorsements(f, "fb-key-2", "skype,webchat");
	json_t *jwks = fb_jwks(f);
	size_t i;
	json_t *k;
	bool seen = false;
	json_array_foreach(json_object_get(jwks, "keys"), i, k) if (
	    !strcmp(jstr(k, "kid"), "fb-key-2"))
	{
		json_t *en = json_object_get(k, "endorsements");
		cr_assert_eq(json_array_size(en), 2);
		cr_assert_str_eq(json_string_value(json_array_get(en, 1)),
				 "webchat");
		seen = true;
	}
	cr_assert(seen);
	json_decref(jwks);
}

Test(fake_botframework, valid_token_verifies_with_the_published_key)
{
	char *t = signed_with(FB_VALID);
	json_t *h = jwt_part(t, 0), *c = jwt_part(t, 1);
	cr_assert_str_eq(jstr(h, "alg"), "RS256");
	cr_assert_str_eq(jstr(h, "kid"), fb_current_kid(f));
	cr_assert_str_eq(jstr(c, "iss"), FB_ISSUER);
	cr_assert_str_eq(jstr(c, "aud"), fb_app_id(f));
	cr_assert_str_eq(jstr(c, "serviceurl"), fb_service_url(f));
	long long now = (long long)time(NULL);
	cr_assert_gt(json_integer_value(json_object_get(c, "exp")), now);
	cr_assert_leq(json_integer_value(json_object_get(c, "nbf")), now);
	cr_assert(verifies_with(t, fb_current_kid(f)));
	cr_assert_not(verifies_with(t, "fb-key-2"), "only its own key");
	json_decref(h);
	json_decref(c);
	free(t);
}

Test(fake_botframework, claims_can_be_chosen)
{
	fb_claims cl = {.aud = "other-app", .kid = "fb-key-2",
			.serviceurl = "https://smba.trafficmanager.net/teams/"};
	char *t = fb_sign(f, &cl);
	json_t *h = jwt_part(t, 0), *c = jwt_part(t, 1);
	cr_assert_str_eq(jstr(h, "kid"), "fb-key-2");
	cr_assert_str_eq(jstr(c, "aud"), "other-app");
	cr_assert_str_eq(jstr(c, "serviceurl"),
			 "https://smba.trafficmanager.net/teams/");
	cr_assert(verifies_with(t, "fb-key-2"));
	json_decref(h);
	json_decref(c);
	free(t);
}

Test(fake_botframework, broken_claims_are_what_they_claim)
{
	long long now = (long long)time(NULL);
	struct {
		fb_break b;
		const char *claim;
	} cases[] = {{FB_EXPIRED, "exp"},	{FB_NOT_YET_VALID, "nbf"},
		     {FB_WRONG_ISS, "iss"},	{FB_WRONG_AUD, "aud"},
		     {FB_SERVICEURL, "serviceurl"}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *t = signed_with(cases[i].b);
		json_t *c = jwt_part(t, 1);
		/* well signed: only the claim is wrong */
		cr_assert(verifies_with(t, fb_current_kid(f)), "case %zu", i);
		switch (cases[i].b) {
		case FB_EXPIRED:
			cr_assert_lt(json_integer_value(json_object_get(c, "exp")),
				     now - 300, "beyond the skew");
			break;
		case FB_NOT_YET_VALID:
			cr_assert_gt(json_integer_value(json_object_get(c, "nbf")),
				     now + 300, "beyond the skew");
			break;
		case FB_WRONG_ISS:
			cr_assert_str_neq(jstr(c, "iss"), FB_ISSUER);
			break;
		case FB_WRONG_AUD:
			cr_assert_str_neq(jstr(c, "aud"), fb_app_id(f));
			break;
		default:
			cr_assert_str_neq(jstr(c, "serviceurl"),
					  fb_service_url(f));
		}
		json_decref(c);
		free(t);
	}
}

Test(fake_botframework, broken_keys_are_what_they_claim)
{
	/* wrong kid: names another published key it does not match */
	char *t = signed_with(FB_WRONG_KID);
	json_t *h = jwt_part(t, 0);
	const char *kid = jstr(h, "kid");
	cr_assert_str_neq(kid, fb_current_kid(f));
	cr_assert(published(kid));
	cr_assert_not(verifies_with(t, kid));
	json_decref(h);
	free(t);
	/* unknown kid: never published, a new one each time */
	char *t1 = signed_with(FB_UNKNOWN_KID), *t2 = signed_with(FB_UNKNOWN_KID);
	json_t *h1 = jwt_part(t1, 0), *h2 = jwt_part(t2, 0);
	cr_assert_not(published(jstr(h1, "kid")));
	cr_assert_str_neq(jstr(h1, "kid"), jstr(h2, "kid"));
	json_decref(h1);
	json_decref(h2);
	free(t1);
	free(t2);
	/* foreign key under the current kid */
	t = signed_with(FB_FOREIGN_KEY);
	h = jwt_part(t, 0);
	cr_assert_str_eq(jstr(h, "alg"), "RS256");
	cr_assert_str_eq(jstr(h, "kid"), fb_current_kid(f));
	cr_assert_not(verifies_with(t, fb_current_kid(f)));
	json_decref(h);
	free(t);
	/* tampered signature */
	t = signed_with(FB_BAD_SIGNATURE);
	cr_assert_not(verifies_with(t, fb_current_kid(f)));
	free(t);
}

Test(fake_botframework, alg_none_has_no_signature)
{
	char *t = signed_with(FB_ALG_NONE);
	json_t *h = jwt_part(t, 0), *c = jwt_part(t, 1);
	cr_assert_str_eq(jstr(h, "alg"), "none");
	cr_assert_str_eq(jstr(c, "aud"), fb_app_id(f));
	cr_assert_eq(t[strlen(t) - 1], '.', "empty signature: %s", t);
	cr_assert_not(verifies_with(t, fb_current_kid(f)));
	json_decref(h);
	json_decref(c);
	free(t);
}

Test(fake_botframework, hs256_is_keyed_with_the_public_key)
{
	char *t = signed_with(FB_HS256);
	json_t *h = jwt_part(t, 0);
	cr_assert_str_eq(jstr(h, "alg"), "HS256");
	cr_assert_str_eq(jstr(h, "kid"), fb_current_kid(f));
	/* recompute the HMAC with the public PEM as the secret */
	char *pem = fb_public_pem(f);
	cr_assert(pem && strstr(pem, "BEGIN PUBLIC KEY"));
	const char *dot = strrchr(t, '.');
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int ml = 0;
	cr_assert(HMAC(EVP_sha256(), pem, (int)strlen(pem),
		       (const unsigned char *)t, (size_t)(dot - t), mac, &ml));
	char *b64 = NULL;
	size_t bl = 0;
	cjose_err err;
	cr_assert(cjose_base64url_encode(mac, ml, &b64, &bl, &err));
	cr_assert_eq(strlen(dot + 1), bl);
	cr_assert_eq(memcmp(dot + 1, b64, bl), 0, "HMAC-SHA256 over h.p");
	cjose_get_dealloc()(b64);
	cr_assert_not(verifies_with(t, fb_current_kid(f)));
	free(pem);
	json_decref(h);
	free(t);
}

Test(fake_botframework, rotation_changes_the_jwks)
{
	char old[32], kid[32];
	snprintf(old, sizeof(old), "%s", fb_current_kid(f));
	cr_assert(fb_rotate_keys(f, false, kid, sizeof(kid)));
	cr_assert_str_neq(kid, old);
	cr_assert_str_eq(fb_current_kid(f), kid);
	cr_assert(published(kid));
	cr_assert(published(old), "kept when not dropped");
	char *t = signed_with(FB_VALID);
	json_t *h = jwt_part(t, 0);
	cr_assert_str_eq(jstr(h, "kid"), kid);
	cr_assert(verifies_with(t, kid));
	json_decref(h);
	free(t);
	char kid2[32];
	cr_assert(fb_rotate_keys(f, true, kid2, sizeof(kid2)));
	cr_assert(published(kid2));
	cr_assert_not(published(kid), "dropped");
	cr_assert(published(old));
	resp r = http("GET", "/v1/.well-known/keys", NULL, NULL, NULL);
	bool served = false;
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(r.json, "keys"), i, k) served |=
	    !strcmp(jstr(k, "kid"), kid2);
	cr_assert(served, "the served JWKS has the new key");
	resp_free(&r);
}

/* --- activities --------------------------------------------------------- */

Test(fake_botframework, message_activity_shape)
{
	char *s = fb_activity(f, "message", "declare Payments down", NULL);
	json_t *a = json_loads(s, 0, NULL);
	cr_assert(a);
	cr_assert_str_eq(jstr(a, "type"), "message");
	cr_assert_str_eq(jstr(a, "channelId"), "msteams");
	cr_assert_str_eq(jstr(a, "serviceUrl"), fb_service_url(f));
	cr_assert_str_eq(jstr(a, "text"), "<at>im</at> declare Payments down");
	cr_assert(jstr(a, "id"));
	json_t *conv = json_object_get(a, "conversation");
	cr_assert(strstr(jstr(conv, "id"), "@thread.tacv2;messageid="));
	cr_assert_str_eq(jstr(conv, "tenantId"), fb_tenant(f));
	json_t *from = json_object_get(a, "from");
	cr_assert(jstr(from, "id") && jstr(from, "name") &&
		  jstr(from, "aadObjectId"));
	char bot[200];
	snprintf(bot, sizeof(bot), "28:%s", fb_app_id(f));
	cr_assert_str_eq(jstr(json_object_get(a, "recipient"), "id"), bot);
	json_t *cd = json_object_get(a, "channelData");
	cr_assert_str_eq(jstr(json_object_get(cd, "tenant"), "id"),
			 fb_tenant(f));
	cr_assert_str_eq(jstr(json_object_get(cd, "team"), "id"), FB_TEAM_ID);
	cr_assert_str_eq(jstr(json_object_get(cd, "channel"), "id"),
			 FB_CHANNEL_ID);
	cr_assert_str_eq(jstr(json_object_get(cd, "channel"), "name"),
			 "Incidents");
	json_t *m = json_array_get(json_object_get(a, "entities"), 0);
	cr_assert_str_eq(jstr(m, "type"), "mention");
	cr_assert_str_eq(jstr(json_object_get(m, "mentioned"), "id"), bot);
	json_decref(a);
	free(s);
}

Test(fake_botframework, invoke_and_update_activities)
{
	json_t *data = json_pack("{s:s}", "incident", "INC-7");
	fb_act more = {.verb = "ack", .data = data};
	char *s = fb_activity(f, "invoke", NULL, &more);
	json_t *a = json_loads(s, 0, NULL);
	cr_assert_str_eq(jstr(a, "type"), "invoke");
	cr_assert_str_eq(jstr(a, "name"), "adaptiveCard/action");
	json_t *act = json_object_get(json_object_get(a, "value"), "action");
	cr_assert_str_eq(jstr(act, "type"), "Action.Execute");
	cr_assert_str_eq(jstr(act, "verb"), "ack");
	cr_assert_str_eq(jstr(json_object_get(act, "data"), "incident"),
			 "INC-7");
	json_decref(a);
	free(s);
	json_decref(data);

	s = fb_activity(f, "conversationUpdate", NULL, NULL);
	a = json_loads(s, 0, NULL);
	cr_assert_str_eq(jstr(a, "type"), "conversationUpdate");
	cr_assert_eq(json_array_size(json_object_get(a, "membersAdded")), 1);
	cr_assert_str_eq(jstr(json_object_get(a, "conversation"), "id"),
			 FB_TEAM_ID);
	cr_assert(jstr(json_object_get(a, "channelData"), "eventType"));
	json_decref(a);
	free(s);

	fb_act rm = {.action = "remove"};
	s = fb_activity(f, "installationUpdate", NULL, &rm);
	a = json_loads(s, 0, NULL);
	cr_assert_str_eq(jstr(a, "type"), "installationUpdate");
	cr_assert_str_eq(jstr(a, "action"), "remove");
	json_decref(a);
	free(s);
}

/* --- tokens ------------------------------------------------------------- */

Test(fake_botframework, token_for_the_app_in_its_tenant)
{
	resp r = get_token(fb_tenant(f), fb_app_id(f), "fb-secret-1");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_str_eq(jstr(r.json, "token_type"), "Bearer");
	cr_assert_eq(json_integer_value(json_object_get(r.json, "expires_in")),
		     3600);
	cr_assert(jstr(r.json, "access_token"));
	resp_free(&r);
	fb_set_token_ttl(f, 120);
	r = get_token(fb_tenant(f), fb_app_id(f), "fb-secret-1");
	cr_assert_eq(json_integer_value(json_object_get(r.json, "expires_in")),
		     120);
	resp_free(&r);
	cr_assert_eq(fb_token_fetches(f), 2);
	/* the record hides the secret */
	json_t *reqs = fb_requests(f);
	json_t *form = json_object_get(json_array_get(reqs, 0), "form");
	cr_assert_str_eq(jstr(form, "client_secret"), "***");
	cr_assert_str_eq(jstr(form, "scope"), SCOPE);
	json_decref(reqs);
}

Test(fake_botframework, wrong_tenant_is_aadsts700016)
{
	resp r = get_token("11111111-2222-3333-4444-555555555555",
			   fb_app_id(f), "fb-secret-1");
	cr_assert_eq(r.status, 400);
	cr_assert_str_eq(jstr(r.json, "error"), "unauthorized_client");
	const char *d = jstr(r.json, "error_description");
	cr_assert(strstr(d, "AADSTS700016"), "%s", d);
	cr_assert(strstr(d, fb_app_id(f)));
	cr_assert(strstr(d, "11111111-2222-3333-4444-555555555555"));
	resp_free(&r);
	/* botframework.com only for a multi-tenant app */
	r = get_token("botframework.com", fb_app_id(f), "fb-secret-1");
	cr_assert_eq(r.status, 400);
	resp_free(&r);
	fb_set_multi_tenant(f, true);
	r = get_token("botframework.com", fb_app_id(f), "fb-secret-1");
	cr_assert_eq(r.status, 200, "%s", r.body);
	resp_free(&r);
	/* an unknown app is the same error */
	r = get_token(fb_tenant(f), "not-the-app", "fb-secret-1");
	cr_assert_eq(r.status, 400);
	cr_assert(strstr(jstr(r.json, "error_description"), "AADSTS700016"));
	resp_free(&r);
}

Test(fake_botframework, wrong_secret_and_scope)
{
	resp r = get_token(fb_tenant(f), fb_app_id(f), "nope");
	cr_assert_eq(r.status, 401);
	cr_assert_str_eq(jstr(r.json, "error"), "invalid_client");
	cr_assert(strstr(jstr(r.json, "error_description"), "AADSTS7000215"));
	resp_free(&r);
	char *form = token_form(fb_app_id(f), "fb-secret-1",
				"https://graph.microsoft.com/.default");
	r = http("POST", "/" FB_TENANT "/oauth2/v2.0/token", NULL,
		 "application/x-www-form-urlencoded", form);
	free(form);
	cr_assert_eq(r.status, 400);
	cr_assert_str_eq(jstr(r.json, "error"), "invalid_scope");
	resp_free(&r);
}

Test(fake_botframework, secret_rotation_mid_run)
{
	char *old = bearer();
	resp r = send_to(CONV, old, NULL);
	cr_assert_eq(r.status, 201);
	resp_free(&r);
	fb_set_secret(f, "fb-secret-2", false);
	r = get_token(fb_tenant(f), fb_app_id(f), "fb-secret-1");
	cr_assert_eq(r.status, 401, "the old secret no longer works");
	resp_free(&r);
	r = get_token(fb_tenant(f), fb_app_id(f), "fb-secret-2");
	cr_assert_eq(r.status, 200);
	char *fresh = strdup(jstr(r.json, "access_token"));
	resp_free(&r);
	r = send_to(CONV, old, NULL);
	cr_assert_eq(r.status, 201, "issued tokens live on without revoke");
	resp_free(&r);
	fb_set_secret(f, "fb-secret-3", true);
	r = send_to(CONV, old, NULL);
	cr_assert_eq(r.status, 401, "revoked");
	cr_assert_str_eq(err_code(&r), "Unauthorized");
	resp_free(&r);
	r = send_to(CONV, fresh, NULL);
	cr_assert_eq(r.status, 401, "revoked too");
	resp_free(&r);
	free(old);
	free(fresh);
}

/* --- the Bot Connector -------------------------------------------------- */

Test(fake_botframework, send_needs_a_token_it_issued)
{
	resp r = send_to(CONV, NULL, NULL);
	cr_assert_eq(r.status, 401);
	cr_assert_str_eq(err_code(&r), "Unauthorized");
	cr_assert(jstr(json_object_get(r.json, "error"), "message"));
	resp_free(&r);
	r = send_to(CONV, "made-up-token", NULL);
	cr_assert_eq(r.status, 401);
	resp_free(&r);
	char *tok = fb_issue_token(f);
	r = send_to(CONV, tok, NULL);
	cr_assert_eq(r.status, 201, "%s", r.body);
	cr_assert(jstr(r.json, "id"));
	resp_free(&r);
	free(tok);
	json_t *msgs = fb_messages(f);
	cr_assert_eq(json_array_size(msgs), 1, "only the accepted one");
	json_decref(msgs);
	json_t *reqs = fb_requests(f);
	cr_assert_eq(json_array_size(reqs), 3);
	cr_assert(json_is_false(json_object_get(json_array_get(reqs, 0),
						"auth")));
	cr_assert(json_is_true(json_object_get(json_array_get(reqs, 2),
					       "auth")));
	json_decref(reqs);
}

Test(fake_botframework, expired_token_is_refused)
{
	fb_set_token_ttl(f, 1);
	char *tok = bearer();
	sleep(2);
	resp r = send_to(CONV, tok, NULL);
	cr_assert_eq(r.status, 401);
	resp_free(&r);
	free(tok);
}

Test(fake_botframework, send_reply_update_and_records)
{
	char *tok = bearer();
	char *p = acts_path(CONV, NULL);
	cr_assert(strstr(p, "19%3Afbteam0incidents%40thread.tacv2%3Bmessageid%3D"),
		  "%s", p);
	free(p);
	resp r = send_to(CONV, tok,
			 "{\"type\":\"message\",\"attachments\":[{"
			 "\"contentType\":\"application/vnd.microsoft.card."
			 "adaptive\",\"content\":{\"type\":\"AdaptiveCard\"}}]}");
	cr_assert_eq(r.status, 201);
	char *id = strdup(jstr(r.json, "id"));
	resp_free(&r);
	/* reply in the thread */
	p = acts_path(CONV, id);
	r = http("POST", p, tok, NULL, "{\"type\":\"message\",\"text\":\"re\"}");
	cr_assert_eq(r.status, 201);
	cr_assert_str_neq(jstr(r.json, "id"), id);
	resp_free(&r);
	/* update */
	r = http("PUT", p, tok, NULL, "{\"type\":\"message\",\"text\":\"v2\"}");
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(jstr(r.json, "id"), id);
	resp_free(&r);
	free(p);
	/* update of an activity it never made */
	p = acts_path(CONV, "999");
	r = http("PUT", p, tok, NULL, "{\"type\":\"message\"}");
	cr_assert_eq(r.status, 404);
	cr_assert_str_eq(err_code(&r), "ActivityNotFound");
	resp_free(&r);
	free(p);
	/* not JSON */
	r = send_to(CONV, tok, "not json");
	cr_assert_eq(r.status, 400);
	cr_assert_str_eq(err_code(&r), "BadArgument");
	resp_free(&r);

	json_t *msgs = fb_messages(f);
	cr_assert_eq(json_array_size(msgs), 3);
	json_t *m0 = json_array_get(msgs, 0), *m1 = json_array_get(msgs, 1),
	       *m2 = json_array_get(msgs, 2);
	cr_assert_str_eq(jstr(m0, "op"), "send");
	cr_assert_str_eq(jstr(m0, "conversation"), CONV);
	cr_assert_str_eq(
	    jstr(json_array_get(json_object_get(json_object_get(m0, "activity"),
						"attachments"),
				0),
		 "contentType"),
	    "application/vnd.microsoft.card.adaptive");
	cr_assert_str_eq(jstr(m1, "op"), "reply");
	cr_assert_str_eq(jstr(m1, "reply_to"), id);
	cr_assert_str_eq(jstr(m2, "op"), "update");
	cr_assert_str_eq(jstr(json_object_get(m2, "activity"), "text"), "v2");
	json_decref(msgs);
	json_t *reqs = fb_requests(f);
	json_t *last = json_array_get(reqs, json_array_size(reqs) - 1);
	cr_assert_str_eq(jstr(last, "kind"), "connector");
	cr_assert_str_eq(jstr(last, "conversation"), CONV, "decoded");
	cr_assert_eq(json_integer_value(json_object_get(last, "status")), 400);
	cr_assert_str_eq(jstr(last, "code"), "BadArgument");
	json_decref(reqs);
	free(id);
	free(tok);
}

Test(fake_botframework, create_conversation_and_list_channels)
{
	char *tok = bearer();
	char body[512];
	snprintf(body, sizeof(body),
		 "{\"isGroup\":true,\"bot\":{\"id\":\"28:%s\"},\"tenantId\":"
		 "\"%s\",\"channelData\":{\"channel\":{\"id\":\"%s\"}},"
		 "\"activity\":{\"type\":\"message\",\"text\":\"INC-1\"}}",
		 fb_app_id(f), fb_tenant(f), FB_CHANNEL_ID);
	resp r = http("POST", "/teams/v3/conversations", tok, NULL, body);
	cr_assert_eq(r.status, 201, "%s", r.body);
	const char *aid = jstr(r.json, "activityId");
	char want[256];
	snprintf(want, sizeof(want), "%s;messageid=%s", FB_CHANNEL_ID, aid);
	cr_assert_str_eq(jstr(r.json, "id"), want);
	resp_free(&r);
	json_t *msgs = fb_messages(f);
	cr_assert_str_eq(jstr(json_array_get(msgs, 0), "op"), "create");
	json_decref(msgs);

	fb_add_channel(f, FB_TEAM_ID, NULL, "19:new@thread.tacv2", "Postmortems");
	r = http("GET", "/teams/v3/teams/19%3Afbteam0general%40thread.tacv2/conversations",
		 tok, NULL, NULL);
	cr_assert_eq(r.status, 200, "%s", r.body);
	json_t *cs = json_object_get(r.json, "conversations");
	cr_assert_eq(json_array_size(cs), 3);
	cr_assert_str_eq(jstr(json_array_get(cs, 1), "name"), "Incidents");
	cr_assert_str_eq(jstr(json_array_get(cs, 2), "id"),
			 "19:new@thread.tacv2");
	resp_free(&r);
	r = http("GET", "/teams/v3/teams/19%3Aother%40thread.tacv2/conversations",
		 tok, NULL, NULL);
	cr_assert_eq(r.status, 403);
	cr_assert_str_eq(err_code(&r), "BotNotInConversationRoster");
	resp_free(&r);
	free(tok);
}

Test(fake_botframework, failure_modes_per_conversation)
{
	char *tok = bearer();
	struct {
		int status;
		const char *code, *want;
	} cases[] = {
	    {403, "BotNotInConversationRoster", "BotNotInConversationRoster"},
	    {403, "ConversationBlockedByUser", "ConversationBlockedByUser"},
	    {403, "BotDisabledByAdmin", "BotDisabledByAdmin"},
	    {404, NULL, "ConversationNotFound"},
	    {412, NULL, "PreconditionFailed"},
	    {413, NULL, "MessageSizeTooBig"},
	    {502, NULL, "BadGateway"},
	    {504, NULL, "GatewayTimeout"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fb_fail(f, CONV, 1, cases[i].status, cases[i].code, 0);
		resp r = send_to(CONV, tok, NULL);
		cr_assert_eq(r.status, cases[i].status, "case %zu", i);
		cr_assert_str_eq(err_code(&r), cases[i].want);
		cr_assert(jstr(json_object_get(r.json, "error"), "message"));
		resp_free(&r);
		r = send_to(CONV, tok, NULL);
		cr_assert_eq(r.status, 201, "only once (case %zu)", i);
		resp_free(&r);
		usleep(300000); /* stay under the bucket */
	}
	free(tok);
}

Test(fake_botframework, failure_counts_scope_and_retry_after)
{
	fb_set_rate(f, 0, 1000);
	char *tok = bearer();
	/* the channel part covers its threads; other channels go through */
	fb_fail(f, FB_CHANNEL_ID, 2, 429, NULL, 7);
	resp r = send_to(CONV, tok, NULL);
	cr_assert_eq(r.status, 429);
	cr_assert_str_eq(err_code(&r), "Throttled");
	cr_assert_eq(r.retry_after, 7);
	resp_free(&r);
	r = send_to(FB_TEAM_ID, tok, NULL);
	cr_assert_eq(r.status, 201, "another conversation");
	resp_free(&r);
	r = send_to(FB_CHANNEL_ID ";messageid=5", tok, NULL);
	cr_assert_eq(r.status, 429, "second of two");
	resp_free(&r);
	r = send_to(CONV, tok, NULL);
	cr_assert_eq(r.status, 201, "used up");
	resp_free(&r);
	/* until cleared */
	fb_fail(f, NULL, -1, 503, "ServiceError", 0);
	for (int i = 0; i < 3; i++) {
		r = send_to(FB_TEAM_ID, tok, NULL);
		cr_assert_eq(r.status, 503);
		resp_free(&r);
	}
	fb_fail(f, NULL, 0, 0, NULL, 0);
	r = send_to(FB_TEAM_ID, tok, NULL);
	cr_assert_eq(r.status, 201, "cleared");
	resp_free(&r);
	free(tok);
}

Test(fake_botframework, bodies_over_100_kib_are_413)
{
	fb_set_rate(f, 0, 1000);
	char *tok = bearer();
	size_t n = FB_MAX_BODY + 1;
	char *big = malloc(n + 1);
	const char *head = "{\"type\":\"message\",\"text\":\"";
	memset(big, 'x', n);
	memcpy(big, head, strlen(head));
	memcpy(big + n - 2, "\"}", 2);
	big[n] = '\0';
	cr_assert_eq(strlen(big), FB_MAX_BODY + 1);
	resp r = send_to(CONV, tok, big);
	cr_assert_eq(r.status, 413);
	cr_assert_str_eq(err_code(&r), "MessageSizeTooBig");
	resp_free(&r);
	/* exactly at the limit goes through */
	memcpy(big + n - 3, "\"}", 3);
	cr_assert_eq(strlen(big), FB_MAX_BODY);
	r = send_to(CONV, tok, big);
	cr_assert_eq(r.status, 201, "%s", r.body);
	resp_free(&r);
	free(big);
	free(tok);
}

Test(fake_botframework, bucket_throttles_a_conversation)
{
	char *tok = bearer();
	int ok = 0, throttled = 0, first_429 = -1, ra = 0;
	for (int i = 0; i < 10; i++) {
		resp r = send_to(CONV, tok, NULL);
		if (r.status == 201)
			ok++;
		if (r.status == 429) {
			throttled++;
			if (first_429 < 0) {
				first_429 = i;
				ra = r.retry_after;
				cr_assert_str_eq(err_code(&r), "Throttled");
			}
		}
		resp_free(&r);
	}
	cr_assert_geq(first_429, 7, "the first 7 pass (7/1 s)");
	cr_assert_geq(throttled, 1);
	cr_assert_eq(ok + throttled, 10);
	cr_assert_geq(ra, 1, "Retry-After in seconds");
	resp r = send_to(FB_TEAM_ID, tok, NULL);
	cr_assert_eq(r.status, 201, "per conversation");
	resp_free(&r);
	/* a slow bucket: 2 per minute */
	fb_set_rate(f, 2, 60000);
	for (int i = 0; i < 2; i++) {
		r = send_to(CONV, tok, NULL);
		cr_assert_eq(r.status, 201);
		resp_free(&r);
	}
	r = send_to(CONV, tok, NULL);
	cr_assert_eq(r.status, 429);
	cr_assert_geq(r.retry_after, 25, "about 30 s: %d", r.retry_after);
	cr_assert_leq(r.retry_after, 30);
	resp_free(&r);
	json_t *reqs = fb_requests(f);
	json_t *last = json_array_get(reqs, json_array_size(reqs) - 1);
	cr_assert_eq(json_integer_value(json_object_get(last, "retry_after")),
		     r.retry_after);
	json_decref(reqs);
	free(tok);
}

Test(fake_botframework, control_endpoints)
{
	resp r = http("GET", "/_sign?text=status&break=alg_none", NULL, NULL,
		      NULL);
	cr_assert_eq(r.status, 200, "%s", r.body);
	json_t *h = jwt_part(jstr(r.json, "token"), 0);
	cr_assert_str_eq(jstr(h, "alg"), "none");
	json_decref(h);
	cr_assert(!strncmp(jstr(r.json, "authorization"), "Bearer ", 7));
	cr_assert_str_eq(jstr(json_object_get(r.json, "activity"), "text"),
			 "<at>im</at> status");
	resp_free(&r);
	r = http("GET", "/_sign?break=bogus", NULL, NULL, NULL);
	cr_assert_eq(r.status, 400);
	resp_free(&r);
	r = http("POST", "/_mode?conversation=" FB_TEAM_ID
			 "&status=403&code=BotDisabledByAdmin&times=1",
		 NULL, NULL, "");
	cr_assert_eq(r.status, 200);
	resp_free(&r);
	char *tok = bearer();
	r = send_to(FB_TEAM_ID, tok, NULL);
	cr_assert_eq(r.status, 403);
	cr_assert_str_eq(err_code(&r), "BotDisabledByAdmin");
	resp_free(&r);
	r = send_to(FB_TEAM_ID, tok, NULL);
	cr_assert_eq(r.status, 201);
	resp_free(&r);
	r = http("GET", "/_stats", NULL, NULL, NULL);
	cr_assert_eq(json_integer_value(json_object_get(r.json, "messages")), 1);
	cr_assert_eq(json_integer_value(json_object_get(r.json, "token")), 1);
	cr_assert_eq(json_integer_value(json_object_get(r.json, "connector")),
		     2);
	resp_free(&r);
	r = http("GET", "/_messages", NULL, NULL, NULL);
	cr_assert_eq(json_array_size(r.json), 1);
	resp_free(&r);
	r = http("POST", "/_reset", NULL, NULL, "");
	cr_assert_eq(r.status, 200);
	resp_free(&r);
	json_t *st = fb_stats(f);
	cr_assert_eq(json_integer_value(json_object_get(st, "messages")), 0);
	cr_assert_eq(json_integer_value(json_object_get(st, "token")), 0);
	json_decref(st);
	free(tok);
}

Test(fake_botframework, unknown_paths_are_404)
{
	resp r = http("GET", "/v2/whatever", NULL, NULL, NULL);
	cr_assert_eq(r.status, 404);
	resp_free(&r);
	char *tok = bearer();
	r = http("POST", "/teams/v3/bogus", tok, NULL, "{}");
	cr_assert_eq(r.status, 404);
	resp_free(&r);
	free(tok);
}

Test(fake_botframework, conversation_ids_are_decoded_once)
{
	char *tok = bearer();
	/* a literal '%' in an id: encoded once by the client, decoded once */
	const char *odd = "a:odd%41id@thread.tacv2;messageid=3";
	resp r = send_to(odd, tok, NULL);
	cr_assert_eq(r.status, 201);
	resp_free(&r);
	json_t *msgs = fb_messages(f);
	cr_assert_str_eq(jstr(json_array_get(msgs, 0), "conversation"), odd);
	json_decref(msgs);
	free(tok);
}
