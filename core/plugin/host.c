/* The im_host table: the only way plugins reach the host. Each function
 * checks its arguments, since a plugin bug must not crash the host. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "net/net.h"
#include "plugin/plugin.h"
#include "store/store.h"

/* The network thread (and libcurl's TLS set-up, a few MB of resident
 * pages) starts on the first outbound request, not at start-up. */
static pthread_mutex_t net_mu = PTHREAD_MUTEX_INITIALIZER;
static struct im_net *host_net;
static bool net_enabled;

static struct im_store *host_store;

void im_host_bind(struct im_store *store)
{
	host_store = store;
	pthread_mutex_lock(&net_mu);
	net_enabled = true;
	pthread_mutex_unlock(&net_mu);
}

void im_host_unbind(void)
{
	pthread_mutex_lock(&net_mu);
	struct im_net *n = host_net;
	host_net = NULL;
	net_enabled = false;
	pthread_mutex_unlock(&net_mu);
	im_net_stop(n);
	host_store = NULL;
}

void im_host_isolate(void)
{
	host_net = NULL;
	net_enabled = false;
	host_store = NULL;
}

static struct im_net *net_get(void)
{
	pthread_mutex_lock(&net_mu);
	if (!host_net && net_enabled && im_net_start(&host_net) != 0)
		host_net = NULL;
	struct im_net *n = host_net;
	pthread_mutex_unlock(&net_mu);
	return n;
}

static void h_logv(im_instance *in, im_log_level lvl, const char *fmt,
		   va_list ap)
{
	im_logv(lvl, "plugin", in ? in->module_name : "?", in ? in->id : NULL,
		fmt, ap);
}

static void h_log(im_instance *in, im_log_level lvl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	h_logv(in, lvl, fmt, ap);
	va_end(ap);
}

static int h_log_enabled(im_instance *in, im_log_level lvl)
{
	return lvl >= im_log_get_level();
}

static const char *h_instance_id(im_instance *in)
{
	return in ? in->id : NULL;
}

static const json_t *h_config(im_instance *in)
{
	return in ? in->config : NULL;
}

static void h_set_state(im_instance *in, im_instance_state st,
			const char *reason)
{
	if (in && (unsigned)st <= IM_STATE_STOPPED)
		im_instance_set_state(in, st, reason);
}

im_metric *im_connection_gauge(void)
{
	static const char *const labels[] = {"platform", "instance", NULL};
	return im_metrics_family(
	    "chatops_connection_status",
	    "Connection health per connector instance (1 = connected)",
	    IM_METRIC_GAUGE, labels, NULL, 0);
}

static void h_set_connected(im_instance *in, const char *platform,
			    int connected)
{
	im_metric *m = im_connection_gauge();
	if (!in || !platform || !m ||
	    __atomic_load_n(&in->stopping, __ATOMIC_ACQUIRE))
		return;
	if (!in->platform[0])
		snprintf(in->platform, sizeof(in->platform), "%s", platform);
	const char *v[] = {platform, in->id, NULL};
	im_metric_set(m, v, connected ? 1 : 0);
}

static int h_route_add(im_instance *in, const char *method, const char *path,
		       im_route_fn fn)
{
	if (!in || !in->creating || !method || !path || !fn)
		return IM_EINVAL;
	if (path[0] == '/')
		path++;
	im_route *n = realloc(in->routes, (in->n_routes + 1) * sizeof(*n));
	if (!n)
		return IM_ENOMEM;
	in->routes = n;
	im_route *r = &n[in->n_routes];
	r->method = strdup(method);
	r->path = strdup(path);
	r->fn = fn;
	if (!r->method || !r->path) {
		free(r->method);
		free(r->path);
		return IM_ENOMEM;
	}
	in->n_routes++;
	return 0;
}

static const char *h_req_method(const im_http_request *req)
{
	return req ? req->method : NULL;
}

static const char *h_req_path(const im_http_request *req)
{
	return req ? req->rest : NULL;
}

static const char *h_req_header(const im_http_request *req, const char *name)
{
	return req && name ? im_req_header(req, name) : NULL;
}

static const char *h_req_query(const im_http_request *req, const char *name)
{
	return req && name ? im_req_query(req, name) : NULL;
}

static const char *h_req_body(const im_http_request *req, size_t *len)
{
	if (!req)
		return NULL;
	if (len)
		*len = req->body_len;
	return req->body;
}

