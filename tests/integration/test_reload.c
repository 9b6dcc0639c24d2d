/* Hot reload of the running server: drop-in plugins, failed reloads that
 * change nothing, SIGHUP, and no failed request while reloading. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

static srv s;

static void setup(void)
{
	srv_init(&s);
	srv_conf(&s, "10-plugins.yaml",
		 "plugins:\n  instances:\n    - {id: echo, module: echo}\n");
}

static void teardown(void)
{
	srv_cleanup(&s);
}

TestSuite(reload, .init = setup, .fini = teardown, .timeout = 90);

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static long get_status(const char *path)
{
	reply r = http(&s, false, "GET", path, NULL, 0, NULL);
	long st = r.status;
	reply_free(&r);
	return st;
}

Test(reload, makes_a_dropped_in_plugin_live_without_restart)
{
	cr_assert(srv_start(&s), "%s", srv_log(&s));
	pid_t pid = s.pid;
	cr_expect_eq(get_status("/hooks/drop/hello"), 404);
	/* A vendor drops a new .so into a plugin folder and names it. */
	char from[512], to[512];
	snprintf(from, sizeof(from), "%s/tests/loader/good.so", build_dir());
	snprintf(to, sizeof(to), "%s/plugins/good.so", s.dir);
	copy_file(from, to, 0755);
	srv_conf(&s, "20-drop.yaml",
		 "plugins:\n  instances:\n"
		 "    - {id: drop, module: good, config: {greeting: dropped}}\n");
	char *out, *err;
	cr_expect_eq(cli(&s, &out, &err, ARGS("plugins", "reload")), 0, "%s",
		     err);
	cr_expect(strstr(out, "reloaded 2 instances"), "%s", out);
	free(out);
	free(err);
	reply r = http(&s, false, "GET", "/hooks/drop/hello", NULL, 0, NULL);
	cr_expect_eq(r.status, 200);
	cr_expect_str_eq(r.body, "dropped");
	reply_free(&r);
	cr_expect_eq(s.pid, pid, "same process");
}

Test(reload, changes_nothing_when_the_new_config_is_broken)
{
	cr_assert(srv_start(&s), "%s", srv_log(&s));
	srv_conf(&s, "20-broken.yaml", "server:\n  listen: [oops\n");
	char *out, *err;
	cr_expect_eq(cli(&s, &out, &err, ARGS("plugins", "reload")), 1);
	cr_expect(strstr(err, "nothing changed"), "%s", err);
	cr_expect(strstr(err, "20-broken.yaml:"), "%s", err);
	free(out);
	free(err);
	cr_expect_eq(get_status("/health"), 200);
	reply r = http(&s, false, "POST", "/hooks/echo/echo", "x", 1, NULL);
	cr_expect_eq(r.status, 200);
	reply_free(&r);
	/* A required instance that fails also aborts the reload. */
	srv_conf(&s, "20-broken.yaml",
		 "plugins:\n  instances:\n"
		 "    - {id: bad, module: bad_major, required: true}\n");
	cr_expect_eq(cli(&s, &out, &err, ARGS("plugins", "reload")), 1);
	cr_expect(strstr(err, "required instance failed"), "%s", err);
	free(out);
	free(err);
	cr_expect_eq(get_status("/hooks/bad/x"), 404, "bad never went live");
}

Test(reload, reloads_on_sighup)
{
	cr_assert(srv_start(&s), "%s", srv_log(&s));
	srv_conf(&s, "20-more.yaml",
		 "plugins:\n  instances:\n"
		 "    - {id: g2, module: good, config: {greeting: hup}}\n");
	kill(s.pid, SIGHUP);
	long st = 0;
	for (int i = 0; i < 100 && st != 200; i++) {
		usleep(50000);
		st = get_status("/hooks/g2/hello");
	}
	cr_expect_eq(st, 200);
}

typedef struct load {
	atomic_int stop;
	atomic_int ok, failed;
} load;

static void *hammer(void *ud)
{
	load *l = ud;
	while (!atomic_load(&l->stop)) {
		reply r = http(&s, false, "GET", "/hooks/g/slow?ms=20", NULL, 0,
			       NULL);
		if (r.status == 200 && strcmp(r.body, "hi") == 0)
			atomic_fetch_add(&l->ok, 1);
		else
			atomic_fetch_add(&l->failed, 1);
		reply_free(&r);
	}
	return NULL;
}

Test(reload, drains_in_flight_requests_and_fails_none)
{
	srv_conf(&s, "20-g.yaml",
		 "plugins:\n  instances:\n"
		 "    - {id: g, module: good, config: {greeting: hi}}\n"
		 "    - {id: other, module: good, config: {greeting: v0}}\n");
	cr_assert(srv_start(&s), "%s", srv_log(&s));
	load l = {0};
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, hammer, &l);
	for (int i = 0; i < 10; i++) {
		/* Change another instance so every reload really swaps. */
		srv_conf(&s, "20-g.yaml",
			 "plugins:\n  instances:\n"
			 "    - {id: g, module: good, config: {greeting: hi}}\n"
			 "    - {id: other, module: good, config: {greeting: "
			 "v%d}}\n",
			 i + 1);
		char *out, *err;
		cr_expect_eq(cli(&s, &out, &err, ARGS("plugins", "reload")), 0,
			     "%s", err);
		free(out);
		free(err);
	}
	atomic_store(&l.stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	cr_expect_gt(atomic_load(&l.ok), 10);
	cr_expect_eq(atomic_load(&l.failed), 0);
	reply r = http(&s, false, "GET", "/hooks/other/hello", NULL, 0, NULL);
	cr_expect_str_eq(r.body, "v10");
	reply_free(&r);
}

