/*
 * tests/unit/test_ws_client.c - the host's WebSocket client (core/net/ws.c)
 * through im_net, against a scripted server on 127.0.0.1: one connection
 * per test, served on its own thread, plain or TLS (a self-signed
 * certificate made here). The server writes frames byte by byte as the
 * script says, so fragments, pings and close codes are exact.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <im/types.h>

#include "net/net.h"
#include "plugin/plugin.h"

/* --- what the client reported ------------------------------------------- */

typedef struct rec {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int opens, closes, messages;
	int code;
	char reason[256];
	char msg[8][4096];
	size_t msg_len[8];
	int msg_binary[8];
	pthread_t cb_thread;
	bool cb_thread_set, other_thread;
	atomic_bool released; /* set once ws_release returned */
	atomic_int after_release;
	int slow_ms;          /* on_message sleeps this long */
	im_ws *ws;
	bool send_on_open;    /* on_open sends "from on_open" */
} rec;

static rec R;
static im_net *net;

static void note_thread(rec *r)
{
	if (!r->cb_thread_set) {
		r->cb_thread = pthread_self();
		r->cb_thread_set = true;
	} else if (!pthread_equal(r->cb_thread, pthread_self())) {
		r->other_thread = true;
	}
	if (atomic_load(&r->released))
		atomic_fetch_add(&r->after_release, 1);
}

static void on_open(void *ud, im_ws *ws)
{
	rec *r = ud;
	pthread_mutex_lock(&r->mu);
	note_thread(r);
	r->opens++;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	if (r->send_on_open)
		im_ws_send(ws, 0, "from on_open", 12);
}

