/* Loader and registry: every way a plugin file can be wrong is refused
 * with a one-line reason, and the registry keeps going unless the instance
 * is required. Uses the test plugins built beside this file. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "plugin/plugin.h"

static char plugdir[512];
static char tmpdir[64];

static void setup(void)
{
	const char *b = getenv("IM_TEST_BUILDDIR");
	cr_assert(b, "IM_TEST_BUILDDIR is set by meson test");
	snprintf(plugdir, sizeof(plugdir), "%s/tests/loader", b);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/im-loader-XXXXXX");
	cr_assert(mkdtemp(tmpdir));
	unsetenv("IM_PLUGIN_PATH");
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(loader, .init = setup, .fini = teardown);
TestSuite(registry, .init = setup, .fini = teardown);

static im_module *load(const char *name, char *err, size_t len)
{
	char *dirs[] = {plugdir};
	im_plugin_dirs d = {dirs, 1};
	return im_module_load(&d, name, err, len);
}

static void copy_file(const char *from, const char *to, off_t limit,
		      mode_t mode)
{
	FILE *in = fopen(from, "rb");
	cr_assert(in, "open %s", from);
	FILE *out = fopen(to, "wb");
	cr_assert(out);
	char buf[8192];
	size_t n;
	off_t total = 0;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
		if (limit && total + (off_t)n > limit)
			n = (size_t)(limit - total);
		fwrite(buf, 1, n, out);
		total += (off_t)n;
		if (limit && total >= limit)
			break;
	}
	fclose(in);
	fclose(out);
	cr_assert_eq(chmod(to, mode), 0);
}

static im_module *load_from_tmp(const char *name, char *err, size_t len)
{
	char *dirs[] = {tmpdir};
	im_plugin_dirs d = {dirs, 1};
	return im_module_load(&d, name, err, len);
}

Test(loader, loads_a_good_plugin_and_reads_its_descriptor)
{
	char err[1024] = "";
	im_module *m = load("good", err, sizeof(err));
	cr_assert(m, "%s", err);
	cr_expect_str_eq(m->desc.name, "good");
	cr_expect_str_eq(m->desc.version, "2.1.0");
	cr_expect_eq(m->n_connectors, 1);
	cr_expect_str_eq(m->connectors[0]->platform, "test");
	json_t *d = im_module_describe(m);
	char abi[16];
	snprintf(abi, sizeof abi, "%d.%d", IM_ABI_MAJOR, IM_ABI_MINOR);
	cr_expect_str_eq(json_string_value(json_object_get(d, "abi")), abi);
	json_decref(d);
	im_module_unref(m);
}

Test(loader, returns_the_cached_module_for_the_same_file)
{
	char err[1024];
	im_module *a = load("good", err, sizeof(err));
	im_module *b = load("good", err, sizeof(err));
	cr_assert(a && b);
	cr_expect_eq(a, b);
	cr_expect_eq(a->refs, 2);
	im_module_unref(b);
	im_module_unref(a);
}

static void expect_refused(const char *name, const char *needle)
{
	char err[1024] = "";
	im_module *m = load(name, err, sizeof(err));
	cr_expect_null(m, "%s should be refused", name);
	cr_expect(strstr(err, needle), "'%s' not in: %s", needle, err);
	cr_expect_null(strchr(err, '\n'), "one line: %s", err);
}

Test(loader, refuses_a_wrong_major_version_and_says_to_rebuild)
{
	char want[64];
	snprintf(want, sizeof want, "built for plugin ABI %d.%d",
		 IM_ABI_MAJOR + 1, IM_ABI_MINOR);
	expect_refused("bad_major", want);
	expect_refused("bad_major", "rebuild the plugin");
}

Test(loader, refuses_a_newer_minor_version_and_says_to_upgrade)
{
	char want[64];
	snprintf(want, sizeof want, "needs plugin ABI %d.%d", IM_ABI_MAJOR,
		 IM_ABI_MINOR + 1);
	expect_refused("newer_minor", want);
	expect_refused("newer_minor", "upgrade im");
}

Test(loader, refuses_a_bad_magic)
{
	expect_refused("bad_magic", "bad magic");
}

Test(loader, refuses_a_descriptor_without_licence)
{
	expect_refused("no_license", "has no license");
}

Test(loader, refuses_a_library_without_entry_symbol)
{
	expect_refused("no_entry", "no im_plugin_entry symbol");
}

Test(loader, refuses_a_file_that_is_not_elf)
{
	char path[600], err[1024] = "";
	snprintf(path, sizeof(path), "%s/notelf.so", tmpdir);
	FILE *f = fopen(path, "w");
	fputs("#!/bin/sh\necho not a library\n", f);
	fclose(f);
	chmod(path, 0755);
	cr_expect_null(load_from_tmp("notelf", err, sizeof(err)));
	cr_expect(strstr(err, "not an ELF"), "%s", err);
	cr_expect(strstr(err, path), "names the file: %s", err);
}

Test(loader, refuses_a_truncated_library_without_crashing)
{
	char from[600], to[600], err[1024] = "";
	snprintf(from, sizeof(from), "%s/good.so", plugdir);
	snprintf(to, sizeof(to), "%s/good.so", tmpdir);
	struct stat st;
	cr_assert_eq(stat(from, &st), 0);
	copy_file(from, to, st.st_size / 2, 0755);
	cr_expect_null(load_from_tmp("good", err, sizeof(err)));
	cr_expect(strstr(err, "truncated"), "%s", err);
	copy_file(from, to, 40, 0755);
	cr_expect_null(load_from_tmp("good", err, sizeof(err)));
	cr_expect(strstr(err, "truncated"), "%s", err);
}

Test(loader, refuses_a_group_writable_file)
{
	char from[600], to[600], err[1024] = "";
	snprintf(from, sizeof(from), "%s/good.so", plugdir);
	snprintf(to, sizeof(to), "%s/good.so", tmpdir);
	copy_file(from, to, 0, 0775);
	cr_expect_null(load_from_tmp("good", err, sizeof(err)));
	cr_expect(strstr(err, "writable by group or others"), "%s", err);
	cr_expect(strstr(err, "chmod go-w"), "%s", err);
	chmod(to, 0755);
	im_module *m = load_from_tmp("good", err, sizeof(err));
	cr_expect(m, "%s", err);
	im_module_unref(m);
}

Test(loader, refuses_a_world_writable_folder)
{
	char sub[600], from[600], to[700], err[1024] = "";
	snprintf(sub, sizeof(sub), "%s/open", tmpdir);
	cr_assert_eq(mkdir(sub, 0755), 0);
	cr_assert_eq(chmod(sub, 0777), 0);
	snprintf(from, sizeof(from), "%s/good.so", plugdir);
	snprintf(to, sizeof(to), "%s/good.so", sub);
	copy_file(from, to, 0, 0755);
	char *dirs[] = {sub};
	im_plugin_dirs d = {dirs, 1};
	cr_expect_null(im_module_load(&d, "good", err, sizeof(err)));
	cr_expect(strstr(err, "folder"), "%s", err);
}

/* A /tmp-like folder (world-writable, sticky): anyone may drop a file
 * there, so only files of root or of the server's user may load. */
