/* Ed25519 interaction signatures (libsodium) and the replay set. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sign.h"

bool dsc_hex_decode(const char *hex, uint8_t *out, size_t n)
{
	size_t got = 0;
	const char *end = NULL;
	return hex && strlen(hex) == 2 * n &&
	       sodium_hex2bin(out, n, hex, 2 * n, NULL, &got, &end) == 0 &&
	       got == n && end == hex + 2 * n;
}

static bool parse_ts(const char *ts, long long *out)
{
	if (!ts || !*ts || strlen(ts) > 12 ||
	    strspn(ts, "0123456789") != strlen(ts))
		return false;
	*out = strtoll(ts, NULL, 10);
	return true;
}

int dsc_verify(const uint8_t pk[32], const char *sig_hex, const char *ts,
	       const char *body, size_t len, time_t now, char *why,
	       size_t whylen)
{
	uint8_t sig[crypto_sign_BYTES];
	long long t;
	if (!sig_hex || !ts) {
		snprintf(why, whylen, "no X-Signature-Ed25519 / "
				      "X-Signature-Timestamp header");
		return -1;
	}
	if (!dsc_hex_decode(sig_hex, sig, sizeof(sig))) {
		snprintf(why, whylen, "X-Signature-Ed25519 is not 128 hex "
				      "characters");
		return -1;
	}
	if (!parse_ts(ts, &t)) {
		snprintf(why, whylen, "X-Signature-Timestamp is not unix "
				      "seconds");
		return -1;
	}
	if (t < (long long)now - DSC_SKEW_S || t > (long long)now + DSC_SKEW_S) {
		snprintf(why, whylen, "timestamp %lld is %lld s from now (more "
				      "than %d s: stale or replayed)",
			 t, (long long)now - t, DSC_SKEW_S);
		return -1;
	}
	/* The signed message is timestamp + body. */
	size_t tl = strlen(ts);
	unsigned char stackbuf[8192], *m = stackbuf;
	if (tl + len > sizeof(stackbuf) && !(m = malloc(tl + len))) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	memcpy(m, ts, tl);
	memcpy(m + tl, body, len);
	int bad = crypto_sign_verify_detached(sig, m, tl + len, pk);
	if (m != stackbuf)
		free(m);
	if (bad) {
		snprintf(why, whylen, "the signature does not match the "
				      "application's public key");
		return -1;
	}
	return 0;
}

bool dsc_snowflake(const char *s, uint64_t *out)
{
	if (!s || !*s || strlen(s) > 20 || strspn(s, "0123456789") != strlen(s))
		return false;
	uint64_t v = 0;
	for (const char *p = s; *p; p++) {
		uint64_t d = (uint64_t)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* Open addressing with linear probing over 2 x DSC_SEEN_MAX slots (0 is
 * the empty slot: snowflake 0 never occurs) and a ring of the ids in
 * arrival order for eviction. */
#define SLOTS (2 * DSC_SEEN_MAX)

struct dsc_seen {
	pthread_mutex_t mu;
	uint64_t slot[SLOTS];
	uint64_t ring[DSC_SEEN_MAX];
	size_t head, n;
	uint64_t floor;
};

dsc_seen *dsc_seen_new(void)
{
	dsc_seen *s = calloc(1, sizeof(*s));
	if (s)
		pthread_mutex_init(&s->mu, NULL);
	return s;
}

void dsc_seen_free(dsc_seen *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static size_t home(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)(id & (SLOTS - 1));
}

static size_t find(const dsc_seen *s, uint64_t id)
{
	size_t i = home(id);
	while (s->slot[i] && s->slot[i] != id)
		i = (i + 1) & (SLOTS - 1);
	return i;
}

/* Backward-shift deletion keeps every probe chain unbroken. */
static void erase(dsc_seen *s, uint64_t id)
{
	size_t i = find(s, id);
	if (!s->slot[i])
		return;
	s->slot[i] = 0;
	for (size_t j = (i + 1) & (SLOTS - 1); s->slot[j];
	     j = (j + 1) & (SLOTS - 1)) {
		size_t h = home(s->slot[j]);
		/* Move slot j into the hole when its home is not in (i, j]. */
		bool between = i <= j ? (h > i && h <= j) : (h > i || h <= j);
		if (!between) {
			s->slot[i] = s->slot[j];
			s->slot[j] = 0;
			i = j;
		}
	}
}

bool dsc_seen_add(dsc_seen *s, uint64_t id)
{
	if (!id)
		return false;
	pthread_mutex_lock(&s->mu);
	bool fresh = id > s->floor && !s->slot[find(s, id)];
	if (fresh) {
		if (s->n == DSC_SEEN_MAX) {
			uint64_t old = s->ring[s->head];
			erase(s, old);
			if (old > s->floor)
				s->floor = old;
			s->head = (s->head + 1) % DSC_SEEN_MAX;
			s->n--;
		}
		s->slot[find(s, id)] = id;
		s->ring[(s->head + s->n) % DSC_SEEN_MAX] = id;
		s->n++;
	}
	pthread_mutex_unlock(&s->mu);
	return fresh;
}
