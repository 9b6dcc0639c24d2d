/* The incident pages (/incidents, /incidents/INC-n) that chat links open:
 * the real `im serve`, the real CLI, a browser's ways of asking. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "harness.h"

static srv s;

static void setup(void)
{
	srv_init(&s);
}

static void teardown(void)
{
	srv_cleanup(&s);
}

TestSuite(pages, .init = setup, .fini = teardown, .timeout = 90);

#define HDRS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void start(const char *extra)
{
	srv_conf(&s, "10-pages.yaml",
		 "server:\n  public_url: http://127.0.0.1:%u/\n%s", s.port,
		 extra ? extra : "");
	cr_assert(srv_start(&s), "server did not start:\n%s", srv_log(&s));
}

static void finish(void)
{
	srv_must_stop(&s);
}

static void post(const char *path, const char *body, const char *auth)
{
	reply r = http(&s, false, "POST", path, body, strlen(body),
		       auth ? HDRS("Content-Type: application/json", auth)
			    : HDRS("Content-Type: application/json"));
	cr_assert(r.status == 200 || r.status == 201, "%s: %ld %s", path,
		  r.status, r.body);
	reply_free(&r);
}

static bool has_header(const reply *r, const char *text)
{
	return r->headers && strcasestr(r->headers, text);
}

Test(pages, the_url_im_declare_prints_opens_the_incident)
{
	start(NULL);
	char *out = NULL, *err = NULL;
	int rc = cli(&s, &out, &err,
		     ARGS("declare", "--sev", "SEV-1", "--title",
			  "Checkout <script>alert(1)</script> & \"more\"",
			  "--service", "checkout"));
	cr_assert_eq(rc, 0, "%s", err);
	char want[128];
	snprintf(want, sizeof(want), "http://127.0.0.1:%u/incidents/INC-1",
		 s.port);
	const char *url = strstr(out, want);
	cr_assert(url, "declare printed [%s], want a link %s", out, want);
	free(out);
	free(err);
	post("/api/v1/incidents/INC-1/note", "{\"text\":\"db <b>failover</b>\"}",
	     NULL);
	post("/api/v1/incidents/INC-1/ack", "{}", NULL);

	reply r = http(&s, false, "GET", "/incidents/INC-1", NULL, 0, NULL);
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_expect(has_header(&r, "Content-Type: text/html; charset=utf-8"),
		  "%s", r.headers);
	cr_expect(has_header(&r, "Content-Security-Policy: default-src 'none'"),
		  "%s", r.headers);
	cr_expect(has_header(&r, "X-Content-Type-Options: nosniff"));
	/* Every value escaped: the title's markup never reaches the page. */
	cr_expect_null(strstr(r.body, "<script>"), "%s", r.body);
	cr_expect_null(strstr(r.body, "<b>failover"), "%s", r.body);
	cr_expect(strstr(r.body, "INC-1: Checkout &lt;script&gt;alert(1)&lt;/"
				 "script&gt; &amp; &quot;more&quot;"),
		  "%s", r.body);
	cr_expect(strstr(r.body, "<dd>SEV-1 (critical)</dd>"), "%s", r.body);
	cr_expect(strstr(r.body, "<dd>acknowledged</dd>"), "%s", r.body);
	cr_expect(strstr(r.body, "<dd>checkout</dd>"), "%s", r.body);
	/* The timeline, oldest first: declare, note, acknowledge. */
	const char *d = strstr(r.body, "<td>declare</td>");
	const char *n = strstr(r.body, "<pre>db &lt;b&gt;failover&lt;/b&gt;"
				       "</pre>");
	const char *a = strstr(r.body, "open → acknowledged");
	cr_expect(d && n && a && d < n && n < a, "%s", r.body);
	cr_expect(strstr(r.body, "href=\"../incidents\""), "%s", r.body);
	reply_free(&r);
	finish();
}

Test(pages, the_list_links_every_incident_and_filters)
{
	start(NULL);
	post("/api/v1/incidents", "{\"title\":\"first\",\"severity\":\"SEV-3\"}",
	     NULL);
	post("/api/v1/incidents", "{\"title\":\"second\",\"severity\":\"SEV-2\"}",
	     NULL);
	post("/api/v1/incidents/INC-1/resolve", "{}", NULL);

	reply r = http(&s, false, "GET", "/incidents", NULL, 0, NULL);
	cr_assert_eq(r.status, 200, "%s", r.body);
	const char *two = strstr(r.body, "<a href=\"incidents/INC-2\">INC-2</a>");
	const char *one = strstr(r.body, "<a href=\"incidents/INC-1\">INC-1</a>");
	cr_expect(two && one && two < one, "newest first:\n%s", r.body);
	reply_free(&r);

	r = http(&s, false, "GET", "/incidents?status=resolved", NULL, 0, NULL);
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_expect(strstr(r.body, "incidents/INC-1\""), "%s", r.body);
	cr_expect_null(strstr(r.body, "incidents/INC-2\""), "%s", r.body);
	reply_free(&r);

	r = http(&s, false, "GET", "/incidents?status=bogus", NULL, 0, NULL);
	cr_expect_eq(r.status, 400, "%s", r.body);
	cr_expect(strstr(r.body, "bogus"), "the reason names the value: %s",
		  r.body);
	reply_free(&r);
	finish();
}

