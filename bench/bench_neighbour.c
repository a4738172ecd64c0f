// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Scenario 4: noisy neighbour.  Starts the real rcupoold of the build under
 * test ($RCUPOOL_BUILD or build/) twice on a temporary socket, once with
 * limits on and once with limits off, on the same small reserve.  Each time:
 *
 *   victim   a process (client name "bench_victim") freeing at a steady
 *            rate (--rate objects/s, paced every millisecond, catching up
 *            flat out when behind) for --duration ms alone, then again for
 *            --duration ms while
 *   abuser   a second process ("bench_abuser") runs --abuser-threads
 *            threads that malloc+rcupool_free flat out, plus one thread
 *            that stays in a read-side critical section 50 ms out of every
 *            51, so the abuser's grace periods are long and its pages stay
 *            held: it takes every reserve page it is allowed to.
 *
 * Printed: the victim's throughput with / alone (objects done per second of
 * wall time; 1.00 means it kept its rate), its CPU cost per object with /
 * alone, its fallbacks and depletions in each phase, and the abuser's
 * denials, fallbacks and peak of pages held.
 *
 * Limits on:  limits.client_max_pages=25% (the abuser is capped),
 *             client.bench_victim.min_pages=128 (the victim is protected)
 *             and max_pages=50% (its own cap above its in-flight peak:
 *             under CPU contention it holds ~190 pages, and at 25% its own
 *             cap, not the abuser, made it fall back).
 * Limits off: limits.client_max_pages=100%, no minimum, no protect floor.
 * Nothing here asserts a time.
 */
#define URCU_API_MAP 1
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <urcu/urcu-memb.h>

#include "bench_util.h"
#include "rcupool.h"

struct phase {
	uint64_t objects, wall_ns, busy_ns;
	uint64_t fallbacks, fb_sync, depletions, denied, held_peak;
};

struct abuse {
	uint64_t objects, denied, fallbacks, fb_sync, held_peak, depletions;
};

/* Shared between the parent and its two children (MAP_SHARED). */
struct shared {
	atomic_int victim_state; /* 1 alone done, 3 with done, -1 failed */
	atomic_int go_with;	 /* parent: abuser is running */
	atomic_int abuser_state; /* 1 running, 2 reported, -1 failed */
	atomic_int abuser_stop;
	struct phase alone, with;
	struct abuse abuse;
};

static struct shared *sh;
static unsigned long rate = 1000000, duration_ms = 1000;
static int abuser_threads = 8;
static const char *sock;

static int open_pool(const char *name, struct rcupool **p)
{
	struct rcupool_options o = {.size = sizeof(o),
				    .name = name,
				    .mode = RCUPOOL_MODE_DAEMON,
				    .socket_path = sock};
	char err[256] = "";
	int r;

	o.errbuf = err;
	o.errbuf_len = sizeof(err);
	r = rcupool_open(&o, p);
	if (r < 0)
		fprintf(stderr, "%s: rcupool_open: %d %s\n", name, r, err);
	return r;
}

static void fb_of(struct rcupool *p, struct phase *ph, bool end)
{
	struct rcupool_stats st = {.size = sizeof(st)};
	uint64_t fb, sign = end ? 1 : (uint64_t)-1;

	rcupool_stats(p, &st);
	fb = st.fallback_overflow + st.fallback_head + st.fallback_sync;
	ph->fallbacks += sign * fb;
	ph->fb_sync += sign * st.fallback_sync;
	ph->depletions += sign * st.depletions;
	ph->denied += sign * st.denied;
	ph->held_peak = st.held_peak; /* the most so far (both phases) */
}

/* One paced phase of the victim. */
static void victim_phase(struct rcupool *p, struct phase *ph)
{
	uint64_t t0 = bench_now_ns(), end = t0 + duration_ms * 1000000ull;
	uint64_t done = 0, busy = 0, now;

	fb_of(p, ph, false);
	while ((now = bench_now_ns()) < end) {
		uint64_t due = (uint64_t)((double)(now - t0) * 1e-9 *
					  (double)rate) + rate / 1000;
		uint64_t b0 = now;

		while (done < due) {
			void *o = malloc(64);

			if (!o)
				abort();
			rcupool_free(p, o);
			done++;
		}
		busy += bench_now_ns() - b0;
		bench_sleep_ms(1);
	}
	ph->objects = done;
	ph->wall_ns = bench_now_ns() - t0;
	ph->busy_ns = busy;
	fb_of(p, ph, true);
}

static int victim_main(void)
{
	struct rcupool *p;

	rcu_register_thread();
	if (open_pool("bench_victim", &p) < 0) {
		atomic_store(&sh->victim_state, -1);
		return 1;
	}
	/* Warm up: the first pages, the call_rcu thread. */
	for (int i = 0; i < 100000; i++)
		rcupool_free(p, malloc(64));
	rcupool_barrier(p);
	victim_phase(p, &sh->alone);
	atomic_store(&sh->victim_state, 1);
	while (!atomic_load(&sh->go_with))
		bench_sleep_ms(1);
	victim_phase(p, &sh->with);
	rcupool_close(p);
	rcu_unregister_thread();
	atomic_store(&sh->victim_state, 3);
	return 0;
}

