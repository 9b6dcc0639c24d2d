/* `im connector discord status`: the token (GET /users/@me), the
 * application it belongs to, the Gateway, guilds and channels, the
 * /incident command per scope against what sync-commands would write,
 * channels whose permissions failed, the invalid-request guard and the
 * last error. Also the connector's actions (sync-commands). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discord.h"

#define MAX_GUILDS 10

void dsc_note_error(dsc *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&d->mu);
	vsnprintf(d->last_error, sizeof(d->last_error), fmt, ap);
	d->last_error_at = time(NULL);
	pthread_mutex_unlock(&d->mu);
	va_end(ap);
}

void dsc_note_channel(dsc *d, const char *channel, const char *what)
{
	pthread_mutex_lock(&d->mu);
	if (json_object_size(d->channel_problems) < 256)
		json_object_set_new(d->channel_problems, channel,
				    json_string(what));
	pthread_mutex_unlock(&d->mu);
}

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* GET path; the parsed answer (new) or NULL with why. */
static json_t *get(dsc *d, const char *route, const char *major,
		   const char *path, char *why, size_t len, long *status)
{
	dsc_res r;
	json_t *out = NULL;
	if (dsc_call(d->rest, "GET", route, major, path, NULL, true, 5, &r) == 0)
		out = json_incref(r.json);
	else
		snprintf(why, len, "%s%s (HTTP %ld, code %d)",
			 r.local ? "not sent: " : "", r.message, r.status,
			 r.code);
	if (status)
		*status = r.status;
	dsc_res_clear(&r);
	return out;
}

static void token(dsc *d, json_t *o, json_t *problems)
{
	char why[300];
	long st = 0;
	json_t *me = get(d, "users/@me", "", "/users/@me", why, sizeof(why), &st);
	json_object_set_new(o, "token_valid", json_boolean(me != NULL));
	if (me) {
		json_object_set_new(o, "bot_user", json_string(str(me, "username")));
		json_object_set_new(o, "bot_user_id", json_string(str(me, "id")));
	} else {
		json_object_set_new(o, "token_error",
				    json_sprintf("%s%s", why,
						 st == 401 ? ": the bot token is "
							     "wrong or was reset"
							   : ""));
	}
	json_decref(me);
	json_t *app = get(d, "applications/@me", "", "/applications/@me", why,
			  sizeof(why), NULL);
	if (app) {
		bool same = !strcmp(str(app, "id"), d->cfg.application_id);
		json_object_set_new(o, "application_matches", json_boolean(same));
		if (!same)
			json_array_append_new(
			    problems,
			    json_sprintf("the token belongs to application %s, "
					 "not application_id %s",
					 str(app, "id"), d->cfg.application_id));
	}
	json_decref(app);
}

/* Guilds and their text channels, shaped for list-channels. */
static void channels(dsc *d, json_t *o)
{
	char why[300], path[128];
	json_t *guilds = get(d, "guilds", "", "/users/@me/guilds", why,
			     sizeof(why), NULL);
	if (!guilds) {
		json_object_set_new(o, "channels_error", json_string(why));
		return;
	}
	json_t *list = json_array(), *names = json_array();
	size_t i, j;
	json_t *g, *c;
	json_array_foreach(guilds, i, g)
	{
		if (i == MAX_GUILDS)
			break;
		json_array_append_new(names, json_sprintf("%s (%s)", str(g, "name"),
							  str(g, "id")));
		if (i == 0) {
			json_object_set_new(o, "team", json_string(str(g, "name")));
			json_object_set_new(o, "team_id", json_string(str(g, "id")));
		}
		snprintf(path, sizeof(path), "/guilds/%s/channels", str(g, "id"));
		json_t *chs = get(d, "guild channels", str(g, "id"), path, why,
				  sizeof(why), NULL);
		json_array_foreach(chs, j, c)
		{
			json_int_t type = json_integer_value(json_object_get(c, "type"));
			if (type != 0 && type != 5 && type != 15)
				continue;
			pthread_mutex_lock(&d->mu);
			const char *problem = json_string_value(
			    json_object_get(d->channel_problems, str(c, "id")));
			json_t *entry = json_pack(
			    "{s:s,s:s,s:s,s:b,s:b}", "id", str(c, "id"), "name",
			    str(c, "name"), "team_name", str(g, "name"),
			    "is_member", problem == NULL, "private", false);
			pthread_mutex_unlock(&d->mu);
			json_array_append_new(list, entry);
		}
		json_decref(chs);
	}
	json_object_set_new(o, "guilds", names);
	json_object_set_new(o, "channels", list);
	json_decref(guilds);
}

/* The command per scope against what sync-commands would write. */
static void commands(dsc *d, json_t *o)
{
	json_t *state = dsc_commands_state(d);
	bool in_sync = true;
	char buf[600] = "", err[400] = "";
	size_t off = 0;
	const char *scope;
	json_t *v;
	json_object_foreach(state, scope, v)
	{
		const char *e = str(v, "error");
		bool ok = !*e && !json_array_size(json_object_get(v, "created")) &&
			  !json_array_size(json_object_get(v, "changed")) &&
			  !json_array_size(json_object_get(v, "removed"));
		in_sync &= ok;
		int n = snprintf(buf + off, sizeof(buf) - off, "%s%s%s %s",
				 off ? "; " : "",
				 strcmp(scope, "global") ? "guild " : "", scope,
				 *e ? "cannot read" : ok ? "in sync"
							 : "out of date");
		if (n > 0 && (size_t)n < sizeof(buf) - off)
			off += (size_t)n;
		if (*e && !*err)
			snprintf(err, sizeof(err),
				 "%s: %s%s", scope, e,
				 json_integer_value(json_object_get(v, "http_status")) == 403
				     ? ": reinvite the bot with the "
				       "applications.commands scope"
				     : "");
	}
	json_object_set_new(o, "commands", json_string(buf));
	json_object_set_new(o, "commands_registered", state);
	json_object_set_new(o, "commands_ok", json_boolean(in_sync));
	if (!in_sync)
		json_array_append_new(
		    json_object_get(o, "problems"),
		    json_sprintf("/incident is not registered as the verbs "
				 "say (%s): run im connector discord "
				 "sync-commands",
				 buf));
	if (!in_sync)
		json_object_set_new(
		    o, "commands_error",
		    *err ? json_sprintf("%s", err)
			 : json_string("the /incident command differs from the "
				       "verbs served: run im connector discord "
				       "sync-commands"));
}