static int h_resp_set(im_http_response *resp, int status, const char *ctype,
		      const void *body, size_t len)
{
	if (!resp || status < 100 || status > 599 || (len && !body))
		return IM_EINVAL;
	return im_resp_set(resp, status, ctype, body, len);
}

static int h_resp_header(im_http_response *resp, const char *name,
			 const char *value)
{
	if (!resp || !name || !value || strpbrk(name, "\r\n:") ||
	    strpbrk(value, "\r\n"))
		return IM_EINVAL;
	return im_resp_header(resp, name, value);
}

static int h_config_fill(im_instance *in, void *dst, size_t size)
{
	if (!in || !in->mod || !dst)
		return IM_EINVAL;
	char why[256];
	int rc = im_config_fill(in->mod->desc.config_keys, in->config, dst,
				size, why, sizeof why);
	if (rc)
		LOG_ERROR("host",
			  "plugin %s: config_fill: %s; fix the key table and "
			  "rebuild",
			  in->module_name ? in->module_name : "?", why);
	return rc;
}

/* 1.0-1.2 plugins wrote headers as two pointers (no struct_size). */
typedef struct legacy_header {
	const char *name, *value;
} legacy_header;

/* A plugin's header array in the current layout (*out, free it): 1.3+
 * entries read with the stride of the first one's struct_size, 1.0-1.2
 * entries as two pointers. */
static int copy_headers(const im_http_header *in, size_t n, bool legacy,
			im_http_header **out)
{
	*out = NULL;
	if (!in || n > 256)
		return IM_EINVAL;
	size_t stride = legacy ? sizeof(legacy_header) : in[0].struct_size;
	if (stride < (legacy ? sizeof(legacy_header) : sizeof(im_http_header)) ||
	    stride > 4096)
		return IM_EINVAL;
	if (!(*out = calloc(n, sizeof(**out))))
		return IM_ENOMEM;
	const char *p = (const char *)in;
	for (size_t i = 0; i < n; i++, p += stride) {
		legacy_header l;
		memcpy(&l, legacy ? p : p + offsetof(im_http_header, name),
		       sizeof l);
		(*out)[i] = (im_http_header)IM_HEADER(l.name, l.value);
	}
	return 0;
}

/* Checks a plugin's call and copies it into a host-sized struct (an older
 * plugin's is shorter), with its headers in the current layout: entries
 * of a 1.3+ plugin are read with the stride of the first one's
 * struct_size. *hdrs (free it) holds them. Returns 0, IM_EINVAL or
 * IM_EUNSUPPORTED. */
static int take_call(const im_http_call *call, bool legacy, im_http_call *c,
		     im_http_header **hdrs, struct im_net **net)
{
	*hdrs = NULL;
	if (!call || !call->url ||
	    call->struct_size < offsetof(im_http_call, connect_timeout_ms))
		return IM_EINVAL;
	memset(c, 0, sizeof(*c));
	memcpy(c, call,
	       call->struct_size < sizeof(*c) ? call->struct_size : sizeof(*c));
	c->struct_size = sizeof(*c);
	if (c->n_headers) {
		int rc = copy_headers(c->headers, c->n_headers, legacy, hdrs);
		if (rc)
			return rc;
		c->headers = *hdrs;
	}
	if (!(*net = net_get())) {
		free(*hdrs);
		*hdrs = NULL;
		return IM_EUNSUPPORTED;
	}
	return 0;
}

static bool is_legacy(const im_instance *in)
{
	return in && in->mod && im_abi_legacy_tables(in->mod->desc.abi_minor);
}

static int http_send(im_instance *in, const im_http_call *call,
		     im_http_done_fn done, void *ud)
{
	im_http_call c;
	im_http_header *hdrs;
	struct im_net *net;
	int rc = done ? take_call(call, is_legacy(in), &c, &hdrs, &net)
		      : IM_EINVAL;
	if (!rc)
		rc = im_net_send(net, &c, done, ud);
	free(hdrs);
	return rc;
}

static int h_http_send(im_instance *in, const im_http_call *call,
		       im_http_done_fn done, void *ud)
{
	return http_send(in, call, done, ud);
}

static int h_http_fetch(im_instance *in, const im_http_call *call,
			im_http_result **out)
{
	if (!out)
		return IM_EINVAL;
	*out = NULL;
	/* The contract (host.h): never from a route handler. Enforced: an
	 * HTTP worker that waited on the network would stall the API. */
	if (im_http_on_worker()) {
		LOG_ERROR("host", "plugin %s (instance %s) called the blocking "
				  "http_fetch on an HTTP worker; refused: use "
				  "http_send, or answer later (command_handle)",
			  in && in->module_name ? in->module_name : "?",
			  in && in->id ? in->id : "?");
		return IM_EINVAL;
	}
	im_http_call c;
	im_http_header *hdrs;
	struct im_net *net;
	int rc = take_call(call, is_legacy(in), &c, &hdrs, &net);
	if (!rc)
		rc = im_net_send_sync(net, &c, out);
	free(hdrs);
	return rc;
}

