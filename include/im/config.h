/*
 * im/config.h - the configuration-key table a plugin declares.
 *
 * Contract: a plugin points its descriptor at a static array of
 * im_config_key, ended by an entry whose name is NULL. The host validates
 * every instance's `config:` block against it before start and before every
 * reload (unknown key, wrong type, missing required key), fills in defaults,
 * and hands the result to create() as a borrowed jansson object. Values of
 * keys flagged IM_CFG_SECRET are redacted from every log line.
 */
#ifndef IM_CONFIG_H
#define IM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum im_config_type {
	IM_CFG_STRING = 1,   /* YAML scalar kept as text */
	IM_CFG_INT = 2,      /* integer */
	IM_CFG_BOOL = 3,     /* true / false */
	IM_CFG_NUMBER = 4,   /* integer or real */
	IM_CFG_DURATION = 5, /* "250ms", "5s", "2m", "1h" or seconds as a number */
	IM_CFG_LIST = 6,     /* sequence */
	IM_CFG_MAP = 7,      /* mapping */
} im_config_type;

enum {
	IM_CFG_REQUIRED = 1u << 0, /* must be present (an empty string counts) */
	IM_CFG_SECRET = 1u << 1,   /* redact the value in logs and listings */
};

/* How config_fill stores a key in the plugin's struct (since 1.3). */
typedef enum im_config_store {
	IM_STORE_NONE = 0,   /* not stored (read it from host->config) */
	IM_STORE_STRING = 1, /* const char *, borrowed; NULL when absent */
	IM_STORE_INT = 2,    /* int64_t (INT) */
	IM_STORE_BOOL = 3,   /* bool (BOOL) */
	IM_STORE_DOUBLE = 4, /* double (NUMBER, INT; DURATION in seconds) */
	IM_STORE_MS = 5,     /* int64_t milliseconds (DURATION) */
	IM_STORE_JSON = 6,   /* const json_t *, borrowed (LIST, MAP, any) */
} im_config_store;

/* One key. A table is read with the stride of its first entry's
 * struct_size (since 1.3; plugins built against 1.0-1.2 use the layout
 * without struct_size, offset and store, and the host reads them as
 * such). Write entries with IM_CONFIG_KEY_HEADER first:
 *   {IM_CONFIG_KEY_HEADER, .name = "mode", .type = IM_CFG_STRING,
 *    .default_value = "http", IM_CONFIG_STORE(my_cfg, mode, IM_STORE_STRING)}
 */
typedef struct im_config_key {
	uint32_t struct_size;      /* sizeof(im_config_key); since 1.3 */
	const char *name;          /* key under the instance's `config:` */
	im_config_type type;
	const char *default_value; /* YAML text of the default, or NULL */
	uint32_t flags;            /* IM_CFG_* */
	const char *description;   /* one line, shown by `im plugins info` */
	/* Since 1.3: where host->config_fill puts the value, and how. */
	size_t offset;
	uint32_t store; /* im_config_store */
} im_config_key;

#define IM_CONFIG_KEY_HEADER .struct_size = sizeof(im_config_key)
#define IM_CONFIG_STORE(st, member, how)                                     \
	.offset = offsetof(st, member), .store = (how)

#ifdef __cplusplus
}
#endif
#endif
