/* The CLI's side of the admin API: one blocking libcurl request. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "cli/cli.h"
#include "http/http.h"
#include "net/net.h"

im_config *cli_load_config(const cli_ctx *ctx, bool quiet)
{
	char err[2048];
	im_config *cfg = im_config_load_dir(ctx->config_dir, err, sizeof(err));
	if (!cfg && !quiet)
		fprintf(stderr, "im: %s\n", err);
	return cfg;
}

/* Base URL: IM_URL, else http:// + server.listen of the config. The
 * token: for the API IM_API_TOKEN, else (and for admin) IM_ADMIN_TOKEN,
 * else the config's admin token. */
static void base_url(const cli_ctx *ctx, char *url, size_t len, char *token,
		     size_t toklen, bool api)
{
	const char *env = getenv("IM_URL");
	const char *tok = api ? getenv("IM_API_TOKEN") : NULL;
	if (!tok || !*tok)
		tok = getenv("IM_ADMIN_TOKEN");
	im_config *cfg = NULL;
	if (!env || !*env || !tok)
		cfg = cli_load_config(ctx, true);
	if (env && *env) {
		snprintf(url, len, "%s", env);
	} else {
		char host[256] = "127.0.0.1";
		unsigned port = 8080;
		const char *listen = cfg ? im_config_string(cfg, "server.listen",
							    NULL)
					 : NULL;
		if (listen)
			im_parse_listen(listen, host, sizeof(host), &port);
		if (!strcmp(host, "0.0.0.0") || !*host)
			strcpy(host, "127.0.0.1");
		if (strchr(host, ':'))
			snprintf(url, len, "http://[%s]:%u", host, port);
		else
			snprintf(url, len, "http://%s:%u", host, port);
	}
	size_t n = strlen(url);
	while (n && url[n - 1] == '/')
		url[--n] = '\0';
	if (!tok && cfg)
		tok = im_config_string(cfg, "server.admin_token", "");
	snprintf(token, toklen, "%s", tok ? tok : "");
	im_config_free(cfg);
}

void cli_base_url(const cli_ctx *ctx, char *url, size_t len)
{
	char token[1024];
	base_url(ctx, url, len, token, sizeof(token), false);
}

static int call(const cli_ctx *ctx, bool api, const char *method,
		const char *path, const char *body, const char *idem,
		long *status, json_t **out, char *err, size_t errlen)
{
	char url[1024], token[1024], auth[1100];
	base_url(ctx, url, sizeof(url), token, sizeof(token), api);
	size_t n = strlen(url);
	snprintf(url + n, sizeof(url) - n, "%s", path);
	im_http_header h[4] = {IM_HEADER("Content-Type", "application/json"),
			       IM_HEADER("X-Im-Actor",
					 getenv("USER") ? getenv("USER") : "cli")};
	size_t nh = 2;
	if (*token) {
		snprintf(auth, sizeof(auth), "Bearer %s", token);
		h[nh++] = (im_http_header)IM_HEADER("Authorization", auth);
	}
	if (idem && *idem)
		h[nh++] = (im_http_header)IM_HEADER("Idempotency-Key", idem);
	im_http_call call = {
	    .struct_size = sizeof(call),
	    .method = method,
	    .url = url,
	    .headers = h,
	    .n_headers = nh,
	    .body = body,
	    .body_len = body ? strlen(body) : 0,
	    .timeout_ms = 90000,
	};
	im_net *net = NULL;
	im_http_result *res = NULL;
	/* The call runs on this thread (net.h): a TLS write to a closed
	 * connection must give an error, not end the program. */
	signal(SIGPIPE, SIG_IGN);
	int rc = im_net_start(&net);
	if (rc == 0)
		rc = im_net_send_sync(net, &call, &res);
	if (rc != 0) {
		snprintf(err, errlen,
			 "cannot reach the im server at %s: %s; is `im serve` "
			 "running? (set IM_URL to its address)",
			 url, res && res->error_text ? res->error_text
						     : "network unavailable");
	} else {
		json_error_t je;
		*status = res->status;
		*out = res->body_len ? json_loadb(res->body, res->body_len, 0,
						  &je)
				     : NULL;
	}
	im_net_result_free(res);
	im_net_stop(net);
	return rc ? IM_EIO : 0;
}

int cli_admin_call(const cli_ctx *ctx, const char *method, const char *path,
		   const char *body, long *status, json_t **out, char *err,
		   size_t errlen)
{
	return call(ctx, false, method, path, body, NULL, status, out, err,
		    errlen);
}

int cli_api_call(const cli_ctx *ctx, const char *method, const char *path,
		 const char *body, const char *idem, long *status,
		 json_t **out, char *err, size_t errlen)
{
	return call(ctx, true, method, path, body, idem, status, out, err,
		    errlen);
}

void cli_print_error(const char *what, const json_t *body)
{
	const char *msg = json_string_value(
	    json_object_get(json_object_get(body, "error"), "message"));
	if (!msg)
		msg = json_string_value(json_object_get(body, "error"));
	fprintf(stderr, "im: %s: %s\n", what, msg ? msg : "unexpected answer");
}

void cli_print_json(const json_t *v)
{
	char *s = v ? json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
		    : NULL;
	puts(s ? s : "null");
	free(s);
}

void cli_url_encode(const char *in, const char *keep, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const void *)in; *p && o + 4 < len;
	     p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p) ||
		    (keep && strchr(keep, *p))) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
}
