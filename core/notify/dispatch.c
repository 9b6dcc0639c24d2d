/* The dispatcher: one thread that claims outbox rows, keeps them in lanes
 * (one per instance and channel), and hands sends to the delivery pool
 * when a lane's window, blocks and token buckets allow. It owns every lane,
 * bucket and in-memory row, so none of them needs a lock; other threads
 * reach it only through the wake eventfd and the pool's completion list.
 *
 * Memory stays bounded with a deep backlog: at most NORMAL_HELD batched
 * rows are claimed at a time (the rest wait in the store), while critical
 * rows are always claimed first, so they never queue behind the backlog. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bus/bus.h"
#include "log/log.h"
#include "notify/internal.h"

#define NORMAL_HELD 4096 /* batched rows held in memory at most */
#define CRIT_HELD 16384	 /* critical rows held in memory at most */
#define CLAIM_BATCH 1024 /* rows per claim statement */
#define LEASE_MS 60000	 /* a claim lasts this long unless renewed */
#define RENEW_MS 15000
#define FULL_CLAIM_S 1.0 /* also look for rows whose wait ran out */
#define COUNTS_S 2.0	 /* queue-depth gauges */
#define SWEEP_S 10.0	 /* forget idle lanes */

typedef struct nt_inst {
	struct nt_inst *next;
	char *id;
	double per_channel, burst, global;
	nt_bucket bucket;     /* the instance-wide budget */
	double blocked_until; /* a global rate limit from the platform */
} nt_inst;

static struct {
	im_store *st;
	const char *owner;
	int wake_fd;
	pthread_t thread;
	bool running;
	int stop;     /* atomic: set by the control thread */
	int reconfig; /* atomic: set by any thread */
	int new_rows; /* set by other threads: claim on the next tick */
	int all_rows; /* set by other threads: a full claim on the next tick */
	long long claimed_max[2]; /* highest id claimed: [critical] */
	nt_lane **table;
	size_t n_table, n_lanes;
	nt_lane **heap;
	size_t n_heap, cap_heap;
	nt_inst *insts;
	size_t held_crit, held_norm;
	nt_settings set;
	long long next_renew_ms;
	double next_full, next_counts, next_sweep;
} D;

/* --- lanes: hash table --------------------------------------------------- */

static size_t hash2(const char *a, const char *b)
{
	size_t h = 1469598103934665603ull;
	for (; *a; a++)
		h = (h ^ (unsigned char)*a) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (; *b; b++)
		h = (h ^ (unsigned char)*b) * 1099511628211ull;
	return h;
}

static int grow_table(void)
{
	size_t n = D.n_table ? D.n_table * 2 : 256;
	nt_lane **t = calloc(n, sizeof(*t));
	if (!t)
		return IM_ENOMEM;
	for (size_t i = 0; i < D.n_table; i++)
		for (nt_lane *l = D.table[i], *next; l; l = next) {
			next = l->hnext;
			size_t k = hash2(l->instance, l->channel) & (n - 1);
			l->hnext = t[k];
			t[k] = l;
		}
	free(D.table);
	D.table = t;
	D.n_table = n;
	return 0;
}

static nt_inst *get_inst(const char *id)
{
	for (nt_inst *in = D.insts; in; in = in->next)
		if (!strcmp(in->id, id))
			return in;
	nt_inst *in = calloc(1, sizeof(*in));
	if (!in || !(in->id = strdup(id))) {
		free(in);
		return NULL;
	}
	im_snapshot *s = im_registry_acquire();
	const im_connector *c = im_instance_connector(im_snapshot_find(s, id));
	nt_settings_rates(id, c, &in->per_channel, &in->burst, &in->global);
	im_registry_release(s);
	nt_bucket_init(&in->bucket, in->global, in->global, im_mono_s());
	in->next = D.insts;
	D.insts = in;
	return in;
}

static nt_lane *get_lane(const char *instance, const char *channel)
{
	if (D.n_lanes >= D.n_table && grow_table() != 0 && !D.n_table)
		return NULL;
	size_t k = hash2(instance, channel) & (D.n_table - 1);
	for (nt_lane *l = D.table[k]; l; l = l->hnext)
		if (!strcmp(l->instance, instance) &&
		    !strcmp(l->channel, channel))
			return l;
	nt_lane *l = calloc(1, sizeof(*l));
	nt_inst *in = get_inst(instance);
	if (!l || !in || !(l->instance = strdup(instance)) ||
	    !(l->channel = strdup(channel))) {
		if (l)
			free(l->instance);
		free(l);
		return NULL;
	}
	nt_lane_init(l);
	l->inst = in;
	nt_bucket_init(&l->bucket, in->per_channel, in->burst, im_mono_s());
	l->hnext = D.table[k];
	D.table[k] = l;
	D.n_lanes++;
	return l;
}

