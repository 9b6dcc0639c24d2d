/* libmicrohttpd server: buffers each request body (bounded), runs the
 * router's handler once the request is complete, and turns the handler's
 * im_http_response into an MHD response: a buffer, a stream (stream.c) or
 * a protocol upgrade. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <unistd.h>

#include <microhttpd.h>

#include "buf/buf.h"
#include "http/internal.h"
#include "log/log.h"
#include "metrics/metrics.h"

struct im_httpd {
	im_mhd_slot *main; /* everything but streams, a daemon a thread */
	unsigned n_main;
	struct MHD_Daemon *smhd; /* stream GETs, small pools; or NULL */
	im_mhd_slot sslot;       /* its on_request context */
	im_front *front;
	atomic_long live; /* connections handed to MHD, not closed yet */
	unsigned max_conns;
	const im_router *router;
	size_t max_body;
	unsigned port;
	char name[32];
	im_stream_reg streams;
	im_deferred_reg deferred;
	im_guard guard;
};

struct im_http_upgrade {
	im_http_upgrade_fn fn;
	void *ud;
	void (*free_ud)(void *);
	struct MHD_UpgradeResponseHandle *urh;
};

typedef struct req_ctx {
	im_http_request req;
	size_t cap;
	bool too_large;
	char ip[INET6_ADDRSTRLEN];
	/* A 101 answer queued and not yet taken over by its handler. */
	im_http_upgrade *upgrade;
	/* An answer that follows later (im_resp_defer). */
	im_http_deferred *deferred;
	bool deferred_started;
	/* A malformed request: answered with this status, then closed. */
	bool close_after;
	bool started; /* the access handler has seen this request */
	bool upgraded; /* answered 101: the socket left HTTP */
	const char *pattern; /* route of a deferred answer, counted when sent */
	/* The request target as MHD read it, before it split off the query
	 * and decoded it in place (on_uri). */
	const char *raw_uri;
	size_t raw_len;
} req_ctx;

static void upgrade_discard(im_http_upgrade *u)
{
	if (!u)
		return;
	if (u->free_ud)
		u->free_ud(u->ud);
	free(u);
}

static void resp_clear(im_http_response *r)
{
	im_stream_discard(r->stream);
	upgrade_discard(r->upgrade);
	free(r->content_type);
	free(r->body);
	for (im_http_hdr_node *h = r->headers, *next; h; h = next) {
		next = h->next;
		free(h->name);
		free(h->value);
		free(h);
	}
	memset(r, 0, sizeof(*r));
}

int im_resp_set(im_http_response *resp, int status, const char *ctype,
		const void *body, size_t len)
{
	char *b = malloc(len + 1);
	char *c = strdup(ctype ? ctype : "text/plain; charset=utf-8");
	if (!b || !c) {
		free(b);
		free(c);
		return IM_ENOMEM;
	}
	if (len)
		memcpy(b, body, len);
	b[len] = '\0';
	free(resp->body);
	free(resp->content_type);
	resp->status = status;
	resp->body = b;
	resp->body_len = len;
	resp->content_type = c;
	return 0;
}

int im_resp_header(im_http_response *resp, const char *name,
		   const char *value)
{
	im_http_hdr_node *h = calloc(1, sizeof(*h));
	if (!h)
		return IM_ENOMEM;
	h->name = strdup(name);
	h->value = strdup(value);
	if (!h->name || !h->value) {
		free(h->name);
		free(h->value);
		free(h);
		return IM_ENOMEM;
	}
	h->next = resp->headers;
	resp->headers = h;
	return 0;
}

int im_resp_json(im_http_response *resp, int status, json_t *obj)
{
	if (!obj)
		return IM_ENOMEM;
	char *s = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (!s)
		return IM_ENOMEM;
	size_t len = strlen(s);
	/* Hand the buffer over without another copy. */
	char *c = strdup("application/json");
	if (!c) {
		free(s);
		return IM_ENOMEM;
	}
	free(resp->body);
	free(resp->content_type);
	resp->status = status;
	resp->body = s;
	resp->body_len = len;
	resp->content_type = c;
	return 0;
}

