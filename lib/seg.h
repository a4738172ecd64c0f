/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_SEG_H
#define RCUPOOL_SEG_H

/*
 * A page reserve's lists and books.  Two kinds:
 *
 *  - a client's PRIVATE segment (seg_private_create, DESIGN.md section 3):
 *    the lists, owner[] and next[] live in the process's own anonymous
 *    memory, nobody else maps them; the pages are a reserved virtual
 *    range into which lent chunks are mapped one chunk-sized slot each
 *    (page index = slot * chunk_pages + i, so seg_page() stays one
 *    multiply-add).  A slot with no chunk mapped is PROT_NONE: its pages
 *    are on no list and never held (chunk_present[slot] == 0).
 *  - the old SHARED segment (seg_create / seg_map), one memfd mapped by the
 *    daemon and every client; kept only for the daemon until lib/lend_daemon.c
 *    and the daemon's chunk books replace it.  The layout below is its ABI.
 *
 *   [header | global block | CPU blocks | client slots | owner[] | next[] | pages]
 *
 * Every region is cache-line aligned, the pages page-aligned.  Lists are
 * Treiber stacks over page indices (see stack.h): links live in next[],
 * outside the pages, so a page's whole size holds pointers.  owner[page]
 * says who holds a page that is not on a list, which makes a census
 * possible at any time (census.h).
 */

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SEG_MAGIC	 UINT64_C(0x4c4f4f5055435252) /* "RRCUPOOL" little endian */
#define SEG_VERSION	 1
#define SEG_CACHELINE	 64
#define SEG_MAX_PAGES	 (UINT32_C(1) << 30) /* 4 TiB of 4 KiB pages */
#define SEG_MAX_SLOTS	 4096
#define SEG_NAME_MAX	 64

/*
 * owner[] values: a page on a list is OWNER_FREE, a held one its slot + 1.
 * OWNER_REPAIR marks a page the daemon's census suspects lost: any client
 * that takes or gives back the page overwrites the mark, which is how the
 * daemon knows the page was not lost after all (see census.h).
 */
#define SEG_OWNER_FREE	 0u
#define SEG_OWNER_REPAIR UINT32_MAX
#define seg_owner_of_slot(slot) ((uint32_t)(slot) + 1u)

struct seg_stack {
	/* {ABA tag: high 32 bits, page index + 1: low 32 bits}; 0 = empty. */
	_Atomic uint64_t head;
};

/* Per-list counters, written only on slow paths (never per page). */
struct seg_counters {
	_Atomic uint64_t empty;	   /* a client found the list empty */
	_Atomic uint64_t moved_in;  /* pages the balancer moved in */
	_Atomic uint64_t moved_out; /* pages the balancer moved out */
};

/* One per possible CPU, two cache lines: the lists alone on the first. */
struct seg_cpu {
	struct seg_stack free;	    /* what clients pop and push */
	struct seg_stack protect;   /* floor for clients under their min */
	uint8_t pad0[SEG_CACHELINE - 2 * sizeof(struct seg_stack)];
	/* Limits, written by the daemon, read by clients per page request. */
	_Atomic uint32_t online;
	_Atomic uint32_t low;
	_Atomic uint32_t high;
	_Atomic uint32_t target;
	_Atomic uint32_t protect_pages;
	uint32_t pad1;
	struct seg_counters stats;
	uint8_t pad2[SEG_CACHELINE - 6 * sizeof(uint32_t) -
		     sizeof(struct seg_counters)];
} __attribute__((aligned(SEG_CACHELINE)));

struct seg_global {
	struct seg_stack free;
	uint8_t pad0[SEG_CACHELINE - sizeof(struct seg_stack)];
	struct seg_counters stats;
	uint8_t pad1[SEG_CACHELINE - sizeof(struct seg_counters)];
} __attribute__((aligned(SEG_CACHELINE)));

