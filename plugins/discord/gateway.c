/* The Gateway link (gateway: true): it shows the bot online and is where
 * message events would arrive. Connects to the URL from GET /gateway/bot
 * through the host's WebSocket client, heartbeats (the first after
 * interval x random, then every interval, with the last sequence number),
 * identifies with the configured intents and a presence, resumes after a
 * drop on resume_gateway_url with the session id, re-identifies after an
 * invalid session, and stops for good on 4004 (bad token), 4013 (invalid
 * intents) and 4014 (a privileged intent not enabled), saying which.
 * Identifies are capped at IDENTIFY_CAP a day, a tenth of Discord's
 * 1,000, so a flapping link can never get the token reset; the count is
 * kept in the host's kv store, so a server in a restart loop keeps to it
 * too.
 *
 * Threads: WebSocket callbacks run on the host's network thread; the
 * link's own thread (started by start()) does timers, connects and
 * releases closed links. Everything is under g->mu. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discord.h"

#define IDENTIFY_CAP 100
#define DAY_S 86400
#define BACKOFF_MAX_S 60.0

typedef enum gw_state {
	GW_IDLE = 0,  /* waiting to connect */
	GW_CONNECTING,
	GW_HELLO,     /* open, waiting for HELLO */
	GW_AUTH,      /* identify or resume sent */
	GW_READY,
	GW_FATAL,     /* stopped until reload: reason says why */
} gw_state;

static const char *const state_names[] = {"waiting", "connecting", "hello",
					  "authenticating", "connected",
					  "stopped"};

static const struct {
	const char *name;
	int bit;
	bool privileged;
} intents[] = {
    {"GUILDS", 0, false},
    {"GUILD_MEMBERS", 1, true},
    {"GUILD_MODERATION", 2, false},
    {"GUILD_EXPRESSIONS", 3, false},
    {"GUILD_INTEGRATIONS", 4, false},
    {"GUILD_WEBHOOKS", 5, false},
    {"GUILD_INVITES", 6, false},
    {"GUILD_VOICE_STATES", 7, false},
    {"GUILD_PRESENCES", 8, true},
    {"GUILD_MESSAGES", 9, false},
    {"GUILD_MESSAGE_REACTIONS", 10, false},
    {"GUILD_MESSAGE_TYPING", 11, false},
    {"DIRECT_MESSAGES", 12, false},
    {"DIRECT_MESSAGE_REACTIONS", 13, false},
    {"DIRECT_MESSAGE_TYPING", 14, false},
    {"MESSAGE_CONTENT", 15, true},
    {"GUILD_SCHEDULED_EVENTS", 16, false},
    {"AUTO_MODERATION_CONFIGURATION", 20, false},
    {"AUTO_MODERATION_EXECUTION", 21, false},
};
#define N_INTENTS (sizeof(intents) / sizeof(intents[0]))

struct dsc_gw {
	dsc *d;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool running, stopping;
	gw_state st;
	im_ws *ws;	  /* the link; released by the thread once closed */
	bool ws_closed;
	char url[512], resume_url[512], session[128];
	long long seq;	  /* last sequence number; -1 none */
	bool resumable;
	double interval_s, next_beat, retry_at, backoff_s;
	bool ack_pending, beat_now;
	long mask;
	time_t identifies[IDENTIFY_CAP];
	size_t n_ident;
	json_t *guilds;	  /* id -> name */
	char reason[400]; /* why it is stopped or waiting */
	int last_close;
	char last_close_reason[128];
	time_t connected_since;
	unsigned long reconnects, resumes, missed_acks, events;
};

long dsc_intents(const json_t *names, char *bad, size_t len)
{
	long mask = 0;
	size_t i, k;
	json_t *n;
	json_array_foreach(names, i, n)
	{
		const char *s = json_string_value(n);
		for (k = 0; s && k < N_INTENTS; k++)
			if (!strcmp(s, intents[k].name))
				break;
		if (!s || k == N_INTENTS) {
			snprintf(bad, len, "%s", s ? s : "(not a string)");
			return -1;
		}
		mask |= 1L << intents[k].bit;
	}
	return mask;
}

static void privileged_names(long mask, char *out, size_t len)
{
	size_t off = 0;
	out[0] = '\0';
	for (size_t k = 0; k < N_INTENTS; k++)
		if (intents[k].privileged && (mask >> intents[k].bit & 1)) {
			int n = snprintf(out + off, len - off, "%s%s",
					 off ? ", " : "", intents[k].name);
			if (n < 0 || (size_t)n >= len - off)
				break;
			off += (size_t)n;
		}
}

