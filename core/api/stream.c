/* The event-stream hub: one thread that turns bus publishes into work for
 * every stream client (see streams.h), the routes, stats and metrics.
 *
 * Why one thread: the bus calls its watchers under its own lock, on the
 * publisher's thread (which holds the store lock), so the watcher only
 * writes an eventfd - O(1) whatever the number of clients. The hub then
 * resumes SSE connections (their HTTP worker threads format and send) and
 * writes to WebSocket sockets itself, never blocking on any of them. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "api/streams.h"
#include "clock/clock.h"
#include "log/log.h"
#include "metrics/metrics.h"

/* A client over its backlog must have made no progress this long before
 * it is cut off (a burst alone does not make a client slow), and gets this
 * long to take its final message before the socket is closed hard. */
#define STALL_MS 1000
#define GRACE_MS 1000
/* Bytes per published sequence, for backlog sizes: covers the default
 * ring (4096) with room; a cursor further back counts as unknown. */
#define CUM_N 8192

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static client *clients;        /* SSE and WebSocket; mu */
static client *pending_ws;     /* upgraded, not yet started; mu */
static long n_sse, n_ws; /* mu */
static atomic_long n_cut; /* also bumped with mu held: not under it */
static unsigned long long next_id; /* mu */
static bool closing = true;    /* mu; true until routes are added */
static bool running;           /* the hub thread exists */
static pthread_t thread;
static int wake_fd = -1;
static int ep_fd = -1; /* set and cleared under mu */
/* epoll data of a watched SSE socket: the tag and the client's id (never
 * its pointer: the client may be freed by its worker thread meanwhile). */
#define SSE_TAG (1ULL << 63)
static im_bus_watch *watch;

/* Hub thread only. */
static struct {
	long long seq, total;
} cum[CUM_N];
static long long cum_last;  /* highest sequence indexed */
static long long cum_total; /* bytes indexed so far */

client *client_open(size_t size, client_kind kind, im_api_ctx *ctx,
		    stream_params *p, im_http_response *resp, int *rc)
{
	*rc = 0;
	if (hub_closing()) {
		params_free(p);
		*rc = im_resp_error(resp, 503, "shutting_down",
				    "the server is stopping; reconnect "
				    "shortly");
		return NULL;
	}
	client *c = calloc(1, size);
	if (!c) {
		params_free(p);
		*rc = IM_ENOMEM;
		return NULL;
	}
	c->kind = kind;
	c->keepalive_ms = p->keepalive_ms;
	feed_init(&c->feed, ctx->store, p);
	atomic_store(&c->cursor, c->feed.cursor);
	return c;
}

bool hub_closing(void)
{
	pthread_mutex_lock(&mu);
	bool c = closing;
	pthread_mutex_unlock(&mu);
	return c;
}

static void set_gauges(void)
{
	static const char *const labels[] = {"kind", NULL};
	im_metric *m = im_metrics_family(
	    "im_event_stream_clients",
	    "Event-stream clients connected, by kind", IM_METRIC_GAUGE,
	    labels, NULL, 0);
	const char *const sse[] = {"sse"}, *const ws[] = {"ws"};
	im_metric_set(m, sse, (double)n_sse);
	im_metric_set(m, ws, (double)n_ws);
}

/* Clients by id (mu): a hung-up SSE socket names its client by id, and
 * with 10,000 of them going at once a scan per hang-up was quadratic.
 * Chained buckets, doubled when full, freed when empty. */
static client **ids;
static size_t ids_cap, ids_n;

static void ids_grow(void)
{
	size_t cap = ids_cap ? ids_cap * 2 : 1024;
	client **t = calloc(cap, sizeof(*t));
	if (!t)
		return; /* the chains grow longer instead */
	for (size_t i = 0; i < ids_cap; i++)
		for (client *c = ids[i], *nx; c; c = nx) {
			nx = c->id_next;
			c->id_next = t[c->id & (cap - 1)];
			t[c->id & (cap - 1)] = c;
		}
	free(ids);
	ids = t;
	ids_cap = cap;
}

