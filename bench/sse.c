/* Fan-out latency of /api/v1/events: opens N SSE connections to a running
 * server, waits until every one is subscribed, POSTs a declare and times,
 * per client, the way from sending the POST to reading the event. Several
 * rounds; loopback only, bounded in clients and time.
 * usage: bench-sse PORT SERVER_PID [CLIENTS=1000] [ROUNDS=5] [TOKEN]
 * prints RESULT lines (latencies in ms, RSS of SERVER_PID in kB). */
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

#define MAX_CLIENTS 20000
#define DEADLINE_MS 30000 /* per phase */
#define TAIL 64

typedef struct client {
	int fd;
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
	char req[1200];
	c->fd = dial();
	if (c->fd < 0)
		return false;
	int n = snprintf(req, sizeof(req),
			 "GET /api/v1/events?type=im.incident.declare "
			 "HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s\r\n",
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
		buf[tl + (size_t)n] = '\0';
		if (!c->subscribed && strstr(buf, ": subscribed"))
			c->subscribed = true;
		if (!c->got && strstr(buf, "event: im.incident.declare\n")) {
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

static long rss_kb(int pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double pct(const double *v, int n, double p)
{
	int i = (int)(p * (n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench-sse PORT SERVER_PID [CLIENTS] "
				"[ROUNDS] [TOKEN]\n");
		return 2;
	}
	port = (unsigned)atoi(argv[1]);
	int pid = atoi(argv[2]);
	int n = argc > 3 ? atoi(argv[3]) : 1000;
	int rounds = argc > 4 ? atoi(argv[4]) : 5;
	token = argc > 5 ? argv[5] : "";
	if (n < 1 || n > MAX_CLIENTS || rounds < 1 || rounds > 100)
		return 2;
	raise_nofile(n);
	long rss0 = rss_kb(pid);
	client *cl = calloc((size_t)n, sizeof(*cl));
	double *lat = calloc((size_t)n * (size_t)rounds, sizeof(*lat));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!cl || !lat || ep < 0)
		return 1;
	double t = now_ms();
	for (int i = 0; i < n; i++)
		if (!open_client(&cl[i], ep)) {
			fprintf(stderr, "client %d: %s\n", i, strerror(errno));
			return 1;
		}
	int subs = run_until(ep, cl, n, false);
	printf("RESULT sse_subscribe clients=%d subscribed=%d ms=%.1f "
	       "rss_kb_before=%ld rss_kb_subscribed=%ld\n",
	       n, subs, now_ms() - t, rss0, rss_kb(pid));
	if (subs != n)
		return 1;
	int m = 0, missed = 0;
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
		int got = run_until(ep, cl, n, true);
		missed += n - got;
		for (int i = 0; i < n; i++)
			if (cl[i].got)
				lat[m++] = cl[i].at_ms - t0;
	}
	qsort(lat, (size_t)m, sizeof(*lat), cmp);
	printf("RESULT sse_fanout clients=%d rounds=%d samples=%d missed=%d "
	       "p50_ms=%.2f p99_ms=%.2f max_ms=%.2f rss_kb=%ld\n",
	       n, rounds, m, missed, m ? pct(lat, m, .5) : -1,
	       m ? pct(lat, m, .99) : -1, m ? lat[m - 1] : -1, rss_kb(pid));
	for (int i = 0; i < n; i++)
		close(cl[i].fd);
	free(cl);
	free(lat);
	close(ep);
	return missed ? 1 : 0;
}
