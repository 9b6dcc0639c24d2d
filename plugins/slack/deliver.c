/* Notifications: chat.postMessage (or chat.update for an edit, thread_ts
 * for a thread reply) with the rendered template, and the answer turned
 * into a verdict the pipeline acts on (an edit of a message that is gone
 * says IM_SEND_EDIT_FAILED: the pipeline posts anew). Permanent failures carry a hint
 * an operator can follow without reading Slack's docs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slack.h"

static bool is_one_of(const char *e, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(e, *list) == 0)
			return true;
	return false;
}

static void verdict(im_send_result *res, im_send_verdict v, const char *error,
		    const char *hint)
{
	res->verdict = v;
	snprintf(res->error, sizeof(res->error), "%s", error ? error : "");
	snprintf(res->hint, sizeof(res->hint), "%s", hint ? hint : "");
}

static void permanent(const slk_api *r, const char *channel, const char *bot,
		      im_send_result *res)
{
	static const char *const token[] = {"invalid_auth", "not_authed",
					    "token_revoked", "token_expired",
					    "account_inactive", NULL};
	static const char *const payload[] = {
	    "msg_too_long",  "invalid_blocks",	"invalid_blocks_format",
	    "no_text",	     "too_many_attachments", "invalid_attachments",
	    "invalid_json",  "json_not_object", NULL};
	const char *e = r->error;
	char hint[256];
	if (strcmp(e, "missing_scope") == 0) {
		const char *need =
		    json_string_value(json_object_get(r->body, "needed"));
		snprintf(hint, sizeof(hint),
			 "add scope %s to the Slack app (OAuth & Permissions) "
			 "and reinstall the app",
			 need ? need : "chat:write");
	} else if (strcmp(e, "not_in_channel") == 0) {
		snprintf(hint, sizeof(hint),
			 "invite the bot with /invite @%s in channel %s",
			 bot && *bot ? bot : "<bot>", channel);
	} else if (strcmp(e, "channel_not_found") == 0) {
		snprintf(hint, sizeof(hint),
			 "use the channel id (C0123ABC), not its name; '%s' "
			 "is unknown to the bot (private channels need the "
			 "bot invited first)",
			 channel);
	} else if (is_one_of(e, token)) {
		snprintf(hint, sizeof(hint),
			 "the token was revoked or is wrong: set "
			 "SLACK_BOT_TOKEN (bot_token) to the app's xoxb- "
			 "token and reload");
	} else if (strcmp(e, "is_archived") == 0) {
		snprintf(hint, sizeof(hint),
			 "channel %s is archived: unarchive it or subscribe "
			 "another channel",
			 channel);
	} else if (is_one_of(e, payload)) {
		snprintf(hint, sizeof(hint),
			 "the rendered message breaks Slack's rules (%s): "
			 "check the template with `im chatops templates "
			 "validate`",
			 e);
	} else {
		snprintf(hint, sizeof(hint),
			 "Slack refused the message (%s); see "
			 "https://api.slack.com/methods/chat.postMessage",
			 e);
	}
	verdict(res, IM_SEND_PERMANENT, e, hint);
}

void slk_classify(const slk_api *r, const char *channel, const char *bot,
		  im_send_result *res)
{
	static const char *const limited[] = {"ratelimited", "rate_limited",
					      "message_limit_exceeded", NULL};
	static const char *const transient[] = {
	    "internal_error", "fatal_error", "service_unavailable",
	    "request_timeout", "team_added_to_org", NULL};
	res->http_status = r->http;
	res->retry_after_s = r->retry_after;
	if (r->net_error == IM_EUNSUPPORTED) {
		verdict(res, IM_SEND_PERMANENT, "unsupported", r->error);
	} else if (r->net_error || r->http == 0) {
		verdict(res, IM_SEND_RETRY,
			r->net_error == IM_ETIMEDOUT ? "timeout" : "network",
			"Slack did not answer; the message will be retried");
	} else if (r->ok) {
		verdict(res, IM_SEND_OK, NULL, NULL);
	} else if (r->http == 429 || is_one_of(r->error, limited)) {
		if (res->retry_after_s <= 0)
			res->retry_after_s =
			    strcmp(r->error, "message_limit_exceeded") ? 1 : 60;
		verdict(res, IM_SEND_RATE_LIMITED,
			r->http == 429 ? "ratelimited" : r->error,
			"Slack rate limit: waiting as asked (Retry-After)");
	} else if (r->http >= 500 || is_one_of(r->error, transient)) {
		verdict(res, IM_SEND_RETRY, r->error,
			"Slack had a temporary problem; will retry");
	} else {
		permanent(r, channel, bot, res);
	}
}

const char *slk_pick_channel(const slk *s, const char *want)
{
	if (want && *want) {
		const char *mapped = json_string_value(
		    json_object_get(s->notify_channels, want));
		if (mapped && *mapped)
			return mapped;
		if (strncmp(want, "SEV-", 4) != 0)
			return want;
	}
	return s->cfg.default_channel && *s->cfg.default_channel ? s->cfg.default_channel
							  : NULL;
}

/* One call; *r is filled (clear it). */
static void post(slk *s, const char *method, json_t *body, slk_api *r)
{
	slk_api_call(s, method, s->cfg.bot_token, body, NULL, r);
	if (!r->ok && r->http)
		slk_note_auth(s, r);
}

