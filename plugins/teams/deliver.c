/* Notifications to Teams: the channel, its conversation reference, and
 * the Bot Connector call (api.c) through host->http_fetch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "teams.h"

static const char *header(const im_http_result *r, const char *name)
{
	for (size_t i = 0; r && i < r->n_headers; i++)
		if (!strcmp(r->headers[i].name, name))
			return r->headers[i].value;
	return NULL;
}

static int fetch(const tms *t, const char *method, const char *url,
		 const char *bearer, const char *ctype, const char *body,
		 im_http_result **res)
{
	char auth[8300];
	im_http_header h[2] = {IM_HEADER("Content-Type", ctype),
			       IM_HEADER("Authorization", auth)};
	if (bearer)
		snprintf(auth, sizeof auth, "Bearer %s", bearer);
	im_http_call call = {
	    .struct_size = sizeof(call),
	    .method = method,
	    .url = url,
	    .headers = h,
	    .n_headers = bearer ? 2 : 1,
	    .body = body,
	    .body_len = body ? strlen(body) : 0,
	    .timeout_ms = (uint32_t)t->cfg.timeout_ms,
	};
	return t->host->http_fetch(t->inst, &call, res);
}

int tms_http(void *ud, const char *method, const char *url,
	     const char *bearer, const char *json_body, tms_answer *out)
{
	const tms *t = ud;
	im_http_result *r = NULL;
	int rc = fetch(t, method, url, bearer, "application/json", json_body,
		       &r);
	if (rc == 0 && r) {
		out->status = r->status;
		out->body = r->body ? strdup(r->body) : NULL;
		const char *ra = header(r, "retry-after");
		out->retry_after = ra ? strdup(ra) : NULL;
	} else {
		snprintf(out->error, sizeof out->error, "%s",
			 r && r->error_text ? r->error_text : "no answer");
	}
	if (r)
		t->host->http_result_free(r);
	return 0;
}

int tms_login_post(void *ud, const char *url, const char *form, long *status,
		   char **body)
{
	const tms *t = ud;
	im_http_result *r = NULL;
	int rc = fetch(t, "POST", url, NULL,
		       "application/x-www-form-urlencoded", form, &r);
	if (rc == 0 && r) {
		*status = r->status;
		*body = r->body ? strdup(r->body) : NULL;
	} else {
		*body = strdup(r && r->error_text ? r->error_text
						  : "no answer");
		rc = rc ? rc : IM_EIO;
	}
	if (r)
		t->host->http_result_free(r);
	return rc;
}

/* A subscription's channel, or the one for its severity, or the
 * default. */
const char *tms_pick_channel(const tms *t, const char *want)
{
	if (want && *want) {
		const char *mapped = json_string_value(
		    json_object_get(t->cfg.notification_channels, want));
		if (mapped && *mapped)
			return mapped;
		if (strncmp(want, "SEV-", 4) != 0)
			return want;
	}
	const char *d = t->cfg.default_channel;
	return d && *d ? d : NULL;
}

static void fail(im_send_result *res, const char *error, const char *hint)
{
	res->verdict = IM_SEND_PERMANENT;
	snprintf(res->error, sizeof res->error, "%s", error);
	snprintf(res->hint, sizeof res->hint, "%s", hint);
}

int tms_send(void *state, const im_send *msg, im_send_result *res)
{
	tms *t = state;
	const char *channel = tms_pick_channel(t, msg->channel);
	if (!channel) {
		fail(res, "no_channel",
		     "no channel: give the subscription a channel id "
		     "(19:...@thread.tacv2) or set default_channel");
		return 0;
	}
	if (strncmp(channel, "19:", 3) && strncmp(channel, "a:", 2) &&
	    strncmp(channel, "8:", 2)) {
		fail(res, "channel_name",
		     "use the channel's conversation id (19:...@thread.tacv2, "
		     "see im chatops teams list-channels), not its name");
		return 0;
	}
	json_t *ref = tms_refs_find(t->refs, channel);
	const char *surl = json_string_value(json_object_get(ref, "service_url"));
	char conv[600];
	if (msg->thread_id && *msg->thread_id && !msg->message_id)
		snprintf(conv, sizeof conv, "%s;messageid=%s", channel,
			 msg->thread_id);
	else
		snprintf(conv, sizeof conv, "%s", channel);
	tms_target to = {
	    .service_url = surl ? surl : t->cfg.service_url,
	    .conversation = conv,
	    .update = msg->message_id && *msg->message_id ? msg->message_id
							  : NULL,
	};
	int rc = tms_api_send(&t->api, &to, msg->payload, res);
	/* A new post in a channel starts a thread later events reply in. */
	if (rc == 0 && res->verdict == IM_SEND_OK && !to.update &&
	    !strchr(conv, ';'))
		snprintf(res->thread_id, sizeof res->thread_id, "%s",
			 res->message_id);
	json_decref(ref);
	if (rc == 0)
		tms_note_send(t, channel, res);
	return rc;
}
