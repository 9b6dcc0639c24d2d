/* GET /api/v1/ws: the same events as WebSocket text frames (RFC 6455).
 * The handler checks the handshake and answers 101; the upgraded socket
 * then belongs to the hub thread, which frames with wslay's event API on
 * its epoll loop. wslay answers pings and close frames itself. At most
 * WS_QUEUE bytes wait in wslay per client; the rest stays on the bus, so a
 * client that does not read shows up as backlog and is cut off. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <wslay/wslay.h>

#include "api/streams.h"
#include "clock/clock.h"
#include "log/log.h"

#define WS_QUEUE (64 * 1024)
/* Kernel send buffer per socket, as for SSE: bounds what a client that
 * stopped reading pins in the kernel and lets its backlog show. */
#define WS_SNDBUF (64 * 1024)
#define WS_MAX_IN (64 * 1024)
/* wslay queues a pong for every ping it reads: while this much waits to
 * be sent, the client's input is not read, so a client that pings and
 * never reads stalls on its own TCP window instead of growing our queue.
 * A client stuck there counts as over its backlog and is cut off. */
#define WS_READ_PAUSE (256 * 1024)
/* Pongs are not counted in wslay's queued length, only in its message
 * count: a flood of empty pings is bounded by this many queued frames. */
#define WS_READ_PAUSE_MSGS 1024

static bool queue_full(wslay_event_context_ptr ctx)
{
	return wslay_event_get_queued_msg_length(ctx) >= WS_READ_PAUSE ||
	       wslay_event_get_queued_msg_count(ctx) >= WS_READ_PAUSE_MSGS;
}
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* After our close frame, how long the client has to answer with its own. */
#define WS_CLOSE_WAIT_MS 2000

typedef struct ws {
	client base; /* first: the hub sees a client */
	im_http_upgrade *up;
	int fd, epfd;
	wslay_event_context_ptr wctx;
	char *pre; /* bytes the client sent right after its request */
	size_t pre_len, pre_off;
	uint32_t mask;        /* epoll interest now */
	bool failed;          /* socket error or EOF */
	long long closing_at; /* our close frame was queued */
} ws;

/* ---- handshake (HTTP worker thread) -------------------------------------- */

static bool has_token(const char *list, const char *token)
{
	size_t tl = strlen(token);
	for (const char *p = list; p && *p;) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		size_t n = strcspn(p, ", \t");
		if (n == tl && strncasecmp(p, token, tl) == 0)
			return true;
		p += n;
	}
	return false;
}

/* Sec-WebSocket-Key must be 16 random bytes in base64: 24 characters. */
/* SHA-1 and base64 come from nettle, which libmicrohttpd's TLS stack has
 * mapped already; OpenSSL would cost ~1.5 MB of resident relocations. */
static bool key_ok(const char *key)
{
	uint8_t raw[32];
	size_t len = sizeof(raw);
	struct base64_decode_ctx ctx;
	if (!key || strlen(key) != 24 || strcmp(key + 22, "==") != 0)
		return false;
	base64_decode_init(&ctx);
	return base64_decode_update(&ctx, &len, raw, 24, key) &&
	       base64_decode_final(&ctx) && len == 16;
}

static bool accept_value(const char *key, char out[32])
{
	char buf[64];
	uint8_t md[SHA1_DIGEST_SIZE];
	int n = snprintf(buf, sizeof(buf), "%s%s", key, WS_GUID);
	if (n <= 0 || (size_t)n >= sizeof(buf))
		return false;
	struct sha1_ctx ctx;
	sha1_init(&ctx);
	sha1_update(&ctx, (size_t)n, (const uint8_t *)buf);
	sha1_digest(&ctx, sizeof(md), md);
	base64_encode_raw(out, sizeof(md), md);
	out[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
	return true;
}

static bool handshake_ok(const im_http_request *req, im_http_response *resp)
{
	const char *upgrade = im_req_header(req, "Upgrade");
	const char *conn = im_req_header(req, "Connection");
	const char *version = im_req_header(req, "Sec-WebSocket-Version");
	if (!upgrade || !has_token(upgrade, "websocket") ||
	    !has_token(conn, "upgrade")) {
		im_resp_error(resp, 400, "not_websocket",
			      "this is a WebSocket endpoint: send Upgrade: "
			      "websocket and Connection: Upgrade");
		return false;
	}
	if (!version || strcmp(version, "13") != 0) {
		im_resp_error(resp, 426, "websocket_version",
			      "only WebSocket version 13 is supported");
		im_resp_header(resp, "Sec-WebSocket-Version", "13");
		return false;
	}
	if (!key_ok(im_req_header(req, "Sec-WebSocket-Key"))) {
		im_resp_error(resp, 400, "websocket_key",
			      "Sec-WebSocket-Key must be 16 bytes in base64");
		return false;
	}
	return true;
}

static void ws_free(ws *w)
{
	feed_free(&w->base.feed);
	free(w->pre);
	free(w);
}

static void free_unused(void *ud)
{
	ws_free(ud);
}

/* The 101 is out: the socket is ours (HTTP worker thread). */
static void on_upgraded(void *ud, im_http_upgrade *u, int fd,
			const char *extra, size_t extra_len)
{
	ws *w = ud;
	w->up = u;
	w->fd = fd;
	int fl = fcntl(fd, F_GETFL), sndbuf = WS_SNDBUF;
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)))
		LOG_DEBUG("stream", "SO_SNDBUF not set on a WebSocket");
	if (extra_len && (w->pre = malloc(extra_len))) {
		memcpy(w->pre, extra, extra_len);
		w->pre_len = extra_len;
	}
	if ((extra_len && !w->pre) || !hub_add_ws(&w->base)) {
		im_http_upgrade_close(u);
		ws_free(w);
	}
}

