/* A vendor plugin built outside the im tree, against the installed SDK:
 *   make            (uses pkg-config im-plugin, or IM_INCLUDE=/path)
 * It serves GET /hooks/<instance>/hello with its configured greeting. */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <im/im.h>

typedef struct hello {
	const im_host *host;
	char *greeting;
} hello;

static const im_config_key keys[] = {
    {IM_CONFIG_KEY_HEADER, "greeting", IM_CFG_STRING, "\"hello from a vendor\"", 0,
     "what GET /hooks/<id>/hello answers"},
    {0},
};

static int on_hello(void *state, const im_http_request *req,
		    im_http_response *resp)
{
	hello *h = state;
	(void)req;
	return h->host->resp_set(resp, 200, "text/plain", h->greeting,
				 strlen(h->greeting));
}

static int create(const im_host *host, im_instance *inst,
		  const json_t *config, void **state)
{
	(void)inst;
	hello *h = calloc(1, sizeof(*h));
	if (!h)
		return IM_ENOMEM;
	h->host = host;
	h->greeting =
	    strdup(json_string_value(json_object_get(config, "greeting")));
	if (!h->greeting || host->route_add(inst, "GET", "hello", on_hello)) {
		free(h->greeting);
		free(h);
		return IM_ENOMEM;
	}
	*state = h;
	return 0;
}

static void destroy(void *state)
{
	hello *h = state;
	free(h->greeting);
	free(h);
}

static const im_component *const components[] = {NULL};

static const im_plugin_desc desc = {
    IM_PLUGIN_HEADER,
    .name = "hello",
    .version = "1.0.0",
    .description = "Example vendor plugin",
    .vendor = "Example Corp",
    .license = "MIT",
    .components = components,
    .config_keys = keys,
    .create = create,
    .destroy = destroy,
};

IM_PLUGIN_DEFINE(desc)
