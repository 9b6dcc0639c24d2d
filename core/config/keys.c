/*
 * Validation of an instance's `config:` block against the plugin's
 * im_config_key table: unknown keys, types, required keys, defaults.
 *
 * The result is a fresh object the plugin may keep: values are deep copies,
 * durations are seconds as a real, and STRING keys hold text even when the
 * YAML said `channel: 12345`.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_private.h"

static const im_config_key no_keys[] = {{0}};

static const char *key_name_at(const void *table, size_t i)
{
	return ((const im_config_key *)table)[i].name;
}

static const im_config_key *find_key(const im_config_key *keys,
				     const char *name)
{
	for (; keys->name; keys++)
		if (!strcmp(keys->name, name))
			return keys;
	return NULL;
}

/* Shortest text that reads back as the same double. */
static json_t *real_text(double d)
{
	char buf[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	return json_string(buf);
}

static json_t *as_string(const json_t *v)
{
	char buf[32];
	switch (json_typeof(v)) {
	case JSON_STRING:
		return json_string(json_string_value(v));
	case JSON_INTEGER:
		snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		return json_string(buf);
	case JSON_REAL:
		return real_text(json_real_value(v));
	case JSON_TRUE:
		return json_string("true");
	case JSON_FALSE:
		return json_string("false");
	case JSON_NULL: /* `key:` with nothing after it: an empty string */
		return json_string("");
	default:
		return NULL;
	}
}

static json_t *as_duration(const json_t *v)
{
	double s;
	if (json_is_number(v) && json_number_value(v) >= 0)
		return json_real(json_number_value(v));
	if (json_is_string(v) &&
	    !im_config_parse_duration(json_string_value(v), &s))
		return json_real(s);
	return NULL;
}

/* The value to hand to the plugin, or NULL with the reason in why. */
static json_t *coerce(const im_config_key *k, const json_t *v, char *why,
		      size_t whylen)
{
	const char *want = NULL;
	json_t *out = NULL;
	switch (k->type) {
	case IM_CFG_STRING:
		want = "a string";
		out = as_string(v);
		break;
	case IM_CFG_INT:
		want = "an integer";
		out = json_is_integer(v) ? json_deep_copy(v) : NULL;
		break;
	case IM_CFG_BOOL:
		want = "true or false";
		out = json_is_boolean(v) ? json_deep_copy(v) : NULL;
		break;
	case IM_CFG_NUMBER:
		want = "a number";
		out = json_is_number(v) ? json_deep_copy(v) : NULL;
		break;
	case IM_CFG_DURATION:
		want = "a duration like 250ms, 5s, 2m or 1h";
		out = as_duration(v);
		break;
	case IM_CFG_LIST:
		want = "a list";
		out = json_is_array(v) ? json_deep_copy(v) : NULL;
		break;
	case IM_CFG_MAP:
		want = "a mapping";
		out = json_is_object(v) ? json_deep_copy(v) : NULL;
		break;
	default:
		imc_err(why, whylen, "the plugin declares an unknown type %d",
			(int)k->type);
		return NULL;
	}
	if (!out && json_is_string(v))
		imc_err(why, whylen, "expected %s, got \"%.80s\"", want,
			json_string_value(v));
	else if (!out)
		imc_err(why, whylen, "expected %s, got %s", want,
			imc_type_name(v));
	return out;
}

static int check_unknown(const im_config *cfg, const char *path,
			 const json_t *obj, const im_config_key *keys,
			 char *err, size_t errlen)
{
	const char *name;
	json_t *v;
	json_object_foreach((json_t *)obj, name, v) {
		if (find_key(keys, name))
			continue;
		char known[512], *kp = imc_path_key(path, name);
		int rc;
		imc_join_names(known, sizeof known, keys, key_name_at);
		if (!kp) {
			imc_err(err, errlen, "out of memory");
			return IM_ENOMEM;
		}
		if (keys->name)
			rc = imc_fail(cfg, err, errlen, kp,
				      "unknown key; known keys: %s", known);
		else
			rc = imc_fail(cfg, err, errlen, kp,
				      "unknown key; this plugin takes no "
				      "configuration keys");
		free(kp);
		return rc;
	}
	return 0;
}

/* The value for key k: given, else the default, else absent (NULL, 0). */
static int one_key(const im_config *cfg, const char *path, const json_t *obj,
		   const im_config_key *k, json_t **out, char *err,
		   size_t errlen)
{
	const json_t *v = obj ? json_object_get(obj, k->name) : NULL;
	json_t *def = NULL;
	char why[256], *kp = imc_path_key(path, k->name);
	int rc = 0;
	*out = NULL;
	if (!kp) {
		imc_err(err, errlen, "out of memory");
		return IM_ENOMEM;
	}
	if (json_is_null(v) && k->type != IM_CFG_STRING)
		v = NULL; /* `key:` left empty: use the default */
	if (!v && k->default_value) {
		if (imc_parse_value(k->default_value, &def, why, sizeof why)) {
			rc = imc_fail(cfg, err, errlen, kp,
				      "the plugin's default \"%s\" is not "
				      "valid YAML: %s", k->default_value, why);
			goto out;
		}
		if (!json_is_null(def) || k->type == IM_CFG_STRING)
			v = def;
	}
	if (v && !(*out = coerce(k, v, why, sizeof why)))
		rc = imc_fail(cfg, err, errlen, kp, "%s%s",
			      v == def ? "the plugin's default: " : "", why);
	else if (!v && (k->flags & IM_CFG_REQUIRED))
		rc = imc_fail(cfg, err, errlen, path,
			      "missing required key %s", k->name);
out:
	json_decref(def);
	free(kp);
	return rc;
}

int im_config_apply_keys(const im_config *cfg, const char *path,
			 const json_t *obj, const im_config_key *keys,
			 json_t **out, char *err, size_t errlen)
{
	json_t *res;
	int rc;
	if (!out)
		return IM_EINVAL;
	*out = NULL;
	if (!path)
		path = "config";
	if (!keys)
		keys = no_keys;
	if (json_is_null(obj))
		obj = NULL;
	if (obj && !json_is_object(obj))
		return imc_fail(cfg, err, errlen, path,
				"expected a mapping, got %s",
				imc_type_name(obj));
	if (obj && (rc = check_unknown(cfg, path, obj, keys, err, errlen)))
		return rc;
	if (!(res = json_object())) {
		imc_err(err, errlen, "out of memory");
		return IM_ENOMEM;
	}
	for (const im_config_key *k = keys; k->name; k++) {
		json_t *v;
		if ((rc = one_key(cfg, path, obj, k, &v, err, errlen)))
			break;
		if (v && json_object_set_new(res, k->name, v)) {
			imc_err(err, errlen, "out of memory");
			rc = IM_ENOMEM;
			break;
		}
	}
	if (rc) {
		json_decref(res);
		return rc;
	}
	*out = res;
	return 0;
}

/* config_fill: one key into the plugin's struct. The validated config
 * holds text for STRING, an integer for INT, a real (seconds) for
 * DURATION, a number for NUMBER (see coerce above). */
static const char *store_key(const im_config_key *k, const json_t *v,
			     char *dst)
{
	int64_t i;
	double d;
	bool b;
	switch (k->store) {
	case IM_STORE_STRING:
		if (k->type != IM_CFG_STRING)
			return "a string field needs a STRING key";
		if (v && !json_is_string(v))
			return "the value is not text";
		const char *str = v ? json_string_value(v) : NULL;
		memcpy(dst, &str, sizeof str);
		return NULL;
	case IM_STORE_INT:
		if (k->type != IM_CFG_INT)
			return "an int64_t field needs an INT key";
		i = v ? json_integer_value(v) : 0;
		memcpy(dst, &i, sizeof i);
		return NULL;
	case IM_STORE_BOOL:
		if (k->type != IM_CFG_BOOL)
			return "a bool field needs a BOOL key";
		b = json_is_true(v);
		memcpy(dst, &b, sizeof b);
		return NULL;
	case IM_STORE_DOUBLE:
		if (k->type != IM_CFG_NUMBER && k->type != IM_CFG_INT &&
		    k->type != IM_CFG_DURATION)
			return "a double field needs a NUMBER, INT or DURATION "
			       "key";
		d = v ? json_number_value(v) : 0;
		memcpy(dst, &d, sizeof d);
		return NULL;
	case IM_STORE_MS:
		if (k->type != IM_CFG_DURATION)
			return "a milliseconds field needs a DURATION key";
		i = v ? (int64_t)(json_number_value(v) * 1000.0 + 0.5) : 0;
		memcpy(dst, &i, sizeof i);
		return NULL;
	case IM_STORE_JSON:
		memcpy(dst, &v, sizeof v);
		return NULL;
	default:
		return "unknown store";
	}
}

static size_t store_size(uint32_t store)
{
	switch (store) {
	case IM_STORE_BOOL:
		return sizeof(bool);
	case IM_STORE_INT:
	case IM_STORE_MS:
		return sizeof(int64_t);
	case IM_STORE_DOUBLE:
		return sizeof(double);
	default:
		return sizeof(void *);
	}
}

int im_config_fill(const im_config_key *keys, const json_t *config, void *dst,
		   size_t size, char *why, size_t whylen)
{
	memset(dst, 0, size);
	for (const im_config_key *k = keys ? keys : no_keys; k->name; k++) {
		if (k->store == IM_STORE_NONE)
			continue;
		const char *bad =
		    k->offset > size || store_size(k->store) > size - k->offset
			? "its field lies outside the struct"
			: store_key(k, json_object_get(config, k->name),
				    (char *)dst + k->offset);
		if (bad) {
			snprintf(why, whylen, "key '%s': %s", k->name, bad);
			return IM_EINVAL;
		}
	}
	return 0;
}