int ws_handler(void *ud, const im_http_request *req, im_http_response *resp)
{
	im_api_ctx *ctx = ud;
	im_actor who = {0};
	if (!ctx->authorize(ctx->app, req, resp, &who))
		return 0;
	stream_params p;
	if (!params_parse(ctx, req, resp, &p))
		return 0;
	char accept[32];
	if (!handshake_ok(req, resp) ||
	    !accept_value(im_req_header(req, "Sec-WebSocket-Key"), accept)) {
		params_free(&p);
		return resp->status ? 0 : IM_EINVAL;
	}
	int rc;
	ws *w = (ws *)client_open(sizeof(ws), CLIENT_WS, ctx, &p, resp, &rc);
	if (!w)
		return rc;
	w->fd = w->epfd = -1;
	rc = im_resp_upgrade(resp, "websocket", on_upgraded, w,
				 free_unused);
	if (rc != 0) {
		ws_free(w);
		return rc;
	}
	return im_resp_header(resp, "Sec-WebSocket-Accept", accept);
}

/* ---- wslay callbacks (hub thread) ------------------------------------- */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
		       int flags, void *ud)
{
	ws *w = ud;
	if (queue_full(ctx)) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (w->pre_off < w->pre_len) {
		size_t n = w->pre_len - w->pre_off;
		if (n > len)
			n = len;
		memcpy(buf, w->pre + w->pre_off, n);
		w->pre_off += n;
		return (ssize_t)n;
	}
	ssize_t r = recv(w->fd, buf, len, 0);
	if (r > 0)
		return r;
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	} else {
		w->failed = true; /* EOF or a socket error */
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
	return -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data,
		       size_t len, int flags, void *ud)
{
	ws *w = ud;
	int more = (flags & WSLAY_MSG_MORE) ? MSG_MORE : 0;
	ssize_t r = send(w->fd, data, len, MSG_NOSIGNAL | more);
	if (r >= 0) {
		atomic_store(&w->base.progress_ms, im_mono_ms());
		return r;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	} else {
		w->failed = true;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
	return -1;
}

/* Messages from the client carry nothing for us; wslay itself answers
 * pings with pongs and a close with a close. */
static void on_msg(wslay_event_context_ptr ctx,
		   const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
}

/* ---- the connection (hub thread) ----------------------------------------- */

static void update_mask(ws *w)
{
	if (w->failed)
		return;
	uint32_t m = 0;
	if (wslay_event_want_read(w->wctx) && !queue_full(w->wctx))
		m |= EPOLLIN;
	if (wslay_event_want_write(w->wctx))
		m |= EPOLLOUT;
	if (m == w->mask)
		return;
	struct epoll_event ev = {.events = m | EPOLLRDHUP, .data.ptr = w};
	if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, w->fd, &ev) == 0)
		w->mask = m;
	else
		w->failed = true;
}

static void flush(ws *w)
{
	if (!w->failed && wslay_event_want_write(w->wctx) &&
	    wslay_event_send(w->wctx) != 0)
		w->failed = true;
	update_mask(w);
}

static void queue_close(ws *w, uint16_t code, const char *reason)
{
	if (w->closing_at)
		return;
	w->closing_at = im_mono_ms();
	wslay_event_queue_close(w->wctx, code, (const uint8_t *)reason,
				strlen(reason));
}

static void queue_text(ws *w, const feed_ev *ev)
{
	struct wslay_event_msg m = {.opcode = WSLAY_TEXT_FRAME,
				    .msg = (const uint8_t *)ev->json,
				    .msg_length = ev->len};
	if (wslay_event_queue_msg(w->wctx, &m) != 0)
		w->failed = true;
}

