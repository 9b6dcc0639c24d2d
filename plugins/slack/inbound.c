/* HTTP mode: Slack's requests under /hooks/<instance>/{commands,events,
 * interactive}. Every request is checked against its v0 signature over the
 * raw body before anything is parsed. The three routes share one handler
 * that tells the kinds apart by their bodies, so an app configured with
 * one Request URL for everything (as Bolt apps are) works too.
 *
 * Chat commands and button presses go to the host's command framework,
 * which answers within the command budget through slk_answer() and sends
 * late results through slk_followup() (response_url). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "slack.h"

static int text_answer(slk *s, im_http_response *resp, int status,
		       const char *text)
{
	return s->host->resp_set(resp, status, "text/plain; charset=utf-8",
				 text, strlen(text));
}

static int json_answer(slk *s, im_http_response *resp, json_t *o)
{
	char *body = slk_json_text(o);
	json_decref(o);
	if (!body)
		return IM_ENOMEM;
	int rc = s->host->resp_set(resp, 200, "application/json", body,
				   strlen(body));
	free(body);
	return rc;
}

static const char *str(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v && *v ? v : NULL;
}

void slk_inv_from_command(slk *s, const json_t *f, im_invocation *inv)
{
	*inv = (im_invocation){
	    .struct_size = sizeof(*inv),
	    .platform = SLK_PLATFORM,
	    .instance = s->id,
	    .team = str(f, "team_id"),
	    .channel = str(f, "channel_id"),
	    .user_id = str(f, "user_id"),
	    .user_name = str(f, "user_name"),
	    .command = str(f, "command"),
	    .text = json_string_value(json_object_get(f, "text")),
	    .response_ref = str(f, "response_url"),
	};
	if (!inv->text)
		inv->text = "";
}

bool slk_inv_from_actions(slk *s, const json_t *p, im_invocation *inv)
{
	const json_t *a = json_array_get(json_object_get(p, "actions"), 0);
	const json_t *user = json_object_get(p, "user");
	const char *value = str(a, "value");
	if (!value) /* a select menu */
		value = str(json_object_get(a, "selected_option"), "value");
	*inv = (im_invocation){
	    .struct_size = sizeof(*inv),
	    .platform = SLK_PLATFORM,
	    .instance = s->id,
	    .team = str(json_object_get(p, "team"), "id"),
	    .channel = str(json_object_get(p, "channel"), "id"),
	    .user_id = str(user, "id"),
	    .user_name = str(user, "username") ? str(user, "username")
					       : str(user, "name"),
	    .command = "/incident",
	    .action_id = str(a, "action_id"),
	    .action_value = value ? value : "",
	    .response_ref = str(p, "response_url"),
	};
	return inv->action_id != NULL;
}

/* Chat commands go to host->command_handle, which answers the request
 * through slk_answer without holding an HTTP worker. NULL only in a host
 * that runs no command subsystem (unit harnesses). */
static int run_command(slk *s, const im_invocation *inv,
		       im_http_response *resp)
{
	if (s->host->command_handle)
		return s->host->command_handle(s->inst, inv, resp);
	return json_answer(s, resp,
			   json_pack("{s:s,s:s}", "response_type", "ephemeral",
				     "text",
				     "This im server cannot run chat commands."));
}

/* --- the three kinds of requests ----------------------------------------- */