int im_resp_error(im_http_response *resp, int status, const char *code,
		  const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A message may quote what the client sent: bytes that are not
	 * UTF-8 are shown as \xNN instead of failing the JSON answer. */
	im_buf b = IM_BUF_INIT;
	im_buf_put_utf8(&b, msg, strlen(msg));
	json_t *body = b.oom ? NULL
			     : json_pack("{s:{s:s,s:s}}", "error", "code", code,
					 "message", im_buf_str(&b));
	im_buf_free(&b);
	return im_resp_json(resp, status, body);
}

static const char *copy_lookup(const im_http_hdr_node *h, const char *name,
			       bool nocase)
{
	for (; h; h = h->next)
		if (nocase ? !strcasecmp(h->name, name) : !strcmp(h->name, name))
			return h->value;
	return NULL;
}

const char *im_req_header(const im_http_request *req, const char *name)
{
	if (!req->conn)
		return copy_lookup(req->hdr_copy, name, true);
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *im_req_query(const im_http_request *req, const char *name)
{
	if (!req->conn)
		return copy_lookup(req->query_copy, name, false);
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
					   name);
}

static void free_nodes(im_http_hdr_node *h)
{
	while (h) {
		im_http_hdr_node *n = h->next;
		free(h->name);
		free(h->value);
		free(h);
		h = n;
	}
}

typedef struct copy_ctx {
	im_http_hdr_node **tail;
	bool oom;
} copy_ctx;

static enum MHD_Result copy_value(void *cls, enum MHD_ValueKind kind,
				  const char *key, const char *value)
{
	copy_ctx *cc = cls;
	im_http_hdr_node *n = calloc(1, sizeof(*n));
	if (!n || !(n->name = strdup(key ? key : "")) ||
	    !(n->value = strdup(value ? value : ""))) {
		if (n) {
			free(n->name);
			free(n);
		}
		cc->oom = true;
		return MHD_NO;
	}
	*cc->tail = n;
	cc->tail = &n->next;
	return MHD_YES;
}

im_http_request *im_req_copy(const im_http_request *req)
{
	im_http_request *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	size_t ml = strlen(req->method) + 1, ul = strlen(req->url) + 1,
	       il = req->remote_ip ? strlen(req->remote_ip) + 1 : 1;
	size_t rest_off = req->rest ? (size_t)(req->rest - req->url) : ul - 1;
	c->owned = malloc(ml + ul + il);
	c->body = malloc(req->body_len + 1);
	copy_ctx h = {.tail = &c->hdr_copy}, q = {.tail = &c->query_copy};
	if (req->conn) {
		MHD_get_connection_values(req->conn, MHD_HEADER_KIND,
					  copy_value, &h);
		MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND,
					  copy_value, &q);
	}
	if (!c->owned || !c->body || h.oom || q.oom) {
		im_req_copy_free(c);
		return NULL;
	}
	memcpy(c->owned, req->method, ml);
	memcpy(c->owned + ml, req->url, ul);
	memcpy(c->owned + ml + ul, req->remote_ip ? req->remote_ip : "", il);
	c->method = c->owned;
	c->url = c->owned + ml;
	c->rest = c->url + (rest_off < ul ? rest_off : ul - 1);
	c->remote_ip = c->owned + ml + ul;
	if (req->body_len)
		memcpy(c->body, req->body, req->body_len);
	c->body[req->body_len] = '\0';
	c->body_len = req->body_len;
	c->loopback = req->loopback;
	return c;
}

void im_req_copy_free(im_http_request *c)
{
	if (!c)
		return;
	free_nodes(c->hdr_copy);
	free_nodes(c->query_copy);
	free(c->owned);
	free(c->body);
	free(c);
}

int im_req_socket(const im_http_request *req)
{
	if (!req->conn)
		return -1;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
	    req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	return ci ? ci->connect_fd : -1;
}

