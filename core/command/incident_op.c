/* im_host.incident_op: the incident repository as JSON operations, so
 * command plugins never see core structs. */
#include <stdio.h>
#include <string.h>

#include "command/command.h"
#include "incident/repo.h"

static json_t *error_json(const im_err *e)
{
	return json_pack("{s:{s:i,s:s,s:s}}", "error", "status", e->status,
			 "code", e->code, "message", e->message);
}

static json_t *write_json(im_write *w)
{
	json_t *o = json_pack("{s:O?,s:O?,s:b}", "incident", w->incident,
			      "event", w->event, "replayed", w->replayed);
	im_write_clear(w);
	return o;
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

int im_incident_op(struct im_store *st, const char *op, const json_t *args,
		   json_t **out)
{
	*out = NULL;
	if (!st || !op || !json_is_object(args))
		return IM_EINVAL;
	const json_t *a = json_object_get(args, "actor");
	im_actor who = {.id = str(a, "id"), .name = str(a, "name"),
			.via = str(a, "via")};
	const char *idem = str(args, "idempotency_key");
	const char *id = str(args, "id");
	im_write w;
	im_err err = {0};
	int rc;
	if (strcmp(op, "declare") == 0) {
		rc = im_inc_declare(st, json_object_get(args, "fields"), &who,
				    idem, &w, &err);
	} else if (strcmp(op, "transition") == 0) {
		int to = im_inc_verb_target(str(args, "verb"));
		if (to < 0) {
			snprintf(err.message, sizeof(err.message),
				 "unknown transition '%s'", str(args, "verb"));
			err.status = 400;
			snprintf(err.code, sizeof(err.code), "invalid_verb");
			rc = IM_EINVAL;
		} else {
			json_t *f = json_pack("{s:O?,s:O?}", "note",
					      json_object_get(args, "note"),
					      "duplicate_of",
					      json_object_get(args,
							      "duplicate_of"));
			rc = im_inc_transition(st, id, (im_inc_state)to, f,
					       &who, idem, &w, &err);
			json_decref(f);
		}
	} else if (strcmp(op, "note") == 0) {
		rc = im_inc_note(st, id, str(args, "text"), &who, idem, &w,
				 &err);
	} else if (strcmp(op, "patch") == 0) {
		rc = im_inc_patch(st, id, json_object_get(args, "fields"), &who,
				  idem, &w, &err);
	} else if (strcmp(op, "get") == 0) {
		json_t *inc = NULL;
		rc = im_inc_get(st, id, &inc, &err);
		if (rc == 0)
			*out = json_pack("{s:o}", "incident", inc);
		return rc == 0 ? 0 : (*out = error_json(&err), rc);
	} else if (strcmp(op, "list") == 0) {
		json_int_t limit = json_integer_value(json_object_get(args,
								      "limit"));
		im_inc_filter f = {.status = str(args, "status"),
				   .severity = str(args, "severity"),
				   .service = str(args, "service"),
				   .cursor = str(args, "cursor"),
				   .limit = (int)limit};
		rc = im_inc_list(st, &f, out, &err);
		return rc == 0 ? 0 : (*out = error_json(&err), rc);
	} else {
		*out = json_pack("{s:{s:i,s:s,s:s}}", "error", "status", 400,
				 "code", "unknown_op", "message",
				 "unknown incident operation");
		return IM_EINVAL;
	}
	*out = rc == 0 ? write_json(&w) : error_json(&err);
	return rc;
}
