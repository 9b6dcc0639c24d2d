/*
 * Fuzz target rest_json: the bodies of the REST writes.
 *
 * core/api/incidents.c reads a write body with json_loadb (duplicate keys
 * refused) and hands the object to the repository; that reader is static,
 * so this target does the same and calls the repository entry points
 * against an in-memory store:
 *   im_inc_declare, im_inc_patch, im_inc_transition (the verb from
 *   "_verb"), im_inc_note (when there is a string "text"), im_inc_get,
 *   im_inc_timeline.
 * Members a REST call carries outside the body are taken out of the
 * object first: "_idem" (the Idempotency-Key header), "_id" (the incident
 * in the path; default: the incident just declared, else INC-1) and
 * "_verb" (the action in the path).
 *
 * Contract: each call returns 0 with an incident and a CloudEvent that
 * serialize (a patch that changes nothing: the incident alone), or fails
 * with an im_err whose status is 4xx, whose code is set and whose message
 * is valid UTF-8 (errors become JSON: im_incident_op's {"error":..} for
 * command plugins; REST answers escape bad bytes themselves). A write
 * repeated with the same idempotency key answers the first result.
 *
 * The store starts over every 512 inputs; until then an input sees what
 * the earlier ones wrote (also when the corpus is replayed).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "bus/bus.h"
#include "fuzz.h"
#include "incident/repo.h"
#include "log/log.h"

#define RESET_EVERY 512

static im_store *st;
static unsigned runs;
static const im_actor who = {.id = "U1", .name = "Ada", .via = "api"};

static void check_err(const char *what, int rc, const im_err *err)
{
	FUZZ_CHECK(rc < 0, "%s: returned %d", what, rc);
	FUZZ_CHECK(err->status >= 400 && err->status < 500,
		   "%s: failed (%d) with status %d, code '%s': %s", what, rc,
		   err->status, err->code, err->message);
	FUZZ_CHECK(err->code[0], "%s: a %d without a code", what, err->status);
	/* The chat path hands errors to command plugins as JSON built from
	 * the message (im_incident_op): it must stay UTF-8, also when it
	 * was cut to fit im_err. */
	json_t *m = json_string(err->message);
	FUZZ_CHECK(m,
		   "%s: %d %s: the message is not valid UTF-8 (cut inside a "
		   "character?), so no JSON error can be built from it: %s",
		   what, err->status, err->code, err->message);
	json_decref(m);
}

static void check_json(const char *what, const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	FUZZ_CHECK(s, "%s: does not serialize", what);
	free(s);
}

/* Returns the incident id of a successful write (borrowed from w). */
static const char *check_write(const char *what, int rc, const im_write *w,
			       const im_err *err)
{
	/* A patch that changes nothing answers the incident alone (and a
	 * replay of that answer has "event": null). */
	bool may_skip_event = !strcmp(what, "patch");
	if (rc != 0) {
		check_err(what, rc, err);
		return NULL;
	}
	FUZZ_CHECK(json_is_object(w->incident), "%s: no incident", what);
	if ((!w->event || json_is_null(w->event)) && may_skip_event) {
		check_json(what, w->incident);
		return json_string_value(json_object_get(w->incident, "id"));
	}
	FUZZ_CHECK(json_is_object(w->event), "%s: no event", what);
	const char *id =
	    json_string_value(json_object_get(w->incident, "id"));
	FUZZ_CHECK(id && strncmp(id, "INC-", 4) == 0, "%s: incident id %s",
		   what, id ? id : "(none)");
	FUZZ_CHECK(json_is_string(json_object_get(w->event, "type")) &&
		       json_is_integer(json_object_get(w->event, "sequence")),
		   "%s: event without type or sequence", what);
	FUZZ_CHECK(w->status == 200 || w->status == 201, "%s: status %d",
		   what, w->status);
	check_json(what, w->incident);
	check_json(what, w->event);
	return id;
}

