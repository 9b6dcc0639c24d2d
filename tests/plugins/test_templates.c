/* The template service (core/template) with the real mustache.so and the
 * default templates of conf.d/templates: escaping, limits, overrides and
 * the fallback to the default when an override is broken. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "metrics/metrics.h"
#include "plugin/plugin.h"
#include "template/internal.h"
#include "template/template.h"

static char dir[64];
static im_config *cfg;
static im_snapshot *snap;
static im_template_set *set;

static void write_file(const char *rel, const char *text)
{
	char path[512], sub[512];
	snprintf(path, sizeof(path), "%s/templates/%s", dir, rel);
	for (char *p = strchr(path + strlen(dir) + 1, '/'); p;
	     p = strchr(p + 1, '/')) {
		snprintf(sub, sizeof(sub), "%.*s", (int)(p - path), path);
		mkdir(sub, 0755);
	}
	FILE *f = fopen(path, "w");
	cr_assert(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

static void setup(void)
{
	const char *src = getenv("IM_TEST_SRCDIR"), *b = getenv("IM_TEST_BUILDDIR");
	cr_assert(src && b);
	char def[512];
	snprintf(def, sizeof(def), "%s/conf.d/templates", src);
	setenv("IM_TEMPLATES_DEFAULT", def, 1);
	snprintf(dir, sizeof(dir), "/tmp/im-tpl-XXXXXX");
	cr_assert(mkdtemp(dir));
	char yaml[1024], err[1024] = "";
	snprintf(yaml, sizeof(yaml),
		 "server: {public_url: \"http://im.example\"}\n"
		 "chatops: {templates_dir: \"%s/templates\"}\n"
		 "plugins:\n  dirs: [\"%s/plugins\"]\n  instances:\n"
		 "    - {id: mustache, module: mustache}\n"
		 /* The platform rules: the connectors declare them. */
		 "    - {id: slack, module: slack}\n"
		 "    - {id: teams, module: teams}\n"
		 "    - {id: discord, module: discord}\n",
		 dir, b);
	cfg = im_config_load_string("t.yaml", yaml, err, sizeof(err));
	cr_assert(cfg, "%s", err);
	snap = im_registry_build(cfg, err, sizeof(err));
	cr_assert(snap, "%s", err);
	im_registry_swap(snap);
	snap = im_registry_acquire();
}

static void load(void)
{
	char err[256];
	im_template_set_unref(set);
	cr_assert_eq(im_template_load(cfg, snap, &set, err, sizeof(err)), 0);
}

static void teardown(void)
{
	im_template_set_unref(set);
	set = NULL;
	im_registry_release(snap);
	im_registry_shutdown();
	im_config_free(cfg);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_expect_eq(system(cmd), 0);
	im_metrics_reset();
}

TestSuite(templates, .init = setup, .fini = teardown, .timeout = 60);

static const char hostile[] = "<!channel> *x* @everyone \"},{ ";

static json_t *hostile_context(void)
{
	json_t *ev = json_pack(
	    "{s:s,s:s,s:s,s:{s:{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s},s:{},"
	    "s:{s:s,s:s}}}",
	    "specversion", "1.0", "type", "im.incident.declare", "time",
	    "2026-11-27T10:00:00.000Z", "data", "incident", "id", "INC-7",
	    "title", hostile, "description", "<@U1> [x](http://evil) @here",
	    "severity", "SEV-1", "severity_label", "critical", "status", "open",
	    "url", "http://im.example/incidents/INC-7", "commander", "bob",
	    "change", "actor", "id", "U1", "via", "slack");
	json_t *ctx = im_template_context(ev, "http://im.example");
	json_decref(ev);
	return ctx;
}