static void on_message(void *ud, im_ws *ws, int binary, const void *data,
		       size_t len)
{
	rec *r = ud;
	if (r->slow_ms) {
		struct timespec ts = {0, r->slow_ms * 1000000L};
		nanosleep(&ts, NULL);
	}
	pthread_mutex_lock(&r->mu);
	note_thread(r);
	int i = r->messages++;
	if (i < 8) {
		size_t n = len < 4095 ? len : 4095;
		memcpy(r->msg[i], data, n);
		r->msg[i][n] = '\0';
		r->msg_len[i] = len;
		r->msg_binary[i] = binary;
		if (((const char *)data)[len] != '\0')
			r->msg_binary[i] = -1; /* not NUL-terminated */
	}
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void on_close(void *ud, im_ws *ws, int code, const char *reason)
{
	rec *r = ud;
	pthread_mutex_lock(&r->mu);
	note_thread(r);
	r->closes++;
	r->code = code;
	snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "(null)");
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* Waits (at most ms) until *field >= n. */
static bool wait_for(int *field, int n, int ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += ms / 1000;
	dl.tv_nsec += (ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&R.mu);
	while (*field < n &&
	       pthread_cond_timedwait(&R.cv, &R.mu, &dl) != ETIMEDOUT)
		;
	bool ok = *field >= n;
	pthread_mutex_unlock(&R.mu);
	return ok;
}

static int get(int *field)
{
	pthread_mutex_lock(&R.mu);
	int v = *field;
	pthread_mutex_unlock(&R.mu);
	return v;
}

static im_ws_call call_for(const char *url)
{
	return (im_ws_call){
	    .struct_size = sizeof(im_ws_call),
	    .url = url,
	    .connect_timeout_ms = 5000,
	    .on_open = on_open,
	    .on_message = on_message,
	    .on_close = on_close,
	    .userdata = &R,
	};
}

/* --- the scripted server ------------------------------------------------ */

typedef struct srv srv;
typedef void (*script_fn)(srv *s);

struct srv {
	int lfd, fd;
	unsigned short port;
	SSL_CTX *tls;
	SSL *ssl;
	pthread_t th;
	bool running;
	script_fn script;
	const char *answer; /* instead of 101 (NULL: a proper 101) */
	char request[8192]; /* the client's handshake */
	/* go: the script waits for it where it says so */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool go;
	atomic_bool done;
	char failure[256]; /* what the script found wrong */
};

static srv S;
static char cert_path[64], other_cert_path[64];

static void srv_fail(srv *s, const char *what)
{
	if (!s->failure[0])
		snprintf(s->failure, sizeof(s->failure), "%s", what);
}

static ssize_t s_read(srv *s, void *buf, size_t len)
{
	if (s->ssl) {
		int n = SSL_read(s->ssl, buf, (int)len);
		return n > 0 ? n : -1;
	}
	return recv(s->fd, buf, len, 0);
}

static bool s_write(srv *s, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = s->ssl ? SSL_write(s->ssl, p, (int)len)
				   : send(s->fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool s_read_all(srv *s, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = s_read(s, p, len);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* An unmasked server frame. */
static bool frame(srv *s, bool fin, int opcode, const void *data, size_t len)
{
	unsigned char h[10];
	size_t hl = 2;
	h[0] = (unsigned char)((fin ? 0x80 : 0) | opcode);
	if (len < 126) {
		h[1] = (unsigned char)len;
	} else if (len < 65536) {
		h[1] = 126;
		h[2] = (unsigned char)(len >> 8);
		h[3] = (unsigned char)len;
		hl = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
		hl = 10;
	}
	return s_write(s, h, hl) && (!len || s_write(s, data, len));
}

static bool close_frame(srv *s, int code, const char *reason)
{
	unsigned char b[128] = {(unsigned char)(code >> 8), (unsigned char)code};
	size_t n = strlen(reason);
	memcpy(b + 2, reason, n);
	return frame(s, true, 8, b, n + 2);
}

/* A client frame: opcode (or -1), payload unmasked into buf (at most
 * cap; longer ones fail). Checks the client masks. */
static int read_frame(srv *s, unsigned char *buf, size_t cap, size_t *len,
		      bool *fin)
{
	unsigned char h[2], ext[8], mask[4];
	if (!s_read_all(s, h, 2))
		return -1;
	if (!(h[1] & 0x80)) {
		srv_fail(s, "client frame not masked");
		return -1;
	}
	uint64_t n = h[1] & 0x7f;
	if (n == 126) {
		if (!s_read_all(s, ext, 2))
			return -1;
		n = (uint64_t)ext[0] << 8 | ext[1];
	} else if (n == 127) {
		if (!s_read_all(s, ext, 8))
			return -1;
		n = 0;
		for (int i = 0; i < 8; i++)
			n = n << 8 | ext[i];
	}
	if (n > cap || !s_read_all(s, mask, 4) || !s_read_all(s, buf, (size_t)n))
		return -1;
	for (size_t i = 0; i < n; i++)
		buf[i] ^= mask[i % 4];
	*len = (size_t)n;
	if (fin)
		*fin = h[0] & 0x80;
	return h[0] & 0x0f;
}

/* The next frame that is not a pong. */
static int read_data(srv *s, unsigned char *buf, size_t cap, size_t *len)
{
	int op;
	while ((op = read_frame(s, buf, cap, len, NULL)) == 0xA)
		;
	return op;
}

static void wait_go(srv *s)
{
	pthread_mutex_lock(&s->mu);
	while (!s->go)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
}

static void let_go(srv *s)
{
	pthread_mutex_lock(&s->mu);
	s->go = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static bool accept_key(const char *key, char out[64])
{
	char buf[256];
	unsigned char md[20];
	unsigned int ml = 0;
	snprintf(buf, sizeof(buf), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
		 key);
	if (!EVP_Digest(buf, strlen(buf), md, &ml, EVP_sha1(), NULL))
		return false;
	EVP_EncodeBlock((unsigned char *)out, md, 20);
	return true;
}

static bool handshake(srv *s)
{
	size_t got = 0;
	while (!strstr(s->request, "\r\n\r\n")) {
		if (got + 1 >= sizeof(s->request))
			return false;
		ssize_t n = s_read(s, s->request + got, 1);
		if (n <= 0)
			return false;
		got += (size_t)n;
		s->request[got] = '\0';
	}
	if (s->answer)
		return s_write(s, s->answer, strlen(s->answer)), false;
	const char *k = strcasestr(s->request, "\r\nSec-WebSocket-Key:");
	char key[64] = "", acc[64];
	if (!k || sscanf(k + 20, " %63[^\r]", key) != 1 || !accept_key(key, acc))
		return false;
	char ans[256];
	snprintf(ans, sizeof(ans),
		 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		 acc);
	return s_write(s, ans, strlen(ans));
}

static void *srv_main(void *arg)
{
	srv *s = arg;
	s->fd = accept(s->lfd, NULL, NULL);
	if (s->fd >= 0) {
		struct timeval tv = {10, 0};
		setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		bool ok = true;
		if (s->tls) {
			s->ssl = SSL_new(s->tls);
			ok = s->ssl && SSL_set_fd(s->ssl, s->fd) &&
			     SSL_accept(s->ssl) == 1;
		}
		if (ok && handshake(s) && s->script)
			s->script(s);
		if (s->ssl)
			SSL_shutdown(s->ssl);
	}
	atomic_store(&s->done, true);
	return NULL;
}

static X509 *make_cert(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_NAME *nm = x ? X509_get_subject_name(x) : NULL;
	X509V3_CTX v3;
	if (!nm || !X509_set_version(x, 2) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), 7) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -300) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 3600) ||
	    !X509_set_pubkey(x, key) ||
	    !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
					(const unsigned char *)"127.0.0.1", -1,
					-1, 0) ||
	    !X509_set_issuer_name(x, nm)) {
		X509_free(x);
		return NULL;
	}
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
						"IP:127.0.0.1,DNS:localhost");
	bool ok = e && X509_add_ext(x, e, -1) &&
		  X509_sign(x, key, EVP_sha256()) > 0;
	X509_EXTENSION_free(e);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* A server context with a fresh self-signed certificate, written as PEM to
 * `path` (the CA a client may trust). */
