/*
 * Fuzz target ws_frames: WebSocket frames from a client of
 * GET /api/v1/ws (core/api/ws.c).
 *
 * The receive path is wslay's event API fed by ws.c's callbacks on the
 * stream hub thread: first the bytes that came with the HTTP request (the
 * `extra` of the upgrade), then recv() on the upgraded socket. Those
 * callbacks are static and the client state is built by the handler, so
 * this target takes the same path as a client: over loopback to the real
 * server (fuzz_server.c), a valid handshake followed at once by the input
 * as the frame bytes (whatever libmicrohttpd read with the request comes
 * through `extra`, the rest through the socket), then, once the 101 is
 * in, the end of the client's stream.
 *
 * Contract: the answer is 101 and the server closes the connection in
 * time (wslay fails on the end of the stream, or finishes a close
 * handshake); everything it sent after the 101 is well-formed server
 * framing: unmasked, known opcodes, control frames final and at most 125
 * bytes, a close frame's payload either empty or a code and UTF-8.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_server.h"

static const char HANDSHAKE[] = "GET /api/v1/ws HTTP/1.1\r\n"
				"Host: fuzz\r\n"
				"Upgrade: websocket\r\n"
				"Connection: Upgrade\r\n"
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
				"Sec-WebSocket-Version: 13\r\n"
				"\r\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_server_start();
	return 0;
}

static bool utf8_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t k;
		if (c < 0x80)
			k = 0;
		else if ((c & 0xE0) == 0xC0)
			k = 1;
		else if ((c & 0xF0) == 0xE0)
			k = 2;
		else if ((c & 0xF8) == 0xF0)
			k = 3;
		else
			return false;
		if (k > n - i - 1)
			return false;
		for (size_t j = 1; j <= k; j++)
			if ((s[i + j] & 0xC0) != 0x80)
				return false;
		i += k + 1;
	}
	return true;
}

/* Walks the server's frames. */
static void check_frames(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		FUZZ_CHECK(n - i >= 2, "a truncated frame header at the end");
		unsigned op = p[i] & 0x0F;
		bool fin = p[i] & 0x80, masked = p[i + 1] & 0x80;
		unsigned long long len = p[i + 1] & 0x7F;
		size_t h = 2;
		FUZZ_CHECK((p[i] & 0x70) == 0, "RSV bits set in a server frame");
		FUZZ_CHECK(!masked, "a masked server frame");
		if (len == 126 || len == 127) {
			size_t k = len == 126 ? 2 : 8;
			FUZZ_CHECK(n - i >= 2 + k, "a truncated frame length");
			len = 0;
			for (size_t j = 0; j < k; j++)
				len = len << 8 | p[i + 2 + j];
			h += k;
		}
		FUZZ_CHECK(op == 0x0 || op == 0x1 || op == 0x8 || op == 0x9 ||
			       op == 0xA,
			   "server frame with opcode %u", op);
		if (op >= 0x8) {
			FUZZ_CHECK(fin && len <= 125,
				   "control frame %u: fin %d, %llu bytes", op,
				   fin, len);
		}
		FUZZ_CHECK(len <= n - i - h,
			   "frame of %llu bytes with %zu left (opcode %u)", len,
			   n - i - h, op);
		if (op == 0x8)
			FUZZ_CHECK(len == 0 ||
				       (len >= 2 &&
					utf8_ok(p + i + h + 2, (size_t)len - 2)),
				   "close frame of %llu bytes", len);
		i += h + (size_t)len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t hl = sizeof(HANDSHAKE) - 1;
	char *req = malloc(hl + size);
	if (!req)
		return 0;
	memcpy(req, HANDSHAKE, hl);
	memcpy(req + hl, data, size);
	size_t alen;
	char *a = fz_exchange(req, hl + size, true, &alen);
	FUZZ_CHECK(fz_status(a) == 101, "handshake answered %d:\n%.400s",
		   fz_status(a), a);
	size_t blen;
	const char *body = fz_body(a, alen, &blen);
	FUZZ_CHECK(body, "no end of the 101 head");
	check_frames((const unsigned char *)body, blen);
	free(a);
	free(req);
	return 0;
}
