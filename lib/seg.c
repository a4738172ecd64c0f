// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cpu.h"
#include "seg.h"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

_Static_assert(sizeof(struct seg_cpu) == 2 * SEG_CACHELINE, "seg_cpu size");
_Static_assert(sizeof(struct seg_global) == 2 * SEG_CACHELINE, "seg_global");
_Static_assert(sizeof(struct seg_slot) % SEG_CACHELINE == 0, "seg_slot size");
_Static_assert(sizeof(struct seg_header) % SEG_CACHELINE == 0, "seg_header");
_Static_assert(sizeof(_Atomic uint64_t) == 8, "64-bit atomics");

static int fail(struct seg_error *err, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct seg_error *err, int r, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return r;
}

static bool add_aligned(uint64_t *off, uint64_t bytes, uint64_t align)
{
	uint64_t v;

	if (__builtin_add_overflow(*off, bytes, &v) ||
	    __builtin_add_overflow(v, align - 1, &v))
		return false;
	*off = v & ~(align - 1);
	return true;
}

int seg_layout_compute(struct seg_layout *l, uint32_t page_size,
		       uint32_t ncpus, uint32_t npages, uint32_t nslots,
		       struct seg_error *err)
{
	uint64_t off = 0, bytes;

	if (page_size < 4096 || page_size > 65536 ||
	    (page_size & (page_size - 1)))
		return fail(err, -EINVAL,
			    "page size %u is not a power of two in 4096..65536",
			    page_size);
	if (ncpus < 1 || ncpus > CPU_MAX)
		return fail(err, -EINVAL, "CPU count %u is not in 1..%u", ncpus,
			    CPU_MAX);
	if (npages < 1 || npages > SEG_MAX_PAGES)
		return fail(err, -EINVAL, "page count %u is not in 1..%u",
			    npages, SEG_MAX_PAGES);
	if (nslots < 1 || nslots > SEG_MAX_SLOTS)
		return fail(err, -EINVAL, "client slot count %u is not in 1..%u",
			    nslots, SEG_MAX_SLOTS);

	*l = (struct seg_layout){
		.page_size = page_size,
		.ncpus = ncpus,
		.npages = npages,
		.nslots = nslots,
	};
	/* Counts are bounded above, so only the page area can overflow. */
	add_aligned(&off, sizeof(struct seg_header), SEG_CACHELINE);
	l->global_off = off;
	add_aligned(&off, sizeof(struct seg_global), SEG_CACHELINE);
	l->cpu_off = off;
	add_aligned(&off, (uint64_t)ncpus * sizeof(struct seg_cpu),
		    SEG_CACHELINE);
	l->slot_off = off;
	add_aligned(&off, (uint64_t)nslots * sizeof(struct seg_slot),
		    SEG_CACHELINE);
	l->owner_off = off;
	add_aligned(&off, (uint64_t)npages * sizeof(uint32_t), SEG_CACHELINE);
	l->next_off = off;
	add_aligned(&off, (uint64_t)npages * sizeof(uint32_t), page_size);
	l->pages_off = off;
	if (__builtin_mul_overflow((uint64_t)npages, page_size, &bytes) ||
	    !add_aligned(&off, bytes, page_size) || off > (uint64_t)INT64_MAX)
		return fail(err, -EOVERFLOW,
			    "%u pages of %u bytes do not fit in memory", npages,
			    page_size);
	l->size = off;
	return 0;
}

static void seg_bind(struct seg *s, void *base, size_t map_size, int fd,
		     const struct seg_layout *l)
{
	char *b = base;

	*s = (struct seg){
		.base = base,
		.map_size = map_size,
		.fd = fd,
		.page_size = l->page_size,
		.ncpus = l->ncpus,
		.npages = l->npages,
		.nslots = l->nslots,
		.hdr = base,
		.global = (struct seg_global *)(b + l->global_off),
		.cpu = (struct seg_cpu *)(b + l->cpu_off),
		.slot = (struct seg_slot *)(b + l->slot_off),
		.owner = (_Atomic uint32_t *)(b + l->owner_off),
		.next = (_Atomic uint32_t *)(b + l->next_off),
		.pages = b + l->pages_off,
	};
}

