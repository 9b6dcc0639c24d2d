/* The outbox table: claims and leases, outcomes, dead letters, restarts. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bus/bus.h"
#include "incident/repo.h"
#include "metrics/metrics.h"
#include "notify/internal.h"

static char dir[64];
static im_store *st;
static im_config *cfg;
static const im_actor who = {.id = "U1", .name = "Ada", .via = "test"};

static const char *yaml = "plugins:\n"
			  "  instances:\n"
			  "    - {id: tc, module: testconn}\n"
			  "subscriptions:\n"
			  "  - {connector: tc, channel: C1}\n"
			  "  - {connector: tc, channel: C2}\n";

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/im-nout-XXXXXX");
	cr_assert(mkdtemp(dir));
	char path[128], err[1024];
	snprintf(path, sizeof(path), "%s/im.db", dir);
	st = im_store_open(path, err, sizeof(err));
	cr_assert(st, "%s", err);
	im_bus_reset();
	cfg = im_config_load_string("test.yaml", yaml, err, sizeof(err));
	cr_assert(cfg, "%s", err);
	cr_assert_eq(im_notify_prepare(st, cfg, false), 0);
}

static void teardown(void)
{
	im_notify_stop();
	im_config_free(cfg);
	im_store_close(st);
	im_bus_reset();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(notify_outbox, .init = setup, .fini = teardown);

static void declare(const char *sev)
{
	json_t *f = json_pack("{s:s,s:s}", "title", "t", "severity", sev);
	im_write w;
	im_err err;
	cr_assert_eq(im_inc_declare(st, f, &who, NULL, &w, &err), 0, "%s",
		     err.message);
	im_write_clear(&w);
	json_decref(f);
}

typedef struct got {
	nt_row *rows[64];
	char where[64][32];
	int n;
	bool refuse;
} got;

static int collect(void *ud, nt_row *r, const char *inst, const char *ch)
{
	got *g = ud;
	if (g->refuse) {
		free(r);
		return IM_ENOMEM;
	}
	cr_assert_lt(g->n, 64);
	snprintf(g->where[g->n], sizeof(g->where[0]), "%s/%s", inst, ch);
	g->rows[g->n++] = r;
	return 0;
}

static void release(got *g)
{
	for (int i = 0; i < g->n; i++)
		free(g->rows[i]);
	g->n = 0;
}

static int claim(const char *owner, bool crit, long long now, got *g)
{
	return nt_outbox_claim(st, owner, crit, now, now + 60000, 64, collect,
			       g);
}

Test(notify_outbox, leases_rows_to_one_owner_until_the_lease_runs_out)
{
	declare("SEV-1");
	declare("SEV-3");
	long long now = nt_wall_ms();
	got a = {0}, b = {0};
	cr_expect_eq(claim("h:1:a", true, now, &a), 2);
	cr_expect_str_eq(a.where[0], "tc/C1");
	cr_expect_str_eq(a.where[1], "tc/C2");
	cr_expect(a.rows[0]->critical);
	cr_expect_str_eq(a.rows[0]->type, "im.incident.declare");
	cr_expect_eq(claim("h:1:b", true, now, &b), 0, "leased to a");
	cr_expect_eq(claim("h:1:b", false, now, &b), 2, "batched rows");
	release(&b);
	cr_expect_eq(nt_outbox_renew(st, "h:1:a", now + 120000), 2);
	cr_expect_eq(claim("h:1:b", true, now + 90000, &b), 0, "renewed");
	cr_expect_eq(claim("h:1:b", true, now + 130000, &b), 2, "expired");
	release(&a);
	release(&b);
}

Test(notify_outbox, gives_back_rows_the_claimer_could_not_hold)
{
	declare("SEV-1");
	long long now = nt_wall_ms();
	got a = {.refuse = true};
	cr_expect_eq(claim("h:1:a", true, now, &a), 2);
	cr_expect_eq(a.n, 0);
	cr_expect_eq(nt_outbox_renew(st, "h:1:a", now + 60000), 0);
	a.refuse = false;
	cr_expect_eq(claim("h:1:b", true, now, &a), 2, "free for anyone");
	release(&a);
}

Test(notify_outbox, gives_back_rows_of_an_owner_that_died)
{
	declare("SEV-1");
	long long now = nt_wall_ms();
	got a = {0};
	/* pid 1 << 22 is above the kernel's pid_max default: never alive. */
	cr_expect_eq(claim("thishost:4194304:dead", true, now, &a), 2);
	release(&a);
	cr_expect_eq(nt_outbox_reclaim_dead(st, "otherhost:1:me"), 0,
		     "another host: wait for the lease");
	cr_expect_eq(claim("thishost:5:me", true, now, &a), 0);
	cr_expect_eq(nt_outbox_reclaim_dead(st, "thishost:5:me"), 2);
	cr_expect_eq(claim("thishost:5:me", true, now, &a), 2);
	release(&a);
}

