/* bench-discord-sign: a stream of signed Discord interactions for wrk
 * (bench/discord_post.lua, bench/discord.sh).
 *
 * Every line is one request:
 *   <timestamp>\t<signature hex>\t<body>\n
 * signature = Ed25519(timestamp + body) with the key of ../shared/peers
 * (keys/private.pem, PKCS#8 PEM written by node), the headers
 * X-Signature-Timestamp and X-Signature-Ed25519 of a Discord interaction.
 * The body is the one of the peers' bench_discord_ack.sh (an
 * APPLICATION_COMMAND "incident"), except that "id" is a distinct
 * snowflake-like decimal per line and "token" is distinct too: a server that
 * refuses a replayed interaction id (as im does) accepts every line once.
 *
 * Usage:
 *   bench-discord-sign [--key FILE | --seed-hex HEX] --count N --out FILE
 *                      [--split T] [--timestamp TS] [--start-id ID]
 *   bench-discord-sign [--key FILE | --seed-hex HEX] --print-pubkey
 *   bench-discord-sign [--key FILE | --seed-hex HEX] --check FILE...
 *
 *   --count N       lines in all (with --split, shared out: the first
 *                   N % T files get one more)
 *   --split T       write FILE.1 .. FILE.T (one per wrk thread), one signing
 *                   thread per file; without it, FILE itself
 *   --timestamp TS  the X-Signature-Timestamp of every line (default: now)
 *   --start-id ID   the first id (default: a snowflake of now, i.e.
 *                   (ms since 2015-01-01) << 22, so ids of later runs are
 *                   larger); line k of the whole stream gets ID + k
 *   --print-pubkey  print the raw Ed25519 public key as hex and exit
 *   --check FILE    verify every line of FILE(s) with the public key and
 *                   that the body carries the line's id; prints
 *                   "check FILE: N lines ok" or the first bad line
 * Prints "signed N lines in S s (R lines/s)" on stderr. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#define DISCORD_EPOCH_MS 1420070400000ULL
#define MAX_SPLIT 64

/* The peers' body with "id" and "token" filled in: %1 id, %2 id again. */
#define BODY_FMT                                                              \
	"{\"id\":\"%" PRIu64 "\",\"application_id\":\"1\",\"type\":2,"       \
	"\"token\":\"tok-%" PRIu64 "\",\"version\":1,\"channel_id\":\"C1\","  \
	"\"guild_id\":\"G1\",\"member\":{\"user\":{\"id\":\"U1\","            \
	"\"username\":\"u\"}},\"data\":{\"id\":\"1\",\"name\":\"incident\","  \
	"\"type\":1}}"

static unsigned char sk[crypto_sign_SECRETKEYBYTES];
static unsigned char pk[crypto_sign_PUBLICKEYBYTES];

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "bench-discord-sign: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(1);
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* The 32-byte seed of an Ed25519 PKCS#8 PEM ("BEGIN PRIVATE KEY"): the DER
 * is 48 bytes, a fixed 16-byte prefix (SEQUENCE, version 0, algorithm
 * 1.3.101.112, OCTET STRING of an OCTET STRING of 32) then the seed. */
static void seed_from_pem(const char *path, unsigned char seed[32])
{
	static const unsigned char prefix[16] = {
	    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
	    0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
	FILE *f = fopen(path, "r");
	if (!f)
		die("cannot open key %s", path);
	char line[256];
	unsigned char der[256];
	size_t n = 0;
	int state = 0; /* 0 before BEGIN, 1 inside, 2 after END */
	uint32_t acc = 0;
	int bits = 0;
	while (state < 2 && fgets(line, sizeof line, f)) {
		if (!strncmp(line, "-----BEGIN PRIVATE KEY-----", 27)) {
			state = 1;
			continue;
		}
		if (!strncmp(line, "-----END", 8)) {
			state = state == 1 ? 2 : state;
			continue;
		}
		if (state != 1)
			continue;
		for (const char *p = line; *p; p++) {
			int v = b64val((unsigned char)*p);
			if (v < 0)
				continue; /* '=', newline, spaces */
			acc = (acc << 6) | (uint32_t)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				if (n == sizeof der)
					die("key %s: DER too long", path);
				der[n++] = (unsigned char)(acc >> bits);
			}
		}
	}
	fclose(f);
	if (state != 2)
		die("key %s: no PEM \"PRIVATE KEY\" block", path);
	if (n != 48 || memcmp(der, prefix, sizeof prefix))
		die("key %s: not an Ed25519 PKCS#8 key", path);
	memcpy(seed, der + 16, 32);
}

