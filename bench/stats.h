/* What the bench programs share: a process's resident memory and
 * percentiles of a sorted sample. Header-only: each program is one file. */
#ifndef IM_BENCH_STATS_H
#define IM_BENCH_STATS_H

#include <stdio.h>

/* VmRSS of `pid` in kB; -1 when unknown. */
static inline long rss_kb(int pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* qsort order of doubles. */
static inline int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

#endif
