/*
 * A fake chat platform on loopback (libmicrohttpd), for notification
 * tests and benchmarks. It accepts
 *     POST  /channels/<ch>/messages        -> 200 {"id":"m<n>","channel":..}
 *     PATCH /channels/<ch>/messages/<id>   -> 200 {"id":"<id>",...}
 * within a per-channel token bucket (default 1 message/s, burst 3); beyond
 * it answers 429 with Retry-After (fractional seconds) and a body
 * {"error":"rate_limited","retry_after":s}. Every answer takes `latency_ms`
 * (default 20). Every request is recorded (time, method, channel, status,
 * X-Dedup-Key, body) so tests can check timing and count duplicates.
 * Failure modes for the next N requests (or until changed): answer 500,
 * answer garbage (200 without JSON), drop the connection, hang until
 * changed or stopped, answer 400 {"error":"invalid_payload"}. A channel
 * can be made unknown (404 {"error":"channel_not_found"}).
 *
 * Threads: the server runs its own threads (one per connection); every
 * function here is safe from any thread. Returned JSON is new.
 *
 * Built with -DFAKE_PLATFORM_MAIN it is also a standalone program
 * (bench/): fake-platform [--port N] [--rate R] [--burst B] [--unlimited]
 * [--latency-ms MS] (--delay-ms is the same), with GET /_stats, GET /_messages, POST /_reset and
 * POST /_mode?mode=500|garbage|drop|hang|reject|normal&count=N.
 */
#ifndef IM_FAKE_PLATFORM_H
#define IM_FAKE_PLATFORM_H

#include <stdbool.h>

#include <jansson.h>

typedef struct fake_platform fake_platform;

typedef enum fp_mode {
	FPM_NORMAL = 0,
	FPM_500 = 1,
	FPM_GARBAGE = 2,
	FPM_DROP = 3,
	FPM_HANG = 4,
	FPM_REJECT = 5,
	/* 429 {"global":true} with Retry-After 1 s: an instance-wide limit
	 * (Discord's X-RateLimit-Global). */
	FPM_GLOBAL_429 = 6,
} fp_mode;

typedef struct fp_opts {
	unsigned port;	     /* 0: any free port */
	double rate;	     /* per channel, messages/s; 0 = 1 */
	double burst;	     /* 0 = 3 */
	unsigned latency_ms; /* answer delay; 0 = none */
	bool unlimited;	     /* no rate limit: rate and burst unused */
} fp_opts;

fake_platform *fp_start(const fp_opts *o);
void fp_stop(fake_platform *fp);
unsigned fp_port(const fake_platform *fp);
/* "http://127.0.0.1:<port>" */
const char *fp_url(const fake_platform *fp);

/* `count` requests in `mode`, then normal again; count < 0: until changed. */
void fp_set_mode(fake_platform *fp, fp_mode mode, int count);
void fp_set_latency(fake_platform *fp, unsigned ms);
void fp_set_limits(fake_platform *fp, double rate, double burst);
/* Requests to this channel answer 404 channel_not_found (NULL: none). */
void fp_set_unknown_channel(fake_platform *fp, const char *channel);
/* Forgets everything recorded (and refills the buckets). */
void fp_reset(fake_platform *fp);

/* [{t (unix s), method, channel, id, status, dedup, retry_after, body}];
 * signed requests (X-Im-Signature) also carry signature, timestamp and
 * raw (the body as sent). */
json_t *fp_requests(fake_platform *fp);
/* Accepted messages only (status 200), same shape. */
json_t *fp_messages(fake_platform *fp);
/* {requests, accepted, rate_limited, errors, duplicates, first_t,
 *  last_t, channels} ; duplicates counts accepted POSTs whose dedup key
 * was accepted before. */
json_t *fp_stats(fake_platform *fp);

#endif
