/* bench-teams-jwt: Teams inbound token verifications per second on one
 * core with a warm key cache (plugins/teams/jwt.c: header checks, key
 * lookup, cjose RS256 verify with a 2048-bit key, claim checks).
 * Usage: bench-teams-jwt [seconds] (default 3). Prints one line:
 *   teams_jwt: N verifications/s (M us each), K runs */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjose/cjose.h>
#include <jansson.h>

#include "jwt.h"

#define META "https://bf.bench/openid"
#define KEYS "https://bf.bench/keys"
#define SVC "https://smba.bench/teams/"

static char *jwks;

static int fetch(void *ud, const char *url, char **body)
{
	(void)ud;
	if (!strcmp(url, META))
		*body = strdup("{\"jwks_uri\":\"" KEYS "\"}");
	else if (!strcmp(url, KEYS))
		*body = strdup(jwks);
	else
		return -4;
	return 0;
}

static double secs(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double dur = argc > 1 ? atof(argv[1]) : 3.0;
	static const uint8_t e[] = {1, 0, 1};
	cjose_err err;
	cjose_jwk_t *k = cjose_jwk_create_RSA_random(2048, e, sizeof e, &err);
	if (!k)
		return 1;
	char *pub = cjose_jwk_to_json(k, false, &err);
	json_t *jk = json_loads(pub, 0, NULL);
	json_object_set_new(jk, "kid", json_string("bench"));
	json_object_set_new(jk, "endorsements", json_pack("[s,s]", "msteams",
							  "skype"));
	json_t *set = json_pack("{s:[o]}", "keys", jk);
	jwks = json_dumps(set, JSON_COMPACT);

	time_t now = time(NULL);
	json_t *c = json_pack("{s:s,s:s,s:I,s:I,s:s}", "iss",
			      TMS_JWT_BOTFRAMEWORK_ISSUER, "aud", "app-bench",
			      "exp", (json_int_t)now + 86400, "nbf",
			      (json_int_t)now - 10, "serviceurl", SVC);
	char *p = json_dumps(c, JSON_COMPACT);
	cjose_header_t *h = cjose_header_new(&err);
	cjose_header_set(h, CJOSE_HDR_ALG, CJOSE_HDR_ALG_RS256, &err);
	cjose_header_set(h, CJOSE_HDR_KID, "bench", &err);
	cjose_jws_t *jws = cjose_jws_sign(k, h, (const uint8_t *)p, strlen(p),
					  &err);
	const char *ser;
	if (!jws || !cjose_jws_export(jws, &ser, &err))
		return 1;
	char auth[4096];
	snprintf(auth, sizeof auth, "Bearer %s", ser);

	tms_jwt_cfg cfg = {.app_id = "app-bench", .openid_metadata_url = META,
			   .fetch = fetch};
	tms_jwt *j = tms_jwt_new(&cfg);
	char why[256];
	if (tms_jwt_verify(j, auth, SVC, "msteams", why, sizeof why)) {
		fprintf(stderr, "bench-teams-jwt: %s\n", why);
		return 1;
	}
	unsigned long n = 0;
	double t0 = secs(), t;
	do {
		for (int i = 0; i < 100; i++)
			if (tms_jwt_verify(j, auth, SVC, "msteams", why,
					   sizeof why)) {
				fprintf(stderr, "bench-teams-jwt: %s\n", why);
				return 1;
			}
		n += 100;
		t = secs() - t0;
	} while (t < dur);
	tms_jwt_stats st;
	tms_jwt_get_stats(j, &st);
	printf("teams_jwt: %.0f verifications/s (%.1f us each), %lu runs, "
	       "%lu key fetches, token %zu bytes\n",
	       (double)n / t, t * 1e6 / (double)n, n, st.fetches,
	       strlen(auth) - 7);
	tms_jwt_free(j);
	cjose_jws_release(jws);
	cjose_header_release(h);
	cjose_jwk_release(k);
	json_decref(c);
	json_decref(set);
	free(p);
	free(pub);
	free(jwks);
	return 0;
}
