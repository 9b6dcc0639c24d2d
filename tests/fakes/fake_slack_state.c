/* The fake Slack's workspace settings, its record of requests, and
 * conversations.list paging. See fake_slack.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "fake_slack_int.h"

unsigned fake_slack_port(const fake_slack *f)
{
	return f->port;
}

const char *fake_slack_api_url(const fake_slack *f)
{
	return f->api_url;
}

void fake_slack_response_url(const fake_slack *f, const char *name, char *buf,
			     size_t len)
{
	snprintf(buf, len, "http://127.0.0.1:%u/response/%s", f->port, name);
}

void fake_slack_set_scopes(fake_slack *f, const char *scopes)
{
	pthread_mutex_lock(&f->mu);
	snprintf(f->scopes, sizeof(f->scopes), "%s", scopes);
	pthread_mutex_unlock(&f->mu);
}

void fake_slack_set_identity(fake_slack *f, const char *team,
			     const char *team_id, const char *bot_user,
			     const char *bot_user_id)
{
	pthread_mutex_lock(&f->mu);
	snprintf(f->team, sizeof(f->team), "%s", team);
	snprintf(f->team_id, sizeof(f->team_id), "%s", team_id);
	snprintf(f->bot_user, sizeof(f->bot_user), "%s", bot_user);
	snprintf(f->bot_user_id, sizeof(f->bot_user_id), "%s", bot_user_id);
	pthread_mutex_unlock(&f->mu);
}

void fake_slack_set_tokens(fake_slack *f, const char *bot, const char *app)
{
	pthread_mutex_lock(&f->mu);
	snprintf(f->bot_token, sizeof(f->bot_token), "%s", bot);
	snprintf(f->app_token, sizeof(f->app_token), "%s", app);
	pthread_mutex_unlock(&f->mu);
}

void fake_slack_revoke(fake_slack *f, const char *token)
{
	pthread_mutex_lock(&f->mu);
	json_object_set_new(f->revoked, token, json_true());
	pthread_mutex_unlock(&f->mu);
}

void fake_slack_add_channel(fake_slack *f, const char *id, const char *name,
			    bool is_private, bool is_member)
{
	pthread_mutex_lock(&f->mu);
	json_array_append_new(
	    f->channels,
	    json_pack("{s:s,s:s,s:b,s:b,s:b,s:b}", "id", id, "name", name,
		      "is_channel", !is_private, "is_private", is_private,
		      "is_member", is_member, "is_archived", 0));
	pthread_mutex_unlock(&f->mu);
}

void fake_slack_set_member(fake_slack *f, const char *id, bool is_member)
{
	pthread_mutex_lock(&f->mu);
	size_t i;
	json_t *c;
	json_array_foreach(f->channels, i, c) if (!strcmp(
	    json_string_value(json_object_get(c, "id")), id))
	    json_object_set_new(c, "is_member", json_boolean(is_member));
	pthread_mutex_unlock(&f->mu);
}

void fake_slack_set_page_cap(fake_slack *f, unsigned n)
{
	pthread_mutex_lock(&f->mu);
	f->page_cap = n;
	pthread_mutex_unlock(&f->mu);
}

void fake_slack_fail(fake_slack *f, const char *api, int times, int status,
		     const char *error, int retry_after)
{
	pthread_mutex_lock(&f->mu);
	json_object_set_new(f->fails, api,
			    json_pack("{s:i,s:i,s:s,s:i}", "times", times,
				      "status", status, "error", error,
				      "retry_after", retry_after));
	pthread_mutex_unlock(&f->mu);
}

void fake_slack_delay(fake_slack *f, const char *api, unsigned ms)
{
	pthread_mutex_lock(&f->mu);
	json_object_set_new(f->delays, api, json_integer(ms));
	pthread_mutex_unlock(&f->mu);
}

/* --- records ------------------------------------------------------------ */

static bool is_api(const json_t *rec, const char *api)
{
	return !api ||
	       !strcmp(json_string_value(json_object_get(rec, "api")), api);
}

json_t *fake_slack_requests(fake_slack *f, const char *api)
{
	json_t *out = json_array();
	pthread_mutex_lock(&f->mu);
	size_t i;
	json_t *r;
	json_array_foreach(f->records, i, r) if (is_api(r, api))
	    json_array_append_new(out, json_deep_copy(r));
	pthread_mutex_unlock(&f->mu);
	return out;
}

static size_t count_locked(fake_slack *f, const char *api)
{
	size_t n = 0, i;
	json_t *r;
	json_array_foreach(f->records, i, r) n += is_api(r, api);
	return n;
}