static void open_store(void)
{
	char err[512];
	if (st)
		im_store_close(st);
	im_bus_reset();
	st = im_store_open(":memory:", err, sizeof(err));
	if (!st)
		FUZZ_FAIL("store: %s", err);
	im_bus_set_start(0);
	/* INC-1, open: the default target of patches and transitions. */
	json_t *f = json_pack("{s:s,s:s}", "title", "Checkout API returns 500",
			      "severity", "SEV-2");
	im_write w = {0};
	im_err e = {0};
	if (im_inc_declare(st, f, &who, NULL, &w, &e) != 0)
		FUZZ_FAIL("seeding: %s", e.message);
	im_write_clear(&w);
	json_decref(f);
}

static void close_store(void)
{
	im_store_close(st);
	st = NULL;
	im_bus_reset();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	im_log_set_level(IM_LOG_ERROR);
	im_repo_set_public_url("https://im.example.com/");
	open_store();
	atexit(close_store);
	return 0;
}

/* A string member taken out of `o` into buf ("" when absent or not a
 * string; NULL then). */
static const char *take(json_t *o, const char *key, char *buf, size_t len)
{
	const char *v = json_string_value(json_object_get(o, key));
	const char *r = NULL;
	if (v) {
		snprintf(buf, len, "%s", v);
		r = buf;
	}
	json_object_del(o, key);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!st)
		LLVMFuzzerInitialize(NULL, NULL);
	if (++runs % RESET_EVERY == 0)
		open_store();
	json_error_t je;
	json_t *in = json_loadb((const char *)data, size,
				JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(in)) {
		json_decref(in);
		return 0; /* the API answers 400 itself */
	}
	/* Room for any string of an input (bench/fuzz.sh: -max_len=4096), so
	 * no copy cuts a UTF-8 sequence. */
	char idem_buf[4100], id_buf[4100], verb_buf[4100];
	const char *idem = take(in, "_idem", idem_buf, sizeof(idem_buf));
	const char *id = take(in, "_id", id_buf, sizeof(id_buf));
	const char *verb = take(in, "_verb", verb_buf, sizeof(verb_buf));

	im_write w = {0};
	im_err err = {0};
	int rc = im_inc_declare(st, in, &who, idem, &w, &err);
	const char *made = check_write("declare", rc, &w, &err);
	char made_id[64] = "";
	if (made)
		snprintf(made_id, sizeof(made_id), "%s", made);
	if (made && idem) {
		im_write again = {0};
		im_err err2 = {0};
		rc = im_inc_declare(st, in, &who, idem, &again, &err2);
		const char *id2 = check_write("declare again", rc, &again,
					      &err2);
		FUZZ_CHECK(again.replayed && id2 && !strcmp(id2, made_id),
			   "declare with a used idempotency key: replayed %d, "
			   "%s instead of %s",
			   again.replayed, id2 ? id2 : "(error)", made_id);
		im_write_clear(&again);
	}
	im_write_clear(&w);
	if (!id)
		id = made_id[0] ? made_id : "INC-1";

	memset(&err, 0, sizeof(err));
	rc = im_inc_patch(st, id, in, &who, idem, &w, &err);
	check_write("patch", rc, &w, &err);
	im_write_clear(&w);

	if (verb) {
		int to = im_inc_verb_target(verb);
		if (to >= 0) {
			memset(&err, 0, sizeof(err));
			rc = im_inc_transition(st, id, (im_inc_state)to, in,
					       &who, idem, &w, &err);
			check_write("transition", rc, &w, &err);
			im_write_clear(&w);
		}
	}
	const char *text = json_string_value(json_object_get(in, "text"));
	if (text) {
		memset(&err, 0, sizeof(err));
		rc = im_inc_note(st, id, text, &who, idem, &w, &err);
		check_write("note", rc, &w, &err);
		im_write_clear(&w);
	}

	json_t *out = NULL;
	memset(&err, 0, sizeof(err));
	rc = im_inc_get(st, id, &out, &err);
	if (rc == 0)
		check_json("get", out);
	else
		check_err("get", rc, &err);
	json_decref(out);
	out = NULL;
	memset(&err, 0, sizeof(err));
	rc = im_inc_timeline(st, id, &out, &err);
	if (rc == 0)
		check_json("timeline", out);
	else
		check_err("timeline", rc, &err);
	json_decref(out);
	json_decref(in);
	return 0;
}
