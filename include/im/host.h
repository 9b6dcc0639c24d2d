/*
 * im/host.h - the host services a plugin may use: one const vtable.
 *
 * Contract: the host passes `const im_host *` to create(); it stays valid
 * until destroy() returns. The table only grows at its end: before calling a
 * function added after minor 0, test it with IM_HOST_HAS(host, fn).
 * Every function is safe to call from any thread unless it says otherwise.
 * Strings passed in are copied by the host; strings returned are borrowed
 * and live as long as the object they came from (the instance, the request).
 */
#ifndef IM_HOST_H
#define IM_HOST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct json_t json_t;

/* Instance states as listed by `im plugins list`. */
typedef enum im_instance_state {
	IM_STATE_LOADING = 0,
	IM_STATE_RUNNING = 1,
	IM_STATE_UNCONFIGURED = 2, /* missing credentials: runs, does nothing */
	IM_STATE_FAILED = 3,
	IM_STATE_STOPPED = 4,
} im_instance_state;

typedef enum im_metric_kind {
	IM_METRIC_COUNTER = 0,
	IM_METRIC_GAUGE = 1,
	IM_METRIC_HISTOGRAM = 2,
} im_metric_kind;

typedef struct im_host {
	uint32_t struct_size; /* sizeof(im_host) as the host was built */
	uint16_t abi_major;
	uint16_t abi_minor;

	/* --- logging --------------------------------------------------- */
	/* Writes one line prefixed [plugin:<module>:<instance>]; secrets are
	 * redacted. `fmt` is printf-style. */
	void (*log)(im_instance *inst, im_log_level level, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
	void (*logv)(im_instance *inst, im_log_level level, const char *fmt,
		     va_list ap);
	/* Whether `level` would be written (skip building expensive lines). */
	int (*log_enabled)(im_instance *inst, im_log_level level);

	/* --- identity and config --------------------------------------- */
	/* Instance id from the YAML (e.g. "slack-prod"). */
	const char *(*instance_id)(im_instance *inst);
	/* The validated `config:` object with defaults filled in. Borrowed;
	 * valid until destroy(). */
	const json_t *(*config)(im_instance *inst);
	/* Reports the instance's state; `reason` (may be NULL) says what to
	 * do, e.g. "set bot_token (SLACK_BOT_TOKEN)". */
	void (*set_state)(im_instance *inst, im_instance_state state,
			  const char *reason);
	/* Connector health: sets chatops_connection_status{platform,instance}
	 * to 1 (connected) or 0. */
	void (*set_connected)(im_instance *inst, const char *platform,
			      int connected);

	/* --- inbound HTTP ---------------------------------------------- */
	/* Serves `method` `path` under /hooks/<instance-id>/. `path` is
	 * relative ("events", "commands"); "*" matches any rest of the path.
	 * Call only from create(). */
	int (*route_add)(im_instance *inst, const char *method,
			 const char *path, im_route_fn fn);
	const char *(*req_method)(const im_http_request *req);
	/* Path below /hooks/<instance>/, without the query string. */
	const char *(*req_path)(const im_http_request *req);
	/* Case-insensitive header lookup; NULL when absent. */
	const char *(*req_header)(const im_http_request *req, const char *name);
	/* Query-string argument; NULL when absent. */
	const char *(*req_query)(const im_http_request *req, const char *name);
	/* Raw body bytes as received (NUL-terminated for convenience). */
	const char *(*req_body)(const im_http_request *req, size_t *len);
	/* Sets status, content type and body (copied). */
	int (*resp_set)(im_http_response *resp, int status,
			const char *content_type, const void *body, size_t len);
	int (*resp_header)(im_http_response *resp, const char *name,
			   const char *value);

	/* --- outbound HTTP --------------------------------------------- */
	/* Queues a request; see im/http.h for the threading contract. */
	int (*http_send)(im_instance *inst, const im_http_call *call,
			 im_http_done_fn done, void *userdata);

	/* --- metrics --------------------------------------------------- */
	/* Registers (or finds) a metric family. `labels` is NULL-terminated;
	 * names must match [a-zA-Z_][a-zA-Z0-9_]*. Histograms use the
	 * Prometheus default buckets. Returns NULL on a bad name or a clash
	 * with a family of another kind or label set. */
	im_metric *(*metric)(im_instance *inst, const char *name,
			     const char *help, im_metric_kind kind,
			     const char *const *labels);
	/* counter += v, gauge = v, histogram observes v. `values` matches the
	 * registered labels in order. */
	void (*metric_add)(im_metric *m, const char *const *values, double v);
	void (*metric_set)(im_metric *m, const char *const *values, double v);
	void (*metric_observe)(im_metric *m, const char *const *values,
			       double v);

	/* --- deferred answers ------------------------------------------ */
	/* Turns the response into a deferred one: the route handler returns
	 * 0 at once and the answer is sent when deferred_complete is called
	 * (exactly once, from any thread). The connection waits meanwhile
	 * without holding a worker thread. */
	im_http_deferred *(*resp_defer)(im_http_response *resp);
	int (*deferred_complete)(im_http_deferred *d, int status,
				 const char *content_type, const void *body,
				 size_t len, const char *const *headers);

	/* --- chat commands --------------------------------------------- */
	/* For connectors: runs the invocation as a chat command (routing
	 * the verb or button to its command component, checking the allow
	 * lists) and answers `resp` within the command budget through the
	 * connector's answer(); a later result goes to its followup(). Call
	 * from a route handler and return 0 right after. */
	int (*command_handle)(im_instance *inst, const im_invocation *inv,
			      im_http_response *resp);
	/* The same without an HTTP request (Socket Mode, gateways): `first`
	 * runs once, on a host thread, with the first answer (result or
	 * "working"); a later result goes to followup(). */
	int (*command_dispatch)(im_instance *inst, const im_invocation *inv,
				void (*first)(void *ud, const json_t *reply),
				void *ud);
	/* For command components: build the reply (arguments copied). */
	int (*reply_text)(im_reply *reply, const char *markdown);
	int (*reply_visibility)(im_reply *reply, int visibility);
	int (*reply_field)(im_reply *reply, const char *title,
			   const char *value, int is_short);
	int (*reply_action)(im_reply *reply, const char *action_id,
			    const char *label, const char *value,
			    const char *style);

	/* --- incidents ------------------------------------------------- */
	/* Incident operations as JSON, for command components. `op`:
	 * "declare" {fields}, "get" {id}, "list" {status,severity,service,
	 * limit}, "transition" {id, verb, note?, duplicate_of?}, "note"
	 * {id, text}, "patch" {id, fields}. `args` also carries
	 * "actor":{"id","name","via"} and may carry "idempotency_key".
	 * *out (new, caller decrefs) is the answer {"incident","event"} /
	 * {"incident"} / {"items","next_cursor"}, or on failure
	 * {"error":{"status":409,"code":"illegal_transition","message":..}}
	 * with a negative return. */
	int (*incident_op)(im_instance *inst, const char *op,
			   const json_t *args, json_t **out);

	/* --- key-value store ------------------------------------------- */
	/* Small per-instance values that survive restarts (e.g. which
	 * incident a channel is bound to). get: *value is malloc'd (free()
	 * it); IM_ENOTFOUND when absent. */
	int (*kv_get)(im_instance *inst, const char *key, char **value);
	int (*kv_put)(im_instance *inst, const char *key, const char *value);
	int (*kv_del)(im_instance *inst, const char *key);

	/* --- blocking outbound HTTP -------------------------------------- */
	/* For delivery threads and follow-ups, which may block: sends and
	 * waits. Never call it from a route handler (it would hold an HTTP
	 * worker) or from an http_send callback (deadlock). *out is always
	 * set when the request ran (even on error) and is freed with
	 * http_result_free. Returns 0 or the result's error code. */
	int (*http_fetch)(im_instance *inst, const im_http_call *call,
			  im_http_result **out);
	void (*http_result_free)(im_http_result *res);
} im_host;

/* True when the host's table includes `fn` (added at some minor version). */
#define IM_HOST_HAS(host, fn)                                                 \
	((host) != NULL &&                                                    \
	 (host)->struct_size >= offsetof(im_host, fn) + sizeof((host)->fn) && \
	 (host)->fn != NULL)

/* Logging shorthands for plugin code: IM_INFO(host, inst, "x=%d", x). */
#define IM_LOG(host, inst, lvl, ...) ((host)->log((inst), (lvl), __VA_ARGS__))
#define IM_DEBUG(host, inst, ...) IM_LOG(host, inst, IM_LOG_DEBUG, __VA_ARGS__)
#define IM_INFO(host, inst, ...) IM_LOG(host, inst, IM_LOG_INFO, __VA_ARGS__)
#define IM_WARN(host, inst, ...) IM_LOG(host, inst, IM_LOG_WARN, __VA_ARGS__)
#define IM_ERROR(host, inst, ...) IM_LOG(host, inst, IM_LOG_ERROR, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
