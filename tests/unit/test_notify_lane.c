/* Lanes: the batch window, priority of critical rows, digests, retries. */
#include <stdlib.h>

#include <criterion/criterion.h>

#include "notify/internal.h"

static nt_lane lane;

static void setup(void)
{
	memset(&lane, 0, sizeof(lane));
	nt_lane_init(&lane);
}

static void teardown(void)
{
	nt_lane_free_rows(&lane);
}

TestSuite(notify_lane, .init = setup, .fini = teardown);

static nt_row *row(long long id, bool critical, long long created_ms)
{
	nt_row *r = calloc(1, sizeof(*r));
	r->id = id;
	r->critical = critical;
	r->created_ms = created_ms;
	nt_lane_push(&lane, r);
	return r;
}

/* Wall clock 100 s, monotonic 10 s, window 5 s, digests of up to 50. */
static nt_next next(double now, long long wall_ms, double *due)
{
	return nt_lane_next(&lane, now, wall_ms, 5.0, 50, due);
}

Test(notify_lane, is_idle_when_empty)
{
	double due;
	cr_expect_eq(next(10, 100000, &due), NT_IDLE);
}

Test(notify_lane, holds_batched_rows_for_the_window_of_the_oldest)
{
	double due;
	row(1, false, 99000); /* committed 1 s ago */
	row(2, false, 100000);
	cr_assert_eq(next(10, 100000, &due), NT_WAIT);
	cr_expect_float_eq(due, 14.0, 1e-6);
	cr_expect_eq(next(14, 104000, &due), NT_READY);
	cr_expect_eq(nt_lane_take(&lane, 50), 2);
	cr_expect_eq(lane.inflight->id, 1);
	cr_expect_eq(lane.inflight->next->id, 2);
}

Test(notify_lane, sends_rows_older_than_the_window_at_once)
{
	double due;
	row(1, false, 10000); /* waited in the store through a restart */
	cr_expect_eq(next(10, 100000, &due), NT_READY);
}

Test(notify_lane, sends_critical_rows_first_and_alone)
{
	double due;
	row(1, false, 100000);
	row(2, true, 100000);
	row(3, true, 100000);
	cr_assert_eq(next(10, 100000, &due), NT_READY);
	cr_expect_eq(nt_lane_take(&lane, 50), 1);
	cr_expect_eq(lane.inflight->id, 2);
	cr_expect(lane.inflight_crit);
	cr_expect_eq(next(10, 100000, &due), NT_IDLE, "one send at a time");
	nt_lane_finish(&lane, false);
	cr_expect_eq(nt_lane_take(&lane, 50), 1);
	cr_expect_eq(lane.inflight->id, 3);
	nt_lane_finish(&lane, false);
	cr_expect_eq(next(10, 100000, &due), NT_WAIT, "the batch still waits");
}

Test(notify_lane, sends_a_full_digest_without_waiting)
{
	double due;
	for (int i = 1; i <= 120; i++)
		row(i, false, 100000);
	cr_expect_eq(nt_lane_next(&lane, 10, 100000, 5.0, 50, &due), NT_READY);
	cr_expect_eq(nt_lane_take(&lane, 50), 50);
	cr_expect_eq(lane.n_batch, 70);
	nt_lane_finish(&lane, false);
	cr_expect_eq(nt_lane_take(&lane, 50), 50);
	nt_lane_finish(&lane, false);
	cr_expect_eq(nt_lane_next(&lane, 10, 100000, 5.0, 50, &due), NT_WAIT,
		     "20 left: not full, within the window");
}

Test(notify_lane, puts_a_failed_send_back_ahead_of_newer_rows)
{
	double due;
	row(1, false, 90000);
	row(2, false, 90000);
	cr_assert_eq(nt_lane_take(&lane, 50), 2);
	row(3, false, 100000);
	nt_lane_finish(&lane, true);
	cr_expect_eq(lane.n_batch, 3);
	cr_expect_eq(lane.batch->id, 1);
	cr_expect_eq(lane.batch->next->id, 2);
	cr_expect_eq(lane.batch->next->next->id, 3);
	row(4, false, 100000);
	cr_expect_eq(lane.batch->next->next->next->id, 4, "tail kept");
	cr_expect_eq(next(10, 100000, &due), NT_READY);
}

Test(notify_lane, waits_out_a_block_even_for_critical_rows)
{
	double due;
	row(1, true, 100000);
	lane.blocked_until = 12.5;
	cr_expect_eq(next(10, 100000, &due), NT_WAIT);
	cr_expect_float_eq(due, 12.5, 1e-9);
	cr_expect_eq(next(12.5, 102500, &due), NT_READY);
}

Test(notify_lane, with_no_window_sends_batched_rows_at_once)
{
	double due;
	row(1, false, 100000);
	cr_expect_eq(nt_lane_next(&lane, 10, 100000, 0, 50, &due), NT_READY);
}