int slk_send(void *state, const im_send *msg, im_send_result *res)
{
	slk *s = state;
	res->verdict = IM_SEND_PERMANENT;
	const char *channel = slk_pick_channel(s, msg->channel);
	if (!channel || channel[0] == '#') {
		verdict(res, IM_SEND_PERMANENT,
			channel ? "channel_name" : "no_channel",
			channel ? "use the channel id (C0123ABC), not its name"
				: "no channel: give the subscription a channel "
				  "id or set default_channel");
		return 0;
	}
	json_t *body = json_is_object(msg->payload)
			   ? json_deep_copy(msg->payload)
			   : json_object();
	if (!body)
		return IM_ENOMEM;
	json_object_del(body, "response_type");
	json_object_set_new(body, "channel", json_string(channel));
	bool edit = msg->message_id && *msg->message_id;
	if (edit)
		json_object_set_new(body, "ts", json_string(msg->message_id));
	else if (msg->thread_id && *msg->thread_id)
		json_object_set_new(body, "thread_ts",
				    json_string(msg->thread_id));
	slk_api r;
	post(s, edit ? "chat.update" : "chat.postMessage", body, &r);
	/* The message was deleted or is not ours: the pipeline posts anew. */
	bool edit_failed = edit && !r.ok && r.http &&
			   (!strcmp(r.error, "message_not_found") ||
			    !strcmp(r.error, "cant_update_message"));
	char bot[96];
	slk_bot_name(s, bot, sizeof(bot));
	if (!*bot && !strcmp(r.error, "not_in_channel")) {
		/* The hint names the bot: learn its name once. */
		slk_api who;
		slk_api_call(s, "auth.test", s->cfg.bot_token, NULL, "", &who);
		slk_note_auth(s, &who);
		slk_api_clear(&who);
		slk_bot_name(s, bot, sizeof(bot));
	}
	slk_classify(&r, channel, bot, res);
	if (edit_failed)
		res->flags |= IM_SEND_EDIT_FAILED;
	if (res->verdict == IM_SEND_OK) {
		const char *ts = json_string_value(json_object_get(r.body, "ts"));
		snprintf(res->message_id, sizeof(res->message_id), "%s",
			 ts ? ts : "");
		snprintf(res->thread_id, sizeof(res->thread_id), "%s",
			 msg->thread_id && *msg->thread_id ? msg->thread_id
			 : ts				     ? ts
							     : "");
	} else if (edit_failed) {
		IM_INFO(s->host, s->inst, "edit of %s in %s: %s",
			msg->message_id, channel, res->error);
	} else if (res->verdict == IM_SEND_PERMANENT) {
		slk_error(s, "delivery to %s failed: %s: %s", channel,
			  res->error, res->hint);
	} else {
		IM_INFO(s->host, s->inst, "delivery to %s: %s (%s), retry in %.1f s",
			channel, res->error,
			res->verdict == IM_SEND_RATE_LIMITED ? "rate limited"
							     : "transient",
			res->retry_after_s);
	}
	slk_api_clear(&r);
	json_decref(body);
	return 0;
}
