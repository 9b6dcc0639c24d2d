/* teams.so: the Microsoft Teams connector (Bot Framework).
 *
 * Work in progress (issue 13): notifications go out through the Bot
 * Connector with the bot's client-credentials token; conversation
 * references are kept; inbound activities (commands, buttons) are not yet
 * served. Built for the tests, not installed, until they are. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "teams.h"

#define KEY(name, type, def, flags, doc, member, how)                         \
	{IM_CONFIG_KEY_HEADER, name, type, def, flags, doc,                  \
	 IM_CONFIG_STORE(tms_cfg, member, how)}

static const im_config_key keys[] = {
    KEY("app_id", IM_CFG_STRING, "\"\"", 0,
	"the bot's Microsoft App ID (TEAMS_APP_ID)", app_id, IM_STORE_STRING),
    KEY("app_password", IM_CFG_STRING, "\"\"", IM_CFG_SECRET,
	"a client secret of the app (TEAMS_APP_PASSWORD)", app_password,
	IM_STORE_STRING),
    KEY("tenant_id", IM_CFG_STRING, "\"\"", 0,
	"the app's tenant (single-tenant bots, all new ones); empty: legacy "
	"multi-tenant (token from botframework.com)",
	tenant_id, IM_STORE_STRING),
    KEY("openid_metadata_url", IM_CFG_STRING,
	"https://login.botframework.com/v1/.well-known/openidconfiguration",
	0, "where the keys that sign inbound activities are published",
	openid_metadata_url, IM_STORE_STRING),
    KEY("login_url", IM_CFG_STRING, "https://login.microsoftonline.com", 0,
	"token service; the token comes from {login_url}/{tenant}/oauth2/"
	"v2.0/token",
	login_url, IM_STORE_STRING),
    KEY("service_url", IM_CFG_STRING, "https://smba.trafficmanager.net/teams/",
	0, "Bot Connector URL for proactive sends to channels not yet heard "
	   "from",
	service_url, IM_STORE_STRING),
    KEY("default_channel", IM_CFG_STRING, "\"\"", 0,
	"channel conversation id (19:...@thread.tacv2) for notifications "
	"without a channel",
	default_channel, IM_STORE_STRING),
    KEY("notification_channels", IM_CFG_MAP, "{}", 0,
	"channel id per severity, e.g. {SEV-1: \"19:...@thread.tacv2\"}",
	notification_channels, IM_STORE_JSON),
    KEY("allowed_tenants", IM_CFG_LIST, "[]", 0,
	"tenants whose activities are accepted; empty: any", allowed_tenants,
	IM_STORE_JSON),
    KEY("timeout", IM_CFG_DURATION, "10s", 0,
	"per Bot Connector and login request", timeout_ms, IM_STORE_MS),
    {0},
};

static int kv_get(void *ud, const char *key, char **value)
{
	tms *t = ud;
	return t->host->kv_get(t->inst, key, value);
}

static int kv_put(void *ud, const char *key, const char *value)
{
	tms *t = ud;
	return t->host->kv_put(t->inst, key, value);
}

static void tms_free(tms *t)
{
	if (!t)
		return;
	tms_token_free(t->token);
	tms_refs_free(t->refs);
	free(t);
}

static int status(void *state, json_t **out)
{
	tms *t = state;
	/* Healthy when the login service gives the bot a token. */
	char tok[8192], why[320] = "";
	bool ok = tms_token_get(t->token, tok, sizeof tok, why, sizeof why) ==
		  0;
	json_t *list = tms_refs_list(t->refs);
	*out = json_pack("{s:b,s:s,s:o,s:I,s:s,s:s?}", "connected", ok, "mode",
			 "bot framework", "token", tms_token_status(t->token),
			 "conversations", (json_int_t)json_array_size(list),
			 "inbound", "not served yet (work in progress)",
			 "error", ok ? NULL : why);
	json_decref(list);
	return *out ? 0 : IM_ENOMEM;
}

static int create(const im_host *host, im_instance *inst, const json_t *cfg,
		  void **state)
{
	(void)cfg;
	tms *t = calloc(1, sizeof(*t));
	if (!t)
		return IM_ENOMEM;
	t->host = host;
	t->inst = inst;
	int rc = host->config_fill(inst, &t->cfg, sizeof(t->cfg));
	if (rc) {
		tms_free(t);
		return IM_ECONFIG;
	}
	if (!*t->cfg.app_id || !*t->cfg.app_password) {
		host->set_state(inst, IM_STATE_UNCONFIGURED,
				"set app_id (TEAMS_APP_ID) and app_password "
				"(TEAMS_APP_PASSWORD) from the bot's app "
				"registration, and tenant_id for a "
				"single-tenant bot");
		tms_free(t);
		return IM_EUNCONFIGURED;
	}
	tms_token_cfg tc = {.login_url = t->cfg.login_url,
			    .tenant = t->cfg.tenant_id,
			    .app_id = t->cfg.app_id,
			    .app_password = t->cfg.app_password,
			    .post = tms_login_post,
			    .ud = t};
	tms_kv kv = {kv_get, kv_put, t};
	t->token = tms_token_new(&tc);
	t->refs = tms_refs_new(&kv);
	t->api = (tms_api){.token = t->token, .http = tms_http, .ud = t};
	if (!t->token || !t->refs) {
		tms_free(t);
		return IM_ENOMEM;
	}
	*state = t;
	return 0;
}

static void destroy(void *state)
{
	tms_free(state);
}

static const im_connector connector = {
    .base = {.struct_size = sizeof(im_connector),
	     .kind = IM_COMPONENT_CONNECTOR,
	     .name = "teams"},
    .platform = "teams",
    .status = status,
    .send = tms_send,
    /* Per conversation about 7 sends a second; 60 in 30 s is the
     * binding one for a steady stream (PROTOCOLS.md). */
    .rate_per_channel = 2.0,
    .burst_per_channel = 7,
    .rate_global = 50,
    .rules = &tms_rules,
    .fit_payload = tms_fit_payload,
};

static const im_component *const components[] = {&connector.base, NULL};

static const im_plugin_desc desc = {
    IM_PLUGIN_HEADER,
    .name = "teams",
    .version = "0.2.0",
    .description = "Microsoft Teams connector (Bot Framework), in "
		   "progress: notifications and message rules; inbound "
		   "commands not yet served",
    .vendor = "im",
    .license = "MIT",
    .components = components,
    .config_keys = keys,
    .create = create,
    .destroy = destroy,
};

IM_PLUGIN_DEFINE(desc)
