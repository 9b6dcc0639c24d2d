/* The growing string builder: see buf.h. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf/buf.h"

/* Makes room for n more bytes plus the NUL; false when it cannot. */
static bool reserve(im_buf *b, size_t n)
{
	if (b->oom)
		return false;
	if (b->cap && n < b->cap - b->len)
		return true;
	size_t want = b->len + n + 1, cap = b->cap ? b->cap : 64;
	if (want < b->len) { /* overflow */
		b->oom = true;
		return false;
	}
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void im_buf_put(im_buf *b, const void *s, size_t n)
{
	if (b->max && n > b->max - b->len) {
		n = b->max - b->len;
		b->truncated = true;
	}
	if (!reserve(b, n))
		return;
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void im_buf_puts(im_buf *b, const char *s)
{
	im_buf_put(b, s, strlen(s));
}

void im_buf_putc(im_buf *b, char c)
{
	im_buf_put(b, &c, 1);
}

void im_buf_printf(im_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		im_buf_put(b, small, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		b->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	im_buf_put(b, big, (size_t)n);
	free(big);
}

size_t im_utf8_seq(const unsigned char *s, size_t n)
{
	if (n == 0)
		return 0;
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	unsigned cp, min;
	if ((c & 0xE0) == 0xC0) {
		len = 2, cp = c & 0x1F, min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3, cp = c & 0x0F, min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		len = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

void im_buf_put_utf8(im_buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0; /* valid bytes not yet appended */
	for (size_t i = 0; i < n;) {
		size_t k = im_utf8_seq(p + i, n - i);
		if (k && p[i] != 0) {
			i += k;
			run += k;
			continue;
		}
		im_buf_put(b, p + i - run, run);
		run = 0;
		im_buf_printf(b, "\\x%02X", p[i]);
		i++;
	}
	im_buf_put(b, p + n - run, run);
}

const char *im_buf_str(const im_buf *b)
{
	return b->p ? b->p : "";
}

char *im_buf_take(im_buf *b, size_t *len)
{
	char *p = NULL;
	if (!b->oom && b->p && b->cap - b->len > b->cap / 4) {
		/* A quarter or more unused: given back, as a text taken may be
		 * kept long (4,096 events in the bus ring). */
		char *q = realloc(b->p, b->len + 1);
		if (q)
			b->p = q;
	}
	if (!b->oom && (p = b->p ? b->p : calloc(1, 1)) && len)
		*len = b->len;
	if (b->oom)
		free(b->p);
	size_t max = b->max;
	*b = (im_buf){.max = max};
	return p;
}

void im_buf_free(im_buf *b)
{
	free(b->p);
	size_t max = b->max;
	*b = (im_buf){.max = max};
}
