/* `im plugins list|info|reload` and `im config validate`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf/buf.h"
#include "cli/cli.h"
#include "notify/notify.h"
#include "plugin/plugin.h"

static void components_text(const json_t *plugin, char *out, size_t len)
{
	size_t i, off = 0;
	const json_t *c;
	out[0] = '\0';
	json_array_foreach(json_object_get(plugin, "components"), i, c)
	{
		int n = snprintf(
		    out + off, len - off, "%s%s:%s", i ? "," : "",
		    json_string_value(json_object_get(c, "kind")),
		    json_string_value(json_object_get(c, "name")));
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	if (!*out)
		snprintf(out, len, "-");
}

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

static void print_instances(const json_t *list)
{
	printf("%-16s %-18s %-8s %-4s %-13s %-24s %s\n", "INSTANCE", "MODULE",
	       "VERSION", "ABI", "STATE", "COMPONENTS", "FILE");
	size_t i;
	const json_t *in;
	json_array_foreach(list, i, in)
	{
		const json_t *p = json_object_get(in, "plugin");
		char comps[256];
		components_text(p, comps, sizeof(comps));
		printf("%-16s %-18s %-8s %-4s %-13s %-24s %s\n", str(in, "id"),
		       str(in, "module"), str(p, "version"), str(p, "abi"),
		       str(in, "state"), comps, str(p, "file"));
	}
	json_array_foreach(list, i, in)
	{
		const char *why = json_string_value(json_object_get(in, "reason"));
		if (why)
			printf("  %s: %s\n", str(in, "id"), why);
	}
}

/* Without a server, describe what the config would load. */
static json_t *offline_instances(const cli_ctx *ctx)
{
	im_config *cfg = cli_load_config(ctx, false);
	if (!cfg)
		return NULL;
	im_plugin_dirs dirs;
	json_t *out = json_array();
	if (im_plugin_dirs_from(cfg, &dirs) != 0) {
		im_config_free(cfg);
		return out;
	}
	size_t i;
	const json_t *e;
	json_array_foreach(im_config_get(cfg, "plugins.instances"), i, e)
	{
		const char *module = str(e, "module");
		char err[1024];
		im_module *m = im_module_load(&dirs, module, err, sizeof(err));
		json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "id", str(e, "id"),
				      "module", module, "state",
				      m ? "not running" : "failed", "reason",
				      m ? "the server is not running" : err);
		if (m) {
			json_object_set_new(o, "plugin", im_module_describe(m));
			im_module_unref(m);
		}
		json_array_append_new(out, o);
	}
	im_plugin_dirs_free(&dirs);
	im_config_free(cfg);
	return out;
}

int cli_plugins_list(cli_ctx *ctx)
{
	long status = 0;
	json_t *body = NULL;
	char err[1024];
	json_t *list;
	bool live = cli_admin_call(ctx, "GET", "/api/v1/admin/plugins", NULL,
				   &status, &body, err, sizeof(err)) == 0;
	if (live && status != 200) {
		cli_print_error("plugins list", body);
		json_decref(body);
		return CLI_FAIL;
	}
	if (live) {
		list = json_incref(json_object_get(body, "instances"));
	} else {
		fprintf(stderr, "im: %s\nim: showing what %s would load\n", err,
			ctx->config_dir);
		if (!(list = offline_instances(ctx)))
			return CLI_FAIL;
	}
	if (ctx->json)
		cli_print_json(list);
	else
		print_instances(list);
	json_decref(list);
	json_decref(body);
	return CLI_OK;
}

static const char *type_name(im_config_type t)
{
	static const char *const names[] = {"?",      "string", "int",
					    "bool",   "number", "duration",
					    "list",   "map"};
	return (unsigned)t < 8 ? names[t] : "?";
}

static json_t *keys_json(const im_module *m)
{
	json_t *keys = json_array();
	for (const im_config_key *k = m->desc.config_keys; k && k->name; k++)
		json_array_append_new(
		    keys,
		    json_pack("{s:s,s:s,s:s?,s:b,s:b,s:s?}", "key", k->name,
			      "type", type_name(k->type), "default",
			      k->default_value, "required",
			      (k->flags & IM_CFG_REQUIRED) != 0, "secret",
			      (k->flags & IM_CFG_SECRET) != 0, "description",
			      k->description));
	return keys;
}

