/* The fake chat platform: see fake_platform.h. One mutex guards the
 * buckets, the mode and the records; answers wait (latency, hang) outside
 * it on the connection's own thread. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "fake_platform.h"

typedef struct bucket {
	char *channel;
	double tokens, t;
} bucket;

struct fake_platform {
	struct MHD_Daemon *d;
	unsigned port;
	char url[64];
	pthread_mutex_t mu;
	double rate, burst;
	bool unlimited; /* no bucket: every message is accepted */
	unsigned latency_ms;
	fp_mode mode;
	int mode_count;
	unsigned mode_gen; /* bumped by fp_set_mode: ends hangs */
	char *unknown_channel;
	volatile int stopping;
	bucket *b;
	size_t nb, capb;
	json_t *reqs; /* every request */
	json_t *seen; /* dedup key -> times accepted */
	long next_id;
	long requests, accepted, limited, errors, duplicates;
	double first_t, last_t;
};

typedef struct conn {
	char *body;
	size_t len;
	char sig[160], ts[40]; /* X-Im-Signature, X-Im-Timestamp */
} conn;

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* With fp->mu held: 0 when a token was taken, else seconds to wait. */
static double take(fake_platform *fp, const char *ch)
{
	bucket *b = NULL;
	for (size_t i = 0; i < fp->nb && !b; i++)
		if (!strcmp(fp->b[i].channel, ch))
			b = &fp->b[i];
	double now = mono();
	if (!b) {
		if (fp->nb == fp->capb) {
			size_t cap = fp->capb ? fp->capb * 2 : 64;
			bucket *nbk = realloc(fp->b, cap * sizeof(*nbk));
			if (!nbk)
				return 1;
			fp->b = nbk;
			fp->capb = cap;
		}
		b = &fp->b[fp->nb++];
		b->channel = strdup(ch);
		b->tokens = fp->burst;
		b->t = now;
	}
	b->tokens += (now - b->t) * fp->rate;
	if (b->tokens > fp->burst)
		b->tokens = fp->burst;
	b->t = now;
	if (b->tokens >= 1) {
		b->tokens -= 1;
		return 0;
	}
	return (1 - b->tokens) / fp->rate;
}

static fp_mode current_mode(fake_platform *fp)
{
	fp_mode m = fp->mode;
	if (m != FPM_NORMAL && fp->mode_count > 0 && --fp->mode_count == 0)
		fp->mode = FPM_NORMAL;
	return m;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
			     const char *body, const char *retry_after)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", "application/json");
	if (retry_after)
		MHD_add_response_header(r, "Retry-After", retry_after);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* "/channels/<ch>/messages[/<id>]" -> ch, id. */
static int parse_path(const char *url, char *ch, size_t chl, char *id,
		      size_t idl)
{
	const char *p = url + strlen("/channels/");
	const char *slash = strchr(p, '/');
	if (strncmp(url, "/channels/", 10) || !slash || slash == p ||
	    (size_t)(slash - p) >= chl || strncmp(slash, "/messages", 9))
		return -1;
	memcpy(ch, p, (size_t)(slash - p));
	ch[slash - p] = '\0';
	const char *rest = slash + 9;
	*id = '\0';
	if (*rest == '/' && rest[1])
		snprintf(id, idl, "%s", rest + 1);
	else if (*rest)
		return -1;
	return 0;
}

static bool id_known(fake_platform *fp, const char *id)
{
	size_t i;
	const json_t *r;
	json_array_foreach(fp->reqs, i, r)
	{
		const char *rid = json_string_value(json_object_get(r, "id"));
		if (json_integer_value(json_object_get(r, "status")) == 200 &&
		    rid && !strcmp(rid, id))
			return true;
	}
	return false;
}

static unsigned gen_now(fake_platform *fp)
{
	pthread_mutex_lock(&fp->mu);
	unsigned g = fp->mode_gen;
	pthread_mutex_unlock(&fp->mu);
	return g;
}

