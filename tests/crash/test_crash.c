/*
 * tests/crash/test_crash.c - crash consistency of incident writes.
 *
 * crash-writer declares incidents from four threads on the power-cut VFS
 * (tests/crash/powercut.c): what was not synced is lost when the process
 * dies. Each round cuts it at a random write or sync of the commit path
 * (a torn sync included) or kills it at a random moment, then checks the
 * database as the next process finds it: intact; every acknowledged
 * incident present; events, outbox rows and incidents in step. A rerun of
 * the same requests (same idempotency keys) then must answer the
 * acknowledged ones with their first result and create each incident
 * exactly once. With synchronous=NORMAL the same check must find lost
 * acknowledged writes, which shows it can fail.
 *
 * Seeds come from IM_CRASH_SEED when set (to replay a failure), else the
 * time; every assertion message names the seed.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../tmpdir.h"

#define KEYS 60
#define THREADS "4"

static char dir[256], db_path[512], writer[512];
static unsigned seed;

typedef struct run {
	long long num[KEYS]; /* acknowledged number per key, 0 = none */
	int acks, fails;
	long io;             /* from a run to the end */
	bool cut;            /* ended by the power cut or the kill */
} run;

static void setup(void)
{
	const char *b = getenv("IM_TEST_BUILDDIR");
	snprintf(writer, sizeof(writer), "%s/tests/crash/crash-writer",
		 b ? b : ".");
	cr_assert_not_null(tmpdir_make(dir, sizeof(dir), "im-test-crash"));
	snprintf(db_path, sizeof(db_path), "%s/im.db", dir);
	const char *s = getenv("IM_CRASH_SEED");
	seed = s ? (unsigned)atol(s) : (unsigned)time(NULL) ^ (unsigned)getpid();
}

static void teardown(void)
{
	tmpdir_remove(dir);
}

TestSuite(crash, .init = setup, .fini = teardown, .timeout = 170);

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void parse_line(run *r, const char *prefix, const char *line)
{
	char key[128];
	long long v;
	size_t plen = strlen(prefix);
	int i;
	if (sscanf(line, "io %lld", &v) == 1) {
		r->io = (long)v;
	} else if (sscanf(line, "ack %127s %lld", key, &v) == 2 &&
		   !strncmp(key, prefix, plen) && key[plen] == '-' &&
		   (i = atoi(key + plen + 1)) >= 0 && i < KEYS) {
		r->num[i] = v;
		r->acks++;
	} else if (!strncmp(line, "fail ", 5)) {
		r->fails++;
	}
}

/* Runs crash-writer and reads its answers; kill_ms > 0 kills it then.
 * Bounded: 60 s at most. */
