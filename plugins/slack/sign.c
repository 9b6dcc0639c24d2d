/* Slack request signatures (v0): HMAC-SHA256 over "v0:<ts>:<raw body>"
 * with the app's signing secret. The key schedule is done once per
 * instance; each request duplicates the keyed context, so concurrent
 * workers never share mutable MAC state. */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "slack.h"

#define WINDOW_S 300

struct slk_mac {
	EVP_MAC *mac;
	EVP_MAC_CTX *keyed; /* never updated; only duplicated */
};

slk_mac *slk_mac_new(const char *secret)
{
	slk_mac *m = calloc(1, sizeof(*m));
	if (!m || !secret)
		goto fail;
	m->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	m->keyed = m->mac ? EVP_MAC_CTX_new(m->mac) : NULL;
	if (!m->keyed)
		goto fail;
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	    OSSL_PARAM_construct_end()};
	if (!EVP_MAC_init(m->keyed, (const unsigned char *)secret,
			  strlen(secret), params))
		goto fail;
	return m;
fail:
	slk_mac_free(m);
	return NULL;
}

void slk_mac_free(slk_mac *m)
{
	if (!m)
		return;
	EVP_MAC_CTX_free(m->keyed);
	EVP_MAC_free(m->mac);
	free(m);
}

int slk_mac_sign(const slk_mac *m, const char *ts, const char *body,
		 size_t len, char out[68])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t mdlen = 0;
	EVP_MAC_CTX *c = m ? EVP_MAC_CTX_dup(m->keyed) : NULL;
	int ok = c && EVP_MAC_update(c, (const unsigned char *)"v0:", 3) &&
		 EVP_MAC_update(c, (const unsigned char *)ts, strlen(ts)) &&
		 EVP_MAC_update(c, (const unsigned char *)":", 1) &&
		 (len == 0 ||
		  EVP_MAC_update(c, (const unsigned char *)body, len)) &&
		 EVP_MAC_final(c, md, &mdlen, sizeof(md)) && mdlen == 32;
	EVP_MAC_CTX_free(c);
	if (!ok)
		return IM_ENOMEM;
	memcpy(out, "v0=", 3);
	for (size_t i = 0; i < 32; i++) {
		out[3 + 2 * i] = hex[md[i] >> 4];
		out[4 + 2 * i] = hex[md[i] & 15];
	}
	out[67] = '\0';
	return 0;
}

/* Digits only, at most 12 of them: a Unix time, nothing else. */
static bool parse_ts(const char *ts, long long *out)
{
	long long v = 0;
	size_t n = 0;
	for (; ts[n]; n++) {
		if (ts[n] < '0' || ts[n] > '9' || n >= 12)
			return false;
		v = v * 10 + (ts[n] - '0');
	}
	*out = v;
	return n > 0;
}

int slk_mac_verify(const slk_mac *m, const char *ts, const char *sig,
		   const char *body, size_t len, time_t now, const char **why)
{
	long long t;
	char want[68];
	if (!ts || !sig || !*ts || !*sig) {
		*why = "missing X-Slack-Signature or X-Slack-Request-Timestamp";
		return IM_EPERM;
	}
	if (!parse_ts(ts, &t)) {
		*why = "malformed X-Slack-Request-Timestamp";
		return IM_EPERM;
	}
	if (t < (long long)now - WINDOW_S || t > (long long)now + WINDOW_S) {
		*why = "stale X-Slack-Request-Timestamp (more than 5 minutes "
		       "from now)";
		return IM_EPERM;
	}
	if (slk_mac_sign(m, ts, body, len, want) != 0) {
		*why = "cannot compute the signature";
		return IM_EPERM;
	}
	/* The expected length is public (67); only the bytes are secret. */
	if (strlen(sig) != 67 || CRYPTO_memcmp(want, sig, 67) != 0) {
		*why = "invalid X-Slack-Signature";
		return IM_EPERM;
	}
	return 0;
}
