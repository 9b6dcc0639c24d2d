/* A stream client's view of the timeline: request parameters, then a
 * cursor that replays from the store and continues on the bus ring without
 * a gap or a duplicate (the cursor only ever moves to the sequence of an
 * event just passed on, and each source returns only events after it). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/streams.h"

#define PAGE 64
#define KEEPALIVE_MS 15000

/* ---- parameters ------------------------------------------------------ */

static bool parse_seq(const char *s, long long *out)
{
	size_t n = strlen(s);
	if (n == 0 || n > 18)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	*out = strtoll(s, NULL, 10);
	return true;
}

static bool parse_cursor(im_api_ctx *ctx, const im_http_request *req,
			 im_http_response *resp, stream_params *p)
{
	const char *name = "Last-Event-ID";
	const char *v = im_req_header(req, name);
	if (!v) {
		name = "since";
		v = im_req_query(req, name);
	}
	long long last = im_events_last_seq(ctx->store);
	p->after = last;
	if (!v)
		return true;
	if (!parse_seq(v, &p->after)) {
		im_resp_error(resp, 400, "invalid_cursor",
			      "%s must be a non-negative integer (the id of the "
			      "last event received), not '%.40s'",
			      name, v);
		return false;
	}
	if (p->after > last) {
		im_resp_error(resp, 400, "cursor_beyond_end",
			      "%s %lld is beyond the last event %lld", name,
			      p->after, last);
		return false;
	}
	p->replay = true;
	return true;
}

static bool parse_types(const char *v, im_http_response *resp,
			stream_params *p)
{
	char *copy = strdup(v);
	if (!copy)
		return false;
	bool ok = true;
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t && ok;
	     t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		size_t n = strlen(t);
		while (n && t[n - 1] == ' ')
			t[--n] = '\0';
		if (n == 0)
			continue;
		if (n > 200 || p->n_types == STREAM_MAX_TYPES) {
			im_resp_error(resp, 400, "invalid_type",
				      "type takes at most %d globs of up to "
				      "200 characters",
				      STREAM_MAX_TYPES);
			ok = false;
		} else if (!(p->types[p->n_types++] = strdup(t))) {
			ok = false;
		}
	}
	free(copy);
	return ok;
}

static bool parse_incident(const char *v, im_http_response *resp,
			   stream_params *p)
{
	size_t n = strlen(v);
	bool ok = n > 4 && n < sizeof(p->incident) &&
		  strncmp(v, "INC-", 4) == 0;
	for (size_t i = 4; ok && i < n; i++)
		ok = isdigit((unsigned char)v[i]);
	if (!ok) {
		im_resp_error(resp, 400, "invalid_incident",
			      "incident must be an incident id like INC-7, not "
			      "'%.40s'",
			      v);
		return false;
	}
	memcpy(p->incident, v, n + 1);
	return true;
}

static bool parse_keepalive(const char *v, im_http_response *resp,
			    stream_params *p)
{
	long long ms;
	if (!parse_seq(v, &ms) || ms < 100 || ms > 60000) {
		im_resp_error(resp, 400, "invalid_keepalive",
			      "keepalive_ms must be a whole number from 100 to "
			      "60000, not '%.40s'",
			      v);
		return false;
	}
	p->keepalive_ms = (long)ms;
	return true;
}

bool params_parse(im_api_ctx *ctx, const im_http_request *req,
		  im_http_response *resp, stream_params *p)
{
	memset(p, 0, sizeof(*p));
	p->keepalive_ms = KEEPALIVE_MS;
	const char *type = im_req_query(req, "type");
	const char *inc = im_req_query(req, "incident");
	const char *ka = im_req_query(req, "keepalive_ms");
	bool ok = parse_cursor(ctx, req, resp, p) &&
		  (!type || parse_types(type, resp, p)) &&
		  (!inc || parse_incident(inc, resp, p)) &&
		  (!ka || parse_keepalive(ka, resp, p));
	if (!ok) {
		if (resp->status == 0)
			im_resp_error(resp, 500, "internal", "out of memory");
		params_free(p);
	}
	return ok;
}

void params_free(stream_params *p)
{
	for (size_t i = 0; i < p->n_types; i++)
		free(p->types[i]);
	p->n_types = 0;
}

/* ---- the feed -------------------------------------------------------- */

