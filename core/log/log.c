/*
 * core/log - see log.h.
 *
 * Hot path: im_logv() reads the level atomically and returns before any
 * formatting when the line is filtered out. Otherwise the message is
 * formatted in full, redacted, truncated to IM_LOG_MAX_MSG bytes (after
 * redaction, so a cut can never expose part of a secret), framed as a text
 * or JSON line and written with one write(2) under g_write_mu.
 *
 * Secrets live in an immutable, reference-counted set: g_secret_mu only
 * guards the pointer swap, so a reload never blocks behind a slow write and
 * a logging thread never sees a half-built set. Credential prefixes are
 * an append-only table: an entry is complete before the count that
 * publishes it is stored (release), readers load the count (acquire).
 */
#include "log/log.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define IM_LOG_MAX_MSG (16 * 1024)
#define IM_LOG_TRUNC_MARK "...(truncated)"
#define IM_LOG_REDACTED "[REDACTED]"
#define IM_LOG_MIN_SECRET 4

enum { FMT_TEXT = 0, FMT_JSON = 1 };

static atomic_int g_level = IM_LOG_INFO;
static atomic_int g_format = FMT_TEXT;
static atomic_int g_fd = -1; /* -1: stderr */
static atomic_bool g_debug_bodies = false;

static pthread_mutex_t g_write_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- secret set ---------------------------------------------------- */

struct secret_set {
	atomic_size_t refs;
	size_t n;
	char **v;       /* longest first, so the longest match wins */
	size_t *len;
	uint8_t first[256]; /* first[c]: some secret starts with byte c */
};

static pthread_mutex_t g_secret_mu = PTHREAD_MUTEX_INITIALIZER;
static struct secret_set *g_secrets; /* NULL: none */

static void secret_set_unref(struct secret_set *s)
{
	if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	free(s->len);
	free(s);
}

static struct secret_set *secret_set_get(void)
{
	pthread_mutex_lock(&g_secret_mu);
	struct secret_set *s = g_secrets;
	if (s != NULL)
		atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&g_secret_mu);
	return s;
}

static int cmp_len_desc(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
	return la < lb ? 1 : la > lb ? -1 : strcmp(*(char *const *)a,
						   *(char *const *)b);
}

/* Builds a set from `old` (may be NULL) plus values[0..n). Returns NULL on
 * allocation failure; an empty set is returned as a set with n == 0. */
static struct secret_set *secret_set_build(const struct secret_set *old,
					   const char *const *values, size_t n)
{
	size_t cap = (old != NULL ? old->n : 0) + n;
	struct secret_set *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	atomic_init(&s->refs, 1);
	s->v = calloc(cap ? cap : 1, sizeof(*s->v));
	s->len = calloc(cap ? cap : 1, sizeof(*s->len));
	if (s->v == NULL || s->len == NULL)
		goto fail;
	for (size_t i = 0; i < cap; i++) {
		const char *val = old != NULL && i < old->n ? old->v[i]
							    : values[i - (old ? old->n : 0)];
		if (val == NULL || strlen(val) < IM_LOG_MIN_SECRET)
			continue;
		bool dup = false;
		for (size_t j = 0; j < s->n && !dup; j++)
			dup = strcmp(s->v[j], val) == 0;
		if (dup)
			continue;
		if ((s->v[s->n] = strdup(val)) == NULL)
			goto fail;
		s->n++;
	}
	qsort(s->v, s->n, sizeof(*s->v), cmp_len_desc);
	for (size_t i = 0; i < s->n; i++) {
		s->len[i] = strlen(s->v[i]);
		s->first[(uint8_t)s->v[i][0]] = 1;
	}
	return s;
fail:
	secret_set_unref(s);
	return NULL;
}

static void secret_set_install(struct secret_set *s)
{
	pthread_mutex_lock(&g_secret_mu);
	struct secret_set *old = g_secrets;
	g_secrets = s;
	pthread_mutex_unlock(&g_secret_mu);
	secret_set_unref(old);
}

