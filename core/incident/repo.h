/*
 * core/incident/repo - incidents and their timeline in the store.
 *
 * Contract: every write changes the incident row, appends its CloudEvents
 * 1.0 event to the timeline, inserts its outbox rows and records the
 * idempotency key atomically (one savepoint of the store's group-commit
 * transaction), is answered only once that transaction is on disk, and
 * is published on the bus in commit order. Any thread may call these
 * (not the store's writer thread inside a job). JSON handed back is new (caller owns it); JSON passed in is
 * borrowed.
 *
 * Incident JSON: {"id":"INC-7","number":7,"title":..,"description":..,
 *   "severity":"SEV-2","severity_label":"major","status":"open",
 *   "service":..|null,"commander":..|null,"duplicate_of":..|null,
 *   "created_at":"2026-11-27T10:00:00.000Z","updated_at":..,
 *   "url":"<public_url>/incidents/INC-7" (when a public URL is set)}
 *
 * Event JSON (CloudEvents 1.0): {"specversion":"1.0","id":"<uuid>",
 *   "source":"im/incidents","type":"im.incident.<verb>",
 *   "time":"...","subject":"INC-7","datacontenttype":"application/json",
 *   "sequence":42,
 *   "data":{"incident":{...after the change...},"change":{...},
 *           "actor":{"id":..,"name":..,"via":..}}}
 * `sequence` is the timeline's global order (also the SSE id).
 */
#ifndef IM_CORE_INCIDENT_REPO_H
#define IM_CORE_INCIDENT_REPO_H

#include <stdbool.h>

#include <jansson.h>

#include <im/types.h>

#include "incident/incident.h"
#include "store/store.h"

/* An error fit for an API answer: HTTP status, a stable code and a message
 * a person can act on. */
typedef struct im_err {
	int status;          /* 400, 404, 409, 500 ... */
	char code[40];       /* "invalid_severity", "illegal_transition" */
	char message[512];
} im_err;

typedef struct im_actor {
	const char *id;   /* "U123", "admin", token name */
	const char *name; /* display name; may be NULL */
	const char *via;  /* "api", "cli", or a connector platform */
	char id_buf[64];  /* storage for `id` when the caller builds it */
} im_actor;

/* The answer to a write: the incident after the change and the event. A
 * replay of an idempotency key returns the first answer with
 * `replayed` set. */
/* A write's result. A write made now carries the texts only (as stored
 * and published: the writer thread builds no JSON trees); a replay from
 * an Idempotency-Key carries the trees only. A caller that waited (the
 * forms without _async) gets both; an _async callback that needs the
 * trees calls im_write_trees, preferably off the writer thread. */
typedef struct im_write {
	json_t *incident;
	json_t *event;
	int status;     /* 201 for declare, 200 otherwise */
	bool replayed;
	/* Compact JSON texts of the incident and of the (last) event, or
	 * NULL (no event: a patch that changed nothing). Freed by
	 * im_write_clear. */
	char *event_json;
	char *incident_json;
	/* The last event's parts, for im_write_trees (internal). */
	struct event_parts *parts;
} im_write;

void im_write_clear(im_write *w);
/* Fills incident and event from the texts where they are NULL; false
 * when a text could not be parsed (out of memory). */
bool im_write_trees(im_write *w);

/* Idempotency keys answer repeats for this long (24 h), then expire. */
#define IM_IDEMPOTENCY_TTL_MS (24LL * 3600 * 1000)
/* Forgets keys recorded before `older_than_ms` (ms since the epoch);
 * returns how many, or IM_EIO. Writes call it now and then. */
int im_repo_prune_idempotency(im_store *st, long long older_than_ms);

/* Sets the public URL used for incident links ("" for none). */
void im_repo_set_public_url(const char *url);

/* The transactional outbox (core/notify): when set, every write calls
 * `fn` once per new event, after the change is applied and before COMMIT,
 * on the writing thread with the store lock held and the transaction open
 * on `db`. It inserts the event's outbox rows there, so they commit with
 * the event or not at all; a non-zero return rolls the write back. It must
 * not take the store lock itself. NULL removes it. */
typedef struct im_repo_event {
	long long seq;       /* the event's sequence */
	const char *type;    /* "im.incident.ack", ... */
	long long incident;  /* its number */
	int sev;             /* 1..4, the incident's after the event */
	const char *service; /* the incident's, or NULL */
} im_repo_event;
typedef int (*im_repo_outbox_fn)(sqlite3 *db, const im_repo_event *ev);
void im_repo_set_outbox_hook(im_repo_outbox_fn fn);

