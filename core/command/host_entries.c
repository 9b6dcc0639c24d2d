/* The chat-command half of the im_host table: command_handle and
 * command_dispatch for connectors, the reply builder and incident_op for
 * command components. core/plugin owns the table and knows nothing of
 * commands; im_command_bind_store installs these entries in it
 * (im_host_install_commands), once, before plugins are created. */
#include <stdlib.h>
#include <string.h>

#include "command/command.h"
#include "http/http.h"
#include "plugin/plugin.h"

static int h_reply_text(im_reply *r, const char *md)
{
	return im_reply_set_text(r, md);
}

static int h_reply_visibility(im_reply *r, int v)
{
	return im_reply_set_visibility(r, v);
}

static int h_reply_field(im_reply *r, const char *t, const char *v, int s)
{
	return im_reply_add_field(r, t, v, s);
}

static int h_reply_action(im_reply *r, const char *id, const char *label,
			  const char *value, const char *style)
{
	return im_reply_add_action(r, id, label, value, style);
}

/* command_dispatch for plugins: their callback has no invocation. */
typedef struct first_thunk {
	void (*first)(void *ud, const json_t *reply);
	void *ud;
} first_thunk;

static void thunk_first(void *ud, const im_invocation *inv,
			const json_t *reply)
{
	first_thunk *t = ud;
	t->first(t->ud, reply);
	free(t);
}

static int h_command_dispatch(im_instance *in, const im_invocation *inv,
			      void (*first)(void *, const json_t *), void *ud)
{
	if (!in || !inv || !first)
		return IM_EINVAL;
	first_thunk *t = malloc(sizeof(*t));
	if (!t)
		return IM_ENOMEM;
	*t = (first_thunk){first, ud};
	int rc = im_command_dispatch(in, inv, thunk_first, t);
	if (rc != 0)
		free(t);
	return rc;
}

/* command_handle: the first answer goes into the response itself when it
 * comes before the route handler returns (fast verbs, help, denials), else
 * it completes the deferred response, shaped by the connector's answer(). */
typedef struct handle {
	im_http_response *resp; /* until deferred */
	im_http_deferred *d;
	im_instance *inst;
	bool *deferred; /* the route handler's own flag (its stack) */
} handle;

static void complete_from(im_http_deferred *d, im_http_response *r)
{
	const char *hdrs[33];
	size_t n = 0;
	for (im_http_hdr_node *h = r->headers; h && n < 31; h = h->next) {
		hdrs[n++] = h->name;
		hdrs[n++] = h->value;
	}
	hdrs[n] = NULL;
	im_deferred_complete(d, r->status, r->content_type, r->body,
			     r->body_len, hdrs);
}

static void handle_first(void *ud, const im_invocation *inv,
			 const json_t *reply)
{
	handle *h = ud;
	const im_connector *c = im_instance_connector(h->inst);
	im_http_response r = {0};
	im_http_response *out = h->d ? &r : h->resp;
	int rc = c && c->answer ? c->answer(h->inst->state, inv, reply, out)
				: IM_EUNSUPPORTED;
	if (rc != 0 || out->status == 0) {
		im_http_response_clear(out);
		im_resp_json(out, 200, json_deep_copy(reply));
	}
	if (h->d) {
		complete_from(h->d, &r);
		im_http_response_clear(&r);
		free(h);
	}
}

static int handle_defer(void *ud)
{
	handle *h = ud;
	h->d = im_resp_defer(h->resp);
	*h->deferred = h->d != NULL;
	return h->d ? 0 : IM_ENOMEM;
}