Test(notify_outbox, deletes_delivered_rows_and_remembers_the_message)
{
	declare("SEV-1");
	got a = {0};
	cr_assert_eq(claim("h:1:a", true, nt_wall_ms(), &a), 2);
	nt_outcome ok = {.verdict = IM_SEND_OK,
			 .message_id = "m1",
			 .thread_id = "",
			 .incident = a.rows[0]->incident};
	cr_expect_eq(nt_outbox_done(st, a.rows[0], "tc", "C1", &ok), 0);
	char mid[128], tid[128];
	cr_expect_eq(nt_outbox_message(st, 1, "tc", "C1", mid, tid), 0);
	cr_expect_str_eq(mid, "m1");
	cr_expect_str_eq(tid, "m1", "the thread is the first message");
	cr_expect_eq(nt_outbox_message(st, 1, "tc", "C2", mid, tid),
		     IM_ENOTFOUND);
	json_t *left = nt_outbox_list(st, false, 10);
	cr_expect_eq(json_array_size(left), 1);
	json_decref(left);
	cr_expect_eq(nt_outbox_forget_message(st, 1, "tc", "C1"), 0);
	cr_expect_eq(nt_outbox_message(st, 1, "tc", "C1", mid, tid),
		     IM_ENOTFOUND);
	release(&a);
}

Test(notify_outbox, keeps_a_retried_row_until_its_time)
{
	declare("SEV-1");
	got a = {0};
	long long now = nt_wall_ms();
	cr_assert_eq(claim("h:1:a", true, now, &a), 2);
	a.rows[0]->next = NULL;
	nt_outcome r = {.verdict = IM_SEND_RETRY,
			.http_status = 503,
			.wait_s = 30,
			.error = "http_503"};
	cr_expect_eq(nt_outbox_done(st, a.rows[0], "tc", "C1", &r), 0);
	release(&a);
	cr_expect_eq(nt_outbox_release(st, "h:1:a"), 2);
	cr_expect_eq(claim("h:1:b", true, now + 1000, &a), 1, "C2 only");
	release(&a);
	cr_expect_eq(claim("h:1:c", true, now + 31000, &a), 1);
	cr_expect_str_eq(a.where[0], "tc/C1");
	cr_expect_eq(a.rows[0]->attempts, 1);
	release(&a);
}

Test(notify_outbox, lists_dead_letters_with_error_and_hint_and_requeues)
{
	declare("SEV-2");
	got a = {0};
	cr_assert_eq(claim("h:1:a", true, nt_wall_ms(), &a), 2);
	a.rows[0]->next = NULL;
	long long id = a.rows[0]->id;
	nt_outcome dead = {.verdict = IM_SEND_PERMANENT,
			   .http_status = 404,
			   .error = "channel_not_found",
			   .hint = "invite the bot"};
	cr_expect_eq(nt_outbox_done(st, a.rows[0], "tc", "C1", &dead), 0);
	release(&a);
	json_t *list = nt_outbox_list(st, true, 10);
	cr_assert_eq(json_array_size(list), 1);
	const json_t *d = json_array_get(list, 0);
	cr_expect_eq(json_integer_value(json_object_get(d, "id")), id);
	cr_expect_str_eq(json_string_value(json_object_get(d, "error")),
			 "channel_not_found");
	cr_expect_str_eq(json_string_value(json_object_get(d, "hint")),
			 "invite the bot");
	cr_expect_str_eq(json_string_value(json_object_get(d, "instance")),
			 "tc");
	cr_expect_str_eq(json_string_value(json_object_get(d, "event")),
			 "im.incident.declare");
	cr_expect_eq(json_integer_value(json_object_get(d, "attempts")), 1);
	json_decref(list);
	json_t *c = nt_outbox_counts(st);
	cr_expect_eq(json_integer_value(json_object_get(c, "dead")), 1);
	json_decref(c);
	cr_expect_eq(nt_outbox_retry(st, id), 0);
	cr_expect_eq(nt_outbox_retry(st, id), IM_ECONFLICT, "queued again");
	cr_expect_eq(nt_outbox_retry(st, 999), IM_ENOTFOUND);
	cr_expect_eq(claim("h:1:b", true, nt_wall_ms(), &a), 1);
	cr_expect_eq(a.rows[0]->id, id);
	release(&a);
}

