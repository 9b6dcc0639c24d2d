/*
 * im/formatter.h - a template-engine component (e.g. Mustache).
 *
 * Contract: the host picks an engine per template by file extension.
 * compile() turns template text into an engine-owned handle; render() may
 * then run on any thread, concurrently, with the same handle; release()
 * frees it once no render is running. Strings and JSON passed in are
 * borrowed. The text render() returns is allocated with malloc() and owned
 * by the caller, who frees it with free().
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
} im_formatter;

#ifdef __cplusplus
}
#endif
#endif
