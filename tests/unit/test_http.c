/* core/http streams and upgrades against a real im_httpd on loopback:
 * the producer is asked for bytes only when there is reason to (no busy
 * loop while idle), wakes resume a suspended connection, closed() runs
 * exactly once, and the server stops with streams still suspended. */
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "http/http.h"
#include "metrics/metrics.h"

static im_router *router;
static im_httpd *httpd;

/* What the stream handler's producer does, set by each test. */
static atomic_int calls, closes, ready;
static atomic_bool end_after;
static im_http_stream *_Atomic current;

static long produce(void *ud, char *buf, size_t max)
{
	atomic_fetch_add(&calls, 1);
	if (atomic_exchange(&ready, 0)) {
		memcpy(buf, "data: x\n\n", 9);
		return 9;
	}
	return atomic_load(&end_after) ? -1 : 0;
}

static void closed(void *ud)
{
	atomic_fetch_add(&closes, 1);
	atomic_store(&current, NULL);
}

static int stream_handler(void *ud, const im_http_request *req,
			  im_http_response *resp)
{
	im_http_stream_ops ops = {.produce = produce, .closed = closed};
	im_http_stream *s = im_resp_stream(resp, 200, "text/event-stream",
					   &ops, NULL);
	if (!s)
		return IM_ENOMEM;
	atomic_store(&current, s);
	return im_resp_header(resp, "X-Kind", "stream");
}

static void on_upgraded(void *ud, im_http_upgrade *u, int fd,
			const char *extra, size_t len)
{
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "hi %.*s", (int)len, extra);
	if (send(fd, msg, (size_t)n, MSG_NOSIGNAL) != n)
		cr_log_warn("upgrade: short send");
	im_http_upgrade_close(u);
}

static int upgrade_handler(void *ud, const im_http_request *req,
			   im_http_response *resp)
{
	return im_resp_upgrade(resp, "echo", on_upgraded, NULL, NULL);
}

static void setup(void)
{
	atomic_store(&calls, 0);
	atomic_store(&closes, 0);
	atomic_store(&ready, 0);
	atomic_store(&end_after, false);
	atomic_store(&current, NULL);
	router = im_router_new();
	im_router_add(router, "GET", "/s", stream_handler, NULL);
	im_router_add(router, "GET", "/up", upgrade_handler, NULL);
	char err[256];
	im_httpd_opts o = {.threads = 2, .name = "test"};
	httpd = im_httpd_start("127.0.0.1:0", &o, router, err, sizeof(err));
	cr_assert(httpd, "%s", err);
}

static void teardown(void)
{
	im_httpd_stop(httpd);
	im_router_free(router);
	im_metrics_reset();
}

TestSuite(http, .init = setup, .fini = teardown, .timeout = 30);

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int get(const char *path)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {
	    .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)im_httpd_port(httpd)),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	char req[256];
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: x\r\n\r\nping", path);
	cr_assert_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
	return fd;
}

/* Reads until `needle` shows up (true) or `ms` pass. */
static bool read_for(int fd, char *buf, size_t cap, const char *needle,
		     int ms)
{
	size_t len = strlen(buf);
	for (int waited = 0; !strstr(buf, needle) && waited < ms;
	     waited += 20) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 20) <= 0)
			continue;
		ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
	}
	return strstr(buf, needle) != NULL;
}

static bool wait_until(atomic_int *v, int want, int ms)
{
	for (int i = 0; i < ms / 10 && atomic_load(v) != want; i++)
		sleep_ms(10);
	return atomic_load(v) == want;
}

Test(http, stream_sends_headers_then_what_the_producer_makes)
{
	int fd = get("/s");
	char buf[4096] = "";
	cr_assert(read_for(fd, buf, sizeof(buf), "\r\n\r\n", 2000), "%s", buf);
	cr_expect(strstr(buf, "HTTP/1.1 200"), "%s", buf);
	cr_expect(strcasestr(buf, "Content-Type: text/event-stream"));
	cr_expect(strcasestr(buf, "X-Kind: stream"));
	cr_expect(strcasestr(buf, "Transfer-Encoding: chunked"), "%s", buf);
	atomic_store(&ready, 1);
	im_http_stream_wake(atomic_load(&current));
	cr_expect(read_for(fd, buf, sizeof(buf), "data: x\n\n", 2000), "%s",
		  buf);
	atomic_store(&end_after, true);
	im_http_stream_wake(atomic_load(&current));
	/* The chunked end: a zero-size chunk. */
	cr_expect(read_for(fd, buf, sizeof(buf), "\r\n0\r\n\r\n", 2000),
		  "%s", buf);
	cr_expect(wait_until(&closes, 1, 2000));
	close(fd);
}

