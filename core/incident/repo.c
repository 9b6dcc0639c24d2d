/* Incident writes: each one validates, then in one transaction changes the
 * row, appends its events and records the idempotency key, and publishes
 * the events on the bus after commit, still under the store lock so the
 * bus sees them in timeline order. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "incident/internal.h"

typedef struct op {
	im_store *st;
	const char *id;         /* "INC-7", for messages */
	long long num;
	const json_t *fields;
	const im_actor *who;
	int to;                 /* transition target */
	const char *text;       /* note */
	json_t *pending;        /* events to publish after commit */
	/* validated declare/patch values */
	char *title, *description, *service, *commander;
	int sev;
	unsigned set;           /* which of the above PATCH sets */
} op;

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

static void op_free(op *o)
{
	free(o->title);
	free(o->description);
	free(o->service);
	free(o->commander);
	json_decref(o->pending);
}

/* --- the transaction ---------------------------------------------------- */

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0
								    : IM_EIO;
}

/* An Idempotency-Key belongs to its caller: the stored key is
 * "<actor id>\x1f<key>", so another token's request with the same key is
 * a request of its own, never answered with this caller's result. The
 * stored scope is "<operation>#<fingerprint of the request>", so the same
 * key with another body is refused (422) instead of answered with the
 * first body's result. */
static char *idem_key(const op *o, const char *key)
{
	const char *who = o->who && o->who->id ? o->who->id : "";
	size_t n = strlen(who) + strlen(key) + 2;
	char *k = malloc(n);
	if (k)
		snprintf(k, n, "%s\x1f%s", who, key);
	return k;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; s && *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* "<scope>#<16 hex digits>" of the operation and its input (malloc'd). */
static char *idem_scope(const op *o, const char *scope)
{
	char *body = o->fields ? json_dumps(o->fields, JSON_COMPACT |
						       JSON_SORT_KEYS |
						       JSON_ENCODE_ANY)
			       : NULL;
	uint64_t h = fnv1a(1469598103934665603ULL, scope);
	h = fnv1a(fnv1a(h, "\n"), body);
	h = fnv1a(fnv1a(h, "\n"), o->text);
	free(body);
	size_t n = strlen(scope) + 18;
	char *out = malloc(n);
	if (out)
		snprintf(out, n, "%s#%016llx", scope, (unsigned long long)h);
	return out;
}

/* 1 = answered from a stored key, 0 = new, -1 = err filled. */
static int idem_lookup(sqlite3 *db, const char *key, const char *shown,
		       const char *scope, im_write *out, im_err *err)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db,
			       "SELECT scope, status, response FROM idempotency "
			       "WHERE key = ?",
			       -1, &st, NULL) != SQLITE_OK) {
		set_db_err(err, db, "idempotency lookup");
		return -1;
	}
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int rc = 0;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *sc = (const char *)sqlite3_column_text(st, 0);
		if (strcmp(sc ? sc : "", scope) != 0) {
			const char *hash = sc ? strrchr(sc, '#') : NULL;
			int len = hash ? (int)(hash - sc) : (int)strlen(sc ? sc : "?");
			set_err(err, 422, "idempotency_key_reused",
				"Idempotency-Key '%s' was already used for a "
				"different request (%.*s%s); a key stands for "
				"one request body: use a new key",
				shown, len, sc ? sc : "?",
				hash && !strncmp(sc, scope, (size_t)len) &&
					scope[len] == '#'
				    ? " with another body"
				    : "");
			rc = -1;
		} else {
			json_error_t je;
			json_t *r = json_loads(
			    (const char *)sqlite3_column_text(st, 2), 0, &je);
			out->status = sqlite3_column_int(st, 1);
			out->incident = json_incref(json_object_get(r, "incident"));
			out->event = json_incref(json_object_get(r, "event"));
			out->replayed = true;
			json_decref(r);
			rc = 1;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

static int idem_store(sqlite3 *db, const char *key, const char *scope,
		      const im_write *w)
{
	json_t *r = json_pack("{s:O?,s:O?}", "incident", w->incident, "event",
			      w->event);
	char *text = r ? json_dumps(r, JSON_COMPACT) : NULL;
	json_decref(r);
	sqlite3_stmt *st;
	int rc = IM_EIO;
	if (text && sqlite3_prepare_v2(db,
				       "INSERT INTO idempotency(key, scope, "
				       "status, response, created_at) "
				       "VALUES (?, ?, ?, ?, ?)",
				       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, scope, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, w->status);
		sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, now_ms());
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : IM_EIO;
		sqlite3_finalize(st);
	}
	free(text);
	return rc;
}

