// SPDX-License-Identifier: LGPL-2.1-or-later
/* Durations and sizes: one grammar, parsed and printed (units.h). */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "units.h"

struct unit {
	const char *word;
	uint64_t mult;
};

/* The whole rest of the string is compared with each word. */
static const struct unit duration_units[] = {
	{"us", 1},
	{"ms", UNITS_US_PER_MS},
	{"s", UNITS_US_PER_S},
	{"min", UNITS_US_PER_MIN},
	{"m", UNITS_US_PER_MIN},
	{"h", UNITS_US_PER_H},
	{"d", UNITS_US_PER_D},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/*
 * "12", "12.5": the integer part in *ip, the fraction digits (at most 18) as
 * *fp over *fden (a power of ten).  *end past the number.
 */
static int parse_number(const char *s, uint64_t *ip, uint64_t *fp,
			uint64_t *fden, const char **end)
{
	uint64_t n = 0, f = 0, den = 1;
	bool over = false;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned int d = (unsigned int)(*s - '0');

		if (n > (UINT64_MAX - d) / 10)
			over = true;
		else
			n = n * 10 + d;
	}
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		for (; isdigit((unsigned char)*s); s++) {
			if (den >= 1000000000000000000ULL) {
				if (*s != '0')
					over = true; /* finer than we keep */
				continue;
			}
			f = f * 10 + (uint64_t)(*s - '0');
			den *= 10;
		}
	}
	*ip = n;
	*fp = f;
	*fden = den;
	*end = s;
	return over ? -ERANGE : 0;
}

/* n + f/den times mult, exactly; -ERANGE on overflow or a remainder. */
static int scale(uint64_t n, uint64_t f, uint64_t den, uint64_t mult,
		 uint64_t *out)
{
	uint64_t whole, frac;

	if (mult && n > UINT64_MAX / mult)
		return -ERANGE;
	whole = n * mult;
	if (f) {
		/* f < den <= 10^18 and mult <= 2^40 or 86400e6: split mult to
		 * stay in 64 bits. */
		uint64_t q = mult / den, r = mult % den;

		if (f > UINT64_MAX / (r ? r : 1))
			return -ERANGE;
		if ((f * r) % den)
			return -ERANGE;
		frac = f * q + f * r / den;
		if (whole > UINT64_MAX - frac)
			return -ERANGE;
		whole += frac;
	}
	*out = whole;
	return 0;
}

static const char *skip_blanks(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

int units_parse_duration(const char *s, uint64_t *usec)
{
	uint64_t n, f, den, mult = UNITS_US_PER_S;
	const char *end;
	size_t i;
	int r;

	r = parse_number(s, &n, &f, &den, &end);
	if (r == -EINVAL)
		return r;
	end = skip_blanks(end);
	if (*end) {
		for (i = 0; i < N(duration_units); i++)
			if (strcasecmp(end, duration_units[i].word) == 0)
				break;
		if (i == N(duration_units))
			return -EINVAL;
		mult = duration_units[i].mult;
	}
	if (r)
		return r;
	return scale(n, f, den, mult, usec);
}

int units_parse_size(const char *s, uint64_t *bytes)
{
	static const char mults[] = "KMGT";
	uint64_t n, f, den, mult = 1;
	const char *end, *p;
	int r;

	r = parse_number(s, &n, &f, &den, &end);
	if (r == -EINVAL)
		return r;
	end = skip_blanks(end);
	if (*end) {
		p = strchr(mults, toupper((unsigned char)*end));
		if (p) {
			mult = 1ULL << (10 * (p - mults + 1));
			end++;
			if (*end && strcasecmp(end, "B") &&
			    strcasecmp(end, "iB"))
				return -EINVAL;
		} else if (strcasecmp(end, "B")) {
			return -EINVAL;
		}
	}
	if (r)
		return r;
	if (scale(n, f, den, mult, bytes))
		return -ERANGE;
	return 0;
}

const char *units_format_duration(uint64_t usec, char *buf, size_t len)
{
	static const struct unit u[] = {
		{"d", UNITS_US_PER_D},	   {"h", UNITS_US_PER_H},
		{"min", UNITS_US_PER_MIN}, {"s", UNITS_US_PER_S},
		{"ms", UNITS_US_PER_MS},   {"us", 1},
	};
	size_t i;

	if (usec == 0) {
		snprintf(buf, len, "0");
		return buf;
	}
	for (i = 0; usec % u[i].mult; i++)
		;
	snprintf(buf, len, "%llu%s", (unsigned long long)(usec / u[i].mult),
		 u[i].word);
	return buf;
}

const char *units_human_duration(uint64_t usec, char *buf, size_t len)
{
	unsigned long long s = usec / UNITS_US_PER_S;

	if (usec < UNITS_US_PER_MS)
		snprintf(buf, len, "%lluus", (unsigned long long)usec);
	else if (usec < UNITS_US_PER_S)
		snprintf(buf, len, "%llums",
			 (unsigned long long)(usec / UNITS_US_PER_MS));
	else if (s < 60)
		snprintf(buf, len, "%.1fs", (double)usec / 1e6);
	else if (s < 3600)
		snprintf(buf, len, "%llumin %02llus", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lluh %02llumin", s / 3600, s / 60 % 60);
	else
		snprintf(buf, len, "%llud %02lluh", s / 86400, s / 3600 % 24);
	return buf;
}

const char *units_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char mults[] = "TGMK";
	int i;

	for (i = 0; i < 4; i++) {
		uint64_t m = 1ULL << (10 * (4 - i));

		if (bytes && bytes % m == 0) {
			snprintf(buf, len, "%llu%c",
				 (unsigned long long)(bytes / m), mults[i]);
			return buf;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)bytes);
	return buf;
}

const char *units_human_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const words[] = {"KiB", "MiB", "GiB", "TiB"};
	int i;

	if (bytes < 1024) {
		snprintf(buf, len, "%lluB", (unsigned long long)bytes);
		return buf;
	}
	for (i = 3; i > 0 && bytes < 1ULL << (10 * (i + 1)); i--)
		;
	if (bytes % (1ULL << (10 * (i + 1))) == 0)
		snprintf(buf, len, "%llu%s",
			 (unsigned long long)(bytes >> (10 * (i + 1))),
			 words[i]);
	else
		snprintf(buf, len, "%.1f%s",
			 (double)bytes / (double)(1ULL << (10 * (i + 1))),
			 words[i]);
	return buf;
}
