/* The delivery threads (started on demand): they take jobs from two
 * queues (critical first), run them (render, send, queue the outcome) and
 * go on with the next; a job comes back on the completion list
 * (nt_pool_finish, from the store's writer once its outcome is on disk),
 * waking the dispatcher. A connector's send() blocks, possibly for long:
 * when a thread has been stuck in one send past the deadline, the pool
 * adds a thread (up to twice its size) so one hung platform cannot starve
 * the others. One mutex guards the queues and the thread table. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"
#include "notify/internal.h"

#define MAX_THREADS 512

typedef struct worker {
	pthread_t thread;
	double busy_since; /* 0 when idle */
} worker;

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping;
	nt_job *crit, **crit_tail, *norm, **norm_tail;
	nt_job *done, **done_tail;
	worker *w;
	int n, want, idle;
	int unfinished; /* taken by a thread, not yet finished */
	pthread_cond_t finished_cv;
	int wake_fd;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .cv = PTHREAD_COND_INITIALIZER,
       .finished_cv = PTHREAD_COND_INITIALIZER};

static nt_job *pop(void)
{
	nt_job *j = P.crit;
	if (j) {
		if (!(P.crit = j->next))
			P.crit_tail = &P.crit;
		return j;
	}
	if ((j = P.norm) && !(P.norm = j->next))
		P.norm_tail = &P.norm;
	return j;
}

/* jemalloc's control call, when the program links it (see meson.build's
 * allocator option); NULL with glibc's malloc. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp,
		   void *newp, size_t newlen) __attribute__((weak));

static void *run(void *arg)
{
	worker *me = arg;
	/* Delivery threads are many (32 by default) and mostly wait on the
	 * network: their own thread caches cost ~4.5 MB of peak RSS in
	 * bench/notify_fast.sh B (31 -> 26.7 MB) for no measurable speed. */
	bool off = false;
	if (mallctl)
		mallctl("thread.tcache.enabled", NULL, NULL, &off, sizeof(off));
	nt_outbox_events_keep(true);
	pthread_mutex_lock(&P.mu);
	while (!P.stopping) {
		nt_job *j = pop();
		if (!j) {
			P.idle++;
			pthread_cond_wait(&P.cv, &P.mu);
			P.idle--;
			continue;
		}
		me->busy_since = im_mono_s();
		P.unfinished++;
		pthread_mutex_unlock(&P.mu);
		nt_deliver(j); /* its nt_pool_finish may come later */
		pthread_mutex_lock(&P.mu);
		me->busy_since = 0;
	}
	pthread_mutex_unlock(&P.mu);
	nt_outbox_events_keep(false);
	return NULL;
}

/* With P.mu held. */
static int spawn(void)
{
	if (P.n >= MAX_THREADS)
		return IM_ENOMEM;
	worker *w = &P.w[P.n];
	w->busy_since = 0;
	if (pthread_create(&w->thread, NULL, run, w) != 0)
		return IM_ENOMEM;
	P.n++;
	return 0;
}

int nt_pool_start(int workers, int wake_fd)
{
	pthread_mutex_lock(&P.mu);
	P.stopping = false;
	P.crit = P.norm = P.done = NULL;
	P.crit_tail = &P.crit;
	P.norm_tail = &P.norm;
	P.done_tail = &P.done;
	P.wake_fd = wake_fd;
	P.want = workers;
	P.n = 0;
	P.idle = 0;
	P.unfinished = 0;
	/* Threads start on demand (nt_pool_push), up to `workers`: an idle
	 * server keeps none, and each costs stack and a malloc arena. */
	P.w = calloc(MAX_THREADS, sizeof(*P.w));
	int rc = P.w ? 0 : IM_ENOMEM;
	pthread_mutex_unlock(&P.mu);
	return rc;
}

void nt_pool_push(nt_job *job, bool critical)
{
	job->next = NULL;
	pthread_mutex_lock(&P.mu);
	if (critical) {
		*P.crit_tail = job;
		P.crit_tail = &job->next;
	} else {
		*P.norm_tail = job;
		P.norm_tail = &job->next;
	}
	if (P.idle == 0 && P.n < P.want && spawn() != 0 && P.n == 0)
		LOG_ERROR("notify", "cannot start a delivery thread");
	pthread_cond_signal(&P.cv);
	pthread_mutex_unlock(&P.mu);
}

void nt_pool_finish(nt_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&P.mu);
	*P.done_tail = job;
	P.done_tail = &job->next;
	if (--P.unfinished == 0)
		pthread_cond_broadcast(&P.finished_cv);
	uint64_t one = 1;
	if (write(P.wake_fd, &one, sizeof(one)) < 0)
		(void)0; /* a wake is pending already */
	pthread_mutex_unlock(&P.mu);
}

nt_job *nt_pool_done(void)
{
	pthread_mutex_lock(&P.mu);
	nt_job *j = P.done;
	P.done = NULL;
	P.done_tail = &P.done;
	pthread_mutex_unlock(&P.mu);
	return j;
}

void nt_pool_check_stuck(void)
{
	double now = im_mono_s();
	pthread_mutex_lock(&P.mu);
	int stuck = 0;
	for (int i = 0; i < P.n; i++)
		if (P.w[i].busy_since > 0 &&
		    now - P.w[i].busy_since > NT_SEND_DEADLINE_S)
			stuck++;
	/* Keep `want` threads that are not stuck, within twice the size. */
	int limit = P.want * 2 < MAX_THREADS ? P.want * 2 : MAX_THREADS;
	while (stuck > 0 && P.n - stuck < P.want && P.n < limit &&
	       spawn() == 0)
		LOG_WARN("notify",
			 "%d delivery thread(s) stuck in a send for over "
			 "%.0f s; added one (now %d)",
			 stuck, NT_SEND_DEADLINE_S, P.n);
	pthread_mutex_unlock(&P.mu);
}

void nt_pool_stop(void)
{
	pthread_mutex_lock(&P.mu);
	P.stopping = true;
	pthread_cond_broadcast(&P.cv);
	int n = P.n;
	pthread_mutex_unlock(&P.mu);
	for (int i = 0; i < n; i++)
		pthread_join(P.w[i].thread, NULL);
	pthread_mutex_lock(&P.mu);
	/* Outcomes still being recorded: the writer finishes them (before
	 * the store closes, which comes after this). */
	while (P.unfinished > 0)
		pthread_cond_wait(&P.finished_cv, &P.mu);
	for (nt_job *j = pop(), *next; j; j = next) {
		next = pop();
		free(j);
	}
	free(P.w);
	P.w = NULL;
	P.n = 0;
	pthread_mutex_unlock(&P.mu);
}
