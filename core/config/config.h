/*
 * core/config - conf.d loading: YAML -> jansson tree with a file:line for
 * every node, ${VAR} expansion, merging and validation.
 *
 * Contract: im_config objects are immutable after load and may be read from
 * any thread. Every error message has the shape
 *     <file>:<line>: <key path>: <reason>[; <what to do>]
 * e.g. "conf.d/10-chat.yaml:7: plugins.instances[chat].config.mode:
 * expected a string, got a list". Key paths use dots and, for instances,
 * [id].
 *
 * Loading rules:
 * - every *.yaml / *.yml file directly in the folder, in byte order of the
 *   name (00-server.yaml before 10-chat.yaml); none found is an error;
 * - later files win key by key (mappings merge recursively; scalars and
 *   lists replace), except `plugins.instances`, which merges by `id`:
 *   an entry with a known id merges into the earlier one;
 * - plain scalars become JSON: true/false -> bool, null/~/empty -> null,
 *   integers -> integer, decimals -> real, anything else -> string; quoted
 *   scalars are always strings;
 * - ${VAR} and ${VAR:-default} are expanded in every scalar before typing;
 *   ${VAR} with VAR unset is an error naming the variable; $$ is a literal $;
 * - YAML anchors/aliases and multi-document files are refused.
 */
#ifndef IM_CORE_CONFIG_H
#define IM_CORE_CONFIG_H

#include <stddef.h>

#include <jansson.h>

#include <im/config.h>

typedef struct im_config im_config;

/* Loads and merges the .yaml files of `dir`, then checks the core schema
 * (im_config_check_core). NULL on error, with the message in err. */
im_config *im_config_load_dir(const char *dir, char *err, size_t errlen);
/* Loads one YAML text as if it were a file named `name` (tests). Runs no
 * schema check. */
im_config *im_config_load_string(const char *name, const char *text,
				 char *err, size_t errlen);
void im_config_free(im_config *cfg);

/* Absolute path of the folder the config came from ("" for strings). */
const char *im_config_dir(const im_config *cfg);
/* The merged tree (borrowed). */
const json_t *im_config_root(const im_config *cfg);
/* Where the node at `path` was defined, "file:line", or NULL. `path` uses
 * the key-path syntax of error messages: "server.listen",
 * "plugins.instances[chat].config.mode", "subscriptions[0].channel". */
const char *im_config_where(const im_config *cfg, const char *path);

/* Typed look-ups by key path; return `def` when the key is absent or null. */
const char *im_config_string(const im_config *cfg, const char *path,
			     const char *def);
long long im_config_int(const im_config *cfg, const char *path, long long def);
int im_config_bool(const im_config *cfg, const char *path, int def);
const json_t *im_config_get(const im_config *cfg, const char *path);

/* Checks the top-level shape: known sections and keys (server, storage,
 * log, plugins, chatops, subscriptions), their types, instance entries
 * (id and module required, ids unique and [A-Za-z0-9_-]+). */
int im_config_check_core(const im_config *cfg, char *err, size_t errlen);

struct im_buf;
/* Appends the Markdown reference of the core keys (sections, types,
 * defaults, what each does) from the schema the checks use. */
void im_config_reference_core(struct im_buf *b);
/* One Markdown table row of n cells, each escaped to stay in its cell. */
void im_config_md_row(struct im_buf *b, const char *const *cells, size_t n);

/* Validates the instance's `config:` object against a plugin key table:
 * unknown key, wrong type, missing required key. On success *out is a new
 * object with defaults filled in (durations normalised to seconds as a
 * real). `path` names the object in messages
 * ("plugins.instances[chat].config"). */
int im_config_apply_keys(const im_config *cfg, const char *path,
			 const json_t *obj, const im_config_key *keys,
			 json_t **out, char *err, size_t errlen);

/* im_host.config_fill: zeroes `dst` (`size` bytes) and stores every key
 * of the (host-normalized) table that names a field, from `config` as
 * im_config_apply_keys made it. IM_EINVAL with the key and reason in
 * `why` when a field lies outside `size` or its store does not suit the
 * key's type. */
int im_config_fill(const im_config_key *keys, const json_t *config, void *dst,
		   size_t size, char *why, size_t whylen);

/* Parses "250ms", "5s", "2m", "1h", "1.5s" or a bare number of seconds.
 * Returns 0 and writes seconds, or IM_EINVAL. */
int im_config_parse_duration(const char *text, double *seconds);

/* Added: typed look-ups for the unit-valued core keys. A duration is a
 * number of seconds or a string im_config_parse_duration accepts; a size is
 * an integer of bytes or a string im_config_parse_size accepts. `def` when
 * the key is absent, null or not of that shape. */
double im_config_duration(const im_config *cfg, const char *path, double def);
long long im_config_size(const im_config *cfg, const char *path,
			 long long def);

/* Added: parses a byte size: "1048576", "100B", "512KiB", "1MiB", "2GiB",
 * "10kB", "5MB", "1.5GiB" (units case-insensitive; KB = 1000, KiB = 1024).
 * Returns 0 and writes bytes (rounded down), or IM_EINVAL. */
int im_config_parse_size(const char *text, unsigned long long *bytes);

#endif
