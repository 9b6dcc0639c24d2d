/*
 * Small helpers shared by core/config: error text, key paths, instance
 * labels and type names for messages.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_private.h"

void imc_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	if (vsnprintf(err, errlen, fmt, ap) < 0)
		err[0] = '\0';
	va_end(ap);
}

const char *imc_where_up(const im_config *cfg, const char *path)
{
	/* A copy of any length: a key of 512 bytes or more once lost its
	 * file:line here. */
	char *buf = cfg && path ? strdup(path) : NULL;
	if (!buf)
		return NULL;
	for (;;) {
		const char *w = json_string_value(json_object_get(cfg->locs, buf));
		size_t n = strlen(buf);
		if (w || !n) {
			free(buf);
			return w;
		}
		/* Drop the last segment: "[label]" or ".key" or "key". */
		if (buf[n - 1] == ']') {
			while (n && buf[n - 1] != '[')
				n--;
			n = n ? n - 1 : 0;
		} else {
			while (n && buf[n - 1] != '.' && buf[n - 1] != ']')
				n--;
			if (n && buf[n - 1] == '.')
				n--;
		}
		buf[n] = '\0';
	}
}

int imc_fail(const im_config *cfg, char *err, size_t errlen, const char *path,
	     const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	const char *w = imc_where_up(cfg, path);
	if (w)
		imc_err(err, errlen, "%s: %s: %s", w, path, msg);
	else
		imc_err(err, errlen, "%s: %s", path, msg);
	return IM_ECONFIG;
}

char *imc_path_key(const char *base, const char *key)
{
	char *p = NULL;
	int n = *base ? asprintf(&p, "%s.%s", base, key)
		      : asprintf(&p, "%s", key);
	return n < 0 ? NULL : p;
}

char *imc_path_index(const char *base, const char *label)
{
	char *p = NULL;
	return asprintf(&p, "%s[%s]", base, label) < 0 ? NULL : p;
}

/* Text of a scalar id into buf; NULL when it has none. */
static const char *id_chars(const json_t *id, char *buf, size_t len)
{
	switch (json_typeof(id)) {
	case JSON_STRING:
		return json_string_value(id);
	case JSON_INTEGER:
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
		return buf;
	case JSON_REAL:
		snprintf(buf, len, "%.17g", json_real_value(id));
		return buf;
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	default:
		return NULL;
	}
}

char *imc_id_text(const json_t *id)
{
	char buf[64];
	const char *s = id ? id_chars(id, buf, sizeof buf) : NULL;
	return s ? strdup(s) : NULL;
}

int imc_label_eq(const json_t *item, const char *s, size_t n)
{
	char buf[64];
	const json_t *id = json_object_get(item, "id");
	const char *t = id ? id_chars(id, buf, sizeof buf) : NULL;
	return t && strlen(t) == n && !memcmp(t, s, n);
}

const char *imc_type_name(const json_t *v)
{
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_OBJECT:
		return "a mapping";
	case JSON_ARRAY:
		return "a list";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a decimal number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

void imc_join_names(char *buf, size_t len, const void *table,
		    const char *(*name_at)(const void *table, size_t i))
{
	size_t used = 0;
	const char *name;
	if (!len)
		return;
	buf[0] = '\0';
	for (size_t i = 0; (name = name_at(table, i)); i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
				 name);
		if (n < 0 || (size_t)n >= len - used)
			return; /* truncated, still NUL-terminated */
		used += (size_t)n;
	}
}