static void ids_put(client *c)
{
	if (ids_n >= ids_cap)
		ids_grow();
	if (!ids_cap)
		return; /* no table: found by scanning */
	client **b = &ids[c->id & (ids_cap - 1)];
	c->id_next = *b;
	*b = c;
	ids_n++;
}

static void ids_del(client *c)
{
	for (client **p = ids_cap ? &ids[c->id & (ids_cap - 1)] : NULL;
	     p && *p; p = &(*p)->id_next)
		if (*p == c) {
			*p = c->id_next;
			if (--ids_n == 0) {
				free(ids);
				ids = NULL;
				ids_cap = 0;
			}
			return;
		}
}

static client *ids_get(unsigned long long id)
{
	for (client *c = ids_cap ? ids[id & (ids_cap - 1)] : NULL; c;
	     c = c->id_next)
		if (c->id == id)
			return c;
	for (client *c = ids_cap ? NULL : clients; c; c = c->next)
		if (c->id == id) /* no table (out of memory) */
			return c;
	return NULL;
}

static void link_locked(client *c)
{
	c->id = ++next_id;
	c->watch_fd = -1;
	ids_put(c);
	c->prev = NULL;
	c->next = clients;
	if (clients)
		clients->prev = c;
	clients = c;
	if (c->kind == CLIENT_SSE)
		n_sse++;
	else
		n_ws++;
	set_gauges();
}

static void unlink_locked(client *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else if (clients == c)
		clients = c->next;
	else
		return; /* not linked */
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	ids_del(c);
	/* The socket is still open here (closed() runs before MHD closes
	 * it), so this cannot hit a reused descriptor. */
	if (c->watch_fd >= 0 && ep_fd >= 0)
		epoll_ctl(ep_fd, EPOLL_CTL_DEL, c->watch_fd, NULL);
	c->watch_fd = -1;
	if (c->kind == CLIENT_SSE)
		n_sse--;
	else
		n_ws--;
	set_gauges();
}

/* Set from the first wake until the hub reads the eventfd: the wakes in
 * between (a batch of commits publishes many events) cost no syscall. */
static atomic_bool wake_pending;

static void wake_hub(void)
{
	uint64_t one = 1;
	if (atomic_exchange(&wake_pending, true))
		return;
	if (wake_fd >= 0 && write(wake_fd, &one, sizeof(one)) < 0)
		(void)0; /* the counter is already non-zero: it will wake */
}

/* When the hub looks at its clients next (ms), set by its thread;
 * LLONG_MAX before its first pass and during one. */
static _Atomic long long hub_next_ms = LLONG_MAX;

void hub_add(client *c)
{
	pthread_mutex_lock(&mu);
	link_locked(c);
	pthread_mutex_unlock(&mu);
	/* Only when its keep-alive is due before the hub's next look: a
	 * wake is a pass over every client, and 10,000 joining clients must
	 * not cost 10,000 passes. */
	if (atomic_load(&c->next_ka_ms) < atomic_load(&hub_next_ms))
		wake_hub();
}

void hub_remove(client *c)
{
	pthread_mutex_lock(&mu);
	unlink_locked(c);
	pthread_mutex_unlock(&mu);
}

void hub_watch(client *c, int fd)
{
	pthread_mutex_lock(&mu);
	struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLONESHOT,
				 .data.u64 = SSE_TAG | c->id};
	if (fd >= 0 && ep_fd >= 0 && c->watch_fd < 0 &&
	    epoll_ctl(ep_fd, EPOLL_CTL_ADD, fd, &ev) == 0)
		c->watch_fd = fd;
	pthread_mutex_unlock(&mu);
}

/* An SSE client hung up: close its connection now rather than at its
 * next keep-alive. */
static void sse_gone(unsigned long long id)
{
	pthread_mutex_lock(&mu);
	client *c = ids_get(id);
	if (c && c->kind == CLIENT_SSE) {
		if (!c->aborted)
			sse_abort(c);
		c->aborted = true;
	}
	pthread_mutex_unlock(&mu);
}

bool hub_add_ws(client *c)
{
	pthread_mutex_lock(&mu);
	bool ok = !closing;
	if (ok) {
		c->next = pending_ws;
		pending_ws = c;
	}
	pthread_mutex_unlock(&mu);
	if (ok)
		wake_hub();
	return ok;
}

