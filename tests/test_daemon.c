// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * rcupoold end to end: the real daemon on a temporary socket, real client
 * processes attaching over it, and what the daemon must survive.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <netlink/attr.h>
#include <cmocka.h>

#include "attach.h"
#include "census.h"
#include "proto.h"
#include "stack.h"
#include "stats.h"
#include "testd.h"
#include "tmpdir.h"

#define SMALL_RESERVE                                                          \
	"[reserve]\npages_per_cpu = 64\nglobal_pages = 256\n"                  \
	"[balance]\ninterval = 10ms\ncensus_interval = 100ms\n"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static void test_attach_shows_in_clients(void **state)
{
	struct testd t;
	struct attach a;
	struct proto_msg m;
	struct stats_row row;
	struct nlattr *nla;
	char why[256];
	void *buf = NULL;
	int found = 0;

	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, NULL), 0);
	if (attach_open(t.sock, "attach-test", 0, 0, &a, why, sizeof(why)) < 0)
		fail_msg("attach: %s", why);
	assert_true(a.seg.npages >= 256);
	assert_true(a.kick_fd >= 0);
	assert_string_equal(a.seg.slot[a.slot].name, "attach-test");
	assert_int_equal(atomic_load(&a.seg.slot[a.slot].pid), getpid());

	/* Take three pages as a client does; the daemon reports them held. */
	uint32_t pages[3];

	for (int i = 0; i < 3; i++) {
		assert_int_equal(stack_pop(&a.seg, &a.seg.global->free, &pages[i]),
				 0);
		atomic_store(&a.seg.owner[pages[i]], seg_owner_of_slot(a.slot));
	}
	assert_int_equal(testd_call(t.sock, PROTO_CMD_GET_CLIENTS, NULL, &m,
				    &buf, why, sizeof(why)),
			 0);
	proto_for_each(nla, &m, PROTO_A_CLIENT)
	{
		assert_int_equal(stats_parse(&stats_client, nla, &row), 0);
		assert_string_equal(row.s[PROTO_CLIENT_NAME], "attach-test");
		assert_int_equal(row.u[PROTO_CLIENT_PID], getpid());
		assert_int_equal(row.u[PROTO_CLIENT_HELD], 3);
		found++;
	}
	free(buf);
	assert_int_equal(found, 1);
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_CLIENTS), 1);
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_PAGES_HELD), 3);

	/* DETACH takes back what the slot still owns. */
	attach_close(&a);
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_CLIENTS), 0);
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_PAGES_FREE),
			 testd_status_field(t.sock, PROTO_STATUS_PAGES_TOTAL));
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_PAGES_RECLAIMED),
			 3);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

/* A client that takes pages (one lost in transit) and waits to be killed. */
static void client_hold_pages(const char *sock, int ready_fd)
{
	struct attach a;
	char why[256];
	uint32_t page = 0;

	if (attach_open(sock, "victim", 0, 0, &a, why, sizeof(why)) < 0)
		_exit(1);
	for (int i = 0; i < 40; i++) {
		if (stack_pop(&a.seg, &a.seg.global->free, &page) < 0)
			_exit(2);
		atomic_store(&a.seg.owner[page], seg_owner_of_slot(a.slot));
		atomic_fetch_add(&a.seg.slot[a.slot].held, 1);
	}
	/* Popped and never owned: what a kill between the two leaves. */
	if (stack_pop(&a.seg, &a.seg.global->free, &page) < 0)
		_exit(3);
	if (write(ready_fd, "x", 1) != 1)
		_exit(4);
	pause();
	_exit(0);
}