void feed_init(feed *f, im_store *st, stream_params *p)
{
	memset(f, 0, sizeof(*f));
	f->store = st;
	f->p = *p;
	memset(p, 0, sizeof(*p));
	f->cursor = f->p.after;
	/* History up to now comes from the store; what is published from
	 * here on is in the ring (unless the client is very slow). */
	f->replay_to = f->p.replay ? im_events_last_seq(st) : f->cursor;
}

void feed_free(feed *f)
{
	json_decref(f->page);
	f->page = NULL;
	while (f->bus_i < f->bus_n)
		im_bus_event_unref(f->bus[f->bus_i++]);
	params_free(&f->p);
}

void feed_ev_release(feed_ev *ev)
{
	im_bus_event_unref(ev->bus);
	json_decref(ev->doc);
	free(ev->text);
	memset(ev, 0, sizeof(*ev));
}

static bool wanted(const feed *f, const char *type, const char *subject)
{
	if (f->p.incident[0] &&
	    (!subject || strcmp(subject, f->p.incident) != 0))
		return false;
	if (f->p.n_types == 0)
		return true;
	for (size_t i = 0; i < f->p.n_types; i++)
		if (im_bus_glob(f->p.types[i], type ? type : ""))
			return true;
	return false;
}

/* The next stored event of the page; 1 if it is wanted. One that cannot
 * be read is stepped over: the cursor moves past it either way, or the
 * next refill would load it again, forever. */
static int from_page(feed *f, feed_ev *ev)
{
	const json_t *pair = json_array_get(f->page, f->page_i++);
	json_int_t n = json_integer_value(json_array_get(pair, 0));
	const char *s = json_string_value(json_array_get(pair, 1));
	if (n <= f->cursor)
		return 0; /* out of order: never expected */
	f->cursor = n;
	json_t *doc = s ? json_loads(s, 0, NULL) : NULL;
	json_t *seq = json_object_get(doc, "sequence");
	if (!json_is_integer(seq) || json_integer_value(seq) != n) {
		json_decref(doc);
		return 0; /* unreadable: skip it */
	}
	const char *type = json_string_value(json_object_get(doc, "type"));
	const char *subj = json_string_value(json_object_get(doc, "subject"));
	if (!wanted(f, type, subj) || !(ev->text = strdup(s))) {
		json_decref(doc);
		return 0;
	}
	ev->seq = f->cursor;
	ev->type = type ? type : "";
	ev->json = ev->text;
	ev->len = strlen(s);
	ev->doc = doc;
	return 1;
}

static int from_ring(feed *f, feed_ev *ev)
{
	im_bus_event *b = f->bus[f->bus_i++];
	if (b->seq <= f->cursor || !wanted(f, b->type, b->subject)) {
		if (b->seq > f->cursor)
			f->cursor = b->seq;
		im_bus_event_unref(b);
		return 0;
	}
	f->cursor = b->seq;
	ev->seq = b->seq;
	ev->type = b->type;
	ev->json = b->json;
	ev->len = b->len;
	ev->bus = b;
	return 1;
}

static int load_page(feed *f)
{
	json_decref(f->page);
	f->page = NULL;
	f->page_i = 0;
	return im_events_after(f->store, f->cursor, PAGE, &f->page) == 0
		   ? 0
		   : IM_EIO;
}

/* Refills from the store or the ring: 1 refilled, 0 nothing new. */
static int refill(feed *f)
{
	if (f->cursor < f->replay_to) {
		if (load_page(f) != 0)
			return IM_EIO;
		if (json_array_size(f->page) > 0)
			return 1;
		f->replay_to = f->cursor; /* the store has nothing more */
	}
	int n = im_bus_read(f->cursor, f->bus, sizeof(f->bus) /
					       sizeof(f->bus[0]));
	if (n == IM_EAGAIN) {
		if (f->live)
			return IM_EAGAIN;
		/* Still replaying: what left the ring is in the store. */
		f->replay_to = im_events_last_seq(f->store);
		return f->cursor < f->replay_to ? refill(f) : 0;
	}
	if (n < 0)
		return n;
	f->live = true;
	f->bus_n = (size_t)n;
	f->bus_i = 0;
	return n > 0;
}

int feed_next(feed *f, feed_ev *ev)
{
	memset(ev, 0, sizeof(*ev));
	for (;;) {
		if (f->page && f->page_i < json_array_size(f->page)) {
			if (from_page(f, ev))
				return 1;
			continue;
		}
		if (f->bus_i < f->bus_n) {
			if (from_ring(f, ev))
				return 1;
			continue;
		}
		int rc = refill(f);
		if (rc <= 0)
			return rc;
	}
}