static void seed_from_hex(const char *hex, unsigned char seed[32])
{
	size_t len = 0;
	if (strlen(hex) != 64 ||
	    sodium_hex2bin(seed, 32, hex, 64, NULL, &len, NULL) || len != 32)
		die("--seed-hex wants 64 hex digits, got \"%s\"", hex);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct job {
	char path[4096];
	uint64_t first_id, count, step;
	char ts[32];
	int err;
};

static void *sign_file(void *arg)
{
	struct job *j = arg;
	FILE *f = fopen(j->path, "w");
	if (!f) {
		j->err = errno;
		return NULL;
	}
	static __thread char vbuf[1 << 20];
	setvbuf(f, vbuf, _IOFBF, sizeof vbuf);
	size_t tslen = strlen(j->ts);
	char msg[1024]; /* timestamp + body, signed as one string */
	unsigned char sig[crypto_sign_BYTES];
	char sighex[2 * crypto_sign_BYTES + 1];
	memcpy(msg, j->ts, tslen);
	for (uint64_t k = 0; k < j->count; k++) {
		uint64_t id = j->first_id + k * j->step;
		int blen = snprintf(msg + tslen, sizeof msg - tslen, BODY_FMT,
				    id, id);
		crypto_sign_detached(sig, NULL, (unsigned char *)msg,
				     tslen + (size_t)blen, sk);
		sodium_bin2hex(sighex, sizeof sighex, sig, sizeof sig);
		fprintf(f, "%s\t%s\t%s\n", j->ts, sighex, msg + tslen);
	}
	if (fclose(f))
		j->err = errno;
	return NULL;
}

/* Verify every line of path; returns the number of bad lines (stops at the
 * first). */
static int check_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		die("cannot open %s", path);
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	uint64_t n = 0;
	int bad = 0;
	while ((len = getline(&line, &cap, f)) > 0) {
		n++;
		if (line[len - 1] == '\n')
			line[--len] = 0;
		char *t1 = strchr(line, '\t');
		char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
		unsigned char sig[crypto_sign_BYTES];
		size_t slen = 0;
		const char *why = NULL;
		if (!t2)
			why = "not three tab-separated fields";
		else if (t2 - t1 - 1 != 2 * crypto_sign_BYTES ||
			 sodium_hex2bin(sig, sizeof sig, t1 + 1,
					2 * crypto_sign_BYTES, NULL, &slen,
					NULL) ||
			 slen != sizeof sig)
			why = "signature is not 128 hex digits";
		if (!why) {
			/* Signed message: timestamp immediately followed by
			 * the body; move the body left over the tab and
			 * signature. */
			size_t tslen = (size_t)(t1 - line);
			size_t blen = strlen(t2 + 1);
			char idkey[64];
			const char *idp = strstr(t2 + 1, "{\"id\":\"");
			uint64_t id = idp ? strtoull(idp + 7, NULL, 10) : 0;
			snprintf(idkey, sizeof idkey, "\"token\":\"tok-%" PRIu64
				 "\"", id);
			if (!idp || idp != t2 + 1 || !strstr(t2 + 1, idkey))
				why = "body has no distinct id/token";
			memmove(line + tslen, t2 + 1, blen + 1);
			if (!why && crypto_sign_verify_detached(
					sig, (unsigned char *)line,
					tslen + blen, pk))
				why = "signature does not verify";
		}
		if (why) {
			fprintf(stderr, "check %s: line %" PRIu64 ": %s\n",
				path, n, why);
			bad = 1;
			break;
		}
	}
	free(line);
	fclose(f);
	if (!bad)
		printf("check %s: %" PRIu64 " lines ok\n", path, n);
	return bad;
}

static void usage(void)
{
	fputs("usage: bench-discord-sign [--key FILE | --seed-hex HEX] "
	      "--count N --out FILE [--split T]\n"
	      "                          [--timestamp TS] [--start-id ID]\n"
	      "       bench-discord-sign [--key FILE | --seed-hex HEX] "
	      "--print-pubkey\n"
	      "       bench-discord-sign [--key FILE | --seed-hex HEX] "
	      "--check FILE...\n"
	      "default key: ../shared/peers/keys/private.pem\n",
	      stderr);
	exit(2);
}

static uint64_t num_arg(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-')
		die("bad number for %s", opt);
	return (uint64_t)v;
}

