// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The client's reply path (lib/lend_daemon.c): a fake daemon in a thread
 * answers each request with bytes from the input (sequence number and
 * length patched or not) and fds of its choosing (a well-formed lease, chunk
 * memfds, a pipe, none), while the client attaches, gets, puts and reads
 * notifications.  Nothing may crash, hang or leak an fd.
 *
 * Input: records of [flags u8][len u16 LE][bytes].
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/netlink.h>

#include "fuzz.h"
#include "lend.h"
#include "leaseshm.h"
#include "proto.h"

static int listen_fd = -1;
static char path[108];

struct fake {
	const uint8_t *data;
	size_t size;
};

static void setup(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[] = "/tmp/rcupool-fuzz-reply-XXXXXX";

	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/sock", dir);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (void *)&sa, sizeof(sa)) < 0 ||
	    listen(listen_fd, 4) < 0)
		abort();
}

static int make_fds(uint8_t flags, int *fds)
{
	int kind = (flags >> 2) & 3, n = 0;

	if (kind == 1) {
		struct lease_geom g = {.page_size = 4096, .chunk_pages = 16};
		struct lease_shm *m;

		if (leaseshm_create(&g, &fds[0], &m) == 0) {
			munmap(m, LEASE_SIZE);
			n = 1;
		}
	} else if (kind == 2) {
		int want = ((flags >> 4) & 7) + 1;

		for (; n < want; n++) {
			fds[n] = memfd_create("c", MFD_CLOEXEC);
			if (fds[n] < 0 ||
			    ftruncate(fds[n], (flags & 0x80 ? 8 : 16) * 4096) < 0)
				break;
		}
	} else if (kind == 3) {
		int p[2];

		if (pipe2(p, O_CLOEXEC) == 0) {
			close(p[1]);
			fds[0] = p[0];
			n = 1;
		}
	}
	return n;
}

static void send_with_fds(int fd, const void *bytes, size_t len,
			  const int *fds, int n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = {.iov_base = (void *)bytes, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (n) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
	}
	sendmsg(fd, &mh, MSG_NOSIGNAL);
}

static void *fake_daemon(void *arg)
{
	struct fake *f = arg;
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	static uint8_t req[PROTO_MSG_MAX], out[65536 + 16];

	if (fd < 0)
		return NULL;
	while (f->size >= 3) {
		uint8_t flags = f->data[0];
		size_t len = (size_t)(f->data[1] | f->data[2] << 8);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int fds[8], n;
		ssize_t got;

		f->data += 3;
		f->size -= 3;
		if (len > f->size)
			len = f->size;
		memcpy(out, f->data, len);
		f->data += len;
		f->size -= len;
		if (!(flags & 0x40)) {
			/* Answer a request (else: an unsolicited message). */
			if (poll(&p, 1, 2000) != 1)
				break;
			got = recv(fd, req, sizeof(req), 0);
			if (got <= 0)
				break;
			if (got >= 16 && len >= 16 && (flags & 1))
				memcpy(out + 8, req + 8, 4); /* its seq */
		}
		if (len >= 4 && (flags & 2)) {
			uint32_t l32 = (uint32_t)len;

			memcpy(out, &l32, 4);
		}
		n = make_fds(flags, fds);
		send_with_fds(fd, out, len, fds, n);
		for (int i = 0; i < n; i++)
			close(fds[i]);
	}
	close(fd);
	return NULL;
}

int fuzz_reply(const uint8_t *data, size_t size)
{
	struct fake f = {.data = data, .size = size};
	struct lender *l = NULL;
	pthread_t th;
	char why[256];

	if (listen_fd < 0)
		setup();
	if (pthread_create(&th, NULL, fake_daemon, &f))
		abort();
	if (lend_daemon_open(path, "fuzz", 0, 0, &l, why, sizeof(why)) == 0) {
		if (l->chunk_pages == 0 || l->page_size < 4096 || !l->lease)
			abort();
		for (uint32_t i = 0; i < 8; i++) {
			struct lend_chunk ch[LEND_GET_MAX];
			uint32_t got = 0;
			int r = l->ops->get(l, i % 2 ? -1 : 0, 1 + i % LEND_GET_MAX,
					    ch, &got);

			if (r == -ECONNRESET)
				break;
			if (r < 0 && got)
				abort();
			for (uint32_t k = 0; k < got; k++) {
				if (ch[k].fd < 0 || ch[k].pages != l->chunk_pages)
					abort();
				close(ch[k].fd);
			}
			if (got && l->ops->put(l, &ch[0].id, 1) == -ECONNRESET)
				break;
			if (l->fd >= 0 && l->ops->event(l) == -ECONNRESET)
				break;
		}
		l->ops->close(l);
	}
	pthread_join(th, NULL);
	return 0;
}
