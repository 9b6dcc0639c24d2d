/*
 * Fuzz target ws_client: what a hostile server sends to the host's
 * WebSocket client (core/net/ws.c, the host's ws_* calls) once it has
 * accepted the TCP connection.
 *
 * net.c and ws.c are compiled into the target (tests/fuzz/meson.build),
 * so no imnet.so is loaded. LLVMFuzzerInitialize starts the network
 * thread (im_net_start) and a listener thread on 127.0.0.1. For each
 * input the target opens ws://127.0.0.1:<port>/ (max_message 4 KiB, 2 s
 * connect timeout, no keepalive); the listener accepts, reads the
 * client's handshake request up to its blank line and answers with the
 * input, where
 *   {ACCEPT}  is replaced by the right Sec-WebSocket-Accept for the
 *             request's Sec-WebSocket-Key (without it no handshake can
 *             succeed), and
 *   {PAUSE}   is dropped: what came before it is sent, then the listener
 *             waits 3 ms, so that frames also come through the socket
 *             and cut at any byte, not only with the handshake answer
 *             (at most 4 pauses count; later ones are just dropped).
 * Then it shuts its side down (the client reads an end of stream after
 * the input) and reads whatever the client sends until the client closes.
 *
 * WS_CLIENT_VERBOSE=1 prints what each input led to (opened, messages,
 * close code and reason).
 *
 * Contract (im/host.h, im_ws_call): on_close runs exactly once, within
 * 5 s, with a code in 1000..4999 (1006 for a failure) and a reason that
 * is not "connection lost" (this server causes no I/O error); on_open
 * at most once, before any message, and only after an answer whose head
 * RFC 6455 4.1 accepts (101 status line, Upgrade: websocket, Connection:
 * Upgrade, the right Sec-WebSocket-Accept); messages only between on_open
 * and on_close, each at most max_message bytes, NUL-terminated, no longer
 * than the input; no callback after im_ws_release; every callback for the
 * link we opened.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fuzz.h"
#include "net/net.h"

#define MAX_MESSAGE 4096
#define CLOSE_WAIT_MS 5000
#define PAUSE_MS 3
#define MAX_PAUSES 4

static const char ACCEPT[] = "{ACCEPT}";
static const char PAUSE[] = "{PAUSE}";

static im_net *net;
static bool verbose; /* WS_CLIENT_VERBOSE=1: one line per input */
static int lfd = -1;
static char url[64];

/* The listener's job: one connection per input. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static const uint8_t *job_data; /* under mu */
static size_t job_size;
static bool job_posted, job_done;

/* What the callbacks saw, under mu. */
static struct {
	uintptr_t gen; /* the current link's userdata */
	im_ws *ws;
	int opens, closes, messages;
	int code;
	bool released;
	size_t size;
} seen;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for fd until `deadline`: true when ready. */
static bool wait_for(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return false;
		struct pollfd pf = {.fd = fd, .events = events};
		int n = poll(&pf, 1, (int)left);
		if (n > 0)
			return true;
		if (n < 0 && errno != EINTR)
			return false;
	}
}

static bool send_all(int fd, const void *p, size_t n, long long deadline)
{
	const char *c = p;
	while (n) {
		ssize_t k = send(fd, c, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k > 0) {
			c += k;
			n -= (size_t)k;
		} else if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (!wait_for(fd, POLLOUT, deadline))
				return false;
		} else {
			return false; /* the client gave up: fine */
		}
	}
	return true;
}

/* The accept value for the request's key, or false. */
static bool accept_value(const char *req, char out[64])
{
	static const char name[] = "\r\nSec-WebSocket-Key: ";
	const char *k = strstr(req, name);
	if (!k)
		return false;
	k += sizeof(name) - 1;
	size_t kl = strcspn(k, "\r\n");
	char buf[128];
	if (kl > 40)
		return false;
	memcpy(buf, k, kl);
	memcpy(buf + kl, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 37);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (!EVP_Digest(buf, strlen(buf), md, &mdlen, EVP_sha1(), NULL) ||
	    mdlen != 20)
		return false;
	EVP_EncodeBlock((unsigned char *)out, md, 20);
	return true;
}