static struct rcupool *abuser_pool;
static atomic_ullong abuser_objects;

static void *abuser_hammer(void *arg)
{
	uint64_t n = 0;

	rcu_register_thread();
	while (!atomic_load_explicit(&sh->abuser_stop, memory_order_relaxed)) {
		for (int i = 0; i < 1024; i++) {
			void *o = malloc(64);

			if (!o)
				abort();
			rcupool_free(abuser_pool, o);
		}
		n += 1024;
	}
	atomic_fetch_add(&abuser_objects, n);
	rcu_unregister_thread();
	return NULL;
}

/* Long read-side sections: the abuser's grace periods take ~50 ms. */
static void *abuser_hold(void *arg)
{
	rcu_register_thread();
	while (!atomic_load(&sh->abuser_stop)) {
		rcu_read_lock();
		bench_sleep_ms(50);
		rcu_read_unlock();
		bench_sleep_ms(1);
	}
	rcu_unregister_thread();
	return NULL;
}

static int abuser_main(void)
{
	pthread_t t[abuser_threads + 1];
	struct rcupool_stats st = {.size = sizeof(st)};

	if (open_pool("bench_abuser", &abuser_pool) < 0) {
		atomic_store(&sh->abuser_state, -1);
		return 1;
	}
	pthread_create(&t[abuser_threads], NULL, abuser_hold, NULL);
	for (int i = 0; i < abuser_threads; i++)
		pthread_create(&t[i], NULL, abuser_hammer, NULL);
	atomic_store(&sh->abuser_state, 1);
	for (int i = 0; i <= abuser_threads; i++)
		pthread_join(t[i], NULL);
	rcupool_stats(abuser_pool, &st);
	sh->abuse = (struct abuse){
		.objects = atomic_load(&abuser_objects),
		.denied = st.denied,
		.fallbacks = st.fallback_overflow + st.fallback_head +
			     st.fallback_sync,
		.fb_sync = st.fallback_sync,
		.held_peak = st.held_peak,
		.depletions = st.depletions};
	atomic_store(&sh->abuser_state, 2);
	/* No close: exiting is what an abuser does; the daemon reclaims. */
	_exit(0);
}

static pid_t spawn(int (*fn)(void))
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(fn());
	return pid;
}

static int wait_state(atomic_int *s, int want, int timeout_ms)
{
	for (int i = 0; i < timeout_ms; i++) {
		int v = atomic_load(s);

		if (v == want)
			return 0;
		if (v < 0)
			return -1;
		bench_sleep_ms(1);
	}
	return -1;
}

struct run {
	const char *name;
	struct phase alone, with;
	struct abuse abuse;
	uint32_t victim_min, abuser_max;
	bool ok;
};

static void run_once(struct run *r, const char *const *opts)
{
	struct benchd d;
	pid_t v, a;
	int status;

	memset(sh, 0, sizeof(*sh));
	r->ok = false;
	if (benchd_start(&d, opts) < 0)
		return;
	sock = d.sock;
	v = spawn(victim_main);
	if (wait_state(&sh->victim_state, 1, 60000) < 0)
		goto out;
	a = spawn(abuser_main);
	if (wait_state(&sh->abuser_state, 1, 10000) < 0)
		goto out_a;
	bench_sleep_ms(200); /* the abuser takes what it can */
	atomic_store(&sh->go_with, 1);
	if (wait_state(&sh->victim_state, 3, 60000) < 0)
		goto out_a;
	r->ok = true;
out_a:
	atomic_store(&sh->abuser_stop, 1);
	if (wait_state(&sh->abuser_state, 2, 20000) < 0)
		kill(a, SIGKILL);
	waitpid(a, &status, 0);
out:
	if (!r->ok)
		kill(v, SIGKILL);
	waitpid(v, &status, 0);
	r->alone = sh->alone;
	r->with = sh->with;
	r->abuse = sh->abuse;
	benchd_stop(&d);
}

static double tput(const struct phase *p)
{
	return p->wall_ns ? (double)p->objects * 1e9 / (double)p->wall_ns : 0;
}

static double busy(const struct phase *p)
{
	return p->objects ? (double)p->busy_ns / (double)p->objects : 0;
}

