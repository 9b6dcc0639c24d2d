/*
 * core/metrics - see metrics.h.
 *
 * Locking: g_reg_mu guards the family table (registration, render, reset);
 * each family has its own mutex for its series. Lock order is always
 * registry then family. The hot path (im_metric_add) hashes the label values
 * before taking the family lock, then scans a flat array of hashes and only
 * compares strings on a hash hit.
 */
#include "metrics/metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct series {
	double value; /* counter, gauge */
	double sum;   /* histogram */
	uint64_t count;
	uint64_t *buckets; /* per-bucket (not cumulative); [n_buckets] is +Inf */
	char **values;     /* n_labels strings */
};

struct im_metric {
	char *name;
	char *help;
	im_metric_kind kind;
	size_t n_labels;
	char **labels;
	size_t n_buckets; /* finite upper bounds, +Inf implied */
	double *bounds;

	pthread_mutex_t mu;
	size_t n, cap;
	uint64_t *hashes; /* hashes[i] belongs to series[i] */
	struct series **series; /* creation order */
};

static pthread_mutex_t g_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static im_metric **g_fams; /* sorted by name */
static size_t g_nfams, g_capfams;

static const double default_buckets[] = {.005, .01, .025, .05, .1, .25,
					 .5,   1,   2.5,  5,   10};

static const char *const process_names[] = {
    "process_cpu_seconds_total", "process_open_fds",
    "process_resident_memory_bytes", "process_virtual_memory_bytes",
    "process_start_time_seconds"};

/* ---- validation ------------------------------------------------------ */