static SSL_CTX *tls_ctx(const char *path)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = key ? make_cert(key) : NULL;
	SSL_CTX *ctx = cert ? SSL_CTX_new(TLS_server_method()) : NULL;
	FILE *f = ctx ? fopen(path, "w") : NULL;
	bool ok = f && SSL_CTX_use_certificate(ctx, cert) == 1 &&
		  SSL_CTX_use_PrivateKey(ctx, key) == 1 &&
		  PEM_write_X509(f, cert) == 1;
	if (f)
		fclose(f);
	X509_free(cert);
	EVP_PKEY_free(key);
	if (!ok) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Starts the one-connection server. */
static void serve(script_fn script, bool tls)
{
	S.script = script;
	S.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	cr_assert(S.lfd >= 0 && bind(S.lfd, (void *)&a, sizeof(a)) == 0 &&
		  listen(S.lfd, 4) == 0 &&
		  getsockname(S.lfd, (void *)&a, &al) == 0);
	S.port = ntohs(a.sin_port);
	if (tls)
		cr_assert((S.tls = tls_ctx(cert_path)), "no test certificate");
	cr_assert(pthread_create(&S.th, NULL, srv_main, &S) == 0);
	S.running = true;
}

static char *url_of(char *buf, size_t len, const char *scheme,
		    const char *path)
{
	snprintf(buf, len, "%s://127.0.0.1:%u%s", scheme, S.port, path);
	return buf;
}

static bool srv_wait_done(int ms)
{
	for (int i = 0; i < ms / 10 && !atomic_load(&S.done); i++) {
		struct timespec ts = {0, 10000000L};
		nanosleep(&ts, NULL);
	}
	return atomic_load(&S.done);
}

