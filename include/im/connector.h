/*
 * im/connector.h - a chat-platform connector component (Slack, Teams,
 * Discord, or a vendor's own).
 *
 * Contract: the component's functions receive the instance state from
 * create(). start() and stop() run on the host's control thread; start()
 * is called once after create() succeeded and before the instance is live,
 * stop() once before destroy() (after in-flight calls drained). status()
 * may run on any thread, concurrently with route handlers. A connector
 * reports its link health with host->set_connected().
 * Chat commands: the connector parses a platform request into an
 * im_invocation and hands it to host->command_handle (HTTP) or
 * host->command_dispatch (sockets). The host answers within the budget
 * through answer() and sends late results through followup().
 * Notifications: the host's pipeline renders each outbox row with the
 * templates and calls send() on one of its delivery threads; the
 * connector talks to the platform and says what happened in an
 * im_send_result, so the pipeline can retry, wait out a rate limit or
 * dead-letter the row.
 */
#ifndef IM_CONNECTOR_H
#define IM_CONNECTOR_H

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One message to post, or to edit when message_id is set. */
typedef struct im_send {
	uint32_t struct_size;
	const char *channel;      /* platform channel / conversation id */
	const json_t *payload;    /* rendered template (borrowed) */
	const char *message_id;   /* edit this message (Slack ts, Discord id) */
	const char *thread_id;    /* reply in this thread, when set */
	const char *dedup_key;    /* stable per outbox row (Discord nonce) */
	const char *event_type;   /* "im.incident.declare", "digest" */
} im_send;

typedef enum im_send_verdict {
	IM_SEND_OK = 0,           /* delivered; message_id filled */
	IM_SEND_RETRY = 1,        /* transient (5xx, timeout): try again */
	IM_SEND_RATE_LIMITED = 2, /* wait retry_after_s, then again */
	IM_SEND_PERMANENT = 3,    /* will never work: dead-letter it */
} im_send_verdict;

typedef struct im_send_result {
	uint32_t struct_size;
	uint32_t verdict;       /* im_send_verdict */
	long http_status;
	double retry_after_s;   /* the platform's own hint; 0 = none */
	char message_id[128];   /* of the posted message */
	char thread_id[128];    /* thread to reply in later, if any */
	char error[128];        /* the platform's error code */
	char hint[256];         /* what an operator should do */
	uint32_t flags;         /* IM_SEND_* flags below */
} im_send_result;

/* im_send_result.flags: the rate limit hit applies to the whole instance
 * (Discord's X-RateLimit-Global, a workspace-wide cap), not one channel:
 * the pipeline holds every channel of the instance for retry_after_s. */
#define IM_SEND_LIMIT_GLOBAL 0x1u

typedef struct im_connector {
	im_component base;    /* kind = IM_COMPONENT_CONNECTOR */
	const char *platform; /* "slack", "teams", "discord", ... */
	/* Starts background work (sockets, timers). May be NULL. */
	int (*start)(void *state);
	/* Stops background work; must not block for long. May be NULL. */
	void (*stop)(void *state);
	/* Fills *out with a new JSON object describing health (ownership is
	 * transferred to the caller), e.g. {"connected":true,"team":"T1"}.
	 * Returns 0, or IM_E* with *out possibly holding {"error": "..."}. */
	int (*status)(void *state, json_t **out);
	/* Turns a command reply (JSON, see im/command.h; borrowed) into this
	 * platform's HTTP answer to the request that carried `inv`: the
	 * result, or a "still working" note when reply.status is "working".
	 * Runs on a host thread. May be NULL: the host then answers 200 with
	 * the reply JSON. */
	int (*answer)(void *state, const im_invocation *inv, const json_t *reply,
		      im_http_response *resp);
	/* Sends a late reply through the platform's follow-up path (Slack
	 * response_url, Discord follow-up webhook, Teams proactive reply),
	 * using inv->response_ref. Runs on a host worker thread; may block
	 * on its own HTTP call. May be NULL (late results are then only
	 * logged). */
	int (*followup)(void *state, const im_invocation *inv,
			const json_t *reply);
	/* Delivers one notification, blocking until the platform answered
	 * or the call timed out. Runs on a pipeline delivery thread, several
	 * at once. Returns 0 with res filled (whatever the verdict), or
	 * IM_E* when it could not even try (res->verdict says what to do).
	 * May be NULL for connectors that only take commands. */
	int (*send)(void *state, const im_send *msg, im_send_result *res);
	/* Default rate limits of this platform, overridable per instance by
	 * the pipeline's config: messages per second per channel and burst,
	 * and a global per-instance rate (0 = none). */
	double rate_per_channel;
	double burst_per_channel;
	double rate_global;
} im_connector;

#ifdef __cplusplus
}
#endif
#endif
