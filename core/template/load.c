/* Finding template files, compiling them with their engines, and the
 * override-over-default rule. */
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"
#include "metrics/metrics.h"
#include "template/internal.h"
#include "paths/paths.h"

#define FILE_MAX ((long)1 << 20)

static bool is_dir(const char *p)
{
	struct stat st;
	return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool same_dir(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];
	return a && b && realpath(a, ra) && realpath(b, rb) &&
	       strcmp(ra, rb) == 0;
}

static int use_dir(char *buf, size_t len, const char *dir)
{
	char real[PATH_MAX];
	if (!is_dir(dir) || !realpath(dir, real))
		return IM_ENOTFOUND;
	snprintf(buf, len, "%s", real);
	return 0;
}

int im_template_default_dir(char *buf, size_t len)
{
	const char *env = getenv("IM_TEMPLATES_DEFAULT");
	char dir[PATH_MAX];
	if (env && *env)
		return use_dir(buf, len, env);
	if (im_paths_get(IM_PATH_TEMPLATES, dir, sizeof(dir)) != 0) {
		snprintf(buf, len, "%s", dir);
		return IM_ENOTFOUND;
	}
	return use_dir(buf, len, dir);
}

static int read_text(const char *path, char **text, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return IM_ENOTFOUND;
	int rc = IM_EIO;
	char *buf = NULL;
	long size = -1;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
	    size <= FILE_MAX && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)size + 1)) &&
	    fread(buf, 1, (size_t)size, f) == (size_t)size) {
		buf[size] = '\0';
		*text = buf;
		*len = (size_t)size;
		buf = NULL;
		rc = 0;
	}
	free(buf);
	fclose(f);
	return rc;
}

static bool good_name(const char *s, size_t n)
{
	if (!n || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') &&
		    !(s[i] >= 'A' && s[i] <= 'Z') &&
		    !(s[i] >= '0' && s[i] <= '9') && !strchr("_-.", s[i]))
			return false;
	return strstr(s, "..") == NULL;
}

