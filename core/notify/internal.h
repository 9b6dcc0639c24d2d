/*
 * core/notify internals, shared by the files of this folder (and the unit
 * tests). Not an interface for other folders: they use notify.h.
 *
 * Threads, per piece:
 * - nt_bucket, nt_backoff, nt_lane: plain data, no locking; the dispatcher
 *   thread owns every lane and bucket.
 * - settings and subscriptions: process-wide, each behind its own mutex;
 *   readers get copies (settings) or a reference (subscription sets).
 * - outbox functions take the store lock (writes) or a read connection;
 *   claims and outcomes are jobs of the store's writer (lease.c).
 * Lock order: the store lock may be held while taking the subscription or
 * settings mutex (the hook does), never the other way round.
 */
#ifndef IM_CORE_NOTIFY_INTERNAL_H
#define IM_CORE_NOTIFY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "clock/clock.h"
#include "config/config.h"
#include "incident/repo.h"
#include "notify/notify.h"
#include "plugin/plugin.h"
#include "store/store.h"

/* --- clocks (limit.c) ---------------------------------------------------- */

long long nt_wall_ms(void); /* CLOCK_REALTIME, milliseconds */

/* --- token bucket and backoff (limit.c) ---------------------------------- */

/* A token bucket: `rate` tokens per second up to `burst`. rate <= 0 means
 * no limit. Times are im_mono_s() seconds. */
typedef struct nt_bucket {
	double rate, burst;
	double tokens;
	double t; /* when `tokens` was last brought up to date */
} nt_bucket;

void nt_bucket_init(nt_bucket *b, double rate, double burst, double now);
/* Changes rate and burst, keeping the tokens (capped at the new burst). */
void nt_bucket_set(nt_bucket *b, double rate, double burst, double now);
/* Seconds until one token is there (0: now). */
double nt_bucket_wait(nt_bucket *b, double now);
/* Spends one token (call when nt_bucket_wait said 0). */
void nt_bucket_take(nt_bucket *b, double now);
/* The send that took a token finished at `now`: account as if the token
 * had been spent at `now`. The platform counted the request somewhere
 * between dispatch and answer; assuming the latest moment keeps us behind
 * its bucket, never ahead. Only for a bucket with one send in flight. */
void nt_bucket_anchor(nt_bucket *b, double now);
/* The platform said wait until `until`: empty, one token at `until`. */
void nt_bucket_block(nt_bucket *b, double until);
/* Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^n)].
 * `attempt` counts from 1. `rng` is the caller's state (xorshift). */
double nt_backoff(int attempt, double base, double cap, uint64_t *rng);
uint64_t nt_rand(uint64_t *rng);

/* --- rows and lanes (lane.c) --------------------------------------------- */

/* One claimed outbox row, held in memory by the dispatcher. */
typedef struct nt_row {
	struct nt_row *next;
	long long id;
	long long incident;   /* incident number */
	long long seq;	      /* timeline event */
	long long created_ms; /* commit time (wall clock) */
	int sev;	      /* 1..4 */
	int attempts;	      /* sends tried so far */
	bool critical;
	char mode;     /* 'u'pdate, 't'hread, 'p'ost */
	char type[48]; /* "im.incident.ack" */
} nt_row;

struct nt_inst;

/* Everything bound for one (connector instance, channel): at most one send
 * in flight, critical rows first, the others batched. */
typedef struct nt_lane {
	struct nt_lane *hnext; /* hash chain (dispatch.c) */
	char *instance;
	char *channel;
	struct nt_inst *inst;
	nt_bucket bucket;
	nt_row *crit, **crit_tail;   /* FIFO, each sent alone */
	nt_row *batch, **batch_tail; /* FIFO, sent as a digest */
	size_t n_crit, n_batch;
	nt_row *inflight; /* the send in progress */
	size_t n_inflight;
	bool inflight_crit;
	double blocked_until; /* platform said wait (mono s) */
	double due;	      /* scheduled look (heap key); 0 none */
	size_t heap_pos;      /* index in the timer heap + 1; 0 none */
	double idle_since;
} nt_lane;

