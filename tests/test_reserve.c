// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The daemon's reserve in-process: chunks (sealed memfds), the pools and
 * the balancer's watermarks in chunks, CPU hotplug driven through the
 * uevent parser (offline drain, online refill), lending within max and
 * protect, retiring a chunk and the refill that replaces it, and the
 * census of the books.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <cmocka.h>

#include "conf.h"
#include "cpu.h"
#include "daemon.h"
#include "hotplug.h"
#include "log.h"

/* The daemon's hooks that live in main.c and server.c. */
void daemon_notify_status(struct daemon *d)
{
}

int daemon_reload(struct daemon *d, char *why, size_t whylen)
{
	return -EOPNOTSUPP;
}

static int setup(void **state)
{
	struct daemon *d = calloc(1, sizeof(*d));
	struct conf_error err;
	int r;

	log_open(LOG_WARNING);
	conf_init(&d->conf);
	/* 64 pages per CPU + 256, chunks of 16: 4 per CPU, 16 global; the
	 * target 50% is 2 chunks, the protect floor 1 chunk (4 pages up). */
	r = conf_set(&d->conf, "reserve.pages_per_cpu", "64", "test", &err);
	r = r ?: conf_set(&d->conf, "reserve.global_pages", "256", "test", &err);
	r = r ?: conf_set(&d->conf, "reserve.lock_memory", "no", "test", &err);
	r = r ?: conf_set(&d->conf, "limits.protect_pages", "4", "test", &err);
	r = r ?: conf_set(&d->conf, "limits.max_clients", "4", "test", &err);
	if (r < 0)
		return -1;
	d->ncpus = (unsigned int)cpu_possible_count();
	if (sd_event_new(&d->event) < 0 || lending_init(d) < 0 ||
	    reserve_create(d) < 0)
		return -1;
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	struct daemon *d = *state;

	lending_destroy(d);
	reserve_destroy(d);
	sd_event_unref(d->event);
	conf_free(&d->conf);
	free(d);
	return 0;
}

static void books_agree(struct daemon *d)
{
	char why[256];

	if (reserve_census(d, why, sizeof(why)) < 0)
		fail_msg("census: %s", why);
}

static void test_chunks_and_watermarks(void **state)
{
	struct daemon *d = *state;
	unsigned int online = 0;

	assert_int_equal(d->chunk_pages, 16);
	assert_int_equal(d->nchunks, (64 * d->ncpus + 256) / 16);
	assert_int_equal(d->n_pool, d->nchunks);
	assert_int_equal(d->n_lent, 0);
	for (unsigned int c = 0; c < d->ncpus; c++) {
		struct pool_cpu *p = &d->cpu[c];

		assert_int_equal(p->target, 2);
		assert_int_equal(p->low, 1);
		assert_int_equal(p->high, 4);
		assert_int_equal(p->protect, 1);
		if (p->online) {
			assert_int_equal(p->free.n, 2);
			online++;
		}
	}
	assert_int_equal(d->global.n, d->nchunks - 2 * online);
	/* Each chunk a sealed memfd of its own. */
	for (struct chunk *c = d->global.head; c; c = c->next) {
		int seals = fcntl(c->fd, F_GET_SEALS);

		assert_true(seals & F_SEAL_SHRINK);
		assert_true(seals & F_SEAL_GROW);
		assert_true(seals & F_SEAL_SEAL);
		assert_int_equal(lseek(c->fd, 0, SEEK_END), 16 * 4096);
	}
	/* Below low: the balancer fills to target from the global pool. */
	struct chunk *c;

	while ((c = d->cpu[0].free.head)) {
		list_del(&d->cpu[0].free, c);
		list_add(&d->global, c);
		c->where = CHUNK_GLOBAL;
		c->pool = -1;
	}
	reserve_balance(d);
	assert_int_equal(d->cpu[0].free.n, d->cpu[0].online ? 2 : 0);
	books_agree(d);
	/* A chunk off every list: the census says the books disagree. */
	c = d->cpu[0].free.head;
	list_del(&d->cpu[0].free, c);
	d->n_pool--;
	char why[256];

	assert_int_equal(reserve_census(d, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "chunks known"));
	reserve_retire(d, c);
}