bool hub_mark_cut(client *c)
{
	int was = 0;
	if (!atomic_compare_exchange_strong(&c->cut, &was, 1))
		return false;
	atomic_fetch_add(&n_cut, 1);
	return true;
}

/* Bus watcher: runs under the bus lock on the publisher's thread. */
static void on_publish(void *ud)
{
	wake_hub();
}

/* ---- backlog accounting (hub thread) ----------------------------------- */

/* Starts the index at `seq` (nothing counted before it), so a client
 * whose cursor is exactly there has a known backlog. */
static void index_from(long long seq)
{
	cum_last = seq;
	cum[seq % CUM_N].seq = seq;
	cum[seq % CUM_N].total = cum_total;
}

static void index_bus(void)
{
	im_bus_event *evs[64];
	for (;;) {
		int n = im_bus_read(cum_last, evs, 64);
		if (n == IM_EAGAIN) {
			/* Behind the ring: start over from its oldest. */
			index_from(im_bus_first_seq() - 1);
			continue;
		}
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			cum_total += (long long)evs[i]->len;
			cum[evs[i]->seq % CUM_N].seq = evs[i]->seq;
			cum[evs[i]->seq % CUM_N].total = cum_total;
			cum_last = evs[i]->seq;
			im_bus_event_unref(evs[i]);
		}
	}
	im_bus_stats st;
	im_bus_stats_get(&st);
	static im_metric_memo memo;
	im_metric *m = im_metrics_memo(&memo, "im_events_published_total",
				       "Events published on the bus since "
				       "start",
				       IM_METRIC_COUNTER, NULL, NULL, 0);
	im_metric_set(m, NULL, (double)st.published);
}

long long hub_backlog(long long cursor)
{
	if (cursor >= cum_last)
		return 0;
	if (cum[cursor % CUM_N].seq != cursor)
		return -1; /* not indexed: too far back, or a start point */
	return cum_total - cum[cursor % CUM_N].total;
}

/* ---- the per-client pass ------------------------------------------------ */

static void poke(client *c)
{
	if (c->kind == CLIENT_SSE)
		sse_wake(c);
	else
		ws_pump(c);
}

static void cut_off(client *c, long long now)
{
	if (!hub_mark_cut(c))
		return;
	c->cut_at_ms = now;
	LOG_INFO("stream", "%s client too slow (cursor %lld, last %lld): "
			   "cutting it off",
		 c->kind == CLIENT_SSE ? "SSE" : "WebSocket",
		 (long long)atomic_load(&c->cursor), cum_last);
	if (c->kind == CLIENT_SSE)
		sse_wake(c); /* it says why, if the socket takes it */
	else
		ws_cut(c);
}

static void hard_close(client *c)
{
	c->aborted = true;
	if (c->kind == CLIENT_SSE)
		sse_abort(c);
	/* WebSocket: the caller destroys it once out of the list. */
}

/* Checks one client; returns when it next needs a look (ms), or -1. */
static long long check(client *c, long long now, bool published)
{
	if (atomic_load(&c->cut)) {
		if (!c->cut_at_ms) /* cut by its own thread: grace from now */
			c->cut_at_ms = now;
		if (!c->aborted && now - c->cut_at_ms >= GRACE_MS)
			hard_close(c);
		return c->aborted ? -1 : c->cut_at_ms + GRACE_MS;
	}
	long long due = atomic_load(&c->next_ka_ms);
	if (published || now >= due)
		poke(c);
	/* The pumping thread moves the deadline when it sends; until then
	 * (or if its socket is full) the next look is one interval away. */
	if (now >= due)
		due = now + c->keepalive_ms;
	bool stuck = c->kind == CLIENT_WS && ws_stuck(c);
	if (!atomic_load(&c->live) && !stuck)
		return due;
	long long b = hub_backlog(atomic_load(&c->cursor));
	if (b < 0)
		b = 0; /* unknown: the ring bound still applies */
	if (c->kind == CLIENT_WS)
		b += (long long)ws_queued(c);
	if (stuck)
		b = STREAM_MAX_BACKLOG + 1;
	if (b > STREAM_MAX_BACKLOG) {
		long long stalled = atomic_load(&c->progress_ms) + STALL_MS;
		if (now >= stalled) {
			cut_off(c, now);
			return now + GRACE_MS;
		}
		return stalled < due ? stalled : due;
	}
	return due;
}

