/*
 * core/net - outbound HTTP on libcurl's multi interface, one network thread.
 *
 * Contract: im_net_start() spawns the network thread; im_net_send() may be
 * called from any thread (including from a completion callback) and copies
 * the call before it returns. Each request's callback runs exactly once on
 * the network thread: with the answer, with IM_ETIMEDOUT / IM_EIO, or with
 * IM_ECANCELED when im_net_stop() ends pending requests. Callbacks must not
 * block for long: they hold up every other transfer.
 * Response headers are lowercased; repeated headers keep the last value.
 * Response bodies are capped at 16 MiB (IM_EIO "response too large").
 * Redirects are not followed. TLS verification is on.
 */
#ifndef IM_CORE_NET_H
#define IM_CORE_NET_H

#include <im/host.h>
#include <im/http.h>

typedef struct im_net im_net;

int im_net_start(im_net **out);
/* Cancels pending requests (their callbacks run with IM_ECANCELED), joins
 * the thread and frees everything. NULL is a no-op. */
void im_net_stop(im_net *net);

int im_net_send(im_net *net, const im_http_call *call, im_http_done_fn done,
		void *userdata);

/* A blocking call (the CLI, host->http_fetch, so the delivery threads):
 * it runs on the calling thread, on a libcurl handle that thread keeps, so
 * its connections are reused from call to call; im_net_stop ends calls
 * under way (IM_ECANCELED) within about a second and waits for them. Never
 * from the network thread. The process must ignore SIGPIPE (serve and the
 * CLI do): a TLS write to a closed connection raises it on the calling
 * thread. *out is a deep copy owned by the caller. */
int im_net_send_sync(im_net *net, const im_http_call *call,
		     im_http_result **out);
void im_net_result_free(im_http_result *res);

/* Header value from a result (case-insensitive), or NULL. */
const char *im_http_result_header(const im_http_result *res, const char *name);

/* WebSocket client (ws.c): the contract of im_host's ws_* (im/host.h).
 * Links live on the network thread; im_net_stop ends each one, running
 * its on_close (1001, "host stopping") once unless it was released.
 * `call` is in this build's layout (the host copies a plugin's). */
int im_net_ws_open(im_net *net, const im_ws_call *call, im_ws **out);
int im_ws_send(im_ws *ws, int binary, const void *data, size_t len);
void im_ws_close(im_ws *ws, int code, const char *reason);
/* Valid also after im_net_stop (it only drops the reference then). */
void im_ws_release(im_ws *ws);

#endif
