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
 *
 * Long-lived answers: instead of a body, a handler may answer with a
 * stream (im_resp_stream: Server-Sent Events and the like) or hand the
 * socket over after a 101 (im_resp_upgrade: WebSocket). A stream never
 * holds a worker thread while it waits: when its producer has nothing to
 * send, the server suspends the connection until im_http_stream_wake().
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
	bool loopback;         /* peer is 127.0.0.0/8 or ::1 and the request
				  carries no Forwarded, X-Forwarded-For or
				  X-Real-IP header (a proxy's) */
	/* A copy (im_req_copy) owns everything and has conn == NULL. */
	struct im_http_hdr_node *hdr_copy, *query_copy;
	char *owned;
};

typedef struct im_http_hdr_node {
	struct im_http_hdr_node *next;
	char *name;
	char *value;
} im_http_hdr_node;

typedef struct im_http_stream im_http_stream;
typedef struct im_http_upgrade im_http_upgrade;

struct im_http_response {
	int status;
	char *content_type;
	char *body;
	size_t body_len;
	im_http_hdr_node *headers;
	im_http_stream *stream;   /* set by im_resp_stream */
	im_http_upgrade *upgrade; /* set by im_resp_upgrade */
	im_http_deferred *deferred; /* set by im_resp_defer */
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

typedef struct im_route_match {
	im_handler_fn fn;
	void *ud;
	size_t rest_offset;
	/* The pattern that matched (e.g. "/hooks/" and its star), also for
	 * a 405; NULL for a 404. Owned by the router. Labels metrics with
	 * bounded cardinality where the raw path would not. */
	const char *pattern;
} im_route_match;

/* im_router_match, also naming the matched pattern. */
int im_router_find(const im_router *r, const char *method, const char *path,
		   im_route_match *out);

/* --- server ---------------------------------------------------------- */

typedef struct im_httpd im_httpd;

typedef struct im_httpd_opts {
	size_t max_body;          /* bytes; 0 = 1 MiB */
	unsigned timeout_s;       /* idle connection timeout, and the time a
				     request has for its body or a kept-alive
				     connection for its next request; 0 = 30 */
	unsigned header_ms;       /* a new connection's request headers must
				     be in within this; 0 = 10 s */
	unsigned threads;         /* worker threads; 0 = number of CPUs */
	const char *name;         /* for logs: "api", "metrics" */
	/* Connections at most (waiting, being answered, streaming); beyond,
	 * a new one gets 503 too_many_connections. 0 = as many as the
	 * descriptor limit allows (RLIMIT_NOFILE, raised to its hard limit,
	 * less IM_HTTP_FD_RESERVE). */
	unsigned max_conns;
	/* GET requests of these paths (NULL-terminated; a query may
	 * follow) are served by a daemon of their own whose per-connection
	 * memory is stream_memory bytes (0 = 4 KiB) instead of 64 KiB: their
	 * request line and headers must fit in half of it. NULL: none. */
	const char *const *stream_paths;
	size_t stream_memory;
} im_httpd_opts;

/* Descriptors kept for everything but connections (the store, plugins,
 * the listeners' own) when the connection limit comes from RLIMIT_NOFILE. */
#define IM_HTTP_FD_RESERVE 512

/* Starts serving with `router` (borrowed; must outlive the server).
 * NULL on failure with the reason in err. */
im_httpd *im_httpd_start(const char *listen, const im_httpd_opts *opts,
			 const im_router *router, char *err, size_t errlen);
void im_httpd_stop(im_httpd *d);
/* Port actually bound (useful with port 0); 0 for NULL. */
unsigned im_httpd_port(const im_httpd *d);
/* The connection limit in force; 0 for NULL. */
unsigned im_httpd_max_conns(const im_httpd *d);

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
/* The connection's socket, for readiness polling only (e.g. EPOLLRDHUP to
 * notice a stream client leaving while its connection is suspended, which
 * the server does not watch then): never read, write or close it. It stays
 * open at least until a stream's closed() returns. -1 if unknown. */
int im_req_socket(const im_http_request *req);

/* --- deferred answers ---------------------------------------------- */

/* The handler returns 0 right after this; the answer is sent when
 * im_deferred_complete is called, exactly once, from any thread (also
 * before the handler returned). `headers` is NULL or a NULL-terminated
 * list of name, value pairs. If the server stops first, the client gets a
 * 503 and the later complete() returns IM_ECONFLICT. */
im_http_deferred *im_resp_defer(im_http_response *resp);
int im_deferred_complete(im_http_deferred *d, int status, const char *ctype,
			 const void *body, size_t len,
			 const char *const *headers);
/* Frees what a response holds (not a deferred it handed over). */
void im_http_response_clear(im_http_response *r);

/* Work that may wait on the network or on a plugin (offload.c): fn runs
 * on a thread of its own and fills `out` (status, content type, body;
 * its headers are not sent); the HTTP worker returns at once. Past
 * deadline_s the client gets a 504 naming `what`, and fn's late answer is
 * dropped. ud is freed with free_ud (may be NULL) after fn returned.
 * The handler returns 0 right after this. */
typedef void (*im_offload_fn)(void *ud, im_http_response *out);
/* True on a thread that is answering an HTTP request right now (an HTTP
 * worker): code there must not wait on the network. */
bool im_http_on_worker(void);

/* A copy of a request that outlives its connection (headers, query,
 * body, method, paths, peer), for a handler run on another thread; free
 * with im_req_copy_free. NULL when out of memory. */
im_http_request *im_req_copy(const im_http_request *req);
void im_req_copy_free(im_http_request *copy);
/* Waits up to ms for a deferred answer made on a thread with no
 * connection (a handler run offloaded), moves it into *out and drops the
 * server's share. Returns 0, or IM_ETIMEDOUT (the share is dropped too;
 * a later complete() is refused). */
int im_deferred_wait(im_http_deferred *d, long ms, im_http_response *out);
int im_resp_offload(im_http_response *resp, const char *what,
		    double deadline_s, im_offload_fn fn, void *ud,
		    void (*free_ud)(void *));

/* --- streams ---------------------------------------------------------- */

/*
 * A stream answer: headers go out at once, then the body comes from
 * produce() for as long as the connection lives (chunked on HTTP/1.1).
 *
 * Threads: produce() runs on an HTTP worker thread, never twice at once
 * for one stream, whenever the client can take more bytes. It returns the
 * number of bytes written to buf (at most max), 0 for "nothing now" (the
 * server then suspends the connection: no thread waits and nothing polls
 * until im_http_stream_wake), or a negative value to end the answer.
 * closed() runs exactly once, on a worker thread or in im_httpd_stop, after
 * the last produce(): the client left, the answer ended, it was aborted, or
 * the server stopped. `ud` belongs to the caller; closed() is the place to
 * free it. The stream handle is valid until closed() returns, and no
 * longer: callers that wake it from other threads must stop doing so in
 * closed() (take the same lock there as around their wake calls).
 */
typedef struct im_http_stream_ops {
	long (*produce)(void *ud, char *buf, size_t max);
	void (*closed)(void *ud);
	/* Kernel send buffer for this connection in bytes (0 = system
	 * default): a client that stops reading then holds at most this
	 * much kernel memory, and the producer notices it sooner. */
	int sndbuf;
} im_http_stream_ops;

/* Turns `resp` into a stream answer with `status` and content type;
 * further headers may still be added with im_resp_header. Returns the
 * stream, or NULL (out of memory; `ud` stays the caller's). If the handler
 * then fails or the answer cannot be sent, closed() still runs. */
im_http_stream *im_resp_stream(im_http_response *resp, int status,
			       const char *ctype,
			       const im_http_stream_ops *ops, void *ud);
/* Any thread: there may be something to send; resumes a suspended
 * connection (or makes the next "nothing now" try once more). Cheap and
 * non-blocking: fit for a bus watcher. */
void im_http_stream_wake(im_http_stream *s);
/* Any thread: closes the connection without waiting for the client to
 * read what is queued (a client that stopped reading). closed() follows
 * on a worker thread. */
void im_http_stream_abort(im_http_stream *s);

/* --- upgrades (WebSocket) ---------------------------------------------- */

/* Runs on a worker thread once the 101 answer is on the wire. From then on
 * the callee owns the connection: `fd` is the raw socket (non-blocking),
 * `extra` the bytes the client sent after its request (borrowed for this
 * call), and `ud` is the callee's to free. It must eventually call
 * im_http_upgrade_close(u) from any thread; that also closes `fd`. Every
 * upgraded connection must be closed before im_httpd_stop. */
typedef void (*im_http_upgrade_fn)(void *ud, im_http_upgrade *u, int fd,
				   const char *extra, size_t extra_len);

/* Answers 101 Switching Protocols with "Upgrade: <protocol>" (add the
 * protocol's own headers with im_resp_header) and hands the socket to
 * `fn`. If the upgrade never happens (the client left first), free_ud(ud)
 * runs instead. 0 or IM_ENOMEM (then `ud` stays the caller's). */
int im_resp_upgrade(im_http_response *resp, const char *protocol,
		    im_http_upgrade_fn fn, void *ud, void (*free_ud)(void *));
/* Any thread, once per upgrade: closes the socket and frees `u`. */
void im_http_upgrade_close(im_http_upgrade *u);

/* Parses "127.0.0.1:8080", "[::1]:8080", ":8080", "localhost:8080". */
int im_parse_listen(const char *listen, char *host, size_t hostlen,
		    unsigned *port);

#endif