/* Decides the answer for one message request (fp->mu held). */
static unsigned decide(fake_platform *fp, const char *method, const char *ch,
		       const char *id, const char *dedup, fp_mode *mode,
		       char *out, size_t outl, char *ra, size_t ral)
{
	*mode = current_mode(fp);
	*ra = '\0';
	if (*mode == FPM_500) {
		snprintf(out, outl, "{\"error\":\"internal_error\"}");
		return 500;
	}
	if (*mode == FPM_REJECT) {
		snprintf(out, outl,
			 "{\"error\":\"invalid_payload\","
			 "\"hint\":\"fix the message format\"}");
		return 400;
	}
	if (*mode == FPM_GLOBAL_429) {
		snprintf(ra, ral, "1.000");
		snprintf(out, outl,
			 "{\"error\":\"rate_limited\",\"retry_after\":1.0,"
			 "\"global\":true}");
		return 429;
	}
	if (*mode != FPM_NORMAL)
		return 0; /* garbage, drop, hang: handled by the caller */
	if (fp->unknown_channel && !strcmp(fp->unknown_channel, ch)) {
		snprintf(out, outl, "{\"error\":\"channel_not_found\"}");
		return 404;
	}
	if (!strcmp(method, "PATCH") && !id_known(fp, id)) {
		snprintf(out, outl, "{\"error\":\"message_not_found\"}");
		return 404;
	}
	double wait = fp->unlimited ? 0 : take(fp, ch);
	if (wait > 0) {
		snprintf(ra, ral, "%.3f", wait);
		snprintf(out, outl,
			 "{\"error\":\"rate_limited\",\"retry_after\":%.3f}",
			 wait);
		return 429;
	}
	char mid[32];
	if (*id)
		snprintf(mid, sizeof(mid), "%s", id);
	else
		snprintf(mid, sizeof(mid), "m%ld", ++fp->next_id);
	snprintf(out, outl, "{\"id\":\"%s\",\"channel\":\"%s\"}", mid, ch);
	if (*dedup) {
		json_int_t n =
		    json_integer_value(json_object_get(fp->seen, dedup));
		if (n > 0 && !strcmp(method, "POST"))
			fp->duplicates++;
		json_object_set_new(fp->seen, dedup, json_integer(n + 1));
	}
	return 200;
}

static void record(fake_platform *fp, double t, const char *method,
		   const char *ch, const char *id, unsigned status,
		   const char *dedup, const char *ra, const conn *cn,
		   const char *answer)
{
	json_t *ans = json_loads(answer, 0, NULL);
	const char *aid = json_string_value(json_object_get(ans, "id"));
	json_t *body = cn->body ? json_loadb(cn->body, cn->len, 0, NULL) : NULL;
	json_t *r = json_pack("{s:f,s:s,s:s,s:s,s:i,s:s,s:f,s:o}", "t", t,
			      "method", method, "channel", ch, "id",
			      aid ? aid : id, "status", (int)status, "dedup",
			      dedup, "retry_after",
			      *ra ? strtod(ra, NULL) : 0.0, "body",
			      body ? body : json_null());
	/* Signed requests (the SDK's webhook connector): what a receiver
	 * needs to check the signature. */
	if (r && *cn->sig) {
		json_object_set_new(r, "signature", json_string(cn->sig));
		json_object_set_new(r, "timestamp", json_string(cn->ts));
		json_object_set_new(r, "raw",
				    json_stringn(cn->body ? cn->body : "",
						 cn->body ? cn->len : 0));
	}
	json_array_append_new(fp->reqs, r);
	json_decref(ans);
	fp->requests++;
	if (status == 200) {
		fp->accepted++;
		if (fp->first_t == 0)
			fp->first_t = t;
		fp->last_t = t;
	} else if (status == 429) {
		fp->limited++;
	} else {
		fp->errors++;
	}
}

static enum MHD_Result control(fake_platform *fp, struct MHD_Connection *c,
			       const char *url, const char *method);

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	fake_platform *fp = cls;
	conn *cn = *con_cls;
	if (!cn) {
		*con_cls = calloc(1, sizeof(conn));
		return *con_cls ? MHD_YES : MHD_NO;
	}
	if (*upload_size) {
		char *b = realloc(cn->body, cn->len + *upload_size + 1);
		if (!b)
			return MHD_NO;
		memcpy(b + cn->len, upload, *upload_size);
		cn->body = b;
		cn->len += *upload_size;
		b[cn->len] = '\0';
		*upload_size = 0;
		return MHD_YES;
	}
	if (!strncmp(url, "/_", 2))
		return control(fp, c, url, method);
	char ch[128], id[64];
	if ((strcmp(method, "POST") && strcmp(method, "PATCH")) ||
	    parse_path(url, ch, sizeof(ch), id, sizeof(id)) != 0 ||
	    (!strcmp(method, "PATCH") && !*id) ||
	    (!strcmp(method, "POST") && *id))
		return reply(c, 404, "{\"error\":\"unknown_method\"}", NULL);
	const char *dk =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Dedup-Key");
	const char *sig =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Im-Signature");
	const char *its =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Im-Timestamp");
	snprintf(cn->sig, sizeof(cn->sig), "%s", sig ? sig : "");
	snprintf(cn->ts, sizeof(cn->ts), "%s", its ? its : "");
	char dedup[128], out[512], ra[32];
	snprintf(dedup, sizeof(dedup), "%s", dk ? dk : "");
	double t = wall();
	fp_mode mode;
	pthread_mutex_lock(&fp->mu);
	unsigned status = decide(fp, method, ch, id, dedup, &mode, out,
				 sizeof(out), ra, sizeof(ra));
	unsigned latency = fp->latency_ms, gen = fp->mode_gen;
	if (status)
		record(fp, t, method, ch, id, status, dedup, ra, cn, out);
	else
		record(fp, t, method, ch, id,
		       mode == FPM_GARBAGE ? 299
		       : mode == FPM_DROP  ? 0
					   : 504,
		       dedup, "", cn, "{}");
	pthread_mutex_unlock(&fp->mu);
	if (latency)
		sleep_ms(latency);
	if (mode == FPM_HANG) {
		/* Until the test sets a mode again or stops the server; the
		 * client's own timeout is what ends it in practice. */
		while (!fp->stopping && gen_now(fp) == gen)
			sleep_ms(20);
		return fp->stopping
			   ? MHD_NO
			   : reply(c, 503, "{\"error\":\"hung\"}", NULL);
	}
	if (mode == FPM_DROP)
		return MHD_NO;
	if (mode == FPM_GARBAGE) {
		/* 200 with something that is not the platform's JSON. */
		return reply(c, 200, "<html>\x01\x02 not json", NULL);
	}
	return reply(c, status, out, *ra ? ra : NULL);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	conn *cn = *con_cls;
	if (cn) {
		free(cn->body);
		free(cn);
	}
	*con_cls = NULL;
}

