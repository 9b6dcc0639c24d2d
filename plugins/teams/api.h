/*
 * plugins/teams/api - Bot Connector calls for delivery and what their
 * answers mean: post an activity to a conversation, reply in a channel
 * thread, update a posted activity. Every answer becomes an
 * im_send_result the pipeline acts on (retry, wait out a 429, dead-letter
 * with the fix).
 *
 * HTTP goes through the caller's http() (the plugin's is
 * host->http_fetch); the token comes from tms_token and is dropped once on
 * a 401, and the call repeated with a fresh one. Thread-safe: many
 * delivery threads call tms_api_send at once.
 */
#ifndef IM_TEAMS_API_H
#define IM_TEAMS_API_H

#include <stdbool.h>

#include <jansson.h>

#include <im/im.h>

#include "token.h"

/* One HTTP answer; `body` and `retry_after` are malloc'd (may be NULL). */
typedef struct tms_answer {
	long status; /* 0 when no answer came */
	char *body;
	char *retry_after; /* the Retry-After header */
	char error[160];   /* why no answer came */
} tms_answer;

typedef int (*tms_http_fn)(void *ud, const char *method, const char *url,
			   const char *bearer, const char *json_body,
			   tms_answer *out);

typedef struct tms_api {
	tms_token *token;
	tms_http_fn http;
	void *ud;
} tms_api;

/* Where a message goes: the conversation ("19:...@thread.tacv2", a
 * channel's thread as "...;messageid=<root>"), the service URL learnt for
 * it, and for an edit the activity id to replace. */
typedef struct tms_target {
	const char *service_url;
	const char *conversation;
	const char *reply_to; /* reply in the thread of this activity */
	const char *update;   /* PUT over this activity */
} tms_target;

/* Sends `activity` (borrowed). Always fills res (0 return) unless the
 * arguments are bad (IM_EINVAL). res->message_id is the new activity id
 * (the same id for an update). */
int tms_api_send(const tms_api *api, const tms_target *to,
		 const json_t *activity, im_send_result *res);

/* The verdict for one Bot Connector answer (also used by the tests). */
void tms_classify(const tms_answer *a, bool edit, im_send_result *res);

void tms_answer_clear(tms_answer *a);

#endif
