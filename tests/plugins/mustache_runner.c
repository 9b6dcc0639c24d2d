/* The mustache engine loaded through the real registry, and the runner
 * for case files in the spec's JSON shape: see mustache_runner.h. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mustache_runner.h"

const im_formatter *fm;
void *fstate;

static im_config *cfg;
static im_snapshot *snap;

void load_engine(void)
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

void unload_engine(void)
{
	im_registry_shutdown();
	im_config_free(cfg);
}

int spec_partial(void *ud, const char *name, const char **text,
		 size_t *len)
{
	const json_t *p = json_object_get(ud, name);
	*text = json_string_value(p);
	*len = json_string_length(p);
	return 0;
}

/* One case: true when it renders exactly "expected". */
static bool run_case(const char *file, size_t i, const json_t *t)
{
	const char *name = json_string_value(json_object_get(t, "name"));
	const json_t *tpl = json_object_get(t, "template");
	const json_t *want = json_object_get(t, "expected");
	json_t *partials = json_object_get(t, "partials");
	if (!name || !json_is_string(tpl) || !json_is_string(want)) {
		cr_expect(false, "%s / case %zu: needs string name, template "
				 "and expected",
			  file, i);
		return false;
	}
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
	cr_expect(ok, "%s / %s: rc %d %s\n  got:  [%s]\n  want: [%s]", file,
		  name, rc, err, out ? out : "", json_string_value(want));
	free(out);
	if (h)
		fm->release(fstate, h);
	return ok;
}

int run_cases(const char *dir, const char *file)
{
	cr_assert(dir && *dir, "no folder for %s", file);
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s.json", dir, file);
	json_error_t jerr;
	json_t *doc = json_load_file(path, 0, &jerr);
	cr_assert(doc, "%s:%d: %s", path, jerr.line, jerr.text);
	const json_t *tests = json_object_get(doc, "tests");
	size_t total = json_array_size(tests), pass = 0, i;
	cr_assert(total > 0, "%s: no tests", path);
	const json_t *t;
	json_array_foreach(tests, i, t)
		pass += run_case(file, i, t);
	printf("mustache cases %-14s %zu/%zu passed\n", file, pass, total);
	fflush(stdout);
	json_decref(doc);
	return (int)(total - pass);
}
