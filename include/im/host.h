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

/* A WebSocket to open (since 1.3). Everything it points to is copied by
 * ws_open. Callbacks run on the host's network thread. */
typedef struct im_ws_call {
	uint32_t struct_size;          /* sizeof(im_ws_call) */
	const char *url;               /* ws://host[:port]/path or wss:// */
	const im_http_header *headers; /* extra handshake headers, may be NULL */
	size_t n_headers;
	/* PEM bundle trusted besides the system's CAs (wss://), or NULL.
	 * The peer's certificate and host name are always checked. */
	const char *ca_file;
	uint32_t connect_timeout_ms; /* TCP + TLS + handshake; 0 = 10000 */
	/* Keepalive: when nothing was heard for this long the host pings;
	 * when another interval passes in silence it closes the link (code
	 * 1006, "no answer to ping"). 0 = no keepalive. */
	uint32_t ping_interval_ms;
	size_t max_message; /* larger incoming messages close with 1009; 0 = 1 MiB */
	size_t max_queue;   /* bytes waiting to be sent; 0 = 4 MiB */
	/* The handshake succeeded. May be NULL. */
	void (*on_open)(void *ud, im_ws *ws);
	/* One whole message (fragments joined); `data` is borrowed for the
	 * call and NUL-terminated. */
	void (*on_message)(void *ud, im_ws *ws, int binary, const void *data,
			   size_t len);
	/* The link ended: the peer's close code and reason, or 1006 with
	 * what went wrong (connect, TLS, handshake status, timeout). */
	void (*on_close)(void *ud, im_ws *ws, int code, const char *reason);
	void *userdata;
} im_ws_call;

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

	/* --- deferred answers (since 1.1) ------------------------------ */
	/* Turns the response into a deferred one: the route handler returns
	 * 0 at once and the answer is sent when deferred_complete is called
	 * (exactly once, from any thread). The connection waits meanwhile
	 * without holding a worker thread. */
	im_http_deferred *(*resp_defer)(im_http_response *resp);
	int (*deferred_complete)(im_http_deferred *d, int status,
				 const char *content_type, const void *body,
				 size_t len, const char *const *headers);

	/* --- chat commands (since 1.1) --------------------------------- */
	/* Both run an invocation as a chat command: route the verb or button
	 * to its command component, check the allow lists, give the first
	 * answer within the command budget (the result, or "working") and
	 * send a later result through the connector's followup(). They
	 * differ only in where the first answer goes:
	 * - command_handle, for HTTP platforms: into `resp`, through the
	 *   connector's answer(). Call it from a route handler and return 0
	 *   right after, without touching `resp` again. A verb flagged
	 *   IM_VERB_FAST (since 1.5), help and denials are answered within
	 *   the call; any other verb runs on a command worker and the
	 *   request is answered later without holding an HTTP worker.
	 * - command_dispatch, for sockets and gateways (no HTTP request): to
	 *   first(ud, reply), exactly once, on a host thread (possibly inside
	 *   this call); the reply is borrowed for that call. */
	int (*command_handle)(im_instance *inst, const im_invocation *inv,
			      im_http_response *resp);
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

	/* --- incidents (since 1.1) ------------------------------------- */
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

	/* --- key-value store (since 1.1) ------------------------------- */
	/* Small per-instance values that survive restarts (e.g. which
	 * incident a channel is bound to). get: *value is malloc'd (free()
	 * it); IM_ENOTFOUND when absent. */
	int (*kv_get)(im_instance *inst, const char *key, char **value);
	int (*kv_put)(im_instance *inst, const char *key, const char *value);
	int (*kv_del)(im_instance *inst, const char *key);

	/* --- blocking outbound HTTP (since 1.2) ------------------------ */
	/* For delivery threads and follow-ups, which may block: sends and
	 * waits. Never call it from a route handler (it would hold an HTTP
	 * worker) or from an http_send callback (deadlock). *out is always
	 * set when the request ran (even on error) and is freed with
	 * http_result_free. Returns 0 or the result's error code. */
	int (*http_fetch)(im_instance *inst, const im_http_call *call,
			  im_http_result **out);
	void (*http_result_free)(im_http_result *res);

	/* --- typed config (since 1.3) ---------------------------------- */
	/* Fills the plugin's own config struct `dst` (`size` bytes, zeroed
	 * first) from the instance's validated config, through the offsets
	 * of the module's key table (im_config_key.offset / .store). Strings
	 * and JSON values are borrowed from the config: valid until
	 * destroy(). Returns 0, or IM_EINVAL when a stored field does not fit
	 * in `size` or its store does not suit the key's type (the reason is
	 * logged). Call from create(). */
	int (*config_fill)(im_instance *inst, void *dst, size_t size);

	/* --- WebSocket client (since 1.3) ------------------------------ */
	/* Opens a WebSocket (see im_ws_call) and returns at once. The link
	 * lives on the host's network thread: callbacks run there, must not
	 * block, and may call ws_send/ws_close. `*out` is the caller's
	 * reference: release it exactly once with ws_release, from any thread
	 * but a callback of this link. on_close always runs exactly once
	 * after a successful ws_open, also when the connect fails or the host
	 * stops. Reconnecting is the caller's business. Returns 0, IM_EINVAL
	 * (bad URL or call), IM_ENOMEM or IM_EIO (no network module). */
	int (*ws_open)(im_instance *inst, const im_ws_call *call, im_ws **out);
	/* Queues one message (text when binary is 0, UTF-8 expected), from
	 * any thread. IM_EAGAIN when the send queue is full (max_queue),
	 * IM_EINVAL when the message alone is larger than max_queue,
	 * IM_ECANCELED once the link is closing or closed. */
	int (*ws_send)(im_ws *ws, int binary, const void *data, size_t len);
	/* Starts the closing handshake with `code` (1000 normal) and a
	 * reason (may be NULL); on_close follows. Idempotent. */
	void (*ws_close)(im_ws *ws, int code, const char *reason);
	/* Drops the caller's reference; closes the link first (1001) when it
	 * is still open. No callback of this link runs after it returns,
	 * unless it is called from one (it must not be). */
	void (*ws_release)(im_ws *ws);
	/* --- command catalog (since 1.4) ------------------------------- */
	/* The verbs every running command component serves, so a connector
	 * can register them with its platform (Discord's application
	 * commands): *out (new, caller decrefs) is [{"command":"/incident",
	 * "verb","usage","summary"}] in load order, without duplicates.
	 * Returns 0, or IM_E* (nothing loaded yet: an empty array). */
	int (*command_verbs)(im_instance *inst, json_t **out);

	/* --- incident writes that answer later (since 1.6) ------------- */
	/* incident_op for a command's invoke() that should not wait for the
	 * disk: the host may queue the write and let invoke() return, so the
	 * thread that received the command goes on with other work, and
	 * builds the reply once the write is durable. `reply` is invoke()'s
	 * own. then(ud, reply, rc, out) fills the reply from what incident_op
	 * would have given (rc and *out, borrowed for the call) and returns
	 * what invoke() would. The host calls it exactly once:
	 * - inside this call, when it runs the operation at once (a read, a
	 *   verb on a command worker, input refused before anything was
	 *   queued); this call then returns then()'s result;
	 * - or later, on a host thread; this call then returns IM_EASYNC.
	 * invoke() returns this call's result right away and touches neither
	 * `reply` nor `ud` again; `ud` is the plugin's until then() runs
	 * (free it there). then() must not block: no incident_op, no kv_*,
	 * no network; it is watched like an IM_VERB_FAST verb. Misuse (no
	 * `reply`, or a reply already waiting for an earlier call) calls
	 * then(ud, NULL, IM_EINVAL, NULL) at once and returns IM_EINVAL.
	 * Without `then` it returns IM_EINVAL and does nothing. */
	int (*incident_op_then)(im_instance *inst, const char *op,
				const json_t *args, im_reply *reply,
				int (*then)(void *ud, im_reply *reply, int rc,
					    const json_t *out),
				void *ud);
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
