/* The fake Slack's Socket Mode endpoint, on fake_ws_server.c. A
 * connection needs a ticket from apps.connections.open (one use each),
 * gets "hello" at once, then whatever the test sends; the acks it gets
 * back are kept by envelope_id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "fake_slack_int.h"
#include "fake_ws_server.h"

struct fake_ws {
	fwsv *srv;
	bool tls;	 /* set by fake_slack_ws_tls (under f->mu) */
	json_t *tickets; /* ticket -> true, until used */
	json_t *acks;	 /* envelope_id -> ack */
	unsigned long next_ticket, next_env;
	int hellos;
};

void fws_issue_url(fake_slack *f, char *buf, size_t len)
{
	char t[32];
	snprintf(t, sizeof(t), "%lu", ++f->ws->next_ticket);
	json_object_set_new(f->ws->tickets, t, json_true());
	snprintf(buf, len, "%s://%s:%u/link/?ticket=%s&app_id=A0FAKE",
		 f->ws->tls ? "wss" : "ws",
		 f->ws->tls ? "localhost" : "127.0.0.1", fwsv_port(f->ws->srv),
		 t);
}

static void send_locked(fake_slack *f, unsigned id, json_t *msg)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	if (s)
		fwsv_send(f->ws->srv, id, s);
	free(s);
}

/* --- the server's callbacks (a connection's thread) --------------------- */

/* Only /link/?ticket=N with a ticket not used yet. */
static bool on_upgrade(void *ud, const char *target)
{
	fake_slack *f = ud;
	char ticket[32] = "";
	const char *t = strstr(target, "ticket=");
	if (strncmp(target, "/link/", 6) || !t ||
	    sscanf(t + 7, "%31[0-9]", ticket) != 1)
		return false;
	pthread_mutex_lock(&f->mu);
	bool ok = json_object_get(f->ws->tickets, ticket) != NULL;
	json_object_del(f->ws->tickets, ticket); /* one use */
	pthread_mutex_unlock(&f->mu);
	return ok;
}

