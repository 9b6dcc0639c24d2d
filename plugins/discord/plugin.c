/* discord.so: the Discord connector. Interactions in at
 * /hooks/<instance>/interactions (inbound.c), notifications out
 * (deliver.c), the Gateway when `gateway: true` (gateway.c), status and
 * sync-commands (status.c, cmds.c). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "discord.h"

#define KEY(name, type, def, flags, doc, member, how)                         \
	{IM_CONFIG_KEY_HEADER, name, type, def, flags, doc,                  \
	 IM_CONFIG_STORE(dsc_cfg, member, how)}

static const im_config_key keys[] = {
    KEY("application_id", IM_CFG_STRING, "\"\"", 0,
	"the application's id (Developer Portal > General Information; "
	"DISCORD_APPLICATION_ID)",
	application_id, IM_STORE_STRING),
    KEY("public_key", IM_CFG_STRING, "\"\"", 0,
	"the application's public key, 64 hex characters: interactions are "
	"verified with it (DISCORD_PUBLIC_KEY)",
	public_key, IM_STORE_STRING),
    KEY("bot_token", IM_CFG_STRING, "\"\"", IM_CFG_SECRET,
	"the bot's token (Developer Portal > Bot; DISCORD_BOT_TOKEN)",
	bot_token, IM_STORE_STRING),
    KEY("guild_ids", IM_CFG_LIST, "[]", 0,
	"guilds where sync-commands registers /incident (appears at once); "
	"empty: global (may take up to an hour)",
	guild_ids, IM_STORE_JSON),
    KEY("api_base_url", IM_CFG_STRING, "https://discord.com/api/v10", 0,
	"Discord's REST API", api_base_url, IM_STORE_STRING),
    KEY("gateway", IM_CFG_BOOL, "true", 0,
	"keep a Gateway link: the bot shows online (interactions work "
	"without it)",
	gateway, IM_STORE_BOOL),
    KEY("intents", IM_CFG_LIST, "[GUILDS, GUILD_MESSAGES]", 0,
	"Gateway intents by name; MESSAGE_CONTENT, GUILD_MEMBERS and "
	"GUILD_PRESENCES are privileged (enable them in the Developer "
	"Portal first)",
	intents, IM_STORE_JSON),
    KEY("default_channel", IM_CFG_STRING, "\"\"", 0,
	"channel id for notifications without a channel", default_channel,
	IM_STORE_STRING),
    KEY("notification_channels", IM_CFG_MAP, "{}", 0,
	"channel id per severity, e.g. {SEV-1: \"1300000000000000001\"}",
	notification_channels, IM_STORE_JSON),
    KEY("timeout", IM_CFG_DURATION, "10s", 0, "per REST request",
	timeout_ms, IM_STORE_MS),
    KEY("invalid_limit", IM_CFG_INT, "1000", 0,
	"stop sending after this many 401/403/429 answers in 10 minutes "
	"(Discord bans the IP at 10,000)",
	invalid_limit, IM_STORE_INT),
    {0},
};

static void dsc_free(dsc *d)
{
	if (!d)
		return;
	dsc_gw_free(d->gw);
	dsc_rest_free(d->rest);
	dsc_seen_free(d->seen);
	json_decref(d->catalog);
	json_decref(d->channel_problems);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

static int start(void *state)
{
	dsc *d = state;
	return d->gw ? dsc_gw_start(d->gw) : 0;
}

static void stop(void *state)
{
	dsc *d = state;
	if (d->gw)
		dsc_gw_stop(d->gw);
}

/* Settings that cannot work: the reason goes to the log. */
static int check(dsc *d)
{
	const im_host *h = d->host;
	uint64_t v;
	if (!dsc_hex_decode(d->cfg.public_key, d->public_key, 32)) {
		IM_ERROR(h, d->inst, "public_key: expected the 64 hex "
				     "characters of the application's public "
				     "key (Developer Portal > General "
				     "Information)");
		return IM_ECONFIG;
	}
	if (!dsc_snowflake(d->cfg.application_id, &v)) {
		IM_ERROR(h, d->inst, "application_id: expected the "
				     "application's numeric id");
		return IM_ECONFIG;
	}
	char bad[64];
	if (dsc_intents(d->cfg.intents, bad, sizeof(bad)) < 0) {
		IM_ERROR(h, d->inst, "intents: unknown intent '%s' (names like "
				     "GUILDS, GUILD_MESSAGES, MESSAGE_CONTENT)",
			 bad);
		return IM_ECONFIG;
	}
	size_t i;
	json_t *g;
	json_array_foreach(d->cfg.guild_ids, i, g)
	{
		if (!dsc_snowflake(json_string_value(g), &v)) {
			IM_ERROR(h, d->inst, "guild_ids: entry %zu is not a guild "
					     "id (quote it: \"1200...\")",
				 i + 1);
			return IM_ECONFIG;
		}
	}
	return 0;
}

