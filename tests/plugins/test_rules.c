/* core/template's generic machinery with a made-up platform "fake" whose
 * connector (built here, not loaded from a file) declares its rules: '%'
 * gets a backslash, '$' becomes "&dollar;", "!!" is defused, "@everyone"
 * is a mention, and its fit_payload cuts "text" to 10 characters and
 * reports a payload without "kind". Nothing here knows a real platform. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "metrics/metrics.h"
#include "plugin/plugin.h"
#include "template/template.h"

#define ZWSP "\xe2\x80\x8b"
#define ELLIPSIS "\xe2\x80\xa6"

static const char *const replace[] = {"$", "&dollar;", NULL};
static const char *const defuse[] = {"!!", NULL};
static const char *const mentions[] = {"@everyone", NULL};
static const char *const emoji[] = {"e0", "e1", "e2", "e3", "e4"};
static const int64_t colors[] = {100, 101, 102, 103, 104};

static const im_platform_rules fake_rules = {
    .struct_size = sizeof(im_platform_rules),
    .backslash = "%",
    .replace = replace,
    .defuse = defuse,
    .mentions = mentions,
    .severity_emoji = emoji,
    .severity_color = colors,
};

static int fake_fit(json_t *payload, const im_payload_ops *ops)
{
	json_t *text = json_object_get(payload, "text");
	if (json_is_string(text) && ops->length(text) > 10)
		ops->cut(ops, text, 10);
	if (!json_object_get(payload, "kind"))
		ops->problem(ops, "text", "a fake message needs a %s", "kind");
	return 0;
}

static const im_connector fake_conn = {
    .base = {.struct_size = sizeof(im_connector),
	     .kind = IM_COMPONENT_CONNECTOR,
	     .name = "fake"},
    .platform = "fake",
    .rules = &fake_rules,
    .fit_payload = fake_fit,
};

static char dir[64];
static im_config *cfg;
static im_snapshot *real, snap;
static im_module fake_mod;
static im_instance fake_inst;
static im_instance **insts;
static im_template_set *set;

static void write_file(const char *rel, const char *text)
{
	char path[512], sub[512];
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
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
	const char *b = getenv("IM_TEST_BUILDDIR");
	cr_assert(b);
	snprintf(dir, sizeof(dir), "/tmp/im-rules-XXXXXX");
	cr_assert(mkdtemp(dir));
	write_file("defaults/fake/declare.mustache",
		   "{\"text\": \"{{incident.title}}\", \"kind\": \"x\",\n"
		   " \"title\": \"{{incident.title}}\",\n"
		   " \"id\": \"{{incident.id}}\", \"url\": \"{{incident.url}}\",\n"
		   " \"emoji\": \"{{severity_emoji}}\",\n"
		   " \"color\": {{severity_color}}}\n");
	write_file("defaults/fake/note.mustache",
		   "{\"text\": \"{{incident.title}}\"}\n");
	write_file("defaults/bare/declare.mustache",
		   "{\"text\": \"{{incident.title}}\",\n"
		   " \"emoji\": \"{{severity_emoji}}\"}\n");
	char def[128];
	snprintf(def, sizeof(def), "%s/defaults", dir);
	setenv("IM_TEMPLATES_DEFAULT", def, 1);
	char yaml[1024], err[1024] = "";
	snprintf(yaml, sizeof(yaml),
		 "chatops: {templates_dir: \"%s/none\"}\n"
		 "plugins:\n  dirs: [\"%s/plugins\"]\n  instances:\n"
		 "    - {id: mustache, module: mustache}\n",
		 dir, b);
	cfg = im_config_load_string("t.yaml", yaml, err, sizeof(err));
	cr_assert(cfg, "%s", err);
	im_snapshot *s = im_registry_build(cfg, err, sizeof(err));
	cr_assert(s, "%s", err);
	im_registry_swap(s);
	real = im_registry_acquire();
	/* The real snapshot's instances plus one of the made-up connector,
	 * which the template service reads like any loaded module. */
	fake_mod.name = "fake";
	fake_mod.connectors[0] = &fake_conn;
	fake_mod.n_connectors = 1;
	fake_inst.id = "fake";
	fake_inst.module_name = "fake";
	fake_inst.mod = &fake_mod;
	fake_inst.st = IM_STATE_UNCONFIGURED;
	insts = calloc(real->n + 1, sizeof(*insts));
	cr_assert(insts);
	memcpy(insts, real->insts, real->n * sizeof(*insts));
	insts[real->n] = &fake_inst;
	snap.insts = insts;
	snap.n = real->n + 1;
	cr_assert_eq(im_template_load(cfg, &snap, &set, err, sizeof(err)), 0,
		     "%s", err);
}

static void teardown(void)
{
	im_template_set_unref(set);
	set = NULL;
	free(insts);
	im_registry_release(real);
	im_registry_shutdown();
	im_config_free(cfg);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_expect_eq(system(cmd), 0);
	im_metrics_reset();
}

TestSuite(rules, .init = setup, .fini = teardown, .timeout = 60);

static json_t *context(const char *title, const char *sev)
{
	return json_pack("{s:{s:s,s:s,s:s,s:s}}", "incident", "id", "INC-7",
			 "title", title, "severity", sev, "url",
			 "http://im.example/a%20b?x=$1");
}

