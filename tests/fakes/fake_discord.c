/* The fake Discord: keys and interaction signing (libsodium), interactions
 * and their answers, records, control endpoints and the libmicrohttpd
 * server; the API routes are in fake_discord_rest.c. See fake_discord.h.
 * Built with -DFAKE_DISCORD_MAIN it is also the fake-discord program
 * (main at the end). */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "fake_discord_int.h"

/* --- small helpers ------------------------------------------------------ */

static double clock_s(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

double fd_mono(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

double fd_wall(void)
{
	return clock_s(CLOCK_REALTIME);
}

const char *fd_str(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A snowflake: milliseconds since the Discord epoch (2015) << 22, kept
 * increasing even for many ids within one millisecond. */
void fd_new_id_locked(fd *f, char out[24])
{
	uint64_t ms = (uint64_t)(fd_wall() * 1000.0) - 1420070400000ull;
	uint64_t id = ms << 22;
	if (id <= f->last_id)
		id = f->last_id + 1;
	f->last_id = id;
	snprintf(out, 24, "%" PRIu64, id);
}

void fd_iso_time(char out[40])
{
	double w = fd_wall();
	time_t s = (time_t)w;
	struct tm tm;
	gmtime_r(&s, &tm);
	char d[24];
	strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 40, "%s.%06ld+00:00", d,
		 (long)((w - (double)s) * 1e6) % 1000000);
}

fd_ia *fd_ia_find_locked(fd *f, const char *token)
{
	for (size_t i = 0; token && i < f->nias; i++)
		if (!strcmp(f->ias[i].token, token))
			return &f->ias[i];
	return NULL;
}

/* Adds t and drops the times older than `keep` seconds before it. */
void fd_times_add(fd_times *w, double t, double keep)
{
	fd_times_count(w, t - keep);
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		double *n = realloc(w->t, cap * sizeof(*n));
		if (!n)
			return;
		w->t = n;
		w->cap = cap;
	}
	w->t[w->n++] = t;
}

/* How many times are at or after `since` (older ones are dropped). */
size_t fd_times_count(fd_times *w, double since)
{
	size_t drop = 0;
	while (drop < w->n && w->t[drop] < since)
		drop++;
	if (drop) {
		memmove(w->t, w->t + drop, (w->n - drop) * sizeof(*w->t));
		w->n -= drop;
	}
	return w->n;
}

/* --- answers ------------------------------------------------------------ */

void fd_header(fd_answer *a, const char *name, const char *fmt, ...)
{
	if (a->nh >= (int)(sizeof(a->h) / sizeof(a->h[0])))
		return;
	va_list ap;
	va_start(ap, fmt);
	a->h[a->nh].name = name;
	vsnprintf(a->h[a->nh].value, sizeof(a->h[a->nh].value), fmt, ap);
	va_end(ap);
	a->nh++;
}

void fd_set_answer(fd_answer *a, int status, json_t *body)
{
	json_decref(a->body);
	a->status = status;
	a->body = body;
}

const char *fd_code_text(int code, int status)
{
	static const struct {
		int code;
		const char *text;
	} t[] = {
	    {10002, "Unknown Application"},
	    {10003, "Unknown Channel"},
	    {10004, "Unknown Guild"},
	    {10008, "Unknown Message"},
	    {10015, "Unknown Webhook"},
	    {10062, "Unknown interaction"},
	    {20028, "The write action you are performing on the channel has "
		    "hit the write rate limit."},
	    {30034, "Max number of daily application command creates has been "
		    "reached (200)"},
	    {40001, "Unauthorized. Provide a valid token and try again"},
	    {40005, "Request entity too large"},
	    {40060, "Interaction has already been acknowledged."},
	    {50001, "Missing Access"},
	    {50006, "Cannot send an empty message"},
	    {50013, "Missing Permissions"},
	    {50024, "Cannot execute action on this channel type"},
	    {50035, "Invalid Form Body"},
	    {50109, "The request body contains invalid JSON."},
	    {130000, "API resource is currently overloaded. Try again a "
		     "little later."},
	    {160004, "A thread has already been created for this message"},
	};
	for (size_t i = 0; code && i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].code == code)
			return t[i].text;
	/* code 0: Discord's text is the HTTP status line */
	switch (status) {
	case 400: return "400: Bad Request";
	case 401: return "401: Unauthorized";
	case 403: return "403: Forbidden";
	case 404: return "404: Not Found";
	case 405: return "405: Method Not Allowed";
	case 429: return "You are being rate limited.";
	case 502: return "502: Bad Gateway";
	case 503: return "503: Service Unavailable";
	case 504: return "504: Gateway Timeout";
	default: return "500: Internal Server Error";
	}
}

