/* The fake Discord Gateway checked on its own, through a small wslay
 * client written here, before the Discord connector's tests lean on it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <wslay/wslay.h>

#include "fake_discord_gw.h"

#define TOKEN "MTEwMDAwMDAwMDAwMDAwMDAwMQ.Gfake0.bot-token-one"
#define GUILDS (1 << 0)
#define GUILD_MESSAGES (1 << 9)
#define MESSAGE_CONTENT (1 << 15)

static fdg *gw;

static void up(const fdg_opts *o)
{
	gw = fdg_start(o);
	cr_assert(gw, "the fake starts");
}

static void setup(void)
{
	up(NULL);
}

static void teardown(void)
{
	fdg_stop(gw);
	gw = NULL;
}

TestSuite(fake_discord_gw, .init = setup, .fini = teardown, .timeout = 60);

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* --- a minimal Gateway client ------------------------------------------- */

typedef struct cl {
	int fd;
	wslay_event_context_ptr ctx;
	json_t *inbox; /* text frames not read yet, parsed */
	int close_code; /* of the server's close frame; 0 = none yet */
	char close_reason[128];
	bool eof;
} cl;

static ssize_t cl_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
		       int flags, void *ud)
{
	ssize_t n = recv(((cl *)ud)->fd, buf, len, MSG_DONTWAIT);
	if (n > 0)
		return n;
	wslay_event_set_error(ctx, n < 0 && errno == EAGAIN
				       ? WSLAY_ERR_WOULDBLOCK
				       : WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static ssize_t cl_send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
			  size_t len, int flags, void *ud)
{
	ssize_t n = send(((cl *)ud)->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n >= 0)
		return n;
	wslay_event_set_error(ctx, errno == EAGAIN ? WSLAY_ERR_WOULDBLOCK
						   : WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static int cl_mask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
		   void *ud)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)rand();
	return 0;
}

static void cl_msg(wslay_event_context_ptr ctx,
		   const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
	cl *c = ud;
	if (arg->opcode == WSLAY_TEXT_FRAME) {
		json_t *m = json_loadb((const char *)arg->msg, arg->msg_length,
				       0, NULL);
		cr_assert(m, "the server sends JSON: %.*s",
			  (int)arg->msg_length, arg->msg);
		json_array_append_new(c->inbox, m);
	} else if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
		c->close_code = arg->status_code;
		size_t n = arg->msg_length > 2 ? arg->msg_length - 2 : 0;
		n = n < sizeof(c->close_reason) ? n : sizeof(c->close_reason) - 1;
		if (n)
			memcpy(c->close_reason, arg->msg + 2, n);
		c->close_reason[n] = '\0';
	}
}

static unsigned gw_port(void)
{
	unsigned port = 0;
	cr_assert_eq(sscanf(fdg_url(gw), "ws://127.0.0.1:%u/", &port), 1);
	return port;
}

/* Connects to target ("/?v=10&encoding=json") and upgrades. */
static cl *cl_open(const char *target)
{
	static const struct wslay_event_callbacks cbs = {
	    .recv_callback = cl_recv,
	    .send_callback = cl_send_cb,
	    .genmask_callback = cl_mask,
	    .on_msg_recv_callback = cl_msg,
	};
	cl *c = calloc(1, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)gw_port()),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	struct timeval tv = {5, 0};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char req[512], head[1024];
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: "
			 "websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			 "Sec-WebSocket-Version: 13\r\n\r\n",
			 target);
	cr_assert_eq(send(c->fd, req, (size_t)n, MSG_NOSIGNAL), n);
	/* A byte at a time: HELLO may follow the head in the same segment. */
	size_t got = 0;
	while (got < sizeof(head) - 1 &&
	       !(got >= 4 && !memcmp(head + got - 4, "\r\n\r\n", 4))) {
		cr_assert_eq(recv(c->fd, head + got, 1, 0), 1, "the head");
		head[++got] = '\0';
	}
	cr_assert(!strncmp(head, "HTTP/1.1 101 ", 13), "%s", head);
	/* RFC 6455's own example key and answer. */
	cr_assert(strstr(head, "Sec-WebSocket-Accept: "
			       "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
		  "%s", head);
	cr_assert_eq(wslay_event_context_client_init(&c->ctx, &cbs, c), 0);
	c->inbox = json_array();
	return c;
}