static void on_open(void *ud, unsigned id, const char *target)
{
	fake_slack *f = ud;
	pthread_mutex_lock(&f->mu);
	int n = ++f->ws->hellos;
	json_t *hello = json_pack(
	    "{s:s,s:i,s:{s:s,s:i},s:{s:s}}", "type", "hello", "num_connections",
	    n, "debug_info", "host", "fake-slack", "approximate_connection_time",
	    18060, "connection_info", "app_id", "A0FAKE");
	send_locked(f, id, hello);
	json_decref(hello);
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static void on_text(void *ud, unsigned id, const char *msg, size_t len)
{
	fake_slack *f = ud;
	json_t *m = json_loadb(msg, len, 0, NULL);
	const char *env = json_string_value(json_object_get(m, "envelope_id"));
	if (env) {
		pthread_mutex_lock(&f->mu);
		json_object_set(f->ws->acks, env, m);
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
	}
	json_decref(m);
}

int fws_start(fake_slack *f)
{
	static const fwsv_cbs cbs = {
	    .upgrade = on_upgrade, .open = on_open, .text = on_text};
	fake_ws *w = calloc(1, sizeof(*w));
	if (!w)
		return -1;
	f->ws = w;
	w->tickets = json_object();
	w->acks = json_object();
	w->srv = fwsv_start(0, &cbs, f);
	return w->srv ? 0 : -1;
}

void fws_stop(fake_slack *f)
{
	fake_ws *w = f->ws;
	if (!w)
		return;
	fwsv_stop(w->srv);
	json_decref(w->tickets);
	json_decref(w->acks);
	free(w);
	f->ws = NULL;
}

/* --- the test's side ---------------------------------------------------- */

int fake_slack_ws_hellos(fake_slack *f)
{
	pthread_mutex_lock(&f->mu);
	int n = f->ws->hellos;
	pthread_mutex_unlock(&f->mu);
	return n;
}

int fake_slack_ws_live(fake_slack *f)
{
	return fwsv_open_count(f->ws->srv);
}

static void deadline(struct timespec *t, int ms)
{
	clock_gettime(CLOCK_REALTIME, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

bool fake_slack_ws_wait_hellos(fake_slack *f, int n, int timeout_ms)
{
	struct timespec until;
	deadline(&until, timeout_ms);
	pthread_mutex_lock(&f->mu);
	while (f->ws->hellos < n &&
	       pthread_cond_timedwait(&f->cv, &f->mu, &until) == 0)
		;
	bool ok = f->ws->hellos >= n;
	pthread_mutex_unlock(&f->mu);
	return ok;
}

bool fake_slack_ws_envelope(fake_slack *f, const char *type,
			    const json_t *payload, bool accepts_response,
			    char *id, size_t idlen)
{
	unsigned c = fwsv_newest(f->ws->srv);
	if (!c)
		return false;
	pthread_mutex_lock(&f->mu);
	snprintf(id, idlen, "env-%lu", ++f->ws->next_env);
	json_t *e = json_pack("{s:s,s:s,s:O,s:b,s:i}", "envelope_id", id,
			      "type", type, "payload", payload,
			      "accepts_response_payload", accepts_response,
			      "retry_attempt", 0);
	send_locked(f, c, e);
	json_decref(e);
	pthread_mutex_unlock(&f->mu);
	return true;
}

json_t *fake_slack_ws_wait_ack(fake_slack *f, const char *envelope_id,
			       int timeout_ms)
{
	struct timespec until;
	deadline(&until, timeout_ms);
	pthread_mutex_lock(&f->mu);
	json_t *a;
	while (!(a = json_object_get(f->ws->acks, envelope_id)) &&
	       pthread_cond_timedwait(&f->cv, &f->mu, &until) == 0)
		;
	json_incref(a);
	pthread_mutex_unlock(&f->mu);
	return a;
}

void fake_slack_ws_disconnect(fake_slack *f, const char *reason)
{
	json_t *d = json_pack("{s:s,s:s,s:{s:s}}", "type", "disconnect",
			      "reason", reason, "debug_info", "host",
			      "fake-slack");
	pthread_mutex_lock(&f->mu);
	send_locked(f, 0, d);
	pthread_mutex_unlock(&f->mu);
	json_decref(d);
}

void fake_slack_ws_drop(fake_slack *f)
{
	fwsv_drop(f->ws->srv, 0);
}

/* --- wss:// ------------------------------------------------------------- */

/* A self-signed certificate for localhost and 127.0.0.1. */
static X509 *self_signed(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX v3;
	X509_EXTENSION *san = NULL;
	bool ok = x && name && X509_set_version(x, 2) &&
		  ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
		  X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
		  X509_gmtime_adj(X509_getm_notAfter(x), 86400) &&
		  X509_set_pubkey(x, key) &&
		  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					     (const unsigned char *)"localhost",
					     -1, -1, 0) &&
		  X509_set_subject_name(x, name) && X509_set_issuer_name(x, name);
	if (ok) {
		X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
		san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
					  "DNS:localhost,IP:127.0.0.1");
		ok = san && X509_add_ext(x, san, -1) &&
		     X509_sign(x, key, EVP_sha256()) > 0;
	}
	X509_EXTENSION_free(san);
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

bool fake_slack_ws_tls(fake_slack *f, const char *ca_path)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = key ? self_signed(key) : NULL;
	SSL_CTX *ctx = cert ? SSL_CTX_new(TLS_server_method()) : NULL;
	FILE *out = ctx ? fopen(ca_path, "w") : NULL;
	bool ok = out && SSL_CTX_use_certificate(ctx, cert) == 1 &&
		  SSL_CTX_use_PrivateKey(ctx, key) == 1 &&
		  PEM_write_X509(out, cert) == 1;
	if (out)
		fclose(out);
	X509_free(cert);
	EVP_PKEY_free(key);
	if (!ok) {
		SSL_CTX_free(ctx);
		return false;
	}
	fwsv_set_tls(f->ws->srv, ctx);
	pthread_mutex_lock(&f->mu);
	f->ws->tls = true;
	pthread_mutex_unlock(&f->mu);
	return true;
}
