/*
 * tests/unit/test_store.c - core/store against real database files in
 * temporary folders: open, WAL, migrations, refusal cases, key-value.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <im/types.h>

#include "../tmpdir.h"
#include "store/migrations.h"
#include "store/store.h"

static char tmpdir[256];
static char err[512];

static void make_tmpdir(void)
{
	cr_assert_not_null(tmpdir_make(tmpdir, sizeof(tmpdir), "im-test-store"));
	err[0] = '\0';
}

static void remove_tmpdir(void)
{
	tmpdir_remove(tmpdir);
}

TestSuite(store, .init = make_tmpdir, .fini = remove_tmpdir);

static char *path_in_tmp(const char *rel)
{
	static char buf[4][512];
	static int i;
	char *p = buf[i++ % 4];
	snprintf(p, sizeof(buf[0]), "%s/%s", tmpdir, rel);
	return p;
}

static im_store *open_ok(const char *path)
{
	im_store *st = im_store_open(path, err, sizeof(err));
	cr_assert_not_null(st, "open %s failed: %s", path, err);
	return st;
}

static int query_int(im_store *st, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	im_store_lock(st);
	cr_assert_eq(sqlite3_prepare_v2(im_store_db(st), sql, -1, &stmt, NULL),
		     SQLITE_OK, "%s: %s", sql,
		     sqlite3_errmsg(im_store_db(st)));
	cr_assert_eq(sqlite3_step(stmt), SQLITE_ROW, "%s", sql);
	int v = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	im_store_unlock(st);
	return v;
}

static void query_text(im_store *st, const char *sql, char *out, size_t n)
{
	sqlite3_stmt *stmt = NULL;
	im_store_lock(st);
	cr_assert_eq(sqlite3_prepare_v2(im_store_db(st), sql, -1, &stmt, NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_step(stmt), SQLITE_ROW);
	snprintf(out, n, "%s", (const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	im_store_unlock(st);
}

static void exec_ok(im_store *st, const char *sql)
{
	im_store_lock(st);
	char *msg = NULL;
	int rc = sqlite3_exec(im_store_db(st), sql, NULL, NULL, &msg);
	cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, msg ? msg : "");
	sqlite3_free(msg);
	im_store_unlock(st);
}

static int table_exists(im_store *st, const char *name)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
		 "AND name = '%s'",
		 name);
	return query_int(st, sql);
}

/* --- opening and migrations --------------------------------------------- */

Test(store, migrates_a_new_file_to_the_latest_version)
{
	im_store *st = open_ok(path_in_tmp("im.db"));
	cr_assert_geq(im_store_latest_version(), 1);
	cr_assert_eq(im_store_version(st), im_store_latest_version());
	cr_assert_eq(query_int(st, "SELECT MAX(version) FROM schema_migrations"),
		     im_store_latest_version());
	cr_assert_eq(query_int(st, "SELECT COUNT(*) FROM schema_migrations"),
		     (int)im_migrations_count);
	cr_assert_gt(query_int(st, "SELECT MIN(applied_at) FROM "
				   "schema_migrations"),
		     0);
	cr_assert(table_exists(st, "kv"));
	cr_assert(table_exists(st, "meta"));
	cr_assert_eq(err[0], '\0', "err set on success: %s", err);
	im_store_close(st);
}

Test(store, turns_on_wal_and_the_other_pragmas_for_a_file)
{
	im_store *st = open_ok(path_in_tmp("im.db"));
	char mode[32];
	query_text(st, "PRAGMA journal_mode", mode, sizeof(mode));
	cr_assert_str_eq(mode, "wal");
	cr_assert_eq(query_int(st, "PRAGMA synchronous"), 2); /* FULL */
	cr_assert_eq(query_int(st, "PRAGMA foreign_keys"), 1);
	cr_assert_eq(query_int(st, "PRAGMA busy_timeout"), 5000);
	cr_assert_eq(im_store_kv_put(st, "ns", "k", "v", 1), 0);
	cr_assert_eq(access(path_in_tmp("im.db-wal"), F_OK), 0);
	im_store_close(st);
}

