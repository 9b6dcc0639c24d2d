/*
 * Unit tests for core/metrics: registration, series, the Prometheus text
 * exposition and the process_* metrics. Every test ends with
 * im_metrics_reset() (fini) so LeakSanitizer sees a clean heap.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics/metrics.h"

static void reset(void)
{
	im_metrics_reset();
}

TestSuite(metrics, .fini = reset);

static char *render(void)
{
	size_t len = 0;
	char *out = im_metrics_render(&len);
	cr_assert_not_null(out);
	cr_assert_eq(strlen(out), len);
	return out;
}

/* Asserts `needle` occurs in the exposition. */
static void assert_has(const char *out, const char *needle)
{
	cr_assert_not_null(strstr(out, needle), "missing:\n%s\nin:\n%s",
			   needle, out);
}

static void assert_lacks(const char *out, const char *needle)
{
	cr_assert_null(strstr(out, needle), "unexpected:\n%s\nin:\n%s", needle,
		       out);
}

/* Value of the first line starting with `prefix` followed by a space. */
static double sample(const char *out, const char *prefix)
{
	size_t n = strlen(prefix);
	for (const char *p = out; p != NULL && *p != '\0';) {
		if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	cr_assert_fail("no sample %s in:\n%s", prefix, out);
	return NAN;
}

static const char *const route_labels[] = {"method", "route", NULL};

/* ---- counters and gauges --------------------------------------------- */

Test(metrics, counter_adds_and_renders)
{
	im_metric *m = im_metrics_family("im_http_requests_total",
					 "HTTP requests served.",
					 IM_METRIC_COUNTER, route_labels, NULL,
					 0);
	cr_assert_not_null(m);
	const char *v[] = {"POST", "/hooks/slack/events"};
	im_metric_add(m, v, 1);
	im_metric_add(m, v, 2.5);
	cr_assert_eq(im_metric_value(m, v), 3.5);

	char *out = render();
	assert_has(out, "# HELP im_http_requests_total HTTP requests served.\n"
			"# TYPE im_http_requests_total counter\n"
			"im_http_requests_total{method=\"POST\","
			"route=\"/hooks/slack/events\"} 3.5\n");
	free(out);
}

Test(metrics, counter_prints_integers_without_a_decimal_point)
{
	im_metric *m = im_metrics_family("im_events_total", "Events.",
					 IM_METRIC_COUNTER, NULL, NULL, 0);
	im_metric_add(m, NULL, 1);
	im_metric_add(m, NULL, 41);
	char *out = render();
	assert_has(out, "\nim_events_total 42\n");
	free(out);
}

Test(metrics, counter_ignores_negative_and_nan_increments)
{
	im_metric *m = im_metrics_family("im_up_only_total", "x",
					 IM_METRIC_COUNTER, NULL, NULL, 0);
	im_metric_add(m, NULL, 5);
	im_metric_add(m, NULL, -2);
	im_metric_add(m, NULL, NAN);
	cr_assert_eq(im_metric_value(m, NULL), 5);
}

Test(metrics, gauge_set_replaces_the_value)
{
	const char *const labels[] = {"platform", "instance", NULL};
	im_metric *m = im_metrics_family("chatops_connection_status",
					 "Connector connected (1) or not (0).",
					 IM_METRIC_GAUGE, labels, NULL, 0);
	const char *v[] = {"slack", "slack-prod"};
	im_metric_set(m, v, 1);
	im_metric_set(m, v, 0);
	im_metric_set(m, v, 1);
	cr_assert_eq(im_metric_value(m, v), 1);
	im_metric_add(m, v, -3);
	cr_assert_eq(im_metric_value(m, v), -2);

	char *out = render();
	assert_has(out, "# TYPE chatops_connection_status gauge\n"
			"chatops_connection_status{platform=\"slack\","
			"instance=\"slack-prod\"} -2\n");
	free(out);
}

Test(metrics, value_of_an_absent_series_is_zero)
{
	im_metric *m = im_metrics_family("im_g", "g", IM_METRIC_GAUGE,
					 route_labels, NULL, 0);
	const char *v[] = {"GET", "/nope"};
	cr_assert_eq(im_metric_value(m, v), 0);
	cr_assert_eq(im_metric_value(NULL, v), 0);
}

Test(metrics, family_without_series_or_labels_renders_zero)
{
	im_metrics_family("im_idle_total", "Never touched.", IM_METRIC_COUNTER,
			  NULL, NULL, 0);
	im_metrics_family("im_labelled_total", "Labelled, never touched.",
			  IM_METRIC_COUNTER, route_labels, NULL, 0);
	char *out = render();
	assert_has(out, "# TYPE im_idle_total counter\nim_idle_total 0\n");
	assert_has(out, "# TYPE im_labelled_total counter\n# HELP");
	assert_lacks(out, "im_labelled_total{");
	free(out);
}

Test(metrics, formats_numbers_like_prometheus)
{
	const char *const labels[] = {"k", NULL};
	im_metric *m = im_metrics_family("im_numbers", "n", IM_METRIC_GAUGE,
					 labels, NULL, 0);
	const struct {
		const char *k;
		double v;
		const char *want;
	} cases[] = {
	    {"pinf", INFINITY, "+Inf"},  {"ninf", -INFINITY, "-Inf"},
	    {"nan", NAN, "NaN"},         {"tenth", 0.1, "0.1"},
	    {"third", 1.0 / 3, "0.3333333333333333"},
	    {"big", 1e20, "1e+20"},      {"int", 42, "42"},
	    {"neg", -3, "-3"},           {"negzero", -0.0, "0"},
	    {"large", 123456789012.0, "123456789012"},
	};
	size_t n = sizeof(cases) / sizeof(*cases);
	for (size_t i = 0; i < n; i++) {
		const char *v[] = {cases[i].k};
		im_metric_set(m, v, cases[i].v);
	}
	char *out = render();
	for (size_t i = 0; i < n; i++) {
		char line[128];
		snprintf(line, sizeof(line), "im_numbers{k=\"%s\"} %s\n",
			 cases[i].k, cases[i].want);
		assert_has(out, line);
	}
	free(out);
}

/* ---- escaping -------------------------------------------------------- */

Test(metrics, escapes_label_values)
{
	const char *const labels[] = {"path", NULL};
	im_metric *m = im_metrics_family("im_escaped_total", "e",
					 IM_METRIC_COUNTER, labels, NULL, 0);
	const char *v[] = {"a\\b \"q\"\nnext"};
	im_metric_add(m, v, 1);
	char *out = render();
	assert_has(out, "im_escaped_total{path=\"a\\\\b \\\"q\\\"\\nnext\"} 1\n");
	free(out);
}

Test(metrics, escapes_backslash_and_newline_in_help)
{
	im_metrics_family("im_help", "line one\nline \"two\" c:\\dir",
			  IM_METRIC_GAUGE, NULL, NULL, 0);
	char *out = render();
	assert_has(out,
		   "# HELP im_help line one\\nline \"two\" c:\\\\dir\n");
	free(out);
}

/* ---- histograms ------------------------------------------------------ */

Test(metrics, histogram_buckets_are_cumulative_with_sum_and_count)
{
	const char *const labels[] = {"op", NULL};
	const double b[] = {1, 2, 5};
	im_metric *m = im_metrics_family("im_op_seconds", "Op latency.",
					 IM_METRIC_HISTOGRAM, labels, b, 3);
	cr_assert_not_null(m);
	const char *v[] = {"send"};
	const double obs[] = {0.5, 1, 1.5, 3, 10};
	for (size_t i = 0; i < 5; i++)
		im_metric_observe(m, v, obs[i]);
	cr_assert_eq(im_metric_value(m, v), 5);

	char *out = render();
	assert_has(out, "# TYPE im_op_seconds histogram\n"
			"im_op_seconds_bucket{op=\"send\",le=\"1\"} 2\n"
			"im_op_seconds_bucket{op=\"send\",le=\"2\"} 3\n"
			"im_op_seconds_bucket{op=\"send\",le=\"5\"} 4\n"
			"im_op_seconds_bucket{op=\"send\",le=\"+Inf\"} 5\n"
			"im_op_seconds_sum{op=\"send\"} 16\n"
			"im_op_seconds_count{op=\"send\"} 5\n");
	free(out);
}

Test(metrics, histogram_uses_the_default_buckets)
{
	im_metric *m = im_metrics_family("im_latency_seconds", "Latency.",
					 IM_METRIC_HISTOGRAM, NULL, NULL, 0);
	im_metric_observe(m, NULL, 0.003);
	im_metric_observe(m, NULL, 0.3);
	char *out = render();
	assert_has(out, "im_latency_seconds_bucket{le=\"0.005\"} 1\n"
			"im_latency_seconds_bucket{le=\"0.01\"} 1\n"
			"im_latency_seconds_bucket{le=\"0.025\"} 1\n"
			"im_latency_seconds_bucket{le=\"0.05\"} 1\n"
			"im_latency_seconds_bucket{le=\"0.1\"} 1\n"
			"im_latency_seconds_bucket{le=\"0.25\"} 1\n"
			"im_latency_seconds_bucket{le=\"0.5\"} 2\n"
			"im_latency_seconds_bucket{le=\"1\"} 2\n"
			"im_latency_seconds_bucket{le=\"2.5\"} 2\n"
			"im_latency_seconds_bucket{le=\"5\"} 2\n"
			"im_latency_seconds_bucket{le=\"10\"} 2\n"
			"im_latency_seconds_bucket{le=\"+Inf\"} 2\n"
			"im_latency_seconds_sum 0.303");
	assert_has(out, "\nim_latency_seconds_count 2\n");
	free(out);
}

Test(metrics, unlabelled_histogram_sum_has_no_braces)
{
	im_metric *m = im_metrics_family("im_h", "h", IM_METRIC_HISTOGRAM,
					 NULL, NULL, 0);
	im_metric_observe(m, NULL, 0.25);
	char *out = render();
	assert_has(out, "im_h_bucket{le=\"0.25\"} 1\n");
	assert_has(out, "\nim_h_sum 0.25\nim_h_count 1\n");
	free(out);
}

Test(metrics, untouched_unlabelled_histogram_renders_zeros)
{
	im_metrics_family("im_empty_h", "h", IM_METRIC_HISTOGRAM, NULL,
			  (const double[]){1}, 1);
	char *out = render();
	assert_has(out, "# TYPE im_empty_h histogram\n"
			"im_empty_h_bucket{le=\"1\"} 0\n"
			"im_empty_h_bucket{le=\"+Inf\"} 0\n"
			"im_empty_h_sum 0\nim_empty_h_count 0\n");
	free(out);
}

Test(metrics, histogram_rejects_unsorted_or_nan_buckets)
{
	cr_assert_null(im_metrics_family("im_h1", "h", IM_METRIC_HISTOGRAM,
					 NULL, (const double[]){2, 1}, 2));
	cr_assert_null(im_metrics_family("im_h2", "h", IM_METRIC_HISTOGRAM,
					 NULL, (const double[]){1, 1}, 2));
	cr_assert_null(im_metrics_family("im_h3", "h", IM_METRIC_HISTOGRAM,
					 NULL, (const double[]){1, NAN}, 2));
	cr_assert_not_null(im_metrics_family("im_h4", "h",
					     IM_METRIC_HISTOGRAM, NULL,
					     (const double[]){1, INFINITY},
					     2));
	char *out = render();
	assert_has(out, "im_h4_bucket{le=\"1\"} 0\nim_h4_bucket{le=\"+Inf\"} 0\n"
			"im_h4_sum");
	free(out);
}

Test(metrics, histogram_rejects_an_le_label)
{
	const char *const labels[] = {"le", NULL};
	cr_assert_null(im_metrics_family("im_h", "h", IM_METRIC_HISTOGRAM,
					 labels, NULL, 0));
	cr_assert_not_null(im_metrics_family("im_g", "g", IM_METRIC_GAUGE,
					     labels, NULL, 0));
}

/* ---- registration ---------------------------------------------------- */

Test(metrics, same_name_twice_returns_the_same_family)
{
	im_metric *a = im_metrics_family("im_x_total", "x", IM_METRIC_COUNTER,
					 route_labels, NULL, 0);
	const char *const again[] = {"method", "route", NULL};
	im_metric *b = im_metrics_family("im_x_total", "other help",
					 IM_METRIC_COUNTER, again, NULL, 0);
	cr_assert_not_null(a);
	cr_assert_eq(a, b);
	char *out = render();
	assert_has(out, "# HELP im_x_total x\n");
	cr_assert_null(strstr(strstr(out, "# TYPE im_x_total") + 1,
			      "# TYPE im_x_total"),
		       "family rendered twice");
	free(out);
}

Test(metrics, clash_on_kind_or_labels_returns_null)
{
	cr_assert_not_null(im_metrics_family("im_c_total", "c",
					     IM_METRIC_COUNTER, route_labels,
					     NULL, 0));
	cr_assert_null(im_metrics_family("im_c_total", "c", IM_METRIC_GAUGE,
					 route_labels, NULL, 0));
	const char *const fewer[] = {"method", NULL};
	cr_assert_null(im_metrics_family("im_c_total", "c", IM_METRIC_COUNTER,
					 fewer, NULL, 0));
	const char *const swapped[] = {"route", "method", NULL};
	cr_assert_null(im_metrics_family("im_c_total", "c", IM_METRIC_COUNTER,
					 swapped, NULL, 0));
	cr_assert_null(im_metrics_family("im_c_total", "c", IM_METRIC_COUNTER,
					 NULL, NULL, 0));
}

Test(metrics, bad_names_are_rejected)
{
	const char *bad_names[] = {"", "1abc", "a-b", "a b", "é", "a.b"};
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(*bad_names); i++)
		cr_assert_null(im_metrics_family(bad_names[i], "h",
						 IM_METRIC_GAUGE, NULL, NULL,
						 0),
			       "accepted \"%s\"", bad_names[i]);
	cr_assert_null(im_metrics_family(NULL, "h", IM_METRIC_GAUGE, NULL,
					 NULL, 0));
	cr_assert_null(im_metrics_family("im_k", "h", (im_metric_kind)7, NULL,
					 NULL, 0));

	const char *const *bad_labels[] = {
	    (const char *const[]){"1x", NULL},
	    (const char *const[]){"a:b", NULL},
	    (const char *const[]){"a-b", NULL},
	    (const char *const[]){"", NULL},
	    (const char *const[]){"__name", NULL},
	    (const char *const[]){"dup", "dup", NULL},
	};
	for (size_t i = 0; i < sizeof(bad_labels) / sizeof(*bad_labels); i++)
		cr_assert_null(im_metrics_family("im_ok", "h",
						 IM_METRIC_GAUGE,
						 bad_labels[i], NULL, 0),
			       "accepted label set %zu", i);
	char *out = render();
	assert_lacks(out, "im_ok");
	free(out);
}

