/* Mustache template text -> node tree (spec v1.x without lambdas).
 *
 * One pass over the source. A tag that can stand alone (section open and
 * close, inverted, comment, partial, set-delimiter) and has only blanks
 * around it on its line takes the whole line with it, newline included.
 * Every error names the tag's line and column in the text being parsed;
 * errors inside a partial are prefixed with the including tag's. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mustache.h"

#define DELIM_MAX 16

typedef struct parser {
	im_template *u;
	const char *src;
	size_t len, pos;
	char otag[DELIM_MAX], ctag[DELIM_MAX];
	size_t olen, clen;
	int depth;
	im_partial_fn lookup;
	void *ud;
	char *err;
	size_t errlen;
} parser;

/* An open section while its body is parsed. */
typedef struct open_sect {
	const char *name;
	size_t nlen, at;
} open_sect;

static void where(const parser *p, size_t at, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < at && i < p->len; i++) {
		unsigned char c = (unsigned char)p->src[i];
		if (c == '\n') {
			++*line;
			*col = 1;
		} else if ((c & 0xC0) != 0x80) {
			++*col; /* count characters, not UTF-8 bytes */
		}
	}
}

__attribute__((format(printf, 3, 4))) static int fail(parser *p, size_t at,
						      const char *fmt, ...)
{
	unsigned line, col;
	where(p, at, &line, &col);
	int n = snprintf(p->err, p->errlen, "%u:%u: ", line, col);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return IM_EINVAL;
}

static int oom(parser *p)
{
	snprintf(p->err, p->errlen, "out of memory");
	return IM_ENOMEM;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool space(char c)
{
	return blank(c) || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static mst_node *push(parser *p, mst_block *b, mst_kind kind)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 8;
		mst_node *n = realloc(b->nodes, cap * sizeof(*n));
		if (!n)
			return NULL;
		b->nodes = n;
		b->cap = cap;
	}
	mst_node *n = &b->nodes[b->n++];
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	return n;
}

static int add_text(parser *p, mst_block *b, size_t from, size_t to)
{
	if (to <= from)
		return 0;
	mst_node *n = push(p, b, MST_TEXT);
	if (!n)
		return oom(p);
	n->text = p->src + from;
	n->len = to - from;
	p->u->size_hint += n->len;
	return 0;
}

/* "a.b.c" -> parts; "." -> no parts. */
static int split_name(parser *p, size_t at, const char *s, size_t n,
		      mst_name *out)
{
	if (n == 0)
		return fail(p, at, "empty tag name");
	for (size_t i = 0; i < n; i++)
		if (space(s[i]))
			return fail(p, at, "space inside the tag name '%.*s'",
				    (int)n, s);
	if (n == 1 && s[0] == '.')
		return 0;
	size_t parts = 1;
	for (size_t i = 0; i < n; i++)
		parts += s[i] == '.';
	out->parts = calloc(parts, sizeof(char *));
	if (!out->parts)
		return oom(p);
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (i == start)
			return fail(p, at, "bad dotted name '%.*s'", (int)n, s);
		out->parts[out->n] = strndup(s + start, i - start);
		if (!out->parts[out->n])
			return oom(p);
		out->n++;
		start = i + 1;
	}
	return 0;
}

static int keep_source(im_template *u, char *copy)
{
	if (u->n_sources == u->cap_sources) {
		size_t cap = u->cap_sources ? u->cap_sources * 2 : 4;
		char **s = realloc(u->sources, cap * sizeof(*s));
		if (!s)
			return IM_ENOMEM;
		u->sources = s;
		u->cap_sources = cap;
	}
	u->sources[u->n_sources++] = copy;
	return 0;
}

static int parse_block(parser *p, mst_block *b, const open_sect *open,
		       bool *close_alone);

