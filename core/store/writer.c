/*
 * core/store/writer.c - group commit.
 *
 * Why: with synchronous=FULL every COMMIT waits for an fsync (about
 * 0.35 ms on the reference VM), so one transaction per write caps a
 * server near 3,000 writes a second whatever the CPU. Here callers queue
 * jobs and one thread runs everything queued in one transaction, each job
 * in its own savepoint, and commits once: the fsync is shared by the
 * batch. While a batch is on its way to disk the next one gathers, so the
 * batch grows with the load and a lone write still goes out at once.
 *
 * A job whose apply() fails is rolled back to its savepoint and the rest
 * of the batch commits. If SQLite itself ended the transaction (disk
 * full, I/O error) or COMMIT fails, every job of the batch fails with
 * IM_EIO: nothing of it was kept, and nobody was told otherwise.
 */
#include "writer.h"

#include <pthread.h>
#include <stdlib.h>

#include <im/types.h>

#include "clock/clock.h"
#include "log/log.h"
#include "metrics/metrics.h"

/* Upper bound of one batch: keeps one transaction (and the time the
 * store lock is held) short even when thousands are queued. */
#define BATCH_MAX 256

/* The transaction statements of every batch, prepared on first use and
 * kept, so the hot path never looks them up again. */
enum { S_BEGIN, S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO, S_COMMIT, S_ROLLBACK,
       S_N };
static const char *const stmt_sql[S_N] = {
    "BEGIN IMMEDIATE", "SAVEPOINT job", "RELEASE job", "ROLLBACK TO job",
    "COMMIT",	       "ROLLBACK"};

typedef struct job {
	struct job *next;
	im_store_apply_fn apply;
	im_store_done_fn done;
	void *ud;
	int rc;
	bool waited;   /* lives on the caller's stack; it frees nothing */
	bool finished; /* under the writer's mu */
	pthread_cond_t cv;
} job;

struct im_writer {
	im_store *st;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* work for the thread */
	job *head, *tail;
	bool started, stopping;
	pthread_t thread;
	long long batches, jobs, max_batch;
	sqlite3_stmt *stmt[S_N]; /* writer thread only, store lock held */
};

/* The writer this thread runs, if it is one. */
static _Thread_local im_writer *self;

static bool exec(im_writer *w, sqlite3 *db, int which)
{
	if (!w->stmt[which])
		w->stmt[which] = im_store_stmt(db, stmt_sql[which]);
	sqlite3_stmt *s = w->stmt[which];
	bool ok = s && sqlite3_step(s) == SQLITE_DONE;
	if (s)
		sqlite3_reset(s);
	return ok;
}

/* Runs one job in a savepoint of the open transaction. false when SQLite
 * ended the transaction underneath (the batch is lost). */
static bool run_job(im_writer *w, sqlite3 *db, job *j)
{
	if (!exec(w, db, S_SAVEPOINT)) {
		j->rc = IM_EIO;
		return !sqlite3_get_autocommit(db);
	}
	j->rc = j->apply(db, j->ud);
	if (sqlite3_get_autocommit(db)) {
		LOG_ERROR("store", "a write ended its transaction: %s",
			  sqlite3_errmsg(db));
		return false;
	}
	if (j->rc != 0 && !exec(w, db, S_ROLLBACK_TO))
		return false;
	return exec(w, db, S_RELEASE);
}

static void fail_all(job *list, int n)
{
	for (int i = 0; i < n; i++, list = list->next)
		if (list->rc == 0)
			list->rc = IM_EIO;
}

