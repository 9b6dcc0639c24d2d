/* plugins/teams - the Microsoft Teams connector (Bot Framework): message
 * rules (rules.c), the token (token.c), Bot Connector calls (api.c),
 * conversation references (refs.c), inbound activities (activity.c) and
 * the component (plugin.c, deliver.c). */
#ifndef IM_TEAMS_H
#define IM_TEAMS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include <im/im.h>

#include "api.h"
#include "refs.h"
#include "token.h"

/* The instance's settings (host->config_fill). */
typedef struct tms_cfg {
	const char *app_id;
	const char *app_password;
	const char *tenant_id;
	const char *openid_metadata_url;
	const char *login_url;
	const char *service_url;
	const char *default_channel;
	const json_t *notification_channels;
	const json_t *allowed_tenants;
	int64_t timeout_ms;
} tms_cfg;

typedef struct tms {
	const im_host *host;
	im_instance *inst;
	tms_cfg cfg;
	tms_token *token;
	tms_refs *refs;
	tms_api api;
} tms;

/* deliver.c */
int tms_send(void *state, const im_send *msg, im_send_result *res);
const char *tms_pick_channel(const tms *t, const char *want);
/* host->http_fetch as the parts' callbacks. */
int tms_http(void *ud, const char *method, const char *url,
	     const char *bearer, const char *json_body, tms_answer *out);
int tms_login_post(void *ud, const char *url, const char *form, long *status,
		   char **body);

extern const im_platform_rules tms_rules;
int tms_fit_payload(json_t *payload, const im_payload_ops *ops);

#endif
