/* Incident writes: each one validates its input, then hands an apply
 * function to repo_commit (commit.c), which runs it in the group writer's
 * transaction with the idempotency record and the outbox rows. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "incident/internal.h"

enum { F_TITLE = 1, F_DESC = 2, F_SERVICE = 4, F_SEV = 8, F_COMMANDER = 16 };

/* --- small helpers ------------------------------------------------------ */

static size_t utf8_len(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* Trimmed copy of a JSON string field, checked for type and length.
 * Returns 0 (absent: *out NULL), 1 (set), or -1 (err filled). */
static int text_field(const json_t *fields, const char *name, size_t max,
		      bool allow_null, char **out, im_err *err)
{
	const json_t *v = json_object_get(fields, name);
	*out = NULL;
	if (!v)
		return 0;
	if (json_is_null(v) && allow_null)
		return 1;
	if (!json_is_string(v)) {
		set_err(err, 400, "invalid_field", "%s must be a string", name);
		return -1;
	}
	const char *s = json_string_value(v);
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	size_t len = strlen(s);
	while (len && strchr(" \t\r\n", s[len - 1]))
		len--;
	*out = strndup(s, len);
	if (!*out) {
		set_err(err, 500, "internal", "out of memory");
		return -1;
	}
	if (utf8_len(*out) > max) {
		set_err(err, 400, "too_long",
			"%s is %zu characters; the limit is %zu", name,
			utf8_len(*out), max);
		free(*out);
		*out = NULL;
		return -1;
	}
	return 1;
}

static int sev_field(const json_t *fields, int *sev, im_err *err)
{
	const json_t *v = json_object_get(fields, "severity");
	if (!v)
		return 0;
	*sev = json_is_string(v) ? im_inc_sev_parse(json_string_value(v))
				 : json_is_integer(v) &&
					   json_integer_value(v) >= 1 &&
					   json_integer_value(v) <= 4
				       ? (int)json_integer_value(v)
				       : 0;
	if (*sev)
		return 1;
	set_err(err, 400, "invalid_severity",
		"unknown severity %s%s%s; use SEV-1 (critical), SEV-2 (major), "
		"SEV-3 (minor) or SEV-4 (informational)",
		json_is_string(v) ? "'" : "",
		json_is_string(v) ? json_string_value(v) : "value",
		json_is_string(v) ? "'" : "");
	return -1;
}

static int only_fields(const json_t *fields, const char *const *known,
		       im_err *err)
{
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)fields, key, v)
	{
		bool ok = false;
		for (const char *const *k = known; *k && !ok; k++)
			ok = strcmp(*k, key) == 0;
		if (!ok) {
			char list[256] = "";
			for (const char *const *k = known; *k; k++)
				snprintf(list + strlen(list),
					 sizeof(list) - strlen(list), "%s%s",
					 k == known ? "" : ", ", *k);
			set_err(err, 400, "unknown_field",
				"unknown field '%s'; known fields: %s", key,
				list);
			return -1;
		}
	}
	return 0;
}

