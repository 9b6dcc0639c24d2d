/* mustache: the Mustache template engine as a formatter component.
 *
 * Serves files ending in .mustache. Spec v1.x (comments, delimiters,
 * interpolation, inverted, partials, sections; no lambdas). Partials are
 * resolved while compiling (compile_with), so a compiled handle is
 * self-contained and immutable: render() runs on any thread, concurrently,
 * on a shared handle. The instance keeps no mutable state. */
#include <stdlib.h>

#include <jansson.h>

#include <im/im.h>

#include "mustache.h"

typedef struct engine {
	const im_host *host;
	im_instance *inst;
} engine;

static int mst_compile_with(void *state, const char *name, const char *text,
			    size_t len, im_partial_fn lookup, void *ud,
			    im_template **out, char *err, size_t errlen)
{
	if (!out || (!text && len))
		return IM_EINVAL;
	return mst_compile(name, text ? text : "", len, lookup, ud, out, err,
			   errlen);
}

static int mst_compile_plain(void *state, const char *name, const char *text,
			     size_t len, im_template **out, char *err,
			     size_t errlen)
{
	return mst_compile_with(state, name, text, len, NULL, NULL, out, err,
				errlen);
}

static int mst_render_fn(void *state, const im_template *tpl,
			 const json_t *context, im_escape escape, char **out,
			 size_t *out_len)
{
	if (!tpl || !out)
		return IM_EINVAL;
	if (escape != IM_ESCAPE_NONE && escape != IM_ESCAPE_HTML &&
	    escape != IM_ESCAPE_JSON)
		return IM_EINVAL;
	return mst_render(tpl, context, escape, out, out_len);
}

static void mst_release(void *state, im_template *tpl)
{
	mst_free(tpl);
}

static int create(const im_host *host, im_instance *inst,
		  const json_t *config, void **state)
{
	engine *e = calloc(1, sizeof(*e));
	if (!e)
		return IM_ENOMEM;
	e->host = host;
	e->inst = inst;
	*state = e;
	return 0;
}

static void destroy(void *state)
{
	free(state);
}

static const char *const extensions[] = {"mustache", NULL};

static const im_formatter formatter = {
    .base = {.struct_size = sizeof(im_formatter),
	     .kind = IM_COMPONENT_FORMATTER,
	     .name = "mustache"},
    .extensions = extensions,
    .compile = mst_compile_plain,
    .render = mst_render_fn,
    .release = mst_release,
    .compile_with = mst_compile_with,
};

static const im_component *const components[] = {&formatter.base, NULL};

static const im_plugin_desc desc = {
    IM_PLUGIN_HEADER,
    .name = "mustache",
    .version = "1.0.0",
    .description = "Mustache templates (spec v1.x, partials, set "
		   "delimiters) for chat message payloads",
    .vendor = "im",
    .license = "MIT",
    .components = components,
    .config_keys = NULL,
    .create = create,
    .destroy = destroy,
};

IM_PLUGIN_DEFINE(desc)
