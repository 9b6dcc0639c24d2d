/* The fake Discord's API: routing, authentication, rate limits, injected
 * failures, validation and the endpoints. See fake_discord.h. Everything
 * here runs with fd.mu held (fd_api_locked is called by fake_discord.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_discord_int.h"

enum { R_AUTH = 1, R_BODY = 2, R_HOOK = 4 };

typedef struct req {
	fd *f;
	const char *p[4]; /* the {...} segments of the path, in order */
	const json_t *json;
	fd_ia *ia; /* webhooks and callbacks: the token's interaction */
	fd_answer *a;
} req;

typedef struct route {
	const char *method, *path;
	void (*fn)(req *r);
	int flags;
	int major; /* bit i: parameter i keys the bucket */
} route;

/* --- validation --------------------------------------------------------- */

static size_t chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

/* Adds {"code","message"} under errs at a dotted path ("embeds.0.title"),
 * in Discord's {"embeds":{"0":{"title":{"_errors":[...]}}}} shape. */
__attribute__((format(printf, 4, 5))) static void
form_err(json_t *errs, const char *path, const char *code, const char *fmt,
	 ...)
{
	char buf[160], msg[160], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", path);
	json_t *o = errs;
	for (char *t = strtok_r(buf, ".", &save); t;
	     t = strtok_r(NULL, ".", &save)) {
		json_t *c = json_object_get(o, t);
		if (!c) {
			c = json_object();
			json_object_set_new(o, t, c);
		}
		o = c;
	}
	json_t *l = json_object_get(o, "_errors");
	if (!l) {
		l = json_array();
		json_object_set_new(o, "_errors", l);
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_array_append_new(l, json_pack("{s:s,s:s}", "code", code,
					   "message", msg));
}

/* Answers 400 50035 when errs has any (and takes errs); true if none. */
static bool form_ok(fd_answer *a, json_t *errs)
{
	if (!json_object_size(errs)) {
		json_decref(errs);
		return true;
	}
	fd_set_answer(a, 400,
		      json_pack("{s:s,s:i,s:o}", "message", "Invalid Form Body",
				"code", 50035, "errors", errs));
	a->code = 50035;
	return false;
}

/* A dotted path for a form error (paths are short; a cut one would only
 * be a wrong name). */
__attribute__((format(printf, 3, 4))) static const char *
pathf(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, n, fmt, ap);
	va_end(ap);
	return out;
}

static const char *join(char *out, size_t n, const char *base,
			const char *k)
{
	snprintf(out, n, "%s%s%s", base, *base ? "." : "", k);
	return out;
}

/* A string of at most max characters (absent or null is fine); adds its
 * length to *total. */
static void limit_str(json_t *errs, const char *path, const json_t *v,
		      size_t max, size_t *total)
{
	if (!v || json_is_null(v))
		return;
	if (!json_is_string(v)) {
		form_err(errs, path, "BASE_TYPE_STRING",
			 "Could not interpret the value as string.");
		return;
	}
	size_t n = chars(json_string_value(v));
	if (total)
		*total += n;
	if (n > max)
		form_err(errs, path, "BASE_TYPE_MAX_LENGTH",
			 "Must be %zu or fewer in length.", max);
}

static bool is_list(json_t *errs, const char *path, const json_t *v)
{
	if (json_is_array(v))
		return true;
	form_err(errs, path, "LIST_TYPE_CONVERT",
		 "Only iterables may be used in a ListType");
	return false;
}

static void check_fields(json_t *errs, const char *path, const json_t *fs,
			 size_t *total)
{
	if (!fs || json_is_null(fs) || !is_list(errs, path, fs))
		return;
	if (json_array_size(fs) > 25)
		form_err(errs, path, "BASE_TYPE_MAX_LENGTH",
			 "Must be 25 or fewer in length.");
	size_t i;
	json_t *fl;
	json_array_foreach(fs, i, fl)
	{
		static const struct {
			const char *key;
			size_t max;
		} lim[] = {{"name", 256}, {"value", 1024}};
		for (size_t k = 0; k < 2; k++) {
			char p[128];
			pathf(p, sizeof(p), "%s.%zu.%s", path, i,
				 lim[k].key);
			const json_t *v = json_object_get(fl, lim[k].key);
			if (!json_is_string(v))
				form_err(errs, p, "BASE_TYPE_REQUIRED",
					 "This field is required");
			else
				limit_str(errs, p, v, lim[k].max, total);
		}
	}
}

static void check_embed(json_t *errs, const char *path, const json_t *e,
			size_t *total)
{
	char p[128];
	if (!json_is_object(e)) {
		form_err(errs, path, "MODEL_TYPE_CONVERT",
			 "Only dictionaries may be used in a ModelType");
		return;
	}
	limit_str(errs, join(p, sizeof(p), path, "title"),
		  json_object_get(e, "title"), 256, total);
	limit_str(errs, join(p, sizeof(p), path, "description"),
		  json_object_get(e, "description"), 4096, total);
	limit_str(errs, join(p, sizeof(p), path, "footer.text"),
		  json_object_get(json_object_get(e, "footer"), "text"), 2048,
		  total);
	limit_str(errs, join(p, sizeof(p), path, "author.name"),
		  json_object_get(json_object_get(e, "author"), "name"), 256,
		  total);
	check_fields(errs, join(p, sizeof(p), path, "fields"),
		     json_object_get(e, "fields"), total);
}