Test(metrics, good_names_are_accepted)
{
	cr_assert_not_null(im_metrics_family("ns:sub:im_rate", "h",
					     IM_METRIC_GAUGE, NULL, NULL, 0));
	cr_assert_not_null(im_metrics_family("_under", "h", IM_METRIC_GAUGE,
					     NULL, NULL, 0));
	const char *const labels[] = {"_a", "B9", NULL};
	cr_assert_not_null(im_metrics_family("Z0", "h", IM_METRIC_GAUGE,
					     labels, NULL, 0));
}

Test(metrics, process_names_are_reserved)
{
	cr_assert_null(im_metrics_family("process_open_fds", "h",
					 IM_METRIC_GAUGE, NULL, NULL, 0));
}

Test(metrics, families_render_sorted_by_name_then_series_in_creation_order)
{
	const char *const labels[] = {"k", NULL};
	im_metric *z = im_metrics_family("zz_total", "z", IM_METRIC_COUNTER,
					 labels, NULL, 0);
	im_metric *a = im_metrics_family("aa_total", "a", IM_METRIC_COUNTER,
					 labels, NULL, 0);
	im_metrics_family("mm_total", "m", IM_METRIC_COUNTER, NULL, NULL, 0);
	im_metric_add(z, (const char *[]){"2"}, 1);
	im_metric_add(z, (const char *[]){"1"}, 1);
	im_metric_add(a, (const char *[]){"b"}, 1);
	im_metric_add(a, (const char *[]){"a"}, 1);
	char *out = render();
	const char *pa = strstr(out, "# HELP aa_total");
	const char *pm = strstr(out, "# HELP mm_total");
	const char *pz = strstr(out, "# HELP zz_total");
	cr_assert(pa != NULL && pm != NULL && pz != NULL);
	cr_assert(pa < pm && pm < pz);
	cr_assert(strstr(out, "aa_total{k=\"b\"}") <
		  strstr(out, "aa_total{k=\"a\"}"));
	cr_assert(strstr(out, "zz_total{k=\"2\"}") <
		  strstr(out, "zz_total{k=\"1\"}"));
	free(out);
}

