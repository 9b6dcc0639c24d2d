/* The pipeline's renderer: the template set of the running plugins, with
 * the built-in plain-text renderer for platforms that have no templates
 * (a vendor's connector, the test connector).
 *
 * Loading: on the control thread, when a snapshot is about to be published
 * (start and every reload), from the config that reload read; never on a
 * delivery thread. It is loaded only when the snapshot has a connector
 * that can send: an idle server, or one whose connectors have no
 * credentials yet, pays for no compiled templates.
 *
 * Lifetime: a set borrows the formatter instances of the snapshot it was
 * loaded from. A render holds the current snapshot while it uses the set,
 * and the set is replaced before the registry swaps; the old set is dropped
 * in the drain callback, after the last render that could use it and
 * before its formatter instances are destroyed. A render that still holds
 * the old snapshot while the new set is published renders with the new
 * set only if the set's generation matches its snapshot; otherwise it
 * falls back to plain text (a reload race, not a steady state). */
#include <pthread.h>
#include <string.h>

#include "app/internal.h"
#include "log/log.h"
#include "notify/notify.h"
#include "plugin/plugin.h"
#include "template/template.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static im_template_set *current;
static unsigned long current_gen; /* snapshot the set was loaded from */
static char public_url[512];

/* Whether any running connector of the snapshot delivers messages. */
static bool has_sender(const im_snapshot *s)
{
	for (size_t i = 0; s && i < s->n; i++) {
		const im_connector *c = im_instance_connector(s->insts[i]);
		if (c && c->send &&
		    im_instance_get_state(s->insts[i]) == IM_STATE_RUNNING)
			return true;
	}
	return false;
}

int im_app_render(void *ud, const char *platform, const char *event_type,
		  const json_t *context, json_t **payload, char *err,
		  size_t errlen)
{
	im_snapshot *s = im_registry_acquire();
	pthread_mutex_lock(&mu);
	im_template_set *set =
	    s && s->generation == current_gen ? im_template_set_ref(current)
					      : NULL;
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

/* Called on the control thread before snapshot `s` is published: loads
 * the set of the new config and plugins and puts it in use; returns the
 * old one for im_app_templates_drop after the drain. */
im_template_set *im_app_templates_load(im_app *app, const im_snapshot *s)
{
	im_template_set *set = NULL;
	char err[2048] = "";
	if (has_sender(s) &&
	    im_template_load(app->cfg, s, &set, err, sizeof(err)) != 0)
		LOG_ERROR("templates", "cannot load the templates: %s", err);
	pthread_mutex_lock(&mu);
	im_template_set *old = current;
	current = set;
	current_gen = s ? s->generation : 0;
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
	pthread_mutex_unlock(&mu);
	im_template_set_unref(old);
}
