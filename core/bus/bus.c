/* The in-process bus: a ring of the latest events and a list of waiters.
 * Readers pull from their own cursor, so nothing a reader does can slow
 * the publisher. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <im/types.h>

#include "bus/bus.h"

struct im_bus_watch {
	struct im_bus_watch *next;
	im_bus_wake_fn fn;
	void *ud;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static im_bus_event **ring; /* ring[seq % cap] */
static size_t cap = 4096;
static size_t count;        /* events in the ring */
static long long last_seq, published;
static im_bus_watch *watchers;
static size_t n_watchers;

static void ev_free(im_bus_event *ev)
{
	free(ev->type);
	free(ev->subject);
	free(ev->json);
	free(ev);
}

void im_bus_event_unref(im_bus_event *ev)
{
	if (!ev)
		return;
	pthread_mutex_lock(&mu);
	int left = --ev->refs;
	pthread_mutex_unlock(&mu);
	if (left == 0)
		ev_free(ev);
}

static void clear_ring(void)
{
	for (size_t i = 0; ring && i < cap; i++) {
		im_bus_event *ev = ring[i];
		if (ev && --ev->refs == 0)
			ev_free(ev);
	}
	free(ring);
	ring = NULL;
	count = 0;
}

void im_bus_configure(size_t capacity)
{
	pthread_mutex_lock(&mu);
	clear_ring();
	cap = capacity ? capacity : 4096;
	pthread_mutex_unlock(&mu);
}

void im_bus_set_start(long long seq)
{
	pthread_mutex_lock(&mu);
	if (count == 0)
		last_seq = seq;
	pthread_mutex_unlock(&mu);
}

void im_bus_reset(void)
{
	pthread_mutex_lock(&mu);
	clear_ring();
	last_seq = published = 0;
	while (watchers) {
		im_bus_watch *w = watchers;
		watchers = w->next;
		free(w);
	}
	n_watchers = 0;
	pthread_mutex_unlock(&mu);
}

/* Under mu, so a watcher being removed is never called after
 * im_bus_watch_remove returns; wake functions only signal. */
static void wake_locked(void)
{
	for (im_bus_watch *w = watchers; w; w = w->next)
		w->fn(w->ud);
}

/* im_bus_hold's state, per thread. */
static _Thread_local int held;
static _Thread_local bool held_publish;

void im_bus_publish(long long seq, const char *type, const char *subject,
		    const json_t *event)
{
	im_bus_publish_text(seq, type, subject, json_dumps(event, JSON_COMPACT));
}

void im_bus_publish_text(long long seq, const char *type,
			 const char *subject, char *json)
{
	im_bus_event *ev = calloc(1, sizeof(*ev));
	if (!ev) {
		free(json);
		return;
	}
	ev->seq = seq;
	ev->type = strdup(type ? type : "");
	ev->subject = strdup(subject ? subject : "");
	ev->json = json;
	if (!ev->type || !ev->subject || !ev->json) {
		ev_free(ev);
		return;
	}
	ev->len = strlen(ev->json);
	ev->refs = 1; /* the ring's */
	pthread_mutex_lock(&mu);
	if (!ring && !(ring = calloc(cap, sizeof(*ring)))) {
		pthread_mutex_unlock(&mu);
		ev_free(ev);
		return;
	}
	im_bus_event **slot = &ring[(size_t)seq % cap];
	if (*slot) {
		if (--(*slot)->refs == 0)
			ev_free(*slot);
	} else {
		count++;
	}
	*slot = ev;
	last_seq = seq;
	published++;
	if (held)
		held_publish = true;
	else
		wake_locked();
	pthread_mutex_unlock(&mu);
}

void im_bus_hold(void)
{
	held++;
}

void im_bus_release(void)
{
	if (held > 0 && --held == 0 && held_publish) {
		held_publish = false;
		pthread_mutex_lock(&mu);
		wake_locked();
		pthread_mutex_unlock(&mu);
	}
}

static long long first_locked(void)
{
	if (!count)
		return 0;
	return last_seq - (long long)count + 1;
}

int im_bus_read(long long after, im_bus_event **out, size_t max)
{
	pthread_mutex_lock(&mu);
	long long first = first_locked();
	if (count && after + 1 < first) {
		pthread_mutex_unlock(&mu);
		return IM_EAGAIN;
	}
	size_t n = 0;
	for (long long s = after + 1; s <= last_seq && n < max; s++) {
		im_bus_event *ev = ring ? ring[(size_t)s % cap] : NULL;
		if (!ev || ev->seq != s)
			continue; /* a gap in sequences (not published) */
		ev->refs++;
		out[n++] = ev;
	}
	pthread_mutex_unlock(&mu);
	return (int)n;
}

long long im_bus_last_seq(void)
{
	pthread_mutex_lock(&mu);
	long long s = last_seq;
	pthread_mutex_unlock(&mu);
	return s;
}

long long im_bus_first_seq(void)
{
	pthread_mutex_lock(&mu);
	long long s = first_locked();
	pthread_mutex_unlock(&mu);
	return s;
}

im_bus_watch *im_bus_watch_add(im_bus_wake_fn fn, void *ud)
{
	im_bus_watch *w = calloc(1, sizeof(*w));
	if (!w || !fn) {
		free(w);
		return NULL;
	}
	w->fn = fn;
	w->ud = ud;
	pthread_mutex_lock(&mu);
	w->next = watchers;
	watchers = w;
	n_watchers++;
	pthread_mutex_unlock(&mu);
	return w;
}

void im_bus_watch_remove(im_bus_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&mu);
	for (im_bus_watch **p = &watchers; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			n_watchers--;
			break;
		}
	pthread_mutex_unlock(&mu);
	free(w);
}

bool im_bus_glob(const char *pat, const char *s)
{
	/* Iterative '*' matching with one backtrack point. */
	const char *star = NULL, *resume = NULL;
	while (*s) {
		if (*pat == '*') {
			star = pat++;
			resume = s;
		} else if (*pat == *s) {
			pat++;
			s++;
		} else if (star) {
			pat = star + 1;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

void im_bus_stats_get(im_bus_stats *out)
{
	pthread_mutex_lock(&mu);
	out->published = published;
	out->last_seq = last_seq;
	out->in_ring = count;
	out->watchers = n_watchers;
	pthread_mutex_unlock(&mu);
}