/* nt_outbox_events(rows) gives n events, the last about `last_subject`. */
static void expect_events(const nt_row *rows, size_t n,
			  const char *last_subject)
{
	json_t *evs;
	cr_assert_eq(nt_outbox_events(st, rows, &evs), 0);
	cr_expect_eq(json_array_size(evs), n);
	cr_expect_str_eq(json_string_value(json_object_get(
			     json_array_get(evs, n - 1), "subject")),
			 last_subject);
	json_decref(evs);
}

Test(notify_outbox, hands_out_the_events_in_row_order)
{
	declare("SEV-1");
	declare("SEV-1");
	got a = {0};
	cr_assert_eq(claim("h:1:a", true, nt_wall_ms(), &a), 4);
	a.rows[0]->next = a.rows[2];
	a.rows[2]->next = NULL;
	expect_events(a.rows[0], 2, "INC-2");
	release(&a);
}

/* Claims above an id (the dispatcher's claims on new rows): in id order,
 * never a row at or below it, never one leased already; rows below it
 * come back only through a claim from the start. */
Test(notify_outbox, claims_above_an_id_without_skipping_or_twice)
{
	declare("SEV-1");
	declare("SEV-1");
	declare("SEV-1"); /* 6 rows: 2 channels each */
	long long now = nt_wall_ms(), top = 0;
	nt_claim_req req = {.owner = "h:1:a",
			    .critical = true,
			    .now_ms = now,
			    .lease_until = now + 60000,
			    .limit = 2};
	got a = {0}, b = {0};
	cr_assert_eq(nt_lease_claim(st, &req, collect, &a, &top), 2);
	cr_expect_eq(top, a.rows[1]->id, "the highest id claimed");
	cr_expect_lt(a.rows[0]->id, a.rows[1]->id, "in id order");
	req.after = top;
	req.limit = 64;
	cr_assert_eq(nt_lease_claim(st, &req, collect, &a, &top), 4);
	for (int i = 1; i < a.n; i++)
		cr_expect_lt(a.rows[i - 1]->id, a.rows[i]->id,
			     "no row twice, none left out");
	cr_expect_eq(top, a.rows[5]->id);
	req.after = top;
	cr_expect_eq(nt_lease_claim(st, &req, collect, &b, &top), 0);
	/* Declared later: above the top, so a claim above it finds it. */
	declare("SEV-1");
	cr_expect_eq(nt_lease_claim(st, &req, collect, &b, &top), 2);
	cr_expect_gt(b.rows[0]->id, a.rows[5]->id);
	release(&b);
	req.after = top;
	/* Given back (below the top): only a claim from the start sees it. */
	cr_expect_eq(nt_outbox_release(st, "h:1:a"), 8);
	req.owner = "h:1:b";
	cr_expect_eq(nt_lease_claim(st, &req, collect, &b, &top), 0,
		     "nothing above the top");
	req.after = 0;
	cr_expect_eq(nt_lease_claim(st, &req, collect, &b, &top), 8);
	cr_expect_eq(b.rows[0]->id, a.rows[0]->id);
	release(&a);
	release(&b);
}

typedef struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
} waiter;

