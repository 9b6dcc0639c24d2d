/*
 * core/net/ws.c - the host's WebSocket client (RFC 6455), in imnet.so.
 *
 * Framing is wslay's event API; TLS is OpenSSL, linked here directly:
 * libcurl in this same module already maps OpenSSL 3, so it costs no
 * extra resident memory, and the idle server never loads imnet.so.
 *
 * Threads. Opening a link needs a DNS lookup (getaddrinfo blocks and
 * cannot be made non-blocking without another resolver), then the TCP
 * connect, the TLS handshake and the HTTP upgrade. All of that runs on a
 * short-lived connect thread per link, with a deadline and an abort
 * eventfd in every wait, so the network thread never stalls on it. When
 * it is done the connect thread hands the connected socket (and its TLS
 * session) to the network thread and wakes it with curl_multi_wakeup();
 * from then on the socket is served by the network thread, which waits
 * on it through curl_multi_poll's extra_fds, together with libcurl's
 * transfers. Every callback runs on the network thread.
 *
 * Lifetime. A link has two references: the caller's (dropped by
 * im_ws_release) and the hub's (dropped when the link has ended and its
 * on_close ran). Callbacks run under the link's cb_mu and only while the
 * caller has not released it, so once im_ws_release returns no callback
 * of the link runs. Sends from other threads go through a queue under
 * the link's mu; the network thread hands them to wslay.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
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
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <wslay/wslay.h>

#include "clock/clock.h"
#include "ws_int.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_CONNECT_TIMEOUT_MS 10000
#define WS_MAX_MESSAGE ((size_t)1 << 20)
#define WS_MAX_QUEUE ((size_t)4 << 20)
#define WS_MAX_HEAD 16384
#define WS_CLOSE_WAIT_MS 5000 /* for the peer's close reply */
#define WS_REASON 124         /* a close reason is at most 123 bytes */

typedef struct wmsg {
	struct wmsg *next;
	int binary;
	size_t len;
	unsigned char data[];
} wmsg;

typedef struct ws_url {
	bool tls;
	char host[256];
	char port[8];
	char path[4096];
} ws_url;

enum { W_CONNECTING, W_OPEN, W_DONE };

struct im_ws {
	struct im_ws *next;  /* hub lists */
	atomic_int refs;
	struct ws_hub *hub; /* NULL once ended (under mu) */

	/* The call, copied. */
	ws_url url;
	char *headers; /* "Name: value\r\n"... */
	char *ca_file;
	uint32_t connect_timeout_ms, ping_ms;
	size_t max_message, max_queue;
	void (*on_open)(void *, im_ws *);
	void (*on_message)(void *, im_ws *, int, const void *, size_t);
	void (*on_close)(void *, im_ws *, int, const char *);
	void *ud;

	/* Shared with other threads, under mu. */
	pthread_mutex_t mu;
	wmsg *q_head, *q_tail;
	size_t q_bytes;      /* in q */
	size_t wslay_bytes;  /* handed to wslay, not yet written */
	bool closing;        /* ws_send refuses */
	int close_code;      /* requested by ws_close / release, 0 = none */
	char close_reason[WS_REASON];
	bool conn_done;      /* the connect thread finished */

	/* Callbacks: run under cb_mu while !released. */
	pthread_mutex_t cb_mu;
	bool released;
	atomic_bool in_cb; /* set with cb_thread, by the network thread */
	pthread_t cb_thread;

	/* The connect thread's; the network thread's once conn_done. */
	pthread_t conn_thread;
	int abort_fd;
	int fd;
	SSL_CTX *sctx;
	SSL *ssl;
	unsigned char *pre; /* bytes that came with the handshake answer */
	size_t pre_len, pre_off;
	char error[256];

	/* Network thread only. */
	int state;
	wslay_event_context_ptr ctx;
	bool close_started; /* we queued a close frame */
	int local_code;     /* ... with this code */
	char local_reason[WS_REASON];
	bool peer_first;    /* the peer's close came before ours */
	int peer_code;
	char peer_reason[WS_REASON];
	bool lost;
	long long heard_ms, ping_ms_at, close_at;
	char *rbuf;
};

struct ws_hub {
	CURLM *multi;
	pthread_mutex_t mu;
	im_ws *incoming; /* under mu: opened, not yet seen by the thread */
	bool stopping;   /* under mu */
	im_ws *links;    /* network thread only */
	struct curl_waitfd *fds;
	unsigned cap_fds;
};

static void ws_unref(im_ws *w)
{
	if (atomic_fetch_sub(&w->refs, 1) != 1)
		return;
	for (wmsg *m = w->q_head, *n; m; m = n) {
		n = m->next;
		free(m);
	}
	if (w->ssl)
		SSL_free(w->ssl);
	if (w->sctx)
		SSL_CTX_free(w->sctx);
	if (w->fd >= 0)
		close(w->fd);
	if (w->abort_fd >= 0)
		close(w->abort_fd);
	if (w->ctx)
		wslay_event_context_free(w->ctx);
	free(w->pre);
	free(w->headers);
	free(w->ca_file);
	pthread_mutex_destroy(&w->mu);
	pthread_mutex_destroy(&w->cb_mu);
	free(w);
}

