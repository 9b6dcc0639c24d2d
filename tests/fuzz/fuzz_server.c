/* The in-process server of the HTTP-facing fuzz targets (fuzz_server.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "bus/bus.h"
#include "fuzz.h"
#include "fuzz_server.h"
#include "incident/repo.h"
#include "log/log.h"

#define KEEP_MAX ((size_t)16 << 20)
#define WAIT_MS 10000

static im_store *st;
static im_router *rt;
static im_httpd *httpd;
static im_api_ctx api;
static unsigned port;

static bool allow_all(void *app, const im_http_request *req,
		      im_http_response *resp, im_actor *who)
{
	who->id = "fuzz";
	who->name = "Fuzz";
	who->via = "api";
	return true;
}

static void stop(void)
{
	im_api_streams_close();
	im_httpd_stop(httpd);
	im_router_free(rt);
	im_store_close(st);
	httpd = NULL;
}

/* A few incidents in several states, so lists, pages and cursors have
 * rows to show. */
static void seed(void)
{
	static const char *const docs[] = {
	    "{\"title\":\"Checkout API returns 500\",\"severity\":\"SEV-1\","
	    "\"service\":\"checkout\",\"commander\":\"U1\"}",
	    "{\"title\":\"Search <slow> & \\\"odd\\\"\",\"severity\":\"SEV-3\","
	    "\"service\":\"search\",\"description\":\"p99 **2s**\"}",
	    "{\"title\":\"Payments \u00e9t\u00e9 \u2603\",\"severity\":\"SEV-2\"}",
	};
	const im_actor who = {.id = "U1", .name = "Ada", .via = "fuzz"};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		json_t *f = json_loads(docs[i], 0, NULL);
		im_write w = {0};
		im_err err = {0};
		if (!f || im_inc_declare(st, f, &who, NULL, &w, &err) != 0)
			FUZZ_FAIL("seeding incident %zu: %s", i, err.message);
		im_write_clear(&w);
		json_decref(f);
	}
	im_write w = {0};
	im_err err = {0};
	if (im_inc_transition(st, "INC-1", IM_INC_ACKNOWLEDGED, NULL, &who,
			      NULL, &w, &err) != 0)
		FUZZ_FAIL("seeding ack: %s", err.message);
	im_write_clear(&w);
	if (im_inc_note(st, "INC-2", "looking", &who, NULL, &w, &err) != 0)
		FUZZ_FAIL("seeding note: %s", err.message);
	im_write_clear(&w);
}

unsigned fz_server_start(void)
{
	if (httpd)
		return port;
	char err[512];
	im_log_set_level(IM_LOG_ERROR);
	st = im_store_open(":memory:", err, sizeof(err));
	if (!st)
		FUZZ_FAIL("store: %s", err);
	im_bus_set_start(im_events_last_seq(st));
	im_repo_set_public_url("https://im.example.com/");
	seed();
	api = (im_api_ctx){.store = st, .authorize = allow_all};
	rt = im_router_new();
	if (!rt || im_api_incident_routes(rt, &api) != 0 ||
	    im_api_stream_routes(rt, &api) != 0 ||
	    im_api_page_routes(rt, &api) != 0)
		FUZZ_FAIL("routes");
	im_httpd_opts o = {.threads = 1, .timeout_s = 10, .name = "fuzz"};
	httpd = im_httpd_start("127.0.0.1:0", &o, rt, err, sizeof(err));
	if (!httpd)
		FUZZ_FAIL("server: %s", err);
	port = im_httpd_port(httpd);
	atexit(stop);
	return port;
}

