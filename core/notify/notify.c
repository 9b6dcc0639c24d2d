/* The pipeline's life cycle: prepare (settings, subscriptions, the repo
 * hook), start (owner id, reclaiming rows of a crashed run, threads),
 * reload and stop. Control thread only, except the accessors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "incident/repo.h"
#include "log/log.h"
#include "notify/internal.h"

static im_store *store;
static im_notify_render_fn render_fn = im_notify_render_basic;
static void *render_ud;
static char owner[320];
static bool started;

im_store *nt_store(void)
{
	return store;
}

int nt_render(const char *platform, const char *event_type,
	      const json_t *context, json_t **payload, char *err, size_t errlen)
{
	*payload = NULL;
	snprintf(err, errlen, "renderer failed");
	return render_fn(render_ud, platform, event_type, context, payload, err,
			 errlen);
}

/* "host:pid:nonce": the host and pid let a restarted server see that the
 * previous owner is gone; the nonce tells two runs with one pid apart. */
static void make_owner(void)
{
	char host[256] = "localhost";
	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	for (char *p = host; *p; p++)
		if (*p == ':')
			*p = '_';
	uint64_t seed = (uint64_t)nt_wall_ms() ^ ((uint64_t)getpid() << 32);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	seed ^= (uint64_t)ts.tv_nsec;
	snprintf(owner, sizeof(owner), "%s:%ld:%016llx", host, (long)getpid(),
		 (unsigned long long)nt_rand(&seed));
}

int im_notify_prepare(im_store *st, const im_config *cfg, bool check_instances)
{
	store = st;
	int rc = nt_settings_load(st, cfg);
	if (rc == 0)
		rc = nt_subs_load(st, cfg, check_instances);
	if (rc != 0) {
		LOG_ERROR("notify", "cannot load subscriptions (%d)", rc);
		return rc;
	}
	im_repo_set_outbox_hook(nt_outbox_hook);
	return 0;
}

int im_notify_start(im_store *st, const im_config *cfg,
		    im_notify_render_fn render, void *ud)
{
	nt_metrics_register();
	int rc = im_notify_prepare(st, cfg, true);
	if (rc != 0)
		return rc;
	render_fn = render ? render : im_notify_render_basic;
	render_ud = render ? ud : NULL;
	make_owner();
	nt_outbox_reclaim_dead(st, owner);
	if ((rc = nt_dispatch_start(st, owner)) != 0) {
		im_repo_set_outbox_hook(NULL);
		LOG_ERROR("notify", "cannot start the delivery threads (%d)",
			  rc);
		return rc;
	}
	started = true;
	nt_settings s;
	nt_settings_get(&s);
	LOG_INFO("notify",
		 "notifications: %d delivery threads, batch window %.3g s%s",
		 s.workers, s.batch_window,
		 s.window_override ? " (set by im chatops configure)" : "");
	nt_settings_clear(&s);
	return 0;
}

void im_notify_reload(const im_config *cfg)
{
	if (!store)
		return;
	int workers = 0;
	if (started) {
		nt_settings s;
		nt_settings_get(&s);
		workers = s.workers;
		nt_settings_clear(&s);
	}
	nt_settings_load(store, cfg);
	nt_subs_load(store, cfg, true);
	if (!started)
		return;
	nt_settings s;
	nt_settings_get(&s);
	if (s.workers != workers)
		LOG_WARN("notify",
			 "chatops.delivery_workers changes from %d "
			 "to %d at the next start",
			 workers, s.workers);
	nt_settings_clear(&s);
	nt_dispatch_reconfig();
}

void im_notify_stop(void)
{
	if (started) {
		nt_dispatch_stop();
		/* Rows claimed but not sent go back at once, so the next
		 * start need not wait for their leases. */
		nt_outbox_release(store, owner);
		started = false;
	}
	im_repo_set_outbox_hook(NULL);
	nt_subs_free();
	nt_settings_free();
	store = NULL;
}
