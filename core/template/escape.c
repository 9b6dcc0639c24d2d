/* Escaping the context by the rules a connector declared, the per-severity
 * values of those rules, and cutting texts to a limit without breaking a
 * character or an escape. No platform is known here by name. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "template/internal.h"

#define ZWSP "\xe2\x80\x8b" /* U+200B: breaks a mention, shows nothing */
#define ELLIPSIS "\xe2\x80\xa6"
#define MAX_DEPTH 64

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

/* The defuse sequence of the rules starting at s[0..n), or NULL. */
static const char *defuse_at(const tpl_rules *r, const char *s, size_t n)
{
	for (size_t k = 0; r->defuse && r->defuse[k]; k++)
		if (r->defuse[k][0] && starts(s, n, r->defuse[k]))
			return r->defuse[k];
	return NULL;
}

static bool is_control(unsigned char c)
{
	return (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f;
}

/* Room escape_text() needs for n input bytes. */
static size_t escaped_room(const tpl_rules *r, size_t n)
{
	size_t widest = 2 + 3; /* backslash + byte, then a ZWSP */
	for (size_t i = 0; r && r->outs[i]; i++)
		if (strlen(r->outs[i]) + 3 > widest)
			widest = strlen(r->outs[i]) + 3;
	return n * widest + 1;
}

/* Writes the escaped form of s[0..n) by the rules into out (room from
 * escaped_room()); returns its length. */
static size_t escape_text(const tpl_rules *r, const char *s, size_t n,
			  char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_control(c))
			continue; /* NUL and other controls: never useful */
		unsigned cls = r ? r->cls[c] : 0;
		if (cls & TPL_REPLACE) {
			size_t k = strlen(r->repl[c]);
			memcpy(out + o, r->repl[c], k);
			o += k;
		} else {
			if (cls & TPL_BACKSLASH)
				out[o++] = '\\';
			out[o++] = (char)c;
		}
		if ((cls & TPL_DEFUSE) && defuse_at(r, s + i, n - i)) {
			memcpy(out + o, ZWSP, 3);
			o += 3;
		}
	}
	return o;
}

/* Whether escape_text() would change s: most strings it would not, and
 * those are shared with the caller's context instead of copied. */
static bool needs_escape(const tpl_rules *r, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_control(c))
			return true;
		if (!r || !r->cls[c])
			continue;
		if ((r->cls[c] & (TPL_BACKSLASH | TPL_REPLACE)) ||
		    defuse_at(r, s + i, n - i))
			return true;
	}
	return false;
}

static json_t *escape_string(const tpl_rules *r, const char *key,
			     const json_t *v)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if ((is_machine_key(key) && (token_like(s, n) || url_like(s, n))) ||
	    !needs_escape(r, s, n))
		return json_incref((json_t *)v);
	char stack[512];
	size_t room = escaped_room(r, n);
	char *buf = room <= sizeof(stack) ? stack : malloc(room);
	if (!buf)
		return NULL;
	size_t len = escape_text(r, s, n, buf);
	json_t *out = json_stringn_nocheck(buf, len);
	if (buf != stack)
		free(buf);
	return out;
}

static json_t *escape_value(const tpl_rules *r, const char *key,
			    const json_t *v, int depth)
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
					    escape_value(r, k, x, depth + 1));
		return out;
	case JSON_ARRAY:
		out = json_array();
		json_array_foreach(v, i, x)
			json_array_append_new(out,
					      escape_value(r, key, x, depth + 1));
		return out;
	case JSON_STRING:
		return escape_string(r, key, v);
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

/* severity_emoji and severity_color, as the platform's rules say. */
static void add_host_fields(const tpl_rules *r, json_t *ctx)
{
	if (!r || !json_is_object(json_object_get(ctx, "incident")))
		return;
	int sev = sev_number(ctx);
	if (r->emoji && r->emoji[sev])
		json_object_set_new(ctx, "severity_emoji",
				    json_string(r->emoji[sev]));
	if (r->color)
		json_object_set_new(ctx, "severity_color",
				    json_integer((json_int_t)r->color[sev]));
}

json_t *tpl_prepare_context(const tpl_rules *r, const json_t *ctx)
{
	if (!json_is_object(ctx))
		return json_object();
	json_t *out = escape_value(r, NULL, ctx, 0);
	if (!out)
		return NULL;
	add_host_fields(r, out);
	size_t i;
	json_t *item;
	json_array_foreach(json_object_get(out, "events"), i, item)
		add_host_fields(r, item);
	return out;
}

