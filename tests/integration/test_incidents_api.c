/* /api/v1/incidents end to end: the real `im serve` over loopback HTTP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

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

TestSuite(incidents_api, .init = setup, .fini = teardown, .timeout = 90);

static void start(void)
{
	srv_must_start(&s);
}

/* Stops the server and wants a clean exit: under the sanitizers a leak or
 * a runtime error in the server turns into a non-zero status here. */
static void finish(void)
{
	srv_must_stop(&s);
}

#define JSON_CT "Content-Type: application/json"
#define HDRS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A request with a JSON body (or none when body is NULL). */
static reply call(const char *method, const char *path, const char *body)
{
	return http(&s, false, method, path, body, body ? strlen(body) : 0,
		    HDRS(JSON_CT));
}

static json_t *parse(const reply *r)
{
	json_error_t je;
	json_t *j = json_loads(r->body, 0, &je);
	cr_assert(j, "not JSON (%s): %s", je.text, r->body);
	return j;
}

/* Value at a dotted path of object keys ("data.actor.id"). */
static json_t *at(json_t *j, const char *path)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok(buf, "."); k && j; k = strtok(NULL, "."))
		j = json_object_get(j, k);
	return j;
}

static const char *sat(json_t *j, const char *path)
{
	return json_string_value(at(j, path));
}

/* Sends and checks the status; returns the parsed body (caller frees). */
static json_t *expect(long status, const char *method, const char *path,
		      const char *body)
{
	reply r = call(method, path, body);
	cr_assert_eq(r.status, status, "%s %s -> %ld: %s", method, path,
		     r.status, r.body);
	json_t *j = parse(&r);
	reply_free(&r);
	return j;
}

/* Declares and returns the new id ("INC-n"). */
static char *declare(const char *title, const char *sev, const char *svc)
{
	json_t *in = json_pack("{s:s,s:s}", "title", title, "severity", sev);
	if (svc)
		json_object_set_new(in, "service", json_string(svc));
	char *body = json_dumps(in, 0);
	json_t *out = expect(201, "POST", "/api/v1/incidents", body);
	char *id = strdup(sat(out, "incident.id"));
	json_decref(out);
	json_decref(in);
	free(body);
	return id;
}

/* POST /api/v1/incidents/<id>/<what> expecting `status`; returns body. */
static json_t *act(long status, const char *id, const char *what,
		   const char *body)
{
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/incidents/%s/%s", id, what);
	return expect(status, "POST", path, body);
}

static void expect_status(const char *id, const char *what,
			  const char *status, const char *type)
{
	json_t *j = act(200, id, what, NULL);
	cr_expect_str_eq(sat(j, "incident.status"), status, "%s %s", id, what);
	cr_expect_str_eq(sat(j, "event.type"), type);
	json_decref(j);
}

static void expect_health(void)
{
	reply r = http(&s, false, "GET", "/health", NULL, 0, NULL);
	cr_expect_eq(r.status, 200, "the server must survive bad input");
	reply_free(&r);
}

Test(incidents_api, declares_with_201_and_a_cloudevent)
{
	start();
	json_t *j = expect(201, "POST", "/api/v1/incidents",
			   "{\"title\":\"checkout is down\",\"severity\":"
			   "\"SEV-2\",\"service\":\"checkout\"}");
	cr_expect_str_eq(sat(j, "incident.id"), "INC-1");
	cr_expect_str_eq(sat(j, "incident.status"), "open");
	cr_expect_str_eq(sat(j, "incident.severity"), "SEV-2");
	cr_expect_str_eq(sat(j, "incident.service"), "checkout");
	cr_expect_str_eq(sat(j, "event.specversion"), "1.0");
	cr_expect_str_eq(sat(j, "event.type"), "im.incident.declare");
	cr_expect_str_eq(sat(j, "event.subject"), "INC-1");
	cr_expect(sat(j, "event.id"));
	cr_expect_str_eq(sat(j, "event.data.actor.id"), "local");
	cr_expect_str_eq(sat(j, "event.data.actor.via"), "api");
	cr_expect_str_eq(sat(j, "event.data.incident.id"), "INC-1");
	json_decref(j);
	j = expect(200, "GET", "/api/v1/incidents/INC-1", NULL);
	cr_expect_str_eq(sat(j, "title"), "checkout is down");
	json_decref(j);
	finish();
}

