/* The mustache plugin, loaded through the real registry from
 * $IM_TEST_BUILDDIR/plugins/mustache.so: the conformance cases of
 * tests/plugins/mustache-cases (one file per area of spec v1 without
 * lambdas), byte for byte, then the engine's own promises: errors with
 * line:column, JSON escaping, strict partials and concurrent renders on
 * one handle. The official spec files run in test_mustache_spec.c. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mustache_runner.h"

TestSuite(mustache, .init = load_engine, .fini = unload_engine,
	  .timeout = 60);

static int run_repo_cases(const char *file)
{
	const char *src = getenv("IM_TEST_SRCDIR");
	cr_assert(src, "IM_TEST_SRCDIR is not set");
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s/tests/plugins/mustache-cases", src);
	return run_cases(dir, file);
}

Test(mustache, passes_the_comments_cases)
{
	cr_expect_eq(run_repo_cases("comments"), 0);
}

Test(mustache, passes_the_delimiters_cases)
{
	cr_expect_eq(run_repo_cases("delimiters"), 0);
}

Test(mustache, passes_the_interpolation_cases)
{
	cr_expect_eq(run_repo_cases("interpolation"), 0);
}

Test(mustache, passes_the_inverted_cases)
{
	cr_expect_eq(run_repo_cases("inverted"), 0);
}

Test(mustache, passes_the_partials_cases)
{
	cr_expect_eq(run_repo_cases("partials"), 0);
}

Test(mustache, passes_the_sections_cases)
{
	cr_expect_eq(run_repo_cases("sections"), 0);
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