int im_resp_upgrade(im_http_response *resp, const char *protocol,
		    im_http_upgrade_fn fn, void *ud, void (*free_ud)(void *))
{
	if (!fn || !protocol || resp->stream || resp->upgrade)
		return IM_EINVAL;
	im_http_upgrade *u = calloc(1, sizeof(*u));
	if (!u)
		return IM_ENOMEM;
	if (im_resp_set(resp, MHD_HTTP_SWITCHING_PROTOCOLS, NULL, "", 0) != 0 ||
	    im_resp_header(resp, MHD_HTTP_HEADER_UPGRADE, protocol) != 0) {
		free(u);
		return IM_ENOMEM;
	}
	/* A 101 carries no body, so no content type either. */
	free(resp->content_type);
	resp->content_type = NULL;
	*u = (im_http_upgrade){.fn = fn, .ud = ud, .free_ud = free_ud};
	resp->upgrade = u;
	return 0;
}

void im_http_upgrade_close(im_http_upgrade *u)
{
	if (!u)
		return;
	MHD_upgrade_action(u->urh, MHD_UPGRADE_ACTION_CLOSE);
	free(u);
}

/* MHD calls this once the 101 is sent, on the connection's worker thread,
 * before the request's completion callback (which runs after the close):
 * from here on `u` belongs to the handler. */
static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls,
		       const char *extra, size_t extra_len, MHD_socket sock,
		       struct MHD_UpgradeResponseHandle *urh)
{
	im_http_upgrade *u = cls;
	req_ctx *c = con_cls;
	if (c && c->upgrade == u)
		c->upgrade = NULL;
	u->urh = urh;
	u->fn(u->ud, u, sock, extra, extra_len);
}

void im_resp_add_headers(struct MHD_Response *mr, const im_http_response *r)
{
	if (r->content_type)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
					r->content_type);
	for (im_http_hdr_node *h = r->headers; h; h = h->next)
		MHD_add_response_header(mr, h->name, h->value);
}

static enum MHD_Result send_upgrade(req_ctx *c, struct MHD_Connection *conn,
				    im_http_response *r)
{
	im_http_upgrade *u = r->upgrade;
	c->upgraded = true;
	struct MHD_Response *mr = MHD_create_response_for_upgrade(on_upgrade,
								  u);
	if (!mr)
		return MHD_NO;
	r->upgrade = NULL;
	c->upgrade = u; /* freed on completion unless on_upgrade takes it */
	im_resp_add_headers(mr, r);
	enum MHD_Result ret = MHD_queue_response(
	    conn, MHD_HTTP_SWITCHING_PROTOCOLS, mr);
	MHD_destroy_response(mr);
	return ret;
}

static enum MHD_Result send_response(im_httpd *d, req_ctx *c,
				     struct MHD_Connection *conn,
				     im_http_response *r)
{
	if (r->stream)
		return im_stream_queue(&d->streams, conn, r);
	if (r->upgrade)
		return send_upgrade(c, conn, r);
	struct MHD_Response *mr = MHD_create_response_from_buffer(
	    r->body_len, r->body, MHD_RESPMEM_MUST_FREE);
	if (!mr)
		return MHD_NO;
	r->body = NULL; /* now owned by MHD */
	im_resp_add_headers(mr, r);
	enum MHD_Result ret = MHD_queue_response(
	    conn, (unsigned)(r->status ? r->status : 500), mr);
	MHD_destroy_response(mr);
	return ret;
}

/* im_http_requests_total{route,code}: the route is the router's pattern,
 * never the raw path, so the series stay few. */
static void count_request(const char *route, int status)
{
	static const char *const labels[] = {"route", "code", NULL};
	static im_metric_memo memo;
	im_metric *m = im_metrics_memo(
	    &memo, "im_http_requests_total",
	    "HTTP requests answered, by route pattern and status code",
	    IM_METRIC_COUNTER, labels, NULL, 0);
	char code[16];
	snprintf(code, sizeof(code), "%d", status);
	const char *const values[] = {route ? route : "unmatched", code};
	im_metric_add(m, values, 1);
}

