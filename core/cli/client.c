/* The CLI's side of the admin API: one blocking libcurl request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/cli.h"
#include "http/http.h"

typedef struct buf {
	char *data;
	size_t len;
} buf;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	buf *b = ud;
	size_t add = size * n;
	char *d = realloc(b->data, b->len + add + 1);
	if (!d)
		return 0;
	memcpy(d + b->len, p, add);
	b->data = d;
	b->len += add;
	d[b->len] = '\0';
	return add;
}

im_config *cli_load_config(const cli_ctx *ctx, bool quiet)
{
	char err[2048];
	im_config *cfg = im_config_load_dir(ctx->config_dir, err, sizeof(err));
	if (!cfg && !quiet)
		fprintf(stderr, "im: %s\n", err);
	return cfg;
}

/* Base URL: IM_URL, else http:// + server.listen of the config. */
static void base_url(const cli_ctx *ctx, char *url, size_t len, char *token,
		     size_t toklen)
{
	const char *env = getenv("IM_URL");
	const char *tok = getenv("IM_ADMIN_TOKEN");
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

int cli_admin_call(const cli_ctx *ctx, const char *method, const char *path,
		   const char *body, long *status, json_t **out, char *err,
		   size_t errlen)
{
	char url[1024], token[1024], auth[1100];
	base_url(ctx, url, sizeof(url), token, sizeof(token));
	size_t n = strlen(url);
	snprintf(url + n, sizeof(url) - n, "%s", path);
	CURL *c = curl_easy_init();
	if (!c)
		return IM_ENOMEM;
	struct curl_slist *h = NULL;
	if (*token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
	}
	h = curl_slist_append(h, "Content-Type: application/json");
	buf b = {0};
	char cerr[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 90L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 3L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	} else if (!strcmp(method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	}
	CURLcode cc = curl_easy_perform(c);
	int rc = 0;
	if (cc != CURLE_OK) {
		snprintf(err, errlen,
			 "cannot reach the im server at %s: %s; is `im serve` "
			 "running? (set IM_URL to its address)",
			 url, *cerr ? cerr : curl_easy_strerror(cc));
		rc = IM_EIO;
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
		json_error_t je;
		*out = b.len ? json_loadb(b.data, b.len, 0, &je) : NULL;
	}
	free(b.data);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc;
}

void cli_print_error(const char *what, const json_t *body)
{
	const char *msg = json_string_value(
	    json_object_get(json_object_get(body, "error"), "message"));
	if (!msg)
		msg = json_string_value(json_object_get(body, "error"));
	fprintf(stderr, "im: %s: %s\n", what, msg ? msg : "unexpected answer");
}