/* Writes for callers that must not wait for the disk (an HTTP worker):
 * the _async forms check their input like the others, then queue the
 * write and return 0 at once; the answer comes through cb, exactly once,
 * on the store's writer thread, when the write is durable (rc 0) or has
 * failed (rc and err). cb may take w's references (setting them NULL)
 * and must not block. Bad input: an error with err filled and cb never
 * runs. */
typedef void (*im_write_cb)(void *ud, int rc, im_write *w,
			    const im_err *err);
typedef struct im_write_then {
	im_write_cb cb;
	void *ud;
} im_write_then;

#define IM_TITLE_MAX 200
#define IM_TEXT_MAX 10000

/* Declares an incident. `fields`: title (required, 1..200 chars after
 * trimming), description, severity ("SEV-1".."SEV-4", default SEV-3),
 * service, commander. Unknown fields are refused (400). `idem` may be NULL.
 */
int im_inc_declare(im_store *st, const json_t *fields, const im_actor *who,
		   const char *idem, im_write *out, im_err *err);

int im_inc_declare_async(im_store *st, const json_t *fields,
			 const im_actor *who, const char *idem,
			 const im_write_then *then, im_err *err);

/* Moves `id` (e.g. "INC-7") to `to`. `fields` may carry "note" (text kept
 * in the event) and, for duplicate, "duplicate_of" (an existing other
 * incident). 409 for an illegal transition, naming the current state and
 * the legal next ones. */
int im_inc_transition(im_store *st, const char *id, im_inc_state to,
		      const json_t *fields, const im_actor *who,
		      const char *idem, im_write *out, im_err *err);

int im_inc_transition_async(im_store *st, const char *id, im_inc_state to,
			    const json_t *fields, const im_actor *who,
			    const char *idem, const im_write_then *then,
			    im_err *err);

/* Appends a note (event im.incident.note); `text` 1..10000 chars. */
int im_inc_note(im_store *st, const char *id, const char *text,
		const im_actor *who, const char *idem, im_write *out,
		im_err *err);

int im_inc_note_async(im_store *st, const char *id, const char *text,
		      const im_actor *who, const char *idem,
		      const im_write_then *then, im_err *err);

/* Changes fields: title, description, service (event im.incident.update),
 * severity (im.incident.severity), commander (im.incident.assign). One
 * event per changed group, in that order; the answer carries the last. */
int im_inc_patch(im_store *st, const char *id, const json_t *fields,
		 const im_actor *who, const char *idem, im_write *out,
		 im_err *err);

int im_inc_patch_async(im_store *st, const char *id, const json_t *fields,
		       const im_actor *who, const char *idem,
		       const im_write_then *then, im_err *err);

/* Records an audit event (im.incident.audit) on the incident without
 * changing it, e.g. a chat command that was denied. `data` is borrowed
 * and becomes the event's "change". */
int im_inc_audit(im_store *st, const char *id, const json_t *data,
		 const im_actor *who, im_err *err);

int im_inc_get(im_store *st, const char *id, json_t **out, im_err *err);

typedef struct im_inc_filter {
	const char *status;   /* comma-separated states, or NULL */
	const char *severity; /* comma-separated SEV-n, or NULL */
	const char *service;  /* exact, or NULL */
	const char *cursor;   /* from a previous page, or NULL */
	int limit;            /* 1..500, 0 = 50 */
} im_inc_filter;

/* Newest first. *out = {"items":[...],"next_cursor":"..."|null}. */
int im_inc_list(im_store *st, const im_inc_filter *f, json_t **out,
		im_err *err);

/* The same page as compact JSON text (malloc'd, *len bytes), written
 * without building a jansson tree: what the REST list answers with. */
int im_inc_list_text(im_store *st, const im_inc_filter *f, char **out,
		     size_t *len, im_err *err);

/* Events of one incident, oldest first: {"items":[...]} */
int im_inc_timeline(im_store *st, const char *id, json_t **out, im_err *err);

/* Events with sequence > after, oldest first, at most `limit`, as a JSON
 * array of [sequence, body] pairs: the body is the stored JSON text (what
 * streams send), or null when it is not UTF-8. The sequence comes from
 * its column, so a reader can step over a body it cannot parse. */
int im_events_after(im_store *st, long long after, int limit, json_t **out);
/* Highest sequence in the timeline (0 when empty). */
long long im_events_last_seq(im_store *st);

#endif
