/* core/template private: the loaded set and the helpers its files share. */
#ifndef IM_CORE_TEMPLATE_INTERNAL_H
#define IM_CORE_TEMPLATE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "template/template.h"

/* What a connector component declared for its platform (im_platform_rules
 * and fit_payload), compiled for fast escaping. A platform without a
 * loaded connector has no tpl_rules: no escaping, no limits. */
typedef struct tpl_rules {
	char *platform;
	const im_platform_rules *rules; /* NULL: nothing declared */
	int (*fit)(json_t *payload, const im_payload_ops *ops);
	/* Per byte: TPL_BACKSLASH, TPL_REPLACE, TPL_DEFUSE bits. */
	unsigned char cls[256];
	const char *repl[128];     /* what an ASCII character becomes */
	const char *const *defuse; /* sequences, NULL-ended, or NULL */
	const char *const *mentions;
	const char *const *emoji;  /* 5 entries, or NULL */
	const int64_t *color;      /* 5 entries, or NULL */
	const char *outs[128];     /* distinct replace outputs, NULL-ended */
	bool has_backslash;
} tpl_rules;

#define TPL_BACKSLASH 1u
#define TPL_REPLACE 2u
#define TPL_DEFUSE 4u

/* The rules of `platform` in the set, or NULL. */
const tpl_rules *tpl_rules_of(const im_template_set *set,
			      const char *platform);
/* Fills r from a connector's declaration (load.c, rules.c). */
int tpl_rules_init(tpl_rules *r, const char *platform,
		   const im_platform_rules *rules,
		   int (*fit)(json_t *, const im_payload_ops *));

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
	char *name; /* "chat/declare" */
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
	tpl_rules *rules;   /* one per platform with a connector */
	size_t n_rules;
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

/* escape.c: a copy of `ctx` with every string escaped by the rules
 * (machine values kept), plus severity_emoji / severity_color when the
 * rules declare them. `r` may be NULL: control characters are dropped,
 * nothing else changes. */
json_t *tpl_prepare_context(const tpl_rules *r, const json_t *ctx);
/* Cuts string `s` to at most `max` characters on a UTF-8 boundary,
 * ending in "…", without splitting what the rules' escaping made. 1 when
 * cut. */
int tpl_truncate(json_t *s, size_t max, const tpl_rules *r);
size_t tpl_utf8_len(const char *s, size_t n);

/* limits.c: holds `payload` to the platform's limits through the
 * connector's fit_payload (repairs what a cut can repair) and reports the
 * rest. Returns the number of problems. */
int tpl_enforce(const tpl_rules *r, json_t *payload, tpl_report *rep);

/* render.c: one variant, no fallback. */
int tpl_render_variant(const tpl_variant *v, const tpl_rules *r,
		       const json_t *prepared, json_t **payload,
		       tpl_report *rep);

/* The im_template_errors_total counter for template `name`. */
void tpl_count_error(const char *name);

#endif
