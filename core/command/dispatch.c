/* Chat-command dispatch: verb routing, allow lists, a worker pool that
 * grows with demand, and the budget timer that answers "still working"
 * for commands that take longer, whose results then go out as follow-ups.
 *
 * A job is shared by its worker and the budget timer (refs = 2); whoever
 * gives the first answer sets `answered` under the job's lock, so the
 * connector hears exactly one first answer and at most one follow-up. */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf/buf.h"
#include "clock/clock.h"
#include "command/command.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "incident/repo.h"
#include "plugin/plugin.h"

#define MAX_WORKERS 2048
#define IDLE_EXIT_S 30

typedef struct job {
	struct job *next;      /* worker queue */
	struct job *tnext, *tprev; /* timer queue, under mu */
	pthread_mutex_t mu;
	int refs;
	bool answered;
	im_invocation inv;     /* copy; strings in `strings` */
	char *strings[12];
	char *verb, *args;
	im_snapshot *snap;
	im_instance *conn;
	const im_connector *connector;
	im_instance *cmd_inst;
	const im_command *cmd;
	im_cmd_first_fn first;
	void *ud;
	struct timespec t0, deadline;
	const char *key;             /* the verb's entry name (fast verbs) */
	json_t *late;                /* a worker sends this as the follow-up */
	struct im_cmd_later *answer; /* a worker answers this durable write */
} job;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t timer_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t idle_cv = PTHREAD_COND_INITIALIZER;
static job *queue_head, *queue_tail, *timer_head, *timer_tail;
static long idle_workers, workers, running, late;
static bool timer_started, stopping;
static pthread_t timer_thread;
static double budget_s = 1.0;
static json_t *permissions;

/* --- small helpers ------------------------------------------------------ */

static double since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	       (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void count_received(const char *platform, const char *verb)
{
	static const char *const labels[] = {"platform", "command", NULL};
	static im_metric_memo memo;
	im_metric *m = im_metrics_memo(
	    &memo, "chatops_commands_received_total",
	    "Chat commands received by platform and command",
	    IM_METRIC_COUNTER, labels, NULL, 0);
	const char *v[] = {platform ? platform : "unknown", verb, NULL};
	if (m)
		im_metric_add(m, v, 1);
}

static im_metric *latency_family(void)
{
	static const char *const labels[] = {"platform", NULL};
	/* Up to 5 s: the platforms' 3-second limit sits inside. */
	static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
					 0.025, 0.05, 0.1, 0.25, 0.5,
					 1, 2, 3, 5};
	static im_metric_memo memo;
	return im_metrics_memo(
	    &memo, "chatops_command_latency_seconds",
	    "Time from a chat command to its first answer",
	    IM_METRIC_HISTOGRAM, labels, buckets,
	    sizeof(buckets) / sizeof(buckets[0]));
}

static void count_pending(double d);

void im_command_register_metrics(void)
{
	latency_family();
	count_pending(0); /* shown as 0 from the start */
}

static void observe_latency(const char *platform, double s)
{
	im_metric *m = latency_family();
	const char *v[] = {platform ? platform : "unknown", NULL};
	if (m)
		im_metric_observe(m, v, s);
}

