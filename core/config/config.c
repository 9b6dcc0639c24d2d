/*
 * core/config: loading a conf.d folder, merging its files, look-ups.
 *
 * Each file becomes a tree and a location map of its own; merging walks the
 * later tree into the accumulated one and moves the locations of whatever
 * it replaces, so every key keeps the file:line that defined it last.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_private.h"

#define MAX_FILE_BYTES (16u << 20)

typedef struct merge {
	json_t *locs;    /* accumulated */
	json_t *srclocs; /* of the file being merged */
	char *err;
	size_t errlen;
} merge;

static int nomem(char *err, size_t errlen)
{
	imc_err(err, errlen, "out of memory");
	return IM_ENOMEM;
}

/* Whether `key` is `prefix` or a path below it. */
static int under(const char *key, const char *prefix)
{
	size_t n = strlen(prefix);
	return !strncmp(key, prefix, n) &&
	       (key[n] == '\0' || key[n] == '.' || key[n] == '[');
}

/* Replaces every location at or below `path` with the source file's. */
static int move_locs(merge *m, const char *path)
{
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(m->locs, tmp, k, v) {
		if (under(k, path))
			json_object_del(m->locs, k);
	}
	json_object_foreach(m->srclocs, k, v) {
		if (under(k, path) && json_object_set(m->locs, k, v))
			return nomem(m->err, m->errlen);
	}
	return 0;
}

static int set_loc(merge *m, const char *path)
{
	json_t *w = json_object_get(m->srclocs, path);
	if (w && json_object_set(m->locs, path, w))
		return nomem(m->err, m->errlen);
	return 0;
}

static int merge_obj(merge *m, json_t *dst, json_t *src, const char *path);

static int merge_instances(merge *m, json_t *dst, json_t *src,
			   const char *path)
{
	size_t i, j;
	json_t *s;
	json_array_foreach(src, i, s) {
		char *label = imc_id_text(json_object_get(s, "id"));
		char *ip = label ? imc_path_index(path, label) : NULL;
		json_t *d = NULL, *cand;
		int rc = 0;
		if (!ip) {
			free(label);
			return nomem(m->err, m->errlen);
		}
		json_array_foreach(dst, j, cand) {
			if (!d && imc_label_eq(cand, label, strlen(label)))
				d = cand;
		}
		if (d && json_is_object(d)) {
			rc = set_loc(m, ip);
			if (!rc)
				rc = merge_obj(m, d, s, ip);
		} else {
			rc = json_array_append(dst, s) ? nomem(m->err, m->errlen)
						       : move_locs(m, ip);
		}
		free(ip);
		free(label);
		if (rc)
			return rc;
	}
	return 0;
}

/* Later files win key by key; mappings merge, everything else replaces. */
static int merge_obj(merge *m, json_t *dst, json_t *src, const char *path)
{
	const char *k;
	json_t *sv;
	json_object_foreach(src, k, sv) {
		json_t *dv = json_object_get(dst, k);
		char *kp = imc_path_key(path, k);
		int rc;
		if (!kp)
			return nomem(m->err, m->errlen);
		if (json_is_object(dv) && json_is_object(sv)) {
			rc = set_loc(m, kp);
			if (!rc)
				rc = merge_obj(m, dv, sv, kp);
		} else if (json_is_array(dv) && json_is_array(sv) &&
			   !strcmp(kp, IMC_INSTANCES)) {
			rc = set_loc(m, kp);
			if (!rc)
				rc = merge_instances(m, dv, sv, kp);
		} else {
			rc = json_object_set(dst, k, sv) ? nomem(m->err, m->errlen)
							 : move_locs(m, kp);
		}
		free(kp);
		if (rc)
			return rc;
	}
	return 0;
}

static im_config *config_new(const char *dir)
{
	im_config *cfg = calloc(1, sizeof *cfg);
	if (!cfg)
		return NULL;
	cfg->dir = strdup(dir);
	cfg->root = json_object();
	cfg->locs = json_object();
	if (!cfg->dir || !cfg->root || !cfg->locs) {
		im_config_free(cfg);
		return NULL;
	}
	return cfg;
}

void im_config_free(im_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->dir);
	json_decref(cfg->root);
	json_decref(cfg->locs);
	free(cfg);
}