/* The answer as sent (markers handled), kept for the handshake check:
 * written by the listener, read once the job is done (under mu). */
static char *sent;
static size_t sent_len;
static char sent_accept[64];

/* Builds the answer from the input, then sends it, pausing where the
 * input says. */
static void answer(int fd, const uint8_t *data, size_t size,
		   const char *acc, long long deadline)
{
	size_t al = sizeof(ACCEPT) - 1, pl = sizeof(PAUSE) - 1;
	size_t accl = strlen(acc);
	size_t pause_at[MAX_PAUSES], pauses = 0;
	/* {ACCEPT} (8 bytes) becomes 28: at most 3.5 times the input. */
	char *out = malloc(size * 4 + 1);
	FUZZ_CHECK(out, "out of memory");
	size_t n = 0;
	for (size_t i = 0; i < size;) {
		if (size - i >= al && !memcmp(data + i, ACCEPT, al)) {
			memcpy(out + n, acc, accl);
			n += accl;
			i += al;
		} else if (size - i >= pl && !memcmp(data + i, PAUSE, pl)) {
			if (pauses < MAX_PAUSES)
				pause_at[pauses++] = n;
			i += pl;
		} else {
			out[n++] = (char)data[i++];
		}
	}
	size_t from = 0;
	for (size_t k = 0; k <= pauses; k++) {
		size_t to = k < pauses ? pause_at[k] : n;
		if (!send_all(fd, out + from, to - from, deadline))
			break;
		if (k < pauses)
			nanosleep(&(struct timespec){.tv_nsec =
							 PAUSE_MS * 1000000L},
				  NULL);
		from = to;
	}
	pthread_mutex_lock(&mu);
	free(sent);
	sent = out;
	sent_len = n;
	snprintf(sent_accept, sizeof(sent_accept), "%s", acc);
	pthread_mutex_unlock(&mu);
}

static void serve(int fd, const uint8_t *data, size_t size)
{
	long long deadline = now_ms() + CLOSE_WAIT_MS;
	char req[8192];
	size_t got = 0;
	req[0] = '\0';
	while (!strstr(req, "\r\n\r\n") && got < sizeof(req) - 1) {
		if (!wait_for(fd, POLLIN, deadline))
			FUZZ_FAIL("no handshake request from the client");
		ssize_t k = recv(fd, req + got, sizeof(req) - 1 - got, 0);
		if (k <= 0)
			FUZZ_FAIL("the client left before its request ended");
		got += (size_t)k;
		req[got] = '\0';
	}
	char acc[64] = "";
	FUZZ_CHECK(accept_value(req, acc), "no usable key in:\n%s", req);
	answer(fd, data, size, acc, deadline);
	shutdown(fd, SHUT_WR);
	/* Until the client closes (its close reply, if any, is dropped). */
	char sink[4096];
	while (wait_for(fd, POLLIN, deadline) &&
	       recv(fd, sink, sizeof(sink), 0) > 0)
		;
}

static void *listener(void *arg)
{
	for (;;) {
		pthread_mutex_lock(&mu);
		while (!job_posted)
			pthread_cond_wait(&cv, &mu);
		const uint8_t *data = job_data;
		size_t size = job_size;
		pthread_mutex_unlock(&mu);

		if (!wait_for(lfd, POLLIN, now_ms() + CLOSE_WAIT_MS))
			FUZZ_FAIL("the client did not connect");
		int fd = accept(lfd, NULL, NULL);
		FUZZ_CHECK(fd >= 0, "accept: %s", strerror(errno));
		serve(fd, data, size);
		close(fd);

		pthread_mutex_lock(&mu);
		job_posted = false;
		job_done = true;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *v = getenv("WS_CLIENT_VERBOSE");
	verbose = v && *v == '1';
	FUZZ_CHECK(im_net_start(&net) == 0, "im_net_start failed");
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	FUZZ_CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sl) == 0 &&
		       listen(lfd, 8) == 0 &&
		       getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0,
		   "cannot listen on 127.0.0.1: %s", strerror(errno));
	snprintf(url, sizeof(url), "ws://127.0.0.1:%u/fuzz",
		 (unsigned)ntohs(sa.sin_port));
	pthread_t t;
	FUZZ_CHECK(pthread_create(&t, NULL, listener, NULL) == 0,
		   "cannot start the listener");
	pthread_detach(t);
	return 0;
}