static enum MHD_Result send_json(struct MHD_Connection *c, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	enum MHD_Result r = reply(c, 200, s ? s : "null", NULL);
	free(s);
	return r;
}

static enum MHD_Result control(fake_platform *fp, struct MHD_Connection *c,
			       const char *url, const char *method)
{
	if (!strcmp(url, "/_stats"))
		return send_json(c, fp_stats(fp));
	if (!strcmp(url, "/_messages"))
		return send_json(c, fp_messages(fp));
	if (!strcmp(url, "/_requests"))
		return send_json(c, fp_requests(fp));
	if (!strcmp(url, "/_reset") && !strcmp(method, "POST")) {
		fp_reset(fp);
		return reply(c, 200, "{\"ok\":true}", NULL);
	}
	if (!strcmp(url, "/_mode") && !strcmp(method, "POST")) {
		static const char *const names[] = {"normal", "500",  "garbage",
						    "drop",   "hang", "reject"};
		const char *m = MHD_lookup_connection_value(
		    c, MHD_GET_ARGUMENT_KIND, "mode");
		const char *n = MHD_lookup_connection_value(
		    c, MHD_GET_ARGUMENT_KIND, "count");
		for (int i = 0; m && i < 6; i++)
			if (!strcmp(names[i], m)) {
				fp_set_mode(fp, (fp_mode)i, n ? atoi(n) : -1);
				return reply(c, 200, "{\"ok\":true}", NULL);
			}
	}
	return reply(c, 404, "{\"error\":\"unknown\"}", NULL);
}

fake_platform *fp_start(const fp_opts *o)
{
	fake_platform *fp = calloc(1, sizeof(*fp));
	if (!fp)
		return NULL;
	pthread_mutex_init(&fp->mu, NULL);
	fp->rate = o && o->rate > 0 ? o->rate : 1;
	fp->burst = o && o->burst > 0 ? o->burst : 3;
	fp->unlimited = o && o->unlimited;
	fp->latency_ms = o ? o->latency_ms : 0;
	fp->reqs = json_array();
	fp->seen = json_object();
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(o ? (uint16_t)o->port : 0),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	/* poll(), not select(): a peer that opens over a thousand
	 * connections (Alertmanager in bench/notify_fast.sh) is served, not
	 * refused at descriptor 1024. */
	fp->d = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
		MHD_USE_POLL | MHD_USE_ERROR_LOG,
	    0, NULL, NULL, handle, fp, MHD_OPTION_SOCK_ADDR, &a,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, fp,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
	if (!fp->d) {
		json_decref(fp->reqs);
		json_decref(fp->seen);
		free(fp);
		return NULL;
	}
	const union MHD_DaemonInfo *di =
	    MHD_get_daemon_info(fp->d, MHD_DAEMON_INFO_BIND_PORT);
	fp->port = di ? di->port : 0;
	snprintf(fp->url, sizeof(fp->url), "http://127.0.0.1:%u", fp->port);
	return fp;
}

void fp_stop(fake_platform *fp)
{
	if (!fp)
		return;
	fp->stopping = 1;
	MHD_stop_daemon(fp->d);
	for (size_t i = 0; i < fp->nb; i++)
		free(fp->b[i].channel);
	free(fp->b);
	free(fp->unknown_channel);
	json_decref(fp->reqs);
	json_decref(fp->seen);
	pthread_mutex_destroy(&fp->mu);
	free(fp);
}

