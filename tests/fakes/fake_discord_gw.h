/*
 * tests/fakes/fake_discord_gw - a fake Discord Gateway (v10, JSON, no
 * compression) on ws://127.0.0.1 for criterion tests, on
 * fake_ws_server.c. It behaves as ../shared/design/PROTOCOLS.md and
 * Discord's documentation describe the Gateway:
 *
 *   upgrade on any path; the query needs v=10 (else close 4012) and
 *   encoding=json (else 4002); op 10 HELLO at once
 *   op 1 heartbeat -> op 11 ACK (unless switched off); allowed before
 *   identify; each one's d and time recorded
 *   op 2 identify -> READY (s 1) + one GUILD_CREATE per guild; 4004 bad
 *   token, 4013 intents outside bits 0..25, 4014 a privileged intent not
 *   enabled, 4005 a second identify
 *   op 6 resume -> the session's dispatches after seq, then RESUMED;
 *   unknown session -> op 9 d=false (the connection stays open); a seq
 *   past the session's last -> 4007
 *   op 3, 4, 8 accepted and recorded; any other op 4001; anything but a
 *   heartbeat before identify/resume 4003; not JSON or over 4096 bytes
 *   4002; more than 120 payloads in 60 s 4008
 *
 * Sessions outlive their connection: a client close 1000/1001 ends one,
 * a TCP drop or another code does not. A session is also forgotten when
 * the server closes its connection with 4004, 4007, 4009 or 4010..4014
 * (Discord's "start a new session" codes), or on
 * fdg_invalid_session(g, false). READY and RESUMED are not replayed.
 *
 * "Live" is the connection that identified or resumed last, while it is
 * open and attached to its session; the controls act on it (fdg_close and
 * fdg_drop fall back to the newest open connection when none is live).
 * An older connection is still served until it closes.
 *
 * Threads: the fake serves on its own threads; every function here is
 * safe from any thread. JSON returned is new (the caller decrefs).
 */
#ifndef IM_TESTS_FAKE_DISCORD_GW_H
#define IM_TESTS_FAKE_DISCORD_GW_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct fdg fdg;

typedef struct fdg_opts {
	unsigned port;	       /* 0 = any free port */
	const char *bot_token; /* the token identify must carry; NULL =
				* "MTEwMDAwMDAwMDAwMDAwMDAwMQ.Gfake0.bot-token-one" */
	const char *bot_id;    /* NULL = "1100000000000000001" */
	const char *guild_ids; /* csv guilds in READY / GUILD_CREATE; NULL =
				* "1200000000000000001" */
	unsigned heartbeat_ms; /* heartbeat_interval in HELLO; 0 = 41250 */
	unsigned privileged;   /* privileged intents enabled in the "Developer
				* Portal": GUILD_MEMBERS 1<<1, GUILD_PRESENCES
				* 1<<8, MESSAGE_CONTENT 1<<15; default 0 */
} fdg_opts;

/* Privileged intent bits, and every bit identify may carry. */
#define FDG_PRIVILEGED ((1u << 1) | (1u << 8) | (1u << 15))
#define FDG_KNOWN_INTENTS ((1u << 26) - 1)

/* o NULL = defaults. NULL on failure. */
fdg *fdg_start(const fdg_opts *o);
/* Closes every connection and joins every thread (bounded: about a
 * second even when a client hangs). NULL is a no-op. */
void fdg_stop(fdg *g);
/* "ws://127.0.0.1:<port>/" (borrowed); clients add ?v=10&encoding=json. */
const char *fdg_url(const fdg *g);

/* --- controls ----------------------------------------------------------- */

/* Op 0 with the next seq on the live session (kept for replay); d_json is
 * the event's d. false when no connection is live (the event is then
 * still kept on the last session, if it can be resumed, so that a resume
 * replays it) or d_json is not JSON. */
bool fdg_dispatch(fdg *g, const char *t, const char *d_json);
/* Op 7 RECONNECT to the live connection. */
void fdg_reconnect(fdg *g);
/* Op 9 with d = resumable to the live connection, which stops being live;
 * when false the last session is forgotten (even with none live). */
void fdg_invalid_session(fdg *g, bool resumable);
/* Op 1: asks the client for a heartbeat now. */
void fdg_request_heartbeat(fdg *g);
/* A close frame (code, reason), e.g. 4000, 4004, 4009 "Session timed
 * out", 4014; recorded with "by":"server". */
void fdg_close(fdg *g, int code, const char *reason);
/* Ends the connection without a close frame. */
void fdg_drop(fdg *g);
/* Heartbeat ACKs on (the default) or off. */
void fdg_set_acks(fdg *g, bool on);
/* For later identifies. */
void fdg_set_privileged(fdg *g, unsigned mask);
/* The token later identifies/resumes must carry (the old one is revoked:
 * 4004). */
void fdg_set_token(fdg *g, const char *token);

/* --- records ------------------------------------------------------------ */

/* Successful identifies / resumes, handshakes accepted, heartbeats
 * received, since start. */
int fdg_identifies(fdg *g);
int fdg_resumes(fdg *g);
int fdg_connections(fdg *g);
int fdg_heartbeats(fdg *g);
bool fdg_live(fdg *g);
/* The last successful identify's d, token replaced by "<redacted>";
 * NULL if none. */
json_t *fdg_last_identify(fdg *g);
/* [{"t": unix seconds (real), "d": seq or null}], oldest first. */
json_t *fdg_heartbeat_log(fdg *g);
/* [{"code","reason","by":"server"|"client"}]: closes the server sent and
 * closes the client started (not its echo of the server's). */
json_t *fdg_closes(fdg *g);
/* The d of every accepted payload with this op (tokens redacted). */
json_t *fdg_received(fdg *g, int op);
/* The id of the live session, else of the last one identified or resumed
 * if it is still known; false if none. */
bool fdg_session(fdg *g, char *buf, size_t len);
/* Waits until `what` ("identifies", "resumes", "connections",
 * "heartbeats", "closes") reaches n, or for "live" until fdg_live is
 * n != 0; false on timeout. */
bool fdg_wait(fdg *g, const char *what, int n, int timeout_ms);

#endif
