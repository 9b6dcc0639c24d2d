/* The documentation tells the truth about this build: the configuration
 * reference is what `im config reference` prints, every link in README.md
 * and docs/ points at a file of the repository, and every `./im ...`
 * command the docs name is a command of this im. */
#include <ctype.h>
#include <stdbool.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "harness.h"

static const char *src(void)
{
	const char *s = getenv("IM_TEST_SRCDIR");
	cr_assert(s, "IM_TEST_SRCDIR is not set");
	return s;
}

/* Everything a stream holds, NUL-terminated (malloc'd). */
static char *read_all(FILE *f)
{
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	char chunk[4096];
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			buf = realloc(buf, cap);
			cr_assert(buf);
		}
		memcpy(buf + len, chunk, n);
		len += n;
	}
	if (!buf)
		buf = calloc(1, 1);
	buf[len] = '\0';
	return buf;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert(f, "cannot open %s", path);
	char *text = read_all(f);
	fclose(f);
	return text;
}

/* Runs a shell command; its stdout, and the exit status in *rc. */
static char *run(const char *cmd, int *rc)
{
	FILE *p = popen(cmd, "r");
	cr_assert(p, "popen %s", cmd);
	char *text = read_all(p);
	int st = pclose(p);
	*rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return text;
}

Test(docs, the_configuration_reference_is_generated_from_the_code)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "env -u IM_PLUGIN_PATH %s/im config reference --config "
		 "%s/conf.d",
		 build_dir(), src());
	int rc;
	char *got = run(cmd, &rc);
	cr_assert_eq(rc, 0, "%s failed", cmd);
	char path[512];
	snprintf(path, sizeof(path), "%s/docs/configuration.md", src());
	char *want = slurp(path);
	cr_expect(strcmp(got, want) == 0,
		  "docs/configuration.md is out of date: run\n"
		  "  ./im config reference > docs/configuration.md");
	/* It covers the core and every bundled plugin's keys. */
	const char *must[] = {"`server.listen`", "`storage.path`",
			      "`chatops.command_budget`", "### `slack`",
			      "`signing_secret`", "### `incident-commands`",
			      "### `mustache`", NULL};
	for (const char *const *m = must; *m; m++)
		cr_expect(strstr(got, *m), "reference lacks %s", *m);
	free(got);
	free(want);
}

/* Calls fn(target) for every relative Markdown link "](target)" of text. */
static void each_link(const char *text, void (*fn)(const char *file,
						    const char *target),
		      const char *file)
{
	for (const char *p = strstr(text, "]("); p; p = strstr(p + 2, "](")) {
		const char *start = p + 2, *end = strchr(start, ')');
		if (!end || end - start > 300)
			continue;
		char target[320];
		snprintf(target, sizeof(target), "%.*s", (int)(end - start),
			 start);
		if (strstr(target, "://") || target[0] == '#' ||
		    !strncmp(target, "mailto:", 7))
			continue;
		char *hash = strchr(target, '#');
		if (hash)
			*hash = '\0';
		fn(file, target);
	}
}

static void link_exists(const char *file, const char *target)
{
	char dir[512], path[1024], real[4096];
	snprintf(dir, sizeof(dir), "%s", file);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	snprintf(path, sizeof(path), "%s/%s", dir, target);
	cr_expect(realpath(path, real), "%s links to %s, which does not exist",
		  file, target);
	if (!realpath(path, real))
		return;
	char root[4096];
	cr_assert(realpath(src(), root));
	cr_expect(strncmp(real, root, strlen(root)) == 0,
		  "%s links to %s, outside the repository", file, target);
}

static void check_file_links(const char *path)
{
	char *text = slurp(path);
	each_link(text, link_exists, path);
	cr_expect_null(strstr(text, "../shared"),
		       "%s refers to ../shared, which a clone does not have",
		       path);
	free(text);
}

Test(docs, links_stay_inside_the_repository)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/README.md", src());
	check_file_links(path);
	snprintf(path, sizeof(path), "%s/docs", src());
	DIR *d = opendir(path);
	cr_assert(d, "no docs/ folder");
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 4 || strcmp(de->d_name + l - 3, ".md"))
			continue;
		char f[800];
		snprintf(f, sizeof(f), "%s/%s", path, de->d_name);
		check_file_links(f);
		n++;
	}
	closedir(d);
	cr_expect_geq(n, 4, "docs/ has %d pages", n);
}

/* `im a b c --help` starts with "usage: im a b c" for some prefix of the
 * words at p (lowercase words; p points just after "im "). */
static void check_command_at(const char *path, const char *p, int *checked)
{
	char words[3][40] = {{0}};
	int nw = 0;
	while (nw < 3) {
		size_t k = 0;
		while (p[k] && (islower((unsigned char)p[k]) || p[k] == '-') &&
		       k < 39)
			k++;
		if (k == 0 || p[0] == '-' ||
		    (p[k] && p[k] != ' ' && p[k] != '`' && p[k] != '\n'))
			break;
		memcpy(words[nw++], p, k);
		if (p[k] != ' ')
			break;
		p += k + 1;
	}
	if (nw == 0)
		return;
	int ok = 0;
	for (int w = nw; w >= 1 && !ok; w--) {
		char cmd[512], want[200] = "usage: im";
		for (int i = 0; i < w; i++) {
			strcat(want, " ");
			strcat(want, words[i]);
		}
		snprintf(cmd, sizeof(cmd), "%s/im%s --help 2>&1", build_dir(),
			 want + strlen("usage: im"));
		int rc;
		char *out = run(cmd, &rc);
		size_t wl = strlen(want);
		ok = rc == 0 && !strncmp(out, want, wl) &&
		     (out[wl] == ' ' || out[wl] == '\n');
		free(out);
	}
	cr_expect(ok, "%s names `im %s %s %s`, which is no command", path,
		  words[0], words[1], words[2]);
	(*checked)++;
}

/* Commands the docs name: lines of code blocks (fenced or indented) that
 * start with "./im " or "im ", and inline code starting "`./im " or
 * "`im ". */
static void check_commands(const char *path)
{
	char *text = slurp(path);
	int checked = 0;
	bool fence = false;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strncmp(line, "```", 3)) {
			fence = !fence;
			continue;
		}
		if (fence || !strncmp(line, "    ", 4) || line[0] == '\t') {
			char *c = line;
			while (*c == ' ' || *c == '\t')
				c++;
			if (!strncmp(c, "$ ", 2))
				c += 2;
			if (!strncmp(c, "./im ", 5))
				check_command_at(path, c + 5, &checked);
			else if (!strncmp(c, "im ", 3))
				check_command_at(path, c + 3, &checked);
			continue;
		}
		for (char *c = strchr(line, '`'); c; c = strchr(c + 1, '`')) {
			if (!strncmp(c, "`./im ", 6))
				check_command_at(path, c + 6, &checked);
			else if (!strncmp(c, "`im ", 4))
				check_command_at(path, c + 4, &checked);
		}
	}
	free(text);
	cr_expect_gt(checked, 0, "%s names no command at all", path);
	cr_log_info("%s: %d commands checked", path, checked);
}

Test(docs, every_command_the_docs_name_exists)
{
	const char *pages[] = {"README.md", "docs/troubleshooting.md",
			       "docs/operations.md", NULL};
	for (const char *const *pg = pages; *pg; pg++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", src(), *pg);
		check_commands(path);
	}
}
