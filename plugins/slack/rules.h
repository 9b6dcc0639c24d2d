/* plugins/slack - how incident text is written in Slack messages, and the
 * Block Kit limits a rendered payload is held to (rules.c). */
#ifndef IM_SLACK_RULES_H
#define IM_SLACK_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include <im/im.h>

extern const im_platform_rules slk_rules;
int slk_fit_payload(json_t *payload, const im_payload_ops *ops);

#endif
