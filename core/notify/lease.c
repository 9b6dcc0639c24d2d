/* The outbox writes of the delivery path (claims and outcomes) as jobs of
 * the store's group writer. Each of them used to be a transaction of its
 * own under the store lock, and with synchronous=FULL every one waited for
 * an fsync while holding it: a thousand deliveries were a thousand fsyncs
 * in a row, and the incident commits queued behind them. As writer jobs
 * they share the batches (and the fsync) of everything else written at
 * the time.
 *
 * A claim reads its candidates in id order and then leases them, in one
 * job, so no other claim or outcome comes between. `after` lets the
 * dispatcher skip the rows it already holds: they stay in the claim index
 * (leased, not deleted) and a claim from the start would step over all of
 * them every time.
 *
 * An outcome is recorded before the dispatcher hears of it: the delivery
 * thread queues it and goes on with the next send, and the writer calls
 * back once the batch is on disk (or failed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "notify/internal.h"

/* --- claims --------------------------------------------------------------- */

typedef struct claimed {
	struct claimed *next;
	nt_row *row;
	char *instance, *channel;
} claimed;

typedef struct claim_job {
	const char *owner;
	bool critical;
	long long now, lease_until, after;
	int limit;
	claimed *head, **tail;
} claim_job;

static void free_claimed(claimed *c, bool rows)
{
	while (c) {
		claimed *next = c->next;
		if (rows)
			free(c->row);
		free(c->instance);
		free(c->channel);
		free(c);
		c = next;
	}
}

/* One candidate row of the SELECT, copied out of the statement. */
static claimed *read_candidate(sqlite3_stmt *q, bool critical)
{
	claimed *c = calloc(1, sizeof(*c));
	nt_row *r = calloc(1, sizeof(*r));
	const char *inst = (const char *)sqlite3_column_text(q, 6);
	const char *ch = (const char *)sqlite3_column_text(q, 7);
	if (!c || !r || !inst || !ch || !(c->instance = strdup(inst)) ||
	    !(c->channel = strdup(ch))) {
		if (c)
			free(c->instance);
		free(c);
		free(r);
		return NULL;
	}
	r->id = sqlite3_column_int64(q, 0);
	r->incident = sqlite3_column_int64(q, 1);
	r->seq = sqlite3_column_int64(q, 2);
	snprintf(r->type, sizeof(r->type), "%s",
		 (const char *)sqlite3_column_text(q, 3));
	r->sev = sqlite3_column_int(q, 4);
	const char *m = (const char *)sqlite3_column_text(q, 5);
	r->mode = m && *m ? *m : 'u';
	r->critical = critical;
	r->created_ms = sqlite3_column_int64(q, 8);
	r->attempts = sqlite3_column_int(q, 9);
	c->row = r;
	return c;
}

static int claim_apply(sqlite3 *db, void *ud)
{
	claim_job *j = ud;
	sqlite3_stmt *sel = im_store_stmt(
	    db, "SELECT id, incident, event_seq, event_type, severity, mode, "
		"connector, channel, created_at, attempts FROM outbox WHERE "
		"state = 0 AND critical = ?1 AND id > ?2 AND lease_until < ?3 "
		"AND not_before <= ?3 ORDER BY id LIMIT ?4");
	if (!sel)
		return IM_EIO;
	sqlite3_bind_int(sel, 1, j->critical);
	sqlite3_bind_int64(sel, 2, j->after);
	sqlite3_bind_int64(sel, 3, j->now);
	sqlite3_bind_int(sel, 4, j->limit);
	int s, rc = 0;
	while (rc == 0 && (s = sqlite3_step(sel)) == SQLITE_ROW) {
		claimed *c = read_candidate(sel, j->critical);
		if (!c) {
			rc = IM_ENOMEM;
			break;
		}
		*j->tail = c;
		j->tail = &c->next;
	}
	if (rc == 0 && s != SQLITE_DONE)
		rc = IM_EIO;
	im_store_stmt_done(sel);
	/* Leased only once the scan is over: lease_until is part of the
	 * index the SELECT walks. */
	sqlite3_stmt *upd =
	    rc ? NULL
	       : im_store_stmt(db, "UPDATE outbox SET claimed_by = ?1, "
				   "lease_until = ?2 WHERE id = ?3");
	if (rc == 0 && !upd)
		rc = IM_EIO;
	for (claimed *c = j->head; rc == 0 && c; c = c->next) {
		sqlite3_bind_text(upd, 1, j->owner, -1, SQLITE_STATIC);
		sqlite3_bind_int64(upd, 2, j->lease_until);
		sqlite3_bind_int64(upd, 3, c->row->id);
		rc = sqlite3_step(upd) == SQLITE_DONE ? 0 : IM_EIO;
		sqlite3_reset(upd);
	}
	im_store_stmt_done(upd);
	if (rc != 0) {
		LOG_ERROR("notify", "claim: %s",
			  rc == IM_ENOMEM ? "out of memory" : sqlite3_errmsg(db));
		free_claimed(j->head, true);
		j->head = NULL;
		j->tail = &j->head;
	}
	return rc;
}

