/* The fake Discord checked on its own, over HTTP with libcurl and with
 * libsodium verifying its signatures, before the Discord connector's
 * tests lean on it. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <sodium.h>

#include "fake_discord.h"

static fd *f;

static void setup(void)
{
	f = fd_start(NULL);
	cr_assert(f, "the fake starts");
}

static void teardown(void)
{
	fd_stop(f);
	f = NULL;
}

TestSuite(fake_discord, .init = setup, .fini = teardown, .timeout = 60);

/* --- HTTP --------------------------------------------------------------- */

typedef struct resp {
	long status;
	char *body;
	size_t len;
	json_t *json;
	json_t *h; /* {lowercase header name: value} */
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
	size_t len = sz * n;
	const char *colon = memchr(p, ':', len);
	if (colon) {
		char name[64];
		size_t nl = (size_t)(colon - p);
		if (nl < sizeof(name)) {
			for (size_t i = 0; i < nl; i++)
				name[i] = (char)(p[i] | 0x20);
			name[nl] = '\0';
			const char *v = colon + 1;
			while (v < p + len && *v == ' ')
				v++;
			size_t vl = (size_t)(p + len - v);
			while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
				vl--;
			json_object_set_new(r->h, name, json_stringn(v, vl));
		}
	}
	return len;
}

/* method on url; auth NULL = no Authorization header; body NULL = none;
 * extra: one more header or NULL. */
