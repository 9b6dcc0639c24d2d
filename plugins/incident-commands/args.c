/* Shell-like argument splitting for chat commands. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <im/types.h>

#include "args.h"

/* Typographic quotes that phones and macOS put in place of '"'. */
#define LDQUO "\xe2\x80\x9c"
#define RDQUO "\xe2\x80\x9d"

typedef struct buf {
	char *s;
	size_t len, cap;
} buf;

static int buf_putc(buf *b, char c)
{
	if (b->len + 1 >= b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 32;
		char *s = realloc(b->s, cap);
		if (!s)
			return IM_ENOMEM;
		b->s = s;
		b->cap = cap;
	}
	b->s[b->len++] = c;
	b->s[b->len] = '\0';
	return 0;
}

static int push(ic_args *a, buf *b)
{
	char **v = realloc(a->v, (a->n + 2) * sizeof(*v));
	if (!v)
		return IM_ENOMEM;
	a->v = v;
	a->v[a->n] = b->s ? b->s : strdup("");
	if (!a->v[a->n])
		return IM_ENOMEM;
	a->v[++a->n] = NULL;
	*b = (buf){0};
	return 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	       c == '\v';
}

static int unclosed(const char *quote, const char *text, char *err,
		    size_t errlen)
{
	snprintf(err, errlen,
		 "unclosed %s in: %s\nClose the quote, or escape a literal "
		 "one with a backslash (`\\%s`).",
		 quote, text, quote[0] == '\'' ? "'" : "\"");
	return IM_EINVAL;
}

/* Reads a quoted part starting after the opening quote; *p ends after the
 * closing one. `close` is the closing quote as a string. */
static int quoted(const char **p, const char *close, buf *b)
{
	size_t clen = strlen(close);
	const char *s = *p;
	while (*s && strncmp(s, close, clen) != 0) {
		/* In "..." a backslash escapes only the quote and itself. */
		if (close[0] == '"' && s[0] == '\\' &&
		    (s[1] == '"' || s[1] == '\\'))
			s++;
		if (buf_putc(b, *s++))
			return IM_ENOMEM;
	}
	if (!*s)
		return IM_EINVAL;
	*p = s + clen;
	return 0;
}

static int split(const char *text, ic_args *out, char *err, size_t errlen)
{
	const char *p = text;
	buf b = {0};
	bool in_token = false;
	int rc = 0;
	while (rc == 0) {
		if (!*p || is_space(*p)) {
			if (in_token)
				rc = push(out, &b);
			in_token = false;
			if (!*p)
				break;
			p++;
			continue;
		}
		in_token = true;
		if (*p == '\'' || *p == '"' ||
		    strncmp(p, LDQUO, strlen(LDQUO)) == 0) {
			const char *quote = *p == '\'' ? "'" : "\"";
			const char *close = *p == '\'' ? "'"
					    : *p == '"' ? "\""
							: RDQUO;
			p += *p == '\'' || *p == '"' ? 1 : strlen(LDQUO);
			rc = quoted(&p, close, &b);
			if (rc == IM_EINVAL)
				rc = unclosed(quote, text, err, errlen);
			continue;
		}
		if (*p == '\\' && p[1])
			p++;
		rc = buf_putc(&b, *p++);
	}
	free(b.s);
	return rc;
}

int ic_args_split(const char *text, ic_args *out, char *err, size_t errlen)
{
	*out = (ic_args){0};
	if (errlen)
		err[0] = '\0';
	int rc = split(text ? text : "", out, err, errlen);
	if (rc == 0 && !out->v) {
		out->v = calloc(1, sizeof(*out->v));
		rc = out->v ? 0 : IM_ENOMEM;
	}
	if (rc != 0) {
		if (rc == IM_ENOMEM && errlen)
			snprintf(err, errlen, "out of memory");
		ic_args_free(out);
	}
	return rc;
}

void ic_args_free(ic_args *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	*a = (ic_args){0};
}

char *ic_args_join(const ic_args *a, size_t from)
{
	size_t len = 1;
	for (size_t i = from; i < a->n; i++)
		len += strlen(a->v[i]) + 1;
	char *s = malloc(len), *w = s;
	if (!s)
		return NULL;
	*w = '\0';
	for (size_t i = from; i < a->n; i++) {
		size_t l = strlen(a->v[i]);
		if (w != s)
			*w++ = ' ';
		memcpy(w, a->v[i], l + 1);
		w += l;
	}
	return s;
}
