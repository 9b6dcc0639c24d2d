/*
 * core/net/net.c - outbound HTTP: one network thread driving a libcurl
 * multi handle. Other threads hand calls over through a mutex-protected
 * queue and wake the thread with curl_multi_wakeup(). Blocking calls run
 * on their callers' threads instead (im_net_send_sync).
 */
#include "net.h"

#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "ws_int.h"

#define NET_DEFAULT_TIMEOUT_MS 10000
#define NET_DEFAULT_CONNECT_TIMEOUT_MS 3000
#define NET_MAX_BODY ((size_t)16 * 1024 * 1024)
#define NET_POLL_MS 1000
#define NET_USER_AGENT "im/0.1"

/* Response header, owned strings. */
struct hdr {
	char *name;
	char *value;
};

struct req {
	struct req *next, *prev;
	CURL *easy;
	struct curl_slist *headers;
	char *method; /* copies; curl keeps pointers to them */
	char *url;
	char *body;
	im_http_done_fn done;
	void *userdata;

	/* Response, filled on the network thread. */
	struct hdr *hdrs;
	size_t n_hdrs, cap_hdrs;
	char *resp;
	size_t resp_len, resp_cap;
	bool too_large;
	bool oom;
	bool borrowed; /* easy is the calling thread's (send_sync) */
	char errbuf[CURL_ERROR_SIZE];
};

struct im_net {
	CURLM *multi;
	pthread_t thread;
	pthread_mutex_t mu;
	struct req *queue_head, *queue_tail; /* under mu */
	bool stopping;                       /* set under mu, read atomically */
	int in_sync;   /* transfers running on their callers' threads */
	pthread_cond_t sync_cv; /* signalled when in_sync drops to 0 */
	struct req *active; /* network thread only */
	struct ws_hub *ws;  /* WebSocket links (ws.c) */
};

/* --- global init ---------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* --- requests ------------------------------------------------------------- */

static void req_free(struct req *r)
{
	if (!r)
		return;
	if (r->easy && !r->borrowed)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	free(r->method);
	free(r->url);
	free(r->body);
	for (size_t i = 0; i < r->n_hdrs; i++) {
		free(r->hdrs[i].name);
		free(r->hdrs[i].value);
	}
	free(r->hdrs);
	free(r->resp);
	free(r);
}

static void clear_headers(struct req *r)
{
	for (size_t i = 0; i < r->n_hdrs; i++) {
		free(r->hdrs[i].name);
		free(r->hdrs[i].value);
	}
	r->n_hdrs = 0;
}

