/*
 * core/config: loading, merging, ${VAR}, locations, schema and key tables.
 * Each test that needs files writes them into its own mkdtemp folder.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <im/types.h>

#include "config/config.h"

static char tmp[64];
static char err[1024];

static void make_dir(void)
{
	snprintf(tmp, sizeof tmp, "/tmp/im-config-test-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	err[0] = '\0';
}

static void remove_dir(void)
{
	DIR *d = opendir(tmp);
	struct dirent *e;
	char path[PATH_MAX];
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof path, "%s/%s", tmp, e->d_name);
		if (unlink(path))
			rmdir(path);
	}
	closedir(d);
	rmdir(tmp);
}

static void put(const char *name, const char *text)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", tmp, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
}

/* "<tmp>/<name>:<line>" */
static const char *at(const char *name, int line)
{
	static char buf[128];
	snprintf(buf, sizeof buf, "%s/%s:%d", tmp, name, line);
	return buf;
}

static im_config *load(void)
{
	im_config *cfg = im_config_load_dir(tmp, err, sizeof err);
	cr_assert_not_null(cfg, "load failed: %s", err);
	return cfg;
}

static void load_fails(void)
{
	im_config *cfg = im_config_load_dir(tmp, err, sizeof err);
	cr_assert_null(cfg);
	cr_assert_neq(err[0], '\0');
	cr_assert_not_null(memchr(err, '\0', sizeof err));
}

/* load_string that must fail; the message is in err. */
static void text_fails(const char *text)
{
	im_config *cfg = im_config_load_string("t.yaml", text, err, sizeof err);
	cr_assert_null(cfg, "loaded although it should fail: %s", text);
}

static im_config *text(const char *t)
{
	im_config *cfg = im_config_load_string("t.yaml", t, err, sizeof err);
	cr_assert_not_null(cfg, "load_string failed: %s", err);
	return cfg;
}

#define assert_err_has(s) \
	cr_assert_not_null(strstr(err, (s)), "error \"%s\" lacks \"%s\"", err, (s))

TestSuite(config, .init = make_dir, .fini = remove_dir);

/* --- loading and merging ------------------------------------------------ */

Test(config, lets_later_files_win_in_name_order)
{
	put("20-b.yaml", "server:\n  listen: 0.0.0.0:2000\n");
	put("10-a.yaml", "server:\n  listen: 127.0.0.1:1000\n  threads: 4\n");
	im_config *cfg = load();
	cr_assert_str_eq(im_config_string(cfg, "server.listen", NULL),
			 "0.0.0.0:2000");
	cr_assert_eq(im_config_int(cfg, "server.threads", 0), 4);
	cr_assert_str_eq(im_config_where(cfg, "server.listen"),
			 at("20-b.yaml", 2));
	cr_assert_str_eq(im_config_where(cfg, "server.threads"),
			 at("10-a.yaml", 3));
	im_config_free(cfg);
}

Test(config, replaces_lists_instead_of_appending)
{
	put("00.yaml", "plugins:\n  dirs:\n    - /a\n    - /b\n");
	put("01.yml", "plugins:\n  dirs: [/c]\n");
	im_config *cfg = load();
	const json_t *dirs = im_config_get(cfg, "plugins.dirs");
	cr_assert_eq(json_array_size(dirs), 1);
	cr_assert_str_eq(im_config_string(cfg, "plugins.dirs[0]", NULL), "/c");
	cr_assert_null(im_config_where(cfg, "plugins.dirs[1]"));
	cr_assert_str_eq(im_config_where(cfg, "plugins.dirs[0]"),
			 at("01.yml", 2));
	im_config_free(cfg);
}

