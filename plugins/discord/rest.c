/* Discord REST as Discord wants to be called: the bot token and a
 * DiscordBot User-Agent, per-route buckets read from the X-RateLimit-*
 * headers (an exhausted bucket waits out Reset-After before its next
 * request instead of collecting a 429), the bot-wide limit after a global
 * 429, and a guard against Discord's IP ban: 401, 403 and 429 answers
 * (except scope "shared") are counted over a sliding 10 minutes and
 * sending stops at invalid_limit, far below Discord's 10,000. After a 401
 * the token is not used again until the instance is reloaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "discord.h"

#define N_BUCKETS 1024
#define WINDOW_S 600
/* Discord allows 50 requests a second per bot; the last GLOBAL_N send
 * times keep any 1 s window a little under it, whatever the pipeline's
 * pacing lets through in a burst. */
#define GLOBAL_N 48

typedef struct bucket {
	char key[112];	/* route|major; "" = free slot */
	char id[48];	/* X-RateLimit-Bucket */
	double reset_at; /* monotonic seconds */
	long remaining, limit;
	int inflight;
	bool known;
	double used_at;
} bucket;

struct dsc_rest {
	dsc *d;
	pthread_mutex_t mu;
	bucket b[N_BUCKETS];
	double global_until;
	double sent[GLOBAL_N]; /* ring of send times (bot-token requests) */
	size_t sent_i;
	bool token_rejected;
	/* invalid requests per second over the last WINDOW_S seconds */
	unsigned short per_s[WINDOW_S];
	long long per_s_at[WINDOW_S];
	unsigned long rate_limited, invalid_total;
};

dsc_rest *dsc_rest_new(dsc *d)
{
	dsc_rest *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->d = d;
	pthread_mutex_init(&r->mu, NULL);
	return r;
}

void dsc_rest_free(dsc_rest *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->mu);
	free(r);
}

void dsc_res_clear(dsc_res *res)
{
	json_decref(res->json);
	memset(res, 0, sizeof(*res));
}