static void test_kill9_client_pages_come_back(void **state)
{
	struct testd t;
	struct attach me;
	struct census c;
	char why[256], ch;
	int p[2];
	pid_t pid;
	uint64_t total, t0;

	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, NULL), 0);
	total = testd_status_field(t.sock, PROTO_STATUS_PAGES_TOTAL);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		client_hold_pages(t.sock, p[1]);
	assert_int_equal(read(p[0], &ch, 1), 1);
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_PAGES_HELD), 40);

	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	t0 = now_ms();
	/* Every page back within a second: reclaim at EOF, census for the lost one. */
	while (testd_status_field(t.sock, PROTO_STATUS_PAGES_FREE) != total &&
	       now_ms() - t0 < 1000)
		sleep_ms(10);
	print_message("# all pages back %llu ms after kill -9\n",
		      (unsigned long long)(now_ms() - t0));
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_PAGES_FREE),
			 total);
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_PAGES_RECLAIMED),
			 40);
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_PAGES_REPAIRED),
			 1);
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_CLIENTS), 0);

	/* And the census, from a client's own mapping, is clean. */
	assert_int_equal(attach_open(t.sock, "checker", 0, 0, &me, why,
				     sizeof(why)),
			 0);
	assert_int_equal(census_take(&me.seg, &c), 0);
	assert_int_equal(c.free, total);
	assert_int_equal(c.lost + c.duplicated + c.bad + c.held, 0);
	census_release(&c);
	attach_close(&me);
	close(p[0]);
	close(p[1]);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

/* Send raw bytes on a fresh connection; what comes back, if anything. */
static int send_raw(const char *sock, const void *bytes, size_t len,
		    struct proto_msg *reply, void *buf, char *why)
{
	int fd = proto_connect(sock), n, r = -ECONNRESET;
	struct pollfd pfd;

