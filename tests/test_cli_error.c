// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * rcupoolctl against a daemon that answers with PROTO_CMD_ERROR (what
 * rcupoold sends for a request it does not know or cannot parse, e.g. a
 * newer rcupoolctl's command): the real rcupoolctl parses the reply and
 * prints the daemon's message, exit 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "listen.h"
#include "proto.h"
#include "testd.h"
#include "tmpdir.h"

static void test_error_reply_printed(void **state)
{
	char dir[PATH_MAX / 2], sock[PATH_MAX], errpath[PATH_MAX],
		prog[PATH_MAX];
	char why[256], text[512] = "";
	struct proto_msg req;
	struct nl_msg *msg;
	struct pollfd pfd;
	void *buf = malloc(PROTO_MSG_MAX);
	int lfd, cfd, n, status, efd;
	pid_t pid;
	FILE *f;

	assert_non_null(buf);
	assert_int_equal(tmpdir_make(dir, sizeof(dir)), 0);
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	snprintf(errpath, sizeof(errpath), "%s/err", dir);
	lfd = listen_bind(sock, 0600, 4, why, sizeof(why));
	assert_true(lfd >= 0);
	testd_program("rcupoolctl", prog, sizeof(prog));

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		efd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		n = open("/dev/null", O_WRONLY);
		if (efd < 0 || n < 0)
			_exit(126);
		dup2(efd, STDERR_FILENO);
		dup2(n, STDOUT_FILENO);
		execl(prog, prog, "--socket", sock, "census", (char *)NULL);
		_exit(127);
	}
	/* listen_bind's socket is non-blocking: wait for rcupoolctl. */
	pfd = (struct pollfd){.fd = lfd, .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 10000), 1);
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(cfd >= 0);
	n = proto_recv(cfd, buf, PROTO_MSG_MAX, NULL, NULL);
	assert_true(n > 0);
	assert_int_equal(proto_parse(buf, (size_t)n, &req, why, sizeof(why)),
			 0);
	assert_int_equal(req.cmd, PROTO_CMD_CENSUS);
	/* As rcupoold answers a request it cannot handle. */
	req.cmd = PROTO_CMD_ERROR;
	assert_int_equal(proto_new_reply(&msg, &req, -EOPNOTSUPP,
					 "bad message: unknown command 42"),
			 0);
	assert_int_equal(proto_send(cfd, msg, NULL, 0), 0);
	nlmsg_free(msg);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(cfd);
	close(lfd);

	f = fopen(errpath, "r");
	assert_non_null(f);
	n = (int)fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n > 0 ? n : 0] = '\0';
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_string_equal(text,
			    "rcupoolctl: bad message: unknown command 42\n");
	tmpdir_remove(dir);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_reply_printed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