/* Returns the next deadline (ms) of any client. */
static long long pass(long long now, bool published)
{
	long long next = now + 60000;
	client *dead = NULL;
	pthread_mutex_lock(&mu);
	for (client *c = clients, *nx; c; c = nx) {
		nx = c->next;
		long long due = check(c, now, published);
		bool gone = c->kind == CLIENT_WS &&
			    (ws_done(c) || (c->aborted));
		if (gone) {
			unlink_locked(c);
			c->next = dead;
			dead = c;
		} else if (due >= 0 && due < next) {
			next = due;
		}
	}
	pthread_mutex_unlock(&mu);
	for (client *c = dead, *nx; c; c = nx) {
		nx = c->next;
		ws_destroy(c);
	}
	return next;
}

/* ---- the hub thread ----------------------------------------------------- */

static void start_pending(void)
{
	pthread_mutex_lock(&mu);
	client *list = pending_ws;
	pending_ws = NULL;
	pthread_mutex_unlock(&mu);
	for (client *c = list, *nx; c; c = nx) {
		nx = c->next;
		ws_start(c, ep_fd);
		hub_add(c);
	}
}

static void io(struct epoll_event *evs, int n, bool *woken)
{
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 & SSE_TAG) {
			sse_gone(evs[i].data.u64 & ~SSE_TAG);
			continue;
		}
		client *c = evs[i].data.ptr;
		if (!c) {
			uint64_t v;
			/* Read, then clear: a wake between the two writes
			 * nothing, and the hub looks at the bus after this
			 * anyway. Cleared first, the read could swallow the
			 * write of a wake that came in between and leave the
			 * flag set with the counter at zero: every later wake
			 * skipped, events out only at the 15 s keep-alive. */
			if (read(wake_fd, &v, sizeof(v)) < 0)
				(void)0; /* nothing pending after all */
			atomic_store(&wake_pending, false);
			*woken = true;
			continue;
		}
		ws_on_io(c, evs[i].events);
		if (ws_done(c)) {
			hub_remove(c);
			ws_destroy(c);
		}
	}
}

static void shutdown_all(void)
{
	start_pending();
	pthread_mutex_lock(&mu);
	client *list = NULL;
	for (client *c = clients, *nx; c; c = nx) {
		nx = c->next;
		if (c->kind == CLIENT_SSE) {
			sse_wake(c); /* it ends: hub_closing() */
			continue;
		}
		unlink_locked(c);
		c->next = list;
		list = c;
	}
	pthread_mutex_unlock(&mu);
	for (client *c = list, *nx; c; c = nx) {
		nx = c->next;
		ws_shutdown(c);
	}
}

static void *hub_main(void *arg)
{
	long long next = im_mono_ms() + 60000;
	for (;;) {
		long long now = im_mono_ms();
		int wait = next > now ? (int)(next - now) : 0;
		struct epoll_event evs[64];
		int n = epoll_wait(ep_fd, evs, 64, wait);
		if (n < 0 && errno != EINTR)
			break;
		bool woken = false;
		io(evs, n > 0 ? n : 0, &woken);
		if (hub_closing())
			break;
		start_pending();
		/* Woken by a publish, or by a new client to schedule. */
		bool published = woken && im_bus_last_seq() != cum_last;
		if (published)
			index_bus();
		now = im_mono_ms();
		/* A socket event alone needs no pass over everyone. */
		if (woken || now >= next || n == 0) {
			/* A client added during the pass may be missed by it:
			 * until the pass is over, every addition wakes. */
			atomic_store(&hub_next_ms, LLONG_MAX);
			next = pass(now, published);
			atomic_store(&hub_next_ms, next);
		}
	}
	shutdown_all();
	return NULL;
}