static void setup(void)
{
	/* The server's TLS writes (SSL_shutdown after the client left) must
	 * fail, not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	memset(&R, 0, sizeof(R));
	pthread_mutex_init(&R.mu, NULL);
	pthread_cond_init(&R.cv, NULL);
	memset(&S, 0, sizeof(S));
	S.lfd = S.fd = -1;
	pthread_mutex_init(&S.mu, NULL);
	pthread_cond_init(&S.cv, NULL);
	snprintf(cert_path, sizeof(cert_path), "/tmp/im-ws-test-%d.pem",
		 (int)getpid());
	snprintf(other_cert_path, sizeof(other_cert_path),
		 "/tmp/im-ws-test-other-%d.pem", (int)getpid());
	cr_assert_eq(im_net_start(&net), 0);
}

static void teardown(void)
{
	im_net_stop(net);
	net = NULL;
	if (S.running) {
		let_go(&S);
		if (S.fd >= 0)
			shutdown(S.fd, SHUT_RDWR);
		shutdown(S.lfd, SHUT_RDWR);
		pthread_join(S.th, NULL);
	}
	if (S.ssl)
		SSL_free(S.ssl);
	SSL_CTX_free(S.tls);
	if (S.fd >= 0)
		close(S.fd);
	if (S.lfd >= 0)
		close(S.lfd);
	unlink(cert_path);
	unlink(other_cert_path);
	cr_expect_str_empty(S.failure, "server: %s", S.failure);
	cr_expect_not(R.other_thread, "callbacks ran on more than one thread");
	cr_expect(!R.cb_thread_set || !pthread_equal(R.cb_thread, pthread_self()),
		  "callbacks ran on the test's thread");
}

TestSuite(ws_client, .init = setup, .fini = teardown, .timeout = 60);

/* --- scripts --------------------------------------------------------------- */

static unsigned char got_buf[1 << 16];

/* Echoes two messages, then answers the client's close. */
static void echo2(srv *s)
{
	for (int i = 0; i < 2; i++) {
		size_t n;
		int op = read_data(s, got_buf, sizeof(got_buf), &n);
		if (op != 1 && op != 2)
			{
			srv_fail(s, "expected a data frame");
			return;
		}
		frame(s, true, op, got_buf, n);
	}
	size_t n;
	int op = read_data(s, got_buf, sizeof(got_buf), &n);
	if (op != 8 || n < 2)
		{
			srv_fail(s, "expected a close frame");
			return;
		}
	int code = got_buf[0] << 8 | got_buf[1];
	if (code != 1000 || n != 5 || memcmp(got_buf + 2, "bye", 3) != 0)
		{
			srv_fail(s, "expected close 1000 bye");
			return;
		}
	close_frame(s, 1000, "bye");
}

Test(ws_client, echoes_text_and_binary_on_the_network_thread)
{
	serve(echo2, false);
	char url[128];
	im_ws_call c = call_for(url_of(url, sizeof(url), "ws", "/echo?x=1"));
	im_http_header h[] = {IM_HEADER("X-Test", "yes")};
	c.headers = h;
	c.n_headers = 1;
	im_ws *ws = NULL;
	cr_assert_eq(im_net_ws_open(net, &c, &ws), 0);
	cr_assert(wait_for(&R.opens, 1, 5000), "no on_open");
	cr_expect(strncmp(S.request, "GET /echo?x=1 HTTP/1.1\r\n", 24) == 0,
		  "%s", S.request);
	cr_expect(strstr(S.request, "\r\nX-Test: yes\r\n"), "%s", S.request);
	cr_expect_eq(im_ws_send(ws, 0, "hello", 5), 0);
	static const char bin[] = {0, 1, 2, '\xff', 0};
	cr_expect_eq(im_ws_send(ws, 1, bin, sizeof(bin)), 0);
	cr_assert(wait_for(&R.messages, 2, 5000), "no echo");
	cr_expect_str_eq(R.msg[0], "hello");
	cr_expect_eq(R.msg_binary[0], 0);
	cr_expect_eq(R.msg_len[1], sizeof(bin));
	cr_expect_eq(memcmp(R.msg[1], bin, sizeof(bin)), 0);
	cr_expect_eq(R.msg_binary[1], 1);
	im_ws_close(ws, 1000, "bye");
	cr_expect_eq(im_ws_send(ws, 0, "late", 4), IM_ECANCELED);
	cr_assert(wait_for(&R.closes, 1, 5000), "no on_close");
	cr_expect_eq(R.code, 1000);
	cr_expect_str_eq(R.reason, "bye");
	im_ws_release(ws);
	cr_expect_eq(get(&R.closes), 1);
}

static void fragments(srv *s)
{
	frame(s, false, 1, "Hel", 3);
	frame(s, true, 9, "mid", 3); /* a ping between fragments */
	frame(s, false, 0, "lo, ", 4);
	frame(s, true, 0, "world", 5);
	size_t n;
	bool fin;
	int op = read_frame(s, got_buf, sizeof(got_buf), &n, &fin);
	if (op != 0xA || n != 3 || memcmp(got_buf, "mid", 3) != 0)
		srv_fail(s, "expected pong \"mid\"");
	wait_go(s);
}

Test(ws_client, joins_fragments_and_answers_a_ping_with_its_pong)
{
	serve(fragments, false);
	char url[128];
	im_ws_call c = call_for(url_of(url, sizeof(url), "ws", "/"));
	im_ws *ws = NULL;
	cr_assert_eq(im_net_ws_open(net, &c, &ws), 0);
	cr_assert(wait_for(&R.messages, 1, 5000), "no message");
	cr_expect_str_eq(R.msg[0], "Hello, world");
	cr_expect_eq(R.msg_len[0], 12);
	cr_expect_eq(R.msg_binary[0], 0, "text, NUL-terminated");
	let_go(&S);
	cr_expect(srv_wait_done(5000));
	cr_expect_eq(get(&R.messages), 1, "the ping is not a message");
	im_ws_release(ws);
}

static void server_closes(srv *s)
{
	close_frame(s, 4001, "gone fishing");
	size_t n;
	int op = read_data(s, got_buf, sizeof(got_buf), &n);
	if (op != 8 || n < 2 || (got_buf[0] << 8 | got_buf[1]) != 4001)
		srv_fail(s, "expected the close echoed with 4001");
}

Test(ws_client, reports_the_servers_close_code_and_reason_once)
{
	serve(server_closes, false);
	char url[128];
	im_ws_call c = call_for(url_of(url, sizeof(url), "ws", "/"));
	im_ws *ws = NULL;
	cr_assert_eq(im_net_ws_open(net, &c, &ws), 0);
	cr_assert(wait_for(&R.closes, 1, 5000), "no on_close");
	cr_expect_eq(R.code, 4001);
	cr_expect_str_eq(R.reason, "gone fishing");
	cr_expect(srv_wait_done(5000));
	cr_expect_eq(im_ws_send(ws, 0, "x", 1), IM_ECANCELED);
	struct timespec ts = {0, 200000000L};
	nanosleep(&ts, NULL);
	cr_expect_eq(get(&R.closes), 1, "on_close exactly once");
	im_ws_release(ws);
}

static void too_big(srv *s)
{
	static char big[2000];
	memset(big, 'x', sizeof(big));
	frame(s, true, 1, big, sizeof(big));
	size_t n;
	int op = read_data(s, got_buf, sizeof(got_buf), &n);
	if (op != 8 || n < 2 || (got_buf[0] << 8 | got_buf[1]) != 1009)
		srv_fail(s, "expected close 1009");
	else
		close_frame(s, 1009, "");
}

Test(ws_client, closes_with_1009_on_a_message_over_max_message)
{
	serve(too_big, false);
	char url[128];
	im_ws_call c = call_for(url_of(url, sizeof(url), "ws", "/"));
	c.max_message = 1000;
	im_ws *ws = NULL;
	cr_assert_eq(im_net_ws_open(net, &c, &ws), 0);
	cr_assert(wait_for(&R.closes, 1, 5000), "no on_close");
	cr_expect_eq(R.code, 1009);
	cr_expect_eq(get(&R.messages), 0);
	cr_expect(srv_wait_done(5000));
	im_ws_release(ws);
}

/* Expects two texts of 400 bytes, then idles. */
static void two_texts(srv *s)
{
	for (int i = 0; i < 2; i++) {
		size_t n;
		if (read_data(s, got_buf, sizeof(got_buf), &n) != 1 || n != 400)
			{
			srv_fail(s, "expected two texts of 400 bytes");
			return;
		}
	}
	wait_go(s);
}

Test(ws_client, bounds_the_send_queue_with_eagain)
{
	serve(two_texts, false);
	char url[128];
	im_ws_call c = call_for(url_of(url, sizeof(url), "ws", "/"));
	c.max_queue = 1000;
	char m[400];
	memset(m, 'q', sizeof(m));
	/* Holding R.mu keeps on_open (and so the first drain of the queue)
	 * from running: all three sends meet the same queue. */
	im_ws *ws = NULL;
	pthread_mutex_lock(&R.mu);
	int rc = im_net_ws_open(net, &c, &ws);
	int r1 = rc ? rc : im_ws_send(ws, 0, m, sizeof(m));
	int r2 = rc ? rc : im_ws_send(ws, 0, m, sizeof(m));
	int r3 = rc ? rc : im_ws_send(ws, 0, m, sizeof(m));
	pthread_mutex_unlock(&R.mu);
	cr_assert_eq(rc, 0);
	cr_expect_eq(r1, 0);
	cr_expect_eq(r2, 0);
	cr_expect_eq(r3, IM_EAGAIN, "the third 400 bytes exceed max_queue");
	char *big = calloc(1, 1001);
	cr_assert(big);
	cr_expect_eq(im_ws_send(ws, 0, big, 1001), IM_EINVAL,
		     "larger than the whole queue");
	free(big);
	cr_assert(wait_for(&R.opens, 1, 5000));
	/* The two queued ones arrive (the server checks), then room again. */
	bool room = false;
	for (int i = 0; i < 500 && !room; i++) {
		room = im_ws_send(ws, 0, "", 0) == 0 &&
		       im_ws_send(ws, 0, m, sizeof(m)) == 0 &&
		       im_ws_send(ws, 0, m, sizeof(m)) == 0;
		if (!room) {
			struct timespec ts = {0, 10000000L};
			nanosleep(&ts, NULL);
		}
	}
	cr_expect(room, "the queue never drained");
	im_ws_release(ws);
}

Test(ws_client, reports_a_refused_connection_as_1006_with_a_reason)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	cr_assert(bind(fd, (void *)&a, sizeof(a)) == 0 &&
		  getsockname(fd, (void *)&a, &al) == 0);
	close(fd); /* nobody listens there now */
	char url[128];
	snprintf(url, sizeof(url), "ws://127.0.0.1:%u/", ntohs(a.sin_port));
	im_ws_call c = call_for(url);
	im_ws *ws = NULL;
	cr_assert_eq(im_net_ws_open(net, &c, &ws), 0);
	cr_assert(wait_for(&R.closes, 1, 5000), "no on_close");
	cr_expect_eq(R.code, 1006);
	cr_expect(strstr(R.reason, "refused"), "%s", R.reason);
	cr_expect_eq(get(&R.opens), 0);
	im_ws_release(ws);
}

