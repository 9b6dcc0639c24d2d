/*
 * tests/fakes/fake_ws_server - the WebSocket server under the fakes that
 * speak WebSocket (fake_slack_ws.c, fake_discord_gw.c): a TCP listener on
 * 127.0.0.1, one thread per connection, the HTTP upgrade (SHA-1/base64 by
 * libcrypto), wslay for framing, optional TLS. The owner decides what the
 * messages mean; this file only moves text frames and close frames.
 *
 * Connections are named by an id (1, 2, ... in accept order) rather than a
 * pointer, so a control from the test thread can never reach a connection
 * that is gone: it just returns false.
 *
 * Threads: the callbacks run on the connection's own thread, with no lock
 * of this server held, so they may take the owner's lock and call
 * fwsv_send/fwsv_close/fwsv_drop. Those three, fwsv_newest and
 * fwsv_open_count are safe from any thread. fwsv_stop joins every thread:
 * never call it holding a lock the callbacks take.
 */
#ifndef IM_TESTS_FAKE_WS_SERVER_H
#define IM_TESTS_FAKE_WS_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

typedef struct fwsv fwsv;

typedef struct fwsv_cbs {
	/* The request target ("/path?query"); false answers 403 and drops
	 * the connection. NULL accepts every upgrade. */
	bool (*upgrade)(void *ud, const char *target);
	/* The 101 went out; the connection is open. */
	void (*open)(void *ud, unsigned id, const char *target);
	/* A whole text message (not NUL-terminated). Not called once this
	 * side has asked to close the connection. */
	void (*text)(void *ud, unsigned id, const char *msg, size_t len);
	/* The connection is over (called once for each open). peer_code is
	 * the code of a close the client started (1005 for one without a
	 * code), 0 if it did not start one: it dropped the TCP connection, or
	 * this side closed first. peer_reason is "" when there was none. */
	void (*end)(void *ud, unsigned id, int peer_code,
		    const char *peer_reason);
} fwsv_cbs;

/* Listens on 127.0.0.1:port (0 = any free port). cbs is copied. */
fwsv *fwsv_start(unsigned port, const fwsv_cbs *cbs, void *ud);
/* Closes every connection at once (no close frame) and joins all threads,
 * including a connection that hangs in the handshake. NULL is a no-op. */
void fwsv_stop(fwsv *s);
unsigned fwsv_port(const fwsv *s);
/* Serves later connections over TLS; takes ownership of ctx. */
void fwsv_set_tls(fwsv *s, SSL_CTX *ctx);

/* Queues a text frame; id 0 = every open connection. false when no such
 * connection is open (or it is closing). */
bool fwsv_send(fwsv *s, unsigned id, const char *text);
/* Queues a close frame (code, reason) behind the text frames already
 * queued; the connection ends when the client answers, or a second after
 * this call if it does not. */
bool fwsv_close(fwsv *s, unsigned id, int code, const char *reason);
/* Ends the connection without a close frame; id 0 = every one. */
bool fwsv_drop(fwsv *s, unsigned id);
/* The newest open connection that is not closing or dropped; 0 if none. */
unsigned fwsv_newest(fwsv *s);
/* Connections past the handshake whose thread has not finished. */
int fwsv_open_count(fwsv *s);

#endif
