/* The fake Slack's HTTP side: libmicrohttpd on 127.0.0.1, one thread per
 * connection (so a delayed answer holds up nobody else), the Web API
 * methods the connector uses, a response_url receiver, and the record of
 * everything received. See fake_slack.h. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fake_slack_int.h"

#define MAX_BODY (1 << 20)

typedef struct req_ctx {
	char *buf;
	size_t len;
	bool too_big;
} req_ctx;

typedef struct answer {
	int status;
	json_t *body;
	int retry_after;
	bool scopes_header;
} answer;

/* --- small helpers ------------------------------------------------------ */

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* Decodes n bytes of s into out; -1 when an escape is broken. */
static long decode(const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%') {
			int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return -1;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return (long)o;
}

/* Form decoding; NULL when broken. */
static json_t *form_parse(const char *s, size_t n)
{
	json_t *o = json_object();
	char *k = malloc(n + 1), *v = malloc(n + 1);
	bool ok = o && k && v;
	for (size_t i = 0; ok && i < n;) {
		size_t e = i;
		while (e < n && s[e] != '&')
			e++;
		const char *eq = memchr(s + i, '=', e - i);
		size_t kl = eq ? (size_t)(eq - (s + i)) : e - i;
		size_t vs = eq ? i + kl + 1 : e;
		ok = decode(s + i, kl, k) >= 0 && decode(s + vs, e - vs, v) >= 0;
		if (ok && *k)
			json_object_set_new(o, k, json_string(v));
		i = e + 1;
	}
	free(k);
	free(v);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static enum MHD_Result add_kv(void *cls, enum MHD_ValueKind kind,
			      const char *k, const char *v)
{
	json_t *o = cls;
	char name[128];
	size_t i = 0;
	for (; k[i] && i < sizeof(name) - 1; i++)
		name[i] = (char)(k[i] >= 'A' && k[i] <= 'Z' && kind ==
						 MHD_HEADER_KIND
				     ? k[i] + 32
				     : k[i]);
	name[i] = '\0';
	json_object_set_new(o, name, json_string(v ? v : ""));
	return MHD_YES;
}

static const char *str(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static void set(answer *a, int status, json_t *body)
{
	a->status = status;
	a->body = body;
}

static void error(answer *a, const char *code)
{
	set(a, 200, json_pack("{s:b,s:s}", "ok", 0, "error", code));
}

/* --- the workspace ------------------------------------------------------ */

static bool has_scope(const fake_slack *f, const char *scope)
{
	size_t n = strlen(scope);
	for (const char *p = f->scopes; (p = strstr(p, scope)); p += n)
		if ((p == f->scopes || p[-1] == ',') &&
		    (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

static bool need_scope(fake_slack *f, answer *a, const char *scope)
{
	if (has_scope(f, scope))
		return true;
	set(a, 200, json_pack("{s:b,s:s,s:s,s:s}", "ok", 0, "error",
			      "missing_scope", "needed", scope, "provided",
			      f->scopes));
	return false;
}

static json_t *channel(fake_slack *f, const char *id)
{
	size_t i;
	json_t *c;
	json_array_foreach(f->channels, i, c) if (id && !strcmp(str(c, "id"), id))
	    return c;
	return NULL;
}

/* A channel the bot may post in, or an error answer. */
static json_t *postable(fake_slack *f, const json_t *params, answer *a)
{
	json_t *c = channel(f, str(params, "channel"));
	if (!c)
		error(a, "channel_not_found");
	else if (json_is_true(json_object_get(c, "is_archived")))
		error(a, "is_archived");
	else if (!json_is_true(json_object_get(c, "is_member")))
		error(a, "not_in_channel");
	else
		return c;
	return NULL;
}

static void post_message(fake_slack *f, const json_t *p, answer *a)
{
	if (!need_scope(f, a, "chat:write") || !postable(f, p, a))
		return;
	if (!str(p, "text") && !json_object_get(p, "blocks")) {
		error(a, "no_text");
		return;
	}
	char ts[32];
	snprintf(ts, sizeof(ts), "%ld.%06lu", (long)time(NULL),
		 ++f->ts_counter % 1000000);
	json_t *m = json_pack("{s:s,s:s,s:s?,s:O?,s:s?}", "channel",
			      str(p, "channel"), "ts", ts, "text",
			      str(p, "text"), "blocks",
			      json_object_get(p, "blocks"), "thread_ts",
			      str(p, "thread_ts"));
	json_array_append(f->messages, m);
	set(a, 200, json_pack("{s:b,s:s,s:s,s:o}", "ok", 1, "channel",
			      str(p, "channel"), "ts", ts, "message", m));
}

static void update_message(fake_slack *f, const json_t *p, answer *a)
{
	if (!need_scope(f, a, "chat:write") || !postable(f, p, a))
		return;
	size_t i;
	json_t *m;
	json_array_foreach(f->messages, i, m)
	{
		if (str(p, "ts") && !strcmp(str(m, "ts"), str(p, "ts")) &&
		    !strcmp(str(m, "channel"), str(p, "channel"))) {
			if (str(p, "text"))
				json_object_set_new(m, "text",
						    json_string(str(p, "text")));
			if (json_object_get(p, "blocks"))
				json_object_set(m, "blocks",
						json_object_get(p, "blocks"));
			json_object_set_new(m, "edited", json_true());
			set(a, 200, json_pack("{s:b,s:s,s:s,s:s?}", "ok", 1,
					      "channel", str(m, "channel"),
					      "ts", str(m, "ts"), "text",
					      str(m, "text")));
			return;
		}
	}
	error(a, "message_not_found");
}

static void web_api(fake_slack *f, const char *m, const char *auth,
		    const json_t *params, answer *a)
{
	const char *tok = auth && !strncasecmp(auth, "Bearer ", 7) ? auth + 7
								    : NULL;
	if (!tok || !*tok) {
		error(a, "not_authed");
		return;
	}
	bool bot = !strcmp(tok, f->bot_token), app = !strcmp(tok, f->app_token);
	if (json_object_get(f->revoked, tok) || (!bot && !app)) {
		error(a, "invalid_auth");
		return;
	}
	if (!strcmp(m, "apps.connections.open")) {
		if (!app) {
			error(a, "not_allowed_token_type");
			return;
		}
		char url[256];
		fws_issue_url(f, url, sizeof(url));
		{
			set(a, 200, json_pack("{s:b,s:s}", "ok", 1, "url", url));
			return;
		}
	}
	if (!bot) {
		error(a, "not_allowed_token_type");
		return;
	}
	a->scopes_header = true;
	if (!strcmp(m, "auth.test"))
		set(a, 200,
		    json_pack("{s:b,s:s,s:s,s:s,s:s,s:s,s:s}", "ok", 1, "url",
			      "https://acme.slack.com/", "team", f->team,
			      "user", f->bot_user, "team_id", f->team_id,
			      "user_id", f->bot_user_id, "bot_id", "B0BOT"));
	else if (!strcmp(m, "chat.postMessage"))
		post_message(f, params, a);
	else if (!strcmp(m, "chat.update"))
		update_message(f, params, a);
	else if (!strcmp(m, "conversations.list")) {
		if (!need_scope(f, a, "channels:read"))
			return;
		json_t *b = fake_list_channels(f, params, &a->status);
		if (b)
			set(a, 200, b);
		else
			need_scope(f, a, "groups:read");
	} else if (!strcmp(m, "conversations.info")) {
		json_t *c = channel(f, str(params, "channel"));
		if (c)
			set(a, 200, json_pack("{s:b,s:O}", "ok", 1, "channel", c));
		else
			error(a, "channel_not_found");
	} else
		set(a, 404, json_pack("{s:b,s:s}", "ok", 0, "error",
				      "unknown_method"));
}

/* --- requests ----------------------------------------------------------- */

static bool injected(fake_slack *f, const char *api, answer *a)
{
	json_t *fl = json_object_get(f->fails, api);
	json_int_t times = json_integer_value(json_object_get(fl, "times"));
	if (!fl || times <= 0)
		return false;
	json_object_set_new(fl, "times", json_integer(times - 1));
	set(a, (int)json_integer_value(json_object_get(fl, "status")),
	    json_pack("{s:b,s:s}", "ok", 0, "error", str(fl, "error")));
	a->retry_after = (int)json_integer_value(json_object_get(fl, "retry_after"));
	return true;
}

static json_t *params_of(json_t *rec, const char *ctype, const char *raw,
			 size_t len, bool *bad)
{
	json_t *p = json_deep_copy(json_object_get(rec, "query"));
	*bad = false;
	if (!len)
		return p;
	json_t *body = NULL;
	if (ctype && !strncasecmp(ctype, "application/json", 16)) {
		json_error_t je;
		body = json_loadb(raw, len, 0, &je);
		if (body)
			json_object_set(rec, "json", body);
	} else {
		body = form_parse(raw, len);
		if (body)
			json_object_set(rec, "form", body);
	}
	*bad = !json_is_object(body);
	if (body)
		json_object_update(p, body);
	json_decref(body);
	return p;
}

static enum MHD_Result handle(fake_slack *f, struct MHD_Connection *c,
			      const char *url, const char *method,
			      req_ctx *ctx)
{
	json_t *rec = json_pack("{s:s,s:s,s:s#,s:o,s:o}", "method", method,
				"path", url, "raw", ctx->buf ? ctx->buf : "",
				ctx->len, "headers", json_object(), "query",
				json_object());
	if (!rec) /* not UTF-8: keep the record without the raw body */
		rec = json_pack("{s:s,s:s,s:s,s:o,s:o}", "method", method,
				"path", url, "raw", "", "headers",
				json_object(), "query", json_object());
	MHD_get_connection_values(c, MHD_HEADER_KIND, add_kv,
				  json_object_get(rec, "headers"));
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_kv,
				  json_object_get(rec, "query"));
	const json_t *hd = json_object_get(rec, "headers");
	const char *auth = str(hd, "authorization");
	const char *ctype = str(hd, "content-type");
	json_object_set_new(rec, "auth", json_string(auth ? auth : ""));
	json_object_set_new(rec, "content_type", json_string(ctype ? ctype : ""));
	bool bad = false;
	json_t *params = params_of(rec, ctype, ctx->buf, ctx->len, &bad);
	answer a = {.status = 200};
	const char *api = NULL;
	char name[128] = "";
	if (!strncmp(url, "/response/", 10)) {
		api = "response_url";
		snprintf(name, sizeof(name), "%s", url + 10);
		json_object_set_new(rec, "name", json_string(name));
	} else if (!strncmp(url, "/api/", 5)) {
		api = url + 5;
	}
	json_object_set_new(rec, "api", json_string(api ? api : ""));
	pthread_mutex_lock(&f->mu);
	unsigned delay = (unsigned)json_integer_value(
	    json_object_get(f->delays, api ? api : ""));
	if (!api)
		set(&a, 404, json_pack("{s:b,s:s}", "ok", 0, "error",
				       "not_found"));
	else if (ctx->too_big)
		set(&a, 413, json_pack("{s:b,s:s}", "ok", 0, "error",
				       "request_too_large"));
	else if (injected(f, api, &a))
		;
	else if (!strcmp(api, "response_url"))
		a.status = 200; /* body "ok" */
	else if (bad)
		error(&a, "invalid_form_data");
	else
		web_api(f, api, auth, params, &a);
	char scopes[1024];
	snprintf(scopes, sizeof(scopes), "%s", f->scopes);
	json_object_set_new(rec, "status", json_integer(a.status));
	json_array_append(f->records, rec);
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	json_decref(rec);
	json_decref(params);
	if (delay) {
		struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	char *s = a.body ? json_dumps(a.body, JSON_COMPACT) : strdup("ok");
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    strlen(s), s, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type",
				a.body ? "application/json; charset=utf-8"
				       : "text/plain");
	if (a.scopes_header)
		MHD_add_response_header(r, "x-oauth-scopes", scopes);
	if (a.retry_after > 0) {
		char v[16];
		snprintf(v, sizeof(v), "%d", a.retry_after);
		MHD_add_response_header(r, "Retry-After", v);
	}
	enum MHD_Result rc = MHD_queue_response(c, (unsigned)a.status, r);
	MHD_destroy_response(r);
	json_decref(a.body);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	req_ctx *ctx = *con_cls;
	if (!ctx) {
		*con_cls = calloc(1, sizeof(req_ctx));
		return *con_cls ? MHD_YES : MHD_NO;
	}
	if (*upload_size) {
		if (ctx->len + *upload_size > MAX_BODY) {
			ctx->too_big = true;
		} else {
			char *b = realloc(ctx->buf, ctx->len + *upload_size + 1);
			if (!b)
				return MHD_NO;
			memcpy(b + ctx->len, upload, *upload_size);
			ctx->buf = b;
			ctx->len += *upload_size;
			b[ctx->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	return handle(cls, c, url, method, ctx);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode code)
{
	req_ctx *ctx = *con_cls;
	if (ctx)
		free(ctx->buf);
	free(ctx);
	*con_cls = NULL;
}

/* --- start and stop ----------------------------------------------------- */

static void add_default_channels(fake_slack *f)
{
	fake_slack_add_channel(f, "C0GENERAL", "general", false, true);
	fake_slack_add_channel(f, "C0INCIDENTS", "incidents", false, true);
	fake_slack_add_channel(f, "C0RANDOM", "random", false, false);
	fake_slack_add_channel(f, "G0OPS", "ops-private", true, true);
	fake_slack_add_channel(f, "C0OLD", "old", false, true);
	json_object_set_new(channel(f, "C0OLD"), "is_archived", json_true());
}

fake_slack *fake_slack_start(unsigned port)
{
	fake_slack *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	/* TLS writes to a client that left must fail, not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->records = json_array();
	f->channels = json_array();
	f->messages = json_array();
	f->fails = json_object();
	f->delays = json_object();
	f->revoked = json_object();
	snprintf(f->scopes, sizeof(f->scopes),
		 "channels:history,channels:read,chat:write,commands,"
		 "groups:read,im:history,im:write,users:read");
	fake_slack_set_identity(f, "Acme", "T0ACME", "incident-bot", "U0BOT");
	fake_slack_set_tokens(f, "xoxb-test", "xapp-test");
	add_default_channels(f);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	f->d = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
	    (uint16_t)port, NULL, NULL, on_request, f, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_done, f,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
	const union MHD_DaemonInfo *info =
	    f->d ? MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
	if (!info || fws_start(f) != 0) {
		fake_slack_stop(f);
		return NULL;
	}
	f->port = info->port;
	snprintf(f->api_url, sizeof(f->api_url), "http://127.0.0.1:%u/api",
		 f->port);
	return f;
}

void fake_slack_stop(fake_slack *f)
{
	if (!f)
		return;
	fws_stop(f);
	if (f->d)
		MHD_stop_daemon(f->d);
	json_decref(f->records);
	json_decref(f->channels);
	json_decref(f->messages);
	json_decref(f->fails);
	json_decref(f->delays);
	json_decref(f->revoked);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}
