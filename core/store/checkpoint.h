/*
 * core/store/checkpoint - WAL checkpoints on a thread of their own.
 *
 * SQLite's default runs a checkpoint inside the COMMIT that pushes the
 * WAL past 1,000 pages: the group writer then copies pages and syncs the
 * database file while every caller of that batch waits. Here the commit
 * only signals, and a checkpointer thread with its own connection copies
 * the WAL into the database (PASSIVE: it never blocks the writer or the
 * readers). Private to core/store.
 */
#ifndef IM_CORE_STORE_CHECKPOINT_H
#define IM_CORE_STORE_CHECKPOINT_H

#include <sqlite3.h>

typedef struct im_ckpt im_ckpt;

/* Takes over the checkpoints of `db` (the write connection of the file
 * `path`): NULL when out of memory, and then SQLite's own stay. */
im_ckpt *im_ckpt_start(sqlite3 *db, const char *path);
/* Stops the thread (a checkpoint under way finishes first) and frees.
 * Call before the write connection closes. */
void im_ckpt_stop(im_ckpt *c);
/* Checkpoints run so far (tests). */
long im_ckpt_count(im_ckpt *c);

#endif
