/* `im chatops templates list|validate|render`. They work without a running
 * server: load the config, start only the formatter plugins, load the
 * templates. `render --incident` fetches the incident from the server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "log/log.h"
#include "plugin/plugin.h"
#include "template/template.h"

typedef struct local {
	im_config *cfg;
	im_snapshot *snap;
	im_template_set *set;
} local;

static void close_local(local *l)
{
	im_template_set_unref(l->set);
	if (l->snap)
		im_registry_release(l->snap);
	im_registry_shutdown();
	im_config_free(l->cfg);
}

/* quiet: problems are printed as results (list, validate), so the log
 * keeps to real failures unless asked; render shows warnings, such as a
 * broken override it replaced with the default. */
static int open_local(const cli_ctx *ctx, local *l, im_log_level quiet)
{
	memset(l, 0, sizeof(*l));
	if (getenv("LOG_LEVEL"))
		im_log_init_env();
	else
		im_log_set_level(quiet);
	l->cfg = cli_load_config(ctx, false);
	if (!l->cfg)
		return CLI_FAIL;
	char err[2048] = "";
	im_snapshot *s = im_registry_build_kind(l->cfg, IM_COMPONENT_FORMATTER,
						err, sizeof(err));
	if (!s) {
		fprintf(stderr, "im: %s\n", err);
		im_config_free(l->cfg);
		return CLI_FAIL;
	}
	im_registry_swap(s);
	l->snap = im_registry_acquire();
	if (im_template_load(l->cfg, l->snap, &l->set, err, sizeof(err))) {
		fprintf(stderr, "im: %s\n", err);
		close_local(l);
		return CLI_FAIL;
	}
	return CLI_OK;
}

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

int cli_templates_list(cli_ctx *ctx)
{
	local l;
	if (open_local(ctx, &l, IM_LOG_ERROR) != CLI_OK)
		return CLI_FAIL;
	json_t *list = im_template_list(l.set);
	if (ctx->json) {
		cli_print_json(list);
	} else {
		printf("%-22s %-9s %-12s %-10s %-9s %s\n", "NAME", "PLATFORM",
		       "EVENT", "ENGINE", "SOURCE", "FILE");
		size_t i;
		json_t *t;
		json_array_foreach(list, i, t)
			printf("%-22s %-9s %-12s %-10s %-9s %s\n",
			       str(t, "name"), str(t, "platform"),
			       str(t, "event"), str(t, "engine"),
			       str(t, "source"), str(t, "file"));
		json_array_foreach(list, i, t)
			if (json_is_string(json_object_get(t, "error")))
				printf("  %s: %s\n", str(t, "name"),
				       str(t, "error"));
	}
	json_decref(list);
	close_local(&l);
	return CLI_OK;
}

int cli_templates_validate(cli_ctx *ctx)
{
	const char *platform = cli_opt_get(ctx, "platform");
	local l;
	if (open_local(ctx, &l, IM_LOG_ERROR) != CLI_OK)
		return CLI_FAIL;
	json_t *checked = NULL;
	json_t *problems = im_template_validate(l.set, platform, &checked);
	size_t n = json_array_size(checked), bad = json_array_size(problems);
	if (!n)
		json_array_append_new(
		    problems,
		    json_sprintf("no templates%s%s found; see im chatops "
				 "templates list",
				 platform ? " for platform " : "",
				 platform ? platform : ""));
	bad = json_array_size(problems);
	if (ctx->json) {
		json_t *out = json_pack("{s:b,s:O,s:O}", "ok", bad == 0,
					"templates", checked, "problems",
					problems);
		cli_print_json(out);
		json_decref(out);
	} else {
		size_t i;
		json_t *t;
		json_array_foreach(checked, i, t)
			if (json_is_true(json_object_get(t, "ok")))
				printf("OK %s (%s)\n", str(t, "name"),
				       str(t, "file"));
		json_array_foreach(problems, i, t)
			printf("%s\n", json_string_value(t));
		printf("%zu templates checked, %zu problem%s\n", n, bad,
		       bad == 1 ? "" : "s");
	}
	json_decref(checked);
	json_decref(problems);
	close_local(&l);
	return bad ? CLI_FAIL : CLI_OK;
}

