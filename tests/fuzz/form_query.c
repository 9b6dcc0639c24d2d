/*
 * Fuzz target form_query: application/x-www-form-urlencoded and query
 * strings.
 *
 * The same bytes go to:
 * - slk_form_parse (plugins/slack/form.c), the Slack connector's strict
 *   form decoder: a result is an object of at most 64 string members
 *   without NUL bytes that serializes back to JSON;
 * - the host's query handling, through the real server on loopback: the
 *   bytes become the query string (bytes a request line cannot carry are
 *   %-encoded, so the decoded values are exactly the input's) of
 *   GET /api/v1/incidents (list filters, cursor, limit),
 *   GET /incidents (the HTML list and its filter links) and
 *   GET /api/v1/ws (the stream parameters since, type, incident,
 *   keepalive_ms, checked before the handshake), pipelined on one
 *   connection. libmicrohttpd splits and %-decodes the query; the
 *   handlers parse the values. No answer may be a 5xx, and every answer
 *   of an /api/v1 handler must be a JSON object;
 * - im_router_find with the bytes as the path (up to the first NUL or
 *   '?'), against the server's real routes.
 * FUZZ_VERBOSE=1 in the environment prints every answer.
 */
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "fuzz_server.h"
#include "slack.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_server_start();
	return 0;
}

static void check_form(const char *data, size_t size)
{
	json_t *f = slk_form_parse(data, size);
	if (!f)
		return;
	FUZZ_CHECK(json_is_object(f), "slk_form_parse: not an object");
	FUZZ_CHECK(json_object_size(f) <= 64,
		   "slk_form_parse: %zu fields, the limit is 64",
		   json_object_size(f));
	const char *k;
	json_t *v;
	json_object_foreach(f, k, v)
	{
		FUZZ_CHECK(*k, "slk_form_parse: an empty key");
		FUZZ_CHECK(json_is_string(v), "slk_form_parse: %s is no string",
			   k);
		FUZZ_CHECK(json_string_length(v) <= size,
			   "slk_form_parse: %s is longer than the body", k);
		FUZZ_CHECK(strlen(json_string_value(v)) ==
			       json_string_length(v),
			   "slk_form_parse: %s holds a NUL byte", k);
	}
	char *s = json_dumps(f, JSON_COMPACT);
	FUZZ_CHECK(s, "slk_form_parse: the result does not serialize");
	free(s);
	json_decref(f);
}

static void check_route(const char *data, size_t size)
{
	size_t n = strcspn(data, "?"); /* the copy ends at the first NUL */
	char *path = strndup(data, n < size ? n : size);
	if (!path)
		return;
	static const char *const methods[] = {"GET", "POST", "PATCH",
					      "DELETE"};
	for (size_t i = 0; i < 4; i++) {
		im_route_match m;
		int rc = im_router_find(fz_server_router(), methods[i], path,
					&m);
		FUZZ_CHECK(rc == 0 || rc == 404 || rc == 405,
			   "im_router_find: %d", rc);
		if (rc == 0)
			FUZZ_CHECK(m.fn && m.pattern &&
				       m.rest_offset <= strlen(path),
				   "im_router_find: bad match for %s",
				   m.pattern ? m.pattern : "(null)");
		else
			FUZZ_CHECK((rc == 405) == (m.pattern != NULL),
				   "im_router_find: %d with pattern %s", rc,
				   m.pattern ? m.pattern : "(null)");
	}
	free(path);
}

static const char *const bases[] = {"/api/v1/incidents", "/incidents",
				    "/api/v1/ws"};
#define N_BASES (sizeof(bases) / sizeof(bases[0]))

/* "GET <base>?<query> HTTP/1.1" for every base, pipelined on one
 * connection (the last one asks to close it), the query %-encoded where a
 * request line needs it. */
static char *requests(const char *data, size_t size, size_t *len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t cap = N_BASES * (3 * size + 128), n = 0;
	char *r = malloc(cap);
	if (!r)
		return NULL;
	for (size_t b = 0; b < N_BASES; b++) {
		n += (size_t)sprintf(r + n, "GET %s?", bases[b]);
		for (size_t i = 0; i < size; i++) {
			unsigned char c = (unsigned char)data[i];
			if (c <= 0x20 || c >= 0x7f || c == '#') {
				r[n++] = '%';
				r[n++] = hex[c >> 4];
				r[n++] = hex[c & 15];
			} else {
				r[n++] = (char)c;
			}
		}
		n += (size_t)sprintf(r + n, " HTTP/1.1\r\nHost: fuzz\r\n%s\r\n",
				     b == N_BASES - 1 ? "Connection: close\r\n"
						      : "");
	}
	*len = n;
	return r;
}

static void check_queries(const char *data, size_t size)
{
	size_t len;
	char *req = requests(data, size, &len);
	if (!req)
		return;
	size_t alen;
	char *a = fz_exchange(req, len, false, &alen);
	const char *p = a;
	size_t left = alen;
	for (size_t b = 0; b < N_BASES; b++) {
		const char *body = NULL;
		size_t blen = 0, used = 0;
		int status = fz_next_answer(p, left, &body, &blen, &used);
		if (getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "GET %s?%.*s -> %d %.*s\n", bases[b],
				(int)(size < 200 ? size : 200), data, status,
				(int)(blen < 200 ? blen : 200),
				body ? body : "");
		/* libmicrohttpd refuses a request line it cannot take (414,
		 * 400) and closes: the later requests get no answer. */
		if (b > 0 && status == 0)
			break;
		FUZZ_CHECK(status >= 200 && status < 500,
			   "GET %s?<query>: status %d:\n%.600s", bases[b],
			   status, p);
		if (status == 414 || status == 431 ||
		    (status == 400 && !memmem(body, blen, "{", 1)))
			break; /* refused by libmicrohttpd, not by a handler */
		if (strncmp(bases[b], "/api/", 5) == 0) {
			json_error_t je;
			json_t *j = json_loadb(body, blen, 0, &je);
			FUZZ_CHECK(json_is_object(j),
				   "GET %s?<query>: %d with a body that is no "
				   "JSON object:\n%.600s",
				   bases[b], status, p);
			json_decref(j);
		}
		p += used;
		left -= used;
	}
	free(a);
	free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data;
	check_form(d, size);
	/* NUL-terminated copy for the string functions. */
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_route(s, size);
	free(s);
	check_queries(d, size);
	return 0;
}