/* Batch size and transaction time, once per batch. */
static void observe(int n, double seconds)
{
	static const double sizes[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
	static const double secs[] = {.0001, .00025, .0005, .001, .0025,
				      .005,  .01,    .025,  .05,  .1,
				      .25,   1};
	static im_metric_memo size_memo, secs_memo;
	im_metric_observe(
	    im_metrics_memo(&size_memo, "im_store_write_batch_size",
			    "Writes committed together in one transaction",
			    IM_METRIC_HISTOGRAM, NULL, sizes,
			    sizeof(sizes) / sizeof(sizes[0])),
	    NULL, n);
	im_metric_observe(
	    im_metrics_memo(&secs_memo, "im_store_write_batch_seconds",
			    "Time of one write transaction, fsync included",
			    IM_METRIC_HISTOGRAM, NULL, secs,
			    sizeof(secs) / sizeof(secs[0])),
	    NULL, seconds);
}

static im_store_batch_fn hook_before, hook_after;

void im_store_set_batch_hooks(im_store_batch_fn before_done,
			      im_store_batch_fn after_done)
{
	__atomic_store_n(&hook_before, before_done, __ATOMIC_RELEASE);
	__atomic_store_n(&hook_after, after_done, __ATOMIC_RELEASE);
}

static void run_batch(im_writer *w, job *list, int n)
{
	sqlite3 *db = im_store_db(w->st);
	bool ok;
	double t0 = im_mono_s();
	im_store_lock(w->st);
	ok = exec(w, db, S_BEGIN);
	if (!ok)
		LOG_ERROR("store", "cannot begin a write: %s",
			  sqlite3_errmsg(db));
	job *j = list;
	for (int i = 0; i < n && ok; i++, j = j->next)
		ok = run_job(w, db, j);
	if (ok && !exec(w, db, S_COMMIT)) {
		LOG_ERROR("store", "commit of %d writes failed: %s", n,
			  sqlite3_errmsg(db));
		ok = false;
	}
	if (!ok) {
		if (!sqlite3_get_autocommit(db))
			exec(w, db, S_ROLLBACK);
		fail_all(list, n);
	}
	im_store_unlock(w->st);
	observe(n, im_mono_s() - t0);
	im_store_batch_fn before = __atomic_load_n(&hook_before, __ATOMIC_ACQUIRE);
	im_store_batch_fn after = __atomic_load_n(&hook_after, __ATOMIC_ACQUIRE);
	if (before)
		before();
	j = list;
	for (int i = 0; i < n; i++, j = j->next)
		if (j->done)
			j->done(j->ud, j->rc);
	if (after)
		after();
}

static void finish(im_writer *w, job *list, int n)
{
	pthread_mutex_lock(&w->mu);
	for (int i = 0; i < n; i++) {
		job *next = list->next;
		if (list->waited) {
			list->finished = true;
			pthread_cond_signal(&list->cv);
		} else {
			free(list);
		}
		list = next;
	}
	pthread_mutex_unlock(&w->mu);
}

static void *writer_main(void *arg)
{
	im_writer *w = arg;
	self = w;
	pthread_setname_np(pthread_self(), "im-writer");
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->head && !w->stopping)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->head)
			break;
		job *list = w->head, *last = list;
		int n = 1;
		while (n < BATCH_MAX && last->next) {
			last = last->next;
			n++;
		}
		w->head = last->next;
		if (!w->head)
			w->tail = NULL;
		w->batches++;
		w->jobs += n;
		if (n > w->max_batch)
			w->max_batch = n;
		pthread_mutex_unlock(&w->mu);
		run_batch(w, list, n);
		finish(w, list, n);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

im_writer *im_writer_new(im_store *st)
{
	im_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->st = st;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	return w;
}

void im_writer_free(im_writer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_signal(&w->cv);
	bool started = w->started;
	pthread_mutex_unlock(&w->mu);
	if (started)
		pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* On the writer thread (a done() writing again): the queue is ours to
 * run, and waiting on it would wait forever, so this job is a batch of
 * its own, now. */
static int run_here(im_writer *w, job *j)
{
	j->next = NULL;
	run_batch(w, j, 1);
	return j->rc;
}

static int start_locked(im_writer *w)
{
	if (w->started)
		return 0;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 256 * 1024);
	int rc = pthread_create(&w->thread, &a, writer_main, w);
	pthread_attr_destroy(&a);
	if (rc != 0) {
		LOG_ERROR("store", "cannot start the writer thread");
		return IM_ENOMEM;
	}
	w->started = true;
	return 0;
}

int im_writer_submit(im_writer *w, im_store_apply_fn apply,
		     im_store_done_fn done, void *ud, bool wait)
{
	job here = {.apply = apply, .done = done, .ud = ud, .waited = true};
	if (wait && self == w)
		return run_here(w, &here);
	job *j = wait ? &here : malloc(sizeof(*j));
	if (!j)
		return IM_ENOMEM;
	if (!wait)
		*j = (job){.apply = apply, .done = done, .ud = ud};
	else
		pthread_cond_init(&j->cv, NULL);
	pthread_mutex_lock(&w->mu);
	int rc = w->stopping ? IM_ECONFLICT : start_locked(w);
	if (rc == 0) {
		if (w->tail)
			w->tail->next = j;
		else
			w->head = j;
		w->tail = j;
		pthread_cond_signal(&w->cv);
		while (wait && !j->finished)
			pthread_cond_wait(&j->cv, &w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	if (wait)
		pthread_cond_destroy(&j->cv);
	else if (rc != 0)
		free(j);
	return rc != 0 ? rc : wait ? here.rc : 0;
}

void im_writer_stats(im_writer *w, im_store_writer_stats *out)
{
	pthread_mutex_lock(&w->mu);
	out->batches = w->batches;
	out->jobs = w->jobs;
	out->max_batch = w->max_batch;
	pthread_mutex_unlock(&w->mu);
}