/* Compiles partial `name` once per unit; returns its index in *idx. */
static int resolve_partial(parser *p, size_t at, const char *name,
			   size_t *idx)
{
	im_template *u = p->u;
	for (size_t i = 0; i < u->n_partials; i++)
		if (strcmp(u->partials[i]->name, name) == 0) {
			*idx = i;
			return 0;
		}
	if (!p->lookup)
		return fail(p, at, "unknown partial '%s' (no partials here)",
			    name);
	if (u->n_partials >= MST_MAX_PARTIALS)
		return fail(p, at, "more than %d partials", MST_MAX_PARTIALS);
	if (u->n_partials == u->cap_partials) {
		size_t cap = u->cap_partials ? u->cap_partials * 2 : 4;
		mst_partial **np = realloc(u->partials, cap * sizeof(*np));
		if (!np)
			return oom(p);
		u->partials = np;
		u->cap_partials = cap;
	}
	mst_partial *pt = calloc(1, sizeof(*pt));
	if (!pt || !(pt->name = strdup(name))) {
		free(pt);
		return oom(p);
	}
	/* Registered before parsing, so a partial including itself finds
	 * its own entry instead of recursing forever. */
	*idx = u->n_partials;
	u->partials[u->n_partials++] = pt;
	const char *text = NULL;
	size_t len = 0;
	int rc = p->lookup(p->ud, name, &text, &len);
	if (rc < 0)
		return fail(p, at, "unknown partial '%s'", name);
	if (!text) {
		pt->empty = true;
		return 0;
	}
	char *copy = malloc(len + 1);
	if (!copy || keep_source(u, copy) != 0) {
		free(copy);
		return oom(p);
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	char inner[512];
	parser sub = {.u = u, .src = copy, .len = len, .otag = "{{",
		      .ctag = "}}", .olen = 2, .clen = 2,
		      .depth = p->depth + 1, .lookup = p->lookup, .ud = p->ud,
		      .err = inner, .errlen = sizeof(inner)};
	if (sub.depth > MST_MAX_DEPTH)
		return fail(p, at, "partials nested too deeply");
	rc = parse_block(&sub, &pt->root, NULL, NULL);
	if (rc == IM_ENOMEM)
		return oom(p);
	if (rc != 0)
		return fail(p, at, "in partial '%s': %s", name, inner);
	return 0;
}

/* {{=<% %>=}}: the text between the two '=' holds two delimiters. */
static int set_delims(parser *p, size_t at, const char *s, size_t n)
{
	const char *e = s + n, *a = s;
	while (a < e && space(*a))
		a++;
	const char *a_end = a;
	while (a_end < e && !space(*a_end))
		a_end++;
	const char *c = a_end;
	while (c < e && space(*c))
		c++;
	const char *c_end = c;
	while (c_end < e && !space(*c_end))
		c_end++;
	const char *rest = c_end;
	while (rest < e && space(*rest))
		rest++;
	size_t ol = (size_t)(a_end - a), cl = (size_t)(c_end - c);
	if (!ol || !cl || rest != e || ol >= DELIM_MAX || cl >= DELIM_MAX ||
	    memchr(a, '=', ol) || memchr(c, '=', cl))
		return fail(p, at,
			    "bad delimiter change '%.*s': expected two "
			    "delimiters without spaces or '=', e.g. "
			    "{{=<%% %%>=}}",
			    (int)n, s);
	memcpy(p->otag, a, ol);
	p->olen = ol;
	memcpy(p->ctag, c, cl);
	p->clen = cl;
	return 0;
}

static const char *find(const parser *p, size_t from, const char *needle,
			size_t n)
{
	if (from > p->len)
		return NULL;
	return memmem(p->src + from, p->len - from, needle, n);
}

typedef struct tag {
	size_t start, end; /* the whole tag, delimiters included */
	char sigil;        /* 0 for a plain variable */
	const char *body;  /* trimmed content after the sigil */
	size_t blen;
} tag;

/* Reads the tag whose opening delimiter starts at `start`. */
static int read_tag(parser *p, size_t start, tag *t)
{
	size_t in = start + p->olen;
	char sigil = in < p->len ? p->src[in] : 0;
	if (!strchr("#^/!>&{=", sigil) || !sigil)
		sigil = 0;
	else
		in++;
	char close[DELIM_MAX + 1];
	size_t cl = 0;
	if (sigil == '{' || sigil == '=')
		close[cl++] = sigil == '{' ? '}' : '=';
	memcpy(close + cl, p->ctag, p->clen);
	cl += p->clen;
	const char *end = find(p, in, close, cl);
	if (!end)
		return fail(p, start, "unclosed tag: no '%.*s' after '%.*s'",
			    (int)cl, close, (int)p->olen, p->otag);
	const char *b = p->src + in, *e = end;
	while (b < e && space(*b))
		b++;
	while (e > b && space(e[-1]))
		e--;
	t->start = start;
	t->end = (size_t)(end - p->src) + cl;
	t->sigil = sigil;
	t->body = b;
	t->blen = (size_t)(e - b);
	return 0;
}

/* Whether the tag is alone on its line; sets where the line starts and
 * where the next line begins. */
static bool alone(const parser *p, const tag *t, size_t *line_start,
		  size_t *next)
{
	size_t ls = t->start;
	while (ls > 0 && p->src[ls - 1] != '\n')
		ls--;
	for (size_t i = ls; i < t->start; i++)
		if (!blank(p->src[i]))
			return false;
	size_t q = t->end;
	while (q < p->len && blank(p->src[q]))
		q++;
	if (q == p->len)
		*next = q;
	else if (p->src[q] == '\n')
		*next = q + 1;
	else if (p->src[q] == '\r' && q + 1 < p->len && p->src[q + 1] == '\n')
		*next = q + 2;
	else
		return false;
	*line_start = ls;
	return true;
}

static int add_section(parser *p, mst_block *b, const tag *t, bool lone)
{
	mst_node *n = push(p, b, t->sigil == '#' ? MST_SECTION : MST_INVERTED);
	if (!n)
		return oom(p);
	n->open_alone = lone;
	int rc = split_name(p, t->start, t->body, t->blen, &n->name);
	if (rc)
		return rc;
	if (p->depth + 1 > MST_MAX_DEPTH)
		return fail(p, t->start, "sections nested too deeply");
	open_sect os = {t->body, t->blen, t->start};
	mst_block body = {0};
	bool close_alone = false;
	p->depth++;
	rc = parse_block(p, &body, &os, &close_alone);
	p->depth--;
	/* push() may have moved the block: find the node again. */
	n = &b->nodes[b->n - 1];
	n->body = body;
	n->close_alone = close_alone;
	return rc;
}

static int add_partial(parser *p, mst_block *b, const tag *t, bool lone,
		       size_t line_start)
{
	if (t->blen == 0)
		return fail(p, t->start, "empty partial name");
	char *name = strndup(t->body, t->blen);
	if (!name)
		return oom(p);
	size_t idx = 0;
	int rc = resolve_partial(p, t->start, name, &idx);
	free(name);
	if (rc)
		return rc;
	mst_node *n = push(p, b, MST_PARTIAL);
	if (!n)
		return oom(p);
	n->partial = idx;
	n->open_alone = lone;
	if (lone && t->start > line_start) {
		n->indent_len = t->start - line_start;
		n->indent = strndup(p->src + line_start, n->indent_len);
		if (!n->indent)
			return oom(p);
	}
	return 0;
}

static int add_var(parser *p, mst_block *b, const tag *t)
{
	mst_node *n = push(p, b, t->sigil ? MST_RAW : MST_VAR);
	if (!n)
		return oom(p);
	return split_name(p, t->start, t->body, t->blen, &n->name);
}

/* Closes `open` with tag t, or says why it cannot. */
static int close_section(parser *p, const open_sect *open, const tag *t)
{
	if (!open)
		return fail(p, t->start,
			    "closing tag '%.*s' has no open section",
			    (int)t->blen, t->body);
	if (t->blen != open->nlen || memcmp(t->body, open->name, t->blen)) {
		unsigned l, c;
		where(p, open->at, &l, &c);
		return fail(p, t->start,
			    "mismatched section: '%.*s' closes '%.*s' opened "
			    "at %u:%u",
			    (int)t->blen, t->body, (int)open->nlen, open->name,
			    l, c);
	}
	return 0;
}

/* Parses until the end of the text or the tag closing `open`. */
static int parse_block(parser *p, mst_block *b, const open_sect *open,
		       bool *close_alone)
{
	size_t text_from = p->pos;
	for (;;) {
		const char *o = find(p, p->pos, p->otag, p->olen);
		if (!o) {
			int rc = add_text(p, b, text_from, p->len);
			p->pos = p->len;
			if (rc == 0 && open)
				rc = fail(p, open->at,
					  "unclosed section '%.*s': no "
					  "{{/%.*s}}",
					  (int)open->nlen, open->name,
					  (int)open->nlen, open->name);
			return rc;
		}
		tag t = {0};
		int rc = read_tag(p, (size_t)(o - p->src), &t);
		if (rc)
			return rc;
		size_t ls = 0, next = t.end;
		bool lone = t.sigil && strchr("#^/!>=", t.sigil) &&
			    alone(p, &t, &ls, &next);
		rc = add_text(p, b, text_from, lone ? ls : t.start);
		if (rc)
			return rc;
		p->pos = lone ? next : t.end;
		text_from = p->pos;
		switch (t.sigil) {
		case '!':
			break;
		case '=':
			rc = set_delims(p, t.start, t.body, t.blen);
			break;
		case '#':
		case '^':
			rc = add_section(p, b, &t, lone);
			text_from = p->pos;
			break;
		case '/':
			rc = close_section(p, open, &t);
			if (rc == 0 && close_alone)
				*close_alone = lone;
			return rc;
		case '>':
			rc = add_partial(p, b, &t, lone, ls);
			break;
		default:
			rc = add_var(p, b, &t);
			break;
		}
		if (rc)
			return rc;
	}
}

static void free_name(mst_name *n)
{
	for (size_t i = 0; i < n->n; i++)
		free(n->parts[i]);
	free(n->parts);
}

static void free_block(mst_block *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free_name(&b->nodes[i].name);
		free_block(&b->nodes[i].body);
		free(b->nodes[i].indent);
	}
	free(b->nodes);
}