Test(config, merges_instances_by_id)
{
	put("10-slack.yaml",
	    "plugins:\n"
	    "  instances:\n"
	    "    - id: slack\n"
	    "      module: slack\n"
	    "      config:\n"
	    "        mode: http\n"
	    "        default_channel: C1\n"
	    "    - {id: mustache, module: mustache}\n");
	put("20-prod.yaml",
	    "plugins:\n"
	    "  instances:\n"
	    "    - id: slack\n"
	    "      config:\n"
	    "        mode: socket\n"
	    "    - {id: teams, module: teams}\n");
	im_config *cfg = load();
	const json_t *inst = im_config_get(cfg, "plugins.instances");
	cr_assert_eq(json_array_size(inst), 3);
	cr_assert_str_eq(im_config_string(cfg, "plugins.instances[slack].module",
					  NULL), "slack");
	cr_assert_str_eq(im_config_string(
		cfg, "plugins.instances[slack].config.mode", NULL), "socket");
	cr_assert_str_eq(im_config_string(
		cfg, "plugins.instances[slack].config.default_channel", NULL),
		"C1");
	cr_assert_str_eq(im_config_string(cfg, "plugins.instances[2].id", NULL),
			 "teams");
	/* each key keeps the file that defined it last */
	cr_assert_str_eq(im_config_where(cfg,
		"plugins.instances[slack].config.mode"), at("20-prod.yaml", 5));
	cr_assert_str_eq(im_config_where(cfg,
		"plugins.instances[slack].config.default_channel"),
		at("10-slack.yaml", 7));
	cr_assert_str_eq(im_config_where(cfg, "plugins.instances[slack].module"),
			 at("10-slack.yaml", 4));
	cr_assert_str_eq(im_config_where(cfg, "plugins.instances[teams]"),
			 at("20-prod.yaml", 6));
	im_config_free(cfg);
}

Test(config, records_file_and_line_of_nested_keys)
{
	put("a.yaml",
	    "plugins:\n"
	    "  dirs: [/x,\n"
	    "         /y]\n"
	    "subscriptions:\n"
	    "  - connector: slack\n"
	    "    channel: C0123ABC\n");
	im_config *cfg = load();
	cr_assert_str_eq(im_config_where(cfg, "plugins.dirs[1]"), at("a.yaml", 3));
	cr_assert_str_eq(im_config_where(cfg, "subscriptions[0].channel"),
			 at("a.yaml", 6));
	cr_assert_str_eq(im_config_where(cfg, "subscriptions[0]"), at("a.yaml", 5));
	cr_assert_null(im_config_where(cfg, "subscriptions[1]"));
	im_config_free(cfg);
}

Test(config, names_files_as_the_folder_was_given)
{
	char sub[PATH_MAX];
	snprintf(sub, sizeof sub, "%s/conf.d", tmp);
	cr_assert_eq(mkdir(sub, 0700), 0);
	cr_assert_eq(chdir(tmp), 0);
	FILE *f = fopen("conf.d/10-slack.yaml", "w");
	cr_assert_not_null(f);
	fputs("log:\n  level: loud\n", f);
	fclose(f);
	cr_assert_null(im_config_load_dir("conf.d", err, sizeof err));
	cr_assert_str_eq(err, "conf.d/10-slack.yaml:2: log.level: expected one "
			      "of debug, info, warn, error, got \"loud\"");
	unlink("conf.d/10-slack.yaml");
	rmdir("conf.d");
}

Test(config, reports_the_absolute_folder)
{
	put("a.yaml", "log: {level: info}\n");
	im_config *cfg = load();
	char real[PATH_MAX];
	cr_assert_not_null(realpath(tmp, real));
	cr_assert_str_eq(im_config_dir(cfg), real);
	im_config_free(cfg);
}

Test(config, reads_only_yaml_files_directly_in_the_folder)
{
	char sub[PATH_MAX];
	put("a.yaml", "log: {level: info}\n");
	put("b.txt", "log: {level: nonsense}\n");
	put(".hidden.yaml", "log: {level: nonsense}\n");
	put("c.yml", "log: {format: json}\n");
	snprintf(sub, sizeof sub, "%s/d", tmp);
	cr_assert_eq(mkdir(sub, 0700), 0);
	im_config *cfg = load();
	cr_assert_str_eq(im_config_string(cfg, "log.level", NULL), "info");
	cr_assert_str_eq(im_config_string(cfg, "log.format", NULL), "json");
	im_config_free(cfg);
}

Test(config, refuses_a_folder_without_yaml_files)
{
	put("readme.txt", "nothing\n");
	load_fails();
	assert_err_has(tmp);
	assert_err_has("no *.yaml");
}

Test(config, refuses_a_missing_folder)
{
	cr_assert_null(im_config_load_dir("/nonexistent/im-conf.d", err,
					  sizeof err));
	assert_err_has("/nonexistent/im-conf.d");
}

Test(config, reports_a_file_it_cannot_read)
{
	char link[PATH_MAX];
	put("a.yaml", "log: {level: info}\n");
	snprintf(link, sizeof link, "%s/b.yaml", tmp);
	cr_assert_eq(symlink("/nonexistent/target.yaml", link), 0);
	load_fails();
	assert_err_has("b.yaml: cannot read");
}

