/* Platform text escaping of the context, host-made fields, and cutting
 * texts to a platform limit without breaking a character or an escape. */
#include <stdlib.h>
#include <string.h>

#include "template/internal.h"

#define ZWSP "\xe2\x80\x8b" /* U+200B: breaks a mention, shows nothing */
#define ELLIPSIS "\xe2\x80\xa6"
#define MAX_DEPTH 64

tpl_platform tpl_platform_of(const char *name)
{
	if (!name)
		return TPL_OTHER;
	if (!strcmp(name, "slack"))
		return TPL_SLACK;
	if (!strcmp(name, "teams"))
		return TPL_TEAMS;
	if (!strcmp(name, "discord"))
		return TPL_DISCORD;
	return TPL_OTHER;
}

/* Values the host makes itself. They pass unescaped when they look like
 * what they should be, so ids stay usable as button values and URLs as
 * links; anything else under these keys is escaped like text. */
static const char *const machine_keys[] = {
    "id",	  "subject",	 "duplicate_of", "severity",
    "severity_label", "status",	 "created_at",	 "updated_at",
    "time",	  "type",	 "source",	 "specversion",
    "datacontenttype", "via",	 "url",		 "public_url",
    "channel",	  "verb",	 NULL};

static bool is_machine_key(const char *key)
{
	for (size_t i = 0; key && machine_keys[i]; i++)
		if (!strcmp(key, machine_keys[i]))
			return true;
	return false;
}

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* INC-7, SEV-2, 2026-11-27T10:00:00.000Z, im.incident.declare, U123 */
static bool token_like(const char *s, size_t n)
{
	if (!n || n > 200 || !alnum(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!alnum(s[i]) && !strchr("._:+-", s[i]))
			return false;
	return true;
}

static bool url_like(const char *s, size_t n)
{
	size_t skip = !strncmp(s, "https://", 8) ? 8
		      : !strncmp(s, "http://", 7) ? 7
						  : 0;
	if (!skip || n > 2000)
		return false;
	for (size_t i = skip; i < n; i++)
		if (!alnum(s[i]) && !strchr("._~:/?#=%+,;!$'-", s[i]))
			return false;
	return true;
}

static bool starts(const char *s, size_t n, const char *w)
{
	size_t k = strlen(w);
	return n >= k && memcmp(s, w, k) == 0;
}

/* Writes the escaped form of s[0..n) for the platform into out (room for
 * 6 bytes per input byte); returns its length. */
static size_t escape_text(tpl_platform p, const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
			continue; /* NUL and other controls: never useful */
		if (p == TPL_SLACK && (c == '&' || c == '<' || c == '>')) {
			const char *e = c == '&' ? "&amp;" : c == '<' ? "&lt;"
								      : "&gt;";
			memcpy(out + o, e, strlen(e));
			o += strlen(e);
			continue;
		}
		if ((p == TPL_DISCORD || p == TPL_TEAMS) &&
		    strchr("\\*_~`|>#-[]()", (int)c))
			out[o++] = '\\';
		out[o++] = (char)c;
		if (p != TPL_DISCORD)
			continue;
		const char *rest = s + i + 1;
		size_t left = n - i - 1;
		if ((c == '@' && (starts(rest, left, "everyone") ||
				  starts(rest, left, "here"))) ||
		    (c == '<' && left &&
		     ((rest[0] && strchr("@#:/!", rest[0])) || starts(rest, left, "t:") ||
		      starts(rest, left, "a:")))) {
			memcpy(out + o, ZWSP, 3);
			o += 3;
		}
	}
	return o;
}

/* Whether escape_text() would change s: most strings it would not, and
 * those are shared with the caller's context instead of copied. */
static bool needs_escape(tpl_platform p, const char *s, size_t n)
{
	static const char *const special[] = {
	    [TPL_OTHER] = "", [TPL_SLACK] = "&<>",
	    [TPL_TEAMS] = "\\*_~`|>#-[]()", [TPL_DISCORD] = "\\*_~`|>#-[]()<@"};
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ||
		    (c >= 0x20 && c < 0x80 && strchr(special[p], (int)c)))
			return true;
	}
	return false;
}

static json_t *escape_string(tpl_platform p, const char *key,
			     const json_t *v)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if ((is_machine_key(key) && (token_like(s, n) || url_like(s, n))) ||
	    !needs_escape(p, s, n))
		return json_incref((json_t *)v);
	char stack[512];
	char *buf = n * 6 < sizeof(stack) ? stack : malloc(n * 6 + 1);
	if (!buf)
		return NULL;
	size_t len = escape_text(p, s, n, buf);
	json_t *out = json_stringn_nocheck(buf, len);
	if (buf != stack)
		free(buf);
	return out;
}

