/* Registry: the running set of plugin instances as an immutable snapshot,
 * rebuilt from the config on start and on every reload, swapped atomically
 * and drained before old instances are stopped. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock/clock.h"
#include "http/http.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "plugin/plugin.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t drained = PTHREAD_COND_INITIALIZER;
static im_snapshot *current;
static unsigned long generation;

const char *im_instance_state_name(im_instance_state st)
{
	static const char *const names[] = {"loading", "running",
					    "unconfigured", "failed",
					    "stopped"};
	return (unsigned)st < 5 ? names[st] : "unknown";
}

static void set_state(im_instance *in, im_instance_state st,
		      const char *reason)
{
	char *r = reason ? strdup(reason) : NULL;
	pthread_mutex_lock(&lock);
	in->st = st;
	free(in->reason);
	in->reason = r;
	pthread_mutex_unlock(&lock);
}

void im_instance_set_state(im_instance *in, im_instance_state st,
			   const char *reason)
{
	set_state(in, st, reason);
}

im_instance_state im_instance_get_state(im_instance *in)
{
	pthread_mutex_lock(&lock);
	im_instance_state st = in->st;
	pthread_mutex_unlock(&lock);
	return st;
}

static void instance_free(im_instance *in)
{
	if (!in)
		return;
	for (size_t i = 0; i < in->n_routes; i++) {
		free(in->routes[i].method);
		free(in->routes[i].path);
	}
	free(in->routes);
	json_decref(in->raw_config);
	json_decref(in->config);
	free(in->id);
	free(in->module_name);
	free(in->where);
	free(in->reason);
	im_module_unref(in->mod);
	free(in);
}

/* The gauge of a stopped instance: its successor under the same id (a
 * reload recreated it and started it first) owns the series; without
 * one the instance is gone and so is its series. */
static void forget_connection(const im_instance *in)
{
	if (!in->platform[0])
		return;
	pthread_mutex_lock(&lock);
	const im_instance *now = im_snapshot_find(current, in->id);
	bool succeeded = now && now != in;
	pthread_mutex_unlock(&lock);
	if (succeeded)
		return;
	im_metric *m = im_connection_gauge();
	const char *v[] = {in->platform, in->id, NULL};
	if (m)
		im_metric_remove(m, v);
}

static void instance_stop(im_instance *in)
{
	bool was_live = in->started || in->state;
	__atomic_store_n(&in->stopping, true, __ATOMIC_RELEASE);
	if (in->started && in->mod) {
		for (size_t i = 0; i < in->mod->n_connectors; i++)
			if (in->mod->connectors[i]->stop)
				in->mod->connectors[i]->stop(in->state);
		in->started = false;
	}
	if (in->state && in->mod && in->mod->desc.destroy)
		in->mod->desc.destroy(in->state);
	in->state = NULL;
	forget_connection(in);
	if (was_live)
		LOG_INFO("registry", "instance %s (%s) stopped", in->id,
			 in->module_name);
}

static void instance_unref(im_instance *in)
{
	if (!in || --in->refs > 0)
		return;
	instance_stop(in);
	instance_free(in);
}

static void snapshot_free(im_snapshot *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		instance_unref(s->insts[i]);
	free(s->insts);
	free(s);
}

im_snapshot *im_registry_acquire(void)
{
	pthread_mutex_lock(&lock);
	im_snapshot *s = current;
	if (s)
		s->inflight++;
	pthread_mutex_unlock(&lock);
	return s;
}

void im_registry_release(im_snapshot *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&lock);
	if (--s->inflight == 0 && s->retired)
		pthread_cond_broadcast(&drained);
	pthread_mutex_unlock(&lock);
}

im_instance *im_snapshot_find(const im_snapshot *s, const char *id)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (strcmp(s->insts[i]->id, id) == 0)
			return s->insts[i];
	return NULL;
}

static im_instance *find_reusable(const char *id, const im_module *mod,
				  const json_t *raw)
{
	/* Only the control thread replaces `current`, so reading it here
	 * without the lock is safe. */
	im_instance *old = im_snapshot_find(current, id);
	if (old && old->mod == mod && json_equal(old->raw_config, raw) &&
	    old->st != IM_STATE_FAILED)
		return old;
	return NULL;
}