void im_log_set_secrets(const char *const *values, size_t n)
{
	if (values == NULL)
		n = 0;
	struct secret_set *s = secret_set_build(NULL, values, n);
	if (s == NULL) /* keep the old set rather than redact nothing */
		return;
	if (s->n == 0) { /* nothing to redact: hold no memory either */
		secret_set_unref(s);
		s = NULL;
	}
	secret_set_install(s);
}

void im_log_add_secret(const char *value)
{
	if (value == NULL || strlen(value) < IM_LOG_MIN_SECRET)
		return;
	/* Copy-on-write under the lock so two concurrent adds both land. */
	pthread_mutex_lock(&g_secret_mu);
	const char *one[1] = {value};
	struct secret_set *s = secret_set_build(g_secrets, one, 1);
	struct secret_set *old = NULL;
	if (s != NULL) {
		old = g_secrets;
		g_secrets = s;
	}
	pthread_mutex_unlock(&g_secret_mu);
	secret_set_unref(old);
}

/* ---- growable buffer ------------------------------------------------ */

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void buf_reserve(struct buf *b, size_t extra)
{
	if (b->oom || b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = true;
		return;
	}
	b->p = p;
	b->cap = cap;
}

static void buf_put(struct buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

/* ---- redaction ------------------------------------------------------ */

static bool is_tok_char(unsigned char c)
{
	return isalnum(c) || c == '-';
}

static bool is_word_char(unsigned char c)
{
	return isalnum(c) || c == '_';
}

/* ---- credential prefixes (append-only) ----------------------------- */

#define PREFIX_MAX 64
#define PREFIX_LEN 32

static pthread_mutex_t g_prefix_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_prefix[PREFIX_MAX][PREFIX_LEN];
static size_t g_prefix_len[PREFIX_MAX];
static atomic_uchar g_prefix_first[256];
static atomic_size_t g_prefix_n;

void im_log_add_secret_prefixes(const char *const *prefixes)
{
	pthread_mutex_lock(&g_prefix_mu);
	size_t n = atomic_load_explicit(&g_prefix_n, memory_order_relaxed);
	for (size_t i = 0; prefixes && prefixes[i]; i++) {
		const char *p = prefixes[i];
		size_t len = strlen(p);
		if (len < 3 || len >= PREFIX_LEN || n == PREFIX_MAX)
			continue;
		bool dup = false;
		for (size_t k = 0; k < n && !dup; k++)
			dup = strcmp(g_prefix[k], p) == 0;
		if (dup)
			continue;
		memcpy(g_prefix[n], p, len + 1);
		g_prefix_len[n] = len;
		atomic_store_explicit(&g_prefix_first[(unsigned char)p[0]], 1,
				      memory_order_relaxed);
		n++;
		atomic_store_explicit(&g_prefix_n, n, memory_order_release);
	}
	pthread_mutex_unlock(&g_prefix_mu);
}

/* Length of the registered credential prefix at s, 0 if none (the
 * longest wins). */
static size_t secret_prefix(const char *s)
{
	if (!atomic_load_explicit(&g_prefix_first[(unsigned char)*s],
				  memory_order_relaxed))
		return 0;
	size_t n = atomic_load_explicit(&g_prefix_n, memory_order_acquire);
	size_t best = 0;
	for (size_t i = 0; i < n; i++)
		if (g_prefix_len[i] > best &&
		    strncmp(s, g_prefix[i], g_prefix_len[i]) == 0)
			best = g_prefix_len[i];
	return best;
}

/* Length of "Bearer" / "Bot" plus the blanks after it at s, when a word
 * starts there and a token follows; 0 otherwise. */
static size_t auth_prefix(const char *start, const char *s)
{
	size_t kw;
	if (s > start && is_word_char((unsigned char)s[-1]))
		return 0;
	if (strncasecmp(s, "bearer", 6) == 0)
		kw = 6;
	else if (strncasecmp(s, "bot", 3) == 0)
		kw = 3;
	else
		return 0;
	size_t i = kw;
	while (s[i] == ' ' || s[i] == '\t')
		i++;
	if (i == kw)
		return 0;
	if (s[i] == '\0' || isspace((unsigned char)s[i]) || s[i] == '"' ||
	    s[i] == '\'')
		return 0;
	/* After "bot" only a dotted token of 16+ bytes is taken for one
	 * (the shape of bot tokens in authorization headers), so "invite
	 * the bot /invite @x" stays readable. */
	if (kw == 3) {
		size_t n = 0;
		bool dot = false;
		while (s[i + n] && !isspace((unsigned char)s[i + n]) &&
		       s[i + n] != '"' && s[i + n] != '\'') {
			dot |= s[i + n] == '.';
			n++;
		}
		if (!dot || n < 16)
			return 0;
	}
	return i;
}

static size_t auth_token_len(const char *s)
{
	size_t i = 0;
	while (s[i] != '\0' && !isspace((unsigned char)s[i]) && s[i] != '"' &&
	       s[i] != '\'')
		i++;
	return i;
}

static char *redact_with(const char *in, const struct secret_set *sec)
{
	struct buf b = {0};
	const char *p = in, *lit = in; /* lit: start of pending literal run */

	buf_reserve(&b, strlen(in) + 16);
	while (*p != '\0') {
		unsigned char c = (unsigned char)*p;
		size_t k;

		if (sec != NULL && sec->first[c]) {
			size_t i;
			for (i = 0; i < sec->n; i++)
				if (strncmp(p, sec->v[i], sec->len[i]) == 0)
					break;
			if (i < sec->n) {
				buf_put(&b, lit, (size_t)(p - lit));
				buf_puts(&b, IM_LOG_REDACTED);
				p += sec->len[i];
				lit = p;
				continue;
			}
		}
		if ((k = secret_prefix(p)) != 0 &&
		    is_tok_char((unsigned char)p[k])) {
			buf_put(&b, lit, (size_t)(p - lit) + k);
			buf_puts(&b, IM_LOG_REDACTED);
			p += k;
			while (is_tok_char((unsigned char)*p))
				p++;
			lit = p;
			continue;
		}
		if ((c == 'b' || c == 'B') && (k = auth_prefix(in, p)) != 0) {
			buf_put(&b, lit, (size_t)(p - lit) + k);
			buf_puts(&b, IM_LOG_REDACTED);
			p += k;
			p += auth_token_len(p);
			lit = p;
			continue;
		}
		p++;
	}
	buf_put(&b, lit, (size_t)(p - lit));
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	if (b.p == NULL)
		return strdup("");
	return b.p;
}

char *im_log_redact(const char *in)
{
	if (in == NULL)
		return NULL;
	struct secret_set *sec = secret_set_get();
	char *out = redact_with(in, sec);
	secret_set_unref(sec);
	return out;
}

/* ---- levels and configuration --------------------------------------- */

static const char *const level_upper[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
static const char *const level_lower[] = {"debug", "info", "warn", "error"};

int im_log_level_parse(const char *name)
{
	if (name == NULL)
		return -1;
	for (int i = 0; i < 4; i++)
		if (strcasecmp(name, level_lower[i]) == 0)
			return i;
	if (strcasecmp(name, "warning") == 0)
		return IM_LOG_WARN;
	return -1;
}

static int format_parse(const char *name)
{
	if (strcasecmp(name, "text") == 0)
		return FMT_TEXT;
	if (strcasecmp(name, "json") == 0)
		return FMT_JSON;
	return -1;
}

int im_log_configure(const char *level, const char *format)
{
	int lv = -1, fmt = -1;
	if (level != NULL && (lv = im_log_level_parse(level)) < 0)
		return IM_EINVAL;
	if (format != NULL && (fmt = format_parse(format)) < 0)
		return IM_EINVAL;
	if (lv >= 0)
		atomic_store(&g_level, lv);
	if (fmt >= 0)
		atomic_store(&g_format, fmt);
	return IM_OK;
}

static bool env_true(const char *v)
{
	return v != NULL && (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0);
}

void im_log_init_env(void)
{
	int lv = im_log_level_parse(getenv("LOG_LEVEL"));
	if (lv >= 0)
		atomic_store(&g_level, lv);
	if (env_true(getenv("CHATOPS_DEBUG"))) {
		atomic_store(&g_level, IM_LOG_DEBUG);
		atomic_store(&g_debug_bodies, true);
	}
}

void im_log_set_fd(int fd)
{
	pthread_mutex_lock(&g_write_mu);
	atomic_store(&g_fd, fd < 0 ? -1 : fd);
	pthread_mutex_unlock(&g_write_mu);
}

im_log_level im_log_get_level(void)
{
	return (im_log_level)atomic_load_explicit(&g_level,
						  memory_order_relaxed);
}

void im_log_set_level(im_log_level level)
{
	if ((int)level < IM_LOG_DEBUG || level > IM_LOG_ERROR)
		return;
	atomic_store(&g_level, (int)level);
}

bool im_log_enabled(im_log_level level)
{
	return (int)level >= atomic_load_explicit(&g_level,
						  memory_order_relaxed);
}

bool im_log_debug_bodies(void)
{
	return atomic_load_explicit(&g_debug_bodies, memory_order_relaxed);
}

/* ---- line building -------------------------------------------------- */

static void format_ts(char out[32])
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

/* Cuts `s` (length *len) to IM_LOG_MAX_MSG bytes on a UTF-8 boundary and
 * appends the marker. `s` must have room for it (see im_logv). */
static void truncate_msg(char *s, size_t *len)
{
	if (*len <= IM_LOG_MAX_MSG)
		return;
	size_t cut = IM_LOG_MAX_MSG;
	while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
		cut--;
	memcpy(s + cut, IM_LOG_TRUNC_MARK, sizeof(IM_LOG_TRUNC_MARK));
	*len = cut + sizeof(IM_LOG_TRUNC_MARK) - 1;
}

/* Length of the valid UTF-8 sequence at s (as jansson accepts it), 0 when
 * invalid. */
static size_t utf8_seq(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

/* A JSON string of `s`, invalid UTF-8 bytes replaced by U+FFFD. */
static json_t *json_str_lossy(const char *s)
{
	if (s == NULL)
		return json_null();
	json_t *j = json_string(s);
	if (j != NULL)
		return j;
	struct buf b = {0};
	const unsigned char *p = (const unsigned char *)s;
	while (*p != '\0') {
		size_t n = utf8_seq(p);
		if (n == 0) {
			buf_puts(&b, "\xEF\xBF\xBD");
			p++;
		} else {
			buf_put(&b, (const char *)p, n);
			p += n;
		}
	}
	j = json_string(b.p != NULL ? b.p : "");
	free(b.p);
	return j;
}

static char *build_json(const char *ts, im_log_level level, const char *kind,
			const char *name, const char *instance,
			const char *msg)
{
	json_t *o = json_object();
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "ts", json_string(ts));
	json_object_set_new(o, "level", json_string(level_lower[level]));
	json_object_set_new(o, "kind", json_str_lossy(kind));
	json_object_set_new(o, "plugin", json_str_lossy(name));
	json_object_set_new(o, "instance", json_str_lossy(instance));
	json_object_set_new(o, "msg", json_str_lossy(msg));
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* Text lines stay one line: CR and LF in the message are written as \r and
 * \n so a remote string cannot forge extra log lines. */
static void put_text_msg(struct buf *b, const char *msg)
{
	const char *lit = msg, *p = msg;
	for (; *p != '\0'; p++) {
		if (*p != '\n' && *p != '\r')
			continue;
		buf_put(b, lit, (size_t)(p - lit));
		buf_puts(b, *p == '\n' ? "\\n" : "\\r");
		lit = p + 1;
	}
	buf_put(b, lit, (size_t)(p - lit));
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

static void emit_line(const char *line, size_t len)
{
	pthread_mutex_lock(&g_write_mu);
	int fd = atomic_load(&g_fd);
	write_all(fd < 0 ? STDERR_FILENO : fd, line, len);
	pthread_mutex_unlock(&g_write_mu);
}

void im_logv(im_log_level level, const char *kind, const char *name,
	     const char *instance, const char *fmt, va_list ap)
{
	if ((int)level < IM_LOG_DEBUG)
		level = IM_LOG_DEBUG;
	if ((int)level > IM_LOG_ERROR)
		level = IM_LOG_ERROR;
	if ((int)level < atomic_load_explicit(&g_level, memory_order_relaxed))
		return;
	if (kind == NULL)
		kind = "core";
	if (name == NULL)
		name = "-";
	if (fmt == NULL)
		fmt = "";

	/* Format in full: redaction must see whole tokens. */
	char small[1024];
	char *raw = small;
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(small, sizeof(small), fmt, cp);
	va_end(cp);
	if (n < 0) {
		snprintf(small, sizeof(small), "(log format error: %s)", fmt);
	} else if ((size_t)n >= sizeof(small)) {
		raw = malloc((size_t)n + 1);
		if (raw == NULL) {
			raw = small; /* keep the first 1 KiB */
		} else {
			va_copy(cp, ap);
			vsnprintf(raw, (size_t)n + 1, fmt, cp);
			va_end(cp);
		}
	}

	char *msg = im_log_redact(raw);
	if (raw != small)
		free(raw);
	if (msg == NULL)
		return;
	size_t mlen = strlen(msg);
	if (mlen > IM_LOG_MAX_MSG) {
		/* redacted text is at least IM_LOG_MAX_MSG + 1 bytes long,
		 * the marker fits in a realloc'd tail */
		char *m2 = realloc(msg, IM_LOG_MAX_MSG + sizeof(IM_LOG_TRUNC_MARK));
		if (m2 == NULL) {
			free(msg);
			return;
		}
		msg = m2;
		truncate_msg(msg, &mlen);
	}

	char ts[32];
	format_ts(ts);
	if (atomic_load_explicit(&g_format, memory_order_relaxed) == FMT_JSON) {
		char *line = build_json(ts, level, kind, name, instance, msg);
		if (line != NULL) {
			/* copy: json_dumps may use jansson's own allocator */
			struct buf b = {0};
			buf_puts(&b, line);
			buf_puts(&b, "\n");
			if (!b.oom)
				emit_line(b.p, b.len);
			free(b.p);
			free(line);
		}
	} else {
		struct buf b = {0};
		buf_reserve(&b, mlen + 96);
		buf_puts(&b, ts);
		buf_puts(&b, " ");
		buf_puts(&b, level_upper[level]);
		buf_puts(&b, " [");
		buf_puts(&b, kind);
		buf_puts(&b, ":");
		buf_puts(&b, name);
		if (instance != NULL) {
			buf_puts(&b, ":");
			buf_puts(&b, instance);
		}
		buf_puts(&b, "] ");
		put_text_msg(&b, msg);
		buf_puts(&b, "\n");
		if (!b.oom)
			emit_line(b.p, b.len);
		free(b.p);
	}
	free(msg);
}

void im_logf(im_log_level level, const char *kind, const char *name,
	     const char *instance, const char *fmt, ...)
{
	if ((int)level < atomic_load_explicit(&g_level, memory_order_relaxed) &&
	    (int)level >= IM_LOG_DEBUG)
		return;
	va_list ap;
	va_start(ap, fmt);
	im_logv(level, kind, name, instance, fmt, ap);
	va_end(ap);
}