	assert_true(fd >= 0);
	if (send(fd, bytes, len, MSG_NOSIGNAL) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	pfd = (struct pollfd){.fd = fd, .events = POLLIN};
	if (poll(&pfd, 1, 5000) == 1) {
		n = proto_recv(fd, buf, PROTO_MSG_MAX, NULL, NULL);
		r = n < 0 ? n : proto_parse(buf, (size_t)n, reply, why, 256);
		if (r == 0)
			r = reply->error;
	} else {
		r = -ETIMEDOUT;
	}
	close(fd);
	return r;
}

static size_t good_header(void *buf, uint8_t cmd, size_t payload)
{
	struct nlmsghdr *nlh = buf;
	struct genlmsghdr *g = (void *)((char *)buf + NLMSG_HDRLEN);

	memset(buf, 0, NLMSG_HDRLEN + GENL_HDRLEN);
	nlh->nlmsg_len = NLMSG_HDRLEN + GENL_HDRLEN + payload;
	nlh->nlmsg_type = PROTO_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = 77;
	g->cmd = cmd;
	g->version = PROTO_VERSION;
	return nlh->nlmsg_len;
}

static void test_malformed_messages(void **state)
{
	struct testd t;
	struct proto_msg m;
	char why[256];
	uint32_t *msg = calloc(1, 1 << 20);
	void *buf = malloc(PROTO_MSG_MAX);
	size_t len;
	int r;

	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, NULL), 0);

	/* Truncated header: no reply, connection closed. */
	good_header(msg, PROTO_CMD_GET_STATUS, 0);
	r = send_raw(t.sock, msg, 10, &m, buf, why);
	assert_int_equal(r, -ECONNRESET);

	/* An attribute whose nla_len overruns the message: an error reply. */
	len = good_header(msg, PROTO_CMD_ATTACH, 8);
	struct nlattr *nla = (void *)((char *)msg + NLMSG_HDRLEN + GENL_HDRLEN);

	nla->nla_type = PROTO_A_MIN_PAGES;
	nla->nla_len = 200;
	r = send_raw(t.sock, msg, len, &m, buf, why);
	assert_int_equal(r, -EBADMSG);
	assert_int_equal(m.seq, 77);
	assert_non_null(strstr(m.message, "bad message"));

	/* Wrong attribute length: MIN_PAGES of 2 bytes. */
	nla->nla_len = NLA_HDRLEN + 2;
	len = good_header(msg, PROTO_CMD_ATTACH, NLA_ALIGN(nla->nla_len));
	r = send_raw(t.sock, msg, len, &m, buf, why);
	assert_int_equal(r, -EBADMSG);
	assert_non_null(strstr(m.message, "MIN_PAGES"));

	/* Wrong attribute type: a string where a u32 goes, as NAME of 4 bytes
	 * with no NUL. */
	nla->nla_type = PROTO_A_NAME;
	nla->nla_len = NLA_HDRLEN + 4;
	memcpy((char *)nla + NLA_HDRLEN, "abcd", 4);
	len = good_header(msg, PROTO_CMD_ATTACH, NLA_ALIGN(nla->nla_len));
	r = send_raw(t.sock, msg, len, &m, buf, why);
	assert_true(r == -EBADMSG || r == -EINVAL);

	/* Unknown commands (0, 80, 200) and ERROR sent as a request: answered
	 * with a PROTO_CMD_ERROR reply any client parses, with the seq and
	 * the daemon's message. */
	static const uint8_t unknown[] = {0, 80, 200, PROTO_CMD_ERROR};
	for (size_t i = 0; i < sizeof(unknown); i++) {
		len = good_header(msg, unknown[i], 0);
		r = send_raw(t.sock, msg, len, &m, buf, why);
		assert_int_equal(r, -EOPNOTSUPP);
		assert_int_equal(m.cmd, PROTO_CMD_ERROR);
		assert_int_equal(m.seq, 77);
		assert_non_null(strstr(m.message, "bad message"));
	}
	/* A malformed request too (the MIN_PAGES case above): ERROR. */
	nla->nla_type = PROTO_A_MIN_PAGES;
	nla->nla_len = NLA_HDRLEN + 2;
	len = good_header(msg, PROTO_CMD_ATTACH, NLA_ALIGN(nla->nla_len));
	r = send_raw(t.sock, msg, len, &m, buf, why);
	assert_int_equal(r, -EBADMSG);
	assert_int_equal(m.cmd, PROTO_CMD_ERROR);

	/* 1 MiB: too big to receive; connection closed, nothing else. */
	len = good_header(msg, PROTO_CMD_GET_STATUS, (1 << 20) - 20);
	r = send_raw(t.sock, msg, 1 << 20, &m, buf, why);
	assert_true(r == -ECONNRESET || r == -EMSGSIZE || r == -ENOBUFS);

	/* Garbage. */
	for (int i = 0; i < 64; i++)
		((uint32_t *)msg)[i] = 0xdeadbeef * (uint32_t)(i + 1);
	r = send_raw(t.sock, msg, 256, &m, buf, why);
	assert_int_equal(r, -ECONNRESET);

	/* A SET_LIMITS with no SETTING. */
	len = good_header(msg, PROTO_CMD_SET_LIMITS, 0);
	r = send_raw(t.sock, msg, len, &m, buf, why);
	assert_true(r < 0);

	/* Still serving the next client. */
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_CLIENTS), 0);
	assert_true(testd_status_field(t.sock, PROTO_STATUS_PAGES_TOTAL) > 0);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
	free(msg);
	free(buf);
}

static int as_nobody(const char *sock, uint8_t cmd, const char *const *settings,
		     char *message, size_t len)
{
	int p[2], status, r;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct proto_msg m;
		void *buf = NULL;
		char msg[512] = "";

		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 ||
		    setuid(65534) < 0)
			_exit(100);
		r = testd_call(sock, cmd, settings, &m, &buf, msg, sizeof(msg));
		if (write(p[1], msg, strlen(msg) + 1) < 0)
			_exit(101);
		_exit(r < 0 ? -r : 0);
	}
	close(p[1]);
	ssize_t n = read(p[0], message, len - 1);

	message[n > 0 ? n : 0] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_permissions(void **state)
{
	struct testd t;
	const char *set[] = {"limits.client_max_pages=10", NULL};
	char msg[512];

	if (geteuid() != 0)
		skip();
	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, NULL), 0);
	/* The socket is 0666 by default so that anyone may read. */
	assert_int_equal(chmod(t.dir, 0755), 0);
	assert_int_equal(as_nobody(t.sock, PROTO_CMD_GET_STATUS, NULL, msg,
				   sizeof(msg)),
			 0);
	assert_int_equal(as_nobody(t.sock, PROTO_CMD_SET_LIMITS, set, msg,
				   sizeof(msg)),
			 EPERM);
	assert_non_null(strstr(msg, "uid 65534"));
	assert_non_null(strstr(msg, "may not SET_LIMITS"));
	assert_int_equal(as_nobody(t.sock, PROTO_CMD_RESET_STATS, NULL, msg,
				   sizeof(msg)),
			 EPERM);
	assert_int_equal(as_nobody(t.sock, PROTO_CMD_RELOAD, NULL, msg,
				   sizeof(msg)),
			 EPERM);
	assert_int_equal(as_nobody(t.sock, PROTO_CMD_ATTACH, NULL, msg,
				   sizeof(msg)),
			 EACCES);
	assert_non_null(strstr(msg, "may not attach"));
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