typedef struct release_job {
	const char *owner;
	const long long *ids;
	size_t n;
} release_job;

static int release_apply(sqlite3 *db, void *ud)
{
	release_job *j = ud;
	sqlite3_stmt *q = im_store_stmt(
	    db, "UPDATE outbox SET lease_until = 0, claimed_by = NULL "
		"WHERE id = ?1 AND claimed_by = ?2");
	int rc = q ? 0 : IM_EIO;
	for (size_t i = 0; rc == 0 && i < j->n; i++) {
		sqlite3_bind_int64(q, 1, j->ids[i]);
		sqlite3_bind_text(q, 2, j->owner, -1, SQLITE_STATIC);
		rc = sqlite3_step(q) == SQLITE_DONE ? 0 : IM_EIO;
		sqlite3_reset(q);
	}
	im_store_stmt_done(q);
	return rc;
}

int nt_lease_claim(im_store *st, const nt_claim_req *req, nt_claim_fn fn,
		   void *ud, long long *max_id)
{
	claim_job j = {.owner = req->owner,
		       .critical = req->critical,
		       .now = req->now_ms,
		       .lease_until = req->lease_until,
		       .after = req->after,
		       .limit = req->limit};
	j.tail = &j.head;
	int rc = im_store_write(st, claim_apply, NULL, &j);
	if (rc != 0) {
		/* The batch did not commit: nothing is leased. */
		free_claimed(j.head, true);
		return rc;
	}
	int n = 0;
	long long *refused = NULL;
	size_t n_refused = 0;
	for (claimed *c = j.head; c; c = c->next, n++) {
		long long id = c->row->id;
		if (max_id && id > *max_id)
			*max_id = id;
		if (fn(ud, c->row, c->instance, c->channel) == 0)
			continue;
		if (!refused)
			refused = calloc((size_t)req->limit, sizeof(*refused));
		if (refused)
			refused[n_refused++] = id;
	}
	free_claimed(j.head, false);
	/* Rows we could not hold must not stay leased to us: the lease
	 * renewal would keep them from everyone until a restart. */
	if (n_refused) {
		release_job rj = {req->owner, refused, n_refused};
		if (im_store_write(st, release_apply, NULL, &rj) != 0)
			LOG_ERROR("notify", "could not give back %zu rows",
				  n_refused);
	}
	free(refused);
	return n;
}

/* --- outcomes ------------------------------------------------------------- */

typedef struct record_job {
	const nt_row *rows;
	const char *instance, *channel;
	const nt_outcome *o;
	nt_recorded_fn done;
	void *ud;
	bool alloc;
} record_job;