Test(store, keeps_the_database_file_private)
{
	im_store *st = open_ok(path_in_tmp("im.db"));
	struct stat sb;
	cr_assert_eq(stat(path_in_tmp("im.db"), &sb), 0);
	cr_assert_eq(sb.st_mode & 0077, 0, "mode %o", sb.st_mode & 0777);
	im_store_close(st);
}

Test(store, creates_missing_parent_folders_with_mode_0700)
{
	im_store *st = open_ok(path_in_tmp("a/b/c/im.db"));
	const char *dirs[] = {"a", "a/b", "a/b/c"};
	for (size_t i = 0; i < 3; i++) {
		struct stat sb;
		cr_assert_eq(stat(path_in_tmp(dirs[i]), &sb), 0);
		cr_assert(S_ISDIR(sb.st_mode));
		cr_assert_eq(sb.st_mode & 0777, 0700, "%s has mode %o",
			     dirs[i], sb.st_mode & 0777);
	}
	cr_assert_eq(access(path_in_tmp("a/b/c/im.db"), F_OK), 0);
	im_store_close(st);
}

Test(store, reopening_a_migrated_file_changes_nothing)
{
	const char *path = path_in_tmp("im.db");
	im_store *st = open_ok(path);
	cr_assert_eq(im_store_kv_put(st, "ns", "key", "value", 5), 0);
	exec_ok(st, "UPDATE schema_migrations SET applied_at = 42");
	im_store_close(st);

	for (int round = 0; round < 3; round++) {
		st = open_ok(path);
		cr_assert_eq(im_store_version(st), im_store_latest_version());
		cr_assert_eq(
		    query_int(st, "SELECT COUNT(*) FROM schema_migrations"),
		    (int)im_migrations_count);
		cr_assert_eq(query_int(st, "SELECT COUNT(*) FROM "
					   "schema_migrations WHERE "
					   "applied_at <> 42"),
			     0);
		void *val = NULL;
		size_t len = 0;
		cr_assert_eq(im_store_kv_get(st, "ns", "key", &val, &len), 0);
		cr_assert_eq(len, 5);
		cr_assert_arr_eq(val, "value", 5);
		free(val);
		im_store_close(st);
	}
}

Test(store, accepts_an_in_memory_database)
{
	im_store *st = open_ok(":memory:");
	cr_assert_eq(im_store_version(st), im_store_latest_version());
	cr_assert_eq(im_store_kv_put(st, "a", "b", "c", 1), 0);
	im_store_close(st);
}

Test(store, refuses_a_database_newer_than_the_binary)
{
	const char *path = path_in_tmp("im.db");
	im_store *st = open_ok(path);
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "INSERT INTO schema_migrations VALUES (%d, 'future', 0)",
		 im_store_latest_version() + 5);
	exec_ok(st, sql);
	im_store_close(st);

	st = im_store_open(path, err, sizeof(err));
	cr_assert_null(st);
	cr_assert(strstr(err, path), "no path in: %s", err);
	cr_assert(strstr(err, "downgrade"), "unclear message: %s", err);
	char want[64];
	snprintf(want, sizeof(want), "version %d",
		 im_store_latest_version() + 5);
	cr_assert(strstr(err, want), "no version in: %s", err);
}

static const struct im_migration good_v1[] = {
	{1, "first", "CREATE TABLE one (x INTEGER);"},
};

static const struct im_migration broken_v2[] = {
	{1, "first", "CREATE TABLE one (x INTEGER);"},
	{2, "broken",
	 "CREATE TABLE two (x INTEGER);\n"
	 "INSERT INTO one VALUES (1);\n"
	 "INSERT INTO no_such_table VALUES (1);"},
};

static const struct im_migration fixed_v2[] = {
	{1, "first", "CREATE TABLE one (x INTEGER);"},
	{2, "fixed", "CREATE TABLE two (x INTEGER);"},
};

