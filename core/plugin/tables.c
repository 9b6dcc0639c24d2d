/* A plugin's tables (config keys, command verbs and actions) copied into
 * host memory in the current layout, once, when the module loads.
 *
 * Since ABI 1.3 every entry starts with struct_size and a table is read
 * with the stride of its first entry, so entries can grow. Plugins built
 * against 1.0-1.2 (descriptor abi_minor < 3) wrote the same fields without
 * struct_size; their tables are read in that layout. Everything else in
 * the host then indexes the normalized copies like plain arrays. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin/plugin.h"

/* The 1.0-1.2 layouts. */
typedef struct {
	const char *name;
	im_config_type type;
	const char *default_value;
	uint32_t flags;
	const char *description;
} legacy_key;
typedef struct {
	const char *name, *usage, *summary;
} legacy_verb;
typedef struct {
	const char *action_id, *verb;
} legacy_action;

#define END_OF(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))
#define MAX_ENTRIES 1024

bool im_abi_legacy_tables(uint16_t abi_minor)
{
	return abi_minor < 3;
}

/* Number of entries before the one whose name (at name_off) is NULL, read
 * with `stride`; -1 when there are more than MAX_ENTRIES. */
static long count(const void *table, size_t stride, size_t name_off)
{
	const char *p = table;
	for (long n = 0; n < MAX_ENTRIES; n++, p += stride) {
		const char *name;
		memcpy(&name, p + name_off, sizeof name);
		if (!name)
			return n;
	}
	return -1;
}

/* The stride of a 1.3+ table, checked against the smallest entry that
 * holds every 1.3 field the host needs (`min`). 0 with err otherwise. */
static size_t stride_of(const void *table, size_t name_off, size_t min,
			const char *what, char *err, size_t errlen)
{
	uint32_t size;
	memcpy(&size, table, sizeof size);
	/* An empty table ({0}) has no first entry to size it. */
	const char *name;
	memcpy(&name, (const char *)table + name_off, sizeof name);
	if (size == 0 && !name)
		return min;
	if (size < min || size > 4096 || size % sizeof(void *)) {
		snprintf(err, errlen,
			 "%s[0].struct_size is %u, not the size of the entry "
			 "(at least %zu); start every entry with its size "
			 "(IM_CONFIG_KEY_HEADER, IM_VERB, IM_ACTION)",
			 what, size, min);
		return 0;
	}
	return size;
}

static void *copy_table(const void *table, bool legacy, size_t legacy_size,
			size_t legacy_name_off, size_t min, size_t host_size,
			size_t host_name_off, const char *what,
			void (*from_legacy)(void *dst, const void *src),
			char *err, size_t errlen)
{
	size_t stride = legacy ? legacy_size
			       : stride_of(table, host_name_off, min, what,
					   err, errlen);
	if (!stride)
		return NULL;
	long n = count(table, stride, legacy ? legacy_name_off : host_name_off);
	if (n < 0) {
		snprintf(err, errlen, "%s has no end (more than %d entries); "
				      "end it with {0}",
			 what, MAX_ENTRIES);
		return NULL;
	}
	char *out = calloc((size_t)n + 1, host_size);
	if (!out) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	const char *src = table;
	for (long i = 0; i < n; i++, src += stride) {
		char *dst = out + (size_t)i * host_size;
		if (legacy)
			from_legacy(dst, src);
		else
			memcpy(dst, src, stride < host_size ? stride : host_size);
		uint32_t size = (uint32_t)host_size;
		memcpy(dst, &size, sizeof size);
	}
	return out;
}

static void key_from_legacy(void *dst, const void *src)
{
	const legacy_key *o = src;
	*(im_config_key *)dst = (im_config_key){
	    .name = o->name,
	    .type = o->type,
	    .default_value = o->default_value,
	    .flags = o->flags,
	    .description = o->description,
	};
}

static void verb_from_legacy(void *dst, const void *src)
{
	const legacy_verb *o = src;
	*(im_command_verb *)dst = (im_command_verb){
	    .name = o->name, .usage = o->usage, .summary = o->summary};
}

static void action_from_legacy(void *dst, const void *src)
{
	const legacy_action *o = src;
	*(im_command_action *)dst =
	    (im_command_action){.action_id = o->action_id, .verb = o->verb};
}

im_config_key *im_tables_keys(const im_config_key *keys, bool legacy,
			      char *err, size_t errlen)
{
	static const im_config_key none[1];
	return copy_table(keys ? (const void *)keys : (const void *)none,
			  legacy && keys, sizeof(legacy_key),
			  offsetof(legacy_key, name),
			  END_OF(im_config_key, description),
			  sizeof(im_config_key), offsetof(im_config_key, name),
			  "config_keys", key_from_legacy, err, errlen);
}

im_command_verb *im_tables_verbs(const im_command_verb *verbs, bool legacy,
				 char *err, size_t errlen)
{
	static const im_command_verb none[1];
	return copy_table(verbs ? (const void *)verbs : (const void *)none,
			  legacy && verbs, sizeof(legacy_verb),
			  offsetof(legacy_verb, name),
			  END_OF(im_command_verb, summary),
			  sizeof(im_command_verb),
			  offsetof(im_command_verb, name), "verbs",
			  verb_from_legacy, err, errlen);
}

im_command_action *im_tables_actions(const im_command_action *actions,
				     bool legacy, char *err, size_t errlen)
{
	static const im_command_action none[1];
	return copy_table(actions ? (const void *)actions : (const void *)none,
			  legacy && actions, sizeof(legacy_action),
			  offsetof(legacy_action, action_id),
			  END_OF(im_command_action, verb),
			  sizeof(im_command_action),
			  offsetof(im_command_action, action_id), "actions",
			  action_from_legacy, err, errlen);
}
