/* The SDK promise: a vendor builds a plugin outside the tree with only the
 * public headers, and the host loads it and runs an instance of it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <im/connector.h>

#include "plugin/plugin.h"

Test(sdk, example_builds_out_of_tree_and_loads)
{
	const char *src = getenv("IM_TEST_SRCDIR");
	cr_assert(src);
	char dir[] = "/tmp/im-sdk-XXXXXX", cmd[2048];
	cr_assert(mkdtemp(dir));
	chmod(dir, 0755);
	snprintf(cmd, sizeof(cmd),
		 "make -s -C %s/sdk/example O=%s IM_INCLUDE=%s/include "
		 ">%s/make.log 2>&1",
		 src, dir, src, dir);
	int rc = system(cmd);
	cr_assert_eq(rc, 0, "make failed: see %s/make.log", dir);

	char yaml[1024], err[1024] = "";
	snprintf(yaml, sizeof(yaml),
		 "plugins:\n  dirs: [\"%s\"]\n  instances:\n"
		 "    - {id: hi, module: hello}\n",
		 dir);
	im_config *cfg = im_config_load_string("sdk.yaml", yaml, err,
					       sizeof(err));
	cr_assert(cfg, "%s", err);
	im_snapshot *s = im_registry_build(cfg, err, sizeof(err));
	cr_assert(s, "%s", err);
	im_registry_swap(s);
	im_instance *in = im_snapshot_find(s, "hi");
	cr_assert(in);
	cr_expect_eq(in->st, IM_STATE_RUNNING, "%s", in->reason);
	cr_expect_str_eq(in->mod->desc.vendor, "Example Corp");
	cr_expect_eq(in->n_routes, 1);
	cr_expect_str_eq(json_string_value(json_object_get(in->config,
							   "greeting")),
			 "hello from a vendor");
	im_registry_shutdown();
	im_config_free(cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

/* --- the webhook example: a whole connector ------------------------------- */

/* Host stand-ins for im_payload_ops: cuts count characters and end in
 * "…"; problems are collected. */
static json_t *problems;

