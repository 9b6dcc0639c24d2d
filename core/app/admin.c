/* Admin API under /api/v1/admin: plugin listing and reload, server status,
 * connector status. Bearer-token protected; with no admin token set, only
 * loopback peers are served. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <nettle/base64.h>


#include "app/app.h"
#include "buf/buf.h"
#include "app/internal.h"
#include "command/command.h"
#include "incident/repo.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "notify/notify.h"
#include "plugin/plugin.h"

/* Compares without an early exit, so the time taken does not tell an
 * attacker how many leading bytes were right. */
static bool same_secret(const char *want, const char *got)
{
	size_t wl = strlen(want), gl = strlen(got);
	unsigned char diff = wl != gl;
	for (size_t i = 0; i < wl; i++)
		diff |= (unsigned char)(want[i] ^ got[i < gl ? i : 0]);
	return diff == 0;
}

static bool token_ok(const char *want, const char *auth)
{
	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
		return false;
	return same_secret(want, auth + 7);
}

/* The token of "Bearer <token>", or of "Basic base64(<any user>:<token>)"
 * (what a browser sends for the incident pages); NULL for anything else. */
static const char *credential(const char *auth, char *buf, size_t len)
{
	if (!auth)
		return NULL;
	if (strncasecmp(auth, "Bearer ", 7) == 0)
		return auth + 7;
	if (strncasecmp(auth, "Basic ", 6) != 0)
		return NULL;
	const char *in = auth + 6;
	size_t n = strlen(in), out = len - 1;
	struct base64_decode_ctx ctx;
	base64_decode_init(&ctx);
	if (BASE64_DECODE_LENGTH(n) > out ||
	    !base64_decode_update(&ctx, &out, (uint8_t *)buf, n, in) ||
	    !base64_decode_final(&ctx))
		return NULL;
	buf[out] = '\0';
	if (strlen(buf) != out) /* a NUL inside */
		return NULL;
	char *colon = strchr(buf, ':');
	return colon ? colon + 1 : NULL;
}

/* API: any of server.api_tokens, or the admin token; with neither set,
 * loopback callers only. The token's position names the actor. */
bool im_app_authorize_api(void *ud, const im_http_request *req,
			  im_http_response *resp, im_actor *who)
{
	im_app *app = ud;
	char basic[512];
	const char *got = credential(im_req_header(req, "Authorization"),
				     basic, sizeof(basic));
	bool any = false, ok = false;
	pthread_mutex_lock(&app->mu);
	for (size_t i = 0; i < app->n_api_tokens; i++) {
		any = true;
		if (got && same_secret(app->api_tokens[i], got)) {
			ok = true;
			snprintf(who->id_buf, sizeof(who->id_buf), "api-token-%zu",
				 i + 1);
		}
	}
	if (app->admin_token && *app->admin_token) {
		any = true;
		if (!ok && got && same_secret(app->admin_token, got)) {
			ok = true;
			snprintf(who->id_buf, sizeof(who->id_buf), "admin");
		}
	}
	pthread_mutex_unlock(&app->mu);
	explicit_bzero(basic, sizeof(basic));
	if (!any && req->loopback) {
		ok = true;
		snprintf(who->id_buf, sizeof(who->id_buf), "local");
	}
	who->id = who->id_buf;
	who->name = im_req_header(req, "X-Im-Actor");
	who->via = "api";
	if (ok)
		return true;
	if (!any)
		im_resp_error(resp, 403, "forbidden",
			      "the API is open to loopback only; set "
			      "server.api_tokens (IM_API_TOKEN) to reach it "
			      "remotely");
	else if (!got)
		im_resp_error(resp, 401, "unauthorized",
			      "missing bearer token; send Authorization: "
			      "Bearer <one of server.api_tokens>");
	else
		im_resp_error(resp, 401, "unauthorized",
			      "the bearer token is not one of "
			      "server.api_tokens");
	return false;
}

