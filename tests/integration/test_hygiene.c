/* Malformed HTTP gets a 4xx (or 501) and, where the framing is in doubt,
 * a closed connection (RFC 9112 section 6.3); bytes that are not UTF-8
 * never turn into a 500. Raw requests over a socket, as a careless
 * client or an attacker sends them. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

static srv s;

static void setup(void)
{
	srv_init(&s);
	cr_assert(srv_start(&s), "server did not start:\n%s", srv_log(&s));
}

static void teardown(void)
{
	int st = srv_stop(&s);
	cr_expect_eq(st, 0, "server exit status %d", st);
	srv_cleanup(&s);
}

TestSuite(hygiene, .init = setup, .fini = teardown, .timeout = 60);

typedef struct raw_reply {
	int status;    /* of the first answer, 0 = none */
	int answers;   /* "HTTP/1.1 " status lines seen */
	bool closed;   /* the server closed within the wait */
	char body[2048];
} raw_reply;

/* Sends raw bytes, reads until the server closes or `wait_ms` pass. */
static raw_reply send_raw(const char *req, size_t len, int wait_ms)
{
	raw_reply r = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)s.port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	size_t off = 0;
	while (off < len) {
		ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	static char all[1 << 16];
	size_t got = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long left = wait_ms - ((t1.tv_sec - t0.tv_sec) * 1000 +
				       (t1.tv_nsec - t0.tv_nsec) / 1000000);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			break;
		ssize_t n = recv(fd, all + got, sizeof(all) - 1 - got, 0);
		if (n <= 0) {
			r.closed = true;
			break;
		}
		got += (size_t)n;
	}
	all[got] = '\0';
	close(fd);
	if (got >= 12 && !strncmp(all, "HTTP/1.1 ", 9))
		r.status = atoi(all + 9);
	for (const char *p = all; (p = strstr(p, "HTTP/1.1 ")); p++)
		r.answers++;
	const char *b = strstr(all, "\r\n\r\n");
	snprintf(r.body, sizeof(r.body), "%s", b ? b + 4 : "");
	return r;
}

#define RAW(lit) send_raw(lit, sizeof(lit) - 1, 2000)

