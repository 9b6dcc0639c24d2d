/*
 * tests/unit/test_walbuf.c - core/store/walbuf: a store's WAL commit
 * reaches the file as one write, and what it wrote reads back the same
 * through other connections, with and without a sync at the commit, with
 * frames spilled and rewritten, and with commits larger than the buffer.
 *
 * A counting VFS is made the default before the store opens (each test
 * runs in a process of its own), so the store's VFS wraps it and every
 * write it passes on is seen here.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "../tmpdir.h"
#include "store/store.h"

static char dir[256], path[512];
static sqlite3_vfs *base, counting;
static int wal_writes, wal_syncs;

typedef struct cfile {
	sqlite3_file base;
	sqlite3_file *real;
	int wal;
} cfile;

#define REAL(f) (((cfile *)(f))->real)
static int c_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}
static int c_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int c_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	if (((cfile *)f)->wal)
		__atomic_add_fetch(&wal_writes, 1, __ATOMIC_RELAXED);
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int c_truncate(sqlite3_file *f, sqlite3_int64 s)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), s);
}
static int c_sync(sqlite3_file *f, int fl)
{
	if (((cfile *)f)->wal)
		__atomic_add_fetch(&wal_syncs, 1, __ATOMIC_RELAXED);
	return REAL(f)->pMethods->xSync(REAL(f), fl);
}
static int c_size(sqlite3_file *f, sqlite3_int64 *s)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), s);
}
static int c_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int c_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int c_reserved(sqlite3_file *f, int *o)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), o);
}
static int c_fcntl(sqlite3_file *f, int op, void *a)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, a);
}
static int c_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int c_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int c_shm_map(sqlite3_file *f, int p, int s, int e, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), p, s, e, pp);
}
static int c_shm_lock(sqlite3_file *f, int o, int n, int fl)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl);
}
static void c_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int c_shm_unmap(sqlite3_file *f, int d)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), d);
}
static const sqlite3_io_methods c_methods = {
    2,	       c_close,	     c_read,	  c_write,   c_truncate, c_sync,
    c_size,    c_lock,	     c_unlock,	  c_reserved, c_fcntl,	 c_sector,
    c_devchar, c_shm_map,    c_shm_lock, c_shm_barrier, c_shm_unmap, NULL,
    NULL};

static int c_open(sqlite3_vfs *v, const char *name, sqlite3_file *file,
		  int flags, int *out)
{
	(void)v;
	cfile *f = (cfile *)file;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	f->wal = (flags & SQLITE_OPEN_WAL) != 0;
	int rc = base->xOpen(base, name, f->real, flags, out);
	if (rc == SQLITE_OK)
		f->base.pMethods = &c_methods;
	return rc;
}

static void setup(void)
{
	cr_assert_not_null(tmpdir_make(dir, sizeof(dir), "im-test-walbuf"));
	snprintf(path, sizeof(path), "%s/im.db", dir);
	base = sqlite3_vfs_find(NULL);
	counting = *base;
	counting.zName = "counting";
	counting.pNext = NULL;
	counting.szOsFile = (int)sizeof(cfile) + base->szOsFile;
	counting.xOpen = c_open;
	cr_assert_eq(sqlite3_vfs_register(&counting, 1), SQLITE_OK);
}

static void teardown(void)
{
	tmpdir_remove(dir);
}

TestSuite(walbuf, .init = setup, .fini = teardown);

static im_store *open_store(void)
{
	char err[256];
	im_store *st = im_store_open(path, err, sizeof(err));
	cr_assert_not_null(st, "%s", err);
	return st;
}

static void exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK,
		     "%s: %s (%d, errno %d)", sql, msg ? msg : "?", sqlite3_extended_errcode(db), sqlite3_system_errno(db));
}

/* A store with the test's table t(id, b). */
static im_store *open_with_table(sqlite3 **db)
{
	im_store *st = open_store();
	*db = im_store_db(st);
	exec(*db, "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)");
	return st;
}

