/* The fake Discord Gateway: see fake_discord_gw.h. The WebSocket side is
 * fake_ws_server.c; this file is the Gateway's state machine, under one
 * mutex (g->mu, taken before the server's own). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "fake_discord_gw.h"
#include "fake_ws_server.h"

#define MAX_PAYLOAD 4096
#define RATE_COUNT 120 /* payloads a client may send ... */
#define RATE_WINDOW 60 /* ... in this many seconds */

/* A session: what a resume needs, kept after its connection is gone. */
typedef struct sess {
	struct sess *next;
	char id[33];
	json_int_t seq; /* the last s dispatched */
	json_t *log;	/* dispatches to replay on resume */
	unsigned conn;	/* the connection it is attached to; 0 = none */
} sess;

/* What the Gateway knows of one open connection. */
typedef struct gconn {
	struct gconn *next;
	unsigned id;
	bool authed; /* identified or resumed here */
	sess *s;     /* the session it serves, if still attached */
	double stamps[RATE_COUNT]; /* ring of the last payloads' times */
	int nstamps, head;
} gconn;

struct fdg {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* any counter or record changed */
	fwsv *srv;
	char url[64];
	char token[256], bot_id[32];
	json_t *guilds; /* [id] */
	unsigned hb_ms, privileged;
	bool acks;
	sess *sessions, *cur; /* cur: the last identified or resumed */
	gconn *conns;
	int identifies, resumes, connections, heartbeats;
	json_t *last_identify, *hb_log, *closes;
	json_t *received; /* "op" -> [d] */
};