void nt_lane_init(nt_lane *l);
/* Queues a row (critical FIFO or batch FIFO). */
void nt_lane_push(nt_lane *l, nt_row *r);

typedef enum nt_next {
	NT_IDLE = 0, /* nothing queued, or a send in flight */
	NT_WAIT = 1, /* something to send at *due (window, block) */
	NT_READY = 2 /* something to send now (tokens permitting) */
} nt_next;

/* What the lane could send at `now` with the batch window `window_s`
 * (seconds, counted from each batch's oldest commit). Rate limits are the
 * caller's business; `now_wall_ms` converts commit times. */
nt_next nt_lane_next(const nt_lane *l, double now, long long now_wall_ms,
		     double window_s, size_t digest_max, double *due);
/* Moves the next send (one critical row, or up to digest_max batched rows)
 * to l->inflight and returns how many rows it holds. */
size_t nt_lane_take(nt_lane *l, size_t digest_max);
/* The send ended: `requeue` puts the rows back at the head of their queue
 * (to be tried again, in order); otherwise they are freed. */
void nt_lane_finish(nt_lane *l, bool requeue);
void nt_lane_free_rows(nt_lane *l);
bool nt_lane_empty(const nt_lane *l);

/* --- settings (settings.c) ----------------------------------------------- */

typedef struct nt_settings {
	double batch_window;  /* seconds */
	bool window_override; /* set at runtime; wins over the config */
	double config_window; /* chatops.batch_window, for "default" */
	unsigned crit_mask;   /* bit n set: SEV-n is critical */
	int workers;	      /* delivery threads */
	int digest_max;	      /* events per digest */
	int max_attempts;     /* then a dead letter */
	json_t *rate_limits;  /* chatops.rate_limits, or NULL */
} nt_settings;

/* Reads the chatops section, then the runtime override from the store. */
int nt_settings_load(im_store *st, const im_config *cfg);
/* A copy; release it with nt_settings_clear. */
void nt_settings_get(nt_settings *out);
void nt_settings_clear(nt_settings *s);
unsigned nt_settings_crit_mask(void);
/* Sets (seconds >= 0) or, with seconds < 0, clears the runtime batch
 * window and persists it in the meta table. */
int nt_settings_set_window(im_store *st, double seconds);
/* Limits for `instance`: the connector's defaults overridden by
 * chatops.rate_limits.<instance> {per_channel, burst, global}. */
void nt_settings_rates(const char *instance, const im_connector *c,
		       double *per_channel, double *burst, double *global);
void nt_settings_free(void);

/* --- subscriptions (sub.c: one; subs.c: the set) ------------------------ */

enum { NT_SRC_CONFIG = 0, NT_SRC_API = 1, NT_SRC_INSTANCE = 2 };

typedef struct nt_sub {
	long long id;	 /* store id (api); 0 otherwise */
	int source;	 /* NT_SRC_* */
	char *connector; /* instance id */
	char *channel;
	json_t *events;	   /* array of type globs */
	json_t *services;  /* array; empty = all */
	unsigned sev_mask; /* bit n: SEV-n matches */
	char mode;	   /* 'u', 't', 'p' */
	char *where;	   /* "file:line" or NULL */
	char *problem;	   /* why it is inactive; NULL when active */
} nt_sub;

/* Checks a subscription given as JSON ({connector, channel, events,
 * min_severity, services, mode}) and fills *out (defaults applied).
 * Returns 0, or IM_EINVAL with a message fit for an API answer. */
int nt_sub_parse(const json_t *j, nt_sub *out, char *err, size_t errlen);
void nt_sub_clear(nt_sub *s);
/* Whether instance `id` can take notifications: NULL when it can,
 * otherwise why not (written to buf). `snap` NULL: only the ids in
 * `known` (a JSON array, from the config) are checked. */
