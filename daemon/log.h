/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOLD_LOG_H
#define RCUPOOLD_LOG_H

#include <stdbool.h>
#include <syslog.h> /* LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG */

/*
 * The daemon's only printer.  Messages go to stderr, one write(2) per line.
 *
 * log_open() decides the format once: when stderr is the journal (the
 * JOURNAL_STREAM environment variable names stderr's st_dev:st_ino, see
 * sd_journal_stream_fd(3)), each line is "<N>message" with the sd-daemon(3)
 * priority prefix; otherwise "rcupoold: message", with "error: " or
 * "warning: " after the program name for those levels (LOG_CRIT and above
 * say "error: " too).  Messages above max_level are dropped (LOG_INFO by
 * default, LOG_DEBUG for -v).  Before log_open() the plain format at
 * LOG_INFO is used.
 *
 * A trailing newline in fmt is optional; "%m" prints strerror(errno), or of
 * the errno given to log_errno().  errno is preserved by every call.
 */
void log_open(int max_level);
void log_set_max_level(int max_level);
int log_get_max_level(void);
/* True when log_open() found stderr connected to the journal. */
bool log_to_journal(void);

void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Log with errno set to the given error, so "%m" names it, and return that
 * same value: return log_errno(LOG_ERR, r, "bind %s: %m", path);
 * negative_errno may also be positive; it is returned unchanged.
 */
int log_errno(int level, int negative_errno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...)	 log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)	 log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)	 log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	 log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
