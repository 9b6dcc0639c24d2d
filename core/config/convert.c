/*
 * imc_node tree -> JSON: ${VAR} expansion, scalar typing, key paths and
 * "file:line" locations, duplicate keys and instance ids.
 *
 * Expansion happens here rather than in the parser because its errors must
 * name the key path, and an instance's path needs its id.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_private.h"

typedef struct conv {
	const char *file;
	json_t *locs;
	int expand;
	char *err;
	size_t errlen;
} conv;

typedef struct sbuf {
	char *p;
	size_t len, cap;
} sbuf;

static int sb_add(sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return IM_ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* Index of the '}' closing the "${" whose body starts at s[i], or n. */
static size_t closing_brace(const char *s, size_t i, size_t n)
{
	int depth = 1;
	while (i < n) {
		if (s[i] == '$' && i + 1 < n && (s[i + 1] == '{' || s[i + 1] == '$')) {
			depth += s[i + 1] == '{';
			i += 2;
			continue;
		}
		if (s[i] == '}' && --depth == 0)
			return i;
		i++;
	}
	return n;
}

static int expand(const char *s, size_t n, sbuf *out, char *why,
		  size_t whylen, int depth);

/* Expands one "${...}" whose body is s[b..e). */
static int expand_ref(const char *s, size_t b, size_t e, sbuf *out,
		      char *why, size_t whylen, int depth)
{
	size_t j = b;
	while (j < e && (isalnum((unsigned char)s[j]) || s[j] == '_'))
		j++;
	int name_len = (int)(j - b);
	if (name_len == 0 || name_len > 200 || isdigit((unsigned char)s[b]) ||
	    (j < e && (j + 1 >= e || s[j] != ':' || s[j + 1] != '-'))) {
		imc_err(why, whylen,
			"cannot read \"${%.*s}\"; write ${VAR} or "
			"${VAR:-default}", (int)(e - b), s + b);
		return IM_ECONFIG;
	}
	char name[256];
	snprintf(name, sizeof name, "%.*s", name_len, s + b);
	const char *v = getenv(name);
	if (j == e) {
		if (!v) {
			imc_err(why, whylen,
				"environment variable %s is not set; export it "
				"or write ${%s:-default}", name, name);
			return IM_ECONFIG;
		}
		return sb_add(out, v, strlen(v));
	}
	if (v && *v)
		return sb_add(out, v, strlen(v));
	return expand(s + j + 2, e - j - 2, out, why, whylen, depth + 1);
}

static int expand(const char *s, size_t n, sbuf *out, char *why,
		  size_t whylen, int depth)
{
	size_t i = 0;
	int rc = 0;
	if (depth > 8) {
		imc_err(why, whylen, "${...} defaults are nested too deeply");
		return IM_ECONFIG;
	}
	while (i < n && !rc) {
		if (s[i] != '$' || i + 1 >= n ||
		    (s[i + 1] != '$' && s[i + 1] != '{')) {
			rc = sb_add(out, s + i, 1);
			i++;
		} else if (s[i + 1] == '$') {
			rc = sb_add(out, "$", 1);
			i += 2;
		} else {
			size_t e = closing_brace(s, i + 2, n);
			if (e == n) {
				imc_err(why, whylen,
					"unterminated \"${\"; close it with } "
					"or write $$ for a literal $");
				return IM_ECONFIG;
			}
			rc = expand_ref(s, i + 2, e, out, why, whylen, depth);
			i = e + 1;
		}
	}
	if (!rc && !out->p)
		rc = sb_add(out, "", 0);
	if (rc == IM_ENOMEM)
		imc_err(why, whylen, "out of memory");
	return rc;
}