static enum MHD_Result send_error(im_httpd *d, req_ctx *c,
				  struct MHD_Connection *conn, int status,
				  const char *code, const char *msg)
{
	im_http_response r = {0};
	enum MHD_Result ret = MHD_NO;
	if (im_resp_error(&r, status, code, "%s", msg) == 0 &&
	    (!c->close_after ||
	     im_resp_header(&r, MHD_HTTP_HEADER_CONNECTION, "close") == 0))
		ret = send_response(d, c, conn, &r);
	resp_clear(&r);
	return ret;
}

static void fill_peer(req_ctx *c, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	c->ip[0] = '\0';
	c->req.loopback = false;
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, c->ip, sizeof(c->ip));
		c->req.loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, c->ip, sizeof(c->ip));
		c->req.loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	c->req.remote_ip = c->ip;
}

static bool append_body(req_ctx *c, const char *data, size_t len, size_t max)
{
	if (c->too_large || c->req.body_len + len > max) {
		c->too_large = true;
		return false;
	}
	if (c->req.body_len + len + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		while (cap < c->req.body_len + len + 1)
			cap *= 2;
		if (cap > max + 1)
			cap = max + 1;
		char *n = realloc(c->req.body, cap);
		if (!n)
			return false;
		c->req.body = n;
		c->cap = cap;
	}
	memcpy(c->req.body + c->req.body_len, data, len);
	c->req.body_len += len;
	c->req.body[c->req.body_len] = '\0';
	return true;
}

void im_http_response_clear(im_http_response *r)
{
	resp_clear(r);
}

/* Sends a deferred answer if it is complete, else waits suspended. */
static enum MHD_Result answer_deferred(im_httpd *d, req_ctx *c,
				       struct MHD_Connection *conn)
{
	if (!c->deferred_started) {
		c->deferred_started = true;
		int st = im_deferred_begin(&d->deferred, c->deferred, conn);
		if (st == 0)
			return MHD_YES; /* suspended; resumed by complete() */
		if (st < 0)
			return send_error(d, c, conn, 503, "stopping",
					  "the server is stopping");
	}
	im_http_response *r = im_deferred_take(c->deferred);
	if (!r)
		return send_error(d, c, conn, 503, "stopping",
				  "the server is stopping");
	/* Counted with the status the client gets, not the placeholder. */
	count_request(c->pattern, r->status);
	return send_response(d, c, conn, r);
}

static enum MHD_Result dispatch(im_httpd *d, req_ctx *c,
				struct MHD_Connection *conn)
{
	if (!c->req.body)
		c->req.body = calloc(1, 1);
	if (!c->req.body)
		return MHD_NO;
	im_route_match m;
	int rc = im_router_find(d->router, c->req.method, c->req.url, &m);
	if (rc != 0) {
		count_request(m.pattern, rc);
		if (rc == 404)
			return send_error(d, c, conn, 404, "not_found",
					  "no such route");
		return send_error(d, c, conn, 405, "method_not_allowed",
				  "method not allowed on this route");
	}
	c->req.rest = c->req.url + m.rest_offset;
	im_http_response r = {0};
	rc = m.fn(m.ud, &c->req, &r);
	enum MHD_Result ret;
	if (rc < 0 || r.status == 0) {
		LOG_ERROR(d->name, "%s %s: handler failed (%d)", c->req.method,
			  c->req.url, rc);
		count_request(m.pattern, 500);
		ret = send_error(d, c, conn, 500, "internal",
				 "the handler failed; see the server log");
	} else {
		LOG_DEBUG(d->name, "%s %s -> %d (%zu bytes in, %zu out)%s",
			  c->req.method, c->req.url, r.status, c->req.body_len,
			  r.body_len, r.stream ? " stream" : "");
		if (r.deferred) {
			c->pattern = m.pattern;
			c->deferred = r.deferred;
			r.deferred = NULL;
			resp_clear(&r);
			return answer_deferred(d, c, conn);
		}
		count_request(m.pattern, r.status);
		ret = send_response(d, c, conn, &r);
	}
	resp_clear(&r);
	return ret;
}

static enum MHD_Result too_large(im_httpd *d, req_ctx *c,
				 struct MHD_Connection *conn)
{
	im_route_match m;
	im_router_find(d->router, c->req.method, c->req.url, &m);
	count_request(m.pattern, 413);
	return send_error(d, c, conn, 413, "payload_too_large",
			  "request body exceeds the limit");
}

