/* Incident reads: one incident, filtered pages, timelines and the event
 * log for stream replay, on pooled read-only connections that run beside
 * the writer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf/buf.h"
#include "incident/internal.h"

int im_inc_get(im_store *st, const char *id, json_t **out, im_err *err)
{
	long long num;
	*out = NULL;
	if (!parse_id(id, &num)) {
		set_not_found(err, id ? id : "");
		return IM_ENOTFOUND;
	}
	unsigned long long sid = im_store_serial(st);
	if ((*out = inc_cache_json(sid, num)))
		return 0;
	inc_row row;
	unsigned long since = inc_cache_gen();
	sqlite3 *db = im_store_read_begin(st);
	int rc = row_load(db, num, &row);
	if (rc == IM_EIO)
		set_db_err(err, db, "load");
	im_store_read_end(st, db);
	if (rc == IM_ENOTFOUND)
		set_not_found(err, id);
	if (rc == 0) {
		*out = row_json(&row);
		inc_cache_put(sid, since, &row); /* takes the row */
	}
	row_free(&row);
	return rc;
}

/* Appends " AND col IN (?,?..)" for a comma list, checking each value;
 * the parsed values go to vals[]. Returns the count or -1. */
static int in_list(const char *list, bool states, int *vals, int max,
		   im_buf *sql, im_err *err)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", list);
	int n = 0;
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t && n < max;
	     t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		int v = states ? im_inc_state_parse(t) : im_inc_sev_parse(t);
		if ((states && v < 0) || (!states && v == 0)) {
			if (states)
				set_err(err, 400, "invalid_status",
					"unknown status '%s'; use open, "
					"acknowledged, mitigated, resolved, "
					"closed, canceled or duplicate",
					t);
			else
				set_err(err, 400, "invalid_severity",
					"unknown severity '%s'; use SEV-1 .. "
					"SEV-4",
					t);
			return -1;
		}
		vals[n++] = v;
	}
	if (n == 0)
		return 0;
	im_buf_printf(sql, " AND %s IN (", states ? "status" : "severity");
	for (int i = 0; i < n; i++)
		im_buf_puts(sql, i ? ",?" : "?");
	im_buf_puts(sql, ")");
	return n;
}

/* Runs the filtered query and hands each row of the page to visit();
 * *next gets the cursor of the next page, or 0 when this is the last. */
typedef void (*row_visit)(void *ud, const inc_row *row);

static int list_rows(im_store *st, const im_inc_filter *f, row_visit visit,
		     void *ud, long long *next, im_err *err)
{
	int limit = f->limit ? f->limit : 50;
	*next = 0;
	if (limit < 1 || limit > 500) {
		set_err(err, 400, "invalid_limit", "limit must be 1 to 500");
		return IM_EINVAL;
	}
	long long cursor = 0;
	if (f->cursor && *f->cursor) {
		char *end;
		cursor = strtoll(f->cursor, &end, 10);
		if (*end || cursor < 1) {
			set_err(err, 400, "invalid_cursor",
				"cursor '%s' is not one this API gave out; "
				"use next_cursor from the previous page",
				f->cursor);
			return IM_EINVAL;
		}
	}
	im_buf sql = IM_BUF_INIT;
	im_buf_puts(&sql, "SELECT " ROW_COLUMNS " FROM incidents WHERE 1");
	int states[8], sevs[8];
	int ns = f->status && *f->status
		     ? in_list(f->status, true, states, 8, &sql, err)
		     : 0;
	int nv = ns >= 0 && f->severity && *f->severity
		     ? in_list(f->severity, false, sevs, 8, &sql, err)
		     : 0;
	if (ns < 0 || nv < 0) {
		im_buf_free(&sql);
		return IM_EINVAL;
	}
	if (f->service && *f->service)
		im_buf_puts(&sql, " AND service = ?");
	if (cursor)
		im_buf_puts(&sql, " AND number < ?");
	im_buf_puts(&sql, " ORDER BY number DESC LIMIT ?");
	if (sql.oom) {
		im_buf_free(&sql);
		set_err(err, 500, "internal", "out of memory");
		return IM_ENOMEM;
	}

	sqlite3 *db = im_store_read_begin(st);
	sqlite3_stmt *stmt;
	int prc = sqlite3_prepare_v2(db, im_buf_str(&sql), -1, &stmt, NULL);
	im_buf_free(&sql);
	if (prc != SQLITE_OK) {
		set_db_err(err, db, "list");
		im_store_read_end(st, db);
		return IM_EIO;
	}
	int b = 1;
	for (int i = 0; i < ns; i++)
		sqlite3_bind_text(stmt, b++, im_inc_state_name(states[i]), -1,
				  SQLITE_STATIC);
	for (int i = 0; i < nv; i++)
		sqlite3_bind_int(stmt, b++, sevs[i]);
	if (f->service && *f->service)
		sqlite3_bind_text(stmt, b++, f->service, -1, SQLITE_STATIC);
	if (cursor)
		sqlite3_bind_int64(stmt, b++, cursor);
	sqlite3_bind_int(stmt, b, limit + 1);
	long long last = 0;
	int n = 0, rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == limit) {
			*next = last;
			break;
		}
		inc_row row;
		row_from_stmt(stmt, &row);
		visit(ud, &row);
		last = row.num;
		row_free(&row);
		n++;
	}
	bool failed = rc != SQLITE_ROW && rc != SQLITE_DONE;
	if (failed)
		set_db_err(err, db, "list");
	sqlite3_finalize(stmt);
	im_store_read_end(st, db);
	return failed ? IM_EIO : 0;
}

