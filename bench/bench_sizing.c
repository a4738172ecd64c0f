// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Scenario 5: reserve sizing.  On the real rcupoold ($RCUPOOL_BUILD or
 * build/), one client runs T threads (default: one per CPU) that
 * malloc(64)+rcupool_free() flat out ("full rate"), or at --rate objects/s
 * per thread, paced every millisecond.
 *
 *  1. Pages in flight over time: with a reserve far larger than needed,
 *     a sampler thread reads rcupool_stats().held every millisecond; the
 *     series (condensed) and its mean, p99 and max are printed.
 *  2. The smallest reserve.pages_per_cpu with zero fallbacks at that rate:
 *     a bisection over short runs, each on a fresh daemon with
 *     global_pages=0, protect_pages=0 and client_max_pages=100% so the
 *     per-CPU lists are the whole reserve; the answer is checked once more.
 *     This is what sets the shipped default of reserve.pages_per_cpu.
 * Nothing here asserts a time.
 */
#define URCU_API_MAP 1
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <urcu/urcu-memb.h>

#include "bench_util.h"
#include "rcupool.h"

static int n_threads;
static unsigned long per_thread_rate; /* 0: flat out */
static unsigned long paced_rate = 2000000; /* per thread; 0: none */
static unsigned long series_ms = 1000, probe_ms = 300;
static uint32_t hi_ppc = 8192;
static uint32_t min_gap_us; /* --min-gap: reclaim_min_gap_us, 0: default */
static struct rcupool *pool;
static atomic_int stop;
static atomic_ullong total_objects;

#define MAX_SAMPLES 100000
static uint32_t samples[MAX_SAMPLES];
static size_t n_samples;

static void *worker(void *arg)
{
	uint64_t t0 = bench_now_ns(), done = 0;

	rcu_register_thread();
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint64_t due = done + 1024;

		if (per_thread_rate) {
			due = (uint64_t)((double)(bench_now_ns() - t0) * 1e-9 *
					 (double)per_thread_rate) +
			      per_thread_rate / 1000;
			if (due <= done) {
				bench_sleep_ms(1);
				continue;
			}
		}
		while (done < due) {
			void *o = malloc(64);

			if (!o)
				abort();
			rcupool_free(pool, o);
			done++;
		}
	}
	atomic_fetch_add(&total_objects, done);
	rcu_unregister_thread();
	return NULL;
}

struct result {
	bool ok;
	double rate; /* objects/s, all threads */
	uint64_t fallbacks, depletions, held_peak, reserve;
	uint64_t sync, throttled, gps, lat_p50, lat_p99;
	double gps_per_s;
	double fillers_pct; /* pages freed by the threads that filled them */
	double held_mean;
	uint32_t held_p99, held_max;
};

