/* Socket Mode: one thread per instance keeps a WebSocket to Slack, on
 * the host's WebSocket client (host->ws_open; callbacks on the host's
 * network thread only queue what arrived and wake this thread, which
 * handles it: command_dispatch and response_url posts may block).
 *
 * apps.connections.open (app-level token) gives a one-time URL; Slack
 * greets with "hello", sends envelopes that must be acknowledged with
 * their envelope_id within 3 s, and asks to reconnect with "disconnect"
 * (warning, refresh_requested: a fresh apps.connections.open at once;
 * link_disabled: stop until the next reload). A broken link is retried
 * with exponential backoff and jitter, 1 s doubling to 30 s.
 *
 * Slash commands and button presses go to host->command_dispatch; its
 * first answer (within the command budget) becomes the acknowledgement's
 * payload for a slash command. first() may run on any host thread, even
 * inside command_dispatch on this thread, so it only queues the ack and
 * wakes the loop; acks of an older connection are dropped. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <sodium.h>

#include "slack.h"

#define OPEN_TIMEOUT_MS 5000
/* The host pings after 45 s of silence and drops the link after another
 * 45 s: 90 s without a frame counts as broken. */
#define PING_AFTER_MS 45000
#define MAX_MESSAGE (4 << 20)
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000

typedef struct outmsg {
	struct outmsg *next;
	unsigned long gen;
	char *text;
} outmsg;

struct slk_socket {
	slk *s;
	pthread_t thread;
	bool running;
	int wake_fd;
	pthread_mutex_t mu; /* guards everything below */
	bool stopping;
	unsigned long gen;  /* current connection */
	outmsg *head, *tail;
	bool connected;
	char state[32];
	char last_reason[64];
	char error[256];
	time_t since;
	unsigned long connects, envelopes;
};

typedef enum { LINK_REFRESH, LINK_BROKEN, LINK_DISABLED, LINK_STOP } link_end;

typedef struct link_ctx {
	slk_socket *k;
	unsigned long gen;
	bool hello;
	bool open; /* the handshake succeeded */
	int end;   /* -1 while running, else link_end */
} link_ctx;

static bool stopping(slk_socket *k)
{
	pthread_mutex_lock(&k->mu);
	bool st = k->stopping;
	pthread_mutex_unlock(&k->mu);
	return st;
}

static void set_state(slk_socket *k, const char *state, bool connected)
{
	pthread_mutex_lock(&k->mu);
	snprintf(k->state, sizeof(k->state), "%s", state);
	if (connected && !k->connected)
		k->since = time(NULL);
	k->connected = connected;
	pthread_mutex_unlock(&k->mu);
	k->s->host->set_connected(k->s->inst, SLK_PLATFORM, connected);
}

static void sock_error(slk_socket *k, const char *what, const char *why)
{
	pthread_mutex_lock(&k->mu);
	snprintf(k->error, sizeof(k->error), "%s: %s", what, why);
	pthread_mutex_unlock(&k->mu);
	slk_error(k->s, "Socket Mode: %s: %s", what, why);
}

