/*
 * core/net/module.h - the boundary between the host and imnet.so.
 *
 * libcurl and its TLS stack (OpenSSL, Kerberos, LDAP, ...) are some twenty
 * libraries whose relocations alone cost about 3 MB of resident memory at
 * start-up. They live in imnet.so, loaded on the first outbound request, so
 * a server that never sends stays small. netload.c implements net.h by
 * forwarding to this table; net.c (built into imnet.so) fills it.
 */
#ifndef IM_CORE_NET_MODULE_H
#define IM_CORE_NET_MODULE_H

#include <stdint.h>

#include "net/net.h"

typedef struct im_net_api {
	uint32_t struct_size;
	int (*start)(im_net **out);
	void (*stop)(im_net *net);
	int (*send)(im_net *net, const im_http_call *call,
		    im_http_done_fn done, void *userdata);
	int (*send_sync)(im_net *net, const im_http_call *call,
			 im_http_result **out);
	void (*result_free)(im_http_result *res);
	const char *(*result_header)(const im_http_result *res,
				     const char *name);
	/* WebSocket client (ws.c) */
	int (*ws_open)(im_net *net, const im_ws_call *call, im_ws **out);
	int (*ws_send)(im_ws *ws, int binary, const void *data, size_t len);
	void (*ws_close)(im_ws *ws, int code, const char *reason);
	void (*ws_release)(im_ws *ws);
} im_net_api;

typedef const im_net_api *(*im_net_module_fn)(void);

#endif