static int on_event(slk *s, const im_http_request *req, const char *body,
		    size_t len, im_http_response *resp)
{
	json_error_t je;
	json_t *e = json_loadb(body, len, 0, &je);
	if (!json_is_object(e)) {
		json_decref(e);
		return text_answer(s, resp, 400, "malformed JSON body");
	}
	const char *type = str(e, "type");
	int rc;
	if (type && !strcmp(type, "url_verification")) {
		const char *ch = str(e, "challenge");
		rc = ch ? json_answer(s, resp, json_pack("{s:s}", "challenge", ch))
			: text_answer(s, resp, 400, "url_verification without "
						    "a challenge");
	} else if (type && !strcmp(type, "event_callback")) {
		const char *id = str(e, "event_id");
		const char *retry = s->host->req_header(req, "X-Slack-Retry-Num");
		const json_t *ev = json_object_get(e, "event");
		if (slk_dedup_seen(s->dedup, id))
			IM_DEBUG(s->host, s->inst,
				 "event %s already handled (retry %s, %s)", id,
				 retry ? retry : "?",
				 s->host->req_header(req, "X-Slack-Retry-Reason")
				     ? s->host->req_header(req,
							   "X-Slack-Retry-Reason")
				     : "no reason");
		else
			IM_DEBUG(s->host, s->inst, "event %s: %s", id ? id : "?",
				 str(ev, "type") ? str(ev, "type") : "?");
		rc = text_answer(s, resp, 200, "");
	} else if (type && !strcmp(type, "app_rate_limited")) {
		IM_WARN(s->host, s->inst,
			"Slack is dropping events for this app (app_rate_limited)");
		rc = text_answer(s, resp, 200, "");
	} else {
		IM_DEBUG(s->host, s->inst, "ignored event payload of type %s",
			 type ? type : "(none)");
		rc = text_answer(s, resp, 200, "");
	}
	json_decref(e);
	return rc;
}

static int on_interactive(slk *s, const char *payload, im_http_response *resp)
{
	json_error_t je;
	json_t *p = json_loads(payload, 0, &je);
	if (!json_is_object(p)) {
		json_decref(p);
		return text_answer(s, resp, 400, "malformed interactive payload");
	}
	const char *type = str(p, "type");
	im_invocation inv;
	int rc;
	if (type && !strcmp(type, "block_actions") &&
	    slk_inv_from_actions(s, p, &inv)) {
		rc = run_command(s, &inv, resp);
	} else {
		IM_DEBUG(s->host, s->inst, "ignored interaction of type %s",
			 type ? type : "(none)");
		rc = text_answer(s, resp, 200, "");
	}
	json_decref(p);
	return rc;
}

static int on_request(void *state, const im_http_request *req,
		      im_http_response *resp)
{
	slk *s = state;
	size_t len = 0;
	const char *body = s->host->req_body(req, &len);
	const char *why = NULL;
	if (slk_mac_verify(s->mac,
			   s->host->req_header(req, "X-Slack-Request-Timestamp"),
			   s->host->req_header(req, "X-Slack-Signature"),
			   body ? body : "", len, time(NULL), &why) != 0) {
		IM_DEBUG(s->host, s->inst, "refused %s: %s",
			 s->host->req_path(req), why);
		return text_answer(s, resp, 401, why);
	}
	const char *ctype = s->host->req_header(req, "Content-Type");
	if (ctype && !strncasecmp(ctype, "application/json", 16))
		return on_event(s, req, body, len, resp);
	/* The signature covers timestamp and body: the same one twice within
	 * the window is the same request again. Events are deduplicated by
	 * their event_id above, which a retry keeps. */
	if (slk_dedup_seen(s->replays,
			   s->host->req_header(req, "X-Slack-Signature"))) {
		IM_INFO(s->host, s->inst,
			"%s: the same signed request again (retry %s); not run "
			"twice",
			s->host->req_path(req),
			s->host->req_header(req, "X-Slack-Retry-Num")
			    ? s->host->req_header(req, "X-Slack-Retry-Num")
			    : "none");
		return text_answer(s, resp, 200, "");
	}
	json_t *f = slk_form_parse(body ? body : "", len);
	if (!f)
		return text_answer(s, resp, 400, "malformed form body");
	int rc;
	if (str(f, "ssl_check"))
		rc = text_answer(s, resp, 200, "");
	else if (str(f, "payload"))
		rc = on_interactive(s, str(f, "payload"), resp);
	else if (str(f, "command")) {
		im_invocation inv;
		slk_inv_from_command(s, f, &inv);
		rc = run_command(s, &inv, resp);
	} else
		rc = text_answer(s, resp, 400,
				 "not a Slack slash command, event or "
				 "interaction");
	json_decref(f);
	return rc;
}