typedef struct framing {
	unsigned n_cl, n_te;
	bool cl_differ, cl_bad;
	const char *cl, *te;
	const char *bad_header; /* a value that is not UTF-8 text */
} framing;

/* Header values become JSON and log text: UTF-8 without control bytes. */
static bool text_ok(const char *v)
{
	size_t n = strlen(v);
	for (size_t i = 0; i < n;) {
		size_t k = im_utf8_seq((const unsigned char *)v + i, n - i);
		if (!k || (k == 1 && ((unsigned char)v[i] < 0x20 && v[i] != '\t')) ||
		    v[i] == 0x7f)
			return false;
		i += k;
	}
	return true;
}

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind,
				     const char *key, const char *value)
{
	framing *f = cls;
	if (!f->bad_header && value && !text_ok(value))
		f->bad_header = key;
	if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
		if (f->n_cl++ && strcmp(f->cl, value))
			f->cl_differ = true;
		f->cl = value;
		f->cl_bad |= !*value || strspn(value, "0123456789") !=
						     strlen(value);
	} else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
		f->n_te++;
		f->te = value;
	}
	return MHD_YES;
}

/* RFC 9112 framing, checked once the headers are in: a request whose body
 * length is ambiguous (two Content-Lengths, or one with a
 * Transfer-Encoding: section 6.3) or coded in a way we do not speak gets a
 * 4xx/501 and the connection is closed, so nothing after it on the
 * connection can be read as another request. */
static enum MHD_Result check_framing(im_httpd *d, req_ctx *c,
				     struct MHD_Connection *conn, bool *bad)
{
	framing f = {0};
	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
	int status = 0;
	const char *code = NULL, *msg = NULL;
	char why[160];
	if (f.bad_header) {
		im_buf name = {.max = 64};
		im_buf_put_utf8(&name, f.bad_header, strlen(f.bad_header));
		snprintf(why, sizeof(why),
			 "header %s is not UTF-8 text without control bytes",
			 im_buf_str(&name));
		im_buf_free(&name);
		status = 400, code = "bad_header", msg = why;
	} else if (f.n_cl && f.n_te) {
		status = 400, code = "bad_framing";
		msg = "both Content-Length and Transfer-Encoding: send one";
	} else if (f.cl_differ || f.cl_bad) {
		status = 400, code = "bad_content_length";
		msg = "Content-Length must be one decimal number";
	} else if (f.n_te && (f.n_te > 1 || strcasecmp(f.te, "chunked"))) {
		status = 501, code = "unsupported_transfer_encoding";
		msg = "only Transfer-Encoding: chunked is understood";
	}
	*bad = status != 0;
	if (!status)
		return MHD_YES;
	c->close_after = true;
	c->too_large = true; /* ignore any body that still arrives */
	count_request(NULL, status);
	LOG_DEBUG(d->name, "%s: %d %s", c->ip, status, msg);
	return send_error(d, c, conn, status, code, msg);
}

#define MAX_QUERY_ARGS 256

/* MHD (0.9) ends the request target at a NUL byte, so "GET /a\0b" reads as
 * "/a". It parses the request line in place, the target right before the
 * version, so a gap between where the raw target ends and where the
 * version starts is such a byte: 400 and close. (A layout where the
 * version is elsewhere shows no such gap and nothing is refused.) */
static enum MHD_Result check_target(im_httpd *d, req_ctx *c,
				    struct MHD_Connection *conn,
				    const char *version, bool *bad)
{
	*bad = false;
	if (!c->raw_uri || !version || version <= c->raw_uri ||
	    (size_t)(version - c->raw_uri) > c->raw_len + 1 + 16384 ||
	    (size_t)(version - c->raw_uri) == c->raw_len + 1)
		return MHD_YES;
	*bad = true;
	c->close_after = true;
	c->too_large = true;
	count_request(NULL, 400);
	LOG_DEBUG(d->name, "%s: NUL byte in the request target", c->ip);
	return send_error(d, c, conn, 400, "bad_request_line",
			  "the request line holds a NUL byte");
}

