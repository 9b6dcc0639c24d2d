/* The im_host table: the only way plugins reach the host. Each function
 * checks its arguments, since a plugin bug must not crash the host. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command/command.h"
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

static void h_set_connected(im_instance *in, const char *platform,
			    int connected)
{
	static const char *const labels[] = {"platform", "instance", NULL};
	im_metric *m = im_metrics_family(
	    "chatops_connection_status",
	    "Connection health per connector instance (1 = connected)",
	    IM_METRIC_GAUGE, labels, NULL, 0);
	if (!in || !platform || !m)
		return;
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

/* Checks a plugin's call and copies it into a host-sized struct (an older
 * plugin's is shorter). Returns 0, IM_EINVAL or IM_EUNSUPPORTED. */
static int take_call(const im_http_call *call, im_http_call *c,
		     struct im_net **net)
{
	if (!call || !call->url ||
	    call->struct_size < offsetof(im_http_call, connect_timeout_ms))
		return IM_EINVAL;
	if (!(*net = net_get()))
		return IM_EUNSUPPORTED;
	memset(c, 0, sizeof(*c));
	memcpy(c, call,
	       call->struct_size < sizeof(*c) ? call->struct_size : sizeof(*c));
	c->struct_size = sizeof(*c);
	return 0;
}

static int h_http_send(im_instance *in, const im_http_call *call,
		       im_http_done_fn done, void *ud)
{
	im_http_call c;
	struct im_net *net;
	int rc = done ? take_call(call, &c, &net) : IM_EINVAL;
	return rc ? rc : im_net_send(net, &c, done, ud);
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
	struct im_net *net;
	int rc = take_call(call, &c, &net);
	return rc ? rc : im_net_send_sync(net, &c, out);
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
		size_t stride = call->headers[0].struct_size;
		if (stride < sizeof(im_http_header) || stride > 4096 ||
		    call->n_headers > 256)
			return IM_EINVAL;
		if (!(hv = calloc(call->n_headers, sizeof(*hv))))
			return IM_ENOMEM;
		for (size_t i = 0; i < call->n_headers; i++) {
			const im_http_header *h =
			    (const void *)((const char *)call->headers +
					   i * stride);
			hv[i] = (im_http_header)IM_HEADER(h->name, h->value);
		}
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

static int h_reply_text(im_reply *r, const char *md)
{
	return im_reply_set_text(r, md);
}

static int h_reply_visibility(im_reply *r, int v)
{
	return im_reply_set_visibility(r, v);
}

static int h_reply_field(im_reply *r, const char *t, const char *v, int s)
{
	return im_reply_add_field(r, t, v, s);
}

static int h_reply_action(im_reply *r, const char *id, const char *label,
			  const char *value, const char *style)
{
	return im_reply_add_action(r, id, label, value, style);
}

/* command_dispatch for plugins: their callback has no invocation. */
typedef struct first_thunk {
	void (*first)(void *ud, const json_t *reply);
	void *ud;
} first_thunk;

static void thunk_first(void *ud, const im_invocation *inv,
			const json_t *reply)
{
	first_thunk *t = ud;
	t->first(t->ud, reply);
	free(t);
}

static int h_command_dispatch(im_instance *in, const im_invocation *inv,
			      void (*first)(void *, const json_t *), void *ud)
{
	if (!in || !inv || !first)
		return IM_EINVAL;
	first_thunk *t = malloc(sizeof(*t));
	if (!t)
		return IM_ENOMEM;
	*t = (first_thunk){first, ud};
	int rc = im_command_dispatch(in, inv, thunk_first, t);
	if (rc != 0)
		free(t);
	return rc;
}

/* command_handle: the first answer completes the deferred HTTP answer,
 * shaped by the connector's answer(). */
typedef struct handle {
	im_http_deferred *d;
	im_instance *inst;
} handle;

static void complete_from(im_http_deferred *d, im_http_response *r)
{
	const char *hdrs[33];
	size_t n = 0;
	for (im_http_hdr_node *h = r->headers; h && n < 31; h = h->next) {
		hdrs[n++] = h->name;
		hdrs[n++] = h->value;
	}
	hdrs[n] = NULL;
	im_deferred_complete(d, r->status, r->content_type, r->body,
			     r->body_len, hdrs);
}

static void handle_first(void *ud, const im_invocation *inv,
			 const json_t *reply)
{
	handle *h = ud;
	const im_connector *c = im_instance_connector(h->inst);
	im_http_response r = {0};
	int rc = c && c->answer ? c->answer(h->inst->state, inv, reply, &r)
				: IM_EUNSUPPORTED;
	if (rc != 0 || r.status == 0) {
		im_http_response_clear(&r);
		im_resp_json(&r, 200, json_deep_copy(reply));
	}
	complete_from(h->d, &r);
	im_http_response_clear(&r);
	free(h);
}

static int h_command_handle(im_instance *in, const im_invocation *inv,
			    im_http_response *resp)
{
	if (!in || !inv || !resp)
		return IM_EINVAL;
	handle *h = calloc(1, sizeof(*h));
	if (!h)
		return IM_ENOMEM;
	h->inst = in;
	h->d = im_resp_defer(resp);
	if (!h->d) {
		free(h);
		return IM_ENOMEM;
	}
	int rc = im_command_dispatch(in, inv, handle_first, h);
	if (rc != 0) {
		/* No first answer will come: answer the request here. */
		const char *msg = "{\"text\":\"the command could not be started\"}";
		im_deferred_complete(h->d, 503, "application/json", msg,
				     strlen(msg), NULL);
		free(h);
	}
	return 0;
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

static int h_incident_op(im_instance *in, const char *op, const json_t *args,
			 json_t **out)
{
	if (!out)
		return IM_EINVAL;
	*out = NULL;
	if (!host_store)
		return IM_EUNSUPPORTED;
	return im_incident_op(host_store, op, args, out);
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

static const im_host table = {
    .struct_size = sizeof(im_host),
    .abi_major = IM_ABI_MAJOR,
    .abi_minor = IM_ABI_MINOR,
    .log = h_log,
    .logv = h_logv,
    .log_enabled = h_log_enabled,
    .instance_id = h_instance_id,
    .config = h_config,
    .set_state = h_set_state,
    .set_connected = h_set_connected,
    .route_add = h_route_add,
    .req_method = h_req_method,
    .req_path = h_req_path,
    .req_header = h_req_header,
    .req_query = h_req_query,
    .req_body = h_req_body,
    .resp_set = h_resp_set,
    .resp_header = h_resp_header,
    .http_send = h_http_send,
    .metric = h_metric,
    .metric_add = h_metric_add,
    .metric_set = h_metric_set,
    .metric_observe = h_metric_observe,
    .reply_text = h_reply_text,
    .reply_visibility = h_reply_visibility,
    .reply_field = h_reply_field,
    .reply_action = h_reply_action,
    .resp_defer = h_resp_defer,
    .deferred_complete = h_deferred_complete,
    .command_handle = h_command_handle,
    .command_dispatch = h_command_dispatch,
    .incident_op = h_incident_op,
    .kv_get = h_kv_get,
    .kv_put = h_kv_put,
    .kv_del = h_kv_del,
    .http_fetch = h_http_fetch,
    .http_result_free = h_http_result_free,
    .ws_open = h_ws_open,
    .ws_send = h_ws_send,
    .ws_close = h_ws_close,
    .ws_release = h_ws_release,
};

const im_host *im_host_table(void)
{
	return &table;
}