static void load_identifies(dsc_gw *g);

dsc_gw *dsc_gw_new(dsc *d)
{
	dsc_gw *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->d = d;
	g->seq = -1;
	g->guilds = json_object();
	g->backoff_s = 1;
	char bad[64];
	g->mask = dsc_intents(d->cfg.intents, bad, sizeof(bad));
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	if (IM_HOST_HAS(d->host, kv_get))
		load_identifies(g);
	return g;
}

/* The next try after a failure, each one waiting twice as long as the
 * last (up to BACKOFF_MAX_S); a session that becomes ready resets it. */
static void retry_later(dsc_gw *g)
{
	g->retry_at = dsc_mono() + g->backoff_s;
	g->backoff_s = g->backoff_s * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S
							: g->backoff_s * 2;
}

static void send_json(dsc_gw *g, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (text && g->ws)
		g->d->host->ws_send(g->ws, 0, text, strlen(text));
	free(text);
}

/* Identifies spent in the last day; the oldest falls out. */
static size_t identifies_today(dsc_gw *g, time_t now)
{
	size_t n = 0;
	for (size_t i = 0; i < g->n_ident; i++)
		if (g->identifies[i] > now - DAY_S)
			g->identifies[n++] = g->identifies[i];
	g->n_ident = n;
	return n;
}

#define IDENT_KEY "gateway.identifies"

/* The identify times of the last day, as the kv store keeps them. */
static void load_identifies(dsc_gw *g)
{
	char *v = NULL;
	if (g->d->host->kv_get(g->d->inst, IDENT_KEY, &v) != 0 || !v)
		return;
	char *p = v, *end;
	while (g->n_ident < IDENTIFY_CAP) {
		long long t = strtoll(p, &end, 10);
		if (end == p)
			break;
		g->identifies[g->n_ident++] = (time_t)t;
		p = end;
	}
	free(v);
}

static void save_identifies(dsc_gw *g)
{
	char buf[IDENTIFY_CAP * 12 + 1];
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < g->n_ident && off < sizeof(buf) - 12; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%lld",
					i ? " " : "", (long long)g->identifies[i]);
	if (g->d->host->kv_put(g->d->inst, IDENT_KEY, buf) != 0)
		IM_WARN(g->d->host, g->d->inst,
			"could not keep the identify count across restarts");
}

static void identify(dsc_gw *g)
{
	time_t now = time(NULL);
	if (identifies_today(g, now) >= IDENTIFY_CAP) {
		snprintf(g->reason, sizeof(g->reason),
			 "%d identifies in 24 h (this connector's cap, a tenth "
			 "of Discord's 1,000): waiting before the next",
			 IDENTIFY_CAP);
		g->d->host->ws_close(g->ws, 1000, "identify budget");
		return;
	}
	g->identifies[g->n_ident++] = now;
	save_identifies(g);
	send_json(g, json_pack("{s:i,s:{s:s,s:i,s:{s:s,s:s,s:s},s:{s:s,s:b,s:n,"
			       "s:[{s:s,s:i}]}}}",
			       "op", 2, "d", "token", g->d->cfg.bot_token,
			       "intents", (int)g->mask, "properties", "os",
			       "linux", "browser", "im", "device", "im",
			       "presence", "status", "online", "afk", 0,
			       "since", "activities", "name", "incidents",
			       "type", 3));
}

static void resume(dsc_gw *g)
{
	send_json(g, json_pack("{s:i,s:{s:s,s:s,s:I}}", "op", 6, "d", "token",
			       g->d->cfg.bot_token, "session_id", g->session,
			       "seq", (json_int_t)g->seq));
}

static void heartbeat(dsc_gw *g)
{
	send_json(g, json_pack("{s:i,s:o}", "op", 1, "d",
			       g->seq >= 0 ? json_integer(g->seq) : json_null()));
	g->ack_pending = true;
	g->next_beat = dsc_mono() + g->interval_s;
}