static void cut_msg(ws *w)
{
	char reason[100];
	snprintf(reason, sizeof(reason),
		 "client too slow; reconnect with ?since=%lld",
		 w->base.feed.cursor);
	queue_close(w, WSLAY_CODE_POLICY_VIOLATION, reason);
}

/* Moves events from the feed into wslay while its queue is short. */
static void fill(ws *w)
{
	long long now = im_mono_ms();
	while (!w->failed && !w->closing_at &&
	       wslay_event_get_queued_msg_length(w->wctx) < WS_QUEUE) {
		feed_ev ev;
		int rc = feed_next(&w->base.feed, &ev);
		if (rc == 1) {
			queue_text(w, &ev);
			feed_ev_release(&ev);
			atomic_store(&w->base.next_ka_ms,
				     now + w->base.keepalive_ms);
			continue;
		}
		if (rc == IM_EAGAIN && hub_mark_cut(&w->base)) {
			w->base.cut_at_ms = now;
			cut_msg(w);
		} else if (rc < 0 && rc != IM_EAGAIN) {
			queue_close(w, WSLAY_CODE_INTERNAL_SERVER_ERROR,
				    "reading events failed; reconnect");
		}
		break;
	}
	atomic_store(&w->base.cursor, w->base.feed.cursor);
	atomic_store(&w->base.live, w->base.feed.live);
	if (!w->closing_at && now >= atomic_load(&w->base.next_ka_ms)) {
		struct wslay_event_msg ping = {.opcode = WSLAY_PING};
		wslay_event_queue_msg(w->wctx, &ping);
		atomic_store(&w->base.next_ka_ms, now + w->base.keepalive_ms);
	}
}

void ws_pump(client *c)
{
	ws *w = (ws *)c;
	if (w->failed || !w->wctx)
		return;
	fill(w);
	flush(w);
}

void ws_start(client *c, int epfd)
{
	ws *w = (ws *)c;
	static const struct wslay_event_callbacks cb = {
	    .recv_callback = on_recv,
	    .send_callback = on_send,
	    .on_msg_recv_callback = on_msg,
	};
	w->epfd = epfd;
	atomic_store(&c->progress_ms, im_mono_ms());
	atomic_store(&c->next_ka_ms, im_mono_ms() + c->keepalive_ms);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = w};
	if (wslay_event_context_server_init(&w->wctx, &cb, w) != 0 ||
	    epoll_ctl(epfd, EPOLL_CTL_ADD, w->fd, &ev) != 0) {
		w->failed = true;
		return;
	}
	w->mask = EPOLLIN;
	wslay_event_config_set_max_recv_msg_length(w->wctx, WS_MAX_IN);
	if (w->pre_len && wslay_event_recv(w->wctx) != 0)
		w->failed = true;
	ws_pump(c);
}

void ws_on_io(client *c, unsigned events)
{
	ws *w = (ws *)c;
	if (w->failed || !w->wctx)
		return;
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) &&
	    wslay_event_recv(w->wctx) != 0)
		w->failed = true;
	if (!w->failed && (events & EPOLLOUT) &&
	    wslay_event_send(w->wctx) != 0)
		w->failed = true;
	ws_pump(c);
}

void ws_cut(client *c)
{
	ws *w = (ws *)c;
	if (w->failed || !w->wctx)
		return;
	cut_msg(w);
	flush(w);
}

bool ws_stuck(client *c)
{
	ws *w = (ws *)c;
	return w->wctx && queue_full(w->wctx);
}

size_t ws_queued(client *c)
{
	ws *w = (ws *)c;
	return w->wctx ? wslay_event_get_queued_msg_length(w->wctx) : 0;
}

bool ws_done(client *c)
{
	ws *w = (ws *)c;
	if (w->failed || !w->wctx)
		return true;
	if (!wslay_event_want_read(w->wctx) &&
	    !wslay_event_want_write(w->wctx))
		return true;
	return w->closing_at &&
	       im_mono_ms() - w->closing_at > WS_CLOSE_WAIT_MS;
}

void ws_destroy(client *c)
{
	ws *w = (ws *)c;
	if (w->wctx) {
		if (w->epfd >= 0)
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->fd, NULL);
		wslay_event_context_free(w->wctx);
	}
	im_http_upgrade_close(w->up);
	ws_free(w);
}

void ws_shutdown(client *c)
{
	ws *w = (ws *)c;
	if (!w->failed && w->wctx) {
		queue_close(w, WSLAY_CODE_GOING_AWAY, "server shutting down");
		if (wslay_event_send(w->wctx) != 0)
			w->failed = true;
	}
	ws_destroy(c);
}