void mst_free(im_template *u)
{
	if (!u)
		return;
	free_block(&u->root);
	for (size_t i = 0; i < u->n_partials; i++) {
		free_block(&u->partials[i]->root);
		free(u->partials[i]->name);
		free(u->partials[i]);
	}
	free(u->partials);
	for (size_t i = 0; i < u->n_sources; i++)
		free(u->sources[i]);
	free(u->sources);
	free(u->name);
	free(u);
}

int mst_compile(const char *name, const char *text, size_t len,
		im_partial_fn lookup, void *ud, im_template **out, char *err,
		size_t errlen)
{
	char dummy[8];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	*out = NULL;
	im_template *u = calloc(1, sizeof(*u));
	char *copy = malloc(len + 1);
	if (!u || !copy || !(u->name = strdup(name ? name : "")) ||
	    keep_source(u, copy) != 0) {
		free(copy);
		mst_free(u);
		snprintf(err, errlen, "out of memory");
		return IM_ENOMEM;
	}
	if (len)
		memcpy(copy, text, len);
	copy[len] = '\0';
	parser p = {.u = u, .src = copy, .len = len, .otag = "{{",
		    .ctag = "}}", .olen = 2, .clen = 2, .lookup = lookup,
		    .ud = ud, .err = err, .errlen = errlen};
	int rc = parse_block(&p, &u->root, NULL, NULL);
	if (rc) {
		mst_free(u);
		return rc;
	}
	*out = u;
	return 0;
}