static int create(const im_host *host, im_instance *inst, const json_t *cfg,
		  void **state)
{
	(void)cfg;
	if (sodium_init() < 0)
		return IM_EIO;
	dsc *d = calloc(1, sizeof(*d));
	if (!d)
		return IM_ENOMEM;
	d->host = host;
	d->inst = inst;
	d->id = host->instance_id(inst);
	pthread_mutex_init(&d->mu, NULL);
	d->channel_problems = json_object();
	int rc = host->config_fill(inst, &d->cfg, sizeof(d->cfg));
	if (rc) {
		dsc_free(d);
		return IM_ECONFIG;
	}
	if (!*d->cfg.application_id || !*d->cfg.public_key ||
	    !*d->cfg.bot_token) {
		host->set_state(inst, IM_STATE_UNCONFIGURED,
				"set application_id (DISCORD_APPLICATION_ID), "
				"public_key (DISCORD_PUBLIC_KEY) and bot_token "
				"(DISCORD_BOT_TOKEN) from the Developer Portal");
		dsc_free(d);
		return IM_EUNCONFIGURED;
	}
	if ((rc = check(d)) != 0) {
		dsc_free(d);
		return rc;
	}
	snprintf(d->user_agent, sizeof(d->user_agent),
		 "DiscordBot (https://github.com/im-chatops/im, 1.0.0)");
	d->seen = dsc_seen_new();
	d->rest = dsc_rest_new(d);
	if (d->cfg.gateway)
		d->gw = dsc_gw_new(d);
	if (!d->seen || !d->rest || (d->cfg.gateway && !d->gw)) {
		dsc_free(d);
		return IM_ENOMEM;
	}
	static const char *const labels[] = {"instance", NULL};
	d->m_invalid = host->metric(
	    inst, "discord_invalid_requests",
	    "401, 403 and 429 answers from Discord in the last 10 minutes; "
	    "sending stops at invalid_limit (Discord bans the IP at 10,000)",
	    IM_METRIC_GAUGE, labels);
	rc = host->route_add(inst, "POST", "interactions", dsc_on_interactions);
	if (rc) {
		dsc_free(d);
		return rc;
	}
	*state = d;
	return 0;
}

static void destroy(void *state)
{
	dsc_free(state);
}

static const im_connector connector = {
    .base = {.struct_size = sizeof(im_connector),
	     .kind = IM_COMPONENT_CONNECTOR,
	     .name = "discord"},
    .platform = "discord",
    .start = start,
    .stop = stop,
    .status = dsc_status,
    .answer = dsc_answer,
    .followup = dsc_followup,
    .send = dsc_send,
    /* 5 messages per 5 s per channel; 50 requests a second per bot,
     * kept a little under. */
    .rate_per_channel = 1.0,
    .burst_per_channel = 5,
    .rate_global = 45,
    .rules = &dsc_rules,
    .fit_payload = dsc_fit_payload,
    .action = dsc_action,
};

static const im_component *const components[] = {&connector.base, NULL};

static const im_plugin_desc desc = {
    IM_PLUGIN_HEADER,
    .name = "discord",
    .version = "1.0.0",
    .description = "Discord connector: signed interactions (/incident, "
		   "buttons), embed notifications, Gateway presence, "
		   "sync-commands",
    .vendor = "im",
    .license = "MIT",
    .components = components,
    .config_keys = keys,
    .create = create,
    .destroy = destroy,
};

IM_PLUGIN_DEFINE(desc)