Test(ws_client, reports_a_refused_handshake_with_its_status)
{
	S.answer = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
	serve(NULL, false);
	char url[128];
	im_ws_call c = call_for(url_of(url, sizeof(url), "ws", "/"));
	im_ws *ws = NULL;
	cr_assert_eq(im_net_ws_open(net, &c, &ws), 0);
	cr_assert(wait_for(&R.closes, 1, 5000), "no on_close");
	cr_expect_eq(R.code, 1006);
	cr_expect(strstr(R.reason, "403"), "%s", R.reason);
	cr_expect_eq(get(&R.opens), 0);
	im_ws_release(ws);
}

static void echo_once(srv *s)
{
	size_t n;
	int op = read_data(s, got_buf, sizeof(got_buf), &n);
	if (op != 1)
		{
			srv_fail(s, "expected a text");
			return;
		}
	frame(s, true, 1, got_buf, n);
	wait_go(s);
}

Test(ws_client, speaks_wss_with_a_trusted_ca_file)
{
	serve(echo_once, true);
	char url[128];
	im_ws_call c = call_for(url_of(url, sizeof(url), "wss", "/"));
	c.ca_file = cert_path;
	R.send_on_open = true;
	im_ws *ws = NULL;
	cr_assert_eq(im_net_ws_open(net, &c, &ws), 0);
	cr_assert(wait_for(&R.messages, 1, 5000), "no echo over TLS: %s",
		  R.reason);
	cr_expect_str_eq(R.msg[0], "from on_open");
	im_ws_release(ws);
}

