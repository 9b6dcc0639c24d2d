/* One delivery: render the rows of a job, call the connector's send() on
 * this (delivery) thread, classify the answer and record it in the outbox
 * before the dispatcher hears of it, so a crash after this point never
 * loses the outcome and a crash before it only repeats the send. */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log/log.h"
#include "metrics/metrics.h"
#include "notify/internal.h"

#define BACKOFF_BASE_S 1.0
#define BACKOFF_CAP_S 60.0

static im_metric *m_sent, *m_rl, *m_depth, *m_lat, *m_fail, *m_dead;
static _Thread_local uint64_t rng;

void nt_metrics_register(void)
{
	static const char *const p[] = {"platform", NULL};
	static const char *const pr[] = {"platform", "reason", NULL};
	/* Commit to platform 2xx: a digest waits for its window (5 s by
	 * default), retries for up to minutes. */
	static const double b[] = {0.05, 0.1, 0.2, 0.5, 1,   2,
				   5,	 10,  30,  60,	300, 1800};
	m_sent = im_metrics_family("chatops_messages_sent_total",
				   "Messages sent by platform",
				   IM_METRIC_COUNTER, p, NULL, 0);
	m_rl = im_metrics_family("chatops_rate_limit_hits_total",
				 "Rate-limit answers from chat platforms",
				 IM_METRIC_COUNTER, p, NULL, 0);
	m_depth = im_metrics_family("im_notify_queue_depth",
				    "Notifications waiting in the outbox",
				    IM_METRIC_GAUGE, p, NULL, 0);
	m_lat = im_metrics_family(
	    "im_notify_delivery_seconds",
	    "Time from the commit of an event to the platform's 2xx",
	    IM_METRIC_HISTOGRAM, NULL, b, sizeof(b) / sizeof(b[0]));
	m_fail = im_metrics_family("im_notify_failures_total",
				   "Failed notification sends by reason",
				   IM_METRIC_COUNTER, pr, NULL, 0);
	m_dead = im_metrics_family("im_notify_dead_letters",
				   "Notifications that gave up (see im chatops "
				   "outbox list --dead)",
				   IM_METRIC_GAUGE, NULL, NULL, 0);
}

static void count(im_metric *m, const char *platform, const char *reason)
{
	const char *v[] = {platform, reason, NULL};
	if (m)
		im_metric_add(m, v, 1);
}

void nt_metrics_depth(const json_t *counts)
{
	json_t *by = json_object();
	im_snapshot *s = im_registry_acquire();
	const char *id;
	json_t *n;
	/* Platforms seen once stay listed, at 0 when their queue is empty. */
	for (size_t k = 0; s && k < s->n; k++) {
		const im_connector *c = im_instance_connector(s->insts[k]);
		if (c)
			json_object_set_new(by, c->platform, json_integer(0));
	}
	json_object_foreach(json_object_get(counts, "pending"), id, n)
	{
		const im_connector *c =
		    im_instance_connector(im_snapshot_find(s, id));
		const char *p = c ? c->platform : "unknown";
		json_int_t was = json_integer_value(json_object_get(by, p));
		json_object_set_new(by, p,
				    json_integer(was + json_integer_value(n)));
	}
	im_registry_release(s);
	json_object_foreach(by, id, n)
	{
		const char *v[] = {id, NULL};
		if (m_depth)
			im_metric_set(m_depth, v,
				      (double)json_integer_value(n));
	}
	/* A platform listed before and gone now (its connectors removed, or
	 * "unknown" rows of a removed instance drained) loses its series
	 * instead of keeping its last count. */
	static pthread_mutex_t shown_mu = PTHREAD_MUTEX_INITIALIZER;
	static json_t *shown;
	pthread_mutex_lock(&shown_mu);
	json_object_foreach(shown, id, n)
	{
		const char *v[] = {id, NULL};
		if (m_depth && !json_object_get(by, id))
			im_metric_remove(m_depth, v);
	}
	json_decref(shown);
	shown = by; /* ours now */
	pthread_mutex_unlock(&shown_mu);
	if (m_dead)
		im_metric_set(m_dead, NULL,
			      (double)json_integer_value(
				  json_object_get(counts, "dead")));
}

