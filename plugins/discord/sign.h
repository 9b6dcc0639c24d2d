/* plugins/discord/sign.h - what an interaction must prove before anything
 * else reads it: an Ed25519 signature (libsodium) over timestamp + raw
 * body with the application's public key, a timestamp at most 5 minutes
 * from now, and an interaction id never seen before (Discord's own
 * library checks neither of the last two; a captured request could
 * otherwise be replayed for as long as the server runs).
 *
 * The replay set remembers interaction ids (snowflakes) in a fixed-size
 * table. When it is full the oldest id is forgotten and becomes the
 * floor: any id at or below the floor is refused too, so a replay is
 * never accepted, only the window shrinks under a flood (DSC_SEEN_MAX
 * ids; about 220 interactions a second fit the whole 5 minutes).
 * Thread-safe: one mutex. */
#ifndef IM_DISCORD_SIGN_H
#define IM_DISCORD_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define DSC_SKEW_S 300
#define DSC_SEEN_MAX 65536

/* Decodes exactly n bytes of hex (2n characters, nothing more). */
bool dsc_hex_decode(const char *hex, uint8_t *out, size_t n);

/* 0 when `sig_hex` signs ts + body for `pk` and ts is within DSC_SKEW_S of
 * now; else -1 with the reason in why. */
int dsc_verify(const uint8_t pk[32], const char *sig_hex, const char *ts,
	       const char *body, size_t len, time_t now, char *why,
	       size_t whylen);

typedef struct dsc_seen dsc_seen;
dsc_seen *dsc_seen_new(void);
void dsc_seen_free(dsc_seen *s);
/* Records snowflake `id`: true the first time, false for a replay or an
 * id at or below the floor. */
bool dsc_seen_add(dsc_seen *s, uint64_t id);
/* Parses a snowflake (decimal, 1..20 digits, fits in 64 bits). */
bool dsc_snowflake(const char *s, uint64_t *out);

#endif