Test(loader, refuses_another_users_file_in_a_sticky_folder)
{
	char sub[600], from[600], to[700], err[1024] = "";
	snprintf(sub, sizeof(sub), "%s/shared", tmpdir);
	cr_assert_eq(mkdir(sub, 0755), 0);
	cr_assert_eq(chmod(sub, 01777), 0);
	snprintf(from, sizeof(from), "%s/good.so", plugdir);
	snprintf(to, sizeof(to), "%s/good.so", sub);
	copy_file(from, to, 0, 0755);
	char *dirs[] = {sub};
	im_plugin_dirs d = {dirs, 1};
	uid_t other = geteuid() == 65534 ? 65533 : 65534;
	if (chown(to, other, (gid_t)-1) != 0) {
		/* Not root: we cannot give a file away; the file is ours and
		 * loads, which the rule allows. */
		im_module *m = im_module_load(&d, "good", err, sizeof(err));
		cr_expect(m, "%s", err);
		im_module_unref(m);
		cr_log_warn("not root: the other-owner half of this test needs "
			    "chown and was replaced by the own-file half");
		return;
	}
	cr_expect_null(im_module_load(&d, "good", err, sizeof(err)));
	cr_expect(strstr(err, "owned by uid"), "%s", err);
	cr_expect(strstr(err, "chown root"), "%s", err);
	cr_assert_eq(chown(to, geteuid(), (gid_t)-1), 0);
	im_module *m = im_module_load(&d, "good", err, sizeof(err));
	cr_expect(m, "a file of our own in the sticky folder loads: %s", err);
	im_module_unref(m);
}

