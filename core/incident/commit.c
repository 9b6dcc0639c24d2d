/* Incident writes on their way to disk: the idempotency check and
 * record, the outbox hook and the bus publish around each write, run as
 * jobs of the store's group writer (core/store/writer.c). A write is
 * answered only when its batch is durable, and published in commit order
 * (the writer thread runs every job's done() in order). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "incident/internal.h"

static void drop_events(op *o)
{
	for (int i = 0; i < o->n_ev; i++) {
		event_parts_free(o->ev[i].parts);
		free(o->ev[i].parts);
		free(o->ev[i].text);
	}
	o->n_ev = 0;
}

void op_free(op *o)
{
	free(o->title);
	free(o->description);
	free(o->service);
	free(o->commander);
	free(o->text);
	drop_events(o);
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
	sqlite3_stmt *st = im_store_stmt(
	    db, "SELECT scope, status, response FROM idempotency WHERE key = ?");
	if (!st) {
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
	im_store_stmt_done(st);
	return rc;
}

static int idem_store(sqlite3 *db, const char *key, const char *scope,
		      const im_write *w)
{
	char *text = NULL;
	if (!w->incident_json ||
	    asprintf(&text, "{\"incident\":%s,\"event\":%s}",
		     w->incident_json,
		     w->event_json ? w->event_json : "null") < 0)
		text = NULL;
	sqlite3_stmt *st = text ? im_store_stmt(db,
						"INSERT INTO idempotency(key, "
						"scope, status, response, "
						"created_at) VALUES (?, ?, ?, "
						"?, ?)")
				: NULL;
	int rc = IM_EIO;
	if (st) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, scope, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, w->status);
		sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, now_ms());
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : IM_EIO;
		im_store_stmt_done(st);
	}
	free(text);
	return rc;
}

static im_repo_outbox_fn outbox_hook;

void im_repo_set_outbox_hook(im_repo_outbox_fn fn)
{
	__atomic_store_n(&outbox_hook, fn, __ATOMIC_RELEASE);
}

/* Outbox rows for the new events, in this transaction. */
static int run_outbox(sqlite3 *db, op *o, im_err *err)
{
	im_repo_outbox_fn fn = __atomic_load_n(&outbox_hook, __ATOMIC_ACQUIRE);
	for (int i = 0; fn && i < o->n_ev; i++) {
		const event_parts *p = o->ev[i].parts;
		im_repo_event ev = {.seq = p->seq,
				    .type = p->type,
				    .incident = p->row.num,
				    .sev = p->row.sev,
				    .service = p->row.service};
		if (fn(db, &ev) != 0) {
			set_db_err(err, db, "notification outbox");
			return IM_EIO;
		}
	}
	return 0;
}

/* --- pruning idempotency keys -------------------------------------------- */

typedef struct prune {
	long long older_than;
	int n;
} prune;

static int apply_prune(sqlite3 *db, void *ud)
{
	prune *p = ud;
	sqlite3_stmt *q =
	    im_store_stmt(db, "DELETE FROM idempotency WHERE created_at < ?");
	if (!q)
		return IM_EIO;
	sqlite3_bind_int64(q, 1, p->older_than);
	int rc = sqlite3_step(q) == SQLITE_DONE ? 0 : IM_EIO;
	if (rc == 0)
		p->n = sqlite3_changes(db);
	im_store_stmt_done(q);
	return rc;
}

int im_repo_prune_idempotency(im_store *st, long long older_than_ms)
{
	prune p = {.older_than = older_than_ms};
	int rc = im_store_write(st, apply_prune, NULL, &p);
	return rc == 0 ? p.n : IM_EIO;
}

static void prune_done(void *ud, int rc)
{
	(void)rc;
	free(ud);
}

/* Keys are kept a day (clients retry within minutes); pruned every 1,024
 * keyed writes so the table stays small without a timer. Queued, never
 * waited for: the caller may be an HTTP worker. */
static void maybe_prune(im_store *st)
{
	static unsigned long writes;
	if ((__atomic_add_fetch(&writes, 1, __ATOMIC_RELAXED) & 1023) != 0)
		return;
	prune *p = calloc(1, sizeof(*p));
	if (!p)
		return;
	p->older_than = now_ms() - IM_IDEMPOTENCY_TTL_MS;
	if (im_store_submit(st, apply_prune, prune_done, p) != 0)
		free(p);
}

/* --- write jobs ----------------------------------------------------------- */

typedef struct wjob {
	op o;
	apply_fn apply;
	const char *idem;
	char *ikey, *iscope;
	im_write *out;
	im_err *err;
	im_write_then then; /* cb NULL: a caller waits */
	/* What an asynchronous job owns of the caller's borrowed input. */
	im_write own_out;
	im_err own_err;
	im_actor who;
	char *who_id, *who_name, *who_via, *id, *idem_copy;
	json_t *fields;
} wjob;

