/* REST API for incidents. Two routes cover the tree: the collection
 * (/api/v1/incidents) and a prefix route for everything below it, whose
 * rest ("INC-7", "INC-7/ack", "INC-7/timeline") is parsed here so that an
 * unknown sub-path is a 404 and a known path with the wrong method a 405.
 *
 * Answers: writes return {"incident":..,"event":..} (201 for declare),
 * GET of one incident returns the incident itself, lists and timelines
 * return the repo's {"items":[..]} pages unchanged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"

#define IDEM_MAX 200
#define ID_MAX 64

/* One request on its way through a handler. */
typedef struct call {
	im_api_ctx *ctx;
	const im_http_request *req;
	im_http_response *resp;
	im_actor who;
	const char *idem;
} call;

static int not_allowed(call *c, const char *allow)
{
	im_resp_header(c->resp, "Allow", allow);
	return im_resp_error(c->resp, 405, "method_not_allowed",
			     "%s is not allowed on %s; use %s",
			     c->req->method, c->req->url, allow);
}

static int answer_err(im_http_response *resp, int rc, const im_err *err)
{
	/* A repo failure that left no reason is ours to explain. */
	if (err->status == 0)
		return im_resp_error(resp, 500, "internal",
				     "the incident store failed (%d); see the "
				     "server log",
				     rc);
	return im_resp_error(resp, err->status,
			     err->code[0] ? err->code : "error", "%s",
			     err->message);
}

static int answer_json(call *c, int rc, json_t *out, const im_err *err)
{
	if (rc != 0) {
		json_decref(out);
		return answer_err(c->resp, rc, err);
	}
	return im_resp_json(c->resp, 200, out);
}

/* A write's answer: {"incident":..,"event":..}, or the error. */
static int answer_write(im_http_response *resp, int rc, im_write *w,
			const im_err *err)
{
	if (rc != 0) {
		im_write_clear(w);
		return answer_err(resp, rc, err);
	}
	int status = w->status ? w->status : 200;
	if (w->event_json && w->incident_json) {
		/* The texts as they were stored: no second serialization. */
		char *body = NULL;
		int n = asprintf(&body, "{\"incident\":%s,\"event\":%s}",
				 w->incident_json, w->event_json);
		rc = n < 0 ? im_resp_error(resp, 500, "internal",
					   "out of memory")
			   : im_resp_set(resp, status, "application/json",
					 body, (size_t)n);
		if (n >= 0)
			free(body);
	} else {
		json_t *body = json_pack("{s:O?,s:O?}", "incident",
					 w->incident, "event", w->event);
		rc = im_resp_json(resp, status, body);
	}
	im_write_clear(w);
	return rc;
}

/* Writes are answered when their batch is on disk (the store's group
 * writer), so the HTTP worker never waits for an fsync: the answer is
 * deferred and sent from the writer thread. */
static void write_answered(void *ud, int rc, im_write *w, const im_err *err)
{
	static const char *const replayed[] = {"Idempotent-Replayed", "true",
					       NULL};
	im_http_response r = {0};
	bool again = rc == 0 && w->replayed;
	answer_write(&r, rc, w, err);
	im_deferred_complete(ud, r.status, r.content_type, r.body, r.body_len,
			     again ? replayed : NULL);
	im_http_response_clear(&r);
}

static bool defer_write(call *c, im_write_then *t)
{
	t->cb = write_answered;
	t->ud = im_resp_defer(c->resp);
	if (!t->ud)
		im_resp_error(c->resp, 500, "internal", "out of memory");
	return t->ud != NULL;
}

/* After an _async call: a write refused before it was queued (bad input)
 * is answered now, through the same deferred answer. */
static int write_queued(im_write_then *t, int rc, const im_err *err)
{
	if (rc != 0) {
		im_write none = {0};
		write_answered(t->ud, rc, &none, err);
	}
	return 0;
}

/* "application/json", any case, optionally followed by parameters such as
 * "; charset=utf-8". */
static bool is_json_type(const char *ct)
{
	static const char want[] = "application/json";
	if (!ct || strncasecmp(ct, want, sizeof(want) - 1) != 0)
		return false;
	ct += sizeof(want) - 1;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr(" \t\r\n", s[i]))
			return false;
	return true;
}

/* The body as a JSON object (an empty body reads as {}), and the
 * idempotency key. false when the answer is already in c->resp. */