/* An upgrade replaces several plugin files at once; one reload must load
 * each new file as itself (they are all loaded through /proc/self/fd,
 * whose names glibc caches like any other). */
Test(reload, loads_every_replaced_plugin_file_as_itself)
{
	const char *mods[] = {"echo", "good", "unconf", "plain", NULL};
	for (const char *const *m = mods; *m; m++) {
		char from[512], to[512];
		snprintf(from, sizeof(from), "%s/%s/%s.so", build_dir(),
			 strcmp(*m, "echo") ? "tests/loader" : "plugins", *m);
		snprintf(to, sizeof(to), "%s/plugins/%s.so", s.dir, *m);
		copy_file(from, to, 0755);
	}
	srv_conf(&s, "10-plugins.yaml",
		 "plugins:\n  dirs: [\"%s/plugins\"]\n  instances:\n"
		 "    - {id: echo, module: echo}\n"
		 "    - {id: g, module: good, config: {greeting: hi}}\n"
		 "    - {id: p, module: plain}\n",
		 s.dir);
	cr_assert(srv_start(&s), "%s", srv_log(&s));
	for (int round = 0; round < 2; round++) {
		/* New files (new inodes) for every module, as an install does. */
		for (const char *const *m = mods; *m; m++) {
			char from[512], to[512];
			snprintf(from, sizeof(from), "%s/%s/%s.so", build_dir(),
				 strcmp(*m, "echo") ? "tests/loader" : "plugins",
				 *m);
			snprintf(to, sizeof(to), "%s/plugins/%s.so", s.dir, *m);
			copy_file(from, to, 0755);
		}
		char *out, *err;
		cr_expect_eq(cli(&s, &out, &err, ARGS("plugins", "reload")), 0,
			     "%s", err);
		free(out);
		free(err);
		cr_expect_eq(cli(&s, &out, &err, ARGS("plugins", "list")), 0,
			     "%s", err);
		cr_expect_null(strstr(out, "failed"), "round %d:\n%s", round,
			       out);
		cr_expect_null(strstr(out, "declares the name"), "%s", out);
		free(out);
		free(err);
		reply r = http(&s, false, "GET", "/hooks/g/hello", NULL, 0, NULL);
		cr_expect_eq(r.status, 200, "round %d: %s", round, r.body);
		reply_free(&r);
		r = http(&s, false, "POST", "/hooks/echo/echo", "x", 1, NULL);
		cr_expect_eq(r.status, 200, "round %d: %s", round, r.body);
		reply_free(&r);
	}
	cr_expect_eq(srv_stop(&s), 0);
}

/* The connection gauge line of instance g, or NULL (no series). */
static bool metrics_have(const char *line)
{
	reply r = http(&s, true, "GET", "/metrics", NULL, 0, NULL);
	bool has = r.body && strstr(r.body, line);
	reply_free(&r);
	return has;
}

#define G_SERIES "chatops_connection_status{platform=\"test\",instance=\"g\"}"

static void reload_ok(void)
{
	char *out, *err;
	cr_expect_eq(cli(&s, &out, &err, ARGS("plugins", "reload")), 0, "%s",
		     err);
	free(out);
	free(err);
}

Test(reload, keeps_a_recreated_connectors_gauge_and_drops_a_removed_ones)
{
	srv_conf(&s, "20-g.yaml",
		 "plugins:\n  instances:\n"
		 "    - {id: g, module: good, config: {greeting: one}}\n");
	cr_assert(srv_start(&s), "%s", srv_log(&s));
	cr_expect(metrics_have(G_SERIES " 1"));
	/* A changed config recreates g: the new one starts (1), then the
	 * old one stops and reports its link down, which is not news. */
	srv_conf(&s, "20-g.yaml",
		 "plugins:\n  instances:\n"
		 "    - {id: g, module: good, config: {greeting: two}}\n");
	reload_ok();
	reply r = http(&s, false, "GET", "/hooks/g/hello", NULL, 0, NULL);
	cr_expect_str_eq(r.body, "two", "g was recreated");
	reply_free(&r);
	cr_expect(metrics_have(G_SERIES " 1"), "the new g is connected");
	/* Gone from the config: gone from the metrics. */
	srv_conf(&s, "20-g.yaml", "plugins:\n  instances: []\n");
	reload_ok();
	cr_expect_eq(get_status("/hooks/g/hello"), 404);
	cr_expect(!metrics_have(G_SERIES), "no series for a removed instance");
}