static void wake(slk_socket *k)
{
	uint64_t one = 1;
	if (write(k->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		IM_WARN(k->s->host, k->s->inst, "cannot wake the socket thread");
}

/* Queues `text` (taken) for connection `gen`. Any thread. */
static void enqueue(slk_socket *k, unsigned long gen, char *text)
{
	outmsg *m = text ? calloc(1, sizeof(*m)) : NULL;
	if (!m) {
		free(text);
		return;
	}
	m->gen = gen;
	m->text = text;
	pthread_mutex_lock(&k->mu);
	if (k->tail)
		k->tail->next = m;
	else
		k->head = m;
	k->tail = m;
	pthread_mutex_unlock(&k->mu);
	wake(k);
}

static void ack(slk_socket *k, unsigned long gen, const char *envelope_id,
		json_t *payload)
{
	json_t *a = json_pack("{s:s}", "envelope_id", envelope_id);
	if (a && payload)
		json_object_set(a, "payload", payload);
	enqueue(k, gen, slk_json_text(a));
	json_decref(a);
}

/* --- commands over the socket --------------------------------------------- */

typedef struct pending {
	slk_socket *k;
	unsigned long gen;
	char envelope_id[128];
	char *response_url; /* interactive: where the reply goes */
} pending;

static void slash_first(void *ud, const json_t *reply)
{
	pending *p = ud;
	json_t *msg = slk_render_reply(reply);
	ack(p->k, p->gen, p->envelope_id, msg);
	json_decref(msg);
	free(p);
}

static void action_first(void *ud, const json_t *reply)
{
	pending *p = ud;
	const char *st = json_string_value(json_object_get(reply, "status"));
	if (!(st && !strcmp(st, "working")) && p->response_url)
		slk_post_response_url(p->k->s, p->response_url, reply);
	free(p->response_url);
	free(p);
}

static void dispatch(link_ctx *c, const char *eid, const im_invocation *inv,
		     bool slash)
{
	slk *s = c->k->s;
	pending *p = calloc(1, sizeof(*p));
	if (p) {
		p->k = c->k;
		p->gen = c->gen;
		snprintf(p->envelope_id, sizeof(p->envelope_id), "%s", eid);
		if (!slash && inv->response_ref)
			p->response_url = strdup(inv->response_ref);
	}
	int rc = !p ? IM_ENOMEM
		 : s->host->command_dispatch
		     ? s->host->command_dispatch(s->inst, inv,
						 slash ? slash_first
						       : action_first,
						 p)
		     : IM_EUNSUPPORTED;
	if (rc == 0)
		return;
	if (p)
		free(p->response_url);
	free(p);
	IM_WARN(s->host, s->inst, "Socket Mode: command not started (%d)", rc);
	if (!slash)
		return; /* acknowledged already */
	json_t *msg = json_pack("{s:s,s:s}", "response_type", "ephemeral",
				"text", "Sorry, that command could not be "
					"started.");
	ack(c->k, c->gen, eid, msg);
	json_decref(msg);
}

static void envelope(link_ctx *c, const json_t *env)
{
	slk *s = c->k->s;
	const char *eid = json_string_value(json_object_get(env, "envelope_id"));
	const char *type = json_string_value(json_object_get(env, "type"));
	const json_t *pl = json_object_get(env, "payload");
	pthread_mutex_lock(&c->k->mu);
	c->k->envelopes++;
	pthread_mutex_unlock(&c->k->mu);
	im_invocation inv;
	const char *ptype = json_string_value(json_object_get(pl, "type"));
	bool payload_ok =
	    json_is_true(json_object_get(env, "accepts_response_payload"));
	if (type && !strcmp(type, "slash_commands") && payload_ok) {
		slk_inv_from_command(s, pl, &inv);
		dispatch(c, eid, &inv, true);
		return;
	}
	ack(c->k, c->gen, eid, NULL); /* everything else: ack at once */
	if (type && !strcmp(type, "slash_commands")) {
		/* No room for the answer in the ack: it goes to response_url. */
		slk_inv_from_command(s, pl, &inv);
		dispatch(c, eid, &inv, false);
	} else if (type && !strcmp(type, "interactive") && ptype &&
		   !strcmp(ptype, "block_actions") &&
		   slk_inv_from_actions(s, pl, &inv))
		dispatch(c, eid, &inv, false);
	else if (type && !strcmp(type, "events_api")) {
		const char *id =
		    json_string_value(json_object_get(pl, "event_id"));
		if (slk_dedup_seen(s->dedup, id))
			IM_DEBUG(s->host, s->inst, "event %s already handled", id);
		else
			IM_DEBUG(s->host, s->inst, "event %s received",
				 id ? id : "?");
	} else
		IM_DEBUG(s->host, s->inst, "ignored envelope of type %s",
			 type ? type : "(none)");
}

/* A frame from Slack, on the socket thread. */
static void on_text(void *ud, const char *text, size_t len)
{
	link_ctx *c = ud;
	json_error_t je;
	json_t *m = json_loadb(text, len, 0, &je);
	const char *type = json_string_value(json_object_get(m, "type"));
	if (!json_is_object(m) || !type) {
		IM_WARN(c->k->s->host, c->k->s->inst,
			"Socket Mode: ignored a frame that is not a message");
	} else if (!strcmp(type, "hello")) {
		c->hello = true;
		set_state(c->k, "connected", true);
		IM_INFO(c->k->s->host, c->k->s->inst, "Socket Mode connected");
	} else if (!strcmp(type, "disconnect")) {
		const char *r = json_string_value(json_object_get(m, "reason"));
		pthread_mutex_lock(&c->k->mu);
		snprintf(c->k->last_reason, sizeof(c->k->last_reason), "%s",
			 r ? r : "unknown");
		pthread_mutex_unlock(&c->k->mu);
		c->end = r && !strcmp(r, "link_disabled") ? LINK_DISABLED
							  : LINK_REFRESH;
		IM_INFO(c->k->s->host, c->k->s->inst,
			"Socket Mode: Slack asks to disconnect (%s)",
			r ? r : "no reason");
	} else if (json_object_get(m, "envelope_id")) {
		envelope(c, m);
	}
	json_decref(m);
}

/* --- one link -------------------------------------------------------------- */

/* What the link's callbacks (on the host's network thread) tell the
 * socket thread, in order; under k->mu. */
typedef struct inmsg {
	struct inmsg *next;
	size_t len;
	char text[];
} inmsg;

typedef struct link_io {
	slk_socket *k;
	inmsg *head, *tail; /* messages not yet handled */
	bool opened, closed;
	int code;
	char reason[128];
} link_io;

static void ws_on_open(void *ud, im_ws *ws)
{
	link_io *io = ud;
	pthread_mutex_lock(&io->k->mu);
	io->opened = true;
	pthread_mutex_unlock(&io->k->mu);
	wake(io->k);
}

static void ws_on_message(void *ud, im_ws *ws, int binary, const void *data,
			  size_t len)
{
	link_io *io = ud;
	inmsg *m = binary ? NULL : malloc(sizeof(*m) + len + 1);
	if (!m)
		return; /* Slack sends text only */
	m->next = NULL;
	m->len = len;
	memcpy(m->text, data, len);
	m->text[len] = '\0';
	pthread_mutex_lock(&io->k->mu);
	if (io->tail)
		io->tail->next = m;
	else
		io->head = m;
	io->tail = m;
	pthread_mutex_unlock(&io->k->mu);
	wake(io->k);
}

static void ws_on_close(void *ud, im_ws *ws, int code, const char *reason)
{
	link_io *io = ud;
	pthread_mutex_lock(&io->k->mu);
	io->closed = true;
	io->code = code;
	snprintf(io->reason, sizeof(io->reason), "%s", reason ? reason : "");
	pthread_mutex_unlock(&io->k->mu);
	wake(io->k);
}

static void flush(slk_socket *k, im_ws *w, unsigned long gen)
{
	pthread_mutex_lock(&k->mu);
	outmsg *m = k->head;
	k->head = k->tail = NULL;
	pthread_mutex_unlock(&k->mu);
	while (m) {
		outmsg *next = m->next;
		int rc = m->gen == gen
			     ? k->s->host->ws_send(w, 0, m->text, strlen(m->text))
			     : 0;
		if (rc != 0)
			IM_WARN(k->s->host, k->s->inst,
				"Socket Mode: an ack was not sent (%d)", rc);
		free(m->text);
		free(m);
		m = next;
	}
}

/* Handles what the link reported. false once it closed (*end set). */
static bool drain(link_ctx *c, link_io *io, im_ws *w, link_end *end)
{
	slk_socket *k = c->k;
	for (;;) {
		pthread_mutex_lock(&k->mu);
		inmsg *m = io->head;
		if (m && !(io->head = m->next))
			io->tail = NULL;
		bool opened = io->opened, closed = io->closed;
		io->opened = false;
		pthread_mutex_unlock(&k->mu);
		if (opened) {
			pthread_mutex_lock(&k->mu);
			k->connects++;
			pthread_mutex_unlock(&k->mu);
			c->open = true;
		}
		if (m) {
			on_text(c, m->text, m->len);
			free(m);
			continue;
		}
		if (!closed)
			return true;
		char why[160];
		if (c->open)
			snprintf(why, sizeof(why), "closed by Slack (%d%s%.120s)",
				 io->code, *io->reason ? ": " : "", io->reason);
		else
			snprintf(why, sizeof(why), "%s", io->reason);
		sock_error(k, c->open ? "link" : "connect", why);
		*end = c->end >= 0 ? (link_end)c->end : LINK_BROKEN;
		return false;
	}
}

/* One link on the host's WebSocket client, from handshake to close. */
static link_end run_link(slk_socket *k, const char *url, unsigned long gen)
{
	const im_host *h = k->s->host;
	link_ctx c = {.k = k, .gen = gen, .end = -1};
	link_io io = {.k = k};
	im_ws_call call = {
	    .struct_size = sizeof(call),
	    .url = url,
	    .ca_file = *k->s->cfg.tls_ca_file ? k->s->cfg.tls_ca_file : NULL,
	    .connect_timeout_ms = OPEN_TIMEOUT_MS,
	    .ping_interval_ms = PING_AFTER_MS,
	    .max_message = MAX_MESSAGE,
	    .on_open = ws_on_open,
	    .on_message = ws_on_message,
	    .on_close = ws_on_close,
	    .userdata = &io,
	};
	im_ws *w = NULL;
	int rc = h->ws_open(k->s->inst, &call, &w);
	if (rc != 0) {
		char why[64];
		snprintf(why, sizeof(why), "the host refused the link (%d)", rc);
		sock_error(k, "connect", why);
		return LINK_BROKEN;
	}
	link_end end = LINK_BROKEN;
	while (drain(&c, &io, w, &end)) {
		if (c.end >= 0 || stopping(k)) {
			flush(k, w, gen); /* acks queued with the disconnect */
			end = c.end >= 0 ? (link_end)c.end : LINK_STOP;
			h->ws_close(w, 1000, NULL);
			break;
		}
		flush(k, w, gen);
		struct pollfd pf = {.fd = k->wake_fd, .events = POLLIN};
		uint64_t v;
		if (poll(&pf, 1, 1000) > 0 &&
		    read(k->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			break;
	}
	/* The host finishes the closing handshake; no callback runs after
	 * this, so io may go. */
	h->ws_release(w);
	for (inmsg *m = io.head, *n; m; m = n) {
		n = m->next;
		free(m);
	}
	return end;
}

/* apps.connections.open: the one-time WebSocket URL (malloc'd) or NULL. */
static char *open_url(slk_socket *k)
{
	slk_api r;
	slk_api_call(k->s, "apps.connections.open", k->s->cfg.app_token, NULL, "",
		     &r);
	const char *url = json_string_value(json_object_get(r.body, "url"));
	char *out = r.ok && url ? strdup(url) : NULL;
	if (!out)
		sock_error(k, "apps.connections.open",
			   !strcmp(r.error, "invalid_auth") ||
				   !strcmp(r.error, "not_allowed_token_type")
			       ? "the app token was refused: set "
				 "SLACK_APP_TOKEN (xapp-... with "
				 "connections:write)"
			       : *r.error ? r.error
					  : "no url in the answer");
	slk_api_clear(&r);
	return out;
}

/* Sleeps up to ms, waking early on stop. */
static void nap(slk_socket *k, int ms)
{
	struct pollfd pf = {.fd = k->wake_fd, .events = POLLIN};
	uint64_t v;
	if (!stopping(k) && poll(&pf, 1, ms) > 0 &&
	    read(k->wake_fd, &v, sizeof(v)) < 0)
		(void)0; /* woken either way */
}

static void *socket_main(void *arg)
{
	slk_socket *k = arg;
	int backoff = BACKOFF_MIN_MS;
	while (!stopping(k)) {
		set_state(k, "connecting", false);
		char *url = open_url(k);
		link_end end = LINK_BROKEN;
		if (url) {
			pthread_mutex_lock(&k->mu);
			unsigned long gen = ++k->gen;
			pthread_mutex_unlock(&k->mu);
			end = run_link(k, url, gen);
		}
		free(url);
		set_state(k, end == LINK_DISABLED ? "link_disabled"
			     : end == LINK_STOP	  ? "stopped"
						  : "reconnecting",
			  false);
		if (end == LINK_DISABLED) {
			sock_error(k, "link_disabled",
				   "Slack disabled the Socket Mode link; turn "
				   "Socket Mode on in the app settings, then "
				   "`im plugins reload`");
			/* Failed, so the next reload makes a new instance (an
			 * unchanged running one would be kept as it is). */
			k->s->host->set_state(k->s->inst, IM_STATE_FAILED,
					      "Slack disabled the Socket Mode "
					      "link; turn Socket Mode on, then "
					      "im plugins reload");
			break;
		}
		if (end == LINK_REFRESH) {
			backoff = BACKOFF_MIN_MS;
			continue;
		}
		if (end == LINK_STOP)
			break;
		nap(k, backoff + (int)randombytes_uniform(
				     (uint32_t)backoff / 5 + 1)); /* +0..20% */
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
						       : backoff * 2;
	}
	return NULL;
}

int slk_socket_start(slk *s)
{
	slk_socket *k = calloc(1, sizeof(*k));
	if (!k)
		return IM_ENOMEM;
	k->s = s;
	k->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	snprintf(k->state, sizeof(k->state), "starting");
	pthread_mutex_init(&k->mu, NULL);
	if (k->wake_fd < 0 ||
	    pthread_create(&k->thread, NULL, socket_main, k) != 0) {
		if (k->wake_fd >= 0)
			close(k->wake_fd);
		pthread_mutex_destroy(&k->mu);
		free(k);
		return IM_ENOMEM;
	}
	k->running = true;
	s->sock = k;
	return 0;
}

void slk_socket_stop(slk *s)
{
	slk_socket *k = s->sock;
	if (!k || !k->running)
		return;
	pthread_mutex_lock(&k->mu);
	k->stopping = true;
	pthread_mutex_unlock(&k->mu);
	wake(k);
	pthread_join(k->thread, NULL);
	k->running = false;
	set_state(k, "stopped", false);
}

void slk_socket_free(slk *s)
{
	slk_socket *k = s->sock;
	if (!k)
		return;
	slk_socket_stop(s);
	for (outmsg *m = k->head, *n; m; m = n) {
		n = m->next;
		free(m->text);
		free(m);
	}
	close(k->wake_fd);
	pthread_mutex_destroy(&k->mu);
	free(k);
	s->sock = NULL;
}

json_t *slk_socket_status(slk *s)
{
	slk_socket *k = s->sock;
	if (!k)
		return json_pack("{s:b,s:s}", "connected", 0, "connection",
				 "not started");
	pthread_mutex_lock(&k->mu);
	json_t *o = json_pack("{s:b,s:s,s:I,s:I}", "connected", k->connected,
			      "connection", k->state, "connects",
			      (json_int_t)k->connects, "envelopes",
			      (json_int_t)k->envelopes);
	if (k->connected)
		json_object_set_new(o, "connected_since",
				    json_integer((json_int_t)k->since));
	if (*k->last_reason)
		json_object_set_new(o, "last_disconnect_reason",
				    json_string(k->last_reason));
	if (*k->error)
		json_object_set_new(o, "socket_error", json_string(k->error));
	pthread_mutex_unlock(&k->mu);
	return o;
}