void fd_error(fd_answer *a, int status, int code)
{
	fd_set_answer(a, status,
		      json_pack("{s:s,s:i}", "message",
				fd_code_text(code, status), "code", code));
	a->code = code;
}

/* --- messages ----------------------------------------------------------- */

/* Copies what a create or an edit may set onto a message. */
void fd_message_apply(json_t *msg, const json_t *body)
{
	static const char *const keys[] = {"content", "embeds", "components",
					   "flags"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(body, keys[i]);
		if (v && !json_is_null(v))
			json_object_set_new(msg, keys[i], json_deep_copy(v));
	}
}

/* A new message object (by the bot, or by the app's webhook) from body. */
json_t *fd_message_new_locked(fd *f, const char *channel, const json_t *body,
			      bool webhook)
{
	char id[24], ts[40];
	fd_new_id_locked(f, id);
	fd_iso_time(ts);
	json_t *author = json_pack(
	    "{s:s,s:s,s:s,s:b,s:n,s:n}", "id", f->app_id, /* bot id = app id */
	    "username", webhook ? "im" : "im-bot", "discriminator",
	    webhook ? "0000" : "0", "bot", 1, "global_name", "avatar");
	json_t *m = json_pack(
	    "{s:s,s:i,s:s,s:s,s:[],s:[],s:o,s:s,s:n,s:b,s:b,s:b,s:[],s:[],"
	    "s:[],s:i}",
	    "id", id, "type", 0, "channel_id", channel, "content", "", "embeds",
	    "components", "author", author, "timestamp", ts, "edited_timestamp",
	    "tts", 0, "mention_everyone", 0, "pinned", 0, "mentions",
	    "mention_roles", "attachments", "flags", 0);
	if (webhook) {
		json_object_set_new(m, "webhook_id", json_string(f->app_id));
		json_object_set_new(m, "application_id",
				    json_string(f->app_id));
	}
	fd_message_apply(m, body);
	return m;
}

void fd_record_msg_locked(fd *f, const char *op, const char *channel,
			  const char *id, const json_t *body)
{
	json_t *nonce = json_object_get(body, "nonce");
	json_array_append_new(
	    f->msgs,
	    json_pack("{s:s,s:s,s:s,s:O?,s:O?}", "op", op, "channel", channel,
		      "id", id, "nonce", nonce, "json", body));
}

/* --- keys and signatures ------------------------------------------------ */

/* Changes one byte of b and keeps JSON valid where it can: the first
 * digit becomes another digit, else a letter changes case. */
static void tamper(char *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (b[i] >= '0' && b[i] <= '9') {
			b[i] ^= 1;
			return;
		}
	for (size_t i = 0; i < len; i++)
		if ((b[i] | 0x20) >= 'a' && (b[i] | 0x20) <= 'z') {
			b[i] ^= 0x20;
			return;
		}
	if (len)
		b[0] ^= 1;
}

void fd_sign(fd *f, const char *body, size_t len, fd_sig kind, char ts[24],
	     char sig[130])
{
	ts[0] = sig[0] = '\0';
	if (kind == FD_SIG_MISSING)
		return;
	long long now = (long long)time(NULL);
	snprintf(ts, 24, "%lld", kind == FD_SIG_STALE ? now - 600 : now);
	size_t tl = strlen(ts);
	unsigned char *m = malloc(tl + len + 1);
	if (!m)
		return;
	memcpy(m, ts, tl);
	if (len)
		memcpy(m + tl, body, len);
	if (kind == FD_SIG_TAMPERED)
		tamper((char *)m + tl, len);
	unsigned char s[crypto_sign_BYTES];
	crypto_sign_detached(s, NULL, m, tl + len,
			     kind == FD_SIG_FORGED ? f->forge_sk : f->sk);
	free(m);
	sodium_bin2hex(sig, 130, s, sizeof(s));
	if (kind == FD_SIG_GARBAGE)
		memcpy(sig + 124, "zzzz", 4); /* right length, not hex */
}

/* --- interactions ------------------------------------------------------- */

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

static bool id_less(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	return la != lb ? la < lb : strcmp(a, b) < 0;
}