static void hub_wake(struct ws_hub *h)
{
	curl_multi_wakeup(h->multi);
}

/* --- URL ------------------------------------------------------------------ */

static bool parse_url(const char *url, ws_url *u)
{
	const char *p;
	if (!strncasecmp(url, "wss://", 6)) {
		u->tls = true;
		p = url + 6;
	} else if (!strncasecmp(url, "ws://", 5)) {
		u->tls = false;
		p = url + 5;
	} else {
		return false;
	}
	size_t hl;
	if (*p == '[') { /* IPv6 literal */
		const char *e = strchr(p, ']');
		if (!e)
			return false;
		hl = (size_t)(e - p - 1);
		if (hl == 0 || hl >= sizeof(u->host))
			return false;
		memcpy(u->host, p + 1, hl);
		p = e + 1;
	} else {
		hl = strcspn(p, ":/?#");
		if (hl == 0 || hl >= sizeof(u->host))
			return false;
		memcpy(u->host, p, hl);
		p += hl;
	}
	u->host[hl] = '\0';
	if (strpbrk(u->host, " \t\r\n@"))
		return false;
	snprintf(u->port, sizeof(u->port), "%s", u->tls ? "443" : "80");
	if (*p == ':') {
		size_t pl = strspn(p + 1, "0123456789");
		if (pl == 0 || pl > 5 || atoi(p + 1) > 65535 || atoi(p + 1) < 1)
			return false;
		memcpy(u->port, p + 1, pl);
		u->port[pl] = '\0';
		p += 1 + pl;
	}
	size_t rest = strcspn(p, "#");
	if (*p && *p != '/' && *p != '?' && *p != '#')
		return false;
	int n = snprintf(u->path, sizeof(u->path), "%s%.*s",
			 *p == '/' ? "" : "/", (int)rest, p);
	return n > 0 && (size_t)n < sizeof(u->path) &&
	       !strpbrk(u->path, " \t\r\n");
}

/* --- the connect thread ------------------------------------------------- */

/* Waits until fd is ready for `events`: 1, 0 on timeout, -1 when aborted
 * or on error. */
static int wait_fd(im_ws *w, int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - im_mono_ms();
		if (left <= 0)
			return 0;
		struct pollfd pf[2] = {{.fd = fd, .events = events},
				       {.fd = w->abort_fd, .events = POLLIN}};
		int n = poll(pf, 2, (int)(left > 1000 ? 1000 : left));
		if (n < 0 && errno != EINTR)
			return -1;
		if (pf[1].revents)
			return -1;
		if (n > 0 && pf[0].revents)
			return 1;
	}
}

/* Not inlined: reasons are cut to fit w->error on purpose. */
__attribute__((noinline)) static bool fail(im_ws *w, const char *fmt,
					   const char *a, const char *b)
{
	snprintf(w->error, sizeof(w->error), fmt, a ? a : "", b ? b : "");
	return false;
}

static bool aborted(im_ws *w)
{
	struct pollfd pf = {.fd = w->abort_fd, .events = POLLIN};
	return poll(&pf, 1, 0) > 0;
}

static bool connect_tcp(im_ws *w, long long deadline)
{
	const ws_url *u = &w->url;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_ADDRCONFIG},
			*ai = NULL;
	int gai = getaddrinfo(u->host, u->port, &hints, &ai);
	if (gai != 0)
		return fail(w, "cannot resolve %s: %s", u->host,
			    gai_strerror(gai));
	char why[128] = "no address";
	int fd = -1;
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family,
			    a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			snprintf(why, sizeof(why), "%s", strerror(errno));
			continue;
		}
		int rc = connect(fd, a->ai_addr, a->ai_addrlen);
		int err = rc == 0 ? 0 : errno;
		if (rc != 0 && errno == EINPROGRESS) {
			int r = wait_fd(w, fd, POLLOUT, deadline);
			socklen_t sl = sizeof(err);
			if (r == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0)
				err = errno;
			else if (r == 0)
				err = ETIMEDOUT;
			else if (r < 0)
				err = ECANCELED;
		}
		if (err) {
			snprintf(why, sizeof(why), "%s", strerror(err));
			close(fd);
			fd = -1;
			if (err == ETIMEDOUT || err == ECANCELED)
				break;
		}
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		char hp[300];
		snprintf(hp, sizeof(hp), "%s:%s", u->host, u->port);
		return fail(w, "cannot connect to %s: %s", hp, why);
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	w->fd = fd;
	return true;
}

static void tls_why(im_ws *w, char *buf, size_t len)
{
	long vr = w->ssl ? SSL_get_verify_result(w->ssl) : X509_V_OK;
	unsigned long e = ERR_get_error();
	if (vr != X509_V_OK)
		snprintf(buf, len, "certificate not trusted: %s",
			 X509_verify_cert_error_string(vr));
	else if (e)
		snprintf(buf, len, "%s", ERR_reason_error_string(e));
	else
		snprintf(buf, len, "the peer closed the connection");
	ERR_clear_error();
}