static json_t *render(const char *platform, const char *event, json_t *ctx)
{
	json_t *out = NULL;
	char err[1024] = "";
	int rc = im_template_render(set, platform, event, ctx, &out, err,
				    sizeof(err));
	cr_assert_eq(rc, 0, "%s/%s: %s", platform, event, err);
	/* Whatever happened, what comes out serializes and reads back. */
	char *s = json_dumps(out, JSON_COMPACT);
	json_t *again = json_loads(s, 0, NULL);
	cr_assert(again, "%s", s);
	json_decref(again);
	free(s);
	return out;
}

static const char *path_str(const json_t *v, const char *path)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *t = strtok(buf, "."); t && v; t = strtok(NULL, "."))
		v = *t >= '0' && *t <= '9' ? json_array_get(v, (size_t)atoi(t))
					   : json_object_get(v, t);
	return json_string_value(v);
}

Test(templates, hostile_text_stays_literal_on_slack)
{
	load();
	json_t *ctx = hostile_context();
	json_t *p = render("slack", "declare", ctx);
	const char *header = path_str(p, "blocks.0.text.text");
	cr_assert(header);
	cr_expect(strstr(header, "&lt;!channel&gt; *x* @everyone \"},{"),
		  "%s", header);
	char *all = json_dumps(p, JSON_COMPACT);
	cr_expect_null(strstr(all, "<!channel>"), "%s", all);
	cr_expect_null(strstr(all, "<@U1>"), "%s", all);
	cr_expect_str_eq(path_str(p, "blocks.4.elements.0.value"), "INC-7");
	cr_expect_str_eq(path_str(p, "blocks.4.elements.2.action_id"),
			 "im_sev_up");
	free(all);
	json_decref(p);
	json_decref(ctx);
}

Test(templates, hostile_text_stays_literal_on_discord)
{
	load();
	json_t *ctx = hostile_context();
	json_t *p = render("discord", "declare", ctx);
	json_t *am = json_object_get(p, "allowed_mentions");
	json_t *want = json_pack("{s:[]}", "parse");
	cr_expect(json_equal(am, want), "allowed_mentions must be parse []");
	json_decref(want);
	const char *content = path_str(p, "content");
	cr_expect(strstr(content, "\\*x\\*"), "%s", content);
	cr_expect(strstr(content, "@\xe2\x80\x8b" "everyone"), "%s", content);
	cr_expect(strstr(content, "\"},{"), "%s", content);
	char *all = json_dumps(p, JSON_COMPACT);
	cr_expect_null(strstr(all, "@everyone"), "%s", all);
	cr_expect_null(strstr(all, "@here"), "%s", all);
	free(all);
	cr_expect_eq(json_integer_value(json_object_get(
			 json_array_get(json_object_get(p, "embeds"), 0),
			 "color")),
		     15158332);
	cr_expect_str_eq(path_str(p, "components.0.components.0.custom_id"),
			 "im_ack:INC-7");
	json_decref(p);
	json_decref(ctx);
}

Test(templates, hostile_text_stays_literal_on_teams)
{
	load();
	json_t *ctx = hostile_context();
	json_t *p = render("teams", "declare", ctx);
	const char *title = path_str(p, "attachments.0.content.body.0.text");
	cr_assert(title);
	cr_expect(strstr(title, "\\*x\\* @everyone \"},{"), "%s", title);
	cr_expect_str_eq(path_str(p, "attachments.0.content.version"), "1.5");
	json_t *data = json_object_get(
	    json_array_get(json_object_get(
			       json_object_get(json_array_get(json_object_get(
						   p, "attachments"),
					       0),
					       "content"),
			       "actions"),
			   0),
	    "data");
	json_t *want = json_pack("{s:s,s:s}", "action", "ack", "incident",
				 "INC-7");
	cr_expect(json_equal(data, want));
	json_decref(want);
	json_decref(p);
	json_decref(ctx);
}

static size_t chars(const char *s)
{
	return tpl_utf8_len(s, strlen(s));
}

static bool ends_with_ellipsis(const char *s)
{
	size_t n = strlen(s);
	return n >= 3 && !strcmp(s + n - 3, "\xe2\x80\xa6");
}

