/*
 * tests/unit/test_net.c - core/net against a small libmicrohttpd server on
 * 127.0.0.1 started for each test.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <im/types.h>

#include "net/net.h"

#define MIB ((size_t)1024 * 1024)

/* --- the test server ---------------------------------------------------- */

static struct MHD_Daemon *daemon_;
static unsigned short port;
static atomic_bool server_stopping;
static atomic_int connections_opened;
static atomic_int slow_started;

struct conn_state {
	char *buf;
	size_t len, cap;
};

static ssize_t fill_bytes(void *cls, uint64_t pos, char *buf, size_t max)
{
	size_t total = (size_t)(uintptr_t)cls;
	if (pos >= total)
		return MHD_CONTENT_READER_END_OF_STREAM;
	size_t n = total - (size_t)pos;
	if (n > max)
		n = max;
	memset(buf, 'b', n);
	return (ssize_t)n;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status,
			       const void *body, size_t len,
			       const char *const *headers)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	for (size_t i = 0; headers && headers[i]; i += 2)
		MHD_add_response_header(r, headers[i], headers[i + 1]);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct conn_state *st = *con_cls;
	if (!st) {
		st = calloc(1, sizeof(*st));
		*con_cls = st;
		return st ? MHD_YES : MHD_NO;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		if (st->len + n > st->cap) {
			size_t cap = (st->len + n) * 2;
			char *p = realloc(st->buf, cap);
			if (!p)
				return MHD_NO;
			st->buf = p;
			st->cap = cap;
		}
		memcpy(st->buf + st->len, upload_data, n);
		st->len += n;
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (strcmp(url, "/ok") == 0) {
		const char *h[] = {"X-Test", "yes", "Content-Type",
				   "text/plain", NULL};
		return respond(c, 200, "hello from ok", 13, h);
	}
	if (strcmp(url, "/echo") == 0) {
		const char *expect = MHD_lookup_connection_value(
		    c, MHD_HEADER_KIND, "Expect");
		const char *custom = MHD_lookup_connection_value(
		    c, MHD_HEADER_KIND, "X-Custom");
		const char *h[] = {"X-Method",
				   method,
				   "X-Expect",
				   expect ? expect : "none",
				   "X-Echo-Custom",
				   custom ? custom : "none",
				   NULL};
		return respond(c, 200, st->buf, st->len, h);
	}
	if (strcmp(url, "/slow") == 0) {
		atomic_fetch_add(&slow_started, 1);
		for (int i = 0; i < 200 && !atomic_load(&server_stopping); i++)
			usleep(10 * 1000);
		return respond(c, 200, "slow", 4, NULL);
	}
	if (strcmp(url, "/429") == 0) {
		const char *h[] = {"Retry-After", "3", NULL};
		return respond(c, 429, "slow down", 9, h);
	}
	if (strcmp(url, "/headers") == 0) {
		const char *h[] = {"X-Mixed-Case", "value",
				   "X-Pad",        "padded   ",
				   "X-Dup",        "first",
				   "X-Dup",        "second",
				   NULL};
		return respond(c, 200, "", 0, h);
	}
	if (strcmp(url, "/redirect") == 0) {
		const char *h[] = {"Location", "/ok", NULL};
		return respond(c, 302, "moved", 5, h);
	}
	if (strcmp(url, "/bytes") == 0 || strcmp(url, "/chunked") == 0) {
		const char *n = MHD_lookup_connection_value(
		    c, MHD_GET_ARGUMENT_KIND, "n");
		size_t total = n ? (size_t)strtoull(n, NULL, 10) : 0;
		uint64_t size = strcmp(url, "/bytes") == 0 ? (uint64_t)total
							   : MHD_SIZE_UNKNOWN;
		struct MHD_Response *r = MHD_create_response_from_callback(
		    size, 64 * 1024, fill_bytes, (void *)(uintptr_t)total,
		    NULL);
		enum MHD_Result ret = MHD_queue_response(c, 200, r);
		MHD_destroy_response(r);
		return ret;
	}
	return respond(c, 404, "not found", 9, NULL);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct conn_state *st = *con_cls;
	if (st) {
		free(st->buf);
		free(st);
		*con_cls = NULL;
	}
}

