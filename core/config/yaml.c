/*
 * YAML text -> imc_node tree, with the libyaml event parser.
 *
 * The tree keeps scalars as written (expansion and typing need the key path,
 * which convert.c knows). Everything YAML offers beyond plain data is
 * refused here, with file:line, because a merged config cannot keep it
 * meaningful: anchors and aliases (they would silently copy across files),
 * tags, several documents in one file, non-scalar keys.
 */
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config/config_private.h"

typedef struct pstate {
	const char *file;
	const char *text;
	size_t len;
	imc_node *root;
	imc_node *stack[IMC_MAX_DEPTH];
	size_t depth;
	int ndocs;
	char *err;
	size_t errlen;
} pstate;

void imc_node_free(imc_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		imc_node_free(n->kids[i]);
	free(n->kids);
	free(n->key);
	free(n->text);
	free(n->pkey);
	free(n);
}

static int line_of(const yaml_event_t *ev)
{
	return (int)ev->start_mark.line + 1;
}

static int fail_at(pstate *ps, int line, const char *why)
{
	imc_err(ps->err, ps->errlen, "%s:%d: %s", ps->file, line, why);
	return IM_ECONFIG;
}

static int nomem(pstate *ps)
{
	imc_err(ps->err, ps->errlen, "%s: out of memory", ps->file);
	return IM_ENOMEM;
}

static imc_node *top(pstate *ps)
{
	return ps->depth ? ps->stack[ps->depth - 1] : NULL;
}

/* Whether the next node of the innermost mapping is a key. */
static int expects_key(pstate *ps)
{
	imc_node *t = top(ps);
	return t && t->kind == IMC_MAP && !t->pkey;
}

/* Gives `n` to its parent (or makes it the root); the tree owns it after. */
static int attach(pstate *ps, imc_node *n)
{
	imc_node *t = top(ps);
	if (!t) {
		ps->root = n;
		return 0;
	}
	if (t->nkids == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		imc_node **k = realloc(t->kids, cap * sizeof *k);
		if (!k) {
			imc_node_free(n);
			return nomem(ps);
		}
		t->kids = k;
		t->cap = cap;
	}
	if (t->kind == IMC_MAP) {
		n->key = t->pkey;
		n->key_line = t->pkey_line;
		t->pkey = NULL;
	}
	t->kids[t->nkids++] = n;
	return 0;
}

/* Refuses anchors and tags, which libyaml reports on any node event. */
static int plain_data(pstate *ps, const yaml_event_t *ev,
		      const yaml_char_t *anchor, const yaml_char_t *tag)
{
	char why[256];
	if (anchor) {
		snprintf(why, sizeof why,
			 "YAML anchors (&%.64s) are not supported; write the "
			 "value out in full", (const char *)anchor);
		return fail_at(ps, line_of(ev), why);
	}
	if (tag) {
		snprintf(why, sizeof why,
			 "YAML tags (%.64s) are not supported; quote the value "
			 "to make it a string", (const char *)tag);
		return fail_at(ps, line_of(ev), why);
	}
	return 0;
}

static int on_scalar(pstate *ps, const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	int rc = plain_data(ps, ev, ev->data.scalar.anchor,
			    ev->data.scalar.tag);
	if (rc)
		return rc;
	if (memchr(v, '\0', n))
		return fail_at(ps, line_of(ev),
			       "a NUL character is not allowed in a value");
	if (expects_key(ps)) {
		imc_node *t = top(ps);
		if (n == 0)
			return fail_at(ps, line_of(ev), "empty mapping key");
		t->pkey = strdup(v);
		t->pkey_line = line_of(ev);
		return t->pkey ? 0 : nomem(ps);
	}
	imc_node *node = calloc(1, sizeof *node);
	if (!node || !(node->text = strdup(v))) {
		free(node);
		return nomem(ps);
	}
	node->kind = IMC_SCALAR;
	node->line = line_of(ev);
	node->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	return attach(ps, node);
}

static int on_start(pstate *ps, const yaml_event_t *ev, imc_kind kind)
{
	const yaml_char_t *anchor = kind == IMC_MAP
		? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
	const yaml_char_t *tag = kind == IMC_MAP
		? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
	int rc = plain_data(ps, ev, anchor, tag);
	if (rc)
		return rc;
	if (expects_key(ps))
		return fail_at(ps, line_of(ev),
			       "mapping keys must be plain text, not a "
			       "mapping or a list");
	if (ps->depth == IMC_MAX_DEPTH)
		return fail_at(ps, line_of(ev), "nesting is too deep");
	imc_node *node = calloc(1, sizeof *node);
	if (!node)
		return nomem(ps);
	node->kind = kind;
	node->line = line_of(ev);
	if ((rc = attach(ps, node)))
		return rc;
	ps->stack[ps->depth++] = node;
	return 0;
}

static int on_event(pstate *ps, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (ps->ndocs++)
			return fail_at(ps, line_of(ev),
				       "several YAML documents in one file are "
				       "not supported; use one file each");
		return 0;
	case YAML_ALIAS_EVENT: {
		char why[160];
		snprintf(why, sizeof why,
			 "YAML aliases (*%.64s) are not supported; write the "
			 "value out in full",
			 (const char *)ev->data.alias.anchor);
		return fail_at(ps, line_of(ev), why);
	}
	case YAML_SCALAR_EVENT:
		return on_scalar(ps, ev);
	case YAML_MAPPING_START_EVENT:
		return on_start(ps, ev, IMC_MAP);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(ps, ev, IMC_SEQ);
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
		if (ps->depth)
			ps->depth--;
		return 0;
	default:
		return 0;
	}
}

/* Line and column of a reader error, which has an offset but no mark. */
static void offset_pos(const pstate *ps, size_t off, size_t *line,
		       size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < ps->len; i++) {
		if (ps->text[i] == '\n') {
			++*line;
			*col = 1;
		} else {
			++*col;
		}
	}
}

static int syntax_error(pstate *ps, const yaml_parser_t *p)
{
	size_t line = p->problem_mark.line + 1, col = p->problem_mark.column + 1;
	if (p->error == YAML_MEMORY_ERROR)
		return nomem(ps);
	if (p->error == YAML_READER_ERROR)
		offset_pos(ps, p->problem_offset, &line, &col);
	const char *problem = p->problem ? p->problem : "unknown error";
	if (p->context)
		imc_err(ps->err, ps->errlen,
			"%s:%zu:%zu: YAML syntax error: %s (%s)", ps->file,
			line, col, problem, p->context);
	else
		imc_err(ps->err, ps->errlen, "%s:%zu:%zu: YAML syntax error: %s",
			ps->file, line, col, problem);
	return IM_ECONFIG;
}

int imc_yaml_parse(const char *file, const char *text, size_t len,
		   imc_node **root, char *err, size_t errlen)
{
	pstate ps = {.file = file, .text = text, .len = len, .err = err,
		     .errlen = errlen};
	yaml_parser_t p;
	int rc = 0;

	*root = NULL;
	if (!yaml_parser_initialize(&p))
		return nomem(&ps);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	for (;;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p, &ev)) {
			rc = syntax_error(&ps, &p);
			break;
		}
		yaml_event_type_t type = ev.type;
		rc = on_event(&ps, &ev);
		yaml_event_delete(&ev);
		if (rc || type == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&p);
	if (rc) {
		imc_node_free(ps.root);
		return rc;
	}
	*root = ps.root;
	return 0;
}
