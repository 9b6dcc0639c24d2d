/* Notifications: send() posts the rendered message (embeds, buttons) to a
 * channel with the outbox row's dedup key as `nonce` and enforce_nonce,
 * so a re-send after a lost answer returns the first message instead of
 * posting twice; edits with PATCH; in thread mode the first message
 * opens a thread and later ones post in it. Every payload carries
 * allowed_mentions {"parse": []}: incident text never pings anyone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discord.h"

#define NONCE_MAX 25
#define THREAD_NAME_MAX 100

const char *dsc_pick_channel(const dsc *d, const char *want)
{
	if (want && *want) {
		const char *mapped = json_string_value(
		    json_object_get(d->cfg.notification_channels, want));
		if (mapped && *mapped)
			return mapped;
		if (strncmp(want, "SEV-", 4) != 0)
			return want;
	}
	const char *c = d->cfg.default_channel;
	return c && *c ? c : NULL;
}

/* error NULL keeps the error already in res. */
static void verdict(im_send_result *res, im_send_verdict v, const char *error,
		    const char *hint)
{
	res->verdict = v;
	if (error)
		snprintf(res->error, sizeof res->error, "%s", error);
	snprintf(res->hint, sizeof res->hint, "%s", hint);
}

/* Discord's nonce is at most 25 characters; longer keys are hashed. */
static void nonce_of(const char *key, char out[NONCE_MAX + 1])
{
	if (strlen(key) <= NONCE_MAX) {
		snprintf(out, NONCE_MAX + 1, "%s", key);
		return;
	}
	unsigned long long h = 1469598103934665603ULL;
	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	snprintf(out, NONCE_MAX + 1, "im-%llx", h);
}

static bool is_snowflake(const char *s)
{
	uint64_t v;
	return dsc_snowflake(s, &v) && strlen(s) >= 15;
}

/* What Discord's answer means for the outbox row. */
static void classify(dsc *d, const char *channel, const dsc_res *r,
		     im_send_result *res)
{
	char hint[256];
	res->http_status = r->status;
	res->retry_after_s = r->retry_after;
	snprintf(res->error, sizeof res->error, "%d %.100s", r->code,
		 r->message);
	if (r->local || r->status == 429) {
		res->verdict = IM_SEND_RATE_LIMITED;
		if (r->global)
			res->flags |= IM_SEND_LIMIT_GLOBAL;
		if (dsc_rest_token_rejected(d->rest))
			snprintf(res->hint, sizeof res->hint,
				 "the bot token was rejected: set a valid "
				 "bot_token and reload; queued notifications "
				 "wait");
		return;
	}
	switch (r->code) {
	case 50001:
	case 50013:
		snprintf(hint, sizeof hint,
			 "give the bot's role View Channel, Send Messages, "
			 "Embed Links and Send Messages in Threads in channel "
			 "%s (Server Settings > Roles, or the channel's "
			 "permissions)",
			 channel);
		dsc_note_channel(d, channel, r->message);
		verdict(res, IM_SEND_PERMANENT, NULL, hint);
		return;
	case 10003:
		snprintf(hint, sizeof hint,
			 "channel %s does not exist for this bot: use the "
			 "channel id (Developer Mode > Copy Channel ID) of a "
			 "channel in a server the bot is in",
			 channel);
		dsc_note_channel(d, channel, r->message);
		verdict(res, IM_SEND_PERMANENT, NULL, hint);
		return;
	case 10008:
		res->flags |= IM_SEND_EDIT_FAILED;
		verdict(res, IM_SEND_PERMANENT, NULL,
			"the message to edit is gone; a new one is posted");
		return;
	}
	if (r->status == 401 || r->status == 403) {
		verdict(res, IM_SEND_PERMANENT, NULL,
			r->status == 401 ? "the bot token was rejected: set a "
					   "valid bot_token and reload"
					 : "the bot may not do this here: check "
					   "its role's permissions");
	} else if (r->status >= 400 && r->status < 500) {
		verdict(res, IM_SEND_PERMANENT, NULL,
			"Discord refused the message (see the error); check "
			"the template with im chatops templates validate");
	} else {
		res->verdict = IM_SEND_RETRY;
	}
}