Test(loader, refuses_a_symlink_leading_outside_the_plugin_folders)
{
	char target[600], link[600], err[1024] = "";
	snprintf(target, sizeof(target), "%s/good.so", plugdir);
	snprintf(link, sizeof(link), "%s/good.so", tmpdir);
	cr_assert_eq(symlink(target, link), 0);
	cr_expect_null(load_from_tmp("good", err, sizeof(err)));
	cr_expect(strstr(err, "symlink leads outside"), "%s", err);
}

Test(loader, accepts_a_symlink_inside_the_plugin_folders)
{
	char target[600], link[600], err[1024] = "";
	snprintf(target, sizeof(target), "%s/real", tmpdir);
	cr_assert_eq(mkdir(target, 0755), 0);
	char from[600], to[700];
	snprintf(from, sizeof(from), "%s/good.so", plugdir);
	snprintf(to, sizeof(to), "%s/good.so", target);
	copy_file(from, to, 0, 0755);
	snprintf(link, sizeof(link), "%s/good.so", tmpdir);
	cr_assert_eq(symlink(to, link), 0);
	char *dirs[] = {tmpdir, target};
	im_plugin_dirs d = {dirs, 2};
	im_module *m = im_module_load(&d, "good", err, sizeof(err));
	cr_expect(m, "%s", err);
	im_module_unref(m);
}

Test(loader, refuses_dot_dot_and_slashes_in_module_names)
{
	expect_refused("../good", "invalid name");
	expect_refused("a/b", "invalid name");
	expect_refused("", "invalid name");
}

Test(loader, says_where_it_looked_for_a_missing_module)
{
	expect_refused("nothere", "nothere.so not found");
	expect_refused("nothere", plugdir);
}

/* --- registry ---------------------------------------------------------- */

static im_config *config(const char *fmt, ...)
{
	static char text[4096];
	char err[1024] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	im_config *c = im_config_load_string("test.yaml", text, err,
					     sizeof(err));
	cr_assert(c, "%s", err);
	return c;
}

static const char *state_of(im_snapshot *s, const char *id)
{
	im_instance *in = im_snapshot_find(s, id);
	cr_assert(in, "instance %s", id);
	return im_instance_state_name(in->st);
}

Test(registry, keeps_going_when_an_optional_plugin_fails)
{
	im_config *c = config("plugins:\n  dirs: [\"%s\"]\n  instances:\n"
			      "    - {id: g, module: good, config: {greeting: hi}}\n"
			      "    - {id: f, module: init_fail}\n"
			      "    - {id: m, module: bad_major}\n"
			      "    - {id: u, module: unconf}\n",
			      plugdir);
	char err[1024] = "";
	im_snapshot *s = im_registry_build(c, err, sizeof(err));
	cr_assert(s, "%s", err);
	im_registry_swap(s);
	cr_expect_str_eq(state_of(s, "g"), "running");
	cr_expect_str_eq(state_of(s, "f"), "failed");
	cr_expect_str_eq(state_of(s, "m"), "failed");
	cr_expect_str_eq(state_of(s, "u"), "unconfigured");
	cr_expect(strstr(im_snapshot_find(s, "f")->reason,
			 "cannot reach the backend"),
		  "%s", im_snapshot_find(s, "f")->reason);
	cr_expect(strstr(im_snapshot_find(s, "u")->reason, "TEST_TOKEN"));
	im_registry_shutdown();
	im_config_free(c);
}