Test(metrics, distinguishes_label_values_that_concatenate_alike)
{
	const char *const labels[] = {"a", "b", NULL};
	im_metric *m = im_metrics_family("im_pairs_total", "p",
					 IM_METRIC_COUNTER, labels, NULL, 0);
	im_metric_add(m, (const char *[]){"ab", "c"}, 1);
	im_metric_add(m, (const char *[]){"a", "bc"}, 2);
	cr_assert_eq(im_metric_value(m, (const char *[]){"ab", "c"}), 1);
	cr_assert_eq(im_metric_value(m, (const char *[]){"a", "bc"}), 2);
}

Test(metrics, copies_label_values)
{
	const char *const labels[] = {"k", NULL};
	im_metric *m = im_metrics_family("im_copy_total", "c",
					 IM_METRIC_COUNTER, labels, NULL, 0);
	char buf[16];
	strcpy(buf, "first");
	im_metric_add(m, (const char *[]){buf}, 1);
	strcpy(buf, "other");
	char *out = render();
	assert_has(out, "im_copy_total{k=\"first\"} 1\n");
	free(out);
}

Test(metrics, ignores_null_families_and_missing_values)
{
	im_metric_add(NULL, NULL, 1);
	im_metric_set(NULL, NULL, 1);
	im_metric_observe(NULL, NULL, 1);
	im_metric_remove(NULL, NULL);
	im_metric *m = im_metrics_family("im_l_total", "l", IM_METRIC_COUNTER,
					 route_labels, NULL, 0);
	im_metric_add(m, NULL, 1);
	char *out = render();
	assert_lacks(out, "im_l_total{");
	free(out);
}