static resp http_at(const char *method, const char *url, const char *auth,
		    const char *body, size_t len, const char *extra)
{
	resp r = {.h = json_object()};
	CURL *c = curl_easy_init();
	cr_assert(c);
	char ah[512];
	struct curl_slist *h = curl_slist_append(NULL, "Expect:");
	h = curl_slist_append(h, "User-Agent: DiscordBot (https://im.test, "
				 "0.1)");
	if (auth) {
		snprintf(ah, sizeof(ah), "Authorization: %s", auth);
		h = curl_slist_append(h, ah);
	}
	if (extra)
		h = curl_slist_append(h, extra);
	if (body) {
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
	}
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

#define BOT "Bot " FD_BOT_TOKEN

/* method on the API (path after /api/v10) with the bot token. */
static resp api(const char *method, const char *path, const char *body)
{
	char url[1024];
	snprintf(url, sizeof(url), "%s%s", fd_api_url(f), path);
	return http_at(method, url, BOT, body, body ? strlen(body) : 0, NULL);
}

/* The same without an Authorization header (webhooks, callbacks). */
static resp hook(const char *method, const char *path, const char *body)
{
	char url[1024];
	snprintf(url, sizeof(url), "%s%s", fd_api_url(f), path);
	return http_at(method, url, NULL, body, body ? strlen(body) : 0, NULL);
}

/* A control endpoint on the base URL. */
static resp ctl(const char *method, const char *path)
{
	char url[1024];
	snprintf(url, sizeof(url), "%s%s", fd_url(f), path);
	return http_at(method, url, NULL, NULL, 0, NULL);
}

static void resp_free(resp *r)
{
	free(r->body);
	json_decref(r->json);
	json_decref(r->h);
}

static const char *jstr(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static long long jint(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static const char *hdr(const resp *r, const char *name)
{
	return jstr(r->h, name);
}

static long long code(const resp *r)
{
	const json_t *c = json_object_get(r->json, "code");
	cr_assert(json_is_integer(c), "a Discord code in %s", r->body);
	return (long long)json_integer_value(c);
}

/* The first _errors code at a dotted path under "errors" ("" = root). */
static const char *err_at(const resp *r, const char *path)
{
	const json_t *o = json_object_get(r->json, "errors");
	char buf[256], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *t = strtok_r(buf, ".", &save); t && o;
	     t = strtok_r(NULL, ".", &save))
		o = json_object_get(o, t);
	return jstr(json_array_get(json_object_get(o, "_errors"), 0), "code");
}

/* An invalid form body answer with the error `ecode` at `path`. */
static void assert_form(const resp *r, const char *path, const char *ecode)
{
	cr_assert_eq(r->status, 400, "%s", r->body);
	cr_assert_eq(code(r), 50035, "%s", r->body);
	cr_assert_str_eq(jstr(r->json, "message"), "Invalid Form Body");
	const char *c = err_at(r, path);
	cr_assert(c, "an error at %s in %s", path, r->body);
	cr_assert_str_eq(c, ecode, "at %s in %s", path, r->body);
}

static void assert_error(const resp *r, long status, long long c,
			 const char *message)
{
	cr_assert_eq(r->status, status, "%s", r->body);
	cr_assert_eq(code(r), c, "%s", r->body);
	cr_assert_str_eq(jstr(r->json, "message"), message);
}

static json_t *stats(void)
{
	json_t *s = fd_stats(f);
	cr_assert(s);
	return s;
}

static long long stat_of(const char *k)
{
	json_t *s = stats();
	long long v = jint(s, k);
	json_decref(s);
	return v;
}

#define MSGS "/channels/" FD_CHANNEL_ID "/messages"
#define MSGS2 "/channels/" FD_CHANNEL2_ID "/messages"

static resp post(const char *path, const char *body)
{
	return api("POST", path, body);
}

/* Posts {"content":text} to the incidents channel; the new id. */
static void post_ok(const char *text, char id[32])
{
	char body[256];
	snprintf(body, sizeof(body), "{\"content\":\"%s\"}", text);
	resp r = post(MSGS, body);
	cr_assert_eq(r.status, 200, "%s", r.body);
	snprintf(id, 32, "%s", jstr(r.json, "id"));
	resp_free(&r);
}

/* No bucket in the way (tests that are not about them). */
static void no_limits(void)
{
	fd_set_limits(f, 100000, 1000, 100000);
}

/* A string of n copies of s (new). */
static char *rep(const char *s, size_t n)
{
	size_t l = strlen(s);
	char *o = malloc(l * n + 1);
	cr_assert(o);
	for (size_t i = 0; i < n; i++)
		memcpy(o + i * l, s, l);
	o[l * n] = '\0';
	return o;
}

/* --- authentication and identity ---------------------------------------- */

Test(fake_discord, rest_needs_the_bot_token_and_401_has_no_bucket)
{
	char url[256];
	snprintf(url, sizeof(url), "%s/users/@me", fd_api_url(f));
	const char *bad[] = {NULL, "Bot wrong-token", "Bearer " FD_BOT_TOKEN,
			     FD_BOT_TOKEN};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		resp r = http_at("GET", url, bad[i], NULL, 0, NULL);
		assert_error(&r, 401, 0, "401: Unauthorized");
		cr_assert_null(hdr(&r, "x-ratelimit-limit"), "case %zu", i);
		cr_assert_str_eq(hdr(&r, "content-type"), "application/json");
		resp_free(&r);
	}
	resp r = api("GET", "/users/@me", NULL);
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_str_eq(jstr(r.json, "id"), FD_BOT_ID);
	cr_assert_str_eq(jstr(r.json, "username"), "im-bot");
	cr_assert_str_eq(jstr(r.json, "discriminator"), "0");
	cr_assert(json_is_true(json_object_get(r.json, "bot")));
	cr_assert(json_is_null(json_object_get(r.json, "global_name")));
	resp_free(&r);
	fd_revoke_token(f);
	r = api("GET", "/users/@me", NULL);
	assert_error(&r, 401, 0, "401: Unauthorized");
	resp_free(&r);
	r = post(MSGS, "{\"content\":\"x\"}");
	cr_assert_eq(r.status, 401, "revoked everywhere");
	resp_free(&r);
	cr_assert_eq(stat_of("auth_failures"), 6);
	cr_assert_eq(stat_of("invalid"), 6);
	cr_assert_eq(stat_of("invalid_10min"), 6);
	json_t *reqs = fd_requests(f);
	cr_assert_eq(json_array_size(reqs), 7);
	cr_assert(json_is_false(json_object_get(json_array_get(reqs, 0),
						"auth")));
	cr_assert(json_is_true(json_object_get(json_array_get(reqs, 4),
					       "auth")));
	json_decref(reqs);
}

Test(fake_discord, identity_gateway_and_guild_endpoints)
{
	resp r = api("GET", "/applications/@me", NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(jstr(r.json, "id"), FD_APP_ID);
	cr_assert_str_eq(jstr(r.json, "name"), "im");
	cr_assert(json_is_false(json_object_get(r.json, "bot_public")));
	cr_assert_eq(jint(r.json, "flags"), 0);
	resp_free(&r);

	r = api("GET", "/gateway/bot", NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(jstr(r.json, "url"), "ws://127.0.0.1:9");
	cr_assert_eq(jint(r.json, "shards"), 1);
	json_t *ssl = json_object_get(r.json, "session_start_limit");
	cr_assert_eq(jint(ssl, "total"), 1000);
	cr_assert_eq(jint(ssl, "remaining"), 1000);
	cr_assert_eq(jint(ssl, "reset_after"), 86400000);
	cr_assert_eq(jint(ssl, "max_concurrency"), 1);
	resp_free(&r);
	fd_set_gateway_url(f, "ws://127.0.0.1:4444");
	fd_set_session_remaining(f, 3);
	r = api("GET", "/gateway/bot", NULL);
	cr_assert_str_eq(jstr(r.json, "url"), "ws://127.0.0.1:4444");
	cr_assert_eq(jint(json_object_get(r.json, "session_start_limit"),
			  "remaining"),
		     3);
	resp_free(&r);

	r = api("GET", "/users/@me/guilds", NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(json_array_size(r.json), 1);
	cr_assert_str_eq(jstr(json_array_get(r.json, 0), "id"), FD_GUILD_ID);
	cr_assert_str_eq(jstr(json_array_get(r.json, 0), "name"),
			 "Contoso Ops");
	resp_free(&r);

	fd_add_channel(f, FD_GUILD_ID, "1300000000000000009", "ops-war-room");
	r = api("GET", "/guilds/" FD_GUILD_ID "/channels", NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(json_array_size(r.json), 3);
	const char *want[][2] = {{FD_CHANNEL_ID, "incidents"},
				 {FD_CHANNEL2_ID, "general"},
				 {"1300000000000000009", "ops-war-room"}};
	for (size_t i = 0; i < 3; i++) {
		json_t *c = json_array_get(r.json, i);
		cr_assert_str_eq(jstr(c, "id"), want[i][0]);
		cr_assert_str_eq(jstr(c, "name"), want[i][1]);
		cr_assert_str_eq(jstr(c, "guild_id"), FD_GUILD_ID);
		cr_assert_eq(jint(c, "type"), 0);
	}
	resp_free(&r);
	r = api("GET", "/guilds/1299999999999999999/channels", NULL);
	assert_error(&r, 404, 10004, "Unknown Guild");
	resp_free(&r);

	r = api("GET", "/channels/" FD_CHANNEL_ID, NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(jstr(r.json, "name"), "incidents");
	resp_free(&r);
	r = api("GET", "/channels/1399999999999999999", NULL);
	assert_error(&r, 404, 10003, "Unknown Channel");
	resp_free(&r);
}

Test(fake_discord, unknown_routes_are_404_and_wrong_methods_405)
{
	resp r = api("GET", "/nothing/here", NULL);
	assert_error(&r, 404, 0, "404: Not Found");
	cr_assert(hdr(&r, "x-ratelimit-bucket"), "a bucket even so");
	resp_free(&r);
	r = api("DELETE", "/users/@me", NULL);
	assert_error(&r, 405, 0, "405: Method Not Allowed");
	resp_free(&r);
	r = ctl("GET", "/api/v9/users/@me");
	cr_assert_eq(r.status, 404);
	resp_free(&r);
}

/* --- signatures and interactions ---------------------------------------- */

static bool verifies(const char *ts, const char *sig, const char *body,
		     size_t len)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], s[crypto_sign_BYTES];
	size_t n = 0;
	cr_assert_eq(sodium_hex2bin(pk, sizeof(pk), fd_public_key_hex(f), 64,
				    NULL, &n, NULL),
		     0);
	cr_assert_eq(n, sizeof(pk));
	if (strlen(sig) != 128 ||
	    sodium_hex2bin(s, sizeof(s), sig, 128, NULL, &n, NULL) ||
	    n != sizeof(s))
		return false;
	size_t tl = strlen(ts);
	unsigned char *m = malloc(tl + len);
	memcpy(m, ts, tl);
	memcpy(m + tl, body, len);
	bool ok = crypto_sign_verify_detached(s, m, tl + len, pk) == 0;
	free(m);
	return ok;
}

Test(fake_discord, signatures_are_ed25519_over_timestamp_and_body)
{
	cr_assert_eq(sodium_init() < 0, 0);
	const char *pk = fd_public_key_hex(f);
	cr_assert_eq(strlen(pk), 64);
	cr_assert_eq(strspn(pk, "0123456789abcdef"), 64);
	const char *body = "{\"type\":1,\"id\":\"123\"}";
	size_t len = strlen(body);
	char ts[24], sig[130];
	long long now = (long long)time(NULL);

	fd_sign(f, body, len, FD_SIG_VALID, ts, sig);
	cr_assert_eq(strlen(sig), 128);
	cr_assert_eq(strspn(sig, "0123456789abcdef"), 128);
	cr_assert_leq(llabs(atoll(ts) - now), 2);
	cr_assert(verifies(ts, sig, body, len));
	cr_assert_not(verifies(ts, sig, "{}", 2), "only that body");

	fd_sign(f, body, len, FD_SIG_FORGED, ts, sig);
	cr_assert_eq(strlen(sig), 128);
	cr_assert_not(verifies(ts, sig, body, len), "another key");

	fd_sign(f, body, len, FD_SIG_TAMPERED, ts, sig);
	cr_assert_not(verifies(ts, sig, body, len), "another body");

	fd_sign(f, body, len, FD_SIG_STALE, ts, sig);
	cr_assert(verifies(ts, sig, body, len), "stale but well signed");
	cr_assert_geq(now - atoll(ts), 599);
	cr_assert_leq(now - atoll(ts), 602);

	fd_sign(f, body, len, FD_SIG_MISSING, ts, sig);
	cr_assert_str_eq(ts, "");
	cr_assert_str_eq(sig, "");

	fd_sign(f, body, len, FD_SIG_GARBAGE, ts, sig);
	cr_assert_eq(strlen(sig), 128);
	cr_assert_neq(strspn(sig, "0123456789abcdef"), 128, "not hex");
	cr_assert_not(verifies(ts, sig, body, len));
}

Test(fake_discord, interactions_look_like_discords)
{
	char id[64], tok[64];
	const char *data = "{\"id\":\"1\",\"name\":\"incident\",\"type\":1,"
			   "\"options\":[{\"type\":1,\"name\":\"declare\","
			   "\"options\":[{\"type\":3,\"name\":\"title\","
			   "\"value\":\"Payments down\"}]}]}";
	fd_inter more = {.roles = "3100000000000000001,3100000000000000002",
			 .user_name = "bob", .user_id = "2100000000000000002"};
	char *s = fd_interaction(f, 2, data, &more, id, tok);
	cr_assert(s);
	json_t *j = json_loads(s, 0, NULL);
	cr_assert(j);
	cr_assert_str_eq(jstr(j, "id"), id);
	cr_assert_str_eq(jstr(j, "token"), tok);
	cr_assert_geq(strlen(tok), 40);
	cr_assert_str_eq(jstr(j, "application_id"), FD_APP_ID);
	cr_assert_eq(jint(j, "type"), 2);
	cr_assert_eq(jint(j, "version"), 1);
	cr_assert_str_eq(jstr(j, "guild_id"), FD_GUILD_ID);
	cr_assert_str_eq(jstr(j, "channel_id"), FD_CHANNEL_ID);
	json_t *ch = json_object_get(j, "channel");
	cr_assert_str_eq(jstr(ch, "id"), FD_CHANNEL_ID);
	cr_assert_eq(jint(ch, "type"), 0);
	json_t *mem = json_object_get(j, "member");
	json_t *user = json_object_get(mem, "user");
	cr_assert_str_eq(jstr(user, "id"), "2100000000000000002");
	cr_assert_str_eq(jstr(user, "username"), "bob");
	cr_assert_str_eq(jstr(user, "global_name"), "bob");
	json_t *roles = json_object_get(mem, "roles");
	cr_assert_eq(json_array_size(roles), 2);
	cr_assert_str_eq(json_string_value(json_array_get(roles, 1)),
			 "3100000000000000002");
	cr_assert(jstr(j, "app_permissions"));
	json_t *want = json_loads(data, 0, NULL);
	cr_assert(json_equal(json_object_get(j, "data"), want));
	json_decref(want);
	json_decref(j);
	free(s);

	/* ids are snowflakes, increasing; tokens differ */
	char id2[64], tok2[64];
	s = fd_interaction(f, 1, NULL, NULL, id2, tok2);
	j = json_loads(s, 0, NULL);
	cr_assert_gt(strtoull(id2, NULL, 10), strtoull(id, NULL, 10));
	cr_assert_str_neq(tok, tok2);
	cr_assert_eq(jint(j, "type"), 1);
	cr_assert_null(json_object_get(j, "member"), "a PING has no member");
	cr_assert_null(json_object_get(j, "data"));
	json_decref(j);
	free(s);

	/* a button on a message the fake posted */
	no_limits();
	char mid[32];
	post_ok("incident INC-1", mid);
	s = fd_interaction(f, 3,
			   "{\"custom_id\":\"im_ack:INC-1\","
			   "\"component_type\":2}",
			   NULL, NULL, NULL);
	j = json_loads(s, 0, NULL);
	json_t *msg = json_object_get(j, "message");
	cr_assert_str_eq(jstr(msg, "id"), mid, "the last message by default");
	cr_assert_str_eq(jstr(msg, "content"), "incident INC-1");
	cr_assert_str_eq(jstr(json_object_get(j, "data"), "custom_id"),
			 "im_ack:INC-1");
	json_decref(j);
	free(s);
	fd_inter on = {.message_id = "1400000000000000042"};
	s = fd_interaction(f, 3, "{\"custom_id\":\"x\",\"component_type\":2}",
			   &on, NULL, NULL);
	j = json_loads(s, 0, NULL);
	cr_assert_str_eq(jstr(json_object_get(j, "message"), "id"),
			 "1400000000000000042");
	json_decref(j);
	free(s);
	cr_assert_null(fd_interaction(f, 2, "{not json", NULL, NULL, NULL));
}

/* A minimal interactions endpoint, as an app has one: checks the
 * signature (and that the timestamp is fresh) with the public key, then
 * answers a PING with type 1 and anything else per `mode`. */
typedef struct app {
	struct MHD_Daemon *d;
	char url[64];
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	int mode; /* 0: type 4 "ok"; 1: 202 without a body */
	pthread_mutex_t mu;
	char ua[128];
	int rejected;
} app;

typedef struct app_conn {
	char *b;
	size_t n;
} app_conn;

static bool app_verify(app *a, struct MHD_Connection *c, const char *b,
		       size_t n)
{
	const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						      "X-Signature-Ed25519");
	const char *ts = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     "X-Signature-Timestamp");
	unsigned char s[crypto_sign_BYTES];
	size_t sl = 0;
	if (!sig || !ts || strlen(sig) != 128 ||
	    sodium_hex2bin(s, sizeof(s), sig, 128, NULL, &sl, NULL) ||
	    sl != sizeof(s) || llabs(atoll(ts) - (long long)time(NULL)) > 5)
		return false;
	size_t tl = strlen(ts);
	unsigned char *m = malloc(tl + n + 1);
	memcpy(m, ts, tl);
	memcpy(m + tl, b, n);
	bool ok = crypto_sign_verify_detached(s, m, tl + n, a->pk) == 0;
	free(m);
	return ok;
}

static enum MHD_Result app_handle(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	app *a = cls;
	app_conn *ac = *con_cls;
	if (!ac) {
		*con_cls = calloc(1, sizeof(app_conn));
		return MHD_YES;
	}
	if (*upload_size) {
		ac->b = realloc(ac->b, ac->n + *upload_size + 1);
		memcpy(ac->b + ac->n, upload, *upload_size);
		ac->n += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	const char *ua =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
	bool ok = app_verify(a, c, ac->b ? ac->b : "", ac->n);
	json_t *in = ok ? json_loadb(ac->b, ac->n, 0, NULL) : NULL;
	pthread_mutex_lock(&a->mu);
	snprintf(a->ua, sizeof(a->ua), "%s", ua ? ua : "");
	a->rejected += !ok;
	int mode = a->mode;
	pthread_mutex_unlock(&a->mu);
	const char *out = "{\"error\":\"invalid request signature\"}";
	unsigned status = 401;
	if (ok && jint(in, "type") == 1) {
		out = "{\"type\":1}";
		status = 200;
	} else if (ok && mode == 0) {
		out = "{\"type\":4,\"data\":{\"content\":\"ok\","
		      "\"allowed_mentions\":{\"parse\":[]}}}";
		status = 200;
	} else if (ok) {
		out = "";
		status = 202;
	}
	json_decref(in);
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    strlen(out), (void *)out, MHD_RESPMEM_MUST_COPY);
	if (*out)
		MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static void app_done(void *cls, struct MHD_Connection *c, void **con_cls,
		     enum MHD_RequestTerminationCode toe)
{
	app_conn *ac = *con_cls;
	if (ac)
		free(ac->b);
	free(ac);
	*con_cls = NULL;
}

static void app_start(app *a, int mode)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->mu, NULL);
	a->mode = mode;
	size_t n = 0;
	cr_assert_eq(sodium_hex2bin(a->pk, sizeof(a->pk), fd_public_key_hex(f),
				    64, NULL, &n, NULL),
		     0);
	a->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
				    MHD_USE_THREAD_PER_CONNECTION,
				0, NULL, NULL, app_handle, a,
				MHD_OPTION_NOTIFY_COMPLETED, app_done, a,
				MHD_OPTION_END);
	cr_assert(a->d);
	const union MHD_DaemonInfo *di =
	    MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(a->url, sizeof(a->url), "http://127.0.0.1:%u/interactions",
		 di->port);
}

