/*
 * args - splits the text of a chat command into arguments the way a POSIX
 * shell does: whitespace separates, '...' and "..." group, a backslash
 * escapes the next character (inside "..." only \" and \\ are escapes).
 *
 * Contract: pure, reentrant, no I/O. The result owns its strings; free it
 * with ic_args_free(), also after a failed split (it is left empty).
 */
#ifndef IC_ARGS_H
#define IC_ARGS_H

#include <stddef.h>

typedef struct ic_args {
	size_t n;
	char **v; /* n strings, then NULL */
} ic_args;

/* Splits `text` (NULL counts as ""). Returns 0, IM_ENOMEM, or IM_EINVAL
 * with a message for the user in `err`, e.g. for an unclosed quote:
 * "unclosed \" in: declare \"db down". */
int ic_args_split(const char *text, ic_args *out, char *err, size_t errlen);
void ic_args_free(ic_args *a);

/* The arguments from `from` on joined by single spaces; "" when none.
 * NULL when out of memory. */
char *ic_args_join(const ic_args *a, size_t from);

#endif
