/* discord.so: the Discord connector component, for now with its message rules
 * only: templates of platform "discord" get Discord's escaping, severity values and
 * limits when an instance of it is configured. It sends nothing:
 * create() leaves the instance unconfigured (delivery arrives with the
 * Discord connector). Built for the tests, not installed. */
#include "discord.h"

static int create(const im_host *host, im_instance *inst, const json_t *cfg,
		  void **state)
{
	(void)cfg;
	*state = NULL;
	host->set_state(inst, IM_STATE_UNCONFIGURED,
			"message rules only: delivery arrives with the Discord "
			"connector");
	return IM_EUNCONFIGURED;
}

static void destroy(void *state)
{
	(void)state;
}

static const im_connector connector = {
    .base = {.struct_size = sizeof(im_connector),
	     .kind = IM_COMPONENT_CONNECTOR,
	     .name = "discord"},
    .platform = "discord",
    .rules = &dsc_rules,
    .fit_payload = dsc_fit_payload,
};

static const im_component *const components[] = {&connector.base, NULL};

static const im_plugin_desc desc = {
    IM_PLUGIN_HEADER,
    .name = "discord",
    .version = "0.1.0",
    .description = "Discord message rules (escaping, severity values, payload "
		   "limits) for the templates; no delivery yet",
    .vendor = "im",
    .license = "MIT",
    .components = components,
    .create = create,
    .destroy = destroy,
};

IM_PLUGIN_DEFINE(desc)
