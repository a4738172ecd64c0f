// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <netlink/attr.h>

#include "stats.h"

#define F(a, t, k, n, h) {.attr = a, .type = t, .kind = k, .name = n, .help = h}
#define FU(a, t, k, n, h, u) {.attr = a, .type = t, .kind = k, .name = n, .help = h, .unit = u}

static const struct stats_field status_fields[] = {
	F(PROTO_STATUS_VERSION, STATS_STR, STATS_INFO, "version", "Daemon version"),
	F(PROTO_STATUS_PID, STATS_U32, STATS_INFO, "pid", "Daemon process id"),
	FU(PROTO_STATUS_UPTIME_USEC, STATS_U64, STATS_GAUGE, "uptime_usec", "Time since the daemon started", STATS_UNIT_USEC),
	FU(PROTO_STATUS_PAGE_SIZE, STATS_U32, STATS_GAUGE, "page_size", "Size of a reserve page", STATS_UNIT_BYTES),
	F(PROTO_STATUS_CPUS, STATS_U32, STATS_GAUGE, "cpus", "Possible CPUs, one list each"),
	F(PROTO_STATUS_CPUS_ONLINE, STATS_U32, STATS_GAUGE, "cpus_online", "CPUs online now"),
	F(PROTO_STATUS_PAGES_TOTAL, STATS_U64, STATS_GAUGE, "pages_total", "Every page of the reserve"),
	F(PROTO_STATUS_PAGES_FREE, STATS_U64, STATS_GAUGE, "pages_free", "Pages in the daemon's pools (a CPU pool or the global pool), not lent"),
	F(PROTO_STATUS_PAGES_GLOBAL, STATS_U64, STATS_GAUGE, "pages_global", "Pages in the daemon's global pool"),
	F(PROTO_STATUS_PAGES_HELD, STATS_U64, STATS_GAUGE, "pages_held", "Pages clients use now (filling or waiting for a grace period), from their counters"),
	F(PROTO_STATUS_CLIENTS, STATS_U32, STATS_GAUGE, "clients", "Clients attached now"),
	F(PROTO_STATUS_MAX_CLIENTS, STATS_U32, STATS_GAUGE, "max_clients", "Client slots"),
	F(PROTO_STATUS_DEPLETIONS, STATS_U64, STATS_COUNTER, "depletions", "Chunk requests the daemon's pools could not serve"),
	F(PROTO_STATUS_DENIED, STATS_U64, STATS_COUNTER, "denied", "Chunk requests refused by a client's max_pages"),
	F(PROTO_STATUS_FALLBACKS, STATS_U64, STATS_COUNTER, "fallbacks", "Frees that took a fallback (overflow, head or sync)"),
	F(PROTO_STATUS_KICKS, STATS_U64, STATS_COUNTER, "kicks", "Chunk requests received from clients"),
	F(PROTO_STATUS_BALANCE_RUNS, STATS_U64, STATS_COUNTER, "balance_runs", "Balancer passes"),
	F(PROTO_STATUS_PAGES_MOVED, STATS_U64, STATS_COUNTER, "pages_moved", "Pages (whole chunks) the balancer moved between pools"),
	F(PROTO_STATUS_PAGES_RECLAIMED, STATS_U64, STATS_COUNTER, "pages_reclaimed", "Pages of chunks taken back from clients whose process exited"),
	F(PROTO_STATUS_PAGES_REPAIRED, STATS_U64, STATS_COUNTER, "pages_repaired", "Always 0: the books are exact by construction (kept for compatibility)"),
	F(PROTO_STATUS_CENSUS_RUNS, STATS_U64, STATS_COUNTER, "census_runs", "Censuses taken"),
	F(PROTO_STATUS_BAD_INDEX, STATS_U64, STATS_COUNTER, "bad_index", "Inconsistencies the census found in the daemon's books (0 unless a bug)"),
	F(PROTO_STATUS_LOCKED, STATS_U32, STATS_GAUGE, "locked", "1 when the reserve is locked in memory"),
	F(PROTO_STATUS_HUGETLB, STATS_U32, STATS_GAUGE, "hugetlb", "1 when the reserve is backed by huge pages"),
	F(PROTO_STATUS_RELOADS, STATS_U64, STATS_COUNTER, "reloads", "Configuration reloads that took effect"),
	F(PROTO_STATUS_PAGES_LENT, STATS_U64, STATS_GAUGE, "pages_lent", "Pages in chunks lent to clients"),
	F(PROTO_STATUS_CHUNK_PAGES, STATS_U32, STATS_GAUGE, "chunk_pages", "Pages per chunk"),
	F(PROTO_STATUS_CHUNKS_TOTAL, STATS_U64, STATS_GAUGE, "chunks_total", "Chunks in a pool or lent"),
	F(PROTO_STATUS_CHUNKS_FREE, STATS_U64, STATS_GAUGE, "chunks_free", "Chunks in a CPU pool or the global pool"),
	F(PROTO_STATUS_CHUNKS_RETIRED, STATS_U64, STATS_COUNTER, "chunks_retired", "Chunks closed after their lease ended (never lent twice)"),
	F(PROTO_STATUS_BAD, STATS_U64, STATS_COUNTER, "bad", "Bad chunk ids and scribbled counters seen from clients"),
	FU(PROTO_STATUS_STARTED_USEC, STATS_U64, STATS_GAUGE, "started_usec", "When this instance of the daemon started, since the Unix epoch", STATS_UNIT_USEC),
	F(PROTO_STATUS_CLIENTS_ADOPTED, STATS_U32, STATS_GAUGE, "clients_adopted", "Clients this instance took over from the previous one at its start (fd store)"),
	F(PROTO_STATUS_CLIENTS_REATTACHED, STATS_U64, STATS_COUNTER, "clients_reattached", "Clients that attached again to this instance after losing a previous one"),
	F(PROTO_STATUS_PAGES_RECALLED, STATS_U64, STATS_COUNTER, "pages_recalled", "Pages (whole chunks) asked back from clients' idle surplus when the pools ran dry for another"),
};

