/*
 * core/clock - the monotonic clock in the unit a caller wants, for
 * deadlines and durations (never for timestamps people read), and the sum
 * that turns a duration into a condition-variable deadline. One place
 * instead of a private helper per file.
 */
#ifndef IM_CORE_CLOCK_H
#define IM_CORE_CLOCK_H

#include <time.h>

static inline long long im_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline long long im_mono_ms(void)
{
	return im_mono_ns() / 1000000;
}

static inline double im_mono_s(void)
{
	return (double)im_mono_ns() / 1e9;
}

/* `t` plus `ns` nanoseconds (ns >= 0), normalized: a deadline for
 * pthread_cond_timedwait, in whichever clock `t` was read from. */
static inline struct timespec im_ts_plus(struct timespec t, long long ns)
{
	ns += t.tv_nsec;
	t.tv_sec += (time_t)(ns / 1000000000LL);
	t.tv_nsec = (long)(ns % 1000000000LL);
	return t;
}

#endif
