/* The `im` command line against a real server and real config folders. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include <im/types.h>

#include "harness.h"

static srv s;

static void setup(void)
{
	srv_init(&s);
	srv_conf(&s, "10-plugins.yaml",
		 "plugins:\n  instances:\n"
		 "    - {id: echo, module: echo}\n"
		 "    - {id: g, module: good, config: {greeting: hi}}\n"
		 "    - {id: u, module: unconf}\n");
}

static void teardown(void)
{
	srv_cleanup(&s);
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 60);

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

Test(cli, prints_the_version)
{
	char *out, *err;
	cr_expect_eq(cli(&s, &out, &err, ARGS("version")), 0);
	char want[64];
	snprintf(want, sizeof want, "im 0.1.0 (plugin ABI %d.%d)",
		 IM_ABI_MAJOR, IM_ABI_MINOR);
	cr_expect(strstr(out, want), "%s", out);
	free(out);
	free(err);
	cr_expect_eq(cli(&s, &out, &err, ARGS("--version")), 0);
	cr_expect(strstr(out, "plugin ABI"), "%s", out);
	free(out);
	free(err);
}

Test(cli, exits_2_on_usage_errors)
{
	char *out, *err;
	cr_expect_eq(cli(&s, &out, &err, ARGS("frobnicate")), 2);
	cr_expect(strstr(err, "unknown command 'frobnicate'"), "%s", err);
	free(out);
	free(err);
	cr_expect_eq(cli(&s, &out, &err, ARGS("plugins", "info")), 2);
	free(out);
	free(err);
	cr_expect_eq(cli(&s, &out, &err, ARGS("--bogus")), 2);
	free(out);
	free(err);
}

Test(cli, has_help_everywhere)
{
	char *out, *err;
	cr_expect_eq(cli(&s, &out, &err, ARGS("--help")), 0);
	cr_expect(strstr(out, "plugins reload"), "%s", out);
	free(out);
	free(err);
	cr_expect_eq(cli(&s, &out, &err, ARGS("plugins", "list", "--help")), 0);
	cr_expect(strstr(out, "usage: im plugins list"), "%s", out);
	free(out);
	free(err);
}

Test(cli, validates_a_good_config)
{
	char *out, *err;
	cr_expect_eq(cli(&s, &out, &err, ARGS("config", "validate")), 0,
		     "%s", err);
	cr_expect(strstr(out, "OK (3 plugin instances)"), "%s", out);
	free(out);
	free(err);
}

Test(cli, reports_config_errors_with_file_line_and_key)
{
	char *out, *err;
	srv_conf(&s, "30-bad.yaml", "server:\n  lisen: 1\n");
	cr_expect_eq(cli(&s, &out, &err, ARGS("config", "validate")), 1);
	cr_expect(strstr(err, "30-bad.yaml:2"), "%s", err);
	cr_expect(strstr(err, "lisen"), "%s", err);
	free(out);
	free(err);
	srv_conf(&s, "30-bad.yaml", "server: [unclosed\n");
	cr_expect_eq(cli(&s, &out, &err, ARGS("config", "validate")), 1);
	cr_expect(strstr(err, "30-bad.yaml:"), "%s", err);
	free(out);
	free(err);
	srv_conf(&s, "30-bad.yaml",
		 "server:\n  public_url: ${IM_SURELY_UNSET_VAR}\n");
	cr_expect_eq(cli(&s, &out, &err, ARGS("config", "validate")), 1);
	cr_expect(strstr(err, "IM_SURELY_UNSET_VAR"), "%s", err);
	free(out);
	free(err);
	srv_conf(&s, "30-bad.yaml",
		 "plugins:\n  instances:\n    - id: g\n      module: good\n"
		 "      config: {greeting: [1, 2]}\n");
	cr_expect_eq(cli(&s, &out, &err, ARGS("config", "validate")), 1);
	cr_expect(strstr(err, "greeting"), "%s", err);
	free(out);
	free(err);
}

Test(cli, lists_plugins_of_the_running_server)
{
	cr_assert(srv_start(&s), "%s", srv_log(&s));
	char *out, *err;
	cr_expect_eq(cli(&s, &out, &err, ARGS("plugins", "list")), 0, "%s", err);
	cr_expect(strstr(out, "running"), "%s", out);
	cr_expect(strstr(out, "unconfigured"), "%s", out);
	cr_expect(strstr(out, "TEST_TOKEN"), "reason shown: %s", out);
	free(out);
	free(err);
	cr_expect_eq(cli(&s, &out, &err, ARGS("plugins", "list", "--json")), 0);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	cr_expect(json_is_array(j), "%s", out);
	cr_expect_eq(json_array_size(j), 3);
	json_decref(j);
	free(out);
	free(err);
}

Test(cli, lists_plugins_from_the_config_without_a_server)
{
	char *out, *err;
	cr_expect_eq(cli(&s, &out, &err, ARGS("plugins", "list")), 0);
	cr_expect(strstr(err, "cannot reach the im server"), "%s", err);
	cr_expect(strstr(out, "not running"), "%s", out);
	free(out);
	free(err);
}

Test(cli, shows_a_plugins_config_keys)
{
	char *out, *err;
	cr_expect_eq(cli(&s, &out, &err, ARGS("plugins", "info", "good")), 0,
		     "%s", err);
	cr_expect(strstr(out, "greeting"), "%s", out);
	cr_expect(strstr(out, "required"), "%s", out);
	cr_expect(strstr(out, "secret"), "%s", out);
	cr_expect(strstr(out, "duration"), "%s", out);
	free(out);
	free(err);
	cr_expect_eq(cli(&s, &out, &err, ARGS("plugins", "info", "bad_major")),
		     1);
	cr_expect(strstr(err, "rebuild"), "%s", err);
	free(out);
	free(err);
}

Test(cli, fails_reload_clearly_without_a_server)
{
	char *out, *err;
	cr_expect_eq(cli(&s, &out, &err, ARGS("plugins", "reload")), 1);
	cr_expect(strstr(err, "is `im serve` running?"), "%s", err);
	free(out);
	free(err);
}

Test(cli, refuses_subscriptions_to_unknown_connectors_or_channel_names)
{
	char *out, *err;
	srv_conf(&s, "40-subs.yaml",
		 "subscriptions:\n"
		 "  - {connector: g, channel: C1}\n"
		 "  - {connector: nobody, channel: C2}\n");
	cr_expect_eq(cli(&s, &out, &err, ARGS("config", "validate")), 1);
	cr_expect(strstr(err, "40-subs.yaml:3"), "%s", err);
	cr_expect(strstr(err, "nobody"), "%s", err);
	free(out);
	free(err);
	srv_conf(&s, "40-subs.yaml",
		 "subscriptions:\n  - {connector: g, channel: \"#general\"}\n");
	cr_expect_eq(cli(&s, &out, &err, ARGS("config", "validate")), 1);
	cr_expect(strstr(err, "40-subs.yaml:2"), "%s", err);
	free(out);
	free(err);
	srv_conf(&s, "40-subs.yaml",
		 "subscriptions:\n  - {connector: g, channel: C0OK}\n");
	cr_expect_eq(cli(&s, &out, &err, ARGS("config", "validate")), 0, "%s",
		     err);
	free(out);
	free(err);
}