static char *dup_range(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* Adds or replaces (repeated headers keep the last value). Takes `name` and
 * `value`. */
static bool set_header(struct req *r, char *name, char *value)
{
	for (size_t i = 0; i < r->n_hdrs; i++) {
		if (strcmp(r->hdrs[i].name, name) == 0) {
			free(name);
			free(r->hdrs[i].value);
			r->hdrs[i].value = value;
			return true;
		}
	}
	if (r->n_hdrs == r->cap_hdrs) {
		size_t cap = r->cap_hdrs ? r->cap_hdrs * 2 : 16;
		struct hdr *h = realloc(r->hdrs, cap * sizeof(*h));
		if (!h) {
			free(name);
			free(value);
			return false;
		}
		r->hdrs = h;
		r->cap_hdrs = cap;
	}
	r->hdrs[r->n_hdrs++] = (struct hdr){name, value};
	return true;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct req *r = ud;
	size_t n = size * nitems;
	size_t len = n;
	while (len && (buf[len - 1] == '\r' || buf[len - 1] == '\n'))
		len--;
	if (len == 0)
		return n; /* end of a header block */

	/* A new status line (after 100-continue, or a followed response)
	 * starts a new header set. */
	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		clear_headers(r);
		return n;
	}

	/* Obsolete line folding: continue the previous value. */
	if ((buf[0] == ' ' || buf[0] == '\t') && r->n_hdrs) {
		size_t s = 0;
		while (s < len && (buf[s] == ' ' || buf[s] == '\t'))
			s++;
		size_t e = len;
		while (e > s && (buf[e - 1] == ' ' || buf[e - 1] == '\t'))
			e--;
		struct hdr *h = &r->hdrs[r->n_hdrs - 1];
		size_t old = strlen(h->value);
		char *v = realloc(h->value, old + 1 + (e - s) + 1);
		if (!v) {
			r->oom = true;
			return 0;
		}
		v[old] = ' ';
		memcpy(v + old + 1, buf + s, e - s);
		v[old + 1 + (e - s)] = '\0';
		h->value = v;
		return n;
	}

	const char *colon = memchr(buf, ':', len);
	if (!colon || colon == buf)
		return n; /* not a header line; ignore */
	size_t name_len = (size_t)(colon - buf);
	while (name_len && (buf[name_len - 1] == ' ' || buf[name_len - 1] == '\t'))
		name_len--;
	size_t s = (size_t)(colon - buf) + 1;
	while (s < len && (buf[s] == ' ' || buf[s] == '\t'))
		s++;
	size_t e = len;
	while (e > s && (buf[e - 1] == ' ' || buf[e - 1] == '\t'))
		e--;

	char *name = dup_range(buf, name_len);
	char *value = dup_range(buf + s, e - s);
	if (!name || !value) {
		free(name);
		free(value);
		r->oom = true;
		return 0;
	}
	for (char *p = name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!set_header(r, name, value)) {
		r->oom = true;
		return 0;
	}
	return n;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *ud)
{
	struct req *r = ud;
	size_t n = size * nmemb;
	if (n > NET_MAX_BODY - r->resp_len) {
		r->too_large = true;
		return 0; /* aborts with CURLE_WRITE_ERROR */
	}
	if (r->resp_len + n + 1 > r->resp_cap) {
		size_t cap = r->resp_cap ? r->resp_cap : 4096;
		while (cap < r->resp_len + n + 1)
			cap *= 2;
		if (cap > NET_MAX_BODY + 1)
			cap = NET_MAX_BODY + 1;
		char *p = realloc(r->resp, cap);
		if (!p) {
			r->oom = true;
			return 0;
		}
		r->resp = p;
		r->resp_cap = cap;
	}
	memcpy(r->resp + r->resp_len, buf, n);
	r->resp_len += n;
	r->resp[r->resp_len] = '\0';
	return n;
}

static bool has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

static bool valid_token(const char *s)
{
	if (!s || !*s)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == ':')
			return false;
	return true;
}

/* Appends "Name: value" (or "Name;" for an empty value, curl's syntax for
 * sending an empty header). */
static int add_header(struct curl_slist **list, const char *name,
		      const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	char *line = malloc(nl + vl + 3);
	if (!line)
		return IM_ENOMEM;
	if (vl)
		sprintf(line, "%s: %s", name, value);
	else
		sprintf(line, "%s;", name);
	struct curl_slist *l = curl_slist_append(*list, line);
	free(line);
	if (!l)
		return IM_ENOMEM;
	*list = l;
	return 0;
}

/* Builds a fully configured easy handle with private copies of the call:
 * a new handle, or `easy` reset (a thread's own, see im_net_send_sync). */