Test(config, accepts_an_empty_file)
{
	put("00-empty.yaml", "");
	put("01-comments.yaml", "# nothing yet\n");
	put("02.yaml", "log: {level: warn}\n");
	im_config *cfg = load();
	cr_assert_str_eq(im_config_string(cfg, "log.level", NULL), "warn");
	im_config_free(cfg);
}

Test(config, refuses_an_instance_without_an_id)
{
	put("10-p.yaml",
	    "plugins:\n"
	    "  instances:\n"
	    "    - {id: a, module: a}\n"
	    "    - {id: b, module: b}\n"
	    "    - module: c\n");
	load_fails();
	char want[640];
	snprintf(want, sizeof want, "%s: plugins.instances[2]: missing id",
		 at("10-p.yaml", 5));
	assert_err_has(want);
}

Test(config, refuses_two_instances_with_one_id_in_a_file)
{
	text_fails("plugins:\n  instances:\n    - {id: a, module: a}\n"
		   "    - {id: a, module: b}\n");
	assert_err_has("t.yaml:4: plugins.instances[a]: duplicate instance id");
}

/* --- YAML ----------------------------------------------------------------- */

Test(config, types_plain_scalars_and_keeps_quoted_ones_as_strings)
{
	im_config *cfg = text("a: true\nb: ~\nc: 42\nd: 1.5\ne: hello\n"
			      "f: '42'\ng: \"true\"\nh:\ni: -7\nj: 1e3\n"
			      "k: 127.0.0.1:8080\nl: |\n  block\n");
	const json_t *r = im_config_root(cfg);
	cr_assert(json_is_true(json_object_get(r, "a")));
	cr_assert(json_is_null(json_object_get(r, "b")));
	cr_assert_eq(json_integer_value(json_object_get(r, "c")), 42);
	cr_assert(json_is_real(json_object_get(r, "d")));
	cr_assert_float_eq(json_real_value(json_object_get(r, "d")), 1.5, 1e-12);
	cr_assert_str_eq(json_string_value(json_object_get(r, "e")), "hello");
	cr_assert_str_eq(json_string_value(json_object_get(r, "f")), "42");
	cr_assert_str_eq(json_string_value(json_object_get(r, "g")), "true");
	cr_assert(json_is_null(json_object_get(r, "h")));
	cr_assert_eq(json_integer_value(json_object_get(r, "i")), -7);
	cr_assert(json_is_real(json_object_get(r, "j")));
	cr_assert_str_eq(json_string_value(json_object_get(r, "k")),
			 "127.0.0.1:8080");
	cr_assert_str_eq(json_string_value(json_object_get(r, "l")), "block\n");
	im_config_free(cfg);
}

Test(config, reports_yaml_syntax_errors_with_file_line_and_column)
{
	put("10-bad.yaml", "server:\n  listen: [a, b\nlog: x\n");
	load_fails();
	assert_err_has(at("10-bad.yaml", 3));
	assert_err_has("YAML syntax error: ");
	assert_err_has("(while parsing a flow sequence)");
}

Test(config, refuses_anchors_and_aliases)
{
	text_fails("a: &x 1\nb: 2\n");
	assert_err_has("t.yaml:1: YAML anchors (&x) are not supported");
	text_fails("a: 1\nb:\n  - *x\n");
	assert_err_has("t.yaml:3:");
}

Test(config, refuses_tags)
{
	text_fails("a: 1\nb: !!str 2\n");
	assert_err_has("t.yaml:2: YAML tags (tag:yaml.org,2002:str)");
}

Test(config, refuses_several_documents_in_one_file)
{
	text_fails("a: 1\n---\nb: 2\n");
	assert_err_has("t.yaml:2: several YAML documents");
}

Test(config, refuses_a_duplicate_key)
{
	text_fails("server:\n  listen: a:1\n  threads: 2\n  listen: b:2\n");
	cr_assert_str_eq(err, "t.yaml:4: server.listen: duplicate key (first "
			      "defined at line 2)");
}

Test(config, refuses_a_top_level_that_is_not_a_mapping)
{
	text_fails("- a\n- b\n");
	assert_err_has("t.yaml:1: the top level must be a mapping");
	text_fails("just text\n");
	assert_err_has("t.yaml:1: the top level must be a mapping");
}

Test(config, refuses_keys_that_are_not_scalars)
{
	text_fails("a: 1\n? [x, y]\n: 2\n");
	assert_err_has("t.yaml:2: mapping keys must be plain text");
}

/* --- ${VAR} --------------------------------------------------------------- */