/* --- render ---------------------------------------------------------------- */

static json_t *read_json_file(const char *path)
{
	json_error_t je;
	json_t *v = json_load_file(path, JSON_ALLOW_NUL, &je);
	if (!v)
		fprintf(stderr, "im: %s:%d:%d: %s\n", path, je.line, je.column,
			je.text);
	return v;
}

static json_t *fetch_incident(const cli_ctx *ctx, const char *id)
{
	char path[256], err[1024] = "";
	long status = 0;
	json_t *body = NULL;
	snprintf(path, sizeof(path), "/api/v1/incidents/%s", id);
	if (cli_api_call(ctx, "GET", path, NULL, NULL, &status, &body, err,
			 sizeof(err)) != 0) {
		fprintf(stderr, "im: %s\n", err);
		return NULL;
	}
	if (status != 200) {
		cli_print_error(id, body);
		json_decref(body);
		return NULL;
	}
	return body;
}

/* An incident alone becomes a CloudEvent of the template's event. */
static json_t *event_for(const json_t *incident, const char *event)
{
	char type[96];
	snprintf(type, sizeof(type), "im.incident.%s",
		 strcmp(event, "digest") ? event : "update");
	return json_pack("{s:s,s:s,s:s,s:s,s:O*,s:O*,s:{s:O,s:{},s:{s:s,s:s}}}",
			 "specversion", "1.0", "source", "im/incidents", "type",
			 type, "datacontenttype", "application/json", "subject",
			 json_object_get(incident, "id"), "time",
			 json_object_get(incident, "updated_at"), "data",
			 "incident", incident, "change", "actor", "id", "cli",
			 "via", "cli");
}

/* Turns what the user gave (a context, a CloudEvent or an incident) into
 * the template's context. */
static json_t *to_context(const json_t *data, const char *event,
			  const char *public_url)
{
	bool digest = !strcmp(event, "digest");
	if (json_object_get(data, "events") ||
	    (json_object_get(data, "incident") && !digest))
		return json_incref((json_t *)data);
	json_t *ev = json_object_get(data, "specversion")
			 ? json_incref((json_t *)data)
			 : event_for(data, event);
	json_t *ctx = NULL;
	if (ev && digest) {
		json_t *list = json_pack("[O]", ev);
		ctx = im_template_digest_context(list, NULL, public_url);
		json_decref(list);
	} else if (ev) {
		ctx = im_template_context(ev, public_url);
	}
	json_decref(ev);
	return ctx;
}

int cli_templates_render(cli_ctx *ctx)
{
	const char *name = ctx->argv[0], *slash = strchr(name, '/');
	const char *inc = cli_opt_get(ctx, "incident");
	const char *file = cli_opt_get(ctx, "data");
	if (!slash || slash == name || !slash[1] || (inc && file)) {
		fprintf(stderr, "usage: im chatops templates render "
				"PLATFORM/EVENT [--incident INC-n | --data "
				"FILE]\n");
		return CLI_USAGE;
	}
	char platform[64];
	snprintf(platform, sizeof(platform), "%.*s", (int)(slash - name),
		 name);
	const char *event = slash + 1;
	local l;
	if (open_local(ctx, &l, IM_LOG_WARN) != CLI_OK)
		return CLI_FAIL;
	const char *url = im_config_string(l.cfg, "server.public_url", "");
	json_t *data = inc ? fetch_incident(ctx, inc)
		       : file ? read_json_file(file)
			      : NULL;
	json_t *context = data ? to_context(data, event, url)
			  : inc || file ? NULL
					: im_template_sample(event, "normal", url);
	int rc = CLI_FAIL;
	json_t *payload = NULL;
	char err[2048] = "";
	if (context && im_template_render(l.set, platform, event, context,
					  &payload, err, sizeof(err)) == 0) {
		cli_print_json(payload);
		rc = CLI_OK;
	} else if (context) {
		fprintf(stderr, "im: %s\n", err);
	}
	json_decref(payload);
	json_decref(context);
	json_decref(data);
	close_local(&l);
	return rc;
}