static int req_new(const im_http_call *call, CURL *easy, im_http_done_fn done,
		   void *userdata, struct req **out)
{
	*out = NULL;
	if (!call || !call->url)
		return IM_EINVAL;
	if (call->struct_size < offsetof(im_http_call, timeout_ms))
		return IM_EVERSION;
	if (call->n_headers && !call->headers)
		return IM_EINVAL;
	if (call->body_len && !call->body)
		return IM_EINVAL;
	if (call->method && !valid_token(call->method))
		return IM_EINVAL;
	if (has_crlf(call->url))
		return IM_EINVAL;
	for (size_t i = 0; i < call->n_headers; i++) {
		const im_http_header *h = &call->headers[i];
		if (!valid_token(h->name) || !h->value || has_crlf(h->value))
			return IM_EINVAL;
	}
	uint32_t timeout = 0, connect_timeout = 0;
	if (call->struct_size >=
	    offsetof(im_http_call, timeout_ms) + sizeof(call->timeout_ms))
		timeout = call->timeout_ms;
	if (call->struct_size >= offsetof(im_http_call, connect_timeout_ms) +
				     sizeof(call->connect_timeout_ms))
		connect_timeout = call->connect_timeout_ms;
	if (!timeout)
		timeout = NET_DEFAULT_TIMEOUT_MS;
	if (!connect_timeout)
		connect_timeout = NET_DEFAULT_CONNECT_TIMEOUT_MS;

	struct req *r = calloc(1, sizeof(*r));
	if (!r)
		return IM_ENOMEM;
	r->done = done;
	r->userdata = userdata;
	r->method = strdup(call->method ? call->method : "GET");
	r->url = strdup(call->url);
	if (easy) {
		curl_easy_reset(easy); /* keeps its connections */
		r->borrowed = true;
	}
	r->easy = easy ? easy : curl_easy_init();
	if (!r->method || !r->url || !r->easy)
		goto nomem;
	bool with_body = call->body != NULL;
	if (with_body) {
		r->body = malloc(call->body_len ? call->body_len : 1);
		if (!r->body)
			goto nomem;
		if (call->body_len)
			memcpy(r->body, call->body, call->body_len);
	}
	for (size_t i = 0; i < call->n_headers; i++)
		if (add_header(&r->headers, call->headers[i].name,
			       call->headers[i].value) != 0)
			goto nomem;
	/* "Expect:" with no value stops curl from sending its own
	 * "Expect: 100-continue" and waiting for the interim answer. */
	bool has_expect = false;
	for (size_t i = 0; i < call->n_headers; i++)
		if (strcasecmp(call->headers[i].name, "Expect") == 0)
			has_expect = true;
	if (!has_expect) {
		struct curl_slist *l = curl_slist_append(r->headers, "Expect:");
		if (!l)
			goto nomem;
		r->headers = l;
	}

	CURL *e = r->easy;
	CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                          \
	do {                                                                   \
		if (rc == CURLE_OK)                                            \
			rc = curl_easy_setopt(e, opt, val);                    \
	} while (0)
	SET(CURLOPT_URL, r->url);
	SET(CURLOPT_PRIVATE, r);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_TIMEOUT_MS, (long)timeout);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)connect_timeout);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_USERAGENT, NET_USER_AGENT);
	SET(CURLOPT_ERRORBUFFER, r->errbuf);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, r);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, r);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)NET_MAX_BODY);
	SET(CURLOPT_HTTPHEADER, r->headers);
	if (strcmp(r->method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (with_body || strcmp(r->method, "POST") == 0) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
		SET(CURLOPT_POSTFIELDS, r->body ? r->body : "");
		if (strcmp(r->method, "POST") != 0)
			SET(CURLOPT_CUSTOMREQUEST, r->method);
	} else if (strcmp(r->method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		SET(CURLOPT_CUSTOMREQUEST, r->method);
	}
#undef SET
	if (rc != CURLE_OK) {
		int err = rc == CURLE_OUT_OF_MEMORY ? IM_ENOMEM : IM_EINVAL;
		req_free(r);
		return err;
	}
	*out = r;
	return 0;

nomem:
	req_free(r);
	return IM_ENOMEM;
}

static void deliver(struct req *r, int error, const char *text)
{
	if (!r->done)
		return;
	im_http_result res = {
	    .struct_size = sizeof(im_http_result),
	    .error = error,
	    .error_text = error ? text : NULL,
	    .body = "",
	};
	im_http_header *hv = NULL;
	if (!error) {
		long status = 0;
		double total = 0;
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &total);
		res.status = status;
		res.elapsed_s = total;
		if (r->resp) {
			res.body = r->resp;
			res.body_len = r->resp_len;
		}
		if (r->n_hdrs) {
			hv = malloc(r->n_hdrs * sizeof(*hv));
			if (!hv) {
				res = (im_http_result){
				    .struct_size = sizeof(im_http_result),
				    .error = IM_EIO,
				    .error_text = "out of memory",
				    .body = "",
				};
			} else {
				for (size_t i = 0; i < r->n_hdrs; i++)
					hv[i] = (im_http_header)IM_HEADER(
					    r->hdrs[i].name, r->hdrs[i].value);
				res.headers = hv;
				res.n_headers = r->n_hdrs;
			}
		}
	} else if (r->easy) {
		double total = 0;
		curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &total);
		res.elapsed_s = total;
	}
	r->done(r->userdata, &res);
	free(hv);
}