Test(templates, long_texts_are_cut_on_character_boundaries)
{
	load();
	json_t *ctx = im_template_sample("declare", "long", "http://x");
	json_t *p = render("slack", "declare", ctx);
	const char *header = path_str(p, "blocks.0.text.text");
	cr_expect_eq(chars(header), 150, "%zu", chars(header));
	cr_expect(ends_with_ellipsis(header));
	cr_expect_leq(chars(path_str(p, "blocks.1.text.text")), 3000);
	json_decref(p);
	p = render("discord", "declare", ctx);
	json_t *e = json_array_get(json_object_get(p, "embeds"), 0);
	cr_expect_eq(chars(path_str(e, "title")), 256);
	cr_expect(ends_with_ellipsis(path_str(e, "title")));
	size_t total = chars(path_str(e, "title")) +
		       chars(path_str(e, "description")) +
		       chars(path_str(e, "footer.text"));
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(e, "fields"), i, f)
		total += chars(path_str(f, "name")) + chars(path_str(f, "value"));
	cr_expect_leq(total, 6000);
	cr_expect_leq(chars(path_str(p, "content")), 2000);
	json_decref(p);
	json_decref(ctx);
}

Test(templates, truncation_never_splits_a_character_or_escape)
{
	load();
	const tpl_rules *slack = tpl_rules_of(set, "slack");
	const tpl_rules *discord = tpl_rules_of(set, "discord");
	cr_assert(slack && discord);
	json_t *s = json_string("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
	cr_expect_eq(tpl_truncate(s, 3, NULL), 1);
	cr_expect_str_eq(json_string_value(s), "\xc3\xa9\xc3\xa9\xe2\x80\xa6");
	json_decref(s);
	s = json_string("ab&amp;cd");
	tpl_truncate(s, 5, slack);
	cr_expect_str_eq(json_string_value(s), "ab\xe2\x80\xa6");
	json_decref(s);
	s = json_string("abc\\*def");
	tpl_truncate(s, 5, discord);
	cr_expect_str_eq(json_string_value(s), "abc\xe2\x80\xa6");
	json_decref(s);
	s = json_string("short");
	cr_expect_eq(tpl_truncate(s, 5, slack), 0);
	json_decref(s);
}

Test(templates, an_override_beats_the_default)
{
	write_file("slack/declare.mustache",
		   "{\"text\": \"custom {{incident.id}} {{incident.title}}\"}\n");
	load();
	json_t *ctx = hostile_context();
	json_t *p = render("slack", "declare", ctx);
	cr_expect_str_eq(path_str(p, "text"),
			 "custom INC-7 &lt;!channel&gt; *x* @everyone \"},{ ");
	json_decref(p);
	json_t *list = im_template_list(set);
	size_t i;
	json_t *t;
	int seen = 0;
	json_array_foreach(list, i, t)
	{
		const char *name = path_str(t, "name");
		if (!strcmp(name, "slack/declare")) {
			cr_expect_str_eq(path_str(t, "source"), "override");
			seen++;
		} else if (!strcmp(name, "slack/resolve")) {
			cr_expect_str_eq(path_str(t, "source"), "default");
			seen++;
		}
	}
	cr_expect_eq(seen, 2);
	json_decref(list);
	json_decref(ctx);
}

static double errors_of(const char *name)
{
	static const char *const labels[] = {"template", NULL};
	im_metric *m = im_metrics_family("im_template_errors_total", "x",
					 IM_METRIC_COUNTER, labels, NULL, 0);
	const char *v[] = {name};
	return m ? im_metric_value(m, v) : -1;
}

Test(templates, a_broken_override_falls_back_and_is_counted)
{
	write_file("teams/declare.mustache", "{\"type\": \"{{incident.id\"}\n");
	write_file("teams/resolve.mustache", "{\"type\": \"message\",\n"
					     "  \"text\": {{incident.id}}\n}\n");
	load();
	cr_expect_eq(errors_of("teams/declare"), 1);
	json_t *ctx = hostile_context();
	json_t *p = render("teams", "declare", ctx);
	cr_expect_str_eq(path_str(p, "attachments.0.content.type"),
			 "AdaptiveCard");
	json_decref(p);
	/* Compiles, but renders to invalid JSON: counted at render time. */
	p = render("teams", "resolve", ctx);
	cr_expect_str_eq(path_str(p, "attachments.0.content.version"), "1.5");
	cr_expect_eq(errors_of("teams/resolve"), 1);
	json_decref(p);
	json_t *problems = im_template_validate(set, "teams", NULL);
	char *all = json_dumps(problems, 0);
	cr_expect(strstr(all, "/templates/teams/declare.mustache:1:11: "
			      "unclosed tag"),
		  "%s", all);
	cr_expect(strstr(all, "/templates/teams/resolve.mustache:2: the "
			      "output is not valid JSON"),
		  "%s", all);
	free(all);
	json_decref(problems);
	json_decref(ctx);
}

Test(templates, an_unknown_partial_names_line_and_column)
{
	write_file("discord/note.mustache",
		   "{\n  \"content\": \"x\",\n    {{> nope}}\n}\n");
	load();
	json_t *list = im_template_list(set), *t;
	size_t i;
	const char *error = NULL;
	json_array_foreach(list, i, t)
		if (!strcmp(path_str(t, "name"), "discord/note"))
			error = path_str(t, "error");
	cr_assert(error);
	cr_expect(strstr(error, "/templates/discord/note.mustache:3:5: "
				"unknown partial 'nope'"),
		  "%s", error);
	json_decref(list);
}

Test(templates, an_override_partial_serves_the_defaults)
{
	write_file("slack/partials/header.mustache",
		   "{\"type\": \"header\", \"text\": {\"type\": \"plain_text\", "
		   "\"text\": \"NEW {{incident.id}}\"}}\n");
	write_file("discord/partials/fields.mustache", "\"fields\": [{{oops]\n");
	load();
	json_t *ctx = hostile_context();
	json_t *p = render("slack", "declare", ctx);
	cr_expect_str_eq(path_str(p, "blocks.0.text.text"), "NEW INC-7");
	json_decref(p);
	/* The broken operator partial: defaults compile with their own. */
	p = render("discord", "declare", ctx);
	cr_expect_str_eq(path_str(p, "embeds.0.fields.0.name"), "Status");
	cr_expect_eq(errors_of("discord/declare"), 1);
	json_decref(p);
	json_decref(ctx);
}

Test(templates, the_defaults_validate_and_digests_render)
{
	load();
	json_t *checked = NULL;
	json_t *problems = im_template_validate(set, NULL, &checked);
	char *all = json_dumps(problems, JSON_INDENT(1));
	cr_expect_eq(json_array_size(problems), 0, "%s", all);
	free(all);
	cr_expect_eq(json_array_size(checked), 36);
	json_decref(problems);
	json_decref(checked);
	const char *platforms[] = {"slack", "teams", "discord"};
	for (int k = 0; k < 3; k++) {
		json_t *ctx = im_template_sample("digest", "unicode", NULL);
		json_t *p = render(platforms[k], "digest", ctx);
		char *s = json_dumps(p, 0);
		cr_expect(strstr(s, "5 incident updates"), "%s", s);
		free(s);
		json_decref(p);
		json_decref(ctx);
	}
}

Test(templates, unknown_templates_are_not_found)
{
	load();
	json_t *out = NULL, *ctx = json_object();
	char err[256];
	cr_expect_eq(im_template_render(set, "irc", "declare", ctx, &out, err,
					sizeof(err)),
		     IM_ENOTFOUND);
	cr_expect(strstr(err, "no template irc/declare"), "%s", err);
	cr_expect_eq(im_template_render(set, "slack", "im.incident.declare",
					ctx, &out, err, sizeof(err)),
		     0, "%s", err);
	json_decref(out);
	json_decref(ctx);
}