static int is_int(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* [-+]? (digits [. digits?] | . digits) ([eE][-+]?digits)?, with a '.' or
 * an exponent (else it is an integer). */
static int is_real(const char *s)
{
	int digits = 0, dot = 0, exp = 0;
	if (*s == '-' || *s == '+')
		s++;
	for (; isdigit((unsigned char)*s); s++)
		digits++;
	if (*s == '.') {
		dot = 1;
		for (s++; isdigit((unsigned char)*s); s++)
			digits++;
	}
	if (!digits)
		return 0;
	if (*s == 'e' || *s == 'E') {
		exp = 1;
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (!isdigit((unsigned char)*s))
			return 0;
		while (isdigit((unsigned char)*s))
			s++;
	}
	return !*s && (dot || exp);
}

json_t *imc_type_plain(const char *t)
{
	if (!*t || !strcmp(t, "~") || !strcmp(t, "null") ||
	    !strcmp(t, "Null") || !strcmp(t, "NULL"))
		return json_null();
	if (!strcmp(t, "true") || !strcmp(t, "True") || !strcmp(t, "TRUE"))
		return json_true();
	if (!strcmp(t, "false") || !strcmp(t, "False") || !strcmp(t, "FALSE"))
		return json_false();
	if (is_int(t)) {
		errno = 0;
		long long v = strtoll(t, NULL, 10);
		if (errno != ERANGE)
			return json_integer(v);
	} else if (is_real(t)) {
		json_t *r = json_real(strtod(t, NULL));
		if (r) /* NULL when out of range: keep the text */
			return r;
	}
	return json_string(t);
}

static int node_line(const imc_node *n)
{
	return n->key ? n->key_line : n->line;
}

static int fail(conv *c, const imc_node *n, const char *path, const char *why)
{
	imc_err(c->err, c->errlen, "%s:%d: %s: %s", c->file, node_line(n),
		*path ? path : "(top level)", why);
	return IM_ECONFIG;
}

static int nomem(conv *c)
{
	imc_err(c->err, c->errlen, "%s: out of memory", c->file);
	return IM_ENOMEM;
}

static int conv_scalar(conv *c, const imc_node *n, const char *path,
		       json_t **out)
{
	sbuf b = {0};
	char why[512];
	int expanded = c->expand && strstr(n->text, "${") != NULL;
	int rc = 0;

	if (c->expand && strchr(n->text, '$'))
		rc = expand(n->text, strlen(n->text), &b, why, sizeof why, 0);
	else
		rc = sb_add(&b, n->text, strlen(n->text));
	if (rc) {
		free(b.p);
		return rc == IM_ENOMEM ? nomem(c) : fail(c, n, path, why);
	}
	/* A plain scalar that expands to nothing ("${TOKEN:-}") means an
	 * empty string, not null: the user wrote a value. */
	if (!n->plain || (expanded && !*b.p))
		*out = json_string(b.p);
	else
		*out = imc_type_plain(b.p);
	free(b.p);
	if (!*out)
		return fail(c, n, path, "the value is not valid UTF-8 text");
	return 0;
}

static int conv_map(conv *c, const imc_node *n, const char *path,
		    json_t **out)
{
	json_t *obj = json_object();
	if (!obj)
		return nomem(c);
	for (size_t i = 0; i < n->nkids; i++) {
		const imc_node *k = n->kids[i];
		char *kp = imc_path_key(path, k->key);
		json_t *v = NULL;
		int rc = kp ? 0 : nomem(c);
		if (!rc && json_object_get(obj, k->key)) {
			char why[96];
			size_t j = 0;
			while (strcmp(n->kids[j]->key, k->key))
				j++;
			snprintf(why, sizeof why,
				 "duplicate key (first defined at line %d)",
				 n->kids[j]->key_line);
			rc = fail(c, k, kp, why);
		}
		if (!rc)
			rc = imc_convert(c->file, k, kp, c->expand, c->locs, &v,
					 c->err, c->errlen);
		if (!rc && json_object_set_new(obj, k->key, v))
			rc = nomem(c);
		free(kp);
		if (rc) {
			json_decref(obj);
			return rc;
		}
	}
	*out = obj;
	return 0;
}

/* The [id] an instance entry is known by; errors if it has none. */
static int instance_path(conv *c, const imc_node *item, const char *path,
			 size_t i, char **ip)
{
	char idx[32], *tmp, *idp = NULL, *label = NULL;
	const imc_node *id = NULL;
	json_t *v = NULL;
	int rc = 0;
	snprintf(idx, sizeof idx, "%zu", i);
	if (!(tmp = imc_path_index(path, idx)) ||
	    !(idp = imc_path_key(tmp, "id"))) {
		rc = nomem(c);
		goto out;
	}
	if (item->kind != IMC_MAP) {
		rc = fail(c, item, tmp, "expected a mapping with id and module");
		goto out;
	}
	for (size_t k = 0; k < item->nkids && !id; k++)
		if (!strcmp(item->kids[k]->key, "id"))
			id = item->kids[k];
	if (id && id->kind != IMC_SCALAR) {
		rc = fail(c, id, idp, id->kind == IMC_MAP
			  ? "expected a string, got a mapping"
			  : "expected a string, got a list");
		goto out;
	}
	if (id && (rc = imc_convert(c->file, id, idp, c->expand, NULL, &v,
				    c->err, c->errlen)))
		goto out;
	label = v ? imc_id_text(v) : NULL;
	if (!label || !*label)
		rc = fail(c, item, tmp, "missing id; every instance needs "
			  "an id such as `id: chat-prod`");
	else if (!(*ip = imc_path_index(path, label)))
		rc = nomem(c);
out:
	json_decref(v);
	free(label);
	free(idp);
	free(tmp);
	return rc;
}

static int conv_seq(conv *c, const imc_node *n, const char *path,
		    json_t **out)
{
	int inst = !strcmp(path, IMC_INSTANCES);
	json_t *arr = json_array();
	if (!arr)
		return nomem(c);
	for (size_t i = 0; i < n->nkids; i++) {
		const imc_node *k = n->kids[i];
		char idx[32], *ip = NULL;
		json_t *v = NULL;
		int rc = 0;
		snprintf(idx, sizeof idx, "%zu", i);
		if (inst)
			rc = instance_path(c, k, path, i, &ip);
		else if (!(ip = imc_path_index(path, idx)))
			rc = nomem(c);
		if (!rc && inst && c->locs && json_object_get(c->locs, ip)) {
			char why[320];
			snprintf(why, sizeof why,
				 "duplicate instance id (first defined at "
				 "%.256s)",
				 json_string_value(json_object_get(c->locs, ip)));
			rc = fail(c, k, ip, why);
		}
		if (!rc)
			rc = imc_convert(c->file, k, ip, c->expand, c->locs, &v,
					 c->err, c->errlen);
		if (!rc && json_array_append_new(arr, v))
			rc = nomem(c);
		free(ip);
		if (rc) {
			json_decref(arr);
			return rc;
		}
	}
	*out = arr;
	return 0;
}

int imc_convert(const char *file, const imc_node *n, const char *path,
		int expand_env, json_t *locs, json_t **out, char *err,
		size_t errlen)
{
	conv c = {.file = file, .locs = locs, .expand = expand_env,
		  .err = err, .errlen = errlen};
	*out = NULL;
	if (locs && *path) {
		json_t *where = json_sprintf("%s:%d", file, node_line(n));
		if (!where || json_object_set_new(locs, path, where))
			return nomem(&c);
	}
	switch (n->kind) {
	case IMC_SCALAR:
		return conv_scalar(&c, n, path, out);
	case IMC_MAP:
		return conv_map(&c, n, path, out);
	default:
		return conv_seq(&c, n, path, out);
	}
}

int imc_parse_value(const char *text, json_t **out, char *err, size_t errlen)
{
	imc_node *root = NULL;
	int rc = imc_yaml_parse("default", text, strlen(text), &root, err,
				errlen);
	*out = NULL;
	if (rc)
		return rc;
	if (!root) {
		*out = json_null();
		return 0;
	}
	rc = imc_convert("default", root, "", 0, NULL, out, err, errlen);
	imc_node_free(root);
	return rc;
}