static void app_stop(app *a)
{
	MHD_stop_daemon(a->d);
	pthread_mutex_destroy(&a->mu);
}

/* POST /interactions/{id}/{token}/callback */
static resp callback(const char *id, const char *tok, const char *body)
{
	char p[256];
	snprintf(p, sizeof(p), "/interactions/%s/%s/callback", id, tok);
	return hook("POST", p, body);
}

static resp original(const char *method, const char *tok, const char *body)
{
	char p[256];
	snprintf(p, sizeof(p), "/webhooks/%s/%s/messages/@original", FD_APP_ID,
		 tok);
	return hook(method, p, body);
}

static resp followup(const char *app_id, const char *tok, const char *body)
{
	char p[256];
	snprintf(p, sizeof(p), "/webhooks/%s/%s", app_id, tok);
	return hook("POST", p, body);
}

Test(fake_discord, post_interaction_signs_and_records_the_answer)
{
	app a;
	app_start(&a, 0);
	const fd_sig bad[] = {FD_SIG_FORGED, FD_SIG_TAMPERED, FD_SIG_STALE,
			      FD_SIG_MISSING, FD_SIG_GARBAGE};
	char id[64], tok[64];
	char *body = fd_interaction(f, 2, "{\"name\":\"incident\",\"type\":1}",
				    NULL, id, tok);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *out = NULL;
		int st = fd_post_interaction(f, a.url, body, strlen(body),
					     bad[i], &out);
		cr_assert_eq(st, 401, "kind %d answered %d %s", (int)bad[i],
			     st, out);
		free(out);
	}
	cr_assert_eq(a.rejected, 5, "the app saw all five refused");
	/* still not acknowledged: no @original */
	resp r = original("GET", tok, NULL);
	assert_error(&r, 404, 10008, "Unknown Message");
	resp_free(&r);

	char *out = NULL;
	int st = fd_post_interaction(f, a.url, body, strlen(body),
				     FD_SIG_VALID, &out);
	cr_assert_eq(st, 200, "%s", out);
	cr_assert_str_eq(a.ua,
			 "Discord-Interactions/1.0 (+https://discord.com)");
	json_t *ans = json_loads(out, 0, NULL);
	cr_assert_eq(jint(ans, "type"), 4);
	json_decref(ans);
	free(out);
	json_t *all = fd_interaction_answers(f);
	cr_assert_eq(json_array_size(all), 6);
	json_t *last = json_array_get(all, 5);
	cr_assert_str_eq(jstr(last, "id"), id);
	cr_assert_str_eq(jstr(last, "token"), tok);
	cr_assert_str_eq(jstr(last, "via"), "http");
	cr_assert_eq(jint(last, "status"), 200);
	cr_assert(json_is_true(json_object_get(last, "first")));
	cr_assert_eq(jint(json_object_get(last, "answer"), "type"), 4);
	cr_assert_eq(jint(json_array_get(all, 0), "status"), 401);
	cr_assert(json_is_false(json_object_get(json_array_get(all, 0),
						"first")));
	json_decref(all);

	/* answered over HTTP: a callback now is a second acknowledgement */
	r = callback(id, tok, "{\"type\":4,\"data\":{\"content\":\"again\"}}");
	assert_error(&r, 400, 40060,
		     "Interaction has already been acknowledged.");
	resp_free(&r);
	r = original("GET", tok, NULL);
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_str_eq(jstr(r.json, "content"), "ok");
	cr_assert_str_eq(jstr(r.json, "channel_id"), FD_CHANNEL_ID);
	resp_free(&r);
	free(body);

	/* a PING answered with type 1 is acknowledged too */
	body = fd_interaction(f, 1, NULL, NULL, id, tok);
	st = fd_post_interaction(f, a.url, body, strlen(body), FD_SIG_VALID,
				 NULL);
	cr_assert_eq(st, 200);
	r = callback(id, tok, "{\"type\":1}");
	cr_assert_eq(r.status, 400);
	cr_assert_eq(code(&r), 40060);
	resp_free(&r);
	free(body);

	/* an app that answers 202 and calls back: the callback acknowledges */
	a.mode = 1;
	body = fd_interaction(f, 2, "{\"name\":\"incident\"}", NULL, id, tok);
	st = fd_post_interaction(f, a.url, body, strlen(body), FD_SIG_VALID,
				 &out);
	cr_assert_eq(st, 202);
	cr_assert_str_eq(out, "");
	free(out);
	r = callback(id, tok, "{\"type\":5}");
	cr_assert_eq(r.status, 204, "%s", r.body);
	resp_free(&r);
	free(body);
	cr_assert_eq(fd_post_interaction(f, "http://127.0.0.1:9/x", "{}", 2,
					 FD_SIG_VALID, NULL),
		     0, "a transport error is 0");
	app_stop(&a);
}

