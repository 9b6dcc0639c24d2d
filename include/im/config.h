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

typedef struct im_config_key {
	const char *name;          /* key under the instance's `config:` */
	im_config_type type;
	const char *default_value; /* YAML text of the default, or NULL */
	uint32_t flags;            /* IM_CFG_* */
	const char *description;   /* one line, shown by `im plugins info` */
} im_config_key;

#ifdef __cplusplus
}
#endif
#endif
