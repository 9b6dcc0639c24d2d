/* The bot's messaging endpoint, POST /hooks/<instance>/messages: Bot
 * Framework's token is checked before anything else (jwt.c), then the
 * activity: its conversation reference is learnt (refs.c), its tenant
 * checked against allowed_tenants, and a command or card button runs
 * through the host's command framework (activity.c).
 *
 * Nothing here waits for the network on an HTTP worker:
 *   - a typed command or an Action.Submit is answered 200 at once; its
 *     result is posted as a threaded reply through the Bot Connector by
 *     the instance's own thread (the "jobs" below);
 *   - an Action.Execute invoke is answered in the HTTP body (deferred,
 *     no worker held) with the result, or "working" at the command budget
 *     and the result as a threaded reply later (followup());
 *   - a token whose keys must be fetched first (the first activity, a new
 *     kid, the daily refresh) is checked on the jobs thread, which then
 *     answers the deferred request.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "activity.h"
#include "teams.h"

#define JOBS_MAX 256	    /* queued replies and slow checks */
#define DRAIN_S 5	    /* at stop, replies still posted for this long */

enum { JOB_REPLY, JOB_CHECK, JOB_WARM };

struct tms_job {
	struct tms_job *next;
	int kind;
	tms *t;
	char *ref;    /* JOB_REPLY: the activity's response_ref */
	json_t *reply;
	char *authz;  /* JOB_CHECK: the request, copied */
	char *body;
	size_t len;
	im_http_deferred *d;
};

static void job_free(struct tms_job *j)
{
	if (!j)
		return;
	free(j->ref);
	json_decref(j->reply);
	free(j->authz);
	free(j->body);
	free(j);
}

/* Queues a job for the jobs thread; false (job freed) when it is full or
 * stopping. */
static bool enqueue(tms *t, struct tms_job *j)
{
	pthread_mutex_lock(&t->mu);
	bool ok = t->running && !t->stopping && t->queued < JOBS_MAX;
	if (ok) {
		if (t->tail)
			t->tail->next = j;
		else
			t->head = j;
		t->tail = j;
		t->queued++;
		pthread_cond_signal(&t->cv);
	}
	pthread_mutex_unlock(&t->mu);
	return ok;
}

/* ---- answers --------------------------------------------------------- */

/* Answers either the live response or a deferred one. */
typedef struct sink {
	tms *t;
	im_http_response *resp;
	im_http_deferred *d;
} sink;

static int answer(sink *k, int status, const char *ctype, const char *body)
{
	size_t len = body ? strlen(body) : 0;
	if (k->resp)
		return k->t->host->resp_set(k->resp, status, ctype, body, len);
	return k->t->host->deferred_complete(k->d, status, ctype, body, len,
					      NULL);
}

static int answer_json(sink *k, int status, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	int rc = answer(k, s ? status : 500, "application/json",
			s ? s : "{\"error\":\"out of memory\"}");
	free(s);
	return rc;
}