int cli_plugins_info(cli_ctx *ctx)
{
	im_config *cfg = cli_load_config(ctx, true);
	im_plugin_dirs dirs;
	if (im_plugin_dirs_from(cfg, &dirs) != 0) {
		im_config_free(cfg);
		return CLI_FAIL;
	}
	char err[1024];
	im_module *m = im_module_load(&dirs, ctx->argv[0], err, sizeof(err));
	im_plugin_dirs_free(&dirs);
	im_config_free(cfg);
	if (!m) {
		fprintf(stderr, "im: %s\n", err);
		return CLI_FAIL;
	}
	json_t *d = im_module_describe(m);
	json_t *keys = keys_json(m);
	json_object_set_new(d, "config_keys", keys);
	if (ctx->json) {
		cli_print_json(d);
	} else {
		printf("%s %s (ABI %s, %s)\n%s\nvendor: %s\nfile: %s\n",
		       str(d, "module"), str(d, "version"), str(d, "abi"),
		       str(d, "license"), str(d, "description"), str(d, "vendor"),
		       str(d, "file"));
		char comps[256];
		components_text(d, comps, sizeof(comps));
		printf("components: %s\n\nconfig keys:\n", comps);
		printf("  %-22s %-9s %-20s %-9s %s\n", "KEY", "TYPE", "DEFAULT",
		       "FLAGS", "DESCRIPTION");
		size_t i;
		const json_t *k;
		json_array_foreach(keys, i, k)
		{
			char flags[32];
			snprintf(flags, sizeof(flags), "%s%s",
				 json_is_true(json_object_get(k, "required"))
				     ? "required "
				     : "",
				 json_is_true(json_object_get(k, "secret"))
				     ? "secret"
				     : "");
			printf("  %-22s %-9s %-20s %-9s %s\n", str(k, "key"),
			       str(k, "type"), str(k, "default"),
			       *flags ? flags : "-", str(k, "description"));
		}
		if (!json_array_size(keys))
			printf("  (none)\n");
	}
	json_decref(d);
	im_module_unref(m);
	return CLI_OK;
}

int cli_plugins_reload(cli_ctx *ctx)
{
	long status = 0;
	json_t *body = NULL;
	char err[1024];
	if (cli_admin_call(ctx, "POST", "/api/v1/admin/plugins/reload", NULL,
			   &status, &body, err, sizeof(err)) != 0) {
		fprintf(stderr, "im: %s\n", err);
		return CLI_FAIL;
	}
	int rc = status == 200 ? CLI_OK : CLI_FAIL;
	if (ctx->json) {
		cli_print_json(body);
	} else if (rc == CLI_OK) {
		const json_t *list = json_object_get(body, "instances");
		printf("reloaded %zu instances in %.2f ms\n",
		       json_array_size(list),
		       json_real_value(json_object_get(body, "elapsed_ms")));
		print_instances(list);
	} else {
		const char *e = json_string_value(json_object_get(body, "error"));
		if (e)
			fprintf(stderr, "im: reload failed, nothing changed: %s\n",
				e);
		else
			cli_print_error("reload failed", body);
	}
	json_decref(body);
	return rc;
}

int cli_config_validate(cli_ctx *ctx)
{
	im_config *cfg = cli_load_config(ctx, false);
	if (!cfg)
		return CLI_FAIL;
	json_t *warnings = json_array();
	json_t *problems = json_array();
	char err[2048];
	int rc = im_registry_check(cfg, warnings, err, sizeof(err));
	if (rc == 0 && im_notify_check_config(cfg, problems) != 0) {
		rc = IM_ECONFIG;
		snprintf(err, sizeof(err), "%s",
			 json_string_value(json_array_get(problems, 0)));
	}
	size_t n = json_array_size(im_config_get(cfg, "plugins.instances"));
	if (ctx->json) {
		json_t *o = json_pack("{s:b,s:s,s:I,s:O}", "ok", rc == 0,
				      "config", ctx->config_dir, "instances",
				      (json_int_t)n, "warnings", warnings);
		if (rc)
			json_object_set_new(o, "error", json_string(err));
		cli_print_json(o);
		json_decref(o);
	} else {
		size_t i;
		const json_t *w;
		json_array_foreach(warnings, i, w)
		    fprintf(stderr, "warning: %s\n", json_string_value(w));
		json_array_foreach(problems, i, w)
		    fprintf(stderr, "im: %s\n", json_string_value(w));
		if (rc && !json_array_size(problems))
			fprintf(stderr, "im: %s\n", err);
		else if (!rc)
			printf("%s: OK (%zu plugin instances)\n",
			       ctx->config_dir, n);
	}
	json_decref(warnings);
	json_decref(problems);
	im_config_free(cfg);
	return rc ? CLI_FAIL : CLI_OK;
}

