/* Event streams end to end: /api/v1/events (SSE) and /api/v1/ws
 * (WebSocket) of the real `im serve`, read over plain sockets so that the
 * tests see the exact bytes on the wire and can stop reading at will. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <sqlite3.h>

#include "harness.h"

static srv s;

static void setup(void)
{
	srv_init(&s);
	cr_assert(srv_start(&s), "server did not start:\n%s", srv_log(&s));
}

static void teardown(void)
{
	/* A clean exit with whatever streams the test left open: under the
	 * sanitizers a leak or an error in the server fails the test here. */
	if (s.pid > 0) {
		int st = srv_stop(&s);
		char *log = st != 0 ? srv_log(&s) : NULL;
		cr_expect_eq(st, 0, "server exit status %d:\n%s", st, log);
		free(log);
	}
	srv_cleanup(&s);
}

TestSuite(streams, .init = setup, .fini = teardown, .timeout = 120);

#define HDRS(...) ((const char *const[]){__VA_ARGS__, NULL})

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Stops the server and wants a clean exit with streams still open. */
static void finish(void)
{
	srv_must_stop(&s);
}

static void declare(const char *title, const char *description)
{
	char body[12000];
	snprintf(body, sizeof(body),
		 "{\"title\":\"%s\",\"severity\":\"SEV-2\"%s%s%s}", title,
		 description ? ",\"description\":\"" : "",
		 description ? description : "", description ? "\"" : "");
	reply r = http(&s, false, "POST", "/api/v1/incidents", body,
		       strlen(body), HDRS("Content-Type: application/json"));
	cr_assert_eq(r.status, 201, "declare: %ld %s", r.status, r.body);
	reply_free(&r);
}

static void post(const char *path, const char *body)
{
	reply r = http(&s, false, "POST", path, body, strlen(body),
		       HDRS("Content-Type: application/json"));
	cr_assert(r.status == 200 || r.status == 201, "%s: %ld %s", path,
		  r.status, r.body);
	reply_free(&r);
}

/* ---- a raw HTTP client that keeps reading a streamed body -------------- */

typedef struct sock {
	int fd;
	int status;
	bool head_done, chunked, eof;
	char *raw;   /* received, not yet decoded */
	size_t raw_len;
	char *text;  /* decoded body */
	size_t text_len;
	char head[4096];
} sock;

static int dial(int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(fd >= 0);
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)s.port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "%s",
		     strerror(errno));
	return fd;
}

static sock *sock_open(const char *path, const char *extra, int rcvbuf)
{
	sock *k = calloc(1, sizeof(*k));
	k->fd = dial(rcvbuf);
	char req[2048];
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", path,
			 extra ? extra : "");
	cr_assert_eq(send(k->fd, req, (size_t)n, MSG_NOSIGNAL), n);
	return k;
}

static void sock_close(sock *k)
{
	if (!k)
		return;
	close(k->fd);
	free(k->raw);
	free(k->text);
	free(k);
}

static void append(char **buf, size_t *len, const char *p, size_t n)
{
	*buf = realloc(*buf, *len + n + 1);
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = '\0';
}

static void consume(sock *k, size_t n)
{
	memmove(k->raw, k->raw + n, k->raw_len - n);
	k->raw_len -= n;
}