/* ---- removal and reset ----------------------------------------------- */

Test(metrics, removes_one_series)
{
	const char *const labels[] = {"instance", NULL};
	im_metric *m = im_metrics_family("im_instance_up", "u",
					 IM_METRIC_GAUGE, labels, NULL, 0);
	im_metric_set(m, (const char *[]){"a"}, 1);
	im_metric_set(m, (const char *[]){"b"}, 1);
	im_metric_set(m, (const char *[]){"c"}, 1);
	im_metric_remove(m, (const char *[]){"b"});
	im_metric_remove(m, (const char *[]){"absent"});
	char *out = render();
	assert_has(out, "im_instance_up{instance=\"a\"} 1\n"
			"im_instance_up{instance=\"c\"} 1\n");
	assert_lacks(out, "instance=\"b\"");
	free(out);
	cr_assert_eq(im_metric_value(m, (const char *[]){"b"}), 0);
	im_metric_set(m, (const char *[]){"b"}, 7);
	cr_assert_eq(im_metric_value(m, (const char *[]){"b"}), 7);
}

Test(metrics, reset_drops_every_family)
{
	im_metric *m = im_metrics_family("im_gone_total", "g",
					 IM_METRIC_COUNTER, NULL, NULL, 0);
	im_metric_add(m, NULL, 3);
	im_metrics_reset();
	char *out = render();
	assert_lacks(out, "im_gone_total");
	free(out);
	/* and the name is free again, with another kind */
	cr_assert_not_null(im_metrics_family("im_gone_total", "g",
					     IM_METRIC_GAUGE, NULL, NULL, 0));
}

