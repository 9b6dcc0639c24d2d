/*
 * Durations ("250ms", "1h30m", "5") and byte sizes ("512KiB", "1MiB").
 *
 * Numbers are read by hand rather than with strtod so that the result does
 * not depend on the process locale's decimal separator.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <strings.h>

#include "config/config_private.h"

/* Reads [0-9]+(.[0-9]*)? or .[0-9]+ at *pp. */
static int read_number(const char **pp, double *out)
{
	static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6,
				       1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13,
				       1e14, 1e15};
	const char *p = *pp;
	double mant = 0;
	int digits = 0, frac = 0;
	for (; isdigit((unsigned char)*p); p++, digits++)
		mant = mant * 10 + (*p - '0');
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p); p++, digits++) {
			if (frac < 15) { /* more digits add nothing */
				mant = mant * 10 + (*p - '0');
				frac++;
			}
		}
	}
	if (!digits || !isfinite(mant))
		return IM_EINVAL;
	*out = mant / pow10[frac];
	*pp = p;
	return 0;
}

int im_config_parse_duration(const char *text, double *seconds)
{
	const char *p = text;
	double total = 0;
	int parts = 0;
	if (!text || !*text || !seconds)
		return IM_EINVAL;
	while (*p) {
		double v, unit;
		if (read_number(&p, &v))
			return IM_EINVAL;
		if (!*p && !parts) {
			unit = 1; /* a bare number of seconds */
		} else if (p[0] == 'm' && p[1] == 's') {
			unit = 0.001;
			p += 2;
		} else if (*p == 's' || *p == 'm' || *p == 'h') {
			unit = *p == 's' ? 1 : *p == 'm' ? 60 : 3600;
			p++;
		} else {
			return IM_EINVAL;
		}
		total += v * unit;
		parts++;
	}
	if (!isfinite(total))
		return IM_EINVAL;
	*seconds = total;
	return 0;
}

static const struct {
	const char *name;
	double mult;
} size_units[] = {
	{"", 1},       {"b", 1},
	{"kb", 1e3},   {"kib", 1024.0},
	{"mb", 1e6},   {"mib", 1048576.0},
	{"gb", 1e9},   {"gib", 1073741824.0},
	{"tb", 1e12},  {"tib", 1099511627776.0},
};

int im_config_parse_size(const char *text, unsigned long long *bytes)
{
	const char *p = text;
	double v;
	if (!text || !bytes || read_number(&p, &v))
		return IM_EINVAL;
	for (size_t i = 0; i < sizeof size_units / sizeof *size_units; i++) {
		if (strcasecmp(p, size_units[i].name))
			continue;
		v *= size_units[i].mult;
		if (!(v < 9.2e18)) /* stays within long long */
			return IM_EINVAL;
		*bytes = (unsigned long long)v; /* rounds down */
		return 0;
	}
	return IM_EINVAL;
}