static const struct stats_field cpu_fields[] = {
	F(PROTO_CPU_ID, STATS_U32, STATS_LABEL, "cpu", "CPU number"),
	F(PROTO_CPU_ONLINE, STATS_U32, STATS_GAUGE, "online", "1 when the CPU is online"),
	F(PROTO_CPU_FREE, STATS_U64, STATS_GAUGE, "free", "Pages in the CPU's pool, above its protect floor"),
	F(PROTO_CPU_PROTECT, STATS_U64, STATS_GAUGE, "protect", "Pages of the CPU's pool lent only to clients under their min"),
	F(PROTO_CPU_LOW, STATS_U32, STATS_GAUGE, "low", "Low watermark, pages"),
	F(PROTO_CPU_TARGET, STATS_U32, STATS_GAUGE, "target", "Refill target, pages"),
	F(PROTO_CPU_HIGH, STATS_U32, STATS_GAUGE, "high", "High watermark, pages"),
	F(PROTO_CPU_EMPTY, STATS_U64, STATS_COUNTER, "empty", "Chunk requests for this CPU its pool could not serve"),
	F(PROTO_CPU_MOVED_IN, STATS_U64, STATS_COUNTER, "moved_in", "Pages the balancer put in the CPU's pool"),
	F(PROTO_CPU_MOVED_OUT, STATS_U64, STATS_COUNTER, "moved_out", "Pages the balancer took out of the CPU's pool"),
};

static const struct stats_field client_fields[] = {
	F(PROTO_CLIENT_SLOT, STATS_U32, STATS_LABEL, "slot", "Client slot in the reserve"),
	F(PROTO_CLIENT_PID, STATS_U32, STATS_INFO, "pid", "Client process id"),
	F(PROTO_CLIENT_UID, STATS_U32, STATS_INFO, "uid", "Client user id"),
	F(PROTO_CLIENT_NAME, STATS_STR, STATS_LABEL, "name", "Client name"),
	F(PROTO_CLIENT_HELD, STATS_U64, STATS_GAUGE, "held", "Reserve pages the client uses now (its counter, clamped to lent)"),
	F(PROTO_CLIENT_HELD_PEAK, STATS_U64, STATS_GAUGE, "held_peak", "Most reserve pages the client used at once"),
	F(PROTO_CLIENT_MIN_PAGES, STATS_U32, STATS_GAUGE, "min_pages", "Protected minimum, pages"),
	F(PROTO_CLIENT_MAX_PAGES, STATS_U32, STATS_GAUGE, "max_pages", "Hard maximum, pages"),
	F(PROTO_CLIENT_PAGES_GOT, STATS_U64, STATS_COUNTER, "pages_got", "Pages the client took off its lists"),
	F(PROTO_CLIENT_DENIED, STATS_U64, STATS_COUNTER, "denied", "Page requests refused by max_pages"),
	F(PROTO_CLIENT_DEPLETIONS, STATS_U64, STATS_COUNTER, "depletions", "Page requests that found the client's lists empty"),
	F(PROTO_CLIENT_FB_OVERFLOW, STATS_U64, STATS_COUNTER, "fallback_overflow", "Heap pages used as fallback"),
	F(PROTO_CLIENT_FB_HEAD, STATS_U64, STATS_COUNTER, "fallback_head", "Objects freed through their own rcu_head"),
	F(PROTO_CLIENT_FB_SYNC, STATS_U64, STATS_COUNTER, "fallback_sync", "Objects freed after a grace period of their own (last resort)"),
	FU(PROTO_CLIENT_ATTACHED_USEC, STATS_U64, STATS_GAUGE, "attached_usec", "Time since the client attached", STATS_UNIT_USEC),
	F(PROTO_CLIENT_OBJECTS, STATS_U64, STATS_COUNTER, "objects", "Objects passed to rcupool_free"),
	F(PROTO_CLIENT_LENT, STATS_U64, STATS_GAUGE, "lent", "Pages in chunks lent to the client now"),
	F(PROTO_CLIENT_BAD, STATS_U64, STATS_COUNTER, "bad", "Bad chunk ids sent and scribbled counters seen"),
	F(PROTO_CLIENT_DETACHED, STATS_U32, STATS_GAUGE, "detached", "1 when its connection closed while its process lives"),
	F(PROTO_CLIENT_THROTTLED, STATS_U64, STATS_COUNTER, "throttled", "Frees that waited for the pool's reclaim (backpressure)"),
	FU(PROTO_CLIENT_THROTTLED_NS, STATS_U64, STATS_COUNTER, "throttled_ns", "Time frees waited for the pool's reclaim", STATS_UNIT_NSEC),
	F(PROTO_CLIENT_GRACE_PERIODS, STATS_U64, STATS_COUNTER, "grace_periods", "Grace periods run by the pool's reclaim"),
	FU(PROTO_CLIENT_GP_P50_NS, STATS_U64, STATS_GAUGE, "gp_latency_p50_ns", "Page submission to its return, median", STATS_UNIT_NSEC),
	FU(PROTO_CLIENT_GP_P99_NS, STATS_U64, STATS_GAUGE, "gp_latency_p99_ns", "Page submission to its return, 99th percentile", STATS_UNIT_NSEC),
};

