/*
 * im/plugin.h - what a plugin .so exports: one entry symbol returning a
 * static descriptor.
 *
 * Contract:
 * - The .so exports exactly `im_plugin_entry` (build with
 *   -fvisibility=hidden; IM_PLUGIN_EXPORT marks the entry). It only returns a
 *   pointer to static const data; work starts in create().
 * - A plugin is a class; the host makes one instance per `plugins.instances`
 *   entry naming the module, calling create() with the validated config. The
 *   state create() returns is passed to every component function and to
 *   destroy(). No mutable globals: two instances must not share state.
 * - create() and destroy() run on the host's control thread, never
 *   concurrently with each other for the same module. destroy() runs after
 *   every in-flight call on the instance has returned.
 * - create() returns 0 (running), IM_EUNCONFIGURED (credentials missing: the
 *   instance is listed as unconfigured and serves nothing; the reason comes
 *   from host->set_state) or another IM_E* code (the instance failed; give
 *   the reason with host->set_state or host->log first).
 * - Structs only grow at their end; the host reads `struct_size` bytes.
 */
#ifndef IM_PLUGIN_H
#define IM_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "host.h"
#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum im_component_kind {
	IM_COMPONENT_CONNECTOR = 1,
	IM_COMPONENT_FORMATTER = 2,
	IM_COMPONENT_COMMAND = 3,
} im_component_kind;

/* First member of every component struct (im_connector, im_formatter,
 * im_command). `struct_size` is the size of the whole component struct. */
typedef struct im_component {
	uint32_t struct_size;
	uint32_t kind; /* im_component_kind */
	const char *name;
} im_component;

typedef struct im_plugin_desc {
	uint32_t magic;      /* IM_PLUGIN_MAGIC */
	uint16_t abi_major;  /* IM_ABI_MAJOR the plugin was built with */
	uint16_t abi_minor;  /* IM_ABI_MINOR the plugin was built with */
	uint32_t struct_size; /* sizeof(im_plugin_desc) */
	const char *name;    /* module name, matches the file name sans .so */
	const char *version; /* the plugin's own version, e.g. "1.2.0" */
	const char *description;
	const char *vendor;
	const char *license; /* SPDX identifier */
	/* NULL-terminated; may be empty but not NULL. */
	const im_component *const *components;
	/* Config-key table ended by {NULL}; NULL means no keys. */
	const im_config_key *config_keys;
	/* Makes one instance. `config` is borrowed until destroy(). */
	int (*create)(const im_host *host, im_instance *inst,
		      const json_t *config, void **state);
	/* Frees what create() made. May be NULL when create() made nothing. */
	void (*destroy)(void *state);
} im_plugin_desc;

#define IM_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef const im_plugin_desc *(*im_plugin_entry_fn)(void);

/* Declares the entry point. Use once per .so:
 *   static const im_plugin_desc desc = { IM_PLUGIN_HEADER, .name = ... };
 *   IM_PLUGIN_DEFINE(desc)
 */
#define IM_PLUGIN_HEADER                                                      \
	.magic = IM_PLUGIN_MAGIC, .abi_major = IM_ABI_MAJOR,                  \
	.abi_minor = IM_ABI_MINOR, .struct_size = sizeof(im_plugin_desc)

#define IM_PLUGIN_DEFINE(desc)                                                \
	IM_PLUGIN_EXPORT const im_plugin_desc *im_plugin_entry(void);         \
	IM_PLUGIN_EXPORT const im_plugin_desc *im_plugin_entry(void)          \
	{                                                                     \
		return &(desc);                                               \
	}

#ifdef __cplusplus
}
#endif
#endif
