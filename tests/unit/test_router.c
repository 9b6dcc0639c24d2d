/* Router matching and listen-address parsing. */
#include <string.h>

#include <criterion/criterion.h>

#include "http/http.h"

static int h1(void *ud, const im_http_request *r, im_http_response *p)
{
	return 1;
}

static int h2(void *ud, const im_http_request *r, im_http_response *p)
{
	return 2;
}

Test(router, matches_exact_paths_and_methods)
{
	im_router *r = im_router_new();
	cr_assert_eq(im_router_add(r, "GET", "/health", h1, NULL), 0);
	im_handler_fn fn;
	void *ud;
	size_t rest;
	cr_expect_eq(im_router_match(r, "GET", "/health", &fn, &ud, &rest), 0);
	cr_expect_eq(fn, h1);
	cr_expect_eq(im_router_match(r, "GET", "/health/x", &fn, &ud, &rest),
		     404);
	cr_expect_eq(im_router_match(r, "GET", "/healt", &fn, &ud, &rest), 404);
	cr_expect_eq(im_router_match(r, "POST", "/health", &fn, &ud, &rest),
		     405);
	im_router_free(r);
}

Test(router, matches_prefixes_and_reports_the_rest)
{
	im_router *r = im_router_new();
	int tag = 7;
	im_router_add(r, NULL, "/hooks/*", h2, &tag);
	im_handler_fn fn;
	void *ud;
	size_t rest;
	const char *path = "/hooks/slack/events";
	cr_expect_eq(im_router_match(r, "POST", path, &fn, &ud, &rest), 0);
	cr_expect_eq(fn, h2);
	cr_expect_eq(ud, &tag);
	cr_expect_str_eq(path + rest, "slack/events");
	cr_expect_eq(im_router_match(r, "GET", "/hook", &fn, &ud, &rest), 404);
	im_router_free(r);
}

Test(router, prefers_the_first_route_added)
{
	im_router *r = im_router_new();
	im_router_add(r, "GET", "/api/v1/admin/plugins", h1, NULL);
	im_router_add(r, NULL, "/api/*", h2, NULL);
	im_handler_fn fn;
	void *ud;
	size_t rest;
	im_router_match(r, "GET", "/api/v1/admin/plugins", &fn, &ud, &rest);
	cr_expect_eq(fn, h1);
	im_router_match(r, "POST", "/api/v1/admin/plugins", &fn, &ud, &rest);
	cr_expect_eq(fn, h2, "falls through to the catch-all");
	im_router_free(r);
}

Test(router, refuses_relative_patterns)
{
	im_router *r = im_router_new();
	cr_expect_eq(im_router_add(r, "GET", "health", h1, NULL), IM_EINVAL);
	im_router_free(r);
}

Test(listen, parses_ipv4_ipv6_and_bare_ports)
{
	char host[64];
	unsigned port;
	cr_assert_eq(im_parse_listen("127.0.0.1:8080", host, sizeof(host),
				     &port), 0);
	cr_expect_str_eq(host, "127.0.0.1");
	cr_expect_eq(port, 8080);
	cr_assert_eq(im_parse_listen("[::1]:9090", host, sizeof(host), &port),
		     0);
	cr_expect_str_eq(host, "::1");
	cr_expect_eq(port, 9090);
	cr_assert_eq(im_parse_listen(":80", host, sizeof(host), &port), 0);
	cr_expect_str_eq(host, "0.0.0.0");
}

Test(listen, rejects_bad_addresses)
{
	char host[64];
	unsigned port;
	cr_expect_neq(im_parse_listen("8080", host, sizeof(host), &port), 0);
	cr_expect_neq(im_parse_listen("h:99999", host, sizeof(host), &port), 0);
	cr_expect_neq(im_parse_listen("h:", host, sizeof(host), &port), 0);
	cr_expect_neq(im_parse_listen("h:80x", host, sizeof(host), &port), 0);
}