static void on_dispatch(dsc_gw *g, const char *t, const json_t *d)
{
	g->events++;
	if (!t)
		return;
	if (!strcmp(t, "READY")) {
		const char *sid =
		    json_string_value(json_object_get(d, "session_id"));
		snprintf(g->session, sizeof(g->session), "%s", sid ? sid : "");
		const char *ru = json_string_value(
		    json_object_get(d, "resume_gateway_url"));
		snprintf(g->resume_url, sizeof(g->resume_url), "%s",
			 ru ? ru : g->url);
		size_t i;
		json_t *gd;
		json_array_foreach(json_object_get(d, "guilds"), i, gd)
		{
			const char *id =
			    json_string_value(json_object_get(gd, "id"));
			if (id && !json_object_get(g->guilds, id))
				json_object_set_new(g->guilds, id,
						    json_string(""));
		}
	}
	if (!strcmp(t, "GUILD_CREATE")) {
		const char *id = json_string_value(json_object_get(d, "id"));
		const char *name = json_string_value(json_object_get(d, "name"));
		if (id)
			json_object_set_new(g->guilds, id,
					    json_string(name ? name : ""));
	}
	if (!strcmp(t, "READY") || !strcmp(t, "RESUMED")) {
		if (!strcmp(t, "RESUMED"))
			g->resumes++;
		g->st = GW_READY;
		g->resumable = true;
		g->backoff_s = 1;
		g->reason[0] = '\0';
		g->connected_since = time(NULL);
		g->d->host->set_connected(g->d->inst, "discord", 1);
	}
}

/* Whether a callback is about the current link. Callbacks may come before
 * ws_open has returned the handle: the link being opened is adopted. */
static bool adopt(dsc_gw *g, im_ws *ws)
{
	if (!g->ws && g->st == GW_CONNECTING && !g->stopping)
		g->ws = ws;
	return ws == g->ws;
}

static void on_message(void *ud, im_ws *ws, int binary, const void *data,
		       size_t len)
{
	dsc_gw *g = ud;
	(void)binary;
	json_t *m = json_loadb(data, len, 0, NULL);
	if (!m)
		return;
	pthread_mutex_lock(&g->mu);
	if (!adopt(g, ws)) {
		pthread_mutex_unlock(&g->mu);
		json_decref(m);
		return;
	}
	int op = (int)json_integer_value(json_object_get(m, "op"));
	json_t *d = json_object_get(m, "d"), *s = json_object_get(m, "s");
	if (json_is_integer(s))
		g->seq = json_integer_value(s);
	switch (op) {
	case 10: /* HELLO */
		g->interval_s = json_number_value(
				    json_object_get(d, "heartbeat_interval")) /
				1000.0;
		if (g->interval_s < 0.05)
			g->interval_s = 41.25;
		g->next_beat = dsc_mono() + g->interval_s * ((double)rand() /
							 RAND_MAX);
		g->ack_pending = false;
		g->st = GW_AUTH;
		if (g->resumable && *g->session)
			resume(g);
		else
			identify(g);
		break;
	case 11: /* HEARTBEAT ACK */
		g->ack_pending = false;
		break;
	case 1: /* the server wants a heartbeat now */
		heartbeat(g);
		break;
	case 0:
		on_dispatch(g, json_string_value(json_object_get(m, "t")), d);
		break;
	case 7: /* RECONNECT: resume on a new link */
		g->resumable = true;
		g->d->host->ws_close(ws, 4000, "reconnect requested");
		break;
	case 9: /* INVALID SESSION: d says whether it may be resumed */
		g->resumable = json_is_true(d);
		if (!g->resumable) {
			g->session[0] = '\0';
			g->seq = -1;
		}
		g->d->host->ws_close(ws, 4000, "invalid session");
		break;
	}
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
	json_decref(m);
}