Test(config, expands_variables_and_defaults)
{
	setenv("IM_T_HOST", "10.0.0.1", 1);
	unsetenv("IM_T_NOPE");
	im_config *cfg = text("a: ${IM_T_HOST}:80\n"
			      "b: \"${IM_T_NOPE:-./var}/im.db\"\n"
			      "c: ${IM_T_NOPE:-${IM_T_HOST}}\n"
			      "d: cost $$5 and $HOME\n");
	cr_assert_str_eq(im_config_string(cfg, "a", NULL), "10.0.0.1:80");
	cr_assert_str_eq(im_config_string(cfg, "b", NULL), "./var/im.db");
	cr_assert_str_eq(im_config_string(cfg, "c", NULL), "10.0.0.1");
	cr_assert_str_eq(im_config_string(cfg, "d", NULL), "cost $5 and $HOME");
	im_config_free(cfg);
}

Test(config, types_an_expanded_plain_scalar_but_not_a_quoted_one)
{
	unsetenv("IM_T_PORT");
	setenv("IM_T_ON", "true", 1);
	im_config *cfg = text("port: ${IM_T_PORT:-8080}\n"
			      "quoted: '${IM_T_PORT:-8080}'\n"
			      "on: ${IM_T_ON}\n");
	cr_assert(json_is_integer(im_config_get(cfg, "port")));
	cr_assert_eq(im_config_int(cfg, "port", 0), 8080);
	cr_assert_str_eq(im_config_string(cfg, "quoted", NULL), "8080");
	cr_assert_eq(im_config_bool(cfg, "on", 0), 1);
	im_config_free(cfg);
}

Test(config, treats_an_empty_variable_as_set_but_uses_the_default)
{
	setenv("IM_T_EMPTY", "", 1);
	unsetenv("IM_T_UNSET");
	im_config *cfg = text("a: ${IM_T_EMPTY}\nb: ${IM_T_EMPTY:-d}\n"
			      "c: ${IM_T_UNSET:-}\n");
	cr_assert_str_eq(im_config_string(cfg, "a", NULL), "");
	cr_assert_str_eq(im_config_string(cfg, "b", NULL), "d");
	cr_assert_str_eq(im_config_string(cfg, "c", NULL), "");
	im_config_free(cfg);
}

Test(config, reports_an_unset_variable_with_file_line_and_key)
{
	unsetenv("SLACK_BOT_TOKEN_T");
	put("10-slack.yaml",
	    "plugins:\n"
	    "  instances:\n"
	    "    - id: slack\n"
	    "      module: slack\n"
	    "      config:\n"
	    "        bot_token: ${SLACK_BOT_TOKEN_T}\n");
	load_fails();
	char want[640];
	snprintf(want, sizeof want,
		 "%s: plugins.instances[slack].config.bot_token: environment "
		 "variable SLACK_BOT_TOKEN_T is not set; export it or write "
		 "${SLACK_BOT_TOKEN_T:-default}", at("10-slack.yaml", 6));
	cr_assert_str_eq(err, want);
}

Test(config, refuses_an_unterminated_reference)
{
	text_fails("server:\n  listen: ${IM_T_HOST:-x\n");
	assert_err_has("t.yaml:2: server.listen: unterminated \"${\"");
	text_fails("a: ${1BAD}\n");
	assert_err_has("t.yaml:1: a: cannot read \"${1BAD}\"");
}

/* --- core schema ---------------------------------------------------------- */

static const char example[] =
	"server:\n"
	"  listen: 127.0.0.1:8080\n"
	"  metrics_listen: 127.0.0.1:9090\n"
	"  public_url: http://localhost:8080\n"
	"  admin_token: ${IM_T_UNSET_ADMIN:-}\n"
	"  api_tokens: [\"${IM_T_UNSET_API:-}\"]\n"
	"  max_body: 1MiB\n"
	"  request_timeout: 30s\n"
	"  threads: 4\n"
	"storage:\n"
	"  path: ${IM_T_UNSET_DATA:-./var}/im.db\n"
	"log: {level: info, format: text}\n"
	"plugins:\n"
	"  dirs: [\"${IM_T_UNSET_DIR:-/usr/local/lib/im/plugins}\"]\n"
	"  instances:\n"
	"    - id: slack\n"
	"      module: slack\n"
	"      required: false\n"
	"      config:\n"
	"        mode: http\n"
	"        notification_channels: {SEV-1: C0CRITICAL, SEV-2: C0MAJOR}\n"
	"    - {id: mustache, module: mustache}\n"
	"    - {id: incident, module: incident-commands}\n"
	"chatops:\n"
	"  batch_window: 5s\n"
	"  critical_severities: [SEV-1, SEV-2]\n"
	"  templates_dir: templates\n"
	"subscriptions:\n"
	"  - connector: slack\n"
	"    channel: C0123ABC\n"
	"    events: [\"im.incident.*\"]\n"
	"    min_severity: SEV-4\n"
	"    services: []\n"
	"    mode: update\n";