static bool authorized(im_app *app, const im_http_request *req,
		       im_http_response *resp)
{
	pthread_mutex_lock(&app->mu);
	char *want = strdup(app->admin_token ? app->admin_token : "");
	pthread_mutex_unlock(&app->mu);
	bool ok;
	if (!want) {
		ok = false;
	} else if (!*want) {
		ok = req->loopback;
		if (!ok)
			im_resp_error(resp, 403, "forbidden",
				      "the admin API is open to loopback "
				      "only; set server.admin_token "
				      "(IM_ADMIN_TOKEN) to reach it remotely");
	} else {
		ok = token_ok(want, im_req_header(req, "Authorization"));
		if (!ok)
			im_resp_error(resp, 401, "unauthorized",
				      "missing or wrong admin token; send "
				      "Authorization: Bearer $IM_ADMIN_TOKEN");
	}
	free(want);
	return ok;
}

static json_t *dirs_json(const im_config *cfg)
{
	im_plugin_dirs d;
	json_t *out = json_array();
	if (im_plugin_dirs_from(cfg, &d) == 0) {
		for (size_t i = 0; i < d.n; i++)
			json_array_append_new(out, json_string(d.dirs[i]));
		im_plugin_dirs_free(&d);
	}
	return out;
}

static int plugins_list(void *ud, const im_http_request *req,
			im_http_response *resp)
{
	im_app *app = ud;
	if (!authorized(app, req, resp))
		return 0;
	return im_resp_json(resp, 200,
			    json_pack("{s:o}", "instances",
				      im_registry_describe()));
}

static int plugins_reload(void *ud, const im_http_request *req,
			  im_http_response *resp)
{
	im_app *app = ud;
	if (!authorized(app, req, resp))
		return 0;
	pthread_mutex_lock(&app->mu);
	unsigned long mine = ++app->reload_seq;
	uint64_t one = 1;
	if (write(app->wake_fd, &one, sizeof(one)) < 0)
		(void)0; /* the counter is still set; the loop will see it */
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 60;
	int rc = 0;
	while (app->reload_done < mine && rc == 0)
		rc = pthread_cond_timedwait(&app->cv, &app->mu, &deadline);
	json_t *res = app->reload_result && app->reload_done >= mine
			  ? json_deep_copy(app->reload_result)
			  : NULL;
	pthread_mutex_unlock(&app->mu);
	if (!res)
		return im_resp_error(resp, 503, "unavailable",
				     "the server is stopping or the reload "
				     "did not finish in 60 s");
	int status = json_is_true(json_object_get(res, "ok")) ? 200 : 409;
	return im_resp_json(resp, status, res);
}

static int status(void *ud, const im_http_request *req,
		  im_http_response *resp)
{
	im_app *app = ud;
	if (!authorized(app, req, resp))
		return 0;
	char abi[16];
	snprintf(abi, sizeof(abi), "%d.%d", IM_ABI_MAJOR, IM_ABI_MINOR);
	return im_resp_json(
	    resp, 200,
	    json_pack("{s:s,s:s,s:f,s:s,s:i}", "version", IM_VERSION, "abi",
		      abi, "uptime_s", im_app_uptime(app), "config_dir",
		      app->config_dir, "pid", (int)getpid()));
}

/* A connector instance by id or, failing that, the first instance of that
 * platform, so `im connector <platform> status` works whatever the
 * instance is called. */
static im_instance *find_connector(const im_snapshot *s, const char *name)
{
	im_instance *in = im_snapshot_find(s, name);
	if (im_instance_connector(in))
		return in;
	for (size_t i = 0; s && i < s->n; i++) {
		const im_connector *c = im_instance_connector(s->insts[i]);
		if (c && c->platform && strcmp(c->platform, name) == 0)
			return s->insts[i];
	}
	return NULL;
}