static int create_instance(im_instance *in)
{
	const im_plugin_desc *d = &in->mod->desc;
	in->creating = true;
	int rc = d->create(im_host_table(in->mod), in, in->config, &in->state);
	in->creating = false;
	if (rc == IM_EUNCONFIGURED) {
		if (in->st != IM_STATE_UNCONFIGURED)
			set_state(in, IM_STATE_UNCONFIGURED,
				  "credentials are not set");
		LOG_WARN("registry", "instance %s (%s) is unconfigured: %s",
			 in->id, in->module_name, in->reason);
		return 0;
	}
	if (rc != 0) {
		char why[512];
		snprintf(why, sizeof(why), "%s: init failed (%d)%s%s",
			 in->mod->path, rc, in->reason ? ": " : "",
			 in->reason ? in->reason : "");
		set_state(in, IM_STATE_FAILED, why);
		if (in->state && d->destroy)
			d->destroy(in->state);
		in->state = NULL;
		return rc;
	}
	for (size_t i = 0; i < in->mod->n_connectors; i++) {
		const im_connector *c = in->mod->connectors[i];
		if (c->start && (rc = c->start(in->state)) != 0) {
			char why[512];
			snprintf(why, sizeof(why), "%s: start failed (%d)",
				 in->mod->path, rc);
			in->started = true; /* stop the ones started */
			instance_stop(in);
			set_state(in, IM_STATE_FAILED, why);
			return rc;
		}
	}
	in->started = true;
	set_state(in, IM_STATE_RUNNING, NULL);
	return 0;
}

/* Makes one instance from its config entry. Returns the instance (maybe
 * failed), or NULL with err set when the build must fail. */
static bool has_kind(const im_module *m, uint32_t kind)
{
	switch (kind) {
	case IM_COMPONENT_CONNECTOR:
		return m->n_connectors > 0;
	case IM_COMPONENT_FORMATTER:
		return m->n_formatters > 0;
	case IM_COMPONENT_COMMAND:
		return m->n_commands > 0;
	default:
		return true;
	}
}

/* IM_PLUGIN_TRIAL=0 turns trial loads off (a debugger that follows
 * forks, or a system where fork is not allowed). */
static bool trial_enabled(void)
{
	const char *v = getenv("IM_PLUGIN_TRIAL");
	return !(v && !strcmp(v, "0"));
}

/* Sentinel for an instance left out by a kind filter. */
static im_instance skipped_instance;

static im_instance *build_one(const im_config *cfg, const im_plugin_dirs *dirs,
			      const json_t *entry, uint32_t only_kind,
			      const json_t *crashed, char *err, size_t errlen)
{
	const char *id = json_string_value(json_object_get(entry, "id"));
	const char *module =
	    json_string_value(json_object_get(entry, "module"));
	const json_t *raw = json_object_get(entry, "config");
	char path[256];
	snprintf(path, sizeof(path), "plugins.instances[%s]", id);
	im_instance *in = calloc(1, sizeof(*in));
	if (!in)
		return NULL;
	in->refs = 1;
	in->id = strdup(id);
	in->module_name = strdup(module);
	in->required = json_is_true(json_object_get(entry, "required"));
	in->raw_config = raw ? json_deep_copy(raw) : json_object();
	const char *where = im_config_where(cfg, path);
	in->where = strdup(where ? where : "?");
	const char *crash = json_string_value(json_object_get(crashed, id));
	if (crash) { /* never loaded here: it crashed the trial */
		char why[512];
		snprintf(why, sizeof(why), "module %s %s", module, crash);
		set_state(in, IM_STATE_FAILED, why);
		goto check_required;
	}
	char lerr[1024];
	in->mod = im_module_load(dirs, module, lerr, sizeof(lerr));
	if (!in->mod) {
		LOG_ERROR("loader", "instance %s refused: %s", id, lerr);
		set_state(in, IM_STATE_FAILED, lerr);
		goto check_required;
	}
	if (only_kind == IM_COMPONENT_FORMATTER &&
	    !has_kind(in->mod, only_kind) && in->mod->n_connectors) {
		/* Templates read the connectors' platform rules (module
		 * data): keep the module, create and start nothing. */
		set_state(in, IM_STATE_STOPPED, "not started: platform rules "
						"only");
		return in;
	}
	if (only_kind && !has_kind(in->mod, only_kind)) {
		instance_free(in);
		return &skipped_instance;
	}
	im_instance *old = find_reusable(id, in->mod, in->raw_config);
	if (old) {
		instance_free(in);
		old->refs++;
		return old;
	}
	char cpath[300];
	snprintf(cpath, sizeof(cpath), "%s.config", path);
	if (im_config_apply_keys(cfg, cpath, raw, in->mod->desc.config_keys,
				 &in->config, err, errlen) != 0) {
		instance_free(in);
		return NULL;
	}
	if (create_instance(in) != 0)
		LOG_ERROR("loader", "instance %s refused: %s", id, in->reason);
check_required:
	if (in->st == IM_STATE_FAILED && in->required) {
		snprintf(err, errlen,
			 "%s: %s: required instance failed: %s", in->where,
			 path, in->reason);
		instance_unref(in);
		return NULL;
	}
	return in;
}