static void cl_pump(cl *c, int ms)
{
	struct pollfd pf = {
	    .fd = c->fd,
	    .events = POLLIN | (wslay_event_want_write(c->ctx) ? POLLOUT : 0)};
	if (c->eof)
		return;
	if (poll(&pf, 1, ms) > 0 && (pf.revents & (POLLIN | POLLHUP | POLLERR)) &&
	    wslay_event_recv(c->ctx) != 0)
		c->eof = true;
	if (!c->eof && wslay_event_want_write(c->ctx) &&
	    wslay_event_send(c->ctx) != 0)
		c->eof = true;
}

static void cl_send(cl *c, const char *text)
{
	struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)text,
				    strlen(text)};
	cr_assert_eq(wslay_event_queue_msg(c->ctx, &m), 0);
	while (!c->eof && wslay_event_want_write(c->ctx))
		cl_pump(c, 100);
}

static void cl_sendf(cl *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	cl_send(c, buf);
}

/* The next payload, or NULL when none comes within ms. */
static json_t *cl_next(cl *c, int ms)
{
	long long end = now_ms() + ms;
	while (!json_array_size(c->inbox) && !c->eof && now_ms() < end)
		cl_pump(c, (int)(end - now_ms()));
	json_t *m = json_incref(json_array_get(c->inbox, 0));
	if (m)
		json_array_remove(c->inbox, 0);
	return m;
}

/* The next payload, which must have this op (and t, unless NULL). */
static json_t *cl_expect(cl *c, int op, const char *t)
{
	json_t *m = cl_next(c, 3000);
	cr_assert(m, "op %d %s came", op, t ? t : "");
	cr_assert_eq(json_integer_value(json_object_get(m, "op")), op,
		     "op %d expected, not %d", op,
		     (int)json_integer_value(json_object_get(m, "op")));
	if (t)
		cr_assert_str_eq(json_string_value(json_object_get(m, "t")), t);
	return m;
}

static void cl_skip(cl *c, int op, const char *t)
{
	json_decref(cl_expect(c, op, t));
}

/* The code of the server's close frame (0: the TCP connection ended
 * without one); the payloads before it stay in the inbox. */
static int cl_closed(cl *c, int ms)
{
	long long end = now_ms() + ms;
	while (!c->close_code && !c->eof && now_ms() < end)
		cl_pump(c, (int)(end - now_ms()));
	cl_pump(c, 50); /* our echo of the close */
	return c->close_code;
}

/* A close the client starts; waits for the server's echo. */
static void cl_close(cl *c, int code, const char *reason)
{
	cr_assert_eq(wslay_event_queue_close(c->ctx, (uint16_t)code,
					     (const uint8_t *)reason,
					     strlen(reason)),
		     0);
	long long end = now_ms() + 2000;
	while (!c->eof && !c->close_code && now_ms() < end)
		cl_pump(c, 100);
	cr_assert_eq(c->close_code, code, "the server echoes the close");
}

static void cl_free(cl *c)
{
	if (!c)
		return;
	wslay_event_context_free(c->ctx);
	close(c->fd);
	json_decref(c->inbox);
	free(c);
}

static cl *cl_hello(void)
{
	cl *c = cl_open("/?v=10&encoding=json");
	cl_skip(c, 10, NULL);
	return c;
}

static void send_identify(cl *c, const char *token, long intents)
{
	cl_sendf(c,
		 "{\"op\":2,\"d\":{\"token\":\"%s\",\"intents\":%ld,"
		 "\"properties\":{\"os\":\"linux\",\"browser\":\"im\","
		 "\"device\":\"im\"},\"presence\":{\"status\":\"online\","
		 "\"since\":null,\"activities\":[],\"afk\":false}}}",
		 token, intents);
}

/* HELLO, identify, READY and the one GUILD_CREATE of the defaults. */
static cl *cl_ready(void)
{
	cl *c = cl_hello();
	send_identify(c, TOKEN, GUILDS | GUILD_MESSAGES);
	cl_skip(c, 0, "READY");
	cl_skip(c, 0, "GUILD_CREATE");
	return c;
}

static void send_resume(cl *c, const char *token, const char *sid, int seq)
{
	cl_sendf(c,
		 "{\"op\":6,\"d\":{\"token\":\"%s\",\"session_id\":\"%s\","
		 "\"seq\":%d}}",
		 token, sid, seq);
}