static int job_apply(sqlite3 *db, void *ud)
{
	wjob *j = ud;
	op *o = &j->o;
	im_write *out = j->out;
	int rc = j->idem ? idem_lookup(db, j->ikey, j->idem, j->iscope, out,
				       j->err)
			 : 0;
	if (rc != 0)
		return rc > 0 ? 0 : IM_EINVAL;
	out->status = 200;
	rc = j->apply(db, o, out, j->err);
	if (rc == 0)
		rc = run_outbox(db, o, j->err);
	if (rc == 0 && j->idem &&
	    idem_store(db, j->ikey, j->iscope, out) != 0) {
		set_db_err(j->err, db, "idempotency record");
		rc = IM_EIO;
	}
	if (rc != 0)
		drop_events(o);
	return rc;
}

static void job_free(wjob *j)
{
	op_free(&j->o);
	free(j->ikey);
	free(j->iscope);
	if (j->then.cb) {
		im_write_clear(&j->own_out);
		free(j->who_id);
		free(j->who_name);
		free(j->who_via);
		free(j->id);
		free(j->idem_copy);
		json_decref(j->fields);
		free(j);
	}
}

/* On the writer thread, in commit order. */
static void job_done(void *ud, int rc)
{
	wjob *j = ud;
	/* Before anybody hears of the write: no cached row from before it. */
	inc_cache_committed();
	if (rc != 0) {
		im_write_clear(j->out);
		drop_events(&j->o);
		if (j->err->status == 0)
			set_err(j->err, 500, "storage_error",
				"the write could not be stored; see the "
				"server log");
	} else {
		for (int i = 0; i < j->o.n_ev; i++) {
			struct op_event *e = &j->o.ev[i];
			char subject[32];
			snprintf(subject, sizeof(subject), "INC-%lld",
				 e->parts->row.num);
			im_bus_publish_text(e->parts->seq, e->parts->type,
					    subject, e->text);
			e->text = NULL; /* the bus's now */
		}
		if (j->o.n_ev) { /* the answer's event: its parts go along */
			struct op_event *last = &j->o.ev[j->o.n_ev - 1];
			j->out->parts = last->parts;
			last->parts = NULL;
		}
	}
	if (!j->then.cb)
		return;
	j->then.cb(j->then.ud, rc, j->out, j->err);
	job_free(j);
}

/* An asynchronous job keeps copies of what the caller lends (job_free
 * frees them, also after a failed copy). */
static bool take_ownership(wjob *j)
{
	op *o = &j->o;
	const im_actor *who = o->who;
	j->out = &j->own_out;
	j->err = &j->own_err;
	j->fields = json_incref((json_t *)o->fields);
	if (who) {
		bool ok = dup_into(&j->who_id, who->id) &&
			  dup_into(&j->who_name, who->name) &&
			  dup_into(&j->who_via, who->via);
		j->who = (im_actor){
		    .id = j->who_id, .name = j->who_name, .via = j->who_via};
		o->who = &j->who;
		if (!ok)
			return false;
	}
	bool ok = dup_into(&j->id, o->id) && dup_into(&j->idem_copy, j->idem);
	o->id = j->id;
	j->idem = j->idem_copy;
	return ok;
}

int repo_commit(op *o, const char *idem, const char *scope, apply_fn apply,
		im_write *out, im_err *err, const im_write_then *then)
{
	if (out)
		memset(out, 0, sizeof(*out));
	if (idem && (!*idem || strlen(idem) > 200)) {
		set_err(err, 400, "invalid_idempotency_key",
			"Idempotency-Key must be 1 to 200 characters");
		return IM_EINVAL;
	}
	wjob here = {.o = *o, .apply = apply, .idem = idem, .out = out,
		     .err = err};
	wjob *j = then ? malloc(sizeof(*j)) : &here;
	if (!j) {
		set_err(err, 500, "internal", "out of memory");
		return IM_ENOMEM;
	}
	if (then) {
		*j = here;
		j->then = *then;
		memset(o, 0, sizeof(*o)); /* the job owns it now */
	}
	bool ok = !then || take_ownership(j);
	if (ok && idem) {
		maybe_prune(j->o.st);
		j->ikey = idem_key(&j->o, j->idem);
		j->iscope = idem_scope(&j->o, scope);
		ok = j->ikey && j->iscope;
	}
	int rc = ok ? 0 : IM_ENOMEM;
	if (rc == 0)
		rc = then ? im_store_submit(j->o.st, job_apply, job_done, j)
			  : im_store_write(j->o.st, job_apply, job_done, j);
	if (rc != 0 && err->status == 0) {
		if (rc == IM_ENOMEM)
			set_err(err, 500, "internal", "out of memory");
		else if (rc == IM_ECONFLICT)
			set_err(err, 503, "stopping", "the server is stopping");
		else
			set_err(err, 500, "storage_error",
				"the write could not be stored; see the "
				"server log");
	}
	if (then) {
		if (rc != 0)
			job_free(j);
		return rc;
	}
	/* A waited job: the rest of o stays the caller's; the trees are
	 * made here, on the caller's thread. */
	drop_events(&j->o);
	if (rc == 0 && out && !im_write_trees(out)) {
		im_write_clear(out);
		set_err(err, 500, "internal", "out of memory");
		rc = IM_ENOMEM;
	}
	free(j->ikey);
	free(j->iscope);
	return rc;
}