/* What one attempt found out, before it is recorded. */
typedef struct attempt {
	nt_job *job;
	const char *instance, *channel;
	const char *platform;
	char platform_name[32];
	int verdict;
	long http_status;
	double retry_after, took;
	char error[160], hint[300];
	char msg_id[128], thread_id[128];
	bool edited; /* sent as an edit of a stored message */
	im_send_result res;
	nt_outcome o; /* what is recorded; points into this attempt */
} attempt;

static void fail(attempt *a, int verdict, const char *error,
		 const char *hint_fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(attempt *a, int verdict, const char *error,
		 const char *hint_fmt, ...)
{
	va_list ap;
	a->verdict = verdict;
	snprintf(a->error, sizeof(a->error), "%s", error);
	va_start(ap, hint_fmt);
	vsnprintf(a->hint, sizeof(a->hint), hint_fmt, ap);
	va_end(ap);
}

/* One send() into a->res (cleared first); a->took is how long it took. */
static int call_send(attempt *a, im_instance *in, const im_connector *c,
		     const im_send *msg)
{
	memset(&a->res, 0, sizeof(a->res));
	a->res.struct_size = sizeof(a->res);
	double t0 = im_mono_s();
	int rc = c->send(in->state, msg, &a->res);
	a->took = im_mono_s() - t0;
	a->res.error[sizeof(a->res.error) - 1] = '\0';
	a->res.hint[sizeof(a->res.hint) - 1] = '\0';
	a->res.message_id[sizeof(a->res.message_id) - 1] = '\0';
	a->res.thread_id[sizeof(a->res.thread_id) - 1] = '\0';
	return rc;
}

/* Whether an edit failed for good: the connector says so
 * (IM_SEND_EDIT_FAILED), or gave a permanent verdict (connectors built
 * before 1.3 know no flag). The one place a failed edit becomes a new
 * post: connectors never repost by themselves. */
static bool edit_failed(const im_send_result *res)
{
	return res->verdict != IM_SEND_OK &&
	       ((res->flags & IM_SEND_EDIT_FAILED) ||
		res->verdict == IM_SEND_PERMANENT);
}

/* Renders the job's payload and calls send(); `c` and `in` are held by the
 * caller's snapshot for the whole call. */
static void send_one(attempt *a, im_instance *in, const im_connector *c)
{
	const nt_job *job = a->job;
	json_t *events = NULL, *ctx = NULL, *payload = NULL;
	char err[512];
	const char *type = job->digest ? "digest" : job->rows->type;
	if (nt_outbox_events(nt_store(), job->rows, &events) != 0) {
		fail(a, IM_SEND_PERMANENT, "event_missing",
		     "the timeline event of this notification is gone");
		return;
	}
	ctx = job->digest
		  ? json_pack("{s:O,s:I,s:s}", "events", events, "count",
			      (json_int_t)job->n, "channel", a->channel)
		  : json_incref(json_array_get(events, 0));
	int rc = nt_render(a->platform, type, ctx, &payload, err, sizeof(err));
	if (rc != 0 || !payload) {
		fail(a, IM_SEND_PERMANENT, "render_failed", "%s", err);
		goto done;
	}
	char mode = job->digest ? 'p' : job->rows->mode;
	if (mode != 'p')
		nt_outbox_message(nt_store(), job->rows->incident, a->instance,
				  a->channel, a->msg_id, a->thread_id);
	char dedup[64];
	if (job->digest)
		snprintf(dedup, sizeof(dedup), "im-%lld+%zu", job->rows->id,
			 job->n);
	else
		snprintf(dedup, sizeof(dedup), "im-%lld", job->rows->id);
	a->edited = mode == 'u' && *a->msg_id;
	im_send msg = {
	    .struct_size = sizeof(msg),
	    .channel = a->channel,
	    .payload = payload,
	    .message_id = a->edited ? a->msg_id : NULL,
	    .thread_id = mode == 't' && *a->thread_id ? a->thread_id : NULL,
	    .dedup_key = dedup,
	    .event_type = type,
	    .mode = mode == 't' ? "thread" : mode == 'u' ? "update" : "post",
	};
	rc = call_send(a, in, c, &msg);
	if (a->edited && edit_failed(&a->res)) {
		/* The message to edit is gone (deleted, too old, not the
		 * bot's): forget it and post this one as a new message,
		 * which later events then edit. */
		nt_outbox_forget_message(nt_store(), job->rows->incident,
					 a->instance, a->channel);
		LOG_INFO("notify",
			 "%s %s: message %s cannot be edited (%s); posting "
			 "a new one",
			 a->instance, a->channel, a->msg_id, a->res.error);
		a->edited = false;
		msg.message_id = NULL;
		double took = a->took;
		rc = call_send(a, in, c, &msg);
		a->took += took;
	}
	a->verdict = a->res.verdict <= IM_SEND_PERMANENT ? (int)a->res.verdict
							 : IM_SEND_RETRY;
	a->http_status = a->res.http_status;
	a->retry_after = a->res.retry_after_s;
	snprintf(a->error, sizeof(a->error), "%s", a->res.error);
	snprintf(a->hint, sizeof(a->hint), "%s", a->res.hint);
	if (rc < 0 && a->verdict == IM_SEND_OK) {
		/* It could not even try, yet said nothing: try again. */
		a->verdict = IM_SEND_RETRY;
		if (!*a->error)
			snprintf(a->error, sizeof(a->error), "send failed (%d)",
				 rc);
	}
done:
	json_decref(payload);
	json_decref(ctx);
	json_decref(events);
}

static void attempt_run(attempt *a)
{
	im_snapshot *s = im_registry_acquire();
	im_instance *in = im_snapshot_find(s, a->instance);
	const im_connector *c = im_instance_connector(in);
	a->platform = c ? c->platform : "unknown";
	if (!in)
		fail(a, IM_SEND_PERMANENT, "unknown_instance",
		     "connector instance '%s' is not configured: add it back "
		     "under plugins.instances or remove the subscription, then "
		     "im chatops outbox retry <id>",
		     a->instance);
	else if (!c)
		fail(a, IM_SEND_PERMANENT, "not_a_connector",
		     "instance '%s' is not a chat connector", a->instance);
	else if (!c->send) {
		LOG_WARN("notify",
			 "connector %s (%s) has no send(); "
			 "notification skipped as a dead letter",
			 a->instance, c->platform);
		fail(a, IM_SEND_PERMANENT, "no_send",
		     "the %s plugin cannot send notifications; remove the "
		     "subscription",
		     c->platform);
	} else if (in->st != IM_STATE_RUNNING)
		fail(a, IM_SEND_RETRY, "instance_not_running",
		     "connector %s is %s%s%s", a->instance,
		     im_instance_state_name(in->st), in->reason ? ": " : "",
		     in->reason ? in->reason : "");
	else
		send_one(a, in, c);
	/* The platform name outlives the snapshot (the outcome is counted
	 * once recorded). */
	snprintf(a->platform_name, sizeof(a->platform_name), "%s",
		 a->platform);
	a->platform = a->platform_name;
	im_registry_release(s);
}

static const char *reason_of(const attempt *a)
{
	if (a->verdict == IM_SEND_RATE_LIMITED)
		return "rate_limited";
	if (!strcmp(a->error, "timeout"))
		return "timeout";
	if (!strcmp(a->error, "render_failed"))
		return "render";
	if (a->verdict == IM_SEND_PERMANENT)
		return "permanent";
	return a->http_status >= 500 ? "server_error" : "transient";
}

/* Turns what the connector said into what the pipeline does. */
static void classify(attempt *a, nt_job *job, const nt_settings *set)
{
	int attempts = 0;
	for (const nt_row *r = job->rows; r; r = r->next)
		if (r->attempts > attempts)
			attempts = r->attempts;
	attempts++;
	if (a->took > NT_SEND_DEADLINE_S && a->verdict != IM_SEND_OK) {
		/* Whatever a hung send says when it finally returns, it
		 * timed out; a success stays a success (resending would
		 * post twice). */
		a->verdict = IM_SEND_RETRY;
		snprintf(a->error, sizeof(a->error), "timeout");
	}
	job->wait_s = 0;
	if (a->verdict == IM_SEND_RETRY && attempts >= set->max_attempts) {
		char was[sizeof(a->error)];
		snprintf(was, sizeof(was), "%s", a->error);
		a->verdict = IM_SEND_PERMANENT;
		snprintf(a->hint, sizeof(a->hint),
			 "gave up after %d attempts (last error: %.120s); fix "
			 "the cause, then im chatops outbox retry <id>",
			 attempts, *was ? was : "none");
		snprintf(a->error, sizeof(a->error), "gave_up: %.140s", was);
	}
	if (a->verdict == IM_SEND_RETRY)
		job->wait_s =
		    nt_backoff(attempts, BACKOFF_BASE_S, BACKOFF_CAP_S, &rng);
	if (a->verdict == IM_SEND_RATE_LIMITED)
		job->wait_s = a->retry_after > 0
				  ? a->retry_after
				  : nt_backoff(attempts, BACKOFF_BASE_S,
					       BACKOFF_CAP_S, &rng);
	job->global = a->verdict == IM_SEND_RATE_LIMITED &&
		      (a->res.flags & IM_SEND_LIMIT_GLOBAL);
	if (a->verdict == IM_SEND_PERMANENT && !*a->hint)
		snprintf(a->hint, sizeof(a->hint),
			 "check the channel id and the bot's access to it, "
			 "then im chatops outbox retry <id>");
}

static void observe(const attempt *a, const nt_job *job)
{
	if (a->verdict == IM_SEND_OK) {
		count(m_sent, a->platform, NULL);
		long long now = nt_wall_ms();
		for (const nt_row *r = job->rows; r && m_lat; r = r->next)
			im_metric_observe(m_lat, NULL,
					  (double)(now - r->created_ms) / 1e3);
		return;
	}
	if (a->verdict == IM_SEND_RATE_LIMITED)
		count(m_rl, a->platform, NULL);
	count(m_fail, a->platform, reason_of(a));
	int lvl = a->verdict == IM_SEND_PERMANENT ? IM_LOG_WARN : IM_LOG_INFO;
	im_logf(lvl, "core", "notify", NULL,
		"%s %s row %lld%s (%s): %s%s%s%s, HTTP %ld; %s", a->instance,
		a->channel, job->rows->id, job->n > 1 ? " and others" : "",
		job->rows->type,
		a->verdict == IM_SEND_PERMANENT ? "dead letter: " : "",
		*a->error ? a->error : "failed", *a->hint ? " - " : "", a->hint,
		a->http_status,
		a->verdict == IM_SEND_PERMANENT ? "not retried" : "will retry");
}

/* The outcome is on disk (rc 0) or could not be recorded: the dispatcher
 * may hear of it now. On the writer thread (or the delivery thread when
 * the outcome could not even be queued). */
static void recorded(void *ud, int rc)
{
	attempt *a = ud;
	nt_job *job = a->job;
	if (rc != 0) {
		/* Not recorded: keep the rows and try again (at least once
		 * beats never). */
		a->verdict = IM_SEND_RETRY;
		job->wait_s = 1;
	}
	observe(a, job);
	if (a->verdict != IM_SEND_OK)
		for (nt_row *r = job->rows; r; r = r->next)
			r->attempts++;
	job->verdict = a->verdict;
	job->finished = im_mono_s();
	free(a);
	nt_pool_finish(job);
}

void nt_deliver(nt_job *job)
{
	if (!rng)
		rng = (uint64_t)nt_wall_ms() ^ (uint64_t)(uintptr_t)&rng;
	attempt *a = calloc(1, sizeof(*a));
	if (!a) {
		job->verdict = IM_SEND_RETRY;
		job->wait_s = 1;
		job->finished = im_mono_s();
		nt_pool_finish(job);
		return;
	}
	a->job = job;
	a->instance = job->lane->instance;
	a->channel = job->lane->channel;
	nt_settings set;
	nt_settings_get(&set);
	attempt_run(a);
	classify(a, job, &set);
	nt_settings_clear(&set);
	a->o = (nt_outcome){
	    .verdict = a->verdict,
	    .http_status = a->http_status,
	    .wait_s = job->wait_s,
	    .error = *a->error ? a->error : NULL,
	    .hint = *a->hint ? a->hint : NULL,
	    .incident = job->rows->incident,
	};
	/* A new message (not an edit, not a digest) becomes the one later
	 * events of the incident edit or reply to. */
	if (a->verdict == IM_SEND_OK && !job->digest && !a->edited &&
	    *a->res.message_id) {
		a->o.message_id = a->res.message_id;
		a->o.thread_id = a->res.thread_id;
	}
	/* This thread goes on with the next send while the writer records
	 * this one (in a batch with whatever else is being written). */
	int rc = nt_outbox_done_async(nt_store(), job->rows, a->instance,
				      a->channel, &a->o, recorded, a);
	if (rc != 0)
		recorded(a, rc);
}
