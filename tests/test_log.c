// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "../daemon/log.h"

enum journal_mode { J_NONE, J_MATCH, J_OTHER, J_GARBAGE };

typedef void (*emit_fn)(void);

/*
 * Run emit() in a child whose stderr is a pipe, with JOURNAL_STREAM set as
 * mode says, and return everything it wrote (malloc'd).
 */
static char *capture(enum journal_mode mode, int max_level, emit_fn emit)
{
	char *out = NULL;
	size_t len = 0, cap = 0;
	int p[2], status;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct stat st;
		char buf[64];

		if (dup2(p[1], STDERR_FILENO) < 0)
			_exit(100);
		close(p[0]);
		close(p[1]);
		if (fstat(STDERR_FILENO, &st) < 0)
			_exit(101);
		switch (mode) {
		case J_NONE:
			unsetenv("JOURNAL_STREAM");
			break;
		case J_MATCH:
			snprintf(buf, sizeof(buf), "%llu:%llu",
				 (unsigned long long)st.st_dev,
				 (unsigned long long)st.st_ino);
			setenv("JOURNAL_STREAM", buf, 1);
			break;
		case J_OTHER: /* another stream: stderr was redirected */
			snprintf(buf, sizeof(buf), "%llu:%llu",
				 (unsigned long long)st.st_dev,
				 (unsigned long long)st.st_ino + 1);
			setenv("JOURNAL_STREAM", buf, 1);
			break;
		case J_GARBAGE:
			setenv("JOURNAL_STREAM", "12:", 1);
			break;
		}
		log_open(max_level);
		emit();
		_exit(0);
	}
	close(p[1]);
	for (;;) {
		ssize_t n;

		if (cap - len < 256) {
			cap = cap ? cap * 2 : 4096;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		n = read(p[0], out + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	out[len] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	return out;
}

static void emit_all(void)
{
	log_error("bad %d", 1);
	log_warning("careful");
	log_notice("note");
	log_info("hello %s", "world");
	log_debug("details");
	log_msg(LOG_CRIT, "crit\n"); /* trailing newline is not doubled */
}

static void test_log_plain(void **state)
{
	char *out = capture(J_NONE, LOG_INFO, emit_all);

	assert_string_equal(out, "rcupoold: error: bad 1\n"
				 "rcupoold: warning: careful\n"
				 "rcupoold: note\n"
				 "rcupoold: hello world\n"
				 "rcupoold: error: crit\n");
	free(out);
}

static void test_log_journal(void **state)
{
	char *out = capture(J_MATCH, LOG_INFO, emit_all);

	assert_string_equal(out, "<3>bad 1\n"
				 "<4>careful\n"
				 "<5>note\n"
				 "<6>hello world\n"
				 "<2>crit\n");
	free(out);
}

static void test_log_journal_mismatch(void **state)
{
	char *out = capture(J_OTHER, LOG_INFO, emit_all);

	assert_string_equal(out, "rcupoold: error: bad 1\n"
				 "rcupoold: warning: careful\n"
				 "rcupoold: note\n"
				 "rcupoold: hello world\n"
				 "rcupoold: error: crit\n");
	free(out);
	out = capture(J_GARBAGE, LOG_INFO, emit_all);
	assert_true(strncmp(out, "rcupoold: error: bad 1\n", 23) == 0);
	free(out);
}

static void test_log_debug_level(void **state)
{
	char *out = capture(J_MATCH, LOG_DEBUG, emit_all);

	assert_string_equal(out, "<3>bad 1\n"
				 "<4>careful\n"
				 "<5>note\n"
				 "<6>hello world\n"
				 "<7>details\n"
				 "<2>crit\n");
	free(out);
	out = capture(J_NONE, LOG_WARNING, emit_all);
	assert_string_equal(out, "rcupoold: error: bad 1\n"
				 "rcupoold: warning: careful\n"
				 "rcupoold: error: crit\n");
	free(out);
}

static void emit_errno(void)
{
	int r;

	errno = EBADF;
	r = log_errno(LOG_ERR, -ENOENT, "bind %s: %m", "/run/x.sock");
	if (r != -ENOENT || errno != EBADF)
		_exit(10);
	r = log_errno(LOG_WARNING, -EACCES, "open: %m");
	if (r != -EACCES)
		_exit(11);
	/* Returned even when the level is filtered out. */
	if (log_errno(LOG_DEBUG, -EIO, "dropped: %m") != -EIO)
		_exit(12);
	errno = EPERM;
	log_info("plain %%m uses errno: %m");
	log_info("two\nlines");
}

static void test_log_errno(void **state)
{
	char *out = capture(J_NONE, LOG_INFO, emit_errno);

	assert_string_equal(out, "rcupoold: error: bind /run/x.sock: "
				 "No such file or directory\n"
				 "rcupoold: warning: open: Permission denied\n"
				 "rcupoold: plain %m uses errno: "
				 "Operation not permitted\n"
				 "rcupoold: two lines\n");
	free(out);
	out = capture(J_MATCH, LOG_INFO, emit_errno);
	assert_string_equal(out,
			    "<3>bind /run/x.sock: No such file or directory\n"
			    "<4>open: Permission denied\n"
			    "<6>plain %m uses errno: Operation not permitted\n"
			    "<6>two lines\n");
	free(out);
}

static void emit_long(void)
{
	static char big[8192];

	memset(big, 'x', sizeof(big) - 1);
	log_info("%s", big);
}

static void test_log_long_line(void **state)
{
	char *out = capture(J_NONE, LOG_INFO, emit_long);
	size_t n = strlen(out);

	/* Truncated to one line, marked, newline-terminated. */
	assert_true(n > 100 && n < 8192);
	assert_int_equal(out[n - 1], '\n');
	assert_true(strncmp(out + n - 4, "...", 3) == 0);
	assert_ptr_equal(strchr(out, '\n'), out + n - 1);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_plain),
		cmocka_unit_test(test_log_journal),
		cmocka_unit_test(test_log_journal_mismatch),
		cmocka_unit_test(test_log_debug_level),
		cmocka_unit_test(test_log_errno),
		cmocka_unit_test(test_log_long_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