/* The newest message the fake accepted in channel, or NULL. */
static json_t *last_message_locked(fd *f, const char *channel)
{
	const char *k;
	json_t *e, *best = NULL;
	json_object_foreach(f->store, k, e)
	{
		json_t *m = json_object_get(e, "msg");
		const char *c = fd_str(m, "channel_id");
		if (c && !strcmp(c, channel) &&
		    (!best || id_less(fd_str(best, "id"), k)))
			best = m;
	}
	return best;
}

static fd_ia *ia_new_locked(fd *f)
{
	fd_ia *n = realloc(f->ias, (f->nias + 1) * sizeof(*n));
	if (!n)
		return NULL;
	f->ias = n;
	fd_ia *ia = &n[f->nias++];
	memset(ia, 0, sizeof(*ia));
	fd_new_id_locked(f, ia->id);
	unsigned char r[32];
	randombytes_buf(r, sizeof(r));
	sodium_bin2base64(ia->token, sizeof(ia->token), r, sizeof(r),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	ia->t = fd_mono();
	return ia;
}

/* The member, channel and data parts of a non-PING interaction. */
static void inter_context_locked(fd *f, json_t *j, const fd_inter *m,
				 const char *guild, const char *channel)
{
	const char *uid = m->user_id ? m->user_id : FD_USER_ID;
	const char *uname = m->user_name ? m->user_name : "alice";
	const char *cname = fd_str(json_object_get(f->channels, channel),
				   "name");
	char joined[40];
	fd_iso_time(joined);
	json_object_set_new(j, "guild_id", json_string(guild));
	json_object_set_new(j, "channel_id", json_string(channel));
	json_object_set_new(j, "channel",
			    json_pack("{s:s,s:i,s:s,s:s?}", "id", channel,
				      "type", 0, "guild_id", guild, "name",
				      cname));
	json_object_set_new(
	    j, "member",
	    json_pack("{s:{s:s,s:s,s:s,s:s,s:n},s:o,s:s,s:n,s:s,s:b,s:b}",
		      "user", "id", uid, "username", uname, "global_name",
		      uname, "discriminator", "0", "avatar", "roles",
		      csv_array(m->roles), "permissions", FD_PERMS, "nick",
		      "joined_at", joined, "deaf", 0, "mute", 0));
	json_object_set_new(j, "app_permissions", json_string(FD_PERMS));
	json_object_set_new(j, "locale", json_string("en-US"));
	json_object_set_new(j, "guild_locale", json_string("en-US"));
	json_object_set_new(j, "entitlements", json_array());
	json_object_set_new(j, "context", json_integer(0));
	json_object_set_new(j, "authorizing_integration_owners",
			    json_pack("{s:s}", "0", guild));
}

char *fd_interaction(fd *f, int type, const char *data_json,
		     const fd_inter *more, char *id_out, char *token_out)
{
	static const fd_inter none = {0};
	const fd_inter *m = more ? more : &none;
	json_t *data = data_json ? json_loads(data_json, 0, NULL)
				 : json_object();
	if (!data)
		return NULL;
	const char *guild = m->guild_id ? m->guild_id : FD_GUILD_ID;
	const char *channel = m->channel_id ? m->channel_id : FD_CHANNEL_ID;
	pthread_mutex_lock(&f->mu);
	fd_ia *ia = ia_new_locked(f);
	if (!ia) {
		pthread_mutex_unlock(&f->mu);
		json_decref(data);
		return NULL;
	}
	ia->type = type;
	snprintf(ia->app, sizeof(ia->app), "%s",
		 m->application_id ? m->application_id : f->app_id);
	snprintf(ia->channel, sizeof(ia->channel), "%s", channel);
	snprintf(ia->user, sizeof(ia->user), "%s",
		 m->user_id ? m->user_id : FD_USER_ID);
	json_t *j = json_pack("{s:s,s:s,s:i,s:s,s:i}", "id", ia->id,
			      "application_id", ia->app, "type", type, "token",
			      ia->token, "version", 1);
	if (type != 1) {
		inter_context_locked(f, j, m, guild, channel);
		json_object_set(j, "data", data);
	}
	if (type == 3) {
		json_t *msg = NULL;
		if (m->message_id) {
			msg = json_object_get(
			    json_object_get(f->store, m->message_id), "msg");
		} else {
			msg = last_message_locked(f, channel);
		}
		msg = msg ? json_deep_copy(msg)
			  : fd_message_new_locked(f, channel, NULL, false);
		if (m->message_id)
			json_object_set_new(msg, "id",
					    json_string(m->message_id));
		snprintf(ia->message, sizeof(ia->message), "%s",
			 fd_str(msg, "id"));
		json_object_set_new(j, "message", msg);
	}
	if (id_out)
		snprintf(id_out, 64, "%s", ia->id);
	if (token_out)
		snprintf(token_out, 64, "%s", ia->token);
	pthread_mutex_unlock(&f->mu);
	json_decref(data);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

/* The message an interaction's component sits on (the stored one, so an
 * update shows in both; made up when the fake never posted it). */
static json_t *component_message_locked(fd *f, fd_ia *ia)
{
	json_t *m = json_object_get(json_object_get(f->store, ia->message),
				    "msg");
	if (m)
		return json_incref(m);
	m = fd_message_new_locked(f, ia->channel, NULL, false);
	json_object_set_new(m, "id", json_string(ia->message));
	return m;
}

void fd_ack_locked(fd *f, fd_ia *ia, const json_t *cb)
{
	int type = (int)json_integer_value(json_object_get(cb, "type"));
	const json_t *data = json_object_get(cb, "data");
	ia->acked = true;
	json_t *orig = NULL;
	if ((type == 6 || type == 7) && *ia->message) {
		orig = component_message_locked(f, ia);
		if (type == 7)
			fd_message_apply(orig, data);
	} else if (type >= 4 && type <= 7) {
		orig = fd_message_new_locked(f, ia->channel, data, true);
		json_object_set_new(
		    orig, "interaction_metadata",
		    json_pack("{s:s,s:i,s:{s:s}}", "id", ia->id, "type",
			      ia->type, "user", "id", ia->user));
		if (type == 5 || type == 6) /* deferred: "is thinking..." */
			json_object_set_new(
			    orig, "flags",
			    json_integer(json_integer_value(json_object_get(
					     orig, "flags")) | 128));
	}
	if (orig) {
		json_decref(ia->original);
		ia->original = orig;
	}
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	char **b = ud;
	size_t have = *b ? strlen(*b) : 0;
	char *nb = realloc(*b, have + sz * n + 1);
	if (!nb)
		return 0;
	memcpy(nb + have, p, sz * n);
	nb[have + sz * n] = '\0';
	*b = nb;
	return sz * n;
}

/* POSTs as Discord does; the status (0 = transport error) and body. */
static long post_signed(const char *url, const char *body, size_t len,
			const char *ts, const char *sig, char **out)
{
	CURL *c = curl_easy_init();
	if (!c)
		return 0;
	char hs[160], ht[64];
	struct curl_slist *h = NULL;
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(
	    h, "User-Agent: Discord-Interactions/1.0 (+https://discord.com)");
	h = curl_slist_append(h, "Expect:");
	if (*sig) {
		snprintf(hs, sizeof(hs), "X-Signature-Ed25519: %s", sig);
		snprintf(ht, sizeof(ht), "X-Signature-Timestamp: %s", ts);
		h = curl_slist_append(h, hs);
		h = curl_slist_append(h, ht);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	long status = 0;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

int fd_post_interaction(fd *f, const char *url, const char *body,
			size_t len, fd_sig kind, char **resp)
{
	char ts[24], sig[130];
	bool tampered = kind == FD_SIG_TAMPERED;
	fd_sign(f, body, len, tampered ? FD_SIG_VALID : kind, ts, sig);
	char *sent = malloc(len + 1), *out = NULL;
	if (!sent)
		return 0;
	memcpy(sent, body, len);
	sent[len] = '\0';
	if (tampered)
		tamper(sent, len);
	long status = post_signed(url, sent, len, ts, sig, &out);
	free(sent);
	json_t *in = json_loadb(body, len, 0, NULL);
	json_t *ans = status && out ? json_loads(out, 0, NULL) : NULL;
	int at = (int)json_integer_value(json_object_get(ans, "type"));
	pthread_mutex_lock(&f->mu);
	fd_ia *ia = fd_ia_find_locked(f, fd_str(in, "token"));
	bool ack = ia && status >= 200 && status < 300 &&
		   (ia->type == 1 ? at == 1 : at >= 4 && at <= 9);
	bool first = ack && !ia->acked;
	if (first)
		fd_ack_locked(f, ia, ans);
	json_array_append_new(
	    f->answers,
	    json_pack("{s:s?,s:s?,s:s,s:i,s:O?,s:b}", "id", fd_str(in, "id"),
		      "token", fd_str(in, "token"), "via", "http", "status",
		      (int)status, "answer", ans, "first", first));
	pthread_mutex_unlock(&f->mu);
	json_decref(in);
	json_decref(ans);
	if (resp)
		*resp = out ? out : strdup("");
	else
		free(out);
	return (int)status;
}

json_t *fd_interaction_answers(fd *f)
{
	pthread_mutex_lock(&f->mu);
	json_t *j = json_deep_copy(f->answers);
	pthread_mutex_unlock(&f->mu);
	return j;
}

void fd_expire_interactions(fd *f)
{
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < f->nias; i++)
		f->ias[i].t -= FD_TOKEN_TTL + 1;
	pthread_mutex_unlock(&f->mu);
}

/* --- settings ----------------------------------------------------------- */

void fd_add_channel(fd *f, const char *guild_id, const char *channel_id,
		    const char *name)
{
	pthread_mutex_lock(&f->mu);
	if (!json_object_get(f->guilds, guild_id)) {
		char gn[64];
		snprintf(gn, sizeof(gn), "Guild %s", guild_id);
		json_object_set_new(
		    f->guilds, guild_id,
		    json_pack("{s:s,s:s}", "id", guild_id, "name",
			      strcmp(guild_id, FD_GUILD_ID) ? gn
							    : "Contoso Ops"));
	}
	json_object_set_new(
	    f->channels, channel_id,
	    json_pack("{s:s,s:i,s:s,s:s,s:i,s:n,s:n,s:b,s:i,s:n}", "id",
		      channel_id, "type", 0, "guild_id", guild_id, "name",
		      name ? name : "", "position",
		      (int)json_object_size(f->channels), "parent_id", "topic",
		      "nsfw", 0, "rate_limit_per_user", 0, "last_message_id"));
	pthread_mutex_unlock(&f->mu);
}

void fd_set_gateway_url(fd *f, const char *url)
{
	pthread_mutex_lock(&f->mu);
	snprintf(f->gateway, sizeof(f->gateway), "%s", url ? url : "");
	pthread_mutex_unlock(&f->mu);
}

void fd_set_session_remaining(fd *f, int n)
{
	pthread_mutex_lock(&f->mu);
	f->session_remaining = n;
	pthread_mutex_unlock(&f->mu);
}

static void buckets_clear_locked(fd *f)
{
	for (size_t i = 0; i < f->nbuckets; i++)
		free(f->buckets[i].key);
	f->nbuckets = 0;
}

void fd_set_limits(fd *f, int route_limit, int route_window_ms,
		   int global_per_s)
{
	pthread_mutex_lock(&f->mu);
	if (route_limit > 0)
		f->route_limit = route_limit;
	if (route_window_ms > 0)
		f->route_ms = route_window_ms;
	if (global_per_s > 0)
		f->global_per_s = global_per_s;
	buckets_clear_locked(f);
	f->global.n = 0;
	pthread_mutex_unlock(&f->mu);
}

void fd_set_commands_scope(fd *f, const char *scope, bool allowed)
{
	pthread_mutex_lock(&f->mu);
	if (allowed)
		json_object_del(f->scopes_off, scope);
	else
		json_object_set_new(f->scopes_off, scope, json_true());
	pthread_mutex_unlock(&f->mu);
}

void fd_revoke_token(fd *f)
{
	pthread_mutex_lock(&f->mu);
	f->revoked = true;
	pthread_mutex_unlock(&f->mu);
}

static void rules_clear_locked(fd *f, const char *channel, bool all)
{
	size_t o = 0;
	for (size_t i = 0; i < f->nrules; i++) {
		fd_rule *r = &f->rules[i];
		bool same = all || (!channel && !r->channel) ||
			    (channel && r->channel &&
			     !strcmp(channel, r->channel));
		if (same)
			free(r->channel);
		else
			f->rules[o++] = *r;
	}
	f->nrules = o;
}

void fd_fail(fd *f, const char *channel, int times, int http_status,
	     int discord_code, double retry_after, const char *scope)
{
	pthread_mutex_lock(&f->mu);
	rules_clear_locked(f, channel, false);
	fd_rule *n = times ? realloc(f->rules, (f->nrules + 1) * sizeof(*n))
			   : NULL;
	if (n) {
		f->rules = n;
		fd_rule *r = &n[f->nrules++];
		r->channel = channel ? strdup(channel) : NULL;
		r->times = times;
		r->status = http_status;
		r->code = discord_code;
		r->retry_after = retry_after;
		snprintf(r->scope, sizeof(r->scope), "%s",
			 scope ? scope : "user");
	}
	pthread_mutex_unlock(&f->mu);
}

/* --- records ------------------------------------------------------------ */

static json_t *copy_locked(fd *f, json_t *j)
{
	pthread_mutex_lock(&f->mu);
	json_t *c = json_deep_copy(j);
	pthread_mutex_unlock(&f->mu);
	return c;
}

json_t *fd_requests(fd *f)
{
	return copy_locked(f, f->reqs);
}

json_t *fd_messages(fd *f)
{
	return copy_locked(f, f->msgs);
}

json_t *fd_commands(fd *f, const char *guild_id)
{
	pthread_mutex_lock(&f->mu);
	json_t *c = json_object_get(f->commands,
				    guild_id ? guild_id : "global");
	c = c ? json_deep_copy(c) : json_array();
	pthread_mutex_unlock(&f->mu);
	return c;
}

json_t *fd_stats(fd *f)
{
	pthread_mutex_lock(&f->mu);
	size_t inv10 = fd_times_count(&f->invalid, fd_mono() - 600.0);
	json_t *j = json_pack(
	    "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
	    "requests", (json_int_t)f->st.requests, "posted",
	    (json_int_t)f->st.posted, "edited", (json_int_t)f->st.edited,
	    "duplicates", (json_int_t)f->st.duplicates, "nonce_hits",
	    (json_int_t)f->st.nonce_hits, "rate_limited",
	    (json_int_t)f->st.rate_limited, "rate_limited_global",
	    (json_int_t)f->st.rate_limited_global, "invalid",
	    (json_int_t)f->st.invalid, "invalid_10min", (json_int_t)inv10,
	    "command_puts", (json_int_t)f->st.command_puts, "command_creates",
	    (json_int_t)f->st.command_creates, "auth_failures",
	    (json_int_t)f->st.auth_failures, "channels",
	    (json_int_t)json_object_size(f->posted_to));
	json_object_set_new(j, "first_t", f->st.requests
					      ? json_real(f->first_t)
					      : json_null());
	json_object_set_new(j, "last_t", f->st.requests ? json_real(f->last_t)
							: json_null());
	pthread_mutex_unlock(&f->mu);
	return j;
}

bool fd_wait_messages(fd *f, size_t n, int timeout_ms)
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

void fd_reset(fd *f)
{
	pthread_mutex_lock(&f->mu);
	json_array_clear(f->reqs);
	json_array_clear(f->msgs);
	json_array_clear(f->answers);
	json_object_clear(f->store);
	json_object_clear(f->posted_to);
	json_object_clear(f->creates);
	memset(&f->st, 0, sizeof(f->st));
	f->first_t = f->last_t = 0;
	rules_clear_locked(f, NULL, true);
	buckets_clear_locked(f);
	f->global.n = f->invalid.n = 0;
	pthread_mutex_unlock(&f->mu);
}

/* --- control ------------------------------------------------------------ */

static const char *arg(struct MHD_Connection *c, const char *k)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
}

static int iarg(struct MHD_Connection *c, const char *k, int dflt)
{
	const char *v = arg(c, k);
	return v && *v ? atoi(v) : dflt;
}

static bool control(fd *f, struct MHD_Connection *c, const char *url,
		    const char *method, fd_answer *a)
{
	bool post = !strcmp(method, "POST");
	if (!strcmp(url, "/_stats")) {
		fd_set_answer(a, 200, fd_stats(f));
	} else if (!strcmp(url, "/_messages")) {
		fd_set_answer(a, 200, fd_messages(f));
	} else if (!strcmp(url, "/_requests")) {
		fd_set_answer(a, 200, fd_requests(f));
	} else if (!strcmp(url, "/_reset") && post) {
		fd_reset(f);
		fd_set_answer(a, 200, json_pack("{s:b}", "ok", 1));
	} else if (!strcmp(url, "/_fail") && post) {
		int status = iarg(c, "status", 500);
		const char *ra = arg(c, "retry_after");
		fd_fail(f, arg(c, "channel"), iarg(c, "times", 1), status,
			iarg(c, "code", 0),
			ra ? atof(ra) : (status == 429 ? 1.0 : 0.0),
			arg(c, "scope"));
		fd_set_answer(a, 200, json_pack("{s:b}", "ok", 1));
	} else if (!strcmp(url, "/_limits") && post) {
		fd_set_limits(f, iarg(c, "route_limit", 0),
			      iarg(c, "route_window_ms", 0),
			      iarg(c, "global_per_s", 0));
		fd_set_answer(a, 200, json_pack("{s:b}", "ok", 1));
	} else {
		return false;
	}
	return true;
}

/* --- HTTP --------------------------------------------------------------- */

typedef struct conn {
	char *body;
	size_t len, seen; /* kept, and received (beyond the cap: dropped) */
} conn;

static enum MHD_Result respond(struct MHD_Connection *c, const fd_answer *a)
{
	char *s = a->body ? json_dumps(a->body, JSON_COMPACT |
						    JSON_REAL_PRECISION(15))
			  : NULL;
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    s ? strlen(s) : 0, s ? s : (void *)"", MHD_RESPMEM_MUST_COPY);
	free(s);
	if (!r)
		return MHD_NO;
	if (a->body)
		MHD_add_response_header(r, "Content-Type", "application/json");
	for (int i = 0; i < a->nh; i++)
		MHD_add_response_header(r, a->h[i].name, a->h[i].value);
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)a->status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Keeps up to FD_MAX_BODY + 1 bytes: enough to tell a body is too big. */
static enum MHD_Result take_upload(conn *cn, const char *upload, size_t n)
{
	cn->seen += n;
	size_t room = cn->len <= FD_MAX_BODY ? FD_MAX_BODY + 1 - cn->len : 0;
	size_t keep = n < room ? n : room;
	if (!keep)
		return MHD_YES;
	char *b = realloc(cn->body, cn->len + keep + 1);
	if (!b)
		return MHD_NO;
	memcpy(b + cn->len, upload, keep);
	cn->body = b;
	cn->len += keep;
	b[cn->len] = '\0';
	return MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	fd *f = cls;
	conn *cn = *con_cls;
	if (!cn) {
		*con_cls = calloc(1, sizeof(conn));
		return *con_cls ? MHD_YES : MHD_NO;
	}
	if (*upload_size) {
		enum MHD_Result r = take_upload(cn, upload, *upload_size);
		*upload_size = 0;
		return r;
	}
	fd_answer a = {.status = 404, .code = -1};
	enum MHD_Result ret;
	if (!strncmp(url, "/_", 2) && control(f, c, url, method, &a)) {
		ret = respond(c, &a);
		json_decref(a.body);
		return ret;
	}
	if (strncmp(url, "/api/v10/", 9)) {
		fd_error(&a, 404, 0);
		ret = respond(c, &a);
		json_decref(a.body);
		return ret;
	}
	pthread_mutex_lock(&f->mu);
	unsigned latency = f->latency_ms;
	pthread_mutex_unlock(&f->mu);
	if (latency) /* without the lock: other requests go on meanwhile */
		usleep(latency * 1000u);
	const char *ua =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
	const char *auth =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	json_t *rec = json_pack("{s:f,s:s,s:s,s:s?}", "t", fd_wall(), "method",
				method, "path", url, "user_agent", ua);
	pthread_mutex_lock(&f->mu);
	/* a body past the cap is reported by its received size: 413 */
	fd_api_locked(f, method, url + 8, auth, cn->body,
		      cn->seen > cn->len ? cn->seen : cn->len, rec, &a);
	json_array_append_new(f->reqs, rec);
	pthread_mutex_unlock(&f->mu);
	ret = respond(c, &a);
	json_decref(a.body);
	return ret;
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

unsigned fd_port(const fd *f)
{
	return f->port;
}

const char *fd_url(const fd *f)
{
	return f->url;
}

const char *fd_api_url(const fd *f)
{
	return f->api;
}

const char *fd_app_id(const fd *f)
{
	return f->app_id;
}

const char *fd_bot_token(const fd *f)
{
	return f->token;
}

const char *fd_public_key_hex(const fd *f)
{
	return f->pk_hex;
}

static bool keys_make(fd *f)
{
	unsigned char fpk[crypto_sign_PUBLICKEYBYTES];
	if (sodium_init() < 0 || crypto_sign_keypair(f->pk, f->sk) ||
	    crypto_sign_keypair(fpk, f->forge_sk))
		return false;
	sodium_bin2hex(f->pk_hex, sizeof(f->pk_hex), f->pk, sizeof(f->pk));
	return true;
}

fd *fd_start(const fd_opts *o)
{
	static const fd_opts none = {0};
	if (!o)
		o = &none;
	signal(SIGPIPE, SIG_IGN);
	fd *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	pthread_mutex_init(&f->mu, NULL);
	snprintf(f->app_id, sizeof(f->app_id), "%s",
		 o->application_id ? o->application_id : FD_APP_ID);
	snprintf(f->token, sizeof(f->token), "%s",
		 o->bot_token ? o->bot_token : FD_BOT_TOKEN);
	f->route_limit = o->route_limit > 0 ? o->route_limit : 5;
	f->route_ms = o->route_window_ms > 0 ? o->route_window_ms : 5000;
	f->global_per_s = o->global_per_s > 0 ? o->global_per_s : 50;
	f->latency_ms = o->latency_ms;
	snprintf(f->gateway, sizeof(f->gateway), "ws://127.0.0.1:9");
	f->session_remaining = 1000;
	f->guilds = json_object();
	f->channels = json_object();
	f->commands = json_object();
	f->scopes_off = json_object();
	f->store = json_object();
	f->creates = json_object();
	f->posted_to = json_object();
	f->reqs = json_array();
	f->msgs = json_array();
	f->answers = json_array();
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)o->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (keys_make(f))
		f->d = MHD_start_daemon(
		    MHD_USE_THREAD_PER_CONNECTION |
			MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
		    0, NULL, NULL, handle, f, MHD_OPTION_SOCK_ADDR, &sa,
		    MHD_OPTION_NOTIFY_COMPLETED, completed, f,
		    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
		    MHD_OPTION_END);
	if (!f->d) {
		fd_stop(f);
		return NULL;
	}
	const union MHD_DaemonInfo *di =
	    MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT);
	f->port = di ? di->port : 0;
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", f->port);
	snprintf(f->api, sizeof(f->api), "%s/api/v10", f->url);
	fd_add_channel(f, FD_GUILD_ID, FD_CHANNEL_ID, "incidents");
	fd_add_channel(f, FD_GUILD_ID, FD_CHANNEL2_ID, "general");
	return f;
}

