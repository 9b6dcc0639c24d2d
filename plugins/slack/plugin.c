/* slack.so: the Slack connector. Config keys, one instance per workspace
 * (create/destroy), start/stop of Socket Mode, and the descriptor.
 *
 * Channels are configured by id only: a name ("#general") is refused at
 * create() because names change and chat.postMessage answers
 * channel_not_found for most of them. Empty credentials leave the
 * instance `unconfigured` (the server runs; status says what to set). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "rules.h"
#include "slack.h"

#define KEY(name, type, def, flags, doc, member, how)                         \
	{IM_CONFIG_KEY_HEADER, name, type, def, flags, doc,                  \
	 IM_CONFIG_STORE(slk_cfg, member, how)}

static const im_config_key keys[] = {
    KEY("mode", IM_CFG_STRING, "http", 0,
	"http (signed requests to /hooks/<id>/...) or socket (Socket Mode)",
	mode, IM_STORE_STRING),
    KEY("bot_token", IM_CFG_STRING, "\"\"", IM_CFG_SECRET,
	"bot token xoxb-... (SLACK_BOT_TOKEN)", bot_token, IM_STORE_STRING),
    KEY("signing_secret", IM_CFG_STRING, "\"\"", IM_CFG_SECRET,
	"signing secret that verifies Slack's requests (SLACK_SIGNING_SECRET)",
	signing_secret, IM_STORE_STRING),
    KEY("app_token", IM_CFG_STRING, "\"\"", IM_CFG_SECRET,
	"app-level token xapp-... with connections:write, for Socket Mode "
	"(SLACK_APP_TOKEN)",
	app_token, IM_STORE_STRING),
    KEY("api_base_url", IM_CFG_STRING, "https://slack.com/api", 0,
	"Web API base URL (tests point it at a fake)", api_base_url,
	IM_STORE_STRING),
    KEY("default_channel", IM_CFG_STRING, "\"\"", 0,
	"channel id (C0123ABC) for notifications without a channel",
	default_channel, IM_STORE_STRING),
    KEY("notification_channels", IM_CFG_MAP, "{}", 0,
	"channel id per severity, e.g. {SEV-1: C0CRITICAL}",
	notification_channels, IM_STORE_JSON),
    KEY("tls_ca_file", IM_CFG_STRING, "\"\"", 0,
	"extra CA bundle (PEM) trusted for the Socket Mode wss:// link",
	tls_ca_file, IM_STORE_STRING),
    KEY("dedupe_requests", IM_CFG_BOOL, "true", 0,
	"answer a signed request seen again within its 5-minute window (a "
	"retry or a replay) with 200 without running it again",
	dedupe_requests, IM_STORE_BOOL),
    {0},
};

static const char *or_empty(const char *v)
{
	return v ? v : "";
}

static void slk_free(slk *s)
{
	if (!s)
		return;
	slk_socket_free(s);
	slk_mac_free(s->mac);
	slk_dedup_free(s->dedup);
	slk_dedup_free(s->replays);
	json_decref(s->notify_channels);
	free(s->api_base);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* Refuses the instance with a reason an operator can act on. */
