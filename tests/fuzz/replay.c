/*
 * Replays a fuzz target's corpus without libFuzzer: the suite's test of
 * every target (tests/fuzz/meson.build).
 *
 * Usage: fuzz_replay_<target> FILE|FOLDER...
 * Calls LLVMFuzzerInitialize (when the target has one) and then
 * LLVMFuzzerTestOneInput once per file, in name order, each input in a
 * heap block of exactly its size (as libFuzzer does, so a read past the
 * end shows under ASan). A broken contract aborts, which fails the test;
 * at the end it prints criterion's summary line so scripts/test.sh counts
 * one passing case per input.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Weak: a target without it links, and the address is then NULL. */
extern int LLVMFuzzerInitialize(int *argc, char ***argv)
    __attribute__((weak));

static size_t replayed;

static void run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay: cannot open %s: %s\n", path,
			strerror(errno));
		exit(1);
	}
	size_t cap = 4096, len = 0;
	unsigned char *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			unsigned char *b = realloc(buf, cap * 2);
			if (!b)
				free(buf);
			buf = b;
			cap *= 2;
		}
	}
	fclose(f);
	if (!buf) {
		fprintf(stderr, "replay: out of memory reading %s\n", path);
		exit(1);
	}
	/* Exactly `len` bytes (libFuzzer hands over such a copy). */
	unsigned char *exact = malloc(len ? len : 1);
	if (!exact) {
		fprintf(stderr, "replay: out of memory\n");
		exit(1);
	}
	memcpy(exact, buf, len);
	free(buf);
	printf("replay %s (%zu bytes)\n", path, len);
	fflush(stdout);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	replayed++;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "replay: cannot open %s: %s\n", dir,
			strerror(errno));
		exit(1);
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(names, cap * sizeof(*nn));
			if (!nn)
				exit(1);
			names = nn;
		}
		if (!(names[n++] = strdup(e->d_name)))
			exit(1);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(dir) + strlen(names[i]) + 2;
		char *path = malloc(len);
		if (!path)
			exit(1);
		snprintf(path, len, "%s/%s", dir, names[i]);
		struct stat sb;
		if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
			run_file(path);
		free(path);
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|FOLDER...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat sb;
		if (stat(argv[i], &sb) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
				strerror(errno));
			return 1;
		}
		if (S_ISDIR(sb.st_mode))
			run_dir(argv[i]);
		else
			run_file(argv[i]);
	}
	printf("replayed %zu inputs\n", replayed);
	printf("[====] Synthesis: Tested: %zu | Passing: %zu | Failing: 0 | "
	       "Crashing: 0\n",
	       replayed, replayed);
	if (replayed == 0) {
		fprintf(stderr, "replay: no inputs\n");
		return 1;
	}
	return 0;
}
