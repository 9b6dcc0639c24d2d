/*
 * core/app - `im serve`: wires config, store, network, plugins and the two
 * HTTP listeners together, runs the control loop (signals and reload
 * requests) and shuts down cleanly.
 *
 * Threads: im_serve() runs on the main thread, which is the control thread
 * of core/plugin. Admin API handlers (HTTP workers) never reload
 * themselves: they hand the request to the control thread and wait for its
 * answer, so they never hold a snapshot the reload would wait on.
 */
#ifndef IM_CORE_APP_H
#define IM_CORE_APP_H

#include <jansson.h>

#define IM_VERSION "0.1.0"

typedef struct im_serve_opts {
	const char *config_dir;
	/* Called once listening (tests, benchmarks); may be NULL. */
	void (*on_ready)(void *ud, unsigned api_port, unsigned metrics_port);
	void *ud;
} im_serve_opts;

/* Runs the server until SIGTERM/SIGINT. Returns the process exit code:
 * 0 after a graceful stop, 1 when it cannot start. */
int im_serve(const im_serve_opts *opts);

#endif
