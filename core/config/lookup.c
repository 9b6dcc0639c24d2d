/*
 * Look-ups by key path ("server.listen", "plugins.instances[chat].module",
 * "subscriptions[0].channel"). Read-only, so safe from any thread.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_private.h"

const char *im_config_dir(const im_config *cfg)
{
	return cfg ? cfg->dir : "";
}

const json_t *im_config_root(const im_config *cfg)
{
	return cfg ? cfg->root : NULL;
}

const char *im_config_where(const im_config *cfg, const char *path)
{
	if (!cfg || !path)
		return NULL;
	return json_string_value(json_object_get(cfg->locs, path));
}

/* Element [s..s+n) of an array: an instance's id under plugins.instances
 * (falling back to a position), a position elsewhere. */
static const json_t *element(const json_t *arr, const char *s, size_t n,
			     int instances)
{
	size_t i;
	const json_t *item;
	if (!json_is_array(arr) || !n)
		return NULL;
	if (instances) {
		json_array_foreach(arr, i, item) {
			if (imc_label_eq(item, s, n))
				return item;
		}
	}
	size_t idx = 0;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]) || idx > ((size_t)-1) / 20)
			return NULL;
		idx = idx * 10 + (size_t)(s[i] - '0');
	}
	return json_array_get(arr, idx);
}

const json_t *im_config_get(const im_config *cfg, const char *path)
{
	const char *p = path;
	const json_t *cur;
	if (!cfg || !path)
		return NULL;
	cur = cfg->root;
	while (*p && cur) {
		if (*p == '[') {
			const char *end = strchr(p, ']');
			size_t done = (size_t)(p - path);
			int inst = done == strlen(IMC_INSTANCES) &&
				   !strncmp(path, IMC_INSTANCES, done);
			if (!end)
				return NULL;
			cur = element(cur, p + 1, (size_t)(end - p - 1), inst);
			p = end + 1;
			if (*p == '.')
				p++;
			continue;
		}
		size_t n = strcspn(p, ".[");
		if (!n || !json_is_object(cur))
			return NULL;
		cur = json_object_getn(cur, p, n);
		p += n;
		if (*p == '.')
			p++;
	}
	return cur;
}

const char *im_config_string(const im_config *cfg, const char *path,
			     const char *def)
{
	const json_t *v = im_config_get(cfg, path);
	return json_is_string(v) ? json_string_value(v) : def;
}

long long im_config_int(const im_config *cfg, const char *path, long long def)
{
	const json_t *v = im_config_get(cfg, path);
	return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

int im_config_bool(const im_config *cfg, const char *path, int def)
{
	const json_t *v = im_config_get(cfg, path);
	return json_is_boolean(v) ? json_is_true(v) : def;
}

double im_config_duration(const im_config *cfg, const char *path, double def)
{
	const json_t *v = im_config_get(cfg, path);
	double s;
	if (json_is_number(v) && json_number_value(v) >= 0)
		return json_number_value(v);
	if (json_is_string(v) &&
	    !im_config_parse_duration(json_string_value(v), &s))
		return s;
	return def;
}

long long im_config_size(const im_config *cfg, const char *path,
			 long long def)
{
	const json_t *v = im_config_get(cfg, path);
	unsigned long long b;
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		return (long long)json_integer_value(v);
	if (json_is_string(v) && !im_config_parse_size(json_string_value(v), &b))
		return (long long)b;
	return def;
}