/* --- the link's callbacks (network thread) ------------------------------ */

static void saw(void *ud, im_ws *ws)
{
	FUZZ_CHECK((uintptr_t)ud == seen.gen,
		   "a callback of an earlier link (%zu, now %zu)",
		   (size_t)(uintptr_t)ud, (size_t)seen.gen);
	FUZZ_CHECK(!seen.released, "a callback after im_ws_release");
	FUZZ_CHECK(!seen.ws || seen.ws == ws, "a callback for another link");
	seen.ws = ws;
}

static void on_open(void *ud, im_ws *ws)
{
	pthread_mutex_lock(&mu);
	saw(ud, ws);
	FUZZ_CHECK(seen.opens == 0, "on_open twice");
	FUZZ_CHECK(seen.closes == 0, "on_open after on_close");
	seen.opens++;
	pthread_mutex_unlock(&mu);
}

static void on_message(void *ud, im_ws *ws, int binary, const void *data,
		       size_t len)
{
	pthread_mutex_lock(&mu);
	saw(ud, ws);
	FUZZ_CHECK(seen.opens == 1, "a message before on_open");
	FUZZ_CHECK(seen.closes == 0, "a message after on_close");
	FUZZ_CHECK(binary == 0 || binary == 1, "binary flag %d", binary);
	FUZZ_CHECK(len <= MAX_MESSAGE, "a message of %zu bytes (max %d)", len,
		   MAX_MESSAGE);
	FUZZ_CHECK(len <= seen.size, "a message of %zu bytes from %zu of input",
		   len, seen.size);
	FUZZ_CHECK(data && ((const char *)data)[len] == '\0',
		   "a message not NUL-terminated");
	seen.messages++;
	pthread_mutex_unlock(&mu);
}

