/*
 * Fuzz target mustache: the Mustache engine (plugins/mustache/parse.c and
 * render.c, linked directly).
 *
 * Input: TEMPLATE [0xFF JSON [0xFF NAME=PARTIAL]...]. 0xFF never occurs
 * in UTF-8, so it cannot clash with a realistic template. The template is
 * compiled with mst_compile, partials looked up among the NAME=PARTIAL
 * parts (a name starting with '!' that is not there is an error, any
 * other is the spec's lenient empty partial; with no partial parts the
 * lookup is NULL and every partial tag is a compile error). It is then
 * rendered against the JSON (any JSON value; a default object when the
 * part is missing or not JSON) in the three escape modes.
 *
 * Contract: compile returns 0 or IM_EINVAL with "line:column: reason";
 * render returns 0 or IM_EINVAL (runaway recursion, 64 MiB of output);
 * an output is NUL-terminated at its length, and escaping only ever
 * lengthens it (HTML and JSON at least as long as NONE).
 * Two fixed templates check escaping against the JSON as the value x:
 * a JSON document rendered with IM_ESCAPE_JSON must parse ("no value can
 * break out of its string", render.c), and an HTML element rendered with
 * IM_ESCAPE_HTML keeps exactly its own '<', '>' and '"'.
 */
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "mustache.h"

#define SPLIT '\xff'
#define MAX_PARTS 16

typedef struct part {
	const char *p;
	size_t n;
} part;

typedef struct partials {
	part name[MAX_PARTS], text[MAX_PARTS];
	size_t n;
} partials;

static im_template *t_json, *t_html;

static const char JSON_TPL[] =
    "{\"a\":\"{{x}}\",\"b\":\"{{{x}}}\",\"c\":\"{{& x}}\","
    "\"d\":\"{{#x}}<{{.}}>{{/x}}\",\"e\":\"{{^x}}none{{/x}}\","
    "\"f\":\"{{x.title}}\"}";
static const char HTML_TPL[] =
    "<p title=\"{{x}}\">{{x}}{{#x}}[{{.}}|{{title}}]{{/x}}</p>";

static void cleanup(void)
{
	mst_free(t_json);
	mst_free(t_html);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];
	if (mst_compile("json", JSON_TPL, strlen(JSON_TPL), NULL, NULL, &t_json,
			err, sizeof(err)) != 0 ||
	    mst_compile("html", HTML_TPL, strlen(HTML_TPL), NULL, NULL, &t_html,
			err, sizeof(err)) != 0)
		FUZZ_FAIL("fixed templates: %s", err);
	atexit(cleanup);
	return 0;
}

static int lookup(void *ud, const char *name, const char **text,
		  size_t *len)
{
	const partials *ps = ud;
	size_t nl = strlen(name);
	for (size_t i = 0; i < ps->n; i++) {
		if (ps->name[i].n == nl && !memcmp(ps->name[i].p, name, nl)) {
			*text = ps->text[i].p;
			*len = ps->text[i].n;
			return 0;
		}
	}
	*text = NULL;
	*len = 0;
	return name[0] == '!' ? IM_ENOTFOUND : 0;
}

static size_t count(const char *s, size_t n, char c)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += s[i] == c;
	return k;
}

/* The fixed templates with {"x": value}. */
static void check_escaping(const json_t *value)
{
	json_t *ctx = json_pack("{s:O}", "x", (json_t *)value);
	if (!ctx)
		return;
	char *out = NULL;
	size_t len = 0;
	int rc = mst_render(t_json, ctx, IM_ESCAPE_JSON, &out, &len);
	FUZZ_CHECK(rc == 0, "JSON template: render failed (%d)", rc);
	json_error_t je;
	json_t *doc = json_loadb(out, len, 0, &je);
	FUZZ_CHECK(json_is_object(doc),
		   "IM_ESCAPE_JSON let a value break out of its string: %s "
		   "in:\n%.400s",
		   je.text, out);
	json_decref(doc);
	free(out);
	rc = mst_render(t_html, ctx, IM_ESCAPE_HTML, &out, &len);
	FUZZ_CHECK(rc == 0, "HTML template: render failed (%d)", rc);
	FUZZ_CHECK(count(out, len, '<') == 2 && count(out, len, '>') == 2 &&
		       count(out, len, '"') == 2,
		   "IM_ESCAPE_HTML let markup through:\n%.400s", out);
	free(out);
	json_decref(ctx);
}

static void check_compiled(const im_template *u, const json_t *ctx)
{
	static const im_escape modes[] = {IM_ESCAPE_NONE, IM_ESCAPE_HTML,
					  IM_ESCAPE_JSON};
	size_t plain_len = 0;
	bool plain_ok = false;
	for (size_t i = 0; i < 3; i++) {
		char *out = NULL;
		size_t len = 0;
		int rc = mst_render(u, ctx, modes[i], &out, &len);
		FUZZ_CHECK(rc == 0 || rc == IM_EINVAL,
			   "mst_render (escape %d): %d", (int)modes[i], rc);
		if (rc != 0)
			continue;
		FUZZ_CHECK(out && out[len] == '\0' && len <= ((size_t)64 << 20),
			   "mst_render (escape %d): output of %zu bytes not "
			   "ended by a NUL",
			   (int)modes[i], len);
		if (i == 0) {
			plain_len = len;
			plain_ok = true;
		} else if (plain_ok) {
			FUZZ_CHECK(len >= plain_len,
				   "escape %d made the output shorter (%zu < "
				   "%zu)",
				   (int)modes[i], len, plain_len);
		}
		free(out);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!t_json)
		LLVMFuzzerInitialize(NULL, NULL);
	const char *d = (const char *)data;
	part parts[2 + MAX_PARTS];
	size_t np = 0, from = 0;
	for (size_t i = 0; i <= size && np < 2 + MAX_PARTS; i++) {
		if (i == size || d[i] == SPLIT) {
			parts[np++] = (part){d + from, i - from};
			from = i + 1;
		}
	}
	partials ps = {.n = 0};
	for (size_t i = 2; i < np; i++) {
		const char *eq = memchr(parts[i].p, '=', parts[i].n);
		if (!eq)
			continue;
		ps.name[ps.n] = (part){parts[i].p, (size_t)(eq - parts[i].p)};
		ps.text[ps.n] = (part){eq + 1, parts[i].n - ps.name[ps.n].n - 1};
		ps.n++;
	}
	json_t *ctx = NULL;
	if (np > 1)
		ctx = json_loadb(parts[1].p, parts[1].n, JSON_DECODE_ANY, NULL);
	if (ctx)
		check_escaping(ctx);
	else
		ctx = json_pack("{s:s,s:[i,i],s:s,s:{s:s}}", "name", "Ada",
				"items", 1, 2, "html", "<b>&\"'</b>", "incident",
				"title", "Checkout API returns 500");

	im_template *u = NULL;
	char err[256] = "";
	int rc = mst_compile("fuzz", parts[0].p, parts[0].n,
			     np > 2 ? lookup : NULL, &ps, &u, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == IM_EINVAL, "mst_compile: %d", rc);
	if (rc == 0) {
		FUZZ_CHECK(u, "mst_compile: 0 without a template");
		check_compiled(u, ctx);
		mst_free(u);
	} else {
		unsigned line, col;
		FUZZ_CHECK(sscanf(err, "%u:%u:", &line, &col) == 2 && line > 0 &&
			       col > 0,
			   "mst_compile: error without line:column: %s", err);
	}
	json_decref(ctx);
	return 0;
}
