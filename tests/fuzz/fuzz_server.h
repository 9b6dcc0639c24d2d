/*
 * tests/fuzz/fuzz_server - the server's HTTP side in the fuzzing process:
 * an in-memory store with a few incidents, the real router with the REST,
 * page and stream routes (every caller authorized), the real
 * libmicrohttpd server on 127.0.0.1 and the stream hub. Targets talk to
 * it over loopback sockets, so their bytes take the path a client's do.
 *
 * Not thread-safe: one fuzzing thread calls these.
 */
#ifndef IM_TESTS_FUZZ_SERVER_H
#define IM_TESTS_FUZZ_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "http/http.h"

/* Starts everything once (later calls return the same port); aborts when
 * it cannot. Stops at exit. */
unsigned fz_server_start(void);
/* The router the server uses, for direct look-ups. */
const im_router *fz_server_router(void);

/* Connects, sends `len` bytes and reads until the server closes the
 * connection. With `eof_after_head`, the writing side is shut once the
 * answer's head ("\r\n\r\n") has arrived (a WebSocket client that is
 * done). Returns what was read (malloc'd, NUL-terminated, at most 16 MiB
 * kept) and its length in *out_len. Aborts when the server neither
 * answers nor closes within 10 s. */
char *fz_exchange(const void *req, size_t len, bool eof_after_head,
		  size_t *out_len);

/* "HTTP/1.1 404 ..." -> 404; -1 when the answer has no status line. */
int fz_status(const char *answer);
/* The body after the head, or NULL when there is no complete head. */
const char *fz_body(const char *answer, size_t len, size_t *body_len);

/* One answer of several on a connection (pipelined requests): splits
 * [p, p+len) after the first answer's head and Content-Length (all of the
 * rest when there is none). Returns its status (fz_status) and sets its
 * body and the bytes it takes in all; 0 when no complete head is left. */
int fz_next_answer(const char *p, size_t len, const char **body,
		   size_t *body_len, size_t *used);

#endif