void im_command_configure(double b, const json_t *perms)
{
	json_t *copy = perms ? json_deep_copy(perms) : NULL;
	pthread_mutex_lock(&mu);
	budget_s = b > 0 && b <= 2.5 ? b : 1.0;
	json_decref(permissions);
	permissions = copy;
	pthread_mutex_unlock(&mu);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void copy_inv(job *j, const im_invocation *src)
{
	const char *from[] = {src->platform, src->instance, src->team,
			      src->channel, src->user_id, src->user_name,
			      src->command, src->text, src->action_id,
			      src->action_value, src->response_ref,
			      src->user_groups};
	for (size_t i = 0; i < 12; i++)
		j->strings[i] = dup_or_null(from[i]);
	j->inv = (im_invocation){
	    .struct_size = sizeof(im_invocation),
	    .platform = j->strings[0], .instance = j->strings[1],
	    .team = j->strings[2], .channel = j->strings[3],
	    .user_id = j->strings[4], .user_name = j->strings[5],
	    .command = j->strings[6], .text = j->strings[7],
	    .action_id = j->strings[8], .action_value = j->strings[9],
	    .response_ref = j->strings[10], .user_groups = j->strings[11]};
}

static void job_unref(job *j)
{
	pthread_mutex_lock(&j->mu);
	int left = --j->refs;
	pthread_mutex_unlock(&j->mu);
	if (left > 0)
		return;
	for (size_t i = 0; i < 12; i++)
		free(j->strings[i]);
	free(j->verb);
	free(j->args);
	json_decref(j->late);
	im_registry_release(j->snap);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

/* The reply as connectors see it, after the verb returned rc; frees r. */
static json_t *reply_done(im_reply *r, int rc)
{
	if (rc != 0 && r && !*im_reply_text(r))
		im_reply_set_text(r, "Sorry, that command failed; the server "
				     "log has the details.");
	json_t *reply = im_reply_json(r, rc == 0 ? "ok" : "error");
	im_reply_free(r);
	return reply;
}

/* Commands on the timer queue: received, handed on, not answered yet. */
static void count_pending(double d)
{
	static im_metric_memo memo;
	im_metric *m = im_metrics_memo(
	    &memo, "chatops_commands_pending",
	    "Chat commands received and not answered yet: on a command "
	    "worker or waiting for their write, until the first answer (the "
	    "result, or the working notice at the budget)",
	    IM_METRIC_GAUGE, NULL, NULL, 0);
	if (m)
		im_metric_add(m, NULL, d);
}

/* Takes j off the timer queue (mu held); true when it was on it, and the
 * caller drops the timer's reference. */
static bool timer_unlink_locked(job *j)
{
	if (!j->tprev && timer_head != j)
		return false; /* not on it (any more) */
	count_pending(-1);
	if (j->tprev)
		j->tprev->tnext = j->tnext;
	else
		timer_head = j->tnext;
	if (j->tnext)
		j->tnext->tprev = j->tprev;
	else
		timer_tail = j->tprev;
	j->tnext = j->tprev = NULL;
	return true;
}

/* Gives the first answer if nobody has; false when it was given. An
 * answered job leaves the budget timer at once: under load the timer
 * would otherwise hold every command of the last budget (a second of
 * commands, with their strings and plugin snapshot) only to find each
 * answered. The caller still holds a reference of its own. */
static bool answer_first(job *j, const json_t *reply)
{
	pthread_mutex_lock(&j->mu);
	bool mine = !j->answered;
	j->answered = true;
	pthread_mutex_unlock(&j->mu);
	if (mine) {
		observe_latency(j->inv.platform, since(&j->t0));
		j->first(j->ud, &j->inv, reply);
		pthread_mutex_lock(&mu);
		bool was_on = timer_unlink_locked(j);
		pthread_mutex_unlock(&mu);
		if (was_on)
			job_unref(j);
	}
	return mine;
}

static void answer_now(im_cmd_first_fn first, void *ud,
		       const im_invocation *inv, const struct timespec *t0,
		       const char *status, int visibility, const char *text)
{
	im_reply *r = im_reply_new();
	im_reply_set_text(r, text);
	im_reply_set_visibility(r, visibility);
	json_t *j = im_reply_json(r, status);
	im_reply_free(r);
	observe_latency(inv->platform, since(t0));
	first(ud, inv, j);
	json_decref(j);
}

/* --- the fast path ------------------------------------------------------ */

/* A verb flagged IM_VERB_FAST runs on the thread that received the
 * command (an HTTP worker), without the hand-off to a command worker and
 * the deferred answer. One that runs longer than FAST_LIMIT_S anyway is
 * demoted: logged, counted, and sent to the workers until the next
 * reload. A fast verb stuck right now is seen by the next call of the
 * same verb (the inline slots below), which demotes it at once, so a
 * blocking "fast" verb holds only the threads already inside it. */
#define FAST_LIMIT_S 0.05
#define INLINE_SLOTS 256
#define MAX_DEMOTED 64

typedef struct inline_slot {
	_Atomic(const char *) key; /* the verb's name in its table; NULL */
	_Atomic long long start_ns;
} inline_slot;

static inline_slot slots[INLINE_SLOTS];
static atomic_uint next_slot;
static _Thread_local int my_slot = -1;
static pthread_mutex_t demote_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(const char *) demoted[MAX_DEMOTED];
static atomic_int n_demoted;
static atomic_ulong demoted_gen;

static void count_path(const char *path)
{
	static const char *const labels[] = {"path", NULL};
	static im_metric_memo memo;
	im_metric *m = im_metrics_memo(
	    &memo, "chatops_command_runs_total",
	    "Chat commands run, by where: inline (fast verbs, on the thread "
	    "that received them) or worker",
	    IM_METRIC_COUNTER, labels, NULL, 0);
	const char *v[] = {path, NULL};
	if (m)
		im_metric_add(m, v, 1);
}

static bool is_demoted(const im_snapshot *s, const char *key)
{
	if (atomic_load(&demoted_gen) != s->generation)
		return false; /* a reload since: everything is fast again */
	int n = atomic_load(&n_demoted);
	for (int i = 0; i < n && i < MAX_DEMOTED; i++)
		if (atomic_load(&demoted[i]) == key)
			return true;
	return false;
}

static void demote(const im_snapshot *s, const char *key, const char *verb,
		   const char *why, double secs)
{
	pthread_mutex_lock(&demote_mu);
	if (atomic_load(&demoted_gen) != s->generation) {
		atomic_store(&n_demoted, 0);
		atomic_store(&demoted_gen, s->generation);
	}
	bool fresh = !is_demoted(s, key);
	int n = atomic_load(&n_demoted);
	if (fresh && n < MAX_DEMOTED) {
		atomic_store(&demoted[n], key);
		atomic_store(&n_demoted, n + 1);
	}
	pthread_mutex_unlock(&demote_mu);
	if (!fresh)
		return;
	im_metrics_count("chatops_fast_verb_overruns_total",
			 "Verbs declared fast (IM_VERB_FAST) that ran longer "
			 "than the fast limit; they run on the workers until "
			 "the next reload",
			 "command", verb);
	LOG_WARN("command",
		 "verb '%s' is declared fast but %s %.0f ms (limit %.0f ms): "
		 "it runs on the command workers until the next reload; fix "
		 "the plugin or drop IM_VERB_FAST",
		 verb, why, secs * 1000, FAST_LIMIT_S * 1000);
}

/* A call of `key` that has been running inline for too long, anywhere. */
static bool stuck(const char *key, double *secs)
{
	long long now = im_mono_ns();
	for (int i = 0; i < INLINE_SLOTS; i++) {
		if (atomic_load(&slots[i].key) != key)
			continue;
		long long t = atomic_load(&slots[i].start_ns);
		if (t && (double)(now - t) / 1e9 > FAST_LIMIT_S) {
			*secs = (double)(now - t) / 1e9;
			return true;
		}
	}
	return false;
}

/* Runs a fast verb here; false when it must go to the workers instead.
 * A verb whose reply waits for a write (incident_op_then) leaves it in
 * *later: the caller defers the answer and hands it a job. */
static bool run_inline(const im_snapshot *s, im_instance *cin,
		       const im_command *cmd, const im_command_verb *entry,
		       const char *found, const im_invocation *inv,
		       const char *args, const struct timespec *t0,
		       im_cmd_first_fn first, void *ud,
		       struct im_cmd_later **later)
{
	/* The verb's name in its table identifies it until the reload. */
	const char *key = entry ? entry->name : NULL;
	double secs = 0;
	if (!key || !(entry->flags & IM_VERB_FAST) || is_demoted(s, key))
		return false;
	if (stuck(key, &secs)) {
		demote(s, key, found, "has been running for", secs);
		return false;
	}
	if (my_slot < 0) {
		unsigned n = atomic_fetch_add(&next_slot, 1);
		if (n >= INLINE_SLOTS)
			return false; /* more threads than slots: no watch */
		my_slot = (int)n;
	}
	inline_slot *slot = &slots[my_slot];
	long long start = im_mono_ns();
	atomic_store(&slot->start_ns, start);
	atomic_store(&slot->key, key);
	im_reply *r = im_reply_new();
	im_reply_allow_wait(r);
	im_invocation here = *inv;
	here.text = args;
	im_plugin_call_enter(cin->module_name, cin->id, "command", found);
	int rc = r ? cmd->invoke(cin->state, found, &here, r) : IM_ENOMEM;
	im_plugin_call_leave();
	atomic_store(&slot->key, NULL);
	atomic_store(&slot->start_ns, 0);
	secs = (double)(im_mono_ns() - start) / 1e9;
	if (secs > FAST_LIMIT_S)
		demote(s, key, found, "took", secs);
	count_path("inline");
	if ((*later = im_reply_later(r)) != NULL)
		return true; /* the reply is the write's now */
	json_t *reply = reply_done(r, rc);
	observe_latency(inv->platform, since(t0));
	first(ud, inv, reply);
	json_decref(reply);
	return true;
}

/* --- workers ------------------------------------------------------------ */

/* A result after the budget: through the connector's follow-up path,
 * which may block (a worker's business). */
static void follow_up(job *j, const json_t *reply)
{
	pthread_mutex_lock(&mu);
	late++;
	pthread_mutex_unlock(&mu);
	if (j->connector && j->connector->followup) {
		int frc = j->connector->followup(j->conn->state, &j->inv, reply);
		if (frc != 0)
			LOG_WARN("command", "%s: follow-up of '%s' failed (%d)",
				 j->conn->id, j->verb, frc);
	} else {
		LOG_WARN("command",
			 "%s: '%s' finished after the budget but the "
			 "connector has no follow-up path",
			 j->conn->id, j->verb);
	}
}

static void later_answer(struct im_cmd_later *l);

static void run_job(job *j)
{
	if (j->answer) {
		struct im_cmd_later *l = j->answer;
		j->answer = NULL;
		later_answer(l);
		return;
	}
	if (j->late) {
		follow_up(j, j->late);
		return;
	}
	count_path("worker");
	im_reply *r = im_reply_new();
	im_invocation inv = j->inv;
	inv.text = j->args;
	im_plugin_call_enter(j->cmd_inst->module_name, j->cmd_inst->id,
			     "command", j->verb);
	int rc = r ? j->cmd->invoke(j->cmd_inst->state, j->verb, &inv, r)
		   : IM_ENOMEM;
	im_plugin_call_leave();
	json_t *reply = reply_done(r, rc);
	if (!answer_first(j, reply))
		follow_up(j, reply);
	json_decref(reply);
}

static void *worker_main(void *arg)
{
	pthread_setname_np(pthread_self(), "im-command");
	pthread_mutex_lock(&mu);
	for (;;) {
		while (!queue_head && !stopping) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += IDLE_EXIT_S;
			idle_workers++;
			int rc = pthread_cond_timedwait(&work_cv, &mu, &until);
			idle_workers--;
			if (rc != 0 && !queue_head)
				goto out;
		}
		if (!queue_head)
			break;
		job *j = queue_head;
		queue_head = j->next;
		if (!queue_head)
			queue_tail = NULL;
		running++;
		pthread_mutex_unlock(&mu);
		run_job(j);
		job_unref(j);
		pthread_mutex_lock(&mu);
		running--;
	}
out:
	workers--;
	pthread_cond_broadcast(&idle_cv);
	pthread_mutex_unlock(&mu);
	return NULL;
}

/* Called with mu held. */
static int spawn_worker(void)
{
	pthread_attr_t a;
	pthread_t t;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 256 * 1024);
	int rc = pthread_create(&t, &a, worker_main, NULL);
	pthread_attr_destroy(&a);
	if (rc == 0)
		workers++;
	return rc;
}

