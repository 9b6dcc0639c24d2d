/* plugins/discord - Discord's message rules (rules.c) and the connector
 * component that carries them (plugin.c). Delivery arrives with the
 * Discord connector; until then the component only declares the rules. */
#ifndef IM_DISCORD_H
#define IM_DISCORD_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include <im/im.h>

extern const im_platform_rules dsc_rules;
int dsc_fit_payload(json_t *payload, const im_payload_ops *ops);

#endif
