/* Incident rows as JSON, CloudEvents, times and ids. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "buf/buf.h"
#include "incident/internal.h"

static char public_url[512];

void im_repo_set_public_url(const char *url)
{
	snprintf(public_url, sizeof(public_url), "%s", url ? url : "");
	size_t n = strlen(public_url);
	while (n && public_url[n - 1] == '/')
		public_url[--n] = '\0';
}

void im_write_clear(im_write *w)
{
	json_decref(w->incident);
	json_decref(w->event);
	free(w->event_json);
	free(w->incident_json);
	event_parts_free(w->parts);
	free(w->parts);
	memset(w, 0, sizeof(*w));
}

bool im_write_trees(im_write *w)
{
	/* From the parts when the write kept them: packing is cheaper than
	 * parsing the texts. */
	if (w->parts && !w->incident && !(w->incident = row_json(&w->parts->row)))
		return false;
	if (w->parts && !w->event &&
	    !(w->event = event_tree(w->parts, w->incident)))
		return false;
	if (!w->incident && w->incident_json &&
	    !(w->incident = json_loads(w->incident_json, 0, NULL)))
		return false;
	if (!w->event && w->event_json &&
	    !(w->event = json_loads(w->event_json, 0, NULL)))
		return false;
	return true;
}

void set_err(im_err *err, int status, const char *code, const char *fmt, ...)
{
	err->status = status;
	snprintf(err->code, sizeof(err->code), "%s", code);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	/* A message cut to fit must not end inside a UTF-8 character: it
	 * becomes JSON (the chat path refuses invalid UTF-8). */
	if (n >= (int)sizeof(err->message)) {
		size_t len = strlen(err->message), i = len;
		while (i > 0 && ((unsigned char)err->message[i - 1] & 0xC0) == 0x80)
			i--;
		if (i > 0 && (unsigned char)err->message[i - 1] >= 0xC0 &&
		    im_utf8_seq((const unsigned char *)err->message + i - 1,
				len - (i - 1)) == 0)
			err->message[i - 1] = '\0';
	}
}

void set_db_err(im_err *err, sqlite3 *db, const char *what)
{
	set_err(err, 500, "storage_error", "%s failed: %s", what,
		sqlite3_errmsg(db));
}

void set_not_found(im_err *err, const char *id)
{
	set_err(err, 404, "not_found",
		"no incident %s; list incidents with GET /api/v1/incidents", id);
}

long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fmt_time(long long ms, char buf[32])
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 32 - n, ".%03lldZ", ms % 1000);
}

bool parse_id(const char *id, long long *num)
{
	if (!id)
		return false;
	const char *p = id;
	if (strncasecmp(p, "INC-", 4) == 0)
		p += 4;
	if (*p < '1' || *p > '9' || strlen(p) > 15)
		return false;
	char *end;
	long long n = strtoll(p, &end, 10);
	if (*end)
		return false;
	*num = n;
	return true;
}

void row_free(inc_row *r)
{
	free(r->title);
	free(r->description);
	free(r->service);
	free(r->commander);
	free(r->duplicate_of);
	memset(r, 0, sizeof(*r));
}

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? strdup((const char *)t) : NULL;
}

void row_from_stmt(sqlite3_stmt *st, inc_row *r)
{
	r->num = sqlite3_column_int64(st, 0);
	r->title = col_dup(st, 1);
	r->description = col_dup(st, 2);
	r->sev = sqlite3_column_int(st, 3);
	const char *s = (const char *)sqlite3_column_text(st, 4);
	r->status = im_inc_state_parse(s);
	r->service = col_dup(st, 5);
	r->commander = col_dup(st, 6);
	r->duplicate_of = col_dup(st, 7);
	r->created = sqlite3_column_int64(st, 8);
	r->updated = sqlite3_column_int64(st, 9);
}

int row_load(sqlite3 *db, long long num, inc_row *out)
{
	memset(out, 0, sizeof(*out));
	sqlite3_stmt *st = im_store_stmt(
	    db, "SELECT " ROW_COLUMNS " FROM incidents WHERE number = ?");
	if (!st)
		return IM_EIO;
	sqlite3_bind_int64(st, 1, num);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_from_stmt(st, out);
	im_store_stmt_done(st);
	return rc == SQLITE_ROW ? IM_OK : rc == SQLITE_DONE ? IM_ENOTFOUND
							    : IM_EIO;
}

