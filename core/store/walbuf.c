/* See walbuf.h. Every WAL file opened through the VFS is on one list, so a
 * barrier on the wal-index (which belongs to the database file, not the
 * WAL) can write out whatever is pending first. */
#include "store/walbuf.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define WB_NAME "im-walbuf"
#define WB_MIN_CAP ((size_t)64 << 10)
/* The unix VFS writes at most 128 KiB - 1 per call (os_unix.c masks the
 * length with 0x1ffff), so the buffer holds one piece of 124 KiB, written
 * in one call: a larger one would still reach the file 124 KiB per call
 * and only cost memory (a 4 MiB buffer stayed allocated after one large
 * commit). A larger commit goes out a piece at a time as it is written. */
#define WB_PIECE ((size_t)124 << 10)

typedef struct wb_file {
	sqlite3_file base;
	sqlite3_file *real; /* the wrapped VFS's file, allocated after us */
	bool wal;
	/* WAL files only: */
	pthread_mutex_t mu;
	unsigned char *buf;
	size_t len, cap;
	sqlite3_int64 off;	     /* where buf[0] belongs in the file */
	struct wb_file *next, *prev; /* the open WAL files, under reg_mu */
} wb_file;

#define REAL_OFFSET ((sizeof(wb_file) + 7) & ~(size_t)7)

static sqlite3_vfs *base_vfs;
static sqlite3_vfs wb_vfs;
static sqlite3_io_methods wb_methods[3]; /* by the wrapped file's version */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static wb_file *wal_files;
static int n_pending; /* atomic: WAL files holding buffered writes */

/* The wrapped file and its methods. */
#define REAL(file) (((wb_file *)(file))->real)
#define REAL_M(file) (REAL(file)->pMethods)

/* Under f->mu: the buffer (at most one piece) in one write. On failure
 * the data stays buffered for the next try, and the caller's operation
 * reports the error. */
static int flush(wb_file *f)
{
	if (!f->len)
		return SQLITE_OK;
	int rc = REAL_M(f)->xWrite(f->real, f->buf, (int)f->len, f->off);
	if (rc == SQLITE_OK) {
		f->off += (sqlite3_int64)f->len;
		f->len = 0;
		__atomic_sub_fetch(&n_pending, 1, __ATOMIC_RELAXED);
	}
	return rc;
}

static int flush_locked(wb_file *f)
{
	if (!f->wal)
		return SQLITE_OK;
	pthread_mutex_lock(&f->mu);
	int rc = flush(f);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* Before a wal-index barrier or lock: frames it may publish are written. */
static void flush_all(void)
{
	if (!__atomic_load_n(&n_pending, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&reg_mu);
	for (wb_file *f = wal_files; f; f = f->next)
		flush_locked(f);
	pthread_mutex_unlock(&reg_mu);
}

static bool reserve(wb_file *f, size_t more)
{
	if (f->len + more <= f->cap)
		return true;
	size_t cap = f->cap ? f->cap : WB_MIN_CAP;
	while (cap < f->len + more)
		cap *= 2;
	unsigned char *b = realloc(f->buf, cap);
	if (!b)
		return false;
	f->buf = b;
	f->cap = cap;
	return true;
}

static int wb_write(sqlite3_file *file, const void *data, int n,
		    sqlite3_int64 off)
{
	wb_file *f = (wb_file *)file;
	if (!f->wal)
		return REAL_M(f)->xWrite(f->real, data, n, off);
	pthread_mutex_lock(&f->mu);
	int rc = SQLITE_OK;
	size_t un = (size_t)n;
	sqlite3_int64 end = f->off + (sqlite3_int64)f->len;
	if (f->len && off >= f->off && off + n <= end) {
		/* A frame of this commit written again. */
		memcpy(f->buf + (off - f->off), data, un);
		goto out;
	}
	if (f->len && (off != end || f->len + un > WB_PIECE))
		rc = flush(f);
	if (rc != SQLITE_OK)
		goto out;
	if (un < WB_PIECE && reserve(f, un)) {
		if (f->len == 0) {
			f->off = off;
			__atomic_add_fetch(&n_pending, 1, __ATOMIC_RELAXED);
		}
		memcpy(f->buf + f->len, data, un);
		f->len += un;
	} else if ((rc = flush(f)) == SQLITE_OK) {
		/* Larger than a piece (SQLite's own writes never are), or no
		 * memory to hold it: straight through. */
		rc = REAL_M(f)->xWrite(f->real, data, n, off);
	}
out:
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int wb_read(sqlite3_file *file, void *out, int n, sqlite3_int64 off)
{
	wb_file *f = (wb_file *)file;
	int rc = flush_locked(f);
	return rc == SQLITE_OK ? REAL_M(f)->xRead(f->real, out, n, off) : rc;
}

static int wb_close(sqlite3_file *file)
{
	wb_file *f = (wb_file *)file;
	if (f->wal) {
		flush_locked(f); /* SQLite synced what it needed already */
		pthread_mutex_lock(&reg_mu);
		if (f->prev)
			f->prev->next = f->next;
		else
			wal_files = f->next;
		if (f->next)
			f->next->prev = f->prev;
		pthread_mutex_unlock(&reg_mu);
		if (f->len) /* the write failed: gone with the file */
			__atomic_sub_fetch(&n_pending, 1, __ATOMIC_RELAXED);
		pthread_mutex_destroy(&f->mu);
		free(f->buf);
	}
	return REAL_M(f)->xClose(f->real);
}

static int wb_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	wb_file *f = (wb_file *)file;
	int rc = flush_locked(f);
	return rc == SQLITE_OK ? REAL_M(f)->xTruncate(f->real, size) : rc;
}

static int wb_sync(sqlite3_file *file, int flags)
{
	wb_file *f = (wb_file *)file;
	int rc = flush_locked(f);
	return rc == SQLITE_OK ? REAL_M(f)->xSync(f->real, flags) : rc;
}

static int wb_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	wb_file *f = (wb_file *)file;
	int rc = flush_locked(f);
	return rc == SQLITE_OK ? REAL_M(f)->xFileSize(f->real, size) : rc;
}

static int wb_fcntl(sqlite3_file *file, int op, void *arg)
{
	wb_file *f = (wb_file *)file;
	int rc = flush_locked(f);
	return rc == SQLITE_OK ? REAL_M(f)->xFileControl(f->real, op, arg)
			       : rc;
}

static int wb_shm_lock(sqlite3_file *file, int off, int n, int flags)
{
	flush_all();
	wb_file *f = (wb_file *)file;
	return REAL_M(f)->xShmLock(f->real, off, n, flags);
}

static void wb_shm_barrier(sqlite3_file *file)
{
	flush_all();
	wb_file *f = (wb_file *)file;
	REAL_M(f)->xShmBarrier(f->real);
}

/* The rest passes through. */
static int wb_lock(sqlite3_file *file, int l)
{
	return REAL_M(file)->xLock(REAL(file), l);
}
static int wb_unlock(sqlite3_file *file, int l)
{
	return REAL_M(file)->xUnlock(REAL(file), l);
}
static int wb_reserved(sqlite3_file *file, int *out)
{
	return REAL_M(file)->xCheckReservedLock(REAL(file), out);
}
static int wb_sector(sqlite3_file *file)
{
	return REAL_M(file)->xSectorSize(REAL(file));
}
static int wb_devchar(sqlite3_file *file)
{
	return REAL_M(file)->xDeviceCharacteristics(REAL(file));
}
static int wb_shm_map(sqlite3_file *file, int pg, int sz, int ext,
		      void volatile **pp)
{
	return REAL_M(file)->xShmMap(REAL(file), pg, sz, ext, pp);
}
static int wb_shm_unmap(sqlite3_file *file, int del)
{
	return REAL_M(file)->xShmUnmap(REAL(file), del);
}
static int wb_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **pp)
{
	int rc = flush_locked((wb_file *)file);
	return rc == SQLITE_OK
		   ? REAL_M(file)->xFetch(REAL(file), off, n, pp)
		   : rc;
}
static int wb_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
	return REAL_M(file)->xUnfetch(REAL(file), off, p);
}

