/* echo: the smallest real plugin. It shows the whole path a plugin takes:
 * a config-key table filled into its own struct (host->config_fill),
 * per-instance state, a route under /hooks/<instance>/echo, and a chat
 * command verb `echo`. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <im/im.h>

/* The instance's settings, filled by the host from the key table. */
typedef struct echo_cfg {
	const char *prefix; /* borrowed from the config until destroy() */
	bool upper;
} echo_cfg;

typedef struct echo {
	const im_host *host;
	im_instance *inst;
	const char *prefix;
	bool upper;
	echo_cfg cfg;
} echo;

static const im_config_key keys[] = {
    {IM_CONFIG_KEY_HEADER, "prefix", IM_CFG_STRING, "\"\"", 0,
     "text put before every echo",
     IM_CONFIG_STORE(echo_cfg, prefix, IM_STORE_STRING)},
    {IM_CONFIG_KEY_HEADER, "uppercase", IM_CFG_BOOL, "false", 0,
     "shout the echo back", IM_CONFIG_STORE(echo_cfg, upper, IM_STORE_BOOL)},
    {0},
};

static char *render(const echo *e, const char *text, size_t len)
{
	size_t plen = strlen(e->prefix);
	char *out = malloc(plen + len + 1);
	if (!out)
		return NULL;
	memcpy(out, e->prefix, plen);
	for (size_t i = 0; i < len; i++)
		out[plen + i] = e->upper ? (char)toupper((unsigned char)text[i])
					 : text[i];
	out[plen + len] = '\0';
	return out;
}

static int route_echo(void *state, const im_http_request *req,
		      im_http_response *resp)
{
	echo *e = state;
	size_t len = 0;
	const char *body = e->host->req_body(req, &len);
	char *out = render(e, body, len);
	if (!out)
		return IM_ENOMEM;
	int rc = e->host->resp_set(resp, 200, "text/plain; charset=utf-8", out,
				   strlen(e->prefix) + len);
	free(out);
	return rc;
}

static int cmd_invoke(void *state, const char *verb, const im_invocation *inv,
		      im_reply *reply)
{
	echo *e = state;
	const char *text = inv->text ? inv->text : "";
	char *out = render(e, text, strlen(text));
	if (!out)
		return IM_ENOMEM;
	int rc = e->host->reply_text(reply, out);
	free(out);
	return rc;
}

static int create(const im_host *host, im_instance *inst,
		  const json_t *config, void **state)
{
	echo *e = calloc(1, sizeof(*e));
	if (!e)
		return IM_ENOMEM;
	e->host = host;
	e->inst = inst;
	int rc = host->config_fill(inst, &e->cfg, sizeof(e->cfg));
	e->prefix = e->cfg.prefix ? e->cfg.prefix : "";
	e->upper = e->cfg.upper;
	if (!rc)
		rc = host->route_add(inst, "POST", "echo", route_echo);
	if (rc) {
		free(e);
		return rc;
	}
	IM_INFO(host, inst, "ready (prefix \"%s\")", e->prefix);
	*state = e;
	return 0;
}

static void destroy(void *state)
{
	free(state);
}

static const im_command_verb verbs[] = {
    IM_VERB("echo", "echo <text>", "repeat the text back"),
    {0},
};

static const im_command command = {
    .base = {.struct_size = sizeof(im_command),
	     .kind = IM_COMPONENT_COMMAND,
	     .name = "echo"},
    .verbs = verbs,
    .invoke = cmd_invoke,
};

static const im_component *const components[] = {&command.base, NULL};

static const im_plugin_desc desc = {
    IM_PLUGIN_HEADER,
    .name = "echo",
    .version = "1.0.0",
    .description = "Echoes text back over HTTP and as a chat command",
    .vendor = "im",
    .license = "MIT",
    .components = components,
    .config_keys = keys,
    .create = create,
    .destroy = destroy,
};

IM_PLUGIN_DEFINE(desc)
