/* Clients that trickle bytes cannot hold the server: a request must
 * arrive in time, one address may keep at most 64 unfinished requests,
 * and /health answers throughout. */
#include <arpa/inet.h>
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
	srv_conf(&s, "10-guard.yaml", "server:\n  header_timeout: 1s\n"
				      "  request_timeout: 3s\n");
	cr_assert(srv_start(&s), "server did not start:\n%s", srv_log(&s));
}

static void teardown(void)
{
	int st = srv_stop(&s);
	cr_expect_eq(st, 0, "server exit status %d", st);
	srv_cleanup(&s);
}

TestSuite(guard, .init = setup, .fini = teardown, .timeout = 90);

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)s.port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert(fd >= 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* True when the server closed fd within ms (EOF or reset). */
static bool closed_within(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char buf[512];
	long long end = 0;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	end = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 + ms;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		long long left = end - (ts.tv_sec * 1000LL + ts.tv_nsec / 1000000);
		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return false;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return true;
	}
}

static long health_status(void)
{
	reply r = http(&s, false, "GET", "/health", NULL, 0, NULL);
	long st = r.status;
	reply_free(&r);
	return st;
}

Test(guard, a_request_that_trickles_in_is_cut_at_its_deadline)
{
	int fd = dial();
	const char *part = "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ";
	cr_assert(send(fd, part, strlen(part), MSG_NOSIGNAL) > 0);
	/* A byte every 300 ms: never idle, never whole. */
	bool cut = false;
	for (int i = 0; i < 20 && !cut; i++) {
		if (send(fd, "a", 1, MSG_NOSIGNAL) != 1)
			cut = true;
		else
			cut = closed_within(fd, 300);
	}
	cr_expect(cut, "a header trickled for 6 s was never cut (deadline 1 s)");
	close(fd);
	/* A body that trickles is cut by request_timeout. */
	fd = dial();
	const char *head = "POST /api/v1/incidents HTTP/1.1\r\nHost: x\r\n"
			   "Content-Type: application/json\r\n"
			   "Content-Length: 1000\r\n\r\n{";
	cr_assert(send(fd, head, strlen(head), MSG_NOSIGNAL) > 0);
	cut = false;
	for (int i = 0; i < 30 && !cut; i++) {
		if (send(fd, " ", 1, MSG_NOSIGNAL) != 1)
			cut = true;
		else
			cut = closed_within(fd, 300);
	}
	cr_expect(cut, "a body trickled for 9 s was never cut (deadline 3 s)");
	close(fd);
	cr_expect_eq(health_status(), 200);
}

Test(guard, health_answers_while_one_address_holds_many_connections)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	int want = 600;
	if (rl.rlim_cur < (rlim_t)want + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)want + 64 ? rl.rlim_max
							     : (rlim_t)want + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	cr_assert_geq(rl.rlim_cur, (rlim_t)want + 32,
		      "need %d descriptors, have %lu", want + 32,
		      (unsigned long)rl.rlim_cur);
	int *fds = calloc((size_t)want, sizeof(int));
	cr_assert(fds);
	for (int i = 0; i < want; i++) {
		fds[i] = dial();
		send(fds[i], "GET /", 5, MSG_NOSIGNAL);
	}
	for (int i = 0; i < 5; i++)
		cr_expect_eq(health_status(), 200, "health under load, try %d",
			     i);
	/* Only the newest 64 unfinished ones may stay. */
	usleep(200000);
	int open_now = 0;
	for (int i = 0; i < want; i++)
		open_now += !closed_within(fds[i], 1);
	cr_expect_leq(open_now, 64 + 8, "%d of %d still open", open_now, want);
	for (int i = 0; i < want; i++)
		close(fds[i]);
	free(fds);
	reply m = http(&s, true, "GET", "/metrics", NULL, 0, NULL);
	cr_expect(strstr(m.body ? m.body : "",
			 "im_http_connections_cut_total{reason=\"per_address\"}"),
		  "%s", m.body);
	reply_free(&m);
}

Test(guard, a_kept_alive_connection_serves_requests_that_arrive_whole)
{
	int fd = dial();
	const char *req = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(send(fd, req, strlen(req), MSG_NOSIGNAL),
			     (ssize_t)strlen(req));
		char buf[1024];
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
		cr_assert_gt(n, 0, "request %d: connection closed", i);
		buf[n] = '\0';
		cr_expect(strstr(buf, "200 OK"), "%s", buf);
		usleep(500000); /* idle less than request_timeout */
	}
	close(fd);
}
