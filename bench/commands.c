/* Issue 4 figures.
 *   bench-commands inproc N
 *     time to first answer of N chat commands dispatched in-process
 *     (echo verb: routing, worker hand-off, reply JSON), p50/p99/max.
 *   bench-commands http URL N SLEEP_MS
 *     N concurrent invocations of `sleep SLEEP_MS` through the test
 *     connector over HTTP: when each first answer arrived, then how long
 *     until every result came back through the follow-up path. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "command/command.h"
#include "config/config.h"
#include "log/log.h"
#include "plugin/plugin.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void report(const char *what, double *t, int n)
{
	qsort(t, (size_t)n, sizeof(*t), cmp);
	printf("RESULT %s n=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", what, n,
	       t[n / 2] * 1e3, t[(n * 99) / 100] * 1e3, t[n - 1] * 1e3);
}

typedef struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	double at;
} waiter;

static void on_first(void *ud, const im_invocation *inv, const json_t *r)
{
	waiter *w = ud;
	pthread_mutex_lock(&w->mu);
	w->at = now();
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static int inproc(int n)
{
	char err[1024];
	const char *b = getenv("IM_BENCH_BUILDDIR");
	char yaml[1024];
	snprintf(yaml, sizeof(yaml),
		 "plugins:\n  dirs: [\"%s/plugins\", \"%s/tests/loader\"]\n"
		 "  instances:\n    - {id: tc, module: testconn}\n"
		 "    - {id: echo, module: echo}\n",
		 b ? b : "build", b ? b : "build");
	im_log_set_level(IM_LOG_WARN);
	im_config *cfg = im_config_load_string("bench.yaml", yaml, err,
					       sizeof(err));
	im_snapshot *s = cfg ? im_registry_build(cfg, err, sizeof(err)) : NULL;
	if (!s) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	im_registry_swap(s);
	im_instance *tc = im_snapshot_find(s, "tc");
	double *t = calloc((size_t)n, sizeof(double));
	im_invocation inv = {.struct_size = sizeof(inv), .platform = "test",
			     .instance = "tc", .user_id = "U1",
			     .command = "/incident", .text = "echo hello"};
	for (int i = 0; i < n; i++) {
		waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			    0, 0};
		double t0 = now();
		im_command_dispatch(tc, &inv, on_first, &w);
		pthread_mutex_lock(&w.mu);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
		t[i] = w.at - t0;
	}
	report("first_answer_inproc", t, n);
	free(t);
	im_command_shutdown();
	im_registry_shutdown();
	im_config_free(cfg);
	return 0;
}

typedef struct call {
	double t0, t1;
	long status;
	char body[256];
	size_t len;
} call;

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
	call *c = ud;
	size_t n = sz * nm, room = sizeof(c->body) - 1 - c->len;
	memcpy(c->body + c->len, p, n < room ? n : room);
	c->len += n < room ? n : room;
	c->body[c->len] = '\0';
	return n;
}

static int over_http(const char *url, int n, int sleep_ms)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURLM *m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
	call *calls = calloc((size_t)n, sizeof(call));
	char body[128], cmd_url[512], fu_url[512];
	snprintf(body, sizeof(body), "{\"text\":\"sleep %d\",\"user_id\":\"U1\"}",
		 sleep_ms);
	snprintf(cmd_url, sizeof(cmd_url), "%s/hooks/tc/command", url);
	snprintf(fu_url, sizeof(fu_url), "%s/hooks/tc/followups", url);
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	double start = now();
	for (int i = 0; i < n; i++) {
		CURL *e = curl_easy_init();
		curl_easy_setopt(e, CURLOPT_URL, cmd_url);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &calls[i]);
		curl_easy_setopt(e, CURLOPT_PRIVATE, &calls[i]);
		curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
		calls[i].t0 = now();
		curl_multi_add_handle(m, e);
	}
	int running = n, done = 0;
	while (done < n && now() - start < 60) {
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			call *c;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
					  (char **)&c);
			curl_easy_getinfo(msg->easy_handle,
					  CURLINFO_RESPONSE_CODE, &c->status);
			c->t1 = now();
			curl_multi_remove_handle(m, msg->easy_handle);
			curl_easy_cleanup(msg->easy_handle);
			done++;
		}
		curl_multi_poll(m, NULL, 0, 50, NULL);
	}
	double *t = calloc((size_t)n, sizeof(double));
	int working = 0, ok200 = 0;
	for (int i = 0; i < n; i++) {
		t[i] = (calls[i].t1 > 0 ? calls[i].t1 : now()) - start;
		ok200 += calls[i].status == 200;
		working += strstr(calls[i].body, "working") != NULL;
	}
	report("first_answer_http_since_start", t, n);
	printf("RESULT first_answers status_200=%d working=%d of %d\n", ok200,
	       working, n);
	/* Poll the follow-ups until all results are in (bounded). */
	int got = 0;
	double t_all = 0;
	CURL *e = curl_easy_init();
	while (now() - start < sleep_ms / 1000.0 + 60 && got < n) {
		call c = {0};
		char *big = NULL;
		size_t blen = 0;
		FILE *mem = open_memstream(&big, &blen);
		curl_easy_setopt(e, CURLOPT_URL, fu_url);
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, NULL);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, mem);
		curl_easy_perform(e);
		fclose(mem);
		got = 0;
		for (char *p = big; p && (p = strstr(p, "slept ")); p++)
			got++;
		free(big);
		(void)c;
		if (got >= n)
			t_all = now() - start;
		else
			usleep(200000);
	}
	curl_easy_cleanup(e);
	printf("RESULT followups delivered=%d of %d all_in_s=%.2f (handler "
	       "sleeps %.1f s)\n",
	       got, n, t_all, sleep_ms / 1000.0);
	curl_slist_free_all(h);
	curl_multi_cleanup(m);
	free(calls);
	free(t);
	return got == n && working == n ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "inproc") == 0)
		return inproc(atoi(argv[2]));
	if (argc >= 5 && strcmp(argv[1], "http") == 0)
		return over_http(argv[2], atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: %s inproc N | http URL N SLEEP_MS\n", argv[0]);
	return 2;
}