Test(fake_discord, callbacks_acknowledge_once_and_make_the_original)
{
	char id[64], tok[64];
	char *s = fd_interaction(f, 2, "{\"name\":\"incident\"}", NULL, id,
				 tok);
	free(s);
	resp r = followup(FD_APP_ID, tok, "{\"content\":\"early\"}");
	assert_error(&r, 404, 10015, "Unknown Webhook");
	resp_free(&r);
	r = callback(id, tok, "{\"type\":3}");
	assert_form(&r, "type", "BASE_TYPE_CHOICES");
	resp_free(&r);
	r = callback(id, tok, "{\"type\":4,\"data\":{}}");
	assert_error(&r, 400, 50006, "Cannot send an empty message");
	resp_free(&r);
	r = callback(id, tok, "{\"type\":5,\"data\":{\"flags\":64}}");
	cr_assert_eq(r.status, 204, "%s", r.body);
	cr_assert_eq(r.len, 0, "no body");
	resp_free(&r);
	r = callback(id, tok, "{\"type\":4,\"data\":{\"content\":\"x\"}}");
	assert_error(&r, 400, 40060,
		     "Interaction has already been acknowledged.");
	resp_free(&r);

	r = original("GET", tok, NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(jint(r.json, "flags"), 64 | 128, "ephemeral, loading");
	cr_assert_str_eq(jstr(r.json, "webhook_id"), FD_APP_ID);
	resp_free(&r);
	r = original("PATCH", tok,
		     "{\"content\":\"Declared INC-7\",\"allowed_mentions\":"
		     "{\"parse\":[]}}");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_str_eq(jstr(r.json, "content"), "Declared INC-7");
	cr_assert_eq(jint(r.json, "flags"), 64, "no longer loading");
	cr_assert(jstr(r.json, "edited_timestamp"));
	char oid[32];
	snprintf(oid, sizeof(oid), "%s", jstr(r.json, "id"));
	resp_free(&r);
	r = original("PATCH", tok, "{\"content\":\"\",\"embeds\":[]}");
	assert_error(&r, 400, 50006, "Cannot send an empty message");
	resp_free(&r);

	r = followup(FD_APP_ID, tok,
		     "{\"content\":\"only you\",\"flags\":64,"
		     "\"allowed_mentions\":{\"parse\":[]}}");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_eq(jint(r.json, "flags"), 64);
	cr_assert_str_eq(jstr(r.json, "channel_id"), FD_CHANNEL_ID);
	cr_assert_str_neq(jstr(r.json, "id"), oid);
	resp_free(&r);

	json_t *m = fd_messages(f);
	cr_assert_eq(json_array_size(m), 2);
	cr_assert_str_eq(jstr(json_array_get(m, 0), "op"), "original");
	cr_assert_str_eq(jstr(json_array_get(m, 0), "id"), oid);
	cr_assert_str_eq(jstr(json_array_get(m, 1), "op"), "followup");
	cr_assert_str_eq(jstr(json_array_get(m, 1), "channel"),
			 FD_CHANNEL_ID);
	json_decref(m);
	json_t *ans = fd_interaction_answers(f);
	cr_assert_eq(json_array_size(ans), 1);
	cr_assert_str_eq(jstr(json_array_get(ans, 0), "via"), "callback");
	cr_assert_eq(jint(json_array_get(ans, 0), "status"), 204);
	json_decref(ans);
	json_t *reqs = fd_requests(f);
	size_t n = json_array_size(reqs);
	json_t *fu = json_array_get(reqs, n - 1);
	cr_assert(json_is_true(json_object_get(fu, "allowed_mentions_none")));
	cr_assert_str_eq(jstr(fu, "route"), "POST /webhooks/{app}/{token}");
	cr_assert_str_eq(jstr(fu, "channel"), FD_CHANNEL_ID);
	cr_assert_str_eq(jstr(fu, "user_agent"),
			 "DiscordBot (https://im.test, 0.1)");
	cr_assert(json_is_false(json_object_get(fu, "auth")));
	json_decref(reqs);
	cr_assert_eq(stat_of("posted"), 1);
	cr_assert_eq(stat_of("edited"), 1);
}

Test(fake_discord, a_button_update_changes_the_message_it_is_on)
{
	no_limits();
	char mid[32];
	post_ok("INC-3 open", mid);
	char id[64], tok[64];
	free(fd_interaction(f, 3, "{\"custom_id\":\"im_ack:INC-3\"}", NULL, id,
			    tok));
	resp r = callback(id, tok,
			  "{\"type\":7,\"data\":{\"content\":\"INC-3 acked\","
			  "\"components\":[]}}");
	cr_assert_eq(r.status, 204, "%s", r.body);
	resp_free(&r);
	char p[128];
	snprintf(p, sizeof(p), "%s/%s", MSGS, mid);
	r = api("GET", p, NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(jstr(r.json, "content"), "INC-3 acked");
	resp_free(&r);
	r = original("GET", tok, NULL);
	cr_assert_str_eq(jstr(r.json, "id"), mid);
	resp_free(&r);
}

Test(fake_discord, webhooks_need_a_live_token_and_skip_the_global_limit)
{
	char id[64], tok[64];
	free(fd_interaction(f, 2, "{\"name\":\"incident\"}", NULL, id, tok));
	resp r = callback(id, tok,
			  "{\"type\":4,\"data\":{\"content\":\"hi\"}}");
	cr_assert_eq(r.status, 204);
	resp_free(&r);
	r = followup("1199999999999999999", tok, "{\"content\":\"x\"}");
	assert_error(&r, 404, 10015, "Unknown Webhook");
	resp_free(&r);
	r = followup(FD_APP_ID, "not-a-token", "{\"content\":\"x\"}");
	assert_error(&r, 404, 10015, "Unknown Webhook");
	resp_free(&r);
	r = callback("1", tok, "{\"type\":4}");
	assert_error(&r, 404, 10062, "Unknown interaction");
	resp_free(&r);

	/* the global limit counts the bot's REST calls only */
	fd_set_limits(f, 100, 1000, 1);
	r = api("GET", "/users/@me", NULL);
	cr_assert_eq(r.status, 200);
	resp_free(&r);
	for (int i = 0; i < 3; i++) {
		r = followup(FD_APP_ID, tok, "{\"content\":\"more\"}");
		cr_assert_eq(r.status, 200, "follow-up %d: %s", i, r.body);
		resp_free(&r);
	}
	r = api("GET", "/users/@me", NULL);
	cr_assert_eq(r.status, 429);
	resp_free(&r);

	fd_expire_interactions(f);
	r = followup(FD_APP_ID, tok, "{\"content\":\"late\"}");
	assert_error(&r, 404, 10015, "Unknown Webhook");
	resp_free(&r);
	r = original("PATCH", tok, "{\"content\":\"late\"}");
	assert_error(&r, 404, 10015, "Unknown Webhook");
	resp_free(&r);
}

/* --- messages ----------------------------------------------------------- */

Test(fake_discord, messages_are_made_like_discords)
{
	resp r = post(MSGS, "{\"content\":\"INC-1 declared\","
			    "\"allowed_mentions\":{\"parse\":[]},"
			    "\"embeds\":[{\"title\":\"INC-1\"}]}");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_str_eq(hdr(&r, "content-type"), "application/json");
	cr_assert_str_eq(jstr(r.json, "channel_id"), FD_CHANNEL_ID);
	cr_assert_str_eq(jstr(r.json, "content"), "INC-1 declared");
	cr_assert_eq(json_array_size(json_object_get(r.json, "embeds")), 1);
	json_t *au = json_object_get(r.json, "author");
	cr_assert_str_eq(jstr(au, "id"), FD_BOT_ID);
	cr_assert(json_is_true(json_object_get(au, "bot")));
	cr_assert(jstr(r.json, "timestamp"));
	cr_assert_null(json_object_get(r.json, "nonce"));
	unsigned long long first = strtoull(jstr(r.json, "id"), NULL, 10);
	resp_free(&r);
	r = post(MSGS, "{\"content\":\"second\"}");
	cr_assert_gt(strtoull(jstr(r.json, "id"), NULL, 10), first);
	resp_free(&r);
	r = post("/channels/1399999999999999999/messages",
		 "{\"content\":\"x\"}");
	assert_error(&r, 404, 10003, "Unknown Channel");
	resp_free(&r);
	cr_assert(fd_wait_messages(f, 2, 1000));
	cr_assert_not(fd_wait_messages(f, 3, 50));
	json_t *m = fd_messages(f);
	cr_assert_str_eq(jstr(json_array_get(m, 0), "op"), "post");
	cr_assert_str_eq(jstr(json_object_get(json_array_get(m, 0), "json"),
			      "content"),
			 "INC-1 declared");
	json_decref(m);
	json_t *reqs = fd_requests(f);
	json_t *q = json_array_get(reqs, 0);
	cr_assert_str_eq(jstr(q, "route"), "POST /channels/{id}/messages");
	cr_assert_str_eq(jstr(q, "method"), "POST");
	cr_assert_str_eq(jstr(q, "path"), "/api/v10" MSGS);
	cr_assert_str_eq(jstr(q, "channel"), FD_CHANNEL_ID);
	cr_assert_eq(jint(q, "status"), 200);
	cr_assert(json_is_null(json_object_get(q, "code")));
	cr_assert(json_is_true(json_object_get(q, "allowed_mentions_none")));
	cr_assert(json_is_false(json_object_get(json_array_get(reqs, 1),
						"allowed_mentions_none")));
	cr_assert_eq(jint(json_array_get(reqs, 2), "code"), 10003);
	cr_assert_gt(json_real_value(json_object_get(q, "t")), 1.7e9);
	json_decref(reqs);
	json_t *st = stats();
	cr_assert_eq(jint(st, "posted"), 2);
	cr_assert_eq(jint(st, "channels"), 1);
	cr_assert_eq(jint(st, "requests"), 3);
	cr_assert(json_real_value(json_object_get(st, "first_t")) <=
		  json_real_value(json_object_get(st, "last_t")));
	json_decref(st);
}

Test(fake_discord, message_bodies_are_validated_like_discord)
{
	no_limits();
	resp r = post(MSGS, "{\"content\":");
	assert_error(&r, 400, 50109, "The request body contains invalid JSON.");
	resp_free(&r);
	r = post(MSGS, "{}");
	assert_error(&r, 400, 50006, "Cannot send an empty message");
	resp_free(&r);
	r = post(MSGS, "{\"content\":\"\",\"embeds\":[]}");
	assert_error(&r, 400, 50006, "Cannot send an empty message");
	resp_free(&r);

	struct {
		const char *fmt; /* %s: the long string */
		const char *unit;
		size_t n;
		const char *path, *code;
	} bad[] = {
	    {"{\"content\":\"%s\"}", "x", 2001, "content",
	     "BASE_TYPE_MAX_LENGTH"},
	    {"{\"embeds\":[{\"title\":\"%s\"}]}", "t", 257, "embeds.0.title",
	     "BASE_TYPE_MAX_LENGTH"},
	    {"{\"embeds\":[{\"description\":\"%s\"}]}", "d", 4097,
	     "embeds.0.description", "BASE_TYPE_MAX_LENGTH"},
	    {"{\"embeds\":[{\"title\":\"a\"},{\"footer\":{\"text\":\"%s\"}}]}",
	     "f", 2049, "embeds.1.footer.text", "BASE_TYPE_MAX_LENGTH"},
	    {"{\"embeds\":[{\"fields\":[{\"name\":\"n\",\"value\":\"%s\"}]}]}",
	     "v", 1025, "embeds.0.fields.0.value", "BASE_TYPE_MAX_LENGTH"},
	    {"{\"embeds\":[{\"fields\":[{\"name\":\"%s\",\"value\":\"v\"}]}]}",
	     "n", 257, "embeds.0.fields.0.name", "BASE_TYPE_MAX_LENGTH"},
	    {"{\"embeds\":[{\"description\":\"%s\"},{\"description\":\"%s\"}]}",
	     "e", 3001, "embeds", "MAX_EMBED_SIZE_EXCEEDED"},
	    {"{\"content\":\"a\",\"nonce\":\"%s\"}", "n", 26, "nonce",
	     "BASE_TYPE_MAX_LENGTH"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *s = rep(bad[i].unit, bad[i].n), *body = NULL;
		cr_assert(asprintf(&body, bad[i].fmt, s, s) > 0);
		r = post(MSGS, body);
		assert_form(&r, bad[i].path, bad[i].code);
		resp_free(&r);
		free(body);
		free(s);
	}
	/* 11 embeds, 26 fields, a field without a value, an odd nonce */
	char *embeds = rep("{\"title\":\"t\"},", 11);
	embeds[strlen(embeds) - 1] = '\0';
	char *body = NULL;
	cr_assert(asprintf(&body, "{\"embeds\":[%s]}", embeds) > 0);
	r = post(MSGS, body);
	assert_form(&r, "embeds", "BASE_TYPE_MAX_LENGTH");
	resp_free(&r);
	free(body);
	free(embeds);
	char *fields = rep("{\"name\":\"n\",\"value\":\"v\"},", 26);
	fields[strlen(fields) - 1] = '\0';
	cr_assert(asprintf(&body, "{\"embeds\":[{\"fields\":[%s]}]}", fields) >
		  0);
	r = post(MSGS, body);
	assert_form(&r, "embeds.0.fields", "BASE_TYPE_MAX_LENGTH");
	resp_free(&r);
	free(body);
	free(fields);
	r = post(MSGS, "{\"embeds\":[{\"fields\":[{\"name\":\"n\"}]}]}");
	assert_form(&r, "embeds.0.fields.0.value", "BASE_TYPE_REQUIRED");
	resp_free(&r);
	r = post(MSGS, "{\"content\":\"a\",\"nonce\":{\"x\":1}}");
	assert_form(&r, "nonce", "NONCE_TYPE_INVALID");
	resp_free(&r);
	cr_assert_eq(stat_of("posted"), 0, "nothing bad was accepted");

	/* at the limits: 2000 characters of two bytes each, 10 embeds, 25
	 * fields, a 25-character nonce, all embeds at 6000 */
	char *s = rep("\xc3\xa9", 2000);
	cr_assert(asprintf(&body, "{\"content\":\"%s\",\"nonce\":\"%s\"}", s,
			   "1234567890123456789012345") > 0);
	r = post(MSGS, body);
	cr_assert_eq(r.status, 200, "characters, not bytes: %.200s", r.body);
	resp_free(&r);
	free(body);
	free(s);
	char *d = rep("e", 3000);
	cr_assert(asprintf(&body,
			   "{\"embeds\":[{\"description\":\"%s\"},"
			   "{\"description\":\"%s\"}],\"nonce\":42}",
			   d, d) > 0);
	r = post(MSGS, body);
	cr_assert_eq(r.status, 200, "%.200s", r.body);
	cr_assert_eq(jint(r.json, "nonce"), 42, "the nonce as sent");
	resp_free(&r);
	free(body);
	free(d);
	fields = rep("{\"name\":\"n\",\"value\":\"v\"},", 25);
	fields[strlen(fields) - 1] = '\0';
	embeds = rep("{\"title\":\"t\"},", 9);
	cr_assert(asprintf(&body, "{\"embeds\":[%s{\"fields\":[%s]}]}", embeds,
			   fields) > 0);
	r = post(MSGS, body);
	cr_assert_eq(r.status, 200, "%.200s", r.body);
	resp_free(&r);
	free(body);
	free(fields);
	free(embeds);
	cr_assert_eq(stat_of("posted"), 3);
}

Test(fake_discord, enforce_nonce_answers_the_earlier_message)
{
	no_limits();
	const char *b = "{\"content\":\"INC-9\",\"nonce\":\"inc-9-declared\","
			"\"enforce_nonce\":true}";
	resp r1 = post(MSGS, b), r2 = post(MSGS, b);
	cr_assert_eq(r1.status, 200);
	cr_assert_eq(r2.status, 200);
	cr_assert_str_eq(jstr(r1.json, "id"), jstr(r2.json, "id"),
			 "the same message");
	cr_assert_str_eq(jstr(r2.json, "nonce"), "inc-9-declared");
	resp_free(&r1);
	resp_free(&r2);
	/* an integer nonce and its text are one nonce */
	r1 = post(MSGS,
		  "{\"content\":\"a\",\"nonce\":77,\"enforce_nonce\":true}");
	r2 = post(MSGS,
		  "{\"content\":\"a\",\"nonce\":\"77\","
		  "\"enforce_nonce\":true}");
	cr_assert_str_eq(jstr(r1.json, "id"), jstr(r2.json, "id"));
	resp_free(&r1);
	resp_free(&r2);
	/* per channel: the other channel gets its own message */
	r1 = post(MSGS2, b);
	cr_assert_eq(r1.status, 200);
	resp_free(&r1);
	json_t *st = stats();
	cr_assert_eq(jint(st, "posted"), 3);
	cr_assert_eq(jint(st, "nonce_hits"), 2);
	cr_assert_eq(jint(st, "duplicates"), 0);
	cr_assert_eq(jint(st, "channels"), 2);
	json_decref(st);
	/* without enforce_nonce a re-send is a new message, counted */
	const char *loose =
	    "{\"content\":\"INC-9\",\"nonce\":\"inc-9-declared\"}";
	r1 = post(MSGS, loose);
	r2 = post(MSGS, loose);
	cr_assert_str_neq(jstr(r1.json, "id"), jstr(r2.json, "id"));
	resp_free(&r1);
	resp_free(&r2);
	cr_assert_eq(stat_of("duplicates"), 2);
	cr_assert_eq(stat_of("posted"), 5);
	json_t *reqs = fd_requests(f);
	json_t *q = json_array_get(reqs, 0);
	cr_assert_str_eq(jstr(q, "nonce"), "inc-9-declared");
	cr_assert(json_is_true(json_object_get(q, "enforce_nonce")));
	cr_assert(json_is_false(json_object_get(json_array_get(reqs, 6),
						"enforce_nonce")));
	json_decref(reqs);
}

Test(fake_discord, edits_and_threads)
{
	no_limits();
	char mid[32], p[160];
	post_ok("INC-4 open", mid);
	snprintf(p, sizeof(p), "%s/%s", MSGS, mid);
	resp r = api("PATCH", p, "{\"content\":\"INC-4 resolved\"}");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_str_eq(jstr(r.json, "id"), mid);
	cr_assert_str_eq(jstr(r.json, "content"), "INC-4 resolved");
	cr_assert(jstr(r.json, "edited_timestamp"));
	resp_free(&r);
	r = api("PATCH", MSGS "/1400000000000000001", "{\"content\":\"x\"}");
	assert_error(&r, 404, 10008, "Unknown Message");
	resp_free(&r);
	snprintf(p, sizeof(p), "%s/%s", MSGS2, mid);
	r = api("PATCH", p, "{\"content\":\"x\"}");
	assert_error(&r, 404, 10008, "Unknown Message");
	resp_free(&r);
	cr_assert_eq(stat_of("edited"), 1);

	snprintf(p, sizeof(p), "%s/%s/threads", MSGS, mid);
	r = api("POST", p, "{\"name\":\"\"}");
	assert_form(&r, "name", "BASE_TYPE_BAD_LENGTH");
	resp_free(&r);
	char *longname = rep("n", 101), *body = NULL;
	cr_assert(asprintf(&body, "{\"name\":\"%s\"}", longname) > 0);
	r = api("POST", p, body);
	assert_form(&r, "name", "BASE_TYPE_BAD_LENGTH");
	resp_free(&r);
	free(body);
	free(longname);
	r = api("POST", p, "{\"name\":\"INC-4\",\"auto_archive_duration\":7}");
	assert_form(&r, "auto_archive_duration", "BASE_TYPE_CHOICES");
	resp_free(&r);
	r = api("POST", p,
		"{\"name\":\"INC-4\",\"auto_archive_duration\":1440}");
	cr_assert_eq(r.status, 201, "%s", r.body);
	cr_assert_eq(jint(r.json, "type"), 11);
	cr_assert_str_eq(jstr(r.json, "parent_id"), FD_CHANNEL_ID);
	cr_assert_str_eq(jstr(r.json, "name"), "INC-4");
	cr_assert_str_eq(jstr(r.json, "id"), mid, "the message's id");
	resp_free(&r);
	r = api("POST", p, "{\"name\":\"again\"}");
	assert_error(&r, 400, 160004,
		     "A thread has already been created for this message");
	resp_free(&r);
	r = api("POST", MSGS "/1400000000000000001/threads",
		"{\"name\":\"x\"}");
	assert_error(&r, 404, 10008, "Unknown Message");
	resp_free(&r);

	/* the thread is a channel that takes messages */
	snprintf(p, sizeof(p), "/channels/%s", mid);
	r = api("GET", p, NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(jint(r.json, "type"), 11);
	resp_free(&r);
	snprintf(p, sizeof(p), "/channels/%s/messages", mid);
	r = api("POST", p, "{\"content\":\"timeline: paged\"}");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_str_eq(jstr(r.json, "channel_id"), mid);
	resp_free(&r);
	r = api("GET", "/guilds/" FD_GUILD_ID "/channels", NULL);
	cr_assert_eq(json_array_size(r.json), 2, "threads are not listed");
	resp_free(&r);
	json_t *m = fd_messages(f);
	const char *ops[] = {"post", "edit", "thread", "post"};
	cr_assert_eq(json_array_size(m), 4);
	for (size_t i = 0; i < 4; i++)
		cr_assert_str_eq(jstr(json_array_get(m, i), "op"), ops[i]);
	cr_assert_str_eq(jstr(json_array_get(m, 2), "channel"), FD_CHANNEL_ID);
	cr_assert_str_eq(jstr(json_array_get(m, 3), "channel"), mid);
	json_decref(m);
}

Test(fake_discord, bodies_over_a_mebibyte_are_413)
{
	size_t n = FD_MAX_BODY + 16;
	char *big = malloc(n + 1);
	memset(big, ' ', n);
	memcpy(big, "{\"content\":\"x\"}", 15);
	big[n] = '\0';
	char url[256];
	snprintf(url, sizeof(url), "%s%s", fd_api_url(f), MSGS);
	resp r = http_at("POST", url, BOT, big, n, NULL);
	assert_error(&r, 413, 40005, "Request entity too large");
	resp_free(&r);
	free(big);
	cr_assert_eq(stat_of("posted"), 0);
}

/* --- rate limits -------------------------------------------------------- */

static double hdr_f(const resp *r, const char *name)
{
	const char *v = hdr(r, name);
	cr_assert(v, "header %s", name);
	return atof(v);
}

Test(fake_discord, buckets_are_per_route_and_major_parameter)
{
	char bucket[64] = "";
	double t0 = (double)time(NULL);
	for (int i = 0; i < 5; i++) {
		resp r = post(MSGS, "{\"content\":\"x\"}");
		cr_assert_eq(r.status, 200);
		cr_assert_str_eq(hdr(&r, "x-ratelimit-limit"), "5");
		cr_assert_eq(atoi(hdr(&r, "x-ratelimit-remaining")), 4 - i);
		double after = hdr_f(&r, "x-ratelimit-reset-after");
		cr_assert(after > 0 && after <= 5.0, "%f", after);
		cr_assert(strchr(hdr(&r, "x-ratelimit-reset-after"), '.'));
		double reset = hdr_f(&r, "x-ratelimit-reset");
		cr_assert(reset >= t0 && reset <= t0 + 7.0, "%f", reset);
		const char *dot = strchr(hdr(&r, "x-ratelimit-reset"), '.');
		cr_assert(dot && strlen(dot) == 4, "3 decimals");
		if (!i)
			snprintf(bucket, sizeof(bucket), "%s",
				 hdr(&r, "x-ratelimit-bucket"));
		cr_assert_str_eq(hdr(&r, "x-ratelimit-bucket"), bucket);
		resp_free(&r);
	}
	resp r = post(MSGS, "{\"content\":\"x\"}");
	cr_assert_eq(r.status, 429);
	cr_assert_str_eq(jstr(r.json, "message"),
			 "You are being rate limited.");
	cr_assert(json_is_false(json_object_get(r.json, "global")));
	double ra = json_number_value(json_object_get(r.json, "retry_after"));
	cr_assert(ra > 0 && ra <= 5.0, "%f", ra);
	int whole = atoi(hdr(&r, "retry-after"));
	cr_assert(whole >= ra && whole < ra + 1, "%d vs %f", whole, ra);
	cr_assert_str_eq(hdr(&r, "x-ratelimit-scope"), "user");
	cr_assert_null(hdr(&r, "x-ratelimit-global"));
	cr_assert_str_eq(hdr(&r, "x-ratelimit-remaining"), "0");
	cr_assert_str_eq(hdr(&r, "x-ratelimit-bucket"), bucket);
	resp_free(&r);
	/* another channel: the same route hash, its own bucket */
	r = post(MSGS2, "{\"content\":\"x\"}");
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(hdr(&r, "x-ratelimit-remaining"), "4");
	cr_assert_str_eq(hdr(&r, "x-ratelimit-bucket"), bucket);
	resp_free(&r);
	/* another route: another hash */
	r = api("GET", "/channels/" FD_CHANNEL_ID, NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_str_neq(hdr(&r, "x-ratelimit-bucket"), bucket);
	resp_free(&r);
	/* errors carry the headers too */
	r = post(MSGS2, "{}");
	cr_assert_eq(r.status, 400);
	cr_assert_str_eq(hdr(&r, "x-ratelimit-remaining"), "3");
	resp_free(&r);
	json_t *st = stats();
	cr_assert_eq(jint(st, "rate_limited"), 1);
	cr_assert_eq(jint(st, "rate_limited_global"), 0);
	cr_assert_eq(jint(st, "invalid"), 1);
	cr_assert_eq(jint(st, "posted"), 6);
	json_decref(st);
}

Test(fake_discord, a_bucket_refills_after_its_window)
{
	fd_set_limits(f, 2, 1000, 0);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 2; i++) {
			resp r = post(MSGS, "{\"content\":\"x\"}");
			cr_assert_eq(r.status, 200, "round %d", round);
			resp_free(&r);
		}
		resp r = post(MSGS, "{\"content\":\"x\"}");
		cr_assert_eq(r.status, 429);
		double ra =
		    json_number_value(json_object_get(r.json, "retry_after"));
		cr_assert(ra > 0 && ra <= 1.0, "%f", ra);
		cr_assert_str_eq(hdr(&r, "retry-after"), "1", "rounded up");
		resp_free(&r);
		usleep((useconds_t)(ra * 1e6) + 20000);
	}
}

Test(fake_discord, the_global_limit_is_per_second_for_the_bot)
{
	fd_set_limits(f, 100, 1000, 3);
	const char *paths[] = {"/users/@me", "/gateway/bot",
			       "/channels/" FD_CHANNEL_ID};
	for (int i = 0; i < 3; i++) {
		resp r = api("GET", paths[i], NULL);
		cr_assert_eq(r.status, 200, "%s", paths[i]);
		resp_free(&r);
	}
	resp r = api("GET", "/applications/@me", NULL);
	cr_assert_eq(r.status, 429);
	cr_assert(json_is_true(json_object_get(r.json, "global")));
	cr_assert_str_eq(hdr(&r, "x-ratelimit-global"), "true");
	cr_assert_str_eq(hdr(&r, "x-ratelimit-scope"), "global");
	double ra = json_number_value(json_object_get(r.json, "retry_after"));
	cr_assert(ra > 0 && ra <= 1.0, "%f", ra);
	cr_assert_str_eq(hdr(&r, "retry-after"), "1");
	resp_free(&r);
	json_t *st = stats();
	cr_assert_eq(jint(st, "rate_limited_global"), 1);
	cr_assert_eq(jint(st, "rate_limited"), 1);
	cr_assert_eq(jint(st, "invalid"), 1);
	json_decref(st);
	usleep((useconds_t)(ra * 1e6) + 20000);
	r = api("GET", "/applications/@me", NULL);
	cr_assert_eq(r.status, 200, "a second later");
	resp_free(&r);
}

Test(fake_discord, injected_failures_answer_like_discord)
{
	no_limits();
	fd_fail(f, FD_CHANNEL_ID, 2, 403, 50013, 0, NULL);
	for (int i = 0; i < 2; i++) {
		resp r = post(MSGS, "{\"content\":\"x\"}");
		assert_error(&r, 403, 50013, "Missing Permissions");
		cr_assert(hdr(&r, "x-ratelimit-bucket"));
		resp_free(&r);
	}
	resp r = post(MSGS2, "{\"content\":\"x\"}");
	cr_assert_eq(r.status, 200, "another channel is fine");
	resp_free(&r);
	r = post(MSGS, "{\"content\":\"x\"}");
	cr_assert_eq(r.status, 200, "two times only");
	resp_free(&r);

	fd_fail(f, NULL, 1, 500, 0, 0, NULL);
	r = api("GET", "/users/@me", NULL);
	assert_error(&r, 500, 0, "500: Internal Server Error");
	resp_free(&r);

	fd_fail(f, FD_CHANNEL_ID, -1, 429, 0, 2.5, "shared");
	for (int i = 0; i < 3; i++) {
		r = post(MSGS, "{\"content\":\"x\"}");
		cr_assert_eq(r.status, 429);
		cr_assert_str_eq(hdr(&r, "x-ratelimit-scope"), "shared");
		cr_assert_str_eq(hdr(&r, "retry-after"), "3");
		cr_assert_float_eq(json_number_value(json_object_get(
				       r.json, "retry_after")),
				   2.5, 1e-9);
		resp_free(&r);
	}
	fd_fail(f, FD_CHANNEL_ID, 0, 0, 0, 0, NULL);
	r = post(MSGS, "{\"content\":\"x\"}");
	cr_assert_eq(r.status, 200, "cleared");
	resp_free(&r);
	fd_fail(f, FD_CHANNEL_ID, 1, 429, 0, 0.5, "global");
	r = post(MSGS, "{\"content\":\"x\"}");
	cr_assert_eq(r.status, 429);
	cr_assert_str_eq(hdr(&r, "x-ratelimit-global"), "true");
	cr_assert(json_is_true(json_object_get(r.json, "global")));
	resp_free(&r);
	fd_fail(f, FD_CHANNEL_ID, 1, 404, 10003, 0, NULL);
	r = post(MSGS, "{\"content\":\"x\"}");
	assert_error(&r, 404, 10003, "Unknown Channel");
	resp_free(&r);
	json_t *st = stats();
	/* 2 x 403 and the global 429 count; the shared 429s do not */
	cr_assert_eq(jint(st, "invalid"), 3);
	cr_assert_eq(jint(st, "invalid_10min"), 3);
	cr_assert_eq(jint(st, "rate_limited"), 4);
	cr_assert_eq(jint(st, "rate_limited_global"), 1);
	json_decref(st);
}

/* --- application commands ----------------------------------------------- */

#define CMDS "/applications/" FD_APP_ID "/commands"
#define GCMDS "/applications/" FD_APP_ID "/guilds/" FD_GUILD_ID "/commands"
#define INCIDENT_CMD                                                         \
	"{\"name\":\"incident\",\"description\":\"Incidents\",\"options\":[" \
	"{\"type\":1,\"name\":\"declare\",\"description\":\"Declare one\","  \
	"\"options\":[{\"type\":3,\"name\":\"title\",\"description\":"       \
	"\"Title\",\"required\":true},{\"type\":3,\"name\":\"severity\","    \
	"\"description\":\"How bad\",\"choices\":[{\"name\":\"SEV1\","       \
	"\"value\":\"sev1\"}]}]}]}"

Test(fake_discord, commands_are_bulk_overwritten_and_kept)
{
	resp r = api("PUT", CMDS, "[" INCIDENT_CMD "]");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_eq(json_array_size(r.json), 1);
	json_t *c = json_array_get(r.json, 0);
	char cid[32], ver[32];
	snprintf(cid, sizeof(cid), "%s", jstr(c, "id"));
	snprintf(ver, sizeof(ver), "%s", jstr(c, "version"));
	cr_assert_str_eq(jstr(c, "application_id"), FD_APP_ID);
	cr_assert_str_eq(jstr(c, "name"), "incident");
	cr_assert_eq(jint(c, "type"), 1);
	cr_assert(json_is_null(
	    json_object_get(c, "default_member_permissions")));
	cr_assert_null(json_object_get(c, "guild_id"));
	resp_free(&r);
	r = api("GET", CMDS, NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(jstr(json_array_get(r.json, 0), "id"), cid);
	resp_free(&r);

	/* the same again keeps id and version; a change keeps the id */
	r = api("PUT", CMDS, "[" INCIDENT_CMD "]");
	cr_assert_str_eq(jstr(json_array_get(r.json, 0), "id"), cid);
	cr_assert_str_eq(jstr(json_array_get(r.json, 0), "version"), ver);
	resp_free(&r);
	r = api("PUT", CMDS,
		"[{\"name\":\"incident\",\"description\":\"Changed\"},"
		"{\"name\":\"oncall\",\"description\":\"Who is on call\"}]");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_str_eq(jstr(json_array_get(r.json, 0), "id"), cid);
	cr_assert_str_neq(jstr(json_array_get(r.json, 0), "version"), ver);
	cr_assert_str_neq(jstr(json_array_get(r.json, 1), "id"), cid);
	resp_free(&r);
	json_t *stored = fd_commands(f, NULL);
	cr_assert_eq(json_array_size(stored), 2);
	json_decref(stored);
	json_t *st = stats();
	cr_assert_eq(jint(st, "command_puts"), 3);
	cr_assert_eq(jint(st, "command_creates"), 2);
	json_decref(st);

	/* guild commands */
	r = api("PUT", GCMDS, "[" INCIDENT_CMD "]");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_str_eq(jstr(json_array_get(r.json, 0), "guild_id"),
			 FD_GUILD_ID);
	resp_free(&r);
	stored = fd_commands(f, FD_GUILD_ID);
	cr_assert_eq(json_array_size(stored), 1);
	json_decref(stored);
	r = api("PUT", GCMDS, "[]");
	cr_assert_eq(r.status, 200);
	cr_assert_eq(json_array_size(r.json), 0);
	resp_free(&r);
	stored = fd_commands(f, FD_GUILD_ID);
	cr_assert_eq(json_array_size(stored), 0, "overwritten with nothing");
	json_decref(stored);

	r = api("GET", "/applications/1199999999999999999/commands", NULL);
	assert_error(&r, 404, 10002, "Unknown Application");
	resp_free(&r);
	r = api("PUT",
		"/applications/" FD_APP_ID
		"/guilds/1299999999999999999/commands",
		"[]");
	assert_error(&r, 403, 50001, "Missing Access");
	resp_free(&r);
	fd_set_commands_scope(f, FD_GUILD_ID, false);
	r = api("GET", GCMDS, NULL);
	assert_error(&r, 403, 50001, "Missing Access");
	resp_free(&r);
	fd_set_commands_scope(f, "global", false);
	r = api("PUT", CMDS, "[]");
	assert_error(&r, 403, 50001, "Missing Access");
	resp_free(&r);
	fd_set_commands_scope(f, FD_GUILD_ID, true);
	r = api("GET", GCMDS, NULL);
	cr_assert_eq(r.status, 200);
	resp_free(&r);
	json_t *reqs = fd_requests(f);
	cr_assert_str_eq(jstr(json_array_get(reqs, 5), "route"),
			 "PUT /applications/{app}/guilds/{g}/commands");
	json_decref(reqs);
}

Test(fake_discord, command_definitions_are_validated)
{
	no_limits();
	struct {
		const char *body, *path, *code;
	} bad[] = {
	    {"{\"name\":\"cmds\"}", "", "LIST_TYPE_CONVERT"},
	    {"[{\"name\":\"Incident\",\"description\":\"d\"}]", "0.name",
	     "APPLICATION_COMMAND_INVALID_NAME"},
	    {"[{\"name\":\"has space\",\"description\":\"d\"}]", "0.name",
	     "APPLICATION_COMMAND_INVALID_NAME"},
	    {"[{\"name\":\"abcdefghijklmnopqrstuvwxyz0123456\","
	     "\"description\":\"d\"}]",
	     "0.name", "APPLICATION_COMMAND_INVALID_NAME"},
	    {"[{\"name\":\"incident\"}]", "0.description",
	     "BASE_TYPE_REQUIRED"},
	    {"[{\"name\":\"incident\",\"description\":\"\"}]", "0.description",
	     "BASE_TYPE_BAD_LENGTH"},
	    {"[{\"name\":\"a\",\"description\":\"d\",\"type\":9}]", "0.type",
	     "BASE_TYPE_CHOICES"},
	    {"[{\"name\":\"a\",\"description\":\"d\"},{\"name\":\"a\","
	     "\"description\":\"e\",\"type\":1}]",
	     "1.name", "APPLICATION_COMMANDS_DUPLICATE_NAME"},
	    {"[{\"name\":\"a\",\"description\":\"d\",\"options\":[{\"type\":"
	     "3,\"name\":\"x\",\"description\":\"d\"},{\"type\":3,\"name\":"
	     "\"y\",\"description\":\"d\",\"required\":true}]}]",
	     "0.options", "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID"},
	    {"[{\"name\":\"a\",\"description\":\"d\",\"options\":[{\"type\":"
	     "1,\"name\":\"declare\",\"description\":\"d\",\"options\":[{"
	     "\"type\":3,\"name\":\"Title\",\"description\":\"d\"}]}]}]",
	     "0.options.0.options.0.name", "APPLICATION_COMMAND_INVALID_NAME"},
	    {"[{\"name\":\"a\",\"description\":\"d\",\"options\":[{\"type\":"
	     "1,\"name\":\"declare\",\"description\":\"d\",\"options\":[{"
	     "\"type\":1,\"name\":\"deeper\",\"description\":\"d\"}]}]}]",
	     "0.options.0.options.0.type", "BASE_TYPE_CHOICES"},
	    {"[{\"name\":\"a\",\"description\":\"d\",\"options\":[{\"type\":"
	     "3,\"name\":\"x\",\"description\":\"d\",\"choices\":[{\"name\":"
	     "\"\",\"value\":\"v\"}]}]}]",
	     "0.options.0.choices.0.name", "BASE_TYPE_BAD_LENGTH"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		resp r = api("PUT", CMDS, bad[i].body);
		assert_form(&r, bad[i].path, bad[i].code);
		resp_free(&r);
	}
	/* 101 characters of description, 26 options, 26 choices */
	char *d = rep("d", 101), *body = NULL;
	cr_assert(asprintf(&body, "[{\"name\":\"a\",\"description\":\"%s\"}]",
			   d) > 0);
	resp r = api("PUT", CMDS, body);
	assert_form(&r, "0.description", "BASE_TYPE_BAD_LENGTH");
	resp_free(&r);
	free(body);
	free(d);
	char opts[26 * 64] = "", chs[26 * 48] = "";
	for (int i = 0; i < 26; i++) {
		snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts),
			 "%s{\"type\":3,\"name\":\"o%d\","
			 "\"description\":\"d\"}",
			 i ? "," : "", i);
		snprintf(chs + strlen(chs), sizeof(chs) - strlen(chs),
			 "%s{\"name\":\"c%d\",\"value\":%d}", i ? "," : "", i,
			 i);
	}
	cr_assert(asprintf(&body,
			   "[{\"name\":\"a\",\"description\":\"d\","
			   "\"options\":[%s]}]",
			   opts) > 0);
	r = api("PUT", CMDS, body);
	assert_form(&r, "0.options", "BASE_TYPE_MAX_LENGTH");
	resp_free(&r);
	free(body);
	cr_assert(asprintf(&body,
			   "[{\"name\":\"a\",\"description\":\"d\",\"options\":"
			   "[{\"type\":3,\"name\":\"x\",\"description\":\"d\","
			   "\"choices\":[%s]}]}]",
			   chs) > 0);
	r = api("PUT", CMDS, body);
	assert_form(&r, "0.options.0.choices", "BASE_TYPE_MAX_LENGTH");
	resp_free(&r);
	free(body);
	json_t *stored = fd_commands(f, NULL);
	cr_assert_eq(json_array_size(stored), 0, "nothing stored");
	json_decref(stored);
	cr_assert_eq(stat_of("command_creates"), 0);
	/* user and message commands: any case, no description */
	r = api("PUT", CMDS,
		"[{\"name\":\"Open incident\",\"type\":3},"
		"{\"name\":\"incident\",\"description\":\"d\"}]");
	cr_assert_eq(r.status, 200, "%s", r.body);
	resp_free(&r);
}

/* n commands named <prefix>0.. (new string). */
static char *commands(const char *prefix, int n)
{
	size_t cap = (size_t)n * 64 + 8, len = 1;
	char *s = malloc(cap);
	cr_assert(s);
	strcpy(s, "[");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len,
					"%s{\"name\":\"%s%d\","
					"\"description\":\"d\"}",
					i ? "," : "", prefix, i);
	snprintf(s + len, cap - len, "]");
	return s;
}

Test(fake_discord, two_hundred_command_creates_a_day_then_30034)
{
	char *a = commands("a", 100), *b = commands("b", 100);
	resp r = api("PUT", CMDS, a);
	cr_assert_eq(r.status, 200, "%.300s", r.body);
	resp_free(&r);
	r = api("PUT", CMDS, b);
	cr_assert_eq(r.status, 200, "%.300s", r.body);
	resp_free(&r);
	r = api("PUT", CMDS, b);
	cr_assert_eq(r.status, 200, "no new name, no create");
	resp_free(&r);
	char *one = commands("c", 1);
	r = api("PUT", CMDS, one);
	cr_assert_eq(r.status, 429, "%s", r.body);
	cr_assert_eq(code(&r), 30034);
	cr_assert_str_eq(jstr(r.json, "message"),
			 "Max number of daily application command creates "
			 "has been reached (200)");
	cr_assert_gt(json_number_value(json_object_get(r.json, "retry_after")),
		     0);
	cr_assert(hdr(&r, "retry-after"));
	resp_free(&r);
	/* guild commands have their own count */
	r = api("PUT", GCMDS, one);
	cr_assert_eq(r.status, 200);
	resp_free(&r);
	json_t *st = stats();
	cr_assert_eq(jint(st, "command_creates"), 201);
	cr_assert_eq(jint(st, "command_puts"), 5);
	json_decref(st);
	json_t *stored = fd_commands(f, NULL);
	cr_assert_eq(json_array_size(stored), 100, "the refused PUT changed "
						   "nothing");
	cr_assert_str_eq(jstr(json_array_get(stored, 0), "name"), "b0");
	json_decref(stored);
	r = api("PUT", CMDS, "[{\"name\":\"x\",\"description\":\"d\"},"
			     "{\"name\":\"y\",\"description\":\"d\"}]");
	free(a);
	free(b);
	free(one);
	cr_assert_eq(r.status, 429);
	resp_free(&r);
	/* 101 chat commands are too many anyway */
	char *many = commands("m", 101);
	r = api("PUT", GCMDS, many);
	assert_form(&r, "", "BASE_TYPE_MAX_LENGTH");
	resp_free(&r);
	free(many);
}

/* --- records, control and the program ----------------------------------- */

static void *poster(void *arg)
{
	const char *path = arg;
	for (int i = 0; i < 20; i++) {
		resp r = post(path, "{\"content\":\"load\"}");
		if (r.status != 200)
			fprintf(stderr, "post: %ld %s\n", r.status, r.body);
		resp_free(&r);
	}
	return NULL;
}

Test(fake_discord, concurrent_posts_are_all_kept_with_unique_ids)
{
	no_limits();
	pthread_t t[8];
	for (int i = 0; i < 8; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, poster,
					    (void *)(i % 2 ? MSGS : MSGS2)),
			     0);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	cr_assert(fd_wait_messages(f, 160, 5000));
	json_t *m = fd_messages(f), *seen = json_object();
	cr_assert_eq(json_array_size(m), 160);
	size_t i;
	json_t *e;
	json_array_foreach(m, i, e)
	    json_object_set_new(seen, jstr(e, "id"), json_true());
	cr_assert_eq(json_object_size(seen), 160, "no id given twice");
	json_decref(seen);
	json_decref(m);
	json_t *st = stats();
	cr_assert_eq(jint(st, "posted"), 160);
	cr_assert_eq(jint(st, "requests"), 160);
	cr_assert_eq(jint(st, "channels"), 2);
	json_decref(st);
}

Test(fake_discord, reset_and_control_endpoints)
{
	no_limits();
	char mid[32];
	post_ok("one", mid);
	resp r = ctl("GET", "/_stats");
	cr_assert_eq(r.status, 200);
	cr_assert_eq(jint(r.json, "posted"), 1);
	resp_free(&r);
	r = ctl("GET", "/_messages");
	cr_assert_eq(json_array_size(r.json), 1);
	cr_assert_str_eq(jstr(json_array_get(r.json, 0), "id"), mid);
	resp_free(&r);
	r = ctl("GET", "/_requests");
	cr_assert_eq(json_array_size(r.json), 1);
	resp_free(&r);

	r = ctl("POST", "/_fail?channel=" FD_CHANNEL_ID
			"&times=1&status=403&code=50001");
	cr_assert_eq(r.status, 200);
	resp_free(&r);
	r = post(MSGS, "{\"content\":\"x\"}");
	assert_error(&r, 403, 50001, "Missing Access");
	resp_free(&r);
	r = ctl("POST", "/_fail?status=429&retry_after=1.5&scope=user");
	resp_free(&r);
	r = api("GET", "/users/@me", NULL);
	cr_assert_eq(r.status, 429);
	cr_assert_str_eq(hdr(&r, "retry-after"), "2");
	resp_free(&r);

	r = ctl("POST", "/_limits?route_limit=1&route_window_ms=60000");
	cr_assert_eq(r.status, 200);
	resp_free(&r);
	r = post(MSGS2, "{\"content\":\"x\"}");
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(hdr(&r, "x-ratelimit-limit"), "1");
	resp_free(&r);
	r = post(MSGS2, "{\"content\":\"x\"}");
	cr_assert_eq(r.status, 429);
	resp_free(&r);

	r = ctl("POST", "/_reset");
	cr_assert_eq(r.status, 200);
	resp_free(&r);
	json_t *st = stats();
	cr_assert_eq(jint(st, "requests"), 0);
	cr_assert_eq(jint(st, "posted"), 0);
	cr_assert_eq(jint(st, "invalid"), 0);
	cr_assert(json_is_null(json_object_get(st, "first_t")));
	json_decref(st);
	json_t *m = fd_messages(f);
	cr_assert_eq(json_array_size(m), 0);
	json_decref(m);
	/* buckets are gone (limits stay) */
	r = post(MSGS2, "{\"content\":\"x\"}");
	cr_assert_eq(r.status, 200, "%s", r.body);
	resp_free(&r);
	json_t *reqs = fd_requests(f);
	cr_assert_eq(json_array_size(reqs), 1);
	json_decref(reqs);
}

static double since(const struct timespec *a)
{
	struct timespec b;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) +
	       (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

static void *getter(void *arg)
{
	resp r = api("GET", "/users/@me", NULL);
	*(long *)arg = r.status;
	resp_free(&r);
	return NULL;
}

Test(fake_discord, latency_delays_answers_without_blocking_others)
{
	fd_stop(f);
	fd_opts o = {.latency_ms = 500};
	f = fd_start(&o);
	cr_assert(f);
	struct timespec a;
	clock_gettime(CLOCK_MONOTONIC, &a);
	resp r = api("GET", "/users/@me", NULL);
	double took = since(&a);
	cr_assert_eq(r.status, 200);
	resp_free(&r);
	cr_assert_geq(took, 0.49, "%f", took);
	/* four at once wait side by side, not one after the other */
	pthread_t t[4];
	long status[4] = {0};
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, getter, &status[i]),
			     0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	took = since(&a);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(status[i], 200);
	cr_assert(took >= 0.49 && took < 1.5, "%f", took);
	/* control endpoints answer at once */
	clock_gettime(CLOCK_MONOTONIC, &a);
	r = ctl("GET", "/_stats");
	took = since(&a);
	resp_free(&r);
	cr_assert_lt(took, 0.4, "%f", took);
}

Test(fake_discord, options_choose_app_token_and_limits)
{
	fd_stop(f);
	fd_opts o = {.application_id = "1100000000000000777",
		     .bot_token = "other.token",
		     .route_limit = 1,
		     .route_window_ms = 60000};
	f = fd_start(&o);
	cr_assert(f);
	cr_assert_str_eq(fd_app_id(f), "1100000000000000777");
	char url[256];
	snprintf(url, sizeof(url), "%s/applications/@me", fd_api_url(f));
	resp r = http_at("GET", url, "Bot other.token", NULL, 0, NULL);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(jstr(r.json, "id"), "1100000000000000777");
	cr_assert_str_eq(hdr(&r, "x-ratelimit-limit"), "1");
	resp_free(&r);
	r = http_at("GET", url, "Bot other.token", NULL, 0, NULL);
	cr_assert_eq(r.status, 429);
	resp_free(&r);
	r = http_at("GET", url, BOT, NULL, 0, NULL);
	cr_assert_eq(r.status, 401, "the default token is not this one");
	resp_free(&r);
	char api_want[64];
	snprintf(api_want, sizeof(api_want), "http://127.0.0.1:%u/api/v10",
		 fd_port(f));
	cr_assert_str_eq(fd_api_url(f), api_want);
}

Test(fake_discord, the_program_prints_its_settings_and_serves)
{
	const char *bdir = getenv("IM_TEST_BUILDDIR");
	cr_assert(bdir, "IM_TEST_BUILDDIR is set by meson test");
	char exe[1024];
	snprintf(exe, sizeof(exe), "%s/tests/integration/fake-discord", bdir);
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		dup2(fds[1], 1);
		close(fds[0]);
		execl(exe, exe, "--route-limit", "2", "--route-window-ms",
		      "60000", "--global-per-s", "100", "--latency-ms", "1",
		      (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	FILE *out = fdopen(fds[0], "r");
	char line[512] = "";
	cr_assert(fgets(line, sizeof(line), out), "one line from %s", exe);
	char api_url[128], key[80], app_id[32], token[128];
	cr_assert_eq(sscanf(line,
			    "FAKE_DISCORD url=%127s public_key=%79s "
			    "app_id=%31s token=%127s",
			    api_url, key, app_id, token),
		     4, "%s", line);
	cr_assert(strstr(api_url, "http://127.0.0.1:") == api_url);
	cr_assert_eq(strlen(key), 64);
	cr_assert_str_eq(app_id, FD_APP_ID);
	cr_assert_str_eq(token, FD_BOT_TOKEN);
	char url[256];
	snprintf(url, sizeof(url), "%s%s", api_url, MSGS);
	for (int i = 0; i < 3; i++) {
		resp r = http_at("POST", url, BOT, "{\"content\":\"x\"}", 15,
				 NULL);
		cr_assert_eq(r.status, i < 2 ? 200 : 429, "post %d", i);
		resp_free(&r);
	}
	kill(pid, SIGTERM);
	int status = 0;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "stops cleanly on SIGTERM (%d)", status);
	fclose(out);
}