/* Moves what is complete from raw into head/text (chunked or not). */
static void decode(sock *k)
{
	if (!k->head_done) {
		char *end = k->raw ? strstr(k->raw, "\r\n\r\n") : NULL;
		if (!end)
			return;
		size_t hl = (size_t)(end - k->raw) + 4;
		snprintf(k->head, sizeof(k->head), "%.*s", (int)hl, k->raw);
		sscanf(k->head, "HTTP/1.1 %d", &k->status);
		k->chunked = strcasestr(k->head, "chunked") != NULL;
		k->head_done = true;
		consume(k, hl);
		if (!k->text)
			append(&k->text, &k->text_len, "", 0);
	}
	while (k->chunked && k->raw_len) {
		char *crlf = memmem(k->raw, k->raw_len, "\r\n", 2);
		if (!crlf)
			return;
		size_t size = strtoul(k->raw, NULL, 16);
		size_t hl = (size_t)(crlf - k->raw) + 2;
		if (size == 0) {
			k->eof = true;
			consume(k, k->raw_len);
			return;
		}
		if (k->raw_len < hl + size + 2)
			return;
		append(&k->text, &k->text_len, k->raw + hl, size);
		consume(k, hl + size + 2);
	}
	if (!k->chunked && k->raw_len) {
		append(&k->text, &k->text_len, k->raw, k->raw_len);
		consume(k, k->raw_len);
	}
}

/* Reads what arrives within `ms`; false once the peer closed. */
static bool pump(sock *k, int ms)
{
	struct pollfd p = {.fd = k->fd, .events = POLLIN};
	if (k->eof || poll(&p, 1, ms) <= 0)
		return !k->eof;
	char buf[65536];
	ssize_t n = recv(k->fd, buf, sizeof(buf), 0);
	if (n <= 0) {
		k->eof = true;
		return false;
	}
	append(&k->raw, &k->raw_len, buf, (size_t)n);
	decode(k);
	return true;
}

static bool wait_for(sock *k, const char *needle, int ms)
{
	long long end = now_ms() + ms;
	while (!(k->text && strstr(k->text, needle)) && now_ms() < end)
		if (!pump(k, 50) && k->eof)
			break;
	return k->text && strstr(k->text, needle);
}

/* An SSE client that has been told it is subscribed. */
static sock *sse(const char *query, const char *extra)
{
	char path[512];
	snprintf(path, sizeof(path), "/api/v1/events%s", query ? query : "");
	sock *k = sock_open(path, extra, 0);
	cr_assert(wait_for(k, ": subscribed", 5000), "no stream: %s %s",
		  k->head, k->text ? k->text : "");
	return k;
}

/* The ids of the events received so far, in order. */
static int ids(const sock *k, long long *out, int max)
{
	int n = 0;
	for (const char *p = k->text; p && (p = strstr(p, "id: ")) && n < max;
	     p += 4)
		if (p == k->text || p[-1] == '\n')
			out[n++] = strtoll(p + 4, NULL, 10);
	return n;
}

static void expect_ids(sock *k, const long long *want, int n)
{
	char last[32];
	snprintf(last, sizeof(last), "id: %lld\n", want[n - 1]);
	cr_assert(wait_for(k, last, 5000), "no %s in:\n%s", last, k->text);
	long long got[64];
	int m = ids(k, got, 64);
	cr_assert_eq(m, n, "%d events, want %d:\n%s", m, n, k->text);
	for (int i = 0; i < n; i++)
		cr_expect_eq(got[i], want[i], "event %d is %lld, want %lld", i,
			     got[i], want[i]);
}

/* ---- SSE ------------------------------------------------------------- */

Test(streams, sse_sends_a_declare_with_id_event_and_data_lines)
{
	sock *k = sse(NULL, NULL);
	cr_expect(strstr(k->head, "200"), "%s", k->head);
	cr_expect(strcasestr(k->head, "Content-Type: text/event-stream"));
	cr_expect(strcasestr(k->head, "Cache-Control: no-cache"));
	cr_expect(strcasestr(k->head, "X-Accel-Buffering: no"));
	declare("Database down", NULL);
	cr_assert(wait_for(k, "\n\n", 5000) &&
		      wait_for(k, "}\n\n", 5000),
		  "%s", k->text);
	const char *ev = strstr(k->text, "id: 1\n");
	cr_assert(ev, "%s", k->text);
	cr_expect(strncmp(ev, "id: 1\nevent: im.incident.declare\ndata: {",
			  39) == 0,
		  "%s", ev);
	const char *data = strstr(ev, "data: ") + 6;
	json_t *j = json_loadb(data, strcspn(data, "\n"), 0, NULL);
	cr_assert(j, "data is not one JSON line: %s", data);
	cr_expect_eq(json_integer_value(json_object_get(j, "sequence")), 1);
	cr_expect_str_eq(json_string_value(json_object_get(j, "type")),
			 "im.incident.declare");
	cr_expect_str_eq(json_string_value(json_object_get(j, "subject")),
			 "INC-1");
	cr_expect_str_eq(json_string_value(json_object_get(j, "specversion")),
			 "1.0");
	json_decref(j);
	finish(); /* with the stream open */
	sock_close(k);
}