/* rest = "<id or platform>/<action>"; false (404 answered) otherwise. */
static bool connector_path(const im_http_request *req, const char *action,
			   char *id, size_t len, im_http_response *resp)
{
	const char *slash = strchr(req->rest, '/');
	size_t n = slash ? (size_t)(slash - req->rest) : 0;
	if (!slash || n == 0 || n >= len || strcmp(slash + 1, action)) {
		im_resp_error(resp, 404, "not_found",
			      "use /api/v1/admin/connectors/<id>/%s", action);
		return false;
	}
	memcpy(id, req->rest, n);
	id[n] = '\0';
	return true;
}

/* A call into a connector that may wait on its platform, run off the
 * HTTP workers (im_resp_offload) while holding the snapshot. */
#define CONNECTOR_DEADLINE_S 15
typedef struct connector_call {
	im_snapshot *s;
	im_instance *in;
	json_t *body;
	char action[64];
} connector_call;

static void notify_work(void *ud, im_http_response *resp);

static void connector_call_free(void *p)
{
	connector_call *cc = p;
	im_registry_release(cc->s);
	json_decref(cc->body);
	free(cc);
}

static void status_work(void *ud, im_http_response *resp)
{
	connector_call *cc = ud;
	im_instance *in = cc->in;
	json_t *out = json_pack("{s:s,s:s,s:s}", "id", in->id, "platform",
				im_instance_connector(in)->platform, "state",
				im_instance_state_name(in->st));
	if (in->reason)
		json_object_set_new(out, "reason", json_string(in->reason));
	json_t *detail = NULL;
	/* Also for an instance that failed while running (its state lives
	 * on): what went wrong is in its status. */
	if ((in->st == IM_STATE_RUNNING ||
	     (in->st == IM_STATE_FAILED && in->started && in->state)) &&
	    im_instance_connector(in)->status) {
		im_plugin_call_enter(in->module_name, in->id, "status", NULL);
		im_instance_connector(in)->status(in->state, &detail);
		im_plugin_call_leave();
		if (detail)
			json_object_set_new(out, "detail", detail);
	}
	im_resp_json(resp, 200, out);
}

static int connector_status(void *ud, const im_http_request *req,
			    im_http_response *resp)
{
	im_app *app = ud;
	char id[128];
	if (!authorized(app, req, resp) ||
	    !connector_path(req, "status", id, sizeof(id), resp))
		return 0;
	im_snapshot *s = im_registry_acquire();
	im_instance *in = find_connector(s, id);
	int rc;
	if (!in) {
		im_buf have = {.max = 512};
		for (size_t i = 0; s && i < s->n; i++) {
			const im_instance *c = s->insts[i];
			const im_connector *cc = im_instance_connector(c);
			if (!cc)
				continue;
			im_buf_printf(&have, "%s%s (%s)", have.len ? ", " : "",
				      c->id, cc->platform);
		}
		rc = im_resp_error(
		    resp, 404, "not_found",
		    "no connector instance or platform '%s' in this server; "
		    "connectors configured: %s. A platform needs its connector "
		    "plugin installed and an instance in plugins.instances "
		    "(see im plugins list)",
		    id, have.len ? im_buf_str(&have) : "none");
		im_buf_free(&have);
	} else {
		/* status() may call the platform: not on an HTTP worker. */
		connector_call *cc = calloc(1, sizeof(*cc));
		if (!cc) {
			im_registry_release(s);
			return IM_ENOMEM;
		}
		cc->s = s;
		cc->in = in;
		return im_resp_offload(resp, "the connector's status call",
				       CONNECTOR_DEADLINE_S, status_work, cc,
				       connector_call_free);
	}
	im_registry_release(s);
	return rc;
}

/* POST .../connectors/<id>/notify {"incident":"INC-n","channel"?}: one
 * test notification straight through the connector's send(), bypassing
 * subscriptions and batching. Without a channel the connector gets the
 * incident's severity ("SEV-2") and picks its channel for it. */