int main(int argc, char **argv)
{
	bool json = false;
	int c;
	static const struct option lo[] = {
		{"rate", required_argument, NULL, 'r'},
		{"duration", required_argument, NULL, 'd'},
		{"abuser-threads", required_argument, NULL, 't'},
		{"quick", no_argument, NULL, 'q'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{}};

	while ((c = getopt_long(argc, argv, "r:d:t:qjh", lo, NULL)) != -1) {
		switch (c) {
		case 'r':
			rate = strtoul(optarg, NULL, 0);
			break;
		case 'd':
			duration_ms = strtoul(optarg, NULL, 0);
			break;
		case 't':
			abuser_threads = atoi(optarg);
			break;
		case 'q':
			duration_ms = 1000;
			break;
		case 'j':
			json = true;
			break;
		default:
			printf("usage: %s [--rate OBJ/S] [--duration MS] "
			       "[--abuser-threads N] [--quick] [--json]\n",
			       argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	if (rate < 1000 || !duration_ms || abuser_threads < 1 ||
	    abuser_threads > 256) {
		fprintf(stderr, "bench_neighbour: bad arguments\n");
		return 2;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;

	/* 2 x 256 per CPU + 256 global on 2 CPUs: 768 pages, 3 MiB. */
	static const char *const on[] = {
		"reserve.pages_per_cpu=256", "reserve.global_pages=256",
		"reserve.lock_memory=no", "limits.client_max_pages=25%",
		"limits.client_min_pages=16", "limits.protect_pages=32",
		"client.bench_victim.min_pages=128",
		"client.bench_victim.max_pages=50%", NULL};
	static const char *const off[] = {
		"reserve.pages_per_cpu=256", "reserve.global_pages=256",
		"reserve.lock_memory=no", "limits.client_max_pages=100%",
		"limits.client_min_pages=0", "limits.protect_pages=0", NULL};
	struct run runs[2] = {{.name = "limits on"}, {.name = "limits off"}};

	run_once(&runs[0], on);
	run_once(&runs[1], off);

	if (json) {
		printf("{\"benchmark\":\"neighbour\",\"rate\":%lu,"
		       "\"duration_ms\":%lu,\"abuser_threads\":%d,\"results\":[",
		       rate, duration_ms, abuser_threads);
		for (int i = 0; i < 2; i++) {
			struct run *r = &runs[i];

			printf("%s{\"limits\":%s,\"ok\":%s,"
			       "\"victim_alone_per_s\":%.0f,"
			       "\"victim_with_per_s\":%.0f,"
			       "\"throughput_ratio\":%.4f,"
			       "\"victim_busy_ns_alone\":%.1f,"
			       "\"victim_busy_ns_with\":%.1f,"
			       "\"victim_fallbacks_alone\":%llu,"
			       "\"victim_fallbacks_with\":%llu,"
			       "\"victim_sync_fallbacks_with\":%llu,"
			       "\"victim_depletions_with\":%llu,"
			       "\"victim_held_peak\":%llu,"
			       "\"abuser_objects\":%llu,\"abuser_denied\":%llu,"
			       "\"abuser_fallbacks\":%llu,"
			       "\"abuser_held_peak\":%llu}",
			       i ? "," : "", i ? "false" : "true",
			       r->ok ? "true" : "false", tput(&r->alone),
			       tput(&r->with),
			       tput(&r->alone) ? tput(&r->with) / tput(&r->alone)
					       : 0,
			       busy(&r->alone), busy(&r->with),
			       (unsigned long long)r->alone.fallbacks,
			       (unsigned long long)r->with.fallbacks,
			       (unsigned long long)r->with.fb_sync,
			       (unsigned long long)r->with.depletions,
			       (unsigned long long)r->with.held_peak,
			       (unsigned long long)r->abuse.objects,
			       (unsigned long long)r->abuse.denied,
			       (unsigned long long)r->abuse.fallbacks,
			       (unsigned long long)r->abuse.held_peak);
		}
		printf("]}\n");
	} else {
		printf("noisy neighbour: victim at %lu objects/s for %lu ms "
		       "alone, then with an abuser of %d threads (+1 holding "
		       "its grace periods); reserve 256/CPU + 256 global\n",
		       rate, duration_ms, abuser_threads);
		printf("  %-11s %9s %9s %7s %9s %9s %8s %8s %7s %9s %9s %8s\n",
		       "", "alone/s", "with/s", "ratio", "ns alone", "ns with",
		       "vfb alon", "vfb with", "v.held", "ab.denied",
		       "ab.fallbk", "ab.held");
		for (int i = 0; i < 2; i++) {
			struct run *r = &runs[i];

			if (!r->ok) {
				printf("  %-11s failed\n", r->name);
				continue;
			}
			printf("  %-11s %9.0f %9.0f %6.3fx %9.1f %9.1f %8llu "
			       "%8llu %7llu %9llu %9llu %8llu\n",
			       r->name, tput(&r->alone), tput(&r->with),
			       tput(&r->with) / tput(&r->alone),
			       busy(&r->alone), busy(&r->with),
			       (unsigned long long)r->alone.fallbacks,
			       (unsigned long long)r->with.fallbacks,
			       (unsigned long long)r->with.held_peak,
			       (unsigned long long)r->abuse.denied,
			       (unsigned long long)r->abuse.fallbacks,
			       (unsigned long long)r->abuse.held_peak);
		}
	}
	return runs[0].ok && runs[1].ok ? 0 : 1;
}