static bool nonempty(const json_t *m, const char *k)
{
	const json_t *v = json_object_get(m, k);
	return json_is_string(v) ? *json_string_value(v) != '\0'
	       : json_is_array(v) ? json_array_size(v) > 0
				  : json_is_object(v);
}

static bool msg_empty(const json_t *m)
{
	return !nonempty(m, "content") && !nonempty(m, "embeds") &&
	       !nonempty(m, "components") && !nonempty(m, "sticker_ids") &&
	       !nonempty(m, "poll");
}

/* A message body for a create or an edit, its fields under prefix
 * ("data" for a callback); false = answered 400. */
static bool check_message(const json_t *b, bool create, const char *prefix,
			  fd_answer *a)
{
	json_t *errs = json_object();
	char p[64];
	if (!json_is_object(b)) {
		form_err(errs, prefix, "MODEL_TYPE_CONVERT",
			 "Only dictionaries may be used in a ModelType");
		return form_ok(a, errs);
	}
	limit_str(errs, join(p, sizeof(p), prefix, "content"),
		  json_object_get(b, "content"), 2000, NULL);
	const json_t *em = json_object_get(b, "embeds");
	join(p, sizeof(p), prefix, "embeds");
	if (em && !json_is_null(em) && is_list(errs, p, em)) {
		size_t total = 0, i;
		json_t *e;
		if (json_array_size(em) > 10)
			form_err(errs, p, "BASE_TYPE_MAX_LENGTH",
				 "Must be 10 or fewer in length.");
		json_array_foreach(em, i, e)
		{
			char q[80];
			pathf(q, sizeof(q), "%s.%zu", p, i);
			check_embed(errs, q, e, &total);
		}
		if (total > 6000)
			form_err(errs, p, "MAX_EMBED_SIZE_EXCEEDED",
				 "Embed size exceeds maximum size of 6000");
	}
	const json_t *n = json_object_get(b, "nonce");
	join(p, sizeof(p), prefix, "nonce");
	if (json_is_string(n))
		limit_str(errs, p, n, 25, NULL);
	else if (n && !json_is_null(n) && !json_is_integer(n))
		form_err(errs, p, "NONCE_TYPE_INVALID",
			 "Only integers and strings are allowed as nonce");
	if (!form_ok(a, errs))
		return false;
	if (create && msg_empty(b)) {
		fd_error(a, 400, 50006);
		return false;
	}
	return true;
}

/* --- rate limits and injected failures ---------------------------------- */

/* A 429 with Discord's body and headers; code 0 = a plain rate limit. */
static void limited(fd_answer *a, double retry, const char *scope, int code)
{
	bool global = !strcmp(scope, "global");
	if (retry < 0)
		retry = 0;
	double ms = (double)(long long)(retry * 1000.0 + 0.999) / 1000.0;
	json_t *b = json_pack("{s:s,s:f,s:b}", "message",
			      fd_code_text(code, 429), "retry_after", ms,
			      "global", global);
	if (code)
		json_object_set_new(b, "code", json_integer(code));
	fd_set_answer(a, 429, b);
	a->code = code ? code : -1;
	long long up = (long long)retry;
	fd_header(a, "Retry-After", "%lld", up + ((double)up < retry));
	if (global)
		fd_header(a, "X-RateLimit-Global", "true");
	fd_header(a, "X-RateLimit-Scope", "%s", scope);
}

static bool has_header(const fd_answer *a, const char *name, const char *v)
{
	for (int i = 0; i < a->nh; i++)
		if (!strcmp(a->h[i].name, name) && !strcmp(a->h[i].value, v))
			return true;
	return false;
}

/* The bucket for key, its window rolled over when it has passed. */
static fd_bucket *bucket_locked(fd *f, const char *key, bool make)
{
	double now = fd_mono(), win = f->route_ms / 1000.0;
	for (size_t i = 0; i < f->nbuckets; i++) {
		fd_bucket *b = &f->buckets[i];
		if (strcmp(b->key, key))
			continue;
		if (now >= b->start + win) {
			b->start = now;
			b->used = 0;
		}
		return b;
	}
	fd_bucket *n = make ? realloc(f->buckets,
				      (f->nbuckets + 1) * sizeof(*n))
			    : NULL;
	if (!n)
		return NULL;
	f->buckets = n;
	fd_bucket *b = &n[f->nbuckets++];
	b->key = strdup(key);
	b->used = 0;
	b->start = now;
	return b;
}

static void bucket_headers(fd *f, fd_answer *a, const char *tmpl,
			   const char *key)
{
	fd_bucket *b = bucket_locked(f, key, false);
	double win = f->route_ms / 1000.0;
	double after = b ? b->start + win - fd_mono() : win;
	int left = f->route_limit - (b ? b->used : 0);
	unsigned char h[16];
	char hash[33];
	/* opaque and the same for every channel of one route, as Discord's */
	crypto_generichash(h, sizeof(h), (const unsigned char *)tmpl,
			   strlen(tmpl), NULL, 0);
	sodium_bin2hex(hash, sizeof(hash), h, sizeof(h));
	fd_header(a, "X-RateLimit-Limit", "%d", f->route_limit);
	fd_header(a, "X-RateLimit-Remaining", "%d", left < 0 ? 0 : left);
	fd_header(a, "X-RateLimit-Reset", "%.3f", fd_wall() + after);
	fd_header(a, "X-RateLimit-Reset-After", "%.3f", after);
	fd_header(a, "X-RateLimit-Bucket", "%s", hash);
}