const char *nt_sub_instance_problem(const im_snapshot *snap,
				    const json_t *known, const char *id,
				    char *buf, size_t len);
char nt_sub_mode_char(const char *mode); /* "thread" -> 't' */
const char *nt_sub_mode_name(char mode); /* 't' -> "thread" */
/* {id, source, connector, channel, events, min_severity, severities,
 *  services, mode, active, where?, problem?} */
json_t *nt_sub_json(const nt_sub *s);
/* Whether `s` matches an event of `type` for an incident of severity `sev`
 * and `service` (may be NULL). */
bool nt_sub_matches(const nt_sub *s, const char *type, int sev,
		    const char *service);
/* Subscriptions from the config (YAML and instances' default_channel /
 * notification_channels), then the stored ones; warns about the ones that
 * cannot work. */
int nt_subs_load(im_store *st, const im_config *cfg, bool check_instances);
/* Re-reads the stored subscriptions (after an API change). */
int nt_subs_refresh(im_store *st);
/* Calls fn for each distinct (connector, channel) whose active
 * subscription matches; stops at the first non-zero return. */
int nt_subs_each_match(const char *type, int sev, const char *service,
		       int (*fn)(void *ud, const nt_sub *s), void *ud);
json_t *nt_subs_list(void);
/* API: adds (0, *id set) or refuses (IM_EINVAL/IM_ENOTFOUND, err). */
int nt_subs_add(im_store *st, const json_t *body, long long *id, char *err,
		size_t errlen);
int nt_subs_remove(im_store *st, long long id);
void nt_subs_free(void);

/* --- outbox (outbox.c) --------------------------------------------------- */

/* The repo hook: inserts the event's outbox rows (in the caller's
 * transaction). */
/* True (once) when the outbox hook wrote rows since the last call. */
bool nt_outbox_take_added(void);
int nt_outbox_hook(sqlite3 *db, const im_repo_event *ev);

/* Takes a claimed row (0, ownership moves to the callee) or refuses it
 * (non-zero: out of memory), and then its lease is given back at once. */
typedef int (*nt_claim_fn)(void *ud, nt_row *row, const char *instance,
			   const char *channel);
/* Claims up to `limit` ready rows of one class for `owner` until
 * lease_until (wall ms), oldest first, handing each to fn. Returns how
 * many were claimed. */
int nt_outbox_claim(im_store *st, const char *owner, bool critical,
		    long long now_ms, long long lease_until, int limit,
		    nt_claim_fn fn, void *ud);
/* lease.c: a claim as a job of the store's writer. Only rows with an id
 * above `after` (0: all); *max_id (if given) is raised to the highest id
 * claimed. Returns how many were claimed, or IM_E*. */
typedef struct nt_claim_req {
	const char *owner;
	bool critical;
	long long now_ms, lease_until; /* wall ms */
	long long after;
	int limit;
} nt_claim_req;
int nt_lease_claim(im_store *st, const nt_claim_req *req, nt_claim_fn fn,
		   void *ud, long long *max_id);
int nt_outbox_renew(im_store *st, const char *owner, long long lease_until);
int nt_outbox_release(im_store *st, const char *owner);
/* Frees leases of owners that are gone (same host, pid not running). */
int nt_outbox_reclaim_dead(im_store *st, const char *owner);

typedef struct nt_outcome {
	int verdict; /* im_send_verdict */
	long http_status;
	double wait_s; /* RETRY / RATE_LIMITED: delay before next try */
	const char *error;
	const char *hint;
	/* OK on a new single message: remember it for later updates */
	const char *message_id, *thread_id;
	long long incident;
} nt_outcome;

/* Records what happened to the rows of one send: OK deletes them (and
 * stores the message id), RETRY / RATE_LIMITED count an attempt and set
 * the next time, PERMANENT makes dead letters. */