/* ---- concurrency ----------------------------------------------------- */

struct adder {
	im_metric *m;
	const char *route;
};

static void *add_many(void *p)
{
	struct adder *a = p;
	const char *v[] = {"GET", a->route};
	const char *shared[] = {"POST", "/shared"};
	for (int i = 0; i < 100000; i++) {
		im_metric_add(a->m, shared, 1);
		im_metric_add(a->m, v, 1);
	}
	return NULL;
}

Test(metrics, concurrent_adds_from_four_threads_sum_exactly)
{
	im_metric *m = im_metrics_family("im_concurrent_total", "c",
					 IM_METRIC_COUNTER, route_labels, NULL,
					 0);
	pthread_t t[4];
	struct adder a[4] = {{m, "/a"}, {m, "/b"}, {m, "/c"}, {m, "/d"}};
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, add_many, &a[i]), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(im_metric_value(m, (const char *[]){"POST", "/shared"}),
		     400000);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(im_metric_value(
				 m, (const char *[]){"GET", a[i].route}),
			     100000);
	char *out = render();
	assert_has(out, "im_concurrent_total{method=\"POST\",route=\"/shared\"} "
			"400000\n");
	free(out);
}

static void *observe_and_render(void *p)
{
	im_metric *m = p;
	for (int i = 0; i < 2000; i++) {
		im_metric_observe(m, NULL, (double)(i % 10));
		if (i % 200 == 0)
			free(im_metrics_render(NULL));
	}
	return NULL;
}

