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
 * Later ABI minors append send/update and follow-up functions here.
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
} im_connector;

#ifdef __cplusplus
}
#endif
#endif
