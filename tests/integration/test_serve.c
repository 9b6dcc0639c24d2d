/* `im serve` end to end: the real binary on loopback. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <im/types.h>

#include "harness.h"

static srv s;

static void setup(void)
{
	srv_init(&s);
}

static void teardown(void)
{
	srv_cleanup(&s);
}

TestSuite(serve, .init = setup, .fini = teardown, .timeout = 60);

static void start_with_echo(void)
{
	srv_conf(&s, "10-plugins.yaml",
		 "plugins:\n  instances:\n"
		 "    - {id: echo, module: echo, config: {prefix: \"> \"}}\n"
		 "    - id: g\n      module: good\n      config:\n"
		 "        greeting: hello\n        token: s3cr3t-value-42\n");
	cr_assert(srv_start(&s), "server did not start:\n%s", srv_log(&s));
}

Test(serve, answers_health_with_healthy)
{
	start_with_echo();
	reply r = http(&s, false, "GET", "/health", NULL, 0, NULL);
	cr_expect_eq(r.status, 200);
	cr_expect(strstr(r.body, "\"status\":\"healthy\""), "%s", r.body);
	cr_expect(strstr(r.headers, "application/json"));
	reply_free(&r);
}

Test(serve, routes_hooks_to_plugin_instances)
{
	start_with_echo();
	reply r = http(&s, false, "POST", "/hooks/echo/echo", "ping", 4, NULL);
	cr_expect_eq(r.status, 200);
	cr_expect_str_eq(r.body, "> ping");
	reply_free(&r);
	r = http(&s, false, "GET", "/hooks/g/hello", NULL, 0, NULL);
	cr_expect_eq(r.status, 200);
	cr_expect_str_eq(r.body, "hello");
	reply_free(&r);
	r = http(&s, false, "GET", "/hooks/nobody/x", NULL, 0, NULL);
	cr_expect_eq(r.status, 404);
	cr_expect(strstr(r.body, "no plugin instance named 'nobody'"), "%s",
		  r.body);
	reply_free(&r);
	r = http(&s, false, "GET", "/hooks/echo/echo", NULL, 0, NULL);
	cr_expect_eq(r.status, 405);
	reply_free(&r);
}

Test(serve, refuses_an_oversized_body_with_413)
{
	start_with_echo();
	size_t n = 100 * 1024;
	char *big = malloc(n);
	memset(big, 'x', n);
	reply r = http(&s, false, "POST", "/hooks/echo/echo", big, n, NULL);
	cr_expect_eq(r.status, 413);
	cr_expect(strstr(r.body, "payload_too_large"), "%s", r.body);
	reply_free(&r);
	free(big);
	/* Still serving. */
	r = http(&s, false, "GET", "/health", NULL, 0, NULL);
	cr_expect_eq(r.status, 200);
	reply_free(&r);
}

Test(serve, answers_unknown_routes_with_404_json)
{
	start_with_echo();
	reply r = http(&s, false, "GET", "/nope", NULL, 0, NULL);
	cr_expect_eq(r.status, 404);
	cr_expect(strstr(r.body, "\"code\":\"not_found\""), "%s", r.body);
	reply_free(&r);
}

Test(serve, exposes_prometheus_metrics_on_the_metrics_port)
{
	start_with_echo();
	reply r = http(&s, true, "GET", "/metrics", NULL, 0, NULL);
	cr_expect_eq(r.status, 200);
	cr_expect(strstr(r.body,
			 "chatops_connection_status{platform=\"test\","
			 "instance=\"g\"} 1"),
		  "%s", r.body);
	cr_expect(strstr(r.body, "process_resident_memory_bytes"));
	cr_expect(strstr(r.body, "im_plugin_instances{state=\"running\"} 2"),
		  "%s", r.body);
	reply_free(&r);
	r = http(&s, false, "GET", "/metrics", NULL, 0, NULL);
	cr_expect_eq(r.status, 404, "metrics live on their own port only");
	reply_free(&r);
}

Test(serve, stops_with_exit_0_on_sigterm)
{
	start_with_echo();
	cr_expect_eq(srv_stop(&s), 0);
	char *log = srv_log(&s);
	cr_expect(strstr(log, "stopped"), "%s", log);
	free(log);
}

