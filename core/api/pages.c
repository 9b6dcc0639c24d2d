/* Read-only HTML pages for people who follow an incident link from chat:
 * GET /incidents (the list, with the REST list's filters and cursor) and
 * GET /incidents/INC-n (the incident and its timeline). Server-rendered,
 * no script, every value HTML-escaped; links are relative, so the pages
 * work behind a proxy that serves im under a path prefix.
 *
 * Access is the REST API's (see api.h): loopback only when no token is
 * set, else a token — as a bearer token, or as the password of HTTP Basic
 * authentication, which a browser asks for on a 401. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "buf/buf.h"
#include "incident/incident.h"

static void html(im_buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': im_buf_puts(b, "&amp;"); break;
		case '<': im_buf_puts(b, "&lt;"); break;
		case '>': im_buf_puts(b, "&gt;"); break;
		case '"': im_buf_puts(b, "&quot;"); break;
		case '\'': im_buf_puts(b, "&#39;"); break;
		default: im_buf_putc(b, *s);
		}
	}
}

/* Query-string value: unreserved bytes as they are, the rest %XX. */
static void url_param(im_buf *b, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || strchr("-._~", c))
			im_buf_putc(b, (char)c);
		else
			im_buf_printf(b, "%%%02X", c);
	}
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void head(im_buf *b, const char *title)
{
	im_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
		       "<meta charset=\"utf-8\">"
		       "<meta name=\"viewport\" content=\"width=device-width\">"
		       "<title>");
	html(b, title);
	im_buf_puts(
	    b, " · im</title><style>"
	       "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;"
	       "max-width:60em;padding:0 1em;color:#1d1d1f}"
	       "table{border-collapse:collapse;width:100%}"
	       "th,td{text-align:left;padding:.35em .6em;vertical-align:top;"
	       "border-bottom:1px solid #ddd}th{font-weight:600}"
	       ".sev{font-weight:600}.SEV-1{color:#b00020}.SEV-2{color:#c25e00}"
	       "dl{display:grid;grid-template-columns:max-content auto;"
	       "gap:.2em 1em}dt{color:#666}dd{margin:0}"
	       "pre{white-space:pre-wrap;margin:0;font:inherit}"
	       "nav{margin-bottom:1em}small{color:#666}"
	       "</style></head><body>\n");
}

static int send_page(im_http_response *resp, int status, im_buf *b)
{
	im_buf_puts(b, "</body></html>\n");
	size_t len = 0;
	char *text = im_buf_take(b, &len);
	if (!text)
		return IM_ENOMEM;
	int rc = im_resp_set(resp, status, "text/html; charset=utf-8", text,
			     len);
	free(text);
	if (rc == 0)
		rc = im_resp_header(
		    resp, "Content-Security-Policy",
		    "default-src 'none'; style-src 'unsafe-inline'; "
		    "frame-ancestors 'none'; form-action 'self'");
	if (rc == 0)
		rc = im_resp_header(resp, "X-Content-Type-Options", "nosniff");
	if (rc == 0)
		rc = im_resp_header(resp, "Referrer-Policy", "no-referrer");
	if (rc == 0)
		rc = im_resp_header(resp, "Cache-Control", "no-store");
	return rc;
}

static int error_page(im_http_response *resp, int status, const char *title,
		      const char *message)
{
	im_buf b = IM_BUF_INIT;
	head(&b, title);
	im_buf_puts(&b, "<h1>");
	html(&b, title);
	im_buf_puts(&b, "</h1><p>");
	html(&b, message);
	im_buf_puts(&b, "</p>");
	return send_page(resp, status, &b);
}

/* The API's answer to a refused caller, as a page; a 401 asks the browser
 * for credentials. */
static int refused(im_http_response *resp)
{
	json_t *e = json_loadb(resp->body ? resp->body : "", resp->body_len, 0,
			       NULL);
	const char *msg = str(json_object_get(e, "error"), "message");
	int status = resp->status ? resp->status : 403;
	if (status == 401)
		msg = "sign in with any user name and one of the server's API "
		      "tokens (server.api_tokens) as the password";
	int rc = error_page(resp, status,
			    status == 401 ? "Sign-in needed" : "Forbidden",
			    msg ? msg : "not allowed");
	json_decref(e);
	if (rc == 0 && status == 401)
		rc = im_resp_header(resp, "WWW-Authenticate",
				    "Basic realm=\"im incidents (password: an "
				    "API token)\", charset=\"UTF-8\"");
	return rc;
}

static void cell(im_buf *b, const char *s)
{
	im_buf_puts(b, "<td>");
	html(b, s && *s ? s : "—");
	im_buf_puts(b, "</td>");
}