static int connector_notify(void *ud, const im_http_request *req,
			    im_http_response *resp)
{
	im_app *app = ud;
	char id[128];
	if (!authorized(app, req, resp) ||
	    !connector_path(req, "notify", id, sizeof(id), resp))
		return 0;
	json_error_t je;
	json_t *body = json_loadb(req->body, req->body_len, 0, &je);
	const char *inc_id = json_string_value(json_object_get(body, "incident"));
	json_t *inc = NULL;
	im_err err = {0};
	im_snapshot *s = im_registry_acquire();
	im_instance *in = find_connector(s, id);
	int rc;
	if (!inc_id) {
		rc = im_resp_error(resp, 400, "bad_request",
				   "send {\"incident\":\"INC-n\"}");
	} else if (!in || in->st != IM_STATE_RUNNING ||
		   !im_instance_connector(in)->send) {
		rc = im_resp_error(resp, 404, "not_found",
				   "no running connector '%s' that can send", id);
	} else if (im_inc_get(app->store, inc_id, &inc, &err) != 0) {
		rc = im_resp_error(resp, err.status ? err.status : 404,
				   err.code[0] ? err.code : "not_found", "%s",
				   err.message);
	} else {
		/* send() talks to the platform: not on an HTTP worker. */
		connector_call *cc = calloc(1, sizeof(*cc));
		if (!cc) {
			rc = IM_ENOMEM;
		} else {
			json_object_set_new(body, "_incident", inc);
			inc = NULL;
			cc->s = s;
			cc->in = in;
			cc->body = body;
			return im_resp_offload(resp, "the connector's send",
					       CONNECTOR_DEADLINE_S, notify_work,
					       cc, connector_call_free);
		}
	}
	im_registry_release(s);
	json_decref(inc);
	json_decref(body);
	return rc;
}

static void notify_work(void *ud, im_http_response *resp)
{
	connector_call *cc = ud;
	im_instance *in = cc->in;
	const char *inc_id =
	    json_string_value(json_object_get(cc->body, "incident"));
	const char *channel =
	    json_string_value(json_object_get(cc->body, "channel"));
	const json_t *inc = json_object_get(cc->body, "_incident");
	{
		const char *sev = json_string_value(json_object_get(inc, "severity"));
		json_t *payload = json_pack(
		    "{s:o}", "text",
		    json_sprintf("Test notification from im: %s [%s] %s (%s)",
				 inc_id, sev ? sev : "?",
				 json_string_value(json_object_get(inc, "title")),
				 json_string_value(
				     json_object_get(inc, "status"))));
		im_send msg = {.struct_size = sizeof(msg),
			       .channel = channel ? channel : sev,
			       .payload = payload,
			       .dedup_key = inc_id,
			       .event_type = "im.test"};
		im_send_result res = {.struct_size = sizeof(res)};
		im_plugin_call_enter(in->module_name, in->id, "send", NULL);
		int src = im_instance_connector(in)->send(in->state, &msg, &res);
		im_plugin_call_leave();
		static const char *const verdicts[] = {"ok", "retry",
						       "rate_limited",
						       "permanent"};
		bool ok = src == 0 && res.verdict == IM_SEND_OK;
		im_resp_json(
		    resp, ok ? 200 : 502,
		    json_pack("{s:b,s:s,s:s,s:s,s:s,s:s,s:I,s:f}", "ok", ok,
			      "instance", in->id, "verdict",
			      res.verdict < 4 ? verdicts[res.verdict] : "?",
			      "message_id", res.message_id, "error", res.error,
			      "hint", res.hint, "http_status",
			      (json_int_t)res.http_status, "retry_after_s",
			      res.retry_after_s));
		json_decref(payload);
	}
}

/* POST .../connectors/<id>/actions/<name> {options}: an operator action
 * of the connector (im_connector.action), e.g. sync-commands. */
#define ACTION_DEADLINE_S 30