/* The only close recorded must be this one. */
static void expect_close(int code, const char *reason, const char *by)
{
	cr_assert(fdg_wait(gw, "closes", 1, 2000), "a close is recorded");
	json_t *cs = fdg_closes(gw);
	json_t *last = json_array_get(cs, json_array_size(cs) - 1);
	cr_expect_eq(json_integer_value(json_object_get(last, "code")), code);
	cr_expect_str_eq(json_string_value(json_object_get(last, "reason")),
			 reason);
	cr_expect_str_eq(json_string_value(json_object_get(last, "by")), by);
	json_decref(cs);
}

/* A fresh connection that must get close `code` with `reason` after
 * sending `payload` (NULL: nothing, the target alone is wrong). */
static void expect_refused(const char *target, const char *payload, int code,
			   const char *reason)
{
	cl *c = cl_open(target);
	if (payload) {
		cl_skip(c, 10, NULL);
		cl_send(c, payload);
	}
	cr_expect_eq(cl_closed(c, 3000), code, "close %d", code);
	cr_expect_str_eq(c->close_reason, reason);
	cl_free(c);
	expect_close(code, reason, "server");
}

/* --- handshake and HELLO -------------------------------------------------- */

Test(fake_discord_gw, sends_hello_at_once)
{
	cl *c = cl_open("/?v=10&encoding=json");
	json_t *m = cl_expect(c, 10, NULL);
	cr_expect_eq(json_integer_value(json_object_get(
			 json_object_get(m, "d"), "heartbeat_interval")),
		     41250);
	cr_expect(json_is_null(json_object_get(m, "s")));
	cr_expect(json_is_null(json_object_get(m, "t")));
	cr_expect_eq(fdg_connections(gw), 1);
	cr_expect_not(fdg_live(gw), "not live before identify");
	json_decref(m);
	cl_free(c);
}

Test(fake_discord_gw, takes_the_heartbeat_interval_from_the_options)
{
	fdg_stop(gw);
	fdg_opts o = {.heartbeat_ms = 250};
	up(&o);
	cl *c = cl_open("/any/path?encoding=json&v=10");
	json_t *m = cl_expect(c, 10, NULL);
	cr_expect_eq(json_integer_value(json_object_get(
			 json_object_get(m, "d"), "heartbeat_interval")),
		     250);
	json_decref(m);
	cl_free(c);
}

Test(fake_discord_gw, closes_4012_without_v10)
{
	expect_refused("/?v=9&encoding=json", NULL, 4012,
		       "Invalid API version");
}

Test(fake_discord_gw, closes_4002_without_json_encoding)
{
	expect_refused("/?v=10&encoding=etf", NULL, 4002, "Decode error");
}

/* --- identify ----------------------------------------------------------- */