void fd_stop(fd *f)
{
	if (!f)
		return;
	if (f->d)
		MHD_stop_daemon(f->d);
	for (size_t i = 0; i < f->nias; i++)
		json_decref(f->ias[i].original);
	free(f->ias);
	rules_clear_locked(f, NULL, true);
	free(f->rules);
	buckets_clear_locked(f);
	free(f->buckets);
	free(f->global.t);
	free(f->invalid.t);
	json_t *all[] = {f->guilds,    f->channels, f->commands, f->scopes_off,
			 f->store,     f->creates,  f->posted_to, f->reqs,
			 f->msgs,      f->answers};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		json_decref(all[i]);
	sodium_memzero(f->sk, sizeof(f->sk));
	pthread_mutex_destroy(&f->mu);
	free(f);
}

#ifdef FAKE_DISCORD_MAIN
/* fake-discord: the fake as a program for bench/ and manual runs. Prints
 * one line with what to configure, then serves until SIGINT or SIGTERM.
 *
 *   fake-discord [--port N] [--route-limit N --route-window-ms MS]
 *                [--global-per-s N] [--latency-ms MS] [--channels N]
 *
 * --channels N adds N text channels to FD_GUILD_ID, ids
 * 1300000000000001000 + i, named bench-<i> (for bench/discord_notify.sh).
 */