int nt_outbox_done(im_store *st, const nt_row *rows, const char *instance,
		   const char *channel, const nt_outcome *o);
/* The same, queued on the store's writer (lease.c): returns at once (0,
 * or IM_E* and done is not called); done(ud, rc) runs on the writer thread
 * once the outcome is on disk (rc 0) or failed. rows, instance, channel
 * and o must stay valid until then. */
typedef void (*nt_recorded_fn)(void *ud, int rc);
int nt_outbox_done_async(im_store *st, const nt_row *rows,
			 const char *instance, const char *channel,
			 const nt_outcome *o, nt_recorded_fn done, void *ud);
/* The CloudEvent of each row, in order, as a new array. */
int nt_outbox_events(im_store *st, const nt_row *rows, json_t **out);
/* On: this thread keeps the last event it read for the next one-row call
 * (a fan-out reads one event per channel). Off frees it; a thread that
 * turned it on turns it off before it ends. */
void nt_outbox_events_keep(bool on);
/* Stored message of (incident, instance, channel); 0 or IM_ENOTFOUND.
 * ids are written into buffers of 128 bytes. */
int nt_outbox_message(im_store *st, long long incident, const char *instance,
		      const char *channel, char *message_id, char *thread_id);
int nt_outbox_forget_message(im_store *st, long long incident,
			     const char *instance, const char *channel);
json_t *nt_outbox_list(im_store *st, bool dead_only, int limit);
/* Puts a row back in the queue now (a dead letter or a waiting row). */
int nt_outbox_retry(im_store *st, long long id);
/* {"pending":{instance:n},"dead":n} */
json_t *nt_outbox_counts(im_store *st);

/* --- dispatcher, pool and delivery --------------------------------------- */

/* A send that takes longer than this is a timeout, whatever it says. */
#define NT_SEND_DEADLINE_S 30.0

/* notify.c: the pipeline's store and renderer. */
im_store *nt_store(void);
int nt_render(const char *platform, const char *event_type,
	      const json_t *context, json_t **payload, char *err,
	      size_t errlen);

/* One send handed to a delivery thread. */
typedef struct nt_job {
	struct nt_job *next;
	nt_lane *lane; /* the dispatcher's: the worker reads only its ids */
	nt_row *rows;  /* the lane's inflight list, the worker's meanwhile */
	size_t n;
	bool digest;
	/* filled by the worker */
	int verdict;	 /* im_send_verdict */
	double wait_s;	 /* RETRY / RATE_LIMITED: delay before the next try */
	bool global;	 /* the limit is the instance's, not the channel's */
	double finished; /* im_mono_s() */
} nt_job;

/* dispatch.c (control thread, except wake/poke: any thread) */
int nt_dispatch_start(im_store *st, const char *owner);
void nt_dispatch_reconfig(void);
void nt_dispatch_stop(void);
void nt_dispatch_wake(void);
void nt_dispatch_poke(void);	  /* new rows: claim above the last id */
void nt_dispatch_poke_all(void); /* rows put back: claim from the start */

/* pool.c: the dispatcher pushes and collects; workers run nt_deliver. */
int nt_pool_start(int workers, int wake_fd);
void nt_pool_push(nt_job *job, bool critical);
/* A job is over (its outcome recorded): back to the dispatcher. Any
 * thread; nt_deliver calls it, maybe later from the store's writer. */
void nt_pool_finish(nt_job *job);
nt_job *nt_pool_done(void); /* everything finished so far, as a list */
void nt_pool_check_stuck(void);
void nt_pool_stop(void);

/* deliver.c: renders and sends one job (a delivery thread) and queues its
 * outcome; nt_pool_finish(job) once it is recorded. */
void nt_deliver(nt_job *job);
void nt_metrics_register(void);
/* Queue-depth and dead-letter gauges from nt_outbox_counts(). */
void nt_metrics_depth(const json_t *counts);

#endif