static void test_set_limits_live(void **state)
{
	struct testd t;
	struct attach a;
	struct proto_msg m;
	char why[512];
	void *buf = NULL;
	const char *set[] = {"limits.client_max_pages=20",
			     "balance.interval=20ms", NULL};
	const char *bad[] = {"reserve.pages_per_cpu=10", NULL};
	const char *worse[] = {"balance.low=300%", NULL};

	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, NULL), 0);
	assert_int_equal(attach_open(t.sock, "tuned", 0, 0, &a, why, sizeof(why)),
			 0);
	assert_int_not_equal(atomic_load(&a.seg.slot[a.slot].max_pages), 20);
	assert_int_equal(testd_call(t.sock, PROTO_CMD_SET_LIMITS, set, &m, &buf,
				    why, sizeof(why)),
			 0);
	free(buf);
	/* Visible in the segment at once, for the client's next request. */
	assert_int_equal(atomic_load(&a.seg.slot[a.slot].max_pages), 20);

	assert_int_equal(testd_call(t.sock, PROTO_CMD_SET_LIMITS, bad, &m, &buf,
				    why, sizeof(why)),
			 -EINVAL);
	free(buf);
	assert_non_null(strstr(why, "reserve.pages_per_cpu cannot change"));
	assert_int_equal(testd_call(t.sock, PROTO_CMD_SET_LIMITS, worse, &m,
				    &buf, why, sizeof(why)),
			 -EINVAL);
	free(buf);
	assert_non_null(strstr(why, "rcupoolctl set: [balance] low"));
	assert_int_equal(atomic_load(&a.seg.slot[a.slot].max_pages), 20);
	attach_close(&a);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

static const char *limit_value(const struct proto_msg *m, const char *want)
{
	struct nlattr *nla;

	proto_for_each(nla, m, PROTO_A_SETTING)
	{
		const char *k, *v;

		if (proto_setting_get(nla, &k, &v) == 0 && !strcmp(k, want))
			return v;
	}
	return NULL;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_sighup_reload(void **state)
{
	struct testd t;
	struct proto_msg m;
	char why[512];
	void *buf = NULL;
	const char *v;

	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, NULL), 0);
	write_file(t.conf, SMALL_RESERVE "[limits]\nclient_min_pages = 7\n");
	assert_int_equal(kill(t.pid, SIGHUP), 0);
	for (int i = 0; i < 200 && !testd_log_has(&t, "reloaded"); i++)
		sleep_ms(10);
	assert_int_equal(testd_call(t.sock, PROTO_CMD_GET_LIMITS, NULL, &m, &buf,
				    why, sizeof(why)),
			 0);
	v = limit_value(&m, "limits.client_min_pages");
	assert_non_null(v);
	assert_string_equal(v, "7");
	free(buf);

	/* A broken file: the old configuration stays, and the log says why. */
	write_file(t.conf, SMALL_RESERVE "[limits]\nclient_min_pages = 9\n"
					 "bogus_key = 1\n");
	assert_int_equal(kill(t.pid, SIGHUP), 0);
	for (int i = 0; i < 200 && !testd_log_has(&t, "reload failed"); i++)
		sleep_ms(10);
	assert_true(testd_log_has(&t, "keeping the running configuration"));
	assert_true(testd_log_has(&t, "rcupoold.conf:9: [limits] bogus_key"));
	assert_int_equal(testd_call(t.sock, PROTO_CMD_GET_LIMITS, NULL, &m, &buf,
				    why, sizeof(why)),
			 0);
	assert_string_equal(limit_value(&m, "limits.client_min_pages"), "7");
	free(buf);
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_RELOADS), 1);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