/* --- lanes: timer heap (min on due) -------------------------------------- */

static void heap_swap(size_t a, size_t b)
{
	nt_lane *t = D.heap[a];
	D.heap[a] = D.heap[b];
	D.heap[b] = t;
	D.heap[a]->heap_pos = a + 1;
	D.heap[b]->heap_pos = b + 1;
}

static void heap_fix(size_t i)
{
	while (i > 0 && D.heap[(i - 1) / 2]->due > D.heap[i]->due) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < D.n_heap && D.heap[l]->due < D.heap[m]->due)
			m = l;
		if (r < D.n_heap && D.heap[r]->due < D.heap[m]->due)
			m = r;
		if (m == i)
			return;
		heap_swap(i, m);
		i = m;
	}
}

static void unschedule(nt_lane *l)
{
	if (!l->heap_pos)
		return;
	size_t i = l->heap_pos - 1;
	l->heap_pos = 0;
	l->due = 0;
	if (--D.n_heap == i)
		return;
	D.heap[i] = D.heap[D.n_heap];
	D.heap[i]->heap_pos = i + 1;
	heap_fix(i);
}

static void schedule(nt_lane *l, double due)
{
	if (l->heap_pos) {
		l->due = due;
		heap_fix(l->heap_pos - 1);
		return;
	}
	if (D.n_heap == D.cap_heap) {
		size_t cap = D.cap_heap ? D.cap_heap * 2 : 256;
		nt_lane **h = realloc(D.heap, cap * sizeof(*h));
		if (!h)
			return; /* looked at again on the next full claim */
		D.heap = h;
		D.cap_heap = cap;
	}
	l->due = due;
	D.heap[D.n_heap] = l;
	l->heap_pos = ++D.n_heap;
	heap_fix(D.n_heap - 1);
}

/* --- moving lanes along -------------------------------------------------- */

static double max3(double a, double b, double c)
{
	return a > b ? (a > c ? a : c) : (b > c ? b : c);
}

/* Starts the lane's next send if its window, blocks and budgets allow;
 * otherwise arms its timer for when they might. */
static void consider(nt_lane *l, double now, long long wall)
{
	double due;
	nt_next n = nt_lane_next(l, now, wall, D.set.batch_window,
				 (size_t)D.set.digest_max, &due);
	if (n == NT_IDLE) {
		unschedule(l);
		return;
	}
	if (n == NT_WAIT) {
		schedule(l, due);
		return;
	}
	nt_inst *in = l->inst;
	double w =
	    max3(nt_bucket_wait(&l->bucket, now),
		 nt_bucket_wait(&in->bucket, now), in->blocked_until - now);
	if (w > 0) {
		schedule(l, now + w + 0.001);
		return;
	}
	nt_job *job = calloc(1, sizeof(*job));
	if (!job) {
		schedule(l, now + 0.1);
		return;
	}
	unschedule(l);
	nt_bucket_take(&l->bucket, now);
	nt_bucket_take(&in->bucket, now);
	job->lane = l;
	job->n = nt_lane_take(l, (size_t)D.set.digest_max);
	job->rows = l->inflight;
	job->digest = job->n > 1;
	nt_pool_push(job, l->inflight_crit);
}

static void complete(nt_job *job, double now, long long wall)
{
	nt_lane *l = job->lane;
	nt_inst *in = l->inst;
	/* Only the lane's bucket: with one send in flight, counting its
	 * token as spent at the answer is the exact worst case. The
	 * instance's bucket is shared by many sends at once. */
	nt_bucket_anchor(&l->bucket, job->finished);
	bool requeue = job->verdict == IM_SEND_RETRY ||
		       job->verdict == IM_SEND_RATE_LIMITED;
	if (!requeue) {
		if (l->inflight_crit)
			D.held_crit -= l->n_inflight;
		else
			D.held_norm -= l->n_inflight;
	}
	nt_lane_finish(l, requeue);
	if (requeue) {
		/* Nothing more goes to this channel (or, for a global limit,
		 * this instance) until the platform's wait is over. */
		double until = job->finished + job->wait_s;
		if (job->verdict == IM_SEND_RATE_LIMITED && job->global) {
			in->blocked_until = until;
			nt_bucket_block(&in->bucket, until);
		} else {
			l->blocked_until = until;
			if (job->verdict == IM_SEND_RATE_LIMITED)
				nt_bucket_block(&l->bucket, until);
		}
	}
	free(job);
	consider(l, now, wall);
}

