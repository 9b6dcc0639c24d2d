/* Token buckets and backoff for the delivery pipeline. Pure arithmetic on
 * the caller's data; the dispatcher thread owns every bucket. */
#include <math.h>
#include <time.h>

#include "notify/internal.h"

long long nt_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void refill(nt_bucket *b, double now)
{
	if (now > b->t) {
		b->tokens += (now - b->t) * b->rate;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->t = now;
	}
}

void nt_bucket_init(nt_bucket *b, double rate, double burst, double now)
{
	b->rate = rate;
	b->burst = burst < 1 ? 1 : burst;
	b->tokens = b->burst;
	b->t = now;
}

void nt_bucket_set(nt_bucket *b, double rate, double burst, double now)
{
	refill(b, now);
	b->rate = rate;
	b->burst = burst < 1 ? 1 : burst;
	if (b->tokens > b->burst)
		b->tokens = b->burst;
}

double nt_bucket_wait(nt_bucket *b, double now)
{
	if (b->rate <= 0)
		return 0;
	refill(b, now);
	/* A hair of tolerance so rounding never leaves 0.9999999 tokens
	 * waiting for a timer of 0 ms. */
	if (b->tokens >= 1 - 1e-9)
		return 0;
	if (b->t > now) /* blocked into the future */
		return b->t - now + (1 - b->tokens) / b->rate;
	return (1 - b->tokens) / b->rate;
}

void nt_bucket_take(nt_bucket *b, double now)
{
	if (b->rate <= 0)
		return;
	refill(b, now);
	b->tokens -= 1;
	if (b->tokens < 0)
		b->tokens = 0;
}

void nt_bucket_anchor(nt_bucket *b, double now)
{
	if (b->rate <= 0 || now <= b->t)
		return;
	/* As if the token had been taken now rather than at dispatch:
	 * refill up to now, but with that token spent, so at most
	 * burst - 1. Time spent queued for a worker is not lost. */
	b->tokens += (now - b->t) * b->rate;
	if (b->tokens > b->burst - 1)
		b->tokens = b->burst - 1;
	b->t = now;
}

void nt_bucket_block(nt_bucket *b, double until)
{
	if (b->rate <= 0)
		return;
	/* One token exactly at `until`: the platform said we may send then. */
	b->tokens = 0;
	b->t = until - 1 / b->rate;
}

uint64_t nt_rand(uint64_t *rng)
{
	/* xorshift64*: good enough for jitter, and per caller, so no lock. */
	uint64_t x = *rng ? *rng : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

double nt_backoff(int attempt, double base, double cap, uint64_t *rng)
{
	if (attempt < 1)
		attempt = 1;
	double ceiling = base * ldexp(1.0, attempt > 60 ? 60 : attempt - 1);
	if (ceiling > cap)
		ceiling = cap;
	double u = (double)(nt_rand(rng) >> 11) / 9007199254740992.0;
	return u * ceiling;
}