static void test_lend_and_retire(void **state)
{
	struct daemon *d = *state;
	struct client *cl;
	struct chunk *got[8];
	uint64_t ids[3], bad[3];
	uint32_t n, nbad, total = d->nchunks;
	char why[256];
	int err, pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);

	cl = lending_attach(d, NULL, getpid(), getuid(), pidfd, "t", 0, 40,
			    &err, why, sizeof(why));
	assert_non_null(cl);
	/* max 40 pages: 2 chunks. */
	assert_int_equal(cl->max_chunks, 2);
	assert_int_equal(lending_get(d, cl, 0, 8, got, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(lending_get(d, cl, 0, 1, got + 2, &n), -EDQUOT);
	assert_int_equal(d->n_lent, 2);
	books_agree(d);
	ids[0] = got[0]->id;
	ids[1] = 999999;
	ids[2] = got[0]->id;
	assert_int_equal(lending_put(d, cl, ids, 3, bad, &nbad), 1);
	assert_int_equal(nbad, 2);
	assert_int_equal(d->n_lent, 1);
	assert_null(reserve_find(d, ids[0])); /* retired: gone for good */
	assert_int_equal(d->n_pool + d->n_lent, total - 1);
	/* The refill replaces it on the next loop iteration. */
	for (int i = 0; i < 10; i++)
		sd_event_run(d->event, 0);
	assert_int_equal(d->n_pool + d->n_lent, total);
	books_agree(d);
	/* The process exits: what it still has is retired and replaced. */
	lending_release(d, cl);
	assert_int_equal(d->n_lent, 0);
	for (int i = 0; i < 10; i++)
		sd_event_run(d->event, 0);
	assert_int_equal(d->n_pool, total);
	assert_int_equal(d->stats.chunks_retired, 2);
	books_agree(d);
}

/* What the kernel broadcasts, as hotplug_parse reads it. */
static void uevent(struct daemon *d, const char *action, unsigned int cpu)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg),
			 "%s@/devices/system/cpu/cpu%u%cACTION=%s%c"
			 "DEVPATH=/devices/system/cpu/cpu%u%cSUBSYSTEM=cpu%c"
			 "SEQNUM=42%c",
			 action, cpu, 0, action, 0, cpu, 0, 0, 0);
	struct hotplug_event ev;

	assert_int_equal(hotplug_parse(msg, (size_t)n, &ev), 1);
	assert_int_equal(ev.cpu, cpu);
	if (ev.action == HOTPLUG_OFFLINE)
		reserve_cpu_offline(d, ev.cpu);
	else
		reserve_cpu_online(d, ev.cpu);
}

static void test_hotplug_drain_and_refill(void **state)
{
	struct daemon *d = *state;
	unsigned int cpu = d->ncpus > 1 ? 1 : 0;
	uint32_t global;

	if (!d->cpu[cpu].online)
		skip();
	assert_int_equal(d->cpu[cpu].free.n, 2);
	global = d->global.n;
	uevent(d, "offline", cpu);
	assert_false(d->cpu[cpu].online);
	assert_int_equal(d->cpu[cpu].free.n, 0);
	assert_int_equal(d->global.n, global + 2);
	/* Nothing is lent from it, and the balancer leaves it alone. */
	reserve_balance(d);
	assert_int_equal(d->cpu[cpu].free.n, 0);
	books_agree(d);
	uevent(d, "online", cpu);
	assert_true(d->cpu[cpu].online);
	assert_int_equal(d->cpu[cpu].free.n, 2);
	assert_int_equal(d->global.n, global);
	books_agree(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chunks_and_watermarks,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_lend_and_retire, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hotplug_drain_and_refill,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