static void filter_params(im_buf *b, const im_inc_filter *f)
{
	const char *names[] = {"status", "severity", "service"};
	const char *vals[] = {f->status, f->severity, f->service};
	for (size_t i = 0; i < 3; i++) {
		if (!vals[i])
			continue;
		im_buf_printf(b, "&amp;%s=", names[i]);
		url_param(b, vals[i]);
	}
}

static const char *query(const im_http_request *req, const char *name)
{
	const char *v = im_req_query(req, name);
	return v && *v ? v : NULL;
}

static int list_page(im_api_ctx *ctx, const im_http_request *req,
		     im_http_response *resp)
{
	im_inc_filter f = {
	    .status = query(req, "status"),
	    .severity = query(req, "severity"),
	    .service = query(req, "service"),
	    .cursor = query(req, "cursor"),
	};
	json_t *page = NULL;
	im_err err = {0};
	if (im_inc_list(ctx->store, &f, &page, &err) != 0)
		return error_page(resp, err.status ? err.status : 500,
				  "Cannot list incidents",
				  err.message[0] ? err.message
						 : "the incident store failed");
	im_buf b = IM_BUF_INIT;
	head(&b, "Incidents");
	im_buf_puts(&b, "<h1>Incidents</h1>\n<p><small>Open: <a href=\""
			"incidents?status=open,acknowledged,mitigated\">active"
			"</a> · <a href=\"incidents\">all</a></small></p>\n");
	const json_t *items = json_object_get(page, "items");
	if (json_array_size(items) == 0) {
		im_buf_puts(&b, "<p>No incidents match.</p>\n");
	} else {
		im_buf_puts(&b, "<table><thead><tr><th>Incident</th>"
				"<th>Severity</th><th>Status</th><th>Title</th>"
				"<th>Service</th><th>Commander</th>"
				"<th>Updated</th></tr></thead><tbody>\n");
		size_t i;
		const json_t *it;
		json_array_foreach(items, i, it)
		{
			const char *id = str(it, "id"), *sev = str(it, "severity");
			im_buf_puts(&b, "<tr><td><a href=\"incidents/");
			html(&b, id);
			im_buf_puts(&b, "\">");
			html(&b, id);
			im_buf_puts(&b, "</a></td><td class=\"sev ");
			html(&b, sev);
			im_buf_puts(&b, "\">");
			html(&b, sev);
			im_buf_puts(&b, "</td>");
			cell(&b, str(it, "status"));
			cell(&b, str(it, "title"));
			cell(&b, str(it, "service"));
			cell(&b, str(it, "commander"));
			cell(&b, str(it, "updated_at"));
			im_buf_puts(&b, "</tr>\n");
		}
		im_buf_puts(&b, "</tbody></table>\n");
	}
	const char *next = str(page, "next_cursor");
	if (next) {
		im_buf_puts(&b, "<p><a href=\"incidents?cursor=");
		url_param(&b, next);
		filter_params(&b, &f);
		im_buf_puts(&b, "\">Older incidents →</a></p>\n");
	}
	json_decref(page);
	return send_page(resp, 200, &b);
}

/* One line of what an event changed, in words. */
static void change_text(im_buf *b, const json_t *change)
{
	const char *note = str(change, "text");
	if (!note)
		note = str(change, "note");
	const json_t *from = json_object_get(change, "from"),
		     *to = json_object_get(change, "to");
	if (json_is_string(to) || (from && to)) {
		html(b, json_string_value(from) ? json_string_value(from) : "—");
		im_buf_puts(b, " → ");
		html(b, json_string_value(to) ? json_string_value(to) : "—");
		if (note)
			im_buf_puts(b, "<br>");
	}
	if (note) {
		im_buf_puts(b, "<pre>");
		html(b, note);
		im_buf_puts(b, "</pre>");
	}
}

static void field(im_buf *b, const char *name, const char *value)
{
	im_buf_puts(b, "<dt>");
	html(b, name);
	im_buf_puts(b, "</dt><dd>");
	html(b, value && *value ? value : "—");
	im_buf_puts(b, "</dd>");
}