static long long max_of(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = 0;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return v;
}

/* Appends one event for the row as it is now; it becomes out->event. */
static int append_event(sqlite3 *db, op *o, const inc_row *row,
			const char *verb, json_t *change, im_write *out)
{
	char type[64];
	snprintf(type, sizeof(type), "im.incident.%s", verb);
	long long seq = max_of(db, "SELECT COALESCE(MAX(seq), 0) FROM events") + 1;
	json_t *data = json_pack("{s:o,s:o,s:o}", "incident", row_json(row),
				 "change", change ? change : json_object(),
				 "actor", actor_json(o->who));
	json_t *ev = data ? event_new(type, row->num, seq, row->updated, data)
			  : NULL;
	char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	sqlite3_stmt *st;
	int rc = IM_EIO;
	if (text && sqlite3_prepare_v2(db,
				       "INSERT INTO events(seq, incident, type, "
				       "time, body) VALUES (?, ?, ?, ?, ?)",
				       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, seq);
		sqlite3_bind_int64(st, 2, row->num);
		sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, row->updated);
		sqlite3_bind_text(st, 5, text, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : IM_EIO;
		sqlite3_finalize(st);
	}
	free(text);
	if (rc == 0) {
		json_array_append(o->pending, ev);
		json_decref(out->event);
		out->event = ev;
		json_decref(out->incident);
		out->incident = row_json(row);
	} else {
		json_decref(ev);
	}
	return rc;
}

static int row_save(sqlite3 *db, const inc_row *r, bool insert)
{
	sqlite3_stmt *st;
	const char *sql =
	    insert ? "INSERT INTO incidents(title, description, severity, "
		     "status, service, commander, duplicate_of, created_at, "
		     "updated_at, number) VALUES (?,?,?,?,?,?,?,?,?,?)"
		   : "UPDATE incidents SET title=?, description=?, severity=?, "
		     "status=?, service=?, commander=?, duplicate_of=?, "
		     "created_at=?, updated_at=? WHERE number=?";
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return IM_EIO;
	sqlite3_bind_text(st, 1, r->title, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->description ? r->description : "", -1,
			  SQLITE_STATIC);
	sqlite3_bind_int(st, 3, r->sev);
	sqlite3_bind_text(st, 4, im_inc_state_name(r->status), -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->service, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, r->commander, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, r->duplicate_of, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, r->created);
	sqlite3_bind_int64(st, 9, r->updated);
	sqlite3_bind_int64(st, 10, r->num);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : IM_EIO;
	sqlite3_finalize(st);
	return rc;
}

typedef int (*apply_fn)(sqlite3 *db, op *o, im_write *out, im_err *err);

static im_repo_outbox_fn outbox_hook;

void im_repo_set_outbox_hook(im_repo_outbox_fn fn)
{
	__atomic_store_n(&outbox_hook, fn, __ATOMIC_RELEASE);
}

/* Outbox rows for the new events, in this transaction. */
static int run_outbox(sqlite3 *db, op *o, im_err *err)
{
	im_repo_outbox_fn fn = __atomic_load_n(&outbox_hook, __ATOMIC_ACQUIRE);
	size_t i;
	json_t *ev;
	if (!fn)
		return 0;
	json_array_foreach(o->pending, i, ev)
	{
		if (fn(db, ev) != 0) {
			set_db_err(err, db, "notification outbox");
			return IM_EIO;
		}
	}
	return 0;
}

