/* status(): what an operator needs to fix a Slack app without opening
 * its settings: is the token valid (auth.test), which team and bot, which
 * required scopes are missing (x-oauth-scopes), the mode and connection,
 * which channels the bot sees (every page of conversations.list) and
 * whether the configured ones are usable, and the last error.
 *
 * The channel list is part of status because the connector ABI has no
 * other admin query; it costs one conversations.list call per 200
 * channels (Tier 2), so status is for operators, not for polling. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slack.h"

#define PAGE_LIMIT 200
#define MAX_PAGES 100

static void problem(json_t *problems, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void problem(json_t *problems, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(problems, json_string(buf));
}

static bool configured(const slk *s, const char *id)
{
	if (s->cfg.default_channel && strcmp(s->cfg.default_channel, id) == 0)
		return true;
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)s->notify_channels, k, v)
	{
		const char *c = json_string_value(v);
		if (c && strcmp(c, id) == 0)
			return true;
	}
	return false;
}

/* Percent-encodes a cursor (base64: + / =) for a form body. */
static void encode(const char *in, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (; *in && o + 4 < len; in++) {
		unsigned char c = (unsigned char)*in;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

/* One page; returns the next cursor (malloc'd, "" at the end) or NULL. */
static char *list_page(slk *s, const char *types, const char *cursor,
		       json_t *channels, slk_api *r)
{
	char form[1536], enc[1024];
	encode(cursor ? cursor : "", enc, sizeof(enc));
	snprintf(form, sizeof(form),
		 "types=%s&exclude_archived=true&limit=%d%s%s", types,
		 PAGE_LIMIT, *enc ? "&cursor=" : "", enc);
	if (slk_api_call(s, "conversations.list", s->cfg.bot_token, NULL, form,
			 r) != 0)
		return NULL;
	size_t i;
	const json_t *c;
	json_array_foreach(json_object_get(r->body, "channels"), i, c)
	{
		const char *id = json_string_value(json_object_get(c, "id"));
		const char *name = json_string_value(json_object_get(c, "name"));
		if (!id)
			continue;
		json_array_append_new(
		    channels,
		    json_pack("{s:s,s:s,s:b,s:b,s:b}", "id", id, "name",
			      name ? name : "", "private",
			      json_is_true(json_object_get(c, "is_private")),
			      "is_member",
			      json_is_true(json_object_get(c, "is_member")),
			      "configured", configured(s, id)));
	}
	const char *next = json_string_value(json_object_get(
	    json_object_get(r->body, "response_metadata"), "next_cursor"));
	if (next && strlen(next) > 500)
		next = ""; /* not a cursor Slack would send */
	return strdup(next ? next : "");
}

/* Every page of conversations.list; private channels too when the token
 * has groups:read. Sets "channels" or "channels_error". */
static void list_channels(slk *s, json_t *o)
{
	json_t *channels = json_array();
	const char *types = "public_channel,private_channel";
	char *cursor = strdup("");
	slk_api r = {0};
	int pages = 0;
	while (cursor && pages < MAX_PAGES) {
		slk_api_clear(&r);
		char *next = list_page(s, types, cursor, channels, &r);
		if (!next && pages == 0 && !strcmp(r.error, "missing_scope") &&
		    strchr(types, ',')) {
			types = "public_channel"; /* no groups:read */
			continue;
		}
		free(cursor);
		cursor = next;
		pages++;
		if (!cursor || !*cursor)
			break;
	}
	if (!cursor) {
		json_object_set_new(o, "channels_error", json_string(r.error));
	} else if (*cursor) {
		json_object_set_new(o, "channels_truncated", json_true());
	}
	free(cursor);
	slk_api_clear(&r);
	json_object_set_new(o, "private_channels_listed",
			    json_boolean(strchr(types, ',') != NULL));
	json_object_set_new(o, "channels", channels);
}

static json_t *find_channel(const json_t *o, const char *id)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(o, "channels"), i, c)
	{
		const char *cid = json_string_value(json_object_get(c, "id"));
		if (cid && id && strcmp(cid, id) == 0)
			return c;
	}
	return NULL;
}

/* Required scopes vs x-oauth-scopes. */
static void scopes(json_t *o, const char *granted, json_t *problems)
{
	json_t *have = json_array(), *missing = json_array(),
	       *need = json_array();
	char *g = strdup(granted ? granted : ""), *save = NULL;
	for (char *t = g ? strtok_r(g, ", ", &save) : NULL; t;
	     t = strtok_r(NULL, ", ", &save))
		json_array_append_new(have, json_string(t));
	char req[] = SLK_REQUIRED_SCOPES;
	for (char *t = strtok_r(req, " ", &save); t;
	     t = strtok_r(NULL, " ", &save)) {
		json_array_append_new(need, json_string(t));
		bool found = false;
		size_t i;
		json_t *h;
		json_array_foreach(have, i, h) found |=
		    strcmp(json_string_value(h), t) == 0;
		if (!found)
			json_array_append_new(missing, json_string(t));
	}
	free(g);
	if (json_array_size(missing)) {
		char list[256] = "";
		size_t i;
		json_t *m;
		json_array_foreach(missing, i, m)
		{
			size_t n = strlen(list);
			snprintf(list + n, sizeof(list) - n, "%s%s",
				 i ? ", " : "", json_string_value(m));
		}
		problem(problems,
			"missing scopes: %s: add them to the Slack app (OAuth "
			"& Permissions) and reinstall the app",
			list);
	}
	json_object_set_new(o, "scopes", have);
	json_object_set_new(o, "required_scopes", need);
	json_object_set_new(o, "missing_scopes", missing);
}

