/* Slack Web API calls through the host's blocking HTTP (http_fetch): one
 * POST per call, the answer parsed, and what status() and send() need
 * (error code, Retry-After, granted scopes) pulled out. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "slack.h"

#define API_TIMEOUT_MS 10000
#define API_CONNECT_MS 3000

static const char *header(const im_http_result *res, const char *name)
{
	for (size_t i = 0; i < res->n_headers; i++)
		if (res->headers[i].name &&
		    strcasecmp(res->headers[i].name, name) == 0)
			return res->headers[i].value;
	return NULL;
}

static void parse_answer(const im_http_result *res, slk_api *out)
{
	out->http = res->status;
	const char *ra = header(res, "retry-after");
	if (ra) {
		char *end;
		double v = strtod(ra, &end);
		out->retry_after = end != ra && v >= 0 && v < 86400 ? v : 0;
	}
	const char *sc = header(res, "x-oauth-scopes");
	out->scopes = sc ? strdup(sc) : NULL;
	json_error_t je;
	out->body = res->body_len ? json_loadb(res->body, res->body_len, 0, &je)
				  : NULL;
	out->ok = json_is_true(json_object_get(out->body, "ok"));
	const char *err = json_string_value(json_object_get(out->body, "error"));
	if (err)
		snprintf(out->error, sizeof(out->error), "%s", err);
	else if (!out->ok && res->status == 429)
		snprintf(out->error, sizeof(out->error), "ratelimited");
	else if (!out->ok && !out->body)
		snprintf(out->error, sizeof(out->error), "HTTP %ld", res->status);
	else if (!out->ok)
		snprintf(out->error, sizeof(out->error), "unknown_error");
}

static bool token_error(const char *e)
{
	static const char *const codes[] = {"invalid_auth", "not_authed",
					    "token_revoked", "token_expired",
					    "account_inactive", NULL};
	for (const char *const *c = codes; *c; c++)
		if (strcmp(e, *c) == 0)
			return true;
	return false;
}

/* CHATOPS_DEBUG=true: what went to Slack and what came back (tokens are
 * in headers, not logged; the host redacts secrets in every line). */
static void debug_bodies(slk *s, const char *method, const char *sent,
			 const json_t *got)
{
	char *answer = got ? json_dumps(got, JSON_COMPACT) : NULL;
	IM_DEBUG(s->host, s->inst, "%s request: %.2000s", method,
		 sent && *sent ? sent : "(empty)");
	IM_DEBUG(s->host, s->inst, "%s answer: %.2000s", method,
		 answer ? answer : "(none)");
	free(answer);
}

int slk_api_call(slk *s, const char *method, const char *token,
		 const json_t *json, const char *form, slk_api *out)
{
	memset(out, 0, sizeof(*out));
	char url[1024], auth[1024];
	snprintf(url, sizeof(url), "%s/%s", s->api_base, method);
	snprintf(auth, sizeof(auth), "Bearer %s", token ? token : "");
	char *body = slk_json_text(json);
	if (json && !body)
		return IM_ENOMEM;
	im_http_header h[2] = {
	    IM_HEADER("Authorization", auth),
	    IM_HEADER("Content-Type",
		      json ? "application/json; charset=utf-8"
			   : "application/x-www-form-urlencoded")};
	const char *payload = body ? body : form;
	im_http_call call = {
	    .struct_size = sizeof(call),
	    .method = "POST",
	    .url = url,
	    .headers = h,
	    .n_headers = 2,
	    .body = payload,
	    .body_len = payload ? strlen(payload) : 0,
	    .timeout_ms = API_TIMEOUT_MS,
	    .connect_timeout_ms = API_CONNECT_MS,
	};
	im_http_result *res = NULL;
	int rc = s->host->http_fetch(s->inst, &call, &res);
	if (!res || res->error || rc != 0) {
		out->net_error = res && res->error ? res->error
				 : rc ? rc
				      : IM_EIO;
		snprintf(out->error, sizeof(out->error), "%s",
			 res && res->error_text ? res->error_text
						: "request failed");
	} else {
		parse_answer(res, out);
	}
	if (res)
		s->host->http_result_free(res);
	/* HTTP mode has no link of its own: the Web API's answers are its
	 * connection health. */
	if (!s->socket_mode && out->ok)
		s->host->set_connected(s->inst, SLK_PLATFORM, 1);
	else if (!s->socket_mode &&
		 (out->net_error || token_error(out->error)))
		s->host->set_connected(s->inst, SLK_PLATFORM, 0);
	if (s->host->log_enabled(s->inst, IM_LOG_DEBUG))
		IM_DEBUG(s->host, s->inst, "%s -> HTTP %ld %s%s", method,
			 out->http, out->ok ? "ok" : "error ",
			 out->ok ? "" : out->error);
	if (s->debug_bodies)
		debug_bodies(s, method, payload, out->body);
	free(body);
	return out->ok ? 0 : out->net_error ? out->net_error : IM_EIO;
}

void slk_api_clear(slk_api *r)
{
	json_decref(r->body);
	free(r->scopes);
	memset(r, 0, sizeof(*r));
}

void slk_note_auth(slk *s, const slk_api *r)
{
	pthread_mutex_lock(&s->mu);
	if (r->ok) {
		const char *u = json_string_value(json_object_get(r->body, "user"));
		const char *uid =
		    json_string_value(json_object_get(r->body, "user_id"));
		snprintf(s->bot_user, sizeof(s->bot_user), "%s", u ? u : "");
		snprintf(s->bot_user_id, sizeof(s->bot_user_id), "%s",
			 uid ? uid : "");
		s->token_revoked = false;
	} else if (r->http && token_error(r->error)) {
		s->token_revoked = true;
	}
	pthread_mutex_unlock(&s->mu);
}

void slk_error(slk *s, const char *fmt, ...)
{
	char buf[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&s->mu);
	memcpy(s->last_error, buf, sizeof(buf));
	s->last_error_at = time(NULL);
	pthread_mutex_unlock(&s->mu);
	IM_WARN(s->host, s->inst, "%s", buf);
}

void slk_bot_name(slk *s, char *out, size_t len)
{
	pthread_mutex_lock(&s->mu);
	snprintf(out, len, "%s", s->bot_user);
	pthread_mutex_unlock(&s->mu);
}