static void run_writer(const char *mode, long crash_at, const char *prefix,
		       long kill_ms, run *r)
{
	int fds[2];
	memset(r, 0, sizeof(*r));
	cr_assert_eq(pipe(fds), 0);
	char at[32], sd[32], n[16];
	snprintf(at, sizeof(at), "%ld", crash_at);
	snprintf(sd, sizeof(sd), "%u", seed);
	snprintf(n, sizeof(n), "%d", KEYS);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(writer, writer, db_path, mode, at, sd, THREADS, prefix, n,
		      (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	char buf[65536];
	size_t len = 0;
	long long start = now_ms(), kill_at = kill_ms > 0 ? start + kill_ms : 0;
	for (;;) {
		long long now = now_ms();
		if (kill_at && now >= kill_at) {
			kill(pid, SIGKILL);
			kill_at = 0;
		}
		if (now - start > 60000) {
			kill(pid, SIGKILL);
			cr_assert_fail("crash-writer ran over 60 s (seed %u)",
				       seed);
		}
		struct pollfd p = {.fd = fds[0], .events = POLLIN};
		if (poll(&p, 1, 1) <= 0)
			continue;
		ssize_t got = read(fds[0], buf + len, sizeof(buf) - 1 - len);
		if (got <= 0)
			break;
		len += (size_t)got;
		cr_assert_lt(len, sizeof(buf) - 1);
	}
	close(fds[0]);
	buf[len] = '\0';
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		parse_line(r, prefix, line);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	bool cut = (WIFEXITED(status) && WEXITSTATUS(status) == 77) ||
		   (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	cr_assert(cut || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
		  "crash-writer ended with status %d (seed %u)", status, seed);
	r->cut = cut;
}

static long long query_int(sqlite3 *db, const char *sql, const char *arg)
{
	sqlite3_stmt *q;
	long long v = -1;
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK,
		     "%s: %s", sql, sqlite3_errmsg(db));
	if (arg)
		sqlite3_bind_text(q, 1, arg, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return v;
}

/* Acknowledged incidents of `r` missing from the database. */
static int count_lost(sqlite3 *db, const char *prefix, const run *r)
{
	int lost = 0;
	for (int i = 0; i < KEYS; i++) {
		if (!r->num[i])
			continue;
		char title[160], sql[128];
		snprintf(title, sizeof(title), "crash %s-%d", prefix, i);
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM incidents WHERE number = %lld "
			 "AND title = ?",
			 r->num[i]);
		lost += query_int(db, sql, title) != 1;
	}
	return lost;
}

static sqlite3 *open_db(void)
{
	sqlite3 *db;
	cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL),
		     SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/* The database as the next process finds it: intact, and incidents,
 * events and outbox rows in step (each declare made one of each). */
static void check_intact(sqlite3 *db, const char *when)
{
	sqlite3_stmt *q;
	cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q,
					NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(q, 0), "ok",
			 "%s (seed %u)", when, seed);
	sqlite3_finalize(q);
	long long inc = query_int(db, "SELECT count(*) FROM incidents", NULL);
	long long ev = query_int(db, "SELECT count(*) FROM events", NULL);
	long long ob = query_int(db, "SELECT count(*) FROM crash_outbox", NULL);
	cr_assert_eq(ev, inc, "%s: %lld events for %lld incidents (seed %u)",
		     when, ev, inc, seed);
	cr_assert_eq(ob, ev, "%s: %lld outbox rows for %lld events (seed %u)",
		     when, ob, ev, seed);
}

/* The rerun answers every key; acknowledged ones with their first
 * number; and each incident exists once. */
static void check_rerun(sqlite3 *db, const char *prefix, const run *before,
			const run *after)
{
	cr_assert_eq(after->acks, KEYS, "rerun of %s: %d of %d answered "
					"(seed %u)",
		     prefix, after->acks, KEYS, seed);
	for (int i = 0; i < KEYS; i++) {
		char title[160];
		snprintf(title, sizeof(title), "crash %s-%d", prefix, i);
		cr_assert_eq(query_int(db,
				       "SELECT count(*) FROM incidents WHERE "
				       "title = ?",
				       title),
			     1, "%s stored more or less than once (seed %u)",
			     title, seed);
		if (before->num[i])
			cr_assert_eq(after->num[i], before->num[i],
				     "%s was answered INC-%lld, then INC-%lld "
				     "(seed %u)",
				     title, before->num[i], after->num[i],
				     seed);
	}
}

Test(crash, loses_no_acknowledged_write_and_duplicates_none_at_random_cuts)
{
	run cal, r, again;
	run_writer("full", 0, "cal", 0, &cal);
	cr_assert_eq(cal.acks, KEYS);
	/* At least a write and a sync per batch of (at most) THREADS keys:
	 * a WAL commit reaches the file as one write (core/store/walbuf.h). */
	cr_assert_geq(cal.io, KEYS / 2, "the power-cut VFS saw the writes");
	unsigned rs = seed;
	int cuts = 0, acked_at_cut = 0;
	for (int round = 0; round < 12; round++) {
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "r%d", round);
		long at = 0, kill_ms = 0;
		if (round % 3 == 2)
			kill_ms = 5 + (long)(rand_r(&rs) % 60);
		else
			at = 1 + (long)(rand_r(&rs) % (unsigned)cal.io);
		run_writer("full", at, prefix, kill_ms, &r);
		cuts += r.cut;
		acked_at_cut += r.cut ? r.acks : 0;
		sqlite3 *db = open_db();
		check_intact(db, "after the cut");
		cr_assert_eq(count_lost(db, prefix, &r), 0,
			     "round %d (cut at I/O %ld, kill at %ld ms): "
			     "acknowledged incidents lost (seed %u)",
			     round, at, kill_ms, seed);
		sqlite3_close(db);
		run_writer("full", 0, prefix, 0, &again);
		db = open_db();
		check_intact(db, "after the rerun");
		check_rerun(db, prefix, &r, &again);
		sqlite3_close(db);
	}
	cr_assert_geq(cuts, 6, "only %d of 12 rounds were cut (seed %u)", cuts,
		      seed);
	cr_assert_gt(acked_at_cut, 0, "no cut came after an answer (seed %u)",
		     seed);
}

Test(crash, finds_lost_writes_when_commits_are_not_synced)
{
	run cal, r;
	run_writer("normal", 0, "cal", 0, &cal);
	cr_assert_eq(cal.acks, KEYS);
	unsigned rs = seed;
	int lost = 0;
	for (int round = 0; round < 8 && !lost; round++) {
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "n%d", round);
		/* In the second quarter: after some answers, and before the
		 * end even when this run batches more (fewer I/O calls). */
		long at = cal.io / 4 + 1 + (long)(rand_r(&rs) % (unsigned)(cal.io / 4));
		run_writer("normal", at, prefix, 0, &r);
		sqlite3 *db = open_db();
		lost += count_lost(db, prefix, &r);
		sqlite3_close(db);
	}
	cr_assert_gt(lost, 0, "synchronous=NORMAL lost nothing at a power "
			      "cut: the check cannot see a lost write (seed %u)",
		     seed);
}