static void on_connection(void *cls, struct MHD_Connection *c,
			  void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		atomic_fetch_add(&connections_opened, 1);
}

static void server_start(void)
{
	atomic_store(&server_stopping, false);
	atomic_store(&connections_opened, 0);
	atomic_store(&slow_started, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	daemon_ = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
		MHD_USE_ERROR_LOG,
	    0, NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, completed,
	    NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
	    MHD_OPTION_END);
	cr_assert_not_null(daemon_, "cannot start the test server");
	const union MHD_DaemonInfo *info =
	    MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
	cr_assert_not_null(info);
	port = info->port;
	cr_assert_neq(port, 0);
}

static void server_stop(void)
{
	atomic_store(&server_stopping, true);
	if (daemon_)
		MHD_stop_daemon(daemon_);
	daemon_ = NULL;
}

TestSuite(net, .init = server_start, .fini = server_stop, .timeout = 60);

/* --- helpers ------------------------------------------------------------ */

static char *url_for(const char *path)
{
	/* Per thread: the concurrency test builds URLs on several threads. */
	static _Thread_local char buf[8][256];
	static _Thread_local int i;
	char *p = buf[i++ % 8];
	snprintf(p, sizeof(buf[0]), "http://127.0.0.1:%u%s", port, path);
	return p;
}

