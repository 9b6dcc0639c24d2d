/* A plugin as built against the 1.0-1.2 headers: its key, verb and action
 * tables have no struct_size (the layouts are spelled out here, since the
 * current headers carry the 1.3 ones) and it declares ABI 1.0. The loader
 * must read them in that layout. With -DNO_SIZES it is instead a 1.3
 * plugin that forgot the sizes, which the loader must refuse. */
#include <stddef.h>

#include <im/im.h>

#ifndef NO_SIZES
typedef struct {
	const char *name;
	im_config_type type;
	const char *default_value;
	uint32_t flags;
	const char *description;
} key10;

typedef struct {
	const char *name, *usage, *summary;
} verb10;

typedef struct {
	const char *action_id, *verb;
} action10;

static const key10 keys[] = {
    {"channel", IM_CFG_STRING, "general", 0, "where"},
    {"retries", IM_CFG_INT, NULL, IM_CFG_REQUIRED, "how often"},
    {NULL, 0, NULL, 0, NULL},
};
static const verb10 verbs[] = {
    {"ping", "ping", "pings"},
    {"pong", "pong <n>", "answers"},
    {NULL, NULL, NULL},
};
static const action10 actions[] = {{"legacy_ping", "ping"}, {NULL, NULL}};
#define TABLE(t, x) ((const t *)(const void *)(x))
#define MINOR 0
#else
static const im_config_key keys[] = {
    {.name = "channel", .type = IM_CFG_STRING},
    {0},
};
static const im_command_verb verbs[] = {{0}};
static const im_command_action actions[] = {{0}};
#define TABLE(t, x) (x)
#define MINOR IM_ABI_MINOR
#endif

static int invoke(void *state, const char *verb, const im_invocation *inv,
		  im_reply *reply)
{
	return 0;
}

static const im_command command = {
    .base = {sizeof(im_command), IM_COMPONENT_COMMAND, "legacy"},
    .verbs = TABLE(im_command_verb, verbs),
    .invoke = invoke,
    .actions = TABLE(im_command_action, actions),
};

static const im_component *const components[] = {&command.base, NULL};

static int create(const im_host *host, im_instance *inst,
		  const json_t *config, void **state)
{
	*state = NULL;
	return 0;
}

static const im_plugin_desc desc = {
    .magic = IM_PLUGIN_MAGIC,
    .abi_major = 1,
    .abi_minor = MINOR,
    .struct_size = offsetof(im_plugin_desc, destroy) + sizeof(void *),
    .name = PLUGIN_NAME,
    .version = "1.0.0",
    .license = "MIT",
    .components = components,
    .config_keys = TABLE(im_config_key, keys),
    .create = create,
};

IM_PLUGIN_DEFINE(desc)
