// SPDX-License-Identifier: LGPL-2.1-or-later
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include <netlink/errno.h>
#include <netlink/genl/genl.h>

#include "proto.h"

/* --- helpers ------------------------------------------------------------- */

static void *rbuf; /* PROTO_MSG_MAX, malloc'ed: aligned */
static void *rbuf2;

static int setup(void **state)
{
	rbuf = malloc(PROTO_MSG_MAX);
	rbuf2 = malloc(PROTO_MSG_MAX);
	return rbuf && rbuf2 ? 0 : -1;
}

static int teardown(void **state)
{
	free(rbuf);
	free(rbuf2);
	return 0;
}

static void pair(int sv[2])
{
	assert_int_equal(
		socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(proto_socket_buffers(sv[0]), 0);
	assert_int_equal(proto_socket_buffers(sv[1]), 0);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

static struct nl_msg *new_msg(uint8_t cmd, uint32_t seq, bool request)
{
	struct nl_msg *m;

	assert_int_equal(proto_new(&m, cmd, seq, request), 0);
	assert_non_null(m);
	return m;
}

/* Copy msg into the aligned rbuf; returns its length. */
static size_t to_buf(struct nl_msg *m)
{
	struct nlmsghdr *nlh = nlmsg_hdr(m);

	memcpy(rbuf, nlh, nlh->nlmsg_len);
	return nlh->nlmsg_len;
}

static struct genlmsghdr *ghdr_of(void *buf)
{
	return nlmsg_data((struct nlmsghdr *)buf);
}

/* Parse m (copied to rbuf, optionally with a different length). */
static int parse_as(struct nl_msg *m, long delta, struct proto_msg *out,
		    char *why, size_t whylen)
{
	size_t len = to_buf(m);

	return proto_parse(rbuf, len + delta, out, why, whylen);
}

#define assert_why(why, needle)                                                \
	do {                                                                   \
		if (!strstr((why), (needle)))                                  \
			fail_msg("why \"%s\" does not mention \"%s\"", (why),  \
				 (needle));                                    \
	} while (0)

/* --- names and errno map ------------------------------------------------- */

static void test_names(void **state)
{
	assert_string_equal(proto_cmd_name(PROTO_CMD_ATTACH), "ATTACH");
	assert_string_equal(proto_cmd_name(PROTO_CMD_SET_LIMITS), "SET_LIMITS");
	assert_string_equal(proto_cmd_name(PROTO_CMD_RELOAD), "RELOAD");
	assert_null(proto_cmd_name(0));
	assert_null(proto_cmd_name(77));
	assert_null(proto_cmd_name(PROTO_CMD_MAX + 1));
	for (int c = 1; c <= PROTO_CMD_MAX; c++)
		assert_non_null(proto_cmd_name(c));
	assert_string_equal(proto_attr_name(PROTO_A_MIN_PAGES), "MIN_PAGES");
	assert_null(proto_attr_name(PROTO_A_MAX + 1));
	assert_true(PROTO_FAMILY >= NLMSG_MIN_TYPE);
	assert_int_equal(PROTO_CMD_ATTACH, 1);
}

static void test_errno_map(void **state)
{
	assert_int_equal(proto_errno(0), 0);
	assert_int_equal(proto_errno(-NLE_NOMEM), -ENOMEM);
	assert_int_equal(proto_errno(NLE_NOMEM), -ENOMEM);
	assert_int_equal(proto_errno(-NLE_RANGE), -EBADMSG);
	assert_int_equal(proto_errno(-NLE_INVAL), -EBADMSG);
	assert_int_equal(proto_errno(-NLE_MSG_TRUNC), -EBADMSG);
	assert_int_equal(proto_errno(-NLE_MSG_TOOSHORT), -EBADMSG);
	assert_int_equal(proto_errno(-NLE_ATTRSIZE), -EBADMSG);
	assert_int_equal(proto_errno(-NLE_AGAIN), -EAGAIN);
	assert_int_equal(proto_errno(-NLE_PERM), -EPERM);
	assert_int_equal(proto_errno(-NLE_FAILURE), -EIO);
	assert_int_equal(proto_errno(-1000), -EIO);
	for (int e = 1; e <= NLE_MAX; e++) {
		int r = proto_errno(-e);

		assert_true(r < 0 && r >= -4095);
	}
}

/* --- round trips --------------------------------------------------------- */

static void put_request_attrs(struct nl_msg *m, uint8_t cmd)
{
	if (cmd == PROTO_CMD_ATTACH) {
		assert_int_equal(nla_put_string(m, PROTO_A_NAME, "bench"), 0);
		assert_int_equal(nla_put_u32(m, PROTO_A_MIN_PAGES, 16), 0);
		assert_int_equal(nla_put_u32(m, PROTO_A_MAX_PAGES, 4096), 0);
	} else if (cmd == PROTO_CMD_CHUNK_GET) {
		assert_int_equal(nla_put_u32(m, PROTO_A_COUNT, 8), 0);
		assert_int_equal(nla_put_u32(m, PROTO_A_CPU_ID, PROTO_CPU_ANY),
				 0);
	} else if (cmd == PROTO_CMD_CHUNK_PUT) {
		for (uint64_t id = 1; id <= 3; id++)
			assert_int_equal(nla_put_u64(m, PROTO_A_CHUNK_ID, id), 0);
	} else if (cmd == PROTO_CMD_SET_LIMITS) {
		assert_int_equal(proto_put_setting(m, "cpu.target", "64"), 0);
		assert_int_equal(proto_put_setting(m, "cpu.low", "16"), 0);
		assert_int_equal(proto_put_setting(m, "empty", ""), 0);
	}
}

static void check_request_attrs(const struct proto_msg *r, uint8_t cmd)
{
	struct nlattr *nla;
	const char *k, *v;
	int n = 0;

	if (cmd == PROTO_CMD_ATTACH) {
		assert_string_equal(nla_get_string(r->tb[PROTO_A_NAME]),
				    "bench");
		assert_int_equal(nla_get_u32(r->tb[PROTO_A_MIN_PAGES]), 16);
		assert_int_equal(nla_get_u32(r->tb[PROTO_A_MAX_PAGES]), 4096);
	} else if (cmd == PROTO_CMD_CHUNK_GET) {
		assert_int_equal(nla_get_u32(r->tb[PROTO_A_COUNT]), 8);
		assert_int_equal(nla_get_u32(r->tb[PROTO_A_CPU_ID]),
				 PROTO_CPU_ANY);
	} else if (cmd == PROTO_CMD_CHUNK_PUT) {
		proto_for_each(nla, r, PROTO_A_CHUNK_ID)
			assert_true(nla_get_u64(nla) == (uint64_t)++n);
		assert_int_equal(n, 3);
	} else if (cmd == PROTO_CMD_SET_LIMITS) {
		proto_for_each(nla, r, PROTO_A_SETTING)
		{
			assert_int_equal(proto_setting_get(nla, &k, &v), 0);
			switch (n++) {
			case 0:
				assert_string_equal(k, "cpu.target");
				assert_string_equal(v, "64");
				break;
			case 1:
				assert_string_equal(k, "cpu.low");
				assert_string_equal(v, "16");
				break;
			default:
				assert_string_equal(k, "empty");
				assert_string_equal(v, "");
			}
		}
		assert_int_equal(n, 3);
	} else {
		for (int a = 1; a <= PROTO_A_MAX; a++)
			assert_null(r->tb[a]);
	}
}

static void put_reply_attrs(struct nl_msg *m, uint8_t cmd)
{
	struct nlattr *nest;

	switch (cmd) {
	case PROTO_CMD_ATTACH:
		assert_int_equal(nla_put_u32(m, PROTO_A_SLOT, 3), 0);
		assert_int_equal(nla_put_u64(m, PROTO_A_GENERATION,
					     0x123456789abcdef0ULL),
				 0);
		break;
	case PROTO_CMD_CHUNK_GET:
		for (int c = 0; c < 2; c++) {
			nest = nla_nest_start(m, PROTO_A_CHUNK);
			assert_non_null(nest);
			assert_int_equal(nla_put_u64(m, PROTO_CHUNK_ID, 10 + c), 0);
			assert_int_equal(nla_put_u32(m, PROTO_CHUNK_PAGES, 16), 0);
			assert_int_equal(nla_put_u32(m, PROTO_CHUNK_CPU, c), 0);
			assert_int_equal(nla_nest_end(m, nest), 0);
		}
		break;
	case PROTO_CMD_GET_LIMITS:
		assert_int_equal(proto_put_setting(m, "max_pages", "1000"), 0);
		assert_int_equal(proto_put_setting(m, "min_pages", "10"), 0);
		break;
	case PROTO_CMD_GET_STATUS:
	case PROTO_CMD_GET_STATS:
		nest = nla_nest_start(m, PROTO_A_STATUS);
		assert_non_null(nest);
		assert_int_equal(nla_put_u64(m, 1, 1000), 0);
		assert_int_equal(nla_nest_end(m, nest), 0);
		for (int c = 0; c < 2; c++) {
			nest = nla_nest_start(m, PROTO_A_CPU);
			assert_non_null(nest);
			assert_int_equal(nla_put_u32(m, 1, c), 0);
			assert_int_equal(nla_nest_end(m, nest), 0);
		}
		break;
	case PROTO_CMD_GET_CLIENTS:
		for (int c = 0; c < 3; c++) {
			nest = nla_nest_start(m, PROTO_A_CLIENT);
			assert_non_null(nest);
			assert_int_equal(nla_put_u32(m, 1, 100 + c), 0);
			assert_int_equal(nla_put_string(m, 2, "x"), 0);
			assert_int_equal(nla_nest_end(m, nest), 0);
		}
		break;
	}
}

static void check_reply_attrs(const struct proto_msg *r, uint8_t cmd)
{
	struct nlattr *nla;
	const char *k, *v;
	int n = 0;

	switch (cmd) {
	case PROTO_CMD_ATTACH:
		assert_int_equal(nla_get_u32(r->tb[PROTO_A_SLOT]), 3);
		assert_true(nla_get_u64(r->tb[PROTO_A_GENERATION]) ==
			    0x123456789abcdef0ULL);
		break;
	case PROTO_CMD_GET_LIMITS:
		proto_for_each(nla, r, PROTO_A_SETTING)
		{
			assert_int_equal(proto_setting_get(nla, &k, &v), 0);
			assert_string_equal(k, n ? "min_pages" : "max_pages");
			n++;
		}
		assert_int_equal(n, 2);
		break;
	case PROTO_CMD_GET_STATUS:
	case PROTO_CMD_GET_STATS:
		assert_non_null(r->tb[PROTO_A_STATUS]);
		proto_for_each(nla, r, PROTO_A_CPU)
		{
			struct nlattr *in =
				nla_find(nla_data(nla), nla_len(nla), 1);

			assert_int_equal(nla_get_u32(in), n);
			n++;
		}
		assert_int_equal(n, 2);
		break;
	case PROTO_CMD_GET_CLIENTS:
		proto_for_each(nla, r, PROTO_A_CLIENT)
		{
			n++;
		}
		assert_int_equal(n, 3);
		break;
	case PROTO_CMD_CHUNK_GET:
		proto_for_each(nla, r, PROTO_A_CHUNK)
		{
			struct nlattr *in =
				nla_find(nla_data(nla), nla_len(nla),
					 PROTO_CHUNK_ID);

			assert_true(nla_get_u64(in) == (uint64_t)(10 + n));
			n++;
		}
		assert_int_equal(n, 2);
		break;
	}
}

static void test_roundtrip_commands(void **state)
{
	char why[256];
	int sv[2];

	pair(sv);
	for (uint8_t cmd = 1; cmd <= PROTO_CMD_MAX; cmd++) {
		struct proto_msg req, rep;
		struct nl_msg *m;
		int n;

		if (cmd == PROTO_CMD_ERROR || cmd == PROTO_CMD_RECALL)
			continue; /* a reply, a notification: never requests */
		m = new_msg(cmd, 1000 + cmd, true);
		put_request_attrs(m, cmd);
		assert_int_equal(proto_send(sv[0], m, NULL, 0), 0);
		nlmsg_free(m);

		n = proto_recv(sv[1], rbuf, PROTO_MSG_MAX, NULL, NULL);
		assert_true(n > 0);
		assert_int_equal(proto_parse(rbuf, n, &req, why, sizeof(why)),
				 0);
		assert_string_equal(why, "");
		assert_int_equal(req.cmd, cmd);
		assert_int_equal(req.version, PROTO_VERSION);
		assert_int_equal(req.seq, 1000 + cmd);
		assert_true(req.request);
		check_request_attrs(&req, cmd);

		assert_int_equal(proto_new_reply(&m, &req, 0, "done %s",
						 proto_cmd_name(cmd)),
				 0);
		put_reply_attrs(m, cmd);
		assert_int_equal(proto_send(sv[1], m, NULL, 0), 0);
		nlmsg_free(m);

		n = proto_recv(sv[0], rbuf2, PROTO_MSG_MAX, NULL, NULL);
		assert_true(n > 0);
		assert_int_equal(proto_parse(rbuf2, n, &rep, why, sizeof(why)),
				 0);
		assert_false(rep.request);
		assert_int_equal(rep.cmd, cmd);
		assert_int_equal(rep.seq, 1000 + cmd);
		assert_int_equal(rep.error, 0);
		assert_int_equal(nla_get_u32(rep.tb[PROTO_A_ERROR]), 0);
		assert_true(strncmp(rep.message, "done ", 5) == 0);
		assert_string_equal(rep.message + 5, proto_cmd_name(cmd));
		check_reply_attrs(&rep, cmd);
	}
	close(sv[0]);
	close(sv[1]);
}

static void test_reply_error(void **state)
{
	struct proto_msg req = {.cmd = PROTO_CMD_SET_LIMITS, .seq = 9};
	struct proto_msg rep;
	char why[256], big[2000];
	struct nl_msg *m;

	assert_int_equal(proto_new_reply(&m, &req, -EPERM, "not allowed: %s",
					 "uid 1000"),
			 0);
	assert_int_equal(parse_as(m, 0, &rep, why, sizeof(why)), 0);
	nlmsg_free(m);
	assert_int_equal(rep.error, -EPERM);
	assert_int_equal(nla_get_u32(rep.tb[PROTO_A_ERROR]), EPERM);
	assert_string_equal(rep.message, "not allowed: uid 1000");
	assert_int_equal(rep.seq, 9);
	assert_int_equal(rep.cmd, PROTO_CMD_SET_LIMITS);

	/* Empty message, success. */
	assert_int_equal(proto_new_reply(&m, &req, 0, NULL), 0);
	assert_int_equal(parse_as(m, 0, &rep, why, sizeof(why)), 0);
	nlmsg_free(m);
	assert_int_equal(rep.error, 0);
	assert_string_equal(rep.message, "");

	/* Too long: truncated to fit MESSAGE's maxlen. */
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(proto_new_reply(&m, &req, -EINVAL, "%s", big), 0);
	assert_int_equal(parse_as(m, 0, &rep, why, sizeof(why)), 0);
	nlmsg_free(m);
	assert_int_equal(strlen(rep.message), PROTO_MESSAGE_MAX - 1);

	/* error must be 0 or -errno. */
	assert_int_equal(proto_new_reply(&m, &req, EPERM, "x"), -EINVAL);
	assert_null(m);
	assert_int_equal(proto_new_reply(&m, &req, -5000, "x"), -EINVAL);
	/* Unknown command. */
	assert_int_equal(proto_new(&m, 77, 1, true), -EINVAL);
	assert_int_equal(proto_new(&m, 0, 1, true), -EINVAL);
}

/* --- fd passing ---------------------------------------------------------- */

static void test_fd_passing(void **state)
{
	struct proto_msg rep;
	int sv[2], fds[2], got[PROTO_FDS_MAX];
	size_t ngot = PROTO_FDS_MAX;
	uint64_t v;
	char why[256], data[6];
	struct nl_msg *m;
	void *map;
	int n;

	pair(sv);
	fds[0] = memfd_create("proto-test", MFD_CLOEXEC);
	assert_true(fds[0] >= 0);
	assert_int_equal(ftruncate(fds[0], 4096), 0);
	assert_int_equal(pwrite(fds[0], "hello", 6, 100), 6);
	fds[1] = eventfd(0, EFD_CLOEXEC);
	assert_true(fds[1] >= 0);

	assert_int_equal(
		proto_new_reply(
			&m,
			&(struct proto_msg){.cmd = PROTO_CMD_ATTACH, .seq = 1},
			0, "attached"),
		0);
	assert_int_equal(proto_send(sv[1], m, fds, 2), 0);
	nlmsg_free(m);

	n = proto_recv(sv[0], rbuf, PROTO_MSG_MAX, got, &ngot);
	assert_true(n > 0);
	assert_int_equal(ngot, 2);
	assert_int_equal(proto_parse(rbuf, n, &rep, why, sizeof(why)), 0);
	assert_true(got[0] != fds[0] && got[1] != fds[1]);
	assert_true(fcntl(got[0], F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(got[1], F_GETFD) & FD_CLOEXEC);

	/* The memfd maps and shows what the sender wrote, both ways. */
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, got[0], 0);
	assert_true(map != MAP_FAILED);
	assert_string_equal((char *)map + 100, "hello");
	memcpy((char *)map + 200, "world", 6);
	assert_int_equal(pread(fds[0], data, 6, 200), 6);
	assert_string_equal(data, "world");
	munmap(map, 4096);

	/* The eventfd kicks the sender's copy. */
	v = 3;
	assert_int_equal(write(got[1], &v, sizeof(v)), sizeof(v));
	v = 0;
	assert_int_equal(read(fds[1], &v, sizeof(v)), sizeof(v));
	assert_int_equal(v, 3);

	for (int i = 0; i < 2; i++) {
		close(got[i]);
		close(fds[i]);
	}
	close(sv[0]);
	close(sv[1]);
}

static int send_raw_fds(int fd, const void *buf, size_t len, const int *fds,
			size_t nfds)
{
	char control[CMSG_SPACE(sizeof(int) * 16)] __attribute__((aligned(8)));
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;

	if (nfds) {
		memset(control, 0, sizeof(control));
		mh.msg_control = control;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static void test_unexpected_fds_closed(void **state)
{
	int sv[2], fds[12], got[PROTO_FDS_MAX], before, n;
	size_t ngot;
	struct nl_msg *m;
	char why[256];
	struct proto_msg msg;

	pair(sv);
	before = count_fds();
	m = new_msg(PROTO_CMD_GET_STATUS, 1, true);
	for (int i = 0; i < 12; i++) {
		fds[i] = eventfd(0, EFD_CLOEXEC);
		assert_true(fds[i] >= 0);
	}

	/* No fd expected: fds == NULL. */
	assert_int_equal(proto_send(sv[0], m, fds, 2), 0);
	assert_int_equal(proto_recv(sv[1], rbuf, PROTO_MSG_MAX, NULL, NULL),
			 -EBADMSG);
	/* Capacity 1, 3 sent. */
	assert_int_equal(proto_send(sv[0], m, fds, 3), 0);
	ngot = 1;
	assert_int_equal(proto_recv(sv[1], rbuf, PROTO_MSG_MAX, got, &ngot),
			 -EBADMSG);
	assert_int_equal(ngot, 0);
	/* More than PROTO_FDS_MAX: control data truncated (MSG_CTRUNC). */
	assert_int_equal(proto_send(sv[0], m, fds, PROTO_FDS_MAX + 1), -EINVAL);
	assert_int_equal(send_raw_fds(sv[0], nlmsg_hdr(m),
				      nlmsg_hdr(m)->nlmsg_len, fds, 12),
			 0);
	ngot = PROTO_FDS_MAX;
	assert_int_equal(proto_recv(sv[1], rbuf, PROTO_MSG_MAX, got, &ngot),
			 -EBADMSG);
	assert_int_equal(ngot, 0);

	/* The channel still works afterwards, with expected fds. */
	assert_int_equal(proto_send(sv[0], m, fds, 1), 0);
	ngot = 1;
	n = proto_recv(sv[1], rbuf, PROTO_MSG_MAX, got, &ngot);
	assert_true(n > 0);
	assert_int_equal(ngot, 1);
	assert_int_equal(proto_parse(rbuf, n, &msg, why, sizeof(why)), 0);
	close(got[0]);
	nlmsg_free(m);

	for (int i = 0; i < 12; i++)
		close(fds[i]);
	assert_int_equal(count_fds(), before);

	/* EOF: the peer closed, a pending fd-less read sees -ECONNRESET. */
	close(sv[0]);
	assert_int_equal(proto_recv(sv[1], rbuf, PROTO_MSG_MAX, NULL, NULL),
			 -ECONNRESET);
	close(sv[1]);
}

/* --- size limits --------------------------------------------------------- */

static void test_msgsize(void **state)
{
	size_t big = 1024 * 1024;
	int sv[2], fd, before, n, sndbuf = 4 * 1024 * 1024;
	struct proto_msg msg;
	struct nl_msg *m;
	char why[256];
	char *junk;
	int r;

	pair(sv);
	before = count_fds();
	/* Root may force a sndbuf big enough for 1 MiB; else what we get. */
	if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf,
		       sizeof(sndbuf)) < 0)
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf,
			   sizeof(sndbuf));
	junk = calloc(1, big);
	assert_non_null(junk);
	fd = eventfd(0, EFD_CLOEXEC);
	r = send_raw_fds(sv[0], junk, big, &fd, 1);
	if (r == -EMSGSIZE || r == -ENOBUFS) {
		big = PROTO_MSG_MAX + 4096; /* still too big for the buffer */
		r = send_raw_fds(sv[0], junk, big, &fd, 1);
	}
	assert_int_equal(r, 0);
	close(fd);
	free(junk);
	assert_int_equal(proto_recv(sv[1], rbuf, PROTO_MSG_MAX, NULL, NULL),
			 -EMSGSIZE);

	/* The next message arrives intact. */
	m = new_msg(PROTO_CMD_RELOAD, 42, true);
	assert_int_equal(proto_send(sv[0], m, NULL, 0), 0);
	nlmsg_free(m);
	n = proto_recv(sv[1], rbuf, PROTO_MSG_MAX, NULL, NULL);
	assert_true(n > 0);
	assert_int_equal(proto_parse(rbuf, n, &msg, why, sizeof(why)), 0);
	assert_int_equal(msg.cmd, PROTO_CMD_RELOAD);
	assert_int_equal(msg.seq, 42);
	assert_int_equal(count_fds(), before);

	/* A message that fills PROTO_MSG_MAX travels; one more byte is
	 * refused when built (libnl's NLE_NOMEM, mapped to -ENOMEM). */
	m = new_msg(PROTO_CMD_GET_CLIENTS, 43, false);
	assert_int_equal(nla_put_u32(m, PROTO_A_ERROR, 0), 0);
	for (;;) {
		struct nlattr *nest = nla_nest_start(m, PROTO_A_CLIENT);

		if (!nest)
			break;
		r = nla_put_string(m, 2, "some client name");
		if (r < 0) {
			assert_int_equal(proto_errno(r), -ENOMEM);
			nla_nest_cancel(m, nest);
			break;
		}
		nla_nest_end(m, nest);
	}
	assert_true(nlmsg_hdr(m)->nlmsg_len > PROTO_MSG_MAX - 64);
	assert_int_equal(proto_send(sv[0], m, NULL, 0), 0);
	n = proto_recv(sv[1], rbuf, PROTO_MSG_MAX, NULL, NULL);
	assert_int_equal(n, nlmsg_hdr(m)->nlmsg_len);
	assert_int_equal(proto_parse(rbuf, n, &msg, why, sizeof(why)), 0);
	/* A smaller buffer: -EMSGSIZE. */
	assert_int_equal(proto_send(sv[0], m, NULL, 0), 0);
	assert_int_equal(proto_recv(sv[1], rbuf, 4096, NULL, NULL), -EMSGSIZE);
	nlmsg_free(m);

	close(sv[0]);
	close(sv[1]);
}

/* --- malformed inputs ---------------------------------------------------- */

static void test_bad_headers(void **state)
{
	struct proto_msg msg;
	struct nlmsghdr *nlh = rbuf;
	struct nl_msg *m;
	char why[256];
	size_t len;

	m = new_msg(PROTO_CMD_GET_STATUS, 5, true);
	len = to_buf(m);

	/* Truncated nlmsghdr. */
	assert_int_equal(proto_parse(rbuf, 10, &msg, why, sizeof(why)),
			 -EBADMSG);
	assert_why(why, "shorter than a netlink header");
	assert_int_equal(proto_parse(rbuf, 0, &msg, why, sizeof(why)),
			 -EBADMSG);

	/* nlmsg_len larger than what was received. */
	assert_int_equal(parse_as(m, -4, &msg, why, sizeof(why)), -EBADMSG);
	assert_why(why, "does not fit");
	/* ... and smaller (trailing bytes). */
	assert_int_equal(parse_as(m, +4, &msg, why, sizeof(why)), -EBADMSG);
	assert_why(why, "bytes received");

	/* nlmsg_len smaller than the genl header. */
	to_buf(m);
	nlh->nlmsg_len = NLMSG_HDRLEN + 2;
	assert_int_equal(
		proto_parse(rbuf, NLMSG_HDRLEN + 2, &msg, why, sizeof(why)),
		-EBADMSG);
	assert_why(why, "generic netlink header");
	nlh->nlmsg_len = 8; /* smaller than nlmsghdr itself */
	assert_int_equal(proto_parse(rbuf, len, &msg, why, sizeof(why)),
			 -EBADMSG);

	/* Wrong nlmsg_type. */
	to_buf(m);
	nlh->nlmsg_type = NLMSG_ERROR;
	assert_int_equal(proto_parse(rbuf, len, &msg, why, sizeof(why)),
			 -EPROTO);
	assert_why(why, "nlmsg_type 0x2");

	/* Wrong version. */
	to_buf(m);
	ghdr_of(rbuf)->version = 3;
	assert_int_equal(proto_parse(rbuf, len, &msg, why, sizeof(why)),
			 -EPROTONOSUPPORT);
	assert_why(why, "version 3");

	/* Unknown command. */
	to_buf(m);
	ghdr_of(rbuf)->cmd = 77;
	assert_int_equal(proto_parse(rbuf, len, &msg, why, sizeof(why)),
			 -EOPNOTSUPP);
	assert_string_equal(why, "unknown command 77");
	ghdr_of(rbuf)->cmd = 0;
	assert_int_equal(proto_parse(rbuf, len, &msg, why, sizeof(why)),
			 -EOPNOTSUPP);

	/* Unaligned buffer. */
	memmove((char *)rbuf + 1, rbuf, len);
	assert_int_equal(
		proto_parse((char *)rbuf + 1, len, &msg, why, sizeof(why)),
		-EINVAL);

	/* why may be NULL. */
	assert_int_equal(proto_parse(rbuf, 3, &msg, NULL, 0), -EBADMSG);
	nlmsg_free(m);
}

static void test_bad_attributes(void **state)
{
	struct proto_msg msg;
	struct nlattr *nla, *nest;
	struct nl_msg *m;
	char why[256], name[100];
	uint16_t two = 7;
	uint64_t eight = 7;
	size_t len;

	/* nla_len overrunning the message. */
	m = new_msg(PROTO_CMD_ATTACH, 1, true);
	assert_int_equal(nla_put_u32(m, PROTO_A_MIN_PAGES, 1), 0);
	len = to_buf(m);
	nla = (struct nlattr *)((char *)rbuf + NLMSG_HDRLEN + GENL_HDRLEN);
	nla->nla_len = 100;
	assert_int_equal(proto_parse(rbuf, len, &msg, why, sizeof(why)),
			 -EBADMSG);
	assert_why(why, "overruns");
	nla->nla_len = 2;
	assert_int_equal(proto_parse(rbuf, len, &msg, why, sizeof(why)),
			 -EBADMSG);
	assert_why(why, "shorter than its header");
	nlmsg_free(m);

	/* Wrong length for a u32: 2 and 8 bytes. */
	m = new_msg(PROTO_CMD_ATTACH, 1, true);
	assert_int_equal(nla_put(m, PROTO_A_MIN_PAGES, 2, &two), 0);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), -EBADMSG);
	assert_string_equal(why,
			    "attribute 5 (MIN_PAGES): expected 4 bytes, got 2");
	nlmsg_free(m);
	m = new_msg(PROTO_CMD_ATTACH, 1, true);
	assert_int_equal(nla_put(m, PROTO_A_MAX_PAGES, 8, &eight), 0);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), -EBADMSG);
	assert_string_equal(why,
			    "attribute 6 (MAX_PAGES): expected 4 bytes, got 8");
	nlmsg_free(m);

	/* String not NUL-terminated. */
	m = new_msg(PROTO_CMD_ATTACH, 1, true);
	assert_int_equal(nla_put(m, PROTO_A_NAME, 3, "abc"), 0);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), -EBADMSG);
	assert_why(why, "NAME): string not NUL-terminated");
	nlmsg_free(m);
	m = new_msg(PROTO_CMD_ATTACH, 1, true);
	assert_int_equal(nla_put(m, PROTO_A_NAME, 0, NULL), 0);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), -EBADMSG);
	assert_why(why, "empty payload");
	nlmsg_free(m);

	/* String too long: 64 bytes with its NUL is the limit. */
	memset(name, 'n', sizeof(name));
	name[PROTO_NAME_MAX - 1] = '\0';
	m = new_msg(PROTO_CMD_ATTACH, 1, true);
	assert_int_equal(nla_put_string(m, PROTO_A_NAME, name), 0);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), 0);
	nlmsg_free(m);
	name[PROTO_NAME_MAX - 1] = 'n';
	name[PROTO_NAME_MAX] = '\0';
	m = new_msg(PROTO_CMD_ATTACH, 1, true);
	assert_int_equal(nla_put_string(m, PROTO_A_NAME, name), 0);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), -EBADMSG);
	assert_why(why, "NAME): string of 65 bytes, at most 64");
	nlmsg_free(m);

	/* Duplicate single attribute. */
	m = new_msg(PROTO_CMD_ATTACH, 1, true);
	assert_int_equal(nla_put_u32(m, PROTO_A_MIN_PAGES, 1), 0);
	assert_int_equal(nla_put_u32(m, PROTO_A_MIN_PAGES, 2), 0);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), -EBADMSG);
	assert_why(why, "more than once");
	nlmsg_free(m);

	/* Attribute type 0. */
	m = new_msg(PROTO_CMD_ATTACH, 1, true);
	assert_int_equal(nla_put_u32(m, PROTO_A_UNSPEC, 1), 0);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), -EBADMSG);
	assert_why(why, "UNSPEC");
	nlmsg_free(m);

	/* A known attribute not valid for the command. */
	m = new_msg(PROTO_CMD_GET_STATUS, 1, true);
	assert_int_equal(nla_put_u32(m, PROTO_A_PID, 1), 0);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), -EINVAL);
	assert_string_equal(
		why, "attribute 4 (PID) is not valid in a GET_STATUS request");
	nlmsg_free(m);

	/* Trailing bytes after the last attribute. */
	m = new_msg(PROTO_CMD_ATTACH, 1, true);
	assert_int_equal(nla_put_u32(m, PROTO_A_MIN_PAGES, 1), 0);
	len = to_buf(m);
	memset((char *)rbuf + len, 0, 4);
	((struct nlmsghdr *)rbuf)->nlmsg_len = len + 2;
	assert_int_equal(proto_parse(rbuf, len + 2, &msg, why, sizeof(why)),
			 -EBADMSG);
	assert_why(why, "trailing bytes");
	nlmsg_free(m);

	/* Malformed contents of a nested attribute defined later. */
	m = new_msg(PROTO_CMD_GET_STATUS, 1, false);
	assert_int_equal(nla_put_u32(m, PROTO_A_ERROR, 0), 0);
	nest = nla_nest_start(m, PROTO_A_STATUS);
	assert_int_equal(nla_put_u32(m, 1, 1), 0);
	nla_nest_end(m, nest);
	len = to_buf(m);
	((struct nlattr *)((char *)rbuf + len - 8))->nla_len = 40;
	assert_int_equal(proto_parse(rbuf, len, &msg, why, sizeof(why)),
			 -EBADMSG);
	assert_why(why, "attribute 10 (STATUS): attribute at offset 0");
	nlmsg_free(m);
}