/* One run on a fresh daemon; samples held every ms when sample. */
static struct result run(uint32_t ppc, uint32_t global, unsigned long ms,
			 bool sample)
{
	char o_ppc[64], o_glob[64];
	const char *opts[] = {o_ppc,
			      o_glob,
			      "reserve.lock_memory=no",
			      "limits.client_max_pages=100%",
			      "limits.client_min_pages=0",
			      "limits.protect_pages=0",
			      NULL};
	struct rcupool_options o = {.size = sizeof(o),
				    .name = "bench_sizing",
				    .mode = RCUPOOL_MODE_DAEMON,
				    .reclaim_min_gap_us = min_gap_us};
	struct rcupool_stats st = {.size = sizeof(st)};
	struct result r = {0};
	pthread_t t[n_threads];
	struct benchd d;
	uint64_t t0, t1, end;

	snprintf(o_ppc, sizeof(o_ppc), "reserve.pages_per_cpu=%u", ppc);
	snprintf(o_glob, sizeof(o_glob), "reserve.global_pages=%u", global);
	if (benchd_start(&d, opts) < 0)
		return r;
	o.socket_path = d.sock;
	if (rcupool_open(&o, &pool) < 0) {
		benchd_stop(&d);
		return r;
	}
	atomic_store(&stop, 0);
	atomic_store(&total_objects, 0);
	n_samples = 0;
	t0 = bench_now_ns();
	end = t0 + ms * 1000000ull;
	for (int i = 0; i < n_threads; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	while (bench_now_ns() < end) {
		bench_sleep_ms(1);
		if (sample && n_samples < MAX_SAMPLES) {
			rcupool_stats(pool, &st);
			samples[n_samples++] = (uint32_t)st.held;
		}
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < n_threads; i++)
		pthread_join(t[i], NULL);
	t1 = bench_now_ns();
	rcupool_barrier(pool);
	rcupool_stats(pool, &st);
	r.ok = true;
	r.rate = (double)atomic_load(&total_objects) * 1e9 / (double)(t1 - t0);
	r.fallbacks = st.fallback_overflow + st.fallback_head +
		      st.fallback_sync;
	r.depletions = st.depletions;
	r.sync = st.fallback_sync;
	r.throttled = st.throttled;
	r.fillers_pct = st.pages_submitted ? 100.0 *
						     (double)st.pages_freed_by_fillers /
						     (double)st.pages_submitted
					   : 0;
	r.gps = st.grace_periods;
	r.gps_per_s = (double)st.grace_periods * 1e9 / (double)(t1 - t0);
	r.lat_p50 = st.gp_latency_p50_ns;
	r.lat_p99 = st.gp_latency_p99_ns;
	r.held_peak = st.held_peak;
	r.reserve = (uint64_t)ppc * (uint64_t)sysconf(_SC_NPROCESSORS_CONF) +
		    global;
	rcupool_close(pool);
	benchd_stop(&d);
	if (sample && n_samples) {
		uint32_t *s = malloc(n_samples * sizeof(*s));
		double sum = 0;

		memcpy(s, samples, n_samples * sizeof(*s));
		for (size_t i = 0; i < n_samples; i++)
			sum += s[i];
		qsort(s, n_samples, sizeof(*s), bench_cmp_u32);
		r.held_mean = sum / (double)n_samples;
		r.held_p99 = bench_pct(s, n_samples, 0.99);
		r.held_max = s[n_samples - 1];
		free(s);
	}
	return r;
}

static int scenario(bool json, bool first)
{
	/* 1. In flight over time, on a reserve that is not the limit. */
	struct result big = run(hi_ppc, 0, series_ms, true);

	if (!big.ok)
		return -1;
	/* Condensed series: 20 points, each the max of its slice. */
	uint32_t series[20] = {0};

	for (size_t i = 0; i < n_samples; i++) {
		size_t j = i * 20 / n_samples;

		if (samples[i] > series[j])
			series[j] = samples[i];
	}

	/* 2. Bisection: the smallest pages_per_cpu with zero fallbacks. */
	uint32_t lo = 16, hi = hi_ppc, found = 0;
	struct result probe, check = {0};
	int probes = 0;

	probe = run(lo, 0, probe_ms, false);
	probes++;
	if (probe.ok && probe.fallbacks == 0) {
		found = lo;
	} else {
		probe = run(hi, 0, probe_ms, false);
		probes++;
		if (probe.ok && probe.fallbacks == 0) {
			while (hi - lo > (hi / 16 > 8 ? hi / 16 : 8)) {
				uint32_t mid = lo + (hi - lo) / 2;

				probe = run(mid, 0, probe_ms, false);
				probes++;
				if (probe.ok && probe.fallbacks == 0)
					hi = mid;
				else
					lo = mid;
			}
			found = hi;
		}
	}
	/* A pass at the edge can be luck: check, and step up 25% on a miss. */
	for (int i = 0; found && i < 4; i++) {
		check = run(found, 0, probe_ms, false);
		probes++;
		if (check.ok && check.fallbacks == 0)
			break;
		found += found / 4 > 8 ? found / 4 : 8;
	}

	if (json) {
		printf("%s{\"threads\":%d,"
		       "\"rate_per_thread\":%lu,\"series_ms\":%lu,"
		       "\"probe_ms\":%lu,\"in_flight\":{\"pages_per_cpu\":%u,"
		       "\"objects_per_s\":%.0f,\"held_mean\":%.1f,"
		       "\"held_p99\":%u,\"held_max\":%u,\"held_peak\":%llu,"
		       "\"fallbacks\":%llu,\"fallback_sync\":%llu,"
		       "\"throttled\":%llu,\"grace_periods_per_s\":%.0f,"
		       "\"gp_latency_p50_ns\":%llu,\"gp_latency_p99_ns\":%llu,"
		       "\"series_max_per_slice\":[",
		       first ? "" : ",", n_threads, per_thread_rate, series_ms, probe_ms, hi_ppc,
		       big.rate, big.held_mean, big.held_p99, big.held_max,
		       (unsigned long long)big.held_peak,
		       (unsigned long long)big.fallbacks,
		       (unsigned long long)big.sync,
		       (unsigned long long)big.throttled, big.gps_per_s,
		       (unsigned long long)big.lat_p50,
		       (unsigned long long)big.lat_p99);
		for (int i = 0; i < 20; i++)
			printf("%s%u", i ? "," : "", series[i]);
		printf("]},\"min_pages_per_cpu\":%u,\"probes\":%d,"
		       "\"check\":{\"objects_per_s\":%.0f,\"fallbacks\":%llu,"
		       "\"depletions\":%llu,\"held_peak\":%llu}}",
		       found, probes, check.rate,
		       (unsigned long long)check.fallbacks,
		       (unsigned long long)check.depletions,
		       (unsigned long long)check.held_peak);
	} else {
		if (per_thread_rate)
			printf("reserve sizing: %d thread(s) of malloc(64)+"
			       "rcupool_free paced at %lu objects/s each\n",
			       n_threads, per_thread_rate);
		else
			printf("reserve sizing: %d thread(s) of malloc(64)+"
			       "rcupool_free flat out\n", n_threads);
		printf("  in flight over %lu ms (pages_per_cpu=%u, sampled "
		       "every ms): %.0f objects/s; held mean %.1f, p99 %u, max "
		       "%u, peak %llu; fallbacks %llu\n",
		       series_ms, hi_ppc, big.rate, big.held_mean, big.held_p99,
		       big.held_max, (unsigned long long)big.held_peak,
		       (unsigned long long)big.fallbacks);
		printf("  reclaim: %.0f grace periods/s, submission to return "
		       "p50 %.1f us, p99 %.1f us; %llu throttled, %llu sync "
		       "fallbacks; %.1f%% of pages freed by fillers\n",
		       big.gps_per_s, big.lat_p50 / 1e3, big.lat_p99 / 1e3,
		       (unsigned long long)big.throttled,
		       (unsigned long long)big.sync, big.fillers_pct);
		printf("  held, max per %lu ms slice:", series_ms / 20);
		for (int i = 0; i < 20; i++)
			printf(" %u", series[i]);
		printf("\n");
		if (found)
			printf("  smallest pages_per_cpu with zero fallbacks: %u "
			       "(%d probes of %lu ms); check run: %.0f "
			       "objects/s, fallbacks %llu, depletions %llu, "
			       "held peak %llu\n",
			       found, probes, probe_ms, check.rate,
			       (unsigned long long)check.fallbacks,
			       (unsigned long long)check.depletions,
			       (unsigned long long)check.held_peak);
		else
			printf("  no pages_per_cpu up to %u ran without "
			       "fallbacks\n",
			       hi_ppc);
	}
	return 0;
}

int main(int argc, char **argv)
{
	bool json = false;
	int c;
	static const struct option lopts[] = {
		{"threads", required_argument, NULL, 't'},
		{"rate", required_argument, NULL, 'r'},
		{"series-ms", required_argument, NULL, 's'},
		{"probe-ms", required_argument, NULL, 'p'},
		{"max-pages-per-cpu", required_argument, NULL, 'm'},
		{"min-gap", required_argument, NULL, 'g'},
		{"quick", no_argument, NULL, 'q'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{}};

	n_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	while ((c = getopt_long(argc, argv, "t:r:s:p:m:g:qjh", lopts, NULL)) != -1) {
		switch (c) {
		case 't':
			n_threads = atoi(optarg);
			break;
		case 'r':
			paced_rate = strtoul(optarg, NULL, 0);
			break;
		case 's':
			series_ms = strtoul(optarg, NULL, 0);
			break;
		case 'p':
			probe_ms = strtoul(optarg, NULL, 0);
			break;
		case 'm':
			hi_ppc = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'g':
			min_gap_us = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'q':
			series_ms = 1000;
			probe_ms = 300;
			break;
		case 'j':
			json = true;
			break;
		default:
			printf("usage: %s [--threads T] [--rate OBJ/S/THREAD] "
			       "[--series-ms MS] [--probe-ms MS]\n"
			       "       [--max-pages-per-cpu N] [--min-gap US] "
			       "[--quick] [--json]\n",
			       argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	if (n_threads < 1 || n_threads > 256 || !series_ms || !probe_ms ||
	    series_ms > MAX_SAMPLES || hi_ppc < 16) {
		fprintf(stderr, "bench_sizing: bad arguments\n");
		return 2;
	}

	if (json)
		printf("{\"benchmark\":\"sizing\",\"results\":[");
	per_thread_rate = 0;
	if (scenario(json, true) < 0)
		return 1;
	if (paced_rate) {
		per_thread_rate = paced_rate;
		if (scenario(json, false) < 0)
			return 1;
	}
	if (json)
		printf("]}\n");
	return 0;
}