json_t *row_json(const inc_row *r)
{
	char id[32], created[32], updated[32];
	snprintf(id, sizeof(id), "INC-%lld", r->num);
	fmt_time(r->created, created);
	fmt_time(r->updated, updated);
	json_t *o = json_pack(
	    "{s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s?,s:s?,s:s?,s:s,s:s}", "id", id,
	    "number", (json_int_t)r->num, "title", r->title ? r->title : "",
	    "description", r->description ? r->description : "", "severity",
	    im_inc_sev_name(r->sev), "severity_label", im_inc_sev_label(r->sev),
	    "status", im_inc_state_name(r->status), "service", r->service,
	    "commander", r->commander, "duplicate_of", r->duplicate_of,
	    "created_at", created, "updated_at", updated);
	if (o && public_url[0]) {
		char url[600];
		snprintf(url, sizeof(url), "%s/incidents/%s", public_url, id);
		json_object_set_new(o, "url", json_string(url));
	}
	return o;
}

/* Random bytes for event ids, drawn from the kernel 4 KiB at a time: one
 * getrandom() per 256 events instead of one each (events are made on the
 * store's writer thread, where every system call delays a whole batch). */
static void random16(unsigned char b[16])
{
	static _Thread_local unsigned char pool[4096];
	static _Thread_local size_t left;
	if (left < 16) {
		if (getrandom(pool, sizeof(pool), 0) != (ssize_t)sizeof(pool)) {
			/* Never expected on Linux; fall back to time-based
			 * bytes. */
			long long t = now_ms();
			for (size_t i = 0; i < 16; i++)
				b[i] = (unsigned char)(t >> (i % 8 * 8)) ^
				       (unsigned char)i;
			return;
		}
		left = sizeof(pool);
	}
	left -= 16;
	memcpy(b, pool + left, 16);
	memset(pool + left, 0, 16); /* used once */
}

static void uuid4(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	random16(b);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	char *p = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[b[i] >> 4];
		*p++ = hex[b[i] & 15];
	}
	*p = '\0';
}

static void text_key(im_buf *b, const char *key, const char *val);
static void text_str(im_buf *b, const char *s);

bool dup_into(char **out, const char *s)
{
	*out = s ? strdup(s) : NULL;
	return !s || *out;
}

bool event_parts_make(event_parts *p, const char *type, long long seq,
		      const inc_row *row, json_t *change, const im_actor *who)
{
	memset(p, 0, sizeof(*p));
	p->change = change;
	uuid4(p->id);
	fmt_time(row->updated, p->time);
	snprintf(p->type, sizeof(p->type), "%s", type);
	p->seq = seq;
	p->row = *row;
	p->row.title = p->row.description = p->row.service =
	    p->row.commander = p->row.duplicate_of = NULL;
	return dup_into(&p->row.title, row->title) &&
	       dup_into(&p->row.description, row->description) &&
	       dup_into(&p->row.service, row->service) &&
	       dup_into(&p->row.commander, row->commander) &&
	       dup_into(&p->row.duplicate_of, row->duplicate_of) &&
	       dup_into(&p->actor_id, who && who->id ? who->id : "unknown") &&
	       dup_into(&p->actor_name, who ? who->name : NULL) &&
	       dup_into(&p->actor_via, who && who->via ? who->via : "unknown");
}

void event_parts_free(event_parts *p)
{
	if (!p)
		return;
	row_free(&p->row);
	json_decref(p->change);
	free(p->actor_id);
	free(p->actor_name);
	free(p->actor_via);
	memset(p, 0, sizeof(*p));
}