static void action_work(void *ud, im_http_response *resp)
{
	connector_call *cc = ud;
	im_instance *in = cc->in;
	json_t *out = NULL;
	im_plugin_call_enter(in->module_name, in->id, "action", NULL);
	int rc = im_instance_connector(in)->action(in->state, cc->action,
						   cc->body, &out);
	im_plugin_call_leave();
	if (rc == 0) {
		im_resp_json(resp, 200, out ? out : json_object());
		return;
	}
	const char *why = json_string_value(json_object_get(out, "error"));
	if (rc == IM_ENOTFOUND)
		im_resp_error(resp, 404, "unknown_action",
			      "connector '%s' has no action '%s'", in->id,
			      cc->action);
	else if (rc == IM_EINVAL)
		im_resp_error(resp, 400, "bad_arguments", "%s: %s", cc->action,
			      why ? why : "the arguments were refused");
	else
		im_resp_error(resp, 502, "action_failed", "%s on %s: %s",
			      cc->action, in->id,
			      why ? why : "the connector did not say why");
	json_decref(out);
}

static int connector_action(const im_http_request *req,
			    im_http_response *resp, const char *id,
			    const char *action)
{
	json_error_t je;
	json_t *body = req->body_len ? json_loadb(req->body, req->body_len, 0,
						  &je)
				     : json_object();
	if (!json_is_object(body) || strlen(action) >= 64 || !*action) {
		json_decref(body);
		return im_resp_error(resp, 400, "bad_request",
				     "send a JSON object of the action's "
				     "options");
	}
	im_snapshot *s = im_registry_acquire();
	im_instance *in = find_connector(s, id);
	const im_connector *c = im_instance_connector(in);
	if (!in || in->st != IM_STATE_RUNNING || !c->action) {
		im_registry_release(s);
		json_decref(body);
		return im_resp_error(
		    resp, 404, "not_found",
		    !in ? "no connector instance or platform '%s'"
			: in->st != IM_STATE_RUNNING
			? "connector '%s' is not running (im connector %s "
			  "status says why)"
			: "connector '%s' has no actions",
		    id, id);
	}
	connector_call *cc = calloc(1, sizeof(*cc));
	if (!cc) {
		im_registry_release(s);
		json_decref(body);
		return IM_ENOMEM;
	}
	cc->s = s;
	cc->in = in;
	cc->body = body;
	snprintf(cc->action, sizeof(cc->action), "%s", action);
	return im_resp_offload(resp, "the connector's action",
			       ACTION_DEADLINE_S, action_work, cc,
			       connector_call_free);
}

/* POST .../connectors/<id>/notify or .../<id>/actions/<name>. */
static int connector_post(void *ud, const im_http_request *req,
			  im_http_response *resp)
{
	im_app *app = ud;
	const char *a = strstr(req->rest, "/actions/");
	if (!a)
		return connector_notify(ud, req, resp);
	if (!authorized(app, req, resp))
		return 0;
	char id[128];
	size_t n = (size_t)(a - req->rest);
	if (n == 0 || n >= sizeof(id))
		return im_resp_error(resp, 404, "not_found",
				     "use /api/v1/admin/connectors/<id>/"
				     "actions/<name>");
	memcpy(id, req->rest, n);
	id[n] = '\0';
	return connector_action(req, resp, id, a + strlen("/actions/"));
}