Test(streams, sse_replays_what_was_missed_then_continues_live)
{
	declare("one", NULL);
	declare("two", NULL);
	declare("three", NULL);
	post("/api/v1/incidents/INC-1/ack", "{}");
	sock *k = sse(NULL, "Last-Event-ID: 1\r\n");
	declare("four", NULL);
	expect_ids(k, (long long[]){2, 3, 4, 5}, 4);
	sock_close(k);
	/* ?since= does the same. */
	k = sse("?since=3", NULL);
	expect_ids(k, (long long[]){4, 5}, 2);
	sock_close(k);
}

Test(streams, sse_replays_from_the_store_after_a_restart)
{
	declare("one", NULL);
	declare("two", NULL);
	cr_assert_eq(srv_stop(&s), 0);
	cr_assert(srv_start(&s), "restart:\n%s", srv_log(&s));
	/* The ring is empty now: history comes from the store only. */
	sock *k = sse(NULL, "Last-Event-ID: 0\r\n");
	declare("three", NULL);
	expect_ids(k, (long long[]){1, 2, 3}, 3);
	sock_close(k);
}

/* CPU seconds the server has used so far (utime + stime). */
static double server_cpu_s(void)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)s.pid);
	FILE *f = fopen(path, "r");
	cr_assert(f, "%s", path);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* after the command name */
	unsigned long ut = 0, st = 0;
	cr_assert(p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
				     "%*u %lu %lu", &ut, &st) == 2);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Stored events whose bodies cannot be read (damaged on disk, or written
 * by a broken build) are skipped on replay, and the stream waits for the
 * next event. When they were the last ones stored, they used to be
 * re-read forever: the stream's thread spun at 100% CPU until a new
 * event came. */
Test(streams, sse_replay_skips_unreadable_stored_events_without_spinning)
{
	declare("one", NULL);
	declare("two", NULL);
	declare("three", NULL);
	cr_assert_eq(srv_stop(&s), 0);
	char path[256];
	snprintf(path, sizeof(path), "%s/var/im.db", s.dir);
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db,
				  "UPDATE events SET body = '{\"broken' "
				  "WHERE seq = 2; UPDATE events SET body = "
				  "'[3]' WHERE seq = 3",
				  NULL, NULL, NULL),
		     SQLITE_OK, "%s", sqlite3_errmsg(db));
	sqlite3_close(db);
	cr_assert(srv_start(&s), "restart:\n%s", srv_log(&s));
	sock *k = sse(NULL, "Last-Event-ID: 0\r\n");
	expect_ids(k, (long long[]){1}, 1);
	sleep_ms(200);
	double c0 = server_cpu_s();
	sleep_ms(1000);
	double used = server_cpu_s() - c0;
	cr_expect_lt(used, 0.3, "an idle stream used %.2f s of CPU in 1 s",
		     used);
	declare("four", NULL);
	expect_ids(k, (long long[]){1, 4}, 2);
	sock_close(k);
}

