/* Between server.c and stream.c only: how stream and upgrade answers are
 * handed to libmicrohttpd. Handlers use http.h. */
#ifndef IM_CORE_HTTP_INTERNAL_H
#define IM_CORE_HTTP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <sys/socket.h>

#include <microhttpd.h>

#include "http/http.h"

/* The live streams of one server, so that stopping can resume every
 * suspended connection first: libmicrohttpd refuses (panics) to stop with
 * a connection still suspended. */
typedef struct im_stream_reg {
	pthread_mutex_t mu;
	im_http_stream *head;
	bool stopping; /* no stream may suspend any more */
} im_stream_reg;

void im_stream_reg_init(im_stream_reg *reg);
void im_stream_reg_destroy(im_stream_reg *reg);
/* Ends every stream and resumes the suspended ones; before
 * MHD_stop_daemon. */
void im_stream_reg_stop(im_stream_reg *reg);

/* Queues resp->stream on `conn` (taking it over; resp->stream is NULL
 * afterwards). Headers and status come from `resp`. */
enum MHD_Result im_stream_queue(im_stream_reg *reg,
				struct MHD_Connection *conn,
				im_http_response *resp);
/* A stream that never reached a connection: runs closed() and frees. */
void im_stream_discard(im_http_stream *s);

/* Deferred answers (deferred.c) waiting on suspended connections, so
 * stopping can answer and resume them first. */
typedef struct im_deferred_reg {
	pthread_mutex_t mu;
	im_http_deferred *head;
	bool stopping;
} im_deferred_reg;

void im_deferred_reg_init(im_deferred_reg *reg);
void im_deferred_reg_destroy(im_deferred_reg *reg);
/* Answers 503 to every waiting request and resumes it. */
void im_deferred_reg_stop(im_deferred_reg *reg);
/* After the handler returned a deferred answer: 1 when it is complete
 * already (send it now), 0 when the connection is now suspended until
 * complete() resumes it, -1 when the server is stopping (answer 503). */
int im_deferred_begin(im_deferred_reg *reg, im_http_deferred *d,
		       struct MHD_Connection *conn);
/* One more party that will call im_deferred_complete (each call drops
 * one share, answered or refused). */
void im_deferred_add_completer(im_http_deferred *d);
/* The completed answer, once; NULL when not complete yet. */
im_http_response *im_deferred_take(im_http_deferred *d);
/* The request ended (sent: ok; or aborted): drops the server's share.
 * An aborted request whose answer had not started goes out on the
 * deferred's own descriptor (see deferred.c). */
void im_deferred_end(im_http_deferred *d, bool ok);

/* The connection guard (guard.c). A request must arrive whole in time:
 * the first request of a connection has header_ms for its headers, then
 * request_s for its body; a later request on a kept-alive
 * connection has request_s from the end of the previous one. At most
 * IM_GUARD_PER_ADDRESS connections from one address may be receiving a
 * request at once, and at most three quarters of max_conns in all: past
 * either, the oldest such connection is closed, so requests that arrive
 * whole (a health check, the admin API) always find room. Connections
 * whose request is being answered (suspended, streaming, upgraded) are
 * never cut by it. */
#define IM_GUARD_PER_ADDRESS 64

struct guard_conn;
typedef struct im_guard {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool running, stopping;
	char name[32];
	struct guard_conn *head; /* newest first */
	unsigned n_receiving, max_receiving;
	long long first_ms, request_ms;
	unsigned long cut;
} im_guard;

int im_guard_start(im_guard *g, const char *name, unsigned header_ms,
		   unsigned request_s, unsigned max_conns);
void im_guard_stop(im_guard *g);
/* MHD_OPTION_NOTIFY_CONNECTION callback (cls = the guard). */
void im_guard_notify(void *cls, struct MHD_Connection *conn, void **ctx,
		     enum MHD_ConnectionNotificationCode toe);
/* From the access handler: headers read; whole request read; a request
 * ended and the connection stays open for the next. */
void im_guard_headers_done(im_guard *g, struct MHD_Connection *conn);
void im_guard_request_done(im_guard *g, struct MHD_Connection *conn);
void im_guard_next_request(im_guard *g, struct MHD_Connection *conn);

/* The front acceptor (front.c): owns the listening socket, hands each
 * connection to the least busy of `main` or, when its request line is a GET of one of
 * `stream_paths` (NULL-terminated), to `streams` (NULL: none). Beyond
 * max_conns connections (those waiting in the front plus *live, which
 * counts the ones handed to MHD; the server decrements it when MHD closes
 * one), a connection gets a 503 and is closed. */
typedef struct im_front im_front;
/* One single-threaded daemon of the main set; busy counts the handlers
 * running on its thread, so a connection goes to one that is free (a
 * handler that blocks its thread stalls only that daemon's
 * connections). */
typedef struct im_mhd_slot {
	struct MHD_Daemon *mhd;
	atomic_int busy;
	struct im_httpd *d;
} im_mhd_slot;
typedef struct im_front_opts {
	int listen_fd; /* taken over */
	im_mhd_slot *main;
	unsigned n_main;
	struct MHD_Daemon *streams;
	const char *const *stream_paths;
	unsigned max_conns;
	atomic_long *live;
	const char *name;
} im_front_opts;

/* A listening socket on `ss`; -1 with errno set on failure. */
int im_front_listen(const struct sockaddr_storage *ss, unsigned backlog);
im_front *im_front_start(const im_front_opts *o);
/* Stops accepting, closes the waiting connections and the socket. */
void im_front_stop(im_front *f);

/* Adds the answer's content type and headers to an MHD response. */
void im_resp_add_headers(struct MHD_Response *mr, const im_http_response *r);

#endif