Test(hygiene, both_content_length_and_transfer_encoding_close_the_connection)
{
	/* A front proxy reading Content-Length would see one request; the
	 * second must never run here. */
	raw_reply r = RAW("POST /api/v1/incidents HTTP/1.1\r\nHost: x\r\n"
			  "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"
			  "Content-Type: application/json\r\n\r\n"
			  "0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_expect_eq(r.status, 400, "%s", r.body);
	cr_expect_eq(r.answers, 1, "the smuggled request was answered");
	cr_expect(r.closed);
	cr_expect(strstr(r.body, "Transfer-Encoding"), "%s", r.body);
}

Test(hygiene, two_content_lengths_are_refused)
{
	raw_reply r = RAW("POST /api/v1/incidents HTTP/1.1\r\nHost: x\r\n"
			  "Content-Length: 2\r\nContent-Length: 5\r\n"
			  "Content-Type: application/json\r\n\r\n{}");
	cr_expect_eq(r.status, 400, "%s", r.body);
	cr_expect(r.closed);
	cr_expect(strstr(r.body, "Content-Length"), "%s", r.body);
	r = RAW("POST /api/v1/incidents HTTP/1.1\r\nHost: x\r\n"
		"Content-Length: +2\r\nContent-Type: application/json\r\n\r\n{}");
	cr_expect_eq(r.status, 400, "%s", r.body);
}

Test(hygiene, an_unknown_transfer_encoding_is_501_at_once)
{
	raw_reply r = RAW("POST /api/v1/incidents HTTP/1.1\r\nHost: x\r\n"
			  "Transfer-Encoding: gzip\r\n"
			  "Content-Type: application/json\r\n\r\n{}");
	cr_expect_eq(r.status, 501, "%s", r.body);
	cr_expect(r.closed, "the connection is held");
}

Test(hygiene, many_query_parameters_get_414_not_silence)
{
	for (int n = 300; n <= 20000; n *= 8) {
		size_t cap = (size_t)n * 12 + 128, len = 0;
		char *req = malloc(cap);
		cr_assert(req);
		len += (size_t)snprintf(req, cap, "GET /api/v1/incidents?");
		for (int i = 0; i < n; i++)
			len += (size_t)snprintf(req + len, cap - len, "%sa%d=1",
						i ? "&" : "", i);
		len += (size_t)snprintf(req + len, cap - len,
					" HTTP/1.1\r\nHost: x\r\n\r\n");
		raw_reply r = send_raw(req, len, 3000);
		cr_expect(r.status == 414 || r.status == 431,
			  "%d parameters: status %d", n, r.status);
		cr_expect(r.closed, "%d parameters: connection held", n);
		free(req);
	}
	/* 200 parameters are fine. */
	char req[4096];
	size_t len = (size_t)snprintf(req, sizeof(req), "GET /health?");
	for (int i = 0; i < 200; i++)
		len += (size_t)snprintf(req + len, sizeof(req) - len, "%sq=%d",
					i ? "&" : "", i % 10);
	len += (size_t)snprintf(req + len, sizeof(req) - len,
				" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	raw_reply r = send_raw(req, len, 2000);
	cr_expect_eq(r.status, 200, "%s", r.body);
}

Test(hygiene, http11_without_host_and_nul_in_the_line_are_400)
{
	raw_reply r = RAW("GET /health HTTP/1.1\r\n\r\n");
	cr_expect_eq(r.status, 400, "%s", r.body);
	cr_expect(r.closed);
	r = RAW("GET /hea\0lth HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_expect_eq(r.status, 400, "%s", r.body);
	cr_expect(r.closed);
	/* Escapes, queries and HTTP/1.0 without Host stay fine. */
	r = RAW("GET /api/v1/incid%65nts?status=open&limit=5 HTTP/1.1\r\n"
		"Host: x\r\nConnection: close\r\n\r\n");
	cr_expect_eq(r.status, 200, "%s", r.body);
	r = RAW("GET /health HTTP/1.0\r\n\r\n");
	cr_expect_eq(r.status, 200, "%s", r.body);
}

Test(hygiene, bytes_that_are_not_utf8_never_make_a_500)
{
	raw_reply r = RAW("GET /api/v1/incidents/INC-\xff HTTP/1.1\r\n"
			  "Host: x\r\nConnection: close\r\n\r\n");
	cr_expect_eq(r.status, 404, "%s", r.body);
	cr_expect(strstr(r.body, "INC-\\\\xFF"), "logged escaped: %s", r.body);
	r = RAW("GET /no/\xfe/where HTTP/1.1\r\nHost: x\r\n"
		"Connection: close\r\n\r\n");
	cr_expect_eq(r.status, 404, "%s", r.body);
	r = RAW("GET /api/v1/incidents?status=\xff HTTP/1.1\r\nHost: x\r\n"
		"Connection: close\r\n\r\n");
	cr_expect_eq(r.status, 400, "%s", r.body);
	r = RAW("POST /api/v1/incidents HTTP/1.1\r\nHost: x\r\n"
		"X-Im-Actor: \xff\xfe\r\nContent-Type: application/json\r\n"
		"Content-Length: 32\r\n\r\n{\"title\":\"t\",\"severity\":\"SEV-2\"}");
	cr_expect_eq(r.status, 400, "%s", r.body);
	cr_expect(strstr(r.body, "X-Im-Actor"), "%s", r.body);
	r = RAW("POST /api/v1/incidents HTTP/1.1\r\nHost: x\r\n"
		"Content-Type: application/json\r\nContent-Length: 33\r\n"
		"Connection: close\r\n\r\n"
		"{\"title\":\"t\xff\",\"severity\":\"SEV-2\"}");
	cr_expect_eq(r.status, 400, "%s", r.body);
	/* And the server answers as before. */
	r = RAW("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	cr_expect_eq(r.status, 200, "%s", r.body);
}

Test(hygiene, an_admin_command_usage_error_is_400)
{
	const char *body = "{\"verb\":\"ack\",\"text\":\"\"}";
	srv_conf(&s, "10-cmd.yaml", "plugins:\n  instances:\n"
				    "    - {id: incident, module: incident-commands}\n");
	reply rl = http(&s, false, "POST", "/api/v1/admin/plugins/reload", "",
			0, NULL);
	reply_free(&rl);
	reply r = http(&s, false, "POST", "/api/v1/admin/commands", body,
		       strlen(body), NULL);
	cr_expect_eq(r.status, 400, "%s", r.body);
	cr_expect(strstr(r.body, "Usage"), "%s", r.body);
	reply_free(&r);
}