Test(incidents_api, links_to_the_public_url_when_set)
{
	srv_conf(&s, "20-url.yaml",
		 "server:\n  public_url: https://im.example.com/\n");
	start();
	json_t *j = expect(201, "POST", "/api/v1/incidents",
			   "{\"title\":\"x\"}");
	cr_expect_str_eq(sat(j, "incident.url"),
			 "https://im.example.com/incidents/INC-1");
	json_decref(j);
	finish();
}

static size_t count_items(const char *query)
{
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/incidents%s", query);
	json_t *j = expect(200, "GET", path, NULL);
	size_t n = json_array_size(json_object_get(j, "items"));
	json_decref(j);
	return n;
}

Test(incidents_api, lists_with_filters)
{
	start();
	free(declare("a", "SEV-1", "db"));
	free(declare("b", "SEV-2", "db"));
	free(declare("c", "SEV-2", "web"));
	char *id = declare("d", "SEV-4", NULL);
	json_decref(act(200, id, "ack", NULL));
	free(id);
	cr_expect_eq(count_items(""), 4);
	cr_expect_eq(count_items("?status=open"), 3);
	cr_expect_eq(count_items("?status=acknowledged"), 1);
	cr_expect_eq(count_items("?status=open,acknowledged"), 4);
	cr_expect_eq(count_items("?severity=SEV-2"), 2);
	cr_expect_eq(count_items("?severity=SEV-1,SEV-2"), 3);
	cr_expect_eq(count_items("?service=db"), 2);
	cr_expect_eq(count_items("?service=db&severity=SEV-1"), 1);
	cr_expect_eq(count_items("?status=resolved"), 0);
	json_t *j = expect(200, "GET", "/api/v1/incidents", NULL);
	cr_expect_str_eq(sat(json_array_get(json_object_get(j, "items"), 0),
			     "id"),
			 "INC-4", "newest first");
	json_decref(j);
	json_decref(expect(400, "GET", "/api/v1/incidents?limit=0", NULL));
	json_decref(expect(400, "GET", "/api/v1/incidents?limit=x", NULL));
	finish();
}

Test(incidents_api, pages_through_with_a_cursor)
{
	start();
	for (int i = 0; i < 7; i++)
		free(declare("paged", "SEV-3", NULL));
	bool seen[8] = {0};
	char path[512] = "/api/v1/incidents?limit=3";
	int pages = 0, total = 0;
	for (;;) {
		json_t *j = expect(200, "GET", path, NULL);
		size_t i;
		json_t *inc;
		pages++;
		json_array_foreach(json_object_get(j, "items"), i, inc)
		{
			long n = (long)json_integer_value(at(inc, "number"));
			cr_assert(n >= 1 && n <= 7 && !seen[n], "dup %ld", n);
			seen[n] = true;
			total++;
		}
		const char *next = sat(j, "next_cursor");
		if (next)
			snprintf(path, sizeof(path),
				 "/api/v1/incidents?limit=3&cursor=%s", next);
		json_decref(j);
		if (!next)
			break;
		cr_assert(pages < 10, "the cursor does not end");
	}
	cr_expect_eq(pages, 3);
	cr_expect_eq(total, 7);
	finish();
}

Test(incidents_api, answers_404_for_unknown_incidents_and_paths)
{
	start();
	json_t *j = expect(404, "GET", "/api/v1/incidents/INC-99", NULL);
	cr_expect(strstr(sat(j, "error.message"), "INC-99"), "%s",
		  sat(j, "error.message"));
	json_decref(j);
	free(declare("x", "SEV-3", NULL));
	json_decref(act(404, "INC-1", "frobnicate", NULL));
	json_decref(expect(404, "GET", "/api/v1/incidents/INC-1/a/b", NULL));
	json_decref(act(404, "INC-99", "ack", NULL));
	json_decref(expect(405, "DELETE", "/api/v1/incidents", NULL));
	json_decref(expect(405, "PUT", "/api/v1/incidents/INC-1", NULL));
	json_decref(expect(405, "GET", "/api/v1/incidents/INC-1/ack", NULL));
	json_decref(
	    expect(405, "POST", "/api/v1/incidents/INC-1/timeline", NULL));
	finish();
}

