/* plugins/discord - the Discord connector: signed interactions in
 * (inbound.c, sign.c), the /incident application command built from the
 * verbs the command plugins serve (cmds.c), REST with Discord's rate-limit
 * buckets (rest.c), notifications (deliver.c), the Gateway link
 * (gateway.c), status (status.c) and the message rules (rules.c).
 *
 * Threads: route handlers run on HTTP workers and never wait on the
 * network; REST calls block and run on delivery threads, the host's
 * offload threads (status, sync-commands), command workers (follow-ups)
 * and the Gateway's timer thread. Shared state is under dsc.mu unless a
 * part says otherwise (rest.c and sign.c have their own locks). */
#ifndef IM_DISCORD_H
#define IM_DISCORD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include <im/im.h>

#include "sign.h"

extern const im_platform_rules dsc_rules;
int dsc_fit_payload(json_t *payload, const im_payload_ops *ops);

/* The instance's settings (host->config_fill). */
typedef struct dsc_cfg {
	const char *application_id;
	const char *public_key;
	const char *bot_token;
	const json_t *guild_ids;
	const char *api_base_url;
	bool gateway;
	const json_t *intents;
	const char *default_channel;
	const json_t *notification_channels;
	int64_t timeout_ms;
	int64_t invalid_limit;
} dsc_cfg;

typedef struct dsc_rest dsc_rest;
typedef struct dsc_gw dsc_gw;

typedef struct dsc {
	const im_host *host;
	im_instance *inst;
	const char *id; /* instance id */
	dsc_cfg cfg;
	uint8_t public_key[32];
	dsc_seen *seen;
	dsc_rest *rest;
	dsc_gw *gw;
	char user_agent[96];

	pthread_mutex_t mu; /* guards what follows */
	json_t *catalog;    /* cmds.c: parsed verbs, refreshed now and then */
	double catalog_at;
	char last_interaction[300];
	time_t last_interaction_at;
	unsigned long refused; /* interactions answered 401 */
	char last_error[400];
	time_t last_error_at;
	json_t *channel_problems; /* channel id -> what Discord said */
	/* discord_invalid_requests{instance}: 401/403/429 answers in the
	 * last 10 minutes (rest.c). */
	im_metric *m_invalid;
} dsc;

/* --- util.c ------------------------------------------------------------- */
double dsc_mono(void);
/* `s` (NULL: "") as a JSON string of at most `max` characters, never
 * cutting one in half. New reference (NULL if s is not UTF-8). */
json_t *dsc_cut(const char *s, size_t max);

/* --- inbound.c ----------------------------------------------------------- */
int dsc_on_interactions(void *state, const im_http_request *req,
			im_http_response *resp);
int dsc_answer(void *state, const im_invocation *inv, const json_t *reply,
	       im_http_response *resp);
int dsc_followup(void *state, const im_invocation *inv, const json_t *reply);
/* A command reply as a Discord message object (content, embed of the
 * fields, buttons, allowed_mentions). New reference. */
json_t *dsc_reply_message(const json_t *reply);

/* --- cmds.c -------------------------------------------------------------- */
/* The verbs as parsed usage, cached for a few seconds (borrowed under
 * d->mu: call with it held). */
const json_t *dsc_catalog(dsc *d);
/* The application commands Discord should have: [{"name":"incident",...}]
 * (new). */
json_t *dsc_command_defs(dsc *d);
/* Turns an APPLICATION_COMMAND's data into the command text the verbs
 * parse ("declare Payments down --sev SEV-1"). malloc'd, NULL on OOM. */
char *dsc_command_text(dsc *d, const json_t *data);
/* Connector action "sync-commands". */
int dsc_sync_commands(dsc *d, const json_t *args, json_t **out);
/* What sync would change per scope, for status(): {"<scope>":{"created":
 * [..],"changed":[..],"unchanged":[..],"removed":[..]}} or an error. */
json_t *dsc_commands_state(dsc *d);
/* Same comparison on given lists (new): the unit-tested core. */
json_t *dsc_commands_diff(const json_t *want, const json_t *have);

/* --- rest.c -------------------------------------------------------------- */
typedef struct dsc_res {
	long status;	     /* HTTP status; 0 when not sent */
	int code;	     /* Discord's error code; 0 none */
	char message[200];   /* Discord's message, or what went wrong */
	json_t *json;	     /* parsed body (owned) or NULL */
	double retry_after;  /* 429 or held back locally */
	bool global;	     /* the limit is the bot's, not the route's */
	bool local;	     /* not sent: held back by the limits here */
} dsc_res;

dsc_rest *dsc_rest_new(dsc *d);
void dsc_rest_free(dsc_rest *r);
/* One REST call: `path` below api_base_url, `major` the route's major
 * parameter (channel, guild, webhook) for its bucket. With `auth` the bot
 * token goes along (refused locally once the token got a 401). Waits up
 * to max_wait_s for an exhausted bucket or a global limit; beyond that
 * answers local with retry_after. Returns 0 when Discord answered 2xx,
 * else IM_E* with res filled. Free res with dsc_res_clear. */
int dsc_call(dsc_rest *r, const char *method, const char *route,
	     const char *major, const char *path, const json_t *body,
	     bool auth, double max_wait_s, dsc_res *res);
void dsc_res_clear(dsc_res *res);
/* {"invalid_10min","invalid_limit","stopped","token_rejected",
 *  "rate_limited","buckets"} (new). */
json_t *dsc_rest_status(dsc_rest *r);
bool dsc_rest_token_rejected(dsc_rest *r);
/* Whether sending is stopped by the invalid-request guard; *wait_s is how
 * long until it may resume. */
bool dsc_rest_stopped(dsc_rest *r, double *wait_s);

/* --- deliver.c ----------------------------------------------------------- */
int dsc_send(void *state, const im_send *msg, im_send_result *res);
const char *dsc_pick_channel(const dsc *d, const char *want);

/* --- gateway.c ----------------------------------------------------------- */
dsc_gw *dsc_gw_new(dsc *d);
int dsc_gw_start(dsc_gw *g);
void dsc_gw_stop(dsc_gw *g);
void dsc_gw_free(dsc_gw *g);
/* {"state","session","intents","intents_refused","guilds",...} (new). */
json_t *dsc_gw_status(dsc_gw *g);
/* Intents by name ("GUILDS") to the bit mask; -1 with the bad name. */
long dsc_intents(const json_t *names, char *bad, size_t len);

/* --- status.c ------------------------------------------------------------ */
int dsc_status(void *state, json_t **out);
int dsc_action(void *state, const char *name, const json_t *args,
	       json_t **out);
void dsc_note_error(dsc *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void dsc_note_channel(dsc *d, const char *channel, const char *what);

#endif
