/* Private to tests/fakes/fake_discord*.c: the state of the fake and what
 * fake_discord.c (keys, interactions, records, HTTP) and
 * fake_discord_rest.c (the API routes) share. Everything *_locked is
 * called with fd.mu held. */
#ifndef IM_TESTS_FAKE_DISCORD_INT_H
#define IM_TESTS_FAKE_DISCORD_INT_H

#include <pthread.h>
#include <stdint.h>

#include <microhttpd.h>
#include <sodium.h>

#include "fake_discord.h"

#define FD_TOKEN_TTL 900.0    /* interaction tokens: 15 minutes */
#define FD_NONCE_WINDOW 300.0 /* enforce_nonce looks back 5 minutes */
#define FD_DAILY_CREATES 200
/* What the default member and the bot may do in the default guild:
 * VIEW_CHANNEL, SEND_MESSAGES, EMBED_LINKS, READ_MESSAGE_HISTORY,
 * USE_APPLICATION_COMMANDS, CREATE_PUBLIC_THREADS,
 * SEND_MESSAGES_IN_THREADS. */
#define FD_PERMS "311385213952"

typedef struct fd_rule {
	char *channel; /* NULL = any */
	int times;     /* -1 = until cleared */
	int status, code;
	double retry_after;
	char scope[16];
} fd_rule;

typedef struct fd_bucket {
	char *key; /* route template + " " + major parameter */
	int used;
	double start; /* monotonic start of the current window */
} fd_bucket;

/* An interaction the fake made: its token works for its webhooks. */
typedef struct fd_ia {
	char id[24], token[64], app[32], channel[24], message[24], user[24];
	double t; /* monotonic, when made */
	int type;
	bool acked;
	json_t *original; /* the @original message, once there is one */
} fd_ia;

/* Times in a sliding window (global limit, invalid requests). */
typedef struct fd_times {
	double *t;
	size_t n, cap;
} fd_times;

struct fd {
	pthread_mutex_t mu;
	struct MHD_Daemon *d;
	unsigned port;
	char url[48], api[64];
	char app_id[32], token[160], pk_hex[65];
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	unsigned char forge_sk[crypto_sign_SECRETKEYBYTES];
	int route_limit, route_ms, global_per_s;
	unsigned latency_ms;
	bool revoked;
	char gateway[256];
	int session_remaining;
	uint64_t last_id;
	json_t *guilds;	    /* {id: {"id","name"}} */
	json_t *channels;   /* {id: channel object} */
	json_t *commands;   /* {"global"|guild id: [command]} */
	json_t *scopes_off; /* {scope: true}: 403 50001 */
	json_t *store;	    /* {message id: {"msg","t","nonce"}} */
	json_t *creates;    /* {scope: {"day","n"}} */
	json_t *reqs, *msgs, *answers;
	json_t *posted_to; /* {channel id: true} */
	fd_ia *ias;
	size_t nias;
	fd_rule *rules;
	size_t nrules;
	fd_bucket *buckets;
	size_t nbuckets;
	fd_times global, invalid;
	struct {
		long requests, posted, edited, duplicates, nonce_hits,
		    rate_limited, rate_limited_global, invalid,
		    command_puts, command_creates, auth_failures;
	} st;
	double first_t, last_t;
};

/* An answer being made: status, JSON body (NULL = none, e.g. 204), the
 * Discord code for the record and extra headers. */
typedef struct fd_answer {
	int status;
	json_t *body;
	int code; /* -1 = none */
	int nh;
	struct {
		const char *name;
		char value[40];
	} h[12];
} fd_answer;

/* fake_discord.c */
double fd_mono(void);
double fd_wall(void);
const char *fd_str(const json_t *o, const char *k);
void fd_new_id_locked(fd *f, char out[24]);
void fd_iso_time(char out[40]);
fd_ia *fd_ia_find_locked(fd *f, const char *token);
void fd_times_add(fd_times *w, double t, double keep);
size_t fd_times_count(fd_times *w, double since);
void fd_header(fd_answer *a, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fd_set_answer(fd_answer *a, int status, json_t *body);
const char *fd_code_text(int code, int status);
void fd_error(fd_answer *a, int status, int code);
json_t *fd_message_new_locked(fd *f, const char *channel, const json_t *body,
			      bool webhook);
void fd_message_apply(json_t *msg, const json_t *body);
void fd_record_msg_locked(fd *f, const char *op, const char *channel,
			  const char *id, const json_t *body);

/* fake_discord_rest.c: an API request (path after /api/v10) into a. */
void fd_api_locked(fd *f, const char *method, const char *path,
		   const char *auth, const char *body, size_t len,
		   json_t *rec, fd_answer *a);
/* An acknowledgement of interaction ia with a callback body ({"type",
 * "data"}): sets acked and the @original message. */
void fd_ack_locked(fd *f, fd_ia *ia, const json_t *cb);

#endif