static im_http_call get_call(const char *path)
{
	return (im_http_call){
	    .struct_size = sizeof(im_http_call),
	    .url = url_for(path),
	};
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static im_net *start_net(void)
{
	im_net *net = NULL;
	cr_assert_eq(im_net_start(&net), 0);
	cr_assert_not_null(net);
	return net;
}

/* A port on loopback with nothing listening. */
static unsigned short closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	socklen_t len = sizeof(sa);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* Counts callbacks per request slot. */
struct tally {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int total;
	int calls[512];
	int errors[512];
	long status[512];
};

struct slot {
	struct tally *t;
	int i;
};

static void tally_init(struct tally *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
}

static void tally_destroy(struct tally *t)
{
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
}

static void count_done(void *ud, const im_http_result *res)
{
	struct slot *s = ud;
	struct tally *t = s->t;
	pthread_mutex_lock(&t->mu);
	t->calls[s->i]++;
	t->errors[s->i] = res->error;
	t->status[s->i] = res->status;
	t->total++;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

/* Waits until `n` callbacks ran or `secs` passed; returns the total. */
static int tally_wait(struct tally *t, int n, double secs)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += (time_t)secs;
	pthread_mutex_lock(&t->mu);
	while (t->total < n) {
		if (pthread_cond_timedwait(&t->cv, &t->mu, &dl) != 0)
			break;
	}
	int total = t->total;
	pthread_mutex_unlock(&t->mu);
	return total;
}

/* --- tests ---------------------------------------------------------------- */

struct captured {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int calls;
	int error;
	long status;
	char body[64];
	size_t body_len;
	char x_test[16];
	pthread_t thread;
	double elapsed;
};

static void capture_done(void *ud, const im_http_result *res)
{
	struct captured *c = ud;
	pthread_mutex_lock(&c->mu);
	c->calls++;
	c->error = res->error;
	c->status = res->status;
	c->body_len = res->body_len;
	snprintf(c->body, sizeof(c->body), "%s", res->body);
	const char *h = im_http_result_header(res, "x-test");
	snprintf(c->x_test, sizeof(c->x_test), "%s", h ? h : "(none)");
	c->thread = pthread_self();
	c->elapsed = res->elapsed_s;
	c->done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

Test(net, gets_a_page_with_its_status_body_and_headers_on_the_network_thread)
{
	im_net *net = start_net();
	struct captured c = {.done = false};
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cv, NULL);
	im_http_call call = get_call("/ok");
	cr_assert_eq(im_net_send(net, &call, capture_done, &c), 0);
	pthread_mutex_lock(&c.mu);
	while (!c.done)
		pthread_cond_wait(&c.cv, &c.mu);
	pthread_mutex_unlock(&c.mu);

	cr_assert_eq(c.error, 0);
	cr_assert_eq(c.status, 200);
	cr_assert_str_eq(c.body, "hello from ok");
	cr_assert_eq(c.body_len, 13);
	cr_assert_str_eq(c.x_test, "yes");
	cr_assert_not(pthread_equal(c.thread, pthread_self()));
	cr_assert_gt(c.elapsed, 0.0);
	im_net_stop(net);
	cr_assert_eq(c.calls, 1);
	pthread_cond_destroy(&c.cv);
	pthread_mutex_destroy(&c.mu);
}

Test(net, posts_a_body_byte_for_byte_including_a_nul)
{
	im_net *net = start_net();
	static const char body[] = "before\0after\xff\x01 end";
	im_http_header h[] = {IM_HEADER("Content-Type", "application/octet-stream"),
			      IM_HEADER("X-Custom", "custom value")};
	im_http_call call = {
	    .struct_size = sizeof(call),
	    .method = "POST",
	    .url = url_for("/echo"),
	    .headers = h,
	    .n_headers = 2,
	    .body = body,
	    .body_len = sizeof(body) - 1,
	};
	im_http_result *res = NULL;
	cr_assert_eq(im_net_send_sync(net, &call, &res), 0);
	cr_assert_not_null(res);
	cr_assert_eq(res->status, 200);
	cr_assert_eq(res->body_len, sizeof(body) - 1);
	cr_assert_arr_eq(res->body, body, sizeof(body) - 1);
	cr_assert_eq(res->body[res->body_len], '\0');
	cr_assert_str_eq(im_http_result_header(res, "x-method"), "POST");
	cr_assert_str_eq(im_http_result_header(res, "x-echo-custom"),
			 "custom value");
	im_net_result_free(res);
	im_net_stop(net);
}

Test(net, sends_other_methods_with_and_without_a_body)
{
	im_net *net = start_net();
	im_http_call call = {
	    .struct_size = sizeof(call),
	    .method = "PUT",
	    .url = url_for("/echo"),
	    .body = "{\"a\":1}",
	    .body_len = 7,
	};
	im_http_result *res = NULL;
	cr_assert_eq(im_net_send_sync(net, &call, &res), 0);
	cr_assert_str_eq(im_http_result_header(res, "x-method"), "PUT");
	cr_assert_str_eq(res->body, "{\"a\":1}");
	im_net_result_free(res);

	call.method = "DELETE";
	call.body = NULL;
	call.body_len = 0;
	cr_assert_eq(im_net_send_sync(net, &call, &res), 0);
	cr_assert_str_eq(im_http_result_header(res, "x-method"), "DELETE");
	cr_assert_eq(res->body_len, 0);
	im_net_result_free(res);

	call.method = "POST"; /* POST without a body */
	cr_assert_eq(im_net_send_sync(net, &call, &res), 0);
	cr_assert_str_eq(im_http_result_header(res, "x-method"), "POST");
	cr_assert_eq(res->status, 200);
	im_net_result_free(res);

	call.method = NULL; /* GET */
	cr_assert_eq(im_net_send_sync(net, &call, &res), 0);
	cr_assert_str_eq(im_http_result_header(res, "x-method"), "GET");
	im_net_result_free(res);
	im_net_stop(net);
}

Test(net, posts_a_large_body_without_waiting_for_100_continue)
{
	im_net *net = start_net();
	size_t len = 2 * MIB;
	char *body = malloc(len);
	cr_assert_not_null(body);
	for (size_t i = 0; i < len; i++)
		body[i] = (char)(i % 251);
	im_http_call call = {
	    .struct_size = sizeof(call),
	    .method = "POST",
	    .url = url_for("/echo"),
	    .body = body,
	    .body_len = len,
	};
	im_http_result *res = NULL;
	double t0 = now_s();
	cr_assert_eq(im_net_send_sync(net, &call, &res), 0);
	double took = now_s() - t0;
	cr_assert_str_eq(im_http_result_header(res, "x-expect"), "none");
	cr_assert_eq(res->body_len, len);
	cr_assert_arr_eq(res->body, body, len);
	cr_assert_lt(took, 0.9, "took %.3f s", took);
	im_net_result_free(res);
	free(body);
	im_net_stop(net);
}

Test(net, maps_a_timeout_to_etimedout_within_the_deadline)
{
	im_net *net = start_net();
	im_http_call call = get_call("/slow");
	call.timeout_ms = 300;
	im_http_result *res = NULL;
	double t0 = now_s();
	cr_assert_eq(im_net_send_sync(net, &call, &res), IM_ETIMEDOUT);
	double took = now_s() - t0;
	cr_assert_not_null(res);
	cr_assert_eq(res->error, IM_ETIMEDOUT);
	cr_assert_eq(res->status, 0);
	cr_assert_not_null(res->error_text);
	cr_assert_gt(strlen(res->error_text), 0);
	cr_assert_geq(took, 0.25, "took %.3f s", took);
	cr_assert_lt(took, 1.0, "took %.3f s", took);
	im_net_result_free(res);
	im_net_stop(net);
}

Test(net, maps_a_refused_connection_to_eio_with_curls_reason)
{
	im_net *net = start_net();
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/ok", closed_port());
	im_http_call call = {.struct_size = sizeof(call), .url = url};
	im_http_result *res = NULL;
	cr_assert_eq(im_net_send_sync(net, &call, &res), IM_EIO);
	cr_assert_eq(res->error, IM_EIO);
	cr_assert_eq(res->status, 0);
	cr_assert(strstr(res->error_text, "onnect"), "error text: %s",
		  res->error_text);
	cr_assert_eq(res->n_headers, 0);
	im_net_result_free(res);
	im_net_stop(net);
}

Test(net, reports_429_as_an_answer_with_its_retry_after)
{
	im_net *net = start_net();
	im_http_call call = get_call("/429");
	im_http_result *res = NULL;
	cr_assert_eq(im_net_send_sync(net, &call, &res), 0);
	cr_assert_eq(res->error, 0);
	cr_assert_null(res->error_text);
	cr_assert_eq(res->status, 429);
	cr_assert_str_eq(im_http_result_header(res, "Retry-After"), "3");
	cr_assert_str_eq(res->body, "slow down");
	im_net_result_free(res);
	im_net_stop(net);
}

Test(net, lowercases_header_names_and_trims_values)
{
	im_net *net = start_net();
	im_http_call call = get_call("/headers");
	im_http_result *res = NULL;
	cr_assert_eq(im_net_send_sync(net, &call, &res), 0);
	cr_assert_gt(res->n_headers, 0);
	for (size_t i = 0; i < res->n_headers; i++)
		for (const char *p = res->headers[i].name; *p; p++)
			cr_assert(*p < 'A' || *p > 'Z', "name %s",
				  res->headers[i].name);
	cr_assert_str_eq(im_http_result_header(res, "x-mixed-case"), "value");
	cr_assert_str_eq(im_http_result_header(res, "X-MIXED-CASE"), "value");
	cr_assert_str_eq(im_http_result_header(res, "x-pad"), "padded");
	cr_assert_str_eq(im_http_result_header(res, "x-dup"), "second");
	cr_assert_null(im_http_result_header(res, "x-absent"));
	cr_assert_null(im_http_result_header(NULL, "x-dup"));
	size_t dups = 0;
	for (size_t i = 0; i < res->n_headers; i++)
		dups += strcmp(res->headers[i].name, "x-dup") == 0;
	cr_assert_eq(dups, 1);
	im_net_result_free(res);
	im_net_stop(net);
}

Test(net, does_not_follow_redirects)
{
	im_net *net = start_net();
	im_http_call call = get_call("/redirect");
	im_http_result *res = NULL;
	cr_assert_eq(im_net_send_sync(net, &call, &res), 0);
	cr_assert_eq(res->status, 302);
	cr_assert_str_eq(im_http_result_header(res, "location"), "/ok");
	cr_assert_str_eq(res->body, "moved");
	im_net_result_free(res);
	im_net_stop(net);
}

Test(net, reuses_the_connection_for_sequential_requests)
{
	im_net *net = start_net();
	for (int i = 0; i < 5; i++) {
		im_http_call call = get_call("/ok");
		im_http_result *res = NULL;
		cr_assert_eq(im_net_send_sync(net, &call, &res), 0);
		cr_assert_eq(res->status, 200);
		im_net_result_free(res);
	}
	cr_assert_eq(atomic_load(&connections_opened), 1);
	im_net_stop(net);
}

struct blocking {
	im_net *net;
	const char *path;
	int calls, rc;
	long status;
};

static void *call_blocking(void *arg)
{
	struct blocking *b = arg;
	for (int i = 0; i < b->calls; i++) {
		im_http_call call = get_call(b->path);
		im_http_result *res = NULL;
		b->rc = im_net_send_sync(b->net, &call, &res);
		b->status = res ? res->status : -1;
		im_net_result_free(res);
		if (b->rc != 0)
			break;
	}
	return NULL;
}

/* A blocking call runs on its caller's thread, which keeps its own
 * connection from call to call. */
Test(net, blocking_calls_keep_one_connection_per_calling_thread)
{
	im_net *net = start_net();
	pthread_t th[3];
	struct blocking b[3];
	for (int i = 0; i < 3; i++) {
		b[i] = (struct blocking){net, "/ok", 4, -1, 0};
		cr_assert_eq(pthread_create(&th[i], NULL, call_blocking, &b[i]),
			     0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(b[i].rc, 0);
		cr_assert_eq(b[i].status, 200);
	}
	cr_assert_eq(atomic_load(&connections_opened), 3);
	im_net_stop(net);
}

/* /slow answers after 2 s: a stop that waited for the answer would see
 * 200; the call is ended instead, and stop returns once it has. */
Test(net, stopping_ends_a_blocking_call_under_way)
{
	im_net *net = start_net();
	struct blocking b = {net, "/slow", 1, -1, -1};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, call_blocking, &b), 0);
	for (int i = 0; i < 200 && atomic_load(&slow_started) < 1; i++)
		usleep(10 * 1000);
	cr_assert_eq(atomic_load(&slow_started), 1);
	im_net_stop(net);
	pthread_join(th, NULL);
	cr_assert_eq(b.rc, IM_ECANCELED, "rc %d", b.rc);
	cr_assert_eq(b.status, 0);
}