/* A NOTIFY_SOCKET listener: what the daemon tells systemd. */
static void test_sd_notify(void **state)
{
	struct testd t;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[80], env[300], got[8192] = "", buf[1024];
	const char *envs[] = {env, NULL};
	int fd;
	uint64_t t0;

	assert_int_equal(tmpdir_make(dir, sizeof(dir)), 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", dir);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", sa.sun_path);

	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, envs), 0);
	kill(t.pid, SIGHUP);
	t0 = now_ms();
	while (now_ms() - t0 < 3000 && !strstr(got, "RELOADING=1\nMONOTONIC") ) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

		if (n > 0) {
			buf[n] = '\0';
			strncat(got, buf, sizeof(got) - strlen(got) - 2);
			strcat(got, "|");
		} else {
			sleep_ms(10);
		}
	}
	/* The READY after the reload follows quickly. */
	sleep_ms(200);
	for (ssize_t n; (n = recv(fd, buf, sizeof(buf) - 1, 0)) > 0;) {
		buf[n] = '\0';
		strncat(got, buf, sizeof(got) - strlen(got) - 2);
		strcat(got, "|");
	}
	print_message("# notify: %.300s\n", got);
	assert_non_null(strstr(got, "READY=1"));
	assert_non_null(strstr(got, "STATUS="));
	assert_non_null(strstr(got, "pages free"));
	assert_non_null(strstr(got, "RELOADING=1\nMONOTONIC_USEC="));
	assert_non_null(strstr(strstr(got, "RELOADING=1"), "READY=1\nMONOTONIC_USEC="));
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
	close(fd);
	tmpdir_remove(dir);
}

static void test_socket_activation(void **state)
{
	char dir[256], sock[300], prog[PATH_MAX], conf[300];
	pid_t pid;
	int status;
	uint64_t total = UINT64_MAX;

	if (access("/usr/bin/systemd-socket-activate", X_OK) < 0)
		skip();
	assert_int_equal(tmpdir_make(dir, sizeof(dir)), 0);
	snprintf(sock, sizeof(sock), "%s/activated.sock", dir);
	snprintf(conf, sizeof(conf), "%s/rcupoold.conf", dir);
	write_file(conf, SMALL_RESERVE);
	testd_program("rcupoold", prog, sizeof(prog));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDERR_FILENO);
		execl("/usr/bin/systemd-socket-activate",
		      "systemd-socket-activate", "--seqpacket", "-l", sock, prog,
		      "--config", conf, (char *)NULL);
		_exit(127);
	}
	/* The listener is systemd-socket-activate's; the daemon starts on
	 * the first connection and answers it. */
	for (int i = 0; i < 500 && total == UINT64_MAX; i++) {
		total = testd_status_field(sock, PROTO_STATUS_PAGES_TOTAL);
		if (total == UINT64_MAX)
			sleep_ms(10);
	}
	assert_int_equal(total, 64 * sysconf(_SC_NPROCESSORS_CONF) + 256);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	tmpdir_remove(dir);
}

static void test_second_instance_refused(void **state)
{
	struct testd t;
	char prog[PATH_MAX], cmd[PATH_MAX * 3];

	assert_int_equal(testd_start(&t, SMALL_RESERVE, NULL, NULL), 0);
	snprintf(cmd, sizeof(cmd), "%s --config %s --socket %s 2>%s/second",
		 testd_program("rcupoold", prog, sizeof(prog)), t.conf, t.sock,
		 t.dir);
	assert_int_equal(WEXITSTATUS(system(cmd)), 1);
	snprintf(cmd, sizeof(cmd),
		 "grep -q 'another rcupoold is already listening' %s/second",
		 t.dir);
	assert_int_equal(system(cmd), 0);
	/* The first is unharmed. */
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_CLIENTS), 0);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

