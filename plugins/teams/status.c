/* `im connector teams status`: the token (for which tenant and app, or the
 * AADSTS error and what it means), the keys that sign inbound activities,
 * the last verified activity, the conversations learnt (as "channels" for
 * `im chatops teams list-channels`), and what the 403s seen were. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "teams.h"

void tms_note_error(tms *t, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&t->mu);
	va_start(ap, fmt);
	vsnprintf(t->last_error, sizeof t->last_error, fmt, ap);
	va_end(ap);
	t->last_error_at = time(NULL);
	pthread_mutex_unlock(&t->mu);
}

static const char *const codes_403[] = {"BotNotInConversationRoster",
					"ConversationBlockedByUser",
					"BotDisabledByAdmin", NULL};

void tms_note_send(tms *t, const char *channel, const im_send_result *res)
{
	if (res->verdict == IM_SEND_OK || res->verdict == IM_SEND_RATE_LIMITED)
		return;
	if (res->http_status == 403) {
		size_t i = 0;
		while (codes_403[i] && strcmp(codes_403[i], res->error))
			i++;
		pthread_mutex_lock(&t->mu);
		t->errors_403[i]++;
		pthread_mutex_unlock(&t->mu);
	}
	tms_note_error(t, "%s: HTTP %ld %s: %s", channel ? channel : "?",
		       res->http_status, res->error, res->hint);
}

/* The 403s delivery met, each with its real cause; and the permission
 * names the troubleshooting folklore gives, which are not the cause. */
static json_t *about_403(const tms *t)
{
	static const char *const fix[] = {
	    "the app is not installed in that team or chat: add it there",
	    "a user blocked the bot in that chat",
	    "a Teams admin disabled the app: ask them to allow it",
	    "the conversation does not take bot messages"};
	json_t *out = json_array();
	for (size_t i = 0; i < 4; i++)
		if (t->errors_403[i]) {
			char line[300];
			snprintf(line, sizeof line, "403 %s x%lu: %s",
				 codes_403[i] ? codes_403[i] : "other",
				 t->errors_403[i], fix[i]);
			json_array_append_new(out, json_string(line));
		}
	return out;
}

/* The channels of team `team_id` by the Bot Connector (GET
 * .../v3/teams/{id}/conversations: the bot must be installed in the
 * team), added to `out` unless already there. Blocks on the network (as
 * status() may). */
static void team_channels(tms *t, const char *service_url,
			  const char *team_id, const char *team_name,
			  json_t *out, json_t *problems)
{
	char tok[8192], why[320], enc[512], url[1400];
	if (!service_url ||
	    tms_token_get(t->token, tok, sizeof tok, why, sizeof why))
		return;
	tms_pct_encode(enc, sizeof enc, team_id);
	size_t n = strlen(service_url);
	while (n && service_url[n - 1] == '/')
		n--;
	snprintf(url, sizeof url, "%.*s/v3/teams/%s/conversations", (int)n,
		 service_url, enc);
	tms_answer a = {0};
	tms_http(t, "GET", url, tok, NULL, &a);
	memset(tok, 0, sizeof tok);
	json_t *j = a.status == 200 && a.body ? json_loads(a.body, 0, NULL)
					      : NULL;
	size_t i, k;
	json_t *c, *have;
	json_array_foreach(json_object_get(j, "conversations"), i, c)
	{
		const char *id = json_string_value(json_object_get(c, "id"));
		if (!id)
			continue;
		bool known = false;
		json_array_foreach(out, k, have) known |= !strcmp(
		    id, json_string_value(json_object_get(have, "id")));
		if (known)
			continue;
		const char *name = json_string_value(json_object_get(c, "name"));
		json_array_append_new(
		    out, json_pack("{s:s,s:s,s:s,s:s?,s:s,s:b,s:b}", "id", id,
				   "name", name ? name : "General", "team_id",
				   team_id, "team_name", team_name, "type",
				   "channel", "is_member", 1, "private", 0));
	}
	if (!j) {
		char line[400];
		snprintf(line, sizeof line,
			 "cannot list the channels of team %s: HTTP %ld%s%s",
			 team_name ? team_name : team_id, a.status,
			 a.status == 403 ? " (the app is not installed in "
					   "that team any more)"
					 : "",
			 a.status ? "" : a.error);
		json_array_append_new(problems, json_string(line));
	}
	json_decref(j);
	tms_answer_clear(&a);
}

/* Conversations learnt, shaped for list-channels, and the other channels
 * of every team the bot has heard from. */
static json_t *channels(tms *t, json_t *problems)
{
	json_t *refs = tms_refs_list(t->refs), *out = json_array();
	json_t *teams = json_object();
	size_t i;
	json_t *r;
	json_array_foreach(refs, i, r)
	{
		const char *type = json_string_value(json_object_get(r, "type"));
		const char *team = json_string_value(json_object_get(r, "team_id"));
		json_t *c = json_pack(
		    "{s:O,s:O?,s:O?,s:O?,s:O?,s:b,s:b}", "id",
		    json_object_get(r, "id"), "name", json_object_get(r, "name"),
		    "team_id", json_object_get(r, "team_id"), "team_name",
		    json_object_get(r, "team_name"), "type",
		    json_object_get(r, "type"), "is_member",
		    json_is_true(json_object_get(r, "installed")), "private",
		    type && strcmp(type, "channel") != 0);
		if (c)
			json_array_append_new(out, c);
		if (team && json_is_true(json_object_get(r, "installed")) &&
		    json_object_size(teams) < 20)
			json_object_set(teams, team, r);
	}
	const char *id;
	json_object_foreach(teams, id, r)
	    team_channels(t,
			  json_string_value(json_object_get(r, "service_url")),
			  id,
			  json_string_value(json_object_get(r, "team_name")),
			  out, problems);
	json_decref(teams);
	json_decref(refs);
	return out;
}