static int answer_error(sink *k, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int answer_error(sink *k, int status, const char *fmt, ...)
{
	char why[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	return answer_json(k, status, json_pack("{s:s}", "error", why));
}

/* ---- replies in the conversation -------------------------------------- */

/* Replies keep to Teams' per-conversation limit (about 7 at once, then 60
 * in 30 s): a token bucket per channel (hashed; a collision only shares a
 * bucket). A flood of commands in one conversation gets its first replies
 * and a count of the rest, never a flood of 429s. */
#define PACE_BURST 7.0
#define PACE_RATE 2.0

static bool paced(tms *t, const char *ref)
{
	json_t *r = ref ? json_loads(ref, 0, NULL) : NULL;
	const char *c = json_string_value(json_object_get(r, "conversation"));
	uint64_t h = 1469598103934665603ull;
	for (; c && *c && *c != ';'; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ull;
	json_decref(r);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	pthread_mutex_lock(&t->mu);
	struct tms_pace *p = &t->pace[h % TMS_PACE_SLOTS];
	if (p->key != h) {
		*p = (struct tms_pace){.key = h, .tokens = PACE_BURST, .at = now};
	} else {
		p->tokens += (now - p->at) * PACE_RATE;
		if (p->tokens > PACE_BURST)
			p->tokens = PACE_BURST;
		p->at = now;
	}
	bool ok = p->tokens >= 1.0;
	if (ok)
		p->tokens -= 1.0;
	pthread_mutex_unlock(&t->mu);
	return ok;
}

/* A reply not posted: counted, and said at most every 10 s. */
static void dropped(tms *t, const char *why)
{
	time_t now = time(NULL);
	pthread_mutex_lock(&t->mu);
	unsigned long n = ++t->replies_dropped;
	bool say = now - t->dropped_said_at >= 10;
	if (say)
		t->dropped_said_at = now;
	pthread_mutex_unlock(&t->mu);
	if (say)
		IM_WARN(t->host, t->inst,
			"command replies dropped (%lu so far), the last one %s",
			n, why);
}

/* Posts `reply` (a command reply) as a reply to the activity `ref` names.
 * Blocks on the Bot Connector; 0 when it was posted. */
static int post_reply(tms *t, const char *ref, const json_t *reply)
{
	json_t *r = ref ? json_loads(ref, 0, NULL) : NULL;
	const char *su = json_string_value(json_object_get(r, "service_url"));
	const char *conv = json_string_value(json_object_get(r, "conversation"));
	const char *aid = json_string_value(json_object_get(r, "activity_id"));
	json_t *act = tms_reply_activity(reply);
	int rc = IM_EINVAL;
	if (su && conv && act) {
		tms_target to = {.service_url = su,
				 .conversation = conv,
				 .reply_to = aid};
		im_send_result res = {.struct_size = sizeof res};
		rc = tms_api_send(&t->api, &to, act, &res);
		if (rc == 0 && res.verdict != IM_SEND_OK) {
			IM_WARN(t->host, t->inst,
				"reply in %s not posted: HTTP %ld %s: %s", conv,
				res.http_status, res.error, res.hint);
			tms_note_error(t, "reply in %s: HTTP %ld %s: %s", conv,
				   res.http_status, res.error, res.hint);
			rc = IM_EIO;
		}
	}
	json_decref(act);
	json_decref(r);
	return rc;
}

int tms_followup(void *state, const im_invocation *inv, const json_t *reply)
{
	if (!paced(state, inv->response_ref)) {
		dropped(state, "over the per-conversation rate (7 at once, 2/s)");
		return IM_EAGAIN;
	}
	return post_reply(state, inv->response_ref, reply);
}

/* command_dispatch's first answer to a typed command or Action.Submit:
 * posted by the jobs thread (this may run on an HTTP worker). */
static void first_reply(void *ud, const json_t *reply)
{
	struct tms_job *j = ud;
	tms *t = j->t;
	if (!paced(t, j->ref)) {
		dropped(t, "over the per-conversation rate (7 at once, 2/s)");
		job_free(j);
	} else if (!(j->reply = json_deep_copy(reply)) || !enqueue(t, j)) {
		dropped(t, "the reply queue is full or the instance stops");
		job_free(j);
	}
}

/* command_dispatch's first answer to an Action.Execute: the invoke's
 * HTTP answer. */
typedef struct invoke_wait {
	tms *t;
	im_http_deferred *d;
} invoke_wait;

static void first_invoke(void *ud, const json_t *reply)
{
	invoke_wait *w = ud;
	const char *text = json_string_value(json_object_get(reply, "text"));
	sink k = {.t = w->t, .d = w->d};
	answer_json(&k, 200, tms_invoke_answer(text ? text : "done", false));
	free(w);
}

/* ---- one activity, its token checked ----------------------------------- */

static bool tenant_allowed(const tms *t, const char *tenant)
{
	if (!json_array_size(t->cfg.allowed_tenants))
		return true;
	size_t i;
	const json_t *v;
	json_array_foreach(t->cfg.allowed_tenants, i, v)
	    if (tenant && json_string_value(v) &&
		!strcmp(json_string_value(v), tenant)) return true;
	return false;
}

static const char *jstr(const json_t *o, const char *a, const char *b)
{
	const json_t *v = json_object_get(o, a);
	return json_string_value(b ? json_object_get(v, b) : v);
}

static void note_activity(tms *t, const json_t *a)
{
	const char *who = jstr(a, "from", "name");
	const char *conv = jstr(a, "conversation", "id");
	pthread_mutex_lock(&t->mu);
	snprintf(t->last_activity, sizeof t->last_activity, "%s from %s in %s",
		 jstr(a, "type", NULL), who ? who : "?", conv ? conv : "?");
	t->last_activity_at = time(NULL);
	pthread_mutex_unlock(&t->mu);
}

static int run_activity(tms *t, const json_t *a, sink *k)
{
	const json_t *cd = json_object_get(a, "channelData");
	const char *tenant = jstr(cd, "tenant", "id");
	if (!tenant)
		tenant = jstr(a, "conversation", "tenantId");
	if (!tenant_allowed(t, tenant)) {
		IM_WARN(t->host, t->inst,
			"activity refused: tenant %s is not in allowed_tenants",
			tenant ? tenant : "(none)");
		return answer_error(k, 403, "tenant %s is not allowed",
				    tenant ? tenant : "(none)");
	}
	note_activity(t, a);
	if (tms_refs_learn(t->refs, a, time(NULL)) < 0)
		IM_WARN(t->host, t->inst, "conversation reference not stored");

	tms_inv ti;
	tms_kind kind = tms_inv_from(a, t->id, &ti);
	int rc = 0;
	switch (kind) {
	case TMS_IGNORE:
		rc = answer(k, 200, "application/json", "{}");
		break;
	case TMS_BAD_INVOKE:
		rc = answer_json(k, 200, tms_invoke_answer(
					     "this bot answers only card "
					     "actions (adaptiveCard/action)",
					     true));
		break;
	case TMS_COMMAND:
	case TMS_SUBMIT: {
		struct tms_job *j = calloc(1, sizeof(*j));
		if (j) {
			j->kind = JOB_REPLY;
			j->ref = strdup(ti.response_ref);
			j->t = t;
		}
		if (!j || !j->ref) {
			job_free(j);
			rc = answer_error(k, 503, "out of memory");
			break;
		}
		/* 200 now; the result comes as a threaded reply. */
		rc = answer(k, 200, "application/json", "{}");
		if (t->host->command_dispatch(t->inst, &ti.inv, first_reply, j)) {
			IM_WARN(t->host, t->inst, "a command could not start");
			job_free(j);
		}
		break;
	}
	case TMS_EXECUTE: {
		invoke_wait *w = calloc(1, sizeof(*w));
		im_http_deferred *d =
		    k->resp ? t->host->resp_defer(k->resp) : k->d;
		if (!w || !d) {
			free(w);
			if (d && k->resp) {
				sink dk = {.t = t, .d = d};
				answer_error(&dk, 503, "out of memory");
			} else if (!d) {
				answer_error(k, 503, "out of memory");
			}
			break;
		}
		*w = (invoke_wait){t, d};
		if (t->host->command_dispatch(t->inst, &ti.inv, first_invoke,
					      w)) {
			sink dk = {.t = t, .d = d};
			answer_json(&dk, 200,
				    tms_invoke_answer("the command could not "
						      "start",
						      true));
			free(w);
		}
		break;
	}
	}
	tms_inv_clear(&ti);
	return rc;
}

/* The whole request: token, then activity. `flags` TMS_JWT_NOWAIT on an
 * HTTP worker; IM_EAGAIN when the check needs the jobs thread (nothing
 * answered yet). */
static int serve(tms *t, const char *authz, const char *body, size_t len,
		 int flags, sink *k)
{
	char why[320];
	json_error_t e;
	json_t *a = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
	const char *su = jstr(a, "serviceUrl", NULL);
	const char *type = jstr(a, "type", NULL);
	char bad[300] = "";
	if (!a)
		snprintf(bad, sizeof bad, "activity is not JSON: %s (line %d)",
			 e.text, e.line);
	else if (!json_is_object(a))
		snprintf(bad, sizeof bad, "activity is not a JSON object");
	else if (!type || !su)
		snprintf(bad, sizeof bad, "activity has no %s",
			 !type ? "type" : "serviceUrl");
	/* The token first: who may not post here learns nothing about the
	 * body. A body that is no activity is checked as a token alone. */
	int rc = tms_jwt_check(t->jwt, authz, *bad ? NULL : su,
			       *bad ? NULL : jstr(a, "channelId", NULL),
			       flags | (*bad ? TMS_JWT_TOKEN_ONLY : 0), why,
			       sizeof why);
	if (rc == IM_EAGAIN) {
		json_decref(a);
		return rc;
	}
	if (rc) {
		IM_WARN(t->host, t->inst, "activity refused (401): %s", why);
		rc = answer_error(k, 401, "unauthorized");
	} else if (*bad) {
		IM_WARN(t->host, t->inst, "bad activity (400): %s", bad);
		rc = answer_error(k, 400, "%s", bad);
	} else {
		rc = run_activity(t, a, k);
	}
	json_decref(a);
	return rc;
}

int tms_on_messages(void *state, const im_http_request *req,
		    im_http_response *resp)
{
	tms *t = state;
	const im_host *h = t->host;
	size_t len = 0;
	const char *body = h->req_body(req, &len);
	const char *authz = h->req_header(req, "Authorization");
	sink k = {.t = t, .resp = resp};
	int rc = serve(t, authz, body, len, TMS_JWT_NOWAIT, &k);
	if (rc != IM_EAGAIN)
		return rc;
	/* The keys must be fetched: the jobs thread checks and answers. */
	struct tms_job *j = calloc(1, sizeof(*j));
	if (j) {
		j->kind = JOB_CHECK;
		j->authz = strdup(authz ? authz : "");
		j->body = malloc(len + 1);
		j->len = len;
	}
	if (!j || !j->authz || !j->body) {
		job_free(j);
		return answer_error(&k, 503, "out of memory");
	}
	memcpy(j->body, body, len);
	j->body[len] = '\0';
	j->d = h->resp_defer(resp);
	if (!j->d) {
		job_free(j);
		return answer_error(&k, 503, "out of memory");
	}
	if (!enqueue(t, j)) {
		h->deferred_complete(j->d, 503, "application/json",
				     "{\"error\":\"busy: try again\"}", 27,
				     (const char *const[]){"Retry-After", "1",
							   NULL});
		job_free(j);
	}
	return 0;
}

/* ---- the jobs thread --------------------------------------------------- */

static void run_job(tms *t, struct tms_job *j, bool stopping)
{
	switch (j->kind) {
	case JOB_REPLY:
		if (post_reply(t, j->ref, j->reply))
			IM_WARN(t->host, t->inst, "a command reply was not "
				"posted (see above)");
		break;
	case JOB_CHECK: {
		sink k = {.t = t, .d = j->d};
		if (stopping ||
		    serve(t, j->authz, j->body, j->len, 0, &k) == IM_EAGAIN)
			answer_error(&k, 503, "stopping: try again");
		break;
	}
	case JOB_WARM:
		if (!tms_jwt_warm(t->jwt))
			IM_WARN(t->host, t->inst,
				"signing keys not loaded yet (%s): inbound "
				"activities are refused until they are",
				t->cfg.openid_metadata_url);
		break;
	}
}

static void *jobs_main(void *arg)
{
	tms *t = arg;
	struct timespec until = {0};
	pthread_mutex_lock(&t->mu);
	for (;;) {
		while (!t->head && !t->stopping)
			pthread_cond_wait(&t->cv, &t->mu);
		struct tms_job *j = t->head;
		if (!j)
			break;
		t->head = j->next;
		if (!t->head)
			t->tail = NULL;
		t->queued--;
		bool stopping = t->stopping;
		pthread_mutex_unlock(&t->mu);
		if (stopping && !until.tv_sec) {
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += DRAIN_S;
		}
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		bool late = stopping && now.tv_sec >= until.tv_sec;
		if (late && j->kind == JOB_REPLY)
			IM_WARN(t->host, t->inst, "stopping: a command reply "
				"was not posted");
		else if (!(stopping && j->kind == JOB_WARM))
			run_job(t, j, late);
		job_free(j);
		pthread_mutex_lock(&t->mu);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

int tms_jobs_start(tms *t)
{
	pthread_mutex_lock(&t->mu);
	t->running = true;
	t->stopping = false;
	pthread_mutex_unlock(&t->mu);
	if (pthread_create(&t->thread, NULL, jobs_main, t)) {
		t->running = false;
		return IM_ENOMEM;
	}
	/* Fetch the keys now, so the first activity finds them. */
	struct tms_job *w = calloc(1, sizeof(*w));
	if (w) {
		w->kind = JOB_WARM;
		if (!enqueue(t, w))
			job_free(w);
	}
	return 0;
}

void tms_jobs_stop(tms *t)
{
	pthread_mutex_lock(&t->mu);
	bool was = t->running;
	t->stopping = true;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	if (was)
		pthread_join(t->thread, NULL);
	pthread_mutex_lock(&t->mu);
	t->running = false;
	pthread_mutex_unlock(&t->mu);
}
