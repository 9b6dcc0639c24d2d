/* `im serve`: start-up, the control loop, reload and shutdown. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <stddef.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "app/app.h"
#include "app/internal.h"
#include "bus/bus.h"
#include "clock/clock.h"
#include "command/command.h"
#include "incident/repo.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "notify/notify.h"
#include "plugin/plugin.h"
#include "store/store.h"

static bool stop_requested; /* control thread only */
static im_api_ctx api;

double im_app_uptime(const im_app *app)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - app->started.tv_sec) +
	       (double)(now.tv_nsec - app->started.tv_nsec) / 1e9;
}

/* Tells systemd (Type=notify) how the service is doing: one datagram to
 * $NOTIFY_SOCKET, a path or an abstract "@name" (sd_notify(3)'s protocol,
 * which systemd documents as stable). Without the variable: nothing. */
static void notify_systemd(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void notify_systemd(const char *fmt, ...)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = path ? strlen(path) : 0;
	if (n < 2 || n >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@'))
		return;
	memcpy(sa.sun_path, path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(msg))
		return;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, (size_t)len, MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
		LOG_DEBUG("serve", "NOTIFY_SOCKET %s: %s", path,
			  strerror(errno));
	close(fd);
}

/* Stopping waits for running chat commands and platform calls to let go
 * of their snapshot; one that never returns must not keep the process
 * alive: past this, the process leaves at once (everything acknowledged
 * is in the database; the outbox resends what was not delivered). */
#define STOP_DEADLINE_S 20

static void *stop_watchdog(void *arg)
{
	struct timespec ts = {STOP_DEADLINE_S, 0};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	LOG_ERROR("serve", "stopping took longer than %d s (a plugin or "
			   "platform call that does not return); exiting now",
		  STOP_DEADLINE_S);
	_exit(1);
	return arg;
}

static void apply_log_config(const im_config *cfg)
{
	if (im_log_configure(im_config_string(cfg, "log.level", "info"),
			     im_config_string(cfg, "log.format", "text")) != 0)
		LOG_WARN("serve", "log.level/log.format not understood; "
				  "keeping the defaults");
	im_log_init_env();
}

static int health(void *ud, const im_http_request *req,
		  im_http_response *resp)
{
	im_app *app = ud;
	return im_resp_json(resp, 200,
			    json_pack("{s:s,s:s,s:f}", "status", "healthy",
				      "version", IM_VERSION, "uptime_s",
				      im_app_uptime(app)));
}

static int metrics(void *ud, const im_http_request *req,
		   im_http_response *resp)
{
	size_t len;
	char *text = im_metrics_render(&len);
	if (!text)
		return IM_ENOMEM;
	int rc = im_resp_set(resp, 200, "text/plain; version=0.0.4", text,
			     len);
	free(text);
	return rc;
}

static long long parse_size(const im_config *cfg, const char *path,
			    long long def)
{
	const json_t *v = im_config_get(cfg, path);
	if (json_is_integer(v))
		return json_integer_value(v);
	const char *s = json_string_value(v);
	if (!s)
		return def;
	char *end;
	double n = strtod(s, &end);
	long long mul = 1;
	if (!strcmp(end, "KiB") || !strcmp(end, "K") || !strcmp(end, "KB"))
		mul = 1024;
	else if (!strcmp(end, "MiB") || !strcmp(end, "M") || !strcmp(end, "MB"))
		mul = 1024 * 1024;
	else if (*end)
		return def;
	return (long long)(n * (double)mul);
}

static int start_http(im_app *app)
{
	char err[512];
	app->api_router = im_router_new();
	app->metrics_router = im_router_new();
	if (!app->api_router || !app->metrics_router)
		return IM_ENOMEM;
	im_router_add(app->api_router, "GET", "/health", health, app);
	im_router_add(app->api_router, NULL, "/hooks/*",
		      im_registry_hook_handler, NULL);
	im_admin_routes(app, app->api_router);
	im_router_add(app->metrics_router, "GET", "/metrics", metrics, app);
	im_router_add(app->metrics_router, "GET", "/health", health, app);
	api = (im_api_ctx){.store = app->store,
			   .authorize = im_app_authorize_api,
			   .app = app};
	im_api_incident_routes(app->api_router, &api);
	im_api_stream_routes(app->api_router, &api);
	im_api_page_routes(app->api_router, &api);

	/* The long-lived stream GETs: a daemon with small pools. */
	static const char *const stream_paths[] = {"/api/v1/events",
						   "/api/v1/ws", NULL};
	double timeout = 30;
	const char *ts = im_config_string(app->cfg, "server.request_timeout",
					  NULL);
	if (ts && im_config_parse_duration(ts, &timeout) != 0)
		timeout = 30;
	im_httpd_opts o = {
	    .max_body = (size_t)parse_size(app->cfg, "server.max_body",
					   1 << 20),
	    .timeout_s = timeout < 1 ? 1 : (unsigned)timeout,
	    .threads = (unsigned)im_config_int(app->cfg, "server.threads", 0),
	    .header_ms = (unsigned)(1000 * im_config_duration(
					       app->cfg, "server.header_timeout",
					       10)),
	    .name = "http",
	    .max_conns = (unsigned)im_config_int(app->cfg,
						 "server.max_connections", 0),
	    .stream_paths = stream_paths,
	    .stream_memory = (size_t)parse_size(app->cfg,
						"server.stream_memory", 4096),
	};
	const char *listen =
	    im_config_string(app->cfg, "server.listen", "127.0.0.1:8080");
	const char *mlisten = im_config_string(
	    app->cfg, "server.metrics_listen", "127.0.0.1:9090");
	/* The metrics listener first: once /health answers on the API port,
	 * /metrics answers too (a probe or a test that waits for one may
	 * ask the other at once). */
	if (*mlisten) {
		im_httpd_opts mo = o;
		mo.name = "metrics";
		mo.threads = 1;
		mo.max_conns = 256;
		mo.stream_paths = NULL;
		if (!(app->metrics = im_httpd_start(mlisten, &mo,
						    app->metrics_router, err,
						    sizeof(err)))) {
			LOG_ERROR("serve", "server.metrics_listen: %s", err);
			return IM_EIO;
		}
	}
	if (!(app->api = im_httpd_start(listen, &o, app->api_router, err,
					sizeof(err)))) {
		LOG_ERROR("serve", "server.listen: %s", err);
		return IM_EIO;
	}
	if (!*mlisten)
		LOG_INFO("serve", "listening on %s (API, hooks, /health); "
				  "server.metrics_listen is empty: no /metrics",
			 listen);
	else
		LOG_INFO("serve", "listening on %s (API, hooks, /health) and %s "
				  "(/metrics)", listen, mlisten);
	return 0;
}

static int setup_signals(sigset_t *set)
{
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	/* Blocked before any thread starts, so only signalfd sees them. */
	if (pthread_sigmask(SIG_BLOCK, set, NULL) != 0)
		return -1;
	return signalfd(-1, set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static void answer_reloads(im_app *app)
{
	pthread_mutex_lock(&app->mu);
	unsigned long want = app->reload_seq;
	pthread_mutex_unlock(&app->mu);
	if (want == app->reload_done)
		return;
	json_t *res = im_app_reload(app);
	pthread_mutex_lock(&app->mu);
	json_decref(app->reload_result);
	app->reload_result = res;
	/* One reload answers every request made before it started. */
	app->reload_done = want;
	pthread_cond_broadcast(&app->cv);
	pthread_mutex_unlock(&app->mu);
}

static void control_loop(im_app *app, int sfd)
{
	struct pollfd fds[2] = {{.fd = sfd, .events = POLLIN},
				{.fd = app->wake_fd, .events = POLLIN}};
	while (!stop_requested) {
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					LOG_INFO("serve", "SIGHUP: reloading");
					notify_systemd("RELOADING=1\n"
						       "MONOTONIC_USEC=%lld",
						       im_mono_ns() / 1000);
					json_t *res = im_app_reload(app);
					const char *e = json_string_value(
					    json_object_get(res, "error"));
					/* systemctl status shows a failed
					 * reload; the old config stays. */
					if (e)
						notify_systemd(
						    "READY=1\nSTATUS=reload "
						    "failed, running the previous "
						    "config: %.300s",
						    e);
					else
						notify_systemd(
						    "READY=1\nSTATUS=reloaded");
					json_decref(res);
				} else {
					LOG_INFO("serve", "%s: stopping",
						 strsignal((int)si.ssi_signo));
					stop_requested = true;
				}
			}
		}
		if (fds[1].revents & POLLIN) {
			uint64_t n;
			if (read(app->wake_fd, &n, sizeof(n)) < 0)
				(void)0; /* spurious wake-up: nothing to read */
			answer_reloads(app);
		}
	}
}