static int on_claim(void *ud, nt_row *r, const char *instance,
		    const char *channel)
{
	nt_lane *l = instance && channel ? get_lane(instance, channel) : NULL;
	if (!l) {
		free(r); /* given back; claimed again later */
		return IM_ENOMEM;
	}
	nt_lane_push(l, r);
	if (r->critical)
		D.held_crit++;
	else
		D.held_norm++;
	/* Lanes touched by this claim are looked at right after it. */
	if (!l->inflight)
		schedule(l, 0);
	return 0;
}

/* A full claim looks at every row; otherwise only at rows above the
 * highest id claimed so far: new rows (ids only grow), without stepping
 * over the ones we hold. Rows below it that become claimable (a lease that
 * ran out, a row given back, a retried dead letter) wait for the next full
 * claim (every FULL_CLAIM_S, or at once after nt_dispatch_poke_all). */
static void claim(long long wall, bool full)
{
	for (int crit = 1; crit >= 0; crit--) {
		size_t held = crit ? D.held_crit : D.held_norm;
		size_t cap = crit ? CRIT_HELD : NORMAL_HELD;
		nt_claim_req req = {.owner = D.owner,
				    .critical = crit,
				    .now_ms = wall,
				    .lease_until = wall + LEASE_MS};
		long long *max = &D.claimed_max[crit];
		if (!full)
			req.after = *max;
		while (held < cap) {
			size_t room = cap - held;
			req.limit = room < CLAIM_BATCH ? (int)room : CLAIM_BATCH;
			long long top = req.after;
			int n = nt_lease_claim(D.st, &req, on_claim, NULL, &top);
			if (top > *max)
				*max = top;
			if (n <= 0 || n < req.limit)
				break;
			req.after = top;
			held = crit ? D.held_crit : D.held_norm;
		}
	}
}

static void refresh_rates(void)
{
	nt_settings_clear(&D.set);
	nt_settings_get(&D.set);
	double now = im_mono_s();
	for (nt_inst *in = D.insts; in; in = in->next) {
		im_snapshot *s = im_registry_acquire();
		const im_connector *c =
		    im_instance_connector(im_snapshot_find(s, in->id));
		nt_settings_rates(in->id, c, &in->per_channel, &in->burst,
				  &in->global);
		im_registry_release(s);
		nt_bucket_set(&in->bucket, in->global, in->global, now);
	}
	for (size_t i = 0; i < D.n_table; i++)
		for (nt_lane *l = D.table[i]; l; l = l->hnext) {
			nt_bucket_set(&l->bucket, l->inst->per_channel,
				      l->inst->burst, now);
			schedule(l, 0); /* the window may have changed */
		}
}

/* Drops lanes with nothing to do whose bucket has refilled: a lane's only
 * memory is its bucket, and a full bucket is what a new lane starts with. */
static void sweep(double now)
{
	for (size_t i = 0; i < D.n_table; i++)
		for (nt_lane **p = &D.table[i]; *p;) {
			nt_lane *l = *p;
			if (nt_lane_empty(l) && !l->heap_pos &&
			    l->blocked_until < now &&
			    nt_bucket_wait(&l->bucket, now) == 0 &&
			    (l->bucket.rate <= 0 ||
			     l->bucket.tokens >= l->bucket.burst)) {
				*p = l->hnext;
				free(l->instance);
				free(l->channel);
				free(l);
				D.n_lanes--;
			} else {
				p = &l->hnext;
			}
		}
}

static int timeout_ms(double now)
{
	double next = D.next_full;
	if (D.n_heap && D.heap[0]->due < next)
		next = D.heap[0]->due;
	if (D.next_counts < next)
		next = D.next_counts;
	double ms = (next - now) * 1000;
	return ms <= 0 ? 0 : ms > 1000 ? 1000 : (int)ms + 1;
}

