/*
 * core/store/store.c - the SQLite database: open (parent folders, WAL,
 * pragmas), migrations, and the namespaced key-value table.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <im/types.h>

#include "migrations.h"
#include "walbuf.h"
#include "writer.h"

#define IM_STORE_BUSY_TIMEOUT_MS 5000

#define IM_STORE_READERS 8

struct im_store {
	sqlite3 *db;
	char *path;
	bool memory;
	/* Read-only connections: WAL lets them run beside the writer. */
	pthread_mutex_t rmu;
	pthread_cond_t rcv;
	sqlite3 *readers[IM_STORE_READERS]; /* idle ones */
	int n_idle, n_open;
	pthread_mutex_t mu; /* recursive: kv calls may nest in a caller's lock */
	int version;
	sqlite3_stmt *kv_put;
	sqlite3_stmt *kv_get;
	sqlite3_stmt *kv_del;
	im_writer *writer; /* group commit */
	unsigned long long serial;
};

unsigned long long im_store_serial(const im_store *st)
{
	return st->serial;
}

__attribute__((format(printf, 3, 4))) static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool is_memory_path(const char *path)
{
	return strcmp(path, ":memory:") == 0 || path[0] == '\0';
}

/* mkdir -p of the folder holding `path`, new folders mode 0700. */
static int make_parent_dirs(const char *path, char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return 0;
	size_t n = (size_t)(slash - path);
	char *dir = malloc(n + 1);
	if (!dir) {
		set_err(err, errlen, "%s: out of memory", path);
		return IM_ENOMEM;
	}
	memcpy(dir, path, n);
	dir[n] = '\0';

	int rc = 0;
	for (char *p = dir + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			set_err(err, errlen, "%s: cannot create folder %s: %s",
				path, dir, strerror(errno));
			rc = IM_EIO;
			break;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	if (rc == 0) {
		struct stat sb;
		if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
			set_err(err, errlen, "%s: %s is not a folder", path,
				dir);
			rc = IM_EIO;
		} else if (access(dir, W_OK | X_OK) != 0) {
			/* SQLite needs to create its -wal and -shm files
			 * beside the database, so the folder must be
			 * writable even when the file already exists. */
			set_err(err, errlen,
				"%s: the state folder %s is not writable by "
				"uid %u (%s); make it writable for the user im "
				"runs as, or point storage.path (IM_DATA_DIR) "
				"elsewhere",
				path, dir, (unsigned)geteuid(),
				strerror(errno));
			rc = IM_EIO;
		}
	}
	free(dir);
	return rc;
}

/* A database file this process may not read and write, named with who
 * owns it: typically created by root, run later as the service user. */
static void not_ours(const char *path, char *err, size_t errlen)
{
	struct stat sb;
	bool known = stat(path, &sb) == 0;
	set_err(err, errlen,
		"%s: the database cannot be written by uid %u (the file is owned "
		"by uid %ld, mode %03o); give it to the user im runs as "
		"(chown), or point storage.path elsewhere",
		path, (unsigned)geteuid(), known ? (long)sb.st_uid : -1L,
		known ? (unsigned)(sb.st_mode & 0777) : 0u);
}

/* Creates the database file with mode 0600 when it does not exist yet, so
 * sqlite (and its -wal/-shm files, which copy the mode) keep it private.
 * A file that cannot be created is named with the reason and the uid. */
static int precreate_file(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	set_err(err, errlen,
		"%s: cannot create the database as uid %u: %s; make its folder "
		"writable for the user im runs as, or point storage.path "
		"(IM_DATA_DIR) elsewhere",
		path, (unsigned)geteuid(), strerror(errno));
	return IM_EIO;
}

static int exec_sql(sqlite3 *db, const char *sql, char *msg, size_t msglen)
{
	char *emsg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &emsg);
	if (rc != SQLITE_OK && msg && msglen)
		snprintf(msg, msglen, "%s",
			 emsg ? emsg : sqlite3_errstr(rc));
	sqlite3_free(emsg);
	return rc;
}