int im_repo_prune_idempotency(im_store *st, long long older_than_ms)
{
	sqlite3 *db = im_store_db(st);
	sqlite3_stmt *q;
	int n = IM_EIO;
	im_store_lock(st);
	if (sqlite3_prepare_v2(db,
			       "DELETE FROM idempotency WHERE created_at < ?",
			       -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, older_than_ms);
		if (sqlite3_step(q) == SQLITE_DONE)
			n = sqlite3_changes(db);
		sqlite3_finalize(q);
	}
	im_store_unlock(st);
	return n;
}

/* Keys are kept a day (clients retry within minutes); pruned every 1,024
 * keyed writes so the table stays small without a timer. */
static void maybe_prune(im_store *st)
{
	static unsigned long writes;
	if ((__atomic_add_fetch(&writes, 1, __ATOMIC_RELAXED) & 1023) == 0)
		im_repo_prune_idempotency(st, now_ms() - IM_IDEMPOTENCY_TTL_MS);
}

static int run(op *o, const char *idem, const char *scope, apply_fn apply,
	       im_write *out, im_err *err)
{
	memset(out, 0, sizeof(*out));
	if (idem && (!*idem || strlen(idem) > 200)) {
		set_err(err, 400, "invalid_idempotency_key",
			"Idempotency-Key must be 1 to 200 characters");
		return IM_EINVAL;
	}
	sqlite3 *db = im_store_db(o->st);
	o->pending = json_array();
	char *ikey = NULL, *iscope = NULL;
	if (idem) {
		maybe_prune(o->st);
		ikey = idem_key(o, idem);
		iscope = idem_scope(o, scope);
		if (!ikey || !iscope) {
			free(ikey);
			free(iscope);
			set_err(err, 500, "internal", "out of memory");
			return IM_ENOMEM;
		}
	}
	im_store_lock(o->st);
	int rc = idem ? idem_lookup(db, ikey, idem, iscope, out, err) : 0;
	if (rc != 0) {
		im_store_unlock(o->st);
		free(ikey);
		free(iscope);
		return rc > 0 ? 0 : IM_EINVAL;
	}
	if (exec(db, "BEGIN IMMEDIATE") != 0) {
		set_db_err(err, db, "begin");
		im_store_unlock(o->st);
		free(ikey);
		free(iscope);
		return IM_EIO;
	}
	out->status = 200;
	rc = apply(db, o, out, err);
	if (rc == 0)
		rc = run_outbox(db, o, err);
	if (rc == 0 && idem && idem_store(db, ikey, iscope, out) != 0) {
		set_db_err(err, db, "idempotency record");
		rc = IM_EIO;
	}
	if (rc == 0 && exec(db, "COMMIT") != 0) {
		set_db_err(err, db, "commit");
		rc = IM_EIO;
	}
	if (rc != 0) {
		exec(db, "ROLLBACK");
		im_write_clear(out);
	} else {
		size_t i;
		json_t *ev;
		json_array_foreach(o->pending, i, ev)
		    im_bus_publish(
			json_integer_value(json_object_get(ev, "sequence")),
			json_string_value(json_object_get(ev, "type")),
			json_string_value(json_object_get(ev, "subject")), ev);
	}
	im_store_unlock(o->st);
	free(ikey);
	free(iscope);
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
	int rc = row_save(db, &row, true);
	if (rc == 0)
		rc = append_event(db, o, &row, "declare", NULL, out);
	if (rc != 0)
		set_db_err(err, db, "declare");
	out->status = 201;
	return rc;
}

