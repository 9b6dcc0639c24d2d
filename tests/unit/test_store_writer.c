/*
 * tests/unit/test_store_writer.c - the store's group writer against a real
 * database file: jobs queued while a batch runs commit together, a failing
 * job undoes only itself, done() runs in submit order after the commit,
 * waiting callers see their own result, and a done() may write again.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <im/types.h>

#include "../tmpdir.h"
#include "metrics/metrics.h"
#include "store/store.h"

static char tmpdir[256];
static im_store *st;

static void setup(void)
{
	char err[256], path[512];
	cr_assert_not_null(tmpdir_make(tmpdir, sizeof(tmpdir), "im-test-writer"));
	snprintf(path, sizeof(path), "%s/im.db", tmpdir);
	st = im_store_open(path, err, sizeof(err));
	cr_assert_not_null(st, "%s", err);
	sqlite3 *db = im_store_db(st);
	cr_assert_eq(sqlite3_exec(db,
				  "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)",
				  NULL, NULL, NULL),
		     SQLITE_OK);
}

static void teardown(void)
{
	im_store_close(st);
	st = NULL;
	tmpdir_remove(tmpdir);
}

TestSuite(store_writer, .init = setup, .fini = teardown);

/* A job inserting key k; fails after its insert when `fail` is set. */
typedef struct ins {
	int k;
	bool fail;
	int rc;          /* seen by done */
	int *order;      /* done appends k here */
	int *n_order;
	bool committed;  /* done saw the row in the database */
} ins;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool gate_open, gate_reached;

static int apply_ins(sqlite3 *db, void *ud)
{
	ins *j = ud;
	char sql[96];
	snprintf(sql, sizeof(sql), "INSERT INTO t VALUES (%d, 'x')", j->k);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return IM_EIO;
	return j->fail ? IM_ECONFLICT : 0;
}

/* The first job holds the writer until the test opened the gate. */
static int apply_gate(sqlite3 *db, void *ud)
{
	pthread_mutex_lock(&mu);
	gate_reached = true;
	pthread_cond_broadcast(&cv);
	while (!gate_open)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return apply_ins(db, ud);
}

static int count_rows(const char *where)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM t%s%s",
		 where ? " WHERE " : "", where ? where : "");
	sqlite3 *db = im_store_read_begin(st);
	sqlite3_stmt *q;
	int n = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	im_store_read_end(st, db);
	return n;
}