static int refuse(slk *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int refuse(slk *s, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	IM_ERROR(s->host, s->inst, "%s", why);
	s->host->set_state(s->inst, IM_STATE_FAILED, why);
	slk_free(s);
	return IM_ECONFIG;
}

/* A channel value must be an id; "" is allowed (not set). */
static bool channel_ok(const char *v)
{
	return !v || v[0] != '#';
}

static int check_config(slk *s)
{
	const slk_cfg *c = &s->cfg;
	const char *mode = or_empty(c->mode);
	if (strcmp(mode, "http") && strcmp(mode, "socket"))
		return refuse(s, "mode is '%s': use http or socket", mode);
	s->socket_mode = !strcmp(mode, "socket");
	const char *base = or_empty(c->api_base_url);
	if (strncmp(base, "https://", 8) && strncmp(base, "http://", 7))
		return refuse(s, "api_base_url '%s' is not an http(s) URL",
			      base);
	if (!channel_ok(c->default_channel))
		return refuse(s,
			      "default_channel '%s' is a channel name: use the "
			      "channel id (C0123ABC), since names change; `im "
			      "chatops slack list-channels` shows the ids",
			      c->default_channel);
	const char *sev;
	const json_t *v;
	json_object_foreach((json_t *)c->notification_channels, sev, v)
	{
		if (!json_is_string(v))
			return refuse(s, "notification_channels.%s must be a "
					 "channel id",
				      sev);
		if (!channel_ok(json_string_value(v)))
			return refuse(
			    s,
			    "notification_channels.%s '%s' is a channel name: "
			    "use the channel id (C0123ABC); `im chatops slack "
			    "list-channels` shows the ids",
			    sev, json_string_value(v));
	}
	const char *app = or_empty(c->app_token);
	if (*app && strncmp(app, "xapp-", 5))
		return refuse(s, "app_token must be an app-level token "
				 "(xapp-...) with connections:write");
	if (!strncmp(or_empty(c->bot_token), "xapp-", 5))
		return refuse(s, "bot_token holds an app-level token (xapp-): "
				 "use the bot token xoxb-... and put the xapp- "
				 "token in app_token");
	return 0;
}

static int copy_config(slk *s)
{
	/* Every string key has a default; "" stands for "not set". */
	slk_cfg *c = &s->cfg;
	const char **strs[] = {&c->mode,	     &c->bot_token,
			       &c->signing_secret,   &c->app_token,
			       &c->api_base_url,     &c->default_channel,
			       &c->tls_ca_file};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
		*strs[i] = or_empty(*strs[i]);
	s->api_base = strdup(or_empty(c->api_base_url));
	s->notify_channels = json_is_object(c->notification_channels)
				 ? json_deep_copy(c->notification_channels)
				 : json_object();
	if (!s->api_base || !s->notify_channels)
		return IM_ENOMEM;
	size_t n = strlen(s->api_base);
	while (n && s->api_base[n - 1] == '/')
		s->api_base[--n] = '\0';
	return 0;
}

/* The credentials the mode needs; false (and the state set) if any is
 * empty. */
static bool credentials(slk *s)
{
	bool http_ok = *s->cfg.bot_token && *s->cfg.signing_secret;
	bool sock_ok = *s->cfg.bot_token && *s->cfg.app_token;
	if (s->socket_mode ? sock_ok : http_ok)
		return true;
	s->host->set_state(
	    s->inst, IM_STATE_UNCONFIGURED,
	    s->socket_mode
		? "set bot_token (SLACK_BOT_TOKEN, xoxb-...) and app_token "
		  "(SLACK_APP_TOKEN, xapp-... with connections:write) for "
		  "Socket Mode"
		: "set bot_token (SLACK_BOT_TOKEN, xoxb-...) and "
		  "signing_secret (SLACK_SIGNING_SECRET) from the Slack app "
		  "settings (or mode: socket with app_token)");
	return false;
}

static int create(const im_host *host, im_instance *inst, const json_t *cfg,
		  void **state)
{
	slk *s = calloc(1, sizeof(*s));
	if (!s)
		return IM_ENOMEM;
	s->host = host;
	s->inst = inst;
	s->id = host->instance_id(inst);
	pthread_mutex_init(&s->mu, NULL);
	const char *dbg = getenv("CHATOPS_DEBUG");
	s->debug_bodies = dbg && (!strcmp(dbg, "1") || !strcasecmp(dbg, "true"));
	int rc = host->config_fill(inst, &s->cfg, sizeof(s->cfg));
	if (rc != 0) {
		slk_free(s);
		return IM_ECONFIG;
	}
	if ((rc = check_config(s)) != 0)
		return rc; /* s is freed */
	if ((rc = copy_config(s)) != 0)
		goto fail;
	if (!credentials(s)) {
		slk_free(s);
		return IM_EUNCONFIGURED;
	}
	rc = IM_ENOMEM;
	if (sodium_init() < 0) /* signatures and Socket Mode's randomness */
		goto fail;
	if (*s->cfg.signing_secret && !(s->mac = slk_mac_new(s->cfg.signing_secret)))
		goto fail;
	if (!(s->dedup = slk_dedup_new(2048)))
		goto fail;
	if (s->cfg.dedupe_requests &&
	    !(s->replays = slk_dedup_new(32768)))
		goto fail;
	if (!s->socket_mode && (rc = slk_routes_add(s)) != 0)
		goto fail;
	IM_INFO(host, inst, "ready: %s mode, Web API %s",
		s->socket_mode ? "Socket" : "HTTP", s->api_base);
	*state = s;
	return 0;
fail:
	slk_free(s);
	return rc;
}

static void destroy(void *state)
{
	slk_free(state);
}

static int start(void *state)
{
	slk *s = state;
	if (s->socket_mode)
		return slk_socket_start(s);
	/* HTTP mode has no link to lose: the gauge follows the Web API
	 * answers (webapi.c) from here on. */
	s->host->set_connected(s->inst, SLK_PLATFORM, 1);
	return 0;
}

static void stop(void *state)
{
	slk *s = state;
	if (s->socket_mode)
		slk_socket_stop(s);
	s->host->set_connected(s->inst, SLK_PLATFORM, 0);
}

static const im_connector connector = {
    .base = {.struct_size = sizeof(im_connector),
	     .kind = IM_COMPONENT_CONNECTOR,
	     .name = "slack"},
    .platform = SLK_PLATFORM,
    .start = start,
    .stop = stop,
    .status = slk_status,
    .answer = slk_answer,
    .followup = slk_followup,
    .send = slk_send,
    /* chat.postMessage: about 1 per second per channel with short bursts,
     * and a workspace-wide cap. */
    .rate_per_channel = 1,
    .burst_per_channel = 3,
    .rate_global = 20,
    .rules = &slk_rules,
    .fit_payload = slk_fit_payload,
};

static const im_component *const components[] = {&connector.base, NULL};

static const im_plugin_desc desc = {
    IM_PLUGIN_HEADER,
    .name = "slack",
    .version = "1.0.0",
    .description = "Slack connector: slash commands, buttons, Socket Mode "
		   "and notifications via the Web API",
    .vendor = "im",
    .license = "MIT",
    .components = components,
    .config_keys = keys,
    .create = create,
    .destroy = destroy,
};

IM_PLUGIN_DEFINE(desc)