Test(ws_client, refuses_a_certificate_from_an_unknown_ca)
{
	serve(echo_once, true);
	char url[128];
	im_ws_call c = call_for(url_of(url, sizeof(url), "wss", "/"));
	im_ws *ws = NULL;
	cr_assert_eq(im_net_ws_open(net, &c, &ws), 0);
	cr_assert(wait_for(&R.closes, 1, 5000), "no on_close");
	cr_expect_eq(R.code, 1006);
	cr_expect(strstr(R.reason, "TLS") && strstr(R.reason, "certificate"),
		  "%s", R.reason);
	cr_expect_eq(get(&R.opens), 0);
	im_ws_release(ws);
}

Test(ws_client, refuses_a_certificate_a_different_ca_file_does_not_vouch_for)
{
	SSL_CTX *other = tls_ctx(other_cert_path); /* another key and cert */
	cr_assert(other);
	SSL_CTX_free(other);
	serve(echo_once, true);
	char url[128];
	im_ws_call c = call_for(url_of(url, sizeof(url), "wss", "/"));
	c.ca_file = other_cert_path;
	im_ws *ws = NULL;
	cr_assert_eq(im_net_ws_open(net, &c, &ws), 0);
	cr_assert(wait_for(&R.closes, 1, 5000), "no on_close");
	cr_expect_eq(R.code, 1006);
	cr_expect(strstr(R.reason, "TLS"), "%s", R.reason);
	cr_expect_eq(get(&R.opens), 0);
	im_ws_release(ws);
}

