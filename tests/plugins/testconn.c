/* testconn: a chat connector for tests, with no chat platform behind it.
 * POST /hooks/<id>/command with a JSON invocation
 *   {"text","user_id","user_name","channel","team","action_id",
 *    "action_value","response_url","groups"}
 * runs it through the host's command path; the first answer comes back as
 * the HTTP answer ({"reply": ...}), late results are POSTed as JSON to
 * response_url (like Slack's) or, without one, kept for GET
 * /hooks/<id>/followups. It also ships a `sleep <ms> [text]` command for
 * the 3-second-contract tests and benchmarks.
 * Notifications: send() POSTs the rendered payload to
 * <base_url>/channels/<channel>/messages (PATCH .../messages/<id> for an
 * edit) with the row's dedup key in X-Dedup-Key, and maps the answer the
 * way a real connector would: 2xx ok (message id from "id"), 429 rate
 * limited (Retry-After, or "retry_after" in the body), 5xx and network
 * errors retry, other 4xx permanent (the body's "error"). The fake
 * platform of tests/fakes answers there. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <im/im.h>

typedef struct tc {
	const im_host *host;
	im_instance *inst;
	pthread_mutex_t mu;
	json_t *followups;
	char *base_url;     /* "" = notifications cannot be sent */
	uint32_t timeout_ms;
} tc;

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int on_command(void *state, const im_http_request *req,
		      im_http_response *resp)
{
	tc *t = state;
	size_t len;
	const char *body = t->host->req_body(req, &len);
	json_error_t je;
	json_t *in = json_loadb(body, len, 0, &je);
	if (!json_is_object(in)) {
		json_decref(in);
		return t->host->resp_set(resp, 400, "text/plain",
					 "bad json", 8);
	}
	im_invocation inv = {
	    .struct_size = sizeof(inv),
	    .platform = "test",
	    .instance = t->host->instance_id(t->inst),
	    .team = str(in, "team"),
	    .channel = str(in, "channel"),
	    .user_id = str(in, "user_id"),
	    .user_name = str(in, "user_name"),
	    .command = "/incident",
	    .text = str(in, "text"),
	    .action_id = str(in, "action_id"),
	    .action_value = str(in, "action_value"),
	    .response_ref = str(in, "response_url"),
	    .user_groups = str(in, "groups"),
	};
	int rc = t->host->command_handle(t->inst, &inv, resp);
	json_decref(in);
	return rc;
}

static int on_followups(void *state, const im_http_request *req,
			im_http_response *resp)
{
	tc *t = state;
	pthread_mutex_lock(&t->mu);
	char *s = json_dumps(t->followups, JSON_COMPACT);
	pthread_mutex_unlock(&t->mu);
	int rc = t->host->resp_set(resp, 200, "application/json", s,
				   strlen(s));
	free(s);
	return rc;
}

static int answer(void *state, const im_invocation *inv, const json_t *reply,
		  im_http_response *resp)
{
	tc *t = state;
	json_t *o = json_pack("{s:O}", "reply", reply);
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	int rc = t->host->resp_set(resp, 200, "application/json", s,
				   strlen(s));
	free(s);
	return rc;
}

static void posted(void *ud, const im_http_result *res)
{
	tc *t = ud;
	if (res->error || res->status >= 300)
		t->host->log(t->inst, IM_LOG_WARN, "follow-up POST failed: %s",
			     res->error ? res->error_text : "HTTP error");
}

static int followup(void *state, const im_invocation *inv,
		    const json_t *reply)
{
	tc *t = state;
	if (inv->response_ref && *inv->response_ref) {
		char *s = json_dumps(reply, JSON_COMPACT);
		im_http_header h[] = {IM_HEADER("Content-Type", "application/json")};
		im_http_call call = {.struct_size = sizeof(call),
				     .method = "POST",
				     .url = inv->response_ref,
				     .headers = h,
				     .n_headers = 1,
				     .body = s,
				     .body_len = strlen(s)};
		int rc = t->host->http_send(t->inst, &call, posted, t);
		free(s);
		return rc;
	}
	pthread_mutex_lock(&t->mu);
	json_array_append(t->followups, (json_t *)reply);
	pthread_mutex_unlock(&t->mu);
	return 0;
}

static int status(void *state, json_t **out)
{
	*out = json_pack("{s:b}", "connected", 1);
	return 0;
}

/* dawdle <ms>: a fast verb that writes (declares an incident through
 * incident_op_then) and whose then() sleeps `ms` before it answers. */
typedef struct dawdle {
	const im_host *host;
	long ms;
} dawdle;