Test(fake_discord_gw, identifies_with_ready_then_one_guild_create_a_guild)
{
	fdg_stop(gw);
	fdg_opts o = {.guild_ids = "1200000000000000001,1200000000000000002",
		      .bot_id = "42"};
	up(&o);
	cl *c = cl_hello();
	send_identify(c, TOKEN, GUILDS);
	json_t *r = cl_expect(c, 0, "READY");
	cr_expect_eq(json_integer_value(json_object_get(r, "s")), 1);
	json_t *d = json_object_get(r, "d");
	cr_expect_eq(json_integer_value(json_object_get(d, "v")), 10);
	json_t *u = json_object_get(d, "user");
	cr_expect_str_eq(json_string_value(json_object_get(u, "id")), "42");
	cr_expect_str_eq(json_string_value(json_object_get(u, "username")),
			 "im-bot");
	cr_expect(json_is_true(json_object_get(u, "bot")));
	json_t *gs = json_object_get(d, "guilds");
	cr_assert_eq(json_array_size(gs), 2);
	cr_expect_str_eq(json_string_value(json_object_get(
			     json_array_get(gs, 1), "id")),
			 "1200000000000000002");
	cr_expect(json_is_true(
	    json_object_get(json_array_get(gs, 0), "unavailable")));
	char sid[64], url[96];
	cr_assert(fdg_session(gw, sid, sizeof(sid)));
	cr_expect_str_eq(json_string_value(json_object_get(d, "session_id")),
			 sid);
	cr_expect_eq(strlen(sid), 32, "random hex: %s", sid);
	snprintf(url, sizeof(url), "%sresume/", fdg_url(gw));
	cr_expect_str_eq(
	    json_string_value(json_object_get(d, "resume_gateway_url")), url);
	cr_expect_str_eq(json_string_value(json_object_get(
			     json_object_get(d, "application"), "id")),
			 "42");
	json_decref(r);
	for (int i = 0; i < 2; i++) {
		json_t *gc = cl_expect(c, 0, "GUILD_CREATE");
		json_t *gd = json_object_get(gc, "d");
		cr_expect_eq(json_integer_value(json_object_get(gc, "s")), 2 + i);
		cr_expect_str_eq(
		    json_string_value(json_object_get(gd, "name")),
		    "Contoso Ops");
		cr_expect(json_is_false(json_object_get(gd, "unavailable")));
		json_t *ch = json_array_get(json_object_get(gd, "channels"), 0);
		cr_expect_str_eq(json_string_value(json_object_get(ch, "name")),
				 "incidents");
		cr_expect_eq(json_integer_value(json_object_get(ch, "type")), 0);
		json_decref(gc);
	}
	cr_expect(fdg_wait(gw, "live", 1, 1000));
	cr_expect_eq(fdg_identifies(gw), 1);
	json_t *id = fdg_last_identify(gw);
	cr_expect_str_eq(json_string_value(json_object_get(id, "token")),
			 "<redacted>");
	cr_expect_eq(json_integer_value(json_object_get(id, "intents")), GUILDS);
	cr_expect_str_eq(json_string_value(json_object_get(
			     json_object_get(id, "properties"), "os")),
			 "linux");
	json_decref(id);
	cl_free(c);
}

Test(fake_discord_gw, closes_4004_for_a_wrong_token)
{
	expect_refused("/?v=10&encoding=json",
		       "{\"op\":2,\"d\":{\"token\":\"nope\",\"intents\":1,"
		       "\"properties\":{\"os\":\"l\",\"browser\":\"b\","
		       "\"device\":\"d\"}}}",
		       4004, "Authentication failed.");
	cr_expect_eq(fdg_identifies(gw), 0);
	cr_expect_null(fdg_last_identify(gw));
}

Test(fake_discord_gw, closes_4013_for_intents_past_bit_25)
{
	cl *c = cl_hello();
	send_identify(c, TOKEN, 1L << 26);
	cr_expect_eq(cl_closed(c, 3000), 4013);
	cr_expect_str_eq(c->close_reason, "Invalid intent(s).");
	cl_free(c);
	expect_close(4013, "Invalid intent(s).", "server");
}

Test(fake_discord_gw, closes_4014_for_privileged_intents_not_enabled)
{
	cl *c = cl_hello();
	send_identify(c, TOKEN, GUILDS | MESSAGE_CONTENT);
	cr_expect_eq(cl_closed(c, 3000), 4014);
	cr_expect_str_eq(c->close_reason, "Disallowed intent(s).");
	cl_free(c);
	fdg_set_privileged(gw, MESSAGE_CONTENT);
	c = cl_hello();
	send_identify(c, TOKEN, GUILDS | MESSAGE_CONTENT);
	cl_skip(c, 0, "READY");
	cl_free(c);
	fdg_set_privileged(gw, 1 << 1); /* members only, from now on */
	c = cl_hello();
	send_identify(c, TOKEN, MESSAGE_CONTENT);
	cr_expect_eq(cl_closed(c, 3000), 4014);
	cl_free(c);
	cr_expect_eq(fdg_identifies(gw), 1);
}

Test(fake_discord_gw, takes_privileged_intents_from_the_options)
{
	fdg_stop(gw);
	fdg_opts o = {.privileged = (1 << 1) | (1 << 8) | (1 << 15)};
	up(&o);
	cl *c = cl_hello();
	send_identify(c, TOKEN, (1 << 1) | (1 << 8) | (1 << 15) | (1 << 25));
	cl_skip(c, 0, "READY");
	cl_free(c);
}

Test(fake_discord_gw, closes_4005_for_a_second_identify)
{
	cl *c = cl_ready();
	send_identify(c, TOKEN, GUILDS);
	cr_expect_eq(cl_closed(c, 3000), 4005);
	cr_expect_str_eq(c->close_reason, "Already authenticated.");
	cl_free(c);
	cr_expect_eq(fdg_identifies(gw), 1);
}