int dsc_status(void *state, json_t **out)
{
	dsc *d = state;
	json_t *o = json_object(), *problems = json_array();
	json_object_set(o, "problems", problems);
	char url[160];
	snprintf(url, sizeof(url), "/hooks/%s/interactions", d->id);
	json_object_set_new(o, "platform", json_string("discord"));
	json_object_set_new(o, "mode", json_string(d->cfg.gateway
							? "interactions + gateway"
							: "interactions"));
	json_object_set_new(o, "api_base_url", json_string(d->cfg.api_base_url));
	json_object_set_new(o, "application_id",
			    json_string(d->cfg.application_id));
	json_object_set_new(o, "commands_url", json_string(url));
	json_object_set_new(o, "default_channel",
			    json_string(d->cfg.default_channel
					    ? d->cfg.default_channel
					    : ""));
	token(d, o, problems);
	bool token_ok = json_is_true(json_object_get(o, "token_valid"));
	bool up = token_ok;
	if (d->gw) {
		json_t *gs = dsc_gw_status(d->gw);
		up = token_ok && json_is_true(json_object_get(gs, "connected"));
		json_object_set_new(
		    o, "connection",
		    up ? json_string("gateway connected")
		       : json_sprintf("gateway %s%s%s", str(gs, "state"),
				      *str(gs, "reason") ? ": " : "",
				      str(gs, "reason")));
		json_object_set_new(o, "connected_since",
				    json_incref(json_object_get(gs, "connected_since")));
		/* The CLI prints flat keys: what an operator must read. */
		json_object_set(o, "message_content",
				json_object_get(gs, "message_content"));
		json_object_set_new(o, "gateway_identifies_24h",
				    json_incref(json_object_get(gs, "identifies_24h")));
		json_object_set_new(o, "gateway", gs);
	} else {
		json_object_set_new(o, "connection",
				    json_string(token_ok ? "interactions only "
							   "(gateway: false): "
							   "the bot shows offline"
							 : "token invalid"));
	}
	json_object_set_new(o, "connected", json_boolean(up));
	if (token_ok) {
		channels(d, o);
		commands(d, o);
	}
	json_t *rs = dsc_rest_status(d->rest);
	json_object_set_new(o, "invalid_requests_10min",
			    json_incref(json_object_get(rs, "invalid_10min")));
	if (json_is_true(json_object_get(rs, "stopped")))
		json_array_append_new(
		    problems,
		    json_sprintf("sending stopped: %lld invalid requests (401/403/"
				 "429) in 10 minutes reached invalid_limit %lld; "
				 "Discord bans the IP at 10,000",
				 (long long)json_integer_value(
				     json_object_get(rs, "invalid_10min")),
				 (long long)d->cfg.invalid_limit));
	if (json_is_true(json_object_get(rs, "token_rejected")))
		json_array_append_new(problems,
				      json_string("the bot token got a 401: it is "
						  "not used again until reload"));
	json_object_set_new(o, "rest", rs);
	pthread_mutex_lock(&d->mu);
	const char *ch;
	json_t *what;
	json_object_foreach(d->channel_problems, ch, what)
	    json_array_append_new(problems,
				  json_sprintf("channel %s: %s: give the bot's "
					       "role View Channel, Send Messages, "
					       "Embed Links and Send Messages in "
					       "Threads there",
					       ch, json_string_value(what)));
	json_object_set_new(o, "interactions_refused",
			    json_integer((json_int_t)d->refused));
	if (d->last_interaction_at)
		json_object_set_new(o, "last_interaction",
				    json_sprintf("%s (%lld)", d->last_interaction,
						 (long long)d->last_interaction_at));
	json_object_set_new(o, "last_error", json_string(d->last_error));
	json_object_set_new(o, "last_error_at",
			    json_integer((json_int_t)d->last_error_at));
	pthread_mutex_unlock(&d->mu);
	bool healthy = up && !json_array_size(problems) &&
		       json_is_true(json_object_get(o, "connected"));
	json_decref(problems);
	json_object_set_new(o, "healthy", json_boolean(healthy));
	*out = o;
	return 0;
}

int dsc_action(void *state, const char *name, const json_t *args,
	       json_t **out)
{
	dsc *d = state;
	*out = NULL;
	if (!strcmp(name, "sync-commands")) {
		const char *g = json_string_value(json_object_get(args, "guild"));
		if (g && json_is_true(json_object_get(args, "global"))) {
			*out = json_pack("{s:s}", "error",
					 "give --guild ID or --global, not both");
			return IM_EINVAL;
		}
		uint64_t v;
		if (g && !dsc_snowflake(g, &v)) {
			*out = json_pack("{s:s}", "error",
					 "--guild takes a guild id (a number: "
					 "Developer Mode > Copy Server ID)");
			return IM_EINVAL;
		}
		return dsc_sync_commands(d, args, out);
	}
	return IM_ENOTFOUND;
}