static uint64_t huge_page_size(void)
{
	char line[128];
	unsigned long kb = 0;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return 2u << 20;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Hugepagesize: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb ? (uint64_t)kb << 10 : 2u << 20;
}

/* memfd of the right size with its memory allocated: ENOMEM now, not SIGBUS later. */
static int make_backing(const char *name, bool huge, uint64_t size,
			uint64_t *file_size, void **base)
{
	unsigned int flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	int fd, r;

	if (huge) {
		uint64_t hp = huge_page_size();

		flags |= MFD_HUGETLB;
		size = (size + hp - 1) / hp * hp;
	}
	fd = memfd_create(name, flags);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		goto fail_errno;
	/* hugetlbfs has no fallocate before 4.3 and reserves at mmap anyway. */
	if (!huge && fallocate(fd, 0, 0, (off_t)size) < 0 && errno != EOPNOTSUPP)
		goto fail_errno;
	*base = mmap(NULL, size, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_POPULATE, fd, 0);
	if (*base == MAP_FAILED)
		goto fail_errno;
	*file_size = size;
	return fd;

fail_errno:
	r = -errno;
	close(fd);
	return r;
}

static void seg_init_contents(struct seg *s, const struct seg_layout *l,
			      uint32_t flags)
{
	struct seg_header *h = s->hdr;

	h->version = SEG_VERSION;
	h->header_size = sizeof(*h);
	h->page_size = l->page_size;
	h->ncpus = l->ncpus;
	h->npages = l->npages;
	h->nslots = l->nslots;
	h->global_off = l->global_off;
	h->cpu_off = l->cpu_off;
	h->slot_off = l->slot_off;
	h->owner_off = l->owner_off;
	h->next_off = l->next_off;
	h->pages_off = l->pages_off;
	h->size = l->size;
	h->flags = flags;
	h->daemon_pid = (uint32_t)getpid();
	atomic_store(&h->generation, 1);

	/* CPUs the kernel has online now; the daemon follows hotplug after. */
	bool online[CPU_MAX];

	if (cpu_list_read("/sys/devices/system/cpu/online", online, CPU_MAX) < 0)
		for (uint32_t c = 0; c < s->ncpus; c++)
			online[c] = true;
	for (uint32_t c = 0; c < s->ncpus; c++)
		atomic_store_explicit(&s->cpu[c].online, online[c],
				      memory_order_relaxed);

	/* Every page on the global pool, in index order. */
	for (uint32_t i = 0; i < s->npages; i++) {
		atomic_store_explicit(&s->owner[i], SEG_OWNER_FREE,
				      memory_order_relaxed);
		atomic_store_explicit(&s->next[i],
				      i + 1 < s->npages ? i + 2 : 0,
				      memory_order_relaxed);
	}
	atomic_store_explicit(&s->global->free.head, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	h->magic = SEG_MAGIC;
}

int seg_create(const struct seg_params *p, struct seg *s, struct seg_error *err)
{
	struct seg_layout l;
	uint64_t file_size = 0;
	void *base = NULL;
	uint32_t ncpus = p->ncpus, flags = 0;
	bool huge = p->huge != SEG_HUGE_NO;
	int fd, r;

	if (!ncpus) {
		r = cpu_possible_count();
		if (r < 0)
			return fail(err, r, "cannot count possible CPUs: %s",
				    strerror(-r));
		ncpus = (uint32_t)r;
	}
	r = seg_layout_compute(&l, p->page_size ? p->page_size : 4096, ncpus,
			       p->npages, p->nslots, err);
	if (r < 0)
		return r;

	fd = make_backing(p->name ? p->name : "rcupool", huge, l.size,
			  &file_size, &base);
	if (fd < 0 && huge && p->huge == SEG_HUGE_AUTO) {
		huge = false;
		fd = make_backing(p->name ? p->name : "rcupool", false, l.size,
				  &file_size, &base);
	}
	if (fd < 0)
		return fail(err, fd,
			    "cannot allocate the reserve (%llu bytes%s): %s",
			    (unsigned long long)l.size,
			    huge ? " in huge pages" : "", strerror(-fd));
	if (huge)
		flags |= SEG_F_HUGETLB;

	if (fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) <
	    0) {
		r = fail(err, -errno, "cannot seal the reserve: %s",
			 strerror(errno));
		goto fail_unmap;
	}

	seg_bind(s, base, file_size, fd, &l);
	s->hugetlb = huge;
	if (p->lock != SEG_LOCK_NO) {
		/* The syscall itself: sanitizers stub mlock() out. */
		if (syscall(SYS_mlock, base, file_size) == 0) {
			s->locked = true;
			flags |= SEG_F_LOCKED;
		} else if (p->lock == SEG_LOCK_REQUIRED) {
			r = fail(err, -errno,
				 "cannot lock the reserve (%llu bytes) in memory: "
				 "%s (raise RLIMIT_MEMLOCK, LimitMEMLOCK=)",
				 (unsigned long long)file_size, strerror(errno));
			goto fail_unmap;
		}
	}
	seg_init_contents(s, &l, flags);
	return 0;

fail_unmap:
	munmap(base, file_size);
	close(fd);
	return r;
}

