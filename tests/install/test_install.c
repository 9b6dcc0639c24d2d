/* `meson install` into a DESTDIR, used as an operator and a vendor would:
 * every file where docs/operations.md says, the installed `im` running
 * with the installed plugins, imnet.so, templates and config (no
 * IM_PLUGIN_PATH, no IM_NET_MODULE), an operator's config kept across a
 * second install, and sdk/example built against the installed
 * im-plugin.pc and loaded by the installed binary. */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../integration/harness.h"

static char dest[64];

static const char *env(const char *name)
{
	const char *v = getenv(name);
	cr_assert(v && *v, "%s is not set", name);
	return v;
}

/* DESTDIR + an absolute install path (+ a file below it). */
static const char *at(const char *var, const char *rest)
{
	static char buf[4][1024];
	static int i;
	char *b = buf[i++ % 4];
	snprintf(b, sizeof(buf[0]), "%s%s%s%s", dest, env(var),
		 rest ? "/" : "", rest ? rest : "");
	return b;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	cr_assert(b);
	size_t got = fread(b, 1, (size_t)n, f);
	b[got] = '\0';
	fclose(f);
	return b;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static void install(void)
{
	cr_assert_eq(sh("meson install -C %s --destdir %s --no-rebuild "
			"--quiet >%s/install.log 2>&1",
			env("IM_TEST_BUILDDIR"), dest, dest),
		     0, "meson install failed: see %s/install.log", dest);
}

static void setup(void)
{
	snprintf(dest, sizeof(dest), "/tmp/im-install-XXXXXX");
	cr_assert(mkdtemp(dest));
	chmod(dest, 0755);
	/* The installed binary must find everything on its own. */
	unsetenv("IM_PLUGIN_PATH");
	unsetenv("IM_NET_MODULE");
	unsetenv("IM_TEMPLATES_DEFAULT");
	unsetenv("IM_CONFIG");
	install();
}

static void teardown(void)
{
	sh("rm -rf %s", dest);
}

TestSuite(install, .init = setup, .fini = teardown, .timeout = 240);

Test(install, puts_every_file_where_the_docs_say)
{
	const char *files[][2] = {
	    {"IM_BINDIR", "im"},
	    {"IM_LIBDIR", "im/imnet.so"},
	    {"IM_LIBDIR", "im/plugins/slack.so"},
	    {"IM_LIBDIR", "im/plugins/mustache.so"},
	    {"IM_LIBDIR", "im/plugins/incident-commands.so"},
	    {"IM_LIBDIR", "im/plugins/echo.so"},
	    {"IM_INCLUDEDIR", "im/im.h"},
	    {"IM_INCLUDEDIR", "im/connector.h"},
	    {"IM_DATADIR", "pkgconfig/im-plugin.pc"},
	    {"IM_DATADIR", "im/templates/slack/declare.mustache"},
	    {"IM_DATADIR", "doc/im/operations.md"},
	    {"IM_SYSCONFDIR", "im/conf.d/00-server.yaml"},
	    {"IM_SYSCONFDIR", "im/conf.d/10-plugins.yaml"},
	    {"IM_SYSCONFDIR", "im/conf.d/templates/README.md"},
	    {"IM_PREFIX", "lib/systemd/system/im.service"},
	    {"IM_PREFIX", "lib/sysusers.d/im.conf"},
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		cr_expect(exists(at(files[i][0], files[i][1])), "missing %s",
			  at(files[i][0], files[i][1]));
	/* No test plugin is installed. */
	cr_expect_not(exists(at("IM_LIBDIR", "im/plugins/good.so")));
	cr_expect_not(exists(at("IM_LIBDIR", "im/plugins/testconn.so")));
	/* State folder: private. */
	struct stat st;
	cr_assert_eq(stat(at("IM_STATEDIR", NULL), &st), 0);
	cr_expect(S_ISDIR(st.st_mode) && (st.st_mode & 077) == 0,
		  "state folder mode %o", st.st_mode & 0777);
	/* The service user (not root) must read the installed config. */
	cr_assert_eq(stat(at("IM_SYSCONFDIR", "im/conf.d/00-server.yaml"), &st),
		     0);
	cr_expect(st.st_mode & 0004, "config mode %o: the im user cannot read "
				     "it", st.st_mode & 0777);
	/* The installed config keeps its state there, not in ./var. */
	char *conf = slurp(at("IM_SYSCONFDIR", "im/conf.d/00-server.yaml"));
	cr_assert(conf);
	char want[512];
	snprintf(want, sizeof(want), "${IM_DATA_DIR:-%s}/im.db",
		 env("IM_STATEDIR"));
	cr_expect(strstr(conf, want), "00-server.yaml: %s", conf);
	free(conf);
}

Test(install, ships_a_hardened_systemd_unit)
{
	char *unit = slurp(at("IM_PREFIX", "lib/systemd/system/im.service"));
	cr_assert(unit);
	char exec[1024];
	snprintf(exec, sizeof(exec), "ExecStart=%s/im serve --config %s/im/conf.d",
		 env("IM_BINDIR"), env("IM_SYSCONFDIR"));
	const char *lines[] = {
	    "Type=notify",	   "User=im",
	    "ProtectSystem=strict", "NoNewPrivileges=yes",
	    "ExecReload=/bin/kill -HUP $MAINPID",
	    "StateDirectory=im",    exec,
	    NULL};
	for (const char *const *l = lines; *l; l++)
		cr_expect(strstr(unit, *l), "im.service lacks %s", *l);
	snprintf(exec, sizeof(exec), "ReadWritePaths=%s", env("IM_STATEDIR"));
	cr_expect(strstr(unit, exec), "im.service lacks %s", exec);
	free(unit);
	char *users = slurp(at("IM_PREFIX", "lib/sysusers.d/im.conf"));
	cr_assert(users);
	cr_expect(strstr(users, "u im "), "%s", users);
	free(users);
	/* systemd's own check, with the paths moved into the DESTDIR. */
	if (sh("command -v systemd-analyze >/dev/null") != 0) {
		cr_log_warn("systemd-analyze not installed: unit not verified "
			    "by systemd (content checks above still ran)");
		return;
	}
	cr_expect_eq(sh("sed 's|%s/im |%s%s/im |g' %s >%s/im.service && "
			"systemd-analyze verify %s/im.service >%s/verify.log "
			"2>&1",
			env("IM_BINDIR"), dest, env("IM_BINDIR"),
			at("IM_PREFIX", "lib/systemd/system/im.service"), dest,
			dest, dest),
		     0, "systemd-analyze verify: see %s/verify.log", dest);
}

static unsigned free_port(void)
{
	/* The harness's ports come from srv_init; borrow one pair. */
	srv s;
	srv_init(&s);
	unsigned p = s.port;
	srv_cleanup(&s);
	return p;
}

/* Runs the installed im with args; stdout+stderr into out (malloc'd). */
static int installed_im(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int installed_im(char **out, const char *fmt, ...)
{
	char args[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	int rc = sh("%s %s >%s/out.txt 2>&1", at("IM_BINDIR", "im"), args,
		    dest);
	char p[128];
	snprintf(p, sizeof(p), "%s/out.txt", dest);
	*out = slurp(p);
	return rc;
}

Test(install, the_installed_binary_serves_with_the_installed_parts)
{
	char *out = NULL;
	const char *confdir = at("IM_SYSCONFDIR", "im/conf.d");
	char conf[1024];
	snprintf(conf, sizeof(conf), "%s", confdir);
	cr_expect_eq(installed_im(&out, "version"), 0, "%s", out);
	free(out);
	cr_expect_eq(installed_im(&out, "config validate --config %s", conf), 0,
		     "%s", out);
	free(out);
	/* The plugins come from the installed plugin folder. */
	/* No server runs yet: the list shows what the config would load. */
	installed_im(&out, "plugins list --config %s", conf);
	char plugdir[1024];
	snprintf(plugdir, sizeof(plugdir), "%s", at("IM_LIBDIR", "im/plugins"));
	cr_expect(strstr(out, plugdir), "plugins not from %s:\n%s", plugdir,
		  out);
	free(out);

	srv s = {0};
	s.port = free_port();
	s.mport = free_port();
	snprintf(s.dir, sizeof(s.dir), "%s", dest);
	snprintf(s.log, sizeof(s.log), "%s/serve.log", dest);
	char data[1024], listen[64], mlisten[64], url[64];
	snprintf(data, sizeof(data), "%s", at("IM_STATEDIR", NULL));
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", s.port);
	snprintf(mlisten, sizeof(mlisten), "127.0.0.1:%u", s.mport);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", s.port);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(s.log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		setenv("IM_DATA_DIR", data, 1);
		setenv("IM_LISTEN", listen, 1);
		setenv("IM_METRICS_LISTEN", mlisten, 1);
		setenv("IM_PUBLIC_URL", url, 1);
		const char *bin = at("IM_BINDIR", "im");
		execl(bin, bin, "serve", "--config", conf, (char *)NULL);
		_exit(127);
	}
	long status = 0;
	for (int i = 0; i < 200 && status != 200; i++) {
		reply r = http(&s, false, "GET", "/health", NULL, 0, NULL);
		status = r.status;
		reply_free(&r);
		if (status != 200)
			usleep(50000);
	}
	char *log = slurp(s.log);
	cr_assert_eq(status, 200, "installed im did not start:\n%s", log);
	free(log);

	/* The CLI (libcurl through the installed imnet.so) declares; the
	 * URL it prints opens the incident page. */
	setenv("IM_URL", url, 1);
	int rc = installed_im(&out, "declare --config %s --sev SEV-2 --title "
				    "'Installed and running'",
			      conf);
	unsetenv("IM_URL");
	cr_expect_eq(rc, 0, "%s", out);
	char want[128];
	snprintf(want, sizeof(want), "%s/incidents/INC-1", url);
	cr_expect(strstr(out, want), "declare printed: %s", out);
	free(out);
	reply r = http(&s, false, "GET", "/incidents/INC-1", NULL, 0, NULL);
	cr_expect_eq(r.status, 200);
	cr_expect(strstr(r.body ? r.body : "", "Installed and running"));
	reply_free(&r);
	cr_expect(exists(at("IM_STATEDIR", "im.db")), "no database in %s",
		  at("IM_STATEDIR", NULL));

	kill(pid, SIGTERM);
	int st;
	waitpid(pid, &st, 0);
	log = slurp(s.log);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "installed im did not stop cleanly:\n%s", log);
	/* The installed templates were used, not the source tree's. */
	cr_expect_null(strstr(log, "no default templates folder"), "%s", log);
	free(log);
}

Test(install, a_second_install_keeps_the_operators_config)
{
	const char *f = at("IM_SYSCONFDIR", "im/conf.d/00-server.yaml");
	char path[1024];
	snprintf(path, sizeof(path), "%s", f);
	FILE *o = fopen(path, "a");
	cr_assert(o);
	fputs("# the operator's own line\n", o);
	fclose(o);
	install();
	char *text = slurp(path);
	cr_expect(strstr(text, "# the operator's own line"),
		  "the second install overwrote %s", path);
	free(text);
	char dist[1100];
	snprintf(dist, sizeof(dist), "%s.dist", path);
	cr_expect(exists(dist), "the new default is not beside it as .dist");
	/* Files the operator did not touch get no .dist. */
	cr_expect_not(exists(at("IM_SYSCONFDIR",
				"im/conf.d/10-plugins.yaml.dist")));
}

Test(install, a_vendor_builds_the_example_against_the_installed_sdk)
{
	char out[128];
	snprintf(out, sizeof(out), "%s/vendor", dest);
	mkdir(out, 0755);
	/* pkg-config finds im-plugin.pc in the DESTDIR; its paths get the
	 * DESTDIR prefix through PKG_CONFIG_SYSROOT_DIR. */
	cr_assert_eq(sh("PKG_CONFIG_PATH=%s PKG_CONFIG_SYSROOT_DIR=%s "
			"make -s -C %s/sdk/example O=%s >%s/make.log 2>&1",
			at("IM_DATADIR", "pkgconfig"), dest,
			env("IM_TEST_SRCDIR"), out, dest),
		     0, "make failed: see %s/make.log", dest);
	char *cflags = NULL;
	sh("PKG_CONFIG_PATH=%s PKG_CONFIG_SYSROOT_DIR=%s pkg-config --cflags "
	   "im-plugin >%s/cflags.txt",
	   at("IM_DATADIR", "pkgconfig"), dest, dest);
	char p[128];
	snprintf(p, sizeof(p), "%s/cflags.txt", dest);
	cflags = slurp(p);
	cr_expect(cflags && strstr(cflags, dest),
		  "cflags do not point into the install: %s", cflags);
	free(cflags);
	/* The installed im loads it. */
	char conf[160];
	snprintf(conf, sizeof(conf), "%s/vendor-conf", dest);
	mkdir(conf, 0755);
	char yaml[200];
	snprintf(yaml, sizeof(yaml), "%s/10.yaml", conf);
	FILE *y = fopen(yaml, "w");
	cr_assert(y);
	fprintf(y, "plugins:\n  dirs: [\"%s\"]\n  instances:\n"
		   "    - {id: hi, module: hello}\n"
		   "    - {id: hook, module: webhook, config: {url: "
		   "\"http://127.0.0.1:9/c/{channel}\", secret: s}}\n",
		out);
	fclose(y);
	char *text = NULL;
	cr_expect_eq(installed_im(&text, "plugins info hello --config %s", conf),
		     0, "%s", text);
	cr_expect(text && strstr(text, "Example Corp"), "%s", text);
	free(text);
	/* The example connector, built with libcrypto from the same make. */
	cr_expect_eq(
	    installed_im(&text, "plugins info webhook --config %s", conf), 0,
	    "%s", text);
	cr_expect(text && strstr(text, "connector:webhook") &&
		      strstr(text, "secret"),
		  "%s", text);
	free(text);
	cr_expect_eq(installed_im(&text, "config validate --config %s", conf),
		     0, "%s", text);
	free(text);
}