static void test_bad_settings(void **state)
{
	struct proto_msg msg;
	struct nlattr *nest;
	struct nl_msg *m;
	char why[256];

	/* SET_LIMITS without SETTING. */
	m = new_msg(PROTO_CMD_SET_LIMITS, 1, true);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), -EINVAL);
	assert_string_equal(
		why, "attribute 9 (SETTING) missing in a SET_LIMITS request");
	nlmsg_free(m);

	/* SETTING without VALUE. */
	m = new_msg(PROTO_CMD_SET_LIMITS, 1, true);
	assert_int_equal(proto_put_setting(m, "a", "1"), 0);
	nest = nla_nest_start(m, PROTO_A_SETTING);
	assert_int_equal(nla_put_string(m, PROTO_SETTING_KEY, "b"), 0);
	nla_nest_end(m, nest);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "attribute 9 (SETTING): attribute 2 (VALUE) "
				 "missing in SETTING");
	nlmsg_free(m);

	/* SETTING without KEY. */
	m = new_msg(PROTO_CMD_SET_LIMITS, 1, true);
	nest = nla_nest_start(m, PROTO_A_SETTING);
	assert_int_equal(nla_put_string(m, PROTO_SETTING_VALUE, "b"), 0);
	nla_nest_end(m, nest);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), -EINVAL);
	assert_why(why, "(KEY) missing");
	nlmsg_free(m);

	/* A value too long inside SETTING. */
	m = new_msg(PROTO_CMD_SET_LIMITS, 1, true);
	nest = nla_nest_start(m, PROTO_A_SETTING);
	assert_int_equal(nla_put_string(m, PROTO_SETTING_KEY, "k"), 0);
	{
		char v[PROTO_VALUE_MAX + 1];

		memset(v, 'v', sizeof(v) - 1);
		v[sizeof(v) - 1] = '\0';
		assert_int_equal(nla_put_string(m, PROTO_SETTING_VALUE, v), 0);
		assert_int_equal(proto_put_setting(m, "k", v), -EINVAL);
	}
	nla_nest_end(m, nest);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), -EBADMSG);
	assert_why(why, "(SETTING): attribute 2 (VALUE): string of 257 bytes");
	nlmsg_free(m);
}