static int h_command_handle(im_instance *in, const im_invocation *inv,
			    im_http_response *resp)
{
	if (!in || !inv || !resp)
		return IM_EINVAL;
	handle *h = calloc(1, sizeof(*h));
	if (!h)
		return IM_ENOMEM;
	/* Once deferred, a command worker owns (and frees) h: from then on
	 * only this flag says what happened. */
	bool deferred = false;
	h->inst = in;
	h->resp = resp;
	h->deferred = &deferred;
	int rc = im_command_dispatch_http(in, inv, handle_first, h,
					  handle_defer);
	if (rc != 0) {
		/* No first answer will come: answer the request here. */
		const char *msg = "{\"text\":\"the command could not be started\"}";
		if (deferred)
			im_deferred_complete(h->d, 503, "application/json", msg,
					     strlen(msg), NULL);
		else
			im_resp_set(resp, 503, "application/json", msg,
				    strlen(msg));
		free(h);
	} else if (!deferred) {
		free(h); /* answered here, in the response */
	}
	return 0;
}

static int h_incident_op(im_instance *in, const char *op, const json_t *args,
			 json_t **out)
{
	if (!out)
		return IM_EINVAL;
	*out = NULL;
	struct im_store *st = im_command_store();
	if (!st)
		return IM_EUNSUPPORTED;
	return im_incident_op(st, op, args, out);
}

/* incident_op_then: a write from a verb running where the command arrived
 * is queued, and its reply waits for it (dispatch.c); anything else runs
 * now and then() with it. */
static void later_written(void *ud, int rc, im_op_outcome *o)
{
	im_cmd_later_done(ud, rc, o);
}

static int h_incident_op_then(im_instance *in, const char *op,
			      const json_t *args, im_reply *reply,
			      im_reply_then_fn then, void *ud)
{
	(void)in;
	if (!then)
		return IM_EINVAL;
	if (!reply || im_reply_later(reply)) {
		then(ud, NULL, IM_EINVAL, NULL);
		return IM_EINVAL;
	}
	struct im_store *st = im_command_store();
	json_t *out = NULL;
	int rc = IM_EUNSUPPORTED;
	struct im_cmd_later *l = st && im_incident_op_writes(op)
					 ? im_cmd_later_begin(reply, then, ud)
					 : NULL;
	if (l) {
		rc = im_incident_op_async(st, op, args, later_written, l, &out);
		if (rc == 0)
			return IM_EASYNC;
		im_cmd_later_cancel(l);
	} else if (st) {
		rc = im_incident_op(st, op, args, &out);
	}
	int r = then(ud, reply, rc, out);
	json_decref(out);
	return r;
}

/* command_verbs: every verb of the running command components, first
 * server of a name wins (as routing does). */
static int h_command_verbs(im_instance *in, json_t **out)
{
	(void)in;
	if (!out)
		return IM_EINVAL;
	*out = json_array();
	if (!*out)
		return IM_ENOMEM;
	json_t *seen = json_object();
	im_snapshot *s = im_registry_acquire();
	for (size_t i = 0; s && i < s->n; i++) {
		const im_instance *ci = s->insts[i];
		if (ci->st != IM_STATE_RUNNING)
			continue;
		for (size_t c = 0; c < ci->mod->n_commands; c++)
			for (const im_command_verb *v = ci->mod->commands[c]->verbs;
			     v && v->name; v++) {
				if (json_object_get(seen, v->name))
					continue;
				json_object_set_new(seen, v->name, json_true());
				json_array_append_new(
				    *out, json_pack("{s:s,s:s,s:s,s:s}", "command",
						    "/incident", "verb", v->name,
						    "usage", v->usage ? v->usage : v->name,
						    "summary", v->summary ? v->summary : ""));
			}
	}
	im_registry_release(s);
	json_decref(seen);
	return 0;
}

static const im_host_commands entries = {
    .command_verbs = h_command_verbs,
    .command_handle = h_command_handle,
    .command_dispatch = h_command_dispatch,
    .reply_text = h_reply_text,
    .reply_visibility = h_reply_visibility,
    .reply_field = h_reply_field,
    .reply_action = h_reply_action,
    .incident_op = h_incident_op,
    .incident_op_then = h_incident_op_then,
};

void im_command_install_host_entries(void)
{
	im_host_install_commands(&entries);
}
