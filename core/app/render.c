/* The pipeline's renderer: the template set of the running plugins
 * (loaded on the first message after start or a reload), with
 * the built-in plain-text renderer for platforms that have no templates
 * (a vendor's connector, the test connector).
 *
 * Lifetime: a set borrows the formatter instances of the snapshot it was
 * loaded from. A render holds the current snapshot while it uses the set,
 * and the set is replaced before the registry swaps; the old set is dropped
 * in the drain callback, after the last render that could use it and
 * before its formatter instances are destroyed. */
#include <pthread.h>
#include <string.h>

#include "app/internal.h"
#include "log/log.h"
#include "notify/notify.h"
#include "plugin/plugin.h"
#include "template/template.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static im_template_set *current;
static bool stale;              /* load on the next render */
static unsigned long want_gen;  /* ...from this snapshot only */
static char config_dir[4096];
static char public_url[512];

/* Loads the set on first use, from the snapshot the caller holds: an idle
 * server (or one whose connectors have no credentials yet) never pays
 * for 36 compiled templates. Called with mu held. */
static void load_lazily(const im_snapshot *s)
{
	/* A render still holding the snapshot being replaced must not load
	 * a set that would outlive its formatter instances. */
	if (!stale || !s || s->generation != want_gen)
		return;
	stale = false;
	char err[2048];
	im_config *cfg = im_config_load_dir(config_dir, err, sizeof(err));
	if (!cfg) {
		LOG_ERROR("templates", "cannot read the config: %s", err);
		return;
	}
	if (im_template_load(cfg, s, &current, err, sizeof(err)) != 0)
		LOG_ERROR("templates", "cannot load the templates: %s", err);
	im_config_free(cfg);
}

int im_app_render(void *ud, const char *platform, const char *event_type,
		  const json_t *context, json_t **payload, char *err,
		  size_t errlen)
{
	im_snapshot *s = im_registry_acquire();
	pthread_mutex_lock(&mu);
	load_lazily(s);
	im_template_set *set = im_template_set_ref(current);
	char url[512];
	memcpy(url, public_url, sizeof(url));
	pthread_mutex_unlock(&mu);
	int rc = IM_ENOTFOUND;
	if (set) {
		bool digest = strcmp(event_type, "digest") == 0;
		json_t *ctx =
		    digest ? im_template_digest_context(
				 json_object_get(context, "events"),
				 json_string_value(
				     json_object_get(context, "channel")),
				 url)
			   : im_template_context(context, url);
		rc = ctx ? im_template_render(set, platform, event_type, ctx,
					      payload, err, errlen)
			 : IM_ENOMEM;
		json_decref(ctx);
	}
	im_template_set_unref(set);
	im_registry_release(s);
	if (rc != 0 && rc != IM_ENOTFOUND)
		/* A template problem must not stop delivery: send the plain
		 * text instead and say why (validate names the file). */
		LOG_WARN("templates", "%s/%s: %s; sending plain text", platform,
			 event_type, err);
	if (rc != 0)
		rc = im_notify_render_basic(ud, platform, event_type, context,
					    payload, err, errlen);
	return rc;
}

/* Called before snapshot `s` is published: the current set is dropped
 * from use (returned for im_app_templates_drop after the drain) and the
 * next render loads the set of the new config and plugins. */
im_template_set *im_app_templates_load(im_app *app, const im_snapshot *s)
{
	pthread_mutex_lock(&mu);
	im_template_set *old = current;
	current = NULL;
	stale = true;
	want_gen = s ? s->generation : 0;
	snprintf(config_dir, sizeof(config_dir), "%s", app->config_dir);
	snprintf(public_url, sizeof(public_url), "%s",
		 im_config_string(app->cfg, "server.public_url", ""));
	pthread_mutex_unlock(&mu);
	return old;
}

void im_app_templates_drop(void *old)
{
	im_template_set_unref(old);
}

void im_app_templates_clear(void)
{
	pthread_mutex_lock(&mu);
	im_template_set *old = current;
	current = NULL;
	stale = false;
	pthread_mutex_unlock(&mu);
	im_template_set_unref(old);
}