struct sender {
	im_net *net;
	struct tally *t;
	struct slot *slots;
	int first, n;
	int failures;
};

static void *send_many(void *arg)
{
	struct sender *s = arg;
	for (int i = s->first; i < s->first + s->n; i++) {
		im_http_call call = get_call(i % 2 ? "/ok" : "/429");
		s->slots[i] = (struct slot){s->t, i};
		if (im_net_send(s->net, &call, count_done, &s->slots[i]) != 0)
			s->failures++;
	}
	return NULL;
}

Test(net, completes_200_concurrent_requests_exactly_once)
{
	im_net *net = start_net();
	static struct tally t;
	static struct slot slots[200];
	tally_init(&t);
	pthread_t th[4];
	struct sender s[4];
	for (int i = 0; i < 4; i++) {
		s[i] = (struct sender){net, &t, slots, i * 50, 50, 0};
		cr_assert_eq(pthread_create(&th[i], NULL, send_many, &s[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(s[i].failures, 0);
	}
	cr_assert_eq(tally_wait(&t, 200, 30), 200);
	im_net_stop(net);
	cr_assert_eq(t.total, 200, "extra callbacks after stop");
	for (int i = 0; i < 200; i++) {
		cr_assert_eq(t.calls[i], 1, "request %d: %d calls", i,
			     t.calls[i]);
		cr_assert_eq(t.errors[i], 0, "request %d: error %d", i,
			     t.errors[i]);
		cr_assert_eq(t.status[i], i % 2 ? 200 : 429,
			     "request %d: status %ld", i, t.status[i]);
	}
	tally_destroy(&t);
}

Test(net, cancels_pending_requests_when_stopping)
{
	im_net *net = start_net();
	static struct tally t;
	static struct slot slots[10];
	tally_init(&t);
	for (int i = 0; i < 5; i++) {
		im_http_call call = get_call("/slow");
		slots[i] = (struct slot){&t, i};
		cr_assert_eq(im_net_send(net, &call, count_done, &slots[i]), 0);
	}
	/* Let the first five reach the server, then queue five more. */
	for (int i = 0; i < 200 && atomic_load(&slow_started) < 5; i++)
		usleep(10 * 1000);
	cr_assert_eq(atomic_load(&slow_started), 5);
	for (int i = 5; i < 10; i++) {
		im_http_call call = get_call("/slow");
		slots[i] = (struct slot){&t, i};
		cr_assert_eq(im_net_send(net, &call, count_done, &slots[i]), 0);
	}
	double t0 = now_s();
	im_net_stop(net);
	double took = now_s() - t0;
	cr_assert_lt(took, 1.0, "stop took %.3f s", took);
	cr_assert_eq(t.total, 10);
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(t.calls[i], 1);
		cr_assert_eq(t.errors[i], IM_ECANCELED, "request %d: %d", i,
			     t.errors[i]);
		cr_assert_eq(t.status[i], 0);
	}
	tally_destroy(&t);
}

Test(net, stopping_an_idle_or_null_net_is_fine)
{
	im_net_stop(NULL);
	im_net *net = start_net();
	im_net_stop(net);
	net = start_net(); /* a second start after a stop works too */
	im_http_call call = get_call("/ok");
	im_http_result *res = NULL;
	cr_assert_eq(im_net_send_sync(net, &call, &res), 0);
	im_net_result_free(res);
	im_net_stop(net);
}

Test(net, sync_helper_returns_a_copy_that_outlives_the_net)
{
	im_net *net = start_net();
	im_http_call call = get_call("/ok");
	im_http_result *res = NULL;
	cr_assert_eq(im_net_send_sync(net, &call, &res), 0);
	im_net_stop(net);
	cr_assert_eq(res->struct_size, sizeof(im_http_result));
	cr_assert_eq(res->status, 200);
	cr_assert_str_eq(res->body, "hello from ok");
	cr_assert_str_eq(im_http_result_header(res, "X-Test"), "yes");
	cr_assert_str_eq(im_http_result_header(res, "content-type"),
			 "text/plain");
	im_net_result_free(res);
	im_net_result_free(NULL);
}

Test(net, copies_the_call_before_send_returns)
{
	im_net *net = start_net();
	struct captured c = {.done = false};
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cv, NULL);

	char *url = strdup(url_for("/echo"));
	char *method = strdup("POST");
	char *body = strdup("copied body");
	char *hname = strdup("X-Custom");
	char *hval = strdup("abc");
	im_http_header *h = malloc(sizeof(*h));
	*h = (im_http_header)IM_HEADER(hname, hval);
	im_http_call *call = calloc(1, sizeof(*call));
	*call = (im_http_call){.struct_size = sizeof(*call),
			       .method = method,
			       .url = url,
			       .headers = h,
			       .n_headers = 1,
			       .body = body,
			       .body_len = strlen(body)};
	cr_assert_eq(im_net_send(net, call, capture_done, &c), 0);
	memset(url, 'x', strlen(url));
	memset(body, 'x', strlen(body));
	free(url);
	free(method);
	free(body);
	free(hname);
	free(hval);
	free(h);
	free(call);

	pthread_mutex_lock(&c.mu);
	while (!c.done)
		pthread_cond_wait(&c.cv, &c.mu);
	pthread_mutex_unlock(&c.mu);
	cr_assert_eq(c.error, 0);
	cr_assert_eq(c.status, 200);
	cr_assert_str_eq(c.body, "copied body");
	im_net_stop(net);
	pthread_cond_destroy(&c.cv);
	pthread_mutex_destroy(&c.mu);
}

Test(net, rejects_invalid_calls)
{
	im_net *net = start_net();
	im_http_call call = get_call("/ok");
	im_http_result *res = (im_http_result *)1;
	cr_assert_eq(im_net_send(net, NULL, count_done, NULL), IM_EINVAL);
	cr_assert_eq(im_net_send(NULL, &call, count_done, NULL), IM_EINVAL);
	cr_assert_eq(im_net_send_sync(net, NULL, &res), IM_EINVAL);
	cr_assert_null(res);

	im_http_call bad = call;
	bad.url = NULL;
	cr_assert_eq(im_net_send(net, &bad, count_done, NULL), IM_EINVAL);
	bad = call;
	bad.struct_size = 0;
	cr_assert_eq(im_net_send(net, &bad, count_done, NULL), IM_EVERSION);
	bad = call;
	bad.body_len = 3;
	cr_assert_eq(im_net_send(net, &bad, count_done, NULL), IM_EINVAL);
	bad = call;
	bad.method = "GET /x";
	cr_assert_eq(im_net_send(net, &bad, count_done, NULL), IM_EINVAL);
	im_http_header inject[] = {IM_HEADER("X-A", "v\r\nX-Injected: 1")};
	bad = call;
	bad.headers = inject;
	bad.n_headers = 1;
	cr_assert_eq(im_net_send(net, &bad, count_done, NULL), IM_EINVAL);
	im_http_header badname[] = {IM_HEADER("X A", "v")};
	bad.headers = badname;
	cr_assert_eq(im_net_send(net, &bad, count_done, NULL), IM_EINVAL);
	bad = call;
	bad.url = "file:///etc/passwd";
	cr_assert_eq(im_net_send_sync(net, &bad, &res), IM_EIO);
	cr_assert_not_null(res);
	im_net_result_free(res);
	im_net_stop(net);
}

Test(net, accepts_a_body_of_exactly_16_mib)
{
	im_net *net = start_net();
	char path[64];
	snprintf(path, sizeof(path), "/chunked?n=%zu", 16 * MIB);
	im_http_call call = get_call(path);
	im_http_result *res = NULL;
	cr_assert_eq(im_net_send_sync(net, &call, &res), 0);
	cr_assert_eq(res->body_len, 16 * MIB);
	cr_assert_eq(res->body[0], 'b');
	cr_assert_eq(res->body[16 * MIB - 1], 'b');
	im_net_result_free(res);
	im_net_stop(net);
}

Test(net, refuses_a_body_over_16_mib)
{
	im_net *net = start_net();
	const char *kinds[] = {"/chunked", "/bytes"};
	for (int k = 0; k < 2; k++) {
		char path[64];
		snprintf(path, sizeof(path), "%s?n=%zu", kinds[k],
			 16 * MIB + 1);
		im_http_call call = get_call(path);
		im_http_result *res = NULL;
		cr_assert_eq(im_net_send_sync(net, &call, &res), IM_EIO, "%s",
			     kinds[k]);
		cr_assert_str_eq(res->error_text, "response too large");
		cr_assert_eq(res->body_len, 0);
		im_net_result_free(res);
	}
	im_net_stop(net);
}

struct chain {
	im_net *net;
	struct tally *t;
	struct slot second;
	int sync_rc;
	int send_rc;
};

static void first_done(void *ud, const im_http_result *res)
{
	struct chain *c = ud;
	im_http_call call = get_call("/ok");
	im_http_result *out = NULL;
	c->sync_rc = im_net_send_sync(c->net, &call, &out);
	c->send_rc = im_net_send(c->net, &call, count_done, &c->second);
	struct slot first = {c->t, 0};
	count_done(&first, res);
}

Test(net, sends_a_new_request_from_a_completion_callback)
{
	im_net *net = start_net();
	static struct tally t;
	tally_init(&t);
	struct chain c = {net, &t, {&t, 1}, 1, 1};
	im_http_call call = get_call("/ok");
	cr_assert_eq(im_net_send(net, &call, first_done, &c), 0);
	cr_assert_eq(tally_wait(&t, 2, 10), 2);
	cr_assert_eq(c.send_rc, 0);
	cr_assert_eq(c.sync_rc, IM_EINVAL, "sync on the network thread");
	cr_assert_eq(t.status[0], 200);
	cr_assert_eq(t.status[1], 200);
	im_net_stop(net);
	tally_destroy(&t);
}

Test(net, runs_a_request_without_a_callback)
{
	im_net *net = start_net();
	im_http_call call = get_call("/ok");
	cr_assert_eq(im_net_send(net, &call, NULL, NULL), 0);
	im_http_result *res = NULL;
	cr_assert_eq(im_net_send_sync(net, &call, &res), 0);
	im_net_result_free(res);
	im_net_stop(net);
}
