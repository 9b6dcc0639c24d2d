/* Renders a compiled unit against a JSON context.
 *
 * Everything render() touches is local to the call (output buffer, context
 * stack, indentation frames), so one compiled unit serves any number of
 * threads at once.
 *
 * Truthiness follows the spec's reference (JavaScript) rules: missing,
 * null, false, 0, "" and [] are false; everything else, {} included, is
 * true. A list renders its section once per item; any other true value
 * becomes the section's context.
 *
 * Escaping: IM_ESCAPE_HTML is the Mustache default ({{{x}}} and {{& x}} are
 * raw). IM_ESCAPE_JSON means the output is JSON and the host, not the
 * template, decides escaping: every interpolation is escaped as a JSON
 * string body, {{{x}}} and {{& x}} too, so no value can break out of its
 * string. IM_ESCAPE_NONE escapes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mustache.h"

#define STACK_MAX 256
#define OUTPUT_MAX ((size_t)64 << 20)
/* Section passes and partials entered per render: nested list sections
 * multiply (twenty levels over four items is 4^20 passes that write
 * nothing), so the work is bounded as well as the output. */
#define PASSES_MAX ((size_t)1 << 20)

typedef struct frame {
	const char *indent; /* added at the start of each template line */
	size_t ilen;
	bool bol;           /* at the start of a line, indent not yet out */
} frame;

typedef struct rctx {
	const im_template *u;
	im_escape esc;
	char *buf;
	size_t len, cap;
	int rc;
	const json_t *stack[STACK_MAX];
	size_t n;
	int depth;
	size_t passes;
} rctx;

static bool grow(rctx *r, size_t more)
{
	if (r->rc)
		return false;
	if (r->len + more + 1 <= r->cap)
		return true;
	if (r->len + more > OUTPUT_MAX) {
		r->rc = IM_EINVAL;
		return false;
	}
	size_t cap = r->cap * 2;
	if (cap < r->len + more + 1)
		cap = r->len + more + 1;
	char *b = realloc(r->buf, cap);
	if (!b) {
		r->rc = IM_ENOMEM;
		return false;
	}
	r->buf = b;
	r->cap = cap;
	return true;
}

static void put(rctx *r, const char *s, size_t n)
{
	if (n && grow(r, n)) {
		memcpy(r->buf + r->len, s, n);
		r->len += n;
	}
}

/* What each byte becomes, per escape mode; NULL keeps the byte. */
static const char *html_esc(unsigned char c)
{
	switch (c) {
	case '&': return "&amp;";
	case '<': return "&lt;";
	case '>': return "&gt;";
	case '"': return "&quot;";
	case '\'': return "&#39;";
	default: return NULL;
	}
}

static const char *json_esc(unsigned char c, char tmp[8])
{
	switch (c) {
	case '"': return "\\\"";
	case '\\': return "\\\\";
	case '\n': return "\\n";
	case '\r': return "\\r";
	case '\t': return "\\t";
	case '\b': return "\\b";
	case '\f': return "\\f";
	default:
		if (c >= 0x20)
			return NULL;
		snprintf(tmp, 8, "\\u%04x", c);
		return tmp;
	}
}

static void put_escaped(rctx *r, const char *s, size_t n, im_escape esc)
{
	if (esc == IM_ESCAPE_NONE) {
		put(r, s, n);
		return;
	}
	size_t run = 0;
	char tmp[8];
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *e = esc == IM_ESCAPE_HTML ? html_esc(c)
						      : json_esc(c, tmp);
		if (!e)
			continue;
		put(r, s + run, i - run);
		put(r, e, strlen(e));
		run = i + 1;
	}
	put(r, s + run, n - run);
}

/* The shortest text that reads back as the same double (1.21, not
 * 1.2099999999999999). */
static int format_real(double d, char *b, size_t len)
{
	int n = 0;
	for (int prec = 1; prec <= 17; prec++) {
		n = snprintf(b, len, "%.*g", prec, d);
		if (strtod(b, NULL) == d)
			break;
	}
	return n;
}

static void interpolate(rctx *r, const json_t *v, bool raw)
{
	im_escape esc = raw && r->esc != IM_ESCAPE_JSON ? IM_ESCAPE_NONE
							: r->esc;
	char num[40];
	int n;
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_STRING:
		put_escaped(r, json_string_value(v), json_string_length(v),
			    esc);
		break;
	case JSON_INTEGER:
		n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
			     json_integer_value(v));
		put(r, num, (size_t)n);
		break;
	case JSON_REAL:
		n = format_real(json_real_value(v), num, sizeof(num));
		put(r, num, (size_t)n);
		break;
	case JSON_TRUE:
		put(r, "true", 4);
		break;
	case JSON_FALSE:
		put(r, "false", 5);
		break;
	case JSON_OBJECT:
	case JSON_ARRAY: {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
					    JSON_PRESERVE_ORDER);
		if (!s) {
			r->rc = IM_ENOMEM;
			return;
		}
		put_escaped(r, s, strlen(s), esc);
		free(s);
		break;
	}
	default:
		break;
	}
}

/* Dotted names: the first part is looked up from the innermost context
 * outwards; the rest only inside what the first part found. */
static const json_t *lookup(const rctx *r, const mst_name *nm)
{
	if (nm->n == 0)
		return r->n ? r->stack[r->n - 1] : NULL;
	const json_t *v = NULL;
	for (size_t i = r->n; i-- > 0 && !v;)
		if (json_is_object(r->stack[i]))
			v = json_object_get(r->stack[i], nm->parts[0]);
	for (size_t k = 1; k < nm->n && v; k++)
		v = json_is_object(v) ? json_object_get(v, nm->parts[k])
				      : NULL;
	return v;
}

