/* Module loader: finds <name>.so in the plugin folders, refuses unsafe or
 * broken files before dlopen() can crash the host on them, and checks the
 * descriptor against the ABI rules. Modules are cached by file identity so
 * a reload reuses what is already mapped. */
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf/buf.h"
#include "log/log.h"
#include "paths/paths.h"
#include "plugin/plugin.h"

#define FIX_REBUILD "rebuild it against the im SDK (include/im, IM_PLUGIN_DEFINE)"

static im_module *cache; /* control thread only */

static bool valid_name(const char *name)
{
	if (!name || !*name || strlen(name) > 64)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			return false;
	return true;
}

static int add_dir(im_plugin_dirs *d, const char *path)
{
	char real[PATH_MAX];
	if (!realpath(path, real))
		return 0; /* a missing folder is not an error: nothing in it */
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->dirs[i], real) == 0)
			return 0;
	char **n = realloc(d->dirs, (d->n + 1) * sizeof(*n));
	if (!n)
		return IM_ENOMEM;
	d->dirs = n;
	if (!(d->dirs[d->n] = strdup(real)))
		return IM_ENOMEM;
	d->n++;
	return 0;
}

static int add_exe_dir(im_plugin_dirs *d)
{
	char dir[PATH_MAX];
	if (im_paths_get(IM_PATH_PLUGINS, dir, sizeof(dir)) != 0)
		return 0;
	return add_dir(d, dir);
}

int im_plugin_dirs_from(const im_config *cfg, im_plugin_dirs *out)
{
	memset(out, 0, sizeof(*out));
	int rc = 0;
	const char *env = getenv("IM_PLUGIN_PATH");
	if (env && *env) {
		char *copy = strdup(env), *save = NULL;
		if (!copy)
			return IM_ENOMEM;
		for (char *t = strtok_r(copy, ":", &save); t && !rc;
		     t = strtok_r(NULL, ":", &save))
			rc = add_dir(out, t);
		free(copy);
	}
	const json_t *dirs = cfg ? im_config_get(cfg, "plugins.dirs") : NULL;
	size_t i;
	const json_t *v;
	json_array_foreach(dirs, i, v)
	{
		const char *s = json_string_value(v);
		if (!s || !*s || rc)
			continue;
		if (s[0] == '/') {
			rc = add_dir(out, s);
		} else {
			char buf[PATH_MAX];
			snprintf(buf, sizeof(buf), "%s/%s",
				 im_config_dir(cfg), s);
			rc = add_dir(out, buf);
		}
	}
	if (!rc)
		rc = add_exe_dir(out);
	if (rc)
		im_plugin_dirs_free(out);
	return rc;
}

void im_plugin_dirs_free(im_plugin_dirs *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->dirs[i]);
	free(d->dirs);
	memset(d, 0, sizeof(*d));
}

static bool inside(const char *real, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(real, dir, n) == 0 && real[n] == '/';
}

/* Checks the ELF header and that every loadable segment and the section
 * table lie within the file: mapping a truncated file would fault. */
static int check_elf(int fd, off_t size, const char *path, char *err,
		     size_t errlen)
{
	Elf64_Ehdr eh;
	ssize_t n = pread(fd, &eh, sizeof(eh), 0);
	if (n < 4 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
		snprintf(err, errlen,
			 "%s: not an ELF shared object; remove it from the "
			 "plugin folder or " FIX_REBUILD,
			 path);
		return IM_EINVAL;
	}
	if (n < (ssize_t)sizeof(eh)) {
		snprintf(err, errlen,
			 "%s: truncated ELF file (%lld bytes); copy the "
			 "plugin again or " FIX_REBUILD,
			 path, (long long)size);
		return IM_EINVAL;
	}
#if defined(__x86_64__)
	const unsigned machine = EM_X86_64;
#elif defined(__aarch64__)
	const unsigned machine = EM_AARCH64;
#else
	const unsigned machine = eh.e_machine;
#endif
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != machine) {
		snprintf(err, errlen,
			 "%s: built for another machine or word size; "
			 "rebuild it on this platform",
			 path);
		return IM_EINVAL;
	}
	if (eh.e_type != ET_DYN) {
		snprintf(err, errlen,
			 "%s: not a shared object (ELF type %u); build it "
			 "with -shared -fPIC",
			 path, eh.e_type);
		return IM_EINVAL;
	}
	unsigned long long sh_end =
	    eh.e_shoff + (unsigned long long)eh.e_shnum * eh.e_shentsize;
	bool truncated = sh_end > (unsigned long long)size ||
			 eh.e_phentsize != sizeof(Elf64_Phdr);
	for (unsigned i = 0; !truncated && i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof(ph),
			  (off_t)(eh.e_phoff + i * sizeof(ph))) !=
		    (ssize_t)sizeof(ph)) {
			truncated = true;
			break;
		}
		if (ph.p_type == PT_LOAD &&
		    ph.p_offset + ph.p_filesz > (unsigned long long)size)
			truncated = true;
	}
	if (truncated) {
		snprintf(err, errlen,
			 "%s: truncated or damaged ELF file (%lld bytes); "
			 "copy the plugin again or " FIX_REBUILD,
			 path, (long long)size);
		return IM_EINVAL;
	}
	return 0;
}

