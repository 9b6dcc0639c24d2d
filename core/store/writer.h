/*
 * core/store/writer - group commit: one thread commits the jobs many
 * threads queued, a batch per transaction (store.h has the contract).
 * Private to core/store.
 */
#ifndef IM_CORE_STORE_WRITER_H
#define IM_CORE_STORE_WRITER_H

#include <stdbool.h>

#include "store.h"

typedef struct im_writer im_writer;

im_writer *im_writer_new(im_store *st);
/* Commits what is queued, stops the thread and frees. */
void im_writer_free(im_writer *w);
int im_writer_submit(im_writer *w, im_store_apply_fn apply,
		     im_store_done_fn done, void *ud, bool wait);
void im_writer_stats(im_writer *w, im_store_writer_stats *out);

#endif