Test(serve, keeps_running_when_a_plugin_is_broken)
{
	srv_conf(&s, "10-plugins.yaml",
		 "plugins:\n  instances:\n"
		 "    - {id: echo, module: echo}\n"
		 "    - {id: m, module: bad_major}\n"
		 "    - {id: n, module: no_entry}\n"
		 "    - {id: f, module: init_fail}\n");
	cr_assert(srv_start(&s), "%s", srv_log(&s));
	char *log = srv_log(&s);
	char want[64];
	snprintf(want, sizeof want, "bad_major.so: built for plugin ABI %d.%d",
		 IM_ABI_MAJOR + 1, IM_ABI_MINOR);
	cr_expect(strstr(log, want), "%s", log);
	cr_expect(strstr(log, "no_entry.so: exports no im_plugin_entry"));
	free(log);
	reply r = http(&s, false, "POST", "/hooks/echo/echo", "a", 1, NULL);
	cr_expect_eq(r.status, 200);
	reply_free(&r);
	r = http(&s, false, "GET", "/hooks/f/x", NULL, 0, NULL);
	cr_expect_eq(r.status, 503);
	cr_expect(strstr(r.body, "cannot reach the backend"), "%s", r.body);
	reply_free(&r);
}

Test(serve, refuses_to_start_when_a_required_plugin_fails)
{
	srv_conf(&s, "10-plugins.yaml",
		 "plugins:\n  instances:\n"
		 "    - {id: m, module: bad_major, required: true}\n");
	cr_expect_not(srv_start(&s));
	char *log = srv_log(&s);
	cr_expect(strstr(log, "10-plugins.yaml:3"), "%s", log);
	cr_expect(strstr(log, "required instance failed"), "%s", log);
	free(log);
}

Test(serve, a_missing_config_folder_is_named_and_exits_1)
{
	char missing[160];
	snprintf(missing, sizeof(missing), "%.120s/no-such-conf.d", s.dir);
	memcpy(s.conf, missing, sizeof(missing));
	cr_expect_not(srv_start(&s));
	char *log = srv_log(&s);
	cr_expect(strstr(log, missing), "%s", log);
	cr_expect(strstr(log, "cannot open config folder"), "%s", log);
	cr_expect(strstr(log, "--config"), "says how to choose one: %s", log);
	free(log);
	char bin[512];
	snprintf(bin, sizeof(bin), "%s/im serve --config %s 2>/dev/null",
		 build_dir(), missing);
	int st = system(bin);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit status %d", st);
}

Test(serve, a_state_folder_it_cannot_write_is_named_with_the_uid)
{
	/* sysfs refuses new files, to root too. */
	srv_conf(&s, "20-storage.yaml", "storage:\n  path: /sys/im.db\n");
	cr_expect_not(srv_start(&s));
	char *log = srv_log(&s);
	char uid[32];
	snprintf(uid, sizeof(uid), "as uid %u", (unsigned)geteuid());
	cr_expect(strstr(log, "storage.path: /sys/im.db: cannot create the "
			      "database"),
		  "%s", log);
	cr_expect(strstr(log, uid), "%s", log);
	cr_expect(strstr(log, "IM_DATA_DIR"), "%s", log);
	free(log);
}

Test(serve, redacts_secret_config_values_from_logs)
{
	srv_conf(&s, "10-plugins.yaml",
		 "log: {level: debug}\nplugins:\n  instances:\n"
		 "    - id: g\n      module: good\n      config:\n"
		 "        greeting: hi\n        token: s3cr3t-value-42\n"
		 /* Its rules register the Slack token prefixes. */
		 "    - {id: sl, module: slack}\n");
	cr_assert(srv_start(&s), "%s", srv_log(&s));
	/* The debug access log writes the path: put the secret and a Slack
	 * token in it. */
	reply r = http(&s, false, "GET",
		       "/hooks/g/s3cr3t-value-42/xoxb-1234-abcdef", NULL, 0,
		       NULL);
	cr_expect_eq(r.status, 404);
	reply_free(&r);
	srv_stop(&s);
	char *log = srv_log(&s);
	cr_expect(strstr(log, "GET /hooks/g/[REDACTED]/xoxb-[REDACTED]"), "%s",
		  log);
	cr_expect_null(strstr(log, "s3cr3t-value-42"), "%s", log);
	cr_expect_null(strstr(log, "abcdef"), "%s", log);
	free(log);
}

Test(serve, protects_the_admin_api_with_the_admin_token)
{
	srv_conf(&s, "20-admin.yaml", "server:\n  admin_token: t0ken-abc\n");
	start_with_echo();
	reply r = http(&s, false, "GET", "/api/v1/admin/plugins", NULL, 0,
		       NULL);
	cr_expect_eq(r.status, 401);
	reply_free(&r);
	const char *bad[] = {"Authorization: Bearer wrong", NULL};
	r = http(&s, false, "GET", "/api/v1/admin/plugins", NULL, 0, bad);
	cr_expect_eq(r.status, 401);
	reply_free(&r);
	const char *good[] = {"Authorization: Bearer t0ken-abc", NULL};
	r = http(&s, false, "GET", "/api/v1/admin/plugins", NULL, 0, good);
	cr_expect_eq(r.status, 200);
	cr_expect(strstr(r.body, "\"id\":\"echo\""), "%s", r.body);
	reply_free(&r);
}