Test(store, a_failing_migration_leaves_the_previous_version)
{
	const char *path = path_in_tmp("im.db");
	im_store *st = im_store_open_with(path, good_v1, 1, err, sizeof(err));
	cr_assert_not_null(st, "%s", err);
	cr_assert_eq(im_store_version(st), 1);
	im_store_close(st);

	st = im_store_open_with(path, broken_v2, 2, err, sizeof(err));
	cr_assert_null(st);
	char want[600];
	snprintf(want, sizeof(want),
		 "%s: migration 2 (broken) failed: no such table: "
		 "no_such_table",
		 path);
	cr_assert_str_eq(err, want);

	st = im_store_open_with(path, good_v1, 1, err, sizeof(err));
	cr_assert_not_null(st, "%s", err);
	cr_assert_eq(im_store_version(st), 1);
	cr_assert_eq(table_exists(st, "two"), 0, "partial migration kept");
	cr_assert_eq(query_int(st, "SELECT COUNT(*) FROM one"), 0);
	cr_assert_eq(query_int(st, "SELECT MAX(version) FROM "
				   "schema_migrations"),
		     1);
	im_store_close(st);

	st = im_store_open_with(path, fixed_v2, 2, err, sizeof(err));
	cr_assert_not_null(st, "%s", err);
	cr_assert_eq(im_store_version(st), 2);
	cr_assert(table_exists(st, "two"));
	im_store_close(st);
}

Test(store, a_failing_first_migration_leaves_a_fresh_file_at_version_zero)
{
	static const struct im_migration bad[] = {
	    {1, "bad", "CREATE TABLE t (x); SELECT * FROM nowhere;"},
	};
	const char *path = path_in_tmp("im.db");
	cr_assert_null(im_store_open_with(path, bad, 1, err, sizeof(err)));
	cr_assert(strstr(err, "migration 1 (bad) failed: no such table"),
		  "%s", err);
	im_store *st = im_store_open_with(path, NULL, 0, err, sizeof(err));
	cr_assert_not_null(st, "%s", err);
	cr_assert_eq(im_store_version(st), 0);
	cr_assert_eq(table_exists(st, "t"), 0);
	im_store_close(st);
}

Test(store, rejects_a_migration_list_out_of_order)
{
	static const struct im_migration unordered[] = {
	    {2, "b", "SELECT 1;"},
	    {1, "a", "SELECT 1;"},
	};
	cr_assert_null(im_store_open_with(path_in_tmp("im.db"), unordered, 2,
					  err, sizeof(err)));
	cr_assert(strstr(err, "migration list"), "%s", err);
}

Test(store, refuses_a_file_that_is_not_a_database)
{
	const char *path = path_in_tmp("notes.txt");
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	for (int i = 0; i < 200; i++)
		fputs("this is certainly not an SQLite database file\n", f);
	fclose(f);

	im_store *st = im_store_open(path, err, sizeof(err));
	cr_assert_null(st);
	cr_assert(strstr(err, path), "no path in: %s", err);
	cr_assert(strstr(err, "file is not a database"), "%s", err);
}

Test(store, reports_a_folder_that_cannot_be_created)
{
	const char *file = path_in_tmp("plain-file");
	FILE *f = fopen(file, "w");
	cr_assert_not_null(f);
	fclose(f);
	const char *path = path_in_tmp("plain-file/sub/im.db");
	im_store *st = im_store_open(path, err, sizeof(err));
	cr_assert_null(st);
	cr_assert(strstr(err, path), "no path in: %s", err);
	cr_assert(strstr(err, "cannot create folder"), "%s", err);
}

Test(store, truncates_errors_to_the_buffer_given)
{
	const char *path = path_in_tmp("plain-file");
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fclose(f);
	char small[9];
	memset(small, 'x', sizeof(small));
	cr_assert_null(im_store_open(path_in_tmp("plain-file/im.db"), small,
				     sizeof(small) - 1));
	cr_assert_eq(small[sizeof(small) - 1], 'x', "wrote past the end");
	cr_assert_eq(strlen(small), sizeof(small) - 2);
	cr_assert_eq(strncmp(small, path, sizeof(small) - 2), 0);
}

