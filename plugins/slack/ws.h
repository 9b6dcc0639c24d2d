/*
 * plugins/slack/ws - a small WebSocket client (RFC 6455) for Socket Mode:
 * ws:// over TCP or wss:// over TLS (OpenSSL loaded on demand, see tls.h;
 * peer and host name verified), framing by wslay.
 *
 * Threads: one owner thread per link; nothing here locks. Opening blocks
 * (bounded by its timeout); after that the socket is non-blocking and the
 * owner polls slk_ws_fd() and calls slk_ws_io().
 */
#ifndef IM_SLACK_WS_H
#define IM_SLACK_WS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct slk_ws slk_ws;
struct slk_tls;

/* A text message received; `text` is borrowed for the call. */
typedef void (*slk_ws_text_fn)(void *ud, const char *text, size_t len);

/* Connects, does TLS for wss:// (trusting the system CAs and `ca_file`
 * when not NULL/empty) and the opening handshake, with OpenSSL from `t`
 * (borrowed; must outlive the link). 0 or IM_E* with err. The host must
 * ignore SIGPIPE (im serve does): TLS writes use write(2). */
int slk_ws_open(const char *url, const char *ca_file,
		const struct slk_tls *t, int timeout_ms, slk_ws **out,
		char *err, size_t errlen);
/* Closes the socket and frees (no close handshake; see slk_ws_shutdown). */
void slk_ws_free(slk_ws *w);
int slk_ws_fd(const slk_ws *w);
/* Queues a text message / a ping. */
int slk_ws_send_text(slk_ws *w, const char *text, size_t len);
int slk_ws_ping(slk_ws *w);
/* Queues a close frame; the link ends once it is out. */
void slk_ws_shutdown(slk_ws *w, unsigned short code);
/* Whether queued frames wait for the socket to take them. */
bool slk_ws_want_write(const slk_ws *w);
/* Reads what arrived (calling on_text per message) and writes what is
 * queued. 0, or IM_EIO when the link closed or broke. */
int slk_ws_io(slk_ws *w, slk_ws_text_fn on_text, void *ud);
/* Anything received since the last call (frames of any kind). */
bool slk_ws_heard(slk_ws *w);

#endif