Test(config, accepts_the_documented_example)
{
	put("00-example.yaml", example);
	im_config *cfg = load();
	cr_assert_str_eq(im_config_string(cfg, "storage.path", NULL),
			 "./var/im.db");
	cr_assert_str_eq(im_config_string(cfg, "server.admin_token", "x"), "");
	cr_assert_eq(im_config_size(cfg, "server.max_body", 0), 1048576);
	cr_assert_float_eq(im_config_duration(cfg, "chatops.batch_window", 0),
			   5.0, 1e-9);
	cr_assert_str_eq(im_config_string(cfg,
		"plugins.instances[incident].module", NULL), "incident-commands");
	cr_assert_eq(im_config_bool(cfg, "plugins.instances[slack].required", 1),
		     0);
	im_config_free(cfg);
}

Test(config, reports_an_unknown_key_with_the_known_keys)
{
	put("00.yaml", "server:\n  lisen: 127.0.0.1:8080\n");
	load_fails();
	char want[640];
	snprintf(want, sizeof want,
		 "%s: server.lisen: unknown key; known keys: listen, "
		 "metrics_listen, public_url, admin_token, api_tokens, max_body, "
		 "request_timeout, header_timeout, threads, max_connections, stream_memory", at("00.yaml", 2));
	cr_assert_str_eq(err, want);
}

Test(config, reports_an_unknown_section)
{
	im_config *cfg = text("log: {level: info}\nsevrer: {}\n");
	cr_assert_eq(im_config_check_core(cfg, err, sizeof err), IM_ECONFIG);
	assert_err_has("t.yaml:2: sevrer: unknown key; known keys: server, "
		       "storage, log, plugins, chatops, subscriptions");
	im_config_free(cfg);
}

Test(config, reports_a_wrong_type_at_the_key)
{
	im_config *cfg = text("plugins:\n  instances:\n    - id: slack\n"
			      "      module: slack\n      config: [a]\n");
	cr_assert_eq(im_config_check_core(cfg, err, sizeof err), IM_ECONFIG);
	cr_assert_str_eq(err, "t.yaml:5: plugins.instances[slack].config: "
			      "expected a mapping, got a list");
	im_config_free(cfg);

	cfg = text("server:\n  listen: [a]\n");
	cr_assert_eq(im_config_check_core(cfg, err, sizeof err), IM_ECONFIG);
	cr_assert_str_eq(err, "t.yaml:2: server.listen: expected a string, "
			      "got a list");
	im_config_free(cfg);
}

Test(config, checks_values_of_subscriptions_and_lists)
{
	im_config *cfg = text("subscriptions:\n  - connector: slack\n"
			      "    mode: shout\n");
	cr_assert_eq(im_config_check_core(cfg, err, sizeof err), IM_ECONFIG);
	assert_err_has("t.yaml:3: subscriptions[0].mode: expected one of "
		       "update, thread, post, got \"shout\"");
	im_config_free(cfg);

	cfg = text("chatops:\n  critical_severities: [SEV-1, SEV-9]\n");
	cr_assert_eq(im_config_check_core(cfg, err, sizeof err), IM_ECONFIG);
	assert_err_has("chatops.critical_severities[1]: expected one of SEV-1");
	im_config_free(cfg);

	cfg = text("subscriptions:\n  - channel: 12345\n");
	cr_assert_eq(im_config_check_core(cfg, err, sizeof err), IM_ECONFIG);
	assert_err_has("subscriptions[0].channel: expected a string, got an "
		       "integer; put it in quotes");
	im_config_free(cfg);
}

Test(config, refuses_module_names_that_could_escape_the_plugin_folder)
{
	im_config *cfg = text("plugins:\n  instances:\n"
			      "    - {id: x, module: ../evil}\n");
	cr_assert_eq(im_config_check_core(cfg, err, sizeof err), IM_ECONFIG);
	assert_err_has("t.yaml:3: plugins.instances[x].module: \"../evil\" is "
		       "not a valid name");
	im_config_free(cfg);
}

Test(config, requires_a_module_for_every_instance)
{
	im_config *cfg = text("plugins:\n  instances:\n    - id: x\n");
	cr_assert_eq(im_config_check_core(cfg, err, sizeof err), IM_ECONFIG);
	cr_assert_str_eq(err, "t.yaml:3: plugins.instances[x]: missing "
			      "required key module");
	im_config_free(cfg);
}

