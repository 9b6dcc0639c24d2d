/* WebSocket client for Socket Mode. The opening handshake runs on a
 * blocking socket with send/receive timeouts; afterwards the socket is
 * non-blocking and wslay's event API frames the messages over either the
 * plain socket or an OpenSSL session. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <wslay/wslay.h>

#include <im/types.h>

#include "tls.h"
#include "ws.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define MAX_HEADERS 16384
#define MAX_MESSAGE (4 << 20)

struct slk_ws {
	int fd;
	const slk_tls *t;
	SSL_CTX *tls_ctx;
	SSL *tls;
	wslay_event_context_ptr ctx;
	char *pre; /* bytes that came with the handshake answer */
	size_t pre_len, pre_off;
	slk_ws_text_fn on_text;
	void *ud;
	bool heard;
};

typedef struct ws_url {
	bool tls;
	char host[256];
	char port[8];
	char path[2048];
} ws_url;

static int fail(char *err, size_t len, const char *fmt, const char *arg)
{
	snprintf(err, len, fmt, arg ? arg : "");
	return IM_EIO;
}

static int parse_url(const char *url, ws_url *u, char *err, size_t len)
{
	const char *p;
	if (!strncmp(url, "wss://", 6)) {
		u->tls = true;
		p = url + 6;
	} else if (!strncmp(url, "ws://", 5)) {
		u->tls = false;
		p = url + 5;
	} else {
		return fail(err, len, "not a ws:// or wss:// URL: %s", url);
	}
	size_t hl = strcspn(p, ":/?");
	if (hl == 0 || hl >= sizeof(u->host) || p[0] == '[')
		return fail(err, len, "bad host in %s", url);
	memcpy(u->host, p, hl);
	u->host[hl] = '\0';
	p += hl;
	snprintf(u->port, sizeof(u->port), "%s", u->tls ? "443" : "80");
	if (*p == ':') {
		size_t pl = strspn(p + 1, "0123456789");
		if (pl == 0 || pl >= sizeof(u->port))
			return fail(err, len, "bad port in %s", url);
		memcpy(u->port, p + 1, pl);
		u->port[pl] = '\0';
		p += 1 + pl;
	}
	int n = snprintf(u->path, sizeof(u->path), "%s%s", *p == '?' ? "/" : "",
			 *p ? p : "/");
	if (n < 0 || (size_t)n >= sizeof(u->path) || strpbrk(u->path, " \r\n"))
		return fail(err, len, "bad path in %s", url);
	return 0;
}