static void close_epoll(void)
{
	pthread_mutex_lock(&mu);
	int ep = ep_fd;
	ep_fd = -1;
	for (client *c = clients; c; c = c->next)
		c->watch_fd = -1;
	pthread_mutex_unlock(&mu);
	if (ep >= 0)
		close(ep);
}

static int hub_start(void)
{
	atomic_store(&wake_pending, false);
	atomic_store(&hub_next_ms, LLONG_MAX);
	wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	pthread_mutex_lock(&mu);
	ep_fd = ep;
	pthread_mutex_unlock(&mu);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	if (wake_fd < 0 || ep_fd < 0 ||
	    epoll_ctl(ep_fd, EPOLL_CTL_ADD, wake_fd, &ev) != 0)
		goto fail;
	/* A restart in the same process (tests) must not see old sizes;
	 * the first start leaves the table untouched (not resident). */
	if (cum_last || cum_total)
		memset(cum, 0, sizeof(cum));
	cum_total = 0;
	index_from(im_bus_last_seq());
	if (!(watch = im_bus_watch_add(on_publish, NULL)))
		goto fail;
	pthread_mutex_lock(&mu);
	closing = false;
	pthread_mutex_unlock(&mu);
	if (pthread_create(&thread, NULL, hub_main, NULL) != 0) {
		pthread_mutex_lock(&mu);
		closing = true;
		pthread_mutex_unlock(&mu);
		im_bus_watch_remove(watch);
		watch = NULL;
		goto fail;
	}
	running = true;
	return 0;
fail:
	if (wake_fd >= 0)
		close(wake_fd);
	wake_fd = -1;
	close_epoll();
	return IM_EIO;
}

void im_api_streams_close(void)
{
	if (!running)
		return;
	pthread_mutex_lock(&mu);
	closing = true;
	pthread_mutex_unlock(&mu);
	im_bus_watch_remove(watch);
	watch = NULL;
	wake_hub();
	pthread_join(thread, NULL);
	running = false;
	close(wake_fd);
	wake_fd = -1;
	close_epoll();
}

void im_api_stream_stats(im_stream_stats *out)
{
	pthread_mutex_lock(&mu);
	out->sse_clients = n_sse;
	out->ws_clients = n_ws;
	out->cut_off = atomic_load(&n_cut);
	pthread_mutex_unlock(&mu);
}

/* ---- routes ------------------------------------------------------------- */

static int status_handler(void *ud, const im_http_request *req,
			  im_http_response *resp)
{
	im_api_ctx *ctx = ud;
	im_actor who = {0};
	if (!ctx->authorize(ctx->app, req, resp, &who))
		return 0;
	im_bus_stats bs;
	im_stream_stats ss;
	im_bus_stats_get(&bs);
	im_api_stream_stats(&ss);
	bool subscribed = !hub_closing();
	return im_resp_json(
	    resp, 200,
	    json_pack("{s:{s:s,s:b,s:b,s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I}}",
		      "bus", "kind", "in-process", "connected", 1,
		      "subscribed", subscribed, "last_seq",
		      (json_int_t)bs.last_seq, "published",
		      (json_int_t)bs.published, "in_ring",
		      (json_int_t)bs.in_ring, "first_seq",
		      (json_int_t)im_bus_first_seq(), "streams", "sse",
		      (json_int_t)ss.sse_clients, "ws",
		      (json_int_t)ss.ws_clients, "cut_off",
		      (json_int_t)ss.cut_off));
}

int im_api_stream_routes(im_router *r, im_api_ctx *ctx)
{
	if (running)
		im_api_streams_close();
	atomic_store(&n_cut, 0);
	int rc = im_router_add(r, "GET", "/api/v1/events", sse_handler, ctx);
	if (rc == 0)
		rc = im_router_add(r, "GET", "/api/v1/events/status",
				   status_handler, ctx);
	if (rc == 0)
		rc = im_router_add(r, "GET", "/api/v1/ws", ws_handler, ctx);
	if (rc == 0)
		rc = hub_start();
	set_gauges();
	im_metrics_family("im_events_published_total",
			  "Events published on the bus since start",
			  IM_METRIC_COUNTER, NULL, NULL, 0);
	return rc;
}