Test(streams, sse_filters_by_type_glob_and_incident)
{
	declare("one", NULL);
	declare("two", NULL);
	post("/api/v1/incidents/INC-1/ack", "{}");
	post("/api/v1/incidents/INC-2/note", "{\"text\":\"looking\"}");
	sock *t = sse("?since=0&type=im.incident.ack*,*.note", NULL);
	sock *i = sse("?since=0&incident=INC-2", NULL);
	post("/api/v1/incidents/INC-2/ack", "{}"); /* seq 5 */
	declare("three", NULL);                    /* seq 6 */
	expect_ids(t, (long long[]){3, 4, 5}, 3);
	cr_expect(!strstr(t->text, "im.incident.declare"), "%s", t->text);
	expect_ids(i, (long long[]){2, 4, 5}, 3);
	cr_expect(!strstr(i->text, "\"subject\":\"INC-1\""), "%s", i->text);
	sock_close(t);
	sock_close(i);
}

Test(streams, sse_sends_keep_alive_comments)
{
	sock *k = sse("?keepalive_ms=200", NULL);
	long long t0 = now_ms();
	cr_expect(wait_for(k, ": keep-alive\n\n", 3000), "%s", k->text);
	cr_expect(now_ms() - t0 >= 100);
	sock_close(k);
	reply r = http(&s, false, "GET", "/api/v1/events?keepalive_ms=5",
		       NULL, 0, NULL);
	cr_expect_eq(r.status, 400);
	cr_expect(strstr(r.body, "keepalive_ms"), "%s", r.body);
	reply_free(&r);
}

static void expect_400(const char *hdr, const char *query, const char *msg)
{
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/events%s", query);
	reply r = http(&s, false, "GET", path, NULL, 0,
		       hdr ? HDRS(hdr) : NULL);
	cr_expect_eq(r.status, 400, "%s: %ld %s", hdr, r.status, r.body);
	cr_expect(strstr(r.body, msg), "%s: %s", hdr ? hdr : query, r.body);
	reply_free(&r);
}

Test(streams, sse_refuses_a_bad_last_event_id_with_400)
{
	declare("one", NULL);
	expect_400("Last-Event-ID: abc", "",
		   "Last-Event-ID must be a non-negative integer");
	expect_400("Last-Event-ID: -1", "",
		   "Last-Event-ID must be a non-negative integer");
	expect_400("Last-Event-ID: 7", "",
		   "Last-Event-ID 7 is beyond the last event 1");
	expect_400(NULL, "?since=x1", "since must be a non-negative integer");
	expect_400(NULL, "?incident=7", "incident must be an incident id");
}

Test(streams, fifty_sse_clients_all_get_the_same_event)
{
	enum { N = 50 };
	sock *k[N];
	for (int i = 0; i < N; i++)
		k[i] = sse(NULL, NULL);
	declare("for everyone", NULL);
	for (int i = 0; i < N; i++) {
		cr_expect(wait_for(k[i], "}\n\n", 5000), "client %d: %s", i,
			  k[i]->text);
		cr_expect(strstr(k[i]->text, "id: 1\nevent: im.incident.declare"),
			  "client %d", i);
	}
	reply r = http(&s, false, "GET", "/api/v1/events/status", NULL, 0,
		       NULL);
	cr_expect(strstr(r.body, "\"sse\":50"), "%s", r.body);
	reply_free(&r);
	for (int i = 0; i < N; i++)
		sock_close(k[i]);
}

/* ---- slow clients ------------------------------------------------------- */

typedef struct reader {
	sock *k;
	long long want; /* last id to wait for */
	bool got;
} reader;

static void *read_until(void *arg)
{
	reader *r = arg;
	char needle[32];
	snprintf(needle, sizeof(needle), "id: %lld\n", r->want);
	long long end = now_ms() + 60000;
	while (!strstr(r->k->text, needle) && now_ms() < end && !r->k->eof)
		pump(r->k, 50);
	r->got = strstr(r->k->text, needle) != NULL;
	return NULL;
}

static long long status_num(const char *key)
{
	reply r = http(&s, false, "GET", "/api/v1/events/status", NULL, 0,
		       NULL);
	json_t *j = json_loads(r.body, 0, NULL);
	long long v = json_integer_value(
	    json_object_get(json_object_get(j, "streams"), key));
	json_decref(j);
	reply_free(&r);
	return v;
}