unsigned fp_port(const fake_platform *fp)
{
	return fp->port;
}

const char *fp_url(const fake_platform *fp)
{
	return fp->url;
}

void fp_set_mode(fake_platform *fp, fp_mode mode, int count)
{
	pthread_mutex_lock(&fp->mu);
	fp->mode = count == 0 ? FPM_NORMAL : mode;
	fp->mode_count = count;
	fp->mode_gen++;
	pthread_mutex_unlock(&fp->mu);
}

void fp_set_latency(fake_platform *fp, unsigned ms)
{
	pthread_mutex_lock(&fp->mu);
	fp->latency_ms = ms;
	pthread_mutex_unlock(&fp->mu);
}

void fp_set_limits(fake_platform *fp, double rate, double burst)
{
	pthread_mutex_lock(&fp->mu);
	fp->rate = rate > 0 ? rate : 1;
	fp->burst = burst > 0 ? burst : 1;
	pthread_mutex_unlock(&fp->mu);
}

void fp_set_unknown_channel(fake_platform *fp, const char *channel)
{
	pthread_mutex_lock(&fp->mu);
	free(fp->unknown_channel);
	fp->unknown_channel = channel ? strdup(channel) : NULL;
	pthread_mutex_unlock(&fp->mu);
}

void fp_reset(fake_platform *fp)
{
	pthread_mutex_lock(&fp->mu);
	json_array_clear(fp->reqs);
	json_object_clear(fp->seen);
	for (size_t i = 0; i < fp->nb; i++)
		free(fp->b[i].channel);
	fp->nb = 0;
	fp->requests = fp->accepted = fp->limited = fp->errors = 0;
	fp->duplicates = 0;
	fp->first_t = fp->last_t = 0;
	pthread_mutex_unlock(&fp->mu);
}

json_t *fp_requests(fake_platform *fp)
{
	pthread_mutex_lock(&fp->mu);
	json_t *copy = json_deep_copy(fp->reqs);
	pthread_mutex_unlock(&fp->mu);
	return copy;
}

json_t *fp_messages(fake_platform *fp)
{
	json_t *out = json_array();
	pthread_mutex_lock(&fp->mu);
	size_t i;
	json_t *r;
	json_array_foreach(fp->reqs, i, r)
	{
		if (json_integer_value(json_object_get(r, "status")) == 200)
			json_array_append_new(out, json_deep_copy(r));
	}
	pthread_mutex_unlock(&fp->mu);
	return out;
}

json_t *fp_stats(fake_platform *fp)
{
	pthread_mutex_lock(&fp->mu);
	json_t *s = json_pack(
	    "{s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:I}", "requests",
	    (json_int_t)fp->requests, "accepted", (json_int_t)fp->accepted,
	    "rate_limited", (json_int_t)fp->limited, "errors",
	    (json_int_t)fp->errors, "duplicates", (json_int_t)fp->duplicates,
	    "first_t", fp->first_t, "last_t", fp->last_t, "channels",
	    (json_int_t)fp->nb);
	pthread_mutex_unlock(&fp->mu);
	return s;
}

#ifdef FAKE_PLATFORM_MAIN
static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
	quit = 1;
}

int main(int argc, char **argv)
{
	fp_opts o = {.rate = 1, .burst = 3, .latency_ms = 20};
	for (int i = 1; i < argc; i++) {
		bool arg = i + 1 < argc;
		if (!strcmp(argv[i], "--unlimited"))
			o.unlimited = true;
		else if (arg && !strcmp(argv[i], "--port"))
			o.port = (unsigned)atoi(argv[++i]);
		else if (arg && !strcmp(argv[i], "--rate"))
			o.rate = atof(argv[++i]);
		else if (arg && !strcmp(argv[i], "--burst"))
			o.burst = atof(argv[++i]);
		else if (arg && (!strcmp(argv[i], "--latency-ms") ||
				 !strcmp(argv[i], "--delay-ms")))
			o.latency_ms = (unsigned)atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: fake-platform [--port N] "
					"[--rate R] [--burst B] [--unlimited] "
					"[--latency-ms|--delay-ms MS]\n");
			return 2;
		}
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	fake_platform *fp = fp_start(&o);
	if (!fp) {
		fprintf(stderr, "fake-platform: cannot listen\n");
		return 1;
	}
	printf("%u\n", fp_port(fp));
	fflush(stdout);
	while (!quit)
		sleep_ms(100);
	fp_stop(fp);
	return 0;
}
#endif
