/* im_host.incident_op and incident_op_then: the incident repository as
 * JSON operations, so command plugins never see core structs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command/command.h"
#include "incident/repo.h"

static json_t *error_json(const im_err *e)
{
	return json_pack("{s:{s:i,s:s,s:s}}", "error", "status", e->status,
			 "code", e->code, "message", e->message);
}

/* The answer of a write; NULL when out of memory. */
static json_t *write_json(im_write *w)
{
	if (!im_write_trees(w)) {
		im_write_clear(w);
		return NULL;
	}
	json_t *o = json_pack("{s:O?,s:O?,s:b}", "incident", w->incident,
			      "event", w->event, "replayed", w->replayed);
	im_write_clear(w);
	return o;
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* A write's arguments, read once for both forms. */
typedef struct op_args {
	im_actor who;
	const char *idem, *id;
	const json_t *args;
} op_args;

static op_args read_args(const json_t *args)
{
	const json_t *a = json_object_get(args, "actor");
	return (op_args){.who = {.id = str(a, "id"), .name = str(a, "name"),
				 .via = str(a, "via")},
			 .idem = str(args, "idempotency_key"),
			 .id = str(args, "id"),
			 .args = args};
}

static int bad_verb(const op_args *a, im_err *err)
{
	snprintf(err->message, sizeof(err->message), "unknown transition '%s'",
		 str(a->args, "verb"));
	err->status = 400;
	snprintf(err->code, sizeof(err->code), "invalid_verb");
	return IM_EINVAL;
}

/* The fields of a transition: its note and duplicate_of. */
static json_t *transition_fields(const op_args *a)
{
	return json_pack("{s:O?,s:O?}", "note",
			 json_object_get(a->args, "note"), "duplicate_of",
			 json_object_get(a->args, "duplicate_of"));
}

/* Runs write `op` now (then == NULL: into *w) or queues it (then). 1 when
 * `op` is not a write. */
static int write_op(struct im_store *st, const char *op, const op_args *a,
		    const im_write_then *then, im_write *w, im_err *err)
{
	const json_t *fields = json_object_get(a->args, "fields");
	if (strcmp(op, "declare") == 0)
		return then ? im_inc_declare_async(st, fields, &a->who, a->idem,
						   then, err)
			    : im_inc_declare(st, fields, &a->who, a->idem, w,
					     err);
	if (strcmp(op, "transition") == 0) {
		int to = im_inc_verb_target(str(a->args, "verb"));
		if (to < 0)
			return bad_verb(a, err);
		json_t *f = transition_fields(a);
		int rc = then ? im_inc_transition_async(st, a->id,
							(im_inc_state)to, f,
							&a->who, a->idem, then,
							err)
			      : im_inc_transition(st, a->id, (im_inc_state)to,
						  f, &a->who, a->idem, w, err);
		json_decref(f);
		return rc;
	}
	if (strcmp(op, "note") == 0) {
		const char *text = str(a->args, "text");
		return then ? im_inc_note_async(st, a->id, text, &a->who,
						a->idem, then, err)
			    : im_inc_note(st, a->id, text, &a->who, a->idem, w,
					  err);
	}
	if (strcmp(op, "patch") == 0)
		return then ? im_inc_patch_async(st, a->id, fields, &a->who,
						 a->idem, then, err)
			    : im_inc_patch(st, a->id, fields, &a->who, a->idem,
					   w, err);
	return 1;
}

bool im_incident_op_writes(const char *op)
{
	static const char *const writes[] = {"declare", "transition", "note",
					     "patch"};
	for (size_t i = 0; op && i < sizeof(writes) / sizeof(*writes); i++)
		if (strcmp(op, writes[i]) == 0)
			return true;
	return false;
}

int im_incident_op(struct im_store *st, const char *op, const json_t *args,
		   json_t **out)
{
	*out = NULL;
	if (!st || !op || !json_is_object(args))
		return IM_EINVAL;
	op_args a = read_args(args);
	im_write w;
	im_err err = {0};
	int rc = write_op(st, op, &a, NULL, &w, &err);
	if (rc == 1 && strcmp(op, "get") == 0) {
		json_t *inc = NULL;
		rc = im_inc_get(st, a.id, &inc, &err);
		if (rc == 0)
			*out = json_pack("{s:o}", "incident", inc);
		return rc == 0 ? 0 : (*out = error_json(&err), rc);
	} else if (rc == 1 && strcmp(op, "list") == 0) {
		json_int_t limit = json_integer_value(json_object_get(args,
								      "limit"));
		im_inc_filter f = {.status = str(args, "status"),
				   .severity = str(args, "severity"),
				   .service = str(args, "service"),
				   .cursor = str(args, "cursor"),
				   .limit = (int)limit};
		rc = im_inc_list(st, &f, out, &err);
		return rc == 0 ? 0 : (*out = error_json(&err), rc);
	} else if (rc == 1) {
		*out = json_pack("{s:{s:i,s:s,s:s}}", "error", "status", 400,
				 "code", "unknown_op", "message",
				 "unknown incident operation");
		return IM_EINVAL;
	}
	*out = rc == 0 ? write_json(&w) : error_json(&err);
	return rc;
}

/* A queued write, then its outcome. */
struct im_op_outcome {
	im_incident_op_cb cb;
	void *ud;
	int rc;
	im_write w;
	im_err err;
};

/* On the writer thread: the outcome moves on as it is, no JSON made. */
static void op_written(void *ud, int rc, im_write *w, const im_err *err)
{
	im_op_outcome *o = ud;
	o->rc = rc;
	o->w = *w;
	memset(w, 0, sizeof(*w));
	o->err = *err;
	o->cb(o->ud, rc, o);
}

json_t *im_op_outcome_json(im_op_outcome *o)
{
	if (!o)
		return NULL;
	/* write_json clears the write; a failed one has nothing left. */
	json_t *out = o->rc == 0 ? write_json(&o->w) : error_json(&o->err);
	free(o);
	return out;
}

int im_incident_op_async(struct im_store *st, const char *op,
			 const json_t *args, im_incident_op_cb cb, void *ud,
			 json_t **out)
{
	*out = NULL;
	if (!st || !cb || !im_incident_op_writes(op) || !json_is_object(args))
		return IM_EINVAL;
	im_op_outcome *q = calloc(1, sizeof(*q));
	if (!q)
		return IM_ENOMEM;
	q->cb = cb;
	q->ud = ud;
	op_args a = read_args(args);
	im_err err = {0};
	im_write_then then = {.cb = op_written, .ud = q};
	int rc = write_op(st, op, &a, &then, NULL, &err);
	if (rc != 0) {
		free(q);
		*out = error_json(&err);
	}
	return rc;
}