/* --- malformed payloads --------------------------------------------------- */

Test(fake_discord_gw, closes_4002_for_a_payload_that_is_not_json)
{
	expect_refused("/?v=10&encoding=json", "{\"op\":1,", 4002,
		       "Decode error");
}

Test(fake_discord_gw, closes_4001_for_an_unknown_op)
{
	cl *c = cl_ready();
	cl_send(c, "{\"op\":5,\"d\":null}");
	cr_expect_eq(cl_closed(c, 3000), 4001);
	cr_expect_str_eq(c->close_reason, "Unknown opcode");
	cl_free(c);
}

Test(fake_discord_gw, closes_4003_for_a_payload_before_identify)
{
	expect_refused("/?v=10&encoding=json",
		       "{\"op\":3,\"d\":{\"status\":\"idle\",\"since\":null,"
		       "\"activities\":[],\"afk\":false}}",
		       4003, "Not authenticated.");
}

Test(fake_discord_gw, takes_4096_bytes_and_closes_4002_past_them)
{
	char big[5000];
	cl *c = cl_hello();
	/* {"op":1,"d":null,"x":"aaa..."} of exactly 4096 bytes */
	int head = snprintf(big, sizeof(big), "{\"op\":1,\"d\":null,\"x\":\"");
	memset(big + head, 'a', (size_t)(4096 - head - 2));
	strcpy(big + 4096 - 2, "\"}");
	cr_assert_eq(strlen(big), 4096);
	cl_send(c, big);
	cl_skip(c, 11, NULL);
	memset(big + head, 'a', (size_t)(4097 - head - 2));
	strcpy(big + 4097 - 2, "\"}");
	cl_send(c, big);
	cr_expect_eq(cl_closed(c, 3000), 4002);
	cr_expect_str_eq(c->close_reason, "Decode error");
	cl_free(c);
}

Test(fake_discord_gw, closes_4008_past_120_payloads_a_minute)
{
	cl *c = cl_hello();
	for (int i = 0; i < 121; i++)
		cl_send(c, "{\"op\":1,\"d\":null}");
	cr_expect_eq(cl_closed(c, 5000), 4008);
	cr_expect_str_eq(c->close_reason, "Rate limited.");
	size_t acks = 0, i;
	json_t *m;
	json_array_foreach(c->inbox, i, m)
		acks += json_integer_value(json_object_get(m, "op")) == 11;
	cr_expect_eq(acks, 120, "the 120 before it are served, not %zu",
		     acks);
	cl_free(c);
	expect_close(4008, "Rate limited.", "server");
}

/* --- heartbeats --------------------------------------------------------- */

Test(fake_discord_gw, acks_and_records_heartbeats)
{
	double before = (double)time(NULL);
	cl *c = cl_hello();
	cl_send(c, "{\"op\":1,\"d\":null}"); /* allowed before identify */
	json_t *ack = cl_expect(c, 11, NULL);
	cr_expect(json_is_null(json_object_get(ack, "d")));
	json_decref(ack);
	send_identify(c, TOKEN, GUILDS);
	cl_skip(c, 0, "READY");
	cl_skip(c, 0, "GUILD_CREATE");
	cl_send(c, "{\"op\":1,\"d\":2}");
	cl_skip(c, 11, NULL);
	fdg_set_acks(gw, false);
	cl_send(c, "{\"op\":1,\"d\":2}");
	cr_assert(fdg_wait(gw, "heartbeats", 3, 2000));
	json_t *none = cl_next(c, 300);
	cr_expect_null(none, "no ACK when switched off");
	json_decref(none);
	fdg_set_acks(gw, true);
	cl_send(c, "{\"op\":1,\"d\":2}");
	cl_skip(c, 11, NULL);
	cr_expect_eq(fdg_heartbeats(gw), 4);
	json_t *log = fdg_heartbeat_log(gw);
	cr_assert_eq(json_array_size(log), 4);
	cr_expect(json_is_null(json_object_get(json_array_get(log, 0), "d")));
	cr_expect_eq(json_integer_value(
			 json_object_get(json_array_get(log, 1), "d")),
		     2);
	double t = json_real_value(json_object_get(json_array_get(log, 3), "t"));
	cr_expect(t >= before && t < before + 30, "unix seconds: %f", t);
	json_decref(log);
	cl_free(c);
}