/* --- im config reference ---------------------------------------------- */

static void module_reference(im_buf *b, const im_module *m)
{
	json_t *d = im_module_describe(m);
	char comps[256];
	components_text(d, comps, sizeof(comps));
	im_buf_printf(b, "### `%s` %s\n\n%s\n\nComponents: %s. Vendor: %s. "
			 "License: %s.\n\n",
		      m->name, m->desc.version,
		      m->desc.description ? m->desc.description : "", comps,
		      m->desc.vendor ? m->desc.vendor : "-", m->desc.license);
	json_decref(d);
	if (!m->desc.config_keys || !m->desc.config_keys->name) {
		im_buf_printf(b, "No settings: `- {id: %s, module: %s}`.\n\n",
			      m->name, m->name);
		return;
	}
	im_buf_printf(b, "Under `plugins.instances[].config` of an instance "
			 "with `module: %s`:\n\n"
			 "| key | type | default | description |\n"
			 "|---|---|---|---|\n",
		      m->name);
	for (const im_config_key *k = m->desc.config_keys; k->name; k++) {
		im_buf name = IM_BUF_INIT, def = IM_BUF_INIT, doc = IM_BUF_INIT;
		im_buf_printf(&name, "`%s`", k->name);
		if (k->flags & IM_CFG_REQUIRED)
			im_buf_puts(&def, "required");
		else if (k->default_value && *k->default_value)
			im_buf_printf(&def, "`%s`", k->default_value);
		im_buf_puts(&doc, k->description ? k->description : "");
		if (k->flags & IM_CFG_SECRET)
			im_buf_puts(&doc, " Secret: redacted from logs.");
		const char *cells[] = {im_buf_str(&name), type_name(k->type),
				       im_buf_str(&def), im_buf_str(&doc)};
		im_config_md_row(b, cells, 4);
		im_buf_free(&name);
		im_buf_free(&def);
		im_buf_free(&doc);
	}
	im_buf_puts(b, "\n");
}

int cli_config_reference(cli_ctx *ctx)
{
	im_config *cfg = cli_load_config(ctx, true);
	im_plugin_dirs dirs;
	if (im_plugin_dirs_from(cfg, &dirs) != 0) {
		im_config_free(cfg);
		return CLI_FAIL;
	}
	im_config_free(cfg);
	im_buf b = IM_BUF_INIT;
	im_buf_puts(
	    &b,
	    "# Configuration reference\n\n"
	    "<!-- Generated by `im config reference`; edit the key tables in "
	    "core/config/schema.c and the plugins, then run\n"
	    "     ./im config reference > docs/configuration.md -->\n\n"
	    "`im serve` reads every `*.yaml` / `*.yml` file of its config "
	    "folder (`--config DIR`, `IM_CONFIG`, `./conf.d` in a source "
	    "tree, `<sysconfdir>/im/conf.d` once installed) in name order and "
	    "merges them: mappings merge key by key, a later scalar wins, "
	    "`plugins.instances` entries with the same `id` merge. "
	    "`${VAR}` and `${VAR:-default}` are replaced from the "
	    "environment. `im config validate` checks everything below "
	    "without starting and names `file:line` and the key of each "
	    "error; `im plugins reload` (or SIGHUP) applies changes, except "
	    "those marked \"needs a restart\".\n\n"
	    "## Core\n\n");
	im_config_reference_core(&b);
	im_buf_puts(&b, "## Plugins\n\nThe modules found in the plugin "
			"folders, with their settings.\n\n");
	json_t *names = im_module_scan(&dirs);
	size_t i;
	const json_t *v;
	int rc = CLI_OK;
	json_array_foreach(names, i, v)
	{
		char err[1024];
		im_module *m = im_module_load(&dirs, json_string_value(v), err,
					      sizeof(err));
		if (!m) {
			fprintf(stderr, "im: %s\n", err);
			rc = CLI_FAIL;
			continue;
		}
		module_reference(&b, m);
		im_module_unref(m);
	}
	json_decref(names);
	im_plugin_dirs_free(&dirs);
	size_t len = 0;
	char *text = im_buf_take(&b, &len);
	if (!text)
		return CLI_FAIL;
	/* One newline at the end, as a Markdown file has. */
	while (len > 1 && text[len - 1] == '\n' && text[len - 2] == '\n')
		len--;
	fwrite(text, 1, len, stdout);
	free(text);
	return rc;
}