static bool read_write(call *c, json_t **out)
{
	const im_http_request *req = c->req;
	*out = NULL;
	c->idem = im_req_header(req, "Idempotency-Key");
	if (c->idem && strlen(c->idem) > IDEM_MAX) {
		im_resp_error(c->resp, 400, "invalid_idempotency_key",
			      "Idempotency-Key is %zu characters long; the "
			      "limit is %d",
			      strlen(c->idem), IDEM_MAX);
		return false;
	}
	if (c->idem && !*c->idem)
		c->idem = NULL;
	if (blank(req->body, req->body_len)) {
		*out = json_object();
		return *out != NULL;
	}
	if (!is_json_type(im_req_header(req, "Content-Type"))) {
		const char *ct = im_req_header(req, "Content-Type");
		im_resp_error(c->resp, 415, "unsupported_media_type",
			      "the body must be JSON: send Content-Type: "
			      "application/json (got %s)",
			      ct ? ct : "no Content-Type");
		return false;
	}
	json_error_t je;
	*out = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES,
			  &je);
	if (!*out) {
		im_resp_error(c->resp, 400, "invalid_json",
			      "invalid JSON at line %d column %d: %s",
			      je.line, je.column, je.text);
		return false;
	}
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		im_resp_error(c->resp, 400, "invalid_json",
			      "the body must be a JSON object, e.g. "
			      "{\"title\":\"...\"}");
		return false;
	}
	return true;
}

/* --- the collection -------------------------------------------------- */

static int declare(call *c)
{
	json_t *in;
	if (!read_write(c, &in))
		return 0;
	im_write_then t;
	im_err err = {0};
	if (defer_write(c, &t))
		write_queued(&t,
			     im_inc_declare_async(c->ctx->store, in, &c->who,
						  c->idem, &t, &err),
			     &err);
	json_decref(in);
	return 0;
}

/* ?limit= as 1..500; absent = the repo's default. */
static bool parse_limit(call *c, int *limit)
{
	const char *s = im_req_query(c->req, "limit");
	*limit = 0;
	if (!s || !*s)
		return true;
	char *end;
	long n = strtol(s, &end, 10);
	if (*end || n < 1 || n > 500) {
		im_resp_error(c->resp, 400, "invalid_limit",
			      "limit must be a number from 1 to 500 (got '%s')",
			      s);
		return false;
	}
	*limit = (int)n;
	return true;
}

static const char *query(call *c, const char *name)
{
	const char *v = im_req_query(c->req, name);
	return v && *v ? v : NULL;
}

static int list(call *c)
{
	im_inc_filter f = {
	    .status = query(c, "status"),
	    .severity = query(c, "severity"),
	    .service = query(c, "service"),
	    .cursor = query(c, "cursor"),
	};
	if (!parse_limit(c, &f.limit))
		return 0;
	char *text = NULL;
	size_t len = 0;
	im_err err = {0};
	int rc = im_inc_list_text(c->ctx->store, &f, &text, &len, &err);
	if (rc != 0)
		return answer_json(c, rc, NULL, &err);
	rc = im_resp_set(c->resp, 200, "application/json", text, len);
	free(text);
	return rc;
}

static int collection(call *c)
{
	if (!strcmp(c->req->method, "POST"))
		return declare(c);
	if (!strcmp(c->req->method, "GET"))
		return list(c);
	return not_allowed(c, "GET, POST");
}

/* --- one incident ---------------------------------------------------- */

static int get_one(call *c, const char *id)
{
	json_t *out = NULL;
	im_err err = {0};
	int rc = im_inc_get(c->ctx->store, id, &out, &err);
	return answer_json(c, rc, out, &err);
}

static int patch(call *c, const char *id)
{
	json_t *in;
	if (!read_write(c, &in))
		return 0;
	im_write_then t;
	im_err err = {0};
	if (defer_write(c, &t))
		write_queued(&t,
			     im_inc_patch_async(c->ctx->store, id, in, &c->who,
						c->idem, &t, &err),
			     &err);
	json_decref(in);
	return 0;
}

static int item(call *c, const char *id)
{
	if (!strcmp(c->req->method, "GET"))
		return get_one(c, id);
	if (!strcmp(c->req->method, "PATCH"))
		return patch(c, id);
	return not_allowed(c, "GET, PATCH");
}

