/* bench-slack-sign: a stream of signed Slack slash commands for wrk
 * (bench/signed_post.lua with style "slack", bench/slack_write.sh).
 *
 * Every line is one request:
 *   <timestamp>\t<signature>\t<body>\n
 * signature = "v0=" + hex HMAC-SHA256(secret, "v0:" + timestamp + ":" +
 * body), the X-Slack-Signature of a slash command. Line k (0-based) runs
 * "/incident VERB INC-n" with n = FIRST + k % SPAN, so a stream of acks
 * touches each incident once when SPAN >= COUNT.
 *
 * Usage: bench-slack-sign --secret S --verb VERB --count N --first FIRST
 *                         --span SPAN --out FILE [--split T]
 * With --split T: FILE.1 .. FILE.T, the lines dealt round-robin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

static const char *arg(int argc, char **argv, const char *name,
		       const char *def)
{
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return def;
}

int main(int argc, char **argv)
{
	const char *secret = arg(argc, argv, "--secret", NULL);
	const char *verb = arg(argc, argv, "--verb", "status");
	const char *out = arg(argc, argv, "--out", NULL);
	long count = atol(arg(argc, argv, "--count", "0"));
	long first = atol(arg(argc, argv, "--first", "1"));
	long span = atol(arg(argc, argv, "--span", "1"));
	int split = atoi(arg(argc, argv, "--split", "1"));
	if (!secret || !out || count < 1 || span < 1 || split < 1 ||
	    split > 64) {
		fprintf(stderr, "usage: bench-slack-sign --secret S --verb VERB "
				"--count N --first FIRST --span SPAN --out FILE "
				"[--split T]\n");
		return 2;
	}
	FILE *f[64];
	for (int t = 0; t < split; t++) {
		char path[4096];
		if (split > 1)
			snprintf(path, sizeof(path), "%s.%d", out, t + 1);
		else
			snprintf(path, sizeof(path), "%s", out);
		if (!(f[t] = fopen(path, "w"))) {
			perror(path);
			return 1;
		}
	}
	long ts = (long)time(NULL);
	for (long k = 0; k < count; k++) {
		char body[512], base[640], hex[65];
		unsigned char mac[32];
		unsigned int mlen = 0;
		int n = snprintf(body, sizeof(body),
				 "command=/incident&text=%s+INC-%ld&user_id=U1&"
				 "user_name=bench&channel_id=C1&team_id=T1&"
				 "response_url=http://127.0.0.1:9/r&trigger_id="
				 "%ld.1.2",
				 verb, first + k % span, k);
		int bn = snprintf(base, sizeof(base), "v0:%ld:%s", ts, body);
		HMAC(EVP_sha256(), secret, (int)strlen(secret),
		     (const unsigned char *)base, (size_t)bn, mac, &mlen);
		for (unsigned i = 0; i < mlen; i++)
			snprintf(hex + 2 * i, 3, "%02x", mac[i]);
		fprintf(f[k % split], "%ld\tv0=%s\t%.*s\n", ts, hex, n, body);
	}
	for (int t = 0; t < split; t++)
		if (fclose(f[t]) != 0)
			return 1;
	return 0;
}
