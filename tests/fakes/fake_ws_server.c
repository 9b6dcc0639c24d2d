/* The WebSocket server of the fakes: see fake_ws_server.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <wslay/wslay.h>

#include "fake_ws_server.h"

/* How long a close this side started waits for the client's answer. */
#define CLOSE_WAIT_MS 1000

/* A frame waiting for the connection's thread: text, or a close. */
typedef struct item {
	struct item *next;
	int code; /* 0: a text frame */
	size_t len;
	char data[];
} item;

typedef struct conn {
	struct conn *next;
	fwsv *s;
	pthread_t th;
	unsigned id;
	int fd, efd;
	SSL *ssl;
	bool open, closing, drop; /* under s->mu */
	item *out, **out_tail;	  /* under s->mu */
	long long close_by; /* ms, monotonic; 0 = not closing (under s->mu) */
	int peer_code;
	char peer_reason[128];
	wslay_event_context_ptr ctx;
} conn;

struct fwsv {
	pthread_mutex_t mu; /* guards the conns list and their flags/queues */
	fwsv_cbs cbs;
	void *ud;
	int lfd, stop_efd;
	unsigned port, next_id;
	SSL_CTX *tls;
	pthread_t th;
	bool started, stopping;
	conn *conns;
};

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void poke(int efd)
{
	uint64_t one = 1;
	if (write(efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		perror("fake_ws_server: eventfd");
}

/* --- bytes in and out, plain or TLS ----------------------------------- */

/* >0 bytes, 0 EOF, -1 would block, -2 error. */
static ssize_t c_read(conn *c, void *buf, size_t len)
{
	if (c->ssl) {
		int n = SSL_read(c->ssl, buf, (int)len);
		if (n > 0)
			return n;
		int e = SSL_get_error(c->ssl, n);
		ERR_clear_error();
		return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -1
		       : e == SSL_ERROR_ZERO_RETURN			     ? 0
										     : -2;
	}
	ssize_t n = recv(c->fd, buf, len, 0);
	return n >= 0 ? n : errno == EAGAIN || errno == EINTR ? -1 : -2;
}

static ssize_t c_write(conn *c, const void *buf, size_t len)
{
	if (c->ssl) {
		int n = SSL_write(c->ssl, buf, (int)len);
		if (n > 0)
			return n;
		int e = SSL_get_error(c->ssl, n);
		ERR_clear_error();
		return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -1
									     : -2;
	}
	ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
	return n >= 0 ? n : errno == EAGAIN || errno == EINTR ? -1 : -2;
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
		       int flags, void *ud)
{
	ssize_t n = c_read(ud, buf, len);
	if (n > 0)
		return n;
	wslay_event_set_error(ctx, n == -1 ? WSLAY_ERR_WOULDBLOCK
					   : WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data,
		       size_t len, int flags, void *ud)
{
	ssize_t n = c_write(ud, data, len);
	if (n >= 0)
		return n;
	wslay_event_set_error(ctx, n == -1 ? WSLAY_ERR_WOULDBLOCK
					   : WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static void on_msg(wslay_event_context_ptr ctx,
		   const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
	conn *c = ud;
	fwsv *s = c->s;
	pthread_mutex_lock(&s->mu);
	bool closing = c->closing;
	pthread_mutex_unlock(&s->mu);
	if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
		/* Only a close the client started says something about the
		 * client; the echo of ours does not. */
		if (!closing && !c->peer_code) {
			c->peer_code = arg->status_code ? arg->status_code
							: WSLAY_CODE_NO_STATUS_RCVD;
			size_t n = arg->msg_length > 2 ? arg->msg_length - 2 : 0;
			if (n >= sizeof(c->peer_reason))
				n = sizeof(c->peer_reason) - 1;
			if (n)
				memcpy(c->peer_reason, arg->msg + 2, n);
			c->peer_reason[n] = '\0';
		}
		return;
	}
	if (arg->opcode == WSLAY_TEXT_FRAME && !closing && s->cbs.text)
		s->cbs.text(s->ud, c->id, (const char *)arg->msg,
			    arg->msg_length);
}

/* --- the upgrade -------------------------------------------------------- */

/* Reads the request head a byte at a time, so that a frame the client
 * sends right behind it stays in the socket for wslay. */
static bool read_head(conn *c, char *req, size_t cap)
{
	size_t got = 0;
	while (got < cap - 1) {
		if (c_read(c, req + got, 1) != 1)
			return false;
		req[++got] = '\0';
		if (got >= 4 && !memcmp(req + got - 4, "\r\n\r\n", 4))
			return true;
	}
	return false;
}

static bool answer_101(conn *c, const char *key)
{
	char buf[160], resp[256];
	unsigned char md[EVP_MAX_MD_SIZE], acc[64];
	unsigned int mdlen = 0;
	snprintf(buf, sizeof(buf), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
		 key);
	if (!EVP_Digest(buf, strlen(buf), md, &mdlen, EVP_sha1(), NULL))
		return false;
	EVP_EncodeBlock(acc, md, 20);
	int n = snprintf(resp, sizeof(resp),
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: "
			 "websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Accept: %s\r\n\r\n",
			 (const char *)acc);
	return c_write(c, resp, (size_t)n) == n;
}

/* TLS if set, the request, 101 or 403; the target into target. */
static bool accept_upgrade(conn *c, char *target, size_t tlen)
{
	fwsv *s = c->s;
	char req[8192], fmt[32], key[64] = "";
	struct timeval tv = {5, 0};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	pthread_mutex_lock(&s->mu);
	SSL_CTX *tls = s->tls;
	if (tls)
		SSL_CTX_up_ref(tls);
	pthread_mutex_unlock(&s->mu);
	if (tls) {
		c->ssl = SSL_new(tls);
		SSL_CTX_free(tls);
		if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) ||
		    SSL_accept(c->ssl) != 1) {
			ERR_clear_error();
			return false;
		}
	}
	if (!read_head(c, req, sizeof(req)))
		return false;
	snprintf(fmt, sizeof(fmt), "GET %%%zus ", tlen - 1);
	const char *k = strcasestr(req, "\r\nSec-WebSocket-Key:");
	bool ok = sscanf(req, fmt, target) == 1 && k &&
		  sscanf(k + 20, " %63[^\r\n ]", key) == 1 &&
		  (!s->cbs.upgrade || s->cbs.upgrade(s->ud, target));
	if (!ok) {
		const char *no = "HTTP/1.1 403 Forbidden\r\nContent-Length: "
				 "0\r\n\r\n";
		c_write(c, no, strlen(no));
		return false;
	}
	return answer_101(c, key);
}

/* --- one connection ----------------------------------------------------- */

/* Hands the queued frames to wslay; false when the thread should stop.
 * *close_by: when to give up on a close (0: none asked for).
 * wslay sends control frames ahead of queued data, so a close waits here
 * until the text frames before it are out: a client gets everything sent
 * before the close, as from a real server. */
static bool flush_queue(conn *c, long long *close_by)
{
	fwsv *s = c->s;
	pthread_mutex_lock(&s->mu);
	while (c->out &&
	       !(c->out->code && wslay_event_get_queued_msg_count(c->ctx))) {
		item *it = c->out;
		if (!(c->out = it->next))
			c->out_tail = &c->out;
		if (!it->code) {
			struct wslay_event_msg m = {WSLAY_TEXT_FRAME,
						    (const uint8_t *)it->data,
						    it->len};
			wslay_event_queue_msg(c->ctx, &m);
		} else {
			wslay_event_queue_close(c->ctx, (uint16_t)it->code,
						(const uint8_t *)it->data,
						it->len);
		}
		free(it);
	}
	bool go = !c->drop && !s->stopping;
	*close_by = c->close_by;
	pthread_mutex_unlock(&s->mu);
	return go;
}

static void serve(conn *c)
{
	static const struct wslay_event_callbacks cbs = {
	    .recv_callback = on_recv,
	    .send_callback = on_send,
	    .on_msg_recv_callback = on_msg,
	};
	if (wslay_event_context_server_init(&c->ctx, &cbs, c) != 0)
		return;
	/* A bound on what a client can make the fake buffer; owners that
	 * want a smaller limit check the length themselves. */
	wslay_event_config_set_max_recv_msg_length(c->ctx, 1 << 20);
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
	long long close_by;
	while (flush_queue(c, &close_by)) {
		int wait = 500;
		if (close_by) {
			long long left = close_by - now_ms();
			if (left <= 0)
				break; /* the client never answered our close */
			wait = left < wait ? (int)left : wait;
		}
		struct pollfd pf[2] = {
		    {.fd = c->fd,
		     .events = POLLIN |
			       (wslay_event_want_write(c->ctx) ? POLLOUT : 0)},
		    {.fd = c->efd, .events = POLLIN}};
		if (poll(pf, 2, wait) < 0 && errno != EINTR)
			break;
		uint64_t v;
		if ((pf[1].revents & POLLIN) &&
		    read(c->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			break;
		/* TLS may hold decrypted bytes the socket no longer shows. */
		bool readable = (pf[0].revents & (POLLIN | POLLERR | POLLHUP)) ||
				(c->ssl && SSL_pending(c->ssl) > 0);
		if ((readable && wslay_event_recv(c->ctx) != 0) ||
		    (wslay_event_want_write(c->ctx) &&
		     wslay_event_send(c->ctx) != 0) ||
		    (!wslay_event_want_read(c->ctx) &&
		     !wslay_event_want_write(c->ctx)))
			break;
	}
	wslay_event_context_free(c->ctx);
}

static void *conn_main(void *arg)
{
	conn *c = arg;
	fwsv *s = c->s;
	char target[1024] = "";
	if (!accept_upgrade(c, target, sizeof(target))) {
		shutdown(c->fd, SHUT_RDWR);
		return NULL;
	}
	pthread_mutex_lock(&s->mu);
	c->open = true;
	pthread_mutex_unlock(&s->mu);
	if (s->cbs.open)
		s->cbs.open(s->ud, c->id, target);
	serve(c);
	shutdown(c->fd, SHUT_RDWR);
	if (s->cbs.end)
		s->cbs.end(s->ud, c->id, c->peer_code, c->peer_reason);
	pthread_mutex_lock(&s->mu);
	c->open = false;
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void add_conn(fwsv *s, int fd)
{
	conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->s = s;
	c->fd = fd;
	c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->out_tail = &c->out;
	pthread_mutex_lock(&s->mu);
	c->id = ++s->next_id;
	if (c->efd < 0 || pthread_create(&c->th, NULL, conn_main, c) != 0) {
		pthread_mutex_unlock(&s->mu);
		if (c->efd >= 0)
			close(c->efd);
		close(fd);
		free(c);
		return;
	}
	c->next = s->conns;
	s->conns = c;
	pthread_mutex_unlock(&s->mu);
}

static void *accept_main(void *arg)
{
	fwsv *s = arg;
	for (;;) {
		struct pollfd pf[2] = {{.fd = s->lfd, .events = POLLIN},
				       {.fd = s->stop_efd, .events = POLLIN}};
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			break;
		if (pf[1].revents)
			break;
		if (!(pf[0].revents & POLLIN))
			continue;
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			add_conn(s, fd);
	}
	return NULL;
}

/* --- the owner's side --------------------------------------------------- */

fwsv *fwsv_start(unsigned port, const fwsv_cbs *cbs, void *ud)
{
	fwsv *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	pthread_mutex_init(&s->mu, NULL);
	s->cbs = *cbs;
	s->ud = ud;
	s->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int one = 1;
	if (s->stop_efd < 0 || s->lfd < 0 ||
	    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(s->lfd, 64) ||
	    getsockname(s->lfd, (struct sockaddr *)&a, &len) ||
	    pthread_create(&s->th, NULL, accept_main, s) != 0) {
		fwsv_stop(s);
		return NULL;
	}
	s->started = true;
	s->port = ntohs(a.sin_port);
	return s;
}

void fwsv_stop(fwsv *s)
{
	if (!s)
		return;
	if (s->started) {
		poke(s->stop_efd);
		pthread_join(s->th, NULL);
	}
	/* No new connections now; unblock the ones in the handshake (their
	 * reads have a timeout of seconds) and wake the rest. */
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	for (conn *c = s->conns; c; c = c->next) {
		shutdown(c->fd, SHUT_RDWR);
		poke(c->efd);
	}
	pthread_mutex_unlock(&s->mu);
	for (conn *c = s->conns, *n; c; c = n) {
		n = c->next;
		pthread_join(c->th, NULL);
		for (item *it = c->out, *in; it; it = in) {
			in = it->next;
			free(it);
		}
		SSL_free(c->ssl);
		close(c->fd);
		close(c->efd);
		free(c);
	}
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->stop_efd >= 0)
		close(s->stop_efd);
	SSL_CTX_free(s->tls);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

unsigned fwsv_port(const fwsv *s)
{
	return s->port;
}

void fwsv_set_tls(fwsv *s, SSL_CTX *ctx)
{
	pthread_mutex_lock(&s->mu);
	SSL_CTX_free(s->tls);
	s->tls = ctx;
	pthread_mutex_unlock(&s->mu);
}

static bool usable(const conn *c)
{
	return c->open && !c->closing && !c->drop;
}

static void enqueue(conn *c, int code, const char *data)
{
	size_t len = data ? strlen(data) : 0;
	item *it = malloc(sizeof(*it) + len + 1);
	if (!it)
		return;
	it->next = NULL;
	it->code = code;
	it->len = len;
	memcpy(it->data, data ? data : "", len + 1);
	*c->out_tail = it;
	c->out_tail = &it->next;
	poke(c->efd);
}

bool fwsv_send(fwsv *s, unsigned id, const char *text)
{
	bool any = false;
	pthread_mutex_lock(&s->mu);
	for (conn *c = s->conns; c; c = c->next)
		if ((!id || c->id == id) && usable(c)) {
			enqueue(c, 0, text);
			any = true;
		}
	pthread_mutex_unlock(&s->mu);
	return any;
}

bool fwsv_close(fwsv *s, unsigned id, int code, const char *reason)
{
	bool any = false;
	pthread_mutex_lock(&s->mu);
	for (conn *c = s->conns; c; c = c->next)
		if (c->id == id && usable(c)) {
			c->closing = true;
			c->close_by = now_ms() + CLOSE_WAIT_MS;
			enqueue(c, code, reason);
			any = true;
		}
	pthread_mutex_unlock(&s->mu);
	return any;
}

bool fwsv_drop(fwsv *s, unsigned id)
{
	bool any = false;
	pthread_mutex_lock(&s->mu);
	for (conn *c = s->conns; c; c = c->next)
		if ((!id || c->id == id) && c->open && !c->drop) {
			c->drop = true;
			poke(c->efd);
			any = true;
		}
	pthread_mutex_unlock(&s->mu);
	return any;
}

unsigned fwsv_newest(fwsv *s)
{
	unsigned id = 0;
	pthread_mutex_lock(&s->mu);
	for (conn *c = s->conns; c && !id; c = c->next)
		if (usable(c))
			id = c->id;
	pthread_mutex_unlock(&s->mu);
	return id;
}

int fwsv_open_count(fwsv *s)
{
	int n = 0;
	pthread_mutex_lock(&s->mu);
	for (conn *c = s->conns; c; c = c->next)
		n += c->open;
	pthread_mutex_unlock(&s->mu);
	return n;
}
