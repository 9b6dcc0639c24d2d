/*
 * im/formatter.h - a template-engine component (e.g. Mustache).
 *
 * Contract: the host picks an engine per template by file extension.
 * compile() turns template text into an engine-owned handle; render() may
 * then run on any thread, concurrently, with the same handle; release()
 * frees it once no render is running. Strings and JSON passed in are
 * borrowed. The text render() returns is allocated with malloc() and owned
 * by the caller, who frees it with free().
 *
 * Partials ({{> name}} in Mustache) are resolved when compiling, through
 * compile_with() and a lookup callback the host passes: the handle then
 * holds every partial it reaches, render() needs nothing more, and an
 * unknown partial is a compile error with its line and column.
 */
#ifndef IM_FORMATTER_H
#define IM_FORMATTER_H

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct im_template im_template; /* engine-private */

/* How interpolated values are escaped; chosen by the host per output. */
typedef enum im_escape {
	IM_ESCAPE_NONE = 0,
	IM_ESCAPE_HTML = 1, /* Mustache default */
	IM_ESCAPE_JSON = 2, /* output is JSON: escape as a JSON string body */
} im_escape;

/* Finds partial `name` for compile_with(), on the compiling thread and
 * only during that call. Returns 0 with *text / *len pointing at the
 * partial's source (borrowed until compile_with() returns); 0 with
 * *text = NULL when the partial does not exist and renders as nothing (the
 * Mustache spec's lenient lookup); or a negative IM_E* code (IM_ENOTFOUND)
 * when a missing partial is an error. */
typedef int (*im_partial_fn)(void *ud, const char *name, const char **text,
			     size_t *len);

typedef struct im_formatter {
	im_component base;              /* kind = IM_COMPONENT_FORMATTER */
	const char *const *extensions;  /* NULL-terminated, e.g. {"mustache"} */
	/* Compiles `text`. On error returns IM_EINVAL and writes
	 * "line:column: reason" into err. */
	int (*compile)(void *state, const char *name, const char *text,
		       size_t len, im_template **out, char *err, size_t errlen);
	/* Renders with `context` (borrowed). *out is malloc'd. */
	int (*render)(void *state, const im_template *tpl,
		      const json_t *context, im_escape escape, char **out,
		      size_t *out_len);
	void (*release)(void *state, im_template *tpl);
	/* Since 1.2: NULL when an engine predates it (the host copies
	 * components into zeroed memory). Like
	 * compile(), with partials resolved through lookup(ud, ...); errors
	 * inside a partial name it after the including tag's line:column.
	 * compile() treats every partial as unknown. */
	int (*compile_with)(void *state, const char *name, const char *text,
			    size_t len, im_partial_fn lookup, void *ud,
			    im_template **out, char *err, size_t errlen);
} im_formatter;

#ifdef __cplusplus
}
#endif
#endif