Test(incidents_api, walks_every_legal_transition)
{
	start();
	char *a = declare("full path", "SEV-2", NULL);
	expect_status(a, "ack", "acknowledged", "im.incident.acknowledge");
	expect_status(a, "mitigate", "mitigated", "im.incident.mitigate");
	expect_status(a, "resolve", "resolved", "im.incident.resolve");
	expect_status(a, "close", "closed", "im.incident.close");
	char *b = declare("resolve at once", "SEV-3", NULL);
	expect_status(b, "resolve", "resolved", "im.incident.resolve");
	char *c = declare("ack then resolve", "SEV-3", NULL);
	expect_status(c, "acknowledge", "acknowledged",
		      "im.incident.acknowledge");
	expect_status(c, "resolve", "resolved", "im.incident.resolve");
	char *d = declare("mistake", "SEV-4", NULL);
	expect_status(d, "cancel", "canceled", "im.incident.cancel");
	/* Any state but duplicate may become a duplicate. */
	char body[64];
	snprintf(body, sizeof(body), "{\"duplicate_of\":\"%s\"}", b);
	json_t *j = act(200, a, "duplicate", body);
	cr_expect_str_eq(sat(j, "incident.status"), "duplicate");
	cr_expect_str_eq(sat(j, "incident.duplicate_of"), b);
	cr_expect_str_eq(sat(j, "event.type"), "im.incident.duplicate");
	json_decref(j);
	json_decref(act(200, d, "duplicate", body));
	free(a);
	free(b);
	free(c);
	free(d);
	finish();
}

Test(incidents_api, keeps_the_note_of_a_transition)
{
	start();
	char *id = declare("noted", "SEV-3", NULL);
	json_t *j = act(200, id, "ack", "{\"note\":\"on it, paging db team\"}");
	char *dump = json_dumps(at(j, "event.data"), 0);
	cr_expect(strstr(dump, "on it, paging db team"), "%s", dump);
	free(dump);
	json_decref(j);
	free(id);
	finish();
}

Test(incidents_api, refuses_an_illegal_transition_with_409)
{
	start();
	char *id = declare("still open", "SEV-3", NULL);
	json_t *j = act(409, id, "close", NULL);
	const char *msg = sat(j, "error.message");
	cr_expect(strstr(msg, "open"), "%s", msg);
	cr_expect(strstr(msg, "acknowledged"), "%s", msg);
	cr_expect(strstr(msg, "resolved"), "%s", msg);
	cr_expect(strstr(msg, "canceled"), "%s", msg);
	json_decref(j);
	json_decref(act(409, id, "mitigate", NULL));
	json_decref(act(200, id, "resolve", NULL));
	json_decref(act(409, id, "cancel", NULL));
	j = expect(200, "GET", "/api/v1/incidents/INC-1", NULL);
	cr_expect_str_eq(sat(j, "status"), "resolved", "nothing changed");
	json_decref(j);
	free(id);
	finish();
}

Test(incidents_api, checks_the_target_of_a_duplicate)
{
	start();
	char *id = declare("dup", "SEV-3", NULL);
	json_t *j = act(400, id, "duplicate", NULL);
	cr_expect(strstr(sat(j, "error.message"), "duplicate_of"), "%s",
		  sat(j, "error.message"));
	json_decref(j);
	j = act(400, id, "duplicate", "{\"duplicate_of\":7}");
	json_decref(j);
	reply r = call("POST", "/api/v1/incidents/INC-1/duplicate",
		       "{\"duplicate_of\":\"INC-42\"}");
	cr_expect(r.status == 404 || r.status == 400, "%ld %s", r.status,
		  r.body);
	cr_expect(strstr(r.body, "INC-42"), "%s", r.body);
	reply_free(&r);
	r = call("POST", "/api/v1/incidents/INC-1/duplicate",
		 "{\"duplicate_of\":\"INC-1\"}");
	cr_expect(r.status == 400 || r.status == 409, "%ld %s", r.status,
		  r.body);
	reply_free(&r);
	j = expect(200, "GET", "/api/v1/incidents/INC-1", NULL);
	cr_expect_str_eq(sat(j, "status"), "open");
	json_decref(j);
	free(id);
	finish();
}