/* --- key-value ---------------------------------------------------------- */

Test(store, stores_and_returns_a_value)
{
	im_store *st = open_ok(path_in_tmp("im.db"));
	cr_assert_eq(im_store_kv_put(st, "slack-prod", "cursor", "abc", 3), 0);
	void *val = NULL;
	size_t len = 0;
	cr_assert_eq(im_store_kv_get(st, "slack-prod", "cursor", &val, &len),
		     0);
	cr_assert_eq(len, 3);
	cr_assert_str_eq(val, "abc"); /* NUL-terminated for convenience */
	free(val);
	cr_assert_gt(query_int(st, "SELECT updated_at FROM kv"), 0);
	im_store_close(st);
}

Test(store, overwrites_an_existing_key)
{
	im_store *st = open_ok(path_in_tmp("im.db"));
	cr_assert_eq(im_store_kv_put(st, "ns", "k", "first value", 11), 0);
	cr_assert_eq(im_store_kv_put(st, "ns", "k", "2nd", 3), 0);
	void *val = NULL;
	size_t len = 0;
	cr_assert_eq(im_store_kv_get(st, "ns", "k", &val, &len), 0);
	cr_assert_eq(len, 3);
	cr_assert_arr_eq(val, "2nd", 3);
	free(val);
	cr_assert_eq(query_int(st, "SELECT COUNT(*) FROM kv"), 1);
	im_store_close(st);
}

Test(store, reports_a_missing_key_as_not_found)
{
	im_store *st = open_ok(path_in_tmp("im.db"));
	void *val = (void *)1;
	size_t len = 99;
	cr_assert_eq(im_store_kv_get(st, "ns", "nope", &val, &len),
		     IM_ENOTFOUND);
	cr_assert_null(val);
	cr_assert_eq(len, 0);
	im_store_close(st);
}

Test(store, deletes_a_key)
{
	im_store *st = open_ok(path_in_tmp("im.db"));
	cr_assert_eq(im_store_kv_put(st, "ns", "k", "v", 1), 0);
	cr_assert_eq(im_store_kv_put(st, "ns", "other", "w", 1), 0);
	cr_assert_eq(im_store_kv_del(st, "ns", "k"), 0);
	void *val = NULL;
	size_t len = 0;
	cr_assert_eq(im_store_kv_get(st, "ns", "k", &val, &len), IM_ENOTFOUND);
	cr_assert_eq(im_store_kv_get(st, "ns", "other", &val, &len), 0);
	free(val);
	/* Deleting an absent key is not an error. */
	cr_assert_eq(im_store_kv_del(st, "ns", "k"), 0);
	im_store_close(st);
}

Test(store, keeps_namespaces_apart)
{
	im_store *st = open_ok(path_in_tmp("im.db"));
	cr_assert_eq(im_store_kv_put(st, "a", "k", "from a", 6), 0);
	cr_assert_eq(im_store_kv_put(st, "b", "k", "from b", 6), 0);
	cr_assert_eq(im_store_kv_del(st, "a", "k"), 0);
	void *val = NULL;
	size_t len = 0;
	cr_assert_eq(im_store_kv_get(st, "a", "k", &val, &len), IM_ENOTFOUND);
	cr_assert_eq(im_store_kv_get(st, "b", "k", &val, &len), 0);
	cr_assert_arr_eq(val, "from b", 6);
	free(val);
	im_store_close(st);
}

Test(store, keeps_binary_values_byte_for_byte)
{
	const char *path = path_in_tmp("im.db");
	im_store *st = open_ok(path);
	unsigned char bytes[1024];
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (unsigned char)(i * 7 + 3);
	bytes[0] = 0;
	bytes[500] = 0;
	cr_assert_eq(im_store_kv_put(st, "bin", "blob", bytes, sizeof(bytes)),
		     0);
	im_store_close(st);

	st = open_ok(path);
	void *val = NULL;
	size_t len = 0;
	cr_assert_eq(im_store_kv_get(st, "bin", "blob", &val, &len), 0);
	cr_assert_eq(len, sizeof(bytes));
	cr_assert_arr_eq(val, bytes, sizeof(bytes));
	free(val);
	im_store_close(st);
}

