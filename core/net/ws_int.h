/*
 * core/net/ws_int.h - the WebSocket client (ws.c) as net.c drives it.
 *
 * A hub holds every link of one im_net. The network thread calls
 * ws_hub_run() once per loop turn (it services every link and runs their
 * callbacks), ws_hub_fds() for the extra descriptors curl_multi_poll waits
 * on, and ws_hub_stop() when the network stops. Other threads reach a
 * link through im_ws_* (net.h) and wake the thread with
 * curl_multi_wakeup().
 */
#ifndef IM_CORE_NET_WS_INT_H
#define IM_CORE_NET_WS_INT_H

#include <curl/curl.h>

#include "net.h"

struct ws_hub;

struct ws_hub *ws_hub_new(CURLM *multi);
/* After the network thread ended (ws_hub_stop ran). */
void ws_hub_free(struct ws_hub *h);

int ws_hub_open(struct ws_hub *h, const im_ws_call *call, im_ws **out);

/* Network thread only. */
void ws_hub_run(struct ws_hub *h);
/* The descriptors to wait on (borrowed until the next call) and the
 * longest wait in ms that keeps the links' timers (lowered, never raised). */
struct curl_waitfd *ws_hub_fds(struct ws_hub *h, unsigned *n, int *timeout_ms);
/* Refuses new links and ends every link: on_close(1001, "host stopping")
 * for each that had not closed. */
void ws_hub_stop(struct ws_hub *h);

#endif
