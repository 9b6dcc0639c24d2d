/*
 * core/log - the host's log: levels, text or JSON lines, secret redaction.
 *
 * Contract: one process-wide logger, safe from any thread (one mutex around
 * the write so lines never interleave). Every line goes through
 * im_log_redact() before it is written, so tokens never reach the output:
 * words starting with a credential prefix registered with
 * im_log_add_secret_prefixes() (a connector's rules declare them, e.g.
 * "tok-"), the value after "Bearer " or "Bot " (authorization headers),
 * and every string registered with im_log_set_secrets() are replaced by
 * "[REDACTED]" (prefixed tokens keep their prefix: "tok-[REDACTED]").
 *
 * Line shape, text:  2026-11-27T10:00:00.123Z INFO  [core:loader] message
 *                    2026-11-27T10:00:00.123Z WARN  [plugin:chat:chat-prod] message
 * JSON (one object per line): {"ts":"...","level":"info","kind":"core",
 *   "plugin":"loader","instance":null,"msg":"..."}
 */
#ifndef IM_CORE_LOG_H
#define IM_CORE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <im/types.h>

/* Reads LOG_LEVEL (debug|info|warn|error) and CHATOPS_DEBUG (true/1). The
 * environment wins over the config: call im_log_configure() first, then
 * im_log_init_env(). Output defaults to stderr. */
void im_log_init_env(void);
/* From the config: level name ("info") and format ("text"|"json"). Unknown
 * names return IM_EINVAL and change nothing. */
int im_log_configure(const char *level, const char *format);
/* Redirects output to fd (tests); -1 restores stderr. */
void im_log_set_fd(int fd);
im_log_level im_log_get_level(void);
void im_log_set_level(im_log_level level);
/* Whether a line at `level` would be written (host log_enabled). */
bool im_log_enabled(im_log_level level);
/* CHATOPS_DEBUG: log platform request and response bodies. */
bool im_log_debug_bodies(void);
/* Parses "debug".."error" (case-insensitive); -1 when unknown. */
int im_log_level_parse(const char *name);

/* Replaces the set of secret values to redact (copied; empty and very short
 * values, under 4 bytes, are ignored so we never redact "a" everywhere). */
void im_log_set_secrets(const char *const *values, size_t n);
/* Adds one secret value to the set (copied). */
void im_log_add_secret(const char *value);
/* Registers credential prefixes (NULL-ended list, copied): any word
 * starting with one, followed by letters, digits or '-', is redacted to
 * the prefix and "[REDACTED]" in every line from now on. Thread-safe;
 * duplicates are ignored, prefixes under 3 or over 31 bytes are refused,
 * and at most 64 are kept (the process never forgets one). */
void im_log_add_secret_prefixes(const char *const *prefixes);

/* Writes the redacted form of `in` to a new malloc'd string. */
char *im_log_redact(const char *in);

/* kind: "core" or "plugin"; name: subsystem or module; instance may be
 * NULL. */
void im_logf(im_log_level level, const char *kind, const char *name,
	     const char *instance, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void im_logv(im_log_level level, const char *kind, const char *name,
	     const char *instance, const char *fmt, va_list ap);

/* Core shorthands: LOG_INFO("loader", "loaded %s", path). */
#define LOG_DEBUG(sub, ...) im_logf(IM_LOG_DEBUG, "core", sub, NULL, __VA_ARGS__)
#define LOG_INFO(sub, ...) im_logf(IM_LOG_INFO, "core", sub, NULL, __VA_ARGS__)
#define LOG_WARN(sub, ...) im_logf(IM_LOG_WARN, "core", sub, NULL, __VA_ARGS__)
#define LOG_ERROR(sub, ...) im_logf(IM_LOG_ERROR, "core", sub, NULL, __VA_ARGS__)

#endif