Test(fake_discord_gw, asks_for_a_heartbeat)
{
	cl *c = cl_ready();
	fdg_request_heartbeat(gw);
	json_t *m = cl_expect(c, 1, NULL);
	cr_expect(json_is_null(json_object_get(m, "s")));
	json_decref(m);
	cl_free(c);
}

/* --- dispatch, resume --------------------------------------------------- */

Test(fake_discord_gw, dispatches_with_the_next_seq)
{
	cr_expect_not(fdg_dispatch(gw, "MESSAGE_CREATE", "{}"), "none live");
	cl *c = cl_ready();
	cr_assert(fdg_dispatch(gw, "MESSAGE_CREATE",
			       "{\"id\":\"1\",\"content\":\"hi\"}"));
	json_t *m = cl_expect(c, 0, "MESSAGE_CREATE");
	cr_expect_eq(json_integer_value(json_object_get(m, "s")), 3);
	cr_expect_str_eq(json_string_value(json_object_get(
			     json_object_get(m, "d"), "content")),
			 "hi");
	json_decref(m);
	cr_expect_not(fdg_dispatch(gw, "X", "{not json"));
	cl_free(c);
}

Test(fake_discord_gw, resumes_and_replays_what_came_after_seq)
{
	char sid[64];
	cl *c = cl_ready();
	cr_assert(fdg_session(gw, sid, sizeof(sid)));
	cr_assert(fdg_dispatch(gw, "MESSAGE_CREATE", "{\"n\":3}"));
	cr_assert(fdg_dispatch(gw, "MESSAGE_CREATE", "{\"n\":4}"));
	cl_skip(c, 0, "MESSAGE_CREATE");
	cl_skip(c, 0, "MESSAGE_CREATE");
	cl_free(c); /* a TCP drop keeps the session */
	cr_assert(fdg_wait(gw, "live", 0, 2000));
	cr_expect_not(fdg_dispatch(gw, "MESSAGE_CREATE", "{\"n\":5}"),
		      "not delivered, but kept for the resume");
	c = cl_open("/resume/?v=10&encoding=json");
	cl_skip(c, 10, NULL);
	send_resume(c, TOKEN, sid, 3);
	for (int n = 4; n <= 5; n++) {
		json_t *m = cl_expect(c, 0, "MESSAGE_CREATE");
		cr_expect_eq(json_integer_value(json_object_get(m, "s")), n);
		cr_expect_eq(json_integer_value(
				 json_object_get(json_object_get(m, "d"), "n")),
			     n);
		json_decref(m);
	}
	json_t *r = cl_expect(c, 0, "RESUMED");
	cr_expect_eq(json_integer_value(json_object_get(r, "s")), 6);
	json_decref(r);
	cr_expect(fdg_wait(gw, "resumes", 1, 1000));
	cr_expect(fdg_live(gw));
	cr_expect_eq(fdg_identifies(gw), 1);
	char again[64];
	cr_expect(fdg_session(gw, again, sizeof(again)));
	cr_expect_str_eq(again, sid);
	cr_assert(fdg_dispatch(gw, "TYPING_START", "{}"));
	json_t *m = cl_expect(c, 0, "TYPING_START");
	cr_expect_eq(json_integer_value(json_object_get(m, "s")), 7);
	json_decref(m);
	json_t *rs = fdg_received(gw, 6);
	cr_expect_str_eq(json_string_value(json_object_get(
			     json_array_get(rs, 0), "token")),
			 "<redacted>");
	json_decref(rs);
	cl_free(c);
}

Test(fake_discord_gw, answers_an_unknown_session_with_op9_and_stays_open)
{
	cl *c = cl_hello();
	send_resume(c, TOKEN, "0123456789abcdef0123456789abcdef", 1);
	json_t *m = cl_expect(c, 9, NULL);
	cr_expect(json_is_false(json_object_get(m, "d")));
	json_decref(m);
	cl_send(c, "{\"op\":1,\"d\":null}");
	cl_skip(c, 11, NULL);
	cr_expect_eq(fdg_resumes(gw), 0);
	send_identify(c, TOKEN, GUILDS);
	cl_skip(c, 0, "READY");
	cl_free(c);
}

