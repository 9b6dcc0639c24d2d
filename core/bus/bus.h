/*
 * core/bus - the in-process event bus.
 *
 * Contract: the publisher (core/incident/repo, under the store lock, so in
 * commit order) hands each committed event to im_bus_publish with its
 * timeline sequence. The bus keeps the most recent events in a ring
 * (default 4096) as immutable, reference-counted serialized JSON, and wakes
 * every waiter. Readers (the SSE and WebSocket streams) pull with
 * im_bus_read from their own cursor; the notification pipeline reads its
 * outbox table and uses the bus only as a wake-up. The bus never
 * blocks on a reader and never holds per-reader queues, so a slow reader
 * cannot stall the publisher or other readers; a reader that falls behind
 * the ring gets IM_EAGAIN and must replay from the store (or be cut off).
 * All functions are thread-safe.
 */
#ifndef IM_CORE_BUS_H
#define IM_CORE_BUS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct im_bus_event {
	long long seq;
	char *type;    /* "im.incident.declare" */
	char *subject; /* "INC-7" */
	char *json;    /* the CloudEvent, compact */
	size_t len;
	int refs;      /* managed by the bus; use ref/unref */
} im_bus_event;

/* Sets the ring size (call before any publish; tests). Default 4096. */
void im_bus_configure(size_t capacity);
/* Before the first publish after a restart: the timeline already holds
 * events up to `seq`, so report it as the last one. */
void im_bus_set_start(long long seq);
/* Frees the ring (shutdown, tests). */
void im_bus_reset(void);

/* Publishes; `event` is borrowed (serialized here). Sequences must grow. */
void im_bus_publish(long long seq, const char *type, const char *subject,
		    const json_t *event);

/* The same with the event already serialized (compact JSON, malloc'd):
 * the bus takes `json` over (frees it, also on failure). */
void im_bus_publish_text(long long seq, const char *type,
			 const char *subject, char *json);

/* Copies into out[] up to `max` events with seq > after, taking a
 * reference on each. Returns the number copied (0 when none is newer), or
 * IM_EAGAIN when events after `after` have already left the ring. */
int im_bus_read(long long after, im_bus_event **out, size_t max);
void im_bus_event_unref(im_bus_event *ev);
/* Highest published sequence (0 before any). */
long long im_bus_last_seq(void);
/* Lowest sequence still in the ring (0 when empty). */
long long im_bus_first_seq(void);

/* Waiters: `fn` runs on the publisher's thread right after each publish;
 * it must only signal (write an eventfd, resume a connection), never block.
 * Returns a handle for im_bus_unwatch, or NULL. */
typedef void (*im_bus_wake_fn)(void *ud);
typedef struct im_bus_watch im_bus_watch;
im_bus_watch *im_bus_watch_add(im_bus_wake_fn fn, void *ud);
void im_bus_watch_remove(im_bus_watch *w);
/* Holds the wake-ups of this thread's publishes until the matching
 * im_bus_release (holds nest); then every watcher runs once if anything
 * was published meanwhile. The store's writer holds them over a batch's
 * answers, so 16 events wake the stream hub and the dispatcher once, not
 * 16 times. */
void im_bus_hold(void);
void im_bus_release(void);

/* Glob match for type filters: '*' matches any run (also across dots).
 * "im.incident.*" matches "im.incident.declare". */
bool im_bus_glob(const char *pattern, const char *text);

typedef struct im_bus_stats {
	long long published;   /* since start */
	long long last_seq;
	size_t in_ring;
	size_t watchers;
} im_bus_stats;
void im_bus_stats_get(im_bus_stats *out);

#endif
