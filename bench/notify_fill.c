/* Commits N incidents through the real repo with the notification hook of
 * the config, so the outbox fills exactly as under `im serve`, without a
 * server (so bench/notify.sh can time delivery of a known backlog).
 * usage: bench-notify-fill CONFIG_DIR N SEV SERVICE_PREFIX N_SERVICES */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "config/config.h"
#include "incident/repo.h"
#include "notify/notify.h"
#include "store/store.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr,
			"usage: %s CONFIG_DIR N SEV PREFIX N_SERVICES\n",
			argv[0]);
		return 2;
	}
	long n = atol(argv[2]), ns = atol(argv[5]);
	if (n < 1 || n > 10000000 || ns < 1)
		return 2;
	char err[2048];
	im_config *cfg = im_config_load_dir(argv[1], err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	im_store *st =
	    im_store_open(im_config_string(cfg, "storage.path", "./var/im.db"),
			  err, sizeof(err));
	if (!st || im_notify_prepare(st, cfg, false) != 0) {
		fprintf(stderr, "%s\n", st ? "prepare failed" : err);
		return 1;
	}
	im_actor who = {.id = "bench", .via = "bench"};
	double t0 = now_s();
	int rc = 0;
	for (long i = 0; i < n && rc == 0; i++) {
		char title[64], svc[64];
		snprintf(title, sizeof(title), "backlog %ld", i);
		snprintf(svc, sizeof(svc), "%s%ld", argv[4], i % ns);
		json_t *f = json_pack("{s:s,s:s,s:s}", "title", title,
				      "severity", argv[3], "service", svc);
		im_write w;
		im_err e;
		rc = im_inc_declare(st, f, &who, NULL, &w, &e);
		if (rc != 0)
			fprintf(stderr, "declare: %s\n", e.message);
		im_write_clear(&w);
		json_decref(f);
	}
	printf("%ld declares in %.2f s\n", n, now_s() - t0);
	im_notify_stop();
	im_store_close(st);
	im_config_free(cfg);
	return rc ? 1 : 0;
}