static json_t *render_ok(const char *platform, const char *event,
			 json_t *ctx)
{
	json_t *out = NULL;
	char err[1024] = "";
	int rc = im_template_render(set, platform, event, ctx, &out, err,
				    sizeof(err));
	cr_assert_eq(rc, 0, "%s/%s: %s", platform, event, err);
	json_decref(ctx);
	return out;
}

static const char *s_(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

Test(rules, context_strings_are_escaped_by_the_declared_rules)
{
	json_t *p = render_ok("fake", "declare",
			      context("50% $5 !!go \x01@x", "SEV-2"));
	cr_expect_str_eq(s_(p, "title"),
			 "50\\% &dollar;5 !" ZWSP "!go @x");
	/* Host-made machine values pass as they are. */
	cr_expect_str_eq(s_(p, "id"), "INC-7");
	cr_expect_str_eq(s_(p, "url"), "http://im.example/a%20b?x=$1");
	json_decref(p);
	/* A string the rules leave alone is shared, not copied: it simply
	 * renders as it was. */
	p = render_ok("fake", "declare", context("plain words", "SEV-2"));
	cr_expect_str_eq(s_(p, "title"), "plain words");
	cr_expect_str_eq(s_(p, "text"), "plain wor" ELLIPSIS);
	json_decref(p);
}

Test(rules, severity_values_come_from_the_rules)
{
	const char *sev[] = {"SEV-1", "SEV-2", "SEV-3", "SEV-4", "SEV-9"};
	const char *want[] = {"e1", "e2", "e3", "e4", "e0"};
	for (int i = 0; i < 5; i++) {
		json_t *p = render_ok("fake", "declare", context("t", sev[i]));
		cr_expect_str_eq(s_(p, "emoji"), want[i]);
		json_int_t c = json_integer_value(json_object_get(p, "color"));
		cr_expect_eq(c, i < 4 ? 101 + i : 100, "%s: %lld", sev[i],
			     (long long)c);
		json_decref(p);
	}
}

Test(rules, the_cut_never_splits_what_the_escaping_made)
{
	/* "ab&dollar;cd...": 9 characters would end inside "&dollar;". */
	json_t *p = render_ok("fake", "declare",
			      context("ab$cdefghijkl", "SEV-1"));
	cr_expect_str_eq(s_(p, "text"), "ab" ELLIPSIS);
	json_decref(p);
	/* "abcdefgh\%x": 9 characters would end on a lone backslash. */
	p = render_ok("fake", "declare", context("abcdefgh%xyz", "SEV-1"));
	cr_expect_str_eq(s_(p, "text"), "abcdefgh" ELLIPSIS);
	json_decref(p);
	/* "abcdefg\%x": the pair stays whole. */
	p = render_ok("fake", "declare", context("abcdefg%xyz", "SEV-1"));
	cr_expect_str_eq(s_(p, "text"), "abcdefg\\%" ELLIPSIS);
	json_decref(p);
	/* Multi-byte characters are counted, never split. */
	p = render_ok("fake", "declare",
		      context("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
			      "SEV-1"));
	cr_expect_str_eq(s_(p, "text"),
			 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
			 "\xc3\xa9\xc3\xa9\xc3\xa9" ELLIPSIS);
	json_decref(p);
}

Test(rules, problems_fail_the_render_with_file_and_line)
{
	json_t *out = NULL, *ctx = context("t", "SEV-1");
	char err[1024] = "", want[300];
	cr_expect_eq(im_template_render(set, "fake", "note", ctx, &out, err,
					sizeof(err)),
		     IM_EINVAL);
	cr_expect_null(out);
	snprintf(want, sizeof(want),
		 "%s/defaults/fake/note.mustache:1: a fake message needs a "
		 "kind",
		 dir);
	cr_expect(strstr(err, want), "want %s in %s", want, err);
	json_decref(ctx);
}

Test(rules, validate_checks_the_declared_mentions_and_limits)
{
	json_t *checked = NULL;
	json_t *problems = im_template_validate(set, "fake", &checked);
	char *dump = json_dumps(problems, 0);
	cr_expect(strstr(dump, "fake/note.mustache:1: a fake message needs "
			       "a kind"),
		  "%s", dump);
	/* The hostile sample's @everyone is a mention of this platform and
	 * nothing in the rules defuses it. */
	cr_expect(strstr(dump, "fake/declare.mustache:1: incident text became "
			       "a live mention (@everyone)"),
		  "%s", dump);
	cr_expect_eq(json_array_size(checked), 2);
	free(dump);
	json_decref(problems);
	json_decref(checked);
}

Test(rules, a_platform_without_a_connector_gets_no_escaping_or_limits)
{
	json_t *p = render_ok("bare", "declare",
			      context("50% $5 !!go and a long text", "SEV-1"));
	cr_expect_str_eq(s_(p, "text"), "50% $5 !!go and a long text");
	cr_expect_str_eq(s_(p, "emoji"), "");
	json_decref(p);
	json_t *problems = im_template_validate(set, "bare", NULL);
	cr_expect_eq(json_array_size(problems), 0);
	json_decref(problems);
}
