/* The mustache plugin, loaded through the real registry from
 * $IM_TEST_BUILDDIR/plugins/mustache.so: every case of the required
 * Mustache spec files (read at test time from $IM_SHARED_DIR), byte for
 * byte, then the engine's own promises: errors with line:column, JSON
 * escaping, strict partials and concurrent renders on one handle. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "plugin/plugin.h"

static im_config *cfg;
static im_snapshot *snap;
static const im_formatter *fm;
static void *fstate;

static void load_engine(void)
{
	const char *b = getenv("IM_TEST_BUILDDIR");
	cr_assert(b, "IM_TEST_BUILDDIR is not set");
	char yaml[1024], err[1024] = "";
	snprintf(yaml, sizeof(yaml),
		 "plugins:\n  dirs: [\"%s/plugins\"]\n  instances:\n"
		 "    - {id: mustache, module: mustache}\n",
		 b);
	cfg = im_config_load_string("mustache.yaml", yaml, err, sizeof(err));
	cr_assert(cfg, "%s", err);
	snap = im_registry_build(cfg, err, sizeof(err));
	cr_assert(snap, "%s", err);
	im_registry_swap(snap);
	im_instance *in = NULL;
	fm = im_snapshot_formatter(snap, "mustache", &in);
	cr_assert(fm, "no formatter serves .mustache");
	cr_assert_eq(in->st, IM_STATE_RUNNING, "%s", in->reason);
	cr_assert(fm->compile_with, "engine lacks compile_with");
	fstate = in->state;
}

static void unload_engine(void)
{
	im_registry_shutdown();
	im_config_free(cfg);
}

TestSuite(mustache, .init = load_engine, .fini = unload_engine,
	  .timeout = 60);

/* The spec's lookup: partials come from the case; a missing one renders
 * as nothing. */
static int spec_partial(void *ud, const char *name, const char **text,
			size_t *len)
{
	const json_t *p = json_object_get(ud, name);
	*text = json_string_value(p);
	*len = json_string_length(p);
	return 0;
}

static int run_spec_file(const char *file)
{
	const char *shared = getenv("IM_SHARED_DIR");
	cr_assert(shared, "IM_SHARED_DIR is not set");
	char path[1024];
	snprintf(path, sizeof(path), "%s/testdata/mustache-spec/%s.json",
		 shared, file);
	json_error_t jerr;
	json_t *spec = json_load_file(path, 0, &jerr);
	cr_assert(spec, "%s: %s", path, jerr.text);
	const json_t *tests = json_object_get(spec, "tests");
	size_t i, pass = 0;
	const json_t *t;
	json_array_foreach(tests, i, t)
	{
		const char *name = json_string_value(json_object_get(t, "name"));
		const json_t *tpl = json_object_get(t, "template");
		const json_t *want = json_object_get(t, "expected");
		json_t *partials = json_object_get(t, "partials");
		im_template *h = NULL;
		char err[512] = "", *out = NULL;
		size_t len = 0;
		int rc = fm->compile_with(fstate, name, json_string_value(tpl),
					  json_string_length(tpl), spec_partial,
					  partials, &h, err, sizeof(err));
		if (rc == 0)
			rc = fm->render(fstate, h, json_object_get(t, "data"),
					IM_ESCAPE_HTML, &out, &len);
		bool ok = rc == 0 && len == json_string_length(want) &&
			  memcmp(out, json_string_value(want), len) == 0;
		cr_expect(ok, "%s / %s: rc %d %s\n  got:  [%s]\n  want: [%s]",
			  file, name, rc, err, out ? out : "",
			  json_string_value(want));
		pass += ok;
		free(out);
		if (h)
			fm->release(fstate, h);
	}
	size_t total = json_array_size(tests);
	printf("mustache spec %-14s %zu/%zu passed\n", file, pass, total);
	fflush(stdout);
	json_decref(spec);
	return (int)(total - pass);
}

Test(mustache, passes_the_comments_spec)
{
	cr_expect_eq(run_spec_file("comments"), 0);
}

Test(mustache, passes_the_delimiters_spec)
{
	cr_expect_eq(run_spec_file("delimiters"), 0);
}

Test(mustache, passes_the_interpolation_spec)
{
	cr_expect_eq(run_spec_file("interpolation"), 0);
}