static bool wait_status(const char *key, long long want, int ms)
{
	long long end = now_ms() + ms;
	while (status_num(key) != want && now_ms() < end)
		usleep(50000);
	return status_num(key) == want;
}

/* ~2.3 MB of events: past the 1 MiB backlog bound plus what the kernel
 * buffers and the server's own buffers hold for a client. */
static void flood(int n)
{
	static char desc[9001];
	memset(desc, 'x', 9000);
	for (int i = 0; i < n; i++)
		declare("flood", desc);
}

Test(streams, sse_cuts_off_a_client_that_does_not_read)
{
	sock *slow = sock_open("/api/v1/events", NULL, 4096);
	cr_assert(wait_for(slow, ": subscribed", 5000));
	reader normal = {.k = sse(NULL, NULL), .want = 240};
	pthread_t th;
	pthread_create(&th, NULL, read_until, &normal);
	flood(240);
	pthread_join(th, NULL);
	cr_expect(normal.got, "the reading client missed events");
	cr_assert(wait_status("cut_off", 1, 10000), "slow client not cut off");
	cr_expect(wait_status("sse", 1, 5000), "the slow stream is not gone");
	/* The slow socket holds what was buffered, then the end. */
	long long end = now_ms() + 10000;
	while (pump(slow, 100) && now_ms() < end)
		;
	cr_expect(slow->eof, "the slow client's connection stayed open");
	/* The reader goes on. */
	declare("after", NULL);
	cr_expect(wait_for(normal.k, "id: 241\n", 5000));
	long long got[1];
	cr_expect(ids(slow, got, 1) == 0 || got[0] == 1);
	sock_close(slow);
	sock_close(normal.k);
}

/* ---- WebSocket ----------------------------------------------------------- */

#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* RFC 6455, 1.3 */

static sock *ws_open(const char *query, int rcvbuf)
{
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/ws%s", query ? query : "");
	sock *k = sock_open(path,
			    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			    "Sec-WebSocket-Key: " WS_KEY "\r\n"
			    "Sec-WebSocket-Version: 13\r\n",
			    rcvbuf);
	long long end = now_ms() + 5000;
	while (!k->head_done && now_ms() < end)
		pump(k, 50);
	cr_assert_eq(k->status, 101, "%s", k->head);
	return k;
}

/* Next frame: opcode, payload (malloc'd, NUL-terminated); -1 on time-out. */
static int ws_frame(sock *k, char **payload, size_t *plen, int ms)
{
	long long end = now_ms() + ms;
	for (;;) {
		const unsigned char *b = (const unsigned char *)k->text;
		size_t have = k->text_len;
		if (have >= 2) {
			size_t len = b[1] & 127, off = 2;
			if (len == 126 && have >= 4) {
				len = (size_t)b[2] << 8 | b[3];
				off = 4;
			}
			if (len < 126 || off == 4) {
				if (have >= off + len) {
					int op = b[0] & 15;
					*payload = strndup((const char *)b + off,
							   len);
					*plen = len;
					memmove(k->text, k->text + off + len,
						have - off - len);
					k->text_len -= off + len;
					return op;
				}
			}
		}
		if (now_ms() >= end || (!pump(k, 50) && k->eof))
			return -1;
	}
}

static void ws_send(sock *k, int op, const char *data, size_t len)
{
	unsigned char f[140] = {(unsigned char)(0x80 | op),
				(unsigned char)(0x80 | len), 1, 2, 3, 4};
	for (size_t i = 0; i < len; i++)
		f[6 + i] = (unsigned char)data[i] ^ f[2 + i % 4];
	cr_assert_eq(send(k->fd, f, 6 + len, MSG_NOSIGNAL),
		     (ssize_t)(6 + len));
}

static long long frame_seq(const char *json)
{
	json_t *j = json_loads(json, 0, NULL);
	long long v = json_integer_value(json_object_get(j, "sequence"));
	json_decref(j);
	return v;
}

