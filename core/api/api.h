/*
 * core/api - the REST API (/api/v1/incidents...) and event streams
 * (/api/v1/events SSE, /api/v1/ws WebSocket) over core/incident and
 * core/bus.
 *
 * Contract: handlers run on HTTP worker threads. Each first calls
 * ctx->authorize, which answers 401/403 itself when the caller may not use
 * the API and otherwise fills `who` (the actor for the timeline). Errors
 * are {"error":{"code":..,"message":..}} via im_resp_error.
 */
#ifndef IM_CORE_API_H
#define IM_CORE_API_H

#include <stdbool.h>

#include "http/http.h"
#include "incident/repo.h"
#include "store/store.h"

typedef struct im_api_ctx {
	im_store *store;
	/* Bearer token from server.api_tokens (or the admin token); with no
	 * token configured, loopback callers only. false = resp filled. */
	bool (*authorize)(void *app, const im_http_request *req,
			  im_http_response *resp, im_actor *who);
	void *app;
} im_api_ctx;

/* incidents.c: /api/v1/incidents and below. */
int im_api_incident_routes(im_router *r, im_api_ctx *ctx);
/* pages.c: GET /incidents and /incidents/INC-n, read-only HTML for the
 * links that chat messages carry (server.public_url + /incidents/INC-n). */
int im_api_page_routes(im_router *r, im_api_ctx *ctx);
/* stream.c: GET /api/v1/events (SSE) and GET /api/v1/ws (WebSocket). */
int im_api_stream_routes(im_router *r, im_api_ctx *ctx);
/* Stream clients now connected, by kind (for metrics and events status). */
typedef struct im_stream_stats {
	long sse_clients;
	long ws_clients;
	long cut_off; /* clients cut off as too slow, since start */
} im_stream_stats;
void im_api_stream_stats(im_stream_stats *out);
/* Closes every stream (shutdown, before the HTTP server stops). */
void im_api_streams_close(void);

#endif