static void done_ins(void *ud, int rc)
{
	ins *j = ud;
	char where[32];
	snprintf(where, sizeof(where), "k = %d", j->k);
	/* A separate connection sees the row: it is committed already. */
	j->committed = count_rows(where) == 1;
	pthread_mutex_lock(&mu);
	j->rc = rc;
	j->order[(*j->n_order)++] = j->k;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* The writer is inside the gate job, alone in its batch. */
static void wait_gate_reached(void)
{
	pthread_mutex_lock(&mu);
	while (!gate_reached)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static void open_gate(void)
{
	pthread_mutex_lock(&mu);
	gate_open = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void wait_done(const int *n_order, int want)
{
	pthread_mutex_lock(&mu);
	while (*n_order < want)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

Test(store_writer, commits_what_queued_during_a_batch_in_one_transaction)
{
	enum { N = 100 };
	static ins jobs[N];
	static int order[N];
	int n_order = 0;
	gate_open = gate_reached = false;
	for (int i = 0; i < N; i++)
		jobs[i] = (ins){.k = i + 1, .order = order, .n_order = &n_order};
	cr_assert_eq(im_store_submit(st, apply_gate, done_ins, &jobs[0]), 0);
	wait_gate_reached();
	for (int i = 1; i < N; i++)
		cr_assert_eq(im_store_submit(st, apply_ins, done_ins, &jobs[i]),
			     0);
	open_gate();
	wait_done(&n_order, N);
	im_store_writer_stats s;
	im_store_writer_stats_get(st, &s);
	cr_assert_eq(s.jobs, N);
	cr_assert_eq(s.batches, 2, "the 99 queued behind the first batch "
				   "commit as one: %lld batches",
		     s.batches);
	cr_assert_eq(s.max_batch, N - 1);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(order[i], i + 1, "done() in submit order");
		cr_assert_eq(jobs[i].rc, 0);
		cr_assert(jobs[i].committed, "done() runs after the commit");
	}
	cr_assert_eq(count_rows(NULL), N);
}

/* The batch hooks: `hooked` counts hook calls, `in_batch` is set between
 * them; done_in_batch records whether each done() ran inside. */
static int hooked, in_batch, dones_inside;
static void before_done(void)
{
	hooked++;
	in_batch = 1;
}
static void after_done(void)
{
	hooked++;
	in_batch = 0;
}
static void done_in_batch(void *ud, int rc)
{
	dones_inside += in_batch;
	done_ins(ud, rc);
}

Test(store_writer, runs_the_batch_hooks_around_each_batchs_answers)
{
	enum { N = 20 };
	static ins jobs[N];
	static int order[N];
	int n_order = 0;
	gate_open = gate_reached = false;
	im_store_set_batch_hooks(before_done, after_done);
	for (int i = 0; i < N; i++)
		jobs[i] = (ins){.k = i + 1, .order = order, .n_order = &n_order};
	cr_assert_eq(im_store_submit(st, apply_gate, done_in_batch, &jobs[0]),
		     0);
	wait_gate_reached();
	for (int i = 1; i < N; i++)
		cr_assert_eq(
		    im_store_submit(st, apply_ins, done_in_batch, &jobs[i]), 0);
	open_gate();
	wait_done(&n_order, N);
	im_store_close(st); /* joins the writer: the last hook has run */
	st = NULL;
	im_store_set_batch_hooks(NULL, NULL);
	cr_assert_eq(dones_inside, N, "every done() between the hooks");
	cr_assert_eq(hooked, 4, "two batches, two hook calls each: %d",
		     hooked);
	cr_assert_eq(in_batch, 0);
}

Test(store_writer, undoes_only_the_failing_job_of_a_batch)
{
	static ins jobs[4];
	static int order[4];
	int n_order = 0;
	gate_open = gate_reached = false;
	for (int i = 0; i < 4; i++)
		jobs[i] = (ins){.k = i + 1, .order = order, .n_order = &n_order,
				.fail = i == 2};
	cr_assert_eq(im_store_submit(st, apply_gate, done_ins, &jobs[0]), 0);
	wait_gate_reached();
	for (int i = 1; i < 4; i++)
		cr_assert_eq(im_store_submit(st, apply_ins, done_ins, &jobs[i]),
			     0);
	open_gate();
	wait_done(&n_order, 4);
	cr_assert_eq(jobs[1].rc, 0);
	cr_assert_eq(jobs[2].rc, IM_ECONFLICT, "the job's own result");
	cr_assert_eq(jobs[3].rc, 0);
	cr_assert_eq(count_rows("k = 3"), 0, "the failed job left no row");
	cr_assert_eq(count_rows(NULL), 3, "its batch neighbours committed");
}

/* A constraint failing inside apply is that job's failure alone. */
Test(store_writer, gives_a_waiting_caller_its_own_result)
{
	int order[2], n_order = 0;
	ins a = {.k = 7, .order = order, .n_order = &n_order};
	ins b = {.k = 7, .order = order, .n_order = &n_order};
	cr_assert_eq(im_store_write(st, apply_ins, done_ins, &a), 0);
	cr_assert(a.committed);
	cr_assert_eq(im_store_write(st, apply_ins, done_ins, &b), IM_EIO,
		     "the second insert of key 7 fails on its own");
	cr_assert_eq(count_rows(NULL), 1);
}

typedef struct many {
	int base;
	int failures;
} many;

static void *writer_thread(void *arg)
{
	many *m = arg;
	for (int i = 0; i < 50; i++) {
		int order[1], n = 0;
		ins j = {.k = m->base + i, .order = order, .n_order = &n};
		if (im_store_write(st, apply_ins, done_ins, &j) != 0 ||
		    !j.committed)
			m->failures++;
	}
	return NULL;
}

Test(store_writer, serves_waiting_callers_from_many_threads)
{
	enum { T = 8 };
	pthread_t t[T];
	many m[T];
	for (int i = 0; i < T; i++) {
		m[i] = (many){.base = 1000 * (i + 1)};
		cr_assert_eq(pthread_create(&t[i], NULL, writer_thread, &m[i]),
			     0);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(m[i].failures, 0);
	}
	cr_assert_eq(count_rows(NULL), T * 50);
}

static int chained;

static void done_writes_again(void *ud, int rc)
{
	(void)rc;
	static int order[1];
	static int n;
	ins *again = ud;
	ins next = {.k = again->k + 1, .order = order, .n_order = &n};
	/* On the writer thread: runs at once instead of waiting on itself. */
	chained = im_store_write(st, apply_ins, NULL, &next) == 0 ? 1 : -1;
}

Test(store_writer, lets_a_done_callback_write_without_deadlock)
{
	ins first = {.k = 41};
	chained = 0;
	cr_assert_eq(im_store_write(st, apply_ins, done_writes_again, &first),
		     0);
	cr_assert_eq(chained, 1);
	cr_assert_eq(count_rows("k = 42"), 1);
}

Test(store_writer, counts_batches_and_their_writes_in_metrics)
{
	ins a = {.k = 61};
	im_metrics_reset();
	cr_assert_eq(im_store_write(st, apply_ins, NULL, &a), 0);
	im_metric *m = im_metrics_family("im_store_write_batch_size", "x",
					 IM_METRIC_HISTOGRAM, NULL, NULL, 0);
	cr_assert_not_null(m, "registered by the writer");
	cr_assert_geq(im_metric_value(m, NULL), 1, "one batch observed");
	size_t len;
	char *out = im_metrics_render(&len);
	cr_assert(strstr(out, "im_store_write_batch_seconds_count 1\n"), "%s",
		  out);
	free(out);
	im_metrics_reset();
}