Test(pages, unknown_incidents_and_writes_are_refused)
{
	start(NULL);
	reply r = http(&s, false, "GET", "/incidents/INC-42", NULL, 0, NULL);
	cr_expect_eq(r.status, 404);
	cr_expect(strstr(r.body, "INC-42"), "%s", r.body);
	cr_expect(has_header(&r, "text/html"), "%s", r.headers);
	reply_free(&r);
	r = http(&s, false, "GET", "/incidents/INC-1/timeline", NULL, 0, NULL);
	cr_expect_eq(r.status, 404, "%s", r.body);
	reply_free(&r);
	r = http(&s, false, "POST", "/incidents/INC-1", "x", 1, NULL);
	cr_expect_eq(r.status, 405, "%s", r.body);
	cr_expect(has_header(&r, "Allow: GET, HEAD"), "%s", r.headers);
	reply_free(&r);
	r = http(&s, false, "GET", "/incidents/", NULL, 0, NULL);
	cr_expect_eq(r.status, 308);
	cr_expect(has_header(&r, "Location: ../incidents"), "%s", r.headers);
	reply_free(&r);
	finish();
}

Test(pages, with_tokens_a_browser_signs_in_with_basic_auth)
{
	start("  api_tokens: [\"page-token\"]\n");
	post("/api/v1/incidents", "{\"title\":\"t\",\"severity\":\"SEV-2\"}",
	     "Authorization: Bearer page-token");

	reply r = http(&s, false, "GET", "/incidents/INC-1", NULL, 0, NULL);
	cr_expect_eq(r.status, 401, "%s", r.body);
	cr_expect(has_header(&r, "WWW-Authenticate: Basic realm="), "%s",
		  r.headers);
	cr_expect(has_header(&r, "text/html"), "%s", r.headers);
	reply_free(&r);

	/* base64("alice:page-token") */
	r = http(&s, false, "GET", "/incidents/INC-1", NULL, 0,
		 HDRS("Authorization: Basic YWxpY2U6cGFnZS10b2tlbg=="));
	cr_expect_eq(r.status, 200, "%s", r.body);
	reply_free(&r);
	/* base64("alice:wrong") */
	r = http(&s, false, "GET", "/incidents", NULL, 0,
		 HDRS("Authorization: Basic YWxpY2U6d3Jvbmc="));
	cr_expect_eq(r.status, 401, "%s", r.body);
	reply_free(&r);
	/* Not base64 at all. */
	r = http(&s, false, "GET", "/incidents", NULL, 0,
		 HDRS("Authorization: Basic %%%%"));
	cr_expect_eq(r.status, 401, "%s", r.body);
	reply_free(&r);
	r = http(&s, false, "GET", "/incidents", NULL, 0,
		 HDRS("Authorization: Bearer page-token"));
	cr_expect_eq(r.status, 200, "%s", r.body);
	reply_free(&r);
	/* The REST API takes the same Basic credentials. */
	r = http(&s, false, "GET", "/api/v1/incidents/INC-1", NULL, 0,
		 HDRS("Authorization: Basic YWxpY2U6cGFnZS10b2tlbg=="));
	cr_expect_eq(r.status, 200, "%s", r.body);
	reply_free(&r);
	finish();
}

/* Behind a proxy on the same host every request comes from loopback: one
 * that a proxy passed on (it says so in its headers) is not local. */
Test(pages, a_proxied_request_is_not_a_local_caller)
{
	start(NULL);
	reply r = http(&s, false, "GET", "/incidents", NULL, 0,
		       HDRS("X-Forwarded-For: 203.0.113.7"));
	cr_expect_eq(r.status, 403, "%s", r.body);
	reply_free(&r);
	r = http(&s, false, "GET", "/api/v1/incidents", NULL, 0,
		 HDRS("Forwarded: for=203.0.113.7"));
	cr_expect_eq(r.status, 403, "%s", r.body);
	reply_free(&r);
	r = http(&s, false, "GET", "/api/v1/admin/plugins", NULL, 0,
		 HDRS("X-Real-IP: 203.0.113.7"));
	cr_expect(r.status == 401 || r.status == 403, "%ld %s", r.status,
		  r.body);
	reply_free(&r);
	r = http(&s, false, "GET", "/incidents", NULL, 0, NULL);
	cr_expect_eq(r.status, 200, "a local caller still is: %s", r.body);
	reply_free(&r);
	finish();
}
