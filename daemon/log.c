// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "log.h"

#define LOG_LINE_MAX 2048

static int log_max_level = LOG_INFO;
static bool log_journal;

static const char *const log_sd_prefix[] = {
	[LOG_EMERG] = SD_EMERG,	    [LOG_ALERT] = SD_ALERT,
	[LOG_CRIT] = SD_CRIT,	    [LOG_ERR] = SD_ERR,
	[LOG_WARNING] = SD_WARNING, [LOG_NOTICE] = SD_NOTICE,
	[LOG_INFO] = SD_INFO,	    [LOG_DEBUG] = SD_DEBUG,
};

/* "DEV:INO" as systemd writes it (both decimal) against fstat(stderr). */
static bool log_stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char *end;

	if (!e || !*e)
		return false;
	errno = 0;
	dev = strtoull(e, &end, 10);
	if (errno || end == e || *end != ':')
		return false;
	e = end + 1;
	ino = strtoull(e, &end, 10);
	if (errno || end == e || *end)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void log_open(int max_level)
{
	int saved = errno;

	log_set_max_level(max_level);
	log_journal = log_stderr_is_journal();
	errno = saved;
}

void log_set_max_level(int max_level)
{
	if (max_level < LOG_EMERG)
		max_level = LOG_EMERG;
	if (max_level > LOG_DEBUG)
		max_level = LOG_DEBUG;
	log_max_level = max_level;
}

int log_get_max_level(void)
{
	return log_max_level;
}

bool log_to_journal(void)
{
	return log_journal;
}

static void log_write(int level, int err, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	const char *word = "";
	size_t n, off;
	int r;

	if (level < LOG_EMERG)
		level = LOG_EMERG;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	if (level > log_max_level)
		return;

	if (log_journal) {
		r = snprintf(line, sizeof(line), "%s", log_sd_prefix[level]);
	} else {
		if (level <= LOG_ERR)
			word = "error: ";
		else if (level == LOG_WARNING)
			word = "warning: ";
		r = snprintf(line, sizeof(line), "rcupoold: %s", word);
	}
	off = r > 0 ? (size_t)r : 0;

	errno = err; /* for %m */
	r = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	if (r < 0)
		r = 0;
	n = off + (size_t)r;
	if (n >= sizeof(line) - 1) {
		/* Truncated: mark it and keep room for the newline. */
		n = sizeof(line) - 2;
		memcpy(line + n - 3, "...", 3);
	}
	/* One line per message: a journal record or a terminal line. */
	for (size_t i = off; i < n; i++)
		if (line[i] == '\n' && i + 1 < n)
			line[i] = ' ';
	if (n == 0 || line[n - 1] != '\n')
		line[n++] = '\n';

	off = 0;
	while (off < n) {
		ssize_t w = write(STDERR_FILENO, line + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}

void log_msg(int level, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_write(level, saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

int log_errno(int level, int negative_errno, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_write(level, abs(negative_errno), fmt, ap);
	va_end(ap);
	errno = saved;
	return negative_errno;
}