static int wb_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file,
		   int flags, int *out_flags)
{
	(void)vfs;
	wb_file *f = (wb_file *)file;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)((char *)f + REAL_OFFSET);
	int rc = base_vfs->xOpen(base_vfs, name, f->real, flags, out_flags);
	if (rc != SQLITE_OK) {
		if (f->real->pMethods)
			REAL_M(f)->xClose(f->real);
		return rc; /* base.pMethods stays NULL: no xClose */
	}
	int v = REAL_M(f)->iVersion;
	v = v < 1 ? 1 : v > 3 ? 3 : v;
	if (flags & SQLITE_OPEN_WAL) {
		f->wal = true;
		pthread_mutex_init(&f->mu, NULL);
		pthread_mutex_lock(&reg_mu);
		f->next = wal_files;
		if (wal_files)
			wal_files->prev = f;
		wal_files = f;
		pthread_mutex_unlock(&reg_mu);
	}
	f->base.pMethods = &wb_methods[v - 1];
	return SQLITE_OK;
}

static bool registered;

static void wb_register(void)
{
	base_vfs = sqlite3_vfs_find(NULL);
	if (!base_vfs)
		return;
	for (int v = 1; v <= 3; v++)
		wb_methods[v - 1] = (sqlite3_io_methods){
		    .iVersion = v,
		    .xClose = wb_close,
		    .xRead = wb_read,
		    .xWrite = wb_write,
		    .xTruncate = wb_truncate,
		    .xSync = wb_sync,
		    .xFileSize = wb_file_size,
		    .xLock = wb_lock,
		    .xUnlock = wb_unlock,
		    .xCheckReservedLock = wb_reserved,
		    .xFileControl = wb_fcntl,
		    .xSectorSize = wb_sector,
		    .xDeviceCharacteristics = wb_devchar,
		    .xShmMap = v >= 2 ? wb_shm_map : NULL,
		    .xShmLock = v >= 2 ? wb_shm_lock : NULL,
		    .xShmBarrier = v >= 2 ? wb_shm_barrier : NULL,
		    .xShmUnmap = v >= 2 ? wb_shm_unmap : NULL,
		    .xFetch = v >= 3 ? wb_fetch : NULL,
		    .xUnfetch = v >= 3 ? wb_unfetch : NULL,
		};
	/* The wrapped VFS's own functions take the same pAppData. */
	wb_vfs = *base_vfs;
	wb_vfs.pNext = NULL;
	wb_vfs.zName = WB_NAME;
	wb_vfs.szOsFile = (int)REAL_OFFSET + base_vfs->szOsFile;
	wb_vfs.xOpen = wb_open;
	registered = sqlite3_vfs_register(&wb_vfs, 0) == SQLITE_OK;
}

const char *im_walbuf_vfs(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, wb_register);
	return registered ? WB_NAME : NULL;
}