static void push_locked(job *j)
{
	j->next = NULL; /* it may have been queued before */
	if (queue_tail)
		queue_tail->next = j;
	else
		queue_head = j;
	queue_tail = j;
}

/* Queues j for a worker (mu held); a worker is started when none idles. */
static int enqueue_locked(job *j)
{
	if (idle_workers == 0 && workers < MAX_WORKERS && spawn_worker() != 0 &&
	    workers == 0)
		return IM_ENOMEM;
	push_locked(j);
	if (idle_workers)
		pthread_cond_signal(&work_cv);
	return 0;
}

/* --- writes answered later (incident_op_then) ------------------------- */

/* A fast verb's write: the verb has returned, its reply waits for the
 * write. Two events meet here, in either order: the write's outcome
 * (done, on the writer thread) and the job that carries the command's
 * deferred answer (attach, on the thread that received it). Whichever
 * comes second has then() run and the answer given: on a command worker
 * when it is the writer (later_hand_over), in place when it is the
 * receiving thread. No thread waits for the disk. then() is watched like
 * the verb itself: one that takes longer than the fast limit demotes the
 * verb to the workers, where incident_op_then waits in place. */
struct im_cmd_later {
	pthread_mutex_t mu;
	im_reply *reply;
	im_reply_then_fn then;
	void *ud;
	int rc;
	im_op_outcome *outcome; /* its JSON is made by later_answer */
	bool done, attached;
	job *job; /* NULL when attached without one: nobody to answer */
	im_snapshot *snap; /* without a job: keeps the plugin loaded */
};