/* Every field of a header read from elsewhere, against what it must be. */
static int seg_header_check(const struct seg_header *h, uint64_t file_size,
			    struct seg_layout *l, struct seg_error *err)
{
	struct seg_layout want;
	int r;

	if (h->magic != SEG_MAGIC)
		return fail(err, -EBADMSG,
			    "not an rcupool segment (magic %#llx)",
			    (unsigned long long)h->magic);
	if (h->version != SEG_VERSION)
		return fail(err, -EPROTO,
			    "segment layout version %u, this library knows %u",
			    h->version, SEG_VERSION);
	if (h->header_size != sizeof(*h))
		return fail(err, -EBADMSG, "header size %u, expected %zu",
			    h->header_size, sizeof(*h));
	r = seg_layout_compute(&want, h->page_size, h->ncpus, h->npages,
			       h->nslots, err);
	if (r < 0)
		return -EBADMSG;

	const struct {
		const char *name;
		uint64_t got, want;
	} fields[] = {
		{"global pool", h->global_off, want.global_off},
		{"CPU blocks", h->cpu_off, want.cpu_off},
		{"client slots", h->slot_off, want.slot_off},
		{"owner table", h->owner_off, want.owner_off},
		{"link table", h->next_off, want.next_off},
		{"page area", h->pages_off, want.pages_off},
		{"layout end", h->size, want.size},
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (fields[i].got != fields[i].want)
			return fail(err, -EBADMSG,
				    "%s at offset %llu, the layout puts it at %llu",
				    fields[i].name,
				    (unsigned long long)fields[i].got,
				    (unsigned long long)fields[i].want);
	if (want.size > file_size)
		return fail(err, -EBADMSG,
			    "%u pages need %llu bytes, the file has %llu",
			    h->npages, (unsigned long long)want.size,
			    (unsigned long long)file_size);
	*l = want;
	return 0;
}

int seg_map(int fd, struct seg *s, struct seg_error *err)
{
	struct seg_header h;
	struct seg_layout l = {0};
	struct statfs sfs;
	struct stat st;
	ssize_t n;
	void *base;
	int seals, myfd, r;

	if (fstat(fd, &st) < 0)
		return fail(err, -errno, "cannot stat the segment: %s",
			    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(err, -EBADMSG, "segment fd is not a regular file");
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return fail(err, -EBADMSG,
			    "segment file is not sealed against shrinking");
	if (st.st_size < (off_t)sizeof(h))
		return fail(err, -EBADMSG,
			    "segment file has %lld bytes, less than a header",
			    (long long)st.st_size);
	n = pread(fd, &h, sizeof(h), 0);
	if (n != (ssize_t)sizeof(h))
		return fail(err, n < 0 ? -errno : -EBADMSG,
			    "cannot read the segment header");
	r = seg_header_check(&h, (uint64_t)st.st_size, &l, err);
	if (r < 0)
		return r;

	myfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (myfd < 0)
		return fail(err, -errno, "dup: %s", strerror(errno));
	base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_POPULATE, myfd, 0);
	if (base == MAP_FAILED) {
		r = -errno;
		close(myfd);
		return fail(err, r, "cannot map the segment: %s", strerror(-r));
	}
	/* Geometry comes from the checked copy from now on, never from shared memory. */
	seg_bind(s, base, (size_t)st.st_size, myfd, &l);
	s->hugetlb = fstatfs(myfd, &sfs) == 0 && sfs.f_type == HUGETLBFS_MAGIC;
	return 0;
}

void seg_unmap(struct seg *s)
{
	if (s->base)
		munmap(s->base, s->map_size);
	if (s->fd >= 0)
		close(s->fd);
	*s = (struct seg){.fd = -1};
}

static void seg_mark_online(struct seg *s)
{
	bool online[CPU_MAX];

	if (cpu_list_read("/sys/devices/system/cpu/online", online, CPU_MAX) < 0)
		for (uint32_t c = 0; c < s->ncpus; c++)
			online[c] = true;
	for (uint32_t c = 0; c < s->ncpus; c++)
		atomic_store_explicit(&s->cpu[c].online, online[c],
				      memory_order_relaxed);
}

/* nbytes of PROT_NONE address space aligned to align (a power of two). */
static void *seg_reserve(size_t nbytes, size_t align)
{
	size_t len = nbytes + align;
	char *va = mmap(NULL, len, PROT_NONE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *start;

	if (va == MAP_FAILED)
		return NULL;
	start = (char *)(((uintptr_t)va + align - 1) & ~(uintptr_t)(align - 1));
	if (start > va)
		munmap(va, (size_t)(start - va));
	if (start + nbytes < va + len)
		munmap(start + nbytes, (size_t)(va + len - start - nbytes));
	return start;
}

int seg_private_create(struct seg *s, uint32_t page_size, uint32_t ncpus,
		       uint32_t chunk_pages, uint32_t nchunks,
		       struct seg_error *err)
{
	struct seg_layout l;
	uint64_t npages;
	size_t align;
	void *base;
	int r;

	*s = (struct seg){.fd = -1};
	if (!chunk_pages || chunk_pages > SEG_MAX_CHUNK_PAGES || !nchunks)
		return fail(err, -EINVAL, "%u chunks of %u pages", nchunks,
			    chunk_pages);
	npages = (uint64_t)chunk_pages * nchunks;
	if (npages > SEG_MAX_PAGES)
		return fail(err, -EOVERFLOW, "%llu pages are too many",
			    (unsigned long long)npages);
	r = seg_layout_compute(&l, page_size, ncpus, (uint32_t)npages, 1, err);
	if (r < 0)
		return r;
	/* The metadata: private, nobody else maps it. */
	base = mmap(NULL, l.pages_off, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return fail(err, -errno, "cannot map %llu bytes of lists: %s",
			    (unsigned long long)l.pages_off, strerror(errno));
	seg_bind(s, base, l.pages_off, -1, &l);
	s->meta_size = l.pages_off;
	s->chunk_pages = chunk_pages;
	s->nchunks = nchunks;
	/* Chunks of huge pages need slots aligned to them: 2 MiB at most. */
	align = (size_t)chunk_pages * page_size;
	if (align > (2u << 20) || (align & (align - 1)))
		align = align > (2u << 20) ? (2u << 20) : page_size;
	s->pages = seg_reserve((size_t)npages * page_size, align);
	s->chunk_free = calloc(nchunks, sizeof(*s->chunk_free));
	s->chunk_present = calloc(nchunks, sizeof(*s->chunk_present));
	if (!s->pages || !s->chunk_free || !s->chunk_present) {
		seg_private_free(s);
		return fail(err, -ENOMEM,
			    "no room for %u chunk slots of %u pages", nchunks,
			    chunk_pages);
	}
	s->hdr->version = SEG_VERSION;
	s->hdr->header_size = sizeof(*s->hdr);
	s->hdr->page_size = page_size;
	s->hdr->ncpus = ncpus;
	s->hdr->npages = (uint32_t)npages;
	s->hdr->nslots = 1;
	s->hdr->daemon_pid = (uint32_t)getpid();
	seg_mark_online(s);
	/* Anonymous memory is zero: every list empty, every owner FREE. */
	s->hdr->magic = SEG_MAGIC;
	return 0;
}

static void *seg_slot_addr(const struct seg *s, uint32_t slot)
{
	return s->pages + (size_t)slot * s->chunk_pages * s->page_size;
}

int seg_private_map_chunk(struct seg *s, uint32_t slot, int fd)
{
	size_t bytes = (size_t)s->chunk_pages * s->page_size;
	uint32_t first = slot * s->chunk_pages;
	struct stat st;
	void *addr;

	if (slot >= s->nchunks ||
	    atomic_load_explicit(&s->chunk_present[slot], memory_order_relaxed))
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < bytes)
		return -EBADMSG;
	addr = mmap(seg_slot_addr(s, slot), bytes, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd, 0);
	if (addr == MAP_FAILED) {
		int r = -errno;

		seg_private_unmap_chunk(s, slot);
		return r;
	}
	/* A forked child never holds a parent's chunk. */
	madvise(addr, bytes, MADV_DONTFORK);
	/*
	 * A store into every page now, in the drain thread, not at the first
	 * rcupool_free() into it.  On a virtualised host the first store
	 * through a new mapping cost 4 us or more although the page was
	 * populated (the guest counted no fault): 1,613-1,832 of 9,770 page
	 * takes at T=1 (bench_e2e shipped, five rounds), 145-707 after this;
	 * private defaults 1,328 -> 266-300.  Reading the pages here did not
	 * do it, nor MADV_POPULATE_WRITE (in a bare probe).  The pages hold
	 * no data yet: their content is the filler's to write.
	 */
	for (size_t off = 0; off < bytes; off += s->page_size)
		*(volatile char *)((char *)addr + off) = 0;
	for (uint32_t i = 0; i < s->chunk_pages; i++) {
		atomic_store_explicit(&s->owner[first + i], SEG_OWNER_FREE,
				      memory_order_relaxed);
		atomic_store_explicit(&s->next[first + i],
				      i + 1 < s->chunk_pages ? first + i + 2
							     : 0,
				      memory_order_relaxed);
	}
	atomic_store_explicit(&s->chunk_free[slot], s->chunk_pages,
			      memory_order_relaxed);
	atomic_store_explicit(&s->chunk_present[slot], 1, memory_order_release);
	return 0;
}

void seg_private_unmap_chunk(struct seg *s, uint32_t slot)
{
	size_t bytes = (size_t)s->chunk_pages * s->page_size;

	atomic_store_explicit(&s->chunk_present[slot], 0, memory_order_relaxed);
	atomic_store_explicit(&s->chunk_free[slot], 0, memory_order_relaxed);
	if (mmap(seg_slot_addr(s, slot), bytes, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
		 0) == MAP_FAILED)
		/* Cannot keep the hole reserved: at least let nothing in. */
		munmap(seg_slot_addr(s, slot), bytes);
}

void seg_private_free(struct seg *s)
{
	if (s->base)
		munmap(s->base, s->meta_size);
	if (s->pages)
		munmap(s->pages,
		       (size_t)s->nchunks * s->chunk_pages * s->page_size);
	free(s->chunk_free);
	free(s->chunk_present);
	*s = (struct seg){.fd = -1};
}