static int step_rows(sqlite3 *db, const char *sql, const nt_row *rows,
		     const nt_outcome *o, long long next_ms)
{
	sqlite3_stmt *q = im_store_stmt(db, sql);
	if (!q)
		return IM_EIO;
	int rc = 0;
	bool outcome = sqlite3_bind_parameter_count(q) > 1;
	long long now = nt_wall_ms();
	for (const nt_row *r = rows; r && rc == 0; r = r->next) {
		sqlite3_bind_int64(q, 1, r->id);
		if (outcome) {
			sqlite3_bind_int64(q, 2, next_ms);
			sqlite3_bind_text(q, 3, o->error, -1, SQLITE_STATIC);
			sqlite3_bind_text(q, 4, o->hint, -1, SQLITE_STATIC);
			if (o->http_status)
				sqlite3_bind_int64(q, 5, o->http_status);
			else
				sqlite3_bind_null(q, 5);
			sqlite3_bind_int64(q, 6, now);
		}
		rc = sqlite3_step(q) == SQLITE_DONE ? 0 : IM_EIO;
		sqlite3_reset(q);
	}
	im_store_stmt_done(q);
	return rc;
}

static int save_message(sqlite3 *db, const nt_outcome *o, const char *inst,
			const char *channel)
{
	sqlite3_stmt *q = im_store_stmt(
	    db, "INSERT OR REPLACE INTO notify_messages(incident, connector, "
		"channel, message_id, thread_id, updated_at) VALUES "
		"(?,?,?,?,?,?)");
	if (!q)
		return IM_EIO;
	sqlite3_bind_int64(q, 1, o->incident);
	sqlite3_bind_text(q, 2, inst, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, o->message_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(
	    q, 5, o->thread_id && *o->thread_id ? o->thread_id : o->message_id,
	    -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, nt_wall_ms());
	int rc = sqlite3_step(q) == SQLITE_DONE ? 0 : IM_EIO;
	im_store_stmt_done(q);
	return rc;
}

static int record_apply(sqlite3 *db, void *ud)
{
	const record_job *j = ud;
	const nt_outcome *o = j->o;
	const char *sql;
	long long next = 0;
	if (o->verdict == IM_SEND_OK)
		sql = "DELETE FROM outbox WHERE id = ?1";
	else if (o->verdict == IM_SEND_PERMANENT)
		sql =
		    "UPDATE outbox SET state = 1, attempts = attempts + 1, "
		    "not_before = ?2, error = ?3, hint = ?4, http_status = ?5, "
		    "updated_at = ?6, claimed_by = NULL, lease_until = 0 "
		    "WHERE id = ?1";
	else {
		sql =
		    "UPDATE outbox SET attempts = attempts + 1, "
		    "not_before = ?2, error = ?3, hint = ?4, http_status = ?5, "
		    "updated_at = ?6 WHERE id = ?1";
		next = nt_wall_ms() + (long long)(o->wait_s * 1000);
	}
	int rc = step_rows(db, sql, j->rows, o, next);
	if (rc == 0 && o->verdict == IM_SEND_OK && o->message_id &&
	    *o->message_id && o->incident > 0)
		rc = save_message(db, o, j->instance, j->channel);
	if (rc != 0)
		LOG_ERROR("notify", "recording a delivery: %s",
			  sqlite3_errmsg(db));
	return rc;
}

static void record_done(void *ud, int rc)
{
	record_job *j = ud;
	if (j->done)
		j->done(j->ud, rc);
	if (j->alloc)
		free(j);
}

int nt_outbox_done(im_store *st, const nt_row *rows, const char *instance,
		   const char *channel, const nt_outcome *o)
{
	record_job j = {rows, instance, channel, o, NULL, NULL, false};
	return im_store_write(st, record_apply, NULL, &j);
}

int nt_outbox_done_async(im_store *st, const nt_row *rows,
			 const char *instance, const char *channel,
			 const nt_outcome *o, nt_recorded_fn done, void *ud)
{
	record_job *j = malloc(sizeof(*j));
	if (!j)
		return IM_ENOMEM;
	*j = (record_job){rows, instance, channel, o, done, ud, true};
	int rc = im_store_submit(st, record_apply, record_done, j);
	if (rc != 0)
		free(j);
	return rc;
}