static void problem(im_template_set *set, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void problem(im_template_set *set, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(set->problems, json_string(buf));
	LOG_WARN("templates", "%s", buf);
}

void tpl_count_error(const char *name)
{
	im_metrics_count("im_template_errors_total",
			 "Template compile, render or payload errors; the default "
			 "template was used where there was one",
			 "template", name);
}

/* --- partials -------------------------------------------------------- */

typedef struct resolver {
	const im_template_set *set;
	const char *platform, *ext;
	bool overrides;     /* may read the operator's partials */
	bool used_override; /* did read one */
	tpl_variant *v;
} resolver;

static int add_src(tpl_variant *v, const char *file, char *text, size_t len)
{
	tpl_src *s = realloc(v->srcs, (v->n_srcs + 1) * sizeof(*s));
	if (!s)
		return IM_ENOMEM;
	v->srcs = s;
	s[v->n_srcs].file = strdup(file);
	s[v->n_srcs].text = text;
	s[v->n_srcs].len = len;
	if (!s[v->n_srcs].file)
		return IM_ENOMEM;
	v->n_srcs++;
	return 0;
}

static int resolve(void *ud, const char *name, const char **text, size_t *len)
{
	resolver *r = ud;
	if (!good_name(name, strlen(name)))
		return IM_ENOTFOUND;
	const char *dirs[4] = {r->overrides ? r->set->override_dir : NULL,
			       r->set->default_dir,
			       r->overrides ? r->set->override_dir : NULL,
			       r->set->default_dir};
	for (int i = 0; i < 4; i++) {
		if (!dirs[i])
			continue;
		char path[PATH_MAX];
		if (i < 2)
			snprintf(path, sizeof(path), "%s/%s/partials/%s.%s",
				 dirs[i], r->platform, name, r->ext);
		else
			snprintf(path, sizeof(path), "%s/partials/%s.%s",
				 dirs[i], name, r->ext);
		char *t;
		size_t n;
		if (read_text(path, &t, &n) != 0)
			continue;
		if (add_src(r->v, path, t, n) != 0) {
			free(t);
			return IM_ENOMEM;
		}
		*text = t;
		*len = n;
		if (i == 0 || i == 2)
			r->used_override = true;
		return 0;
	}
	return IM_ENOTFOUND;
}

/* --- compiling --------------------------------------------------------- */

static void drop_compiled(tpl_variant *v)
{
	if (v->tpl && v->fmt)
		v->fmt->release(v->fstate, v->tpl);
	v->tpl = NULL;
	for (size_t i = 1; i < v->n_srcs; i++) {
		free(v->srcs[i].file);
		free(v->srcs[i].text);
	}
	if (v->n_srcs > 1)
		v->n_srcs = 1;
}

static void set_error(tpl_variant *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_error(tpl_variant *v, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	free(v->error);
	v->error = strdup(buf);
}

/* Compiles v; on failure v->tpl stays NULL and v->error says why. */
static int compile_variant(const im_template_set *set, const im_snapshot *snap,
			   const tpl_entry *e, tpl_variant *v, bool overrides,
			   bool *used_override)
{
	drop_compiled(v);
	if (!v->n_srcs) {
		char *t;
		size_t n;
		int rc = read_text(v->file, &t, &n);
		if (rc) {
			set_error(v, "%s:1: cannot read the file (larger than "
				     "1 MiB, or not readable)", v->file);
			return rc;
		}
		if (add_src(v, v->file, t, n) != 0) {
			free(t);
			return IM_ENOMEM;
		}
	}
	im_instance *in = NULL;
	v->fmt = im_snapshot_formatter(snap, v->ext, &in);
	if (!v->fmt) {
		set_error(v, "%s:1: no running template engine for .%s files; "
			     "add an instance of its plugin to "
			     "plugins.instances (e.g. {id: mustache, module: "
			     "mustache})", v->file, v->ext);
		return IM_ENOTFOUND;
	}
	v->fstate = in->state;
	v->engine = in->id;
	resolver r = {.set = set, .platform = e->platform, .ext = v->ext,
		      .overrides = overrides, .v = v};
	char err[1024] = "";
	int rc = v->fmt->compile_with
		     ? v->fmt->compile_with(v->fstate, e->name, v->srcs[0].text,
					    v->srcs[0].len, resolve, &r,
					    &v->tpl, err, sizeof(err))
		     : v->fmt->compile(v->fstate, e->name, v->srcs[0].text,
				       v->srcs[0].len, &v->tpl, err,
				       sizeof(err));
	if (used_override)
		*used_override = r.used_override;
	if (rc == 0 && v->tpl)
		return 0;
	v->tpl = NULL;
	bool positioned = err[0] >= '0' && err[0] <= '9';
	set_error(v, "%s:%s%s", v->file, positioned ? "" : "1: ",
		  err[0] ? err : "does not compile");
	return rc ? rc : IM_EINVAL;
}

static void compile_entry(im_template_set *set, const im_snapshot *snap,
			  tpl_entry *e)
{
	if (e->over.present &&
	    compile_variant(set, snap, e, &e->over, true, NULL) != 0) {
		problem(set, "%s; using the default %s", e->over.error,
			e->def.present ? e->def.file : "(none)");
		tpl_count_error(e->name);
	}
	if (!e->def.present)
		return;
	bool used = false;
	if (compile_variant(set, snap, e, &e->def, true, &used) == 0)
		return;
	if (used) {
		/* An operator's partial broke the default: count it and
		 * compile the default with default partials only. */
		problem(set, "%s; compiling %s with the default partials",
			e->def.error, e->def.file);
		tpl_count_error(e->name);
		if (compile_variant(set, snap, e, &e->def, false, NULL) == 0)
			return;
	}
	problem(set, "%s", e->def.error);
	tpl_count_error(e->name);
}

/* --- scanning -------------------------------------------------------- */

static tpl_entry *entry_for(im_template_set *set, const char *platform,
			    const char *event)
{
	for (size_t i = 0; i < set->n; i++)
		if (!strcmp(set->entries[i].platform, platform) &&
		    !strcmp(set->entries[i].event, event))
			return &set->entries[i];
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 64;
		tpl_entry *ne = realloc(set->entries, cap * sizeof(*ne));
		if (!ne)
			return NULL;
		set->entries = ne;
		set->cap = cap;
	}
	tpl_entry *e = &set->entries[set->n];
	memset(e, 0, sizeof(*e));
	e->platform = strdup(platform);
	e->event = strdup(event);
	size_t n = strlen(platform) + strlen(event) + 2;
	e->name = malloc(n);
	if (!e->platform || !e->event || !e->name) {
		free(e->platform);
		free(e->event);
		free(e->name);
		return NULL;
	}
	snprintf(e->name, n, "%s/%s", platform, event);
	set->n++;
	return e;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the folders (or regular files) in `dir`,
 * NULL-terminated; NULL when there are none. */
static char **list_dir(const char *dir, bool want_dirs)
{
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (de->d_name[0] == '.' || stat(path, &st) != 0 ||
		    (want_dirs ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)))
			continue;
		char **nn = realloc(names, (n + 2) * sizeof(*nn));
		if (!nn)
			break;
		names = nn;
		if ((names[n] = strdup(de->d_name)))
			n++;
	}
	closedir(d);
	if (names) {
		names[n] = NULL;
		qsort(names, n, sizeof(*names), cmp_str);
	}
	return names;
}

