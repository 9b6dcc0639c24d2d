/*
 * core/store - the SQLite database: opening, WAL, migrations, and a small
 * key-value table for plugins.
 *
 * Contract: one im_store per process, shared by all threads. It holds one
 * write connection guarded by a mutex (im_store_lock/unlock around any
 * statement sequence on im_store_db) and opens the file in WAL mode with
 * synchronous=FULL (every commit is on disk before it returns, so a power
 * cut loses nothing acknowledged), foreign_keys=ON and a busy timeout, so
 * readers in other processes (the CLI) never block writers for long.
 * Frequent writes go through the group writer (im_store_submit/write):
 * one thread commits what many threads queued in one transaction, so one
 * fsync covers a whole batch.
 * Migrations are an ordered list of SQL scripts; schema_migrations records
 * each applied version; each runs in its own transaction, and a failed one
 * leaves the database at the version before it. Later issues append
 * migrations to core/store/migrations.c, never edit applied ones.
 */
#ifndef IM_CORE_STORE_H
#define IM_CORE_STORE_H

#include <stddef.h>

#include <sqlite3.h>

typedef struct im_store im_store;

/* Opens (creating the file and its parent folders, mode 0700 for folders)
 * and migrates to the latest version. NULL on error with the reason in err,
 * naming the path. ":memory:" is accepted for tests. */
im_store *im_store_open(const char *path, char *err, size_t errlen);
void im_store_close(im_store *st);

/* Highest applied migration version. */
int im_store_version(im_store *st);
/* Number of migrations the binary knows. */
int im_store_latest_version(void);

/* The shared connection; hold the lock while using it. */
sqlite3 *im_store_db(im_store *st);
/* A number no other store of this process had or will have (caches key
 * their entries with it). */
unsigned long long im_store_serial(const im_store *st);
void im_store_lock(im_store *st);
void im_store_unlock(im_store *st);

/* A read-only connection for one sequence of SELECTs, from a small pool,
 * so reads run in parallel with each other and with the writer (WAL).
 * Give it back with im_store_read_end on the same thread. It sees every
 * transaction committed before read_begin. */
sqlite3 *im_store_read_begin(im_store *st);
void im_store_read_end(im_store *st, sqlite3 *db);
/* A prepared statement for `sql` on `db` (a connection the caller holds),
 * prepared once per connection and reused: parsing SQL is most of the cost
 * of a one-row read. Bind, step, then give it back with im_store_stmt_done
 * (reset and unbound) before the connection is released; never finalize
 * it (the store does, when it closes). NULL when it cannot be prepared. */
sqlite3_stmt *im_store_stmt(sqlite3 *db, const char *sql);
void im_store_stmt_done(sqlite3_stmt *st);

/* --- group commit (writer.c) ------------------------------------------ */

/* apply() runs on the writer thread inside the batch's transaction, in a
 * savepoint of its own, with the store lock held: it reads and writes
 * through `db` and never takes the store lock or waits. A non-zero return
 * undoes this job's changes only (the rest of the batch commits) and is
 * the job's result. */
typedef int (*im_store_apply_fn)(sqlite3 *db, void *ud);
/* done() runs on the writer thread once the batch is on disk (rc 0) or
 * has failed (apply's error, or IM_EIO when the commit failed and nothing
 * of the batch was kept), in submit order, after the store lock is
 * released: it may publish and signal, never block or write the store
 * synchronously. May be NULL. */
typedef void (*im_store_done_fn)(void *ud, int rc);

/* Queues a job and returns at once: 0, or IM_ENOMEM, or IM_ECONFLICT
 * after im_store_close began (done() is not called then). */
int im_store_submit(im_store *st, im_store_apply_fn apply,
		    im_store_done_fn done, void *ud);
/* Queues a job and waits until its batch is durable: the job's result.
 * Called on the writer thread itself (from a done()), it runs the job at
 * once in a transaction of its own. */
int im_store_write(im_store *st, im_store_apply_fn apply,
		   im_store_done_fn done, void *ud);

/* Process-wide, set once at start-up (NULL for none): run on the writer
 * thread before and after the done() calls of each batch. The server
 * holds the event bus's wake-ups there (im_bus_hold/release). */
typedef void (*im_store_batch_fn)(void);
void im_store_set_batch_hooks(im_store_batch_fn before_done,
			      im_store_batch_fn after_done);

typedef struct im_store_writer_stats {
	long long batches;  /* transactions committed or failed */
	long long jobs;     /* jobs run */
	long long max_batch;
} im_store_writer_stats;
void im_store_writer_stats_get(im_store *st, im_store_writer_stats *out);

/* Key-value table, namespaced (a plugin instance uses its id). Values are
 * opaque bytes. get: *val is malloc'd (caller frees), IM_ENOTFOUND when
 * absent. */
int im_store_kv_put(im_store *st, const char *ns, const char *key,
		    const void *val, size_t len);
int im_store_kv_get(im_store *st, const char *ns, const char *key,
		    void **val, size_t *len);
int im_store_kv_del(im_store *st, const char *ns, const char *key);

/* For tests only: like im_store_open() but applies the given migrations
 * (struct im_migration from core/store/migrations.h; versions strictly
 * increasing from 1) instead of the binary's list. */
struct im_migration;
im_store *im_store_open_with(const char *path,
			     const struct im_migration *migrations, size_t n,
			     char *err, size_t errlen);

#endif