/* Sends texts until the client closes, then checks its code. */
static void flood(srv *s)
{
	for (int i = 0; i < 400; i++) {
		char t[32];
		int n = snprintf(t, sizeof(t), "tick %d", i);
		if (!frame(s, true, 1, t, (size_t)n))
			return;
		struct timespec ts = {0, 5000000L};
		nanosleep(&ts, NULL);
		struct pollfd pf = {.fd = s->fd, .events = POLLIN};
		if (poll(&pf, 1, 0) > 0) {
			size_t len;
			int op = read_data(s, got_buf, sizeof(got_buf), &len);
			if (op != 8 || len < 2 ||
			    (got_buf[0] << 8 | got_buf[1]) != 1001)
				srv_fail(s, "expected close 1001 on release");
			return;
		}
	}
	srv_fail(s, "the client never closed");
}

Test(ws_client, runs_no_callback_after_release_returns)
{
	serve(flood, false);
	char url[128];
	im_ws_call c = call_for(url_of(url, sizeof(url), "ws", "/"));
	R.slow_ms = 20; /* a callback is likely in progress at release */
	im_ws *ws = NULL;
	cr_assert_eq(im_net_ws_open(net, &c, &ws), 0);
	cr_assert(wait_for(&R.messages, 3, 5000), "no messages");
	im_ws_release(ws);
	atomic_store(&R.released, true);
	int seen = get(&R.messages);
	cr_expect(srv_wait_done(5000), "the server saw no close");
	struct timespec ts = {0, 200000000L};
	nanosleep(&ts, NULL);
	cr_expect_eq(atomic_load(&R.after_release), 0,
		     "a callback ran after ws_release returned");
	cr_expect_eq(get(&R.messages), seen);
	cr_expect_eq(get(&R.closes), 0, "released: no on_close");
}

static void idle(srv *s)
{
	wait_go(s);
}

Test(ws_client, stopping_the_network_closes_an_open_link_once)
{
	serve(idle, false);
	char url[128];
	im_ws_call c = call_for(url_of(url, sizeof(url), "ws", "/"));
	im_ws *ws = NULL;
	cr_assert_eq(im_net_ws_open(net, &c, &ws), 0);
	cr_assert(wait_for(&R.opens, 1, 5000));
	im_net_stop(net);
	net = NULL;
	cr_expect_eq(get(&R.closes), 1, "on_close ran once, before stop returned");
	cr_expect_eq(R.code, 1001);
	cr_expect_eq(im_ws_send(ws, 0, "x", 1), IM_ECANCELED);
	im_ws_release(ws); /* still valid after the stop */
	cr_expect_eq(get(&R.closes), 1);
}

Test(ws_client, stopping_the_network_ends_a_connecting_link_once)
{
	/* Listening, never accepting: the handshake hangs. */
	S.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	cr_assert(bind(S.lfd, (void *)&a, sizeof(a)) == 0 &&
		  listen(S.lfd, 4) == 0 &&
		  getsockname(S.lfd, (void *)&a, &al) == 0);
	S.port = ntohs(a.sin_port);
	char url[128];
	im_ws_call c = call_for(url_of(url, sizeof(url), "ws", "/"));
	c.connect_timeout_ms = 30000;
	im_ws *ws = NULL;
	cr_assert_eq(im_net_ws_open(net, &c, &ws), 0);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	im_net_stop(net);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	net = NULL;
	cr_expect_eq(get(&R.closes), 1);
	cr_expect_eq(R.code, 1001);
	cr_expect_lt(t1.tv_sec - t0.tv_sec, 10,
		     "the stop waited for the connect timeout");
	im_ws_release(ws);
}

