/*
 * tests/crash/powercut.c - see powercut.h. Pending writes are kept per
 * path (the writer and the readers of one process share them, as they
 * would share the page cache) in the order they were made.
 */
#include "powercut.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

typedef struct pending {
	struct pending *next;
	sqlite3_int64 off;
	int n;
	unsigned char data[];
} pending;

/* What one path has written and not synced. Never freed: a path closed
 * and opened again must still see its unsynced writes. */
typedef struct pstate {
	struct pstate *next;
	char *path;
	pending *head, *tail;
} pstate;

typedef struct pc_file {
	sqlite3_file base;
	pstate *ps;         /* NULL: pass every call through */
	sqlite3_file *real; /* the wrapped VFS's file, allocated after us */
} pc_file;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs pc_vfs;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pstate *states;
static long io_count, crash_at;
static unsigned seed;

long powercut_io_count(void)
{
	return __atomic_load_n(&io_count, __ATOMIC_RELAXED);
}

/* The Nth write or sync: a point where the power may go. */
static bool cut_now(void)
{
	long n = __atomic_add_fetch(&io_count, 1, __ATOMIC_RELAXED);
	return crash_at > 0 && n >= crash_at;
}

static pstate *state_for(const char *path)
{
	for (pstate *s = states; s; s = s->next)
		if (!strcmp(s->path, path))
			return s;
	pstate *s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return NULL;
	}
	s->next = states;
	states = s;
	return s;
}

static void drop_pending(pstate *s)
{
	for (pending *p = s->head, *next; p; p = next) {
		next = p->next;
		free(p);
	}
	s->head = s->tail = NULL;
}

/* Writes the pending writes through in order, all of them when keep < 0,
 * else only their first `keep` bytes (the last one cut part way: a disk
 * tears a large write at sector boundaries). */
static int flush(pc_file *f, sqlite3_int64 keep)
{
	int rc = SQLITE_OK;
	for (pending *p = f->ps->head; p && keep != 0 && rc == SQLITE_OK;
	     p = p->next) {
		int n = keep >= 0 && keep < p->n ? (int)keep : p->n;
		rc = f->real->pMethods->xWrite(f->real, p->data, n, p->off);
		if (keep > 0)
			keep -= n;
	}
	return rc;
}

static sqlite3_int64 pending_bytes(const pstate *s)
{
	sqlite3_int64 n = 0;
	for (const pending *p = s->head; p; p = p->next)
		n += p->n;
	return n;
}

static int pc_close(sqlite3_file *file)
{
	pc_file *f = (pc_file *)file;
	return f->real->pMethods->xClose(f->real);
}

static sqlite3_int64 pending_end(const pstate *s)
{
	sqlite3_int64 end = 0;
	for (const pending *p = s->head; p; p = p->next)
		if (p->off + p->n > end)
			end = p->off + p->n;
	return end;
}

static int pc_read(sqlite3_file *file, void *buf, int n, sqlite3_int64 off)
{
	pc_file *f = (pc_file *)file;
	if (!f->ps)
		return f->real->pMethods->xRead(f->real, buf, n, off);
	pthread_mutex_lock(&mu);
	sqlite3_int64 size = 0;
	f->real->pMethods->xFileSize(f->real, &size);
	int rc = f->real->pMethods->xRead(f->real, buf, n, off);
	if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
		pthread_mutex_unlock(&mu);
		return rc;
	}
	for (const pending *p = f->ps->head; p; p = p->next) {
		sqlite3_int64 lo = p->off > off ? p->off : off;
		sqlite3_int64 hi = p->off + p->n < off + n ? p->off + p->n
							   : off + n;
		if (lo < hi)
			memcpy((unsigned char *)buf + (lo - off),
			       p->data + (lo - p->off), (size_t)(hi - lo));
	}
	sqlite3_int64 end = pending_end(f->ps);
	if (end > size)
		size = end;
	pthread_mutex_unlock(&mu);
	return off + n <= size ? SQLITE_OK : SQLITE_IOERR_SHORT_READ;
}

static int pc_write(sqlite3_file *file, const void *buf, int n,
		    sqlite3_int64 off)
{
	pc_file *f = (pc_file *)file;
	if (!f->ps)
		return f->real->pMethods->xWrite(f->real, buf, n, off);
	if (cut_now())
		_exit(POWERCUT_EXIT); /* this write and all unsynced: gone */
	pending *p = malloc(sizeof(*p) + (size_t)n);
	if (!p)
		return SQLITE_IOERR_NOMEM;
	p->next = NULL;
	p->off = off;
	p->n = n;
	memcpy(p->data, buf, (size_t)n);
	pthread_mutex_lock(&mu);
	if (f->ps->tail)
		f->ps->tail->next = p;
	else
		f->ps->head = p;
	f->ps->tail = p;
	pthread_mutex_unlock(&mu);
	return SQLITE_OK;
}

