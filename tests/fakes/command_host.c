/* A fake im_host for command components; see command_host.h. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bus/bus.h"
#include "config/config.h"
#include "command/command.h"
#include "incident/repo.h"

#include "command_host.h"

const im_plugin_desc *im_plugin_entry(void);

#define KV_MAX 64

static struct {
	pthread_mutex_t mu;
	char dir[64];
	im_store *st;
	json_t *calls;
	json_t *canned;
	int canned_rc;
	char *keys[KV_MAX], *vals[KV_MAX];
	const im_command *cmd;
	void *state;
	json_t *config; /* during create() */
	json_t *filled; /* what config_fill lent the plugin */
} F = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* --- the host functions ------------------------------------------------- */

static void f_log(im_instance *in, im_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void f_log(im_instance *in, im_log_level lvl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "[plugin:test:%d] ", (int)lvl);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int f_incident_op(im_instance *in, const char *op, const json_t *args,
			 json_t **out)
{
	pthread_mutex_lock(&F.mu);
	json_array_append_new(F.calls,
			      json_pack("{s:s,s:O}", "op", op, "args", args));
	json_t *canned = json_deep_copy(F.canned);
	int rc = F.canned_rc;
	pthread_mutex_unlock(&F.mu);
	if (canned) {
		*out = canned;
		return rc;
	}
	return im_incident_op(F.st, op, args, out);
}

static int kv_find(const char *key)
{
	for (int i = 0; i < KV_MAX; i++)
		if (F.keys[i] && strcmp(F.keys[i], key) == 0)
			return i;
	return -1;
}

static int f_kv_get(im_instance *in, const char *key, char **value)
{
	pthread_mutex_lock(&F.mu);
	int i = kv_find(key);
	*value = i >= 0 ? strdup(F.vals[i]) : NULL;
	pthread_mutex_unlock(&F.mu);
	return i >= 0 ? 0 : IM_ENOTFOUND;
}

static int f_kv_put(im_instance *in, const char *key, const char *value)
{
	pthread_mutex_lock(&F.mu);
	int i = kv_find(key);
	for (int j = 0; i < 0 && j < KV_MAX; j++)
		if (!F.keys[j]) {
			i = j;
			F.keys[i] = strdup(key);
		}
	if (i >= 0) {
		free(F.vals[i]);
		F.vals[i] = strdup(value);
	}
	pthread_mutex_unlock(&F.mu);
	return i >= 0 ? 0 : IM_ENOMEM;
}

static int f_kv_del(im_instance *in, const char *key)
{
	pthread_mutex_lock(&F.mu);
	int i = kv_find(key);
	if (i >= 0) {
		free(F.keys[i]);
		free(F.vals[i]);
		F.keys[i] = F.vals[i] = NULL;
	}
	pthread_mutex_unlock(&F.mu);
	return i >= 0 ? 0 : IM_ENOTFOUND;
}

/* The real fill over the plugin's own table, validated like the host
 * does (defaults filled in). */
static int f_config_fill(im_instance *in, void *dst, size_t size)
{
	const im_plugin_desc *d = im_plugin_entry();
	json_t *cfg = NULL;
	char err[256];
	if (im_config_apply_keys(NULL, "config", F.config, d->config_keys, &cfg,
				 err, sizeof err) != 0)
		cr_assert_fail("test config: %s", err);
	json_decref(F.filled);
	F.filled = cfg; /* borrowed by the plugin until the instance ends */
	return im_config_fill(d->config_keys, cfg, dst, size, err, sizeof err);
}

static const im_host host = {
    .config_fill = f_config_fill,
    .struct_size = sizeof(im_host),
    .abi_major = IM_ABI_MAJOR,
    .abi_minor = IM_ABI_MINOR,
    .log = f_log,
    .reply_text = im_reply_set_text,
    .reply_visibility = im_reply_set_visibility,
    .reply_field = im_reply_add_field,
    .reply_action = im_reply_add_action,
    .incident_op = f_incident_op,
    .kv_get = f_kv_get,
    .kv_put = f_kv_put,
    .kv_del = f_kv_del,
};

/* --- life cycle --------------------------------------------------------- */

void fake_cmd_start(const char *config_json)
{
	snprintf(F.dir, sizeof(F.dir), "/tmp/im-cmdhost-XXXXXX");
	cr_assert(mkdtemp(F.dir));
	char path[128], err[512];
	snprintf(path, sizeof(path), "%s/im.db", F.dir);
	F.st = im_store_open(path, err, sizeof(err));
	cr_assert(F.st, "%s", err);
	F.calls = json_array();
	im_bus_reset();
	im_repo_set_public_url("");
	const im_plugin_desc *d = im_plugin_entry();
	F.cmd = (const im_command *)d->components[0];
	cr_assert_eq(F.cmd->base.kind, IM_COMPONENT_COMMAND);
	json_t *config = json_loads(config_json, 0, NULL);
	cr_assert(config, "bad test config %s", config_json);
	/* The instance handle is opaque to plugins; ours is never read. */
	F.config = config;
	int rc = d->create(&host, (im_instance *)&F, config, &F.state);
	json_decref(config);
	F.config = NULL;
	cr_assert_eq(rc, 0);
}

void fake_cmd_stop(void)
{
	const im_plugin_desc *d = im_plugin_entry();
	if (d->destroy && F.state)
		d->destroy(F.state);
	F.state = NULL;
	json_decref(F.filled);
	F.filled = NULL;
	im_store_close(F.st);
	im_bus_reset();
	json_decref(F.calls);
	json_decref(F.canned);
	F.calls = F.canned = NULL;
	for (int i = 0; i < KV_MAX; i++) {
		free(F.keys[i]);
		free(F.vals[i]);
		F.keys[i] = F.vals[i] = NULL;
	}
	char rm[128];
	snprintf(rm, sizeof(rm), "rm -rf %s", F.dir);
	cr_expect_eq(system(rm), 0);
}

/* --- running commands --------------------------------------------------- */

static json_t *invoke(const char *channel, const char *action,
		      const char *verb, const char *text)
{
	im_invocation inv = {
	    .struct_size = sizeof(inv), .platform = "slack",
	    .instance = "slack", .team = "T1", .channel = channel,
	    .user_id = "U1", .user_name = "Ada", .command = "/incident",
	    .text = text, .action_id = action,
	    .action_value = action ? text : NULL};
	im_reply *r = im_reply_new();
	cr_assert(r);
	int rc = F.cmd->invoke(F.state, verb, &inv, r);
	json_t *j = im_reply_json(r, rc == 0 ? "ok" : "error");
	im_reply_free(r);
	json_object_set_new(j, "rc", json_integer(rc));
	return j;
}

json_t *fake_cmd_run(const char *channel, const char *verb, const char *text)
{
	return invoke(channel, NULL, verb, text);
}

json_t *fake_cmd_press(const char *channel, const char *action,
		       const char *value)
{
	const char *verb = NULL;
	for (const im_command_action *a = F.cmd->actions; a && a->action_id;
	     a++)
		if (strcmp(a->action_id, action) == 0)
			verb = a->verb;
	cr_assert(verb, "no verb serves button %s", action);
	return invoke(channel, action, verb, value);
}

void fake_cmd_canned(const json_t *answer, int rc)
{
	pthread_mutex_lock(&F.mu);
	json_decref(F.canned);
	F.canned = answer ? json_deep_copy(answer) : NULL;
	F.canned_rc = rc;
	pthread_mutex_unlock(&F.mu);
}

const json_t *fake_cmd_calls(void)
{
	return F.calls;
}

const json_t *fake_cmd_last_args(void)
{
	size_t n = json_array_size(F.calls);
	return n ? json_object_get(json_array_get(F.calls, n - 1), "args")
		 : NULL;
}

const char *fake_cmd_kv(const char *key)
{
	int i = kv_find(key);
	return i >= 0 ? F.vals[i] : NULL;
}

/* --- replies and the store ---------------------------------------------- */

const char *fake_reply_text(const json_t *r)
{
	return json_string_value(json_object_get(r, "text"));
}

const char *fake_reply_visibility(const json_t *r)
{
	return json_string_value(json_object_get(r, "visibility"));
}

json_int_t fake_reply_rc(const json_t *r)
{
	return json_integer_value(json_object_get(r, "rc"));
}

const char *fake_reply_field(const json_t *r, const char *title)
{
	size_t i;
	const json_t *f;
	json_array_foreach(json_object_get(r, "fields"), i, f)
	{
		const char *t = json_string_value(json_object_get(f, "title"));
		if (t && strcmp(t, title) == 0)
			return json_string_value(json_object_get(f, "value"));
	}
	return "(none)";
}

bool fake_reply_has_action(const json_t *r, const char *id,
			   const char *value)
{
	size_t i;
	const json_t *a;
	json_array_foreach(json_object_get(r, "actions"), i, a)
	{
		const char *aid = json_string_value(json_object_get(a, "id"));
		const char *v = json_string_value(json_object_get(a, "value"));
		if (aid && v && strcmp(aid, id) == 0 && strcmp(v, value) == 0)
			return true;
	}
	return false;
}

size_t fake_reply_n_actions(const json_t *r)
{
	return json_array_size(json_object_get(r, "actions"));
}

char *fake_stored(const char *id, const char *key)
{
	json_t *inc = NULL;
	im_err err;
	if (im_inc_get(F.st, id, &inc, &err) != 0)
		return NULL;
	const char *v = json_string_value(json_object_get(inc, key));
	char *s = v ? strdup(v) : NULL;
	json_decref(inc);
	return s;
}