static void test_tolerance(void **state)
{
	struct proto_msg msg;
	struct nlattr *nest;
	struct nl_msg *m;
	char why[256];

	/* Newer attributes (above PROTO_A_MAX) are ignored in both. */
	m = new_msg(PROTO_CMD_GET_STATUS, 1, true);
	assert_int_equal(nla_put_u64(m, PROTO_A_MAX + 5, 1), 0);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), 0);
	nlmsg_free(m);

	m = new_msg(PROTO_CMD_ATTACH, 1, false);
	assert_int_equal(nla_put_u32(m, PROTO_A_ERROR, 0), 0);
	assert_int_equal(nla_put_string(m, PROTO_A_MAX + 1, "future"), 0);
	assert_int_equal(nla_put_u32(m, PROTO_A_SLOT, 2), 0);
	nest = nla_nest_start(m, PROTO_A_SETTING);
	assert_int_equal(nla_put_string(m, PROTO_SETTING_KEY, "k"), 0);
	assert_int_equal(nla_put_string(m, PROTO_SETTING_VALUE, "v"), 0);
	assert_int_equal(nla_put_u32(m, PROTO_SETTING_MAX + 1, 9), 0);
	nla_nest_end(m, nest);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), 0);
	assert_int_equal(nla_get_u32(msg.tb[PROTO_A_SLOT]), 2);
	assert_string_equal(msg.message, ""); /* MESSAGE absent: "" */
	nlmsg_free(m);

	/* A reply must carry ERROR, and a real errno. */
	m = new_msg(PROTO_CMD_ATTACH, 1, false);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), -EBADMSG);
	assert_why(why, "(ERROR) missing in a ATTACH reply");
	nlmsg_free(m);
	m = new_msg(PROTO_CMD_ATTACH, 1, false);
	assert_int_equal(nla_put_u32(m, PROTO_A_ERROR, 100000), 0);
	assert_int_equal(parse_as(m, 0, &msg, why, sizeof(why)), -EBADMSG);
	assert_why(why, "not an errno");
	nlmsg_free(m);
}