static bool valid_metric_name(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  c == '_' || c == ':' || (p != s && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

static bool valid_label_name(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	if (s[0] == '_' && s[1] == '_') /* reserved by Prometheus */
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  c == '_' || (p != s && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

/* ---- families -------------------------------------------------------- */

static void series_free(struct series *s)
{
	free(s); /* one allocation, see series_new */
}

static void family_free(im_metric *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		series_free(m->series[i]);
	free(m->series);
	free(m->hashes);
	for (size_t i = 0; i < m->n_labels; i++)
		free(m->labels[i]);
	free(m->labels);
	free(m->bounds);
	free(m->name);
	free(m->help);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static bool same_labels(const im_metric *m, const char *const *labels,
			size_t n)
{
	if (m->n_labels != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(m->labels[i], labels[i]) != 0)
			return false;
	return true;
}

/* Index of `name` in g_fams, or where it would go (*found false). */
static size_t fam_find(const char *name, bool *found)
{
	size_t lo = 0, hi = g_nfams;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(g_fams[mid]->name, name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static im_metric *family_new(const char *name, const char *help,
			     im_metric_kind kind, const char *const *labels,
			     size_t n_labels, const double *bounds,
			     size_t n_bounds)
{
	im_metric *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	pthread_mutex_init(&m->mu, NULL);
	m->kind = kind;
	m->name = strdup(name);
	m->help = strdup(help != NULL ? help : "");
	m->labels = calloc(n_labels ? n_labels : 1, sizeof(*m->labels));
	if (m->name == NULL || m->help == NULL || m->labels == NULL)
		goto fail;
	for (size_t i = 0; i < n_labels; i++) {
		if ((m->labels[i] = strdup(labels[i])) == NULL)
			goto fail;
		m->n_labels++;
	}
	if (kind == IM_METRIC_HISTOGRAM) {
		m->bounds = malloc((n_bounds ? n_bounds : 1) * sizeof(double));
		if (m->bounds == NULL)
			goto fail;
		memcpy(m->bounds, bounds, n_bounds * sizeof(double));
		m->n_buckets = n_bounds;
	}
	return m;
fail:
	family_free(m);
	return NULL;
}

im_metric *im_metrics_family(const char *name, const char *help,
			     im_metric_kind kind, const char *const *labels,
			     const double *buckets, size_t n_buckets)
{
	if (!valid_metric_name(name))
		return NULL;
	if (kind != IM_METRIC_COUNTER && kind != IM_METRIC_GAUGE &&
	    kind != IM_METRIC_HISTOGRAM)
		return NULL;
	for (size_t i = 0; i < sizeof(process_names) / sizeof(*process_names);
	     i++)
		if (strcmp(name, process_names[i]) == 0)
			return NULL; /* rendered by the registry itself */

	size_t n_labels = 0;
	if (labels != NULL) {
		for (; labels[n_labels] != NULL; n_labels++) {
			const char *l = labels[n_labels];
			if (!valid_label_name(l))
				return NULL;
			if (kind == IM_METRIC_HISTOGRAM && strcmp(l, "le") == 0)
				return NULL;
			for (size_t j = 0; j < n_labels; j++)
				if (strcmp(labels[j], l) == 0)
					return NULL;
		}
	}

	if (kind == IM_METRIC_HISTOGRAM) {
		if (buckets == NULL || n_buckets == 0) {
			buckets = default_buckets;
			n_buckets = sizeof(default_buckets) /
				    sizeof(*default_buckets);
		}
		/* a trailing +Inf is implied; drop an explicit one */
		if (n_buckets > 0 && isinf(buckets[n_buckets - 1]) &&
		    buckets[n_buckets - 1] > 0)
			n_buckets--;
		for (size_t i = 0; i < n_buckets; i++) {
			if (isnan(buckets[i]) || isinf(buckets[i]))
				return NULL;
			if (i > 0 && !(buckets[i] > buckets[i - 1]))
				return NULL;
		}
	} else {
		buckets = NULL;
		n_buckets = 0;
	}

	pthread_mutex_lock(&g_reg_mu);
	bool found;
	size_t at = fam_find(name, &found);
	im_metric *m = NULL;
	if (found) {
		im_metric *old = g_fams[at];
		if (old->kind == kind && same_labels(old, labels, n_labels))
			m = old;
		goto out;
	}
	if (g_nfams == g_capfams) {
		size_t cap = g_capfams ? g_capfams * 2 : 32;
		im_metric **f = realloc(g_fams, cap * sizeof(*f));
		if (f == NULL)
			goto out;
		g_fams = f;
		g_capfams = cap;
	}
	m = family_new(name, help, kind, labels, n_labels, buckets, n_buckets);
	if (m == NULL)
		goto out;
	memmove(&g_fams[at + 1], &g_fams[at], (g_nfams - at) * sizeof(*g_fams));
	g_fams[at] = m;
	g_nfams++;
out:
	pthread_mutex_unlock(&g_reg_mu);
	return m;
}

/* Bumped by every reset: a memo from before it looks again. */
static atomic_ulong g_generation = 1;

im_metric *im_metrics_memo(im_metric_memo *memo, const char *name,
			   const char *help, im_metric_kind kind,
			   const char *const *labels, const double *buckets,
			   size_t n_buckets)
{
	unsigned long g =
	    atomic_load_explicit(&g_generation, memory_order_acquire);
	if (atomic_load_explicit(&memo->gen, memory_order_acquire) == g)
		return memo->m;
	im_metric *m =
	    im_metrics_family(name, help, kind, labels, buckets, n_buckets);
	memo->m = m;
	atomic_store_explicit(&memo->gen, m ? g : 0, memory_order_release);
	return m;
}

void im_metrics_reset(void)
{
	atomic_fetch_add_explicit(&g_generation, 1, memory_order_acq_rel);
	pthread_mutex_lock(&g_reg_mu);
	for (size_t i = 0; i < g_nfams; i++)
		family_free(g_fams[i]);
	free(g_fams);
	g_fams = NULL;
	g_nfams = g_capfams = 0;
	pthread_mutex_unlock(&g_reg_mu);
}

/* ---- series ---------------------------------------------------------- */

static const char *value_at(const char *const *values, size_t i)
{
	return values[i] != NULL ? values[i] : "";
}

/* FNV-1a over the values, each followed by a 0xff separator (a byte that
 * never occurs in UTF-8) so ("ab","c") and ("a","bc") differ. */
static uint64_t hash_values(const char *const *values, size_t n)
{
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < n; i++) {
		for (const unsigned char *p =
			 (const unsigned char *)value_at(values, i);
		     *p != '\0'; p++) {
			h ^= *p;
			h *= 1099511628211ULL;
		}
		h ^= 0xff;
		h *= 1099511628211ULL;
	}
	return h;
}

static bool series_match(const im_metric *m, const struct series *s,
			 const char *const *values)
{
	for (size_t i = 0; i < m->n_labels; i++)
		if (strcmp(s->values[i], value_at(values, i)) != 0)
			return false;
	return true;
}

/* Caller holds m->mu. Returns the index or SIZE_MAX. */
static size_t series_find(const im_metric *m, const char *const *values,
			  uint64_t h)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->hashes[i] == h && series_match(m, m->series[i], values))
			return i;
	return SIZE_MAX;
}

/* One allocation: the struct, the bucket counts, the value pointers and the
 * value bytes, in that order (alignment decreasing). */
static struct series *series_new(const im_metric *m,
				 const char *const *values)
{
	size_t nb = m->kind == IM_METRIC_HISTOGRAM ? m->n_buckets + 1 : 0;
	size_t strbytes = 0;
	for (size_t i = 0; i < m->n_labels; i++)
		strbytes += strlen(value_at(values, i)) + 1;
	size_t size = sizeof(struct series) + nb * sizeof(uint64_t) +
		      m->n_labels * sizeof(char *) + strbytes;
	struct series *s = calloc(1, size);
	if (s == NULL)
		return NULL;
	char *p = (char *)(s + 1);
	s->buckets = nb ? (uint64_t *)(void *)p : NULL;
	p += nb * sizeof(uint64_t);
	s->values = (char **)(void *)p;
	p += m->n_labels * sizeof(char *);
	for (size_t i = 0; i < m->n_labels; i++) {
		const char *v = value_at(values, i);
		size_t l = strlen(v) + 1;
		memcpy(p, v, l);
		s->values[i] = p;
		p += l;
	}
	return s;
}

/* Caller holds m->mu. Finds or creates the series; NULL on ENOMEM. */
static struct series *series_get(im_metric *m, const char *const *values,
				 uint64_t h)
{
	size_t i = series_find(m, values, h);
	if (i != SIZE_MAX)
		return m->series[i];
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 4;
		uint64_t *hs = realloc(m->hashes, cap * sizeof(*hs));
		if (hs == NULL)
			return NULL;
		m->hashes = hs;
		struct series **ss = realloc(m->series, cap * sizeof(*ss));
		if (ss == NULL)
			return NULL;
		m->series = ss;
		m->cap = cap;
	}
	struct series *s = series_new(m, values);
	if (s == NULL)
		return NULL;
	m->hashes[m->n] = h;
	m->series[m->n] = s;
	m->n++;
	return s;
}

static bool values_ok(const im_metric *m, const char *const *values)
{
	return m != NULL && (m->n_labels == 0 || values != NULL);
}

void im_metrics_count(const char *name, const char *help, const char *label,
		      const char *value)
{
	const char *const labels[] = {label, NULL};
	im_metric *m = im_metrics_family(name, help, IM_METRIC_COUNTER, labels,
					 NULL, 0);
	const char *const v[] = {value, NULL};
	if (m)
		im_metric_add(m, v, 1);
}

void im_metric_add(im_metric *m, const char *const *values, double v)
{
	if (!values_ok(m, values) || m->kind == IM_METRIC_HISTOGRAM)
		return;
	/* counters only go up */
	if (m->kind == IM_METRIC_COUNTER && !(v >= 0))
		return;
	uint64_t h = hash_values(values, m->n_labels);
	pthread_mutex_lock(&m->mu);
	struct series *s = series_get(m, values, h);
	if (s != NULL)
		s->value += v;
	pthread_mutex_unlock(&m->mu);
}

void im_metric_set(im_metric *m, const char *const *values, double v)
{
	if (!values_ok(m, values) || m->kind == IM_METRIC_HISTOGRAM)
		return;
	uint64_t h = hash_values(values, m->n_labels);
	pthread_mutex_lock(&m->mu);
	struct series *s = series_get(m, values, h);
	if (s != NULL)
		s->value = v;
	pthread_mutex_unlock(&m->mu);
}

void im_metric_observe(im_metric *m, const char *const *values, double v)
{
	if (!values_ok(m, values) || m->kind != IM_METRIC_HISTOGRAM)
		return;
	uint64_t h = hash_values(values, m->n_labels);
	/* first bound >= v; NaN lands in +Inf like the Go client */
	size_t lo = 0, hi = m->n_buckets;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v <= m->bounds[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	if (isnan(v))
		lo = m->n_buckets;
	pthread_mutex_lock(&m->mu);
	struct series *s = series_get(m, values, h);
	if (s != NULL) {
		s->buckets[lo]++;
		s->count++;
		s->sum += v;
	}
	pthread_mutex_unlock(&m->mu);
}

void im_metric_remove(im_metric *m, const char *const *values)
{
	if (!values_ok(m, values))
		return;
	uint64_t h = hash_values(values, m->n_labels);
	pthread_mutex_lock(&m->mu);
	size_t i = series_find(m, values, h);
	if (i != SIZE_MAX) {
		series_free(m->series[i]);
		memmove(&m->series[i], &m->series[i + 1],
			(m->n - i - 1) * sizeof(*m->series));
		memmove(&m->hashes[i], &m->hashes[i + 1],
			(m->n - i - 1) * sizeof(*m->hashes));
		m->n--;
	}
	pthread_mutex_unlock(&m->mu);
}

double im_metric_value(im_metric *m, const char *const *values)
{
	if (!values_ok(m, values))
		return 0;
	uint64_t h = hash_values(values, m->n_labels);
	double v = 0;
	pthread_mutex_lock(&m->mu);
	size_t i = series_find(m, values, h);
	if (i != SIZE_MAX)
		v = m->kind == IM_METRIC_HISTOGRAM ? (double)m->series[i]->count
						   : m->series[i]->value;
	pthread_mutex_unlock(&m->mu);
	return v;
}

/* ---- rendering ------------------------------------------------------- */

struct out {
	char *p;
	size_t len, cap;
	bool oom;
};

static void out_put(struct out *o, const char *s, size_t n)
{
	if (o->oom)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		while (cap < o->len + n + 1)
			cap *= 2;
		char *p = realloc(o->p, cap);
		if (p == NULL) {
			o->oom = true;
			return;
		}
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void out_puts(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

/* Prometheus number: NaN, +Inf, -Inf, integers without a point, else the
 * shortest %g form that reads back to the same double. */
static void fmt_double(char buf[40], double v)
{
	if (isnan(v)) {
		strcpy(buf, "NaN");
		return;
	}
	if (isinf(v)) {
		strcpy(buf, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == 0) {
		strcpy(buf, "0");
		return;
	}
	if (fabs(v) < 1e15 && v == trunc(v)) {
		snprintf(buf, 40, "%.0f", v);
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, 40, "%.*g", prec, v);
		if (prec == 17 || strtod(buf, NULL) == v)
			return;
	}
}

static void out_double(struct out *o, double v)
{
	char buf[40];
	fmt_double(buf, v);
	out_puts(o, buf);
}

static void out_u64(struct out *o, uint64_t v)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	out_puts(o, buf);
}

/* Escapes backslash and newline (HELP), plus the double quote (labels). */
static void out_escaped(struct out *o, const char *s, bool quote)
{
	const char *lit = s, *p = s;
	for (; *p != '\0'; p++) {
		const char *rep = NULL;
		if (*p == '\\')
			rep = "\\\\";
		else if (*p == '\n')
			rep = "\\n";
		else if (quote && *p == '"')
			rep = "\\\"";
		if (rep == NULL)
			continue;
		out_put(o, lit, (size_t)(p - lit));
		out_puts(o, rep);
		lit = p + 1;
	}
	out_put(o, lit, (size_t)(p - lit));
}

static void out_header(struct out *o, const char *name, const char *help,
		       const char *type)
{
	out_puts(o, "# HELP ");
	out_puts(o, name);
	out_puts(o, " ");
	out_escaped(o, help, false);
	out_puts(o, "\n# TYPE ");
	out_puts(o, name);
	out_puts(o, " ");
	out_puts(o, type);
	out_puts(o, "\n");
}

/* name[suffix]{labels[,le="x"]} */
static void out_series_name(struct out *o, const im_metric *m,
			    const struct series *s, const char *suffix,
			    const char *le)
{
	out_puts(o, m->name);
	if (suffix != NULL)
		out_puts(o, suffix);
	if (m->n_labels == 0 && le == NULL)
		return;
	out_puts(o, "{");
	for (size_t i = 0; i < m->n_labels; i++) {
		if (i > 0)
			out_puts(o, ",");
		out_puts(o, m->labels[i]);
		out_puts(o, "=\"");
		out_escaped(o, s != NULL ? s->values[i] : "", true);
		out_puts(o, "\"");
	}
	if (le != NULL) {
		if (m->n_labels > 0)
			out_puts(o, ",");
		out_puts(o, "le=\"");
		out_puts(o, le);
		out_puts(o, "\"");
	}
	out_puts(o, "}");
}

static void render_histogram_series(struct out *o, const im_metric *m,
				    const struct series *s)
{
	uint64_t cum = 0;
	char le[40];
	for (size_t b = 0; b <= m->n_buckets; b++) {
		if (s->buckets != NULL) /* NULL: the all-zero series */
			cum += s->buckets[b];
		if (b < m->n_buckets)
			fmt_double(le, m->bounds[b]);
		else
			strcpy(le, "+Inf");
		out_series_name(o, m, s, "_bucket", le);
		out_puts(o, " ");
		out_u64(o, cum);
		out_puts(o, "\n");
	}
	out_series_name(o, m, s, "_sum", NULL);
	out_puts(o, " ");
	out_double(o, s->sum);
	out_puts(o, "\n");
	out_series_name(o, m, s, "_count", NULL);
	out_puts(o, " ");
	out_u64(o, s->count);
	out_puts(o, "\n");
}

static void render_family(struct out *o, im_metric *m)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	static const struct series zero = {0};
	out_header(o, m->name, m->help, types[m->kind]);
	pthread_mutex_lock(&m->mu);
	if (m->n == 0 && m->n_labels == 0) {
		if (m->kind == IM_METRIC_HISTOGRAM) {
			render_histogram_series(o, m, &zero);
		} else {
			out_puts(o, m->name);
			out_puts(o, " 0\n");
		}
	}
	for (size_t i = 0; i < m->n; i++) {
		const struct series *s = m->series[i];
		if (m->kind == IM_METRIC_HISTOGRAM) {
			render_histogram_series(o, m, s);
			continue;
		}
		out_series_name(o, m, s, NULL, NULL);
		out_puts(o, " ");
		out_double(o, s->value);
		out_puts(o, "\n");
	}
	pthread_mutex_unlock(&m->mu);
}

/* ---- process metrics ------------------------------------------------- */

static bool read_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return false;
	size_t n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n > 0;
}

static double g_btime = -1;

static void boot_time_init(void)
{
	/* line by line: the "intr" line before btime can be very long */
	FILE *f = fopen("/proc/stat", "re");
	if (f == NULL)
		return;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, "btime ", 6) == 0) {
			g_btime = strtod(line + 6, NULL);
			break;
		}
	}
	free(line);
	fclose(f);
}

