/* A small cache of incident rows by number for the reads that look one
 * incident up (a chat command's status, GET /api/v1/incidents/{id}): it
 * saves them a read transaction, which on that path is most of the work
 * (a WAL read lock taken and dropped with fcntl, a stat, the B-tree).
 *
 * It needs no lock held across a database read. The writer notes each
 * incident it writes (row_save) and forgets them once the transaction
 * has ended, before anybody is answered (the repo's done); each forget
 * moves a generation. A reader stores what it read only when no forget
 * came between the moment it began and the moment it stores. So once a
 * write is answered, no read returns the row from before it (a row read
 * before the commit and stored before the forget is what the forget
 * removes; stored after it, the generation refuses it).
 * Direct-mapped, CACHE_SLOTS rows per process, keyed by store (its
 * serial: a store opened later never matches) and number. */
#include <pthread.h>

#include "incident/internal.h"

#define CACHE_SLOTS 1024

typedef struct slot {
	unsigned long long store; /* 0: empty */
	inc_row row;
} slot;

static slot slots[CACHE_SLOTS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long gen; /* atomic */

/* Numbers the writer thread changed in its open transaction (a batch of
 * up to 256 writes; more and the whole cache is forgotten instead). */
#define TOUCHED_MAX 512
static _Thread_local long long touched[TOUCHED_MAX];
static _Thread_local size_t n_touched;
static _Thread_local bool lost; /* one could not be noted: forget all */

static slot *slot_of(long long num)
{
	return &slots[(unsigned long long)num % CACHE_SLOTS];
}

unsigned long inc_cache_gen(void)
{
	return __atomic_load_n(&gen, __ATOMIC_ACQUIRE);
}

json_t *inc_cache_json(unsigned long long store, long long num)
{
	slot *s = slot_of(num);
	pthread_mutex_lock(&mu);
	json_t *inc = s->store == store && s->row.num == num
			  ? row_json(&s->row)
			  : NULL;
	pthread_mutex_unlock(&mu);
	return inc;
}

void inc_cache_put(unsigned long long store, unsigned long since, inc_row *r)
{
	slot *s = slot_of(r->num);
	pthread_mutex_lock(&mu);
	if (store && __atomic_load_n(&gen, __ATOMIC_ACQUIRE) == since) {
		row_free(&s->row);
		s->store = store;
		s->row = *r;
		*r = (inc_row){0};
	}
	pthread_mutex_unlock(&mu);
	row_free(r);
}

static void forget(long long num)
{
	slot *s = slot_of(num);
	pthread_mutex_lock(&mu);
	__atomic_add_fetch(&gen, 1, __ATOMIC_RELEASE);
	if (s->store && s->row.num == num) {
		row_free(&s->row);
		s->store = 0;
	}
	pthread_mutex_unlock(&mu);
}

void inc_cache_written(long long num)
{
	if (n_touched == TOUCHED_MAX)
		lost = true;
	else
		touched[n_touched++] = num;
}

void inc_cache_committed(void)
{
	for (size_t i = 0; i < n_touched; i++)
		forget(touched[i]);
	n_touched = 0;
	if (lost) {
		pthread_mutex_lock(&mu);
		__atomic_add_fetch(&gen, 1, __ATOMIC_RELEASE);
		for (size_t i = 0; i < CACHE_SLOTS; i++) {
			row_free(&slots[i].row);
			slots[i].store = 0;
		}
		pthread_mutex_unlock(&mu);
		lost = false;
	}
}