int im_inc_declare(im_store *st, const json_t *fields, const im_actor *who,
		   const char *idem, im_write *out, im_err *err)
{
	static const char *const known[] = {"title",   "description", "severity",
					    "service", "commander",   NULL};
	op o = {.st = st, .who = who, .sev = 3, .fields = fields};
	memset(out, 0, sizeof(*out));
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
	rc = run(&o, idem, "declare", apply_declare, out, err);
done:
	op_free(&o);
	return rc;
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
		rc = row_save(db, &row, false);
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

int im_inc_transition(im_store *st, const char *id, im_inc_state to,
		      const json_t *fields, const im_actor *who,
		      const char *idem, im_write *out, im_err *err)
{
	static const char *const known[] = {"note", "duplicate_of", NULL};
	op o = {.st = st, .who = who, .to = (int)to, .fields = fields};
	char *note = NULL;
	memset(out, 0, sizeof(*out));
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
	int rc = run(&o, idem, scope, apply_transition, out, err);
	free(note);
	op_free(&o);
	return rc;
}

/* --- notes ---------------------------------------------------------------- */

static int apply_note(sqlite3 *db, op *o, im_write *out, im_err *err)
{
	inc_row row;
	int rc = load(db, o, &row, err);
	if (rc != 0)
		return rc;
	row.updated = now_ms();
	rc = row_save(db, &row, false);
	if (rc == 0)
		rc = append_event(db, o, &row, "note",
				  json_pack("{s:s}", "text", o->text), out);
	if (rc != 0)
		set_db_err(err, db, "note");
	row_free(&row);
	return rc;
}

int im_inc_note(im_store *st, const char *id, const char *text,
		const im_actor *who, const char *idem, im_write *out,
		im_err *err)
{
	op o = {.st = st, .who = who};
	memset(out, 0, sizeof(*out));
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
	rc = run(&o, idem, scope, apply_note, out, err);
	free(t);
	op_free(&o);
	return rc;
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
	int rc = run(&o, NULL, "audit", apply_audit, &w, err);
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
	if ((o->set & F_TITLE) && !str_eq(row.title, o->title))
		change_str(upd, "title", &row.title, o->title);
	if ((o->set & F_DESC) && !str_eq(row.description, o->description))
		change_str(upd, "description", &row.description,
			   o->description);
	if ((o->set & F_SERVICE) && !str_eq(row.service, o->service))
		change_str(upd, "service", &row.service, o->service);
	row.updated = now_ms();
	if (json_object_size(upd))
		rc = row_save(db, &row, false) ||
		     append_event(db, o, &row, "update", json_incref(upd), out);
	if (rc == 0 && (o->set & F_SEV) && row.sev != o->sev) {
		json_t *c = json_pack("{s:s,s:s}", "from",
				      im_inc_sev_name(row.sev), "to",
				      im_inc_sev_name(o->sev));
		row.sev = o->sev;
		rc = row_save(db, &row, false) ||
		     append_event(db, o, &row, "severity", c, out);
	}
	if (rc == 0 && (o->set & F_COMMANDER) &&
	    !str_eq(row.commander, o->commander)) {
		json_t *c = json_object();
		change_str(c, "commander", &row.commander, o->commander);
		json_t *cc = json_incref(json_object_get(c, "commander"));
		json_decref(c);
		rc = row_save(db, &row, false) ||
		     append_event(db, o, &row, "assign", cc, out);
	}
	if (rc != 0)
		set_db_err(err, db, "update");
	else if (!out->incident)
		out->incident = row_json(&row); /* nothing changed */
	json_decref(upd);
	row_free(&row);
	return rc ? IM_EIO : 0;
}

int im_inc_patch(im_store *st, const char *id, const json_t *fields,
		 const im_actor *who, const char *idem, im_write *out,
		 im_err *err)
{
	static const char *const known[] = {"title",	"description",
					    "service",	"severity",
					    "commander", NULL};
	op o = {.st = st, .who = who, .fields = fields};
	memset(out, 0, sizeof(*out));
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
	rc = run(&o, idem, scope, apply_patch, out, err);
done:
	op_free(&o);
	return rc;
}