static int timeline(call *c, const char *id)
{
	if (strcmp(c->req->method, "GET"))
		return not_allowed(c, "GET");
	json_t *out = NULL;
	im_err err = {0};
	int rc = im_inc_timeline(c->ctx->store, id, &out, &err);
	return answer_json(c, rc, out, &err);
}

static int note(call *c, const char *id)
{
	json_t *in;
	if (!read_write(c, &in))
		return 0;
	const char *text = json_string_value(json_object_get(in, "text"));
	im_write_then t;
	int rc = 0;
	if (!text) {
		rc = im_resp_error(c->resp, 400, "invalid_field",
				   "a note needs {\"text\":\"...\"}");
	} else if (defer_write(c, &t)) {
		im_err err = {0};
		rc = write_queued(&t, im_inc_note_async(c->ctx->store, id, text,
							&c->who, c->idem, &t,
							&err),
				  &err);
	}
	json_decref(in);
	return rc;
}

static int transition(call *c, const char *id, im_inc_state to)
{
	json_t *in;
	if (!read_write(c, &in))
		return 0;
	im_write_then t;
	int rc = 0;
	if (to == IM_INC_DUPLICATE &&
	    !json_string_value(json_object_get(in, "duplicate_of"))) {
		rc = im_resp_error(c->resp, 400, "invalid_field",
				   "duplicate needs {\"duplicate_of\":"
				   "\"INC-n\"}: the incident %s duplicates",
				   id);
	} else if (defer_write(c, &t)) {
		im_err err = {0};
		rc = write_queued(&t, im_inc_transition_async(
					  c->ctx->store, id, to, in, &c->who,
					  c->idem, &t, &err),
				  &err);
	}
	json_decref(in);
	return rc;
}

static int action(call *c, const char *id, const char *what)
{
	if (!strcmp(what, "timeline"))
		return timeline(c, id);
	bool is_note = !strcmp(what, "note");
	int to = is_note ? -1 : im_inc_verb_target(what);
	if (!is_note && to < 0)
		return im_resp_error(
		    c->resp, 404, "not_found",
		    "no such action '%s' on %s; use ack, acknowledge, "
		    "mitigate, resolve, close, cancel, duplicate, note or "
		    "timeline",
		    what, id);
	if (strcmp(c->req->method, "POST"))
		return not_allowed(c, "POST");
	return is_note ? note(c, id) : transition(c, id, (im_inc_state)to);
}

/* rest = "INC-7", "INC-7/<action>", each part without further slashes;
 * one trailing slash is forgiven. */
static int below(call *c, const char *rest)
{
	char buf[ID_MAX * 2];
	size_t n = strlen(rest);
	if (n && rest[n - 1] == '/')
		n--;
	if (n == 0)
		return collection(c);
	if (n >= sizeof(buf))
		return im_resp_error(c->resp, 404, "not_found",
				     "no such incident or action");
	memcpy(buf, rest, n);
	buf[n] = '\0';
	char *what = strchr(buf, '/');
	if (what)
		*what++ = '\0';
	if (!*buf || (what && (!*what || strchr(what, '/'))))
		return im_resp_error(c->resp, 404, "not_found",
				     "no such path; use /api/v1/incidents/"
				     "INC-n[/action]");
	return what ? action(c, buf, what) : item(c, buf);
}

static bool begin(call *c, void *ud, const im_http_request *req,
		  im_http_response *resp)
{
	memset(c, 0, sizeof(*c));
	c->ctx = ud;
	c->req = req;
	c->resp = resp;
	return c->ctx->authorize(c->ctx->app, req, resp, &c->who);
}

static int on_collection(void *ud, const im_http_request *req,
			 im_http_response *resp)
{
	call c;
	if (!begin(&c, ud, req, resp))
		return 0;
	return collection(&c);
}

static int on_below(void *ud, const im_http_request *req,
		    im_http_response *resp)
{
	call c;
	if (!begin(&c, ud, req, resp))
		return 0;
	return below(&c, req->rest ? req->rest : "");
}

int im_api_incident_routes(im_router *r, im_api_ctx *ctx)
{
	int rc = im_router_add(r, NULL, "/api/v1/incidents", on_collection,
			       ctx);
	if (rc == 0)
		rc = im_router_add(r, NULL, "/api/v1/incidents/*", on_below,
				   ctx);
	return rc;
}