static int commands_invoke(void *ud, const im_http_request *req,
			   im_http_response *resp)
{
	im_app *app = ud;
	if (!authorized(app, req, resp))
		return 0;
	json_error_t jerr;
	json_t *in = json_loadb(req->body, req->body_len, 0, &jerr);
	const char *verb = json_string_value(json_object_get(in, "verb"));
	if (!verb) {
		json_decref(in);
		return im_resp_error(resp, 400, "bad_request",
				     "send {\"verb\":\"...\",\"text\":\"...\"}");
	}
	im_invocation inv = {
	    .struct_size = sizeof(inv),
	    .platform = "admin",
	    .instance = "admin",
	    .user_id = "admin",
	    .user_name = "admin",
	    .command = "/incident",
	    .text = json_string_value(json_object_get(in, "text")),
	};
	if (!inv.text)
		inv.text = "";
	im_reply *reply = im_reply_new();
	int rc = reply ? im_registry_invoke(verb, &inv, reply) : IM_ENOMEM;
	int ret;
	if (rc == IM_ENOTFOUND)
		ret = im_resp_error(resp, 404, "unknown_verb",
				    "no command plugin serves '%s'", verb);
	else if (rc == IM_EINVAL)
		/* The verb refused its arguments: the caller's mistake. */
		ret = im_resp_error(resp, 400, "bad_arguments", "%s: %s", verb,
				    *im_reply_text(reply)
					? im_reply_text(reply)
					: "the arguments were not understood");
	else if (rc != 0)
		ret = im_resp_error(resp, 500, "command_failed",
				    "'%s' failed (%d)", verb, rc);
	else
		ret = im_resp_json(resp, 200, im_reply_json(reply, "ok"));
	im_reply_free(reply);
	json_decref(in);
	return ret;
}

/* The notification pipeline's admin routes check callers the same way. */
static bool notify_authorized(void *app, const im_http_request *req,
			      im_http_response *resp)
{
	return authorized(app, req, resp);
}

int im_admin_routes(im_app *app, im_router *r)
{
	int rc = 0;
	rc |= im_notify_admin_routes(r, notify_authorized, app);
	rc |= im_router_add(r, "GET", "/api/v1/admin/plugins", plugins_list,
			    app);
	rc |= im_router_add(r, "POST", "/api/v1/admin/plugins/reload",
			    plugins_reload, app);
	rc |= im_router_add(r, "GET", "/api/v1/admin/status", status, app);
	rc |= im_router_add(r, "GET", "/api/v1/admin/connectors/*",
			    connector_status, app);
	rc |= im_router_add(r, "POST", "/api/v1/admin/connectors/*",
			    connector_post, app);
	rc |= im_router_add(r, "POST", "/api/v1/admin/commands",
			    commands_invoke, app);
	return rc ? IM_ENOMEM : 0;
}

static void add_secret(json_t *list, const json_t *v)
{
	const char *s = json_string_value(v);
	if (s && strlen(s) >= 4)
		json_array_append_new(list, json_string(s));
}

void im_app_update_secrets(im_app *app)
{
	json_t *list = json_array();
	add_secret(list, im_config_get(app->cfg, "server.admin_token"));
	size_t i;
	const json_t *v;
	json_array_foreach(im_config_get(app->cfg, "server.api_tokens"), i, v)
	    add_secret(list, v);
	im_snapshot *s = im_registry_acquire();
	for (size_t k = 0; s && k < s->n; k++) {
		const im_instance *in = s->insts[k];
		if (!in->mod || !in->mod->desc.config_keys)
			continue;
		for (const im_config_key *key = in->mod->desc.config_keys;
		     key->name; key++)
			if (key->flags & IM_CFG_SECRET)
				add_secret(list,
					   json_object_get(in->config, key->name));
	}
	im_registry_release(s);
	size_t n = json_array_size(list);
	const char **vals = calloc(n ? n : 1, sizeof(*vals));
	if (vals) {
		for (size_t k = 0; k < n; k++)
			vals[k] = json_string_value(json_array_get(list, k));
		im_log_set_secrets(vals, n);
	}
	free(vals);
	json_decref(list);
}

static void count_reload(const char *result)
{
	static const char *const labels[] = {"result", NULL};
	im_metric *m = im_metrics_family("im_plugin_reloads_total",
					 "Plugin reloads by result",
					 IM_METRIC_COUNTER, labels, NULL, 0);
	const char *v[] = {result, NULL};
	if (m)
		im_metric_add(m, v, 1);
}

