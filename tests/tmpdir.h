/*
 * tests/tmpdir.h - a temporary folder per test, removed with everything in
 * it afterwards (suites that open real database files).
 */
#ifndef IM_TESTS_TMPDIR_H
#define IM_TESTS_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int tmpdir_rm_entry(const char *p, const struct stat *sb, int flag,
			   struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* Creates /tmp/<prefix>-XXXXXX into dir (at least 64 bytes); NULL on
 * failure. */
static inline char *tmpdir_make(char *dir, size_t len, const char *prefix)
{
	snprintf(dir, len, "/tmp/%s-XXXXXX", prefix);
	return mkdtemp(dir);
}

static inline void tmpdir_remove(const char *dir)
{
	nftw(dir, tmpdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
