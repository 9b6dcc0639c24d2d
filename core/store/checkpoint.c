/*
 * core/store/checkpoint.c - see checkpoint.h.
 */
#include "checkpoint.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "writer.h"

/* SQLite's own threshold (pages in the WAL). */
#define CKPT_PAGES 1000
/* The thread fell this far behind (a reader holds an old snapshot, the
 * disk is slow): the commit checkpoints itself, as SQLite would, so the
 * WAL stays bounded. */
#define CKPT_INLINE_PAGES (16 * CKPT_PAGES)

struct im_ckpt {
	sqlite3 *wdb;
	char *path;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool due, stopping;
	long runs;
	pthread_t thread;
};

/* After every commit of the write connection, with its mutex held. */
static int on_wal(void *ud, sqlite3 *db, const char *name, int pages)
{
	im_ckpt *c = ud;
	if (pages >= CKPT_INLINE_PAGES) {
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE,
					  NULL, NULL);
		return SQLITE_OK;
	}
	if (pages >= CKPT_PAGES) {
		pthread_mutex_lock(&c->mu);
		if (!c->due) {
			c->due = true;
			pthread_cond_signal(&c->cv);
		}
		pthread_mutex_unlock(&c->mu);
	}
	return SQLITE_OK;
}

static sqlite3 *open_conn(const char *path)
{
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) !=
		SQLITE_OK) {
		LOG_WARN("store", "checkpoint connection: %s",
			 db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close_v2(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 1000);
	return db;
}

static void *ckpt_main(void *arg)
{
	im_ckpt *c = arg;
	sqlite3 *db = NULL;
	pthread_setname_np(pthread_self(), "im-checkpoint");
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->due && !c->stopping)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->stopping)
			break;
		c->due = false;
		pthread_mutex_unlock(&c->mu);
		if (!db)
			db = open_conn(c->path);
		int log = 0, done = 0;
		int rc = db ? sqlite3_wal_checkpoint_v2(
				  db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
				  &done)
			    : SQLITE_CANTOPEN;
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			LOG_WARN("store", "checkpoint: %s",
				 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		pthread_mutex_lock(&c->mu);
		c->runs++;
	}
	pthread_mutex_unlock(&c->mu);
	sqlite3_close_v2(db);
	return NULL;
}

im_ckpt *im_ckpt_start(sqlite3 *wdb, const char *path)
{
	im_ckpt *c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(path))) {
		free(c);
		return NULL;
	}
	c->wdb = wdb;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (im_store_thread(&c->thread, ckpt_main, c) != 0) {
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		free(c->path);
		free(c);
		return NULL;
	}
	/* Replaces SQLite's autocheckpoint hook of this connection. */
	sqlite3_wal_hook(wdb, on_wal, c);
	return c;
}

void im_ckpt_stop(im_ckpt *c)
{
	if (!c)
		return;
	/* Back to SQLite's own before the thread goes. */
	sqlite3_wal_autocheckpoint(c->wdb, CKPT_PAGES);
	pthread_mutex_lock(&c->mu);
	c->stopping = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c->path);
	free(c);
}

long im_ckpt_count(im_ckpt *c)
{
	if (!c)
		return 0;
	pthread_mutex_lock(&c->mu);
	long n = c->runs;
	pthread_mutex_unlock(&c->mu);
	return n;
}