static void finish(struct req *r, CURLcode code)
{
	if (code == CURLE_OK && r->oom) {
		deliver(r, IM_EIO, "out of memory");
	} else if (code == CURLE_OK) {
		deliver(r, 0, NULL);
	} else if (r->too_large || code == CURLE_FILESIZE_EXCEEDED) {
		deliver(r, IM_EIO, "response too large");
	} else if (r->oom) {
		deliver(r, IM_EIO, "out of memory");
	} else {
		const char *text =
		    r->errbuf[0] ? r->errbuf : curl_easy_strerror(code);
		deliver(r,
			code == CURLE_OPERATION_TIMEDOUT ? IM_ETIMEDOUT
							 : IM_EIO,
			text);
	}
}

/* --- the network thread ----------------------------------------------------- */

static void active_link(im_net *net, struct req *r)
{
	r->prev = NULL;
	r->next = net->active;
	if (net->active)
		net->active->prev = r;
	net->active = r;
}

static void active_unlink(im_net *net, struct req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		net->active = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
}

static struct req *take_queue(im_net *net, bool *stopping)
{
	pthread_mutex_lock(&net->mu);
	struct req *q = net->queue_head;
	net->queue_head = net->queue_tail = NULL;
	*stopping = net->stopping;
	pthread_mutex_unlock(&net->mu);
	return q;
}

static void cancel(struct req *r)
{
	r->errbuf[0] = '\0';
	deliver(r, IM_ECANCELED, "network stopped");
	req_free(r);
}

