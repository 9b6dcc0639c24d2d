/*
 * Fuzz target slack_payloads: what Slack posts to the HTTP-mode hooks,
 * after the signature.
 *
 * The connector's own route handler (plugins/slack/inbound.c, registered
 * through a fake host's route_add) gets the bytes as a request body with
 * a valid v0 signature, so everything behind the check runs: a body that
 * starts with '{' goes as application/json (Events API: url_verification,
 * event_callback and its event-id set, app_rate_limited), anything else
 * as a form (slk_form_parse): ssl_check, a slash command
 * (slk_inv_from_command) or an interactive payload= JSON
 * (slk_inv_from_actions). The fake host's command_handle answers every
 * invocation with a reply built from it (text, a field, a button) through
 * the connector's slk_answer, so slk_render_reply and, for buttons, the
 * response_url path run too.
 *
 * Besides, a body that is a JSON object goes straight to
 * slk_render_reply as a command reply, and the bytes (up to a NUL) to
 * slk_mrkdwn.
 *
 * Contract: the handler answers 200 or 400 (never 401: the signature is
 * right), a 200 with a JSON content type carries a JSON object;
 * invocations name the platform, the instance and a text or an action;
 * a rendered reply serializes with a response_type, a text of at most
 * 3,000 bytes and at most 50 blocks; slk_mrkdwn lets no '<' through that
 * does not open one of its own <http...|...> links, and no '&' that does
 * not start &amp; &lt; or &gt;.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "fuzz.h"
#include "slack.h"

#define SECRET "8f742231b10e8888abcd99yyyzzz85a5"

struct im_http_request {
	const char *body;
	size_t len;
	const char *ctype;
	char ts[32];
	char sig[80];
};

struct im_http_response {
	int status;
	char ctype[64];
	char *body;
	size_t len;
};

static slk s;
static im_route_fn handler;

static void h_log(im_instance *inst, im_log_level level, const char *fmt,
		  ...) __attribute__((format(printf, 3, 4)));

static void h_log(im_instance *inst, im_log_level level, const char *fmt,
		  ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
}

static int h_route_add(im_instance *inst, const char *method,
		       const char *path, im_route_fn fn)
{
	handler = fn;
	return 0;
}

static const char *h_req_path(const im_http_request *req)
{
	return "commands";
}

static const char *h_req_header(const im_http_request *req,
				const char *name)
{
	if (!strcasecmp(name, "X-Slack-Request-Timestamp"))
		return req->ts;
	if (!strcasecmp(name, "X-Slack-Signature"))
		return req->sig;
	if (!strcasecmp(name, "Content-Type"))
		return req->ctype;
	return NULL;
}

static const char *h_req_body(const im_http_request *req, size_t *len)
{
	*len = req->len;
	return req->body;
}

static int h_resp_set(im_http_response *resp, int status, const char *ctype,
		      const void *body, size_t len)
{
	free(resp->body);
	resp->body = malloc(len + 1);
	if (!resp->body)
		return IM_ENOMEM;
	memcpy(resp->body, body, len);
	resp->body[len] = '\0';
	resp->len = len;
	resp->status = status;
	snprintf(resp->ctype, sizeof(resp->ctype), "%s", ctype ? ctype : "");
	return 0;
}

static int h_http_send(im_instance *inst, const im_http_call *call,
		       im_http_done_fn done, void *ud)
{
	FUZZ_CHECK(call->url && call->body &&
		       strlen(call->body) == call->body_len,
		   "response_url POST without a URL or a body");
	json_t *j = json_loadb(call->body, call->body_len, 0, NULL);
	FUZZ_CHECK(json_is_object(j), "response_url body is no JSON object");
	json_decref(j);
	return IM_EUNSUPPORTED; /* nothing leaves the process */
}

static void check_reply(const json_t *msg);

/* Answers with a reply made of the invocation (the shape of a command
 * component's reply) through the connector's answer(). */
static int h_command_handle(im_instance *inst, const im_invocation *inv,
			    im_http_response *resp)
{
	FUZZ_CHECK(inv->struct_size == sizeof(*inv) && inv->platform &&
		       !strcmp(inv->platform, SLK_PLATFORM) &&
		       inv->instance && !strcmp(inv->instance, s.id),
		   "invocation without its platform or instance");
	FUZZ_CHECK(inv->text || (inv->action_id && inv->action_value),
		   "invocation with neither a text nor an action");
	const char *text = inv->text ? inv->text : inv->action_value;
	json_t *reply = json_pack(
	    "{s:s,s:s,s:[{s:s,s:s,s:b}],s:[{s:s,s:s,s:s}]}", "text", text,
	    "visibility", inv->channel ? "in_channel" : "ephemeral", "fields",
	    "title", inv->user_name ? inv->user_name : "user", "value",
	    inv->command ? inv->command : "", "short", 1, "actions", "id",
	    inv->action_id ? inv->action_id : "im_ack", "label",
	    inv->user_id ? inv->user_id : "Ack", "value", text);
	FUZZ_CHECK(reply, "invocation strings are not valid UTF-8");
	int rc = slk_answer(&s, inv, reply, resp);
	json_decref(reply);
	return rc;
}