enum seg_slot_state {
	SEG_SLOT_FREE = 0,
	SEG_SLOT_ATTACHED = 1,
	SEG_SLOT_DEAD = 2, /* peer gone, daemon reclaiming its pages */
};

/*
 * A client's slot.  The daemon writes identity and limits at attach; the
 * client writes its own counters.  Counters are per client, so no two
 * processes write one cache line on the fast path.
 */
struct seg_slot {
	_Atomic uint32_t state;
	_Atomic uint32_t generation; /* bumped at every attach of this slot */
	_Atomic uint32_t pid;
	_Atomic uint32_t min_pages;
	_Atomic uint32_t max_pages;
	uint32_t pad0;
	char name[SEG_NAME_MAX];
	uint8_t pad1[SEG_CACHELINE * 2 - 6 * sizeof(uint32_t) - SEG_NAME_MAX];
	/* Written by the client. */
	_Atomic uint64_t held;	     /* reserve pages owned now */
	_Atomic uint64_t held_peak;
	_Atomic uint64_t pages_got;   /* pages taken from the reserve */
	_Atomic uint64_t denied;      /* requests refused by max_pages */
	_Atomic uint64_t depletions;  /* every list tried was empty */
	_Atomic uint64_t fb_overflow; /* fallback: heap page */
	_Atomic uint64_t fb_head;     /* fallback: the object's rcu_head */
	_Atomic uint64_t fb_sync;     /* fallback: synchronize_rcu() */
	_Atomic uint64_t objects;     /* objects freed through the reserve */
} __attribute__((aligned(SEG_CACHELINE)));

struct seg_header {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size; /* sizeof(struct seg_header) */
	uint32_t page_size;
	uint32_t ncpus;	 /* possible CPUs */
	uint32_t npages;
	uint32_t nslots;
	uint64_t global_off;
	uint64_t cpu_off;
	uint64_t slot_off;
	uint64_t owner_off;
	uint64_t next_off;
	uint64_t pages_off;
	uint64_t size; /* bytes the layout needs; the file may be larger */
	uint32_t flags;
	uint32_t daemon_pid;
	/* Limits for every client, written by the daemon, read per request. */
	_Atomic uint32_t overflow_pages;    /* heap pages a client may add */
	_Atomic uint32_t drain_interval_ms; /* how long a partial page waits */
	/* Corruption seen by anyone: an index out of range, a bad owner. */
	_Atomic uint64_t bad_index;
	_Atomic uint64_t generation; /* bumped by each daemon start */
} __attribute__((aligned(SEG_CACHELINE)));

#define SEG_F_HUGETLB (1u << 0)
#define SEG_F_LOCKED  (1u << 1)

/* Sizes and offsets of every region, a pure function of four numbers. */
struct seg_layout {
	uint32_t page_size;
	uint32_t ncpus;
	uint32_t npages;
	uint32_t nslots;
	uint64_t global_off;
	uint64_t cpu_off;
	uint64_t slot_off;
	uint64_t owner_off;
	uint64_t next_off;
	uint64_t pages_off;
	uint64_t size;
};

enum seg_lock {
	SEG_LOCK_NO,	   /* never mlock */
	SEG_LOCK_YES,	   /* try; carry on unlocked if the kernel says no */
	SEG_LOCK_REQUIRED, /* fail creation if the reserve cannot be locked */
};

enum seg_huge {
	SEG_HUGE_NO,
	SEG_HUGE_AUTO, /* hugetlb if the system has huge pages, else normal */
	SEG_HUGE_YES,  /* hugetlb or fail */
};

struct seg_params {
	uint32_t page_size; /* 0: 4096 */
	uint32_t ncpus;	    /* 0: possible CPUs of this machine */
	uint32_t npages;
	uint32_t nslots;
	enum seg_lock lock;
	enum seg_huge huge;
	const char *name; /* memfd name, for /proc/PID/fd; NULL: "rcupool" */
};