static void on_recorded(void *ud, int rc)
{
	waiter *w = ud;
	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Waits (at most 30 s, a bound, not a timing check) for on_recorded. */
static bool wait_recorded(waiter *w)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&w->mu);
	while (!w->done &&
	       pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
		;
	bool done = w->done;
	pthread_mutex_unlock(&w->mu);
	return done;
}

Test(notify_outbox, records_an_outcome_queued_on_the_writer)
{
	declare("SEV-1");
	got a = {0};
	cr_assert_eq(claim("h:1:a", true, nt_wall_ms(), &a), 2);
	a.rows[0]->next = NULL;
	a.rows[1]->next = NULL;
	waiter w1 = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false,
		     0},
	       w2 = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false,
		     0};
	nt_outcome ok = {.verdict = IM_SEND_OK,
			 .message_id = "m7",
			 .incident = a.rows[0]->incident};
	nt_outcome dead = {.verdict = IM_SEND_PERMANENT,
			   .http_status = 404,
			   .error = "channel_not_found"};
	cr_assert_eq(nt_outbox_done_async(st, a.rows[0], "tc", "C1", &ok,
					  on_recorded, &w1),
		     0);
	cr_assert_eq(nt_outbox_done_async(st, a.rows[1], "tc", "C2", &dead,
					  on_recorded, &w2),
		     0);
	cr_assert(wait_recorded(&w1));
	cr_assert(wait_recorded(&w2));
	cr_expect_eq(w1.rc, 0);
	cr_expect_eq(w2.rc, 0);
	char mid[128], tid[128];
	cr_expect_eq(nt_outbox_message(st, 1, "tc", "C1", mid, tid), 0);
	cr_expect_str_eq(mid, "m7");
	json_t *pending = nt_outbox_list(st, false, 10);
	cr_expect_eq(json_array_size(pending), 1, "the dead letter only");
	json_t *deadl = nt_outbox_list(st, true, 10);
	cr_expect_eq(json_array_size(deadl), 1);
	cr_expect_eq(json_integer_value(
			 json_object_get(json_array_get(deadl, 0), "id")),
		     a.rows[1]->id);
	json_decref(pending);
	json_decref(deadl);
	release(&a);
}

/* A delivery thread keeps the last event it read: the same event again,
 * another one when the row is of another event, several in order. */
Test(notify_outbox, keeps_the_last_event_without_mixing_them_up)
{
	declare("SEV-1");
	declare("SEV-1");
	got a = {0};
	cr_assert_eq(claim("h:1:a", true, nt_wall_ms(), &a), 4);
	for (int i = 0; i < 4; i++)
		a.rows[i]->next = NULL;
	nt_outbox_events_keep(true);
	const char *want[] = {"INC-1", "INC-1", "INC-2", "INC-2", "INC-1"};
	int row[] = {0, 1, 2, 3, 0};
	for (int i = 0; i < 5; i++)
		expect_events(a.rows[row[i]], 1, want[i]);
	a.rows[1]->next = a.rows[2];
	expect_events(a.rows[1], 2, "INC-2");
	nt_outbox_events_keep(false);
	a.rows[1]->next = NULL;
	release(&a);
}

/* Rows of a removed connector instance count as platform "unknown"; once
 * they are gone, so is that series (it kept its last count before). */
static bool depth_listed(const char *series)
{
	size_t len = 0;
	char *text = im_metrics_render(&len);
	bool found = text && strstr(text, series) != NULL;
	free(text);
	return found;
}

Test(outbox, a_drained_platform_loses_its_queue_depth_series)
{
	nt_metrics_register();
	json_t *c = json_pack("{s:{s:i},s:i}", "pending", "removed-chat", 5,
			      "dead", 0);
	nt_metrics_depth(c);
	json_decref(c);
	cr_expect(depth_listed("im_notify_queue_depth{platform=\"unknown\"} 5"));
	c = json_pack("{s:{},s:i}", "pending", "dead", 0);
	nt_metrics_depth(c);
	json_decref(c);
	cr_expect(!depth_listed("im_notify_queue_depth{platform=\"unknown\"}"),
		  "the drained platform's series is gone");
}