static int check_file(const char *path, const struct stat *st, char *err,
		      size_t errlen)
{
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "%s: not a regular file; remove it",
			 path);
		return IM_EINVAL;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen,
			 "%s: writable by group or others, so anyone could "
			 "replace the code the server runs; run chmod go-w %s",
			 path, path);
		return IM_EPERM;
	}
	/* Only root or the user the server runs as may own code it runs:
	 * in a shared folder with the sticky bit (/tmp-like) anyone may
	 * create files, and the bit only stops them deleting each other's. */
	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		snprintf(err, errlen,
			 "%s: owned by uid %u, neither root nor the user im runs "
			 "as (uid %u); run chown root %s if you trust it",
			 path, (unsigned)st->st_uid, (unsigned)geteuid(), path);
		return IM_EPERM;
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		struct stat ds;
		if (stat(*dir ? dir : "/", &ds) == 0 &&
		    (ds.st_mode & (S_IWGRP | S_IWOTH)) &&
		    !(ds.st_mode & S_ISVTX)) {
			snprintf(err, errlen,
				 "%s: its folder %s is writable by group or "
				 "others; run chmod go-w %s",
				 path, dir, dir);
			return IM_EPERM;
		}
	}
	return 0;
}

/* Copies a component into zeroed memory of the host's struct size, so
 * fields a smaller (older) plugin lacks read as NULL. */
static const void *copy_component(im_module *m, const im_component *c,
				  size_t host_size, size_t min_size, char *err,
				  size_t errlen, char **arena, size_t *used)
{
	if (c->struct_size < min_size) {
		snprintf(err, errlen,
			 "%s: component '%s' is too small (%u bytes, at "
			 "least %zu); " FIX_REBUILD,
			 m->path, c->name ? c->name : "?", c->struct_size,
			 min_size);
		return NULL;
	}
	char *dst = *arena + *used;
	size_t n = c->struct_size < host_size ? c->struct_size : host_size;
	memcpy(dst, c, n);
	*used += (host_size + 15) & ~(size_t)15;
	return dst;
}

#define V1_END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* Points the command copy at host copies of its verb and action tables
 * (see tables.c). */
static int copy_command_tables(im_module *m, im_command *cmd, char *err,
			       size_t errlen)
{
	bool legacy = im_abi_legacy_tables(m->desc.abi_minor);
	char why[200] = "";
	im_command_verb *verbs = im_tables_verbs(cmd->verbs, legacy, why,
						 sizeof why);
	im_command_action *actions =
	    verbs ? im_tables_actions(cmd->actions, legacy, why, sizeof why)
		  : NULL;
	if (!verbs || !actions) {
		free(verbs);
		snprintf(err, errlen, "%s: component '%s': %s; " FIX_REBUILD,
			 m->path, cmd->base.name, why);
		return IM_EINVAL;
	}
	cmd->verbs = verbs;
	cmd->actions = cmd->actions ? actions : NULL;
	if (!cmd->actions)
		free(actions);
	m->tables[m->n_tables++] = verbs;
	if (cmd->actions)
		m->tables[m->n_tables++] = actions;
	return 0;
}