static bool truthy(const json_t *v)
{
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_NULL:
	case JSON_FALSE:
		return false;
	case JSON_ARRAY:
		return json_array_size(v) > 0;
	case JSON_STRING:
		return json_string_length(v) > 0;
	case JSON_INTEGER:
		return json_integer_value(v) != 0;
	case JSON_REAL:
		return json_real_value(v) != 0.0;
	default:
		return true;
	}
}

/* Template text, indented after each newline inside an indented partial. */
static void put_text(rctx *r, frame *f, const char *s, size_t n)
{
	if (!f->ilen) {
		put(r, s, n);
		return;
	}
	while (n) {
		if (f->bol) {
			put(r, f->indent, f->ilen);
			f->bol = false;
		}
		const char *nl = memchr(s, '\n', n);
		size_t k = nl ? (size_t)(nl - s) + 1 : n;
		put(r, s, k);
		s += k;
		n -= k;
		f->bol = nl != NULL;
	}
}

/* A tag's output starts a line of an indented partial: indent first. */
static void at_tag(rctx *r, frame *f)
{
	if (f->ilen && f->bol) {
		put(r, f->indent, f->ilen);
		f->bol = false;
	}
}

static void render_block(rctx *r, const mst_block *b, frame *f);

static bool enter(rctx *r, const json_t *ctx)
{
	if (r->n >= STACK_MAX || r->depth >= STACK_MAX ||
	    ++r->passes > PASSES_MAX) {
		r->rc = IM_EINVAL; /* runaway recursion or work */
		return false;
	}
	if (ctx)
		r->stack[r->n++] = ctx;
	r->depth++;
	return true;
}

static void leave(rctx *r, const json_t *ctx)
{
	if (ctx)
		r->n--;
	r->depth--;
}

static void render_body(rctx *r, const mst_node *nd, frame *f,
			const json_t *ctx)
{
	if (!enter(r, ctx))
		return;
	/* Each pass starts where the body starts in the source: on a line of
	 * its own after a lone open tag, else right after the tag. */
	f->bol = nd->open_alone;
	render_block(r, &nd->body, f);
	/* A close tag sharing its line starts that line: the indentation
	 * in front of it belongs to the body. */
	if (!nd->close_alone)
		at_tag(r, f);
	leave(r, ctx);
}

static void render_section(rctx *r, const mst_node *nd, frame *f)
{
	if (!nd->open_alone)
		at_tag(r, f);
	const json_t *v = lookup(r, &nd->name);
	bool yes = truthy(v);
	if (nd->kind == MST_INVERTED) {
		if (!yes)
			render_body(r, nd, f, NULL);
	} else if (yes && json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v) && !r->rc; i++)
			render_body(r, nd, f, json_array_get(v, i));
	} else if (yes) {
		render_body(r, nd, f, v);
	}
	f->bol = nd->close_alone;
}

static void render_partial(rctx *r, const mst_node *nd, frame *f)
{
	const mst_partial *pt = r->u->partials[nd->partial];
	if (!nd->open_alone) {
		at_tag(r, f);
		frame inner = {0};
		if (!pt->empty && enter(r, NULL)) {
			render_block(r, &pt->root, &inner);
			leave(r, NULL);
		}
		return;
	}
	/* A lone partial: its lines take the line's indentation, on top of
	 * any this frame already adds. */
	frame inner = {.bol = true, .ilen = f->ilen + nd->indent_len};
	char *ind = NULL;
	if (inner.ilen) {
		ind = malloc(inner.ilen);
		if (!ind) {
			r->rc = IM_ENOMEM;
			return;
		}
		if (f->ilen)
			memcpy(ind, f->indent, f->ilen);
		if (nd->indent_len)
			memcpy(ind + f->ilen, nd->indent, nd->indent_len);
		inner.indent = ind;
	}
	if (!pt->empty && enter(r, NULL)) {
		render_block(r, &pt->root, &inner);
		leave(r, NULL);
	}
	free(ind);
	f->bol = true;
}

static void render_block(rctx *r, const mst_block *b, frame *f)
{
	for (size_t i = 0; i < b->n && !r->rc; i++) {
		const mst_node *nd = &b->nodes[i];
		switch (nd->kind) {
		case MST_TEXT:
			put_text(r, f, nd->text, nd->len);
			break;
		case MST_VAR:
		case MST_RAW:
			at_tag(r, f);
			interpolate(r, lookup(r, &nd->name), nd->kind == MST_RAW);
			break;
		case MST_SECTION:
		case MST_INVERTED:
			render_section(r, nd, f);
			break;
		case MST_PARTIAL:
			render_partial(r, nd, f);
			break;
		}
	}
}

int mst_render(const im_template *u, const json_t *context, im_escape esc,
	       char **out, size_t *out_len)
{
	rctx rr = {.u = u, .esc = esc,
		   .cap = u->size_hint + u->size_hint / 2 + 256};
	rctx *r = &rr;
	r->buf = malloc(r->cap);
	if (!r->buf)
		return IM_ENOMEM;
	if (context)
		r->stack[r->n++] = context;
	frame top = {0};
	render_block(r, &u->root, &top);
	int rc = r->rc;
	if (rc == 0) {
		r->buf[r->len] = '\0';
		*out = r->buf;
		if (out_len)
			*out_len = r->len;
	} else {
		free(r->buf);
	}
	return rc;
}
