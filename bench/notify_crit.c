/* Critical-notification latency: declares N SEV-1 incidents through the
 * API, one every INTERVAL ms, spread over services crit0..crit<S-1> (each
 * routed to its own channel), then reads the fake platform's record and
 * prints the time from each declare request to the platform's receipt.
 * usage: bench-notify-crit API_URL FAKE_URL N INTERVAL_MS S */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

static double wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

typedef struct buf {
	char *p;
	size_t n;
} buf;

static size_t on_data(char *d, size_t sz, size_t n, void *ud)
{
	buf *b = ud;
	char *p = realloc(b->p, b->n + sz * n + 1);
	if (!p)
		return 0;
	memcpy(p + b->n, d, sz * n);
	b->p = p;
	b->n += sz * n;
	p[b->n] = '\0';
	return sz * n;
}

static long request(CURL *c, const char *url, const char *body, buf *out)
{
	struct curl_slist *h =
	    curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	long status = 0;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	return status;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: %s API FAKE N INTERVAL_MS S\n",
			argv[0]);
		return 2;
	}
	int n = atoi(argv[3]), s = atoi(argv[5]);
	long interval = atol(argv[4]);
	if (n < 1 || n > 100000 || s < 1)
		return 2;
	double *t0 = calloc((size_t)n, sizeof(*t0));
	double *lat = calloc((size_t)n, sizeof(*lat));
	double api_max = 0; /* the declare call itself, commit included */
	CURL *c = curl_easy_init();
	char url[512], body[256];
	snprintf(url, sizeof(url), "%s/api/v1/incidents", argv[1]);
	for (int k = 0; k < n; k++) {
		snprintf(body, sizeof(body),
			 "{\"title\":\"critical-%d-x\",\"severity\":\"SEV-1\","
			 "\"service\":\"crit%d\"}",
			 k, k % s);
		buf b = {0};
		t0[k] = wall();
		long st = request(c, url, body, &b);
		free(b.p);
		if (wall() - t0[k] > api_max)
			api_max = wall() - t0[k];
		if (st != 201) {
			fprintf(stderr, "declare answered %ld\n", st);
			return 1;
		}
		sleep_ms(interval);
	}
	int found = 0;
	snprintf(url, sizeof(url), "%s/_messages", argv[2]);
	for (int tries = 0; tries < 60 && found < n; tries++) {
		sleep_ms(500);
		buf b = {0};
		request(c, url, NULL, &b);
		json_t *msgs = json_loads(b.p ? b.p : "[]", 0, NULL);
		free(b.p);
		found = 0;
		size_t i;
		json_t *m;
		json_array_foreach(msgs, i, m)
		{
			const char *text = json_string_value(json_object_get(
			    json_object_get(m, "body"), "text"));
			const char *p = text ? strstr(text, "critical-") : NULL;
			if (!p)
				continue;
			int k = atoi(p + 9);
			if (k < 0 || k >= n)
				continue;
			lat[k] =
			    json_real_value(json_object_get(m, "t")) - t0[k];
			found++;
		}
		json_decref(msgs);
	}
	curl_easy_cleanup(c);
	if (found < n) {
		printf("critical: only %d of %d delivered\n", found, n);
		return 1;
	}
	qsort(lat, (size_t)n, sizeof(*lat), cmp);
	printf("critical_latency_ms n=%d p50=%.1f p90=%.1f p99=%.1f max=%.1f "
	       "(slowest declare call alone: %.1f)\n",
	       n, lat[n / 2] * 1e3, lat[(n * 9) / 10] * 1e3,
	       lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] * 1e3,
	       lat[n - 1] * 1e3, api_max * 1e3);
	free(t0);
	free(lat);
	return 0;
}