static const im_host host = {
    .struct_size = sizeof(im_host),
    .abi_major = IM_ABI_MAJOR,
    .abi_minor = IM_ABI_MINOR,
    .log = h_log,
    .route_add = h_route_add,
    .req_path = h_req_path,
    .req_header = h_req_header,
    .req_body = h_req_body,
    .resp_set = h_resp_set,
    .http_send = h_http_send,
    .command_handle = h_command_handle,
};

static void cleanup(void)
{
	slk_mac_free(s.mac);
	slk_dedup_free(s.dedup);
	pthread_mutex_destroy(&s.mu);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	s.host = &host;
	s.id = "slack-fuzz";
	s.mac = slk_mac_new(SECRET);
	s.dedup = slk_dedup_new(64);
	pthread_mutex_init(&s.mu, NULL);
	if (!s.mac || !s.dedup || slk_routes_add(&s) != 0 || !handler)
		FUZZ_FAIL("cannot set the connector up");
	atexit(cleanup);
	return 0;
}

static void check_reply(const json_t *msg)
{
	FUZZ_CHECK(json_is_object(msg), "slk_render_reply: no object");
	const char *rt =
	    json_string_value(json_object_get(msg, "response_type"));
	const char *text = json_string_value(json_object_get(msg, "text"));
	FUZZ_CHECK(rt && (!strcmp(rt, "in_channel") || !strcmp(rt, "ephemeral")),
		   "slk_render_reply: response_type %s", rt ? rt : "(none)");
	FUZZ_CHECK(text && *text && strlen(text) <= 3000,
		   "slk_render_reply: text of %zu bytes",
		   text ? strlen(text) : 0);
	const json_t *blocks = json_object_get(msg, "blocks");
	FUZZ_CHECK(!blocks || (json_is_array(blocks) &&
			       json_array_size(blocks) <= 50),
		   "slk_render_reply: %zu blocks", json_array_size(blocks));
	char *d = json_dumps(msg, JSON_COMPACT);
	FUZZ_CHECK(d, "slk_render_reply: does not serialize");
	free(d);
}

static void check_mrkdwn(const char *md)
{
	char *out = slk_mrkdwn(md);
	FUZZ_CHECK(out, "slk_mrkdwn: NULL");
	for (const char *p = out; *p; p++) {
		if (*p == '<')
			FUZZ_CHECK(!strncmp(p + 1, "http://", 7) ||
				       !strncmp(p + 1, "https://", 8),
				   "slk_mrkdwn: a raw '<' in the output: "
				   "...%.40s",
				   p);
		else if (*p == '&')
			FUZZ_CHECK(!strncmp(p, "&amp;", 5) ||
				       !strncmp(p, "&lt;", 4) ||
				       !strncmp(p, "&gt;", 4),
				   "slk_mrkdwn: a raw '&' in the output: "
				   "...%.40s",
				   p);
	}
	free(out);
}

static void post(const char *body, size_t len)
{
	struct im_http_request req = {.body = body, .len = len};
	size_t i = 0;
	while (i < len && strchr(" \t\r\n", body[i]) && body[i])
		i++;
	req.ctype = i < len && body[i] == '{'
			? "application/json"
			: "application/x-www-form-urlencoded";
	snprintf(req.ts, sizeof(req.ts), "%lld", (long long)time(NULL));
	if (slk_mac_sign(s.mac, req.ts, body, len, req.sig) != 0)
		FUZZ_FAIL("cannot sign");
	struct im_http_response resp = {0};
	int rc = handler(&s, &req, &resp);
	FUZZ_CHECK(rc == 0, "the handler returned %d", rc);
	FUZZ_CHECK(resp.status == 200 || resp.status == 400,
		   "the handler answered %d: %s", resp.status,
		   resp.body ? resp.body : "");
	if (resp.status == 200 && !strncmp(resp.ctype, "application/json", 16)) {
		json_t *j = json_loadb(resp.body, resp.len, 0, NULL);
		FUZZ_CHECK(json_is_object(j), "a JSON answer that is no object: "
					      "%.200s",
			   resp.body);
		if (json_object_get(j, "response_type"))
			check_reply(j);
		json_decref(j);
	}
	free(resp.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!handler)
		LLVMFuzzerInitialize(NULL, NULL);
	/* NUL-terminated, as the host hands bodies over. */
	char *body = malloc(size + 1);
	if (!body)
		return 0;
	memcpy(body, data, size);
	body[size] = '\0';
	post(body, size);
	json_t *j = json_loadb(body, size, 0, NULL);
	if (json_is_object(j)) {
		json_t *msg = slk_render_reply(j);
		check_reply(msg);
		json_decref(msg);
	}
	json_decref(j);
	check_mrkdwn(body);
	free(body);
	return 0;
}