Test(mustache, passes_the_inverted_spec)
{
	cr_expect_eq(run_spec_file("inverted"), 0);
}

Test(mustache, passes_the_partials_spec)
{
	cr_expect_eq(run_spec_file("partials"), 0);
}

Test(mustache, passes_the_sections_spec)
{
	cr_expect_eq(run_spec_file("sections"), 0);
}

/* A resolver that knows one partial and calls every other one an error. */
static int strict_partial(void *ud, const char *name, const char **text,
			  size_t *len)
{
	if (strcmp(name, "known") != 0)
		return IM_ENOTFOUND;
	*text = ud;
	*len = strlen(ud);
	return 0;
}

static void expect_error(const char *tpl, const char *want)
{
	im_template *h = NULL;
	char err[512] = "";
	int rc = fm->compile_with(fstate, "t", tpl, strlen(tpl),
				  strict_partial, "ok {{/x}}", &h, err,
				  sizeof(err));
	cr_expect_eq(rc, IM_EINVAL, "%s compiled", tpl);
	cr_expect(strstr(err, want), "error for [%s] is [%s], want [%s]", tpl,
		  err, want);
	cr_expect_null(h);
}

Test(mustache, compile_errors_carry_line_and_column)
{
	expect_error("a\n  {{name", "2:3: unclosed tag");
	expect_error("{{#a}}\nx\n", "1:1: unclosed section 'a'");
	expect_error("{{#a}}\n {{#b}}{{/a}}", "2:8: mismatched section: 'a' "
					       "closes 'b' opened at 2:2");
	expect_error("x {{/a}}", "1:3: closing tag 'a' has no open section");
	expect_error("\n\n{{= <% =}}", "3:1: bad delimiter change");
	expect_error("{{=a= b=}}", "1:1: bad delimiter change");
	expect_error("line\n {{> missing}}", "2:2: unknown partial 'missing'");
	expect_error("{{> known}}", "1:1: in partial 'known': 1:4: closing "
				    "tag 'x' has no open section");
	expect_error("{{ }}", "1:1: empty tag name");
	expect_error("{{a..b}}", "1:1: bad dotted name 'a..b'");
}

Test(mustache, plain_compile_refuses_partials)
{
	im_template *h = NULL;
	char err[256] = "";
	cr_expect_eq(fm->compile(fstate, "t", "x{{>p}}", 7, &h, err,
				 sizeof(err)),
		     IM_EINVAL);
	cr_expect(strstr(err, "1:2: unknown partial 'p'"), "%s", err);
}

static char *render_with(const char *tpl, const char *data, im_escape esc)
{
	im_template *h = NULL;
	char err[256] = "", *out = NULL;
	cr_assert_eq(fm->compile(fstate, "t", tpl, strlen(tpl), &h, err,
				 sizeof(err)),
		     0, "%s", err);
	json_t *ctx = json_loads(data, 0, NULL);
	cr_assert(ctx);
	cr_assert_eq(fm->render(fstate, h, ctx, esc, &out, NULL), 0);
	json_decref(ctx);
	fm->release(fstate, h);
	return out;
}

Test(mustache, json_mode_escapes_every_interpolation)
{
	const char *data = "{\"t\":\"<!channel> \\\"},{ \\\\ \\n\\u0001\"}";
	char *out = render_with("{\"a\":\"{{t}}\",\"b\":\"{{{t}}}\","
				"\"c\":\"{{&t}}\"}",
				data, IM_ESCAPE_JSON);
	cr_expect_str_eq(out, "{\"a\":\"<!channel> \\\"},{ \\\\ \\n\\u0001\","
			      "\"b\":\"<!channel> \\\"},{ \\\\ \\n\\u0001\","
			      "\"c\":\"<!channel> \\\"},{ \\\\ \\n\\u0001\"}");
	json_t *parsed = json_loads(out, 0, NULL);
	cr_expect(parsed, "not JSON: %s", out);
	json_decref(parsed);
	free(out);
	out = render_with("{{t}}|{{{t}}}", "{\"t\":\"<a & 'b'>\"}",
			  IM_ESCAPE_NONE);
	cr_expect_str_eq(out, "<a & 'b'>|<a & 'b'>");
	free(out);
	out = render_with("{{t}}", "{\"t\":\"<a & 'b'>\"}", IM_ESCAPE_HTML);
	cr_expect_str_eq(out, "&lt;a &amp; &#39;b&#39;&gt;");
	free(out);
}