static int connect_tcp(const ws_url *u, int timeout_ms, char *err, size_t len)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	int gai = getaddrinfo(u->host, u->port, &hints, &ai);
	if (gai != 0)
		return fail(err, len, "cannot resolve %s", u->host), -1;
	int fd = -1;
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		fcntl(fd, F_SETFL, O_NONBLOCK);
		int rc = connect(fd, a->ai_addr, a->ai_addrlen);
		if (rc != 0 && errno == EINPROGRESS) {
			struct pollfd pf = {.fd = fd, .events = POLLOUT};
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			rc = poll(&pf, 1, timeout_ms) == 1 &&
				     getsockopt(fd, SOL_SOCKET, SO_ERROR,
						&soerr, &sl) == 0 &&
				     soerr == 0
				 ? 0
				 : -1;
		}
		if (rc != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return fail(err, len, "cannot connect to %s", u->host), -1;
	/* Blocking with timeouts for the handshake. */
	fcntl(fd, F_SETFL, 0);
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static int start_tls(slk_ws *w, const ws_url *u, const char *ca_file,
		     char *err, size_t len)
{
	const slk_tls *t = w->t;
	w->tls_ctx = t->ssl_ctx_new(t->tls_client_method());
	if (!w->tls_ctx)
		return fail(err, len, "TLS unavailable%s", NULL);
	t->ssl_ctx_ctrl(w->tls_ctx, SSL_CTRL_SET_MIN_PROTO_VERSION,
			TLS1_2_VERSION, NULL);
	t->ssl_ctx_set_verify(w->tls_ctx, SSL_VERIFY_PEER, NULL);
	t->ssl_ctx_set_default_verify_paths(w->tls_ctx);
	if (ca_file && *ca_file &&
	    t->ssl_ctx_load_verify_locations(w->tls_ctx, ca_file, NULL) != 1)
		return fail(err, len, "cannot read tls_ca_file %s", ca_file);
	t->ssl_ctx_ctrl(w->tls_ctx, SSL_CTRL_MODE,
			SSL_MODE_ENABLE_PARTIAL_WRITE |
			    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER,
			NULL);
	w->tls = t->ssl_new(w->tls_ctx);
	if (!w->tls || !t->ssl_set_fd(w->tls, w->fd) ||
	    !t->ssl_ctrl(w->tls, SSL_CTRL_SET_TLSEXT_HOSTNAME,
			 TLSEXT_NAMETYPE_host_name, (void *)u->host) ||
	    !t->ssl_set1_host(w->tls, u->host))
		return fail(err, len, "TLS set-up failed%s", NULL);
	if (t->ssl_connect(w->tls) != 1) {
		char why[200];
		unsigned long e = t->err_get_error();
		long vr = t->ssl_get_verify_result(w->tls);
		snprintf(why, sizeof(why), "%s",
			 vr != X509_V_OK ? t->x509_verify_cert_error_string(vr)
			 : e		 ? t->err_reason_error_string(e)
					 : "handshake failed");
		t->err_clear_error();
		return fail(err, len, "TLS to Slack failed: %s", why);
	}
	return 0;
}

/* --- transport: plain or TLS ------------------------------------------- */

/* >0 bytes, 0 EOF, -1 would block, -2 error. */
static ssize_t tr_read(slk_ws *w, void *buf, size_t len)
{
	if (w->tls) {
		int n = w->t->ssl_read(w->tls, buf,
				       (int)(len > 65536 ? 65536 : len));
		if (n > 0)
			return n;
		int e = w->t->ssl_get_error(w->tls, n);
		w->t->err_clear_error();
		return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE
			   ? -1
		       : e == SSL_ERROR_ZERO_RETURN ? 0
						    : -2;
	}
	ssize_t n = recv(w->fd, buf, len, 0);
	if (n >= 0)
		return n;
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1
									  : -2;
}

static ssize_t tr_write(slk_ws *w, const void *buf, size_t len)
{
	if (w->tls) {
		int n = w->t->ssl_write(w->tls, buf,
					(int)(len > 65536 ? 65536 : len));
		if (n > 0)
			return n;
		int e = w->t->ssl_get_error(w->tls, n);
		w->t->err_clear_error();
		return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE
			   ? -1
			   : -2;
	}
	ssize_t n = send(w->fd, buf, len, MSG_NOSIGNAL);
	if (n >= 0)
		return n;
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1
									  : -2;
}

static bool write_all(slk_ws *w, const char *p, size_t n)
{
	while (n) {
		ssize_t k = tr_write(w, p, n);
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

/* --- opening handshake ---------------------------------------------------- */

static bool accept_for(const slk_tls *t, const char *key, char out[40])
{
	char buf[128];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	snprintf(buf, sizeof(buf), "%s%s", key, WS_GUID);
	return t->evp_digest(buf, strlen(buf), md, &mdlen, t->evp_sha1(),
			     NULL) &&
	       mdlen == 20 &&
	       sodium_bin2base64(out, 40, md, 20,
				 sodium_base64_VARIANT_ORIGINAL) != NULL;
}

static const char *find_header(const char *head, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = strstr(head, "\r\n"); p && p[2];
	     p = strstr(p + 2, "\r\n"))
		if (!strncasecmp(p + 2, name, n) && p[2 + n] == ':') {
			const char *v = p + 3 + n;
			while (*v == ' ' || *v == '\t')
				v++;
			return v;
		}
	return NULL;
}

static int handshake(slk_ws *w, const ws_url *u, int timeout_ms, char *err,
		     size_t len)
{
	unsigned char raw[16];
	char key[32], want[40], req[3072];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(key, sizeof(key), raw, sizeof(raw),
			  sodium_base64_VARIANT_ORIGINAL);
	if (!accept_for(w->t, key, want))
		return fail(err, len, "cannot compute the WebSocket key%s",
			    NULL);
	bool dflt = !strcmp(u->port, u->tls ? "443" : "80");
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: %s%s%s\r\nUpgrade: "
			 "websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: "
			 "13\r\nUser-Agent: im-slack/1.0\r\n\r\n",
			 u->path, u->host, dflt ? "" : ":", dflt ? "" : u->port,
			 key);
	if (n < 0 || (size_t)n >= sizeof(req) || !write_all(w, req, (size_t)n))
		return fail(err, len, "cannot send the WebSocket handshake%s",
			    NULL);
	char *head = malloc(MAX_HEADERS + 1);
	size_t got = 0;
	char *end = NULL;
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Each read has the socket timeout; the whole answer gets it once. */
	while (head && !end && got < MAX_HEADERS &&
	       clock_gettime(CLOCK_MONOTONIC, &now) == 0 &&
	       (now.tv_sec - t0.tv_sec) * 1000 +
		       (now.tv_nsec - t0.tv_nsec) / 1000000 <
		   timeout_ms) {
		ssize_t k = tr_read(w, head + got, MAX_HEADERS - got);
		if (k <= 0)
			break;
		got += (size_t)k;
		head[got] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	int rc = 0;
	if (!end) {
		rc = fail(err, len, "no WebSocket handshake answer%s", NULL);
	} else {
		*end = '\0';
		const char *acc = find_header(head, "Sec-WebSocket-Accept");
		if (strncmp(head, "HTTP/1.1 101", 12) != 0)
			rc = fail(err, len, "handshake refused: %.80s", head);
		else if (!acc || strncmp(acc, want, 28) != 0)
			rc = fail(err, len, "bad Sec-WebSocket-Accept%s", NULL);
		size_t used = (size_t)(end + 4 - head);
		if (rc == 0 && got > used) {
			w->pre_len = got - used;
			w->pre = malloc(w->pre_len);
			if (w->pre)
				memcpy(w->pre, head + used, w->pre_len);
		}
	}
	free(head);
	return rc;
}

/* --- wslay glue --------------------------------------------------------- */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
		       int flags, void *ud)
{
	slk_ws *w = ud;
	if (w->pre_off < w->pre_len) {
		size_t n = w->pre_len - w->pre_off;
		n = n < len ? n : len;
		memcpy(buf, w->pre + w->pre_off, n);
		w->pre_off += n;
		return (ssize_t)n;
	}
	ssize_t n = tr_read(w, buf, len);
	if (n > 0)
		return n;
	wslay_event_set_error(ctx, n == -1 ? WSLAY_ERR_WOULDBLOCK
					   : WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data,
		       size_t len, int flags, void *ud)
{
	ssize_t n = tr_write(ud, data, len);
	if (n >= 0)
		return n;
	wslay_event_set_error(ctx, n == -1 ? WSLAY_ERR_WOULDBLOCK
					   : WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static int on_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
		      void *ud)
{
	randombytes_buf(buf, len);
	return 0;
}

static void on_msg(wslay_event_context_ptr ctx,
		   const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
	slk_ws *w = ud;
	w->heard = true;
	if (arg->opcode == WSLAY_TEXT_FRAME && w->on_text)
		w->on_text(w->ud, (const char *)arg->msg, arg->msg_length);
}

int slk_ws_open(const char *url, const char *ca_file, const slk_tls *t,
		int timeout_ms, slk_ws **out, char *err, size_t errlen)
{
	ws_url u;
	*out = NULL;
	if (parse_url(url, &u, err, errlen) != 0)
		return IM_EINVAL;
	slk_ws *w = calloc(1, sizeof(*w));
	if (!w)
		return IM_ENOMEM;
	w->t = t;
	w->fd = connect_tcp(&u, timeout_ms, err, errlen);
	int rc = w->fd < 0 ? IM_EIO : 0;
	if (rc == 0 && u.tls)
		rc = start_tls(w, &u, ca_file, err, errlen);
	if (rc == 0)
		rc = handshake(w, &u, timeout_ms, err, errlen);
	static const struct wslay_event_callbacks cbs = {
	    .recv_callback = on_recv,
	    .send_callback = on_send,
	    .genmask_callback = on_genmask,
	    .on_msg_recv_callback = on_msg,
	};
	if (rc == 0 && wslay_event_context_client_init(&w->ctx, &cbs, w) != 0)
		rc = IM_ENOMEM;
	if (rc != 0) {
		slk_ws_free(w);
		return rc;
	}
	wslay_event_config_set_max_recv_msg_length(w->ctx, MAX_MESSAGE);
	fcntl(w->fd, F_SETFL, O_NONBLOCK);
	*out = w;
	return 0;
}

void slk_ws_free(slk_ws *w)
{
	if (!w)
		return;
	if (w->ctx)
		wslay_event_context_free(w->ctx);
	if (w->tls)
		w->t->ssl_free(w->tls);
	if (w->tls_ctx)
		w->t->ssl_ctx_free(w->tls_ctx);
	if (w->fd >= 0)
		close(w->fd);
	free(w->pre);
	free(w);
}

int slk_ws_fd(const slk_ws *w)
{
	return w->fd;
}

int slk_ws_send_text(slk_ws *w, const char *text, size_t len)
{
	struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)text,
				    len};
	return wslay_event_queue_msg(w->ctx, &m) == 0 ? 0 : IM_EIO;
}

int slk_ws_ping(slk_ws *w)
{
	struct wslay_event_msg m = {WSLAY_PING, (const uint8_t *)"", 0};
	return wslay_event_queue_msg(w->ctx, &m) == 0 ? 0 : IM_EIO;
}

void slk_ws_shutdown(slk_ws *w, unsigned short code)
{
	wslay_event_queue_close(w->ctx, code, NULL, 0);
}

bool slk_ws_want_write(const slk_ws *w)
{
	return wslay_event_want_write(w->ctx);
}

int slk_ws_io(slk_ws *w, slk_ws_text_fn on_text, void *ud)
{
	w->on_text = on_text;
	w->ud = ud;
	int rc = 0;
	if (wslay_event_want_read(w->ctx) && wslay_event_recv(w->ctx) != 0)
		rc = IM_EIO;
	if (rc == 0 && wslay_event_want_write(w->ctx) &&
	    wslay_event_send(w->ctx) != 0)
		rc = IM_EIO;
	w->on_text = NULL;
	if (rc == 0 && !wslay_event_want_read(w->ctx) &&
	    !wslay_event_want_write(w->ctx))
		rc = IM_EIO; /* closed both ways */
	return rc;
}

bool slk_ws_heard(slk_ws *w)
{
	bool h = w->heard;
	w->heard = false;
	return h;
}
