/* Recently seen event ids, bounded: two generations of an open-addressing
 * set of 64-bit hashes. When the current one is full it becomes the
 * previous one and the old previous one is dropped, so memory stays fixed
 * and an id is remembered for at least `per_gen` later ids (Slack retries
 * an event three times within about half an hour). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "slack.h"

struct slk_dedup {
	pthread_mutex_t mu;
	size_t per_gen, slots; /* slots = 2 x per_gen, a power of two */
	uint64_t *cur, *prev;  /* 0 = empty slot */
	size_t n_cur;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h ? h : 1;
}

slk_dedup *slk_dedup_new(size_t per_gen)
{
	slk_dedup *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->slots = 16;
	while (d->slots < 2 * per_gen)
		d->slots <<= 1;
	d->per_gen = per_gen;
	d->cur = calloc(d->slots, sizeof(uint64_t));
	d->prev = calloc(d->slots, sizeof(uint64_t));
	if (!d->cur || !d->prev) {
		slk_dedup_free(d);
		return NULL;
	}
	pthread_mutex_init(&d->mu, NULL);
	return d;
}

void slk_dedup_free(slk_dedup *d)
{
	if (!d)
		return;
	if (d->cur && d->prev)
		pthread_mutex_destroy(&d->mu);
	free(d->cur);
	free(d->prev);
	free(d);
}

/* The slot holding h, or the empty slot where it would go. */
static size_t probe(const uint64_t *set, size_t slots, uint64_t h)
{
	size_t i = (size_t)h & (slots - 1);
	while (set[i] && set[i] != h)
		i = (i + 1) & (slots - 1);
	return i;
}

bool slk_dedup_seen(slk_dedup *d, const char *id)
{
	if (!d || !id || !*id)
		return false;
	uint64_t h = hash(id);
	pthread_mutex_lock(&d->mu);
	bool seen = d->cur[probe(d->cur, d->slots, h)] == h ||
		    d->prev[probe(d->prev, d->slots, h)] == h;
	if (!seen) {
		if (d->n_cur >= d->per_gen) {
			uint64_t *t = d->prev;
			d->prev = d->cur;
			d->cur = t;
			memset(d->cur, 0, d->slots * sizeof(uint64_t));
			d->n_cur = 0;
		}
		d->cur[probe(d->cur, d->slots, h)] = h;
		d->n_cur++;
	}
	pthread_mutex_unlock(&d->mu);
	return seen;
}
