/* net.h on top of imnet.so, loaded on first use (see net/module.h). */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"
#include "net/module.h"
#include "paths/paths.h"


static pthread_once_t once = PTHREAD_ONCE_INIT;
static const im_net_api *api;
static char load_error[1024];

static void *try_open(const char *path)
{
	if (access(path, R_OK) != 0)
		return NULL;
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl)
		snprintf(load_error, sizeof(load_error), "%.500s: %.500s", path,
			 dlerror());
	return dl;
}

static void load(void)
{
	char path[PATH_MAX];
	void *dl = NULL;
	const char *env = getenv("IM_NET_MODULE");
	if (env && *env)
		dl = try_open(env);
	if (!dl && im_paths_get(IM_PATH_NET_MODULE, path, sizeof(path)) == 0)
		dl = try_open(path);
	if (!dl) {
		if (!load_error[0])
			snprintf(load_error, sizeof(load_error),
				 "imnet.so not found (looked for %.900s); "
				 "reinstall im or set IM_NET_MODULE",
				 path);
		return;
	}
	union {
		void *p;
		im_net_module_fn fn;
	} sym = {.p = dlsym(dl, "im_net_module")};
	const im_net_api *a = sym.p ? sym.fn() : NULL;
	if (!a || a->struct_size < sizeof(im_net_api)) {
		snprintf(load_error, sizeof(load_error),
			 "imnet.so does not match this im binary; reinstall im");
		return;
	}
	api = a; /* kept loaded for the life of the process */
}

static bool ready(void)
{
	pthread_once(&once, load);
	if (!api)
		LOG_ERROR("net", "outbound HTTP unavailable: %s", load_error);
	return api != NULL;
}

int im_net_start(im_net **out)
{
	return ready() ? api->start(out) : IM_EUNSUPPORTED;
}

void im_net_stop(im_net *net)
{
	if (net && api)
		api->stop(net);
}

int im_net_send(im_net *net, const im_http_call *call, im_http_done_fn done,
		void *userdata)
{
	return net && api ? api->send(net, call, done, userdata) : IM_EINVAL;
}

int im_net_send_sync(im_net *net, const im_http_call *call,
		     im_http_result **out)
{
	return net && api ? api->send_sync(net, call, out) : IM_EINVAL;
}

void im_net_result_free(im_http_result *res)
{
	if (res && api)
		api->result_free(res);
}

const char *im_http_result_header(const im_http_result *res, const char *name)
{
	return res && api ? api->result_header(res, name) : NULL;
}

int im_net_ws_open(im_net *net, const im_ws_call *call, im_ws **out)
{
	if (out)
		*out = NULL;
	return net && api ? api->ws_open(net, call, out) : IM_EINVAL;
}

/* A link exists only when the module is loaded. */
int im_ws_send(im_ws *ws, int binary, const void *data, size_t len)
{
	return ws && api ? api->ws_send(ws, binary, data, len) : IM_EINVAL;
}

void im_ws_close(im_ws *ws, int code, const char *reason)
{
	if (ws && api)
		api->ws_close(ws, code, reason);
}

void im_ws_release(im_ws *ws)
{
	if (ws && api)
		api->ws_release(ws);
}
