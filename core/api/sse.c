/* GET /api/v1/events: Server-Sent Events. The HTTP server pulls bytes
 * through sse_produce on a worker thread whenever the client can take
 * them; with nothing to send the connection is suspended until the hub
 * wakes it (a publish, a keep-alive due, a cut-off). One formatted frame
 * is kept at a time, so a client costs its feed plus one event. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/streams.h"
#include "clock/clock.h"
#include "log/log.h"

/* Kernel send buffer per SSE socket: bounds what a client that stopped
 * reading pins in the kernel, and lets its backlog show sooner. */
#define SSE_SNDBUF (64 * 1024)

typedef struct sse {
	client base; /* first: the hub sees a client */
	im_http_stream *stream;
	char *out;   /* the frame being sent */
	size_t out_len, out_off, out_cap;
	bool greeted, ending;
} sse;

static bool out_fit(sse *s, size_t need)
{
	if (need <= s->out_cap)
		return true;
	size_t cap = s->out_cap ? s->out_cap : 1024;
	while (cap < need)
		cap *= 2;
	char *n = realloc(s->out, cap);
	if (!n)
		return false;
	s->out = n;
	s->out_cap = cap;
	return true;
}

static bool out_printf(sse *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool out_printf(sse *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !out_fit(s, (size_t)n + 1))
		return false;
	va_start(ap, fmt);
	vsnprintf(s->out, (size_t)n + 1, fmt, ap);
	va_end(ap);
	s->out_len = (size_t)n;
	s->out_off = 0;
	return true;
}

static bool out_event(sse *s, const feed_ev *ev)
{
	/* The CloudEvent is compact JSON: one line, so one data field. It
	 * is copied, not formatted: with thousands of clients printf's
	 * byte-by-byte copy of every event showed in profiles. */
	if (!out_printf(s, "id: %lld\nevent: %s\ndata: ", ev->seq, ev->type) ||
	    !out_fit(s, s->out_len + ev->len + 3))
		return false;
	memcpy(s->out + s->out_len, ev->json, ev->len);
	memcpy(s->out + s->out_len + ev->len, "\n\n", 3);
	s->out_len += ev->len + 2;
	return true;
}

static bool out_cut(sse *s)
{
	s->ending = true;
	return out_printf(s,
			  "event: error\ndata: {\"reason\":\"client too slow; "
			  "reconnect with Last-Event-ID: %lld\"}\n\n",
			  s->base.feed.cursor);
}

static void keepalive_later(sse *s)
{
	atomic_store(&s->base.next_ka_ms,
		     im_mono_ms() + s->base.keepalive_ms);
}

/* Formats the next frame; false when there is nothing to send now. */
static bool fill(sse *s)
{
	s->out_len = s->out_off = 0;
	if (s->ending)
		return false;
	if (hub_closing()) {
		s->ending = true;
		return false;
	}
	if (atomic_load(&s->base.cut))
		return out_cut(s);
	if (!s->greeted) {
		/* Headers and this line tell the client it is subscribed. */
		s->greeted = true;
		keepalive_later(s);
		return out_printf(s, ": subscribed after %lld\n\n",
				  s->base.feed.cursor);
	}
	feed_ev ev;
	int rc = feed_next(&s->base.feed, &ev);
	atomic_store(&s->base.cursor, s->base.feed.cursor);
	atomic_store(&s->base.live, s->base.feed.live);
	if (rc == 1) {
		bool ok = out_event(s, &ev);
		feed_ev_release(&ev);
		keepalive_later(s);
		return ok;
	}
	if (rc == IM_EAGAIN) {
		hub_mark_cut(&s->base);
		return out_cut(s);
	}
	if (rc < 0) {
		LOG_WARN("stream", "SSE client ended: reading events failed "
				   "(%d)", rc);
		s->ending = true;
		return false;
	}
	if (im_mono_ms() >= atomic_load(&s->base.next_ka_ms)) {
		keepalive_later(s);
		return out_printf(s, ": keep-alive\n\n");
	}
	return false;
}

static long sse_produce(void *ud, char *buf, size_t max)
{
	sse *s = ud;
	if (s->out_off == s->out_len && !fill(s))
		return s->ending ? -1 : 0;
	size_t n = s->out_len - s->out_off;
	if (n > max)
		n = max;
	memcpy(buf, s->out + s->out_off, n);
	s->out_off += n;
	atomic_store(&s->base.progress_ms, im_mono_ms());
	return (long)n;
}

static void sse_free(sse *s)
{
	feed_free(&s->base.feed);
	free(s->out);
	free(s);
}

/* Under the hub lock, so the hub is not waking this stream as it goes. */
static void sse_closed(void *ud)
{
	sse *s = ud;
	hub_remove(&s->base);
	sse_free(s);
}

void sse_wake(client *c)
{
	im_http_stream_wake(((sse *)c)->stream);
}

void sse_abort(client *c)
{
	im_http_stream_abort(((sse *)c)->stream);
}

int sse_handler(void *ud, const im_http_request *req, im_http_response *resp)
{
	im_api_ctx *ctx = ud;
	im_actor who = {0};
	if (!ctx->authorize(ctx->app, req, resp, &who))
		return 0;
	stream_params p;
	if (!params_parse(ctx, req, resp, &p))
		return 0;
	int rc;
	sse *s = (sse *)client_open(sizeof(sse), CLIENT_SSE, ctx, &p, resp,
				    &rc);
	if (!s)
		return rc;
	atomic_store(&s->base.progress_ms, im_mono_ms());
	keepalive_later(s);
	im_http_stream_ops ops = {.produce = sse_produce,
				  .closed = sse_closed,
				  .sndbuf = SSE_SNDBUF};
	s->stream = im_resp_stream(resp, 200, "text/event-stream", &ops, s);
	if (!s->stream) {
		sse_free(s);
		return IM_ENOMEM;
	}
	/* From here the server calls sse_closed whatever happens. */
	hub_add(&s->base);
	hub_watch(&s->base, im_req_socket(req));
	if (im_resp_header(resp, "Cache-Control", "no-cache") != 0 ||
	    im_resp_header(resp, "X-Accel-Buffering", "no") != 0)
		return IM_ENOMEM;
	LOG_DEBUG("stream", "SSE client %s subscribed after %lld", who.id,
		  s->base.feed.cursor);
	return 0;
}