char *event_text(const event_parts *p, const char *inc)
{
	char *ch = p->change ? json_dumps(p->change,
					  JSON_COMPACT | JSON_ENCODE_ANY)
			     : NULL;
	im_buf b = IM_BUF_INIT;
	im_buf_printf(&b,
		      "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":"
		      "\"im/incidents\",\"type\":",
		      p->id);
	text_str(&b, p->type);
	/* Short formats only: im_buf_printf formats a longer text twice. */
	im_buf_printf(&b,
		      ",\"time\":\"%s\",\"subject\":\"INC-%lld\","
		      "\"datacontenttype\":\"application/json\",\"sequence\":"
		      "%lld,\"data\":{\"incident\":",
		      p->time, p->row.num, p->seq);
	im_buf_puts(&b, inc);
	im_buf_puts(&b, ",\"change\":");
	im_buf_puts(&b, ch ? ch : "{}");
	im_buf_puts(&b, ",\"actor\":{\"id\":");
	text_str(&b, p->actor_id);
	text_key(&b, "name", p->actor_name);
	text_key(&b, "via", p->actor_via);
	im_buf_puts(&b, "}}}");
	free(ch);
	if (p->change && !ch)
		b.oom = true;
	return im_buf_take(&b, NULL);
}

json_t *event_tree(const event_parts *p, json_t *incident)
{
	json_t *empty = p->change ? NULL : json_object();
	char subject[32];
	snprintf(subject, sizeof(subject), "INC-%lld", p->row.num);
	json_t *ev = json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:{s:O,s:O,s:{s:s,s:s?,s:s}}}",
	    "specversion", "1.0", "id", p->id, "source", "im/incidents",
	    "type", p->type, "time", p->time, "subject", subject,
	    "datacontenttype", "application/json", "sequence",
	    (json_int_t)p->seq, "data", "incident", incident, "change",
	    p->change ? p->change : empty, "actor", "id", p->actor_id,
	    "name", p->actor_name, "via", p->actor_via);
	json_decref(empty);
	return ev;
}

/* A JSON string as jansson writes it by default: UTF-8 kept, quotes,
 * backslashes and control characters escaped. NULL becomes null. Text
 * that is not UTF-8 fails the buffer (oom set), as jansson refuses it. */
static void text_str(im_buf *b, const char *s)
{
	if (!s) {
		im_buf_put(b, "null", 4);
		return;
	}
	im_buf_put(b, "\"", 1);
	const char *run = s;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x80) {
			/* 4: it stops at the first byte that does not
			 * continue the sequence, the terminator at worst. */
			size_t k = im_utf8_seq((const unsigned char *)p, 4);
			if (!k) {
				b->oom = true;
				return;
			}
			p += k - 1;
			continue;
		}
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		im_buf_put(b, run, (size_t)(p - run));
		char esc[8];
		switch (c) {
		case '"': im_buf_put(b, "\\\"", 2); break;
		case '\\': im_buf_put(b, "\\\\", 2); break;
		case '\n': im_buf_put(b, "\\n", 2); break;
		case '\t': im_buf_put(b, "\\t", 2); break;
		case '\r': im_buf_put(b, "\\r", 2); break;
		case '\b': im_buf_put(b, "\\b", 2); break;
		case '\f': im_buf_put(b, "\\f", 2); break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04X", c);
			im_buf_put(b, esc, 6);
		}
		run = p + 1;
	}
	im_buf_put(b, run, strlen(run));
	im_buf_put(b, "\"", 1);
}

static void text_key(im_buf *b, const char *key, const char *val)
{
	im_buf_put(b, ",\"", 2);
	im_buf_put(b, key, strlen(key));
	im_buf_put(b, "\":", 2);
	text_str(b, val);
}

void row_text(im_buf *b, const inc_row *r)
{
	char created[32], updated[32];
	fmt_time(r->created, created);
	fmt_time(r->updated, updated);
	im_buf_printf(b, "{\"id\":\"INC-%lld\",\"number\":%lld", r->num,
		      r->num);
	text_key(b, "title", r->title ? r->title : "");
	text_key(b, "description", r->description ? r->description : "");
	text_key(b, "severity", im_inc_sev_name(r->sev));
	text_key(b, "severity_label", im_inc_sev_label(r->sev));
	text_key(b, "status", im_inc_state_name(r->status));
	text_key(b, "service", r->service);
	text_key(b, "commander", r->commander);
	text_key(b, "duplicate_of", r->duplicate_of);
	text_key(b, "created_at", created);
	text_key(b, "updated_at", updated);
	if (public_url[0]) {
		char url[600];
		snprintf(url, sizeof(url), "%s/incidents/INC-%lld", public_url,
			 r->num);
		text_key(b, "url", url);
	}
	im_buf_putc(b, '}');
}