json_t *im_app_reload(im_app *app)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	char err[2048];
	im_config *cfg = im_config_load_dir(app->config_dir, err, sizeof(err));
	im_snapshot *s = cfg ? im_registry_build(cfg, err, sizeof(err)) : NULL;
	if (!s) {
		im_config_free(cfg);
		LOG_ERROR("reload", "reload failed, nothing changed: %s", err);
		count_reload("failed");
		return json_pack("{s:b,s:s}", "ok", 0, "error", err);
	}
	/* The template set reads the new config's templates_dir. */
	im_config *prev = app->cfg;
	app->cfg = cfg;
	void *old_set = im_app_templates_load(app, s);
	app->cfg = prev;
	im_registry_swap_with(s, im_app_templates_drop, old_set);
	static const char *const fixed[] = {
	    "server.listen",	      "server.metrics_listen",
	    "server.max_body",	      "server.request_timeout",
	    "server.threads",	      "server.header_timeout",
	    "server.max_connections", "server.stream_memory",
	    "storage.path",
	    NULL};
	for (const char *const *k = fixed; *k; k++) {
		const json_t *a = im_config_get(app->cfg, *k),
			     *b = im_config_get(cfg, *k);
		if (json_equal(a, b) || (!a && !b))
			continue;
		char *ta = a ? json_dumps(a, JSON_ENCODE_ANY) : NULL;
		char *tb = b ? json_dumps(b, JSON_ENCODE_ANY) : NULL;
		LOG_WARN("reload", "%s changed from %s to %s: it takes effect "
				   "after a restart",
			 *k, ta ? ta : "(unset)", tb ? tb : "(unset)");
		free(ta);
		free(tb);
	}
	im_config *old = app->cfg;
	app->cfg = cfg;
	im_config_free(old);
	im_app_load_tokens(app);
	if (im_log_configure(im_config_string(cfg, "log.level", "info"),
			     im_config_string(cfg, "log.format", "text")) == 0)
		im_log_init_env();
	im_app_update_secrets(app);
	im_app_configure_commands(app);
	im_repo_set_public_url(im_config_string(cfg, "server.public_url", ""));
	im_notify_reload(cfg);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	LOG_INFO("reload", "reloaded %zu instances in %.2f ms", s->n, ms);
	count_reload("ok");
	return json_pack("{s:b,s:f,s:I,s:o,s:o}", "ok", 1, "elapsed_ms", ms,
			 "generation", (json_int_t)s->generation, "instances",
			 im_registry_describe(), "dirs", dirs_json(cfg));
}

static void free_tokens(im_app *app)
{
	for (size_t i = 0; i < app->n_api_tokens; i++)
		free(app->api_tokens[i]);
	free(app->api_tokens);
	app->api_tokens = NULL;
	app->n_api_tokens = 0;
	free(app->admin_token);
	app->admin_token = NULL;
}

void im_app_load_tokens(im_app *app)
{
	const json_t *list = im_config_get(app->cfg, "server.api_tokens");
	char **toks = calloc(json_array_size(list) + 1, sizeof(*toks));
	size_t n = 0, i;
	const json_t *v;
	json_array_foreach(list, i, v)
	{
		const char *t = json_string_value(v);
		if (toks && t && *t)
			toks[n++] = strdup(t);
	}
	pthread_mutex_lock(&app->mu);
	free_tokens(app);
	app->api_tokens = toks;
	app->n_api_tokens = n;
	app->admin_token =
	    strdup(im_config_string(app->cfg, "server.admin_token", ""));
	pthread_mutex_unlock(&app->mu);
}

void im_app_free_tokens(im_app *app)
{
	pthread_mutex_lock(&app->mu);
	free_tokens(app);
	pthread_mutex_unlock(&app->mu);
}

void im_app_configure_commands(im_app *app)
{
	double budget = 1.0;
	const char *b = im_config_string(app->cfg, "chatops.command_budget",
					 NULL);
	const json_t *bv = im_config_get(app->cfg, "chatops.command_budget");
	if (json_is_number(bv))
		budget = json_number_value(bv);
	else if (b && im_config_parse_duration(b, &budget) != 0)
		budget = 1.0;
	im_command_configure(budget,
			     im_config_get(app->cfg, "chatops.permissions"));
}