/* The policies alone, through libnl, also catch what libnl can. */
static void test_policies_with_libnl(void **state)
{
	struct nlattr *tb[PROTO_A_MAX + 1];
	struct nl_msg *m;
	uint64_t eight = 1;

	assert_non_null(proto_request_policy(PROTO_CMD_ATTACH));
	assert_non_null(proto_request_policy(PROTO_CMD_RELOAD));
	assert_null(proto_request_policy(0));
	assert_null(proto_request_policy(77));
	assert_int_equal(
		proto_request_policy(PROTO_CMD_ATTACH)[PROTO_A_NAME].maxlen,
		PROTO_NAME_MAX);
	assert_int_equal(proto_reply_policy()[PROTO_A_ERROR].type, NLA_U32);
	assert_int_equal(proto_setting_policy()[PROTO_SETTING_KEY].maxlen,
			 PROTO_KEY_MAX);

	m = new_msg(PROTO_CMD_ATTACH, 1, true);
	assert_int_equal(nla_put(m, PROTO_A_MIN_PAGES, 8, &eight), 0);
	assert_int_equal(proto_errno(genlmsg_parse(
				 nlmsg_hdr(m), 0, tb, PROTO_A_MAX,
				 (struct nla_policy *)proto_request_policy(
					 PROTO_CMD_ATTACH))),
			 -EBADMSG);
	nlmsg_free(m);
}