static void silent(srv *s)
{
	size_t n;
	bool fin;
	int op = read_frame(s, got_buf, sizeof(got_buf), &n, &fin);
	if (op != 9)
		srv_fail(s, "expected a keepalive ping");
	wait_go(s); /* never answers */
}

Test(ws_client, pings_when_silent_and_drops_a_link_that_does_not_answer)
{
	serve(silent, false);
	char url[128];
	im_ws_call c = call_for(url_of(url, sizeof(url), "ws", "/"));
	c.ping_interval_ms = 200;
	im_ws *ws = NULL;
	cr_assert_eq(im_net_ws_open(net, &c, &ws), 0);
	cr_assert(wait_for(&R.closes, 1, 5000), "no on_close");
	cr_expect_eq(R.code, 1006);
	cr_expect_str_eq(R.reason, "no answer to ping");
	cr_expect_eq(get(&R.opens), 1);
	im_ws_release(ws);
}

Test(ws_client, refuses_bad_calls)
{
	im_ws *ws = (im_ws *)&R;
	im_ws_call c = call_for("ws://127.0.0.1:1/");
	c.on_close = NULL;
	cr_expect_eq(im_net_ws_open(net, &c, &ws), IM_EINVAL);
	cr_expect_null(ws);
	c = call_for("http://127.0.0.1/");
	cr_expect_eq(im_net_ws_open(net, &c, &ws), IM_EINVAL);
	c = call_for(NULL);
	cr_expect_eq(im_net_ws_open(net, &c, &ws), IM_EINVAL);
	c = call_for("ws://127.0.0.1:1/");
	c.struct_size = 8;
	cr_expect_eq(im_net_ws_open(net, &c, &ws), IM_EINVAL);
	c = call_for("ws://127.0.0.1:1/");
	im_http_header h[] = {IM_HEADER("X-Bad", "a\r\nInjected: yes")};
	c.headers = h;
	c.n_headers = 1;
	cr_expect_eq(im_net_ws_open(net, &c, &ws), IM_EINVAL);
	cr_expect_eq(get(&R.closes), 0, "no link, no on_close");
}

/* A header entry of a later ABI: bigger, read by its struct_size. */
typedef struct big_header {
	im_http_header h;
	const char *later_field;
} big_header;

Test(ws_client, the_host_table_checks_calls_and_reads_headers_by_stride)
{
	const im_host *host = im_host_table(NULL);
	cr_assert(IM_HOST_HAS(host, ws_open) && IM_HOST_HAS(host, ws_release));
	serve(idle, false);
	char url[128];
	im_ws *ws = NULL;
	im_ws_call c = call_for(NULL);
	cr_expect_eq(host->ws_open(NULL, &c, &ws), IM_EINVAL, "NULL url");
	c = call_for(url_of(url, sizeof(url), "ws", "/"));
	c.on_close = NULL;
	cr_expect_eq(host->ws_open(NULL, &c, &ws), IM_EINVAL, "no on_close");
	c = call_for(url);
	c.struct_size = offsetof(im_ws_call, on_open);
	cr_expect_eq(host->ws_open(NULL, &c, &ws), IM_EINVAL, "short call");
	cr_expect_null(ws);

	im_host_bind(NULL); /* lets the host start its network */
	big_header hv[2] = {
	    {{sizeof(big_header), "X-One", "1"}, "ignored"},
	    {{sizeof(big_header), "X-Two", "2"}, "ignored"},
	};
	c = call_for(url);
	c.headers = &hv[0].h;
	c.n_headers = 2;
	int rc = host->ws_open(NULL, &c, &ws);
	cr_expect_eq(rc, 0);
	bool opened = rc == 0 && wait_for(&R.opens, 1, 5000);
	cr_expect(opened, "no on_open");
	cr_expect(strstr(S.request, "\r\nX-One: 1\r\nX-Two: 2\r\n"), "%s",
		  S.request);
	im_host_unbind(); /* stops the host's network: on_close once */
	if (opened) {
		cr_expect_eq(get(&R.closes), 1);
		cr_expect_eq(R.code, 1001);
	}
	host->ws_release(ws);
	cr_expect_eq(get(&R.closes), opened ? 1 : 0);
}
