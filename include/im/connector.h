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

/* One message to post, or to edit when message_id is set (since 1.2). */
typedef struct im_send {
	uint32_t struct_size;
	const char *channel;      /* platform channel / conversation id */
	const json_t *payload;    /* rendered template (borrowed) */
	const char *message_id;   /* edit this message (Slack ts, Discord id) */
	const char *thread_id;    /* reply in this thread, when set */
	const char *dedup_key;    /* stable per outbox row (Discord nonce) */
	const char *event_type;   /* "im.incident.declare", "digest" */
	/* Since 1.4: the subscription's mode, "update", "thread" or "post".
	 * In "thread" mode a first message (thread_id NULL) may open a
	 * thread and return its id in im_send_result.thread_id; later
	 * messages of the incident get it as thread_id. Read it only when
	 * struct_size covers it. */
	const char *mode;
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
/* im_send_result.flags: the message to edit (im_send.message_id) cannot be
 * edited any more (deleted, too old, not the bot's): the pipeline forgets
 * it and posts the notification as a new message at once. Set it with
 * whatever verdict the edit got; a connector never reposts by itself. */
#define IM_SEND_EDIT_FAILED 0x2u /* since 1.3 */

/* How incident text is written in this platform's markup, and the values
 * the templates of this platform get (since 1.3). The template service
 * escapes every string of a template's context with these rules before it
 * renders (host-made ids, times and URLs pass unchanged when they look
 * like one), drops control characters other than newline and tab, and
 * never cuts a text inside what the escaping made. All lists are ended by
 * NULL; any member may be NULL. */
typedef struct im_platform_rules {
	uint32_t struct_size; /* sizeof(im_platform_rules) */
	/* ASCII characters written with a backslash before them. */
	const char *backslash;
	/* Pairs: an ASCII character and what it becomes ("&", "&amp;"). */
	const char *const *replace;
	/* Sequences that would become live markup (mentions): a zero-width
	 * space (U+200B) goes after their first byte ("@everyone", "<@"). */
	const char *const *defuse;
	/* Strings that must never appear in a payload rendered from hostile
	 * incident text unless the template writes them itself (checked by
	 * `im chatops templates validate`): "<!channel>", "@here". */
	const char *const *mentions;
	/* {{severity_emoji}} and {{severity_color}}: 5 entries each, for an
	 * unknown severity, then SEV-1 .. SEV-4. */
	const char *const *severity_emoji;
	const int64_t *severity_color;
	/* Credential prefixes ("xoxb-"): any word starting with one is
	 * redacted in every log line of the process. */
	const char *const *secret_prefixes;
} im_platform_rules;

/* What the host lends a connector's fit_payload (since 1.3). */
typedef struct im_payload_ops im_payload_ops;
struct im_payload_ops {
	uint32_t struct_size; /* sizeof(im_payload_ops) */
	/* Set while `im chatops templates validate` runs: also report what
	 * a cut or a default would silently repair. */
	int validating;
	/* Characters (not bytes) of a JSON string; 0 for anything else. */
	size_t (*length)(const json_t *text);
	/* Cuts JSON string `text` to at most `max` characters ending in
	 * "…", never inside a character, an emoji sequence or an escape of
	 * the platform rules. 1 when it cut, else 0. */
	int (*cut)(const im_payload_ops *ops, json_t *text, size_t max);
	/* Reports a rule the payload breaks that no cut repairs: the render
	 * fails (delivery falls back to the default template). `near` is a
	 * key or text to find in the template for the line number, or NULL. */
	void (*problem)(const im_payload_ops *ops, const char *near,
			const char *fmt, ...) __attribute__((format(printf, 3, 4)));
	void *host_private;
};

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
	 * the reply JSON. Since 1.1. */
	int (*answer)(void *state, const im_invocation *inv, const json_t *reply,
		      im_http_response *resp);
	/* Sends a late reply through the platform's follow-up path (Slack
	 * response_url, Discord follow-up webhook, Teams proactive reply),
	 * using inv->response_ref. Runs on a host worker thread; may block
	 * on its own HTTP call. May be NULL (late results are then only
	 * logged). Since 1.1. */
	int (*followup)(void *state, const im_invocation *inv,
			const json_t *reply);
	/* Delivers one notification, blocking until the platform answered
	 * or the call timed out. Runs on a pipeline delivery thread, several
	 * at once. Returns 0 with res filled (whatever the verdict), or
	 * IM_E* when it could not even try (res->verdict says what to do).
	 * May be NULL for connectors that only take commands. Since 1.2. */
	int (*send)(void *state, const im_send *msg, im_send_result *res);
	/* Default rate limits of this platform, overridable per instance by
	 * the pipeline's config: messages per second per channel and burst,
	 * a global per-instance rate (0 = none). Since 1.2. */
	double rate_per_channel;
	double burst_per_channel;
	double rate_global;
	/* Since 1.3: how context strings are escaped and what the templates
	 * get per severity (see im_platform_rules). NULL: no escaping. */
	const im_platform_rules *rules;
	/* Since 1.3: holds a rendered payload (a JSON object, changed in
	 * place) to this platform's limits: cut what a cut can repair through
	 * ops->cut, report the rest through ops->problem. Runs on any thread,
	 * concurrently, without instance state (templates are checked also
	 * where no instance runs). Returns 0, or IM_E* when it could not
	 * check at all. NULL: no limits. */
	int (*fit_payload)(json_t *payload, const im_payload_ops *ops);
	/* Since 1.4: an operator action the CLI asks for by name (`im
	 * connector <instance> <name>`, through POST /api/v1/admin/
	 * connectors/<id>/actions/<name>), e.g. "sync-commands". `args` is a
	 * JSON object of the CLI's options (borrowed). Runs off the HTTP
	 * workers and may block on the platform (the admin call gives up
	 * after 30 s). Returns 0 with *out (new, the caller decrefs) the
	 * result; IM_ENOTFOUND for an action it does not know; IM_EINVAL
	 * for bad arguments and other IM_E* on failure, with *out
	 * {"error": "..."} saying why. May be NULL: no actions. */
	int (*action)(void *state, const char *name, const json_t *args,
		      json_t **out);
} im_connector;

#ifdef __cplusplus
}
#endif
#endif