Test(http, idle_stream_is_suspended_not_polled)
{
	int fd = get("/s");
	char buf[4096] = "";
	cr_assert(read_for(fd, buf, sizeof(buf), "\r\n\r\n", 2000));
	sleep_ms(300);
	int idle = atomic_load(&calls);
	cr_expect(idle <= 3, "the producer ran %d times while idle", idle);
	for (int i = 0; i < 20; i++) {
		atomic_store(&ready, 1);
		im_http_stream_wake(atomic_load(&current));
		char want[16];
		buf[0] = '\0';
		snprintf(want, sizeof(want), "data: x");
		cr_assert(read_for(fd, buf, sizeof(buf), want, 2000),
			  "wake %d lost", i);
	}
	sleep_ms(100);
	cr_expect(atomic_load(&calls) <= idle + 45, "%d calls",
		  atomic_load(&calls));
	close(fd);
}

Test(http, abort_closes_a_suspended_stream_once)
{
	int fd = get("/s");
	char buf[4096] = "";
	cr_assert(read_for(fd, buf, sizeof(buf), "\r\n\r\n", 2000));
	sleep_ms(50);
	im_http_stream_abort(atomic_load(&current));
	cr_expect(wait_until(&closes, 1, 2000), "closed() did not run");
	struct pollfd p = {.fd = fd, .events = POLLIN};
	cr_expect(poll(&p, 1, 2000) == 1);
	cr_expect(recv(fd, buf, sizeof(buf), 0) <= 0, "still open");
	sleep_ms(50);
	cr_expect_eq(atomic_load(&closes), 1);
	close(fd);
}

Test(http, stops_with_streams_suspended)
{
	int fd[3];
	char buf[4096];
	for (int i = 0; i < 3; i++) {
		fd[i] = get("/s");
		buf[0] = '\0';
		cr_assert(read_for(fd[i], buf, sizeof(buf), "\r\n\r\n", 2000));
	}
	sleep_ms(50);
	im_httpd_stop(httpd);
	httpd = NULL;
	cr_expect_eq(atomic_load(&closes), 3);
	for (int i = 0; i < 3; i++)
		close(fd[i]);
}

Test(http, upgrade_hands_over_the_socket_after_101)
{
	int fd = get("/up");
	char buf[4096] = "";
	cr_assert(read_for(fd, buf, sizeof(buf), "hi ping", 2000), "%s", buf);
	cr_expect(strstr(buf, "HTTP/1.1 101"), "%s", buf);
	cr_expect(strcasestr(buf, "Upgrade: echo"), "%s", buf);
	cr_expect(strcasestr(buf, "Connection: Upgrade"), "%s", buf);
	close(fd);
}

Test(http, counts_requests_by_route_pattern)
{
	int fd = get("/up");
	char buf[4096] = "";
	cr_assert(read_for(fd, buf, sizeof(buf), "hi", 2000));
	close(fd);
	fd = get("/nowhere/7");
	buf[0] = '\0';
	cr_assert(read_for(fd, buf, sizeof(buf), "no such route", 2000));
	close(fd);
	static const char *const labels[] = {"route", "code", NULL};
	im_metric *m = im_metrics_family("im_http_requests_total", "",
					 IM_METRIC_COUNTER, labels, NULL, 0);
	cr_assert(m);
	cr_expect_eq(im_metric_value(m, (const char *const[]){"/up", "101"}),
		     1);
	cr_expect_eq(im_metric_value(m, (const char *const[]){"unmatched",
							       "404"}),
		     1);
}

Test(http, router_find_names_the_pattern)
{
	im_route_match m;
	cr_expect_eq(im_router_find(router, "GET", "/s", &m), 0);
	cr_expect_str_eq(m.pattern, "/s");
	cr_expect_eq(im_router_find(router, "POST", "/up", &m), 405);
	cr_expect_str_eq(m.pattern, "/up");
	cr_expect_eq(im_router_find(router, "GET", "/x", &m), 404);
	cr_expect_null(m.pattern);
}