Test(mustache, truthiness_follows_javascript)
{
	char *out = render_with(
	    "{{#s}}s{{/s}}{{#z}}z{{/z}}{{#o}}o{{/o}}{{^e}}e{{/e}}{{#n}}n{{/n}}",
	    "{\"s\":\"\",\"z\":0,\"o\":{},\"e\":[],\"n\":null}",
	    IM_ESCAPE_HTML);
	cr_expect_str_eq(out, "oe");
	free(out);
}

/* Indentation of a lone partial is defined as "prepended to each line of
 * the partial before rendering": the engine applies it while rendering, so
 * compare with literally indenting the partial's source. */
static char *indent_lines(const char *src, const char *ind)
{
	size_t n = strlen(src), k = strlen(ind), o = 0;
	char *out = malloc(n * (k + 1) + k + 1);
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || src[i - 1] == '\n') {
			memcpy(out + o, ind, k);
			o += k;
		}
		out[o++] = src[i];
	}
	out[o] = '\0';
	return out;
}

static char *render_partial(const char *tpl, const char *partial,
			    const char *data)
{
	json_t *parts = json_pack("{s:s}", "p", partial);
	json_t *ctx = json_loads(data, 0, NULL);
	im_template *h = NULL;
	char err[256] = "", *out = NULL;
	cr_assert_eq(fm->compile_with(fstate, "t", tpl, strlen(tpl),
				      spec_partial, parts, &h, err,
				      sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(fm->render(fstate, h, ctx, IM_ESCAPE_HTML, &out, NULL),
		     0);
	fm->release(fstate, h);
	json_decref(ctx);
	json_decref(parts);
	return out;
}

Test(mustache, lone_partial_indentation_equals_indenting_the_source)
{
	static const char *const partials[] = {
	    "a\nb\n",
	    "{{#l}}x\n{{/l}}y",
	    "{{#l}}\nx{{.}}\n{{/l}}\nend",
	    "{{^none}}\n  in\n{{/none}}\n",
	    "{{#l}}{{.}},{{/l}}\n\n{{v}}\n",
	    "{{! c }}\n{{v}} {{#t}}yes{{/t}}\n  {{#l}}\n    {{.}}\n  {{/l}}\n",
	    "{{#l}}\n{{/l}}tail",
	    "x{{#l}}\n{{.}}{{/l}}\n{{v}}",
	};
	const char *data = "{\"l\":[1,2],\"v\":\"<v>\\nw\",\"t\":true}";
	for (size_t i = 0; i < sizeof(partials) / sizeof(*partials); i++) {
		char *pre = indent_lines(partials[i], "  ");
		char *want = render_partial("{{>p}}\n>", pre, data);
		char *got = render_partial("  {{>p}}\n>", partials[i], data);
		cr_expect_str_eq(got, want, "partial %zu [%s]", i, partials[i]);
		free(pre);
		free(want);
		free(got);
	}
}

typedef struct job {
	const im_template *h;
	json_t *ctx;
	int bad;
} job;

static void *hammer(void *arg)
{
	job *j = arg;
	for (int i = 0; i < 2000; i++) {
		char *out = NULL;
		if (fm->render(fstate, j->h, j->ctx, IM_ESCAPE_JSON, &out,
			       NULL) != 0 ||
		    strcmp(out, "[a,b,c,] x: x:") != 0)
			j->bad++;
		free(out);
	}
	return NULL;
}

Test(mustache, renders_one_handle_on_many_threads)
{
	const char *tpl = "[{{#l}}{{.}},{{/l}}]"
			  "{{#p}} {{> known}}{{/p}}";
	im_template *h = NULL;
	char err[256] = "";
	cr_assert_eq(fm->compile_with(fstate, "t", tpl, strlen(tpl),
				      strict_partial, "x:{{missing}}", &h, err,
				      sizeof(err)),
		     0, "%s", err);
	json_t *ctx = json_pack("{s:[s,s,s],s:[i,i]}", "l", "a", "b", "c",
				"p", 1, 2);
	job jobs[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		jobs[i] = (job){h, ctx, 0};
		cr_assert_eq(pthread_create(&th[i], NULL, hammer, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(jobs[i].bad, 0);
	}
	json_decref(ctx);
	fm->release(fstate, h);
}