Test(streams, ws_handshake_answers_101_with_the_right_accept)
{
	sock *k = ws_open(NULL, 0);
	cr_expect(strcasestr(k->head, "Upgrade: websocket"), "%s", k->head);
	cr_expect(strcasestr(k->head, "Connection: Upgrade"), "%s", k->head);
	cr_expect(strstr(k->head, "Sec-WebSocket-Accept: " WS_ACCEPT "\r\n"),
		  "%s", k->head);
	sock_close(k);
	reply r = http(&s, false, "GET", "/api/v1/ws", NULL, 0,
		       HDRS("Upgrade: websocket", "Connection: Upgrade",
			    "Sec-WebSocket-Version: 13"));
	cr_expect_eq(r.status, 400, "no key: %ld", r.status);
	reply_free(&r);
	r = http(&s, false, "GET", "/api/v1/ws", NULL, 0,
		 HDRS("Upgrade: websocket", "Connection: Upgrade",
		      "Sec-WebSocket-Key: " WS_KEY, "Sec-WebSocket-Version: 8"));
	cr_expect_eq(r.status, 426);
	cr_expect(strstr(r.headers, "Sec-WebSocket-Version: 13"));
	reply_free(&r);
}

Test(streams, ws_sends_events_as_text_frames_and_replays_since)
{
	declare("one", NULL);
	declare("two", NULL);
	sock *k = ws_open("?since=1", 0);
	char *p;
	size_t n;
	cr_assert_eq(ws_frame(k, &p, &n, 5000), 1, "no text frame");
	cr_expect_eq(frame_seq(p), 2, "%s", p);
	free(p);
	declare("three", NULL);
	cr_assert_eq(ws_frame(k, &p, &n, 5000), 1);
	cr_expect_eq(frame_seq(p), 3, "%s", p);
	cr_expect(strstr(p, "\"type\":\"im.incident.declare\""), "%s", p);
	free(p);
	cr_expect_eq(status_num("ws"), 1);
	finish(); /* with the socket open: a 1001 close comes */
	cr_expect_eq(ws_frame(k, &p, &n, 5000), 8);
	cr_expect(n >= 2 && (((unsigned char)p[0] << 8) | (unsigned char)p[1])
				== 1001);
	free(p);
	sock_close(k);
}

Test(streams, ws_answers_pings_and_closes)
{
	sock *k = ws_open(NULL, 0);
	ws_send(k, 0x9, "abc", 3);
	char *p;
	size_t n;
	cr_assert_eq(ws_frame(k, &p, &n, 5000), 0xA, "no pong");
	cr_expect_str_eq(p, "abc");
	free(p);
	ws_send(k, 0x8, "\x03\xe8", 2);
	cr_assert_eq(ws_frame(k, &p, &n, 5000), 0x8, "no close");
	free(p);
	cr_expect(wait_status("ws", 0, 5000));
	sock_close(k);
}

Test(streams, ws_cuts_off_a_client_that_does_not_read)
{
	sock *slow = ws_open(NULL, 4096);
	reader normal = {.k = sse(NULL, NULL), .want = 240};
	pthread_t th;
	pthread_create(&th, NULL, read_until, &normal);
	flood(240);
	pthread_join(th, NULL);
	cr_expect(normal.got);
	cr_assert(wait_status("cut_off", 1, 10000), "slow client not cut off");
	cr_expect(wait_status("ws", 0, 10000), "the slow socket is not gone");
	sock_close(slow);
	sock_close(normal.k);
}

static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = atol(line + 6);
	if (f)
		fclose(f);
	return kb;
}

/* A client that pings without end and never reads: its pongs must not
 * pile up in the server, and it is cut off like any client that does not
 * read. (It once grew the server by ~140 MB/s.) */
