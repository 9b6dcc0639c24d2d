/*
 * core/metrics - the Prometheus registry and its text exposition (format
 * 0.0.4).
 *
 * Contract: one process-wide registry; every function is thread-safe.
 * Families are registered once and live until im_metrics_reset() (tests) or
 * exit; registering the same name again with the same kind and labels
 * returns the same family, with another kind or label set returns NULL.
 * Label values are copied; a series is created on first use. Values are
 * doubles. Histograms take their bucket bounds at registration (NULL: the
 * Prometheus defaults .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10).
 * im_metrics_render() writes every family (HELP, TYPE, series sorted by
 * family name then creation order) and the process_* metrics: 
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_cpu_seconds_total, process_open_fds, process_start_time_seconds.
 */
#ifndef IM_CORE_METRICS_H
#define IM_CORE_METRICS_H

#include <stddef.h>

#include <im/host.h>

/* im_metric is declared in im/types.h (opaque to plugins). */

im_metric *im_metrics_family(const char *name, const char *help,
			     im_metric_kind kind, const char *const *labels,
			     const double *buckets, size_t n_buckets);
/* A call site's memo of its family, for hot paths: the first call
 * registers (or finds) the family as im_metrics_family does, later ones
 * return it without a registry lookup until im_metrics_reset(). Declare
 * it `static im_metric_memo memo;`. */
typedef struct im_metric_memo {
	im_metric *m;
	_Atomic unsigned long gen; /* 0: not looked up yet */
} im_metric_memo;
im_metric *im_metrics_memo(im_metric_memo *memo, const char *name,
			   const char *help, im_metric_kind kind,
			   const char *const *labels, const double *buckets,
			   size_t n_buckets);
void im_metric_add(im_metric *m, const char *const *values, double v);
/* Adds 1 to counter `name` (registered on first use with `help`) in the
 * series label=value: the one-label counters the host keeps. */
void im_metrics_count(const char *name, const char *help, const char *label,
		      const char *value);
void im_metric_set(im_metric *m, const char *const *values, double v);
void im_metric_observe(im_metric *m, const char *const *values, double v);
/* Removes one series (e.g. an instance that is gone after a reload). */
void im_metric_remove(im_metric *m, const char *const *values);
/* Current value of a counter or gauge series (a histogram series: its
 * observation count); 0 when absent (tests). */
double im_metric_value(im_metric *m, const char *const *values);

/* The whole exposition as a malloc'd NUL-terminated string. */
char *im_metrics_render(size_t *len);
/* Drops every family (tests; main may call it at exit for a clean
 * LeakSanitizer report). Every im_metric pointer is invalid afterwards;
 * call it only while nothing counts (memos are looked up again after). */
void im_metrics_reset(void);

#endif