Test(serve, lets_plugins_send_outbound_http_through_the_host)
{
	start_with_echo();
	char path[256];
	snprintf(path, sizeof(path),
		 "/hooks/g/fetch?url=http://127.0.0.1:%u/health", s.port);
	reply r = http(&s, false, "GET", path, NULL, 0, NULL);
	cr_expect_eq(r.status, 200, "%s", r.body);
	cr_expect(strstr(r.body, "200 {\"status\":\"healthy\""), "%s", r.body);
	reply_free(&r);
	/* The blocking http_fetch is refused on an HTTP worker, by name
	 * (before the slow call below moves g's routes off the workers). */
	snprintf(path, sizeof(path),
		 "/hooks/g/fetchsync?url=http://127.0.0.1:%u/health", s.port);
	r = http(&s, false, "GET", path, NULL, 0, NULL);
	cr_expect_eq(r.status, 409, "%s", r.body);
	reply_free(&r);
	char *log = srv_log(&s);
	cr_expect(strstr(log, "plugin good (instance g) called the blocking "
			      "http_fetch on an HTTP worker; refused"),
		  "%s", log);
	free(log);
	/* A timeout is reported as such, not as a hang. */
	snprintf(path, sizeof(path),
		 "/hooks/g/fetch?timeout_ms=300&url=http://127.0.0.1:%u/hooks/"
		 "g/slow%%3Fms%%3D3000",
		 s.port);
	r = http(&s, false, "GET", path, NULL, 0, NULL);
	cr_expect_eq(r.status, 504, "%s", r.body);
	reply_free(&r);
	/* Nothing listening: a clear connection error. */
	snprintf(path, sizeof(path), "/hooks/g/fetch?url=http://127.0.0.1:1/");
	r = http(&s, false, "GET", path, NULL, 0, NULL);
	cr_expect_eq(r.status, 502, "%s", r.body);
	reply_free(&r);
}

/* Waits up to 10 s for one datagram on fd; "" on time-out. */
static void recv_notify(int fd, char *buf, size_t len)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	buf[0] = '\0';
	if (poll(&p, 1, 10000) == 1) {
		ssize_t n = recv(fd, buf, len - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
	}
}

Test(serve, tells_systemd_when_ready_reloading_and_stopping)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int w = snprintf(sa.sun_path, sizeof(sa.sun_path), "%.80s/notify.sock",
			 s.dir);
	cr_assert(w > 0 && (size_t)w < sizeof(sa.sun_path));
	const char *path = sa.sun_path;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	setenv("NOTIFY_SOCKET", path, 1);
	start_with_echo();
	unsetenv("NOTIFY_SOCKET");
	char msg[512];
	recv_notify(fd, msg, sizeof(msg));
	cr_expect(strstr(msg, "READY=1"), "got [%s]", msg);
	cr_expect(strstr(msg, "STATUS=listening on 127.0.0.1:"), "got [%s]",
		  msg);
	kill(s.pid, SIGHUP);
	recv_notify(fd, msg, sizeof(msg));
	cr_expect(strstr(msg, "RELOADING=1\nMONOTONIC_USEC="), "got [%s]", msg);
	recv_notify(fd, msg, sizeof(msg));
	cr_expect_str_eq(msg, "READY=1\nSTATUS=reloaded");
	/* A reload that fails says so in the status. */
	srv_conf(&s, "90-bad.yaml", "log:\n  level: verbose\n");
	kill(s.pid, SIGHUP);
	recv_notify(fd, msg, sizeof(msg));
	cr_expect(strstr(msg, "RELOADING=1"), "got [%s]", msg);
	recv_notify(fd, msg, sizeof(msg));
	cr_expect(strstr(msg, "READY=1\nSTATUS=reload failed, running the "
			      "previous config: ") &&
		      strstr(msg, "90-bad.yaml:2"),
		  "got [%s]", msg);
	cr_expect_eq(srv_stop(&s), 0); /* SIGTERM */
	recv_notify(fd, msg, sizeof(msg));
	cr_expect_str_eq(msg, "STOPPING=1");
	close(fd);
}

