/* application/x-www-form-urlencoded as Slack sends slash commands and
 * interactivity payloads. Strict: anything malformed is refused whole, so
 * a handler never acts on half a request. */
#include <stdlib.h>
#include <string.h>

#include "slack.h"

#define MAX_FIELDS 64

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes [p, p+n) into out (room for n bytes); returns the length or -1. */
static long decode(const char *p, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '+') {
			out[o++] = ' ';
		} else if (c == '%') {
			int hi = i + 2 < n ? hexval(p[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(p[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return -1;
			char v = (char)(hi << 4 | lo);
			if (v == '\0')
				return -1;
			out[o++] = v;
			i += 2;
		} else if (c == '\0') {
			return -1;
		} else {
			out[o++] = c;
		}
	}
	return (long)o;
}

json_t *slk_form_parse(const char *body, size_t len)
{
	json_t *obj = json_object();
	char *buf = malloc(len + 1);
	size_t fields = 0;
	if (!obj || !buf)
		goto fail;
	for (size_t i = 0; i < len;) {
		size_t end = i;
		while (end < len && body[end] != '&')
			end++;
		if (end > i) {
			const char *eq = memchr(body + i, '=', end - i);
			size_t klen = eq ? (size_t)(eq - (body + i)) : end - i;
			if (++fields > MAX_FIELDS || klen == 0)
				goto fail;
			long kl = decode(body + i, klen, buf);
			if (kl <= 0)
				goto fail;
			char *key = strndup(buf, (size_t)kl);
			size_t vstart = eq ? i + klen + 1 : end;
			long vl = decode(body + vstart, end - vstart, buf);
			json_t *v = vl >= 0 ? json_stringn(buf, (size_t)vl)
					    : NULL;
			/* json_stringn refuses invalid UTF-8: broken input. */
			if (!key || !v || json_object_set_new(obj, key, v)) {
				free(key);
				goto fail;
			}
			free(key);
		}
		i = end + 1;
	}
	free(buf);
	return obj;
fail:
	free(buf);
	json_decref(obj);
	return NULL;
}
