/* The outbox table: rows written in the incident's own transaction (the
 * repo hook), claimed with a lease by the dispatcher, and deleted once the
 * platform accepted them (or kept as dead letters). Claimed rows carry
 * claimed_by and lease_until; a row is claimable when it is pending, its
 * not_before has passed and its lease ran out, so a crashed process's rows
 * come back on their own. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "incident/incident.h"
#include "log/log.h"
#include "notify/internal.h"

typedef struct hook_ctx {
	sqlite3 *db;
	sqlite3_stmt *ins;
	long long seq, incident, now;
	int sev;
	bool critical;
	const char *type;
} hook_ctx;

/* Rows written by the hook since the dispatcher last looked: a commit
 * without notifications (no subscription matched) must not wake it, since
 * every wake costs it a claim query on the store. */
static long rows_added;

bool nt_outbox_take_added(void)
{
	return __atomic_exchange_n(&rows_added, 0, __ATOMIC_ACQ_REL) > 0;
}

static int insert_row(void *ud, const nt_sub *s)
{
	hook_ctx *h = ud;
	__atomic_add_fetch(&rows_added, 1, __ATOMIC_RELEASE);
	char mode[2] = {s->mode, '\0'};
	/* Prepared once per connection, and only when a row is due. */
	if (!h->ins)
		h->ins = im_store_stmt(
		    h->db, "INSERT INTO outbox(incident, event_seq, "
			   "event_type, severity, critical, connector, "
			   "channel, mode, created_at, updated_at) VALUES "
			   "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?9)");
	sqlite3_stmt *q = h->ins;
	if (!q)
		return IM_EIO;
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, h->incident);
	sqlite3_bind_int64(q, 2, h->seq);
	sqlite3_bind_text(q, 3, h->type, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 4, h->sev);
	sqlite3_bind_int(q, 5, h->critical);
	sqlite3_bind_text(q, 6, s->connector, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 7, s->channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 8, mode, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(q, 9, h->now);
	return sqlite3_step(q) == SQLITE_DONE ? 0 : IM_EIO;
}

int nt_outbox_hook(sqlite3 *db, const im_repo_event *ev)
{
	hook_ctx h = {
	    .db = db,
	    .seq = ev->seq,
	    .incident = ev->incident,
	    .sev = ev->sev >= 1 && ev->sev <= 4 ? ev->sev : 0,
	    .type = ev->type,
	    .now = nt_wall_ms(),
	};
	if (!h.type || h.seq <= 0 || h.incident <= 0 || !h.sev)
		return 0; /* not an incident event: nothing to notify */
	h.critical = (nt_settings_crit_mask() >> h.sev) & 1;
	int rc = nt_subs_each_match(h.type, h.sev, ev->service, insert_row, &h);
	if (rc != 0)
		LOG_ERROR("notify", "outbox insert: %s", sqlite3_errmsg(db));
	im_store_stmt_done(h.ins);
	return rc;
}

static int exec1(im_store *st, const char *sql, const char *text, long long a,
		 long long b)
{
	sqlite3 *db = im_store_db(st);
	sqlite3_stmt *q;
	int rc = IM_EIO;
	im_store_lock(st);
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK) {
		/* ?1 text, ?2 and ?3 integers, each only when used. */
		int np = sqlite3_bind_parameter_count(q);
		sqlite3_bind_text(q, 1, text, -1, SQLITE_STATIC);
		if (np >= 2)
			sqlite3_bind_int64(q, 2, a);
		if (np >= 3)
			sqlite3_bind_int64(q, 3, b);
		rc = sqlite3_step(q) == SQLITE_DONE ? sqlite3_changes(db)
						    : IM_EIO;
		sqlite3_finalize(q);
	}
	if (rc < 0)
		LOG_ERROR("notify", "outbox: %s", sqlite3_errmsg(db));
	im_store_unlock(st);
	return rc;
}

int nt_outbox_claim(im_store *st, const char *owner, bool critical,
		    long long now_ms, long long lease_until, int limit,
		    nt_claim_fn fn, void *ud)
{
	nt_claim_req req = {.owner = owner,
			    .critical = critical,
			    .now_ms = now_ms,
			    .lease_until = lease_until,
			    .limit = limit};
	return nt_lease_claim(st, &req, fn, ud, NULL);
}

int nt_outbox_renew(im_store *st, const char *owner, long long lease_until)
{
	return exec1(st,
		     "UPDATE outbox SET lease_until = ?2 WHERE claimed_by = ?1 "
		     "AND state = 0 AND lease_until > 0",
		     owner, lease_until, 0);
}

int nt_outbox_release(im_store *st, const char *owner)
{
	return exec1(st,
		     "UPDATE outbox SET lease_until = 0, claimed_by = NULL "
		     "WHERE claimed_by = ?1",
		     owner, 0, 0);
}

