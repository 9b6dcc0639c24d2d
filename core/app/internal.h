/* Shared state of `im serve` between serve.c (control loop) and admin.c
 * (admin API handlers). Not part of any public interface. */
#ifndef IM_CORE_APP_INTERNAL_H
#define IM_CORE_APP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "config/config.h"
#include "http/http.h"
#include "incident/repo.h"

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
	char **api_tokens;       /* non-empty entries of server.api_tokens */
	size_t n_api_tokens;
	unsigned long reload_seq;   /* requests made */
	unsigned long reload_done;  /* requests answered */
	json_t *reload_result;      /* answer to reload_done */
} im_app;

/* admin.c */
/* API authorization (im_api_ctx.authorize). */
bool im_app_authorize_api(void *app, const im_http_request *req,
			  im_http_response *resp, im_actor *who);
/* (Re)reads admin and API tokens from app->cfg. */
void im_app_load_tokens(im_app *app);
void im_app_free_tokens(im_app *app);
/* Applies chatops.command_budget and chatops.permissions. */
void im_app_configure_commands(im_app *app);
int im_admin_routes(im_app *app, im_router *r);
/* Runs on the control thread: reloads and returns the JSON answer. */
json_t *im_app_reload(im_app *app);
/* Secret values to redact, from core keys and plugin key tables. */
void im_app_update_secrets(im_app *app);

double im_app_uptime(const im_app *app);

/* render.c: notifications rendered with the templates (im_notify_render_fn
 * shape); the template set follows the plugin snapshot. */
struct im_template_set;
struct im_snapshot;
int im_app_render(void *ud, const char *platform, const char *event_type,
		  const json_t *context, json_t **payload, char *err,
		  size_t errlen);
struct im_template_set *im_app_templates_load(im_app *app,
					      const struct im_snapshot *s);
void im_app_templates_drop(void *old);
void im_app_templates_clear(void);

#endif