size_t tpl_utf8_len(const char *s, size_t n)
{
	size_t chars = 0;
	for (size_t i = 0; i < n; i++)
		chars += ((unsigned char)s[i] & 0xC0) != 0x80;
	return chars;
}

/* Where a cut at byte `cut` would land inside one of the replace outputs
 * ("&amp;"): the start of that output, else `cut`. */
static size_t outside_output(const tpl_rules *r, const char *s, size_t cut)
{
	for (size_t i = 0; r->outs[i]; i++) {
		size_t k = strlen(r->outs[i]);
		for (size_t at = cut >= k ? cut - k + 1 : 0; at < cut; at++)
			if (!strncmp(s + at, r->outs[i], k))
				return at;
	}
	return cut;
}

/* Moves a cut at byte `cut` back so it splits neither a character nor
 * what the escaping made (a replace output, a backslash pair). */
static size_t safe_cut(const tpl_rules *r, const char *s, size_t cut)
{
	for (int round = 0; round < 16; round++) {
		size_t was = cut;
		while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
			cut--;
		if (r)
			cut = outside_output(r, s, cut);
		if (r && r->has_backslash) {
			size_t bs = 0;
			while (bs < cut && s[cut - 1 - bs] == '\\')
				bs++;
			if (bs % 2)
				cut--;
		}
		/* Do not end on a zero-width joiner: it would glue the
		 * ellipsis to half an emoji sequence. */
		while (cut >= 3 && !memcmp(s + cut - 3, "\xe2\x80\x8d", 3))
			cut -= 3;
		if (cut == was)
			break;
	}
	return cut;
}

int tpl_truncate(json_t *str, size_t max, const tpl_rules *r)
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
	cut = safe_cut(r, s, cut);
	char *buf = malloc(cut + 4);
	if (!buf)
		return 0;
	memcpy(buf, s, cut);
	memcpy(buf + cut, ELLIPSIS, 3);
	json_string_setn_nocheck(str, buf, cut + 3);
	free(buf);
	return 1;
}

/* A field of a connector's rules, when its struct_size reaches it. */
#define RULE(rules, field)                                                     \
	((rules)->struct_size >= offsetof(im_platform_rules, field) +          \
				     sizeof((rules)->field)                    \
	     ? (rules)->field                                                  \
	     : NULL)

static void add_output(tpl_rules *r, const char *out)
{
	size_t n = 0;
	while (r->outs[n]) {
		if (!strcmp(r->outs[n], out))
			return;
		n++;
	}
	if (n + 1 < sizeof(r->outs) / sizeof(r->outs[0]))
		r->outs[n] = out;
}

int tpl_rules_init(tpl_rules *r, const char *platform,
		   const im_platform_rules *rules,
		   int (*fit)(json_t *, const im_payload_ops *))
{
	memset(r, 0, sizeof(*r));
	if (!(r->platform = strdup(platform)))
		return IM_ENOMEM;
	r->fit = fit;
	if (!rules || rules->struct_size < sizeof(uint32_t))
		return 0;
	r->rules = rules;
	const char *bs = RULE(rules, backslash);
	for (; bs && *bs; bs++) {
		if ((unsigned char)*bs >= 0x80)
			continue; /* ASCII only */
		r->cls[(unsigned char)*bs] |= TPL_BACKSLASH;
		r->has_backslash = true;
	}
	const char *const *rep = RULE(rules, replace);
	for (size_t i = 0; rep && rep[i] && rep[i + 1]; i += 2) {
		unsigned char c = (unsigned char)rep[i][0];
		if (c == 0 || c >= 0x80 || rep[i][1] || !rep[i + 1][0])
			continue; /* one ASCII character to a non-empty text */
		r->cls[c] |= TPL_REPLACE;
		r->cls[c] &= (unsigned char)~TPL_BACKSLASH;
		r->repl[c] = rep[i + 1];
		add_output(r, rep[i + 1]);
	}
	r->defuse = RULE(rules, defuse);
	for (size_t i = 0; r->defuse && r->defuse[i]; i++)
		r->cls[(unsigned char)r->defuse[i][0]] |= TPL_DEFUSE;
	r->mentions = RULE(rules, mentions);
	r->emoji = RULE(rules, severity_emoji);
	r->color = RULE(rules, severity_color);
	return 0;
}