static void test_garbage(void **state)
{
	unsigned int seed = 12345;
	struct proto_msg msg;
	char why[256];
	uint8_t *b = rbuf;

	for (int i = 0; i < 5000; i++) {
		size_t len = rand_r(&seed) % 600;
		int r;

		for (size_t j = 0; j < len; j++)
			b[j] = rand_r(&seed);
		r = proto_parse(rbuf, len, &msg, why, sizeof(why));
		assert_true(r < 0);
		assert_true(why[0] != '\0');
	}

	/* Valid headers, random attributes: never a crash; whatever is
	 * accepted only points inside the message. */
	for (int i = 0; i < 5000; i++) {
		size_t len = NLMSG_HDRLEN + GENL_HDRLEN + rand_r(&seed) % 300;
		struct nlmsghdr *nlh = rbuf;
		int r;

		for (size_t j = 0; j < len; j++)
			b[j] = rand_r(&seed);
		/* Small type numbers and lengths now and then. */
		for (size_t j = NLMSG_HDRLEN + GENL_HDRLEN; j + 4 <= len;
		     j += 4 * (1 + rand_r(&seed) % 4)) {
			b[j] = rand_r(&seed) % 24;
			b[j + 1] = 0;
			b[j + 2] = rand_r(&seed) % (PROTO_A_MAX + 3);
			b[j + 3] = rand_r(&seed) % 2 ? 0x80 : 0;
		}
		nlh->nlmsg_len = len;
		nlh->nlmsg_type = PROTO_FAMILY;
		ghdr_of(rbuf)->version = PROTO_VERSION;
		ghdr_of(rbuf)->cmd = 1 + rand_r(&seed) % PROTO_CMD_MAX;
		r = proto_parse(rbuf, len, &msg, why, sizeof(why));
		if (r < 0) {
			assert_true(why[0] != '\0');
			continue;
		}
		for (int a = 0; a <= PROTO_A_MAX; a++) {
			uint8_t *p = (uint8_t *)msg.tb[a];

			if (!p)
				continue;
			assert_true(p >= b &&
				    p + msg.tb[a]->nla_len <= b + len);
		}
	}
}

