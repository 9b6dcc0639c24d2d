/*
 * im/types.h - basic types of the im plugin ABI: versions, result codes,
 * log levels and the opaque handles the host passes to plugins.
 *
 * Contract: everything here is plain data. Result codes are negative ints;
 * 0 is success. Codes are never renumbered; new ones are appended.
 */
#ifndef IM_TYPES_H
#define IM_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version. A plugin is accepted when its major equals the host's and its
 * minor is <= the host's. Minor bumps only append to structs and tables.
 *   1.0  the first cut: logging, config, routes, outbound HTTP, metrics,
 *        connector start/stop/status, formatter compile/render/release.
 *   1.1  chat commands: deferred answers, command_handle/_dispatch, the
 *        reply builder, incident_op, kv_*, im_command, connector
 *        answer/followup.
 *   1.2  notifications: connector send and rate limits, im_send,
 *        im_send_result, http_fetch, formatter compile_with.
 *   1.3  the freeze: struct_size in array elements (im_config_key,
 *        im_command_verb, im_command_action, im_http_header), typed config
 *        (config_fill), the WebSocket client (ws_*), platform rules and
 *        fit_payload in im_connector.
 *   1.4  connector actions (im_connector.action: `im connector <id>
 *        <action>`), the command catalog (command_verbs), im_send.mode.
 *   1.5  im_command_verb.flags (IM_VERB_FAST: run where it arrives).
 *   1.6  incident_op_then (a command's write answered once durable,
 *        without holding the thread that received the command).
 * docs/abi.md states what a 1.x host promises a plugin built against any
 * earlier 1.x. */
#define IM_ABI_MAJOR 1
#define IM_ABI_MINOR 6

/* First field of every plugin descriptor: "IMP1" as a little-endian word. */
#define IM_PLUGIN_MAGIC 0x31504d49u

/* Result codes: 0 ok, negative failure. */
enum {
	IM_OK = 0,
	IM_EINVAL = -1,        /* bad argument or malformed input */
	IM_ENOMEM = -2,        /* allocation failed */
	IM_ENOTFOUND = -3,     /* no such object */
	IM_EIO = -4,           /* I/O or network failure */
	IM_ETIMEDOUT = -5,     /* deadline passed */
	IM_EPERM = -6,         /* not allowed */
	IM_ECONFIG = -7,       /* configuration is invalid */
	IM_EUNCONFIGURED = -8, /* instance lacks credentials; not a failure */
	IM_EAGAIN = -9,        /* transient; try again later */
	IM_ECANCELED = -10,    /* the host is stopping or the call was dropped */
	IM_EVERSION = -11,     /* ABI or struct version mismatch */
	IM_EASYNC = -12,       /* accepted; the result follows through a callback */
	IM_ECONFLICT = -13,    /* state does not allow this */
	IM_EUNSUPPORTED = -14, /* the host or plugin lacks this function */
};

/* Log levels, lowest first. */
typedef enum im_log_level {
	IM_LOG_DEBUG = 0,
	IM_LOG_INFO = 1,
	IM_LOG_WARN = 2,
	IM_LOG_ERROR = 3,
} im_log_level;

/* One configured plugin instance (e.g. "slack-prod"), owned by the host.
 * Plugins receive it in create() and pass it back to every host call. */
typedef struct im_instance im_instance;

/* An inbound HTTP request and its response, owned by the host; valid only
 * during the route handler call that receives them. */
typedef struct im_http_request im_http_request;
typedef struct im_http_response im_http_response;

/* A chat command normalized across platforms (defined in im/command.h)
 * and the reply builder the host owns. */
typedef struct im_invocation im_invocation;
typedef struct im_reply im_reply;

/* An inbound answer deferred by a route handler (im_host.resp_defer). */
typedef struct im_http_deferred im_http_deferred;

/* A metric family registered by a plugin; owned by the host. */
typedef struct im_metric im_metric;

/* A WebSocket link opened through im_host.ws_open (since 1.3). */
typedef struct im_ws im_ws;

/* Returns a static English name for a result code ("IM_EINVAL"). */
#define IM_RESULT_NAMES                                                       \
	"IM_OK", "IM_EINVAL", "IM_ENOMEM", "IM_ENOTFOUND", "IM_EIO",          \
	    "IM_ETIMEDOUT", "IM_EPERM", "IM_ECONFIG", "IM_EUNCONFIGURED",     \
	    "IM_EAGAIN", "IM_ECANCELED", "IM_EVERSION", "IM_EASYNC",          \
	    "IM_ECONFLICT", "IM_EUNSUPPORTED"

#ifdef __cplusplus
}
#endif
#endif
