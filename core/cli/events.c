/* `im events status` and `im events tail`.
 *
 * tail reads the server's Server-Sent Events over a plain socket with a
 * small hand-written HTTP/1.1 client (chunked bodies included): the CLI
 * does not link libcurl, and SSE needs nothing more. When the connection
 * drops, or the server cuts the client off as too slow, tail reconnects
 * with Last-Event-ID so no event is lost or repeated. */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"

#define READ_TIMEOUT_MS 45000 /* three missed keep-alives */
#define CONNECT_TIMEOUT_MS 5000

/* ---- events status ----------------------------------------------------- */

static const char *or_dash(const char *s)
{
	return s ? s : "-";
}

static long long jint(const json_t *o, const char *a, const char *b)
{
	return json_integer_value(json_object_get(json_object_get(o, a), b));
}

int cli_events_status(cli_ctx *ctx)
{
	char err[1024];
	long status = 0;
	json_t *ans = NULL;
	if (cli_api_call(ctx, "GET", "/api/v1/events/status", NULL, NULL,
			 &status, &ans, err, sizeof(err)) != 0) {
		fprintf(stderr, "im: %s\n", err);
		return CLI_FAIL;
	}
	if (status != 200) {
		cli_print_error("events status", ans);
		json_decref(ans);
		return CLI_FAIL;
	}
	if (ctx->json) {
		json_dumpf(ans, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(ans);
		return CLI_OK;
	}
	const json_t *bus = json_object_get(ans, "bus");
	bool conn = json_is_true(json_object_get(bus, "connected"));
	bool sub = json_is_true(json_object_get(bus, "subscribed"));
	printf("event bus: %s, %s and %s\n",
	       or_dash(json_string_value(json_object_get(bus, "kind"))),
	       conn ? "connected" : "not connected",
	       sub ? "subscribed" : "not subscribed");
	printf("last sequence: %lld (published %lld since start, %lld in "
	       "memory)\n",
	       jint(ans, "bus", "last_seq"), jint(ans, "bus", "published"),
	       jint(ans, "bus", "in_ring"));
	printf("stream clients: %lld SSE, %lld WebSocket (%lld cut off)\n",
	       jint(ans, "streams", "sse"), jint(ans, "streams", "ws"),
	       jint(ans, "streams", "cut_off"));
	json_decref(ans);
	return CLI_OK;
}

/* ---- a minimal HTTP/1.1 reader ----------------------------------------- */

typedef struct conn {
	int fd;
	char buf[16384];
	size_t len, off;
	bool chunked;
	long long left; /* bytes left in this chunk (or body); -1 = to EOF */
	bool done;
} conn;

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	interrupted = 1;
}

/* Reads more into the buffer: >0 bytes, 0 EOF, -1 error or timeout. */
static int more(conn *c)
{
	if (c->off == c->len)
		c->off = c->len = 0;
	if (c->len == sizeof(c->buf)) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	int r = poll(&p, 1, READ_TIMEOUT_MS);
	if (r <= 0)
		return -1;
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n < 0)
		return -1;
	c->len += (size_t)n;
	return (int)n;
}

/* One CRLF-terminated line (headers, chunk sizes) without the CRLF. */
static bool get_line(conn *c, char *line, size_t max)
{
	for (;;) {
		char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);
		if (nl) {
			size_t n = (size_t)(nl - (c->buf + c->off));
			if (n && nl[-1] == '\r')
				n--;
			if (n >= max)
				n = max - 1;
			memcpy(line, c->buf + c->off, n);
			line[n] = '\0';
			c->off = (size_t)(nl - c->buf) + 1;
			return true;
		}
		if (more(c) <= 0)
			return false;
	}
}

/* Body bytes, de-chunked: >0 bytes copied, 0 at the end, -1 on error. */
static long body_read(conn *c, char *out, size_t max)
{
	if (c->done)
		return 0;
	if (c->chunked && c->left == 0) {
		char line[64];
		if (!get_line(c, line, sizeof(line)))
			return -1;
		c->left = strtoll(line, NULL, 16);
		if (c->left <= 0) {
			c->done = true;
			return 0;
		}
	}
	if (c->off == c->len) {
		int r = more(c);
		if (r <= 0) {
			c->done = true;
			return r == 0 && !c->chunked ? 0 : -1;
		}
	}
	size_t n = c->len - c->off;
	if (n > max)
		n = max;
	if (c->left >= 0 && (long long)n > c->left)
		n = (size_t)c->left;
	memcpy(out, c->buf + c->off, n);
	c->off += n;
	if (c->left > 0)
		c->left -= (long long)n;
	if (c->chunked && c->left == 0) {
		char crlf[8];
		if (!get_line(c, crlf, sizeof(crlf)))
			return -1;
	}
	return (long)n;
}

