/* core/template private: the loaded set and the helpers its files share. */
#ifndef IM_CORE_TEMPLATE_INTERNAL_H
#define IM_CORE_TEMPLATE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>

#include "template/template.h"

typedef enum tpl_platform {
	TPL_OTHER = 0,
	TPL_SLACK,
	TPL_TEAMS,
	TPL_DISCORD,
} tpl_platform;

tpl_platform tpl_platform_of(const char *name);

/* One file that went into a compiled template: the main file first, then
 * every partial it read, for mapping problems to lines. */
typedef struct tpl_src {
	char *file;
	char *text;
	size_t len;
} tpl_src;

/* A template as found in one folder. */
typedef struct tpl_variant {
	bool present;
	bool is_default;
	char *file;
	char *ext;
	tpl_src *srcs;
	size_t n_srcs;
	const im_formatter *fmt;
	void *fstate;
	const char *engine; /* instance id of the formatter */
	im_template *tpl;   /* NULL when it did not compile */
	char *error;        /* "file:line:col: reason" when it did not */
} tpl_variant;

typedef struct tpl_entry {
	char *name; /* "slack/declare" */
	char *platform, *event;
	tpl_variant over, def;
} tpl_entry;

struct im_template_set {
	atomic_int refs;
	char *default_dir;  /* NULL when none was found */
	char *override_dir; /* NULL when none, or the same as default_dir */
	char *public_url;   /* server.public_url, for sample incidents */
	tpl_entry *entries; /* sorted by name */
	size_t n, cap;
	json_t *problems;   /* load-time "file:line: why" strings */
};

/* The variant renders use: the override when it compiled, else the
 * default; NULL when neither did. */
const tpl_variant *tpl_active(const tpl_entry *e);
const tpl_entry *tpl_find(const im_template_set *set, const char *platform,
			  const char *event);

/* Where problems go while checking one rendered payload. */
typedef struct tpl_report {
	const tpl_variant *v;
	bool validate;  /* also report what render repairs silently */
	json_t *list;   /* problems, or NULL */
	char *first;    /* the first problem, for an error message */
	size_t firstlen;
	int count;
} tpl_report;

/* Adds "file:line: <message>" where line is the first line of the
 * variant's sources containing `needle` (line 1 of the main file when
 * none does or needle is NULL). */
void tpl_problem(tpl_report *rep, const char *needle, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Line (1-based) of `needle` in the variant's sources; *file names it. */
unsigned tpl_find_line(const tpl_variant *v, const char *needle,
		       const char **file);

/* escape.c: a copy of `ctx` with every string escaped for the platform
 * (machine values kept), plus severity_emoji / severity_color. */
json_t *tpl_prepare_context(tpl_platform p, const json_t *ctx);
/* Cuts string `s` to at most `max` characters on a UTF-8 boundary,
 * ending in "…", without splitting a platform escape. 1 when cut. */
int tpl_truncate(json_t *s, size_t max, tpl_platform p);
size_t tpl_utf8_len(const char *s, size_t n);

/* limits.c: applies the platform's limits to `payload` (repairs what a
 * cut can repair) and reports the rest. Returns the number of problems. */
int tpl_enforce(tpl_platform p, json_t *payload, tpl_report *rep);

/* render.c: one variant, no fallback. */
int tpl_render_variant(const tpl_variant *v, tpl_platform p,
		       const json_t *prepared, json_t **payload,
		       tpl_report *rep);

/* The im_template_errors_total counter for template `name`. */
void tpl_count_error(const char *name);

#endif