Test(incidents_api, adds_notes)
{
	start();
	char *id = declare("notes", "SEV-3", NULL);
	json_t *j = act(200, id, "note", "{\"text\":\"restarted the pods\"}");
	cr_expect_str_eq(sat(j, "event.type"), "im.incident.note");
	cr_expect_str_eq(sat(j, "incident.status"), "open");
	json_decref(j);
	json_decref(act(400, id, "note", NULL));
	json_decref(act(400, id, "note", "{\"text\":\"\"}"));
	json_decref(act(400, id, "note", "{\"note\":\"wrong key\"}"));
	free(id);
	finish();
}

static const char *patch_type(const char *body)
{
	static char type[64];
	json_t *j = expect(200, "PATCH", "/api/v1/incidents/INC-1", body);
	snprintf(type, sizeof(type), "%s", sat(j, "event.type"));
	json_decref(j);
	return type;
}

Test(incidents_api, patches_fields_with_their_own_events)
{
	start();
	free(declare("before", "SEV-3", NULL));
	cr_expect_str_eq(patch_type("{\"severity\":\"SEV-1\"}"),
			 "im.incident.severity");
	cr_expect_str_eq(patch_type("{\"commander\":\"alice\"}"),
			 "im.incident.assign");
	cr_expect_str_eq(patch_type("{\"title\":\"after\"}"),
			 "im.incident.update");
	json_t *j = expect(200, "GET", "/api/v1/incidents/INC-1", NULL);
	cr_expect_str_eq(sat(j, "severity"), "SEV-1");
	cr_expect_str_eq(sat(j, "commander"), "alice");
	cr_expect_str_eq(sat(j, "title"), "after");
	json_decref(j);
	json_decref(expect(400, "PATCH", "/api/v1/incidents/INC-1",
			   "{\"severity\":\"SEV-9\"}"));
	json_decref(expect(404, "PATCH", "/api/v1/incidents/INC-9",
			   "{\"title\":\"x\"}"));
	finish();
}

Test(incidents_api, keeps_the_timeline_in_order)
{
	start();
	char *id = declare("ordered", "SEV-3", NULL);
	json_decref(act(200, id, "ack", NULL));
	json_decref(act(200, id, "note", "{\"text\":\"looking\"}"));
	json_decref(
	    expect(200, "PATCH", "/api/v1/incidents/INC-1",
		   "{\"commander\":\"bob\"}"));
	json_decref(act(200, id, "resolve", NULL));
	json_t *j = expect(200, "GET", "/api/v1/incidents/INC-1/timeline",
			   NULL);
	static const char *const want[] = {
	    "im.incident.declare", "im.incident.acknowledge",
	    "im.incident.note", "im.incident.assign", "im.incident.resolve"};
	json_t *items = json_object_get(j, "items");
	cr_assert_eq(json_array_size(items), 5, "%zu events",
		     json_array_size(items));
	json_int_t last = 0;
	for (size_t i = 0; i < 5; i++) {
		json_t *ev = json_array_get(items, i);
		cr_expect_str_eq(sat(ev, "type"), want[i]);
		cr_expect_str_eq(sat(ev, "subject"), "INC-1");
		json_int_t seq = json_integer_value(at(ev, "sequence"));
		cr_expect_gt(seq, last, "sequence grows");
		last = seq;
	}
	json_decref(j);
	json_decref(
	    expect(404, "GET", "/api/v1/incidents/INC-5/timeline", NULL));
	free(id);
	finish();
}

static reply with_key(const char *path, const char *body, const char *key)
{
	char h[300];
	snprintf(h, sizeof(h), "Idempotency-Key: %s", key);
	return http(&s, false, "POST", path, body, strlen(body),
		    HDRS(JSON_CT, h));
}

