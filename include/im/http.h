/*
 * im/http.h - HTTP as plugins see it: routes they serve under
 * /hooks/<instance>/ and requests they send out through the host.
 *
 * Inbound: a route handler runs on one of the host's HTTP worker threads,
 * possibly several at once for the same instance, so it must be reentrant.
 * The request and response handles are borrowed and valid only during the
 * call; read the request and fill the response through im_host functions.
 * The raw body is available unparsed so signatures can be checked over the
 * exact bytes. The instance stays alive (and its module mapped) until the
 * handler returns, even across a reload.
 *
 * Outbound: im_host.http_send queues a request on the host's network thread
 * (libcurl multi) and returns at once; the completion callback runs later on
 * that network thread, exactly once, also when the host stops (error
 * IM_ECANCELED). Everything the im_http_call points to is copied before
 * http_send returns. The im_http_result and everything it points to is
 * borrowed for the duration of the callback only.
 */
#ifndef IM_HTTP_H
#define IM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Handler for a route a plugin registered. `state` is the plugin instance
 * state returned by create(). Return 0 after filling the response; a
 * negative IM_E* code makes the host answer 500 with a generic body. */
typedef int (*im_route_fn)(void *state, const im_http_request *req,
			   im_http_response *resp);

/* One header. Arrays of headers are read with the stride of their first
 * element's struct_size (since 1.3; plugins built against 1.0-1.2 use the
 * layout without it and the host reads them as such). */
typedef struct im_http_header {
	uint32_t struct_size; /* sizeof(im_http_header) */
	const char *name;     /* outbound: as given; results: lowercase */
	const char *value;
} im_http_header;

/* An im_http_header initializer: IM_HEADER("Content-Type", "text/plain"). */
#define IM_HEADER(name, value)                                                \
	{ sizeof(im_http_header), (name), (value) }

typedef struct im_http_call {
	uint32_t struct_size;           /* sizeof(im_http_call) */
	const char *method;             /* "GET", "POST", ...; NULL = GET */
	const char *url;                /* absolute http:// or https:// URL */
	const im_http_header *headers;  /* n_headers entries, may be NULL */
	size_t n_headers;
	const void *body;               /* may be NULL */
	size_t body_len;
	uint32_t timeout_ms;            /* whole transfer; 0 = 10000 */
	uint32_t connect_timeout_ms;    /* 0 = 3000 */
} im_http_call;

typedef struct im_http_result {
	uint32_t struct_size;           /* sizeof(im_http_result) */
	int error;                      /* 0, IM_ETIMEDOUT, IM_EIO, IM_ECANCELED */
	const char *error_text;         /* human-readable reason when error != 0 */
	long status;                    /* HTTP status, 0 when error != 0 */
	const im_http_header *headers;  /* response headers, names lowercase */
	size_t n_headers;
	const char *body;               /* NUL-terminated; body_len excludes it */
	size_t body_len;
	double elapsed_s;               /* total time of the transfer */
} im_http_result;

/* Completion of http_send; runs on the host's network thread. */
typedef void (*im_http_done_fn)(void *userdata, const im_http_result *res);

#ifdef __cplusplus
}
#endif
#endif