static void test_client_section_and_kick(void **state)
{
	struct testd t;
	struct attach a, b;
	char why[512];
	uint64_t kicks;

	assert_int_equal(testd_start(&t, SMALL_RESERVE
				  "[client special]\nmin_pages = 3\n"
				  "max_pages = 5\n",
				  NULL, NULL),
			 0);
	/* [client NAME] limits apply to a client attaching under that name. */
	assert_int_equal(attach_open(t.sock, "special", 0, 0, &a, why,
				     sizeof(why)),
			 0);
	assert_int_equal(atomic_load(&a.seg.slot[a.slot].min_pages), 3);
	assert_int_equal(atomic_load(&a.seg.slot[a.slot].max_pages), 5);
	assert_int_equal(a.max_pages, 5);
	/* A client may ask for less than the config allows, never more. */
	assert_int_equal(attach_open(t.sock, "special", 1, 100, &b, why,
				     sizeof(why)),
			 0);
	assert_int_equal(atomic_load(&b.seg.slot[b.slot].min_pages), 1);
	assert_int_equal(atomic_load(&b.seg.slot[b.slot].max_pages), 5);
	attach_close(&b);

	/* A depletion kick wakes the daemon, and is counted. */
	kicks = testd_status_field(t.sock, PROTO_STATUS_KICKS);
	assert_int_equal(attach_kick(&a), 0);
	for (int i = 0; i < 200 &&
			testd_status_field(t.sock, PROTO_STATUS_KICKS) == kicks;
	     i++)
		sleep_ms(5);
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_KICKS),
			 kicks + 1);
	attach_close(&a);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

static void test_census_on_demand(void **state)
{
	struct testd t;
	struct attach a;
	struct proto_msg m;
	char why[512];
	void *buf = NULL;
	uint32_t page = 0;

	/* No timer census: only the one asked for. */
	assert_int_equal(testd_start(&t, SMALL_RESERVE, (const char *[]){
		"-o", "balance.census_interval=0", NULL}, NULL),
			 0);
	assert_int_equal(attach_open(t.sock, "loser", 0, 0, &a, why,
				     sizeof(why)),
			 0);
	/* A page taken and never recorded: on no list, owned by nobody. */
	assert_int_equal(stack_pop(&a.seg, &a.seg.global->free, &page), 0);
	assert_int_equal(testd_call(t.sock, PROTO_CMD_CENSUS, NULL, &m, &buf,
				    why, sizeof(why)),
			 0);
	if (!strstr(m.message, "1 on no list") ||
	    !strstr(m.message, "0 returned now"))
		fail_msg("first census: %s", m.message);
	free(buf);
	assert_int_equal(testd_call(t.sock, PROTO_CMD_CENSUS, NULL, &m, &buf,
				    why, sizeof(why)),
			 0);
	if (!strstr(m.message, "0 on no list") ||
	    !strstr(m.message, "1 returned now"))
		fail_msg("second census: %s", m.message);
	free(buf);
	assert_int_equal(testd_status_field(t.sock, PROTO_STATUS_PAGES_REPAIRED),
			 1);
	attach_close(&a);
	assert_int_equal(testd_stop(&t), 0);
	testd_cleanup(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attach_shows_in_clients),
		cmocka_unit_test(test_kill9_client_pages_come_back),
		cmocka_unit_test(test_malformed_messages),
		cmocka_unit_test(test_permissions),
		cmocka_unit_test(test_set_limits_live),
		cmocka_unit_test(test_sighup_reload),
		cmocka_unit_test(test_sd_notify),
		cmocka_unit_test(test_socket_activation),
		cmocka_unit_test(test_second_instance_refused),
		cmocka_unit_test(test_client_section_and_kick),
		cmocka_unit_test(test_census_on_demand),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