Test(serve, an_empty_metrics_listen_turns_the_metrics_listener_off)
{
	srv_conf(&s, "20-metrics.yaml", "server:\n  metrics_listen: \"\"\n");
	cr_assert(srv_start(&s), "server did not start:\n%s", srv_log(&s));
	reply r = http(&s, true, "GET", "/metrics", NULL, 0, NULL);
	cr_expect_eq(r.status, 0, "something answers on the metrics port");
	reply_free(&r);
	/* /health may answer before the start-up line is written. */
	char *log = NULL;
	for (int i = 0; i < 50; i++) {
		free(log);
		log = srv_log(&s);
		if (strstr(log, "server.metrics_listen is empty: no /metrics"))
			break;
		usleep(100000);
	}
	cr_expect(strstr(log, "server.metrics_listen is empty: no /metrics"),
		  "%s", log);
	free(log);
	cr_expect_eq(srv_stop(&s), 0);
}

/* A plugin that crashes in its constructor or in create() is refused
 * after a trial load in a child process; the server keeps running, at
 * start and on reload, and config validate names it. */
Test(serve, survives_plugins_that_crash_on_load_or_create)
{
	srv_conf(&s, "10-plugins.yaml",
		 "plugins:\n  instances:\n"
		 "    - {id: echo, module: echo}\n"
		 "    - {id: boom, module: ctor_crash}\n"
		 "    - {id: bang, module: create_crash}\n");
	cr_assert(srv_start(&s), "a crashing plugin took the server down:\n%s",
		  srv_log(&s));
	char *out = NULL, *err = NULL;
	const char *list[] = {"plugins", "list", NULL};
	cli(&s, &out, &err, list);
	cr_expect(strstr(out, "boom"), "%s", out);
	cr_expect(strstr(out, "crashed with"), "%s", out);
	free(out);
	free(err);
	char *log = srv_log(&s);
	cr_expect(strstr(log, "instance boom: plugin crashed"), "%s", log);
	cr_expect(strstr(log, "instance bang: plugin crashed"), "%s", log);
	free(log);
	reply r = http(&s, false, "POST", "/hooks/echo/echo", "x", 1, NULL);
	cr_expect_eq(r.status, 200, "the good plugin runs: %s", r.body);
	reply_free(&r);
	/* A reload that adds another crashing instance changes nothing. */
	srv_conf(&s, "20-more.yaml", "plugins:\n  instances:\n"
				     "    - {id: bang2, module: create_crash}\n");
	const char *reload[] = {"plugins", "reload", NULL};
	cli(&s, &out, &err, reload);
	free(out);
	free(err);
	r = http(&s, false, "GET", "/health", NULL, 0, NULL);
	cr_expect_eq(r.status, 200, "the server died on reload");
	reply_free(&r);
	/* validate says so, with the file:line of the entry. */
	const char *validate[] = {"config", "validate", NULL};
	int rc = cli(&s, &out, &err, validate);
	cr_expect_eq(rc, 1, "validate said OK:\n%s%s", out, err);
	cr_expect(strstr(err, "10-plugins.yaml:") && strstr(err, "crashed with"),
		  "%s", err);
	free(out);
	free(err);
	cr_expect_eq(srv_stop(&s), 0);
}

Test(serve, a_required_plugin_that_crashes_stops_the_start_with_a_reason)
{
	srv_conf(&s, "10-plugins.yaml",
		 "plugins:\n  instances:\n"
		 "    - {id: bang, module: create_crash, required: true}\n");
	cr_expect_not(srv_start(&s));
	char *log = srv_log(&s);
	cr_expect(strstr(log, "required instance failed") &&
		      strstr(log, "crashed with"),
		  "%s", log);
	free(log);
}

/* A crash inside a running plugin still ends the process (the unit
 * restarts it), but first says which plugin and what it was doing. */
Test(serve, a_crash_in_a_plugin_route_names_the_plugin_and_route)
{
	srv_conf(&s, "10-plugins.yaml",
		 "plugins:\n  instances:\n"
		 "    - {id: rc, module: route_crash}\n");
	cr_assert(srv_start(&s), "%s", srv_log(&s));
	reply r = http(&s, false, "POST", "/hooks/rc/crash", "x", 1, NULL);
	reply_free(&r);
	int st = srv_stop(&s);
	cr_expect_neq(st, 0, "the server survived a SIGSEGV?");
	char *log = srv_log(&s);
	cr_expect(strstr(log, "FATAL [core:plugin] SIGSEGV in plugin "
			      "route_crash (instance rc) during route "
			      "/hooks/rc/crash"),
		  "%s", log);
	free(log);
}