/* --- results for 1.0-1.2 plugins: headers in their layout ------------- */

typedef struct legacy_result {
	im_http_result pub; /* what the plugin sees */
	im_http_result *orig;
	legacy_header hdrs[];
} legacy_result;

static legacy_result *legacy_wrap(const im_http_result *res)
{
	size_t n = res ? res->n_headers : 0;
	legacy_result *w = calloc(1, sizeof(*w) + n * sizeof(legacy_header));
	if (!w)
		return NULL;
	w->pub = *res;
	for (size_t i = 0; i < n; i++)
		w->hdrs[i] = (legacy_header){res->headers[i].name,
					     res->headers[i].value};
	w->pub.headers = (const im_http_header *)(void *)w->hdrs;
	return w;
}

typedef struct legacy_call {
	im_http_done_fn done;
	void *ud;
} legacy_call;

static void legacy_done(void *ud, const im_http_result *res)
{
	legacy_call lc = *(legacy_call *)ud;
	free(ud);
	legacy_result *w = legacy_wrap(res);
	if (w) {
		lc.done(lc.ud, &w->pub);
		free(w);
		return;
	}
	im_http_result oom = {.struct_size = sizeof(oom),
			      .error = IM_EIO,
			      .error_text = "out of memory",
			      .body = ""};
	lc.done(lc.ud, &oom);
}

static int legacy_http_send(im_instance *in, const im_http_call *call,
			    im_http_done_fn done, void *ud)
{
	legacy_call *lc = done ? malloc(sizeof(*lc)) : NULL;
	if (!lc)
		return done ? IM_ENOMEM : IM_EINVAL;
	*lc = (legacy_call){done, ud};
	int rc = http_send(in, call, legacy_done, lc);
	if (rc)
		free(lc);
	return rc;
}

static int legacy_http_fetch(im_instance *in, const im_http_call *call,
			     im_http_result **out)
{
	im_http_result *res = NULL;
	int rc = h_http_fetch(in, call, out ? &res : NULL);
	if (!res)
		return rc;
	legacy_result *w = legacy_wrap(res);
	if (!w) {
		im_net_result_free(res);
		*out = NULL;
		return IM_ENOMEM;
	}
	w->orig = res;
	*out = &w->pub;
	return rc;
}

static void legacy_http_result_free(im_http_result *res)
{
	if (!res)
		return;
	legacy_result *w = (legacy_result *)(void *)res;
	im_net_result_free(w->orig);
	free(w);
}

static void h_http_result_free(im_http_result *res)
{
	im_net_result_free(res);
}

/* ws_open: the call and its headers (read with the stride of
 * headers[0].struct_size) copied into this build's layout. */
static int h_ws_open(im_instance *in, const im_ws_call *call, im_ws **out)
{
	if (out)
		*out = NULL;
	if (!out || !call || call->struct_size < sizeof(im_ws_call) ||
	    !call->url || !call->on_close || (call->n_headers && !call->headers))
		return IM_EINVAL;
	im_ws_call c = *call;
	c.struct_size = sizeof(c);
	im_http_header *hv = NULL;
	if (call->n_headers) {
		int rc = copy_headers(call->headers, call->n_headers, false, &hv);
		if (rc)
			return rc;
		c.headers = hv;
	}
	struct im_net *net = net_get();
	int rc = net ? im_net_ws_open(net, &c, out) : IM_EIO;
	free(hv); /* copied by ws_open */
	return rc;
}

static int h_ws_send(im_ws *ws, int binary, const void *data, size_t len)
{
	return im_ws_send(ws, binary, data, len);
}

static void h_ws_close(im_ws *ws, int code, const char *reason)
{
	im_ws_close(ws, code, reason);
}

static void h_ws_release(im_ws *ws)
{
	im_ws_release(ws);
}

static im_metric *h_metric(im_instance *in, const char *name,
			   const char *help, im_metric_kind kind,
			   const char *const *labels)
{
	if (!name || (unsigned)kind > IM_METRIC_HISTOGRAM)
		return NULL;
	return im_metrics_family(name, help ? help : name, kind, labels, NULL,
				 0);
}