static int incident_page(im_api_ctx *ctx, const char *id,
			 im_http_response *resp)
{
	json_t *inc = NULL, *tl = NULL;
	im_err err = {0};
	if (im_inc_get(ctx->store, id, &inc, &err) != 0 ||
	    im_inc_timeline(ctx->store, id, &tl, &err) != 0) {
		json_decref(inc);
		int status = err.status ? err.status : 500;
		return error_page(resp, status,
				  status == 404 ? "No such incident"
						: "Cannot show the incident",
				  err.message[0] ? err.message
						 : "the incident store failed");
	}
	const char *iid = str(inc, "id"), *title = str(inc, "title");
	im_buf b = IM_BUF_INIT, heading = IM_BUF_INIT;
	im_buf_printf(&heading, "%s: %s", iid, title ? title : "");
	head(&b, im_buf_str(&heading));
	im_buf_puts(&b, "<nav><a href=\"../incidents\">← All incidents</a>"
			"</nav>\n<h1>");
	html(&b, im_buf_str(&heading));
	im_buf_free(&heading);
	im_buf_puts(&b, "</h1>\n<dl>");
	char sev[64];
	snprintf(sev, sizeof(sev), "%s (%s)", str(inc, "severity"),
		 str(inc, "severity_label") ? str(inc, "severity_label") : "");
	field(&b, "Severity", sev);
	field(&b, "Status", str(inc, "status"));
	field(&b, "Service", str(inc, "service"));
	field(&b, "Commander", str(inc, "commander"));
	field(&b, "Duplicate of", str(inc, "duplicate_of"));
	field(&b, "Declared", str(inc, "created_at"));
	field(&b, "Updated", str(inc, "updated_at"));
	im_buf_puts(&b, "</dl>\n");
	const char *desc = str(inc, "description");
	if (desc && *desc) {
		im_buf_puts(&b, "<h2>Description</h2><pre>");
		html(&b, desc);
		im_buf_puts(&b, "</pre>\n");
	}
	im_buf_puts(&b, "<h2>Timeline</h2>\n<table><thead><tr><th>Time</th>"
			"<th>Event</th><th>By</th><th>Change</th></tr></thead>"
			"<tbody>\n");
	size_t i;
	const json_t *ev;
	json_array_foreach(json_object_get(tl, "items"), i, ev)
	{
		const char *type = str(ev, "type");
		const char *verb = type && !strncmp(type, "im.incident.", 12)
				       ? type + 12
				       : type;
		const json_t *data = json_object_get(ev, "data");
		const json_t *actor = json_object_get(data, "actor");
		const char *by = str(actor, "name");
		im_buf_puts(&b, "<tr>");
		cell(&b, str(ev, "time"));
		cell(&b, verb);
		im_buf_puts(&b, "<td>");
		html(&b, by ? by : str(actor, "id"));
		if (str(actor, "via")) {
			im_buf_puts(&b, " <small>via ");
			html(&b, str(actor, "via"));
			im_buf_puts(&b, "</small>");
		}
		im_buf_puts(&b, "</td><td>");
		change_text(&b, json_object_get(data, "change"));
		im_buf_puts(&b, "</td></tr>\n");
	}
	im_buf_puts(&b, "</tbody></table>\n");
	json_decref(inc);
	json_decref(tl);
	return send_page(resp, 200, &b);
}

static bool allowed(im_api_ctx *ctx, const im_http_request *req,
		    im_http_response *resp, int *rc)
{
	if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
		im_resp_header(resp, "Allow", "GET, HEAD");
		*rc = error_page(resp, 405, "Method not allowed",
				 "these pages are read-only; change incidents "
				 "through /api/v1/incidents, the CLI or chat");
		return false;
	}
	im_actor who = {0};
	if (!ctx->authorize(ctx->app, req, resp, &who)) {
		*rc = refused(resp);
		return false;
	}
	return true;
}

static int on_list(void *ud, const im_http_request *req,
		   im_http_response *resp)
{
	int rc = 0;
	if (!allowed(ud, req, resp, &rc))
		return rc;
	return list_page(ud, req, resp);
}

static int on_incident(void *ud, const im_http_request *req,
		       im_http_response *resp)
{
	int rc = 0;
	if (!allowed(ud, req, resp, &rc))
		return rc;
	const char *id = req->rest ? req->rest : "";
	if (!*id) { /* "/incidents/": the list's relative links need no slash */
		im_resp_header(resp, "Location", "../incidents");
		return error_page(resp, 308, "Moved", "the list is at /incidents");
	}
	if (strchr(id, '/'))
		return error_page(resp, 404, "Not found",
				  "no such page; incidents are at "
				  "/incidents/INC-n");
	return incident_page(ud, id, resp);
}

int im_api_page_routes(im_router *r, im_api_ctx *ctx)
{
	int rc = im_router_add(r, NULL, "/incidents", on_list, ctx);
	if (rc == 0)
		rc = im_router_add(r, NULL, "/incidents/*", on_incident, ctx);
	return rc;
}
