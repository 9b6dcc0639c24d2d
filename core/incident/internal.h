/* Shared by the incident repository files; not a public interface. */
#ifndef IM_CORE_INCIDENT_INTERNAL_H
#define IM_CORE_INCIDENT_INTERNAL_H

#include <sqlite3.h>

#include "incident/repo.h"

typedef struct inc_row {
	long long num;
	char *title, *description, *service, *commander, *duplicate_of;
	int sev;
	int status; /* im_inc_state */
	long long created, updated; /* ms since the epoch */
} inc_row;

void row_free(inc_row *r);
/* IM_OK, IM_ENOTFOUND or IM_EIO. */
int row_load(sqlite3 *db, long long num, inc_row *out);
/* Fills a row from a statement whose columns are ROW_COLUMNS. */
void row_from_stmt(sqlite3_stmt *st, inc_row *out);
#define ROW_COLUMNS                                                           \
	"number, title, description, severity, status, service, commander, " \
	"duplicate_of, created_at, updated_at"
json_t *row_json(const inc_row *r);

/* A growing text buffer for JSON written by hand (query.c lists). */
typedef struct textbuf {
	char *p;
	size_t len, cap;
	bool oom;
} textbuf;
void text_put(textbuf *b, const char *s, size_t n);
/* The row as JSON text, the same object row_json builds. */
void row_text(textbuf *b, const inc_row *r);

long long now_ms(void);
void fmt_time(long long ms, char buf[32]);
/* "INC-7", "inc-7" or "7" -> 7; false when malformed. */
bool parse_id(const char *id, long long *num);
/* A CloudEvent; steals `data`. */
json_t *event_new(const char *type, long long num, long long seq,
		  long long ms, json_t *data);
json_t *actor_json(const im_actor *who);

void set_err(im_err *err, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void set_db_err(im_err *err, sqlite3 *db, const char *what);
/* Not found: 404 naming the id. */
void set_not_found(im_err *err, const char *id);

#endif