static bool route_ok_locked(fd *f, const char *key, fd_answer *a)
{
	fd_bucket *b = bucket_locked(f, key, true);
	if (b && b->used >= f->route_limit) {
		limited(a, b->start + f->route_ms / 1000.0 - fd_mono(), "user",
			0);
		return false;
	}
	if (b)
		b->used++;
	return true;
}

static bool global_ok_locked(fd *f, fd_answer *a)
{
	double now = fd_mono();
	if (fd_times_count(&f->global, now - 1.0) >= (size_t)f->global_per_s) {
		limited(a, f->global.t[0] + 1.0 - now, "global", 0);
		return false;
	}
	fd_times_add(&f->global, now, 1.0);
	return true;
}

/* An injected failure for channel (NULL: the request touches none). */
static bool injected_locked(fd *f, const char *channel, fd_answer *a)
{
	for (size_t i = 0; i < f->nrules; i++) {
		fd_rule *r = &f->rules[i];
		if (!r->times || (r->channel && (!channel ||
						 strcmp(r->channel, channel))))
			continue;
		if (r->times > 0)
			r->times--;
		if (r->status == 429)
			limited(a, r->retry_after, r->scope, r->code);
		else
			fd_error(a, r->status, r->code);
		return true;
	}
	return false;
}

/* --- users, guilds, channels -------------------------------------------- */

static void ok(req *r, int status, json_t *body)
{
	fd_set_answer(r->a, status, body);
}

static void h_me(req *r)
{
	ok(r, 200,
	   json_pack("{s:s,s:s,s:s,s:b,s:n,s:n,s:b,s:i}", "id", r->f->app_id,
		     "username", "im-bot", "discriminator", "0", "bot", 1,
		     "global_name", "avatar", "verified", 1, "flags", 0));
}

static void h_my_guilds(req *r)
{
	json_t *out = json_array();
	const char *k;
	json_t *g;
	json_object_foreach(r->f->guilds, k, g)
	    json_array_append_new(
		out, json_pack("{s:s,s:O,s:n,s:b,s:s,s:[]}", "id", k, "name",
			       json_object_get(g, "name"), "icon", "owner", 0,
			       "permissions", FD_PERMS, "features"));
	ok(r, 200, out);
}

static void h_app(req *r)
{
	ok(r, 200,
	   json_pack("{s:s,s:s,s:s,s:b,s:b,s:i,s:s}", "id", r->f->app_id,
		     "name", "im", "description", "", "bot_public", 0,
		     "bot_require_code_grant", 0, "flags", 0, "verify_key",
		     r->f->pk_hex));
}

static void h_gateway(req *r)
{
	ok(r, 200,
	   json_pack("{s:s,s:i,s:{s:i,s:i,s:i,s:i}}", "url", r->f->gateway,
		     "shards", 1, "session_start_limit", "total", 1000,
		     "remaining", r->f->session_remaining, "reset_after",
		     86400000, "max_concurrency", 1));
}

static void h_guild_channels(req *r)
{
	if (!json_object_get(r->f->guilds, r->p[0])) {
		fd_error(r->a, 404, 10004);
		return;
	}
	json_t *out = json_array();
	const char *k;
	json_t *c;
	json_object_foreach(r->f->channels, k, c)
	{
		const char *g = fd_str(c, "guild_id");
		if (g && !strcmp(g, r->p[0]) &&
		    json_integer_value(json_object_get(c, "type")) == 0)
			json_array_append_new(out, json_deep_copy(c));
	}
	ok(r, 200, out);
}

static json_t *channel_or_404(req *r)
{
	json_t *c = json_object_get(r->f->channels, r->p[0]);
	if (!c)
		fd_error(r->a, 404, 10003);
	return c;
}

static void h_channel(req *r)
{
	json_t *c = channel_or_404(r);
	if (c)
		ok(r, 200, json_deep_copy(c));
}

/* --- messages ----------------------------------------------------------- */

/* The stored message mid of channel, or NULL. */
static json_t *stored(fd *f, const char *channel, const char *mid)
{
	json_t *m = json_object_get(json_object_get(f->store, mid), "msg");
	const char *c = fd_str(m, "channel_id");
	return c && !strcmp(c, channel) ? m : NULL;
}

/* Nonces compare as text: 123 and "123" are the same nonce. */
static bool nonce_key(const json_t *n, char out[112])
{
	if (json_is_integer(n))
		snprintf(out, 112, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(n));
	else if (json_is_string(n))
		snprintf(out, 112, "%s", json_string_value(n));
	else
		return false;
	return true;
}

/* A message of channel with nonce key, stored at or after since. */
static json_t *nonce_find(fd *f, const char *channel, const char *key,
			  double since)
{
	const char *id;
	json_t *e;
	json_object_foreach(f->store, id, e)
	{
		json_t *m = json_object_get(e, "msg");
		const char *n = fd_str(e, "nonce");
		const char *c = fd_str(m, "channel_id");
		if (n && c && !strcmp(n, key) && !strcmp(c, channel) &&
		    json_real_value(json_object_get(e, "t")) >= since)
			return m;
	}
	return NULL;
}

