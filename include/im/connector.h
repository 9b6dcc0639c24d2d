/*
 * im/connector.h - a chat-platform connector component (Slack, Teams,
 * Discord, or a vendor's own).
 *
 * Contract: the component's functions receive the instance state from
 * create(). start() and stop() run on the host's control thread; start()
 * is called once after create() succeeded and before the instance is live,
 * stop() once before destroy() (after in-flight calls drained). status()
 * may run on any thread, concurrently with route handlers. A connector
 * reports its link health with host->set_connected().
 * Chat commands: the connector parses a platform request into an
 * im_invocation and hands it to host->command_handle (HTTP) or
 * host->command_dispatch (sockets). The host answers within the budget
 * through answer() and sends late results through followup().
 * Later ABI minors append send/update functions here.
 */
#ifndef IM_CONNECTOR_H
#define IM_CONNECTOR_H

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct im_connector {
	im_component base;    /* kind = IM_COMPONENT_CONNECTOR */
	const char *platform; /* "slack", "teams", "discord", ... */
	/* Starts background work (sockets, timers). May be NULL. */
	int (*start)(void *state);
	/* Stops background work; must not block for long. May be NULL. */
	void (*stop)(void *state);
	/* Fills *out with a new JSON object describing health (ownership is
	 * transferred to the caller), e.g. {"connected":true,"team":"T1"}.
	 * Returns 0, or IM_E* with *out possibly holding {"error": "..."}. */
	int (*status)(void *state, json_t **out);
	/* Turns a command reply (JSON, see im/command.h; borrowed) into this
	 * platform's HTTP answer to the request that carried `inv`: the
	 * result, or a "still working" note when reply.status is "working".
	 * Runs on a host thread. May be NULL: the host then answers 200 with
	 * the reply JSON. */
	int (*answer)(void *state, const im_invocation *inv, const json_t *reply,
		      im_http_response *resp);
	/* Sends a late reply through the platform's follow-up path (Slack
	 * response_url, Discord follow-up webhook, Teams proactive reply),
	 * using inv->response_ref. Runs on a host worker thread; may block
	 * on its own HTTP call. May be NULL (late results are then only
	 * logged). */
	int (*followup)(void *state, const im_invocation *inv,
			const json_t *reply);
} im_connector;

#ifdef __cplusplus
}
#endif
#endif
