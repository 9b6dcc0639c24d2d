/* A well-formed test plugin with a config table, a connector component,
 * routes, and counters the loader tests read through the host. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <im/im.h>

/* The typed config (host->config_fill). */
typedef struct good_cfg {
	const char *greeting;
	int64_t count;
	const char *token;
	int64_t delay_ms;
	double delay_s;
} good_cfg;

typedef struct good {
	const im_host *host;
	im_instance *inst;
	char *greeting;
	good_cfg cfg;
} good;

static const im_config_key keys[] = {
    {IM_CONFIG_KEY_HEADER, "greeting", IM_CFG_STRING, NULL, IM_CFG_REQUIRED,
     "what /hello says", IM_CONFIG_STORE(good_cfg, greeting, IM_STORE_STRING)},
    {IM_CONFIG_KEY_HEADER, "count", IM_CFG_INT, "3", 0, "a number",
     IM_CONFIG_STORE(good_cfg, count, IM_STORE_INT)},
    {IM_CONFIG_KEY_HEADER, "token", IM_CFG_STRING, "\"\"", IM_CFG_SECRET,
     "a secret", IM_CONFIG_STORE(good_cfg, token, IM_STORE_STRING)},
    {IM_CONFIG_KEY_HEADER, "delay", IM_CFG_DURATION, "0s", 0,
     "how long /slow takes", IM_CONFIG_STORE(good_cfg, delay_ms, IM_STORE_MS)},
    {0},
};

static int hello(void *state, const im_http_request *req,
		 im_http_response *resp)
{
	good *g = state;
	return g->host->resp_set(resp, 200, "text/plain", g->greeting,
				 strlen(g->greeting));
}

static int slow(void *state, const im_http_request *req,
		im_http_response *resp)
{
	good *g = state;
	const char *ms = g->host->req_query(req, "ms");
	long n = ms ? strtol(ms, NULL, 10) : 200;
	struct timespec ts = {n / 1000, (n % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	/* The instance must still be alive here even if a reload happened. */
	return g->host->resp_set(resp, 200, "text/plain", g->greeting,
				 strlen(g->greeting));
}

/* GET ?url=...&timeout_ms=... through host->http_send, waiting for the
 * completion that arrives on the host's network thread. */
typedef struct wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, error;
	long status;
	char body[512];
} wait_t;

static void fetched(void *ud, const im_http_result *res)
{
	wait_t *w = ud;
	pthread_mutex_lock(&w->mu);
	w->error = res->error;
	w->status = res->status;
	snprintf(w->body, sizeof(w->body), "%s",
		 res->error ? res->error_text : res->body);
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static int fetch(void *state, const im_http_request *req,
		 im_http_response *resp)
{
	good *g = state;
	const char *url = g->host->req_query(req, "url");
	const char *tmo = g->host->req_query(req, "timeout_ms");
	wait_t w = {.mu = PTHREAD_MUTEX_INITIALIZER,
		    .cv = PTHREAD_COND_INITIALIZER};
	im_http_call call = {.struct_size = sizeof(call),
			     .url = url,
			     .timeout_ms = tmo ? (uint32_t)atoi(tmo) : 0};
	int rc = g->host->http_send(g->inst, &call, fetched, &w);
	if (rc != 0)
		return g->host->resp_set(resp, 400, "text/plain", "refused", 7);
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	char out[700];
	int n = snprintf(out, sizeof(out), "%ld %s", w.status, w.body);
	int code = w.error == IM_ETIMEDOUT ? 504 : w.error ? 502 : 200;
	return g->host->resp_set(resp, code, "text/plain", out, (size_t)n);
}

/* GET ?url=...: the blocking http_fetch from a route handler, which the
 * host refuses (it would hold an HTTP worker). */
static int fetch_sync(void *state, const im_http_request *req,
		      im_http_response *resp)
{
	good *g = state;
	im_http_call call = {.struct_size = sizeof(call),
			     .url = g->host->req_query(req, "url")};
	im_http_result *res = NULL;
	int rc = g->host->http_fetch(g->inst, &call, &res);
	if (res)
		g->host->http_result_free(res);
	return rc == 0 ? g->host->resp_set(resp, 200, "text/plain", "ran", 3)
		       : g->host->resp_set(resp, 409, "text/plain", "refused",
					   7);
}

static int status(void *state, json_t **out)
{
	good *g = state;
	*out = json_pack("{s:b,s:s,s:{s:s,s:I,s:s,s:I}}", "connected", 1,
			 "greeting", g->greeting, "typed", "greeting",
			 g->cfg.greeting, "count", (json_int_t)g->cfg.count,
			 "token", g->cfg.token, "delay_ms",
			 (json_int_t)g->cfg.delay_ms);
	return 0;
}

static int start(void *state)
{
	good *g = state;
	g->host->set_connected(g->inst, "test", 1);
	return 0;
}

/* Like a real connector, it reports its link down when it stops. */
static void stop(void *state)
{
	good *g = state;
	g->host->set_connected(g->inst, "test", 0);
}

static int create(const im_host *host, im_instance *inst,
		  const json_t *config, void **state)
{
	good *g = calloc(1, sizeof(*g));
	if (!g)
		return IM_ENOMEM;
	g->host = host;
	g->inst = inst;
	g->greeting = strdup(
	    json_string_value(json_object_get(config, "greeting")));
	if (IM_HOST_HAS(host, config_fill) &&
	    host->config_fill(inst, &g->cfg, sizeof(g->cfg)) != 0) {
		free(g->greeting);
		free(g);
		return IM_ECONFIG;
	}
	host->route_add(inst, "GET", "hello", hello);
	host->route_add(inst, "GET", "slow", slow);
	host->route_add(inst, "GET", "fetch", fetch);
	host->route_add(inst, "GET", "fetchsync", fetch_sync);
	*state = g;
	return 0;
}

static void destroy(void *state)
{
	good *g = state;
	free(g->greeting);
	free(g);
}

static const im_connector connector = {
    .base = {sizeof(im_connector), IM_COMPONENT_CONNECTOR, "good"},
    .platform = "test",
    .start = start,
    .stop = stop,
    .status = status,
};

static const im_component *const components[] = {&connector.base, NULL};

static const im_plugin_desc desc = {
    IM_PLUGIN_HEADER,
    .name = "good",
    .version = "2.1.0",
    .description = "a plugin that loads",
    .vendor = "tests",
    .license = "MIT",
    .components = components,
    .config_keys = keys,
    .create = create,
    .destroy = destroy,
};

IM_PLUGIN_DEFINE(desc)