int main(int argc, char **argv)
{
	const char *key = "../shared/peers/keys/private.pem";
	const char *seed_hex = NULL, *out = NULL, *ts_arg = NULL;
	uint64_t count = 0, split = 0, start_id = 0;
	bool have_count = false, have_start = false, print_pk = false;
	bool check = false;
	int i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool more = i + 1 < argc;
		if (!strcmp(a, "--key") && more)
			key = argv[++i];
		else if (!strcmp(a, "--seed-hex") && more)
			seed_hex = argv[++i];
		else if (!strcmp(a, "--count") && more) {
			count = num_arg(a, argv[++i]);
			have_count = true;
		} else if (!strcmp(a, "--out") && more)
			out = argv[++i];
		else if (!strcmp(a, "--split") && more)
			split = num_arg(a, argv[++i]);
		else if (!strcmp(a, "--timestamp") && more)
			ts_arg = argv[++i];
		else if (!strcmp(a, "--start-id") && more) {
			start_id = num_arg(a, argv[++i]);
			have_start = true;
		} else if (!strcmp(a, "--print-pubkey"))
			print_pk = true;
		else if (!strcmp(a, "--check")) {
			check = true;
			i++;
			break;
		} else
			usage();
	}
	if (sodium_init() < 0)
		die("%s", "sodium_init failed");
	unsigned char seed[32];
	if (seed_hex)
		seed_from_hex(seed_hex, seed);
	else
		seed_from_pem(key, seed);
	crypto_sign_seed_keypair(pk, sk, seed);
	sodium_memzero(seed, sizeof seed);

	if (print_pk) {
		char hex[2 * sizeof pk + 1];
		puts(sodium_bin2hex(hex, sizeof hex, pk, sizeof pk));
		return 0;
	}
	if (check) {
		if (i >= argc)
			usage();
		int bad = 0;
		for (; i < argc; i++)
			bad |= check_file(argv[i]);
		return bad;
	}
	if (!out || !have_count)
		usage();
	if (split > MAX_SPLIT)
		die("--split: at most %s files", "64");

	char ts[32];
	if (ts_arg) {
		num_arg("--timestamp", ts_arg);
		snprintf(ts, sizeof ts, "%s", ts_arg);
	} else {
		snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
	}
	if (!have_start) {
		struct timespec rt;
		clock_gettime(CLOCK_REALTIME, &rt);
		uint64_t ms = (uint64_t)rt.tv_sec * 1000u +
			      (uint64_t)rt.tv_nsec / 1000000u;
		start_id = (ms - DISCORD_EPOCH_MS) << 22;
	}

	size_t nfiles = split ? (size_t)split : 1;
	struct job *jobs = calloc(nfiles, sizeof *jobs);
	pthread_t th[MAX_SPLIT];
	if (!jobs)
		die("%s", "out of memory");
	uint64_t next = start_id; /* file k starts at next + k */
	for (size_t k = 0; k < nfiles; k++) {
		struct job *j = &jobs[k];
		if (split)
			snprintf(j->path, sizeof j->path, "%s.%zu", out, k + 1);
		else
			snprintf(j->path, sizeof j->path, "%s", out);
		j->count = count / nfiles + (k < count % nfiles ? 1 : 0);
		/* Ids interleave across the files (file k has start + k,
		 * start + k + T, ...): threads that send at the same pace
		 * send ids in about increasing order, as Discord's are. */
		j->first_id = next + k;
		j->step = nfiles;
		memcpy(j->ts, ts, sizeof ts);
	}
	double t0 = now_s();
	for (size_t k = 0; k < nfiles; k++)
		if (pthread_create(&th[k], NULL, sign_file, &jobs[k]))
			die("%s", "pthread_create failed");
	int rc = 0;
	for (size_t k = 0; k < nfiles; k++) {
		pthread_join(th[k], NULL);
		if (jobs[k].err) {
			fprintf(stderr, "bench-discord-sign: %s: %s\n",
				jobs[k].path, strerror(jobs[k].err));
			rc = 1;
		}
	}
	double dt = now_s() - t0;
	fprintf(stderr,
		"signed %" PRIu64 " lines in %.2f s (%.0f lines/s), ids %" PRIu64
		"..%" PRIu64 ", timestamp %s, %zu file(s)\n",
		count, dt, dt > 0 ? (double)count / dt : 0.0, start_id,
		start_id + count - 1, ts, nfiles);
	free(jobs);
	sodium_memzero(sk, sizeof sk);
	return rc;
}