static unsigned long hash(const char *s)
{
	unsigned long h = 5381;
	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

/* The bucket of `key`, or a free or least recently used slot. */
static bucket *bucket_of(dsc_rest *r, const char *key, double now)
{
	size_t i = hash(key) % N_BUCKETS, lru = i;
	for (size_t k = 0; k < 8; k++) {
		bucket *b = &r->b[(i + k) % N_BUCKETS];
		if (!strcmp(b->key, key))
			return b;
		if (!b->key[0] || b->used_at < r->b[lru].used_at)
			lru = (i + k) % N_BUCKETS;
		if (!b->key[0])
			break;
	}
	bucket *b = &r->b[lru];
	if (b->inflight) /* never steal a slot in use: share this one */
		return b;
	memset(b, 0, sizeof(*b));
	snprintf(b->key, sizeof(b->key), "%s", key);
	b->used_at = now;
	return b;
}

static long invalid_count(dsc_rest *r, long long sec)
{
	long n = 0;
	for (int i = 0; i < WINDOW_S; i++)
		if (r->per_s_at[i] > sec - WINDOW_S)
			n += r->per_s[i];
	return n;
}

static void count_invalid(dsc_rest *r, long long sec)
{
	int i = (int)(sec % WINDOW_S);
	if (r->per_s_at[i] != sec) {
		r->per_s_at[i] = sec;
		r->per_s[i] = 0;
	}
	if (r->per_s[i] < 65535)
		r->per_s[i]++;
	r->invalid_total++;
}

bool dsc_rest_stopped(dsc_rest *r, double *wait_s)
{
	pthread_mutex_lock(&r->mu);
	long long sec = (long long)time(NULL);
	bool stop = invalid_count(r, sec) >= r->d->cfg.invalid_limit;
	if (wait_s) {
		/* Until the oldest counted second leaves the window. */
		long long oldest = sec;
		for (int i = 0; i < WINDOW_S; i++)
			if (r->per_s_at[i] > sec - WINDOW_S && r->per_s[i] &&
			    r->per_s_at[i] < oldest)
				oldest = r->per_s_at[i];
		*wait_s = stop ? (double)(oldest + WINDOW_S - sec) : 0;
	}
	pthread_mutex_unlock(&r->mu);
	return stop;
}

bool dsc_rest_token_rejected(dsc_rest *r)
{
	pthread_mutex_lock(&r->mu);
	bool v = r->token_rejected;
	pthread_mutex_unlock(&r->mu);
	return v;
}

/* Holds back or reserves one request of bucket `b`: 0 to go, else the
 * seconds to wait (global set when the bot-wide limit holds it). */
static double hold(dsc_rest *r, bucket *b, bool use_global, double now,
		   bool *global)
{
	*global = false;
	if (use_global && r->global_until > now) {
		*global = true;
		return r->global_until - now;
	}
	/* The oldest of the last GLOBAL_N sends is the one that would make
	 * GLOBAL_N + 1 within a second. */
	double oldest = r->sent[r->sent_i];
	if (use_global && oldest > 0 && now - oldest < 1.0) {
		*global = true;
		return oldest + 1.0 - now;
	}
	if (b->known && now >= b->reset_at) {
		/* A new window; its true reset comes with the next answer. */
		b->remaining = b->limit;
		b->reset_at = now + 60;
	}
	if (b->known && b->remaining <= 0)
		return b->reset_at - now;
	/* Unknown bucket: one request at a time until its headers say. */
	if (!b->known && b->inflight)
		return 0.05;
	b->remaining--;
	b->inflight++;
	b->used_at = now;
	if (use_global) {
		r->sent[r->sent_i] = now;
		r->sent_i = (r->sent_i + 1) % GLOBAL_N;
	}
	return 0;
}

static const char *header(const im_http_result *h, const char *name)
{
	for (size_t i = 0; h && i < h->n_headers; i++)
		if (!strcasecmp(h->headers[i].name, name))
			return h->headers[i].value;
	return NULL;
}

static void learn(dsc_rest *r, bucket *b, const im_http_result *h,
		  double now)
{
	b->inflight--;
	const char *lim = header(h, "x-ratelimit-limit");
	const char *rem = header(h, "x-ratelimit-remaining");
	const char *after = header(h, "x-ratelimit-reset-after");
	const char *id = header(h, "x-ratelimit-bucket");
	if (!lim || !rem || !after)
		return;
	b->known = true;
	b->limit = atol(lim);
	/* Requests still in flight were reserved from what Discord counted. */
	b->remaining = atol(rem) - b->inflight;
	b->reset_at = now + atof(after);
	if (id)
		snprintf(b->id, sizeof(b->id), "%s", id);
	(void)r;
}

static void parse_error(dsc_res *res)
{
	json_t *j = res->json;
	json_t *code = json_object_get(j, "code");
	const char *msg = json_string_value(json_object_get(j, "message"));
	res->code = json_is_integer(code) ? (int)json_integer_value(code) : 0;
	snprintf(res->message, sizeof(res->message), "%s",
		 msg ? msg : "no error message");
	json_t *ra = json_object_get(j, "retry_after");
	if (json_is_number(ra))
		res->retry_after = json_number_value(ra);
	if (json_is_true(json_object_get(j, "global")))
		res->global = true;
}

/* After an answer: limits, the invalid-request count, a dead token. */
static void account(dsc_rest *r, bucket *b, const im_http_result *h,
		    bool auth, dsc_res *res)
{
	double now = dsc_mono();
	pthread_mutex_lock(&r->mu);
	learn(r, b, h, now);
	long st = res->status;
	const char *scope = header(h, "x-ratelimit-scope");
	bool shared = scope && !strcasecmp(scope, "shared");
	if (st == 401 || st == 403 || (st == 429 && !shared))
		count_invalid(r, (long long)time(NULL));
	if (st == 429) {
		r->rate_limited++;
		const char *g = header(h, "x-ratelimit-global");
		if (g && !strcasecmp(g, "true"))
			res->global = true;
		if (res->retry_after <= 0) {
			const char *ra = header(h, "retry-after");
			res->retry_after = ra ? atof(ra) : 1;
		}
		if (res->global)
			r->global_until = now + res->retry_after;
		else {
			b->known = true;
			b->remaining = 0;
			b->reset_at = now + res->retry_after;
		}
	}
	if (st == 401 && auth)
		r->token_rejected = true;
	long invalid = invalid_count(r, (long long)time(NULL));
	pthread_mutex_unlock(&r->mu);
	dsc *d = r->d;
	if (d->m_invalid) {
		const char *labels[] = {d->id};
		d->host->metric_set(d->m_invalid, labels, (double)invalid);
	}
}

static int refuse_locally(dsc_res *res, const char *why, double wait,
			  bool global)
{
	res->local = true;
	res->retry_after = wait;
	res->global = global;
	snprintf(res->message, sizeof(res->message), "%s", why);
	return IM_EAGAIN;
}

/* Waits for a free slot in the limits; 0 when reserved. */
static int reserve(dsc_rest *r, bucket **out, const char *key, bool global,
		   double max_wait_s, dsc_res *res)
{
	double deadline = dsc_mono() + max_wait_s;
	for (int spins = 0; spins < 10000; spins++) {
		double now = dsc_mono();
		bool g;
		pthread_mutex_lock(&r->mu);
		bucket *b = bucket_of(r, key, now);
		double wait = hold(r, b, global, now, &g);
		pthread_mutex_unlock(&r->mu);
		if (wait <= 0) {
			*out = b;
			return 0;
		}
		if (now + wait > deadline)
			return refuse_locally(
			    res,
			    g ? "held back: the bot-wide rate limit is in "
				"force"
			      : "held back: this route's bucket is empty "
				"until its reset",
			    wait, g);
		usleep((useconds_t)((wait < 0.25 ? wait : 0.25) * 1e6) + 1000);
	}
	return refuse_locally(res, "held back: rate limit", 1, false);
}

int dsc_call(dsc_rest *r, const char *method, const char *route,
	     const char *major, const char *path, const json_t *body,
	     bool auth, double max_wait_s, dsc_res *res)
{
	dsc *d = r->d;
	memset(res, 0, sizeof(*res));
	if (auth && dsc_rest_token_rejected(r))
		return refuse_locally(res,
				      "the bot token was rejected (401); set a "
				      "valid bot_token and reload",
				      300, true);
	double stop_wait;
	if (dsc_rest_stopped(r, &stop_wait))
		return refuse_locally(res,
				      "stopped: too many invalid requests "
				      "(401/403/429) in 10 minutes",
				      stop_wait, true);
	char key[112];
	snprintf(key, sizeof(key), "%s|%s", route, major ? major : "");
	bucket *b = NULL;
	/* Interaction webhooks are exempt from the bot-wide limit. */
	int rc = reserve(r, &b, key, auth, max_wait_s, res);
	if (rc)
		return rc;
	char url[1024], authz[256];
	snprintf(url, sizeof(url), "%s%s", d->cfg.api_base_url, path);
	snprintf(authz, sizeof(authz), "Bot %s", d->cfg.bot_token);
	im_http_header h[] = {
	    IM_HEADER("User-Agent", d->user_agent),
	    IM_HEADER("Content-Type", "application/json"),
	    IM_HEADER("Authorization", authz),
	};
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	im_http_call call = {.struct_size = sizeof(call),
			     .method = method,
			     .url = url,
			     .headers = h,
			     .n_headers = auth ? 3 : 2,
			     .body = text,
			     .body_len = text ? strlen(text) : 0,
			     .timeout_ms = (uint32_t)d->cfg.timeout_ms};
	im_http_result *hr = NULL;
	rc = d->host->http_fetch(d->inst, &call, &hr);
	free(text);
	if (hr && !hr->error) {
		res->status = hr->status;
		if (hr->body_len)
			res->json = json_loadb(hr->body, hr->body_len, 0, NULL);
		if (hr->status >= 300)
			parse_error(res);
	} else {
		snprintf(res->message, sizeof(res->message), "%s",
			 hr && hr->error_text ? hr->error_text
					      : "request failed");
	}
	account(r, b, hr && !hr->error ? hr : NULL, auth, res);
	if (hr)
		d->host->http_result_free(hr);
	if (rc == 0 && (res->status < 200 || res->status >= 300))
		rc = IM_EIO;
	return rc ? (rc == IM_EAGAIN ? IM_EIO : rc) : 0;
}

json_t *dsc_rest_status(dsc_rest *r)
{
	pthread_mutex_lock(&r->mu);
	long long sec = (long long)time(NULL);
	long n = invalid_count(r, sec);
	json_t *o = json_pack(
	    "{s:I,s:I,s:b,s:b,s:I,s:I}", "invalid_10min", (json_int_t)n,
	    "invalid_limit", (json_int_t)r->d->cfg.invalid_limit, "stopped",
	    n >= r->d->cfg.invalid_limit, "token_rejected", r->token_rejected,
	    "rate_limited", (json_int_t)r->rate_limited, "invalid_total",
	    (json_int_t)r->invalid_total);
	pthread_mutex_unlock(&r->mu);
	return o;
}