/* ---- connecting ---------------------------------------------------------- */

typedef struct target {
	char host[256];
	char port[8];
	char prefix[512]; /* path of the base URL, without a trailing '/' */
	char token[1024];
} target;

static bool parse_base(const char *url, target *t, char *err, size_t elen)
{
	if (strncmp(url, "http://", 7) != 0) {
		snprintf(err, elen,
			 "events tail speaks plain http:// only, not %s", url);
		return false;
	}
	const char *h = url + 7, *end;
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end)
			return false;
		snprintf(t->host, sizeof(t->host), "%.*s", (int)(end - h - 1),
			 h + 1);
		end++;
	} else {
		end = h + strcspn(h, ":/");
		snprintf(t->host, sizeof(t->host), "%.*s", (int)(end - h), h);
	}
	snprintf(t->port, sizeof(t->port), "80");
	if (*end == ':') {
		size_t n = strcspn(end + 1, "/");
		snprintf(t->port, sizeof(t->port), "%.*s", (int)n, end + 1);
		end += 1 + n;
	}
	snprintf(t->prefix, sizeof(t->prefix), "%s", end);
	return true;
}

static void find_token(const cli_ctx *ctx, target *t)
{
	const char *tok = getenv("IM_API_TOKEN");
	if (!tok || !*tok)
		tok = getenv("IM_ADMIN_TOKEN");
	if (tok) {
		snprintf(t->token, sizeof(t->token), "%s", tok);
		return;
	}
	im_config *cfg = cli_load_config(ctx, true);
	snprintf(t->token, sizeof(t->token), "%s",
		 cfg ? im_config_string(cfg, "server.admin_token", "") : "");
	im_config_free(cfg);
}

static int dial(const target *t)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	if (getaddrinfo(t->host, t->port, &hints, &ai) != 0)
		return -1;
	int fd = -1;
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
		struct timeval tv = {CONNECT_TIMEOUT_MS / 1000, 0};
		if (fd >= 0 &&
		    (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
		     connect(fd, a->ai_addr, a->ai_addrlen) != 0)) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	return fd;
}

static bool send_request(int fd, const cli_ctx *ctx, const target *t,
			 long long last_id)
{
	char q[1024] = "keepalive_ms=15000", enc[512];
	const char *type = cli_opt_get(ctx, "type");
	const char *inc = cli_opt_get(ctx, "incident");
	if (type) {
		cli_url_encode(type, "*,", enc, sizeof(enc));
		snprintf(q + strlen(q), sizeof(q) - strlen(q), "&type=%s", enc);
	}
	if (inc) {
		cli_url_encode(inc, "*,", enc, sizeof(enc));
		snprintf(q + strlen(q), sizeof(q) - strlen(q), "&incident=%s",
			 enc);
	}
	char req[4096], idh[64] = "", auth[1100] = "";
	if (last_id >= 0)
		snprintf(idh, sizeof(idh), "Last-Event-ID: %lld\r\n", last_id);
	if (*t->token)
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n",
			 t->token);
	int n = snprintf(req, sizeof(req),
			 "GET %s/api/v1/events?%s HTTP/1.1\r\nHost: %s:%s\r\n"
			 "Accept: text/event-stream\r\nUser-Agent: im-cli\r\n"
			 "%s%s\r\n",
			 t->prefix, q, t->host, t->port, idh, auth);
	return n > 0 && (size_t)n < sizeof(req) &&
	       send(fd, req, (size_t)n, MSG_NOSIGNAL) == n;
}

/* Reads the status line and headers; returns the status (0 on error). */
static int read_head(conn *c)
{
	char line[2048];
	int status = 0;
	if (!get_line(c, line, sizeof(line)) ||
	    sscanf(line, "HTTP/%*d.%*d %d", &status) != 1)
		return 0;
	c->left = -1;
	while (get_line(c, line, sizeof(line)) && *line) {
		if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 &&
		    strstr(line, "chunked")) {
			c->chunked = true;
			c->left = 0;
		} else if (strncasecmp(line, "Content-Length:", 15) == 0) {
			c->left = strtoll(line + 15, NULL, 10);
		}
	}
	return status;
}