Test(fake_discord_gw, closes_4007_for_a_seq_it_never_sent)
{
	char sid[64];
	cl *c = cl_ready();
	cr_assert(fdg_session(gw, sid, sizeof(sid)));
	cl_free(c);
	cr_assert(fdg_wait(gw, "live", 0, 2000));
	c = cl_hello();
	send_resume(c, TOKEN, sid, 99);
	cr_expect_eq(cl_closed(c, 3000), 4007);
	cl_free(c);
	cr_expect_not(fdg_session(gw, sid, sizeof(sid)), "the session is gone");
}

/* Resumes `sid` on a fresh connection: true if RESUMED came, false for
 * op 9 d=false. */
static bool try_resume(const char *sid, int seq)
{
	cl *c = cl_hello();
	send_resume(c, TOKEN, sid, seq);
	json_t *m = cl_next(c, 3000);
	cr_assert(m, "an answer to resume");
	int op = (int)json_integer_value(json_object_get(m, "op"));
	if (op == 9)
		cr_expect(json_is_false(json_object_get(m, "d")));
	else
		cr_expect_str_eq(json_string_value(json_object_get(m, "t")),
				 "RESUMED");
	json_decref(m);
	cl_free(c);
	cr_assert(fdg_wait(gw, "live", 0, 2000));
	return op == 0;
}

Test(fake_discord_gw, client_close_1000_ends_the_session_4000_does_not)
{
	char sid[64];
	cl *c = cl_ready();
	cr_assert(fdg_session(gw, sid, sizeof(sid)));
	cl_close(c, 4000, "reconnecting");
	cl_free(c);
	expect_close(4000, "reconnecting", "client");
	cr_expect(try_resume(sid, 2), "resumable after 4000");
	c = cl_hello();
	send_resume(c, TOKEN, sid, 2);
	cl_skip(c, 0, "RESUMED");
	cl_close(c, 1000, "bye");
	cl_free(c);
	cr_assert(fdg_wait(gw, "closes", 2, 2000));
	expect_close(1000, "bye", "client");
	cr_expect_not(try_resume(sid, 2), "1000 ended the session");
	cr_expect_eq(fdg_resumes(gw), 2);
}

Test(fake_discord_gw, sends_reconnect_and_invalid_session)
{
	char sid[64];
	cl *c = cl_ready();
	cr_assert(fdg_session(gw, sid, sizeof(sid)));
	fdg_reconnect(gw);
	cl_skip(c, 7, NULL);
	fdg_invalid_session(gw, true);
	json_t *m = cl_expect(c, 9, NULL);
	cr_expect(json_is_true(json_object_get(m, "d")));
	json_decref(m);
	cr_expect_not(fdg_live(gw));
	cl_free(c);
	cr_expect(try_resume(sid, 2), "d=true keeps the session");
	c = cl_hello();
	send_resume(c, TOKEN, sid, 3);
	cl_skip(c, 0, "RESUMED");
	fdg_invalid_session(gw, false);
	m = cl_expect(c, 9, NULL);
	cr_expect(json_is_false(json_object_get(m, "d")));
	json_decref(m);
	cl_free(c);
	cr_expect_not(fdg_session(gw, sid, sizeof(sid)));
	cr_expect_not(try_resume(sid, 3), "d=false forgets the session");
}

Test(fake_discord_gw, closes_with_a_code_the_test_picks)
{
	char sid[64];
	cl *c = cl_ready();
	cr_assert(fdg_session(gw, sid, sizeof(sid)));
	fdg_close(gw, 4000, "Unknown error");
	cr_expect_eq(cl_closed(c, 3000), 4000);
	cl_free(c);
	expect_close(4000, "Unknown error", "server");
	cr_expect(fdg_wait(gw, "live", 0, 2000));
	cr_expect(try_resume(sid, 2), "resumable after 4000");
	c = cl_hello();
	send_resume(c, TOKEN, sid, 2);
	cl_skip(c, 0, "RESUMED");
	fdg_close(gw, 4009, "Session timed out");
	cr_expect_eq(cl_closed(c, 3000), 4009);
	cr_expect_str_eq(c->close_reason, "Session timed out");
	cl_free(c);
	cr_expect_not(try_resume(sid, 2), "4009 ends the session");
}