int slk_routes_add(slk *s)
{
	static const char *const paths[] = {"commands", "events",
					    "interactive", NULL};
	for (const char *const *p = paths; *p; p++) {
		int rc = s->host->route_add(s->inst, "POST", *p, on_request);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* --- answers -------------------------------------------------------------- */

int slk_answer(void *state, const im_invocation *inv, const json_t *reply,
	       im_http_response *resp)
{
	slk *s = state;
	const char *status = str(reply, "status");
	if (inv->action_id) {
		/* Slack ignores the body of a block_actions answer: the reply
		 * goes to response_url; a "working" note is not worth one. */
		if (!(status && !strcmp(status, "working")) && inv->response_ref)
			slk_post_response_url(s, inv->response_ref, reply);
		return text_answer(s, resp, 200, "");
	}
	return json_answer(s, resp, slk_render_reply(reply));
}

static bool web_url(const char *u)
{
	return u && (!strncmp(u, "https://", 8) || !strncmp(u, "http://", 7));
}

static char *followup_body(const json_t *reply)
{
	json_t *msg = slk_render_reply(reply);
	if (!msg)
		return NULL;
	json_object_set_new(msg, "replace_original", json_false());
	char *body = slk_json_text(msg);
	json_decref(msg);
	return body;
}

int slk_followup(void *state, const im_invocation *inv, const json_t *reply)
{
	slk *s = state;
	if (!web_url(inv->response_ref)) {
		IM_WARN(s->host, s->inst,
			"late result for %s has no response_url; dropped",
			inv->user_id ? inv->user_id : "?");
		return IM_EINVAL;
	}
	char *body = followup_body(reply);
	if (!body)
		return IM_ENOMEM;
	im_http_header h[] = {IM_HEADER("Content-Type", "application/json")};
	im_http_call call = {.struct_size = sizeof(call),
			     .method = "POST",
			     .url = inv->response_ref,
			     .headers = h,
			     .n_headers = 1,
			     .body = body,
			     .body_len = strlen(body),
			     .timeout_ms = 10000};
	im_http_result *res = NULL;
	int rc = s->host->http_fetch(s->inst, &call, &res);
	if (rc == 0 && res && res->status >= 300)
		rc = IM_EIO;
	if (rc != 0)
		slk_error(s, "response_url POST failed: %s",
			  res && res->error_text ? res->error_text
			  : res && res->status	 ? "HTTP error from Slack"
						 : "no HTTP");
	if (res)
		s->host->http_result_free(res);
	free(body);
	return rc;
}

typedef struct post_ctx {
	const im_host *host; /* the host table outlives every instance */
	char id[128];
} post_ctx;

static void posted(void *ud, const im_http_result *res)
{
	post_ctx *c = ud;
	/* Only the copied id: the instance may be gone by now. */
	if (res->error != IM_ECANCELED && (res->error || res->status >= 300))
		c->host->log(NULL, IM_LOG_WARN,
			     "slack %s: response_url POST failed: %s", c->id,
			     res->error ? res->error_text : "HTTP error");
	free(c);
}

void slk_post_response_url(slk *s, const char *url, const json_t *reply)
{
	if (!web_url(url))
		return;
	char *body = followup_body(reply);
	post_ctx *c = calloc(1, sizeof(*c));
	if (!body || !c) {
		free(body);
		free(c);
		return;
	}
	c->host = s->host;
	snprintf(c->id, sizeof(c->id), "%s", s->id);
	im_http_header h[] = {IM_HEADER("Content-Type", "application/json")};
	im_http_call call = {.struct_size = sizeof(call),
			     .method = "POST",
			     .url = url,
			     .headers = h,
			     .n_headers = 1,
			     .body = body,
			     .body_len = strlen(body),
			     .timeout_ms = 10000};
	if (s->host->http_send(s->inst, &call, posted, c) != 0)
		free(c);
	free(body);
}