static int dawdled(void *ud, im_reply *reply, int rc, const json_t *out)
{
	dawdle *d = ud;
	struct timespec ts = {d->ms / 1000, (d->ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	char text[160];
	const char *id = json_string_value(
	    json_object_get(json_object_get(out, "incident"), "id"));
	snprintf(text, sizeof(text), "declared %s, then dawdled %ld ms",
		 rc == 0 && id ? id : "nothing", d->ms);
	if (reply)
		d->host->reply_text(reply, text);
	free(d);
	return rc;
}

static int dawdle_cmd(tc *t, const im_invocation *inv, im_reply *reply)
{
	dawdle *d = malloc(sizeof(*d));
	if (!d)
		return IM_ENOMEM;
	d->host = t->host;
	d->ms = inv->text ? strtol(inv->text, NULL, 10) : 0;
	if (d->ms < 0 || d->ms > 60000)
		d->ms = 0;
	json_t *args = json_pack("{s:{s:s},s:{s:s}}", "fields", "title",
				 "dawdle", "actor", "id", "U-test");
	int rc = t->host->incident_op_then(t->inst, "declare", args, reply,
					   dawdled, d);
	json_decref(args);
	return rc;
}

static int sleep_cmd(void *state, const char *verb, const im_invocation *inv,
		     im_reply *reply)
{
	tc *t = state;
	if (strcmp(verb, "dawdle") == 0)
		return dawdle_cmd(t, inv, reply);
	long ms = inv->text ? strtol(inv->text, NULL, 10) : 0;
	if (ms < 0 || ms > 60000)
		ms = 0;
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	char text[128];
	snprintf(text, sizeof(text), "slept %ld ms", ms);
	t->host->reply_text(reply, text);
	t->host->reply_visibility(reply, IM_REPLY_IN_CHANNEL);
	return 0;
}

static void set_result(im_send_result *res, uint32_t verdict,
		       const char *error, const char *hint)
{
	res->verdict = verdict;
	snprintf(res->error, sizeof(res->error), "%s", error ? error : "");
	snprintf(res->hint, sizeof(res->hint), "%s", hint ? hint : "");
}

static const char *header(const im_http_result *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (!strcmp(r->headers[i].name, name))
			return r->headers[i].value;
	return NULL;
}

/* The platform's answer -> what the pipeline should do. */
static void classify(const im_http_result *r, im_send_result *res)
{
	json_t *body = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
	const char *err = str(body, "error");
	res->http_status = r->status;
	if (r->status >= 200 && r->status < 300) {
		const json_t *id = json_object_get(body, "id");
		if (json_is_string(id) && *json_string_value(id)) {
			set_result(res, IM_SEND_OK, NULL, NULL);
			snprintf(res->message_id, sizeof(res->message_id), "%s",
				 json_string_value(id));
			snprintf(res->thread_id, sizeof(res->thread_id), "%s",
				 json_string_value(id));
		} else {
			/* It may have posted; we cannot tell. Try again
			 * (the dedup key lets the platform drop a repeat). */
			set_result(res, IM_SEND_RETRY, "bad_response",
				   "the platform answered 2xx without a "
				   "message id");
		}
	} else if (r->status == 429) {
		const char *ra = header(r, "retry-after");
		res->retry_after_s =
		    ra ? strtod(ra, NULL)
		       : json_number_value(json_object_get(body, "retry_after"));
		bool global = json_is_true(json_object_get(body, "global"));
		set_result(res, IM_SEND_RATE_LIMITED,
			   global ? "global_rate_limited" : "rate_limited",
			   NULL);
		if (global)
			res->flags |= IM_SEND_LIMIT_GLOBAL;
	} else if (r->status >= 500) {
		char e[32];
		snprintf(e, sizeof(e), "http_%ld", r->status);
		set_result(res, IM_SEND_RETRY, err ? err : e, NULL);
	} else {
		char e[32];
		snprintf(e, sizeof(e), "http_%ld", r->status);
		set_result(res, IM_SEND_PERMANENT, err ? err : e,
			   str(body, "hint") ? str(body, "hint")
					     : "the test platform refused the "
					       "message");
	}
	json_decref(body);
}

static int send_msg(void *state, const im_send *msg, im_send_result *res)
{
	tc *t = state;
	if (!*t->base_url || !IM_HOST_HAS(t->host, http_fetch)) {
		set_result(res, IM_SEND_PERMANENT, "no base_url",
			   "set base_url in this testconn instance's config");
		return 0;
	}
	char url[1024];
	if (msg->message_id)
		snprintf(url, sizeof(url), "%s/channels/%s/messages/%s",
			 t->base_url, msg->channel, msg->message_id);
	else
		snprintf(url, sizeof(url), "%s/channels/%s/messages",
			 t->base_url, msg->channel);
	json_t *body = json_is_object(msg->payload)
			   ? json_deep_copy(msg->payload)
			   : json_pack("{s:O?}", "payload", msg->payload);
	if (msg->thread_id)
		json_object_set_new(body, "thread_id",
				    json_string(msg->thread_id));
	if (msg->event_type)
		json_object_set_new(body, "event_type",
				    json_string(msg->event_type));
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	im_http_header h[] = {IM_HEADER("Content-Type", "application/json"),
			      IM_HEADER("X-Dedup-Key",
					msg->dedup_key ? msg->dedup_key : "")};
	im_http_call call = {.struct_size = sizeof(call),
			     .method = msg->message_id ? "PATCH" : "POST",
			     .url = url,
			     .headers = h,
			     .n_headers = 2,
			     .body = text,
			     .body_len = text ? strlen(text) : 0,
			     .timeout_ms = t->timeout_ms};
	im_http_result *r = NULL;
	int rc = t->host->http_fetch(t->inst, &call, &r);
	free(text);
	if (rc != 0 || !r || r->error) {
		set_result(res, IM_SEND_RETRY,
			   rc == IM_ETIMEDOUT || (r && r->error == IM_ETIMEDOUT)
			       ? "timeout"
			       : "network",
			   r && r->error_text ? r->error_text : NULL);
	} else {
		classify(r, res);
		/* An edit of a message the platform does not know: the
		 * pipeline posts anew. */
		if (msg->message_id && r->status == 404)
			res->flags |= IM_SEND_EDIT_FAILED;
	}
	if (r)
		t->host->http_result_free(r);
	return 0;
}

static int create(const im_host *host, im_instance *inst,
		  const json_t *config, void **state)
{
	if (!IM_HOST_HAS(host, command_handle) ||
	    !IM_HOST_HAS(host, reply_text))
		return IM_EUNSUPPORTED;
	tc *t = calloc(1, sizeof(*t));
	if (!t)
		return IM_ENOMEM;
	t->host = host;
	t->inst = inst;
	const char *base = json_string_value(json_object_get(config, "base_url"));
	t->base_url = strdup(base ? base : "");
	double to = json_number_value(json_object_get(config, "timeout"));
	t->timeout_ms = to > 0 ? (uint32_t)(to * 1000) : 10000;
	if (!t->base_url) {
		free(t);
		return IM_ENOMEM;
	}
	/* Edits and posts share one base URL; a trailing slash would double. */
	size_t bl = strlen(t->base_url);
	if (bl && t->base_url[bl - 1] == '/')
		t->base_url[bl - 1] = '\0';
	pthread_mutex_init(&t->mu, NULL);
	t->followups = json_array();
	host->route_add(inst, "POST", "command", on_command);
	host->route_add(inst, "GET", "followups", on_followups);
	host->set_connected(inst, "test", 1);
	*state = t;
	return 0;
}

static void destroy(void *state)
{
	tc *t = state;
	json_decref(t->followups);
	free(t->base_url);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static const im_connector connector = {
    .base = {sizeof(im_connector), IM_COMPONENT_CONNECTOR, "testconn"},
    .platform = "test",
    .status = status,
    .answer = answer,
    .followup = followup,
    .send = send_msg,
    /* Like the fake platform of tests/fakes: 1 message/s per channel,
     * bursts of 3. */
    .rate_per_channel = 1,
    .burst_per_channel = 3,
    .rate_global = 0,
};

static const im_config_key keys[] = {
    {IM_CONFIG_KEY_HEADER, "base_url", IM_CFG_STRING, "\"\"", 0,
     "where notifications go: <base_url>/channels/<id>/messages (empty: "
     "sends fail with a dead letter)"},
    {IM_CONFIG_KEY_HEADER, "timeout", IM_CFG_DURATION, "10s", 0, "HTTP timeout of one send"},
    /* Read by the host's pipeline, as for the real connectors. */
    {IM_CONFIG_KEY_HEADER, "default_channel", IM_CFG_STRING, NULL, 0,
     "channel for incident events of severities not routed below"},
    {IM_CONFIG_KEY_HEADER, "notification_channels", IM_CFG_MAP, NULL, 0,
     "severity routing: {SEV-1: channel id, ...}"},
    {0},
};

static const im_command_verb verbs[] = {
    IM_VERB("sleep", "sleep <ms>", "sleep, then answer (for tests)"),
    /* The same, declared fast: a well-behaved one (nap 0) runs inline;
     * nap 300 is a "fast" verb that blocks anyway (the watchdog's case). */
    IM_VERB_FLAGS("nap", "nap <ms>", "sleep, declared fast (for tests)",
		  IM_VERB_FAST),
    /* A fast verb that writes, whose then() sleeps (ABI 1.6). */
    IM_VERB_FLAGS("dawdle", "dawdle <ms>",
		  "declare, then sleep in then() (for tests)", IM_VERB_FAST),
    {0},
};

static const im_command sleeper = {
    .base = {sizeof(im_command), IM_COMPONENT_COMMAND, "sleep"},
    .verbs = verbs,
    .invoke = sleep_cmd,
};

static const im_component *const components[] = {&connector.base,
						 &sleeper.base, NULL};

static const im_plugin_desc desc = {
    IM_PLUGIN_HEADER,
    .name = "testconn",
    .version = "1.0.0",
    .description = "test chat connector (no platform)",
    .vendor = "tests",
    .license = "MIT",
    .components = components,
    .config_keys = keys,
    .create = create,
    .destroy = destroy,
};

IM_PLUGIN_DEFINE(desc)