static void h_metric_add(im_metric *m, const char *const *v, double x)
{
	if (m)
		im_metric_add(m, v, x);
}

static void h_metric_set(im_metric *m, const char *const *v, double x)
{
	if (m)
		im_metric_set(m, v, x);
}

static void h_metric_observe(im_metric *m, const char *const *v, double x)
{
	if (m)
		im_metric_observe(m, v, x);
}

static im_http_deferred *h_resp_defer(im_http_response *resp)
{
	return resp ? im_resp_defer(resp) : NULL;
}

static int h_deferred_complete(im_http_deferred *d, int status,
			       const char *ctype, const void *body, size_t len,
			       const char *const *headers)
{
	if (!d || status < 100 || status > 599 || (len && !body))
		return IM_EINVAL;
	return im_deferred_complete(d, status, ctype, body, len, headers);
}

static int h_kv_get(im_instance *in, const char *key, char **value)
{
	if (!in || !key || !value)
		return IM_EINVAL;
	if (!host_store)
		return IM_EUNSUPPORTED;
	size_t len;
	void *v = NULL;
	int rc = im_store_kv_get(host_store, in->id, key, &v, &len);
	*value = v; /* the store NUL-terminates values */
	return rc;
}

static int h_kv_put(im_instance *in, const char *key, const char *value)
{
	if (!in || !key || !value)
		return IM_EINVAL;
	if (!host_store)
		return IM_EUNSUPPORTED;
	return im_store_kv_put(host_store, in->id, key, value, strlen(value));
}

static int h_kv_del(im_instance *in, const char *key)
{
	if (!in || !key)
		return IM_EINVAL;
	if (!host_store)
		return IM_EUNSUPPORTED;
	return im_store_kv_del(host_store, in->id, key);
}

#define HOST_ENTRIES                                                          \
	.struct_size = sizeof(im_host), .abi_major = IM_ABI_MAJOR,            \
	.abi_minor = IM_ABI_MINOR, .log = h_log, .logv = h_logv,              \
	.log_enabled = h_log_enabled, .instance_id = h_instance_id,           \
	.config = h_config, .set_state = h_set_state,                         \
	.set_connected = h_set_connected, .route_add = h_route_add,           \
	.req_method = h_req_method, .req_path = h_req_path,                   \
	.req_header = h_req_header, .req_query = h_req_query,                 \
	.req_body = h_req_body, .resp_set = h_resp_set,                       \
	.resp_header = h_resp_header, .metric = h_metric,                     \
	.metric_add = h_metric_add, .metric_set = h_metric_set,               \
	.metric_observe = h_metric_observe, .resp_defer = h_resp_defer,       \
	.deferred_complete = h_deferred_complete, .kv_get = h_kv_get,         \
	.kv_put = h_kv_put, .kv_del = h_kv_del, .config_fill = h_config_fill

/* The tables plugins get: one for 1.3+, one for 1.0-1.2 plugins (their
 * result headers in the old layout). The command entries come from
 * core/command through im_host_install_commands, before any plugin is
 * created; after that both tables are read-only. */
static im_host table = {
    HOST_ENTRIES,
    .http_send = h_http_send,
    .http_fetch = h_http_fetch,
    .http_result_free = h_http_result_free,
    .ws_open = h_ws_open,
    .ws_send = h_ws_send,
    .ws_close = h_ws_close,
    .ws_release = h_ws_release,
};
static im_host legacy_table = {
    HOST_ENTRIES,
    .http_send = legacy_http_send,
    .http_fetch = legacy_http_fetch,
    .http_result_free = legacy_http_result_free,
};

void im_host_install_commands(const im_host_commands *c)
{
	static const im_host_commands none;
	if (!c)
		c = &none;
	im_host *t[] = {&table, &legacy_table};
	for (size_t i = 0; i < 2; i++) {
		t[i]->command_handle = c->command_handle;
		t[i]->command_dispatch = c->command_dispatch;
		t[i]->reply_text = c->reply_text;
		t[i]->reply_visibility = c->reply_visibility;
		t[i]->reply_field = c->reply_field;
		t[i]->reply_action = c->reply_action;
		t[i]->incident_op = c->incident_op;
		t[i]->command_verbs = c->command_verbs;
		t[i]->incident_op_then = c->incident_op_then;
	}
}

const im_host *im_host_table(const im_module *m)
{
	return m && im_abi_legacy_tables(m->desc.abi_minor) ? &legacy_table
							    : &table;
}