static void teardown(im_app *app)
{
	im_api_streams_close();
	im_httpd_stop(app->api);
	im_httpd_stop(app->metrics);
	/* Wake admin callers still waiting for a reload answer. */
	pthread_mutex_lock(&app->mu);
	app->reload_done = app->reload_seq;
	pthread_cond_broadcast(&app->cv);
	pthread_mutex_unlock(&app->mu);
	/* Running chat commands and delivery threads hold a snapshot: end
	 * them first, commands before the pipeline so that what they still
	 * commit gets its outbox rows (sent at the next start). */
	im_command_shutdown();
	im_notify_stop();
	im_app_templates_clear();
	im_registry_shutdown();
	im_host_unbind();
	im_store_close(app->store);
	im_bus_reset();
	im_router_free(app->api_router);
	im_router_free(app->metrics_router);
	im_config_free(app->cfg);
	json_decref(app->reload_result);
	im_app_free_tokens(app);
	if (app->wake_fd >= 0)
		close(app->wake_fd);
	pthread_mutex_destroy(&app->mu);
	pthread_cond_destroy(&app->cv);
}

/* The chatops_* families exist from the start, so an operator's
 * `curl :9090/metrics | grep chatops_` shows them before any traffic. */
static void register_core_metrics(void)
{
	static const char *const platform[] = {"platform", NULL};
	static const char *const pc[] = {"platform", "command", NULL};
	im_connection_gauge();
	im_metrics_family("chatops_messages_sent_total",
			  "Messages sent by platform", IM_METRIC_COUNTER,
			  platform, NULL, 0);
	im_metrics_family("chatops_commands_received_total",
			  "Chat commands received by platform and command",
			  IM_METRIC_COUNTER, pc, NULL, 0);
	im_command_register_metrics();
	im_metrics_family("chatops_rate_limit_hits_total",
			  "Rate-limit answers from chat platforms",
			  IM_METRIC_COUNTER, platform, NULL, 0);
}