/* Prints why the server refused the request (its JSON error). */
static void print_refusal(conn *c, int status)
{
	char body[8192];
	size_t n = 0;
	long r;
	while (n + 1 < sizeof(body) &&
	       (r = body_read(c, body + n, sizeof(body) - 1 - n)) > 0)
		n += (size_t)r;
	body[n] = '\0';
	json_t *j = json_loads(body, 0, NULL);
	if (j) {
		cli_print_error("events tail", j);
		json_decref(j);
	} else {
		fprintf(stderr, "im: events tail: the server answered HTTP %d\n",
			status);
	}
}

/* ---- Server-Sent Events ---------------------------------------------------- */

typedef struct sse_state {
	char line[1 << 16];
	size_t line_len;
	bool overlong;
	char id[32], event[128];
	char *data;
	size_t data_len;
	long long last_id;
	long printed, count;
	bool cut; /* the server said we were too slow */
	bool json;
} sse_state;

static const char *str_at(const json_t *o, const char *a, const char *b)
{
	const json_t *v = json_object_get(o, a);
	if (b)
		v = json_object_get(v, b);
	return json_string_value(v);
}

/* "<seq> <time> <type> <subject> <actor> <summary>" */
static void print_line(const sse_state *st)
{
	json_t *ev = json_loadb(st->data, st->data_len, 0, NULL);
	const json_t *d = json_object_get(ev, "data");
	const json_t *inc = json_object_get(d, "incident");
	const char *actor = str_at(d, "actor", "name");
	if (!actor)
		actor = str_at(d, "actor", "id");
	const char *note = str_at(d, "change", "note");
	if (!note)
		note = str_at(d, "change", "text");
	const char *title = str_at(inc, "title", NULL);
	printf("%s %s %s %s %s %s %s \"%.60s\"%s%.60s\n", st->id,
	       or_dash(str_at(ev, "time", NULL)), st->event,
	       or_dash(str_at(ev, "subject", NULL)), or_dash(actor),
	       or_dash(str_at(inc, "status", NULL)),
	       or_dash(str_at(inc, "severity", NULL)), title ? title : "",
	       note ? ": " : "", note ? note : "");
	json_decref(ev);
}

static void dispatch_event(sse_state *st)
{
	if (!st->data_len && !st->event[0])
		return;
	if (!strcmp(st->event, "error")) {
		st->cut = true;
		fprintf(stderr, "im: events tail: the server cut the stream "
				"(%.*s); reconnecting\n",
			(int)st->data_len, st->data ? st->data : "");
	} else if (st->id[0] && st->data) {
		st->last_id = strtoll(st->id, NULL, 10);
		if (st->json)
			printf("%.*s\n", (int)st->data_len, st->data);
		else
			print_line(st);
		fflush(stdout);
		st->printed++;
	}
	st->id[0] = st->event[0] = '\0';
	st->data_len = 0;
}

static void add_data(sse_state *st, const char *v, size_t n)
{
	char *d = realloc(st->data, st->data_len + n + 2);
	if (!d)
		return;
	st->data = d;
	if (st->data_len)
		d[st->data_len++] = '\n';
	memcpy(d + st->data_len, v, n);
	st->data_len += n;
	d[st->data_len] = '\0';
}

static void field(sse_state *st, char *line, size_t n)
{
	if (n == 0) {
		dispatch_event(st);
		return;
	}
	if (line[0] == ':') {
		/* A comment: keep-alive, or where the stream starts - the
		 * point to resume from if it drops before any event. */
		static const char start[] = ": subscribed after ";
		if (st->last_id < 0 &&
		    strncmp(line, start, sizeof(start) - 1) == 0)
			st->last_id = strtoll(line + sizeof(start) - 1, NULL,
					      10);
		return;
	}
	char *colon = memchr(line, ':', n);
	size_t kl = colon ? (size_t)(colon - line) : n;
	const char *v = colon ? colon + 1 : "";
	if (colon && *v == ' ')
		v++;
	size_t vl = (size_t)(line + n - v);
	if (kl == 2 && !strncmp(line, "id", 2))
		snprintf(st->id, sizeof(st->id), "%.*s", (int)vl, v);
	else if (kl == 5 && !strncmp(line, "event", 5))
		snprintf(st->event, sizeof(st->event), "%.*s", (int)vl, v);
	else if (kl == 4 && !strncmp(line, "data", 4))
		add_data(st, v, vl);
}