const im_router *fz_server_router(void)
{
	fz_server_start();
	return rt;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *fz_exchange(const void *req, size_t len, bool eof_after_head,
		  size_t *out_len)
{
	fz_server_start();
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0)
		FUZZ_FAIL("socket: %s", strerror(errno));
	/* Non-blocking, so that a signal (libFuzzer's timer) cannot cut
	 * the connect short. */
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		if (errno != EINPROGRESS && errno != EINTR)
			FUZZ_FAIL("connect: %s", strerror(errno));
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int e = 0;
		socklen_t el = sizeof(e);
		while (poll(&p, 1, WAIT_MS) < 0 && errno == EINTR)
			;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e)
			FUZZ_FAIL("connect: %s", strerror(e ? e : errno));
	}
	size_t cap = 4096, got = 0, sent = 0;
	char *buf = malloc(cap);
	if (!buf)
		FUZZ_FAIL("out of memory");
	bool writing = true, head_seen = false;
	long long deadline = now_ms() + WAIT_MS;
	for (;;) {
		struct pollfd p = {.fd = fd,
				   .events = POLLIN |
					     (writing && sent < len ? POLLOUT : 0)};
		long long left = deadline - now_ms();
		if (left <= 0)
			FUZZ_FAIL("the server neither answered nor closed "
				  "within %d ms (%zu of %zu bytes sent, %zu "
				  "read)",
				  WAIT_MS, sent, len, got);
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			FUZZ_FAIL("poll: %s", strerror(errno));
		if (writing && sent < len && (p.revents & POLLOUT)) {
			ssize_t n = send(fd, (const char *)req + sent,
					 len - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				writing = false; /* the server hung up */
		}
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (got + 4096 + 1 > cap && cap < KEEP_MAX + 8192) {
			char *n = realloc(buf, cap * 2);
			if (!n)
				FUZZ_FAIL("out of memory");
			buf = n;
			cap *= 2;
		}
		char sink[4096];
		bool keep = got + 4096 + 1 <= cap;
		ssize_t n = recv(fd, keep ? buf + got : sink, 4096, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			break; /* closed (or reset) */
		if (n < 0)
			continue;
		if (keep)
			got += (size_t)n;
		if (eof_after_head && !head_seen) {
			buf[got] = '\0';
			if (strstr(buf, "\r\n\r\n")) {
				head_seen = true;
				/* Let the rest of the request go out first. */
				while (writing && sent < len) {
					struct pollfd w = {.fd = fd,
							   .events = POLLOUT};
					int pr = poll(&w, 1, WAIT_MS);
					if (pr < 0 && errno == EINTR)
						continue;
					if (pr <= 0)
						break;
					ssize_t k = send(
					    fd, (const char *)req + sent,
					    len - sent, MSG_NOSIGNAL);
					if (k > 0)
						sent += (size_t)k;
					else if (k < 0 && errno != EAGAIN &&
						 errno != EINTR)
						break;
				}
				writing = false;
				shutdown(fd, SHUT_WR);
			}
		}
	}
	/* Reset rather than close: no TIME_WAIT, so a long run does not use
	 * up the ephemeral ports. */
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	buf[got] = '\0';
	*out_len = got;
	return buf;
}

int fz_status(const char *answer)
{
	if (strncmp(answer, "HTTP/1.", 7) != 0 || !answer[7] ||
	    answer[8] != ' ')
		return -1;
	int s = 0;
	for (int i = 9; i < 12; i++) {
		if (answer[i] < '0' || answer[i] > '9')
			return -1;
		s = s * 10 + (answer[i] - '0');
	}
	return s;
}

const char *fz_body(const char *answer, size_t len, size_t *body_len)
{
	const char *e = strstr(answer, "\r\n\r\n");
	if (!e)
		return NULL;
	*body_len = len - (size_t)(e + 4 - answer);
	return e + 4;
}

int fz_next_answer(const char *p, size_t len, const char **body,
		   size_t *body_len, size_t *used)
{
	const char *e = memmem(p, len, "\r\n\r\n", 4);
	if (!e)
		return 0;
	size_t head = (size_t)(e + 4 - p), rest = len - head, n = rest;
	for (const char *h = memchr(p, '\n', head); h && h < e;
	     h = memchr(h + 1, '\n', (size_t)(e - h))) {
		if (strncasecmp(h + 1, "Content-Length:", 15) == 0) {
			n = strtoull(h + 16, NULL, 10);
			if (n > rest)
				n = rest;
			break;
		}
	}
	char line[16];
	size_t k = head < sizeof(line) - 1 ? head : sizeof(line) - 1;
	memcpy(line, p, k);
	line[k] = '\0';
	*body = e + 4;
	*body_len = n;
	*used = head + n;
	return fz_status(line);
}
