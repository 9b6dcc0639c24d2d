/* Template throughput on one core: the Slack declare template rendered by
 * the mustache engine alone (context already escaped), and by the full
 * service (context escaping, render, JSON parse, platform limits); plus the
 * time to load and compile every default template.
 * usage: bench-templates [SECONDS]   (prints RESULT lines) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "log/log.h"
#include "plugin/plugin.h"
#include "template/internal.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void bench_load(const im_config *cfg, const im_snapshot *snap)
{
	enum { RUNS = 50 };
	double ms[RUNS];
	char err[256];
	for (int i = 0; i < RUNS; i++) {
		im_template_set *set = NULL;
		double t0 = now_s();
		if (im_template_load(cfg, snap, &set, err, sizeof(err)) != 0)
			exit(1);
		ms[i] = (now_s() - t0) * 1e3;
		im_template_set_unref(set);
	}
	qsort(ms, RUNS, sizeof(ms[0]), cmp_d);
	printf("RESULT load+compile of all 36 default templates: median "
	       "%.3f ms, min %.3f ms (target < 5 ms)\n",
	       ms[RUNS / 2], ms[0]);
}

static void bench_engine(const im_template_set *set, const json_t *ctx,
			 double secs)
{
	const tpl_variant *v = tpl_active(tpl_find(set, "slack", "declare"));
	json_t *prep = tpl_prepare_context(tpl_rules_of(set, "slack"), ctx);
	long n = 0;
	size_t len = 0;
	double t0 = now_s(), t;
	do {
		for (int i = 0; i < 1000; i++, n++) {
			char *out = NULL;
			if (v->fmt->render(v->fstate, v->tpl, prep,
					   IM_ESCAPE_JSON, &out, &len) != 0)
				exit(1);
			free(out);
		}
	} while ((t = now_s() - t0) < secs);
	printf("RESULT engine render, slack/declare (%zu bytes): %.0f "
	       "renders/s, %.2f us each (target >= 200000/s)\n",
	       len, n / t, t / n * 1e6);
	json_decref(prep);
}

static void bench_service(const im_template_set *set, const json_t *ctx,
			  double secs)
{
	long n = 0;
	char err[512];
	double t0 = now_s(), t;
	do {
		for (int i = 0; i < 200; i++, n++) {
			json_t *p = NULL;
			if (im_template_render(set, "slack", "declare", ctx, &p,
					       err, sizeof(err)) != 0) {
				fprintf(stderr, "%s\n", err);
				exit(1);
			}
			json_decref(p);
		}
	} while ((t = now_s() - t0) < secs);
	printf("RESULT service render, slack/declare (escape + render + JSON "
	       "parse + limits): %.0f renders/s, %.2f us each\n",
	       n / t, t / n * 1e6);
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	setenv("IM_TEMPLATES_DEFAULT", IM_BENCH_SOURCE_ROOT "/conf.d/templates",
	       0);
	im_log_set_level(IM_LOG_ERROR);
	char err[1024];
	im_config *cfg = im_config_load_string(
	    "bench.yaml",
	    "server: {public_url: \"http://localhost:8080\"}\n"
	    "plugins:\n  dirs: [\"" IM_BENCH_BUILD_ROOT "/plugins\"]\n"
	    "  instances:\n    - {id: mustache, module: mustache}\n"
	    "    - {id: slack, module: slack}\n",
	    err, sizeof(err));
	im_snapshot *snap = cfg ? im_registry_build(cfg, err, sizeof(err))
				: NULL;
	if (!snap) {
		fprintf(stderr, "bench-templates: %s\n", err);
		return 1;
	}
	im_registry_swap(snap);
	snap = im_registry_acquire();
	im_template_set *set = NULL;
	if (im_template_load(cfg, snap, &set, err, sizeof(err)) != 0 ||
	    !tpl_find(set, "slack", "declare")) {
		fprintf(stderr, "bench-templates: no slack/declare template\n");
		return 1;
	}
	json_t *ctx = im_template_sample("declare", "normal",
					 "http://localhost:8080");
	bench_load(cfg, snap);
	bench_engine(set, ctx, secs);
	bench_service(set, ctx, secs);
	json_decref(ctx);
	im_template_set_unref(set);
	im_registry_release(snap);
	im_registry_shutdown();
	im_config_free(cfg);
	return 0;
}
