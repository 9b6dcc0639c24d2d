/*
 * core/config private interface, shared by the files of core/config only.
 *
 * The pipeline per file: yaml.c turns YAML text into an imc_node tree (kept
 * as text with lines), convert.c turns that tree into JSON while expanding
 * ${VAR}, typing plain scalars and recording "file:line" for every key path,
 * config.c merges files and answers look-ups, schema.c checks the core
 * sections, keys.c validates plugin key tables. Nothing here is installed.
 */
#ifndef IM_CORE_CONFIG_PRIVATE_H
#define IM_CORE_CONFIG_PRIVATE_H

#include <stddef.h>

#include <jansson.h>

#include <im/types.h>

#include "config/config.h"

#define IMC_INSTANCES "plugins.instances"
#define IMC_MAX_DEPTH 64

typedef enum imc_kind { IMC_SCALAR, IMC_MAP, IMC_SEQ } imc_kind;

typedef struct imc_node imc_node;
struct imc_node {
	imc_kind kind;
	int line;          /* 1-based line where the node starts */
	int key_line;      /* line of its key in the parent mapping, or 0 */
	char *key;         /* key in the parent mapping, or NULL */
	char *text;        /* scalars: the text as written, unexpanded */
	int plain;         /* scalars: unquoted, so subject to typing */
	imc_node **kids;   /* mappings and sequences, in document order */
	size_t nkids, cap;
	char *pkey;        /* parser state: key waiting for its value */
	int pkey_line;
};

struct im_config {
	char *dir;    /* absolute folder, "" for strings */
	json_t *root; /* merged tree */
	json_t *locs; /* key path -> "file:line" */
};

/* yaml.c: parses one YAML text. *root is NULL for an empty stream. */
int imc_yaml_parse(const char *file, const char *text, size_t len,
		   imc_node **root, char *err, size_t errlen);
void imc_node_free(imc_node *n);

/* convert.c: node tree -> JSON. Records locations in `locs` (may be NULL)
 * under `path` ("" for the root). `expand` enables ${VAR}. */
int imc_convert(const char *file, const imc_node *n, const char *path,
		int expand, json_t *locs, json_t **out, char *err,
		size_t errlen);
/* Types a plain scalar: null, bool, integer, real or string. */
json_t *imc_type_plain(const char *text);
/* Parses a YAML value (any node kind) without ${VAR} expansion; used for
 * the defaults of key tables. */
int imc_parse_value(const char *text, json_t **out, char *err, size_t errlen);

/* The [label] of an instance entry: its id value as text, malloc'd; NULL
 * when there is no usable id (absent, null, not a scalar) or no memory. */
char *imc_id_text(const json_t *id);
/* Whether the instance entry's label equals s[0..n). */
int imc_label_eq(const json_t *item, const char *s, size_t n);

/* malloc'd "base.key" / "base[label]"; NULL on allocation failure. */
char *imc_path_key(const char *base, const char *key);
char *imc_path_index(const char *base, const char *label);

/* "a string", "a list", ... for messages. */
const char *imc_type_name(const json_t *v);

/* err helpers: always NUL-terminated, truncated safely. */
void imc_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Writes "<where path>: <path>: <msg>" (where falls back to the nearest
 * parent with a location) and returns IM_ECONFIG. cfg may be NULL. */
int imc_fail(const im_config *cfg, char *err, size_t errlen, const char *path,
	     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
const char *imc_where_up(const im_config *cfg, const char *path);

/* Writes "a, b, c" (the names of a NULL-name-terminated table walk) into
 * buf; `name_at` returns the i-th name or NULL at the end. */
void imc_join_names(char *buf, size_t len, const void *table,
		    const char *(*name_at)(const void *table, size_t i));

#endif