Test(registry, fails_the_build_when_a_required_plugin_fails)
{
	im_config *c = config("plugins:\n  dirs: [\"%s\"]\n  instances:\n"
			      "    - {id: f, module: init_fail, required: true}\n",
			      plugdir);
	char err[1024] = "";
	cr_expect_null(im_registry_build(c, err, sizeof(err)));
	cr_expect(strstr(err, "test.yaml:"), "names the file: %s", err);
	cr_expect(strstr(err, "required instance failed"), "%s", err);
	im_config_free(c);
}

Test(registry, refuses_unknown_and_mistyped_keys_with_file_and_line)
{
	im_config *c = config("plugins:\n  dirs: [\"%s\"]\n  instances:\n"
			      "    - id: g\n      module: good\n      config:\n"
			      "        greeting: hi\n        colour: red\n",
			      plugdir);
	char err[1024] = "";
	cr_expect_null(im_registry_build(c, err, sizeof(err)));
	cr_expect(strstr(err, "test.yaml:8"), "%s", err);
	cr_expect(strstr(err, "colour"), "%s", err);
	im_config_free(c);

	c = config("plugins:\n  dirs: [\"%s\"]\n  instances:\n"
		   "    - {id: g, module: good, config: {greeting: hi, count: "
		   "[1]}}\n",
		   plugdir);
	cr_expect_null(im_registry_build(c, err, sizeof(err)));
	cr_expect(strstr(err, "count"), "%s", err);
	im_config_free(c);

	c = config("plugins:\n  dirs: [\"%s\"]\n  instances:\n"
		   "    - {id: g, module: good}\n",
		   plugdir);
	cr_expect_null(im_registry_build(c, err, sizeof(err)));
	cr_expect(strstr(err, "greeting"), "missing key named: %s", err);
	im_config_free(c);
}

Test(registry, reuses_unchanged_instances_and_replaces_changed_ones)
{
	const char *fmt = "plugins:\n  dirs: [\"%s\"]\n  instances:\n"
			  "    - {id: a, module: good, config: {greeting: hi}}\n"
			  "    - {id: b, module: good, config: {greeting: %s}}\n";
	im_config *c1 = config(fmt, plugdir, "one");
	char err[1024] = "";
	im_snapshot *s1 = im_registry_build(c1, err, sizeof(err));
	cr_assert(s1, "%s", err);
	im_registry_swap(s1);
	im_instance *a1 = im_snapshot_find(s1, "a");
	im_instance *b1 = im_snapshot_find(s1, "b");
	im_config *c2 = config(fmt, plugdir, "two");
	im_snapshot *s2 = im_registry_build(c2, err, sizeof(err));
	cr_assert(s2, "%s", err);
	cr_expect_eq(im_snapshot_find(s2, "a"), a1, "unchanged is reused");
	cr_expect_neq(im_snapshot_find(s2, "b"), b1, "changed is new");
	im_registry_swap(s2);
	im_instance *a2 = im_snapshot_find(s2, "a");
	cr_expect_eq(a2->refs, 1, "old snapshot released it");
	cr_expect_str_eq(json_string_value(json_object_get(
			     im_snapshot_find(s2, "b")->config, "greeting")),
			 "two");
	im_registry_shutdown();
	im_config_free(c1);
	im_config_free(c2);
}

Test(registry, fills_defaults_from_the_key_table)
{
	im_config *c = config("plugins:\n  dirs: [\"%s\"]\n  instances:\n"
			      "    - {id: g, module: good, config: {greeting: hi}}\n",
			      plugdir);
	char err[1024] = "";
	im_snapshot *s = im_registry_build(c, err, sizeof(err));
	cr_assert(s, "%s", err);
	const json_t *cfg = im_snapshot_find(s, "g")->config;
	cr_expect_eq(json_integer_value(json_object_get(cfg, "count")), 3);
	cr_expect_str_eq(json_string_value(json_object_get(cfg, "token")), "");
	im_registry_swap(s);
	im_registry_shutdown();
	im_config_free(c);
}