static json_t *thread_name(const json_t *payload)
{
	const json_t *e = json_array_get(json_object_get(payload, "embeds"), 0);
	const char *t = json_string_value(json_object_get(e, "title"));
	if (!t)
		t = json_string_value(json_object_get(payload, "content"));
	return dsc_cut(t && *t ? t : "incident", THREAD_NAME_MAX);
}

/* Opens a thread on message `mid`; its id goes to res->thread_id. */
static void open_thread(dsc *d, const char *channel, const char *mid,
			const json_t *payload, im_send_result *res)
{
	char path[256];
	snprintf(path, sizeof path, "/channels/%s/messages/%s/threads", channel,
		 mid);
	json_t *body = json_pack("{s:o,s:i}", "name", thread_name(payload),
				 "auto_archive_duration", 10080);
	dsc_res r;
	if (dsc_call(d->rest, "POST", "threads", channel, path, body, true, 10,
		     &r) == 0 &&
	    json_string_value(json_object_get(r.json, "id")))
		snprintf(res->thread_id, sizeof res->thread_id, "%s",
			 json_string_value(json_object_get(r.json, "id")));
	else
		/* The message is out; later ones go to the channel. */
		dsc_note_error(d, "could not open a thread on message %s in %s: "
				  "%s (code %d)",
			       mid, channel, r.message, r.code);
	dsc_res_clear(&r);
	json_decref(body);
}

static bool has_mode(const im_send *msg)
{
	return msg->struct_size >= offsetof(im_send, mode) + sizeof(msg->mode) &&
	       msg->mode;
}

int dsc_send(void *state, const im_send *msg, im_send_result *res)
{
	dsc *d = state;
	const char *channel = dsc_pick_channel(d, msg->channel);
	if (!channel) {
		verdict(res, IM_SEND_PERMANENT, "no_channel",
			"no channel: give the subscription a channel id or set "
			"default_channel");
		return 0;
	}
	if (!is_snowflake(channel)) {
		verdict(res, IM_SEND_PERMANENT, "channel_name",
			"use the channel id (Developer Mode > Copy Channel ID), "
			"not its name");
		return 0;
	}
	bool edit = msg->message_id && *msg->message_id;
	bool in_thread = !edit && msg->thread_id && *msg->thread_id &&
			 is_snowflake(msg->thread_id);
	const char *target = in_thread ? msg->thread_id : channel;
	json_t *body = json_deep_copy(msg->payload);
	if (!json_is_object(body)) {
		json_decref(body);
		body = json_object();
	}
	/* A plain {"text"} payload (a test notification) is the content. */
	json_t *text = json_object_get(body, "text");
	if (json_is_string(text) && !json_object_get(body, "content") &&
	    !json_object_get(body, "embeds")) {
		json_object_set(body, "content", text);
		json_object_del(body, "text");
	}
	json_object_set_new(body, "allowed_mentions",
			    json_pack("{s:[]}", "parse"));
	char path[256], nonce[NONCE_MAX + 1];
	if (edit) {
		snprintf(path, sizeof path, "/channels/%s/messages/%s", channel,
			 msg->message_id);
	} else {
		snprintf(path, sizeof path, "/channels/%s/messages", target);
		nonce_of(msg->dedup_key ? msg->dedup_key : "", nonce);
		if (*nonce) {
			json_object_set_new(body, "nonce", json_string(nonce));
			json_object_set_new(body, "enforce_nonce", json_true());
		}
	}
	dsc_res r;
	int rc = dsc_call(d->rest, edit ? "PATCH" : "POST", "messages", target,
			  path, body, true, 0, &r);
	if (rc == 0) {
		const char *id = json_string_value(json_object_get(r.json, "id"));
		res->verdict = IM_SEND_OK;
		res->http_status = r.status;
		snprintf(res->message_id, sizeof res->message_id, "%s",
			 edit ? msg->message_id : id ? id : "");
		if (in_thread)
			snprintf(res->thread_id, sizeof res->thread_id, "%s",
				 msg->thread_id);
		else if (!edit && id && has_mode(msg) &&
			 !strcmp(msg->mode, "thread"))
			open_thread(d, channel, id, msg->payload, res);
	} else {
		classify(d, target, &r, res);
		if (!r.local)
			dsc_note_error(d, "send to %s: HTTP %ld, %d %s", target,
				       r.status, r.code, r.message);
	}
	dsc_res_clear(&r);
	json_decref(body);
	return 0;
}
