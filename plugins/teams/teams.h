/* plugins/teams - Microsoft Teams' message rules (rules.c) and the
 * connector component that carries them (plugin.c). Delivery arrives with
 * the Teams connector; until then the component only declares the rules. */
#ifndef IM_TEAMS_H
#define IM_TEAMS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include <im/im.h>

extern const im_platform_rules tms_rules;
int tms_fit_payload(json_t *payload, const im_payload_ops *ops);

#endif