static void iso(time_t t, char *out, size_t n)
{
	struct tm tm;
	if (!t || !gmtime_r(&t, &tm) ||
	    !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, n, "never");
}

int tms_status(void *state, json_t **out)
{
	tms *t = state;
	char tok[8192], why[400] = "";
	bool tok_ok = tms_token_get(t->token, tok, sizeof tok, why,
				    sizeof why) == 0;
	memset(tok, 0, sizeof tok);
	bool keys_ok = tms_jwt_warm(t->jwt);
	tms_jwt_stats js;
	tms_jwt_get_stats(t->jwt, &js);
	json_t *jst = tms_jwt_status(t->jwt);

	const char *tenant = *t->cfg.tenant_id ? t->cfg.tenant_id
					       : "botframework.com (legacy "
						 "multi-tenant)";
	char conn[600], keys[700], seen[64], act[400], at[64];
	if (tok_ok)
		snprintf(conn, sizeof conn, "token for app %s in tenant %s",
			 t->cfg.app_id, tenant);
	else
		snprintf(conn, sizeof conn, "no token for app %s in tenant %s",
			 t->cfg.app_id, tenant);
	const char *kerr =
	    json_string_value(json_object_get(jst, "last_error"));
	iso(js.loaded_at, at, sizeof at);
	if (keys_ok)
		snprintf(keys, sizeof keys, "%zu signing keys from %s (loaded %s)%s%s",
			 js.keys, t->cfg.openid_metadata_url, at,
			 kerr && *kerr ? "; last refresh: " : "",
			 kerr && *kerr ? kerr : "");
	else
		snprintf(keys, sizeof keys, "NOT LOADED from %s: %s",
			 t->cfg.openid_metadata_url,
			 kerr && *kerr ? kerr : "not fetched yet");
	pthread_mutex_lock(&t->mu);
	iso(t->last_activity_at, seen, sizeof seen);
	if (t->last_activity_at)
		snprintf(act, sizeof act, "%s at %s", t->last_activity, seen);
	else
		snprintf(act, sizeof act, "none yet (Bot Framework posts to "
			 "/hooks/%s/messages)", t->id);
	json_t *problems = about_403(t);
	char last[sizeof t->last_error];
	snprintf(last, sizeof last, "%s", t->last_error);
	time_t last_at = t->last_error_at;
	json_int_t dropped = (json_int_t)t->replies_dropped;
	pthread_mutex_unlock(&t->mu);
	if (!tok_ok)
		json_array_append_new(problems, json_string(why));
	if (!keys_ok)
		json_array_append_new(
		    problems,
		    json_string("inbound activities are refused (401) until "
				"the signing keys load: check "
				"openid_metadata_url and the network"));

	json_t *ch = channels(t, problems);
	*out = json_pack(
	    "{s:b,s:b,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:O,s:o,s:I,s:I,s:s,"
	    "s:o,s:o,s:s}",
	    "healthy", tok_ok && keys_ok, "connected", tok_ok, "mode",
	    "bot framework (messaging endpoint)", "connection", conn,
	    "app_id", t->cfg.app_id, "tenant", tenant, "keys", keys,
	    "last_activity", act, "service_url", t->cfg.service_url,
	    "default_channel", t->cfg.default_channel, "inbound", jst,
	    "token", tms_token_status(t->token), "conversations",
	    (json_int_t)json_array_size(ch), "activities_refused",
	    (json_int_t)js.refused, "permissions",
	    "a Bot Connector bot needs no Microsoft Graph permissions "
	    "(ChannelMessage.Send, Chat.ReadWrite): its 403s mean the app is "
	    "not installed there, a user blocked it or an admin disabled it",
	    "channels", ch, "problems", problems, "last_error", last);
	json_decref(jst);
	if (*out && last_at)
		json_object_set_new(*out, "last_error_at",
				    json_integer((json_int_t)last_at));
	if (*out) {
		char path[200];
		snprintf(path, sizeof path, "/hooks/%s/messages", t->id);
		json_object_set_new(*out, "commands_url", json_string(path));
		json_object_set_new(*out, "commands_ok", json_boolean(keys_ok));
		if (!keys_ok)
			json_object_set_new(
			    *out, "commands_error",
			    json_string("the keys that sign Bot Framework's "
					"activities are not loaded: every "
					"activity is refused (401)"));
	}
	if (*out && dropped)
		json_object_set_new(*out, "replies_dropped",
				    json_integer(dropped));
	if (*out && !tok_ok)
		json_object_set_new(*out, "token_error", json_string(why));
	return *out ? 0 : IM_ENOMEM;
}
