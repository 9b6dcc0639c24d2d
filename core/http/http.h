/*
 * core/http - the inbound HTTP server (libmicrohttpd) and its router.
 *
 * Contract: im_httpd_start() binds `listen` ("host:port", IPv4 or [IPv6])
 * and serves on a pool of worker threads; the router's handlers run on
 * those threads, concurrently, and must be reentrant. Request bodies are
 * buffered whole (up to max_body; beyond it the answer is 413 before the
 * handler runs) so handlers see the exact raw bytes. The request and
 * response objects belong to the server and live for one handler call.
 * im_httpd_stop() stops accepting, waits for running handlers and frees.
 */
#ifndef IM_CORE_HTTP_H
#define IM_CORE_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include <im/http.h>

struct MHD_Connection;

/* Defined here, opaque to plugins (im/types.h). */
struct im_http_request {
	struct MHD_Connection *conn;
	const char *method;
	const char *url;   /* full path, no query string */
	const char *rest;  /* part matched by a trailing "*" in the route */
	char *body;        /* NUL-terminated */
	size_t body_len;
	const char *remote_ip; /* textual peer address */
	bool loopback;         /* peer is 127.0.0.0/8 or ::1 */
};

typedef struct im_http_hdr_node {
	struct im_http_hdr_node *next;
	char *name;
	char *value;
} im_http_hdr_node;

struct im_http_response {
	int status;
	char *content_type;
	char *body;
	size_t body_len;
	im_http_hdr_node *headers;
};

typedef int (*im_handler_fn)(void *ud, const im_http_request *req,
			     im_http_response *resp);

/* --- router ---------------------------------------------------------- */

typedef struct im_router im_router;

im_router *im_router_new(void);
void im_router_free(im_router *r);
/* `method` NULL matches any; `pattern` is an exact path or ends in "*"
 * (prefix match; the rest goes to req->rest). First added wins. */
int im_router_add(im_router *r, const char *method, const char *pattern,
		  im_handler_fn fn, void *ud);
/* Looks up a handler. Returns 0 and sets fn/ud/rest_offset, or 404 when no
 * pattern matches, or 405 when one matches the path with another method. */
int im_router_match(const im_router *r, const char *method, const char *path,
		    im_handler_fn *fn, void **ud, size_t *rest_offset);

/* --- server ---------------------------------------------------------- */

typedef struct im_httpd im_httpd;

typedef struct im_httpd_opts {
	size_t max_body;          /* bytes; 0 = 1 MiB */
	unsigned timeout_s;       /* idle connection timeout; 0 = 30 */
	unsigned threads;         /* worker threads; 0 = number of CPUs */
	const char *name;         /* for logs: "api", "metrics" */
} im_httpd_opts;

/* Starts serving with `router` (borrowed; must outlive the server).
 * NULL on failure with the reason in err. */
im_httpd *im_httpd_start(const char *listen, const im_httpd_opts *opts,
			 const im_router *router, char *err, size_t errlen);
void im_httpd_stop(im_httpd *d);
/* Port actually bound (useful with port 0). */
unsigned im_httpd_port(const im_httpd *d);

/* --- helpers for handlers ------------------------------------------ */

int im_resp_set(im_http_response *resp, int status, const char *ctype,
		const void *body, size_t len);
int im_resp_header(im_http_response *resp, const char *name,
		   const char *value);
/* Sets a JSON body from `obj`, stealing the reference. */
int im_resp_json(im_http_response *resp, int status, json_t *obj);
/* {"error":{"code":code,"message":message}} */
int im_resp_error(im_http_response *resp, int status, const char *code,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
const char *im_req_header(const im_http_request *req, const char *name);
const char *im_req_query(const im_http_request *req, const char *name);

/* Parses "127.0.0.1:8080", "[::1]:8080", ":8080", "localhost:8080". */
int im_parse_listen(const char *listen, char *host, size_t hostlen,
		    unsigned *port);

#endif
