/* Fan-out latency of the event streams: opens N SSE connections
 * (/api/v1/events) and M WebSocket connections (/api/v1/ws, a real
 * handshake; frames read as they come) to a running server, waits until
 * every one is subscribed (SSE: its ": subscribed" line; WebSocket: the
 * 101), POSTs a declare and times, per client, the way from sending the
 * POST to reading the event. Several rounds; loopback only, bounded in
 * clients and time.
 * usage: bench-streams PORT SERVER_PID [SSE=1000] [ROUNDS=5] [WS=0] [TOKEN]
 * prints RESULT lines (latencies in ms, by kind; RSS of SERVER_PID in
 * kB). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"

#define MAX_CLIENTS 20000
#define DEADLINE_MS 30000 /* per phase */
#define TAIL 64 /* longer than what is searched for */

typedef struct client {
	int fd;
	bool ws;
	bool subscribed, got;
	char tail[TAIL + 1]; /* the last bytes, for matches across reads */
	double at_ms;
} client;

static unsigned port;
static const char *token = "";

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void raise_nofile(int clients)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rlim_t want = (rlim_t)clients + 64;
	if (want > rl.rlim_max)
		want = rl.rlim_max;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = want;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static bool open_client(client *c, int ep)
{
	char req[1400];
	c->fd = dial();
	if (c->fd < 0)
		return false;
	int n = snprintf(req, sizeof(req),
			 "GET /api/v1/%s?type=im.incident.declare "
			 "HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s%s\r\n",
			 c->ws ? "ws" : "events",
			 c->ws ? "Upgrade: websocket\r\nConnection: Upgrade\r\n"
				 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
				 "Sec-WebSocket-Version: 13\r\n"
			       : "",
			 *token ? "Authorization: Bearer " : "", token,
			 *token ? "\r\n" : "");
	if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		return false;
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) == 0;
}