Test(metrics, render_runs_safely_alongside_observations)
{
	im_metric *m = im_metrics_family("im_busy_seconds", "b",
					 IM_METRIC_HISTOGRAM, NULL, NULL, 0);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, observe_and_render, m);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	char *out = render();
	assert_has(out, "im_busy_seconds_bucket{le=\"+Inf\"} 8000\n");
	assert_has(out, "\nim_busy_seconds_count 8000\n");
	assert_has(out, "\nim_busy_seconds_sum 36000\n");
	free(out);
}

/* ---- process metrics ------------------------------------------------- */

Test(metrics, process_metrics_are_present_in_render)
{
	char *out = render();
	assert_has(out, "# TYPE process_cpu_seconds_total counter\n");
	assert_has(out, "# TYPE process_open_fds gauge\n");
	assert_has(out, "# TYPE process_resident_memory_bytes gauge\n");
	assert_has(out, "# TYPE process_virtual_memory_bytes gauge\n");
	assert_has(out, "# TYPE process_start_time_seconds gauge\n");

	cr_assert_geq(sample(out, "process_cpu_seconds_total"), 0);
	cr_assert_geq(sample(out, "process_open_fds"), 3);
	double rss = sample(out, "process_resident_memory_bytes");
	double vsz = sample(out, "process_virtual_memory_bytes");
	cr_assert_gt(rss, 0);
	cr_assert_geq(vsz, rss);
	double start = sample(out, "process_start_time_seconds");
	double now = (double)time(NULL);
	cr_assert(start <= now + 2 && start > now - 3600,
		  "start %f now %f", start, now);
	free(out);
}

Test(metrics, open_fds_follow_opened_files)
{
	char *out = render();
	double before = sample(out, "process_open_fds");
	free(out);
	FILE *f[3];
	for (int i = 0; i < 3; i++)
		f[i] = tmpfile();
	out = render();
	double after = sample(out, "process_open_fds");
	free(out);
	for (int i = 0; i < 3; i++)
		fclose(f[i]);
	cr_assert_eq(after, before + 3);
}

Test(metrics, memo_keeps_its_family_until_a_reset)
{
	static im_metric_memo memo;
	im_metric *a = im_metrics_memo(&memo, "memo_total", "memo test",
				       IM_METRIC_COUNTER, NULL, NULL, 0);
	cr_assert_not_null(a);
	cr_assert_eq(a, im_metrics_family("memo_total", "memo test",
					  IM_METRIC_COUNTER, NULL, NULL, 0),
		     "the registry's own family");
	cr_assert_eq(im_metrics_memo(&memo, "memo_total", "memo test",
				     IM_METRIC_COUNTER, NULL, NULL, 0),
		     a);
	im_metric_add(a, NULL, 2);
	im_metrics_reset();
	/* After a reset the memo registers the family again. */
	im_metric *b = im_metrics_memo(&memo, "memo_total", "memo test",
				       IM_METRIC_COUNTER, NULL, NULL, 0);
	cr_assert_not_null(b);
	im_metric_add(b, NULL, 1);
	cr_assert_eq(im_metric_value(b, NULL), 1);
	char *out = render();
	assert_has(out, "memo_total 1\n");
	free(out);
	/* A refused registration is not remembered as a family. */
	static im_metric_memo bad;
	cr_assert_null(im_metrics_memo(&bad, "9bad", "x", IM_METRIC_COUNTER,
				       NULL, NULL, 0));
	cr_assert_eq(atomic_load(&bad.gen), 0);
}