static long long max_of(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = im_store_stmt(db, sql);
	long long v = 0;
	if (st && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	im_store_stmt_done(st);
	return v;
}

/* Appends one event for the row as it is now; its text and the row's
 * become out's (the last event of a write wins). Takes `change`. Only
 * texts are made here, on the writer thread: no JSON trees (the event's
 * parts are kept for whoever needs them, see im_write_trees). */
static int append_event(sqlite3 *db, op *o, const inc_row *row,
			const char *verb, json_t *change, im_write *out)
{
	/* Never more than OP_EVENTS: see there. */
	event_parts *parts =
	    o->n_ev < OP_EVENTS ? calloc(1, sizeof(*parts)) : NULL;
	if (!parts) {
		json_decref(change);
		return IM_EIO;
	}
	char type[64];
	snprintf(type, sizeof(type), "im.incident.%s", verb);
	long long seq = max_of(db, "SELECT COALESCE(MAX(seq), 0) FROM events") + 1;
	/* One incident text for the event and the answer. */
	im_buf ib = IM_BUF_INIT;
	row_text(&ib, row);
	char *inc_text = im_buf_take(&ib, NULL), *text = NULL, *answer = NULL;
	if (event_parts_make(parts, type, seq, row, change, o->who) &&
	    inc_text && (text = event_text(parts, inc_text)))
		answer = strdup(text);
	sqlite3_stmt *st = answer ? im_store_stmt(db, "INSERT INTO events(seq, "
						      "incident, type, time, "
						      "body) VALUES (?, ?, ?, "
						      "?, ?)")
				  : NULL;
	int rc = IM_EIO;
	if (st) {
		sqlite3_bind_int64(st, 1, seq);
		sqlite3_bind_int64(st, 2, row->num);
		sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, row->updated);
		sqlite3_bind_text(st, 5, text, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : IM_EIO;
		im_store_stmt_done(st);
	}
	if (rc != 0) {
		event_parts_free(parts);
		free(parts);
		free(inc_text);
		free(text);
		free(answer);
		return rc;
	}
	o->ev[o->n_ev++] = (struct op_event){.parts = parts, .text = text};
	free(out->event_json);
	out->event_json = answer;
	free(out->incident_json);
	out->incident_json = inc_text;
	return 0;
}

/* The columns an update sets. Only those are written, so an index whose
 * columns it does not set (status, severity, service) is left alone: an
 * ack rewrites the status index, not all three. */
enum {
	COL_TITLE = 1 << 0,
	COL_DESC = 1 << 1,
	COL_SEV = 1 << 2,
	COL_STATUS = 1 << 3,
	COL_SERVICE = 1 << 4,
	COL_COMMANDER = 1 << 5,
	COL_DUP = 1 << 6,
	COL_UPDATED = 1 << 7,
	COL_ALL = (1 << 8) - 1,
};

static const char *const col_names[] = {
    "title", "description", "severity", "status", "service",
    "commander", "duplicate_of", "updated_at"};

static void bind_col(sqlite3_stmt *st, int i, int col, const inc_row *r)
{
	switch (col) {
	case COL_TITLE:
		sqlite3_bind_text(st, i, r->title, -1, SQLITE_STATIC);
		break;
	case COL_DESC:
		sqlite3_bind_text(st, i, r->description ? r->description : "",
				  -1, SQLITE_STATIC);
		break;
	case COL_SEV:
		sqlite3_bind_int(st, i, r->sev);
		break;
	case COL_STATUS:
		sqlite3_bind_text(st, i, im_inc_state_name(r->status), -1,
				  SQLITE_STATIC);
		break;
	case COL_SERVICE:
		sqlite3_bind_text(st, i, r->service, -1, SQLITE_STATIC);
		break;
	case COL_COMMANDER:
		sqlite3_bind_text(st, i, r->commander, -1, SQLITE_STATIC);
		break;
	case COL_DUP:
		sqlite3_bind_text(st, i, r->duplicate_of, -1, SQLITE_STATIC);
		break;
	default:
		sqlite3_bind_int64(st, i, r->updated);
	}
}

/* INSERT (cols ignored) or UPDATE of the columns in `cols`. */
static int row_save(sqlite3 *db, const inc_row *r, bool insert, int cols)
{
	char sql[256];
	if (insert) {
		snprintf(sql, sizeof(sql),
			 "INSERT INTO incidents(title, description, severity, "
			 "status, service, commander, duplicate_of, "
			 "updated_at, created_at, number) VALUES "
			 "(?,?,?,?,?,?,?,?,?,?)");
		cols = COL_ALL;
	} else {
		size_t n = (size_t)snprintf(sql, sizeof(sql),
					    "UPDATE incidents SET ");
		for (int c = 0; c < 8; c++)
			if (cols & (1 << c))
				n += (size_t)snprintf(sql + n, sizeof(sql) - n,
						      "%s%s=?",
						      sql[n - 1] == ' ' ? ""
									: ", ",
						      col_names[c]);
		snprintf(sql + n, sizeof(sql) - n, " WHERE number=?");
	}
	sqlite3_stmt *st = im_store_stmt(db, sql);
	if (!st)
		return IM_EIO;
	inc_cache_written(r->num);
	int i = 1;
	for (int c = 0; c < 8; c++)
		if (cols & (1 << c))
			bind_col(st, i++, 1 << c, r);
	if (insert)
		sqlite3_bind_int64(st, i++, r->created);
	sqlite3_bind_int64(st, i, r->num);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : IM_EIO;
	im_store_stmt_done(st);
	return rc;
}

/* Loads the row named by o->id; 404 when absent. */
static int load(sqlite3 *db, op *o, inc_row *row, im_err *err)
{
	int rc = row_load(db, o->num, row);
	if (rc == IM_ENOTFOUND)
		set_not_found(err, o->id);
	else if (rc != 0)
		set_db_err(err, db, "load");
	return rc;
}

static bool resolve_id(op *o, const char *id, im_err *err)
{
	o->id = id ? id : "";
	if (parse_id(id, &o->num))
		return true;
	set_err(err, 404, "not_found",
		"'%s' is not an incident id; ids look like INC-7", o->id);
	return false;
}

/* --- declare -------------------------------------------------------------- */

static int apply_declare(sqlite3 *db, op *o, im_write *out, im_err *err)
{
	inc_row row = {
	    .num = max_of(db, "SELECT COALESCE(MAX(number), 0) FROM incidents") + 1,
	    .title = o->title,
	    .description = o->description,
	    .service = o->service,
	    .commander = o->commander,
	    .sev = o->sev,
	    .status = IM_INC_OPEN,
	};
	row.created = row.updated = now_ms();
	int rc = row_save(db, &row, true, COL_ALL);
	if (rc == 0)
		rc = append_event(db, o, &row, "declare", NULL, out);
	if (rc != 0)
		set_db_err(err, db, "declare");
	out->status = 201;
	return rc;
}

static int declare(im_store *st, const json_t *fields, const im_actor *who,
		   const char *idem, im_write *out, im_err *err,
		   const im_write_then *then)
{
	static const char *const known[] = {"title",   "description", "severity",
					    "service", "commander",   NULL};
	op o = {.st = st, .who = who, .sev = 3, .fields = fields};
	int rc = IM_EINVAL;
	if (!json_is_object(fields)) {
		set_err(err, 400, "invalid_body", "expected a JSON object");
		return IM_EINVAL;
	}
	if (only_fields(fields, known, err) < 0 ||
	    text_field(fields, "title", IM_TITLE_MAX, false, &o.title, err) < 0 ||
	    text_field(fields, "description", IM_TEXT_MAX, true,
		       &o.description, err) < 0 ||
	    text_field(fields, "service", IM_TITLE_MAX, true, &o.service,
		       err) < 0 ||
	    text_field(fields, "commander", IM_TITLE_MAX, true, &o.commander,
		       err) < 0 ||
	    sev_field(fields, &o.sev, err) < 0)
		goto done;
	if (!o.title || !*o.title) {
		set_err(err, 400, "missing_title",
			"title is required: a short summary such as "
			"\"Checkout API returns 500\"");
		goto done;
	}
	rc = repo_commit(&o, idem, "declare", apply_declare, out, err, then);
done:
	op_free(&o);
	return rc;
}

int im_inc_declare(im_store *st, const json_t *fields, const im_actor *who,
		   const char *idem, im_write *out, im_err *err)
{
	memset(out, 0, sizeof(*out));
	return declare(st, fields, who, idem, out, err, NULL);
}

int im_inc_declare_async(im_store *st, const json_t *fields,
			 const im_actor *who, const char *idem,
			 const im_write_then *then, im_err *err)
{
	return declare(st, fields, who, idem, NULL, err, then);
}

/* --- transitions ---------------------------------------------------------- */

static int apply_transition(sqlite3 *db, op *o, im_write *out, im_err *err)
{
	inc_row row;
	int rc = load(db, o, &row, err);
	if (rc != 0)
		return rc;
	char id[32];
	snprintf(id, sizeof(id), "INC-%lld", row.num);
	if (!im_inc_can(row.status, o->to)) {
		char next[128];
		im_inc_next_text(row.status, next, sizeof(next));
		set_err(err, 409, "illegal_transition",
			"%s is %s and cannot become %s; from %s it can go to: %s",
			id, im_inc_state_name(row.status),
			im_inc_state_name(o->to), im_inc_state_name(row.status),
			next);
		row_free(&row);
		return IM_ECONFLICT;
	}
	json_t *change = json_pack("{s:s,s:s}", "from",
				   im_inc_state_name(row.status), "to",
				   im_inc_state_name(o->to));
	if (o->text)
		json_object_set_new(change, "note", json_string(o->text));
	if (o->to == IM_INC_DUPLICATE) {
		long long target;
		const char *of = json_string_value(
		    json_object_get(o->fields, "duplicate_of"));
		inc_row t;
		if (!of || !parse_id(of, &target)) {
			set_err(err, 400, "missing_duplicate_of",
				"duplicate needs duplicate_of: the id of the "
				"incident this one repeats, e.g. INC-3");
			rc = IM_EINVAL;
		} else if (target == row.num) {
			set_err(err, 400, "invalid_duplicate_of",
				"%s cannot be a duplicate of itself", id);
			rc = IM_EINVAL;
		} else if (row_load(db, target, &t) != 0) {
			set_err(err, 400, "invalid_duplicate_of",
				"duplicate_of names INC-%lld, which does not "
				"exist", target);
			rc = IM_EINVAL;
		} else {
			row_free(&t);
			free(row.duplicate_of);
			char buf[32];
			snprintf(buf, sizeof(buf), "INC-%lld", target);
			row.duplicate_of = strdup(buf);
			json_object_set_new(change, "duplicate_of",
					    json_string(buf));
		}
	}
	if (rc == 0) {
		row.status = o->to;
		row.updated = now_ms();
		rc = row_save(db, &row, false,
			      COL_STATUS | COL_DUP | COL_UPDATED);
		if (rc == 0)
			rc = append_event(db, o, &row, im_inc_verb(o->to),
					  json_incref(change), out);
		if (rc != 0)
			set_db_err(err, db, "transition");
	}
	json_decref(change);
	row_free(&row);
	return rc;
}

static int transition(im_store *st, const char *id, im_inc_state to,
		      const json_t *fields, const im_actor *who,
		      const char *idem, im_write *out, im_err *err,
		      const im_write_then *then)
{
	static const char *const known[] = {"note", "duplicate_of", NULL};
	op o = {.st = st, .who = who, .to = (int)to, .fields = fields};
	char *note = NULL;
	if (!resolve_id(&o, id, err))
		return IM_ENOTFOUND;
	if (to == IM_INC_OPEN || (unsigned)to >= IM_INC_N_STATES) {
		set_err(err, 400, "invalid_transition",
			"an incident cannot be moved back to open");
		return IM_EINVAL;
	}
	if (fields && (!json_is_object(fields) ||
		       only_fields(fields, known, err) < 0 ||
		       text_field(fields, "note", IM_TEXT_MAX, true, &note,
				  err) < 0)) {
		if (!json_is_object(fields))
			set_err(err, 400, "invalid_body",
				"expected a JSON object");
		return IM_EINVAL;
	}
	o.text = note;
	char scope[64];
	snprintf(scope, sizeof(scope), "INC-%lld:%s", o.num, im_inc_verb(to));
	int rc = repo_commit(&o, idem, scope, apply_transition, out, err, then);
	op_free(&o);
	return rc;
}

int im_inc_transition(im_store *st, const char *id, im_inc_state to,
		      const json_t *fields, const im_actor *who,
		      const char *idem, im_write *out, im_err *err)
{
	memset(out, 0, sizeof(*out));
	return transition(st, id, to, fields, who, idem, out, err, NULL);
}

int im_inc_transition_async(im_store *st, const char *id, im_inc_state to,
			    const json_t *fields, const im_actor *who,
			    const char *idem, const im_write_then *then,
			    im_err *err)
{
	return transition(st, id, to, fields, who, idem, NULL, err, then);
}

/* --- notes ---------------------------------------------------------------- */

static int apply_note(sqlite3 *db, op *o, im_write *out, im_err *err)
{
	inc_row row;
	int rc = load(db, o, &row, err);
	if (rc != 0)
		return rc;
	row.updated = now_ms();
	rc = row_save(db, &row, false, COL_UPDATED);
	if (rc == 0)
		rc = append_event(db, o, &row, "note",
				  json_pack("{s:s}", "text", o->text), out);
	if (rc != 0)
		set_db_err(err, db, "note");
	row_free(&row);
	return rc;
}

static int note(im_store *st, const char *id, const char *text,
		const im_actor *who, const char *idem, im_write *out,
		im_err *err, const im_write_then *then)
{
	op o = {.st = st, .who = who};
	if (!resolve_id(&o, id, err))
		return IM_ENOTFOUND;
	json_t *f = json_pack("{s:s?}", "text", text);
	char *t = NULL;
	int rc = text_field(f, "text", IM_TEXT_MAX, false, &t, err);
	json_decref(f);
	if (rc < 0)
		return IM_EINVAL;
	if (!t || !*t) {
		free(t);
		set_err(err, 400, "missing_text",
			"a note needs text: {\"text\": \"what happened\"}");
		return IM_EINVAL;
	}
	o.text = t;
	char scope[64];
	snprintf(scope, sizeof(scope), "INC-%lld:note", o.num);
	rc = repo_commit(&o, idem, scope, apply_note, out, err, then);
	op_free(&o);
	return rc;
}

int im_inc_note(im_store *st, const char *id, const char *text,
		const im_actor *who, const char *idem, im_write *out,
		im_err *err)
{
	memset(out, 0, sizeof(*out));
	return note(st, id, text, who, idem, out, err, NULL);
}

int im_inc_note_async(im_store *st, const char *id, const char *text,
		      const im_actor *who, const char *idem,
		      const im_write_then *then, im_err *err)
{
	return note(st, id, text, who, idem, NULL, err, then);
}

/* --- audit ---------------------------------------------------------------- */

static int apply_audit(sqlite3 *db, op *o, im_write *out, im_err *err)
{
	inc_row row;
	int rc = load(db, o, &row, err);
	if (rc != 0)
		return rc;
	row.updated = now_ms(); /* the event's time; the row is not saved */
	rc = append_event(db, o, &row, "audit", json_deep_copy(o->fields),
			  out);
	if (rc != 0)
		set_db_err(err, db, "audit");
	row_free(&row);
	return rc;
}

int im_inc_audit(im_store *st, const char *id, const json_t *data,
		 const im_actor *who, im_err *err)
{
	op o = {.st = st, .who = who, .fields = data};
	im_write w;
	memset(&w, 0, sizeof(w));
	if (!resolve_id(&o, id, err))
		return IM_ENOTFOUND;
	int rc = repo_commit(&o, NULL, "audit", apply_audit, &w, err, NULL);
	im_write_clear(&w);
	op_free(&o);
	return rc;
}

/* --- patch ---------------------------------------------------------------- */

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Replaces *slot with `v` (copied) and records from/to in `change`. */
static void change_str(json_t *change, const char *key, char **slot,
		       const char *v)
{
	json_object_set_new(change, key,
			    json_pack("{s:s?,s:s?}", "from", *slot, "to", v));
	free(*slot);
	*slot = v ? strdup(v) : NULL;
}

static int apply_patch(sqlite3 *db, op *o, im_write *out, im_err *err)
{
	inc_row row;
	int rc = load(db, o, &row, err);
	if (rc != 0)
		return rc;
	json_t *upd = json_object();
	int cols = COL_UPDATED;
	if ((o->set & F_TITLE) && !str_eq(row.title, o->title)) {
		change_str(upd, "title", &row.title, o->title);
		cols |= COL_TITLE;
	}
	if ((o->set & F_DESC) && !str_eq(row.description, o->description)) {
		change_str(upd, "description", &row.description,
			   o->description);
		cols |= COL_DESC;
	}
	if ((o->set & F_SERVICE) && !str_eq(row.service, o->service)) {
		change_str(upd, "service", &row.service, o->service);
		cols |= COL_SERVICE;
	}
	row.updated = now_ms();
	if (json_object_size(upd))
		rc = row_save(db, &row, false, cols) ||
		     append_event(db, o, &row, "update", json_incref(upd), out);
	if (rc == 0 && (o->set & F_SEV) && row.sev != o->sev) {
		json_t *c = json_pack("{s:s,s:s}", "from",
				      im_inc_sev_name(row.sev), "to",
				      im_inc_sev_name(o->sev));
		row.sev = o->sev;
		rc = row_save(db, &row, false, COL_SEV | COL_UPDATED) ||
		     append_event(db, o, &row, "severity", c, out);
	}
	if (rc == 0 && (o->set & F_COMMANDER) &&
	    !str_eq(row.commander, o->commander)) {
		json_t *c = json_object();
		change_str(c, "commander", &row.commander, o->commander);
		json_t *cc = json_incref(json_object_get(c, "commander"));
		json_decref(c);
		rc = row_save(db, &row, false, COL_COMMANDER | COL_UPDATED) ||
		     append_event(db, o, &row, "assign", cc, out);
	}
	if (rc != 0)
		set_db_err(err, db, "update");
	else if (!out->incident_json) { /* nothing changed */
		im_buf b = IM_BUF_INIT;
		row_text(&b, &row);
		if (!(out->incident_json = im_buf_take(&b, NULL))) {
			set_err(err, 500, "internal", "out of memory");
			rc = IM_ENOMEM;
		}
	}
	json_decref(upd);
	row_free(&row);
	return rc ? IM_EIO : 0;
}

static int patch(im_store *st, const char *id, const json_t *fields,
		 const im_actor *who, const char *idem, im_write *out,
		 im_err *err, const im_write_then *then)
{
	static const char *const known[] = {"title",	"description",
					    "service",	"severity",
					    "commander", NULL};
	op o = {.st = st, .who = who, .fields = fields};
	if (!resolve_id(&o, id, err))
		return IM_ENOTFOUND;
	int rc = IM_EINVAL;
	if (!json_is_object(fields)) {
		set_err(err, 400, "invalid_body", "expected a JSON object");
		return IM_EINVAL;
	}
	if (json_object_get(fields, "status")) {
		set_err(err, 400, "status_not_patchable",
			"change the status with POST /api/v1/incidents/%s/"
			"<ack|mitigate|resolve|close|cancel|duplicate>",
			id);
		return IM_EINVAL;
	}
	int t, d, s, c, v;
	if (only_fields(fields, known, err) < 0 ||
	    (t = text_field(fields, "title", IM_TITLE_MAX, false, &o.title,
			    err)) < 0 ||
	    (d = text_field(fields, "description", IM_TEXT_MAX, true,
			    &o.description, err)) < 0 ||
	    (s = text_field(fields, "service", IM_TITLE_MAX, true, &o.service,
			    err)) < 0 ||
	    (c = text_field(fields, "commander", IM_TITLE_MAX, true,
			    &o.commander, err)) < 0 ||
	    (v = sev_field(fields, &o.sev, err)) < 0)
		goto done;
	if (t && (!o.title || !*o.title)) {
		set_err(err, 400, "missing_title", "title cannot be empty");
		goto done;
	}
	o.set = (t ? F_TITLE : 0) | (d ? F_DESC : 0) | (s ? F_SERVICE : 0) |
		(c ? F_COMMANDER : 0) | (v ? F_SEV : 0);
	char scope[64];
	snprintf(scope, sizeof(scope), "INC-%lld:patch", o.num);
	rc = repo_commit(&o, idem, scope, apply_patch, out, err, then);
done:
	op_free(&o);
	return rc;
}

int im_inc_patch(im_store *st, const char *id, const json_t *fields,
		 const im_actor *who, const char *idem, im_write *out,
		 im_err *err)
{
	memset(out, 0, sizeof(*out));
	return patch(st, id, fields, who, idem, out, err, NULL);
}

int im_inc_patch_async(im_store *st, const char *id, const json_t *fields,
		       const im_actor *who, const char *idem,
		       const im_write_then *then, im_err *err)
{
	return patch(st, id, fields, who, idem, NULL, err, then);
}