/* Parses one file's text and merges it into cfg. */
static int add_text(im_config *cfg, const char *file, const char *text,
		    size_t len, char *err, size_t errlen)
{
	imc_node *root = NULL;
	json_t *tree = NULL, *locs = json_object();
	int rc = locs ? imc_yaml_parse(file, text, len, &root, err, errlen)
		      : nomem(err, errlen);
	if (rc)
		goto out;
	if (!root)
		goto out; /* empty file */
	if (root->kind == IMC_SCALAR && root->plain && !*root->text)
		goto out; /* "---" alone */
	if (root->kind != IMC_MAP) {
		imc_err(err, errlen,
			"%s:%d: the top level must be a mapping (key: value)",
			file, root->line);
		rc = IM_ECONFIG;
		goto out;
	}
	rc = imc_convert(file, root, "", 1, locs, &tree, err, errlen);
	if (!rc) {
		merge m = {.locs = cfg->locs, .srclocs = locs, .err = err,
			   .errlen = errlen};
		rc = merge_obj(&m, cfg->root, tree, "");
	}
out:
	json_decref(tree);
	json_decref(locs);
	imc_node_free(root);
	return rc;
}

im_config *im_config_load_string(const char *name, const char *text,
				 char *err, size_t errlen)
{
	im_config *cfg = config_new("");
	if (!cfg) {
		nomem(err, errlen);
		return NULL;
	}
	if (add_text(cfg, name, text, strlen(text), err, errlen)) {
		im_config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Reads a whole regular file (malloc'd, NUL-terminated). */
static int read_file(const char *path, char **text, size_t *len, char *err,
		     size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf = NULL;
	size_t got = 0;
	if (fd < 0 || fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_FILE_BYTES) {
		imc_err(err, errlen, "%s: cannot read: %s", path,
			S_ISREG(st.st_mode) ? "file is too large"
					    : "not a regular file");
		close(fd);
		return IM_EIO;
	}
	if (!(buf = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return nomem(err, errlen);
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*text = buf;
	*len = got;
	return 0;
fail:
	imc_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(buf);
	return IM_EIO;
}

static int is_yaml_name(const char *n)
{
	size_t len = strlen(n);
	if (n[0] == '.')
		return 0;
	return (len > 5 && !strcmp(n + len - 5, ".yaml")) ||
	       (len > 4 && !strcmp(n + len - 4, ".yml"));
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.yaml / *.yml names directly in dir, sorted; *n may be 0. */
static int list_files(const char *dir, char ***names, size_t *n, char *err,
		      size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t cap = 0;
	*names = NULL;
	*n = 0;
	if (!d) {
		imc_err(err, errlen,
			"%s: cannot open config folder: %s (choose one with "
			"--config DIR or IM_CONFIG)",
			dir, strerror(errno));
		return IM_EIO;
	}
	while ((e = readdir(d))) {
		if (!is_yaml_name(e->d_name))
			continue;
		if (*n == cap) {
			size_t c = cap ? cap * 2 : 16;
			char **p = realloc(*names, c * sizeof *p);
			if (!p)
				goto nomem;
			*names = p;
			cap = c;
		}
		if (!((*names)[*n] = strdup(e->d_name)))
			goto nomem;
		++*n;
	}
	closedir(d);
	if (*n)
		qsort(*names, *n, sizeof **names, by_name);
	return 0;
nomem:
	closedir(d);
	return nomem(err, errlen);
}

static int load_files(im_config *cfg, const char *dir, char **names,
		      size_t n, char *err, size_t errlen)
{
	size_t dl = strlen(dir);
	const char *sep = dl && dir[dl - 1] == '/' ? "" : "/";
	for (size_t i = 0; i < n; i++) {
		char *path = NULL, *text = NULL;
		size_t len = 0;
		int rc;
		if (asprintf(&path, "%s%s%s", dir, sep, names[i]) < 0)
			return nomem(err, errlen);
		rc = read_file(path, &text, &len, err, errlen);
		if (!rc)
			rc = add_text(cfg, path, text, len, err, errlen);
		free(text);
		free(path);
		if (rc)
			return rc;
	}
	return 0;
}

im_config *im_config_load_dir(const char *dir, char *err, size_t errlen)
{
	char **names = NULL, abs[PATH_MAX];
	size_t n = 0;
	im_config *cfg = NULL;
	int rc = list_files(dir, &names, &n, err, errlen);
	if (!rc && !n) {
		imc_err(err, errlen,
			"%s: no *.yaml or *.yml files in the config folder",
			dir);
		rc = IM_ECONFIG;
	}
	if (!rc && !realpath(dir, abs)) {
		imc_err(err, errlen, "%s: %s", dir, strerror(errno));
		rc = IM_EIO;
	}
	if (!rc && !(cfg = config_new(abs)))
		rc = nomem(err, errlen);
	if (!rc)
		rc = load_files(cfg, dir, names, n, err, errlen);
	if (!rc)
		rc = im_config_check_core(cfg, err, errlen);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (rc) {
		im_config_free(cfg);
		return NULL;
	}
	return cfg;
}