/* --- proto_call ---------------------------------------------------------- */

static void queue_reply(int fd, uint8_t cmd, uint32_t seq, int error,
			const char *text, const int *fds, size_t nfds)
{
	struct proto_msg req = {.cmd = cmd, .seq = seq, .request = true};
	struct nl_msg *m;

	assert_int_equal(proto_new_reply(&m, &req, error, "%s", text), 0);
	assert_int_equal(proto_send(fd, m, fds, nfds), 0);
	nlmsg_free(m);
}

static void test_call(void **state)
{
	int sv[2], before, efd, fds[PROTO_FDS_MAX], n;
	struct proto_msg rep, req;
	size_t nfds;
	char errmsg[256], why[256];
	struct nl_msg *m;

	pair(sv);
	before = count_fds();
	efd = eventfd(0, EFD_CLOEXEC);

	/* A stale reply (older seq, with an fd) then the right one. */
	queue_reply(sv[1], PROTO_CMD_GET_STATUS, 6, 0, "stale", &efd, 1);
	queue_reply(sv[1], PROTO_CMD_GET_STATUS, 7, 0, "fresh", NULL, 0);
	m = new_msg(PROTO_CMD_GET_STATUS, 7, true);
	nfds = PROTO_FDS_MAX;
	assert_int_equal(proto_call(sv[0], m, rbuf, PROTO_MSG_MAX, &rep, fds,
				    &nfds, errmsg, sizeof(errmsg)),
			 0);
	nlmsg_free(m);
	assert_int_equal(rep.seq, 7);
	assert_string_equal(rep.message, "fresh");
	assert_int_equal(nfds, 0);
	assert_string_equal(errmsg, "");
	/* The daemon side got the request. */
	n = proto_recv(sv[1], rbuf2, PROTO_MSG_MAX, NULL, NULL);
	assert_true(n > 0);
	assert_int_equal(proto_parse(rbuf2, n, &req, why, sizeof(why)), 0);
	assert_int_equal(req.seq, 7);
	assert_true(req.request);

	/* Right seq, wrong command: -EPROTO. */
	queue_reply(sv[1], PROTO_CMD_RELOAD, 8, 0, "", NULL, 0);
	m = new_msg(PROTO_CMD_GET_STATUS, 8, true);
	assert_int_equal(proto_call(sv[0], m, rbuf, PROTO_MSG_MAX, &rep, NULL,
				    NULL, errmsg, sizeof(errmsg)),
			 -EPROTO);
	assert_string_equal(errmsg, "reply to RELOAD, expected GET_STATUS");
	nlmsg_free(m);

	/* An ERROR reply (the daemon did not know or could not parse the
	 * request) with the right seq answers any request. */
	queue_reply(sv[1], 200, 8, -EOPNOTSUPP, "bad message: unknown command",
		    NULL, 0);
	m = new_msg(PROTO_CMD_CENSUS, 8, true);
	assert_int_equal(proto_call(sv[0], m, rbuf, PROTO_MSG_MAX, &rep, NULL,
				    NULL, errmsg, sizeof(errmsg)),
			 -EOPNOTSUPP);
	assert_int_equal(rep.cmd, PROTO_CMD_ERROR);
	assert_string_equal(errmsg, "bad message: unknown command");
	nlmsg_free(m);
	/* ... and one without an error is not a success. */
	queue_reply(sv[1], PROTO_CMD_ERROR, 8, 0, "", NULL, 0);
	m = new_msg(PROTO_CMD_CENSUS, 8, true);
	assert_int_equal(proto_call(sv[0], m, rbuf, PROTO_MSG_MAX, &rep, NULL,
				    NULL, errmsg, sizeof(errmsg)),
			 -EPROTO);
	nlmsg_free(m);
	/* The daemon side got the requests. */
	for (int i = 0; i < 3; i++) {
		n = proto_recv(sv[1], rbuf2, PROTO_MSG_MAX, NULL, NULL);
		assert_true(n > 0);
	}

	/* A request where a reply was expected: -EPROTO. */
	m = new_msg(PROTO_CMD_GET_STATUS, 9, true);
	assert_int_equal(proto_send(sv[1], m, NULL, 0), 0);
	assert_int_equal(proto_call(sv[0], m, rbuf, PROTO_MSG_MAX, &rep, NULL,
				    NULL, errmsg, sizeof(errmsg)),
			 -EPROTO);
	assert_why(errmsg, "not a reply");
	nlmsg_free(m);

	/* The daemon's error and message, fds it sent are closed. */
	queue_reply(sv[1], PROTO_CMD_SET_LIMITS, 10, -EACCES,
		    "SET_LIMITS needs admin_group", &efd, 1);
	m = new_msg(PROTO_CMD_SET_LIMITS, 10, true);
	assert_int_equal(proto_put_setting(m, "a", "b"), 0);
	nfds = 2;
	assert_int_equal(proto_call(sv[0], m, rbuf, PROTO_MSG_MAX, &rep, fds,
				    &nfds, errmsg, sizeof(errmsg)),
			 -EACCES);
	assert_string_equal(errmsg, "SET_LIMITS needs admin_group");
	assert_int_equal(rep.error, -EACCES);
	assert_int_equal(nfds, 0);
	nlmsg_free(m);

	/* An ATTACH reply with its fd. */
	queue_reply(sv[1], PROTO_CMD_ATTACH, 11, 0, "", &efd, 1);
	m = new_msg(PROTO_CMD_ATTACH, 11, true);
	nfds = 2;
	assert_int_equal(proto_call(sv[0], m, rbuf, PROTO_MSG_MAX, &rep, fds,
				    &nfds, errmsg, sizeof(errmsg)),
			 0);
	assert_int_equal(nfds, 1);
	close(fds[0]);
	nlmsg_free(m);

	/* A malformed reply: the parse error, in words. */
	{
		struct nl_msg *bad = new_msg(PROTO_CMD_GET_STATS, 12, false);

		assert_int_equal(proto_send(sv[1], bad, NULL, 0), 0);
		nlmsg_free(bad);
	}
	m = new_msg(PROTO_CMD_GET_STATS, 12, true);
	assert_int_equal(proto_call(sv[0], m, rbuf, PROTO_MSG_MAX, &rep, NULL,
				    NULL, errmsg, sizeof(errmsg)),
			 -EBADMSG);
	assert_why(errmsg, "(ERROR) missing");

	/* The daemon went away (with our unread requests: ECONNRESET). */
	close(efd);
	close(sv[1]);
	n = proto_call(sv[0], m, rbuf, PROTO_MSG_MAX, &rep, NULL, NULL, errmsg,
		       sizeof(errmsg));
	assert_true(n == -EPIPE || n == -ECONNRESET);
	nlmsg_free(m);
	close(sv[0]);
	assert_int_equal(count_fds(), before - 2);
}