static int pc_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	pc_file *f = (pc_file *)file;
	if (f->ps) {
		pthread_mutex_lock(&mu);
		for (pending *p = f->ps->head; p; p = p->next)
			if (p->off + p->n > size)
				p->n = p->off >= size ? 0 : (int)(size - p->off);
		pthread_mutex_unlock(&mu);
	}
	return f->real->pMethods->xTruncate(f->real, size);
}

static int pc_sync(sqlite3_file *file, int flags)
{
	pc_file *f = (pc_file *)file;
	if (!f->ps)
		return f->real->pMethods->xSync(f->real, flags);
	pthread_mutex_lock(&mu);
	if (cut_now()) {
		/* Torn: a prefix of the pending bytes made it, in whole
		 * 512-byte sectors. */
		sqlite3_int64 sectors = pending_bytes(f->ps) / 512;
		flush(f, 512 * (sqlite3_int64)(rand_r(&seed) %
					       (unsigned)(sectors + 1)));
		_exit(POWERCUT_EXIT);
	}
	int rc = flush(f, -1);
	if (rc == SQLITE_OK)
		drop_pending(f->ps);
	pthread_mutex_unlock(&mu);
	return rc == SQLITE_OK ? f->real->pMethods->xSync(f->real, flags) : rc;
}

static int pc_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	pc_file *f = (pc_file *)file;
	int rc = f->real->pMethods->xFileSize(f->real, size);
	if (rc == SQLITE_OK && f->ps) {
		pthread_mutex_lock(&mu);
		sqlite3_int64 end = pending_end(f->ps);
		pthread_mutex_unlock(&mu);
		if (end > *size)
			*size = end;
	}
	return rc;
}

/* The rest passes through. */
#define REAL(f) (((pc_file *)(f))->real)
static int pc_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int pc_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int pc_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int pc_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int pc_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int pc_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int pc_shm_map(sqlite3_file *f, int pg, int sz, int ext,
		      void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int pc_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void pc_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int pc_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

/* Version 2: no xFetch, so SQLite never maps the file and every read
 * comes through pc_read. */
static const sqlite3_io_methods pc_methods = {
    2,		 pc_close,     pc_read,	    pc_write,	   pc_truncate,
    pc_sync,	 pc_file_size, pc_lock,	    pc_unlock,	   pc_reserved,
    pc_fcntl,	 pc_sector,    pc_devchar,  pc_shm_map,	   pc_shm_lock,
    pc_shm_barrier, pc_shm_unmap, NULL,	    NULL};

static int pc_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file,
		   int flags, int *out_flags)
{
	(void)vfs;
	pc_file *f = (pc_file *)file;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)((char *)f + sizeof(pc_file));
	int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
	if (rc != SQLITE_OK)
		return rc; /* base.pMethods stays NULL: no xClose */
	if (name && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL))) {
		pthread_mutex_lock(&mu);
		f->ps = state_for(name);
		pthread_mutex_unlock(&mu);
	}
	f->base.pMethods = &pc_methods;
	return SQLITE_OK;
}

static int pc_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	(void)vfs;
	pthread_mutex_lock(&mu);
	for (pstate *s = states; s; s = s->next)
		if (!strcmp(s->path, name))
			drop_pending(s);
	pthread_mutex_unlock(&mu);
	return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int pc_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int pc_full(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static int pc_random(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return real_vfs->xRandomness(real_vfs, n, out);
}

static int pc_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return real_vfs->xSleep(real_vfs, us);
}

static int pc_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return real_vfs->xCurrentTime(real_vfs, out);
}

static int pc_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return real_vfs->xGetLastError(real_vfs, n, out);
}

int powercut_install(long at, unsigned s)
{
	real_vfs = sqlite3_vfs_find(NULL);
	if (!real_vfs)
		return SQLITE_ERROR;
	crash_at = at;
	seed = s;
	pc_vfs = (sqlite3_vfs){
	    .iVersion = 1,
	    .szOsFile = (int)sizeof(pc_file) + real_vfs->szOsFile,
	    .mxPathname = real_vfs->mxPathname,
	    .zName = "powercut",
	    .xOpen = pc_open,
	    .xDelete = pc_delete,
	    .xAccess = pc_access,
	    .xFullPathname = pc_full,
	    .xRandomness = pc_random,
	    .xSleep = pc_sleep,
	    .xCurrentTime = pc_time,
	    .xGetLastError = pc_last_error,
	};
	return sqlite3_vfs_register(&pc_vfs, 1);
}