static void add_tree(void *ud, const inc_row *row)
{
	json_array_append_new(ud, row_json(row));
}

int im_inc_list(im_store *st, const im_inc_filter *f, json_t **out,
		im_err *err)
{
	long long next;
	json_t *items = json_array();
	*out = NULL;
	int rc = list_rows(st, f, add_tree, items, &next, err);
	if (rc != 0) {
		json_decref(items);
		return rc;
	}
	char cur[32];
	snprintf(cur, sizeof(cur), "%lld", next);
	*out = json_pack("{s:o,s:s?}", "items", items, "next_cursor",
			 next ? cur : NULL);
	return 0;
}

/* The same page written straight to JSON text: building a jansson tree
 * for every row and dumping it was the largest cost of a list. */
static void add_text(void *ud, const inc_row *row)
{
	im_buf *b = ud;
	if (b->len && b->p[b->len - 1] != '[')
		im_buf_putc(b, ',');
	row_text(b, row);
}

int im_inc_list_text(im_store *st, const im_inc_filter *f, char **out,
		     size_t *len, im_err *err)
{
	long long next;
	im_buf b = IM_BUF_INIT;
	*out = NULL;
	im_buf_puts(&b, "{\"items\":[");
	int rc = list_rows(st, f, add_text, &b, &next, err);
	if (rc == 0 && next)
		im_buf_printf(&b, "],\"next_cursor\":\"%lld\"}", next);
	else if (rc == 0)
		im_buf_puts(&b, "],\"next_cursor\":null}");
	if (rc == 0 && b.oom) {
		set_err(err, 500, "internal", "out of memory");
		rc = IM_ENOMEM;
	}
	if (rc != 0) {
		im_buf_free(&b);
		return rc;
	}
	*out = im_buf_take(&b, len);
	return 0;
}

int im_inc_timeline(im_store *st, const char *id, json_t **out, im_err *err)
{
	json_t *inc = NULL;
	*out = NULL;
	int rc = im_inc_get(st, id, &inc, err);
	if (rc != 0)
		return rc;
	long long num = json_integer_value(json_object_get(inc, "number"));
	json_decref(inc);
	sqlite3 *db = im_store_read_begin(st);
	sqlite3_stmt *stmt;
	json_t *items = json_array();
	if (sqlite3_prepare_v2(db,
			       "SELECT body FROM events WHERE incident = ? "
			       "ORDER BY seq",
			       -1, &stmt, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(stmt, 1, num);
		while (sqlite3_step(stmt) == SQLITE_ROW) {
			json_error_t je;
			json_t *ev = json_loads(
			    (const char *)sqlite3_column_text(stmt, 0), 0, &je);
			if (ev)
				json_array_append_new(items, ev);
		}
		sqlite3_finalize(stmt);
	}
	im_store_read_end(st, db);
	*out = json_pack("{s:o}", "items", items);
	return 0;
}

int im_events_after(im_store *st, long long after, int limit, json_t **out)
{
	*out = json_array();
	sqlite3 *db = im_store_read_begin(st);
	sqlite3_stmt *stmt;
	int rc = IM_EIO;
	if (sqlite3_prepare_v2(db,
			       "SELECT seq, body FROM events WHERE seq > ? "
			       "ORDER BY seq LIMIT ?",
			       -1, &stmt, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(stmt, 1, after);
		sqlite3_bind_int(stmt, 2, limit > 0 ? limit : 100);
		while (sqlite3_step(stmt) == SQLITE_ROW) {
			const char *body =
			    (const char *)sqlite3_column_text(stmt, 1);
			json_array_append_new(
			    *out,
			    json_pack("[I,o?]",
				      (json_int_t)sqlite3_column_int64(stmt, 0),
				      body ? json_string(body) : NULL));
		}
		sqlite3_finalize(stmt);
		rc = 0;
	}
	im_store_read_end(st, db);
	return rc;
}

long long im_events_last_seq(im_store *st)
{
	sqlite3 *db = im_store_read_begin(st);
	sqlite3_stmt *stmt;
	long long v = 0;
	if (sqlite3_prepare_v2(db,
			       "SELECT COALESCE(MAX(seq), 0) FROM events", -1,
			       &stmt, NULL) == SQLITE_OK) {
		if (sqlite3_step(stmt) == SQLITE_ROW)
			v = sqlite3_column_int64(stmt, 0);
		sqlite3_finalize(stmt);
	}
	im_store_read_end(st, db);
	return v;
}