Test(store, keeps_an_empty_value_distinct_from_a_missing_one)
{
	im_store *st = open_ok(path_in_tmp("im.db"));
	cr_assert_eq(im_store_kv_put(st, "ns", "empty", NULL, 0), 0);
	void *val = NULL;
	size_t len = 99;
	cr_assert_eq(im_store_kv_get(st, "ns", "empty", &val, &len), 0);
	cr_assert_eq(len, 0);
	cr_assert_not_null(val);
	free(val);
	im_store_close(st);
}

Test(store, rejects_invalid_kv_arguments)
{
	im_store *st = open_ok(":memory:");
	void *val = NULL;
	size_t len = 0;
	cr_assert_eq(im_store_kv_put(NULL, "ns", "k", "v", 1), IM_EINVAL);
	cr_assert_eq(im_store_kv_put(st, NULL, "k", "v", 1), IM_EINVAL);
	cr_assert_eq(im_store_kv_put(st, "ns", NULL, "v", 1), IM_EINVAL);
	cr_assert_eq(im_store_kv_put(st, "ns", "k", NULL, 1), IM_EINVAL);
	cr_assert_eq(im_store_kv_get(st, "ns", "k", NULL, &len), IM_EINVAL);
	cr_assert_eq(im_store_kv_get(st, NULL, "k", &val, &len), IM_EINVAL);
	cr_assert_eq(im_store_kv_del(st, "ns", NULL), IM_EINVAL);
	im_store_close(st);
}

Test(store, lets_a_caller_holding_the_lock_use_kv_in_a_transaction)
{
	im_store *st = open_ok(path_in_tmp("im.db"));
	im_store_lock(st);
	cr_assert_eq(sqlite3_exec(im_store_db(st), "BEGIN", NULL, NULL, NULL),
		     SQLITE_OK);
	cr_assert_eq(im_store_kv_put(st, "ns", "a", "1", 1), 0);
	cr_assert_eq(im_store_kv_put(st, "ns", "b", "2", 1), 0);
	cr_assert_eq(sqlite3_exec(im_store_db(st), "ROLLBACK", NULL, NULL,
				  NULL),
		     SQLITE_OK);
	im_store_unlock(st);
	void *val = NULL;
	size_t len = 0;
	cr_assert_eq(im_store_kv_get(st, "ns", "a", &val, &len), IM_ENOTFOUND);
	im_store_close(st);
}

struct writer {
	im_store *st;
	int id;
};

#define WRITERS 8
#define WRITES 100

static void *write_many(void *arg)
{
	struct writer *w = arg;
	for (int i = 0; i < WRITES; i++) {
		char key[32], val[32];
		snprintf(key, sizeof(key), "w%d-%d", w->id, i);
		int n = snprintf(val, sizeof(val), "value %d/%d", w->id, i);
		if (im_store_kv_put(w->st, "threads", key, val, (size_t)n))
			return (void *)1;
		void *got = NULL;
		size_t len = 0;
		if (im_store_kv_get(w->st, "threads", key, &got, &len) ||
		    len != (size_t)n || memcmp(got, val, len) != 0) {
			free(got);
			return (void *)1;
		}
		free(got);
	}
	return NULL;
}

Test(store, serves_kv_calls_from_many_threads)
{
	im_store *st = open_ok(path_in_tmp("im.db"));
	pthread_t th[WRITERS];
	struct writer w[WRITERS];
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){st, i};
		cr_assert_eq(pthread_create(&th[i], NULL, write_many, &w[i]),
			     0);
	}
	for (int i = 0; i < WRITERS; i++) {
		void *ret = (void *)1;
		pthread_join(th[i], &ret);
		cr_assert_null(ret, "writer %d failed", i);
	}
	cr_assert_eq(query_int(st, "SELECT COUNT(*) FROM kv"),
		     WRITERS * WRITES);
	im_store_close(st);
}
