/*
 * core/buf - the one growing string builder of the host. Appends never
 * write past the end: the buffer grows (or, with a `max`, stops at max
 * bytes and remembers it cut), and a failed allocation is sticky, checked
 * once at the end. Use it instead of snprintf(buf + off, cap - off, ...)
 * arithmetic, which wraps when off passes cap.
 *
 *   im_buf b = IM_BUF_INIT;            // or {.max = 4096} for a cap
 *   im_buf_puts(&b, "INC-");
 *   im_buf_printf(&b, "%lld", n);
 *   char *s = im_buf_take(&b, &len);   // NULL when out of memory
 *
 * Not thread-safe; one builder per thread. The text is always
 * NUL-terminated once anything was appended.
 */
#ifndef IM_CORE_BUF_H
#define IM_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct im_buf {
	char *p;
	size_t len, cap;
	size_t max;     /* 0: no limit; else at most max bytes of text */
	bool oom;       /* an allocation failed: the text is incomplete */
	bool truncated; /* max was reached: the text is cut */
} im_buf;

#define IM_BUF_INIT {0}

void im_buf_put(im_buf *b, const void *s, size_t n);
void im_buf_puts(im_buf *b, const char *s);
void im_buf_putc(im_buf *b, char c);
void im_buf_printf(im_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s with every byte that is not part of valid UTF-8 written as
 * the four characters \xNN, so the text can go into JSON and logs. */
void im_buf_put_utf8(im_buf *b, const char *s, size_t n);
/* Length of the valid UTF-8 sequence at s (1-4), or 0 when invalid. */
size_t im_utf8_seq(const unsigned char *s, size_t n);
/* The text so far ("" when empty); valid until the next append. */
const char *im_buf_str(const im_buf *b);
/* Hands the text to the caller (free() it) and resets the builder; NULL
 * (and the builder freed) when an allocation failed. A buffer a quarter
 * or more unused is shrunk to the text first. */
char *im_buf_take(im_buf *b, size_t *len);
void im_buf_free(im_buf *b);

#endif