/* Boot time in seconds since the epoch (/proc/stat btime), -1 if unknown. */
static double boot_time(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, boot_time_init);
	return g_btime;
}

static void out_process_metric(struct out *o, const char *name,
			       const char *help, const char *type, double v)
{
	out_header(o, name, help, type);
	out_puts(o, name);
	out_puts(o, " ");
	out_double(o, v);
	out_puts(o, "\n");
}

static void render_process(struct out *o)
{
	long tck = sysconf(_SC_CLK_TCK);
	long page = sysconf(_SC_PAGESIZE);
	char buf[4096];

	if (tck > 0 && read_file("/proc/self/stat", buf, sizeof(buf))) {
		/* comm (field 2) may hold spaces and parens: skip to the last
		 * ')' and count fields from 3 on. */
		char *p = strrchr(buf, ')');
		unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
		int got = 0;
		if (p != NULL) {
			char *save = NULL;
			int field = 3;
			for (char *t = strtok_r(p + 1, " ", &save); t != NULL;
			     t = strtok_r(NULL, " ", &save), field++) {
				unsigned long long x = strtoull(t, NULL, 10);
				if (field == 14)
					utime = x, got++;
				else if (field == 15)
					stime = x, got++;
				else if (field == 22)
					start = x, got++;
				else if (field == 23) {
					vsize = x, got++;
					break;
				}
			}
		}
		if (got == 4) {
			out_process_metric(
			    o, "process_cpu_seconds_total",
			    "Total user and system CPU time spent in seconds.",
			    "counter", (double)(utime + stime) / (double)tck);
			out_process_metric(o, "process_virtual_memory_bytes",
					   "Virtual memory size in bytes.",
					   "gauge", (double)vsize);
			double bt = boot_time();
			if (bt >= 0)
				out_process_metric(
				    o, "process_start_time_seconds",
				    "Start time of the process since unix "
				    "epoch in seconds.",
				    "gauge", bt + (double)start / (double)tck);
		}
	}

	if (page > 0 && read_file("/proc/self/statm", buf, sizeof(buf))) {
		unsigned long long size, resident;
		if (sscanf(buf, "%llu %llu", &size, &resident) == 2)
			out_process_metric(o, "process_resident_memory_bytes",
					   "Resident memory size in bytes.",
					   "gauge",
					   (double)resident * (double)page);
	}

	DIR *d = opendir("/proc/self/fd");
	if (d != NULL) {
		long n = 0;
		int self = dirfd(d);
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			if (atoi(e->d_name) == self)
				continue; /* the directory we are reading */
			n++;
		}
		closedir(d);
		out_process_metric(o, "process_open_fds",
				   "Number of open file descriptors.", "gauge",
				   (double)n);
	}
}

char *im_metrics_render(size_t *len)
{
	struct out o = {0};
	out_put(&o, "", 0);
	pthread_mutex_lock(&g_reg_mu);
	for (size_t i = 0; i < g_nfams; i++)
		render_family(&o, g_fams[i]);
	pthread_mutex_unlock(&g_reg_mu);
	render_process(&o);
	if (o.oom) {
		free(o.p);
		if (len != NULL)
			*len = 0;
		return NULL;
	}
	if (len != NULL)
		*len = o.len;
	return o.p;
}
