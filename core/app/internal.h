/* Shared state of `im serve` between serve.c (control loop) and admin.c
 * (admin API handlers). Not part of any public interface. */
#ifndef IM_CORE_APP_INTERNAL_H
#define IM_CORE_APP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "config/config.h"
#include "http/http.h"

typedef struct im_app {
	char config_dir[4096];
	im_config *cfg;          /* control thread only */
	struct im_store *store;
	im_router *api_router;
	im_router *metrics_router;
	im_httpd *api;
	im_httpd *metrics;
	int wake_fd;             /* eventfd: reload requests */
	struct timespec started;

	/* Admin settings, swapped on reload under `mu`. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *admin_token;       /* "" = loopback only */
	unsigned long reload_seq;   /* requests made */
	unsigned long reload_done;  /* requests answered */
	json_t *reload_result;      /* answer to reload_done */
} im_app;

/* admin.c */
int im_admin_routes(im_app *app, im_router *r);
/* Runs on the control thread: reloads and returns the JSON answer. */
json_t *im_app_reload(im_app *app);
/* Secret values to redact, from core keys and plugin key tables. */
void im_app_update_secrets(im_app *app);

double im_app_uptime(const im_app *app);

#endif