static int start(im_app *app)
{
	char err[2048];
	if (!(app->cfg = im_config_load_dir(app->config_dir, err,
					    sizeof(err)))) {
		LOG_ERROR("serve", "%s", err);
		return IM_ECONFIG;
	}
	apply_log_config(app->cfg);
	im_app_load_tokens(app);
	const char *db =
	    im_config_string(app->cfg, "storage.path", "./var/im.db");
	if (!(app->store = im_store_open(db, err, sizeof(err)))) {
		LOG_ERROR("serve", "storage.path: %s", err);
		return IM_EIO;
	}
	/* Streams and the pipeline continue the stored timeline. */
	im_bus_set_start(im_events_last_seq(app->store));
	/* A batch's events wake the bus's watchers once. */
	im_store_set_batch_hooks(im_bus_hold, im_bus_release);
	im_host_bind(app->store);
	im_command_bind_store(app->store);
	im_app_configure_commands(app);
	im_repo_set_public_url(
	    im_config_string(app->cfg, "server.public_url", ""));
	register_core_metrics();
	im_snapshot *s = im_registry_build(app->cfg, err, sizeof(err));
	if (!s) {
		LOG_ERROR("serve", "%s", err);
		return IM_ECONFIG;
	}
	im_registry_swap_with(s, im_app_templates_drop,
			      im_app_templates_load(app, s));
	im_app_update_secrets(app);
	if (im_notify_start(app->store, app->cfg, im_app_render,
			    NULL) != 0)
		return IM_EIO;
	return start_http(app);
}

int im_serve(const im_serve_opts *opts)
{
	im_app app;
	memset(&app, 0, sizeof(app));
	clock_gettime(CLOCK_MONOTONIC, &app.started);
	snprintf(app.config_dir, sizeof(app.config_dir), "%s",
		 opts->config_dir);
	pthread_mutex_init(&app.mu, NULL);
	pthread_cond_init(&app.cv, NULL);
	app.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	stop_requested = false;
	sigset_t set;
	int sfd = setup_signals(&set);
	im_plugin_crash_guard_install();
	if (sfd < 0 || app.wake_fd < 0) {
		LOG_ERROR("serve", "cannot set up signal handling: %s",
			  strerror(errno));
		return 1;
	}
	int rc = start(&app);
	pthread_t wd;
	bool have_wd = false;
	if (rc == 0) {
		LOG_INFO("serve", "im %s ready in %.1f ms (config %s)",
			 IM_VERSION, im_app_uptime(&app) * 1000,
			 app.config_dir);
		if (opts->on_ready)
			opts->on_ready(opts->ud, im_httpd_port(app.api),
				       im_httpd_port(app.metrics));
		notify_systemd("READY=1\nSTATUS=listening on %s",
			       im_config_string(app.cfg, "server.listen", ""));
		control_loop(&app, sfd);
		notify_systemd("STOPPING=1");
		if (pthread_create(&wd, NULL, stop_watchdog, NULL) == 0)
			have_wd = true;
		else
			LOG_WARN("serve", "no stop watchdog: %s",
				 strerror(errno));
		LOG_INFO("serve", "stopped");
	}
	teardown(&app);
	if (have_wd) { /* stopped in time */
		pthread_cancel(wd);
		pthread_join(wd, NULL);
	}
	close(sfd);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	return rc == 0 ? 0 : 1;
}