/* "host:pid:nonce" of an owner that cannot be running any more: on this
 * host, and either its pid is gone or it is ours with another nonce (a
 * container restarts as the same pid). */
static bool owner_gone(const char *other, const char *mine)
{
	char host[256], myhost[256];
	long pid, mypid;
	if (sscanf(other, "%255[^:]:%ld:", host, &pid) != 2 ||
	    sscanf(mine, "%255[^:]:%ld:", myhost, &mypid) != 2 ||
	    strcmp(host, myhost) != 0 || !strcmp(other, mine))
		return false;
	if (pid == mypid)
		return true;
	return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int nt_outbox_reclaim_dead(im_store *st, const char *owner)
{
	sqlite3 *db = im_store_read_begin(st);
	sqlite3_stmt *q;
	json_t *gone = json_array();
	if (sqlite3_prepare_v2(db,
			       "SELECT DISTINCT claimed_by FROM outbox WHERE "
			       "state = 0 AND lease_until > 0 AND claimed_by "
			       "IS NOT NULL",
			       -1, &q, NULL) == SQLITE_OK) {
		while (sqlite3_step(q) == SQLITE_ROW) {
			const char *o = (const char *)sqlite3_column_text(q, 0);
			if (o && owner_gone(o, owner))
				json_array_append_new(gone, json_string(o));
		}
		sqlite3_finalize(q);
	}
	im_store_read_end(st, db);
	int total = 0;
	size_t i;
	const json_t *v;
	json_array_foreach(gone, i, v)
	{
		int n = nt_outbox_release(st, json_string_value(v));
		if (n > 0) {
			LOG_INFO("notify",
				 "reclaimed %d outbox rows of %s, which is "
				 "no longer running",
				 n, json_string_value(v));
			total += n;
		}
	}
	json_decref(gone);
	return total;
}

/* The last event read on this thread, while nt_outbox_events_keep is on
 * (delivery threads): a fan-out reads one event once per channel, and an
 * event never changes once written. Only this thread touches it. */
static _Thread_local struct {
	bool on;
	long long seq;
	json_t *ev;
} last;

void nt_outbox_events_keep(bool on)
{
	last.on = on;
	if (!on) {
		json_decref(last.ev);
		last.ev = NULL;
		last.seq = 0;
	}
}

int nt_outbox_events(im_store *st, const nt_row *rows, json_t **out)
{
	if (last.ev && rows && !rows->next && rows->seq == last.seq) {
		json_t *arr = json_array();
		if (arr && json_array_append(arr, last.ev) == 0) {
			*out = arr;
			return 0;
		}
		json_decref(arr);
	}
	sqlite3 *db = im_store_read_begin(st);
	/* Once per delivery: prepared once per connection. */
	sqlite3_stmt *q =
	    im_store_stmt(db, "SELECT body FROM events WHERE seq = ?");
	*out = NULL;
	if (!q) {
		im_store_read_end(st, db);
		return IM_EIO;
	}
	json_t *arr = json_array();
	int rc = 0;
	for (const nt_row *r = rows; r && rc == 0; r = r->next) {
		sqlite3_reset(q);
		sqlite3_bind_int64(q, 1, r->seq);
		json_t *ev = NULL;
		if (sqlite3_step(q) == SQLITE_ROW)
			ev = json_loads((const char *)sqlite3_column_text(q, 0),
					0, NULL);
		rc = ev ? json_array_append_new(arr, ev) : IM_ENOTFOUND;
	}
	im_store_stmt_done(q);
	im_store_read_end(st, db);
	if (rc != 0) {
		json_decref(arr);
		return rc;
	}
	if (last.on && !rows->next) {
		json_decref(last.ev);
		last.ev = json_incref(json_array_get(arr, 0));
		last.seq = rows->seq;
	}
	*out = arr;
	return 0;
}

int nt_outbox_message(im_store *st, long long incident, const char *instance,
		      const char *channel, char *message_id, char *thread_id)
{
	sqlite3 *db = im_store_read_begin(st);
	sqlite3_stmt *q = im_store_stmt(db, "SELECT message_id, thread_id FROM "
					    "notify_messages WHERE incident = ? "
					    "AND connector = ? AND channel = ?");
	int rc = IM_ENOTFOUND;
	*message_id = *thread_id = '\0';
	if (q) {
		sqlite3_bind_int64(q, 1, incident);
		sqlite3_bind_text(q, 2, instance, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 3, channel, -1, SQLITE_STATIC);
		if (sqlite3_step(q) == SQLITE_ROW) {
			const char *m = (const char *)sqlite3_column_text(q, 0);
			const char *t = (const char *)sqlite3_column_text(q, 1);
			snprintf(message_id, 128, "%s", m ? m : "");
			snprintf(thread_id, 128, "%s", t ? t : "");
			rc = 0;
		}
		im_store_stmt_done(q);
	}
	im_store_read_end(st, db);
	return rc;
}

int nt_outbox_forget_message(im_store *st, long long incident,
			     const char *instance, const char *channel)
{
	sqlite3 *db = im_store_db(st);
	sqlite3_stmt *q;
	int rc = IM_EIO;
	im_store_lock(st);
	if (sqlite3_prepare_v2(db,
			       "DELETE FROM notify_messages WHERE incident = ? "
			       "AND connector = ? AND channel = ?",
			       -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, incident);
		sqlite3_bind_text(q, 2, instance, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 3, channel, -1, SQLITE_STATIC);
		rc = sqlite3_step(q) == SQLITE_DONE ? 0 : IM_EIO;
		sqlite3_finalize(q);
	}
	im_store_unlock(st);
	return rc;
}

static json_t *text_or_null(sqlite3_stmt *q, int col)
{
	const char *t = (const char *)sqlite3_column_text(q, col);
	return t ? json_string(t) : json_null();
}

json_t *nt_outbox_list(im_store *st, bool dead_only, int limit)
{
	sqlite3 *db = im_store_read_begin(st);
	sqlite3_stmt *q;
	json_t *items = json_array();
	if (sqlite3_prepare_v2(
		db,
		"SELECT id, connector, channel, event_type, incident, "
		"attempts, "
		"error, hint, http_status, state, created_at, not_before, "
		"critical FROM outbox WHERE state >= ?1 ORDER BY id LIMIT ?2",
		-1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int(q, 1, dead_only ? 1 : 0);
		sqlite3_bind_int(q, 2, limit);
		while (sqlite3_step(q) == SQLITE_ROW) {
			char inc[32];
			snprintf(inc, sizeof(inc), "INC-%lld",
				 (long long)sqlite3_column_int64(q, 4));
			json_t *o = json_pack(
			    "{s:I,s:s,s:s,s:s,s:s,s:i,s:o,s:o,s:o,s:s,s:I,s:I,"
			    "s:b}",
			    "id", (json_int_t)sqlite3_column_int64(q, 0),
			    "instance", (const char *)sqlite3_column_text(q, 1),
			    "channel", (const char *)sqlite3_column_text(q, 2),
			    "event", (const char *)sqlite3_column_text(q, 3),
			    "incident", inc, "attempts",
			    sqlite3_column_int(q, 5), "error",
			    text_or_null(q, 6), "hint", text_or_null(q, 7),
			    "http_status",
			    sqlite3_column_type(q, 8) == SQLITE_NULL
				? json_null()
				: json_integer(sqlite3_column_int64(q, 8)),
			    "state",
			    sqlite3_column_int(q, 9) ? "dead" : "pending",
			    "created_ms",
			    (json_int_t)sqlite3_column_int64(q, 10),
			    "next_attempt_ms",
			    (json_int_t)sqlite3_column_int64(q, 11), "critical",
			    sqlite3_column_int(q, 12));
			if (o)
				json_array_append_new(items, o);
		}
		sqlite3_finalize(q);
	}
	im_store_read_end(st, db);
	return items;
}

int nt_outbox_retry(im_store *st, long long id)
{
	int n =
	    exec1(st,
		  "UPDATE outbox SET state = 0, attempts = 0, not_before = 0, "
		  "lease_until = 0, claimed_by = NULL, error = ?1, "
		  "hint = NULL, http_status = NULL, updated_at = ?3 "
		  "WHERE id = ?2 AND state = 1",
		  NULL, id, nt_wall_ms());
	if (n < 0)
		return n;
	if (n > 0)
		return 0;
	sqlite3 *db = im_store_read_begin(st);
	sqlite3_stmt *q;
	int rc = IM_ENOTFOUND;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM outbox WHERE id = ?", -1, &q,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, id);
		if (sqlite3_step(q) == SQLITE_ROW)
			rc = IM_ECONFLICT; /* pending: already queued */
		sqlite3_finalize(q);
	}
	im_store_read_end(st, db);
	return rc;
}

json_t *nt_outbox_counts(im_store *st)
{
	sqlite3 *db = im_store_read_begin(st);
	sqlite3_stmt *q;
	json_t *pending = json_object();
	json_int_t dead = 0;
	if (sqlite3_prepare_v2(db,
			       "SELECT state, connector, count(*) FROM outbox "
			       "GROUP BY state, connector",
			       -1, &q, NULL) == SQLITE_OK) {
		while (sqlite3_step(q) == SQLITE_ROW) {
			json_int_t n = sqlite3_column_int64(q, 2);
			if (sqlite3_column_int(q, 0) == 1)
				dead += n;
			else
				json_object_set_new(
				    pending,
				    (const char *)sqlite3_column_text(q, 1),
				    json_integer(n));
		}
		sqlite3_finalize(q);
	}
	im_store_read_end(st, db);
	return json_pack("{s:o,s:I}", "pending", pending, "dead", dead);
}