static void free_list(char **l)
{
	for (size_t i = 0; l && l[i]; i++)
		free(l[i]);
	free(l);
}

static void add_file(im_template_set *set, const char *dir,
		     const char *platform, const char *fname, bool is_default)
{
	const char *dot = strrchr(fname, '.');
	size_t len = strlen(fname);
	if (!dot || dot == fname || fname[len - 1] == '~' ||
	    !strcmp(dot, ".md") || !strcmp(dot, ".txt"))
		return;
	char event[256];
	snprintf(event, sizeof(event), "%.*s", (int)(dot - fname), fname);
	if (!good_name(event, strlen(event)) || strchr(event, '.'))
		return;
	tpl_entry *e = entry_for(set, platform, event);
	if (!e)
		return;
	tpl_variant *v = is_default ? &e->def : &e->over;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s/%s", dir, platform, fname);
	if (v->present) {
		problem(set, "%s:1: %s is served by %s already; remove one",
			path, e->name, v->file);
		return;
	}
	v->present = true;
	v->is_default = is_default;
	v->file = strdup(path);
	v->ext = strdup(dot + 1);
}

static void scan(im_template_set *set, const char *dir, bool is_default)
{
	char **platforms = list_dir(dir, true);
	for (size_t i = 0; platforms && platforms[i]; i++) {
		if (!strcmp(platforms[i], "partials") ||
		    !good_name(platforms[i], strlen(platforms[i])))
			continue;
		char sub[PATH_MAX];
		snprintf(sub, sizeof(sub), "%s/%s", dir, platforms[i]);
		char **files = list_dir(sub, false);
		for (size_t k = 0; files && files[k]; k++)
			add_file(set, dir, platforms[i], files[k], is_default);
		free_list(files);
	}
	free_list(platforms);
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const tpl_entry *)a)->name,
		      ((const tpl_entry *)b)->name);
}

static char *override_dir(const im_config *cfg)
{
	const char *rel = im_config_string(cfg, "chatops.templates_dir",
					   "templates");
	char path[PATH_MAX];
	const char *base = im_config_dir(cfg);
	if (rel[0] == '/' || !base || !*base)
		snprintf(path, sizeof(path), "%s", rel);
	else
		snprintf(path, sizeof(path), "%s/%s", base, rel);
	char real[PATH_MAX];
	return is_dir(path) && realpath(path, real) ? strdup(real) : NULL;
}

/* The rules and fit_payload of every connector in the snapshot, per
 * platform: the first connector of a platform wins. They live in the
 * modules the snapshot holds, as long as the borrowed formatters. */
static int collect_rules(im_template_set *set, const im_snapshot *snap)
{
	for (size_t i = 0; snap && i < snap->n; i++) {
		const im_module *m = snap->insts[i]->mod;
		for (size_t k = 0; m && k < m->n_connectors; k++) {
			const im_connector *c = m->connectors[k];
			if (!c->platform || !*c->platform ||
			    tpl_rules_of(set, c->platform))
				continue;
			tpl_rules *nr = realloc(set->rules, (set->n_rules + 1) *
							       sizeof(*nr));
			if (!nr)
				return IM_ENOMEM;
			set->rules = nr;
			if (tpl_rules_init(&nr[set->n_rules], c->platform,
					   c->rules, c->fit_payload) != 0)
				return IM_ENOMEM;
			set->n_rules++;
		}
	}
	return 0;
}