#define SET(n, m, f) {.name = n, .maxattr = m, .fields = f, .nfields = sizeof(f) / sizeof(f[0])}

const struct stats_set stats_status = SET("status", PROTO_STATUS_MAX, status_fields);
const struct stats_set stats_cpu = SET("cpu", PROTO_CPU_MAX, cpu_fields);
const struct stats_set stats_client = SET("client", PROTO_CLIENT_MAX, client_fields);

_Static_assert(PROTO_STATUS_MAX <= STATS_ATTR_MAX, "stats row too small");
_Static_assert(PROTO_CPU_MAX <= STATS_ATTR_MAX, "stats row too small");
_Static_assert(PROTO_CLIENT_MAX <= STATS_ATTR_MAX, "stats row too small");

const char *stats_base_name(const struct stats_field *f, char *buf,
			    size_t len)
{
	size_t n = strlen(f->name);

	if (f->unit == STATS_UNIT_USEC && n > 5 &&
	    !strcmp(f->name + n - 5, "_usec")) {
		snprintf(buf, len, "%.*s", (int)(n - 5), f->name);
		return buf;
	}
	if (f->unit == STATS_UNIT_NSEC && n > 3 &&
	    !strcmp(f->name + n - 3, "_ns")) {
		snprintf(buf, len, "%.*s", (int)(n - 3), f->name);
		return buf;
	}
	return f->name;
}

const struct stats_field *stats_field(const struct stats_set *set, int attr)
{
	for (size_t i = 0; i < set->nfields; i++)
		if (set->fields[i].attr == attr)
			return &set->fields[i];
	return NULL;
}

int stats_put(const struct stats_set *set, struct nl_msg *msg, int nest_attr,
	      const struct stats_row *row)
{
	struct nlattr *nest = nla_nest_start(msg, nest_attr);
	int r = 0;

	if (!nest)
		return -ENOMEM;
	for (size_t i = 0; i < set->nfields && r >= 0; i++) {
		const struct stats_field *f = &set->fields[i];

		if (!row->has[f->attr])
			continue;
		switch (f->type) {
		case STATS_U32:
			r = nla_put_u32(msg, f->attr, (uint32_t)row->u[f->attr]);
			break;
		case STATS_U64:
			r = nla_put_u64(msg, f->attr, row->u[f->attr]);
			break;
		case STATS_STR:
			r = nla_put_string(msg, f->attr,
					   row->s[f->attr] ? row->s[f->attr] : "");
			break;
		}
	}
	if (r < 0) {
		nla_nest_cancel(msg, nest);
		return proto_errno(r);
	}
	nla_nest_end(msg, nest);
	return 0;
}

int stats_parse(const struct stats_set *set, const struct nlattr *nest,
		struct stats_row *row)
{
	const struct nlattr *nla;
	int rem;

	memset(row, 0, sizeof(*row));
	nla_for_each_nested(nla, (struct nlattr *)nest, rem)
	{
		const struct stats_field *f = stats_field(set, nla_type(nla));
		int len = nla_len(nla);

		if (!f)
			continue; /* newer daemon: a field we do not know */
		switch (f->type) {
		case STATS_U32:
			if (len != 4)
				return -EBADMSG;
			row->u[f->attr] = nla_get_u32((struct nlattr *)nla);
			break;
		case STATS_U64:
			if (len != 8)
				return -EBADMSG;
			row->u[f->attr] = nla_get_u64((struct nlattr *)nla);
			break;
		case STATS_STR:
			if (len < 1 || memchr(nla_data(nla), '\0', len) !=
						(char *)nla_data(nla) + len - 1)
				return -EBADMSG;
			row->s[f->attr] = nla_data(nla);
			break;
		}
		row->has[f->attr] = true;
	}
	return rem == 0 ? 0 : -EBADMSG;
}