Test(incidents_api, replays_an_idempotency_key)
{
	start();
	const char *body = "{\"title\":\"once\"}";
	reply r1 = with_key("/api/v1/incidents", body, "k-1");
	reply r2 = with_key("/api/v1/incidents", body, "k-1");
	cr_expect_eq(r1.status, 201, "%s", r1.body);
	cr_expect_eq(r2.status, 201, "%s", r2.body);
	cr_expect_null(strcasestr(r1.headers, "Idempotent-Replayed"));
	cr_expect(strcasestr(r2.headers, "Idempotent-Replayed: true"), "%s",
		  r2.headers);
	json_t *a = parse(&r1), *b = parse(&r2);
	cr_expect_str_eq(sat(a, "event.id"), sat(b, "event.id"));
	cr_expect_str_eq(sat(b, "incident.id"), "INC-1");
	json_decref(a);
	json_decref(b);
	reply_free(&r1);
	reply_free(&r2);
	r1 = with_key("/api/v1/incidents", body, "k-2");
	cr_expect_eq(r1.status, 201);
	cr_expect(strstr(r1.body, "\"INC-2\""), "%s", r1.body);
	reply_free(&r1);
	cr_expect_eq(count_items(""), 2);
	/* A replayed transition answers as the first time, not with 409. */
	r1 = with_key("/api/v1/incidents/INC-1/ack", "{}", "k-3");
	r2 = with_key("/api/v1/incidents/INC-1/ack", "{}", "k-3");
	cr_expect_eq(r1.status, 200, "%s", r1.body);
	cr_expect_eq(r2.status, 200, "%s", r2.body);
	cr_expect(strcasestr(r2.headers, "Idempotent-Replayed: true"));
	reply_free(&r1);
	reply_free(&r2);
	json_t *j = expect(200, "GET", "/api/v1/incidents/INC-1/timeline",
			   NULL);
	cr_expect_eq(json_array_size(json_object_get(j, "items")), 2);
	json_decref(j);
	char key[260];
	memset(key, 'k', 201);
	key[201] = '\0';
	r1 = with_key("/api/v1/incidents", body, key);
	cr_expect_eq(r1.status, 400, "%s", r1.body);
	cr_expect(strstr(r1.body, "200"), "%s", r1.body);
	reply_free(&r1);
	finish();
}

static void expect_error(long status, const char *body, const char *needle)
{
	json_t *j = expect(status, "POST", "/api/v1/incidents", body);
	const char *msg = sat(j, "error.message");
	cr_expect(msg && strstr(msg, needle), "'%s' not in: %s", needle, msg);
	json_decref(j);
}

Test(incidents_api, rejects_bad_input_without_crashing)
{
	start();
	expect_error(400, "{\"title\":\"x\",\"severity\":\"SEV-9\"}", "SEV-1");
	expect_error(400, "{\"severity\":\"SEV-1\"}", "title");
	expect_error(400, "{\"title\":\"   \"}", "title");
	expect_error(400, "{\"title\":\"x\",", "invalid JSON at line 1 column");
	expect_error(400, "{\n\"title\": nope}", "line 2");
	expect_error(400, "[1,2]", "object");
	char title[400];
	memset(title, 'a', 300);
	title[300] = '\0';
	char body[512];
	snprintf(body, sizeof(body), "{\"title\":\"%s\"}", title);
	expect_error(400, body, "200");
	reply r = http(&s, false, "POST", "/api/v1/incidents",
		       "{\"title\":\"x\"}", 13,
		       HDRS("Content-Type: text/plain"));
	cr_expect_eq(r.status, 415, "%s", r.body);
	cr_expect(strstr(r.body, "application/json"), "%s", r.body);
	reply_free(&r);
	r = http(&s, false, "POST", "/api/v1/incidents", "{\"title\":\"x\"}",
		 13, HDRS("Content-Type: application/json; charset=utf-8"));
	cr_expect_eq(r.status, 201, "charset is fine: %s", r.body);
	reply_free(&r);
	expect_health();
	cr_expect_eq(count_items(""), 1, "no bad request wrote anything");
	finish();
}

