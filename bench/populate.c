/* Fills a store with N incidents (mixed states, severities, services) and
 * one declare event each, in one transaction, for list benchmarks; with
 * "open", every incident is open (for benchmarks that acknowledge them).
 * usage: bench-populate DB_PATH N [open] */
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

int main(int argc, char **argv)
{
	if (argc != 3 && !(argc == 4 && !strcmp(argv[3], "open"))) {
		fprintf(stderr, "usage: %s DB N [open]\n", argv[0]);
		return 2;
	}
	bool all_open = argc == 4;
	long n = atol(argv[2]);
	if (n < 1 || n > 10000000)
		return 2;
	char err[512];
	im_store *st = im_store_open(argv[1], err, sizeof(err));
	if (!st) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	static const char *const states[] = {"closed", "closed", "closed",
					     "resolved", "open", "acknowledged",
					     "mitigated", "canceled"};
	sqlite3 *db = im_store_db(st);
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	sqlite3_stmt *ins, *ev;
	sqlite3_prepare_v2(db,
			   "INSERT INTO incidents(number,title,description,"
			   "severity,status,service,commander,created_at,"
			   "updated_at) VALUES (?,?,'',?,?,?,NULL,?,?)",
			   -1, &ins, NULL);
	sqlite3_prepare_v2(db,
			   "INSERT INTO events(seq,incident,type,time,body) "
			   "VALUES (?,?,'im.incident.declare',?,'{}')",
			   -1, &ev, NULL);
	long long t = 1700000000000LL;
	for (long i = 1; i <= n; i++) {
		char title[64], service[32];
		snprintf(title, sizeof(title), "Generated incident %ld", i);
		snprintf(service, sizeof(service), "svc-%ld", i % 50);
		sqlite3_bind_int64(ins, 1, i);
		sqlite3_bind_text(ins, 2, title, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(ins, 3, (int)(i % 4) + 1);
		sqlite3_bind_text(ins, 4, all_open ? "open" : states[i % 8], -1,
				  SQLITE_STATIC);
		sqlite3_bind_text(ins, 5, service, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(ins, 6, t + i * 1000);
		sqlite3_bind_int64(ins, 7, t + i * 1000);
		sqlite3_step(ins);
		sqlite3_reset(ins);
		sqlite3_bind_int64(ev, 1, i);
		sqlite3_bind_int64(ev, 2, i);
		sqlite3_bind_int64(ev, 3, t + i * 1000);
		sqlite3_step(ev);
		sqlite3_reset(ev);
	}
	sqlite3_finalize(ins);
	sqlite3_finalize(ev);
	int rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	im_store_close(st);
	printf("populated %ld incidents\n", n);
	return rc == SQLITE_OK ? 0 : 1;
}