Test(streams, ws_bounds_a_client_that_pings_and_never_reads)
{
	sock *k = ws_open("?keepalive_ms=500", 4096);
	fcntl(k->fd, F_SETFL, fcntl(k->fd, F_GETFL) | O_NONBLOCK);
	/* Empty pings: the most pongs per byte (wslay does not count pongs
	 * in its queued length, only in its message count). */
	unsigned char f[6 * 256];
	for (size_t i = 0; i < 256; i++)
		memcpy(f + 6 * i, (const unsigned char[]){0x89, 0x80, 1, 2, 3, 4},
		       6);
	long before = rss_kb(s.pid);
	long long end = now_ms() + 4000;
	size_t sent = 0;
	bool closed = false;
	while (now_ms() < end && !closed) {
		ssize_t w = send(k->fd, f, sizeof(f), MSG_NOSIGNAL);
		if (w > 0)
			sent += (size_t)w;
		else if (errno == EAGAIN)
			usleep(1000);
		else
			closed = true;
	}
	long after = rss_kb(s.pid);
	cr_expect(after - before < 32 * 1024,
		  "server RSS grew %ld KB while %zu bytes of pings came in",
		  after - before, sent);
	cr_expect(wait_status("cut_off", 1, 15000),
		  "the pinging client was not cut off");
	cr_expect(wait_status("ws", 0, 10000), "its socket is not gone");
	sock_close(k);
}

/* ---- status, metrics, CLI -------------------------------------------- */

Test(streams, status_and_metrics_count_clients)
{
	sock *a = sse(NULL, NULL);
	sock *w = ws_open(NULL, 0);
	/* The hub takes the upgraded socket over asynchronously. */
	cr_assert(wait_status("ws", 1, 5000));
	declare("one", NULL);
	cr_assert(wait_for(a, "id: 1\n", 5000));
	reply r = http(&s, false, "GET", "/api/v1/events/status", NULL, 0,
		       NULL);
	json_t *j = json_loads(r.body, 0, NULL);
	cr_assert(j, "%s", r.body);
	json_t *bus = json_object_get(j, "bus");
	cr_expect_str_eq(json_string_value(json_object_get(bus, "kind")),
			 "in-process");
	cr_expect(json_is_true(json_object_get(bus, "connected")));
	cr_expect(json_is_true(json_object_get(bus, "subscribed")));
	cr_expect_eq(json_integer_value(json_object_get(bus, "last_seq")), 1);
	cr_expect_eq(json_integer_value(json_object_get(bus, "published")), 1);
	cr_expect_eq(json_integer_value(json_object_get(bus, "in_ring")), 1);
	cr_expect_eq(json_integer_value(json_object_get(bus, "first_seq")), 1);
	json_decref(j);
	reply_free(&r);
	r = http(&s, true, "GET", "/metrics", NULL, 0, NULL);
	cr_expect(strstr(r.body, "im_event_stream_clients{kind=\"sse\"} 1"),
		  "%s", r.body);
	cr_expect(strstr(r.body, "im_event_stream_clients{kind=\"ws\"} 1"));
	cr_expect(strstr(r.body, "im_events_published_total 1"));
	cr_expect(strstr(r.body, "im_http_requests_total{route=\"/api/v1/"
				 "events\",code=\"200\"} 1"),
		  "%s", r.body);
	cr_expect(strstr(r.body, "im_http_requests_total{route=\"/api/v1/"
				 "incidents\",code=\"201\"} 1"));
	reply_free(&r);
	sock_close(a);
	sock_close(w);
}