static void h_post(req *r)
{
	fd *f = r->f;
	const char *cid = r->p[0];
	if (!channel_or_404(r) || !check_message(r->json, true, "", r->a))
		return;
	char nk[112];
	bool has = nonce_key(json_object_get(r->json, "nonce"), nk);
	if (has && json_is_true(json_object_get(r->json, "enforce_nonce"))) {
		json_t *prev =
		    nonce_find(f, cid, nk, fd_mono() - FD_NONCE_WINDOW);
		if (prev) { /* Discord answers the earlier message */
			f->st.nonce_hits++;
			ok(r, 200, json_deep_copy(prev));
			return;
		}
	}
	if (has && nonce_find(f, cid, nk, -1.0))
		f->st.duplicates++;
	json_t *m = fd_message_new_locked(f, cid, r->json, false);
	if (has)
		json_object_set(m, "nonce", json_object_get(r->json, "nonce"));
	json_object_set_new(f->store, fd_str(m, "id"),
			    json_pack("{s:O,s:f,s:s?}", "msg", m, "t",
				      fd_mono(), "nonce", has ? nk : NULL));
	fd_record_msg_locked(f, "post", cid, fd_str(m, "id"), r->json);
	f->st.posted++;
	json_object_set_new(f->posted_to, cid, json_true());
	ok(r, 200, json_deep_copy(m));
	json_decref(m);
}

static json_t *message_or_404(req *r)
{
	if (!channel_or_404(r))
		return NULL;
	json_t *m = stored(r->f, r->p[0], r->p[1]);
	if (!m)
		fd_error(r->a, 404, 10008);
	return m;
}

static void h_get_message(req *r)
{
	json_t *m = message_or_404(r);
	if (m)
		ok(r, 200, json_deep_copy(m));
}

/* Applies an edit to m in place (it may be shared with an interaction's
 * @original); false = answered. */
static bool edit(req *r, json_t *m, const json_t *body)
{
	if (!check_message(body, false, "", r->a))
		return false;
	json_t *n = json_deep_copy(m);
	fd_message_apply(n, body);
	json_int_t flags = json_integer_value(json_object_get(n, "flags"));
	json_object_set_new(n, "flags", json_integer(flags & ~128)); /* done */
	if (msg_empty(n)) {
		json_decref(n);
		fd_error(r->a, 400, 50006);
		return false;
	}
	char ts[40];
	fd_iso_time(ts);
	json_object_set_new(n, "edited_timestamp", json_string(ts));
	json_object_update(m, n);
	json_decref(n);
	r->f->st.edited++;
	return true;
}

static void h_edit(req *r)
{
	json_t *m = message_or_404(r);
	if (!m || !edit(r, m, r->json))
		return;
	fd_record_msg_locked(r->f, "edit", r->p[0], r->p[1], r->json);
	ok(r, 200, json_deep_copy(m));
}

static void h_thread(req *r)
{
	fd *f = r->f;
	json_t *ch = channel_or_404(r);
	if (ch && json_integer_value(json_object_get(ch, "type")) != 0) {
		fd_error(r->a, 400, 50024);
		return;
	}
	json_t *m = ch ? message_or_404(r) : NULL;
	if (!m)
		return;
	if (json_object_get(f->channels, r->p[1])) {
		fd_error(r->a, 400, 160004);
		return;
	}
	json_t *errs = json_object();
	const json_t *name = json_object_get(r->json, "name");
	const json_t *aad = json_object_get(r->json, "auto_archive_duration");
	json_int_t d = aad ? json_integer_value(aad) : 1440;
	if (!json_is_string(name))
		form_err(errs, "name", "BASE_TYPE_REQUIRED",
			 "This field is required");
	else if (!*json_string_value(name) ||
		 chars(json_string_value(name)) > 100)
		form_err(errs, "name", "BASE_TYPE_BAD_LENGTH",
			 "Must be between 1 and 100 in length.");
	if (d != 60 && d != 1440 && d != 4320 && d != 10080)
		form_err(errs, "auto_archive_duration", "BASE_TYPE_CHOICES",
			 "Value must be one of {60, 1440, 4320, 10080}.");
	if (!form_ok(r->a, errs))
		return;
	char ts[40];
	fd_iso_time(ts);
	/* a thread started from a message has the message's id */
	json_t *t = json_pack(
	    "{s:s,s:i,s:O,s:s,s:s,s:O,s:n,s:i,s:i,s:i,s:i,"
	    "s:{s:b,s:I,s:s,s:b,s:s}}",
	    "id", r->p[1], "type", 11, "guild_id",
	    json_object_get(ch, "guild_id"), "parent_id", r->p[0], "owner_id",
	    f->app_id, "name", name, "last_message_id", "message_count", 0,
	    "member_count", 1, "rate_limit_per_user", 0, "flags", 0,
	    "thread_metadata", "archived", 0, "auto_archive_duration",
	    (json_int_t)d, "archive_timestamp", ts, "locked", 0,
	    "create_timestamp", ts);
	json_object_set_new(f->channels, r->p[1], t);
	json_int_t flags = json_integer_value(json_object_get(m, "flags"));
	json_object_set_new(m, "flags", json_integer(flags | 32)); /* thread */
	fd_record_msg_locked(f, "thread", r->p[0], r->p[1], r->json);
	ok(r, 201, json_deep_copy(t));
}