static int check_components(im_module *m, char *err, size_t errlen)
{
	const im_component *const *list = m->desc.components;
	size_t n = 0;
	while (list[n])
		n++;
	if (n > 8) {
		snprintf(err, errlen, "%s: more than 8 components", m->path);
		return IM_EINVAL;
	}
	char *arena = calloc(n ? n : 1, 256);
	size_t used = 0;
	if (!arena)
		return IM_ENOMEM;
	m->copies = arena;
	for (size_t i = 0; i < n; i++) {
		const im_component *c = list[i];
		const void *cp = NULL;
		if (c->struct_size < sizeof(im_component) || !c->name) {
			snprintf(err, errlen,
				 "%s: component %zu has no name or size; "
				 FIX_REBUILD, m->path, i);
			return IM_EINVAL;
		}
		switch (c->kind) {
		case IM_COMPONENT_CONNECTOR:
			cp = copy_component(m, c, sizeof(im_connector),
					    V1_END(im_connector, status), err,
					    errlen, &arena, &used);
			if (cp)
				m->connectors[m->n_connectors++] = cp;
			break;
		case IM_COMPONENT_FORMATTER:
			cp = copy_component(m, c, sizeof(im_formatter),
					    V1_END(im_formatter, release), err,
					    errlen, &arena, &used);
			if (cp)
				m->formatters[m->n_formatters++] = cp;
			break;
		case IM_COMPONENT_COMMAND:
			cp = copy_component(m, c, sizeof(im_command),
					    V1_END(im_command, invoke), err,
					    errlen, &arena, &used);
			if (cp && copy_command_tables(m, (im_command *)cp, err,
						      errlen))
				return IM_EINVAL;
			if (cp)
				m->commands[m->n_commands++] = cp;
			break;
		default:
			snprintf(err, errlen,
				 "%s: component '%s' has unknown kind %u; "
				 "upgrade im",
				 m->path, c->name, c->kind);
			return IM_EVERSION;
		}
		if (!cp)
			return IM_EINVAL;
	}
	return 0;
}

static int check_desc(im_module *m, const im_plugin_desc *d, char *err,
		      size_t errlen)
{
	if (d->magic != IM_PLUGIN_MAGIC) {
		snprintf(err, errlen,
			 "%s: im_plugin_entry returned no im descriptor (bad "
			 "magic 0x%08x); " FIX_REBUILD,
			 m->path, d->magic);
		return IM_EVERSION;
	}
	if (d->abi_major != IM_ABI_MAJOR) {
		snprintf(err, errlen,
			 "%s: built for plugin ABI %u.%u but this host speaks "
			 "%d.%d; rebuild the plugin against the im %d.x SDK",
			 m->path, d->abi_major, d->abi_minor, IM_ABI_MAJOR,
			 IM_ABI_MINOR, IM_ABI_MAJOR);
		return IM_EVERSION;
	}
	if (d->abi_minor > IM_ABI_MINOR) {
		snprintf(err, errlen,
			 "%s: needs plugin ABI %u.%u but this host has %d.%d; "
			 "upgrade im or use a plugin built for %d.%d",
			 m->path, d->abi_major, d->abi_minor, IM_ABI_MAJOR,
			 IM_ABI_MINOR, IM_ABI_MAJOR, IM_ABI_MINOR);
		return IM_EVERSION;
	}
	if (d->struct_size < V1_END(im_plugin_desc, destroy)) {
		snprintf(err, errlen,
			 "%s: descriptor too small (%u bytes); " FIX_REBUILD,
			 m->path, d->struct_size);
		return IM_EVERSION;
	}
	size_t n = d->struct_size < sizeof(m->desc) ? d->struct_size
						    : sizeof(m->desc);
	memcpy(&m->desc, d, n);
	const char *missing = !m->desc.name || !*m->desc.name ? "name"
			      : !m->desc.version || !*m->desc.version ? "version"
			      : !m->desc.license || !*m->desc.license ? "license"
			      : !m->desc.components		     ? "components"
			      : !m->desc.create			     ? "create"
								     : NULL;
	if (missing) {
		snprintf(err, errlen,
			 "%s: descriptor has no %s; fill it in and rebuild",
			 m->path, missing);
		return IM_EINVAL;
	}
	if (strcmp(m->desc.name, m->name) != 0) {
		snprintf(err, errlen,
			 "%s: declares the name '%s' but the file is named "
			 "'%s.so'; rename the file or fix the descriptor",
			 m->path, m->desc.name, m->name);
		return IM_EINVAL;
	}
	char why[200] = "";
	im_config_key *keys = im_tables_keys(m->desc.config_keys,
					     im_abi_legacy_tables(d->abi_minor),
					     why, sizeof why);
	if (!keys) {
		snprintf(err, errlen, "%s: %s; " FIX_REBUILD, m->path, why);
		return IM_EINVAL;
	}
	m->desc.config_keys = keys;
	m->tables[m->n_tables++] = keys;
	return check_components(m, err, errlen);
}

static void module_free(im_module *m)
{
	if (!m)
		return;
	const char *keep = getenv("IM_DLCLOSE");
	bool unload = !(keep && strcmp(keep, "0") == 0);
	if (m->dl && unload)
		dlclose(m->dl);
	/* A descriptor that names a still-loaded object stays open. */
	if (m->dl_fd >= 0 && (unload || !m->dl))
		close(m->dl_fd);
	free(m->copies);
	for (size_t i = 0; i < m->n_tables; i++)
		free(m->tables[i]);
	free(m->name);
	free(m->path);
	free(m);
}