Test(streams, cli_events_status_prints_the_bus_and_clients)
{
	sock *a = sse(NULL, NULL);
	declare("one", NULL);
	cr_assert(wait_for(a, "id: 1\n", 5000));
	char *out, *err;
	int rc = cli(&s, &out, &err, HDRS("events", "status"));
	cr_expect_eq(rc, 0, "%s", err);
	cr_expect(strstr(out, "event bus: in-process, connected and "
			      "subscribed\n"),
		  "%s", out);
	cr_expect(strstr(out, "last sequence: 1 (published 1 since start, 1 "
			      "in memory)\n"),
		  "%s", out);
	cr_expect(strstr(out, "stream clients: 1 SSE, 0 WebSocket (0 cut "
			      "off)"),
		  "%s", out);
	free(out);
	free(err);
	rc = cli(&s, &out, &err, HDRS("events", "status", "--json"));
	cr_expect_eq(rc, 0);
	cr_expect(strstr(out, "\"cut_off\": 0"), "%s", out);
	free(out);
	free(err);
	sock_close(a);
	srv_stop(&s);
	rc = cli(&s, &out, &err, HDRS("events", "status"));
	cr_expect_eq(rc, 1, "unreachable server: %d", rc);
	free(out);
	free(err);
}

typedef struct tail_run {
	const char *const *args;
	int rc;
	char *out, *err;
} tail_run;

static void *run_cli(void *arg)
{
	tail_run *t = arg;
	t->rc = cli(&s, &t->out, &t->err, t->args);
	return NULL;
}

Test(streams, cli_events_tail_prints_events_and_stops_after_count)
{
	declare("before", NULL);
	tail_run t = {.args = HDRS("events", "tail", "--since", "1",
				   "--count", "2")};
	pthread_t th;
	pthread_create(&th, NULL, run_cli, &t);
	declare("Database down", NULL);
	post("/api/v1/incidents/INC-2/ack", "{\"note\":\"on it\"}");
	declare("not counted", NULL);
	pthread_join(th, NULL);
	cr_expect_eq(t.rc, 0, "%s", t.err);
	char *l2 = t.out;
	char *l3 = strchr(t.out, '\n');
	cr_assert(l3, "%s", t.out);
	l3++;
	cr_expect(strncmp(l2, "2 ", 2) == 0 &&
		      strstr(l2, " im.incident.declare INC-2 local ") &&
		      strstr(l2, "Database down"),
		  "%s", t.out);
	cr_expect(strncmp(l3, "3 ", 2) == 0 &&
		      strstr(l3, " im.incident.acknowledge INC-2 ") &&
		      strstr(l3, "on it"),
		  "%s", t.out);
	cr_expect(!strstr(t.out, "not counted"), "%s", t.out);
	free(t.out);
	free(t.err);
	/* --json: the CloudEvents themselves, filtered. */
	tail_run j = {.args = HDRS("events", "tail", "--since", "0", "--type",
				   "*.acknowledge", "--count", "1", "--json")};
	run_cli(&j);
	cr_expect_eq(j.rc, 0, "%s", j.err);
	cr_expect(strncmp(j.out, "{\"specversion\":\"1.0\"", 20) == 0 &&
		      strstr(j.out, "\"sequence\":3"),
		  "%s", j.out);
	free(j.out);
	free(j.err);
	tail_run bad = {.args = HDRS("events", "tail", "--since", "99")};
	run_cli(&bad);
	cr_expect_eq(bad.rc, 1);
	cr_expect(strstr(bad.err, "beyond the last event"), "%s", bad.err);
	free(bad.out);
	free(bad.err);
}

/* Hung-up SSE clients go at once (the hub finds each by its id), not at
 * their next keep-alive a minute later. */
Test(streams, sse_clients_that_hang_up_are_gone_before_their_keep_alive)
{
	enum { N = 40 };
	sock *k[N];
	for (int i = 0; i < N; i++)
		k[i] = sse("?keepalive_ms=60000", NULL);
	cr_assert(wait_status("sse", N, 5000), "%d clients connected", N);
	for (int i = 0; i < N; i += 2)
		sock_close(k[i]);
	cr_expect(wait_status("sse", N / 2, 10000),
		  "the %d that hung up are gone (status says %lld)", N / 2,
		  status_num("sse"));
	for (int i = 1; i < N; i += 2)
		sock_close(k[i]);
	cr_expect(wait_status("sse", 0, 10000));
}
