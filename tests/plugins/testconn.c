/* testconn: a chat connector for tests, with no chat platform behind it.
 * POST /hooks/<id>/command with a JSON invocation
 *   {"text","user_id","user_name","channel","team","action_id",
 *    "action_value","response_url","groups"}
 * runs it through the host's command path; the first answer comes back as
 * the HTTP answer ({"reply": ...}), late results are POSTed as JSON to
 * response_url (like Slack's) or, without one, kept for GET
 * /hooks/<id>/followups. It also ships a `sleep <ms> [text]` command for
 * the 3-second-contract tests and benchmarks. */
#include <pthread.h>
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
		im_http_header h[] = {{"Content-Type", "application/json"}};
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

static int sleep_cmd(void *state, const char *verb, const im_invocation *inv,
		     im_reply *reply)
{
	tc *t = state;
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
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static const im_connector connector = {
    .base = {sizeof(im_connector), IM_COMPONENT_CONNECTOR, "testconn"},
    .platform = "test",
    .status = status,
    .answer = answer,
    .followup = followup,
};

static const im_command_verb verbs[] = {
    {"sleep", "sleep <ms>", "sleep, then answer (for tests)"},
    {NULL, NULL, NULL},
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
    .create = create,
    .destroy = destroy,
};

IM_PLUGIN_DEFINE(desc)