/* Called by MHD with the raw request target before it parses the query
 * into its per-connection memory pool: a target with more parameters than
 * anyone sends would exhaust the pool, and MHD could then answer nothing
 * and hold the connection until its timeout. Such a request gets a 414
 * written here and the connection is shut down. Returns no context (the
 * access handler makes its own). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	im_httpd *d = cls;
	const char *q = strchr(uri, '?');
	size_t args = q ? 1 : 0;
	for (; q && *q; q++)
		args += *q == '&' || *q == ';';
	if (args <= MAX_QUERY_ARGS) {
		req_ctx *c = calloc(1, sizeof(*c));
		if (c) {
			c->raw_uri = uri;
			c->raw_len = strlen(uri);
		}
		return c;
	}
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return NULL;
	static const char body[] =
	    "{\"error\":{\"code\":\"too_many_parameters\",\"message\":"
	    "\"more than 256 query parameters\"}}";
	char answer[256];
	int len = snprintf(answer, sizeof(answer),
			   "HTTP/1.1 414 URI Too Long\r\n"
			   "Content-Type: application/json\r\n"
			   "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
			   sizeof(body) - 1, body);
	ssize_t w = send(ci->connect_fd, answer, (size_t)len,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w; /* best effort: the shutdown below is what matters */
	shutdown(ci->connect_fd, SHUT_RDWR);
	count_request(NULL, 414);
	LOG_DEBUG(d->name, "request target with %zu parameters: 414, closed",
		  args);
	return NULL;
}

static _Thread_local bool on_worker;

bool im_http_on_worker(void)
{
	return on_worker;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn,
				      const char *url, const char *method,
				      const char *version, const char *upload,
				      size_t *upload_size, void **con_cls);

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	im_mhd_slot *slot = cls; /* a main daemon's, or the stream one's */
	atomic_fetch_add(&slot->busy, 1);
	on_worker = true;
	enum MHD_Result r = handle_request(slot->d, conn, url, method, version,
					   upload, upload_size, con_cls);
	on_worker = false;
	atomic_fetch_sub(&slot->busy, 1);
	return r;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn,
				      const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	im_httpd *d = cls;
	req_ctx *c = *con_cls;
	if (!c || !c->started) {
		if (!c && !(c = calloc(1, sizeof(*c))))
			return MHD_NO;
		c->started = true;
		im_guard_headers_done(&d->guard, conn);
		c->req.conn = conn;
		c->req.method = method;
		c->req.url = url;
		fill_peer(c, conn);
		/* A request a proxy on this host passed on is not a local
		 * caller: without tokens, loopback-only must not mean
		 * everyone the proxy serves. */
		if (c->req.loopback &&
		    (MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						 "X-Forwarded-For") ||
		     MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						 "Forwarded") ||
		     MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						 "X-Real-IP")))
			c->req.loopback = false;
		*con_cls = c;
		bool bad = false;
		enum MHD_Result fr = check_target(d, c, conn, version, &bad);
		if (!bad)
			fr = check_framing(d, c, conn, &bad);
		if (bad)
			return fr;
		const char *cl = MHD_lookup_connection_value(
		    conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > d->max_body) {
			c->too_large = true;
			return too_large(d, c, conn);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (!append_body(c, upload, *upload_size, d->max_body) &&
		    !c->too_large)
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	/* The whole request is in: no deadline while it is answered. */
	im_guard_request_done(&d->guard, conn);
	if (c->close_after)
		return MHD_YES; /* answered already; the body is dropped */
	if (c->too_large)
		return too_large(d, c, conn);
	if (c->deferred)
		return answer_deferred(d, c, conn);
	return dispatch(d, c, conn);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
			 void **con_cls, enum MHD_RequestTerminationCode toe)
{
	req_ctx *c = *con_cls;
	if (!c)
		return;
	im_httpd *d = cls;
	/* The connection may carry another request: it must arrive in time. */
	if (!c->upgraded && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		im_guard_next_request(&d->guard, conn);
	upgrade_discard(c->upgrade);
	im_deferred_end(c->deferred, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
	free(c->req.body);
	free(c);
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn,
			  void **ctx, enum MHD_ConnectionNotificationCode toe)
{
	im_httpd *d = cls;
	im_guard_notify(&d->guard, conn, ctx, toe);
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED)
		atomic_fetch_sub(&d->live, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	im_httpd *d = cls;
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	LOG_DEBUG(d->name, "libmicrohttpd: %s", buf);
}

int im_parse_listen(const char *listen, char *host, size_t hostlen,
		    unsigned *port)
{
	const char *colon = strrchr(listen, ':');
	if (!colon)
		return IM_EINVAL;
	const char *h = listen;
	size_t hl = (size_t)(colon - listen);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= hostlen)
		return IM_EINVAL;
	char *end;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end || p > 65535)
		return IM_EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (hl == 0)
		snprintf(host, hostlen, "0.0.0.0");
	*port = (unsigned)p;
	return 0;
}

