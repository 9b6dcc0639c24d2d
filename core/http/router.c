/* Router: an ordered list of (method, pattern) -> handler. Linear scan is
 * right for the few dozen routes a server has; first match wins. */
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

typedef struct route {
	char *method; /* NULL = any */
	char *pattern;
	size_t prefix_len; /* pattern length without the trailing '*' */
	bool prefix;
	im_handler_fn fn;
	void *ud;
} route;

struct im_router {
	route *routes;
	size_t n, cap;
};

im_router *im_router_new(void)
{
	return calloc(1, sizeof(im_router));
}

void im_router_free(im_router *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->routes[i].method);
		free(r->routes[i].pattern);
	}
	free(r->routes);
	free(r);
}

int im_router_add(im_router *r, const char *method, const char *pattern,
		  im_handler_fn fn, void *ud)
{
	if (!r || !pattern || !fn || pattern[0] != '/')
		return IM_EINVAL;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		route *n = realloc(r->routes, cap * sizeof(*n));
		if (!n)
			return IM_ENOMEM;
		r->routes = n;
		r->cap = cap;
	}
	route *rt = &r->routes[r->n];
	memset(rt, 0, sizeof(*rt));
	size_t len = strlen(pattern);
	rt->prefix = len > 0 && pattern[len - 1] == '*';
	rt->prefix_len = rt->prefix ? len - 1 : len;
	rt->pattern = strdup(pattern);
	rt->method = method ? strdup(method) : NULL;
	if (!rt->pattern || (method && !rt->method)) {
		free(rt->pattern);
		free(rt->method);
		return IM_ENOMEM;
	}
	rt->fn = fn;
	rt->ud = ud;
	r->n++;
	return 0;
}

static bool path_matches(const route *rt, const char *path, size_t plen)
{
	if (rt->prefix)
		return plen >= rt->prefix_len &&
		       memcmp(path, rt->pattern, rt->prefix_len) == 0;
	return plen == rt->prefix_len && memcmp(path, rt->pattern, plen) == 0;
}

int im_router_find(const im_router *r, const char *method, const char *path,
		   im_route_match *out)
{
	size_t plen = strlen(path);
	const char *other = NULL;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < r->n; i++) {
		const route *rt = &r->routes[i];
		if (!path_matches(rt, path, plen))
			continue;
		if (rt->method && strcmp(rt->method, method) != 0) {
			if (!other)
				other = rt->pattern;
			continue;
		}
		out->fn = rt->fn;
		out->ud = rt->ud;
		out->rest_offset = rt->prefix_len;
		out->pattern = rt->pattern;
		return 0;
	}
	out->pattern = other;
	return other ? 405 : 404;
}

int im_router_match(const im_router *r, const char *method, const char *path,
		    im_handler_fn *fn, void **ud, size_t *rest_offset)
{
	im_route_match m;
	int rc = im_router_find(r, method, path, &m);
	if (rc == 0) {
		*fn = m.fn;
		*ud = m.ud;
		*rest_offset = m.rest_offset;
	}
	return rc;
}
