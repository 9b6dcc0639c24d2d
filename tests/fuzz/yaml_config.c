/*
 * Fuzz target yaml_config: a config file (core/config).
 *
 * The bytes (up to a NUL: the loader takes a C string) are loaded with
 * im_config_load_string("fuzz.yaml", ...) (libyaml events to a JSON tree
 * with a line per node, ${VAR} / ${VAR:-default} expansion, scalar
 * typing), then checked with im_config_check_core (the core schema).
 * A loaded tree is also read the ways the server reads it: the typed
 * look-ups of the core keys, im_config_where for every top-level key,
 * im_config_parse_duration / im_config_parse_size on every string scalar,
 * and im_config_apply_keys with a key table of every type on each plugin
 * instance's config:.
 *
 * Contract: a failed load or check fills err with a message that starts
 * with "fuzz.yaml:" (the documented "<file>:<line>: <key path>: <reason>"
 * shape); a loaded tree serializes; a parsed duration or size is finite
 * and not negative; apply_keys returns 0 with an object or IM_ECONFIG.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <im/types.h>

#include "config/config.h"
#include "fuzz.h"

#define NAME "fuzz.yaml"

static const im_config_key keys[] = {
    {IM_CONFIG_KEY_HEADER, "mode", IM_CFG_STRING, "http", 0, "a string"},
    {IM_CONFIG_KEY_HEADER, "token", IM_CFG_STRING, NULL, IM_CFG_SECRET, "a secret"},
    {IM_CONFIG_KEY_HEADER, "count", IM_CFG_INT, "3", 0, "an int"},
    {IM_CONFIG_KEY_HEADER, "on", IM_CFG_BOOL, "true", 0, "a bool"},
    {IM_CONFIG_KEY_HEADER, "ratio", IM_CFG_NUMBER, "0.5", 0, "a number"},
    {IM_CONFIG_KEY_HEADER, "wait", IM_CFG_DURATION, "250ms", 0, "a duration"},
    {IM_CONFIG_KEY_HEADER, "channels", IM_CFG_LIST, "[]", 0, "a list"},
    {IM_CONFIG_KEY_HEADER, "notify", IM_CFG_MAP, "{}", 0, "a map"},
    {IM_CONFIG_KEY_HEADER, "prefix", IM_CFG_STRING, NULL, IM_CFG_REQUIRED, "required"},
    {0},
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Variables inputs may expand; everything else is unset. */
	setenv("IM_FUZZ", "value", 1);
	setenv("IM_FUZZ_EMPTY", "", 1);
	setenv("IM_FUZZ_YAML", "{a: [1, 2]}", 1);
	setenv("IM_FUZZ_DOLLAR", "${IM_FUZZ}", 1);
	unsetenv("IM_FUZZ_UNSET");
	return 0;
}

static void check_err(const char *what, const char *err)
{
	FUZZ_CHECK(strncmp(err, NAME ":", sizeof(NAME)) == 0,
		   "%s: the error does not start with " NAME ": '%s'", what,
		   err);
}

static void check_units(const json_t *v)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		double sec = -1;
		unsigned long long b;
		if (im_config_parse_duration(s, &sec) == 0)
			FUZZ_CHECK(isfinite(sec) && sec >= 0,
				   "duration '%s' parsed as %g", s, sec);
		(void)im_config_parse_size(s, &b);
		return;
	}
	size_t i;
	const char *k;
	json_t *c;
	if (json_is_array(v))
		json_array_foreach(v, i, c) check_units(c);
	else if (json_is_object(v))
		json_object_foreach((json_t *)v, k, c) check_units(c);
}

static void check_lookups(const im_config *cfg)
{
	static const char *const paths[] = {
	    "server.listen",	     "server.max_body",
	    "server.request_timeout", "server.api_tokens",
	    "storage.path",	     "log.level",
	    "chatops.batch_window",   "chatops.critical_severities",
	    "plugins.instances[echo].config.prefix",
	    "plugins.instances[0]",   "subscriptions[0].channel",
	    "",			     ".",
	    "[",		     "a..b",
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		(void)im_config_string(cfg, paths[i], NULL);
		(void)im_config_int(cfg, paths[i], 0);
		(void)im_config_bool(cfg, paths[i], 0);
		(void)im_config_where(cfg, paths[i]);
		double d = im_config_duration(cfg, paths[i], 0);
		FUZZ_CHECK(isfinite(d) && d >= 0, "duration %s = %g", paths[i],
			   d);
		FUZZ_CHECK(im_config_size(cfg, paths[i], 0) >= 0, "size %s < 0",
			   paths[i]);
	}
	const json_t *root = im_config_root(cfg);
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)root, k, v)
	{
		if (strpbrk(k, ".[]") || !*k)
			continue; /* not addressable by a key path */
		const char *w = im_config_where(cfg, k);
		FUZZ_CHECK(w && strncmp(w, NAME ":", sizeof(NAME)) == 0,
			   "im_config_where(%s) = %s", k, w ? w : "(null)");
	}
}

static void check_instances(const im_config *cfg)
{
	const json_t *list =
	    json_object_get(json_object_get(im_config_root(cfg), "plugins"),
			    "instances");
	size_t i;
	json_t *inst;
	json_array_foreach(list, i, inst)
	{
		char path[64], err[1024] = "";
		snprintf(path, sizeof(path), "plugins.instances[%zu].config", i);
		json_t *out = NULL;
		int rc = im_config_apply_keys(cfg, path,
					      json_object_get(inst, "config"),
					      keys, &out, err, sizeof(err));
		FUZZ_CHECK(rc == 0 || rc == IM_ECONFIG, "apply_keys: %d", rc);
		if (rc == 0) {
			char *s = json_dumps(out, JSON_COMPACT);
			FUZZ_CHECK(s, "apply_keys: the result does not "
				      "serialize");
			free(s);
		} else {
			FUZZ_CHECK(err[0], "apply_keys: no message");
		}
		json_decref(out);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	char err[1024] = "";
	im_config *cfg = im_config_load_string(NAME, text, err, sizeof(err));
	free(text);
	if (!cfg) {
		check_err("load", err);
		return 0;
	}
	char *dump = json_dumps(im_config_root(cfg), JSON_COMPACT);
	FUZZ_CHECK(dump, "the loaded tree does not serialize");
	free(dump);
	check_units(im_config_root(cfg));
	check_lookups(cfg);
	check_instances(cfg);
	err[0] = '\0';
	int rc = im_config_check_core(cfg, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == IM_ECONFIG, "check_core: %d", rc);
	if (rc != 0)
		check_err("check_core", err);
	im_config_free(cfg);
	return 0;
}
