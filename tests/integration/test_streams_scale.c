/* Event streams with many clients on the real `im serve`: hundreds of SSE
 * and WebSocket clients on the small per-connection memory of the stream
 * daemon all get one event, and connections beyond server.max_connections
 * get a 503 with a JSON error, counted in
 * im_http_connections_refused_total. Counts only: no timing is asserted;
 * every wait is bounded. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

static srv s;

static void setup(void)
{
	srv_init(&s);
}

static void teardown(void)
{
	srv_cleanup(&s);
}

TestSuite(streams_scale, .init = setup, .fini = teardown, .timeout = 120);

#define N_SSE 300
#define N_WS 20
#define KEEP 8192

typedef struct peer {
	int fd;
	size_t len;
	char buf[KEEP + 1];
} peer;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void want_fds(int n)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < (rlim_t)n && rl.rlim_max >= (rlim_t)n) {
		rl.rlim_cur = (rlim_t)n;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	cr_assert_geq(rl.rlim_cur, (rlim_t)n, "need %d descriptors", n);
}

/* Connects to the API port and sends `req`. */
static void open_peer(peer *p, const char *req)
{
	p->len = 0;
	p->buf[0] = '\0';
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(p->fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)s.port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(connect(p->fd, (struct sockaddr *)&a, sizeof(a)), 0,
		     "connect: %s", strerror(errno));
	cr_assert_eq(send(p->fd, req, strlen(req), MSG_NOSIGNAL),
		     (ssize_t)strlen(req));
	fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK);
}

/* Reads what each peer has (keeping the first KEEP bytes) until every
 * peer's bytes hold `what` or `ms` pass; returns how many do. */
static int wait_all(peer *p, int n, const char *what, int ms)
{
	struct pollfd *pf = calloc((size_t)n, sizeof(*pf));
	cr_assert(pf);
	long long end = now_ms() + ms;
	int have = 0;
	for (;;) {
		have = 0;
		for (int i = 0; i < n; i++) {
			bool got = strstr(p[i].buf, what) != NULL;
			have += got;
			pf[i] = (struct pollfd){.fd = got ? -1 : p[i].fd,
						.events = POLLIN};
		}
		if (have == n || now_ms() >= end)
			break;
		if (poll(pf, (nfds_t)n, 100) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char tmp[4096];
			ssize_t r = recv(p[i].fd, tmp, sizeof(tmp), 0);
			size_t room = KEEP - p[i].len;
			if (r <= 0)
				continue;
			/* Frame bytes may hold NULs: keep them as text. */
			for (ssize_t k = 0; k < r; k++)
				if (!tmp[k])
					tmp[k] = ' ';
			size_t take = (size_t)r < room ? (size_t)r : room;
			memcpy(p[i].buf + p[i].len, tmp, take);
			p[i].len += take;
			p[i].buf[p[i].len] = '\0';
		}
	}
	free(pf);
	return have;
}

static double refused_count(void)
{
	reply m = http(&s, true, "GET", "/metrics", NULL, 0, NULL);
	const char *key = "im_http_connections_refused_total{reason=\"limit\"} ";
	const char *at = m.body ? strstr(m.body, key) : NULL;
	double v = at ? atof(at + strlen(key)) : 0;
	reply_free(&m);
	return v;
}

#define SSE_REQ                                                            \
	"GET /api/v1/events?type=im.incident.declare HTTP/1.1\r\n"          \
	"Host: 127.0.0.1\r\n\r\n"
#define WS_REQ                                                             \
	"GET /api/v1/ws?type=im.incident.declare HTTP/1.1\r\n"              \
	"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"  \
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                   \
	"Sec-WebSocket-Version: 13\r\n\r\n"

Test(streams_scale, hundreds_of_sse_and_ws_clients_on_small_pools_get_one_event)
{
	want_fds(N_SSE + N_WS + 64);
	/* Smaller than the default: the stream requests still fit. */
	srv_conf(&s, "10-scale.yaml",
		 "server:\n  stream_memory: 3KiB\n  max_connections: 1000\n");
	srv_must_start(&s);
	peer *sse = calloc(N_SSE, sizeof(*sse)), *ws = calloc(N_WS, sizeof(*ws));
	cr_assert(sse && ws);
	for (int i = 0; i < N_SSE; i++)
		open_peer(&sse[i], SSE_REQ);
	for (int i = 0; i < N_WS; i++)
		open_peer(&ws[i], WS_REQ);
	cr_assert_eq(wait_all(sse, N_SSE, ": subscribed", 30000), N_SSE);
	cr_assert_eq(wait_all(ws, N_WS, "HTTP/1.1 101", 30000), N_WS);
	const char *body = "{\"title\":\"fan-out\",\"severity\":\"SEV-2\"}";
	reply r = http(&s, false, "POST", "/api/v1/incidents", body,
		       strlen(body),
		       (const char *const[]){"Content-Type: application/json",
					     NULL});
	cr_assert_eq(r.status, 201, "%s", r.body);
	reply_free(&r);
	cr_expect_eq(wait_all(sse, N_SSE, "event: im.incident.declare", 30000),
		     N_SSE);
	cr_expect_eq(wait_all(ws, N_WS, "\"type\":\"im.incident.declare\"",
			      30000),
		     N_WS);
	for (int i = 0; i < N_SSE; i++)
		close(sse[i].fd);
	for (int i = 0; i < N_WS; i++)
		close(ws[i].fd);
	free(sse);
	free(ws);
	srv_must_stop(&s);
}

#define LIMIT 40
#define OVER 10

Test(streams_scale, connections_beyond_the_limit_get_503_and_are_counted)
{
	want_fds(LIMIT + OVER + 64);
	srv_conf(&s, "10-limit.yaml", "server:\n  max_connections: %d\n",
		 LIMIT);
	srv_must_start(&s);
	double before = refused_count();
	peer *held = calloc(LIMIT, sizeof(*held)),
	     *over = calloc(OVER, sizeof(*over));
	cr_assert(held && over);
	for (int i = 0; i < LIMIT; i++)
		open_peer(&held[i], SSE_REQ);
	cr_assert_eq(wait_all(held, LIMIT, ": subscribed", 30000), LIMIT);
	for (int i = 0; i < OVER; i++)
		open_peer(&over[i], "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_expect_eq(wait_all(over, OVER, "\"too_many_connections\"", 30000),
		     OVER);
	for (int i = 0; i < OVER; i++) {
		cr_expect(!strncmp(over[i].buf, "HTTP/1.1 503 ", 13), "%s",
			  over[i].buf);
		close(over[i].fd);
	}
	cr_expect_geq(refused_count() - before, OVER);
	/* Room again once the streams are gone. */
	for (int i = 0; i < LIMIT; i++)
		close(held[i].fd);
	int status = 0;
	for (int i = 0; i < 100 && status != 200; i++) {
		reply h = http(&s, false, "GET", "/health", NULL, 0, NULL);
		status = (int)h.status;
		reply_free(&h);
		if (status != 200)
			sleep_ms(50);
	}
	cr_expect_eq(status, 200);
	free(held);
	free(over);
	srv_must_stop(&s);
}
