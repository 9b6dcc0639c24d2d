/* Token buckets and backoff of the notification pipeline. */
#include <criterion/criterion.h>

#include "notify/internal.h"

Test(notify_bucket, allows_a_burst_then_the_rate)
{
	nt_bucket b;
	nt_bucket_init(&b, 1, 3, 100);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(nt_bucket_wait(&b, 100), 0);
		nt_bucket_take(&b, 100);
	}
	cr_expect_float_eq(nt_bucket_wait(&b, 100), 1.0, 1e-9);
	cr_expect_float_eq(nt_bucket_wait(&b, 100.25), 0.75, 1e-9);
	cr_expect_eq(nt_bucket_wait(&b, 101), 0);
	nt_bucket_take(&b, 101);
	cr_expect_float_eq(nt_bucket_wait(&b, 101), 1.0, 1e-9);
}

Test(notify_bucket, never_holds_more_than_the_burst)
{
	nt_bucket b;
	nt_bucket_init(&b, 2, 3, 0);
	cr_expect_eq(nt_bucket_wait(&b, 1000), 0);
	for (int i = 0; i < 3; i++)
		nt_bucket_take(&b, 1000);
	cr_expect_float_eq(nt_bucket_wait(&b, 1000), 0.5, 1e-9);
}

Test(notify_bucket, refills_from_the_answer_not_the_dispatch)
{
	nt_bucket b;
	nt_bucket_init(&b, 1, 1, 0);
	nt_bucket_take(&b, 0);
	/* The platform counted the request somewhere in [0, 0.2]. */
	nt_bucket_anchor(&b, 0.2);
	cr_expect_float_eq(nt_bucket_wait(&b, 1.0), 0.2, 1e-9);
	cr_expect_eq(nt_bucket_wait(&b, 1.2), 0);
}

Test(notify_bucket, does_not_lose_refill_while_a_send_waits_for_a_worker)
{
	nt_bucket b;
	nt_bucket_init(&b, 1, 3, 0);
	nt_bucket_take(&b, 0);
	nt_bucket_take(&b, 0);
	nt_bucket_take(&b, 0); /* dispatched at 0, answered at 0.6 */
	nt_bucket_anchor(&b, 0.6);
	cr_expect_float_eq(nt_bucket_wait(&b, 0.6), 0.4, 1e-9);
	/* A full bucket stays one short after the send. */
	nt_bucket_init(&b, 1, 3, 0);
	nt_bucket_take(&b, 0);
	nt_bucket_anchor(&b, 5);
	cr_expect_float_eq(b.tokens, 2, 1e-9);
}

Test(notify_bucket, waits_exactly_what_the_platform_asked)
{
	nt_bucket b;
	nt_bucket_init(&b, 1, 3, 0);
	nt_bucket_block(&b, 7.5);
	cr_expect_float_eq(nt_bucket_wait(&b, 5), 2.5, 1e-9);
	cr_expect_float_eq(nt_bucket_wait(&b, 7.4), 0.1, 1e-9);
	cr_expect_eq(nt_bucket_wait(&b, 7.5), 0);
	nt_bucket_take(&b, 7.5);
	cr_expect_float_eq(nt_bucket_wait(&b, 7.5), 1.0, 1e-9);
}

Test(notify_bucket, without_a_rate_never_waits)
{
	nt_bucket b;
	nt_bucket_init(&b, 0, 1, 0);
	for (int i = 0; i < 100; i++)
		nt_bucket_take(&b, 0);
	cr_expect_eq(nt_bucket_wait(&b, 0), 0);
	nt_bucket_block(&b, 10);
	cr_expect_eq(nt_bucket_wait(&b, 0), 0);
}

Test(notify_bucket, keeps_tokens_when_the_rate_changes)
{
	nt_bucket b;
	nt_bucket_init(&b, 1, 3, 0);
	nt_bucket_take(&b, 0);
	nt_bucket_set(&b, 10, 2, 0);
	cr_expect_float_eq(b.tokens, 2, 1e-9);
	nt_bucket_take(&b, 0);
	nt_bucket_take(&b, 0);
	cr_expect_float_eq(nt_bucket_wait(&b, 0), 0.1, 1e-9);
}

Test(notify_backoff, stays_within_full_jitter_bounds)
{
	uint64_t rng = 42;
	for (int attempt = 1; attempt <= 12; attempt++) {
		double ceiling =
		    attempt >= 7 ? 60 : (double)(1 << (attempt - 1));
		double lo = 1e9, hi = 0, sum = 0;
		for (int i = 0; i < 20000; i++) {
			double d = nt_backoff(attempt, 1, 60, &rng);
			cr_assert(d >= 0 && d <= ceiling,
				  "attempt %d: %f outside [0, %f]", attempt, d,
				  ceiling);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
			sum += d;
		}
		/* Full jitter: spread over the whole range, mean near half. */
		cr_expect_lt(lo, ceiling * 0.01);
		cr_expect_gt(hi, ceiling * 0.99);
		cr_expect_float_eq(sum / 20000, ceiling / 2, ceiling * 0.03);
	}
}

Test(notify_backoff, is_capped_at_sixty_seconds_for_any_attempt)
{
	uint64_t rng = 7;
	for (int attempt = 1; attempt < 5000; attempt += 37)
		cr_assert_leq(nt_backoff(attempt, 1, 60, &rng), 60);
	cr_expect_leq(nt_backoff(0, 1, 60, &rng), 1);
}