static bool start_tls(im_ws *w, long long deadline)
{
	const char *host = w->url.host;
	w->sctx = SSL_CTX_new(TLS_client_method());
	if (!w->sctx)
		return fail(w, "TLS unavailable%s%s", NULL, NULL);
	SSL_CTX_set_min_proto_version(w->sctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(w->sctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_default_verify_paths(w->sctx);
	if (w->ca_file &&
	    SSL_CTX_load_verify_locations(w->sctx, w->ca_file, NULL) != 1) {
		ERR_clear_error();
		return fail(w, "TLS: cannot read the CA file %s%s", w->ca_file,
			    NULL);
	}
	SSL_CTX_set_mode(w->sctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	w->ssl = SSL_new(w->sctx);
	if (!w->ssl || !SSL_set_fd(w->ssl, w->fd))
		return fail(w, "TLS set-up failed%s%s", NULL, NULL);
	unsigned char ip[16];
	bool literal = inet_pton(AF_INET, host, ip) == 1 ||
		       inet_pton(AF_INET6, host, ip) == 1;
	/* The peer's name: host name (with SNI) or address, always checked. */
	if (literal ? !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(w->ssl),
						     host)
		    : (!SSL_set_tlsext_host_name(w->ssl, host) ||
		       !SSL_set1_host(w->ssl, host)))
		return fail(w, "TLS set-up failed for %s%s", host, NULL);
	for (;;) {
		ERR_clear_error();
		int r = SSL_connect(w->ssl);
		if (r == 1)
			return true;
		int e = SSL_get_error(w->ssl, r);
		short ev = e == SSL_ERROR_WANT_READ    ? POLLIN
			   : e == SSL_ERROR_WANT_WRITE ? POLLOUT
						       : 0;
		if (!ev) {
			char why[200];
			tls_why(w, why, sizeof(why));
			return fail(w, "TLS handshake with %s failed: %s", host,
				    why);
		}
		int wr = wait_fd(w, w->fd, ev, deadline);
		if (wr <= 0)
			return fail(w, "TLS handshake with %s %s", host,
				    wr == 0 ? "timed out" : "aborted");
	}
}

/* Plain or TLS. >0 bytes, 0 EOF, -1 would block (*want: POLLIN/POLLOUT),
 * -2 error. */
static ssize_t tr_read(im_ws *w, void *buf, size_t len, short *want)
{
	*want = POLLIN;
	if (w->ssl) {
		ERR_clear_error();
		int n = SSL_read(w->ssl, buf, (int)(len > 65536 ? 65536 : len));
		if (n > 0)
			return n;
		int e = SSL_get_error(w->ssl, n);
		ERR_clear_error();
		if (e == SSL_ERROR_WANT_WRITE)
			*want = POLLOUT;
		return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -1
		       : e == SSL_ERROR_ZERO_RETURN			     ? 0
										     : -2;
	}
	ssize_t n = recv(w->fd, buf, len, 0);
	if (n >= 0)
		return n;
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1
									  : -2;
}

static ssize_t tr_write(im_ws *w, const void *buf, size_t len, short *want)
{
	*want = POLLOUT;
	if (w->ssl) {
		ERR_clear_error();
		int n =
		    SSL_write(w->ssl, buf, (int)(len > 65536 ? 65536 : len));
		if (n > 0)
			return n;
		int e = SSL_get_error(w->ssl, n);
		ERR_clear_error();
		if (e == SSL_ERROR_WANT_READ)
			*want = POLLIN;
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

static bool b64(const unsigned char *in, size_t n, char *out, size_t outlen)
{
	if (outlen < 4 * ((n + 2) / 3) + 1)
		return false;
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	return true;
}

static bool accept_for(const char *key, char out[32])
{
	char buf[128];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	snprintf(buf, sizeof(buf), "%s%s", key, WS_GUID);
	return EVP_Digest(buf, strlen(buf), md, &mdlen, EVP_sha1(), NULL) &&
	       mdlen == 20 && b64(md, 20, out, 32);
}

/* The value of header `name` in the answer's head (NUL-terminated, CRLF
 * lines), or NULL; its length in *len. */
static const char *find_header(const char *head, const char *name,
			       size_t *len)
{
	size_t n = strlen(name);
	for (const char *p = strstr(head, "\r\n"); p && p[2];
	     p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, name, n) || p[2 + n] != ':')
			continue;
		const char *v = p + 3 + n;
		while (*v == ' ' || *v == '\t')
			v++;
		const char *e = strstr(v, "\r\n");
		size_t l = e ? (size_t)(e - v) : strlen(v);
		while (l && (v[l - 1] == ' ' || v[l - 1] == '\t'))
			l--;
		*len = l;
		return v;
	}
	return NULL;
}

/* Whether the comma-separated list v (n bytes) holds `token`, in any
 * case (RFC 6455 4.1: the answer's Connection must hold "upgrade"). */
static bool has_token(const char *v, size_t n, const char *token)
{
	size_t tl = strlen(token);
	for (size_t i = 0; i <= n;) {
		size_t a = i, b = i;
		while (b < n && v[b] != ',')
			b++;
		i = b + 1;
		while (a < b && (v[a] == ' ' || v[a] == '\t'))
			a++;
		while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
			b--;
		if (b - a == tl && !strncasecmp(v + a, token, tl))
			return true;
	}
	return false;
}

static bool handshake(im_ws *w, long long deadline)
{
	const ws_url *u = &w->url;
	unsigned char raw[16];
	char key[32], want[32];
	if (RAND_bytes(raw, sizeof(raw)) != 1 ||
	    !b64(raw, sizeof(raw), key, sizeof(key)) || !accept_for(key, want))
		return fail(w, "cannot make a WebSocket key%s%s", NULL, NULL);
	bool dflt = !strcmp(u->port, u->tls ? "443" : "80");
	bool v6 = strchr(u->host, ':') != NULL;
	size_t cap = strlen(u->path) + strlen(u->host) +
		     (w->headers ? strlen(w->headers) : 0) + 512;
	char *req = malloc(cap);
	if (!req)
		return fail(w, "out of memory%s%s", NULL, NULL);
	int n = snprintf(req, cap,
			 "GET %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\n"
			 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Version: 13\r\n"
			 "User-Agent: im/0.1\r\n%s\r\n",
			 u->path, v6 ? "[" : "", u->host, v6 ? "]" : "",
			 dflt ? "" : ":", dflt ? "" : u->port, key,
			 w->headers ? w->headers : "");
	size_t off = 0, total = n > 0 ? (size_t)n : 0;
	while (off < total) {
		short ev;
		ssize_t k = tr_write(w, req + off, total - off, &ev);
		if (k > 0) {
			off += (size_t)k;
			continue;
		}
		int r = k == -1 ? wait_fd(w, w->fd, ev, deadline) : -2;
		if (r <= 0) {
			free(req);
			return fail(w, "cannot send the WebSocket handshake to "
				       "%s%s",
				    u->host, r == 0 ? ": timed out" : "");
		}
	}
	free(req);

	char *head = malloc(WS_MAX_HEAD + 1);
	if (!head)
		return fail(w, "out of memory%s%s", NULL, NULL);
	size_t got = 0;
	char *end = NULL;
	bool ok = true;
	while (!end && got < WS_MAX_HEAD) {
		short ev;
		ssize_t k = tr_read(w, head + got, WS_MAX_HEAD - got, &ev);
		if (k > 0) {
			got += (size_t)k;
			head[got] = '\0';
			end = strstr(head, "\r\n\r\n");
			continue;
		}
		int r = k == -1 ? wait_fd(w, w->fd, ev, deadline) : -2;
		if (r <= 0) {
			ok = fail(w, "no WebSocket handshake answer from %s%s",
				  u->host,
				  r == 0	? ": timed out"
				  : k == 0 ? ": connection closed"
					   : "");
			break;
		}
	}
	if (ok && !end)
		ok = fail(w, "WebSocket handshake answer from %s too long%s",
			  u->host, NULL);
	if (ok) {
		end[2] = '\0'; /* keep the last header's CRLF */
		size_t used = (size_t)(end + 4 - head);
		size_t ul = 0, cl = 0, l = 0;
		const char *up = find_header(head, "Upgrade", &ul);
		const char *co = find_header(head, "Connection", &cl);
		const char *acc = find_header(head, "Sec-WebSocket-Accept", &l);
		if (strncmp(head, "HTTP/1.1 101", 12) != 0 ||
		    (head[12] != ' ' && head[12] != '\r')) {
			char line[100];
			snprintf(line, sizeof(line), "%.*s",
				 (int)strcspn(head, "\r\n"), head);
			ok = fail(w, "WebSocket handshake refused: %s%s", line,
				  NULL);
		} else if (!up || ul != 9 || strncasecmp(up, "websocket", 9)) {
			ok = fail(w, "WebSocket handshake: no Upgrade: "
				     "websocket%s%s",
				  NULL, NULL);
		} else if (!co || !has_token(co, cl, "upgrade")) {
			ok = fail(w, "WebSocket handshake: no Connection: "
				     "Upgrade%s%s",
				  NULL, NULL);
		} else if (!acc || l != strlen(want) ||
			   strncmp(acc, want, l) != 0) {
			ok = fail(w, "WebSocket handshake: bad "
				     "Sec-WebSocket-Accept%s%s",
				  NULL, NULL);
		} else if (got > used) {
			w->pre_len = got - used;
			w->pre = malloc(w->pre_len);
			if (w->pre)
				memcpy(w->pre, head + used, w->pre_len);
			else
				ok = fail(w, "out of memory%s%s", NULL, NULL);
		}
	}
	free(head);
	return ok;
}

static void *connect_main(void *arg)
{
	im_ws *w = arg;
	long long deadline = im_mono_ms() + w->connect_timeout_ms;
	bool ok = connect_tcp(w, deadline) &&
		  (!w->url.tls || start_tls(w, deadline)) &&
		  handshake(w, deadline);
	if (!ok && aborted(w))
		snprintf(w->error, sizeof(w->error), "connect aborted");
	pthread_mutex_lock(&w->mu);
	w->conn_done = true;
	if (!ok)
		w->error[sizeof(w->error) - 1] = '\0';
	struct ws_hub *h = w->hub;
	pthread_mutex_unlock(&w->mu);
	/* The network thread joins this thread before the hub goes. */
	hub_wake(h);
	return ok ? w : NULL;
}

/* --- wslay glue (network thread) ----------------------------------------- */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
		       int flags, void *ud)
{
	im_ws *w = ud;
	if (w->pre_off < w->pre_len) {
		size_t n = w->pre_len - w->pre_off;
		n = n < len ? n : len;
		memcpy(buf, w->pre + w->pre_off, n);
		w->pre_off += n;
		w->heard_ms = im_mono_ms();
		return (ssize_t)n;
	}
	short want;
	ssize_t n = tr_read(w, buf, len, &want);
	if (n > 0) {
		w->heard_ms = im_mono_ms();
		w->ping_ms_at = 0;
		return n;
	}
	if (n == 0 && !w->error[0])
		snprintf(w->error, sizeof(w->error),
			 "connection closed by the peer");
	else if (n == -2 && !w->error[0])
		snprintf(w->error, sizeof(w->error), "connection lost");
	wslay_event_set_error(ctx, n == -1 ? WSLAY_ERR_WOULDBLOCK
					   : WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data,
		       size_t len, int flags, void *ud)
{
	im_ws *w = ud;
	short want;
	ssize_t n = tr_write(w, data, len, &want);
	if (n >= 0)
		return n;
	if (n == -2 && !w->error[0])
		snprintf(w->error, sizeof(w->error), "connection lost");
	wslay_event_set_error(ctx, n == -1 ? WSLAY_ERR_WOULDBLOCK
					   : WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static int on_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
		      void *ud)
{
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

/* Runs `fn` as a callback of w unless the caller released it. */
#define CALLBACK(w, call)                                                      \
	do {                                                                   \
		pthread_mutex_lock(&(w)->cb_mu);                               \
		if (!(w)->released) {                                          \
			(w)->cb_thread = pthread_self();                       \
			atomic_store(&(w)->in_cb, true);                       \
			call;                                                  \
			atomic_store(&(w)->in_cb, false);                      \
		}                                                              \
		pthread_mutex_unlock(&(w)->cb_mu);                             \
	} while (0)

static void on_msg(wslay_event_context_ptr ctx,
		   const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
	im_ws *w = ud;
	if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
		if (!w->close_started && !wslay_event_get_close_sent(ctx))
			w->peer_first = true;
		w->peer_code = arg->status_code ? arg->status_code : 1005;
		size_t rl = arg->msg_length > 2 ? arg->msg_length - 2 : 0;
		if (rl >= WS_REASON)
			rl = WS_REASON - 1;
		if (rl)
			memcpy(w->peer_reason, arg->msg + 2, rl);
		w->peer_reason[rl] = '\0';
		return;
	}
	if (arg->opcode != WSLAY_TEXT_FRAME &&
	    arg->opcode != WSLAY_BINARY_FRAME)
		return; /* pings are answered by wslay, pongs only count */
	if (!w->on_message)
		return;
	/* NUL-terminated copy: wslay's buffer has no room for the NUL. */
	char *copy = malloc(arg->msg_length + 1);
	if (!copy)
		return;
	memcpy(copy, arg->msg, arg->msg_length);
	copy[arg->msg_length] = '\0';
	CALLBACK(w, w->on_message(w->ud, w, arg->opcode == WSLAY_BINARY_FRAME,
				  copy, arg->msg_length));
	free(copy);
}

/* --- the network thread ------------------------------------------------- */

static const char *code_text(int code)
{
	switch (code) {
	case 1002:
		return "protocol error";
	case 1007:
		return "invalid message data";
	case 1009:
		return "message too big";
	default:
		return "closed";
	}
}

/* Ends the link: socket closed, on_close run, the hub's reference gone. */
static void finish(struct ws_hub *h, im_ws *w, int code, const char *reason)
{
	if (w->state == W_DONE)
		return;
	w->state = W_DONE;
	if (w->ssl) {
		SSL_free(w->ssl);
		w->ssl = NULL;
	}
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	pthread_mutex_lock(&w->mu);
	w->closing = true;
	w->hub = NULL;
	for (wmsg *m = w->q_head, *n; m; m = n) {
		n = m->next;
		free(m);
	}
	w->q_head = w->q_tail = NULL;
	w->q_bytes = w->wslay_bytes = 0;
	pthread_mutex_unlock(&w->mu);
	CALLBACK(w, w->on_close(w->ud, w, code, reason ? reason : ""));
}

/* The link ended by itself: picks what on_close reports. */
static void finish_ended(struct ws_hub *h, im_ws *w)
{
	if (w->peer_first)
		finish(h, w, w->peer_code, w->peer_reason);
	else if (w->close_started)
		finish(h, w, w->local_code, w->local_reason);
	else if (w->ctx && wslay_event_get_close_sent(w->ctx)) {
		/* wslay closed it (message too big, protocol error). */
		int c = wslay_event_get_status_code_sent(w->ctx);
		finish(h, w, c, code_text(c));
	} else if (w->peer_code)
		finish(h, w, w->peer_code, w->peer_reason);
	else
		finish(h, w, 1006,
		       w->error[0] ? w->error : "connection lost");
}

static void start_close(im_ws *w, int code, const char *reason)
{
	if (w->close_started || wslay_event_get_close_sent(w->ctx))
		return;
	w->close_started = true;
	w->local_code = code;
	snprintf(w->local_reason, sizeof(w->local_reason), "%s",
		 reason ? reason : "");
	w->close_at = im_mono_ms() + WS_CLOSE_WAIT_MS;
	wslay_event_queue_close(w->ctx, (uint16_t)code,
				(const uint8_t *)w->local_reason,
				strlen(w->local_reason));
}

static void became_connected(struct ws_hub *h, im_ws *w)
{
	pthread_join(w->conn_thread, NULL);
	pthread_mutex_lock(&w->mu);
	int code = w->close_code;
	char reason[WS_REASON];
	snprintf(reason, sizeof(reason), "%s", w->close_reason);
	pthread_mutex_unlock(&w->mu);
	if (w->fd < 0 || w->error[0]) {
		finish(h, w, code ? code : 1006,
		       code ? reason : w->error[0] ? w->error : "connect failed");
		return;
	}
	if (code) { /* closed or released while connecting */
		finish(h, w, code, reason);
		return;
	}
	static const struct wslay_event_callbacks cbs = {
	    .recv_callback = on_recv,
	    .send_callback = on_send,
	    .genmask_callback = on_genmask,
	    .on_msg_recv_callback = on_msg,
	};
	if (wslay_event_context_client_init(&w->ctx, &cbs, w) != 0) {
		finish(h, w, 1006, "out of memory");
		return;
	}
	wslay_event_config_set_max_recv_msg_length(w->ctx, w->max_message);
	w->state = W_OPEN;
	w->heard_ms = im_mono_ms();
	if (w->on_open)
		CALLBACK(w, w->on_open(w->ud, w));
}

/* One turn for an open link: requests from other threads, reads, writes,
 * timers. */
static void service(struct ws_hub *h, im_ws *w)
{
	pthread_mutex_lock(&w->mu);
	wmsg *q = w->q_head;
	w->q_head = w->q_tail = NULL;
	size_t moved = w->q_bytes;
	w->q_bytes = 0;
	w->wslay_bytes += moved;
	int code = w->close_code;
	char reason[WS_REASON];
	snprintf(reason, sizeof(reason), "%s", w->close_reason);
	pthread_mutex_unlock(&w->mu);
	bool ok = true;
	for (wmsg *m = q, *n; m; m = n) {
		n = m->next;
		struct wslay_event_msg msg = {
		    m->binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME, m->data,
		    m->len};
		if (ok && wslay_event_queue_msg(w->ctx, &msg) != 0)
			ok = false;
		free(m);
	}
	if (!ok) {
		snprintf(w->error, sizeof(w->error), "out of memory");
		finish_ended(h, w);
		return;
	}
	if (code)
		start_close(w, code, reason);

	long long now = im_mono_ms();
	if (w->ping_ms && !w->close_started) {
		if (w->ping_ms_at && now - w->ping_ms_at >= w->ping_ms) {
			finish(h, w, 1006, "no answer to ping");
			return;
		}
		if (!w->ping_ms_at && now - w->heard_ms >= w->ping_ms) {
			struct wslay_event_msg ping = {WSLAY_PING, NULL, 0};
			wslay_event_queue_msg(w->ctx, &ping);
			w->ping_ms_at = now;
		}
	}
	if (w->close_started && now >= w->close_at) {
		finish(h, w, w->local_code, w->local_reason);
		return;
	}

	int rr = wslay_event_want_read(w->ctx) ? wslay_event_recv(w->ctx) : 0;
	if (rr == WSLAY_ERR_CALLBACK_FAILURE && !w->error[0]) {
		/* Not our I/O (on_recv names its failures): wslay's frame
		 * parser refused the peer's framing (a control frame over 125
		 * bytes or fragmented, a 64-bit length with its top bit set)
		 * and queued a close frame. A best-effort goodbye, then 1002
		 * as for the protocol errors wslay closes by itself. */
		wslay_event_send(w->ctx);
		finish(h, w, 1002, code_text(1002));
		return;
	}
	if (rr != 0) {
		finish_ended(h, w);
		return;
	}
	if (wslay_event_want_write(w->ctx) && wslay_event_send(w->ctx) != 0) {
		finish_ended(h, w);
		return;
	}
	pthread_mutex_lock(&w->mu);
	w->wslay_bytes = wslay_event_get_queued_msg_length(w->ctx);
	pthread_mutex_unlock(&w->mu);
	if (!wslay_event_want_read(w->ctx) && !wslay_event_want_write(w->ctx))
		finish_ended(h, w);
}

void ws_hub_run(struct ws_hub *h)
{
	pthread_mutex_lock(&h->mu);
	im_ws *in = h->incoming;
	h->incoming = NULL;
	pthread_mutex_unlock(&h->mu);
	while (in) {
		im_ws *n = in->next;
		in->next = h->links;
		h->links = in;
		in = n;
	}
	for (im_ws **pp = &h->links; *pp;) {
		im_ws *w = *pp;
		if (w->state == W_CONNECTING) {
			pthread_mutex_lock(&w->mu);
			bool done = w->conn_done;
			pthread_mutex_unlock(&w->mu);
			if (done)
				became_connected(h, w);
		}
		if (w->state == W_OPEN)
			service(h, w);
		if (w->state == W_DONE) {
			*pp = w->next;
			ws_unref(w);
		} else {
			pp = &w->next;
		}
	}
}

struct curl_waitfd *ws_hub_fds(struct ws_hub *h, unsigned *n, int *timeout_ms)
{
	unsigned count = 0;
	for (im_ws *w = h->links; w; w = w->next)
		count++;
	if (count > h->cap_fds) {
		struct curl_waitfd *f = realloc(h->fds, count * sizeof(*f));
		if (f) {
			h->fds = f;
			h->cap_fds = count;
		}
	}
	long long now = im_mono_ms();
	unsigned i = 0;
	for (im_ws *w = h->links; w && i < h->cap_fds; w = w->next) {
		if (w->state != W_OPEN)
			continue;
		short ev = 0;
		if (wslay_event_want_read(w->ctx))
			ev |= CURL_WAIT_POLLIN;
		if (wslay_event_want_write(w->ctx))
			ev |= CURL_WAIT_POLLOUT;
		/* TLS may hold decrypted bytes the socket no longer shows. */
		if (w->ssl && SSL_pending(w->ssl) > 0)
			*timeout_ms = 0;
		h->fds[i++] = (struct curl_waitfd){.fd = w->fd, .events = ev};
		long long due = -1;
		if (w->close_started)
			due = w->close_at;
		else if (w->ping_ms)
			due = (w->ping_ms_at ? w->ping_ms_at : w->heard_ms) +
			      w->ping_ms;
		if (due >= 0) {
			long long left = due - now;
			if (left < 0)
				left = 0;
			if (left < *timeout_ms)
				*timeout_ms = (int)left;
		}
	}
	*n = i;
	return h->fds;
}

void ws_hub_stop(struct ws_hub *h)
{
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	pthread_mutex_unlock(&h->mu);
	ws_hub_run(h); /* takes in the last opened links */
	while (h->links) {
		im_ws *w = h->links;
		h->links = w->next;
		if (w->state == W_CONNECTING) {
			uint64_t one = 1;
			if (write(w->abort_fd, &one, sizeof(one)) < 0)
				(void)0; /* an eventfd write does not fail */
			pthread_join(w->conn_thread, NULL);
		} else if (w->state == W_OPEN) {
			/* A best-effort goodbye; the socket closes next. */
			start_close(w, 1001, "host stopping");
			wslay_event_send(w->ctx);
		}
		finish(h, w, 1001, "host stopping");
		ws_unref(w);
	}
}

/* --- the hub and the public calls --------------------------------------- */

struct ws_hub *ws_hub_new(CURLM *multi)
{
	struct ws_hub *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->multi = multi;
	pthread_mutex_init(&h->mu, NULL);
	return h;
}

void ws_hub_free(struct ws_hub *h)
{
	if (!h)
		return;
	pthread_mutex_destroy(&h->mu);
	free(h->fds);
	free(h);
}

static bool header_ok(const char *s, bool name)
{
	if (!s || (name && !*s))
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p == '\r' || *p == '\n' ||
		    (name && (*p <= 0x20 || *p >= 0x7f || *p == ':')))
			return false;
	return true;
}

/* Frees a link that was never handed out (both references at once). */
static int discard(im_ws *w, int rc)
{
	atomic_store(&w->refs, 1);
	ws_unref(w);
	return rc;
}

int ws_hub_open(struct ws_hub *h, const im_ws_call *call, im_ws **out)
{
	if (!out)
		return IM_EINVAL;
	*out = NULL;
	if (!h || !call || call->struct_size < sizeof(im_ws_call) ||
	    !call->url || !call->on_close ||
	    (call->n_headers && !call->headers))
		return IM_EINVAL;
	im_ws *w = calloc(1, sizeof(*w));
	if (!w)
		return IM_ENOMEM;
	w->fd = w->abort_fd = -1;
	atomic_init(&w->refs, 2);
	pthread_mutex_init(&w->mu, NULL);
	pthread_mutex_init(&w->cb_mu, NULL);
	if (!parse_url(call->url, &w->url))
		return discard(w, IM_EINVAL);
	size_t hl = 1;
	for (size_t i = 0; i < call->n_headers; i++) {
		const im_http_header *hd = &call->headers[i];
		if (!header_ok(hd->name, true) || !header_ok(hd->value, false))
			return discard(w, IM_EINVAL);
		hl += strlen(hd->name) + strlen(hd->value) + 4;
	}
	if (call->n_headers && !(w->headers = malloc(hl)))
		goto nomem;
	for (size_t i = 0, off = 0; i < call->n_headers; i++)
		off += (size_t)sprintf(w->headers + off, "%s: %s\r\n",
				       call->headers[i].name,
				       call->headers[i].value);
	if (call->ca_file && *call->ca_file &&
	    !(w->ca_file = strdup(call->ca_file)))
		goto nomem;
	w->connect_timeout_ms = call->connect_timeout_ms
				    ? call->connect_timeout_ms
				    : WS_CONNECT_TIMEOUT_MS;
	w->ping_ms = call->ping_interval_ms;
	w->max_message = call->max_message ? call->max_message : WS_MAX_MESSAGE;
	w->max_queue = call->max_queue ? call->max_queue : WS_MAX_QUEUE;
	w->on_open = call->on_open;
	w->on_message = call->on_message;
	w->on_close = call->on_close;
	w->ud = call->userdata;
	w->abort_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->abort_fd < 0)
		goto nomem;
	w->hub = h;
	w->state = W_CONNECTING;

	pthread_mutex_lock(&h->mu);
	if (h->stopping) {
		pthread_mutex_unlock(&h->mu);
		ws_unref(w);
		ws_unref(w);
		return IM_ECANCELED;
	}
	/* No signals on the connect thread (a TLS write to a closed socket
	 * raises SIGPIPE; blocked, it stays pending instead of killing). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&w->conn_thread, NULL, connect_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_mutex_unlock(&h->mu);
		goto nomem;
	}
	w->next = h->incoming;
	h->incoming = w;
	hub_wake(h);
	pthread_mutex_unlock(&h->mu);
	*out = w;
	return 0;

nomem:
	return discard(w, IM_ENOMEM);
}

int im_ws_send(im_ws *w, int binary, const void *data, size_t len)
{
	/* max_queue is set before the link is handed out and never changes;
	 * a message larger than the whole queue can never be sent. */
	if (!w || (len && !data) || len > w->max_queue)
		return IM_EINVAL;
	wmsg *m = malloc(sizeof(*m) + len + 1);
	if (!m)
		return IM_ENOMEM;
	m->next = NULL;
	m->binary = binary != 0;
	m->len = len;
	if (len)
		memcpy(m->data, data, len);
	pthread_mutex_lock(&w->mu);
	int rc = 0;
	if (w->closing || !w->hub)
		rc = IM_ECANCELED;
	else if (w->q_bytes + w->wslay_bytes + len > w->max_queue)
		rc = IM_EAGAIN;
	if (rc == 0) {
		if (w->q_tail)
			w->q_tail->next = m;
		else
			w->q_head = m;
		w->q_tail = m;
		w->q_bytes += len;
		hub_wake(w->hub); /* under mu: the hub outlives a linked w */
	}
	pthread_mutex_unlock(&w->mu);
	if (rc != 0)
		free(m);
	return rc;
}

static bool sendable_code(int code)
{
	return (code >= 1000 && code <= 1003) ||
	       (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/* Asks the network thread to close: code and reason as given. */
static void request_close(im_ws *w, int code, const char *reason)
{
	pthread_mutex_lock(&w->mu);
	if (!w->closing && w->hub) {
		w->closing = true;
		w->close_code = sendable_code(code) ? code : 1000;
		/* At most 123 bytes, cut at a UTF-8 boundary. */
		size_t n = reason ? strlen(reason) : 0;
		if (n > WS_REASON - 1) {
			n = WS_REASON - 1;
			while (n && ((unsigned char)reason[n] & 0xC0) == 0x80)
				n--;
		}
		if (n)
			memcpy(w->close_reason, reason, n);
		w->close_reason[n] = '\0';
		uint64_t one = 1;
		if (write(w->abort_fd, &one, sizeof(one)) < 0)
			(void)0; /* ends a connect in progress */
		hub_wake(w->hub);
	}
	pthread_mutex_unlock(&w->mu);
}

void im_ws_close(im_ws *w, int code, const char *reason)
{
	if (w)
		request_close(w, code, reason);
}

void im_ws_release(im_ws *w)
{
	if (!w)
		return;
	/* From one of its own callbacks (which the contract forbids) cb_mu
	 * is held by this very thread: do not wait for it. Otherwise taking
	 * cb_mu waits for a callback in progress. */
	if (atomic_load(&w->in_cb) && pthread_equal(w->cb_thread, pthread_self())) {
		w->released = true;
	} else {
		pthread_mutex_lock(&w->cb_mu);
		w->released = true;
		pthread_mutex_unlock(&w->cb_mu);
	}
	request_close(w, 1001, "going away");
	ws_unref(w);
}