static json_t *escape_value(tpl_platform p, const char *key, const json_t *v,
			    int depth)
{
	if (depth > MAX_DEPTH)
		return json_null();
	const char *k;
	json_t *x, *out;
	size_t i;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		out = json_object();
		json_object_foreach((json_t *)v, k, x)
			json_object_set_new(out, k,
					    escape_value(p, k, x, depth + 1));
		return out;
	case JSON_ARRAY:
		out = json_array();
		json_array_foreach(v, i, x)
			json_array_append_new(out,
					      escape_value(p, key, x, depth + 1));
		return out;
	case JSON_STRING:
		return escape_string(p, key, v);
	default:
		return json_incref((json_t *)v);
	}
}

static int sev_number(const json_t *ctx)
{
	const char *s = json_string_value(
	    json_object_get(json_object_get(ctx, "incident"), "severity"));
	if (s && !strncmp(s, "SEV-", 4) && s[4] >= '1' && s[4] <= '4' &&
	    !s[5])
		return s[4] - '0';
	return 0;
}

/* severity_emoji and severity_color, decided by the host per platform. */
static void add_host_fields(tpl_platform p, json_t *ctx)
{
	static const char *const slack_emoji[] = {
	    ":grey_question:", ":red_circle:", ":large_orange_circle:",
	    ":large_yellow_circle:", ":white_circle:"};
	static const char *const emoji[] = {
	    "\xe2\x9d\x94", "\xf0\x9f\x94\xb4", "\xf0\x9f\x9f\xa0",
	    "\xf0\x9f\x9f\xa1", "\xe2\x9a\xaa"};
	static const json_int_t colors[] = {9807270, 15158332, 15105570,
					    15844367, 9807270};
	if (!json_is_object(json_object_get(ctx, "incident")))
		return;
	int sev = sev_number(ctx);
	json_object_set_new(ctx, "severity_emoji",
			    json_string(p == TPL_SLACK ? slack_emoji[sev]
						       : emoji[sev]));
	json_object_set_new(ctx, "severity_color", json_integer(colors[sev]));
}

json_t *tpl_prepare_context(tpl_platform p, const json_t *ctx)
{
	if (!json_is_object(ctx))
		return json_object();
	json_t *out = escape_value(p, NULL, ctx, 0);
	if (!out)
		return NULL;
	add_host_fields(p, out);
	size_t i;
	json_t *item;
	json_array_foreach(json_object_get(out, "events"), i, item)
		add_host_fields(p, item);
	return out;
}

size_t tpl_utf8_len(const char *s, size_t n)
{
	size_t chars = 0;
	for (size_t i = 0; i < n; i++)
		chars += ((unsigned char)s[i] & 0xC0) != 0x80;
	return chars;
}

/* Moves a cut at byte `cut` back so it splits neither a character nor
 * what the escaping above made (an entity, a backslash pair). */
static size_t safe_cut(tpl_platform p, const char *s, size_t cut)
{
	while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
		cut--;
	if (p == TPL_SLACK) {
		for (size_t k = cut; k > 0 && cut - k < 6; k--) {
			if (s[k - 1] == ';')
				break;
			if (s[k - 1] == '&') {
				cut = k - 1;
				break;
			}
		}
	} else if (p == TPL_DISCORD || p == TPL_TEAMS) {
		size_t bs = 0;
		while (bs < cut && s[cut - 1 - bs] == '\\')
			bs++;
		if (bs % 2)
			cut--;
	}
	/* Do not end on a zero-width joiner: it would glue the ellipsis to
	 * half an emoji sequence. */
	while (cut >= 3 && !memcmp(s + cut - 3, "\xe2\x80\x8d", 3))
		cut -= 3;
	return cut;
}

int tpl_truncate(json_t *str, size_t max, tpl_platform p)
{
	const char *s = json_string_value(str);
	size_t n = json_string_length(str);
	if (!s || tpl_utf8_len(s, n) <= max)
		return 0;
	if (max == 0) {
		json_string_setn_nocheck(str, "", 0);
		return 1;
	}
	/* Byte offset where character max - 1 starts: room for "…". */
	size_t chars = 0, cut = 0;
	for (cut = 0; cut < n; cut++) {
		if (((unsigned char)s[cut] & 0xC0) != 0x80) {
			if (chars == max - 1)
				break;
			chars++;
		}
	}
	cut = safe_cut(p, s, cut);
	char *buf = malloc(cut + 4);
	if (!buf)
		return 0;
	memcpy(buf, s, cut);
	memcpy(buf + cut, ELLIPSIS, 3);
	json_string_setn_nocheck(str, buf, cut + 3);
	free(buf);
	return 1;
}