static void on_close(void *ud, im_ws *ws, int code, const char *reason)
{
	pthread_mutex_lock(&mu);
	saw(ud, ws);
	FUZZ_CHECK(seen.closes == 0, "on_close twice (%d then %d)", seen.code,
		   code);
	FUZZ_CHECK(code >= 1000 && code <= 4999, "close code %d", code);
	FUZZ_CHECK(reason && strlen(reason) < 256, "close reason %s",
		   reason ? "too long" : "NULL");
	/* This server never resets the connection (it reads until the
	 * client closes), so no I/O error can end the link: a peer that
	 * breaks the protocol must not be reported as a lost connection. */
	FUZZ_CHECK(strcmp(reason, "connection lost") != 0,
		   "close %d \"connection lost\" without an I/O error", code);
	seen.closes++;
	seen.code = code;
	if (verbose)
		fprintf(stderr, "ws_client: %d open, %d messages, close %d %s\n",
			seen.opens, seen.messages, code, reason);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* The value of a header line `line` (length n) named `name`, trimmed. */
static bool header_value(const char *line, size_t n, const char *name,
			 const char **v, size_t *vl)
{
	size_t nl = strlen(name);
	if (n <= nl || strncasecmp(line, name, nl) || line[nl] != ':')
		return false;
	size_t a = nl + 1, b = n;
	while (a < b && (line[a] == ' ' || line[a] == '\t'))
		a++;
	while (b > a && (line[b - 1] == ' ' || line[b - 1] == '\t'))
		b--;
	*v = line + a;
	*vl = b - a;
	return true;
}

/* Whether the comma-separated list v holds `token` (any case). */
static bool list_has(const char *v, size_t n, const char *token)
{
	size_t tl = strlen(token);
	for (size_t i = 0; i <= n;) {
		size_t e = i;
		while (e < n && v[e] != ',')
			e++;
		size_t a = i, b = e;
		while (a < b && (v[a] == ' ' || v[a] == '\t'))
			a++;
		while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
			b--;
		if (b - a == tl && !strncasecmp(v + a, token, tl))
			return true;
		i = e + 1;
	}
	return false;
}

/* Could a client that follows RFC 6455 4.1 accept this answer? Its head
 * (up to the first blank line) must start with a 101 status line and
 * hold Upgrade: websocket, Connection with the upgrade token and the
 * right Sec-WebSocket-Accept (in any of their lines: a necessary
 * condition, a client may be stricter). NULL if so, else what is
 * missing. */
static const char *handshake_flaw(const char *a, size_t n, const char *acc)
{
	const char *end = memmem(a, n, "\r\n\r\n", 4);
	if (!end)
		return "no end of the head";
	size_t hn = (size_t)(end - a) + 2;
	if (hn < 13 || memcmp(a, "HTTP/1.1 101", 12) ||
	    (a[12] != ' ' && a[12] != '\r'))
		return "no 101 status line";
	bool upgrade = false, connection = false, accept = false;
	const char *l = memmem(a, hn, "\r\n", 2); /* the status line's */
	for (l += 2; l < a + hn;) {
		const char *e = memmem(l, (size_t)(a + hn - l), "\r\n", 2);
		size_t ll = (size_t)(e - l);
		const char *v;
		size_t vl;
		if (header_value(l, ll, "Upgrade", &v, &vl))
			upgrade |= vl == 9 && !strncasecmp(v, "websocket", 9);
		if (header_value(l, ll, "Connection", &v, &vl))
			connection |= list_has(v, vl, "upgrade");
		if (header_value(l, ll, "Sec-WebSocket-Accept", &v, &vl))
			accept |= vl == strlen(acc) && !memcmp(v, acc, vl);
		l = e + 2;
	}
	return !upgrade	      ? "no Upgrade: websocket"
	       : !connection ? "no Connection: Upgrade"
	       : !accept     ? "no right Sec-WebSocket-Accept"
			     : NULL;
}

static bool wait_until(bool *flag_or_null, long long deadline)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long long left = deadline - now_ms();
	if (left < 0)
		left = 0;
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (left % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (flag_or_null ? !*flag_or_null : seen.closes == 0)
		if (pthread_cond_timedwait(&cv, &mu, &ts) == ETIMEDOUT)
			return flag_or_null ? *flag_or_null : seen.closes > 0;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uintptr_t gen;
	pthread_mutex_lock(&mu);
	memset(&seen, 0, sizeof(seen));
	seen.gen = ++gen;
	seen.size = size;
	job_data = data;
	job_size = size;
	job_done = false;
	job_posted = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);

	im_ws_call call = {
	    .struct_size = sizeof(call),
	    .url = url,
	    .connect_timeout_ms = 2000,
	    .max_message = MAX_MESSAGE,
	    .on_open = on_open,
	    .on_message = on_message,
	    .on_close = on_close,
	    .userdata = (void *)gen,
	};
	im_ws *ws = NULL;
	int rc = im_net_ws_open(net, &call, &ws);
	FUZZ_CHECK(rc == 0 && ws, "im_net_ws_open: %d", rc);

	pthread_mutex_lock(&mu);
	long long deadline = now_ms() + CLOSE_WAIT_MS;
	FUZZ_CHECK(wait_until(NULL, deadline), "no on_close in %d ms",
		   CLOSE_WAIT_MS);
	FUZZ_CHECK(seen.ws == ws, "callbacks for another link");
	/* The listener is done with `data` before the input goes. */
	FUZZ_CHECK(wait_until(&job_done, deadline + CLOSE_WAIT_MS),
		   "the client did not close its socket");
	if (seen.opens) {
		const char *flaw = handshake_flaw(sent, sent_len, sent_accept);
		FUZZ_CHECK(!flaw, "on_open after an answer with %s:\n%.*s",
			   flaw, (int)(sent_len < 400 ? sent_len : 400), sent);
	}
	pthread_mutex_unlock(&mu);

	im_ws_release(ws);
	pthread_mutex_lock(&mu);
	FUZZ_CHECK(seen.closes == 1, "on_close ran %d times", seen.closes);
	seen.released = true; /* a late callback of this link fails */
	pthread_mutex_unlock(&mu);
	return 0;
}
