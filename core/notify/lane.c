/* One lane per (connector instance, channel): the order in which its rows
 * go out. Critical rows skip the batch window and go one by one before
 * anything batched; the others wait until the window of the oldest one
 * closes and then go together (a digest when there are several). One send
 * at a time per lane keeps the channel's messages in commit order. */
#include <stdlib.h>

#include "notify/internal.h"

void nt_lane_init(nt_lane *l)
{
	l->crit = l->batch = l->inflight = NULL;
	l->crit_tail = &l->crit;
	l->batch_tail = &l->batch;
	l->n_crit = l->n_batch = l->n_inflight = 0;
}

void nt_lane_push(nt_lane *l, nt_row *r)
{
	r->next = NULL;
	if (r->critical) {
		*l->crit_tail = r;
		l->crit_tail = &r->next;
		l->n_crit++;
	} else {
		*l->batch_tail = r;
		l->batch_tail = &r->next;
		l->n_batch++;
	}
}

bool nt_lane_empty(const nt_lane *l)
{
	return !l->crit && !l->batch && !l->inflight;
}

nt_next nt_lane_next(const nt_lane *l, double now, long long now_wall_ms,
		     double window_s, size_t digest_max, double *due)
{
	if (l->inflight || (!l->crit && !l->batch))
		return NT_IDLE;
	double at = now;
	if (!l->crit) {
		/* The window counts from the oldest row's commit, so rows
		 * that waited in the store (a restart) are not held again.
		 * A full digest need not wait for more. */
		double age = (double)(now_wall_ms - l->batch->created_ms) / 1e3;
		if (l->n_batch < digest_max && age < window_s)
			at = now + (window_s - age);
	}
	if (l->blocked_until > at)
		at = l->blocked_until;
	*due = at;
	return at <= now ? NT_READY : NT_WAIT;
}

size_t nt_lane_take(nt_lane *l, size_t digest_max)
{
	nt_row **from = l->crit ? &l->crit : &l->batch;
	size_t n =
	    l->crit ? 1 : (l->n_batch < digest_max ? l->n_batch : digest_max);
	if (n == 0)
		n = 1;
	nt_row *first = *from, *last = first;
	for (size_t i = 1; i < n; i++)
		last = last->next;
	*from = last->next;
	last->next = NULL;
	if (from == &l->crit) {
		l->n_crit -= n;
		if (!l->crit)
			l->crit_tail = &l->crit;
		l->inflight_crit = true;
	} else {
		l->n_batch -= n;
		if (!l->batch)
			l->batch_tail = &l->batch;
		l->inflight_crit = false;
	}
	l->inflight = first;
	l->n_inflight = n;
	return n;
}

static void free_list(nt_row *r)
{
	while (r) {
		nt_row *next = r->next;
		free(r);
		r = next;
	}
}

void nt_lane_finish(nt_lane *l, bool requeue)
{
	nt_row *first = l->inflight;
	size_t n = l->n_inflight;
	l->inflight = NULL;
	l->n_inflight = 0;
	if (!first)
		return;
	if (!requeue) {
		free_list(first);
		return;
	}
	nt_row *last = first;
	while (last->next)
		last = last->next;
	/* Back at the head, ahead of rows that came in meanwhile. */
	if (l->inflight_crit) {
		last->next = l->crit;
		if (!l->crit)
			l->crit_tail = &last->next;
		l->crit = first;
		l->n_crit += n;
	} else {
		last->next = l->batch;
		if (!l->batch)
			l->batch_tail = &last->next;
		l->batch = first;
		l->n_batch += n;
	}
}

void nt_lane_free_rows(nt_lane *l)
{
	free_list(l->crit);
	free_list(l->batch);
	free_list(l->inflight);
	nt_lane_init(l);
}
