/* `im declare` and `im incident ...` against the real server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "harness.h"

static srv s;
static char *out, *err;

static void setup(void)
{
	srv_init(&s);
	out = err = NULL;
}

static void teardown(void)
{
	free(out);
	free(err);
	srv_cleanup(&s);
}

TestSuite(incidents_cli, .init = setup, .fini = teardown, .timeout = 90);

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

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

/* Runs `im ...`, keeping stdout/stderr in out/err for the checks. */
static int run(const char *const *args)
{
	free(out);
	free(err);
	return cli(&s, &out, &err, args);
}

static json_t *out_json(void)
{
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	cr_assert(j, "--json output does not parse (%s): %s", je.text, out);
	return j;
}

Test(incidents_cli, declare_prints_the_id_and_url)
{
	start();
	cr_expect_eq(run(ARGS("declare", "--sev", "SEV-2", "--title",
			      "checkout is down", "--service", "checkout")),
		     0, "%s", err);
	char want[128];
	snprintf(want, sizeof(want),
		 "INC-1 declared: http://127.0.0.1:%u/api/v1/incidents/INC-1\n",
		 s.port);
	cr_expect_str_eq(out, want);
	cr_expect_eq(run(ARGS("declare", "--severity", "sev1", "db on fire")), 0,
		     "%s", err);
	cr_expect(strstr(out, "INC-2 declared: "), "%s", out);
	cr_expect_eq(run(ARGS("incident", "show", "INC-2", "--json")), 0);
	json_t *j = out_json();
	cr_expect_str_eq(
	    json_string_value(json_object_get(json_object_get(j, "incident"),
					      "severity")),
	    "SEV-1");
	json_decref(j);
	finish();
}

Test(incidents_cli, declare_uses_the_public_url)
{
	srv_conf(&s, "20-url.yaml",
		 "server:\n  public_url: https://im.example.com\n");
	start();
	cr_expect_eq(run(ARGS("declare", "--title", "x")), 0, "%s", err);
	cr_expect_str_eq(out,
			 "INC-1 declared: https://im.example.com/incidents/"
			 "INC-1\n");
	finish();
}

Test(incidents_cli, lists_incidents_in_a_table)
{
	start();
	cr_assert_eq(run(ARGS("declare", "--title", "payments slow",
			      "--service", "payments", "--commander",
			      "alice")),
		     0, "%s", err);
	cr_assert_eq(run(ARGS("declare", "--title", "search down", "--sev",
			      "SEV-1")),
		     0, "%s", err);
	cr_expect_eq(run(ARGS("incident", "list")), 0, "%s", err);
	cr_expect(strstr(out, "ID"), "%s", out);
	cr_expect(strstr(out, "SEV"), "%s", out);
	cr_expect(strstr(out, "STATUS"), "%s", out);
	cr_expect(strstr(out, "AGE"), "%s", out);
	cr_expect(strstr(out, "COMMANDER"), "%s", out);
	cr_expect(strstr(out, "INC-1"), "%s", out);
	cr_expect(strstr(out, "payments slow"), "%s", out);
	cr_expect(strstr(out, "alice"), "%s", out);
	cr_expect(strstr(out, "0s") || strstr(out, "1s"), "age: %s", out);
	cr_expect(strstr(out, "INC-2") < strstr(out, "INC-1"), "newest first");
	cr_expect_eq(run(ARGS("incident", "list", "--sev", "SEV-1")), 0);
	cr_expect_null(strstr(out, "INC-1 "), "%s", out);
	cr_expect(strstr(out, "INC-2"), "%s", out);
	cr_expect_eq(run(ARGS("incident", "list", "--json")), 0);
	json_t *j = out_json();
	cr_expect_eq(json_array_size(json_object_get(j, "items")), 2);
	json_decref(j);
	finish();
}

Test(incidents_cli, lists_every_page_with_all)
{
	start();
	for (int i = 0; i < 5; i++)
		cr_assert_eq(run(ARGS("declare", "--title", "many")), 0);
	cr_expect_eq(run(ARGS("incident", "list", "--limit", "2")), 0);
	cr_expect(strstr(err, "--cursor"), "hint for more: %s", err);
	cr_expect_null(strstr(out, "INC-1 "), "%s", out);
	cr_expect_eq(run(ARGS("incident", "list", "--limit", "2", "--all",
			      "--json")),
		     0, "%s", err);
	json_t *j = out_json();
	cr_expect_eq(json_array_size(json_object_get(j, "items")), 5);
	cr_expect(json_is_null(json_object_get(j, "next_cursor")));
	json_decref(j);
	finish();
}