/* What a process sees of a mapped segment; pointers into its own mapping. */
struct seg {
	void *base;
	size_t map_size;
	int fd;
	uint32_t page_size;
	uint32_t ncpus;
	uint32_t npages;
	uint32_t nslots;
	struct seg_header *hdr;
	struct seg_global *global;
	struct seg_cpu *cpu;
	struct seg_slot *slot;
	_Atomic uint32_t *owner;
	_Atomic uint32_t *next;
	char *pages;
	bool hugetlb;
	bool locked;
	/* Private segments only (0 / NULL for a shared one). */
	uint32_t chunk_pages;	       /* pages per chunk slot */
	uint32_t nchunks;	       /* slots: npages / chunk_pages */
	_Atomic uint32_t *chunk_free;  /* [nchunks] pages of it on no holder */
	_Atomic uint8_t *chunk_present; /* [nchunks] a chunk is mapped there */
	size_t meta_size;	       /* the private metadata mapping */
};

/* Why a create or map failed, in words a user can act on. */
struct seg_error {
	char msg[256];
};

/* 0, or -EINVAL / -EOVERFLOW (with why) when the numbers cannot make a layout. */
int seg_layout_compute(struct seg_layout *l, uint32_t page_size,
		       uint32_t ncpus, uint32_t npages, uint32_t nslots,
		       struct seg_error *err);

/*
 * Create a segment: memfd sized to the layout, sealed against growing and
 * shrinking, mapped and populated up front, locked per p->lock, every page
 * on the global pool.  0 or -errno with err filled.
 */
int seg_create(const struct seg_params *p, struct seg *s, struct seg_error *err);

/*
 * Map a segment from an fd received from elsewhere.  The header is read and
 * checked against the file's real size before anything is mapped; any
 * mismatch is -EBADMSG (or -EPROTO for an unknown layout version) with err
 * saying what.  The fd is dup'ed; the caller keeps its own.
 */
int seg_map(int fd, struct seg *s, struct seg_error *err);

void seg_unmap(struct seg *s);

#define SEG_MAX_CHUNK_PAGES 65536

/*
 * A client's private segment: nchunks slots of chunk_pages pages each, the
 * metadata in private anonymous memory, the page area a reserved range of
 * PROT_NONE address space (aligned for huge-page chunks).  Every list
 * empty, every slot absent; CPUs marked online per sysfs.  0 or -errno
 * with err filled.  seg_private_free() unmaps all of it.
 */
int seg_private_create(struct seg *s, uint32_t page_size, uint32_t ncpus,
		       uint32_t chunk_pages, uint32_t nchunks,
		       struct seg_error *err);
void seg_private_free(struct seg *s);

/*
 * Map a chunk (a memfd of at least chunk_pages pages) into an absent slot:
 * MAP_SHARED|MAP_FIXED, populated, MADV_DONTFORK; its pages linked
 * slot*chunk_pages .. +chunk_pages-1 through next[] as a private chain
 * (first..last, for the caller to push), owner FREE, chunk_free full, the
 * slot present.  The caller still owns (and closes) fd.  0 or -errno.
 */
int seg_private_map_chunk(struct seg *s, uint32_t slot, int fd);

/*
 * The slot absent again and remapped PROT_NONE (MAP_FIXED anonymous): a
 * stale pointer into it faults.  Its pages must be on no list.
 */
void seg_private_unmap_chunk(struct seg *s, uint32_t slot);
static inline void *seg_page(const struct seg *s, uint32_t page)
{
	return s->pages + (size_t)page * s->page_size;
}

/* Page index of a pointer into the page area, or -ERANGE. */
static inline int64_t seg_page_index(const struct seg *s, const void *p)
{
	uintptr_t off = (uintptr_t)p - (uintptr_t)s->pages;

	if ((uintptr_t)p < (uintptr_t)s->pages ||
	    off >= (uintptr_t)s->npages * s->page_size)
		return -ERANGE;
	return (int64_t)(off / s->page_size);
}

#endif