static double now_s(clockid_t clk)
{
	struct timespec t;
	clock_gettime(clk, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static gconn *find_conn(fdg *g, unsigned id)
{
	gconn *c = g->conns;
	while (c && c->id != id)
		c = c->next;
	return c;
}

static sess *find_sess(fdg *g, const char *id)
{
	sess *s = g->sessions;
	while (s && strcmp(s->id, id))
		s = s->next;
	return s;
}

/* The live connection: the last session's, while attached. */
static unsigned live_id(const fdg *g)
{
	return g->cur ? g->cur->conn : 0;
}

static void forget(fdg *g, sess *s)
{
	for (sess **p = &g->sessions; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	for (gconn *c = g->conns; c; c = c->next)
		if (c->s == s)
			c->s = NULL;
	if (g->cur == s)
		g->cur = NULL;
	json_decref(s->log);
	free(s);
}

/* --- sending ------------------------------------------------------------- */

static bool send_json(fdg *g, unsigned id, const json_t *p)
{
	char *txt = json_dumps(p, JSON_COMPACT);
	bool ok = txt && fwsv_send(g->srv, id, txt);
	free(txt);
	return ok;
}

/* {"op","d","s":null,"t":null}; d is stolen (NULL = null). */
static bool send_op(fdg *g, unsigned id, int op, json_t *d)
{
	json_t *p = json_pack("{s:i,s:o,s:n,s:n}", "op", op, "d",
			      d ? d : json_null(), "s", "t");
	bool ok = p && send_json(g, id, p);
	json_decref(p);
	return ok;
}

/* Codes after which Discord wants a new session, not a resume. */
static bool ends_session(int code)
{
	return code == 4004 || code == 4007 || code == 4009 ||
	       (code >= 4010 && code <= 4014);
}

static void close_conn(fdg *g, unsigned id, int code, const char *reason)
{
	if (!fwsv_close(g->srv, id, code, reason))
		return;
	json_array_append_new(g->closes,
			      json_pack("{s:i,s:s,s:s}", "code", code, "reason",
					reason ? reason : "", "by", "server"));
	gconn *c = find_conn(g, id);
	if (c && c->s && ends_session(code))
		forget(g, c->s);
	pthread_cond_broadcast(&g->cv);
}

/* Op 0 with the session's next seq, kept for replay (READY and RESUMED
 * are not: a resume never repeats them); sent if the session is
 * attached. d stolen. */
static bool dispatch(fdg *g, sess *s, const char *t, json_t *d)
{
	json_t *p = json_pack("{s:i,s:o,s:I,s:s}", "op", 0, "d",
			      d ? d : json_null(), "s", ++s->seq, "t", t);
	if (!p)
		return false;
	if (strcmp(t, "READY") && strcmp(t, "RESUMED"))
		json_array_append(s->log, p);
	bool sent = s->conn && send_json(g, s->conn, p);
	json_decref(p);
	return sent;
}

/* --- the client's payloads ------------------------------------------------ */

static void record(fdg *g, int op, const json_t *d)
{
	char k[16];
	snprintf(k, sizeof(k), "%d", op);
	json_t *a = json_object_get(g->received, k);
	if (!a) {
		a = json_array();
		json_object_set_new(g->received, k, a);
	}
	json_t *copy = d ? json_deep_copy(d) : json_null();
	if (json_object_get(copy, "token"))
		json_object_set_new(copy, "token", json_string("<redacted>"));
	json_array_append_new(a, copy);
}

/* false when this payload is one too many for the window. */
static bool within_rate(gconn *c)
{
	double now = now_s(CLOCK_MONOTONIC);
	if (c->nstamps == RATE_COUNT && now - c->stamps[c->head] < RATE_WINDOW)
		return false;
	c->stamps[c->head] = now;
	c->head = (c->head + 1) % RATE_COUNT;
	if (c->nstamps < RATE_COUNT)
		c->nstamps++;
	return true;
}

static void heartbeat(fdg *g, gconn *c, const json_t *d)
{
	g->heartbeats++;
	json_array_append_new(g->hb_log,
			      json_pack("{s:f,s:O}", "t", now_s(CLOCK_REALTIME),
					"d", d ? d : json_null()));
	if (g->acks)
		send_op(g, c->id, 11, NULL);
}

static bool new_session_id(char *out)
{
	unsigned char r[16];
	if (RAND_bytes(r, sizeof(r)) != 1)
		return false;
	for (size_t i = 0; i < sizeof(r); i++)
		sprintf(out + 2 * i, "%02x", r[i]);
	return true;
}

static void ready(fdg *g, sess *s)
{
	json_t *unavailable = json_array();
	size_t i;
	json_t *gid;
	json_array_foreach(g->guilds, i, gid)
		json_array_append_new(unavailable,
				      json_pack("{s:O,s:b}", "id", gid,
						"unavailable", 1));
	char resume_url[96];
	snprintf(resume_url, sizeof(resume_url), "%sresume/", g->url);
	dispatch(g, s, "READY",
		 json_pack("{s:i,s:{s:s,s:s,s:b},s:o,s:s,s:s,s:{s:s,s:i}}",
			   "v", 10, "user", "id", g->bot_id, "username",
			   "im-bot", "bot", 1, "guilds", unavailable,
			   "session_id", s->id, "resume_gateway_url",
			   resume_url, "application", "id", g->bot_id,
			   "flags", 0));
	json_array_foreach(g->guilds, i, gid) {
		char chan[32];
		snprintf(chan, sizeof(chan), "%llu",
			 1300000000000000001ULL + i);
		dispatch(g, s, "GUILD_CREATE",
			 json_pack("{s:O,s:s,s:b,s:[{s:s,s:s,s:i}]}", "id", gid,
				   "name", "Contoso Ops", "unavailable", 0,
				   "channels", "id", chan, "name",
				   "incidents", "type", 0));
	}
}

static bool has_strings(const json_t *o, const char *const *keys)
{
	for (; *keys; keys++)
		if (!json_is_string(json_object_get(o, *keys)))
			return false;
	return true;
}

/* 0, or the close code. */
static int identify(fdg *g, gconn *c, const json_t *d)
{
	static const char *const props[] = {"os", "browser", "device", NULL};
	json_t *intents = json_object_get(d, "intents");
	const char *token = json_string_value(json_object_get(d, "token"));
	if (c->authed)
		return 4005;
	if (!token || !json_is_integer(intents) ||
	    !has_strings(json_object_get(d, "properties"), props))
		return 4002;
	if (strcmp(token, g->token))
		return 4004;
	json_int_t bits = json_integer_value(intents);
	if (bits < 0 || (bits & ~(json_int_t)FDG_KNOWN_INTENTS))
		return 4013;
	if (bits & FDG_PRIVILEGED & ~(json_int_t)g->privileged)
		return 4014;
	sess *s = calloc(1, sizeof(*s));
	if (!s || !new_session_id(s->id)) {
		free(s);
		return 4000;
	}
	s->log = json_array();
	s->conn = c->id;
	s->next = g->sessions;
	g->sessions = s;
	g->cur = c->s = s;
	c->authed = true;
	g->identifies++;
	json_decref(g->last_identify);
	g->last_identify = json_deep_copy(d);
	json_object_set_new(g->last_identify, "token",
			    json_string("<redacted>"));
	record(g, 2, d);
	ready(g, s);
	return 0;
}

/* 0, or the close code. */
static int resume(fdg *g, gconn *c, const json_t *d)
{
	const char *token = json_string_value(json_object_get(d, "token"));
	const char *sid = json_string_value(json_object_get(d, "session_id"));
	json_t *seq = json_object_get(d, "seq");
	if (c->authed)
		return 4005;
	if (!token || !sid || !(json_is_integer(seq) || json_is_null(seq)))
		return 4002;
	if (strcmp(token, g->token))
		return 4004;
	record(g, 6, d);
	sess *s = find_sess(g, sid);
	if (!s) { /* the client should reconnect and identify */
		send_op(g, c->id, 9, json_false());
		return 0;
	}
	json_int_t after = json_integer_value(seq);
	if (after > s->seq) {
		forget(g, s);
		return 4007;
	}
	gconn *old = s->conn ? find_conn(g, s->conn) : NULL;
	if (old) /* still open: it keeps being served, without the session */
		old->s = NULL;
	s->conn = c->id;
	g->cur = c->s = s;
	c->authed = true;
	g->resumes++;
	size_t i;
	json_t *e;
	json_array_foreach(s->log, i, e)
		if (json_integer_value(json_object_get(e, "s")) > after)
			send_json(g, c->id, e);
	dispatch(g, s, "RESUMED",
		 json_pack("{s:[s]}", "_trace", "fake-discord-gw"));
	return 0;
}

static const char *reason_of(int code)
{
	switch (code) {
	case 4001: return "Unknown opcode";
	case 4002: return "Decode error";
	case 4003: return "Not authenticated.";
	case 4004: return "Authentication failed.";
	case 4005: return "Already authenticated.";
	case 4007: return "Invalid seq";
	case 4008: return "Rate limited.";
	case 4012: return "Invalid API version";
	case 4013: return "Invalid intent(s).";
	case 4014: return "Disallowed intent(s).";
	default: return "Unknown error";
	}
}

/* 0, or the close code; in the order Discord checks: rate, size, JSON,
 * op, authentication. */
static int payload(fdg *g, gconn *c, const char *msg, size_t len)
{
	if (!within_rate(c))
		return 4008;
	if (len > MAX_PAYLOAD)
		return 4002;
	json_t *m = json_loadb(msg, len, 0, NULL);
	json_t *op = json_object_get(m, "op"), *d = json_object_get(m, "d");
	int o = json_is_integer(op) ? (int)json_integer_value(op) : -1;
	int code = 0;
	if (!json_is_object(m))
		code = 4002;
	else if (o != 1 && o != 2 && o != 3 && o != 4 && o != 6 && o != 8)
		code = 4001;
	else if (o == 1) {
		record(g, o, d);
		heartbeat(g, c, d);
	} else if (o == 2)
		code = identify(g, c, d);
	else if (o == 6)
		code = resume(g, c, d);
	else if (!c->authed)
		code = 4003;
	else
		record(g, o, d);
	json_decref(m);
	return code;
}

/* --- the server's callbacks (a connection's thread) ----------------------- */

/* Whether the query of target has key=value. */
static bool query_has(const char *target, const char *key, const char *value)
{
	const char *q = strchr(target, '?');
	size_t kl = strlen(key), vl = strlen(value);
	while (q) {
		q++;
		size_t n = strcspn(q, "&");
		if (n == kl + 1 + vl && !strncmp(q, key, kl) && q[kl] == '=' &&
		    !strncmp(q + kl + 1, value, vl))
			return true;
		q = strchr(q, '&');
	}
	return false;
}

static void on_open(void *ud, unsigned id, const char *target)
{
	fdg *g = ud;
	gconn *c = calloc(1, sizeof(*c));
	pthread_mutex_lock(&g->mu);
	g->connections++;
	if (!c)
		fwsv_drop(g->srv, id);
	else {
		c->id = id;
		c->next = g->conns;
		g->conns = c;
		if (!query_has(target, "v", "10"))
			close_conn(g, id, 4012, reason_of(4012));
		else if (!query_has(target, "encoding", "json"))
			close_conn(g, id, 4002, reason_of(4002));
		else
			send_op(g, id, 10,
				json_pack("{s:i}", "heartbeat_interval",
					  (int)g->hb_ms));
	}
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static void on_text(void *ud, unsigned id, const char *msg, size_t len)
{
	fdg *g = ud;
	pthread_mutex_lock(&g->mu);
	gconn *c = find_conn(g, id);
	int code = c ? payload(g, c, msg, len) : 0;
	if (code)
		close_conn(g, id, code, reason_of(code));
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static void on_end(void *ud, unsigned id, int peer_code, const char *reason)
{
	fdg *g = ud;
	pthread_mutex_lock(&g->mu);
	if (peer_code)
		json_array_append_new(g->closes,
				      json_pack("{s:i,s:s,s:s}", "code",
						peer_code, "reason", reason,
						"by", "client"));
	for (gconn **p = &g->conns; *p; p = &(*p)->next) {
		gconn *c = *p;
		if (c->id != id)
			continue;
		*p = c->next;
		if (c->s) {
			c->s->conn = 0;
			/* A clean close says the client is done with it. */
			if (peer_code == 1000 || peer_code == 1001)
				forget(g, c->s);
		}
		free(c);
		break;
	}
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/* --- start and stop ------------------------------------------------------- */

static void copy(char *dst, size_t cap, const char *src, const char *dflt)
{
	snprintf(dst, cap, "%s", src ? src : dflt);
}

fdg *fdg_start(const fdg_opts *o)
{
	static const fwsv_cbs cbs = {
	    .open = on_open, .text = on_text, .end = on_end};
	fdg_opts none = {0};
	if (!o)
		o = &none;
	fdg *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	copy(g->token, sizeof(g->token), o->bot_token,
	     "MTEwMDAwMDAwMDAwMDAwMDAwMQ.Gfake0.bot-token-one");
	copy(g->bot_id, sizeof(g->bot_id), o->bot_id, "1100000000000000001");
	g->hb_ms = o->heartbeat_ms ? o->heartbeat_ms : 41250;
	g->privileged = o->privileged;
	g->acks = true;
	g->guilds = json_array();
	g->hb_log = json_array();
	g->closes = json_array();
	g->received = json_object();
	char csv[1024];
	copy(csv, sizeof(csv), o->guild_ids, "1200000000000000001");
	char *save = NULL;
	for (char *t = strtok_r(csv, ", ", &save); t;
	     t = strtok_r(NULL, ", ", &save))
		json_array_append_new(g->guilds, json_string(t));
	g->srv = fwsv_start(o->port, &cbs, g);
	if (!g->srv) {
		fdg_stop(g);
		return NULL;
	}
	snprintf(g->url, sizeof(g->url), "ws://127.0.0.1:%u/",
		 fwsv_port(g->srv));
	return g;
}

void fdg_stop(fdg *g)
{
	if (!g)
		return;
	fwsv_stop(g->srv); /* runs on_end for every open connection */
	while (g->sessions)
		forget(g, g->sessions);
	for (gconn *c = g->conns, *n; c; c = n) { /* on_end freed them all */
		n = c->next;
		free(c);
	}
	json_decref(g->guilds);
	json_decref(g->last_identify);
	json_decref(g->hb_log);
	json_decref(g->closes);
	json_decref(g->received);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

const char *fdg_url(const fdg *g)
{
	return g->url;
}

/* --- controls --------------------------------------------------------------- */

bool fdg_dispatch(fdg *g, const char *t, const char *d_json)
{
	json_t *d = json_loads(d_json, JSON_DECODE_ANY, NULL);
	if (!d)
		return false;
	pthread_mutex_lock(&g->mu);
	bool sent = false;
	if (g->cur)
		sent = dispatch(g, g->cur, t, d);
	else
		json_decref(d);
	pthread_mutex_unlock(&g->mu);
	return sent;
}

/* An op with d = null to the live connection. */
static void send_live(fdg *g, int op)
{
	pthread_mutex_lock(&g->mu);
	if (live_id(g))
		send_op(g, live_id(g), op, NULL);
	pthread_mutex_unlock(&g->mu);
}

void fdg_reconnect(fdg *g)
{
	send_live(g, 7);
}

void fdg_request_heartbeat(fdg *g)
{
	send_live(g, 1);
}

void fdg_invalid_session(fdg *g, bool resumable)
{
	pthread_mutex_lock(&g->mu);
	sess *s = g->cur;
	gconn *c = s && s->conn ? find_conn(g, s->conn) : NULL;
	if (c) {
		send_op(g, c->id, 9, json_boolean(resumable));
		c->s = NULL;
		c->authed = false;
		s->conn = 0;
	}
	if (s && !resumable)
		forget(g, s);
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/* The live connection, or else the newest open one. */
static unsigned target(fdg *g)
{
	unsigned id = live_id(g);
	return id ? id : fwsv_newest(g->srv);
}

void fdg_close(fdg *g, int code, const char *reason)
{
	pthread_mutex_lock(&g->mu);
	close_conn(g, target(g), code, reason);
	pthread_mutex_unlock(&g->mu);
}

void fdg_drop(fdg *g)
{
	pthread_mutex_lock(&g->mu);
	fwsv_drop(g->srv, target(g));
	pthread_mutex_unlock(&g->mu);
}

void fdg_set_acks(fdg *g, bool on)
{
	pthread_mutex_lock(&g->mu);
	g->acks = on;
	pthread_mutex_unlock(&g->mu);
}

void fdg_set_privileged(fdg *g, unsigned mask)
{
	pthread_mutex_lock(&g->mu);
	g->privileged = mask;
	pthread_mutex_unlock(&g->mu);
}

void fdg_set_token(fdg *g, const char *token)
{
	pthread_mutex_lock(&g->mu);
	copy(g->token, sizeof(g->token), token, "");
	pthread_mutex_unlock(&g->mu);
}

/* --- records ---------------------------------------------------------------- */

/* The counter named `what`, or -1; with g->mu held. */
static int counter(fdg *g, const char *what)
{
	return !strcmp(what, "identifies")    ? g->identifies
	       : !strcmp(what, "resumes")     ? g->resumes
	       : !strcmp(what, "connections") ? g->connections
	       : !strcmp(what, "heartbeats")  ? g->heartbeats
	       : !strcmp(what, "closes")      ? (int)json_array_size(g->closes)
	       : !strcmp(what, "live")	      ? live_id(g) != 0
					      : -1;
}

static int read_counter(fdg *g, const char *what)
{
	pthread_mutex_lock(&g->mu);
	int n = counter(g, what);
	pthread_mutex_unlock(&g->mu);
	return n;
}

int fdg_identifies(fdg *g)
{
	return read_counter(g, "identifies");
}

int fdg_resumes(fdg *g)
{
	return read_counter(g, "resumes");
}

int fdg_connections(fdg *g)
{
	return read_counter(g, "connections");
}

int fdg_heartbeats(fdg *g)
{
	return read_counter(g, "heartbeats");
}

bool fdg_live(fdg *g)
{
	return read_counter(g, "live") == 1;
}

static json_t *copy_of(fdg *g, json_t **field)
{
	pthread_mutex_lock(&g->mu);
	json_t *c = json_deep_copy(*field);
	pthread_mutex_unlock(&g->mu);
	return c;
}

json_t *fdg_last_identify(fdg *g)
{
	return copy_of(g, &g->last_identify);
}

json_t *fdg_heartbeat_log(fdg *g)
{
	return copy_of(g, &g->hb_log);
}

json_t *fdg_closes(fdg *g)
{
	return copy_of(g, &g->closes);
}

json_t *fdg_received(fdg *g, int op)
{
	char k[16];
	snprintf(k, sizeof(k), "%d", op);
	pthread_mutex_lock(&g->mu);
	json_t *a = json_deep_copy(json_object_get(g->received, k));
	pthread_mutex_unlock(&g->mu);
	return a ? a : json_array();
}

bool fdg_session(fdg *g, char *buf, size_t len)
{
	pthread_mutex_lock(&g->mu);
	bool ok = g->cur != NULL;
	if (ok)
		snprintf(buf, len, "%s", g->cur->id);
	pthread_mutex_unlock(&g->mu);
	return ok;
}

bool fdg_wait(fdg *g, const char *what, int n, int timeout_ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	bool live = !strcmp(what, "live");
	pthread_mutex_lock(&g->mu);
	int v;
	while ((v = counter(g, what)) >= 0 && (live ? v != (n != 0) : v < n) &&
	       pthread_cond_timedwait(&g->cv, &g->mu, &until) == 0)
		;
	v = counter(g, what);
	bool ok = v >= 0 && (live ? v == (n != 0) : v >= n);
	pthread_mutex_unlock(&g->mu);
	return ok;
}