/* What a close code means: fatal ones stop the link until reload. */
static void on_close(void *ud, im_ws *ws, int code, const char *reason)
{
	dsc_gw *g = ud;
	pthread_mutex_lock(&g->mu);
	if (!adopt(g, ws)) {
		pthread_mutex_unlock(&g->mu);
		return;
	}
	g->ws_closed = true;
	g->last_close = code;
	snprintf(g->last_close_reason, sizeof(g->last_close_reason), "%s",
		 reason ? reason : "");
	g->d->host->set_connected(g->d->inst, "discord", 0);
	g->connected_since = 0;
	char priv[120];
	switch (code) {
	case 4004:
		g->st = GW_FATAL;
		snprintf(g->reason, sizeof(g->reason),
			 "4004 Authentication failed: the bot token is wrong "
			 "or was reset; set bot_token and reload");
		break;
	case 4013:
		g->st = GW_FATAL;
		snprintf(g->reason, sizeof(g->reason),
			 "4013 Invalid intent(s): check `intents` (mask %ld)",
			 g->mask);
		break;
	case 4014:
		g->st = GW_FATAL;
		privileged_names(g->mask, priv, sizeof(priv));
		snprintf(g->reason, sizeof(g->reason),
			 "4014 Disallowed intent(s): enable %s in the Developer "
			 "Portal (Bot > Privileged Gateway Intents) or remove "
			 "it from `intents`",
			 *priv ? priv : "the privileged intents requested");
		break;
	case 4010:
	case 4011:
	case 4012:
		g->st = GW_FATAL;
		snprintf(g->reason, sizeof(g->reason), "%d %s: not retried",
			 code, reason ? reason : "");
		break;
	default:
		if (code == 4007 || code == 4009) {
			g->resumable = false;
			g->session[0] = '\0';
		}
		if (g->st != GW_FATAL) {
			g->st = GW_IDLE;
			retry_later(g);
			if (!*g->reason || g->reason[0] != '4')
				snprintf(g->reason, sizeof(g->reason),
					 "link closed (%d %s); %s", code,
					 reason ? reason : "",
					 g->resumable ? "resuming"
						      : "identifying again");
		}
	}
	if (g->st == GW_FATAL)
		dsc_note_error(g->d, "gateway stopped: %s", g->reason);
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/* GET /gateway/bot for the URL (and the identify budget Discord says). */
static bool fetch_url(dsc_gw *g)
{
	dsc_res r;
	int rc = dsc_call(g->d->rest, "GET", "gateway", "", "/gateway/bot",
			  NULL, true, 5, &r);
	bool ok = false;
	pthread_mutex_lock(&g->mu);
	if (rc == 0 && json_string_value(json_object_get(r.json, "url"))) {
		snprintf(g->url, sizeof(g->url), "%s",
			 json_string_value(json_object_get(r.json, "url")));
		json_t *lim = json_object_get(r.json, "session_start_limit");
		json_int_t left =
		    json_integer_value(json_object_get(lim, "remaining"));
		if (lim && left <= 0) {
			double after = (double)json_integer_value(json_object_get(
					   lim, "reset_after")) /
				       1000.0;
			snprintf(g->reason, sizeof(g->reason),
				 "Discord's session start limit is spent; "
				 "waiting %.0f s",
				 after);
			g->retry_at = dsc_mono() + after;
			g->url[0] = '\0';
		} else {
			ok = true;
		}
	} else {
		snprintf(g->reason, sizeof(g->reason),
			 "GET /gateway/bot: %s (HTTP %ld)", r.message, r.status);
		if (r.status == 401) {
			g->st = GW_FATAL;
		} else {
			retry_later(g);
		}
	}
	pthread_mutex_unlock(&g->mu);
	dsc_res_clear(&r);
	return ok;
}

static void connect_link(dsc_gw *g)
{
	char url[600];
	const char *base = g->resumable && *g->session && *g->resume_url
			       ? g->resume_url
			       : g->url;
	snprintf(url, sizeof(url), "%s%sv=10&encoding=json", base,
		 strchr(base, '?') ? "&" : "?");
	im_ws_call call = {.struct_size = sizeof(call),
			   .url = url,
			   .connect_timeout_ms = 10000,
			   .max_message = 8u << 20,
			   .on_message = on_message,
			   .on_close = on_close,
			   .userdata = g};
	g->st = GW_CONNECTING;
	g->ws_closed = false;
	g->reconnects++;
	im_ws *ws = NULL;
	/* Callbacks take g->mu: open without holding it. */
	pthread_mutex_unlock(&g->mu);
	int rc = g->d->host->ws_open(g->d->inst, &call, &ws);
	pthread_mutex_lock(&g->mu);
	if (rc != 0) {
		g->st = GW_IDLE;
		retry_later(g);
		snprintf(g->reason, sizeof(g->reason),
			 "cannot open the Gateway link (%d)", rc);
		return;
	}
	if (!g->ws)
		g->ws = ws;
	if (g->st == GW_CONNECTING)
		g->st = GW_HELLO;
}

/* Releases a closed link (never from its own callback). */
static void reap(dsc_gw *g)
{
	if (!g->ws || !g->ws_closed)
		return;
	im_ws *ws = g->ws;
	g->ws = NULL;
	pthread_mutex_unlock(&g->mu);
	g->d->host->ws_release(ws);
	pthread_mutex_lock(&g->mu);
}

/* Seconds until the loop has something to do: a closed link to release
 * now, a reconnect or a heartbeat when due; at most a second (stop and
 * callbacks signal the condition anyway). */
static double next_wait(const dsc_gw *g)
{
	double due = 1;
	if (g->ws_closed)
		due = 0;
	else if (g->st == GW_IDLE)
		due = g->retry_at - dsc_mono();
	else if (g->st == GW_AUTH || g->st == GW_READY)
		due = g->next_beat - dsc_mono();
	return due < 0.001 ? 0.001 : due > 1 ? 1 : due;
}

static void *loop(void *arg)
{
	dsc_gw *g = arg;
	pthread_mutex_lock(&g->mu);
	while (!g->stopping) {
		reap(g);
		double now = dsc_mono();
		if (g->st == GW_IDLE && !g->ws && now >= g->retry_at) {
			if (!*g->url) {
				pthread_mutex_unlock(&g->mu);
				fetch_url(g);
				pthread_mutex_lock(&g->mu);
				if (g->stopping || g->st == GW_FATAL || !*g->url)
					goto wait;
			}
			connect_link(g);
			continue;
		}
		if (g->ws && !g->ws_closed &&
		    (g->st == GW_AUTH || g->st == GW_READY) &&
		    now >= g->next_beat) {
			if (g->ack_pending) {
				/* No ACK for a whole interval: a zombie link. */
				g->missed_acks++;
				snprintf(g->reason, sizeof(g->reason),
					 "no heartbeat ACK within %.1f s: "
					 "reconnecting to resume",
					 g->interval_s);
				g->resumable = true;
				g->ack_pending = false;
				g->d->host->ws_close(g->ws, 4000,
						     "heartbeat ACK missing");
				g->next_beat = now + g->interval_s;
			} else {
				heartbeat(g);
			}
		}
	wait:;
		double wait = next_wait(g);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		long ns = ts.tv_nsec + (long)(wait * 1e9);
		ts.tv_sec += ns / 1000000000L;
		ts.tv_nsec = ns % 1000000000L;
		pthread_cond_timedwait(&g->cv, &g->mu, &ts);
	}
	reap(g);
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

int dsc_gw_start(dsc_gw *g)
{
	pthread_mutex_lock(&g->mu);
	g->stopping = false;
	g->st = GW_IDLE;
	g->retry_at = 0;
	int rc = pthread_create(&g->thread, NULL, loop, g);
	g->running = rc == 0;
	pthread_mutex_unlock(&g->mu);
	return rc ? IM_ENOMEM : 0;
}

void dsc_gw_stop(dsc_gw *g)
{
	pthread_mutex_lock(&g->mu);
	if (!g->running) {
		pthread_mutex_unlock(&g->mu);
		return;
	}
	g->stopping = true;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
	pthread_join(g->thread, NULL);
	/* The thread is gone: whatever link it left (also one it opened
	 * while stop began) is closed here. */
	pthread_mutex_lock(&g->mu);
	im_ws *ws = g->ws;
	g->ws = NULL;
	pthread_mutex_unlock(&g->mu);
	/* Ends the session cleanly (1000: no resume). */
	if (ws) {
		g->d->host->ws_close(ws, 1000, "shutting down");
		g->d->host->ws_release(ws);
	}
	g->running = false;
	g->d->host->set_connected(g->d->inst, "discord", 0);
}

void dsc_gw_free(dsc_gw *g)
{
	if (!g)
		return;
	json_decref(g->guilds);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

json_t *dsc_gw_status(dsc_gw *g)
{
	pthread_mutex_lock(&g->mu);
	char priv[120];
	privileged_names(g->mask, priv, sizeof(priv));
	bool content = g->mask >> 15 & 1;
	json_t *o = json_pack(
	    "{s:s,s:b,s:I,s:s,s:O,s:I,s:I,s:I,s:I,s:I,s:s,s:I,s:s,s:s}",
	    "state", state_names[g->st], "connected", g->st == GW_READY,
	    "intents", (json_int_t)g->mask, "privileged_intents", priv,
	    "guilds", g->guilds, "identifies_24h",
	    (json_int_t)identifies_today(g, time(NULL)), "resumes",
	    (json_int_t)g->resumes, "reconnects", (json_int_t)g->reconnects,
	    "missed_acks", (json_int_t)g->missed_acks, "events",
	    (json_int_t)g->events, "reason", g->reason, "connected_since",
	    (json_int_t)g->connected_since, "session", *g->session ? "yes" : "no",
	    "message_content",
	    content ? "requested (privileged: must be enabled in the "
		      "Developer Portal)"
		    : "not requested: message text in incident channels is "
		      "not read (commands and buttons do not need it)");
	if (g->last_close)
		json_object_set_new(o, "last_close",
				    json_sprintf("%d %s", g->last_close,
						 g->last_close_reason));
	if (g->st == GW_FATAL && (g->last_close == 4013 || g->last_close == 4014))
		json_object_set_new(o, "intents_refused", json_string(g->reason));
	pthread_mutex_unlock(&g->mu);
	return o;
}
