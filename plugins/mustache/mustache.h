/*
 * mustache.h - private to the mustache plugin: the compiled form shared by
 * the parser (parse.c) and the renderer (render.c).
 *
 * A compiled template (struct im_template) is a tree of nodes plus a table
 * of the partials it reaches, each compiled once (so recursive partials
 * work). It is immutable after compile: any number of threads may render
 * it at once, each with its own output buffer and context stack.
 * Partial indentation ({{> p}} alone on an indented line) is applied at
 * render time to the partial's own template lines, never to the values
 * interpolated into them, which is what the spec asks for.
 */
#ifndef IM_MUSTACHE_PRIVATE_H
#define IM_MUSTACHE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include <im/im.h>

typedef enum mst_kind {
	MST_TEXT,     /* literal template text */
	MST_VAR,      /* {{x}}: escaped */
	MST_RAW,      /* {{{x}}} and {{& x}}: unescaped (but see render.c) */
	MST_SECTION,  /* {{#x}}..{{/x}} */
	MST_INVERTED, /* {{^x}}..{{/x}} */
	MST_PARTIAL,  /* {{> x}} */
} mst_kind;

/* A dotted name split at compile time; n == 0 is the implicit iterator. */
typedef struct mst_name {
	char **parts;
	size_t n;
} mst_name;

typedef struct mst_node mst_node;

typedef struct mst_block {
	mst_node *nodes;
	size_t n, cap;
} mst_block;

struct mst_node {
	mst_kind kind;
	/* Sections: the open / close tag stood alone on its line (and the
	 * line was removed). Partials: open_alone means indent applies. */
	bool open_alone, close_alone;
	const char *text; /* MST_TEXT: into a source copy the unit owns */
	size_t len;
	mst_name name;
	mst_block body;    /* sections */
	size_t partial;    /* MST_PARTIAL: index in unit->partials */
	char *indent;      /* MST_PARTIAL: whitespace before a lone tag */
	size_t indent_len;
};

typedef struct mst_partial {
	char *name;
	bool empty;  /* resolver said: absent, render as nothing */
	mst_block root;
} mst_partial;

struct im_template {
	char *name;
	mst_block root;
	mst_partial **partials;
	size_t n_partials, cap_partials;
	char **sources; /* copies of every source text the nodes point into */
	size_t n_sources, cap_sources;
	size_t size_hint; /* literal bytes: a first guess at output size */
};

/* Deepest nesting of sections, partials and contexts accepted. */
#define MST_MAX_DEPTH 100
#define MST_MAX_PARTIALS 256

/* parse.c: compiles `text` into a new unit. On error returns IM_EINVAL
 * (IM_ENOMEM) with "line:column: reason" in err. `lookup` may be NULL:
 * then every partial tag is an error. */
int mst_compile(const char *name, const char *text, size_t len,
		im_partial_fn lookup, void *ud, im_template **out, char *err,
		size_t errlen);
void mst_free(im_template *u);

/* render.c */
int mst_render(const im_template *u, const json_t *context, im_escape esc,
	       char **out, size_t *out_len);

#endif
