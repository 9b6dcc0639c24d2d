/* teams.so: the Microsoft Teams connector (Bot Framework): the bot's
 * messaging endpoint /hooks/<instance>/messages (inbound.c), notifications
 * through the Bot Connector (deliver.c), conversation references learnt
 * from every activity (refs.c) and status (status.c). */
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

static int jwt_fetch(void *ud, const char *url, char **body)
{
	tms *t = ud;
	im_http_call call = {.struct_size = sizeof(call),
			     .method = "GET",
			     .url = url,
			     .timeout_ms = (uint32_t)t->cfg.timeout_ms};
	im_http_result *r = NULL;
	int rc = t->host->http_fetch(t->inst, &call, &r);
	*body = NULL;
	if (rc == 0 && r && r->status == 200 && r->body &&
	    r->body_len <= TMS_JWT_MAX_BODY)
		*body = strdup(r->body);
	else if (rc == 0)
		rc = IM_EIO;
	if (rc && r)
		*body = strdup(r->error_text     ? r->error_text
			       : r->status == 200 ? "body too large"
						  : "HTTP error");
	if (r)
		t->host->http_result_free(r);
	return *body || rc ? rc : IM_ENOMEM;
}

static void tms_free(tms *t)
{
	if (!t)
		return;
	tms_jwt_free(t->jwt);
	tms_token_free(t->token);
	tms_refs_free(t->refs);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static int start(void *state)
{
	return tms_jobs_start(state);
}

static void stop(void *state)
{
	tms_jobs_stop(state);
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
	t->id = host->instance_id(inst);
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
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
	tms_jwt_cfg jc = {.app_id = t->cfg.app_id,
			  .openid_metadata_url = t->cfg.openid_metadata_url,
			  .tenant = t->cfg.tenant_id,
			  .login_url = t->cfg.login_url,
			  .fetch = jwt_fetch,
			  .ud = t};
	t->token = tms_token_new(&tc);
	t->refs = tms_refs_new(&kv);
	t->jwt = tms_jwt_new(&jc);
	t->api = (tms_api){.token = t->token, .http = tms_http, .ud = t};
	if (!t->token || !t->refs || !t->jwt) {
		tms_free(t);
		return IM_ENOMEM;
	}
	rc = host->route_add(inst, "POST", "messages", tms_on_messages);
	if (rc) {
		tms_free(t);
		return rc;
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
    .start = start,
    .stop = stop,
    .status = tms_status,
    .followup = tms_followup,
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
    .version = "1.0.0",
    .description = "Microsoft Teams connector (Bot Framework): commands "
		   "and card buttons in, Adaptive Card notifications out",
    .vendor = "im",
    .license = "MIT",
    .components = components,
    .config_keys = keys,
    .create = create,
    .destroy = destroy,
};

IM_PLUGIN_DEFINE(desc)
