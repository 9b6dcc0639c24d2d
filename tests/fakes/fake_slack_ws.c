/* The fake Slack's Socket Mode endpoint: a plain TCP listener on
 * 127.0.0.1, one thread per WebSocket connection, wslay for framing.
 * A connection needs a ticket from apps.connections.open (one use each),
 * gets "hello" at once, then whatever the test sends; the acks it gets
 * back are kept by envelope_id. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
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
#include <openssl/ssl.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <wslay/wslay.h>

#include "fake_slack_int.h"

typedef struct conn {
	struct conn *next;
	fake_slack *f;
	pthread_t th;
	int fd, efd;
	SSL *ssl; /* wss:// only */
	bool live, drop;
	json_t *out; /* texts waiting for the thread (under f->mu) */
	wslay_event_context_ptr ctx;
} conn;

struct fake_ws {
	int lfd, stop_efd;
	unsigned port;
	SSL_CTX *tls; /* set by fake_slack_ws_tls */
	pthread_t th;
	bool stopping;
	conn *conns;
	json_t *tickets; /* ticket -> true, until used */
	json_t *acks;    /* envelope_id -> ack */
	unsigned long next_ticket, next_env;
	int hellos;
};

static void poke(int efd)
{
	uint64_t one = 1;
	if (write(efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		perror("fake_slack: eventfd");
}

void fws_issue_url(fake_slack *f, char *buf, size_t len)
{
	char t[32];
	snprintf(t, sizeof(t), "%lu", ++f->ws->next_ticket);
	json_object_set_new(f->ws->tickets, t, json_true());
	snprintf(buf, len, "%s://%s:%u/link/?ticket=%s&app_id=A0FAKE",
		 f->ws->tls ? "wss" : "ws",
		 f->ws->tls ? "localhost" : "127.0.0.1", f->ws->port, t);
}

/* --- one connection --------------------------------------------------- */

/* >0 bytes, 0 EOF, -1 would block, -2 error: plain or TLS. */
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
	if (arg->opcode != WSLAY_TEXT_FRAME)
		return;
	json_error_t je;
	json_t *m = json_loadb((const char *)arg->msg, arg->msg_length, 0, &je);
	const char *id = json_string_value(json_object_get(m, "envelope_id"));
	if (id) {
		pthread_mutex_lock(&c->f->mu);
		json_object_set(c->f->ws->acks, id, m);
		pthread_cond_broadcast(&c->f->cv);
		pthread_mutex_unlock(&c->f->mu);
	}
	json_decref(m);
}

/* Reads the upgrade request; answers 101 for a valid ticket. */
static bool accept_upgrade(conn *c)
{
	char req[8192];
	size_t got = 0;
	struct timeval tv = {5, 0};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (c->f->ws->tls) {
		c->ssl = SSL_new(c->f->ws->tls);
		if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) ||
		    SSL_accept(c->ssl) != 1) {
			ERR_clear_error();
			return false;
		}
	}
	while (got < sizeof(req) - 1) {
		ssize_t n = c_read(c, req + got, sizeof(req) - 1 - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	char ticket[32] = "";
	const char *t = strstr(req, "ticket=");
	if (strncmp(req, "GET /link/", 10) || !t ||
	    sscanf(t + 7, "%31[0-9]", ticket) != 1)
		return false;
	pthread_mutex_lock(&c->f->mu);
	bool ok = json_object_get(c->f->ws->tickets, ticket) != NULL;
	json_object_del(c->f->ws->tickets, ticket); /* one use */
	pthread_mutex_unlock(&c->f->mu);
	const char *k = strcasestr(req, "\r\nSec-WebSocket-Key:");
	char key[64] = "", buf[128];
	if (!ok || !k || sscanf(k + 20, " %63[^\r\n ]", key) != 1) {
		const char *no = "HTTP/1.1 403 Forbidden\r\nContent-Length: "
				 "0\r\n\r\n";
		c_write(c, no, strlen(no));
		return false;
	}
	unsigned char md[EVP_MAX_MD_SIZE], acc[64];
	unsigned int mdlen = 0;
	snprintf(buf, sizeof(buf), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
		 key);
	EVP_Digest(buf, strlen(buf), md, &mdlen, EVP_sha1(), NULL);
	EVP_EncodeBlock(acc, md, 20);
	char resp[256];
	int n = snprintf(resp, sizeof(resp),
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: "
			 "websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Accept: %s\r\n\r\n",
			 (const char *)acc);
	return c_write(c, resp, (size_t)n) == n;
}

static void queue_locked(conn *c, json_t *msg)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	json_array_append_new(c->out, json_string(s));
	free(s);
	poke(c->efd);
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
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
	pthread_mutex_lock(&c->f->mu);
	c->live = true;
	int n = ++c->f->ws->hellos;
	json_t *hello = json_pack(
	    "{s:s,s:i,s:{s:s,s:i},s:{s:s}}", "type", "hello", "num_connections",
	    n, "debug_info", "host", "fake-slack", "approximate_connection_time",
	    18060, "connection_info", "app_id", "A0FAKE");
	queue_locked(c, hello);
	json_decref(hello);
	pthread_cond_broadcast(&c->f->cv);
	pthread_mutex_unlock(&c->f->mu);
	for (;;) {
		pthread_mutex_lock(&c->f->mu);
		bool stop = c->drop || c->f->ws->stopping;
		size_t i;
		json_t *m;
		json_array_foreach(c->out, i, m)
		{
			struct wslay_event_msg wm = {
			    WSLAY_TEXT_FRAME,
			    (const uint8_t *)json_string_value(m),
			    strlen(json_string_value(m))};
			wslay_event_queue_msg(c->ctx, &wm);
		}
		json_array_clear(c->out);
		pthread_mutex_unlock(&c->f->mu);
		if (stop)
			break;
		struct pollfd pf[2] = {
		    {.fd = c->fd,
		     .events = POLLIN |
			       (wslay_event_want_write(c->ctx) ? POLLOUT : 0)},
		    {.fd = c->efd, .events = POLLIN}};
		if (poll(pf, 2, 500) < 0 && errno != EINTR)
			break;
		uint64_t v;
		if ((pf[1].revents & POLLIN) &&
		    read(c->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			break;
		if (((pf[0].revents & (POLLIN | POLLERR | POLLHUP)) &&
		     wslay_event_recv(c->ctx) != 0) ||
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
	if (accept_upgrade(c))
		serve(c);
	pthread_mutex_lock(&c->f->mu);
	c->live = false;
	shutdown(c->fd, SHUT_RDWR);
	pthread_cond_broadcast(&c->f->cv);
	pthread_mutex_unlock(&c->f->mu);
	return NULL;
}

static void *accept_main(void *arg)
{
	fake_slack *f = arg;
	fake_ws *w = f->ws;
	for (;;) {
		struct pollfd pf[2] = {{.fd = w->lfd, .events = POLLIN},
				       {.fd = w->stop_efd, .events = POLLIN}};
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			break;
		if (pf[1].revents)
			break;
		if (!(pf[0].revents & POLLIN))
			continue;
		int fd = accept4(w->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		conn *c = calloc(1, sizeof(*c));
		c->f = f;
		c->fd = fd;
		c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		c->out = json_array();
		pthread_mutex_lock(&f->mu);
		c->next = w->conns;
		w->conns = c;
		pthread_mutex_unlock(&f->mu);
		pthread_create(&c->th, NULL, conn_main, c);
	}
	return NULL;
}

int fws_start(fake_slack *f)
{
	fake_ws *w = calloc(1, sizeof(*w));
	if (!w)
		return -1;
	f->ws = w;
	w->tickets = json_object();
	w->acks = json_object();
	w->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (w->lfd < 0 || bind(w->lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(w->lfd, 64) ||
	    getsockname(w->lfd, (struct sockaddr *)&a, &len))
		return -1;
	w->port = ntohs(a.sin_port);
	return pthread_create(&w->th, NULL, accept_main, f) ? -1 : 0;
}

void fws_stop(fake_slack *f)
{
	fake_ws *w = f->ws;
	if (!w)
		return;
	pthread_mutex_lock(&f->mu);
	w->stopping = true;
	for (conn *c = w->conns; c; c = c->next)
		poke(c->efd);
	pthread_mutex_unlock(&f->mu);
	if (w->port) {
		poke(w->stop_efd);
		pthread_join(w->th, NULL);
	}
	for (conn *c = w->conns, *n; c; c = n) {
		n = c->next;
		pthread_join(c->th, NULL);
		SSL_free(c->ssl);
		close(c->fd);
		close(c->efd);
		json_decref(c->out);
		free(c);
	}
	if (w->lfd >= 0)
		close(w->lfd);
	close(w->stop_efd);
	json_decref(w->tickets);
	json_decref(w->acks);
	SSL_CTX_free(w->tls);
	free(w);
	f->ws = NULL;
}

/* --- the test's side ---------------------------------------------------- */

int fake_slack_ws_hellos(fake_slack *f)
{
	pthread_mutex_lock(&f->mu);
	int n = f->ws->hellos;
	pthread_mutex_unlock(&f->mu);
	return n;
}

int fake_slack_ws_live(fake_slack *f)
{
	int n = 0;
	pthread_mutex_lock(&f->mu);
	for (conn *c = f->ws->conns; c; c = c->next)
		n += c->live;
	pthread_mutex_unlock(&f->mu);
	return n;
}

static void deadline(struct timespec *t, int ms)
{
	clock_gettime(CLOCK_REALTIME, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

bool fake_slack_ws_wait_hellos(fake_slack *f, int n, int timeout_ms)
{
	struct timespec until;
	deadline(&until, timeout_ms);
	pthread_mutex_lock(&f->mu);
	while (f->ws->hellos < n &&
	       pthread_cond_timedwait(&f->cv, &f->mu, &until) == 0)
		;
	bool ok = f->ws->hellos >= n;
	pthread_mutex_unlock(&f->mu);
	return ok;
}

bool fake_slack_ws_envelope(fake_slack *f, const char *type,
			    const json_t *payload, bool accepts_response,
			    char *id, size_t idlen)
{
	pthread_mutex_lock(&f->mu);
	conn *c = f->ws->conns;
	while (c && (!c->live || c->drop))
		c = c->next;
	if (c) {
		snprintf(id, idlen, "env-%lu", ++f->ws->next_env);
		json_t *e = json_pack("{s:s,s:s,s:O,s:b,s:i}", "envelope_id", id,
				      "type", type, "payload", payload,
				      "accepts_response_payload",
				      accepts_response, "retry_attempt", 0);
		queue_locked(c, e);
		json_decref(e);
	}
	pthread_mutex_unlock(&f->mu);
	return c != NULL;
}

json_t *fake_slack_ws_wait_ack(fake_slack *f, const char *envelope_id,
			       int timeout_ms)
{
	struct timespec until;
	deadline(&until, timeout_ms);
	pthread_mutex_lock(&f->mu);
	json_t *a;
	while (!(a = json_object_get(f->ws->acks, envelope_id)) &&
	       pthread_cond_timedwait(&f->cv, &f->mu, &until) == 0)
		;
	json_incref(a);
	pthread_mutex_unlock(&f->mu);
	return a;
}

void fake_slack_ws_disconnect(fake_slack *f, const char *reason)
{
	json_t *d = json_pack("{s:s,s:s,s:{s:s}}", "type", "disconnect",
			      "reason", reason, "debug_info", "host",
			      "fake-slack");
	pthread_mutex_lock(&f->mu);
	for (conn *c = f->ws->conns; c; c = c->next)
		if (c->live)
			queue_locked(c, d);
	pthread_mutex_unlock(&f->mu);
	json_decref(d);
}

void fake_slack_ws_drop(fake_slack *f)
{
	pthread_mutex_lock(&f->mu);
	for (conn *c = f->ws->conns; c; c = c->next)
		if (c->live) {
			c->drop = true;
			poke(c->efd);
		}
	pthread_mutex_unlock(&f->mu);
}

/* --- wss:// ------------------------------------------------------------- */

/* A self-signed certificate for localhost and 127.0.0.1. */
static X509 *self_signed(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX v3;
	X509_EXTENSION *san = NULL;
	bool ok = x && name && X509_set_version(x, 2) &&
		  ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
		  X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
		  X509_gmtime_adj(X509_getm_notAfter(x), 86400) &&
		  X509_set_pubkey(x, key) &&
		  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					     (const unsigned char *)"localhost",
					     -1, -1, 0) &&
		  X509_set_subject_name(x, name) && X509_set_issuer_name(x, name);
	if (ok) {
		X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
		san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
					  "DNS:localhost,IP:127.0.0.1");
		ok = san && X509_add_ext(x, san, -1) &&
		     X509_sign(x, key, EVP_sha256()) > 0;
	}
	X509_EXTENSION_free(san);
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

bool fake_slack_ws_tls(fake_slack *f, const char *ca_path)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = key ? self_signed(key) : NULL;
	SSL_CTX *ctx = cert ? SSL_CTX_new(TLS_server_method()) : NULL;
	FILE *out = ctx ? fopen(ca_path, "w") : NULL;
	bool ok = out && SSL_CTX_use_certificate(ctx, cert) == 1 &&
		  SSL_CTX_use_PrivateKey(ctx, key) == 1 &&
		  PEM_write_X509(out, cert) == 1;
	if (out)
		fclose(out);
	X509_free(cert);
	EVP_PKEY_free(key);
	if (!ok) {
		SSL_CTX_free(ctx);
		return false;
	}
	pthread_mutex_lock(&f->mu);
	SSL_CTX_free(f->ws->tls);
	f->ws->tls = ctx;
	pthread_mutex_unlock(&f->mu);
	return true;
}