/* rows blobs of `size` bytes, one transaction. */
static void insert(sqlite3 *db, int rows, int size)
{
	char sql[160];
	snprintf(sql, sizeof(sql),
		 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
		 "FROM n WHERE i < %d) INSERT INTO t(b) SELECT randomblob(%d) "
		 "FROM n",
		 rows, size);
	exec(db, sql);
}

/* Through a connection of its own (the counting VFS, no buffer). */
static long long read_back(const char *sql)
{
	sqlite3 *db = NULL;
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
		     SQLITE_OK);
	sqlite3_stmt *q = NULL;
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK,
		     "%s: %s", sql, sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW, "%s: %s", sql,
		     sqlite3_errmsg(db));
	long long v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

static void check_intact(sqlite3 *db)
{
	sqlite3_stmt *q = NULL;
	cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q,
					NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(q, 0), "ok");
	sqlite3_finalize(q);
}

Test(walbuf, a_commit_of_many_pages_is_one_write_before_its_sync)
{
	sqlite3 *db;
	im_store *st = open_with_table(&db);
	int w0 = wal_writes, s0 = wal_syncs;
	/* 20 pages and more, two writes each without the buffer; about
	 * 90 KiB, less than one piece (124 KiB) of the wrapped VFS. */
	insert(db, 20, 3000);
	cr_assert_eq(wal_writes - w0, 1, "WAL writes for one commit: %d",
		     wal_writes - w0);
	cr_assert_geq(wal_syncs - s0, 1, "synchronous=FULL syncs the commit");
	cr_assert_eq(read_back("SELECT count(*) FROM t"), 20);
	cr_assert_eq(read_back("SELECT sum(length(b)) FROM t"), 20 * 3000);
	/* A larger commit: pieces of 124 KiB, not two writes a page. */
	w0 = wal_writes;
	insert(db, 100, 3000); /* 100 pages: 200 writes unbuffered */
	cr_assert_leq(wal_writes - w0, 4, "WAL writes: %d", wal_writes - w0);
	cr_assert_eq(read_back("SELECT count(*) FROM t"), 120);
	im_store_close(st);
}

Test(walbuf, a_commit_without_a_sync_is_written_before_readers_see_it)
{
	sqlite3 *db;
	im_store *st = open_with_table(&db);
	exec(db, "PRAGMA synchronous=NORMAL");
	int s0 = wal_syncs;
	for (int i = 1; i <= 5; i++) {
		insert(db, 20, 2000);
		/* No sync asked for it: the wal-index barrier wrote it. */
		cr_assert_eq(read_back("SELECT count(*) FROM t"), 20 * i);
		cr_assert_eq(read_back("SELECT sum(length(b)) FROM t"),
			     20 * i * 2000);
	}
	cr_assert_eq(wal_syncs, s0, "NORMAL does not sync the WAL at commit");
	check_intact(db);
	im_store_close(st);
}

Test(walbuf, spilled_rewritten_and_oversized_commits_read_back_intact)
{
	sqlite3 *db;
	im_store *st = open_with_table(&db);
	/* A tiny page cache spills frames before the commit and reads them
	 * back; updating rows of this transaction rewrites their frames. */
	exec(db, "PRAGMA cache_size=8");
	exec(db, "BEGIN");
	insert(db, 300, 1000);
	exec(db, "UPDATE t SET b = randomblob(900) WHERE id % 3 = 0");
	exec(db, "COMMIT");
	cr_assert_eq(read_back("SELECT count(*) FROM t"), 300);
	cr_assert_eq(read_back("SELECT sum(length(b)) FROM t"),
		     200 * 1000 + 100 * 900);
	/* Larger than the buffer (124 KiB), many times over: written a
	 * piece at a time. */
	exec(db, "PRAGMA cache_size=-20000");
	insert(db, 1500, 4000);
	cr_assert_eq(read_back("SELECT count(*) FROM t"), 1800);
	check_intact(db);
	im_store_close(st);
	/* And after a restart (recovery reads the WAL from the file). */
	st = open_store();
	check_intact(im_store_db(st));
	im_store_close(st);
	cr_assert_eq(read_back("SELECT sum(length(b)) FROM t"),
		     200 * 1000 + 100 * 900 + 1500 * 4000);
}