static im_module *cache_find(const char *path, const struct stat *st)
{
	for (im_module *m = cache; m; m = m->next)
		if (strcmp(m->path, path) == 0 && m->dev == st->st_dev &&
		    m->ino == st->st_ino && m->size == st->st_size &&
		    m->mtime.tv_sec == st->st_mtim.tv_sec &&
		    m->mtime.tv_nsec == st->st_mtim.tv_nsec)
			return m;
	return NULL;
}

static bool path_loaded(const char *path)
{
	for (im_module *m = cache; m; m = m->next)
		if (strcmp(m->path, path) == 0)
			return true;
	return false;
}

static int open_dl(im_module *m, int fd, char *err, size_t errlen)
{
	/* glibc finds an already-loaded object by path name first; when a
	 * new file replaced a loaded one, load it through its descriptor so
	 * the new code is mapped. That name is just as cached, so the
	 * descriptor is kept open while the object is loaded (m->dl_fd):
	 * closed, its number would come back for the next replaced file,
	 * which would get this object. */
	char fdpath[64];
	const char *p = m->path;
	bool by_fd = path_loaded(m->path);
	if (by_fd) {
		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
		p = fdpath;
	}
	dlerror();
	m->dl = dlopen(p, RTLD_NOW | RTLD_LOCAL);
	if (m->dl && by_fd)
		m->dl_fd = fd;
	if (!m->dl) {
		const char *e = dlerror();
		snprintf(err, errlen,
			 "%s: cannot be loaded: %s; check that its libraries "
			 "are installed or " FIX_REBUILD,
			 m->path, e ? e : "unknown error");
		return IM_EINVAL;
	}
	union {
		void *p;
		im_plugin_entry_fn fn;
	} sym;
	sym.p = dlsym(m->dl, "im_plugin_entry");
	if (!sym.p) {
		snprintf(err, errlen,
			 "%s: exports no im_plugin_entry symbol, so it is not "
			 "an im plugin; " FIX_REBUILD,
			 m->path);
		return IM_EINVAL;
	}
	const im_plugin_desc *d = sym.fn();
	if (!d) {
		snprintf(err, errlen,
			 "%s: im_plugin_entry returned NULL; " FIX_REBUILD,
			 m->path);
		return IM_EINVAL;
	}
	return check_desc(m, d, err, errlen);
}

im_module *im_module_load_file(const char *path, const char *name,
			       char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
			 strerror(errno));
		return NULL;
	}
	struct stat st;
	im_module *m = NULL;
	if (fstat(fd, &st) != 0 || check_file(path, &st, err, errlen) != 0)
		goto fail;
	if ((m = cache_find(path, &st))) {
		m->refs++;
		close(fd);
		return m;
	}
	if (check_elf(fd, st.st_size, path, err, errlen) != 0)
		goto fail;
	m = calloc(1, sizeof(*m));
	if (m)
		m->dl_fd = -1;
	if (!m || !(m->name = strdup(name)) || !(m->path = strdup(path))) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	m->dev = st.st_dev;
	m->ino = st.st_ino;
	m->size = st.st_size;
	m->mtime = st.st_mtim;
	if (open_dl(m, fd, err, errlen) != 0)
		goto fail;
	for (size_t i = 0; i < m->n_connectors; i++) /* log redaction */
		if (m->connectors[i]->rules && m->connectors[i]->rules
		    ->struct_size >= sizeof(im_platform_rules))
			im_log_add_secret_prefixes(
			    m->connectors[i]->rules->secret_prefixes);
	if (m->dl_fd != fd)
		close(fd);
	m->refs = 1;
	m->next = cache;
	cache = m;
	LOG_DEBUG("loader", "loaded %s (%s %s, ABI %u.%u)", path,
		  m->desc.name, m->desc.version, m->desc.abi_major,
		  m->desc.abi_minor);
	return m;
fail:
	if (!m || m->dl_fd != fd)
		close(fd);
	module_free(m);
	return NULL;
}

bool im_module_file_same(const im_plugin_dirs *dirs, const char *name,
			 const im_module *m)
{
	if (!m || !valid_name(name))
		return false;
	for (size_t i = 0; i < dirs->n; i++) {
		char cand[PATH_MAX], real[PATH_MAX];
		snprintf(cand, sizeof(cand), "%s/%s.so", dirs->dirs[i], name);
		struct stat st;
		if (lstat(cand, &st) != 0)
			continue;
		return realpath(cand, real) && strcmp(real, m->path) == 0 &&
		       stat(real, &st) == 0 && st.st_dev == m->dev &&
		       st.st_ino == m->ino && st.st_size == m->size &&
		       st.st_mtim.tv_sec == m->mtime.tv_sec &&
		       st.st_mtim.tv_nsec == m->mtime.tv_nsec;
	}
	return false;
}