struct im_cmd_later *im_cmd_later_begin(im_reply *r, im_reply_then_fn then,
					void *ud)
{
	struct im_cmd_later *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	if (!im_reply_wait_on(r, l)) {
		free(l);
		return NULL;
	}
	pthread_mutex_init(&l->mu, NULL);
	l->reply = r;
	l->then = then;
	l->ud = ud;
	return l;
}

void im_cmd_later_cancel(struct im_cmd_later *l)
{
	im_reply_wait_on(l->reply, NULL);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

/* Hands a result that missed the budget to a worker. */
static void queue_late(job *j, const json_t *reply)
{
	pthread_mutex_lock(&j->mu);
	j->refs++;
	pthread_mutex_unlock(&j->mu);
	j->late = json_incref((json_t *)reply);
	pthread_mutex_lock(&mu);
	int rc = stopping ? IM_ECANCELED : enqueue_locked(j);
	pthread_mutex_unlock(&mu);
	if (rc != 0) {
		LOG_WARN("command", "%s: the late result of '%s' is dropped: "
			 "no worker to send it", j->conn->id, j->verb);
		job_unref(j);
	}
}

/* then() and the first answer, on a command worker (the writer thread
 * only queues them) or on the thread that received the command. */
static void later_answer(struct im_cmd_later *l)
{
	job *j = l->job;
	/* The write's answer as JSON, here and not on the writer. */
	json_t *out = im_op_outcome_json(l->outcome);
	int wrc = l->rc == 0 && !out ? IM_ENOMEM : l->rc;
	long long start = im_mono_ns();
	if (j)
		im_plugin_call_enter(j->cmd_inst->module_name, j->cmd_inst->id,
				     "command", j->verb);
	int rc = l->then(l->ud, l->reply, wrc, out);
	if (j)
		im_plugin_call_leave();
	double secs = (double)(im_mono_ns() - start) / 1e9;
	if (j && j->key && secs > FAST_LIMIT_S)
		demote(j->snap, j->key, j->verb, "answered its write in",
		       secs);
	json_t *reply = reply_done(l->reply, rc);
	if (j && !answer_first(j, reply))
		queue_late(j, reply);
	json_decref(reply);
	json_decref(out);
	im_registry_release(l->snap);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

/* The write is durable, on the writer thread: a worker answers it, so
 * the writer goes on with the next batch and a plugin's then() never
 * holds it. The writer's answers of one batch wake one worker: a worker
 * already awake drains the queue (the budget timer starts another if
 * none is left to). */
static void later_hand_over(struct im_cmd_later *l)
{
	job *j = l->job;
	if (!j) {
		later_answer(l); /* nobody to answer: then() frees ud */
		return;
	}
	pthread_mutex_lock(&mu);
	if (stopping) { /* no worker to start: answered here */
		pthread_mutex_unlock(&mu);
		later_answer(l);
		job_unref(j);
		return;
	}
	j->answer = l;
	bool wake = queue_head == NULL;
	push_locked(j);
	if (wake && idle_workers)
		pthread_cond_signal(&work_cv);
	else if (wake && workers == running && workers < MAX_WORKERS)
		spawn_worker();
	pthread_mutex_unlock(&mu);
}

void im_cmd_later_done(struct im_cmd_later *l, int rc, im_op_outcome *o)
{
	pthread_mutex_lock(&l->mu);
	l->rc = rc;
	l->outcome = o;
	l->done = true;
	bool go = l->attached;
	pthread_mutex_unlock(&l->mu);
	if (go)
		later_hand_over(l);
}

/* The write finished before its command was deferred: answered here. */
static void later_attach(struct im_cmd_later *l, job *j, im_snapshot *snap)
{
	pthread_mutex_lock(&l->mu);
	l->job = j;
	l->snap = snap;
	l->attached = true;
	bool go = l->done;
	pthread_mutex_unlock(&l->mu);
	if (go) {
		later_answer(l);
		if (j)
			job_unref(j);
	}
}

/* --- the budget timer --------------------------------------------------- */

#define TIMER_LATE_NS 20000000L /* 20 ms */

static void *timer_main(void *arg)
{
	pthread_setname_np(pthread_self(), "im-cmd-timer");
	pthread_mutex_lock(&mu);
	while (!stopping) {
		if (!timer_head) {
			pthread_cond_wait(&timer_cv, &mu);
			continue;
		}
		job *j = timer_head;
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec < j->deadline.tv_sec ||
		    (now.tv_sec == j->deadline.tv_sec &&
		     now.tv_nsec < j->deadline.tv_nsec)) {
			/* Wake a little late, for every job due by then: one
			 * wake-up per TIMER_LATE_NS, not one per command. */
			struct timespec wake = im_ts_plus(j->deadline,
						       TIMER_LATE_NS);
			pthread_cond_timedwait(&timer_cv, &mu, &wake);
			continue;
		}
		timer_unlink_locked(j); /* its reference is ours now */
		pthread_mutex_unlock(&mu);
		pthread_mutex_lock(&j->mu);
		bool pending = !j->answered;
		pthread_mutex_unlock(&j->mu);
		if (pending) {
			char text[160];
			snprintf(text, sizeof(text),
				 "Working on `%s`… the result will follow here.",
				 j->verb);
			im_reply *r = im_reply_new();
			im_reply_set_text(r, text);
			json_t *reply = im_reply_json(r, "working");
			im_reply_free(r);
			answer_first(j, reply);
			json_decref(reply);
		}
		job_unref(j);
		pthread_mutex_lock(&mu);
		/* Answers queued while every worker is stuck (a then()
		 * that blocks): one more worker takes them. */
		if (pending && queue_head && idle_workers == 0 &&
		    workers < MAX_WORKERS)
			spawn_worker();
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

static int start_timer_locked(void)
{
	if (timer_started)
		return 0;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_destroy(&timer_cv);
	pthread_cond_init(&timer_cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&timer_thread, NULL, timer_main, NULL) != 0)
		return IM_ENOMEM;
	timer_started = true;
	return 0;
}

void im_command_shutdown(void)
{
	pthread_mutex_lock(&mu);
	stopping = true;
	pthread_cond_broadcast(&work_cv);
	pthread_cond_broadcast(&timer_cv);
	bool joined = timer_started;
	pthread_mutex_unlock(&mu);
	if (joined)
		pthread_join(timer_thread, NULL);
	pthread_mutex_lock(&mu);
	/* Jobs still queued for the timer: drop its references. */
	while (timer_head) {
		job *j = timer_head;
		timer_unlink_locked(j);
		pthread_mutex_unlock(&mu);
		job_unref(j);
		pthread_mutex_lock(&mu);
	}
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	while (workers > 0 &&
	       pthread_cond_timedwait(&idle_cv, &mu, &until) == 0)
		;
	if (workers > 0)
		LOG_WARN("command", "%ld chat commands still running at exit",
			 running);
	timer_started = false;
	if (workers == 0)
		stopping = false; /* a later server in this process may start */
	json_decref(permissions);
	permissions = NULL;
	pthread_mutex_unlock(&mu);
}

/* --- routing ------------------------------------------------------------ */

/* Splits "verb rest" into a lowercase verb and the raw rest. */
static void split_verb(const char *text, char **verb, char **rest)
{
	const char *p = text ? text : "";
	while (isspace((unsigned char)*p))
		p++;
	const char *e = p;
	while (*e && !isspace((unsigned char)*e))
		e++;
	*verb = strndup(p, (size_t)(e - p));
	for (char *c = *verb; c && *c; c++)
		*c = (char)tolower((unsigned char)*c);
	while (isspace((unsigned char)*e))
		e++;
	*rest = strdup(e);
}

/* Bytes of s to show, at most max, cut on a UTF-8 boundary. */
static int shown_len(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return (int)n;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return (int)max;
}

/* The usage text: every verb of every running command plugin. An unknown
 * word is quoted at most 64 bytes long; the whole text is capped. */
static char *help_text(const im_snapshot *s, const char *command,
		       const char *unknown)
{
	im_buf b = {.max = 16384};
	if (unknown)
		im_buf_printf(&b, "Unknown command `%.*s%s`. ",
			      shown_len(unknown, 64), unknown,
			      strlen(unknown) > 64 ? "…" : "");
	im_buf_puts(&b, "Usage:\n");
	for (size_t i = 0; s && i < s->n; i++) {
		const im_instance *in = s->insts[i];
		if (in->st != IM_STATE_RUNNING)
			continue;
		for (size_t c = 0; c < in->mod->n_commands; c++)
			for (const im_command_verb *v =
				 in->mod->commands[c]->verbs;
			     v && v->name; v++)
				im_buf_printf(&b, "• `%s %s` — %s\n",
					      command ? command : "/incident",
					      v->usage ? v->usage : v->name,
					      v->summary ? v->summary : "");
	}
	return im_buf_take(&b, NULL);
}

static bool id_in(const json_t *list, const char *id)
{
	size_t i;
	const json_t *v;
	json_array_foreach(list, i, v)
	{
		const char *s = json_string_value(v);
		if (s && id && strcmp(s, id) == 0)
			return true;
	}
	return false;
}

/* True when the verb has no allow list or the user (or a group) is on it.
 * *rule receives the list for the denial message. */
static bool allowed(const char *verb, const im_invocation *inv, char *rule,
		    size_t len)
{
	pthread_mutex_lock(&mu);
	const json_t *list = json_object_get(permissions, verb);
	bool ok = !json_is_array(list) || id_in(list, inv->user_id);
	if (!ok && inv->user_groups) {
		char *groups = strdup(inv->user_groups), *save = NULL;
		for (char *g = groups ? strtok_r(groups, ",", &save) : NULL;
		     g && !ok; g = strtok_r(NULL, ",", &save))
			ok = id_in(list, g);
		free(groups);
	}
	if (!ok) {
		char *t = json_dumps(list, JSON_COMPACT);
		snprintf(rule, len, "%s", t ? t : "[]");
		free(t);
	}
	pthread_mutex_unlock(&mu);
	return ok;
}

static struct im_store *audit_store;

void im_command_bind_store(struct im_store *st)
{
	audit_store = st;
	im_command_install_host_entries();
}

struct im_store *im_command_store(void)
{
	return audit_store;
}

/* A denial lands on the timeline of the incident it was about, when the
 * arguments name one. */
static void audit_denied(const im_invocation *inv, const char *verb,
			 const char *args)
{
	char id[32] = "";
	sscanf(args ? args : "", "%31s", id);
	im_actor who = {.id = inv->user_id, .name = inv->user_name,
			.via = inv->platform};
	LOG_WARN("command", "%s/%s: %s (%s) may not run '%s'%s%s",
		 inv->platform ? inv->platform : "?",
		 inv->instance ? inv->instance : "?",
		 inv->user_id ? inv->user_id : "?",
		 inv->user_name ? inv->user_name : "?", verb,
		 *id ? " on " : "", id);
	if (audit_store && *id) {
		im_err err;
		json_t *data = json_pack("{s:s,s:s,s:s?}", "action", "denied",
					 "verb", verb, "channel", inv->channel);
		im_inc_audit(audit_store, id, data, &who, &err);
		json_decref(data);
	}
}

static int dispatch(im_instance *conn, const im_invocation *inv,
		    im_cmd_first_fn first, void *ud, int (*before_queue)(void *),
		    bool inline_ok)
{
	if (!conn || !inv || !first)
		return IM_EINVAL;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	char *verb = NULL, *rest = NULL;
	if (inv->action_id) {
		verb = strdup("");
		rest = strdup(inv->action_value ? inv->action_value : "");
	} else {
		split_verb(inv->text, &verb, &rest);
	}
	if (!verb || !rest) {
		free(verb);
		free(rest);
		return IM_ENOMEM;
	}
	im_snapshot *s = im_registry_acquire();
	im_instance *cin = NULL;
	const im_command *cmd = NULL;
	const im_command_verb *entry = NULL;
	const char *found = NULL;
	struct im_cmd_later *later = NULL; /* a fast verb's write under way */
	int rc = 0;
	if (!inv->action_id && (!*verb || strcmp(verb, "help") == 0)) {
		count_received(inv->platform, "help");
		char *h = help_text(s, inv->command, NULL);
		answer_now(first, ud, inv, &t0, "ok", IM_REPLY_EPHEMERAL,
			   h ? h : "");
		free(h);
		goto done;
	}
	if (im_snapshot_command(s, verb, inv->action_id, &cin, &cmd, &entry,
				&found) !=
	    0) {
		count_received(inv->platform, "unknown");
		char *h = inv->action_id ? NULL
					 : help_text(s, inv->command, verb);
		answer_now(first, ud, inv, &t0, "error", IM_REPLY_EPHEMERAL,
			   h ? h : "That button is no longer handled here.");
		free(h);
		goto done;
	}
	count_received(inv->platform, found);
	char rule[256];
	if (!allowed(found, inv, rule, sizeof(rule))) {
		char text[512];
		snprintf(text, sizeof(text),
			 "You are not allowed to run `%s`: it is limited to %s "
			 "in chatops.permissions. Ask someone on that list.",
			 found, rule);
		answer_now(first, ud, inv, &t0, "error", IM_REPLY_EPHEMERAL,
			   text);
		audit_denied(inv, found, rest);
		goto done;
	}
	if (inline_ok && run_inline(s, cin, cmd, entry, found, inv, rest, &t0,
				    first, ud, &later) &&
	    !later)
		goto done;
	/* The caller learns now that the answer comes later (an HTTP
	 * request defers its response), before any worker can give it. */
	if (before_queue && before_queue(ud) != 0) {
		rc = IM_ENOMEM;
		goto done;
	}
	job *j = calloc(1, sizeof(*j));
	if (!j) {
		rc = IM_ENOMEM;
		goto done;
	}
	pthread_mutex_init(&j->mu, NULL);
	j->refs = 2; /* the timer's and the worker's (or the write's) */
	copy_inv(j, inv);
	j->verb = strdup(found);
	j->args = rest;
	rest = NULL;
	j->snap = s;
	s = NULL; /* the job holds the snapshot now */
	j->conn = conn;
	j->connector = im_instance_connector(conn);
	j->cmd_inst = cin;
	j->cmd = cmd;
	j->key = entry ? entry->name : NULL;
	j->first = first;
	j->ud = ud;
	j->t0 = t0;
	pthread_mutex_lock(&mu);
	double b = budget_s;
	clock_gettime(CLOCK_MONOTONIC, &j->deadline);
	j->deadline = im_ts_plus(j->deadline, (long long)(b * 1e9));
	if (start_timer_locked() != 0 ||
	    (!later && enqueue_locked(j) != 0)) {
		pthread_mutex_unlock(&mu);
		s = j->snap; /* back to us: a write under way keeps it below */
		j->snap = NULL;
		j->refs = 1;
		job_unref(j);
		rc = IM_ENOMEM;
		goto done;
	}
	/* The timer sleeps until its head's deadline; a job behind the head
	 * (same budget, later deadline) does not need to wake it. */
	bool new_head = timer_head == NULL ||
			j->deadline.tv_sec < timer_head->deadline.tv_sec;
	j->tprev = timer_tail;
	if (timer_tail)
		timer_tail->tnext = j;
	else
		timer_head = j;
	timer_tail = j;
	count_pending(1);
	if (new_head)
		pthread_cond_signal(&timer_cv);
	pthread_mutex_unlock(&mu);
	if (later) {
		later_attach(later, j, NULL);
		later = NULL;
	}
done:
	if (later) { /* not answered through us after all */
		later_attach(later, NULL, s);
		s = NULL;
	}
	im_registry_release(s);
	free(verb);
	free(rest);
	return rc;
}

int im_command_dispatch(im_instance *conn, const im_invocation *inv,
			im_cmd_first_fn first, void *ud)
{
	return dispatch(conn, inv, first, ud, NULL, false);
}

int im_command_dispatch_http(im_instance *conn, const im_invocation *inv,
			     im_cmd_first_fn first, void *ud,
			     int (*before_queue)(void *ud))
{
	return dispatch(conn, inv, first, ud, before_queue, true);
}
