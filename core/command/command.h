/*
 * core/command - chat commands: the reply builder, routing of verbs and
 * buttons to command components, the command budget and follow-ups.
 *
 * Threads: replies are built on the worker that runs a command and read
 * by whoever answers; one owner at a time, handed over with the reply.
 */
#ifndef IM_CORE_COMMAND_H
#define IM_CORE_COMMAND_H

#include <stdbool.h>

#include <jansson.h>

#include <im/im.h>

im_reply *im_reply_new(void);
void im_reply_free(im_reply *r);
int im_reply_set_text(im_reply *r, const char *markdown);
int im_reply_set_visibility(im_reply *r, int visibility);
int im_reply_add_field(im_reply *r, const char *title, const char *value,
		       int is_short);
int im_reply_add_action(im_reply *r, const char *action_id, const char *label,
			const char *value, const char *style);
/* The reply as connectors see it (im/command.h); new reference. */
json_t *im_reply_json(const im_reply *r, const char *status);
const char *im_reply_text(const im_reply *r);
/* Writes answered later (im_host.incident_op_then). A reply may wait for
 * a write only when its verb runs on the thread that received the command
 * (allow_wait, set by dispatch); wait_on records the write it waits for,
 * once (false when it may not wait, or already does; l NULL forgets it). */
struct im_cmd_later;
void im_reply_allow_wait(im_reply *r);
bool im_reply_wait_on(im_reply *r, struct im_cmd_later *l);
struct im_cmd_later *im_reply_later(const im_reply *r);

/* --- dispatch (dispatch.c) --------------------------------------------- */

/* First answer to a chat command: the result when ready within the
 * budget, else {"status":"working",...}. Runs exactly once, on the
 * dispatching thread (help, unknown verb, denied), a worker or the budget
 * timer. `reply` is borrowed. */
typedef void (*im_cmd_first_fn)(void *ud, const im_invocation *inv,
				const json_t *reply);

/* Routes `inv` (typed text or a button) from connector instance `conn` to
 * a command component and runs it on a worker. Copies `inv`. A result that
 * misses the budget goes to the connector's followup(). */
int im_command_dispatch(im_instance *conn, const im_invocation *inv,
			im_cmd_first_fn first, void *ud);
/* The same for a command that arrived as an HTTP request, on its worker:
 * a verb flagged IM_VERB_FAST runs right here, and help, unknown verbs
 * and denials are answered here too, all through first() before this
 * returns. Only when the verb goes to a command worker is
 * before_queue(ud) called first (still on this thread), so the caller
 * can defer its response; a non-zero return from it cancels the run. */
int im_command_dispatch_http(im_instance *conn, const im_invocation *inv,
			     im_cmd_first_fn first, void *ud,
			     int (*before_queue)(void *ud));
/* incident_op_then's rendezvous (dispatch.c). begin: when `r` may wait,
 * a record of the write it will wait for (then NULL: run it now). done:
 * the write's outcome, exactly once, from any thread; then() runs once
 * both the outcome and the command's deferred answer are there. cancel:
 * nothing was queued after all (then() is the caller's to run). */
typedef int (*im_reply_then_fn)(void *ud, im_reply *reply, int rc,
				const json_t *out);
struct im_cmd_later *im_cmd_later_begin(im_reply *r, im_reply_then_fn then,
					void *ud);
struct im_op_outcome;
void im_cmd_later_done(struct im_cmd_later *l, int rc,
		       struct im_op_outcome *o);
void im_cmd_later_cancel(struct im_cmd_later *l);
/* Budget (seconds, default 1) and chatops.permissions (verb -> ids;
 * borrowed, copied). Any thread; applies to new invocations. */
void im_command_configure(double budget_s, const json_t *permissions);
/* The store for audit events of denied commands and for incident_op
 * (may be NULL); also installs the command entries of the host table
 * (host_entries.c). Call once at start-up, before plugins are created. */
struct im_store;
void im_command_bind_store(struct im_store *st);
struct im_store *im_command_store(void);
/* host_entries.c: puts command_handle, command_dispatch, the reply
 * builder and incident_op into the host table (core/plugin). */
void im_command_install_host_entries(void);
/* Registers chatops_command_latency_seconds with its buckets, so the
 * family is listed (and right) before the first command. */
void im_command_register_metrics(void);
/* Stops the timer thread and waits (bounded) for running commands. */
void im_command_shutdown(void);

/* --- incidents for plugins (incident_op.c) ------------------------------- */

struct im_store;
/* im_host.incident_op over the store; see im/host.h. */
int im_incident_op(struct im_store *st, const char *op, const json_t *args,
		   json_t **out);
/* True for the operations that write: declare, transition, note, patch. */
bool im_incident_op_writes(const char *op);
/* A queued write's outcome as it leaves the writer thread. Its answer
 * ({"incident", "event", "replayed"}, or {"error"}) is made by whoever
 * takes it, with im_op_outcome_json (which frees it; NULL for NULL or out
 * of memory), so the writer thread builds no JSON. */
typedef struct im_op_outcome im_op_outcome;
json_t *im_op_outcome_json(im_op_outcome *o);
/* Queues write `op` and returns 0: cb(ud, rc, outcome) follows exactly
 * once on the store's writer thread once it is durable or failed; the
 * outcome is the callee's. Input refused before anything was queued (or
 * an op that does not write): IM_E* with *out the error answer (new), and
 * cb never runs. */
typedef void (*im_incident_op_cb)(void *ud, int rc, im_op_outcome *o);
int im_incident_op_async(struct im_store *st, const char *op,
			 const json_t *args, im_incident_op_cb cb, void *ud,
			 json_t **out);

#endif
