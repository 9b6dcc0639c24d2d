/*
 * Internal to the event streams of core/api (stream.c, feed.c, sse.c,
 * ws.c); the public side is api.h.
 *
 * Every stream client reads events through a feed: its own cursor over the
 * timeline, served from the store while it replays history and from the
 * bus ring once it has caught up, with its type and incident filters.
 *
 * One hub thread (stream.c) serves every client: the bus watcher only
 * writes the hub's eventfd; the hub then wakes SSE connections (each SSE
 * client is pumped by an HTTP worker thread, see sse.c), drives every
 * WebSocket socket with wslay from its epoll loop (ws.c), sends
 * keep-alives, and cuts off clients that fall too far behind.
 *
 * Threads: a client's feed belongs to the thread that pumps it (an HTTP
 * worker for SSE, the hub for WebSocket). The fields the hub reads from
 * other threads are atomics. The client list is guarded by the hub mutex;
 * an SSE client leaves it (in its closed callback) only under that mutex,
 * so the hub never wakes a stream that is gone.
 */
#ifndef IM_CORE_API_STREAMS_H
#define IM_CORE_API_STREAMS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"
#include "bus/bus.h"

#define STREAM_MAX_TYPES 16
/* Unsent events beyond which a client that makes no progress is cut off. */
#define STREAM_MAX_BACKLOG (1024 * 1024)

/* What a client asked for, validated. */
typedef struct stream_params {
	long long after;      /* start after this sequence */
	bool replay;          /* Last-Event-ID / since was given */
	char *types[STREAM_MAX_TYPES]; /* globs; none = all */
	size_t n_types;
	char incident[32];    /* "" = all */
	long keepalive_ms;
} stream_params;

/* Parses and checks the query and Last-Event-ID of `req`. On a bad value
 * fills `resp` with a 400 and returns false. Free with params_free. */
bool params_parse(im_api_ctx *ctx, const im_http_request *req,
		  im_http_response *resp, stream_params *p);
void params_free(stream_params *p);

/* One event on its way to a client. */
typedef struct feed_ev {
	long long seq;
	const char *type;
	const char *json; /* compact CloudEvent, len bytes */
	size_t len;
	im_bus_event *bus; /* owner when it came from the bus */
	json_t *doc;       /* owner when it came from the store */
	char *text;
} feed_ev;

typedef struct feed {
	im_store *store;
	stream_params p;      /* owned */
	long long cursor;     /* last sequence passed on (sent or filtered) */
	long long replay_to;  /* read the store up to here first */
	bool live;            /* reading from the bus ring */
	json_t *page;         /* store page being replayed */
	size_t page_i;
	im_bus_event *bus[32];
	size_t bus_n, bus_i;
} feed;

/* Takes over `p`. */
void feed_init(feed *f, im_store *st, stream_params *p);
void feed_free(feed *f);
/* 1 with the next matching event in *ev (release it), 0 when there is
 * none now, IM_EAGAIN when a live feed fell out of the bus ring (the
 * client is too slow), another negative code on a store failure. */
int feed_next(feed *f, feed_ev *ev);
void feed_ev_release(feed_ev *ev);

/* --- clients and the hub (stream.c) ------------------------------------ */

typedef enum { CLIENT_SSE, CLIENT_WS } client_kind;

typedef struct client {
	client_kind kind;
	struct client *prev, *next; /* hub list; hub mutex */
	feed feed;
	long keepalive_ms;
	atomic_llong cursor;      /* feed.cursor, for the hub */
	atomic_bool live;         /* feed.live, for the hub */
	atomic_llong progress_ms; /* last time bytes went out */
	atomic_llong next_ka_ms;  /* keep-alive due */
	atomic_int cut;           /* 1 once cut off as too slow */
	long long cut_at_ms;      /* hub only */
	bool aborted;             /* hub only */
	unsigned long long id;    /* hub mutex */
	struct client *id_next;   /* the hub's id table chain; hub mutex */
	int watch_fd;             /* SSE socket in the hub's epoll, or -1 */
} client;

/* The part of opening a stream SSE and WebSocket share: refuses with 503
 * while the hub shuts down (answering `resp`; NULL returned, *rc set),
 * else allocates `size` bytes whose first member is a client and starts
 * its feed from `p` (consumed either way). */
client *client_open(size_t size, client_kind kind, im_api_ctx *ctx,
		    stream_params *p, im_http_response *resp, int *rc);
/* The hub is shutting down: streams end, new ones are refused. */
bool hub_closing(void);
/* Marks `c` cut off (counted once); false if it already was. */
bool hub_mark_cut(client *c);
/* Adds/removes an SSE client (any thread). */
void hub_add(client *c);
void hub_remove(client *c);
/* Watches an SSE client's socket for the client leaving while its
 * connection is suspended (the HTTP server does not poll it then). */
void hub_watch(client *c, int fd);
/* Hands an upgraded WebSocket client to the hub thread (any thread);
 * false when the hub is closing (the caller closes it). */
bool hub_add_ws(client *c);
/* Bytes published after `cursor` that the client has not taken; -1 when
 * unknown. */
long long hub_backlog(long long cursor);

/* sse.c */
int sse_handler(void *ud, const im_http_request *req, im_http_response *resp);
void sse_wake(client *c);
void sse_abort(client *c);

/* ws.c: everything but ws_handler runs on the hub thread. */
int ws_handler(void *ud, const im_http_request *req, im_http_response *resp);
/* Registers the client's socket with the hub's epoll set and starts it. */
void ws_start(client *c, int epfd);
/* Socket readiness. */
void ws_on_io(client *c, unsigned events);
/* Sends what the feed has (after a publish) and keep-alives. */
void ws_pump(client *c);
/* Too slow: close with 1008 and a reason. */
void ws_cut(client *c);
/* Closes the socket now and frees the client (hub list already left). */
void ws_destroy(client *c);
/* Server stop: a close frame with 1001, best effort, then ws_destroy. */
void ws_shutdown(client *c);
/* True once the connection is finished and may be destroyed. */
bool ws_done(client *c);
/* Bytes queued in wslay, not yet written. */
size_t ws_queued(client *c);
/* Its queue is so full that its input is no longer read (pings it never
 * takes the pongs of): treated as over its backlog. */
bool ws_stuck(client *c);

#endif