size_t fake_slack_count(fake_slack *f, const char *api)
{
	pthread_mutex_lock(&f->mu);
	size_t n = count_locked(f, api);
	pthread_mutex_unlock(&f->mu);
	return n;
}

bool fake_slack_wait(fake_slack *f, const char *api, size_t n, int timeout_ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&f->mu);
	bool ok;
	while (!(ok = count_locked(f, api) >= n) &&
	       pthread_cond_timedwait(&f->cv, &f->mu, &until) == 0)
		;
	pthread_mutex_unlock(&f->mu);
	return ok;
}

json_t *fake_slack_last(fake_slack *f, const char *api)
{
	json_t *all = fake_slack_requests(f, api);
	size_t n = json_array_size(all);
	json_t *last = n ? json_incref(json_array_get(all, n - 1)) : NULL;
	json_decref(all);
	return last;
}

json_t *fake_slack_messages(fake_slack *f)
{
	pthread_mutex_lock(&f->mu);
	json_t *m = json_deep_copy(f->messages);
	pthread_mutex_unlock(&f->mu);
	return m;
}

void fake_slack_clear(fake_slack *f)
{
	pthread_mutex_lock(&f->mu);
	json_array_clear(f->records);
	json_array_clear(f->messages);
	pthread_mutex_unlock(&f->mu);
}

/* --- conversations.list -------------------------------------------------- */

static bool type_wanted(const char *types, bool is_private)
{
	const char *want = is_private ? "private_channel" : "public_channel";
	return strstr(types, want) != NULL;
}

/* Cursors are opaque base64 like Slack's ("b2Zmc2V0OjI=" for offset 2),
 * so clients must encode them. */
static void make_cursor(size_t off, char *out, size_t len)
{
	char raw[32];
	unsigned char enc[64];
	int n = snprintf(raw, sizeof(raw), "offset:%zu", off);
	EVP_EncodeBlock(enc, (const unsigned char *)raw, n);
	snprintf(out, len, "%s", (const char *)enc);
}

static bool read_cursor(const char *c, size_t *off)
{
	unsigned char raw[64];
	size_t n = strlen(c);
	if (n == 0 || n > 40)
		return false;
	int k = EVP_DecodeBlock(raw, (const unsigned char *)c, (int)n);
	if (k <= 7)
		return false;
	raw[k] = '\0';
	return sscanf((const char *)raw, "offset:%zu", off) == 1;
}

static long param_int(const json_t *p, const char *k, long def)
{
	const json_t *v = json_object_get(p, k);
	if (json_is_integer(v))
		return (long)json_integer_value(v);
	if (json_is_string(v))
		return strtol(json_string_value(v), NULL, 10);
	return def;
}

json_t *fake_list_channels(fake_slack *f, const json_t *p, int *status)
{
	const char *types = json_string_value(json_object_get(p, "types"));
	const char *cur = json_string_value(json_object_get(p, "cursor"));
	const char *xa =
	    json_string_value(json_object_get(p, "exclude_archived"));
	bool excl = json_is_true(json_object_get(p, "exclude_archived")) ||
		    (xa && (!strcmp(xa, "true") || !strcmp(xa, "1")));
	if (!types || !*types)
		types = "public_channel";
	if (strstr(types, "private_channel") &&
	    !strstr(f->scopes, "groups:read"))
		return NULL; /* missing_scope groups:read */
	long limit = param_int(p, "limit", 100);
	if (limit < 1 || limit > 1000)
		limit = limit < 1 ? 100 : 1000;
	if (f->page_cap && (unsigned long)limit > f->page_cap)
		limit = (long)f->page_cap;
	size_t off = 0;
	if (cur && *cur && !read_cursor(cur, &off)) {
		*status = 200;
		return json_pack("{s:b,s:s}", "ok", 0, "error", "invalid_cursor");
	}
	json_t *page = json_array();
	size_t i, seen = 0;
	bool more = false;
	json_t *c;
	json_array_foreach(f->channels, i, c)
	{
		if (!type_wanted(types, json_is_true(json_object_get(
					   c, "is_private"))) ||
		    (excl && json_is_true(json_object_get(c, "is_archived"))))
			continue;
		if (seen++ < off)
			continue;
		if ((long)json_array_size(page) == limit) {
			more = true;
			break;
		}
		json_array_append(page, c);
	}
	char next[64] = "";
	if (more)
		make_cursor(off + json_array_size(page), next, sizeof(next));
	*status = 200;
	return json_pack("{s:b,s:o,s:{s:s}}", "ok", 1, "channels", page,
			 "response_metadata", "next_cursor", next);
}