Test(incidents_cli, acks_then_resolves)
{
	start();
	cr_assert_eq(run(ARGS("declare", "--title", "flaky")), 0);
	cr_expect_eq(run(ARGS("incident", "ack", "INC-1", "--note",
			      "looking into it")),
		     0, "%s", err);
	cr_expect_str_eq(out, "INC-1 is now acknowledged\n");
	cr_expect_eq(run(ARGS("incident", "resolve", "1")), 0, "%s", err);
	cr_expect_str_eq(out, "INC-1 is now resolved\n");
	cr_expect_eq(run(ARGS("incident", "note", "INC-1", "root", "cause:",
			      "dns")),
		     0, "%s", err);
	cr_expect_eq(run(ARGS("incident", "show", "INC-1")), 0, "%s", err);
	cr_expect(strstr(out, "resolved"), "%s", out);
	cr_expect(strstr(out, "Timeline"), "%s", out);
	cr_expect(strstr(out, "declare"), "%s", out);
	cr_expect(strstr(out, "acknowledge"), "%s", out);
	cr_expect(strstr(out, "looking into it"), "%s", out);
	cr_expect(strstr(out, "root cause: dns"), "%s", out);
	cr_expect_eq(run(ARGS("incident", "timeline", "INC-1", "--json")), 0);
	json_t *j = out_json();
	cr_expect_eq(json_array_size(json_object_get(j, "items")), 4);
	json_decref(j);
	finish();
}

Test(incidents_cli, marks_a_duplicate_and_cancels)
{
	start();
	cr_assert_eq(run(ARGS("declare", "--title", "first")), 0);
	cr_assert_eq(run(ARGS("declare", "--title", "second")), 0);
	cr_assert_eq(run(ARGS("declare", "--title", "third")), 0);
	cr_expect_eq(run(ARGS("incident", "duplicate", "INC-2", "--of",
			      "INC-1")),
		     0, "%s", err);
	cr_expect_str_eq(out, "INC-2 is now duplicate\n");
	cr_expect_eq(run(ARGS("incident", "cancel", "INC-3", "--json")), 0);
	json_t *j = out_json();
	cr_expect_str_eq(json_string_value(json_object_get(
			     json_object_get(j, "incident"), "status")),
			 "canceled");
	json_decref(j);
	finish();
}

Test(incidents_cli, fails_an_illegal_transition_with_the_legal_states)
{
	start();
	cr_assert_eq(run(ARGS("declare", "--title", "open one")), 0);
	cr_expect_eq(run(ARGS("incident", "close", "INC-1")), 1);
	cr_expect(strncmp(err, "im: ", 4) == 0, "%s", err);
	cr_expect(strstr(err, "acknowledged"), "%s", err);
	cr_expect(strstr(err, "resolved"), "%s", err);
	cr_expect_eq(run(ARGS("incident", "show", "INC-9")), 1);
	cr_expect(strstr(err, "INC-9"), "%s", err);
	finish();
}

Test(incidents_cli, exits_2_on_usage_errors)
{
	start();
	cr_expect_eq(run(ARGS("declare")), 2);
	cr_expect(strstr(err, "title"), "%s", err);
	cr_expect_eq(run(ARGS("declare", "--sev", "SEV-9", "--title", "x")), 2);
	cr_expect(strstr(err, "SEV-9"), "%s", err);
	cr_expect(strstr(err, "SEV-1"), "%s", err);
	cr_expect(strstr(err, "SEV-4"), "%s", err);
	cr_expect_eq(run(ARGS("declare", "--title", "x", "y")), 2);
	cr_expect_eq(run(ARGS("incident", "duplicate", "INC-1")), 2);
	cr_expect(strstr(err, "--of"), "%s", err);
	cr_expect_eq(run(ARGS("incident", "ack")), 2);
	cr_expect_eq(run(ARGS("incident", "note", "INC-1")), 2);
	cr_expect_eq(run(ARGS("incident", "list", "--bogus")), 2);
	cr_expect_eq(run(ARGS("incident", "list", "--json")), 0);
	json_t *j = out_json();
	cr_expect_eq(json_array_size(json_object_get(j, "items")), 0,
		     "nothing was declared");
	json_decref(j);
	finish();
}

Test(incidents_cli, fails_clearly_without_a_server)
{
	cr_expect_eq(run(ARGS("incident", "list")), 1);
	cr_expect(strstr(err, "cannot reach the im server"), "%s", err);
}