static void test_call_eof(void **state)
{
	int sv[2];
	struct proto_msg rep;
	struct nl_msg *m;
	char errmsg[64];

	/* The peer stops writing without answering: EOF on our side. */
	pair(sv);
	assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
	m = new_msg(PROTO_CMD_DETACH, 1, true);
	assert_int_equal(proto_call(sv[0], m, rbuf, PROTO_MSG_MAX, &rep, NULL,
				    NULL, errmsg, sizeof(errmsg)),
			 -ECONNRESET);
	nlmsg_free(m);
	close(sv[0]);
	close(sv[1]);
}

/* --- socket path and connect --------------------------------------------- */

static const char *const env_names[] = {"RCUPOOL_SOCKET", "RUNTIME_DIRECTORY",
					"XDG_RUNTIME_DIR"};

static void env_set(const char *sock, const char *rt, const char *xdg)
{
	const char *v[] = {sock, rt, xdg};

	for (int i = 0; i < 3; i++) {
		if (v[i])
			assert_int_equal(setenv(env_names[i], v[i], 1), 0);
		else
			assert_int_equal(unsetenv(env_names[i]), 0);
	}
}

/* A listening socket at path (its directories made), to be found. */
static int make_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[128];
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	assert_true(mkdir(dir, 0777) == 0 || errno == EEXIST);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void test_socket_path(void **state)
{
	char saved[3][4096], path[128], tiny[8], longp[300], xdg[64], mine[128];
	bool had[3];
	uid_t euid = geteuid();
	int sfd;

	for (int i = 0; i < 3; i++) {
		const char *v = getenv(env_names[i]);

		had[i] = v;
		if (v)
			snprintf(saved[i], sizeof(saved[i]), "%s", v);
	}

	env_set("/tmp/x/rcupoold.sock", "/run/other", "/run/user/1000");
	assert_int_equal(proto_socket_path(path, sizeof(path)), 20);
	assert_string_equal(path, "/tmp/x/rcupoold.sock");

	/* Empty RCUPOOL_SOCKET counts as unset.  A client never follows
	 * $RUNTIME_DIRECTORY: under systemd it is the client's own. */
	env_set("", "/run/custom", NULL);
	assert_true(proto_socket_path(path, sizeof(path)) > 0);
	assert_string_equal(path, PROTO_SYSTEM_SOCKET);
	assert_string_equal(path, "/run/rcupool/rcupoold.sock");

	/* A user's own daemon, found only when its socket exists. */
	snprintf(xdg, sizeof(xdg), "/tmp/test_proto_xdg.%d", (int)getpid());
	assert_int_equal(mkdir(xdg, 0777), 0);
	snprintf(mine, sizeof(mine), "%s/rcupool/rcupoold.sock", xdg);
	if (euid == 0)
		assert_int_equal(seteuid(65534), 0);
	env_set(NULL, "/run/custom", xdg);
	assert_true(proto_socket_path(path, sizeof(path)) > 0);
	assert_string_equal(path, PROTO_SYSTEM_SOCKET);
	assert_true(proto_listen_path(path, sizeof(path)) > 0);
	assert_string_equal(path, mine);
	if (euid == 0)
		assert_int_equal(seteuid(0), 0);

	sfd = make_socket(mine);
	if (euid == 0) {
		/* root always talks to the system daemon. */
		assert_true(proto_socket_path(path, sizeof(path)) > 0);
		assert_string_equal(path, PROTO_SYSTEM_SOCKET);
		assert_true(proto_listen_path(path, sizeof(path)) > 0);
		assert_string_equal(path, PROTO_SYSTEM_SOCKET);
		assert_int_equal(seteuid(65534), 0);
	}
	assert_true(proto_socket_path(path, sizeof(path)) > 0);
	assert_string_equal(path, mine);
	/* Empty or relative XDG_RUNTIME_DIR count as unset. */
	env_set(NULL, NULL, "");
	assert_true(proto_socket_path(path, sizeof(path)) > 0);
	assert_string_equal(path, PROTO_SYSTEM_SOCKET);
	assert_int_equal(proto_listen_path(path, sizeof(path)), -ENOENT);
	env_set(NULL, NULL, "relative/dir");
	assert_true(proto_socket_path(path, sizeof(path)) > 0);
	assert_string_equal(path, PROTO_SYSTEM_SOCKET);
	env_set(NULL, NULL, NULL);
	assert_true(proto_socket_path(path, sizeof(path)) > 0);
	assert_string_equal(path, PROTO_SYSTEM_SOCKET);
	assert_int_equal(proto_listen_path(path, sizeof(path)), -ENOENT);
	if (euid == 0)
		assert_int_equal(seteuid(0), 0);
	close(sfd);
	unlink(mine);
	*strrchr(mine, '/') = '\0';
	rmdir(mine);
	rmdir(xdg);

	/* Too long for sockaddr_un, too long for the buffer. */
	memset(longp, 'a', sizeof(longp));
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	env_set(longp, NULL, NULL);
	assert_int_equal(proto_socket_path(path, sizeof(path)), -ENAMETOOLONG);
	assert_int_equal(proto_listen_path(path, sizeof(path)), -ENAMETOOLONG);
	assert_int_equal(proto_connect(NULL), -ENAMETOOLONG);
	longp[107] = '\0'; /* 107 chars + NUL = sizeof(sun_path) */
	env_set(longp, NULL, NULL);
	assert_int_equal(proto_socket_path(path, sizeof(path)), 107);
	longp[107] = 'a';
	longp[108] = '\0';
	env_set(longp, NULL, NULL);
	assert_int_equal(proto_socket_path(path, sizeof(path)), -ENAMETOOLONG);
	env_set("/tmp/x/rcupoold.sock", NULL, NULL);
	assert_int_equal(proto_socket_path(tiny, sizeof(tiny)), -ERANGE);

	for (int i = 0; i < 3; i++) {
		if (had[i])
			setenv(env_names[i], saved[i], 1);
		else
			unsetenv(env_names[i]);
	}
}