im_snapshot *im_registry_build(const im_config *cfg, char *err,
			       size_t errlen)
{
	return im_registry_build_kind(cfg, 0, err, errlen);
}

/* The entries that would load a module or create an instance: not an
 * unchanged instance of the running snapshot, reused as it is. */
static json_t *entries_to_try(const im_plugin_dirs *dirs, const json_t *list)
{
	json_t *todo = json_array();
	size_t i;
	const json_t *e;
	json_array_foreach(list, i, e)
	{
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *mod =
		    json_string_value(json_object_get(e, "module"));
		const json_t *raw = json_object_get(e, "config");
		json_t *empty = raw ? NULL : json_object();
		im_instance *old = id ? im_snapshot_find(current, id) : NULL;
		bool same = old && old->mod && mod &&
			    !strcmp(old->module_name, mod) &&
			    json_equal(old->raw_config, raw ? raw : empty) &&
			    old->st != IM_STATE_FAILED &&
			    im_module_file_same(dirs, mod, old->mod);
		json_decref(empty);
		if (!same)
			json_array_append(todo, (json_t *)e);
	}
	return todo;
}

im_snapshot *im_registry_build_kind(const im_config *cfg, uint32_t only_kind,
				    char *err, size_t errlen)
{
	im_plugin_dirs dirs;
	if (im_plugin_dirs_from(cfg, &dirs) != 0) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	const json_t *list = im_config_get(cfg, "plugins.instances");
	size_t n = json_array_size(list);
	im_snapshot *s = calloc(1, sizeof(*s));
	if (!s || !(s->insts = calloc(n ? n : 1, sizeof(*s->insts)))) {
		free(s);
		im_plugin_dirs_free(&dirs);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* New modules and instances are tried in a child process first:
	 * one that crashes is refused instead of taking the server down. */
	json_t *todo = trial_enabled() ? entries_to_try(&dirs, list) : NULL;
	json_t *crashed = todo ? im_plugin_trial(cfg, &dirs, todo) : NULL;
	json_decref(todo);
	for (size_t i = 0; i < n; i++) {
		im_instance *in = build_one(cfg, &dirs,
					    json_array_get(list, i), only_kind,
					    crashed, err, errlen);
		if (!in) {
			json_decref(crashed);
			snapshot_free(s);
			im_plugin_dirs_free(&dirs);
			return NULL;
		}
		if (in != &skipped_instance)
			s->insts[s->n++] = in;
	}
	json_decref(crashed);
	im_plugin_dirs_free(&dirs);
	s->generation = ++generation;
	return s;
}

int im_registry_check(const im_config *cfg, json_t *warnings, char *err,
		      size_t errlen)
{
	im_plugin_dirs dirs;
	if (im_plugin_dirs_from(cfg, &dirs) != 0)
		return IM_ENOMEM;
	const json_t *list = im_config_get(cfg, "plugins.instances");
	size_t i;
	const json_t *entry;
	int rc = 0;
	/* Everything a start would load, tried in a child: a module that
	 * crashes on load or in create() is an error here too. */
	json_t *crashed = trial_enabled() ? im_plugin_trial(cfg, &dirs, list)
					  : NULL;
	const char *cid;
	json_t *why;
	json_object_foreach(crashed, cid, why)
	{
		char path[300];
		snprintf(path, sizeof(path), "plugins.instances[%s]", cid);
		const char *w = im_config_where(cfg, path);
		snprintf(err, errlen, "%s: %s: %s", w ? w : "?", path,
			 json_string_value(why));
		rc = IM_EINVAL;
		break;
	}
	json_decref(crashed);
	if (rc != 0) {
		im_plugin_dirs_free(&dirs);
		return rc;
	}
	json_array_foreach(list, i, entry)
	{
		const char *id = json_string_value(json_object_get(entry, "id"));
		const char *module =
		    json_string_value(json_object_get(entry, "module"));
		char lerr[1024], path[300];
		im_module *m = im_module_load(&dirs, module, lerr, sizeof(lerr));
		if (!m) {
			json_array_append_new(warnings, json_sprintf(
							    "instance %s: %s",
							    id, lerr));
			continue;
		}
		json_t *out = NULL;
		snprintf(path, sizeof(path), "plugins.instances[%s].config",
			 id);
		rc = im_config_apply_keys(cfg, path,
					  json_object_get(entry, "config"),
					  m->desc.config_keys, &out, err,
					  errlen);
		json_decref(out);
		im_module_unref(m);
		if (rc != 0)
			break;
	}
	im_plugin_dirs_free(&dirs);
	return rc;
}

static void update_gauges(const im_snapshot *s)
{
	static const char *const labels[] = {"state", NULL};
	im_metric *g = im_metrics_family(
	    "im_plugin_instances", "Plugin instances by state",
	    IM_METRIC_GAUGE, labels, NULL, 0);
	if (!g)
		return;
	for (int st = IM_STATE_LOADING; st <= IM_STATE_STOPPED; st++) {
		double n = 0;
		for (size_t i = 0; s && i < s->n; i++)
			n += s->insts[i]->st == (im_instance_state)st;
		const char *v[] = {im_instance_state_name(st), NULL};
		im_metric_set(g, v, n);
	}
}

void im_registry_swap(im_snapshot *s)
{
	im_registry_swap_with(s, NULL, NULL);
}

void im_registry_swap_with(im_snapshot *s, void (*on_drained)(void *ud),
			   void *ud)
{
	pthread_mutex_lock(&lock);
	im_snapshot *old = current;
	current = s;
	if (old) {
		old->retired = true;
		while (old->inflight > 0)
			pthread_cond_wait(&drained, &lock);
	}
	pthread_mutex_unlock(&lock);
	if (on_drained)
		on_drained(ud);
	/* Instances carried into `s` hold a second reference and live on. */
	snapshot_free(old);
	update_gauges(s);
}

void im_registry_shutdown(void)
{
	im_registry_swap(NULL);
}

json_t *im_registry_describe(void)
{
	json_t *out = json_array();
	im_snapshot *s = im_registry_acquire();
	for (size_t i = 0; s && i < s->n; i++) {
		im_instance *in = s->insts[i];
		pthread_mutex_lock(&lock);
		json_t *o = json_pack(
		    "{s:s,s:s,s:s,s:b,s:s?,s:s}", "id", in->id, "module",
		    in->module_name, "state", im_instance_state_name(in->st),
		    "required", in->required, "reason", in->reason, "where",
		    in->where);
		pthread_mutex_unlock(&lock);
		if (in->mod)
			json_object_set_new(o, "plugin",
					    im_module_describe(in->mod));
		json_t *routes = json_array();
		for (size_t r = 0; r < in->n_routes; r++)
			json_array_append_new(
			    routes, json_sprintf("%s /hooks/%s/%s",
						 in->routes[r].method, in->id,
						 in->routes[r].path));
		json_object_set_new(o, "routes", routes);
		json_array_append_new(out, o);
	}
	im_registry_release(s);
	return out;
}

static const im_route *find_route(const im_instance *in, const char *method,
				  const char *path, bool *other_method)
{
	for (size_t i = 0; i < in->n_routes; i++) {
		const im_route *r = &in->routes[i];
		bool match = strcmp(r->path, "*") == 0 ||
			     strcmp(r->path, path) == 0;
		if (!match)
			continue;
		if (strcmp(r->method, "*") == 0 || strcmp(r->method, method) == 0)
			return r;
		*other_method = true;
	}
	return NULL;
}

/* A route handler slower than this once is run offloaded from then on. */
#define SLOW_ROUTE_MS 500
/* An offloaded route gets this long before its caller gets a 504. */
#define ROUTE_DEADLINE_S 30

typedef struct route_job {
	im_snapshot *s;
	im_instance *in;
	im_route_fn fn;
	im_http_request *req;
} route_job;

static void route_job_free(void *p)
{
	route_job *j = p;
	im_req_copy_free(j->req);
	im_registry_release(j->s);
	free(j);
}

static void route_work(void *ud, im_http_response *out)
{
	route_job *j = ud;
	im_plugin_call_enter(j->in->module_name, j->in->id, "route",
			     j->req->url);
	int rc = j->fn(j->in->state, j->req, out);
	im_plugin_call_leave();
	if (out->deferred) { /* it answers later: wait here, not on HTTP */
		im_http_deferred *d = out->deferred;
		out->deferred = NULL;
		im_http_response_clear(out);
		if (im_deferred_wait(d, (ROUTE_DEADLINE_S - 1) * 1000L, out) != 0)
			im_resp_error(out, 504, "timeout",
				      "the plugin did not answer in time");
	} else if (rc < 0 || !out->status) {
		im_resp_error(out, 500, "internal",
			      "the plugin's handler failed (%d)", rc);
	}
}

static void count_slow(const im_instance *in)
{
	im_metrics_count("im_plugin_slow_routes_total",
			 "Route handlers that held an HTTP worker too long (the "
			 "instance's routes then run off the HTTP workers)",
			 "instance", in->id);
}

/* Runs a route handler: inline while it is fast, offloaded once it was
 * not. */
static int run_route(im_snapshot *s, im_instance *in, const im_route *r,
		     im_http_request *req, im_http_response *resp)
{
	if (__atomic_load_n(&in->slow_routes, __ATOMIC_RELAXED)) {
		route_job *j = calloc(1, sizeof(*j));
		if (!j || !(j->req = im_req_copy(req))) {
			free(j);
			return IM_ENOMEM;
		}
		pthread_mutex_lock(&lock);
		s->inflight++; /* the job's own hold on this snapshot */
		pthread_mutex_unlock(&lock);
		j->s = s;
		j->in = in;
		j->fn = r->fn;
		return im_resp_offload(resp, "the plugin's route",
				       ROUTE_DEADLINE_S, route_work, j,
				       route_job_free);
	}
	long long t0 = im_mono_ms();
	im_plugin_call_enter(in->module_name, in->id, "route", req->url);
	int rc = r->fn(in->state, req, resp);
	im_plugin_call_leave();
	long long ms = im_mono_ms() - t0;
	if (ms >= SLOW_ROUTE_MS &&
	    !__atomic_exchange_n(&in->slow_routes, true, __ATOMIC_RELAXED)) {
		LOG_WARN("registry", "plugin %s (instance %s) held an HTTP "
				     "worker %lld ms in %s %s; its routes now "
				     "run off the HTTP workers",
			 in->module_name, in->id, ms, req->method, req->url);
		count_slow(in);
	}
	return rc;
}

int im_registry_hook_handler(void *ud, const im_http_request *creq,
			     im_http_response *resp)
{
	im_http_request *req = (im_http_request *)creq;
	const char *rest = req->rest; /* "<id>/<path>" */
	const char *slash = strchr(rest, '/');
	size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
	char id[128];
	if (idlen == 0 || idlen >= sizeof(id))
		return im_resp_error(resp, 404, "not_found",
				     "no plugin instance in the path");
	memcpy(id, rest, idlen);
	id[idlen] = '\0';
	im_snapshot *s = im_registry_acquire();
	im_instance *in = im_snapshot_find(s, id);
	int rc;
	if (!in) {
		rc = im_resp_error(resp, 404, "not_found",
				   "no plugin instance named '%s'", id);
	} else if (in->st != IM_STATE_RUNNING) {
		pthread_mutex_lock(&lock);
		char why[512];
		snprintf(why, sizeof(why), "%s", in->reason ? in->reason : "");
		im_instance_state st = in->st;
		pthread_mutex_unlock(&lock);
		rc = im_resp_error(resp, 503, im_instance_state_name(st),
				   "instance '%s' is %s: %s", id,
				   im_instance_state_name(st), why);
	} else {
		bool other = false;
		req->rest = slash ? slash + 1 : "";
		const im_route *r = find_route(in, req->method, req->rest,
					       &other);
		if (r)
			rc = run_route(s, in, r, req, resp);
		else if (other)
			rc = im_resp_error(resp, 405, "method_not_allowed",
					   "method not allowed on this route");
		else
			rc = im_resp_error(resp, 404, "not_found",
					   "instance '%s' has no route '%s'",
					   id, req->rest);
	}
	im_registry_release(s);
	return rc;
}

int im_registry_invoke(const char *verb, const im_invocation *inv,
		       im_reply *reply)
{
	im_snapshot *s = im_registry_acquire();
	int rc = IM_ENOTFOUND;
	for (size_t i = 0; s && i < s->n && rc == IM_ENOTFOUND; i++) {
		im_instance *in = s->insts[i];
		if (in->st != IM_STATE_RUNNING)
			continue;
		for (size_t c = 0; c < in->mod->n_commands; c++) {
			const im_command *cmd = in->mod->commands[c];
			for (const im_command_verb *v = cmd->verbs;
			     v && v->name; v++)
				if (strcmp(v->name, verb) == 0) {
					im_plugin_call_enter(in->module_name,
							     in->id, "command",
							     verb);
					rc = cmd->invoke(in->state, verb, inv,
							 reply);
					im_plugin_call_leave();
					goto done;
				}
		}
	}
done:
	im_registry_release(s);
	return rc;
}

const im_formatter *im_snapshot_formatter(const im_snapshot *s,
					  const char *ext, im_instance **in)
{
	for (size_t i = 0; s && ext && i < s->n; i++) {
		im_instance *cand = s->insts[i];
		if (cand->st != IM_STATE_RUNNING)
			continue;
		for (size_t f = 0; f < cand->mod->n_formatters; f++) {
			const im_formatter *fm = cand->mod->formatters[f];
			for (const char *const *e = fm->extensions; e && *e; e++)
				if (strcmp(*e, ext) == 0) {
					if (in)
						*in = cand;
					return fm;
				}
		}
	}
	return NULL;
}

/* The entry of `verb` in the component's table (a button names its verb). */
static const im_command_verb *verb_entry(const im_command *cm,
					 const char *verb)
{
	for (const im_command_verb *v = cm->verbs; v && v->name; v++)
		if (strcasecmp(v->name, verb) == 0)
			return v;
	return NULL;
}

int im_snapshot_command(const im_snapshot *s, const char *verb,
			const char *action_id, im_instance **in,
			const im_command **cmd, const im_command_verb **entry,
			const char **verb_out)
{
	for (size_t i = 0; s && i < s->n; i++) {
		im_instance *cand = s->insts[i];
		if (cand->st != IM_STATE_RUNNING)
			continue;
		for (size_t c = 0; c < cand->mod->n_commands; c++) {
			const im_command *cm = cand->mod->commands[c];
			const char *found = NULL;
			const im_command_verb *v = NULL;
			if (action_id) {
				for (const im_command_action *a = cm->actions;
				     a && a->action_id && !found; a++)
					if (strcmp(a->action_id, action_id) == 0)
						found = a->verb;
				if (found)
					v = verb_entry(cm, found);
			} else if ((v = verb_entry(cm, verb)) != NULL) {
				found = v->name;
			}
			if (found) {
				*in = cand;
				*cmd = cm;
				*entry = v;
				*verb_out = found;
				return 0;
			}
		}
	}
	return IM_ENOTFOUND;
}
