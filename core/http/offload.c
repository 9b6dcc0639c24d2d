/* Offloaded handlers: work that may wait on the network or on a plugin
 * runs on a thread of its own while the HTTP worker returns at once (the
 * answer is deferred, see deferred.c); past its deadline the client gets
 * a 504 and the late result is dropped. See http.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock/clock.h"
#include "http/internal.h"
#include "log/log.h"

typedef struct job {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs; /* worker + watchdog */
	bool done;
	im_http_deferred *d;
	im_offload_fn fn;
	void *ud;
	void (*free_ud)(void *);
	double deadline_s;
	char what[96];
} job;

static void unref(job *j)
{
	pthread_mutex_lock(&j->mu);
	int left = --j->refs;
	pthread_mutex_unlock(&j->mu);
	if (left > 0)
		return;
	if (j->free_ud)
		j->free_ud(j->ud);
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

static void *worker(void *arg)
{
	job *j = arg;
	im_http_response r = {0};
	j->fn(j->ud, &r);
	if (!r.status)
		im_resp_error(&r, 500, "internal", "%s failed; see the log",
			      j->what);
	/* Refused (IM_ECONFLICT) when the watchdog answered first. */
	const char *hdr[2] = {NULL, NULL};
	im_deferred_complete(j->d, r.status, r.content_type, r.body,
			     r.body_len, hdr);
	im_http_response_clear(&r);
	pthread_mutex_lock(&j->mu);
	j->done = true;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	unref(j);
	return NULL;
}

static void *watchdog(void *arg)
{
	job *j = arg;
	struct timespec end;
	clock_gettime(CLOCK_REALTIME, &end);
	end = im_ts_plus(end, (long long)(j->deadline_s * 1e9));
	pthread_mutex_lock(&j->mu);
	while (!j->done &&
	       pthread_cond_timedwait(&j->cv, &j->mu, &end) != ETIMEDOUT)
		;
	bool late = !j->done;
	pthread_mutex_unlock(&j->mu);
	if (late) {
		LOG_WARN("http", "%s did not finish within %.0f s: answered "
				 "504, its result will be dropped",
			 j->what, j->deadline_s);
		im_http_response r = {0};
		im_resp_error(&r, 504, "timeout",
			      "%s did not finish within %.0f s (a platform or "
			      "plugin that does not answer); try again later",
			      j->what, j->deadline_s);
		const char *hdr[2] = {NULL, NULL};
		im_deferred_complete(j->d, r.status, r.content_type, r.body,
				     r.body_len, hdr);
		im_http_response_clear(&r);
	} else {
		/* The worker answered: the watchdog's share of d goes. */
		const char *hdr[2] = {NULL, NULL};
		im_deferred_complete(j->d, 500, NULL, "", 0, hdr);
	}
	unref(j);
	return NULL;
}

int im_resp_offload(im_http_response *resp, const char *what,
		    double deadline_s, im_offload_fn fn, void *ud,
		    void (*free_ud)(void *))
{
	job *j = calloc(1, sizeof(*j));
	im_http_deferred *d = j ? im_resp_defer(resp) : NULL;
	if (!j || !d) {
		free(j);
		if (free_ud)
			free_ud(ud);
		return IM_ENOMEM;
	}
	/* The deferred has two shares (server + one completer); the
	 * watchdog is a second completer. */
	im_deferred_add_completer(d);
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	j->refs = 2;
	j->d = d;
	j->fn = fn;
	j->ud = ud;
	j->free_ud = free_ud;
	j->deadline_s = deadline_s > 0 ? deadline_s : 5;
	snprintf(j->what, sizeof(j->what), "%s", what ? what : "the request");
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	bool w = pthread_create(&t, &at, worker, j) == 0;
	bool g = pthread_create(&t, &at, watchdog, j) == 0;
	pthread_attr_destroy(&at);
	if (!w || !g) {
		/* Answer now; whichever thread runs still drops its share. */
		const char *hdr[2] = {NULL, NULL};
		if (!w) {
			im_deferred_complete(d, 503, "text/plain", "busy", 4, hdr);
			unref(j);
		}
		if (!g) {
			im_deferred_complete(d, 503, "text/plain", "busy", 4, hdr);
			unref(j);
		}
	}
	return 0;
}
