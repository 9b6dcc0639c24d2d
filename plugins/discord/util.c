/* Small helpers the connector's parts share: a monotonic clock and text
 * cut to Discord's limits, which count characters, not bytes. */
#include <string.h>

#include "discord.h"

double dsc_mono(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

json_t *dsc_cut(const char *s, size_t max)
{
	if (!s)
		s = "";
	size_t n = 0, chars = 0;
	while (s[n] && chars < max) {
		n++;
		while (((unsigned char)s[n] & 0xC0) == 0x80)
			n++;
		chars++;
	}
	return json_stringn(s, n);
}