Test(config, checks_sizes_durations_and_addresses)
{
	static const char *bad[] = {
		"server: {max_body: lots}\n", "server: {max_body: -1}\n",
		"server: {request_timeout: soon}\n", "server: {listen: localhost}\n",
		"server: {listen: 'a:99999'}\n", "chatops: {batch_window: true}\n",
		"server: {threads: -2}\n", "chatops: {command_budget: 5s}\n",
		"chatops: {command_budget: 0}\n",
		"server: {header_timeout: never}\n",
		"server: {stream_memory: 512}\n",
		"server: {stream_memory: 2MiB}\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		im_config *cfg = text(bad[i]);
		cr_assert_eq(im_config_check_core(cfg, err, sizeof err),
			     IM_ECONFIG, "accepted %s", bad[i]);
		cr_assert_not_null(strstr(err, "t.yaml:1: "), "%s", err);
		im_config_free(cfg);
	}
	im_config *cfg = text("server: {max_body: 524288, listen: '[::1]:0',"
			      " request_timeout: 2.5, metrics_listen: '',"
			      " header_timeout: 2s, stream_memory: 3KiB}\n"
			      "chatops: {command_budget: 2500ms}\n");
	cr_assert_eq(im_config_check_core(cfg, err, sizeof err), 0, "%s", err);
	cr_assert_eq(im_config_size(cfg, "server.max_body", 0), 524288);
	cr_assert_float_eq(im_config_duration(cfg, "server.request_timeout", 0),
			   2.5, 1e-9);
	im_config_free(cfg);
}

/* --- look-ups --------------------------------------------------------------- */

Test(config, looks_up_values_by_path_with_defaults)
{
	im_config *cfg = text("plugins:\n  instances:\n"
			      "    - {id: a, module: ma, required: true}\n"
			      "    - {id: b, module: mb}\n"
			      "n: ~\n");
	cr_assert_str_eq(im_config_string(cfg, "plugins.instances[b].module",
					  NULL), "mb");
	cr_assert_str_eq(im_config_string(cfg, "plugins.instances[1].module",
					  NULL), "mb");
	cr_assert_eq(im_config_bool(cfg, "plugins.instances[a].required", 0), 1);
	cr_assert_str_eq(im_config_string(cfg, "plugins.instances[z].module",
					  "def"), "def");
	cr_assert_str_eq(im_config_string(cfg, "n", "def"), "def");
	cr_assert_eq(im_config_int(cfg, "plugins.instances[a].module", 7), 7);
	cr_assert_null(im_config_get(cfg, "plugins.nope.deeper"));
	cr_assert_null(im_config_get(cfg, "plugins.instances[a"));
	cr_assert_eq(im_config_get(cfg, ""), im_config_root(cfg));
	im_config_free(cfg);
}

/* --- plugin key tables ------------------------------------------------------ */

static const im_config_key slack_keys[] = {
	{IM_CONFIG_KEY_HEADER, "mode", IM_CFG_STRING, "http", 0, "http or socket"},
	{IM_CONFIG_KEY_HEADER, "bot_token", IM_CFG_STRING, NULL, IM_CFG_REQUIRED | IM_CFG_SECRET, ""},
	{IM_CONFIG_KEY_HEADER, "timeout", IM_CFG_DURATION, "5s", 0, ""},
	{IM_CONFIG_KEY_HEADER, "retries", IM_CFG_INT, "3", 0, ""},
	{IM_CONFIG_KEY_HEADER, "verbose", IM_CFG_BOOL, "false", 0, ""},
	{IM_CONFIG_KEY_HEADER, "ratio", IM_CFG_NUMBER, NULL, 0, ""},
	{IM_CONFIG_KEY_HEADER, "channels", IM_CFG_LIST, "[]", 0, ""},
	{IM_CONFIG_KEY_HEADER, "routes", IM_CFG_MAP, NULL, 0, ""},
	{0},
};

static const char instance_yaml[] =
	"plugins:\n"
	"  instances:\n"
	"    - id: slack\n"
	"      module: slack\n"
	"      config:\n"
	"        %s\n";

/* Loads one slack instance whose config holds `line` and applies keys. */
static int apply(const char *line, json_t **out)
{
	char buf[512];
	snprintf(buf, sizeof buf, instance_yaml, line);
	im_config *cfg = text(buf);
	int rc = im_config_apply_keys(
		cfg, "plugins.instances[slack].config",
		im_config_get(cfg, "plugins.instances[slack].config"),
		slack_keys, out, err, sizeof err);
	im_config_free(cfg);
	return rc;
}