static void tick(void)
{
	bool woken = __atomic_exchange_n(&D.new_rows, 0, __ATOMIC_ACQ_REL);
	bool all = __atomic_exchange_n(&D.all_rows, 0, __ATOMIC_ACQ_REL);
	double now = im_mono_s();
	long long wall = nt_wall_ms();
	for (nt_job *j = nt_pool_done(), *next; j; j = next) {
		next = j->next;
		complete(j, now, wall);
	}
	if (__atomic_exchange_n(&D.reconfig, 0, __ATOMIC_ACQ_REL))
		refresh_rates();
	if (wall >= D.next_renew_ms) {
		nt_outbox_renew(D.st, D.owner, wall + LEASE_MS);
		D.next_renew_ms = wall + RENEW_MS;
	}
	if (woken || all || now >= D.next_full) {
		bool full = all || now >= D.next_full;
		claim(wall, full);
		if (full)
			D.next_full = now + FULL_CLAIM_S;
	}
	if (now >= D.next_counts) {
		json_t *c = nt_outbox_counts(D.st);
		nt_metrics_depth(c);
		json_decref(c);
		D.next_counts = now + COUNTS_S;
		nt_pool_check_stuck();
	}
	if (now >= D.next_sweep) {
		sweep(now);
		D.next_sweep = now + SWEEP_S;
	}
	while (D.n_heap && D.heap[0]->due <= now) {
		nt_lane *l = D.heap[0];
		unschedule(l);
		consider(l, now, wall);
	}
}

static void *run(void *arg)
{
	struct pollfd p = {.fd = D.wake_fd, .events = POLLIN};
	D.new_rows = 1;
	tick();
	while (!__atomic_load_n(&D.stop, __ATOMIC_ACQUIRE)) {
		int n = poll(&p, 1, timeout_ms(im_mono_s()));
		if (n > 0 && (p.revents & POLLIN)) {
			uint64_t v;
			if (read(D.wake_fd, &v, sizeof(v)) < 0)
				(void)0; /* nothing to read: a spurious wake */
		}
		if (!__atomic_load_n(&D.stop, __ATOMIC_ACQUIRE))
			tick();
	}
	return NULL;
}

void nt_dispatch_wake(void)
{
	uint64_t one = 1;
	if (D.wake_fd > 0 && write(D.wake_fd, &one, sizeof(one)) < 0)
		(void)0; /* the counter is full: a wake is pending anyway */
}

/* New rows may be in the outbox (a commit, a retried dead letter). */
void nt_dispatch_poke(void)
{
	__atomic_store_n(&D.new_rows, 1, __ATOMIC_RELEASE);
	nt_dispatch_wake();
}

/* Rows below the ones claimed may be claimable again (a dead letter put
 * back in the queue). */
void nt_dispatch_poke_all(void)
{
	__atomic_store_n(&D.all_rows, 1, __ATOMIC_RELEASE);
	nt_dispatch_wake();
}

static void on_publish(void *ud)
{
	if (nt_outbox_take_added())
		nt_dispatch_poke();
}

static im_bus_watch *watch;

int nt_dispatch_start(im_store *st, const char *owner)
{
	memset(&D, 0, sizeof(D));
	D.st = st;
	D.owner = owner;
	D.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (D.wake_fd < 0)
		return IM_EIO;
	nt_settings_get(&D.set);
	if (nt_pool_start(D.set.workers, D.wake_fd) != 0) {
		close(D.wake_fd);
		return IM_ENOMEM;
	}
	watch = im_bus_watch_add(on_publish, NULL);
	if (pthread_create(&D.thread, NULL, run, NULL) != 0) {
		im_bus_watch_remove(watch);
		nt_pool_stop();
		close(D.wake_fd);
		return IM_ENOMEM;
	}
	D.running = true;
	return 0;
}

void nt_dispatch_reconfig(void)
{
	__atomic_store_n(&D.reconfig, 1, __ATOMIC_RELEASE);
	nt_dispatch_wake();
}

void nt_dispatch_stop(void)
{
	if (!D.running)
		return;
	im_bus_watch_remove(watch);
	watch = NULL;
	__atomic_store_n(&D.stop, 1, __ATOMIC_RELEASE);
	nt_dispatch_wake();
	pthread_join(D.thread, NULL);
	/* Sends in progress finish (bounded by their HTTP timeouts); queued
	 * ones are dropped here and their rows reclaimed at the next start. */
	nt_pool_stop();
	for (nt_job *j = nt_pool_done(), *next; j; j = next) {
		next = j->next;
		free(j);
	}
	for (size_t i = 0; i < D.n_table; i++)
		for (nt_lane *l = D.table[i], *next; l; l = next) {
			next = l->hnext;
			nt_lane_free_rows(l);
			free(l->instance);
			free(l->channel);
			free(l);
		}
	for (nt_inst *in = D.insts, *next; in; in = next) {
		next = in->next;
		free(in->id);
		free(in);
	}
	free(D.table);
	free(D.heap);
	nt_settings_clear(&D.set);
	close(D.wake_fd);
	D.wake_fd = -1;
	D.running = false;
}
