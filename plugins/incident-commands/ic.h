/*
 * incident-commands internals: the per-instance state, the per-call
 * context and the helpers the verbs share.
 *
 * Threads: the instance state is written only by create() and read-only
 * afterwards; invoke() runs on many host workers at once, each with its
 * own ic_call on the stack. Nothing here is global.
 */
#ifndef IC_IC_H
#define IC_IC_H

#include <stdbool.h>

#include <jansson.h>

#include <im/im.h>

#include "args.h"

typedef struct ic {
	const im_host *host;
	im_instance *inst;
	bool binding;  /* channel_binding: commands in a declare's channel */
	bool has_kv;   /* the host has kv_get/put/del */
} ic;

/* One invocation: what it runs on, its arguments and its reply. */
typedef struct ic_call {
	const ic *self;
	const im_command_verb *verb;
	const im_invocation *inv;
	im_reply *reply;
	ic_args args;
} ic_call;

typedef int (*ic_verb_fn)(ic_call *c);

/* --- verbs.c / verbs_more.c: one function per verb ----------------------- */
int ic_declare(ic_call *c);
int ic_transition(ic_call *c); /* ack, mitigate, resolve, close, cancel */
int ic_update(ic_call *c);
int ic_sev(ic_call *c);
int ic_raise(ic_call *c);
int ic_assign(ic_call *c);
/* The incident named by the only argument (or the channel's), looked
 * up: *out = {"incident": ...}. Anything more is a usage error. */
int ic_lookup_only(ic_call *c, const char *verb, char *id, size_t idlen,
		   json_t **out);
int ic_status(ic_call *c);
int ic_list(ic_call *c);

/* --- target.c: which incident a command is about ------------------------ */

/* The incident named by the first argument: "INC-7"/"inc-7" always, a
 * bare "7" when at least `min_rest` arguments follow it; else the incident
 * the channel is bound to. Writes "INC-n" to id and the index of the first argument
 * after the id to *next. On failure answers the user and returns IM_E*. */
int ic_target(ic_call *c, size_t min_rest, char *id, size_t idlen,
	      size_t *next);
/* "INC-7" from "INC-7", "inc-7" or "7"; false when it is not an id. */
bool ic_parse_id(const char *s, char *id, size_t idlen);
/* Binds the invocation's channel to `id`; false without binding. */
bool ic_bind(ic_call *c, const char *id);
/* Removes the channel's binding when it names `id`. True when removed. */
bool ic_unbind(ic_call *c, const char *id);

/* --- op.c: incident operations and replies ------------------------------ */

/* ic_op for a write whose reply may be built once it is durable, so the
 * verb can run where the command arrived without waiting for the disk
 * (host incident_op_then). done(c, out, ctx, text) builds the reply from a
 * successful answer, inside this call or later on a host thread: there `c`
 * holds the invocation's platform, channel, user and command only, and
 * must not block. `ctx` is kept as is, `text` copied. Failures are told
 * as ic_op tells them. Returns what invoke() returns. */
typedef int (*ic_done_fn)(ic_call *c, const json_t *out, const void *ctx,
			  const char *text);
int ic_op_then(ic_call *c, const char *op, json_t *args, const char *what,
	       ic_done_fn done, const void *ctx, const char *text);
/* Runs host->incident_op with the actor added. `args` is stolen. On
 * success returns 0 and *out (caller decrefs); on failure answers the user
 * with "Could not <what>: <message>" and returns IM_E*. */
int ic_op(ic_call *c, const char *op, json_t *args, const char *what,
	  json_t **out);
/* Sets the reply's text (printf-style) and visibility; returns `rc` so a
 * verb can `return ic_say(c, IM_EINVAL, ...)`. */
int ic_say(ic_call *c, int rc, int visibility, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An ephemeral error naming the verb's usage after `fmt`. */
int ic_usage(ic_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The chat command as typed ("/incident"), for usage hints. */
const char *ic_cmd(const ic_call *c);
/* The acting user's name for messages. */
const char *ic_who(const ic_call *c);
/* Severity "SEV-1".."SEV-4" from "SEV-2", "sev2", "2", "major"...; 0 when
 * it is none of those. */
int ic_sev_parse(const char *s);
extern const char ic_sev_help[];

/* --- render.c: incidents as text, fields and buttons -------------------- */

/* A string member, or NULL. */
const char *ic_str(const json_t *o, const char *key);
/* A string member, or "?" so that it can go into text as is. */
const char *ic_text(const json_t *o, const char *key);
/* "[INC-7](url)" or "INC-7" into buf. */
const char *ic_link(const json_t *inc, char *buf, size_t len);
/* Adds Status, Severity, Service, Commander fields and the buttons that
 * make sense in the incident's state. */
int ic_card(ic_call *c, const json_t *inc);

#endif