static void check_channel(slk *s, json_t *o, const char *what,
			  const char *id, json_t *problems)
{
	if (!id || !*id || !json_is_array(json_object_get(o, "channels")))
		return;
	const json_t *c = find_channel(o, id);
	char bot[96];
	slk_bot_name(s, bot, sizeof(bot));
	if (!c)
		problem(problems,
			"%s %s not found: use the channel id (C0123ABC), not "
			"its name; private channels need the bot invited",
			what, id);
	else if (!json_is_true(json_object_get(c, "is_member")))
		problem(problems,
			"the bot is not in %s %s (#%s): invite the bot with "
			"/invite @%s",
			what, id, json_string_value(json_object_get(c, "name")),
			*bot ? bot : "<bot>");
}

static void identity(slk *s, json_t *o, json_t *problems)
{
	slk_api r;
	slk_api_call(s, "auth.test", s->cfg.bot_token, NULL, "", &r);
	slk_note_auth(s, &r);
	json_object_set_new(o, "token_valid", json_boolean(r.ok));
	if (r.ok) {
		const char *keys[][2] = {{"team", "team"},
					 {"team_id", "team_id"},
					 {"user", "bot_user"},
					 {"user_id", "bot_user_id"},
					 {"bot_id", "bot_id"},
					 {"url", "url"}};
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			json_t *v = json_object_get(r.body, keys[i][0]);
			if (json_is_string(v))
				json_object_set(o, keys[i][1], v);
		}
		scopes(o, r.scopes, problems);
		list_channels(s, o);
	} else if (r.http) {
		json_object_set_new(o, "token_error", json_string(r.error));
		problem(problems,
			"bot token rejected by auth.test (%s): the token was "
			"revoked or is wrong: set SLACK_BOT_TOKEN",
			r.error);
	} else {
		json_object_set_new(o, "token_error", json_string(r.error));
		problem(problems, "cannot reach Slack at %s: %s", s->api_base,
			r.error);
	}
	slk_api_clear(&r);
}

int slk_status(void *state, json_t **out)
{
	slk *s = state;
	json_t *o = json_object(), *problems = json_array();
	if (!o || !problems) {
		json_decref(o);
		json_decref(problems);
		return IM_ENOMEM;
	}
	json_object_set_new(o, "platform", json_string(SLK_PLATFORM));
	json_object_set_new(o, "mode", json_string(s->socket_mode ? "socket"
								   : "http"));
	json_object_set_new(o, "api_base_url", json_string(s->api_base));
	identity(s, o, problems);
	check_channel(s, o, "default_channel", s->cfg.default_channel, problems);
	const char *sev;
	json_t *v;
	json_object_foreach(s->notify_channels, sev, v)
	    check_channel(s, o, sev, json_string_value(v), problems);
	if (s->cfg.default_channel)
		json_object_set_new(o, "default_channel",
				    json_string(s->cfg.default_channel));
	json_object_set(o, "notification_channels", s->notify_channels);
	bool token_ok = json_is_true(json_object_get(o, "token_valid"));
	if (s->socket_mode) {
		json_t *sock = slk_socket_status(s);
		bool up = json_is_true(json_object_get(sock, "connected"));
		json_object_update(o, sock);
		json_decref(sock);
		if (!up)
			problem(problems, "Socket Mode is not connected (%s)",
				json_string_value(json_object_get(o, "connection")));
		json_object_set_new(o, "commands",
				    json_string("Socket Mode (no public URL)"));
	} else {
		char url[300];
		snprintf(url, sizeof(url), "/hooks/%s/commands", s->id);
		json_object_set_new(o, "connected", json_boolean(token_ok));
		json_object_set_new(o, "connection",
				    json_string(token_ok ? "http (signed requests)"
							 : "http (token invalid)"));
		json_object_set_new(o, "commands_url", json_string(url));
		json_object_set_new(o, "commands", json_string(url));
	}
	json_object_set_new(o, "signing_secret_set",
			    json_boolean(s->cfg.signing_secret && *s->cfg.signing_secret));
	pthread_mutex_lock(&s->mu);
	if (*s->last_error) {
		json_object_set_new(o, "last_error", json_string(s->last_error));
		json_object_set_new(o, "last_error_at",
				    json_integer((json_int_t)s->last_error_at));
	}
	pthread_mutex_unlock(&s->mu);
	json_object_set_new(o, "healthy",
			    json_boolean(json_array_size(problems) == 0));
	json_object_set_new(o, "problems", problems);
	*out = o;
	return 0;
}