/* --- application commands ----------------------------------------------- */

static bool name_ok(const json_t *v)
{
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > 32)
		return false;
	for (; *s; s++)
		if (!(*s == '-' || *s == '_' || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

static void check_len(json_t *errs, const char *path, const json_t *v,
		      size_t lo, size_t hi)
{
	size_t n = json_is_string(v) ? chars(json_string_value(v)) : 0;
	if (!json_is_string(v))
		form_err(errs, path, "BASE_TYPE_REQUIRED",
			 "This field is required");
	else if (n < lo || n > hi)
		form_err(errs, path, "BASE_TYPE_BAD_LENGTH",
			 "Must be between %zu and %zu in length.", lo, hi);
}

static json_int_t cmd_type(const json_t *c)
{
	const json_t *t = json_object_get(c, "type");
	return t ? json_integer_value(t) : 1; /* CHAT_INPUT */
}

/* Unique names within one list (of commands: per type). */
static void check_unique(json_t *errs, const char *path, const json_t *l,
			 bool by_type)
{
	size_t i, j;
	json_t *a, *b;
	json_array_foreach(l, i, a) json_array_foreach(l, j, b)
	{
		const char *na = fd_str(a, "name"), *nb = fd_str(b, "name");
		if (j >= i || !na || !nb || strcmp(na, nb) ||
		    (by_type && cmd_type(a) != cmd_type(b)))
			continue;
		char p[128];
		pathf(p, sizeof(p), "%s%s%zu.name", path, *path ? "." : "",
			 i);
		form_err(errs, p, "APPLICATION_COMMANDS_DUPLICATE_NAME",
			 "Application command names must be unique");
		break;
	}
}

static void check_choices(json_t *errs, const char *path, const json_t *cs)
{
	if (!cs || json_is_null(cs) || !is_list(errs, path, cs))
		return;
	if (json_array_size(cs) > 25)
		form_err(errs, path, "BASE_TYPE_MAX_LENGTH",
			 "Must be 25 or fewer in length.");
	size_t i;
	json_t *c;
	json_array_foreach(cs, i, c)
	{
		char p[160];
		pathf(p, sizeof(p), "%s.%zu.name", path, i);
		check_len(errs, p, json_object_get(c, "name"), 1, 100);
		pathf(p, sizeof(p), "%s.%zu.value", path, i);
		if (!json_object_get(c, "value"))
			form_err(errs, p, "BASE_TYPE_REQUIRED",
				 "This field is required");
	}
}

/* Options of a command (parent 0), a subcommand group (2) or a
 * subcommand (1). */
static void check_options(json_t *errs, const char *path, const json_t *os,
			  int parent)
{
	if (!os || json_is_null(os) || !is_list(errs, path, os))
		return;
	if (json_array_size(os) > 25)
		form_err(errs, path, "BASE_TYPE_MAX_LENGTH",
			 "Must be 25 or fewer in length.");
	bool optional_seen = false;
	size_t i;
	json_t *o;
	json_array_foreach(os, i, o)
	{
		char p[128], q[160];
		pathf(p, sizeof(p), "%s.%zu", path, i);
		json_int_t t = json_integer_value(json_object_get(o, "type"));
		bool sub = t == 1 || t == 2;
		if (t < 1 || t > 11 || (parent == 2 && t != 1) ||
		    (parent == 1 && sub))
			form_err(errs, join(q, sizeof(q), p, "type"),
				 "BASE_TYPE_CHOICES",
				 parent == 2 ? "Value must be one of {1}."
					     : "Value must be one of {1, 2, 3, "
					       "4, 5, 6, 7, 8, 9, 10, 11}.");
		if (!name_ok(json_object_get(o, "name")))
			form_err(errs, join(q, sizeof(q), p, "name"),
				 "APPLICATION_COMMAND_INVALID_NAME",
				 "Command name is invalid");
		check_len(errs, join(q, sizeof(q), p, "description"),
			  json_object_get(o, "description"), 1, 100);
		if (sub) {
			check_options(errs, join(q, sizeof(q), p, "options"),
				      json_object_get(o, "options"), (int)t);
			continue;
		}
		check_choices(errs, join(q, sizeof(q), p, "choices"),
			      json_object_get(o, "choices"));
		bool must = json_is_true(json_object_get(o, "required"));
		if (must && optional_seen)
			form_err(errs, path,
				 "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
				 "Required options must be placed before "
				 "non-required options");
		optional_seen |= !must;
	}
	check_unique(errs, path, os, false);
}

static void check_commands(json_t *errs, const json_t *cmds)
{
	if (!is_list(errs, "", cmds))
		return;
	size_t i, chat = 0;
	json_t *c;
	json_array_foreach(cmds, i, c)
	{
		char p[32], q[64];
		snprintf(p, sizeof(p), "%zu", i);
		if (!json_is_object(c)) {
			form_err(errs, p, "MODEL_TYPE_CONVERT",
				 "Only dictionaries may be used in a "
				 "ModelType");
			continue;
		}
		json_int_t t = cmd_type(c);
		if (t < 1 || t > 3) {
			form_err(errs, join(q, sizeof(q), p, "type"),
				 "BASE_TYPE_CHOICES",
				 "Value must be one of {1, 2, 3}.");
		} else if (t == 1) {
			chat++;
			if (!name_ok(json_object_get(c, "name")))
				form_err(errs, join(q, sizeof(q), p, "name"),
					 "APPLICATION_COMMAND_INVALID_NAME",
					 "Command name is invalid");
			check_len(errs, join(q, sizeof(q), p, "description"),
				  json_object_get(c, "description"), 1, 100);
			check_options(errs, join(q, sizeof(q), p, "options"),
				      json_object_get(c, "options"), 0);
		} else {
			check_len(errs, join(q, sizeof(q), p, "name"),
				  json_object_get(c, "name"), 1, 32);
		}
	}
	if (chat > 100)
		form_err(errs, "", "BASE_TYPE_MAX_LENGTH",
			 "Must be 100 or fewer in length.");
	check_unique(errs, "", cmds, true);
}

static json_t *strip_ids(const json_t *c)
{
	json_t *n = json_deep_copy(c);
	static const char *const ids[] = {"id", "application_id", "version",
					  "guild_id"};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		json_object_del(n, ids[i]);
	return n;
}

/* The stored form of command c: an existing command of that name and type
 * keeps its id (and its version when unchanged); a new one counts. */
static json_t *cmd_stored(fd *f, const json_t *c, const json_t *old,
			  const char *guild, int *created)
{
	json_t *n = strip_ids(c);
	if (!json_object_get(n, "type"))
		json_object_set_new(n, "type", json_integer(1));
	if (!json_object_get(n, "description"))
		json_object_set_new(n, "description", json_string(""));
	if (!json_object_get(n, "default_member_permissions"))
		json_object_set_new(n, "default_member_permissions",
				    json_null());
	if (!json_object_get(n, "nsfw"))
		json_object_set_new(n, "nsfw", json_false());
	if (!guild && !json_object_get(n, "dm_permission"))
		json_object_set_new(n, "dm_permission", json_true());
	json_t *prev = NULL, *o;
	size_t i;
	json_array_foreach(old, i, o)
	{
		if (json_equal(json_object_get(o, "name"),
			       json_object_get(n, "name")) &&
		    json_equal(json_object_get(o, "type"),
			       json_object_get(n, "type")))
			prev = o;
	}
	json_t *bare = prev ? strip_ids(prev) : NULL;
	bool same = bare && json_equal(bare, n);
	json_decref(bare);
	char id[24], ver[24];
	if (prev) {
		snprintf(id, sizeof(id), "%s", fd_str(prev, "id"));
	} else {
		fd_new_id_locked(f, id);
		(*created)++;
	}
	if (same)
		snprintf(ver, sizeof(ver), "%s", fd_str(prev, "version"));
	else
		fd_new_id_locked(f, ver);
	json_object_set_new(n, "id", json_string(id));
	json_object_set_new(n, "application_id", json_string(f->app_id));
	json_object_set_new(n, "version", json_string(ver));
	if (guild)
		json_object_set_new(n, "guild_id", json_string(guild));
	return n;
}

/* The scope of a command route ("global" or the guild id); false =
 * answered (unknown application, or no access). */
static bool cmd_scope(req *r, char scope[32])
{
	fd *f = r->f;
	const char *guild = r->p[1];
	if (strcmp(r->p[0], f->app_id)) {
		fd_error(r->a, 404, 10002);
		return false;
	}
	snprintf(scope, 32, "%s", guild ? guild : "global");
	if ((guild && !json_object_get(f->guilds, guild)) ||
	    json_object_get(f->scopes_off, scope)) {
		fd_error(r->a, 403, 50001);
		return false;
	}
	return true;
}

static void h_cmds_get(req *r)
{
	char scope[32];
	if (!cmd_scope(r, scope))
		return;
	json_t *c = json_object_get(r->f->commands, scope);
	ok(r, 200, c ? json_deep_copy(c) : json_array());
}

static void h_cmds_put(req *r)
{
	fd *f = r->f;
	char scope[32];
	if (!cmd_scope(r, scope))
		return;
	f->st.command_puts++;
	json_t *errs = json_object();
	check_commands(errs, r->json);
	if (!form_ok(r->a, errs))
		return;
	json_t *old = json_object_get(f->commands, scope), *c;
	json_t *out = json_array();
	int created = 0;
	size_t i;
	json_array_foreach(r->json, i, c) json_array_append_new(
	    out, cmd_stored(f, c, old, r->p[1], &created));
	double now = fd_wall();
	json_int_t day = (json_int_t)(now / 86400.0);
	json_t *cr = json_object_get(f->creates, scope);
	if (!cr || json_integer_value(json_object_get(cr, "day")) != day) {
		cr = json_pack("{s:I,s:i}", "day", day, "n", 0);
		json_object_set_new(f->creates, scope, cr);
	}
	json_int_t n = json_integer_value(json_object_get(cr, "n"));
	if (n + created > FD_DAILY_CREATES) {
		json_decref(out);
		limited(r->a, (double)(day + 1) * 86400.0 - now, "user", 30034);
		return;
	}
	json_object_set_new(cr, "n", json_integer(n + created));
	f->st.command_creates += created;
	json_object_set_new(f->commands, scope, out);
	ok(r, 200, json_deep_copy(out));
}

/* --- interaction webhooks and callbacks --------------------------------- */

/* The live interaction of a webhook (p[0] = app id) or callback (p[0] =
 * interaction id) path; else answers 404 `code`. */
static fd_ia *hook_ia(req *r, int code)
{
	fd_ia *ia = r->ia;
	if (!ia || fd_mono() - ia->t >= FD_TOKEN_TTL ||
	    strcmp(r->p[0], code == 10062 ? ia->id : r->f->app_id)) {
		fd_error(r->a, 404, code);
		return NULL;
	}
	return ia;
}

static void h_followup(req *r)
{
	fd *f = r->f;
	fd_ia *ia = hook_ia(r, 10015);
	if (!ia)
		return;
	if (!ia->acked) { /* the webhook exists once answered */
		fd_error(r->a, 404, 10015);
		return;
	}
	if (!check_message(r->json, true, "", r->a))
		return;
	json_t *m = fd_message_new_locked(f, ia->channel, r->json, true);
	fd_record_msg_locked(f, "followup", ia->channel, fd_str(m, "id"),
			     r->json);
	f->st.posted++;
	json_object_set_new(f->posted_to, ia->channel, json_true());
	ok(r, 200, m);
}

static fd_ia *original_or_404(req *r)
{
	fd_ia *ia = hook_ia(r, 10015);
	if (ia && !ia->original) {
		fd_error(r->a, 404, 10008);
		return NULL;
	}
	return ia;
}

static void h_original(req *r)
{
	fd_ia *ia = original_or_404(r);
	if (ia)
		ok(r, 200, json_deep_copy(ia->original));
}

static void h_original_edit(req *r)
{
	fd_ia *ia = original_or_404(r);
	if (!ia || !edit(r, ia->original, r->json))
		return;
	fd_record_msg_locked(r->f, "original", ia->channel,
			     fd_str(ia->original, "id"), r->json);
	ok(r, 200, json_deep_copy(ia->original));
}

static void h_callback(req *r)
{
	fd_ia *ia = hook_ia(r, 10062);
	if (!ia)
		return;
	if (ia->acked) {
		fd_error(r->a, 400, 40060);
		return;
	}
	const json_t *tv = json_object_get(r->json, "type");
	int t = (int)json_integer_value(tv);
	bool valid = json_is_integer(tv) &&
		     (ia->type == 1 ? t == 1 : t >= 4 && t <= 9);
	json_t *errs = json_object();
	if (!valid)
		form_err(errs, "type", "BASE_TYPE_CHOICES", "%s",
			 ia->type == 1 ? "Value must be one of {1}."
				       : "Value must be one of {4, 5, 6, 7, 8, "
					 "9}.");
	if (!form_ok(r->a, errs))
		return;
	const json_t *data = json_object_get(r->json, "data");
	if ((t == 4 || (t == 7 && data)) &&
	    !check_message(data, t == 4, "data", r->a))
		return;
	fd_ack_locked(r->f, ia, r->json);
	json_array_append_new(
	    r->f->answers,
	    json_pack("{s:s,s:s,s:s,s:i,s:O,s:b}", "id", ia->id, "token",
		      ia->token, "via", "callback", "status", 204, "answer",
		      r->json, "first", 1));
	ok(r, 204, NULL);
}

/* --- routing ------------------------------------------------------------ */

static const route routes[] = {
    {"GET", "/users/@me", h_me, R_AUTH, 0},
    {"GET", "/users/@me/guilds", h_my_guilds, R_AUTH, 0},
    {"GET", "/applications/@me", h_app, R_AUTH, 0},
    {"GET", "/gateway/bot", h_gateway, R_AUTH, 0},
    {"GET", "/guilds/{g}/channels", h_guild_channels, R_AUTH, 1},
    {"GET", "/channels/{id}", h_channel, R_AUTH, 1},
    {"POST", "/channels/{id}/messages", h_post, R_AUTH | R_BODY, 1},
    {"GET", "/channels/{id}/messages/{mid}", h_get_message, R_AUTH, 1},
    {"PATCH", "/channels/{id}/messages/{mid}", h_edit, R_AUTH | R_BODY, 1},
    {"POST", "/channels/{id}/messages/{mid}/threads", h_thread,
     R_AUTH | R_BODY, 1},
    {"GET", "/applications/{app}/commands", h_cmds_get, R_AUTH, 0},
    {"PUT", "/applications/{app}/commands", h_cmds_put, R_AUTH | R_BODY, 0},
    {"GET", "/applications/{app}/guilds/{g}/commands", h_cmds_get, R_AUTH,
     2},
    {"PUT", "/applications/{app}/guilds/{g}/commands", h_cmds_put,
     R_AUTH | R_BODY, 2},
    {"POST", "/webhooks/{app}/{token}", h_followup, R_HOOK | R_BODY, 3},
    {"GET", "/webhooks/{app}/{token}/messages/@original", h_original,
     R_HOOK, 3},
    {"PATCH", "/webhooks/{app}/{token}/messages/@original", h_original_edit,
     R_HOOK | R_BODY, 3},
    {"POST", "/interactions/{id}/{token}/callback", h_callback,
     R_HOOK | R_BODY, 3},
};

/* Does path (split in seg[n]) fit pattern? Fills p with its {...}. */
static bool path_match(const char *pat, char *const *seg, size_t n,
		       const char **p)
{
	size_t i = 0, k = 0;
	for (const char *s = pat; *s == '/'; i++) {
		s++;
		const char *e = strchr(s, '/');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		if (i >= n)
			return false;
		if (*s == '{' && k < 4)
			p[k++] = seg[i];
		else if (strlen(seg[i]) != l || strncmp(seg[i], s, l))
			return false;
		s += l;
	}
	return i == n;
}

/* The route for method and path (split in place); *other: the path is
 * known with another method. */
static const route *route_find(const char *method, char *path,
			       const char **p, bool *other)
{
	char *seg[8];
	size_t n = 0;
	char *s = path;
	while (*s == '/' && n < 8) {
		*s++ = '\0';
		seg[n++] = s;
		s = strchrnul(s, '/');
	}
	*other = false;
	if (*s)
		return NULL;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const char *q[4] = {0};
		if (!path_match(routes[i].path, seg, n, q))
			continue;
		if (strcmp(routes[i].method, method)) {
			*other = true;
			continue;
		}
		memcpy(p, q, sizeof(q));
		return &routes[i];
	}
	return NULL;
}

/* What the record says of the body beyond the JSON itself. */
static void record_body(json_t *rec, json_t *json)
{
	json_t *am = json_object_get(json, "allowed_mentions");
	if (!am) /* a callback carries its message in data */
		am = json_object_get(json_object_get(json, "data"),
				     "allowed_mentions");
	json_t *parse = json_object_get(am, "parse");
	json_t *nonce = json_object_get(json, "nonce");
	json_object_set(rec, "json", json ? json : json_null());
	json_object_set(rec, "nonce", nonce ? nonce : json_null());
	json_object_set_new(
	    rec, "enforce_nonce",
	    json_boolean(json_is_true(json_object_get(json, "enforce_nonce"))));
	json_object_set_new(
	    rec, "allowed_mentions_none",
	    json_boolean(json_is_array(parse) && !json_array_size(parse)));
}

/* Counts the answer (429s, invalid requests) and finishes the record. */
static void tally_locked(fd *f, const fd_answer *a, json_t *rec,
			 const char *channel)
{
	int s = a->status;
	if (s == 429) {
		f->st.rate_limited++;
		if (has_header(a, "X-RateLimit-Global", "true"))
			f->st.rate_limited_global++;
	}
	if ((s == 401 || s == 403 || s == 429) &&
	    !has_header(a, "X-RateLimit-Scope", "shared")) {
		f->st.invalid++;
		fd_times_add(&f->invalid, fd_mono(), 600.0);
	}
	json_object_set_new(rec, "status", json_integer(s));
	json_object_set_new(rec, "code", a->code >= 0 ? json_integer(a->code)
						      : json_null());
	json_object_set_new(rec, "channel",
			    *channel ? json_string(channel) : json_null());
}

void fd_api_locked(fd *f, const char *method, const char *path,
		   const char *auth, const char *body, size_t len,
		   json_t *rec, fd_answer *a)
{
	double wall = fd_wall();
	if (!f->st.requests++)
		f->first_t = wall;
	f->last_t = wall;
	char *buf = strdup(path);
	req r = {.f = f, .a = a};
	bool other = false;
	const route *rt = buf ? route_find(method, buf, r.p, &other) : NULL;
	json_t *json = len && len <= FD_MAX_BODY && body
			   ? json_loadb(body, len, 0, NULL)
			   : NULL;
	r.json = json;
	record_body(rec, json);
	char tmpl[96], key[256], channel[32] = "";
	snprintf(tmpl, sizeof(tmpl), "%s %s", method, rt ? rt->path : "?");
	json_object_set_new(rec, "route", rt ? json_string(tmpl) : json_null());
	bool authed = auth && !strncmp(auth, "Bot ", 4) &&
		      !strcmp(auth + 4, f->token) && !f->revoked;
	json_object_set_new(rec, "auth", json_boolean(authed));
	if (rt && (rt->flags & R_HOOK)) {
		r.ia = fd_ia_find_locked(f, r.p[1]);
		if (r.ia)
			snprintf(channel, sizeof(channel), "%s", r.ia->channel);
	} else if (rt && !strncmp(rt->path, "/channels/", 10)) {
		snprintf(channel, sizeof(channel), "%s", r.p[0]);
	}
	/* the bucket: the route and its major parameters */
	snprintf(key, sizeof(key), "%s", tmpl);
	for (int i = 0; rt && i < 4; i++)
		if ((rt->major & (1 << i)) && r.p[i])
			snprintf(key + strlen(key), sizeof(key) - strlen(key),
				 " %s", r.p[i]);
	if (!rt) {
		fd_error(a, other ? 405 : 404, 0);
	} else if ((rt->flags & R_AUTH) && !authed) {
		fd_error(a, 401, 0);
		f->st.auth_failures++;
	} else if (len > FD_MAX_BODY) {
		fd_error(a, 413, 40005);
	} else if (injected_locked(f, *channel ? channel : NULL, a) ||
		   ((rt->flags & R_AUTH) && !global_ok_locked(f, a)) ||
		   !route_ok_locked(f, key, a)) {
		/* answered */
	} else if ((rt->flags & R_BODY) && !json) {
		fd_error(a, 400, 50109);
	} else {
		rt->fn(&r);
	}
	if (a->status != 401) /* Discord sends no bucket with a 401 */
		bucket_headers(f, a, tmpl, key);
	tally_locked(f, a, rec, channel);
	json_decref(json);
	free(buf);
}