Test(config, fills_in_defaults_for_absent_plugin_keys)
{
	json_t *out = NULL;
	cr_assert_eq(apply("bot_token: xoxb-1", &out), 0, "%s", err);
	cr_assert_str_eq(json_string_value(json_object_get(out, "mode")), "http");
	cr_assert_float_eq(json_real_value(json_object_get(out, "timeout")), 5.0,
			   1e-9);
	cr_assert_eq(json_integer_value(json_object_get(out, "retries")), 3);
	cr_assert(json_is_false(json_object_get(out, "verbose")));
	cr_assert_eq(json_array_size(json_object_get(out, "channels")), 0);
	cr_assert(json_is_array(json_object_get(out, "channels")));
	cr_assert_null(json_object_get(out, "ratio"));
	cr_assert_null(json_object_get(out, "routes"));
	json_decref(out);
}

Test(config, normalises_durations_to_seconds)
{
	json_t *out = NULL;
	cr_assert_eq(apply("{bot_token: x, timeout: 250ms}", &out), 0, "%s", err);
	cr_assert(json_is_real(json_object_get(out, "timeout")));
	cr_assert_float_eq(json_real_value(json_object_get(out, "timeout")),
			   0.25, 1e-9);
	json_decref(out);
	cr_assert_eq(apply("{bot_token: x, timeout: 7}", &out), 0, "%s", err);
	cr_assert(json_is_real(json_object_get(out, "timeout")));
	cr_assert_float_eq(json_real_value(json_object_get(out, "timeout")),
			   7.0, 1e-9);
	json_decref(out);
}

Test(config, reports_a_missing_required_key_at_the_instance)
{
	json_t *out = NULL;
	cr_assert_eq(apply("mode: socket", &out), IM_ECONFIG);
	cr_assert_null(out);
	cr_assert_str_eq(err, "t.yaml:5: plugins.instances[slack].config: "
			      "missing required key bot_token");
}

Test(config, accepts_an_empty_string_for_a_required_key)
{
	json_t *out = NULL;
	unsetenv("IM_T_TOKEN");
	cr_assert_eq(apply("bot_token: ${IM_T_TOKEN:-}", &out), 0, "%s", err);
	cr_assert_str_eq(json_string_value(json_object_get(out, "bot_token")), "");
	json_decref(out);
}

Test(config, reports_an_unknown_plugin_key_with_the_known_keys)
{
	json_t *out = NULL;
	cr_assert_eq(apply("{bot_token: x, mdoe: http}", &out), IM_ECONFIG);
	cr_assert_str_eq(err, "t.yaml:6: plugins.instances[slack].config.mdoe: "
			      "unknown key; known keys: mode, bot_token, timeout, "
			      "retries, verbose, ratio, channels, routes");
}

Test(config, reports_a_wrong_type_for_a_plugin_key)
{
	json_t *out = NULL;
	cr_assert_eq(apply("{bot_token: x, mode: [a]}", &out), IM_ECONFIG);
	cr_assert_str_eq(err, "t.yaml:6: plugins.instances[slack].config.mode: "
			      "expected a string, got a list");
	cr_assert_eq(apply("{bot_token: x, retries: many}", &out), IM_ECONFIG);
	assert_err_has("config.retries: expected an integer, got \"many\"");
	cr_assert_eq(apply("{bot_token: x, timeout: soon}", &out), IM_ECONFIG);
	assert_err_has("config.timeout: expected a duration");
	cr_assert_eq(apply("{bot_token: x, verbose: 1}", &out), IM_ECONFIG);
	assert_err_has("config.verbose: expected true or false, got an integer");
	cr_assert_null(out);
}

Test(config, turns_numbers_into_text_for_string_keys)
{
	json_t *out = NULL;
	cr_assert_eq(apply("{bot_token: 12345, mode: 1.5}", &out), 0, "%s", err);
	cr_assert_str_eq(json_string_value(json_object_get(out, "bot_token")),
			 "12345");
	cr_assert_str_eq(json_string_value(json_object_get(out, "mode")), "1.5");
	json_decref(out);
}

