/* plugins/teams - the Microsoft Teams connector (Bot Framework): message
 * rules (rules.c), the token (token.c), Bot Connector calls (api.c),
 * conversation references (refs.c), inbound activities (activity.c) and
 * the component (plugin.c, deliver.c). */
#ifndef IM_TEAMS_H
#define IM_TEAMS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include <im/im.h>

#include "api.h"
#include "jwt.h"
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

struct tms_job;

#define TMS_PACE_SLOTS 512
struct tms_pace {
	uint64_t key;
	double tokens, at;
};

typedef struct tms {
	const im_host *host;
	im_instance *inst;
	const char *id; /* instance id */
	tms_cfg cfg;
	tms_token *token;
	tms_refs *refs;
	tms_jwt *jwt;
	tms_api api;

	/* inbound.c: the jobs thread (replies, checks that fetch keys) and
	 * what status() reports; all under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool running, stopping;
	struct tms_job *head, *tail;
	size_t queued;
	char last_activity[300];
	time_t last_activity_at;
	char last_error[400];
	time_t last_error_at;
	unsigned long errors_403[4]; /* roster, blocked, disabled, other */
	unsigned long replies_dropped;
	struct tms_pace pace[TMS_PACE_SLOTS]; /* reply limits (inbound.c) */
	time_t dropped_said_at;
} tms;

/* inbound.c */
int tms_on_messages(void *state, const im_http_request *req,
		    im_http_response *resp);
int tms_followup(void *state, const im_invocation *inv, const json_t *reply);
int tms_jobs_start(tms *t);
void tms_jobs_stop(tms *t);

/* status.c */
int tms_status(void *state, json_t **out);
void tms_note_error(tms *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Remembers a delivery's failure for status(). */
void tms_note_send(tms *t, const char *channel, const im_send_result *res);

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
