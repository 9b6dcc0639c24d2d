/* Deferred answers: a handler returns at once and the answer follows from
 * another thread (chat commands answer within their budget while the
 * command runs on a worker). The connection is suspended meanwhile, so no
 * worker thread waits and nothing polls.
 *
 * Two owners share a deferred: the server side (the request, until it
 * ends) and the completer (until it has called complete). `mu` orders
 * complete() against suspend/resume so a completion that races the
 * handler's return is never lost. */
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"

struct im_http_deferred {
	pthread_mutex_t mu;
	im_deferred_reg *reg;
	struct im_http_deferred *next, *prev; /* in reg, while suspended */
	struct MHD_Connection *conn;
	int refs;
	bool suspended, completed, taken, gone;
	im_http_response final;
};

void im_deferred_reg_init(im_deferred_reg *reg)
{
	pthread_mutex_init(&reg->mu, NULL);
	reg->head = NULL;
	reg->stopping = false;
}

void im_deferred_reg_destroy(im_deferred_reg *reg)
{
	pthread_mutex_destroy(&reg->mu);
}

im_http_deferred *im_resp_defer(im_http_response *resp)
{
	if (!resp || resp->deferred)
		return resp ? resp->deferred : NULL;
	im_http_deferred *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	pthread_mutex_init(&d->mu, NULL);
	d->refs = 2;
	resp->deferred = d;
	resp->status = 202; /* placeholder: the handler answered "later" */
	return d;
}

static void unref(im_http_deferred *d)
{
	pthread_mutex_lock(&d->mu);
	int left = --d->refs;
	pthread_mutex_unlock(&d->mu);
	if (left > 0)
		return;
	im_http_response_clear(&d->final);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

static void reg_remove(im_deferred_reg *reg, im_http_deferred *d)
{
	if (d->prev)
		d->prev->next = d->next;
	else if (reg->head == d)
		reg->head = d->next;
	if (d->next)
		d->next->prev = d->prev;
	d->next = d->prev = NULL;
}

int im_deferred_complete(im_http_deferred *d, int status, const char *ctype,
			 const void *body, size_t len,
			 const char *const *headers)
{
	if (!d)
		return IM_EINVAL;
	im_http_response r = {0};
	int rc = im_resp_set(&r, status, ctype, body, len);
	for (const char *const *h = headers; rc == 0 && h && h[0] && h[1];
	     h += 2)
		rc = im_resp_header(&r, h[0], h[1]);
	pthread_mutex_lock(&d->mu);
	if (d->completed) {
		/* Answered already (the server stopped): drop our share. */
		pthread_mutex_unlock(&d->mu);
		im_http_response_clear(&r);
		unref(d);
		return IM_ECONFLICT;
	}
	d->completed = true;
	d->final = r;
	if (rc != 0) /* answer something rather than nothing */
		im_resp_set(&d->final, 500, "text/plain", "out of memory", 13);
	if (d->suspended && !d->gone) {
		im_deferred_reg *reg = d->reg;
		pthread_mutex_lock(&reg->mu);
		reg_remove(reg, d);
		pthread_mutex_unlock(&reg->mu);
		d->suspended = false;
		MHD_resume_connection(d->conn);
	}
	pthread_mutex_unlock(&d->mu);
	unref(d);
	return 0;
}

int im_deferred_begin(im_deferred_reg *reg, im_http_deferred *d,
		      struct MHD_Connection *conn)
{
	pthread_mutex_lock(&d->mu);
	d->conn = conn;
	d->reg = reg;
	bool ready = d->completed;
	if (!ready) {
		pthread_mutex_lock(&reg->mu);
		if (reg->stopping) {
			pthread_mutex_unlock(&reg->mu);
			pthread_mutex_unlock(&d->mu);
			return -1;
		}
		d->next = reg->head;
		if (reg->head)
			reg->head->prev = d;
		reg->head = d;
		pthread_mutex_unlock(&reg->mu);
		d->suspended = true;
		MHD_suspend_connection(conn);
	}
	pthread_mutex_unlock(&d->mu);
	return ready ? 1 : 0;
}

im_http_response *im_deferred_take(im_http_deferred *d)
{
	pthread_mutex_lock(&d->mu);
	im_http_response *r = d->completed && !d->taken ? &d->final : NULL;
	if (r)
		d->taken = true;
	pthread_mutex_unlock(&d->mu);
	return r;
}

void im_deferred_end(im_http_deferred *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->gone = true;
	if (d->suspended && d->reg) {
		pthread_mutex_lock(&d->reg->mu);
		reg_remove(d->reg, d);
		pthread_mutex_unlock(&d->reg->mu);
		d->suspended = false;
	}
	pthread_mutex_unlock(&d->mu);
	unref(d);
}

void im_deferred_reg_stop(im_deferred_reg *reg)
{
	pthread_mutex_lock(&reg->mu);
	reg->stopping = true;
	im_http_deferred *list = reg->head;
	reg->head = NULL;
	for (im_http_deferred *d = list; d; d = d->next)
		d->refs++; /* keep it while we answer below */
	pthread_mutex_unlock(&reg->mu);
	/* Answer what is still waiting so MHD can stop: it refuses to with
	 * a suspended connection. */
	for (im_http_deferred *d = list, *next; d; d = next) {
		next = d->next;
		pthread_mutex_lock(&d->mu);
		d->next = d->prev = NULL;
		if (!d->completed) {
			/* The completer still calls complete() later; it is
			 * refused then and drops its share. */
			d->completed = true;
			im_resp_error(&d->final, 503, "stopping",
				      "the server is stopping");
		}
		if (d->suspended && !d->gone) {
			d->suspended = false;
			MHD_resume_connection(d->conn);
		}
		pthread_mutex_unlock(&d->mu);
		unref(d);
	}
}