Test(fake_discord_gw, drops_without_a_close_frame)
{
	char sid[64];
	cl *c = cl_ready();
	cr_assert(fdg_session(gw, sid, sizeof(sid)));
	fdg_drop(gw);
	cr_expect_eq(cl_closed(c, 3000), 0, "no close frame");
	cr_expect(c->eof, "the connection ended");
	cl_free(c);
	cr_expect(fdg_wait(gw, "live", 0, 2000));
	json_t *cs = fdg_closes(gw);
	cr_expect_eq(json_array_size(cs), 0, "no close recorded");
	json_decref(cs);
	cr_expect(try_resume(sid, 2), "a drop keeps the session");
}

Test(fake_discord_gw, refuses_a_revoked_token)
{
	char sid[64];
	cl *c = cl_ready();
	cr_assert(fdg_session(gw, sid, sizeof(sid)));
	cl_free(c);
	fdg_set_token(gw, "new-token");
	c = cl_hello();
	send_resume(c, TOKEN, sid, 2);
	cr_expect_eq(cl_closed(c, 3000), 4004);
	cl_free(c);
	c = cl_hello();
	send_identify(c, TOKEN, GUILDS);
	cr_expect_eq(cl_closed(c, 3000), 4004);
	cl_free(c);
	c = cl_hello();
	send_identify(c, "new-token", GUILDS);
	cl_skip(c, 0, "READY");
	cl_free(c);
}

Test(fake_discord_gw, serves_an_old_connection_after_a_new_one_identifies)
{
	cl *a = cl_ready();
	cl *b = cl_ready();
	cr_assert(fdg_wait(gw, "identifies", 2, 1000));
	cr_assert(fdg_dispatch(gw, "MESSAGE_CREATE", "{}"));
	cl_skip(b, 0, "MESSAGE_CREATE");
	json_t *none = cl_next(a, 200);
	cr_expect_null(none, "only the live connection gets dispatches");
	json_decref(none);
	cl_send(a, "{\"op\":1,\"d\":2}");
	cl_skip(a, 11, NULL);
	cl_free(a);
	usleep(100 * 1000);
	cr_expect(fdg_live(gw), "b is still live after a leaves");
	fdg_request_heartbeat(gw);
	cl_skip(b, 1, NULL);
	cl_free(b);
	cr_expect(fdg_wait(gw, "live", 0, 2000));
}

Test(fake_discord_gw, records_other_ops)
{
	cl *c = cl_ready();
	cl_send(c, "{\"op\":3,\"d\":{\"status\":\"idle\",\"since\":null,"
		   "\"activities\":[],\"afk\":false}}");
	cl_send(c, "{\"op\":8,\"d\":{\"guild_id\":\"1\",\"limit\":0}}");
	cl_send(c, "{\"op\":1,\"d\":2}");
	cl_skip(c, 11, NULL); /* both came before it */
	json_t *p = fdg_received(gw, 3), *r = fdg_received(gw, 8);
	cr_expect_str_eq(json_string_value(json_object_get(
			     json_array_get(p, 0), "status")),
			 "idle");
	cr_expect_eq(json_array_size(r), 1);
	json_decref(p);
	json_decref(r);
	cl_free(c);
}

/* --- bounds --------------------------------------------------------------- */

Test(fake_discord_gw, times_out_waiting)
{
	long long t0 = now_ms();
	cr_expect_not(fdg_wait(gw, "identifies", 1, 200));
	cr_expect_geq(now_ms() - t0, 190);
	cr_expect_not(fdg_wait(gw, "no such counter", 0, 10));
}

Test(fake_discord_gw, gives_up_on_a_client_that_never_answers_a_close)
{
	cl *c = cl_ready();
	fdg_close(gw, 4000, "Unknown error");
	/* No pumping: the client neither reads nor echoes. */
	long long t0 = now_ms();
	cr_expect(fdg_wait(gw, "live", 0, 3000), "dropped after a while");
	cr_expect_lt(now_ms() - t0, 2500);
	cl_free(c);
}

Test(fake_discord_gw, stops_quickly_while_clients_hang)
{
	cl *c = cl_ready();
	/* One more that never sends its upgrade request. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)gw_port()),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	usleep(100 * 1000);
	long long t0 = now_ms();
	fdg_stop(gw);
	gw = NULL;
	cr_expect_lt(now_ms() - t0, 1500, "stopped in %lld ms",
		     now_ms() - t0);
	close(fd);
	cl_free(c);
}