static void *net_main(void *arg)
{
	im_net *net = arg;
	for (;;) {
		bool stopping;
		struct req *q = take_queue(net, &stopping);
		if (stopping) {
			/* Not yet started: cancel in queue order. */
			while (q) {
				struct req *next = q->next;
				cancel(q);
				q = next;
			}
			break;
		}
		while (q) {
			struct req *next = q->next;
			CURLMcode mc = curl_multi_add_handle(net->multi, q->easy);
			if (mc != CURLM_OK) {
				snprintf(q->errbuf, sizeof(q->errbuf), "%s",
					 curl_multi_strerror(mc));
				deliver(q, IM_EIO, q->errbuf);
				req_free(q);
			} else {
				active_link(net, q);
			}
			q = next;
		}

		int running = 0;
		curl_multi_perform(net->multi, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(net->multi, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			CURL *e = msg->easy_handle;
			CURLcode code = msg->data.result;
			struct req *r = NULL;
			curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
			curl_multi_remove_handle(net->multi, e);
			active_unlink(net, r);
			finish(r, code);
			req_free(r);
		}
		/* WebSocket links share the thread: their sockets are extra
		 * descriptors of the same wait. */
		ws_hub_run(net->ws);
		int wait_ms = NET_POLL_MS;
		unsigned n_fds = 0;
		struct curl_waitfd *fds = ws_hub_fds(net->ws, &n_fds, &wait_ms);
		curl_multi_poll(net->multi, fds, n_fds, wait_ms, NULL);
	}

	/* Every WebSocket link ends (on_close 1001) before the transfers. */
	ws_hub_stop(net->ws);

	/* Stopping: end the transfers in flight. */
	while (net->active) {
		struct req *r = net->active;
		active_unlink(net, r);
		curl_multi_remove_handle(net->multi, r->easy);
		cancel(r);
	}
	/* Anything queued meanwhile (im_net_send refuses once stopping is
	 * set, so this is only what raced with it). */
	bool stopping;
	struct req *q = take_queue(net, &stopping);
	while (q) {
		struct req *next = q->next;
		cancel(q);
		q = next;
	}
	return NULL;
}

/* --- public ------------------------------------------------------------- */

int im_net_start(im_net **out)
{
	if (!out)
		return IM_EINVAL;
	*out = NULL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return IM_EIO;

	im_net *net = calloc(1, sizeof(*net));
	if (!net)
		return IM_ENOMEM;
	net->multi = curl_multi_init();
	if (!net->multi) {
		free(net);
		return IM_ENOMEM;
	}
	net->ws = ws_hub_new(net->multi);
	if (!net->ws) {
		curl_multi_cleanup(net->multi);
		free(net);
		return IM_ENOMEM;
	}
	pthread_mutex_init(&net->mu, NULL);
	pthread_cond_init(&net->sync_cv, NULL);

	/* The network thread takes no asynchronous signals (they belong to
	 * the main thread), and a SIGPIPE from a TLS write on a closed socket
	 * stays pending on it instead of killing the process. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&net->thread, NULL, net_main, net);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		ws_hub_free(net->ws);
		curl_multi_cleanup(net->multi);
		pthread_mutex_destroy(&net->mu);
		pthread_cond_destroy(&net->sync_cv);
		free(net);
		return IM_ENOMEM;
	}
	*out = net;
	return 0;
}

void im_net_stop(im_net *net)
{
	if (!net)
		return;
	pthread_mutex_lock(&net->mu);
	__atomic_store_n(&net->stopping, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&net->mu);
	curl_multi_wakeup(net->multi);
	pthread_join(net->thread, NULL);
	/* Blocking calls on other threads end at their next progress call. */
	pthread_mutex_lock(&net->mu);
	while (net->in_sync)
		pthread_cond_wait(&net->sync_cv, &net->mu);
	pthread_mutex_unlock(&net->mu);
	pthread_cond_destroy(&net->sync_cv);
	ws_hub_free(net->ws);
	curl_multi_cleanup(net->multi);
	pthread_mutex_destroy(&net->mu);
	free(net);
}

int im_net_send(im_net *net, const im_http_call *call, im_http_done_fn done,
		void *userdata)
{
	if (!net)
		return IM_EINVAL;
	struct req *r = NULL;
	int rc = req_new(call, NULL, done, userdata, &r);
	if (rc != 0)
		return rc;

	pthread_mutex_lock(&net->mu);
	if (net->stopping) {
		pthread_mutex_unlock(&net->mu);
		req_free(r);
		return IM_ECANCELED;
	}
	r->next = NULL;
	if (net->queue_tail)
		net->queue_tail->next = r;
	else
		net->queue_head = r;
	net->queue_tail = r;
	/* Under the lock: once stopping is set nobody touches the multi
	 * handle from outside, so im_net_stop can clean it up safely. */
	curl_multi_wakeup(net->multi);
	pthread_mutex_unlock(&net->mu);
	return 0;
}

int im_net_ws_open(im_net *net, const im_ws_call *call, im_ws **out)
{
	if (out)
		*out = NULL;
	return net ? ws_hub_open(net->ws, call, out) : IM_EINVAL;
}

/* --- results ------------------------------------------------------------ */

void im_net_result_free(im_http_result *res)
{
	if (!res)
		return;
	for (size_t i = 0; i < res->n_headers; i++) {
		free((char *)res->headers[i].name);
		free((char *)res->headers[i].value);
	}
	free((im_http_header *)res->headers);
	free((char *)res->error_text);
	free((char *)res->body);
	free(res);
}

static im_http_result *result_dup(const im_http_result *src)
{
	im_http_result *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->struct_size = sizeof(*d);
	d->error = src->error;
	d->status = src->status;
	d->elapsed_s = src->elapsed_s;
	bool ok = true;
	if (src->error_text)
		ok = (d->error_text = strdup(src->error_text)) != NULL;
	if (ok) {
		d->body = dup_range(src->body ? src->body : "", src->body_len);
		d->body_len = src->body_len;
		ok = d->body != NULL;
	}
	if (ok && src->n_headers) {
		im_http_header *h = calloc(src->n_headers, sizeof(*h));
		ok = h != NULL;
		d->headers = h;
		for (size_t i = 0; ok && i < src->n_headers; i++) {
			d->n_headers = i + 1;
			h[i].struct_size = sizeof(*h);
			h[i].name = strdup(src->headers[i].name);
			h[i].value = strdup(src->headers[i].value);
			ok = h[i].name && h[i].value;
		}
	}
	if (!ok) {
		im_net_result_free(d);
		return NULL;
	}
	return d;
}

/* A blocking call runs on its caller's thread, on an easy handle that
 * thread keeps: its connections stay open from call to call, and no call
 * is handed to the network thread and back (two thread wake-ups each).
 * The delivery threads make these calls, one after another. */
static pthread_key_t sync_key;
static bool sync_key_ok;
static pthread_once_t sync_once = PTHREAD_ONCE_INIT;

static void sync_easy_free(void *easy)
{
	curl_easy_cleanup(easy);
}

static void sync_key_init(void)
{
	sync_key_ok = pthread_key_create(&sync_key, sync_easy_free) == 0;
}

static CURL *thread_easy(void)
{
	pthread_once(&sync_once, sync_key_init);
	if (!sync_key_ok)
		return NULL;
	CURL *e = pthread_getspecific(sync_key);
	if (!e && (e = curl_easy_init()) &&
	    pthread_setspecific(sync_key, e) != 0) {
		curl_easy_cleanup(e);
		e = NULL;
	}
	return e;
}

/* Ends a blocking transfer once im_net_stop has begun (curl calls this at
 * least once a second, also while it waits). */
static int sync_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
			 curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	im_net *net = ud;
	return __atomic_load_n(&net->stopping, __ATOMIC_RELAXED);
}