static int resolve(const char *host, unsigned port,
		   struct sockaddr_storage *ss, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	int rc = getaddrinfo(host, ps, &hints, &ai);
	if (rc != 0 || !ai) {
		snprintf(err, errlen, "cannot resolve listen host %s: %s",
			 host, gai_strerror(rc));
		return IM_EINVAL;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

/* Every connection holds a descriptor, and stream clients hold theirs for
 * as long as they listen: take all the hard limit allows, and derive the
 * connection limit from it unless one is configured (then say so when the
 * descriptors do not reach it). */
static unsigned conn_limit(const char *name, unsigned want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return want ? want : 1024;
	rlim_t top = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (1u << 20)
			 ? (rlim_t)1 << 20
			 : rl.rlim_max;
	if (rl.rlim_cur < top) {
		rlim_t was = rl.rlim_cur;
		rl.rlim_cur = top;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			rl.rlim_cur = was;
	}
	rlim_t fds = rl.rlim_cur;
	unsigned room = fds > IM_HTTP_FD_RESERVE + 16
			    ? (unsigned)(fds - IM_HTTP_FD_RESERVE)
			    : 16;
	if (!want)
		return room;
	if (want > room) {
		LOG_WARN(name,
			 "server.max_connections is %u but RLIMIT_NOFILE allows "
			 "%llu descriptors (hard limit %llu), %u of them kept "
			 "for other files: at most %u connections; raise the "
			 "hard limit (e.g. LimitNOFILE= or ulimit -Hn)",
			 want, (unsigned long long)fds,
			 (unsigned long long)rl.rlim_max, IM_HTTP_FD_RESERVE,
			 room);
		return room;
	}
	return want;
}

/* One libmicrohttpd daemon without a listening socket of its own: the
 * front acceptor hands it its connections. `pool` bytes per
 * connection. */
static struct MHD_Daemon *start_mhd(im_httpd *d, void *cls, unsigned flags,
				    unsigned threads, unsigned timeout,
				    size_t pool)
{
	/* A pool of one is no pool: MHD wants 0 then. */
	return MHD_start_daemon(
	    flags | MHD_USE_NO_LISTEN_SOCKET, 0, NULL, NULL, on_request, cls,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, d,
	    MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0u,
	    MHD_OPTION_CONNECTION_TIMEOUT, timeout,
	    /* The front acceptor enforces the limit (with a 503). */
	    MHD_OPTION_CONNECTION_LIMIT, d->max_conns + 64,
	    /* Strict: HTTP/1.1 without Host, bad header lines get 400. */
	    MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, d,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, d,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, d, MHD_OPTION_END);
}

static void free_httpd(im_httpd *d)
{
	if (d->smhd)
		MHD_stop_daemon(d->smhd);
	for (unsigned i = 0; d->main && i < d->n_main; i++)
		if (d->main[i].mhd)
			MHD_stop_daemon(d->main[i].mhd);
	free(d->main);
	im_guard_stop(&d->guard);
	im_stream_reg_destroy(&d->streams);
	im_deferred_reg_destroy(&d->deferred);
	free(d);
}

im_httpd *im_httpd_start(const char *listen, const im_httpd_opts *opts,
			 const im_router *router, char *err, size_t errlen)
{
	char host[256];
	unsigned port;
	if (im_parse_listen(listen, host, sizeof(host), &port) != 0) {
		snprintf(err, errlen,
			 "bad listen address '%s': use host:port, e.g. "
			 "127.0.0.1:8080 or [::1]:8080",
			 listen);
		return NULL;
	}
	struct sockaddr_storage ss;
	if (resolve(host, port, &ss, err, errlen) != 0)
		return NULL;
	im_httpd *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->router = router;
	d->sslot.d = d;
	im_stream_reg_init(&d->streams);
	im_deferred_reg_init(&d->deferred);
	d->max_body = opts && opts->max_body ? opts->max_body : 1u << 20;
	snprintf(d->name, sizeof(d->name), "%s",
		 opts && opts->name ? opts->name : "http");
	d->max_conns = conn_limit(d->name, opts ? opts->max_conns : 0);
	unsigned threads = opts && opts->threads ? opts->threads : 0;
	if (!threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (unsigned)n : 1;
	}
	unsigned timeout = opts && opts->timeout_s ? opts->timeout_s : 30;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			 MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_ALLOW_UPGRADE;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (im_guard_start(&d->guard, d->name, opts ? opts->header_ms : 0,
			   timeout, d->max_conns) != 0) {
		snprintf(err, errlen, "cannot start a thread");
		im_stream_reg_destroy(&d->streams);
		im_deferred_reg_destroy(&d->deferred);
		free(d);
		return NULL;
	}
	int lfd = im_front_listen(&ss, 4096);
	if (lfd < 0) {
		snprintf(err, errlen,
			 "cannot listen on %s: the address is in use or not "
			 "available; change server.listen or stop the other "
			 "process",
			 listen);
		free_httpd(d);
		return NULL;
	}
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	d->port = port;
	if (getsockname(lfd, (struct sockaddr *)&bound, &blen) == 0)
		d->port = ntohs(bound.ss_family == AF_INET6
				    ? ((struct sockaddr_in6 *)&bound)->sin6_port
				    : ((struct sockaddr_in *)&bound)->sin_port);
	const char *const *paths = opts ? opts->stream_paths : NULL;
	size_t smem = opts && opts->stream_memory ? opts->stream_memory : 4096;
	/* Room for a request line and headers of 16 KiB and 256 query
	 * parameters; beyond, MHD answers 431 itself. */
	bool ok = (d->main = calloc(threads, sizeof(*d->main))) != NULL;
	d->n_main = ok ? threads : 0;
	for (unsigned i = 0; ok && i < threads; i++) {
		d->main[i].d = d;
		ok = (d->main[i].mhd = start_mhd(d, &d->main[i], flags, 1,
						 timeout, 64 * 1024)) != NULL;
	}
	if (ok && paths && *paths)
		ok = (d->smhd = start_mhd(d, &d->sslot, flags, threads, timeout,
					  smem)) != NULL;
	im_front_opts fo = {.listen_fd = lfd, .main = d->main,
			    .n_main = d->n_main, .streams = d->smhd,
			    .stream_paths = paths, .max_conns = d->max_conns,
			    .live = &d->live, .name = d->name};
	if (!ok ||
	    !(d->front = im_front_start(&fo))) {
		snprintf(err, errlen, "cannot start the HTTP server on %s",
			 listen);
		close(lfd);
		free_httpd(d);
		return NULL;
	}
	LOG_DEBUG(d->name, "at most %u connections", d->max_conns);
	return d;
}

unsigned im_httpd_port(const im_httpd *d)
{
	return d ? d->port : 0;
}

void im_httpd_stop(im_httpd *d)
{
	if (!d)
		return;
	/* No new connections; then MHD must not stop with a connection
	 * suspended. */
	im_front_stop(d->front);
	im_stream_reg_stop(&d->streams);
	im_deferred_reg_stop(&d->deferred);
	free_httpd(d);
}

unsigned im_httpd_max_conns(const im_httpd *d)
{
	return d ? d->max_conns : 0;
}