static void test_connect(void **state)
{
	char dir[] = "/tmp/test_proto.XXXXXX", path[128], errmsg[128];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int lfd, cfd, sfd, n;
	struct proto_msg req, rep;
	struct nl_msg *m;
	const char *old = getenv("RCUPOOL_SOCKET");
	char saved[256];

	if (old)
		snprintf(saved, sizeof(saved), "%s", old);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/rcupoold.sock", dir);
	assert_int_equal(proto_connect(path), -ENOENT);

	strcpy(sa.sun_path, path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);

	setenv("RCUPOOL_SOCKET", path, 1);
	cfd = proto_connect(NULL);
	assert_true(cfd >= 0);
	assert_true(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
	sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(sfd >= 0);
	assert_int_equal(proto_socket_buffers(sfd), 0);

	/* The "daemon" answers before the call is made: the queue keeps it. */
	m = new_msg(PROTO_CMD_GET_LIMITS, 77, true);
	assert_int_equal(proto_send(cfd, m, NULL, 0), 0);
	n = proto_recv(sfd, rbuf2, PROTO_MSG_MAX, NULL, NULL);
	assert_int_equal(proto_parse(rbuf2, n, &req, NULL, 0), 0);
	{
		struct nl_msg *r;

		assert_int_equal(proto_new_reply(&r, &req, 0, NULL), 0);
		assert_int_equal(proto_put_setting(r, "max_pages", "9"), 0);
		assert_int_equal(proto_send(sfd, r, NULL, 0), 0);
		nlmsg_free(r);
	}
	/* The request above was already sent by hand: read its reply. */
	n = proto_recv(cfd, rbuf, PROTO_MSG_MAX, NULL, NULL);
	assert_int_equal(proto_parse(rbuf, n, &rep, errmsg, sizeof(errmsg)), 0);
	assert_int_equal(rep.seq, 77);
	assert_non_null(proto_next(&rep, NULL, PROTO_A_SETTING));
	nlmsg_free(m);

	close(cfd);
	close(sfd);
	close(lfd);
	unlink(path);
	rmdir(dir);
	if (old)
		setenv("RCUPOOL_SOCKET", saved, 1);
	else
		unsetenv("RCUPOOL_SOCKET");
}

/* RECALL is the daemon's notification: refused as a request; a refusal
 * (command 0, seq 0) parses as a reply and proto_call returns its error. */
static void test_recall_and_refusal(void **state)
{
	struct proto_msg m, none = {.cmd = 0, .seq = 0};
	struct nl_msg *msg;
	char why[256];
	int sv[2], n;

	pair(sv);
	msg = new_msg(PROTO_CMD_RECALL, 5, true);
	assert_int_equal(proto_send(sv[0], msg, NULL, 0), 0);
	nlmsg_free(msg);
	n = proto_recv(sv[1], rbuf, PROTO_MSG_MAX, NULL, NULL);
	assert_int_equal(proto_parse(rbuf, n, &m, why, sizeof(why)),
			 -EOPNOTSUPP);
	assert_non_null(strstr(why, "RECALL is not a request"));

	assert_int_equal(proto_new_reply(&msg, &none, -EUSERS, "too many"), 0);
	assert_int_equal(proto_send(sv[1], msg, NULL, 0), 0);
	nlmsg_free(msg);
	msg = new_msg(PROTO_CMD_GET_STATUS, 9, true);
	assert_int_equal(proto_call(sv[0], msg, rbuf2, PROTO_MSG_MAX, &m, NULL,
				    NULL, why, sizeof(why)),
			 -EUSERS);
	assert_string_equal(why, "too many");
	nlmsg_free(msg);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_errno_map),
		cmocka_unit_test(test_roundtrip_commands),
		cmocka_unit_test(test_reply_error),
		cmocka_unit_test(test_fd_passing),
		cmocka_unit_test(test_unexpected_fds_closed),
		cmocka_unit_test(test_msgsize),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_recall_and_refusal),
		cmocka_unit_test(test_bad_attributes),
		cmocka_unit_test(test_bad_settings),
		cmocka_unit_test(test_tolerance),
		cmocka_unit_test(test_policies_with_libnl),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_call),
		cmocka_unit_test(test_call_eof),
		cmocka_unit_test(test_socket_path),
		cmocka_unit_test(test_connect),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
