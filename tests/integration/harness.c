#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>

#include "harness.h"

const char *build_dir(void)
{
	const char *b = getenv("IM_TEST_BUILDDIR");
	return b ? b : ".";
}

/* A port no one listens on, below the kernel's ephemeral range: a port
 * the kernel hands out (bind to 0) can be taken by any outgoing
 * connection of a parallel test between our probe and the server's
 * bind, which then fails with "address in use". Ports below the range
 * are never handed to outgoing connections; two tests picking the same
 * one at random is unlikely, and the probe bind catches a port in use. */
static unsigned free_port(void)
{
	static unsigned seed;
	if (!seed)
		seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
	unsigned lo = 32768;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	if (f) {
		if (fscanf(f, "%u", &lo) != 1)
			lo = 32768;
		fclose(f);
	}
	unsigned base = 10000, span = lo > base + 2000 ? lo - base : 0;
	for (int i = 0; i < 500; i++) {
		unsigned port = 0;
		if (span) {
			seed = seed * 1103515245u + 12345u;
			port = base + (seed >> 8) % span;
		}
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons((uint16_t)port),
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof(a);
		bool ok = fd >= 0 &&
			  bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
			  getsockname(fd, (struct sockaddr *)&a, &len) == 0;
		if (fd >= 0)
			close(fd);
		if (ok)
			return ntohs(a.sin_port);
	}
	abort();
}

void srv_init(srv *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/im-it-XXXXXX");
	if (!mkdtemp(s->dir))
		abort();
	chmod(s->dir, 0755);
	snprintf(s->conf, sizeof(s->conf), "%s/conf", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/server.log", s->dir);
	mkdir(s->conf, 0755);
	char p[200];
	snprintf(p, sizeof(p), "%s/plugins", s->dir);
	mkdir(p, 0755);
	s->port = free_port();
	do
		s->mport = free_port();
	while (s->mport == s->port);
	srv_conf(s, "00-server.yaml",
		 "server:\n  listen: 127.0.0.1:%u\n  metrics_listen: "
		 "127.0.0.1:%u\n  max_body: 64KiB\nstorage:\n  path: %s/var/im.db\n"
		 "plugins:\n  dirs: [\"%s/plugins\", \"%s/tests/loader\"]\n",
		 s->port, s->mport, s->dir, s->dir, build_dir());
}

void srv_conf(srv *s, const char *name, const char *fmt, ...)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/%s", s->conf, name);
	FILE *f = fopen(path, "w");
	if (!f)
		abort();
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

void sleep_s(double secs)
{
	sleep_ms((long)(secs * 1000));
}

const char *sfield(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

bool srv_start(srv *s)
{
	char bin[512];
	snprintf(bin, sizeof(bin), "%s/im", build_dir());
	pid_t parent = getpid();
	s->pid = fork();
	if (s->pid == 0) {
		/* Gone with the test process, also when it crashes: a server
		 * left behind would run (and hold its ports) for good. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 2);
		dup2(fd, 1);
		execl(bin, bin, "serve", "--config", s->conf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		int st;
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			return false;
		}
		reply r = http(s, false, "GET", "/health", NULL, 0, NULL);
		long status = r.status;
		reply_free(&r);
		if (status == 200)
			return true;
		sleep_ms(50);
	}
	return false;
}

int srv_stop(srv *s)
{
	if (s->pid <= 0)
		return -1;
	kill(s->pid, SIGTERM);
	int st = 0;
	for (int i = 0; i < 200; i++) {
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		}
		sleep_ms(50);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &st, 0);
	s->pid = 0;
	return -1;
}

void srv_cleanup(srv *s)
{
	if (s->pid > 0)
		srv_stop(s);
	if (s->dir[0]) {
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", s->dir);
	}
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return strdup("");
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	size_t got = fread(buf, 1, (size_t)n, f);
	buf[got] = '\0';
	fclose(f);
	return buf;
}

char *srv_log(const srv *s)
{
	return read_all(s->log);
}

typedef struct sbuf {
	char *p;
	size_t n;
} sbuf;

static size_t on_data(char *d, size_t sz, size_t n, void *ud)
{
	sbuf *b = ud;
	size_t add = sz * n;
	b->p = realloc(b->p, b->n + add + 1);
	memcpy(b->p + b->n, d, add);
	b->n += add;
	b->p[b->n] = '\0';
	return add;
}

reply http(const srv *s, bool metrics, const char *method, const char *path,
	   const char *body, size_t len, const char *const *headers)
{
	reply r = {0};
	char url[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s",
		 metrics ? s->mport : s->port, path);
	CURL *c = curl_easy_init();
	/* No "Expect: 100-continue" wait, unless the test asks for one (to
	 * get a 413 before sending a body too large: the server refuses on
	 * Content-Length and closes, and a body still in flight could reset
	 * the connection before the answer is read). */
	bool expect = false;
	for (const char *const *p = headers; p && *p; p++)
		expect |= !strncasecmp(*p, "Expect:", 7);
	struct curl_slist *h = expect ? NULL : curl_slist_append(NULL, "Expect:");
	for (const char *const *p = headers; p && *p; p++)
		h = curl_slist_append(h, *p);
	sbuf b = {0}, hb = {0};
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
	}
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	r.body = b.p ? b.p : strdup("");
	r.headers = hb.p ? hb.p : strdup("");
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return r;
}

void reply_free(reply *r)
{
	free(r->body);
	free(r->headers);
	memset(r, 0, sizeof(*r));
}

int cli(const srv *s, char **out, char **err, const char *const *args)
{
	char bin[512], o[300], e[300], url[64];
	snprintf(bin, sizeof(bin), "%s/im", build_dir());
	snprintf(o, sizeof(o), "%s/cli.out", s->dir);
	snprintf(e, sizeof(e), "%s/cli.err", s->dir);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", s->port);
	pid_t pid = fork();
	if (pid == 0) {
		const char *argv[32] = {bin, "--config", s->conf};
		int n = 3;
		for (const char *const *a = args; *a && n < 31; a++)
			argv[n++] = *a;
		argv[n] = NULL;
		int fo = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int fe = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fo, 1);
		dup2(fe, 2);
		setenv("IM_URL", url, 1);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	if (out)
		*out = read_all(o);
	if (err)
		*err = read_all(e);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void copy_file(const char *from, const char *to, mode_t mode)
{
	char *tmp = NULL;
	FILE *in = fopen(from, "rb");
	if (!in)
		abort();
	size_t tl = strlen(to) + 8;
	tmp = malloc(tl);
	snprintf(tmp, tl, "%s.tmp", to);
	FILE *out = fopen(tmp, "wb");
	char buf[8192];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	fclose(out);
	chmod(tmp, mode);
	/* rename: a new inode, as an installer would do. */
	if (rename(tmp, to) != 0)
		abort();
	free(tmp);
}

void srv_must_start(srv *s)
{
	if (!srv_start(s)) {
		char *log = srv_log(s);
		cr_assert_fail("server did not start:\n%s", log);
		free(log);
	}
}

void srv_must_stop(srv *s)
{
	int st = srv_stop(s);
	char *log = st != 0 ? srv_log(s) : NULL;
	cr_expect_eq(st, 0, "server exit status %d:\n%s", st, log);
	free(log);
}