/* Runs a one-row, one-column query and copies its text result. */
static int query_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(stmt, 0);
		snprintf(out, outlen, "%s", t ? (const char *)t : "");
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		out[0] = '\0';
		rc = SQLITE_OK;
	}
	sqlite3_finalize(stmt);
	return rc;
}

static int query_int(sqlite3 *db, const char *sql, int *out)
{
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int(stmt, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		*out = 0;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(stmt);
	return rc;
}

static int configure(sqlite3 *db, const char *path, bool memory, char *err,
		     size_t errlen)
{
	char mode[32];
	int rc = sqlite3_busy_timeout(db, IM_STORE_BUSY_TIMEOUT_MS);
	if (rc == SQLITE_OK)
		rc = query_text(db, "PRAGMA journal_mode=WAL", mode,
				sizeof(mode));
	if (rc != SQLITE_OK) {
		set_err(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
		return IM_EIO;
	}
	if (!memory && strcmp(mode, "wal") != 0) {
		set_err(err, errlen,
			"%s: cannot enable WAL journal mode (got \"%s\")",
			path, mode);
		return IM_EIO;
	}
	char msg[256];
	/* FULL: in WAL mode the log is synced at every commit, so an
	 * acknowledged write survives a power cut (NORMAL syncs only at
	 * checkpoints). The group writer pays that sync once per batch. */
	if (exec_sql(db, "PRAGMA synchronous=FULL", msg, sizeof(msg)) !=
		SQLITE_OK ||
	    exec_sql(db, "PRAGMA foreign_keys=ON", msg, sizeof(msg)) !=
		SQLITE_OK) {
		set_err(err, errlen, "%s: %s", path, msg);
		return IM_EIO;
	}
	return 0;
}

static int check_migration_list(const struct im_migration *m, size_t n,
				const char *path, char *err, size_t errlen)
{
	int prev = 0;
	for (size_t i = 0; i < n; i++) {
		if (m[i].version <= prev || !m[i].sql || !m[i].name) {
			set_err(err, errlen,
				"%s: migration list is invalid at entry %zu "
				"(version %d)",
				path, i, m[i].version);
			return IM_EINVAL;
		}
		prev = m[i].version;
	}
	return 0;
}

static int apply_one(sqlite3 *db, const struct im_migration *m,
		     const char *path, char *err, size_t errlen)
{
	char msg[512];
	if (exec_sql(db, "BEGIN IMMEDIATE", msg, sizeof(msg)) != SQLITE_OK) {
		set_err(err, errlen, "%s: migration %d (%s) failed: %s", path,
			m->version, m->name, msg);
		return IM_EIO;
	}

	/* Another process may have applied it while we waited for the lock. */
	sqlite3_stmt *stmt = NULL;
	bool applied = false;
	int rc = sqlite3_prepare_v2(
	    db, "SELECT 1 FROM schema_migrations WHERE version = ?", -1, &stmt,
	    NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int(stmt, 1, m->version);
		rc = sqlite3_step(stmt);
		applied = rc == SQLITE_ROW;
		rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? SQLITE_OK : rc;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (rc != SQLITE_OK) {
		snprintf(msg, sizeof(msg), "%s", sqlite3_errmsg(db));
		goto fail;
	}
	if (!applied) {
		rc = exec_sql(db, m->sql, msg, sizeof(msg));
		if (rc != SQLITE_OK)
			goto fail;
		rc = sqlite3_prepare_v2(db,
					"INSERT INTO schema_migrations "
					"(version, name, applied_at) "
					"VALUES (?, ?, ?)",
					-1, &stmt, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_int(stmt, 1, m->version);
			sqlite3_bind_text(stmt, 2, m->name, -1, SQLITE_STATIC);
			sqlite3_bind_int64(stmt, 3, (sqlite3_int64)time(NULL));
			rc = sqlite3_step(stmt);
			rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
		}
		if (rc != SQLITE_OK)
			snprintf(msg, sizeof(msg), "%s", sqlite3_errmsg(db));
		sqlite3_finalize(stmt);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if (exec_sql(db, "COMMIT", msg, sizeof(msg)) != SQLITE_OK)
		goto fail;
	return 0;

fail:
	set_err(err, errlen, "%s: migration %d (%s) failed: %s", path,
		m->version, m->name, msg);
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return IM_EIO;
}

static int migrate(im_store *st, const struct im_migration *m, size_t n,
		   const char *path, char *err, size_t errlen)
{
	char msg[256];
	if (exec_sql(st->db,
		     "CREATE TABLE IF NOT EXISTS schema_migrations ("
		     "version INTEGER PRIMARY KEY, name TEXT, "
		     "applied_at INTEGER)",
		     msg, sizeof(msg)) != SQLITE_OK) {
		set_err(err, errlen, "%s: %s", path, msg);
		return IM_EIO;
	}
	int current = 0;
	if (query_int(st->db,
		      "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
		      &current) != SQLITE_OK) {
		set_err(err, errlen, "%s: %s", path, sqlite3_errmsg(st->db));
		return IM_EIO;
	}
	int latest = n ? m[n - 1].version : 0;
	if (current > latest) {
		set_err(err, errlen,
			"%s: database schema is at version %d but this binary "
			"only knows up to version %d; refusing to downgrade "
			"(use a newer im)",
			path, current, latest);
		return IM_EVERSION;
	}
	for (size_t i = 0; i < n; i++) {
		if (m[i].version <= current)
			continue;
		int rc = apply_one(st->db, &m[i], path, err, errlen);
		if (rc != 0)
			return rc;
		current = m[i].version;
	}
	st->version = current;
	return 0;
}

/* Closes a connection with every statement still prepared on it (the
 * cached ones of im_store_stmt). */
static void close_db(sqlite3 *db)
{
	sqlite3_stmt *s;
	while (db && (s = sqlite3_next_stmt(db, NULL)) != NULL)
		sqlite3_finalize(s);
	sqlite3_close_v2(db);
}

#define CACHED "/*im-cached*/ "

sqlite3_stmt *im_store_stmt(sqlite3 *db, const char *sql)
{
	size_t plen = strlen(CACHED), n = strlen(sql);
	for (sqlite3_stmt *s = sqlite3_next_stmt(db, NULL); s;
	     s = sqlite3_next_stmt(db, s)) {
		const char *t = sqlite3_sql(s);
		if (t && !strncmp(t, CACHED, plen) && !strcmp(t + plen, sql) &&
		    !sqlite3_stmt_busy(s))
			return s;
	}
	char *text = malloc(plen + n + 1);
	if (!text)
		return NULL;
	memcpy(text, CACHED, plen);
	memcpy(text + plen, sql, n + 1);
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v3(db, text, -1, SQLITE_PREPARE_PERSISTENT, &s,
			       NULL) != SQLITE_OK) {
		sqlite3_finalize(s);
		s = NULL;
	}
	free(text);
	return s;
}

void im_store_stmt_done(sqlite3_stmt *s)
{
	if (!s)
		return;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

static void store_free(im_store *st)
{
	im_writer_free(st->writer);
	for (int i = 0; i < st->n_idle; i++)
		close_db(st->readers[i]);
	pthread_mutex_destroy(&st->rmu);
	pthread_cond_destroy(&st->rcv);
	free(st->path);
	sqlite3_finalize(st->kv_put);
	sqlite3_finalize(st->kv_get);
	sqlite3_finalize(st->kv_del);
	close_db(st->db);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

im_store *im_store_open_with(const char *path,
			     const struct im_migration *migrations, size_t n,
			     char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (!path) {
		set_err(err, errlen, "(null): no database path");
		return NULL;
	}
	if (check_migration_list(migrations, n, path, err, errlen) != 0)
		return NULL;

	bool memory = is_memory_path(path);
	if (!memory) {
		if (make_parent_dirs(path, err, errlen) != 0 ||
		    precreate_file(path, err, errlen) != 0)
			return NULL;
	}

	im_store *st = calloc(1, sizeof(*st));
	if (!st) {
		set_err(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&st->mu, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_mutex_init(&st->rmu, NULL);
	pthread_cond_init(&st->rcv, NULL);
	st->memory = memory;
	static unsigned long long serials;
	st->serial = __atomic_add_fetch(&serials, 1, __ATOMIC_RELAXED);
	st->path = strdup(path);
	st->writer = im_writer_new(st);
	if (!st->path || !st->writer) {
		set_err(err, errlen, "%s: out of memory", path);
		goto fail;
	}

	/* The write connection's WAL commits go out as one write each
	 * (walbuf.h); the readers never write the WAL. */
	int rc = sqlite3_open_v2(path, &st->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_FULLMUTEX,
				 im_walbuf_vfs());
	if (rc != SQLITE_OK) {
		if (!memory && access(path, R_OK | W_OK) != 0)
			not_ours(path, err, errlen);
		else
			set_err(err, errlen, "%s: %s", path,
				st->db ? sqlite3_errmsg(st->db)
				       : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	/* SQLite opens a file it may not write read-only without a word;
	 * every write would fail later. */
	if (sqlite3_db_readonly(st->db, "main") == 1) {
		not_ours(path, err, errlen);
		goto fail;
	}
	if (configure(st->db, path, memory, err, errlen) != 0)
		goto fail;
	if (migrate(st, migrations, n, path, err, errlen) != 0)
		goto fail;
	return st;

fail:
	store_free(st);
	return NULL;
}

sqlite3 *im_store_read_begin(im_store *st)
{
	if (st->memory) {
		/* One in-memory database: read through the writer. */
		im_store_lock(st);
		return st->db;
	}
	pthread_mutex_lock(&st->rmu);
	while (st->n_idle == 0 && st->n_open >= IM_STORE_READERS)
		pthread_cond_wait(&st->rcv, &st->rmu);
	sqlite3 *db = NULL;
	if (st->n_idle > 0) {
		db = st->readers[--st->n_idle];
		pthread_mutex_unlock(&st->rmu);
		return db;
	}
	st->n_open++;
	pthread_mutex_unlock(&st->rmu);
	if (sqlite3_open_v2(st->path, &db,
			    SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		sqlite3_close_v2(db);
		pthread_mutex_lock(&st->rmu);
		st->n_open--;
		pthread_cond_signal(&st->rcv);
		pthread_mutex_unlock(&st->rmu);
		/* Still answer: read through the writer. */
		im_store_lock(st);
		return st->db;
	}
	sqlite3_busy_timeout(db, IM_STORE_BUSY_TIMEOUT_MS);
	return db;
}

void im_store_read_end(im_store *st, sqlite3 *db)
{
	if (db == st->db) {
		im_store_unlock(st);
		return;
	}
	pthread_mutex_lock(&st->rmu);
	st->readers[st->n_idle++] = db;
	pthread_cond_signal(&st->rcv);
	pthread_mutex_unlock(&st->rmu);
}

im_store *im_store_open(const char *path, char *err, size_t errlen)
{
	return im_store_open_with(path, im_migrations, im_migrations_count,
				  err, errlen);
}

void im_store_close(im_store *st)
{
	if (st)
		store_free(st);
}

int im_store_version(im_store *st)
{
	return st ? st->version : 0;
}

int im_store_latest_version(void)
{
	return im_migrations_count
		   ? im_migrations[im_migrations_count - 1].version
		   : 0;
}

sqlite3 *im_store_db(im_store *st)
{
	return st ? st->db : NULL;
}

void im_store_lock(im_store *st)
{
	pthread_mutex_lock(&st->mu);
}

void im_store_unlock(im_store *st)
{
	pthread_mutex_unlock(&st->mu);
}

int im_store_submit(im_store *st, im_store_apply_fn apply,
		    im_store_done_fn done, void *ud)
{
	return im_writer_submit(st->writer, apply, done, ud, false);
}

int im_store_write(im_store *st, im_store_apply_fn apply,
		   im_store_done_fn done, void *ud)
{
	return im_writer_submit(st->writer, apply, done, ud, true);
}

void im_store_writer_stats_get(im_store *st, im_store_writer_stats *out)
{
	im_writer_stats(st->writer, out);
}

/* --- key-value ---------------------------------------------------------- */

static int sqlite_to_im(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_NOMEM:
		return IM_ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return IM_EAGAIN;
	case SQLITE_TOOBIG:
	case SQLITE_MISUSE:
	case SQLITE_RANGE:
		return IM_EINVAL;
	default:
		return IM_EIO;
	}
}

/* Prepares a cached statement on first use (the kv table may not exist in
 * databases opened with a test migration list). Caller holds the lock. */
static int prepared(im_store *st, sqlite3_stmt **slot, const char *sql)
{
	if (*slot)
		return 0;
	return sqlite_to_im(sqlite3_prepare_v3(st->db, sql, -1,
					       SQLITE_PREPARE_PERSISTENT, slot,
					       NULL));
}

static int bind_key(sqlite3_stmt *stmt, const char *ns, const char *key)
{
	int rc = sqlite3_bind_text(stmt, 1, ns, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
	return rc;
}

int im_store_kv_put(im_store *st, const char *ns, const char *key,
		    const void *val, size_t len)
{
	if (!st || !ns || !key || (!val && len))
		return IM_EINVAL;
	if (len > (size_t)INT32_MAX)
		return IM_EINVAL;
	im_store_lock(st);
	int rc = prepared(st, &st->kv_put,
			  "INSERT INTO kv (ns, key, value, updated_at) "
			  "VALUES (?, ?, ?, ?) "
			  "ON CONFLICT (ns, key) DO UPDATE SET "
			  "value = excluded.value, "
			  "updated_at = excluded.updated_at");
	if (rc == 0) {
		sqlite3_stmt *s = st->kv_put;
		int src = bind_key(s, ns, key);
		if (src == SQLITE_OK)
			src = len ? sqlite3_bind_blob(s, 3, val, (int)len,
						      SQLITE_STATIC)
				  : sqlite3_bind_zeroblob(s, 3, 0);
		if (src == SQLITE_OK)
			src = sqlite3_bind_int64(s, 4,
						 (sqlite3_int64)time(NULL));
		if (src == SQLITE_OK)
			src = sqlite3_step(s);
		rc = sqlite_to_im(src);
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
	im_store_unlock(st);
	return rc;
}

int im_store_kv_get(im_store *st, const char *ns, const char *key,
		    void **val, size_t *len)
{
	if (!st || !ns || !key || !val)
		return IM_EINVAL;
	*val = NULL;
	if (len)
		*len = 0;
	im_store_lock(st);
	int rc = prepared(st, &st->kv_get,
			  "SELECT value FROM kv WHERE ns = ? AND key = ?");
	if (rc == 0) {
		sqlite3_stmt *s = st->kv_get;
		int src = bind_key(s, ns, key);
		if (src == SQLITE_OK)
			src = sqlite3_step(s);
		if (src == SQLITE_ROW) {
			const void *blob = sqlite3_column_blob(s, 0);
			size_t n = (size_t)sqlite3_column_bytes(s, 0);
			if (!blob && n == 0 &&
			    sqlite3_errcode(st->db) == SQLITE_NOMEM) {
				rc = IM_ENOMEM;
			} else {
				/* One spare NUL byte so text values can be
				 * used as strings directly. */
				char *copy = malloc(n + 1);
				if (!copy) {
					rc = IM_ENOMEM;
				} else {
					if (n)
						memcpy(copy, blob, n);
					copy[n] = '\0';
					*val = copy;
					if (len)
						*len = n;
				}
			}
		} else if (src == SQLITE_DONE) {
			rc = IM_ENOTFOUND;
		} else {
			rc = sqlite_to_im(src);
		}
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
	im_store_unlock(st);
	return rc;
}

int im_store_kv_del(im_store *st, const char *ns, const char *key)
{
	if (!st || !ns || !key)
		return IM_EINVAL;
	im_store_lock(st);
	int rc = prepared(st, &st->kv_del,
			  "DELETE FROM kv WHERE ns = ? AND key = ?");
	if (rc == 0) {
		sqlite3_stmt *s = st->kv_del;
		int src = bind_key(s, ns, key);
		if (src == SQLITE_OK)
			src = sqlite3_step(s);
		rc = sqlite_to_im(src);
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
	im_store_unlock(st);
	return rc;
}