static void feed_bytes(sse_state *st, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\n') {
			if (st->line_len + 1 < sizeof(st->line))
				st->line[st->line_len++] = p[i];
			continue;
		}
		size_t l = st->line_len;
		if (l && st->line[l - 1] == '\r')
			l--;
		st->line[l] = '\0';
		field(st, st->line, l);
		st->line_len = 0;
		if (st->count && st->printed >= st->count)
			return;
	}
}

/* ---- events tail ----------------------------------------------------------- */

enum { TAIL_DONE, TAIL_DROPPED, TAIL_REFUSED, TAIL_UNREACHABLE };

/* One connection: returns why it ended. */
static int tail_once(const cli_ctx *ctx, const target *t, sse_state *st)
{
	conn *c = calloc(1, sizeof(*c));
	if (!c)
		return TAIL_REFUSED;
	int rc = TAIL_DROPPED;
	c->fd = dial(t);
	if (c->fd < 0) {
		free(c);
		return TAIL_UNREACHABLE;
	}
	int status = send_request(c->fd, ctx, t, st->last_id)
			 ? read_head(c)
			 : 0;
	if (status != 200) {
		if (status)
			print_refusal(c, status);
		rc = status ? TAIL_REFUSED : TAIL_UNREACHABLE;
		goto out;
	}
	st->cut = false;
	st->line_len = 0;
	char buf[8192];
	long n;
	while (!interrupted && !st->cut && (n = body_read(c, buf,
							  sizeof(buf))) > 0) {
		feed_bytes(st, buf, (size_t)n);
		if (st->count && st->printed >= st->count) {
			rc = TAIL_DONE;
			break;
		}
	}
out:
	close(c->fd);
	free(c);
	return rc;
}

static bool parse_count(const char *s, long long *out)
{
	if (!s || !*s || strspn(s, "0123456789") != strlen(s) ||
	    strlen(s) > 15)
		return false;
	*out = strtoll(s, NULL, 10);
	return true;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int tail_loop(const cli_ctx *ctx, const target *t, sse_state *st)
{
	long backoff = 200;
	bool ever = false;
	while (!interrupted) {
		int rc = tail_once(ctx, t, st);
		if (rc == TAIL_DONE)
			return CLI_OK;
		if (rc == TAIL_REFUSED)
			return CLI_FAIL;
		if (rc == TAIL_UNREACHABLE && !ever) {
			fprintf(stderr,
				"im: cannot reach the im server at http://%s:%s; "
				"is `im serve` running? (set IM_URL to its "
				"address)\n",
				t->host, t->port);
			return CLI_FAIL;
		}
		if (rc == TAIL_DROPPED) {
			ever = true;
			backoff = st->cut ? 0 : 200;
		}
		if (interrupted)
			break;
		if (!st->cut)
			fprintf(stderr, "im: events tail: connection lost; "
					"reconnecting after event %lld\n",
				st->last_id);
		sleep_ms(backoff);
		backoff = backoff < 2500 ? backoff * 2 + 100 : 5000;
	}
	return CLI_OK;
}

int cli_events_tail(cli_ctx *ctx)
{
	long long since = -1, count = 0;
	const char *s = cli_opt_get(ctx, "since");
	const char *n = cli_opt_get(ctx, "count");
	if ((s && !parse_count(s, &since)) ||
	    (n && (!parse_count(n, &count) || count == 0))) {
		fprintf(stderr, "im: --since and --count take a whole number "
				"(--count at least 1)\n");
		return CLI_USAGE;
	}
	target t = {0};
	char url[1024], err[1100];
	cli_base_url(ctx, url, sizeof(url));
	if (!parse_base(url, &t, err, sizeof(err))) {
		fprintf(stderr, "im: %s\n", err);
		return CLI_FAIL;
	}
	find_token(ctx, &t);
	sse_state *st = calloc(1, sizeof(*st));
	if (!st)
		return CLI_FAIL;
	st->last_id = since;
	st->count = count;
	st->json = ctx->json;
	struct sigaction sa = {.sa_handler = on_sigint};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	int rc = tail_loop(ctx, &t, st);
	free(st->data);
	free(st);
	return rc;
}