static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
	quit = 1;
}

int main(int argc, char **argv)
{
	fd_opts o = {0};
	long channels = 0;
	for (int i = 1; i < argc; i++) {
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--port") && next)
			o.port = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--route-limit") && next)
			o.route_limit = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--route-window-ms") && next)
			o.route_window_ms = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--global-per-s") && next)
			o.global_per_s = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--latency-ms") && next)
			o.latency_ms = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--channels") && next)
			channels = atol(argv[++i]);
		else {
			fprintf(stderr,
				"usage: fake-discord [--port N] [--route-limit"
				" N --route-window-ms MS] [--global-per-s N]"
				" [--latency-ms MS] [--channels N]\n");
			return 2;
		}
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fd *f = fd_start(&o);
	if (!f) {
		fprintf(stderr, "fake-discord: cannot start on port %u\n",
			o.port);
		return 1;
	}
	for (long i = 0; i < channels && i < 100000; i++) {
		char id[32], name[32];
		snprintf(id, sizeof id, "%llu", 1300000000000001000ULL + (unsigned long long)i);
		snprintf(name, sizeof name, "bench-%ld", i);
		fd_add_channel(f, FD_GUILD_ID, id, name);
	}
	printf("FAKE_DISCORD url=%s public_key=%s app_id=%s token=%s\n",
	       fd_api_url(f), fd_public_key_hex(f), fd_app_id(f),
	       fd_bot_token(f));
	fflush(stdout);
	while (!quit)
		pause();
	fd_stop(f);
	return 0;
}
#endif