static void sync_done(void *ud, const im_http_result *res)
{
	*(im_http_result **)ud = result_dup(res);
}

int im_net_send_sync(im_net *net, const im_http_call *call,
		     im_http_result **out)
{
	if (!out)
		return IM_EINVAL;
	*out = NULL;
	if (!net)
		return IM_EINVAL;
	if (pthread_equal(pthread_self(), net->thread))
		return IM_EINVAL; /* its transfers would stall meanwhile */
	CURL *easy = thread_easy();
	if (!easy)
		return IM_ENOMEM;
	im_http_result *res = NULL;
	struct req *r = NULL;
	int rc = req_new(call, easy, sync_done, &res, &r);
	if (rc != 0)
		return rc;
	curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, sync_progress);
	curl_easy_setopt(easy, CURLOPT_XFERINFODATA, net);

	pthread_mutex_lock(&net->mu);
	bool stopping = net->stopping;
	if (!stopping)
		net->in_sync++;
	pthread_mutex_unlock(&net->mu);
	if (stopping) {
		req_free(r);
		return IM_ECANCELED;
	}
	CURLcode code = curl_easy_perform(easy);
	if (code == CURLE_ABORTED_BY_CALLBACK && !r->too_large && !r->oom)
		cancel(r);
	else {
		finish(r, code);
		req_free(r);
	}
	pthread_mutex_lock(&net->mu);
	if (--net->in_sync == 0)
		pthread_cond_broadcast(&net->sync_cv);
	pthread_mutex_unlock(&net->mu);

	*out = res;
	return res ? res->error : IM_ENOMEM;
}

const char *im_http_result_header(const im_http_result *res, const char *name)
{
	if (!res || !name)
		return NULL;
	const char *found = NULL;
	for (size_t i = 0; i < res->n_headers; i++)
		if (res->headers[i].name &&
		    strcasecmp(res->headers[i].name, name) == 0)
			found = res->headers[i].value;
	return found;
}

/* --- module entry (see net/module.h) ------------------------------------ */

#include "net/module.h"

__attribute__((visibility("default"))) const im_net_api *im_net_module(void);
const im_net_api *im_net_module(void)
{
	static const im_net_api api = {
	    .struct_size = sizeof(im_net_api),
	    .start = im_net_start,
	    .stop = im_net_stop,
	    .send = im_net_send,
	    .send_sync = im_net_send_sync,
	    .result_free = im_net_result_free,
	    .result_header = im_http_result_header,
	    .ws_open = im_net_ws_open,
	    .ws_send = im_ws_send,
	    .ws_close = im_ws_close,
	    .ws_release = im_ws_release,
	};
	return &api;
}