const tpl_rules *tpl_rules_of(const im_template_set *set,
			      const char *platform)
{
	for (size_t i = 0; set && platform && i < set->n_rules; i++)
		if (!strcmp(set->rules[i].platform, platform))
			return &set->rules[i];
	return NULL;
}

int im_template_load(const im_config *cfg, const im_snapshot *snap,
		     im_template_set **out, char *err, size_t errlen)
{
	*out = NULL;
	im_template_set *set = calloc(1, sizeof(*set));
	if (!set || !(set->problems = json_array())) {
		free(set);
		snprintf(err, errlen, "out of memory");
		return IM_ENOMEM;
	}
	atomic_init(&set->refs, 1);
	if (collect_rules(set, snap) != 0) {
		im_template_set_unref(set);
		snprintf(err, errlen, "out of memory");
		return IM_ENOMEM;
	}
	char dir[PATH_MAX];
	if (im_template_default_dir(dir, sizeof(dir)) == 0)
		set->default_dir = strdup(dir);
	else
		problem(set, "no default templates folder: set "
			     "IM_TEMPLATES_DEFAULT or install im (looked for "
			     "%s)", dir);
	set->override_dir = override_dir(cfg);
	set->public_url = strdup(im_config_string(cfg, "server.public_url",
						  ""));
	if (set->override_dir && set->default_dir &&
	    same_dir(set->override_dir, set->default_dir)) {
		free(set->override_dir);
		set->override_dir = NULL;
	}
	if (set->default_dir)
		scan(set, set->default_dir, true);
	if (set->override_dir)
		scan(set, set->override_dir, false);
	if (set->n)
		qsort(set->entries, set->n, sizeof(*set->entries), cmp_entry);
	for (size_t i = 0; i < set->n; i++)
		compile_entry(set, snap, &set->entries[i]);
	*out = set;
	return 0;
}

/* --- lifetime, look-up, listing ---------------------------------------- */

static void free_variant(tpl_variant *v)
{
	drop_compiled(v);
	for (size_t i = 0; i < v->n_srcs; i++) {
		free(v->srcs[i].file);
		free(v->srcs[i].text);
	}
	free(v->srcs);
	free(v->file);
	free(v->ext);
	free(v->error);
}

im_template_set *im_template_set_ref(im_template_set *set)
{
	if (set)
		atomic_fetch_add(&set->refs, 1);
	return set;
}

void im_template_set_unref(im_template_set *set)
{
	if (!set || atomic_fetch_sub(&set->refs, 1) != 1)
		return;
	for (size_t i = 0; i < set->n; i++) {
		tpl_entry *e = &set->entries[i];
		free_variant(&e->over);
		free_variant(&e->def);
		free(e->name);
		free(e->platform);
		free(e->event);
	}
	free(set->entries);
	for (size_t i = 0; i < set->n_rules; i++)
		free(set->rules[i].platform);
	free(set->rules);
	free(set->default_dir);
	free(set->override_dir);
	free(set->public_url);
	json_decref(set->problems);
	free(set);
}

const tpl_variant *tpl_active(const tpl_entry *e)
{
	if (e->over.tpl)
		return &e->over;
	return e->def.tpl ? &e->def : NULL;
}

const tpl_entry *tpl_find(const im_template_set *set, const char *platform,
			  const char *event)
{
	if (!set || !platform || !event)
		return NULL;
	if (!strncmp(event, "im.incident.", 12))
		event += 12;
	char name[256];
	snprintf(name, sizeof(name), "%s/%s", platform, event);
	tpl_entry key = {.name = name};
	return bsearch(&key, set->entries, set->n, sizeof(*set->entries),
		       cmp_entry);
}

json_t *im_template_list(const im_template_set *set)
{
	json_t *out = json_array();
	for (size_t i = 0; set && i < set->n; i++) {
		const tpl_entry *e = &set->entries[i];
		const tpl_variant *a = tpl_active(e);
		const tpl_variant *shown = a ? a : e->over.present ? &e->over
								   : &e->def;
		const char *error = e->over.error ? e->over.error
						  : e->def.error;
		json_array_append_new(
		    out,
		    json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s*,s:s*}", "name",
			      e->name, "platform", e->platform, "event",
			      e->event, "engine",
			      shown->engine ? shown->engine : "-", "file",
			      shown->file, "source",
			      shown->is_default ? "default" : "override",
			      "default_file", e->def.file, "error", error));
	}
	return out;
}
