/*
 * tests/crash/crash_writer.c - the process test_crash cuts: declares
 * incidents through the real repo and group writer on the power-cut VFS,
 * from several threads, each with an idempotency key, and prints one line
 * per acknowledged write ("ack KEY NUMBER") the moment it is answered.
 * An outbox hook adds a row per event in the same transaction, so the
 * test can check that events and their outbox rows commit together.
 *
 * Usage: crash-writer DB full|normal CRASH_AT SEED THREADS PREFIX COUNT
 * CRASH_AT 0 runs to the end and prints "io N": the writes and syncs
 * seen until the last answer (the close's checkpoint not counted).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <im/types.h>

#include "incident/repo.h"
#include "powercut.h"
#include "store/store.h"

static im_store *st;
static const char *prefix;
static int count, threads;

static int outbox_row(sqlite3 *db, const im_repo_event *event)
{
	sqlite3_stmt *q = im_store_stmt(db, "INSERT INTO crash_outbox(seq) "
					    "VALUES (?)");
	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, event->seq);
	int rc = sqlite3_step(q) == SQLITE_DONE ? 0 : -1;
	im_store_stmt_done(q);
	return rc;
}

/* One line per answer, in one write() so lines never interleave. */
static void say(const char *fmt, const char *key, long long num)
{
	char line[256];
	int n = snprintf(line, sizeof(line), fmt, key, num);
	if (n > 0 && write(1, line, (size_t)n) != n)
		_exit(3);
}

static void *worker(void *arg)
{
	int t = (int)(long)arg;
	im_actor who = {.id = "crash", .via = "test"};
	for (int i = t; i < count; i += threads) {
		char key[128], title[160];
		snprintf(key, sizeof(key), "%s-%d", prefix, i);
		snprintf(title, sizeof(title), "crash %s", key);
		json_t *f = json_pack("{s:s}", "title", title);
		im_write w;
		im_err err = {0};
		if (im_inc_declare(st, f, &who, key, &w, &err) == 0)
			say("ack %s %lld\n", key,
			    json_integer_value(
				json_object_get(w.incident, "number")));
		else
			say("fail %s %lld\n", key, err.status);
		im_write_clear(&w);
		json_decref(f);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 8) {
		fprintf(stderr, "usage: crash-writer DB full|normal CRASH_AT "
				"SEED THREADS PREFIX COUNT\n");
		return 2;
	}
	long crash_at = atol(argv[3]);
	threads = atoi(argv[5]);
	prefix = argv[6];
	count = atoi(argv[7]);
	if (threads < 1 || threads > 64 || count < 0 ||
	    powercut_install(crash_at, (unsigned)atol(argv[4])) != 0)
		return 2;
	char err[512];
	st = im_store_open(argv[1], err, sizeof(err));
	if (!st) {
		fprintf(stderr, "crash-writer: %s\n", err);
		return 1;
	}
	sqlite3 *db = im_store_db(st);
	if (!strcmp(argv[2], "normal"))
		sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	if (sqlite3_exec(db,
			 "CREATE TABLE IF NOT EXISTS crash_outbox(seq INTEGER "
			 "PRIMARY KEY)",
			 NULL, NULL, NULL) != SQLITE_OK)
		return 1;
	im_repo_set_outbox_hook(outbox_row);
	pthread_t t[64];
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, (void *)(long)i);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	/* The writes' I/O, before the checkpoint of the last close. */
	printf("io %ld\n", powercut_io_count());
	fflush(stdout);
	im_store_close(st);
	return 0;
}