im_module *im_module_load(const im_plugin_dirs *dirs, const char *name,
			  char *err, size_t errlen)
{
	if (!valid_name(name)) {
		snprintf(err, errlen,
			 "module '%s': invalid name; use letters, digits, '-' "
			 "and '_' only (no '/' or '..')",
			 name ? name : "");
		return NULL;
	}
	for (size_t i = 0; i < dirs->n; i++) {
		char cand[PATH_MAX], real[PATH_MAX];
		snprintf(cand, sizeof(cand), "%s/%s.so", dirs->dirs[i], name);
		struct stat lst;
		if (lstat(cand, &lst) != 0)
			continue;
		if (!realpath(cand, real)) {
			snprintf(err, errlen,
				 "%s: broken symlink; fix or remove it", cand);
			return NULL;
		}
		bool ok = false;
		for (size_t j = 0; j < dirs->n && !ok; j++)
			ok = inside(real, dirs->dirs[j]);
		if (!ok) {
			snprintf(err, errlen,
				 "%s: symlink leads outside the plugin folders "
				 "(to %s); copy the file into a plugin folder "
				 "instead",
				 cand, real);
			return NULL;
		}
		return im_module_load_file(real, name, err, errlen);
	}
	im_buf b = IM_BUF_INIT;
	im_buf_printf(&b, "module '%s': %s.so not found in the plugin folders (",
		      name, name);
	for (size_t i = 0; i < dirs->n; i++)
		im_buf_printf(&b, "%s%s", i ? ", " : "", dirs->dirs[i]);
	im_buf_printf(&b, "%s); add its folder to plugins.dirs or "
			  "IM_PLUGIN_PATH",
		      dirs->n ? "" : "none exist");
	snprintf(err, errlen, "%s", im_buf_str(&b));
	im_buf_free(&b);
	return NULL;
}

void im_module_unref(im_module *m)
{
	if (!m || --m->refs > 0)
		return;
	for (im_module **p = &cache; *p; p = &(*p)->next)
		if (*p == m) {
			*p = m->next;
			break;
		}
	module_free(m);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *im_module_scan(const im_plugin_dirs *dirs)
{
	json_t *names = json_array();
	for (size_t i = 0; i < dirs->n; i++) {
		DIR *dp = opendir(dirs->dirs[i]);
		if (!dp)
			continue;
		struct dirent *de;
		while ((de = readdir(dp))) {
			size_t len = strlen(de->d_name);
			if (len < 4 || strcmp(de->d_name + len - 3, ".so"))
				continue;
			json_t *s = json_stringn(de->d_name, len - 3);
			bool dup = false;
			size_t k;
			json_t *v;
			json_array_foreach(names, k, v) dup =
			    dup || json_equal(v, s);
			if (dup)
				json_decref(s);
			else
				json_array_append_new(names, s);
		}
		closedir(dp);
	}
	size_t n = json_array_size(names);
	const char **tmp = calloc(n ? n : 1, sizeof(*tmp));
	json_t *sorted = json_array();
	if (tmp) {
		for (size_t i = 0; i < n; i++)
			tmp[i] = json_string_value(json_array_get(names, i));
		qsort(tmp, n, sizeof(*tmp), cmp_str);
		for (size_t i = 0; i < n; i++)
			json_array_append_new(sorted, json_string(tmp[i]));
	}
	free(tmp);
	json_decref(names);
	return sorted;
}

static const char *kind_name(uint32_t kind)
{
	switch (kind) {
	case IM_COMPONENT_CONNECTOR:
		return "connector";
	case IM_COMPONENT_FORMATTER:
		return "formatter";
	case IM_COMPONENT_COMMAND:
		return "command";
	default:
		return "unknown";
	}
}

json_t *im_module_describe(const im_module *m)
{
	json_t *comps = json_array();
	for (const im_component *const *c = m->desc.components; *c; c++)
		json_array_append_new(
		    comps, json_pack("{s:s,s:s}", "kind", kind_name((*c)->kind),
				     "name", (*c)->name));
	char abi[32];
	snprintf(abi, sizeof(abi), "%u.%u", m->desc.abi_major,
		 m->desc.abi_minor);
	return json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:s,s:s,s:o}", "module",
			 m->name, "version", m->desc.version, "abi", abi,
			 "description", m->desc.description, "vendor",
			 m->desc.vendor, "license", m->desc.license, "file",
			 m->path, "components", comps);
}