Test(incidents_api, refuses_a_10_mb_title_with_413)
{
	start();
	size_t n = 10 * 1024 * 1024;
	char *body = malloc(n + 32);
	cr_assert(body);
	memcpy(body, "{\"title\":\"", 10);
	memset(body + 10, 'x', n);
	memcpy(body + 10 + n, "\"}", 3);
	reply r = http(&s, false, "POST", "/api/v1/incidents", body,
		       strlen(body), HDRS(JSON_CT, "Expect: 100-continue"));
	cr_expect_eq(r.status, 413, "%s", r.body);
	reply_free(&r);
	free(body);
	expect_health();
	cr_expect_eq(count_items(""), 0);
	finish();
}

Test(incidents_api, requires_a_token_when_api_tokens_are_set)
{
	srv_conf(&s, "20-tokens.yaml",
		 "server:\n  api_tokens: [\"tok-alpha-1\", \"tok-beta-2\"]\n");
	start();
	const char *body = "{\"title\":\"auth\"}";
	reply r = http(&s, false, "POST", "/api/v1/incidents", body,
		       strlen(body), HDRS(JSON_CT));
	cr_expect_eq(r.status, 401, "%s", r.body);
	cr_expect(strstr(r.body, "bearer token"), "%s", r.body);
	reply_free(&r);
	r = http(&s, false, "GET", "/api/v1/incidents/INC-1/timeline", NULL,
		 0, HDRS("Authorization: Bearer wrong"));
	cr_expect_eq(r.status, 401, "%s", r.body);
	reply_free(&r);
	r = http(&s, false, "POST", "/api/v1/incidents", body, strlen(body),
		 HDRS(JSON_CT, "Authorization: Bearer tok-beta-2",
		      "X-Im-Actor: carol"));
	cr_expect_eq(r.status, 201, "%s", r.body);
	json_t *j = parse(&r);
	cr_expect_str_eq(sat(j, "event.data.actor.id"), "api-token-2");
	cr_expect_str_eq(sat(j, "event.data.actor.name"), "carol");
	json_decref(j);
	reply_free(&r);
	expect_health();
	finish();
}

/* An Idempotency-Key is the caller's: another token's request with the
 * same key runs as its own, and a key reused with another body is a 422
 * that says so, never the first body's answer. */
Test(incidents_api, idempotency_keys_are_per_caller_and_per_body)
{
	srv_conf(&s, "20-tokens.yaml",
		 "server:\n  api_tokens: [\"tok-alpha-1\", \"tok-beta-2\"]\n");
	start();
	const char *one = "{\"title\":\"first\"}", *two = "{\"title\":\"other\"}";
	reply a = http(&s, false, "POST", "/api/v1/incidents", one, strlen(one),
		       HDRS(JSON_CT, "Authorization: Bearer tok-alpha-1",
			    "Idempotency-Key: shared"));
	cr_expect_eq(a.status, 201, "%s", a.body);
	reply b = http(&s, false, "POST", "/api/v1/incidents", one, strlen(one),
		       HDRS(JSON_CT, "Authorization: Bearer tok-beta-2",
			    "Idempotency-Key: shared"));
	cr_expect_eq(b.status, 201, "%s", b.body);
	cr_expect_null(strcasestr(b.headers, "Idempotent-Replayed"),
		       "another caller got the first caller's answer");
	cr_expect(strstr(b.body, "\"INC-2\""), "%s", b.body);
	reply c = http(&s, false, "POST", "/api/v1/incidents", two, strlen(two),
		       HDRS(JSON_CT, "Authorization: Bearer tok-alpha-1",
			    "Idempotency-Key: shared"));
	cr_expect_eq(c.status, 422, "%s", c.body);
	cr_expect(strstr(c.body, "different request"), "%s", c.body);
	cr_expect(strstr(c.body, "another body"), "%s", c.body);
	reply d = http(&s, false, "POST", "/api/v1/incidents", one, strlen(one),
		       HDRS(JSON_CT, "Authorization: Bearer tok-alpha-1",
			    "Idempotency-Key: shared"));
	cr_expect_eq(d.status, 201, "%s", d.body);
	cr_expect(strcasestr(d.headers, "Idempotent-Replayed: true"), "%s",
		  d.headers);
	cr_expect(strstr(d.body, "\"INC-1\""), "%s", d.body);
	reply_free(&a);
	reply_free(&b);
	reply_free(&c);
	reply_free(&d);
	finish();
}
