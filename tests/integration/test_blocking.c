/* No HTTP worker waits on a platform: status calls to a platform that
 * never answers run off the HTTP workers, /health and the API answer
 * meanwhile, the calls end with an answer, and SIGTERM stops the server
 * in bounded time. The "platform" is a socket that accepts connections
 * into its backlog and never answers. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

static srv s;
static int hole = -1;

static void setup(void)
{
	hole = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	cr_assert(hole >= 0 && bind(hole, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		  listen(hole, 64) == 0 &&
		  getsockname(hole, (struct sockaddr *)&a, &len) == 0);
	srv_init(&s);
	srv_conf(&s, "10-slack.yaml",
		 "server:\n  threads: 2\n"
		 "plugins:\n  instances:\n"
		 "    - {id: g, module: good, config: {greeting: hi}}\n"
		 "    - id: slack\n      module: slack\n      config:\n"
		 "        bot_token: xoxb-test\n"
		 "        signing_secret: s3cret\n"
		 "        api_base_url: http://127.0.0.1:%u/api\n",
		 (unsigned)ntohs(a.sin_port));
	cr_assert(srv_start(&s), "server did not start:\n%s", srv_log(&s));
}

static void teardown(void)
{
	srv_cleanup(&s);
	close(hole);
}

TestSuite(blocking, .init = setup, .fini = teardown, .timeout = 120);

static atomic_int finished;

static void *status_call(void *arg)
{
	reply r = http(&s, false, "GET", "/api/v1/admin/connectors/slack/status",
		       NULL, 0, NULL);
	*(long *)arg = r.status;
	reply_free(&r);
	atomic_fetch_add(&finished, 1);
	return NULL;
}

Test(blocking, status_calls_to_a_silent_platform_hold_no_http_worker)
{
	enum { N = 4 };
	pthread_t th[N];
	long st[N];
	atomic_store(&finished, 0);
	for (int i = 0; i < N; i++)
		pthread_create(&th[i], NULL, status_call, &st[i]);
	usleep(300000);
	/* More calls than HTTP workers are waiting on the platform; the
	 * server still answers. */
	for (int i = 0; i < 5; i++) {
		reply r = http(&s, false, "GET", "/health", NULL, 0, NULL);
		cr_expect_eq(r.status, 200, "health while calls hang: %ld",
			     r.status);
		reply_free(&r);
		r = http(&s, false, "GET", "/api/v1/incidents", NULL, 0, NULL);
		cr_expect_eq(r.status, 200, "the API while calls hang");
		reply_free(&r);
	}
	cr_expect_eq(atomic_load(&finished), 0,
		     "the status calls did not wait on the platform at all");
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		/* Slack's own call gives up (an answer with the error) or the
		 * server's deadline answers 504: either way, an answer. */
		cr_expect(st[i] == 200 || st[i] == 504, "status call %d: %ld", i,
			  st[i]);
	}
	cr_expect_eq(srv_stop(&s), 0);
}

Test(blocking, sigterm_stops_the_server_while_calls_hang)
{
	pthread_t th[3];
	long st[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, status_call, &st[i]);
	usleep(300000);
	kill(s.pid, SIGTERM);
	int status = 0;
	pid_t got = 0;
	for (int i = 0; i < 300 && got == 0; i++) {
		got = waitpid(s.pid, &status, WNOHANG);
		if (got == 0)
			usleep(100000);
	}
	cr_expect_eq(got, s.pid, "the server did not stop within 30 s");
	if (got == s.pid)
		s.pid = 0;
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
}

static void *slow_call(void *arg)
{
	reply r = http(&s, false, "GET", "/hooks/g/slow?ms=2500", NULL, 0, NULL);
	*(long *)arg = r.status;
	reply_free(&r);
	atomic_fetch_add(&finished, 1);
	return NULL;
}

/* A plugin route that holds an HTTP worker too long once runs off the
 * HTTP workers from then on: more slow calls than workers, and the
 * server still answers. */
Test(blocking, a_slow_plugin_route_is_moved_off_the_http_workers)
{
	reply r = http(&s, false, "GET", "/hooks/g/slow?ms=700", NULL, 0, NULL);
	cr_expect_eq(r.status, 200, "%s", r.body);
	reply_free(&r);
	char *log = srv_log(&s);
	cr_expect(strstr(log, "plugin good (instance g) held an HTTP worker"),
		  "%s", log);
	free(log);
	enum { N = 4 };
	pthread_t th[N];
	long st[N];
	atomic_store(&finished, 0);
	for (int i = 0; i < N; i++)
		pthread_create(&th[i], NULL, slow_call, &st[i]);
	usleep(300000);
	for (int i = 0; i < 5; i++) {
		r = http(&s, false, "GET", "/health", NULL, 0, NULL);
		cr_expect_eq(r.status, 200);
		reply_free(&r);
	}
	cr_expect_eq(atomic_load(&finished), 0,
		     "the slow calls ended before /health was asked");
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(st[i], 200, "slow call %d: %ld", i, st[i]);
	}
	reply m = http(&s, true, "GET", "/metrics", NULL, 0, NULL);
	cr_expect(strstr(m.body ? m.body : "",
			 "im_plugin_slow_routes_total{instance=\"g\"} 1"),
		  "%s", m.body);
	reply_free(&m);
	cr_expect_eq(srv_stop(&s), 0);
}