static size_t ops_length(const json_t *text)
{
	const char *s = json_string_value(text);
	size_t n = 0;
	for (; s && *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static int ops_cut(const im_payload_ops *ops, json_t *text, size_t max)
{
	if (ops_length(text) <= max)
		return 0;
	const char *s = json_string_value(text);
	size_t keep = 0, chars = 0;
	while (s[keep] && chars < max - 1) {
		keep++;
		while (((unsigned char)s[keep] & 0xC0) == 0x80)
			keep++;
		chars++;
	}
	char *t = malloc(keep + 4);
	memcpy(t, s, keep);
	strcpy(t + keep, "\xe2\x80\xa6");
	json_string_set(text, t);
	free(t);
	return 1;
}

static void ops_problem(const im_payload_ops *ops, const char *near,
			const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(problems, json_string(buf));
}

static const im_payload_ops ops = {
    .struct_size = sizeof(im_payload_ops),
    .length = ops_length,
    .cut = ops_cut,
    .problem = ops_problem,
};

static json_t *fit(const im_connector *c, const char *payload)
{
	json_decref(problems);
	problems = json_array();
	json_t *p = json_loads(payload, JSON_DECODE_ANY, NULL);
	cr_assert(p, "%s", payload);
	cr_assert_eq(c->fit_payload(p, &ops), 0);
	return p;
}

Test(sdk, webhook_example_is_a_connector_with_rules_and_limits)
{
	const char *src = getenv("IM_TEST_SRCDIR");
	cr_assert(src);
	char dir[] = "/tmp/im-sdk-XXXXXX", cmd[2048];
	cr_assert(mkdtemp(dir));
	chmod(dir, 0755);
	snprintf(cmd, sizeof(cmd),
		 "make -s -C %s/sdk/example O=%s IM_INCLUDE=%s/include "
		 "%s/webhook.so >%s/make.log 2>&1",
		 src, dir, src, dir, dir);
	cr_assert_eq(system(cmd), 0, "make failed: see %s/make.log", dir);

	char yaml[1024], err[1024] = "";
	snprintf(yaml, sizeof(yaml),
		 "plugins:\n  dirs: [\"%s\"]\n  instances:\n"
		 "    - {id: wh, module: webhook, config: {url: "
		 "\"http://127.0.0.1:9/c/{channel}\", secret: s}}\n"
		 "    - {id: bare, module: webhook}\n",
		 dir);
	im_config *cfg = im_config_load_string("sdk.yaml", yaml, err,
					       sizeof(err));
	cr_assert(cfg, "%s", err);
	im_snapshot *s = im_registry_build(cfg, err, sizeof(err));
	cr_assert(s, "%s", err);
	im_registry_swap(s);
	im_instance *in = im_snapshot_find(s, "wh");
	cr_assert(in);
	cr_expect_eq(in->st, IM_STATE_RUNNING, "%s", in->reason);
	cr_expect_eq(in->n_routes, 1, "POST commands");
	im_instance *bare = im_snapshot_find(s, "bare");
	cr_assert(bare);
	cr_expect_eq(bare->st, IM_STATE_UNCONFIGURED);
	cr_expect_str_eq(bare->reason ? bare->reason : "",
			 "set url and secret");

	const im_component *comp = in->mod->desc.components[0];
	cr_assert(comp && comp->kind == IM_COMPONENT_CONNECTOR);
	const im_connector *c = (const im_connector *)comp;
	cr_expect_str_eq(c->platform, "webhook");
	cr_expect_eq(c->rate_per_channel, 1);
	cr_expect_eq(c->burst_per_channel, 3);
	cr_assert(c->send && c->followup && c->rules && c->fit_payload);
	cr_expect_str_eq(c->rules->backslash, "\\*_`[]~");
	cr_expect_str_eq(c->rules->defuse[1], "@here");
	cr_expect_null(c->rules->defuse[2]);
	for (int i = 0; i < 5; i++)
		cr_expect(c->rules->severity_emoji[i], "emoji %d", i);
	cr_expect_null(c->rules->severity_emoji[5]);
	cr_expect_eq(c->rules->severity_color[1], 15158332);

	/* Limits: "text" 4000, 10 fields, each value 1000. */
	char *big = malloc(6000);
	memset(big, 'x', 5000);
	big[5000] = '\0';
	json_t *fields = json_array();
	for (int i = 0; i < 12; i++)
		json_array_append_new(fields,
				      json_pack("{s:s,s:s}", "title", "t",
						"value", i ? "v" : big));
	json_t *p0 = json_pack("{s:s,s:o}", "text", big, "fields", fields);
	char *text = json_dumps(p0, JSON_COMPACT);
	json_decref(p0);
	json_t *p = fit(c, text);
	free(text);
	free(big);
	cr_expect_eq(json_array_size(problems), 0);
	cr_expect_eq(ops_length(json_object_get(p, "text")), 4000);
	fields = json_object_get(p, "fields");
	cr_expect_eq(json_array_size(fields), 10);
	cr_expect_eq(ops_length(json_object_get(json_array_get(fields, 0),
						"value")),
		     1000);
	json_decref(p);
	/* What no cut repairs. */
	json_decref(fit(c, "[1]"));
	cr_expect_eq(json_array_size(problems), 1);
	json_decref(fit(c, "{\"text\":\"\"}"));
	cr_expect_eq(json_array_size(problems), 1);
	json_decref(fit(c, "{\"fields\":[]}"));
	cr_expect_eq(json_array_size(problems), 1);
	json_decref(fit(c, "{\"text\":\"x\",\"fields\":{}}"));
	cr_expect_eq(json_array_size(problems), 1);
	json_decref(fit(c, "{\"text\":\"x\",\"fields\":[1]}"));
	cr_expect_eq(json_array_size(problems), 1);
	json_decref(fit(c, "{\"text\":\"fine\",\"fields\":[{\"value\":\"v\"}]}"));
	cr_expect_eq(json_array_size(problems), 0);
	json_decref(problems);
	problems = NULL;

	im_registry_shutdown();
	im_config_free(cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}