/* Reads what is there; marks subscription and the awaited event. */
static void on_readable(client *c, double now)
{
	char buf[TAIL + 16384];
	for (;;) {
		size_t tl = strlen(c->tail);
		memcpy(buf, c->tail, tl);
		ssize_t n = recv(c->fd, buf + tl, sizeof(buf) - tl - 1, 0);
		if (n <= 0)
			return;
		/* WebSocket frame headers may hold NUL bytes. */
		for (size_t i = tl; i < tl + (size_t)n; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[tl + (size_t)n] = '\0';
		if (!c->subscribed &&
		    strstr(buf, c->ws ? "HTTP/1.1 101 " : ": subscribed"))
			c->subscribed = true;
		if (!c->got &&
		    strstr(buf, c->ws ? "\"type\":\"im.incident.declare\""
				      : "event: im.incident.declare\n")) {
			c->got = true;
			c->at_ms = now;
		}
		size_t all = tl + (size_t)n, keep = all < TAIL ? all : TAIL;
		memcpy(c->tail, buf + all - keep, keep);
		c->tail[keep] = '\0';
	}
}

/* Runs the event loop until `done` clients are counted or time is up. */
static int run_until(int ep, client *cl, int n, bool want_event)
{
	double end = now_ms() + DEADLINE_MS;
	int count = 0;
	struct epoll_event evs[256];
	while (now_ms() < end) {
		count = 0;
		for (int i = 0; i < n; i++)
			count += want_event ? cl[i].got : cl[i].subscribed;
		if (count == n)
			break;
		int k = epoll_wait(ep, evs, 256, 100);
		double now = now_ms();
		for (int i = 0; i < k; i++)
			on_readable(evs[i].data.ptr, now);
	}
	return count;
}

static bool post_declare(int round)
{
	char body[256], req[1600], ans[512];
	int bl = snprintf(body, sizeof(body),
			  "{\"title\":\"bench fan-out %d\",\"severity\":"
			  "\"SEV-2\"}",
			  round);
	int n = snprintf(req, sizeof(req),
			 "POST /api/v1/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			 "Content-Type: application/json\r\nContent-Length: %d"
			 "\r\nConnection: close\r\n%s%s%s\r\n%s",
			 bl, *token ? "Authorization: Bearer " : "", token,
			 *token ? "\r\n" : "", body);
	int fd = dial();
	bool ok = fd >= 0 && send(fd, req, (size_t)n, MSG_NOSIGNAL) == n;
	ssize_t got = ok ? recv(fd, ans, sizeof(ans) - 1, 0) : -1;
	if (fd >= 0)
		close(fd);
	return got > 12 && memcmp(ans + 9, "201", 3) == 0;
}

static double pct(const double *v, int n, double p)
{
	int i = (int)(p * (n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

/* p50/p99/max of the latencies of clients [from, to) over all rounds. */
static void report(const char *kind, const double *lat, int from, int to,
		   int rounds, int missed, int pid)
{
	int m = 0, n = to - from;
	double *v = calloc((size_t)n * (size_t)rounds, sizeof(*v));
	if (!v)
		return;
	for (int i = from; i < to; i++)
		for (int r = 0; r < rounds; r++)
			if (lat[(size_t)i * (size_t)rounds + (size_t)r] >= 0)
				v[m++] = lat[(size_t)i * (size_t)rounds +
					     (size_t)r];
	qsort(v, (size_t)m, sizeof(*v), cmp);
	printf("RESULT %s_fanout clients=%d rounds=%d samples=%d missed=%d "
	       "p50_ms=%.2f p99_ms=%.2f max_ms=%.2f rss_kb=%ld\n",
	       kind, n, rounds, m, missed, m ? pct(v, m, .5) : -1,
	       m ? pct(v, m, .99) : -1, m ? v[m - 1] : -1, rss_kb(pid));
	free(v);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench-streams PORT SERVER_PID [SSE] "
				"[ROUNDS] [WS] [TOKEN]\n");
		return 2;
	}
	port = (unsigned)atoi(argv[1]);
	int pid = atoi(argv[2]);
	int n_sse = argc > 3 ? atoi(argv[3]) : 1000;
	int rounds = argc > 4 ? atoi(argv[4]) : 5;
	int n_ws = argc > 5 ? atoi(argv[5]) : 0;
	token = argc > 6 ? argv[6] : "";
	int n = n_sse + n_ws;
	if (n_sse < 0 || n_ws < 0 || n < 1 || n > MAX_CLIENTS || rounds < 1 ||
	    rounds > 100)
		return 2;
	raise_nofile(n);
	long rss0 = rss_kb(pid);
	client *cl = calloc((size_t)n, sizeof(*cl));
	/* lat[i * rounds + r]: client i in round r, -1 when missed */
	double *lat = calloc((size_t)n * (size_t)rounds, sizeof(*lat));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!cl || !lat || ep < 0)
		return 1;
	double t = now_ms();
	for (int i = 0; i < n; i++) {
		cl[i].ws = i >= n_sse;
		if (!open_client(&cl[i], ep)) {
			fprintf(stderr, "client %d: %s\n", i, strerror(errno));
			return 1;
		}
	}
	int subs = run_until(ep, cl, n, false);
	printf("RESULT subscribe sse=%d ws=%d subscribed=%d ms=%.1f "
	       "rss_kb_before=%ld rss_kb_subscribed=%ld\n",
	       n_sse, n_ws, subs, now_ms() - t, rss0, rss_kb(pid));
	if (subs != n)
		return 1;
	int missed_sse = 0, missed_ws = 0;
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < n; i++) {
			cl[i].got = false;
			cl[i].tail[0] = '\0';
		}
		double t0 = now_ms();
		if (!post_declare(r)) {
			fprintf(stderr, "POST /api/v1/incidents failed\n");
			return 1;
		}
		run_until(ep, cl, n, true);
		for (int i = 0; i < n; i++) {
			lat[(size_t)i * (size_t)rounds + (size_t)r] =
			    cl[i].got ? cl[i].at_ms - t0 : -1;
			if (!cl[i].got)
				*(cl[i].ws ? &missed_ws : &missed_sse) += 1;
		}
	}
	if (n_sse)
		report("sse", lat, 0, n_sse, rounds, missed_sse, pid);
	if (n_ws)
		report("ws", lat, n_sse, n, rounds, missed_ws, pid);
	for (int i = 0; i < n; i++)
		close(cl[i].fd);
	free(cl);
	free(lat);
	close(ep);
	return missed_sse + missed_ws ? 1 : 0;
}
