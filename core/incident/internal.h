/* Shared by the incident repository files; not a public interface. */
#ifndef IM_CORE_INCIDENT_INTERNAL_H
#define IM_CORE_INCIDENT_INTERNAL_H

#include <sqlite3.h>

#include "buf/buf.h"
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

/* cache.c: incident rows by number for im_inc_get (see there). */
unsigned long inc_cache_gen(void);
/* The row as row_json() when `store` has it cached (new), else NULL. */
json_t *inc_cache_json(unsigned long long store, long long num);
/* Keeps a row read since inc_cache_gen() gave `since` (takes it: *r is
 * freed and emptied either way), unless a write came in between. */
void inc_cache_put(unsigned long long store, unsigned long since, inc_row *r);
/* The writer thread: `num` is written in its open transaction; the
 * transaction committed or ended (what it wrote is forgotten). */
void inc_cache_written(long long num);
void inc_cache_committed(void);

/* The row as JSON text, the same object row_json builds. */
void row_text(im_buf *b, const inc_row *r);

/* s copied into *out (NULL stays NULL); false when out of memory. */
bool dup_into(char **out, const char *s);
long long now_ms(void);
void fmt_time(long long ms, char buf[32]);
/* "INC-7", "inc-7" or "7" -> 7; false when malformed. */
bool parse_id(const char *id, long long *num);
/* A CloudEvent's parts: a new id, the time of the row's update, copies
 * of the row and the actor, and `change` (taken; NULL stands for {}). The
 * writer thread makes them and the text; whoever needs the event as a
 * JSON tree packs it from them later (event_tree), off that thread. */
struct event_parts {
	inc_row row;
	json_t *change;
	char id[37], time[32], type[64];
	long long seq;
	char *actor_id, *actor_name, *actor_via;
};
typedef struct event_parts event_parts;
/* False when out of memory (p is then freed with event_parts_free). */
bool event_parts_make(event_parts *p, const char *type, long long seq,
		      const inc_row *row, json_t *change, const im_actor *who);
void event_parts_free(event_parts *p);
/* The event's compact JSON text with `inc`, the row's text (row_text),
 * byte for byte what json_dumps(event_tree(..), JSON_COMPACT) gives. NULL
 * when out of memory or when a string is not UTF-8. */
char *event_text(const event_parts *p, const char *inc);
/* The event as a tree around `incident` (borrowed; row_json of p->row). */
json_t *event_tree(const event_parts *p, json_t *incident);

/* One write on its way: validated input, then applied in the writer's
 * transaction (commit.c). Strings are owned (freed by op_free) except
 * `id`, `fields` and `who`, which the job copies when the caller does not
 * wait. */
typedef struct op {
	im_store *st;
	const char *id;         /* "INC-7", for messages */
	long long num;
	const json_t *fields;
	const im_actor *who;
	int to;                 /* transition target */
	char *text;             /* note */
	/* The events this write made (owned), for the outbox hook and, after
	 * the commit, the bus (which takes their texts) and the answer (the
	 * last one's parts). A write makes at most OP_EVENTS (a patch:
	 * update, severity, assign). */
#define OP_EVENTS 4
	struct op_event {
		event_parts *parts;
		char *text;
	} ev[OP_EVENTS];
	int n_ev;
	/* validated declare/patch values */
	char *title, *description, *service, *commander;
	int sev;
	unsigned set;           /* which of the above PATCH sets */
} op;

void op_free(op *o);

/* Changes the store for `o` inside the open transaction on `db`; fills
 * out (and err on failure). */
typedef int (*apply_fn)(sqlite3 *db, op *o, im_write *out, im_err *err);

/* Runs `apply` through the store's group writer with the idempotency
 * check and record, the outbox hook and, after commit, the bus publish.
 * then == NULL: waits and fills out/err, returns the result, and frees
 * nothing of o. Otherwise: takes `o` over (the caller must not free it),
 * returns 0 once queued and answers through `then`, or returns an error
 * with err filled (then never runs). */
int repo_commit(op *o, const char *idem, const char *scope, apply_fn apply,
		im_write *out, im_err *err, const im_write_then *then);

void set_err(im_err *err, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void set_db_err(im_err *err, sqlite3 *db, const char *what);
/* Not found: 404 naming the id. */
void set_not_found(im_err *err, const char *id);

#endif