Test(registry, fills_the_plugins_typed_config_struct)
{
	im_config *c = config("plugins:\n  dirs: [\"%s\"]\n  instances:\n"
			      "    - {id: g, module: good, config: {greeting: "
			      "hi, delay: 1.5s, token: t0k}}\n",
			      plugdir);
	char err[1024] = "";
	im_snapshot *s = im_registry_build(c, err, sizeof(err));
	cr_assert(s, "%s", err);
	im_instance *in = im_snapshot_find(s, "g");
	const im_connector *conn = im_instance_connector(in);
	cr_assert(conn && conn->status);
	json_t *st = NULL;
	cr_assert_eq(conn->status(in->state, &st), 0);
	json_t *typed = json_object_get(st, "typed");
	cr_expect_str_eq(json_string_value(json_object_get(typed, "greeting")),
			 "hi");
	cr_expect_eq(json_integer_value(json_object_get(typed, "count")), 3);
	cr_expect_str_eq(json_string_value(json_object_get(typed, "token")),
			 "t0k");
	cr_expect_eq(json_integer_value(json_object_get(typed, "delay_ms")),
		     1500);
	json_decref(st);
	im_registry_swap(s);
	im_registry_shutdown();
	im_config_free(c);
}

Test(loader, reads_the_tables_of_a_plugin_built_against_1_0)
{
	char err[1024] = "";
	im_module *m = load("legacy10", err, sizeof(err));
	cr_assert(m, "%s", err);
	const im_config_key *k = m->desc.config_keys;
	cr_assert(k);
	cr_expect_eq(k[0].struct_size, sizeof(im_config_key));
	cr_expect_str_eq(k[0].name, "channel");
	cr_expect_eq(k[0].type, IM_CFG_STRING);
	cr_expect_str_eq(k[0].default_value, "general");
	cr_expect_str_eq(k[1].name, "retries");
	cr_expect_eq(k[1].type, IM_CFG_INT);
	cr_expect_eq(k[1].flags, IM_CFG_REQUIRED);
	cr_expect_str_eq(k[1].description, "how often");
	cr_expect_eq(k[1].store, IM_STORE_NONE);
	cr_expect_null(k[2].name);
	cr_assert_eq(m->n_commands, 1);
	const im_command *cmd = m->commands[0];
	cr_expect_str_eq(cmd->verbs[0].name, "ping");
	cr_expect_str_eq(cmd->verbs[1].usage, "pong <n>");
	cr_expect_str_eq(cmd->verbs[1].summary, "answers");
	cr_expect_null(cmd->verbs[2].name);
	cr_expect_str_eq(cmd->actions[0].action_id, "legacy_ping");
	cr_expect_str_eq(cmd->actions[0].verb, "ping");
	cr_expect_null(cmd->actions[1].action_id);
	im_module_unref(m);
}

Test(loader, refuses_a_1_3_table_without_entry_sizes)
{
	expect_refused("nosize", "config_keys[0].struct_size is 0");
}

Test(registry, describes_instances_for_plugins_list)
{
	im_config *c = config("plugins:\n  dirs: [\"%s\"]\n  instances:\n"
			      "    - {id: g, module: good, config: {greeting: hi}}\n"
			      "    - {id: x, module: nothere}\n",
			      plugdir);
	char err[1024] = "";
	im_snapshot *s = im_registry_build(c, err, sizeof(err));
	cr_assert(s, "%s", err);
	im_registry_swap(s);
	json_t *d = im_registry_describe();
	cr_assert_eq(json_array_size(d), 2);
	json_t *g = json_array_get(d, 0);
	cr_expect_str_eq(json_string_value(json_object_get(g, "state")),
			 "running");
	cr_expect_str_eq(json_string_value(json_object_get(
			     json_object_get(g, "plugin"), "version")),
			 "2.1.0");
	cr_expect_eq(json_array_size(json_object_get(g, "routes")), 4);
	json_t *x = json_array_get(d, 1);
	cr_expect(strstr(json_string_value(json_object_get(x, "reason")),
			 "not found"));
	json_decref(d);
	im_registry_shutdown();
	im_config_free(c);
}
