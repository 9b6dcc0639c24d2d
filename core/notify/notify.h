/*
 * core/notify - the notification pipeline: subscriptions -> outbox ->
 * batch window / priority -> rate limiter -> connector send().
 *
 * Contract.
 * - Outbox: while the pipeline is prepared, core/incident/repo calls the
 *   outbox hook inside every write transaction; it inserts one outbox row
 *   per (connector instance, channel) whose subscription matches the event,
 *   so an event and its notifications commit together or not at all.
 * - Delivery is at least once: one dispatcher thread claims rows with a
 *   lease (claimed_by, lease_until), renews the lease while it holds them,
 *   and a pool of delivery threads calls connector->send(); a row is
 *   deleted only after the platform accepted it. After a crash, rows whose
 *   owner is gone (same host, dead pid) are reclaimed at start; any other
 *   expired lease is reclaimed when it runs out.
 * - Critical rows (chatops.critical_severities) are claimed first and sent
 *   one by one, ahead of anything queued; the others wait in a per
 *   (instance, channel) batch window and go out as one digest.
 *
 * Threads: start, reload and stop run on the control thread. The hook runs
 * on whichever thread writes an incident, under the store lock. Admin
 * handlers run on HTTP workers. The renderer runs on delivery threads,
 * several at once, and must be reentrant.
 *
 * Ownership: JSON passed in is borrowed; JSON returned is new.
 */
#ifndef IM_CORE_NOTIFY_H
#define IM_CORE_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "config/config.h"
#include "http/http.h"
#include "store/store.h"

/*
 * Turns one notification into the platform's payload. `event_type` is the
 * CloudEvent type ("im.incident.declare") or "digest". `context` is the
 * CloudEvent itself (core/incident/repo.h) for one event, or for a digest
 * {"events":[CloudEvent...],"count":n,"channel":"C1"}. On success *payload
 * is a new JSON object handed to connector->send(). On failure returns a
 * negative IM_E* with err filled; the rows become dead letters naming it.
 * Runs on delivery threads, concurrently.
 */
typedef int (*im_notify_render_fn)(void *ud, const char *platform,
				   const char *event_type,
				   const json_t *context, json_t **payload,
				   char *err, size_t errlen);

/* The built-in renderer (render_basic.c): {"text": "..."} with the
 * incident id, severity, title and status; a digest lists one line per
 * event. What core/app/render.c falls back to when no template renders
 * the event, and the renderer of a pipeline started without one. */
int im_notify_render_basic(void *ud, const char *platform,
			   const char *event_type, const json_t *context,
			   json_t **payload, char *err, size_t errlen);

/* Loads subscriptions and settings and installs the outbox hook, without
 * starting any thread (im_notify_start does this itself; offline writers
 * such as benchmarks call it alone). With check_instances false, every
 * instance named in the config counts as a connector that can send.
 * Control thread. */
int im_notify_prepare(im_store *st, const im_config *cfg, bool check_instances);

/* Prepares, then starts the dispatcher and delivery threads. The store
 * must outlive im_notify_stop(); plugins must be loaded (the current
 * snapshot is used to check subscriptions). Returns 0 or IM_E* (logged). */
int im_notify_start(im_store *st, const im_config *cfg,
		    im_notify_render_fn render, void *render_ud);

/* After a successful reload: re-reads subscriptions, limits and settings
 * from `cfg`, warning about subscriptions that cannot work. */
void im_notify_reload(const im_config *cfg);

/* Stops threads (waiting for sends in progress: their own HTTP timeouts
 * bound the wait), gives the leases back and removes the hook. Call before
 * plugins are shut down. Safe when never started. */
void im_notify_stop(void);

/* Admin API: GET/POST /api/v1/admin/subscriptions, DELETE
 * /api/v1/admin/subscriptions/<id>, GET /api/v1/admin/outbox[?dead=1],
 * POST /api/v1/admin/outbox/<id>/retry, GET/PUT /api/v1/admin/chatops.
 * `auth` answers the request itself (401/403) and returns false when the
 * caller may not use the admin API. */
typedef bool (*im_notify_auth_fn)(void *ud, const im_http_request *req,
				  im_http_response *resp);
int im_notify_admin_routes(im_router *r, im_notify_auth_fn auth, void *ud);

/* For `im config validate`: checks the YAML subscriptions (shape, channel
 * ids rather than #names, connector instances that exist), appending
 * "file:line: subscriptions[i]: reason" strings to `problems`. Returns 0
 * or IM_ECONFIG. Any thread; no state. */
int im_notify_check_config(const im_config *cfg, json_t *problems);

#endif