Test(config, treats_a_missing_config_block_as_empty)
{
	static const im_config_key keys[] = {
		{IM_CONFIG_KEY_HEADER, "level", IM_CFG_STRING, "info", 0, ""},
		{0},
	};
	json_t *out = NULL;
	cr_assert_eq(im_config_apply_keys(NULL, "plugins.instances[m].config",
					  NULL, keys, &out, err, sizeof err),
		     0, "%s", err);
	cr_assert_str_eq(json_string_value(json_object_get(out, "level")), "info");
	json_decref(out);
	cr_assert_eq(im_config_apply_keys(NULL, "p", NULL, slack_keys, &out, err,
					  sizeof err), IM_ECONFIG);
	cr_assert_str_eq(err, "p: missing required key bot_token");
}

Test(config, ignores_the_secret_flag_when_validating)
{
	static const im_config_key plain[] = {
		{IM_CONFIG_KEY_HEADER, "token", IM_CFG_STRING, NULL, IM_CFG_REQUIRED, ""},
		{0},
	};
	static const im_config_key secret[] = {
		{IM_CONFIG_KEY_HEADER, "token", IM_CFG_STRING, NULL, IM_CFG_REQUIRED | IM_CFG_SECRET, ""},
		{0},
	};
	json_t *obj = json_pack("{ss}", "token", "s3cret"), *a, *b;
	cr_assert_eq(im_config_apply_keys(NULL, "c", obj, plain, &a, err,
					  sizeof err), 0);
	cr_assert_eq(im_config_apply_keys(NULL, "c", obj, secret, &b, err,
					  sizeof err), 0);
	cr_assert(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	json_decref(obj);
	obj = json_pack("{si}", "token", 5);
	json_t *bad = json_pack("{s[]}", "token");
	cr_assert_eq(im_config_apply_keys(NULL, "c", bad, plain, &a, err,
					  sizeof err), IM_ECONFIG);
	char e1[sizeof err];
	snprintf(e1, sizeof e1, "%s", err);
	cr_assert_eq(im_config_apply_keys(NULL, "c", bad, secret, &b, err,
					  sizeof err), IM_ECONFIG);
	cr_assert_str_eq(e1, err);
	json_decref(bad);
	json_decref(obj);
}

/* --- units and buffers ----------------------------------------------------- */

Test(config, parses_durations)
{
	static const struct {
		const char *text;
		double want;
	} ok[] = {{"250ms", 0.25}, {"5s", 5}, {"2m", 120}, {"1h", 3600},
		  {"1.5s", 1.5}, {"30", 30}, {"1h30m", 5400}, {"0.3", 0.3},
		  {".5s", 0.5}};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		double s = -1;
		cr_assert_eq(im_config_parse_duration(ok[i].text, &s), 0, "%s",
			     ok[i].text);
		cr_assert_float_eq(s, ok[i].want, 1e-12, "%s", ok[i].text);
	}
	static const char *bad[] = {"", "s", "5x", "-5s", "5 s", "1m30", "abc",
				    "1e3s", "5S"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		double s;
		cr_assert_eq(im_config_parse_duration(bad[i], &s), IM_EINVAL,
			     "accepted \"%s\"", bad[i]);
	}
	cr_assert_eq(im_config_parse_duration(NULL, NULL), IM_EINVAL);
}

Test(config, parses_sizes)
{
	unsigned long long b = 0;
	cr_assert_eq(im_config_parse_size("1MiB", &b), 0);
	cr_assert_eq(b, 1048576ull);
	cr_assert_eq(im_config_parse_size("512KiB", &b), 0);
	cr_assert_eq(b, 524288ull);
	cr_assert_eq(im_config_parse_size("10kb", &b), 0);
	cr_assert_eq(b, 10000ull);
	cr_assert_eq(im_config_parse_size("1.5GiB", &b), 0);
	cr_assert_eq(b, 1610612736ull);
	cr_assert_eq(im_config_parse_size("100", &b), 0);
	cr_assert_eq(b, 100ull);
	cr_assert_eq(im_config_parse_size("1 MiB", &b), IM_EINVAL);
	cr_assert_eq(im_config_parse_size("MiB", &b), IM_EINVAL);
	cr_assert_eq(im_config_parse_size("9999999TiB", &b), IM_EINVAL);
}

Test(config, truncates_long_errors_and_keeps_them_terminated)
{
	char small[16];
	memset(small, 'x', sizeof small);
	cr_assert_null(im_config_load_string("a-rather-long-file-name.yaml",
					     "a: [", small, sizeof small));
	cr_assert_eq(small[sizeof small - 1], '\0');
	cr_assert_eq(strlen(small), sizeof small - 1);
	cr_assert_null(im_config_load_string("x.yaml", "a: [", NULL, 0));
	cr_assert_null(im_config_load_string("x.yaml", "a: [", small, 0));
}
