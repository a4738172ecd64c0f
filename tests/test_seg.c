// SPDX-License-Identifier: LGPL-2.1-or-later
/* The segment: layout arithmetic, creation, and refusing every bad header. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "census.h"
#include "lend.h"
#include "seg.h"
#include "stack.h"

static void check_layout(uint32_t ps, uint32_t ncpus, uint32_t npages,
			 uint32_t nslots)
{
	struct seg_layout l;
	struct seg_error err;

	assert_int_equal(seg_layout_compute(&l, ps, ncpus, npages, nslots, &err),
			 0);
	/* Regions in order, aligned, and none overlapping the next. */
	assert_true(l.global_off >= sizeof(struct seg_header));
	assert_true(l.cpu_off >= l.global_off + sizeof(struct seg_global));
	assert_true(l.slot_off >= l.cpu_off + ncpus * sizeof(struct seg_cpu));
	assert_true(l.owner_off >= l.slot_off + nslots * sizeof(struct seg_slot));
	assert_true(l.next_off >= l.owner_off + npages * sizeof(uint32_t));
	assert_true(l.pages_off >= l.next_off + npages * sizeof(uint32_t));
	assert_int_equal(l.size, l.pages_off + (uint64_t)npages * ps);
	assert_int_equal(l.global_off % SEG_CACHELINE, 0);
	assert_int_equal(l.cpu_off % SEG_CACHELINE, 0);
	assert_int_equal(l.slot_off % SEG_CACHELINE, 0);
	assert_int_equal(l.owner_off % SEG_CACHELINE, 0);
	assert_int_equal(l.next_off % SEG_CACHELINE, 0);
	assert_int_equal(l.pages_off % ps, 0);
	/* No slack beyond alignment: the page area starts right after next[]. */
	assert_true(l.pages_off - (l.next_off + npages * sizeof(uint32_t)) < ps);
}

static void test_layout_arithmetic(void **state)
{
	const uint32_t cpus[] = {1, 2, 3, 7, 64, 4096};
	const uint32_t pages[] = {1, 2, 510, 4097, 1u << 20, SEG_MAX_PAGES};
	const uint32_t slots[] = {1, 3, 256, SEG_MAX_SLOTS};

	for (size_t c = 0; c < sizeof(cpus) / sizeof(*cpus); c++)
		for (size_t p = 0; p < sizeof(pages) / sizeof(*pages); p++)
			for (size_t s = 0; s < sizeof(slots) / sizeof(*slots); s++) {
				check_layout(4096, cpus[c], pages[p], slots[s]);
				check_layout(65536, cpus[c], pages[p], slots[s]);
			}
	/* Exact figures for one small case, so the ABI cannot drift unseen. */
	struct seg_layout l;

	assert_int_equal(seg_layout_compute(&l, 4096, 2, 10, 4, NULL), 0);
	assert_int_equal(l.global_off, sizeof(struct seg_header));
	assert_int_equal(l.cpu_off, l.global_off + 128);
	assert_int_equal(l.slot_off, l.cpu_off + 2 * 128);
	assert_int_equal(l.owner_off, l.slot_off + 4 * sizeof(struct seg_slot));
	assert_int_equal(l.next_off, l.owner_off + 64);
	assert_int_equal(l.pages_off, 4096);
	assert_int_equal(l.size, 4096 + 10 * 4096);
}

static void test_layout_refuses_bad_numbers(void **state)
{
	struct seg_layout l;
	struct seg_error err;

	assert_int_equal(seg_layout_compute(&l, 4095, 1, 1, 1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "page size 4095"));
	assert_int_equal(seg_layout_compute(&l, 3 * 4096, 1, 1, 1, &err),
			 -EINVAL);
	assert_int_equal(seg_layout_compute(&l, 1u << 17, 1, 1, 1, &err),
			 -EINVAL);
	assert_int_equal(seg_layout_compute(&l, 4096, 0, 1, 1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "CPU count 0"));
	assert_int_equal(seg_layout_compute(&l, 4096, 4097, 1, 1, &err),
			 -EINVAL);
	assert_int_equal(seg_layout_compute(&l, 4096, 1, 0, 1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "page count 0"));
	assert_int_equal(
		seg_layout_compute(&l, 4096, 1, SEG_MAX_PAGES + 1, 1, &err),
		-EINVAL);
	assert_int_equal(seg_layout_compute(&l, 4096, 1, 1, 0, &err), -EINVAL);
	assert_int_equal(
		seg_layout_compute(&l, 4096, 1, 1, SEG_MAX_SLOTS + 1, &err),
		-EINVAL);
	assert_non_null(strstr(err.msg, "client slot count"));
}

static void create_small(struct seg *s, uint32_t npages)
{
	struct seg_params p = {
		.ncpus = 3, .npages = npages, .nslots = 4, .name = "test"};
	struct seg_error err = {{0}};

	assert_int_equal(seg_create(&p, s, &err), 0);
}

static void test_create_and_map(void **state)
{
	struct seg a, b;
	struct seg_error err;
	struct census c;

	create_small(&a, 100);
	assert_int_equal(a.ncpus, 3);
	assert_int_equal(a.npages, 100);
	assert_int_equal(a.hdr->magic, SEG_MAGIC);
	assert_int_equal((uintptr_t)a.pages % 4096, 0);
	/* Sealed: no grow, no shrink. */
	assert_int_equal(ftruncate(a.fd, (off_t)a.map_size * 2), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(a.fd, 4096), -1);

	assert_int_equal(seg_map(a.fd, &b, &err), 0);
	assert_ptr_not_equal(a.base, b.base);
	assert_int_equal(b.npages, 100);
	assert_int_equal(b.ncpus, 3);
	assert_int_equal(b.nslots, 4);
	assert_int_equal(b.page_size, 4096);
	/* One memory seen through two mappings. */
	memset(seg_page(&a, 99), 0x5a, 4096);
	assert_int_equal(((unsigned char *)seg_page(&b, 99))[4095], 0x5a);
	assert_int_equal(seg_page_index(&b, (char *)seg_page(&b, 7) + 100), 7);
	assert_int_equal(seg_page_index(&b, a.pages), -ERANGE);
	assert_int_equal(seg_page_index(&b, b.pages + 100 * 4096), -ERANGE);

	/* A new segment has every page on the global pool. */
	assert_int_equal(census_take(&b, &c), 0);
	assert_int_equal(c.free, 100);
	assert_int_equal(c.global, 100);
	assert_true(census_clean(&c));
	census_release(&c);

	seg_unmap(&b);
	seg_unmap(&a);
	assert_int_equal(a.fd, -1);
}

/* A sealed memfd holding a copy of src's bytes, mutated, sized as asked. */
static int corrupt_copy(const struct seg *src, size_t size,
			void (*mutate)(struct seg_header *), bool seal)
{
	int fd = memfd_create("corrupt", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	size_t n = size < src->map_size ? size : src->map_size;
	struct seg_header h;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	assert_int_equal(pwrite(fd, src->base, n, 0), (ssize_t)n);
	if (mutate && size >= sizeof(h)) {
		memcpy(&h, src->base, sizeof(h));
		mutate(&h);
		assert_int_equal(pwrite(fd, &h, sizeof(h), 0), sizeof(h));
	}
	if (seal)
		assert_int_equal(fcntl(fd, F_ADD_SEALS,
				       F_SEAL_GROW | F_SEAL_SHRINK),
				 0);
	return fd;
}

static void bad_magic(struct seg_header *h) { h->magic ^= 1; }
static void bad_version(struct seg_header *h) { h->version = 99; }
static void bad_header_size(struct seg_header *h) { h->header_size = 64; }
static void bad_page_size(struct seg_header *h) { h->page_size = 1000; }
static void zero_page_size(struct seg_header *h) { h->page_size = 0; }
static void zero_cpus(struct seg_header *h) { h->ncpus = 0; }
static void huge_cpus(struct seg_header *h) { h->ncpus = 1u << 31; }
static void zero_pages(struct seg_header *h) { h->npages = 0; }
static void huge_pages(struct seg_header *h) { h->npages = UINT32_MAX; }
/* A consistent header for more pages than the file holds. */
static void more_pages(struct seg_header *h)
{
	struct seg_layout l;

	h->npages += 10;
	assert_int_equal(seg_layout_compute(&l, h->page_size, h->ncpus,
					    h->npages, h->nslots, NULL),
			 0);
	h->owner_off = l.owner_off;
	h->next_off = l.next_off;
	h->pages_off = l.pages_off;
	h->size = l.size;
}

static void more_cpus(struct seg_header *h) { h->ncpus += 1; }
static void zero_slots(struct seg_header *h) { h->nslots = 0; }
static void bad_global(struct seg_header *h) { h->global_off += 64; }
static void bad_cpu(struct seg_header *h) { h->cpu_off -= 64; }
static void bad_slot(struct seg_header *h) { h->slot_off = 0; }
static void bad_owner(struct seg_header *h) { h->owner_off = UINT64_MAX; }
static void bad_next(struct seg_header *h) { h->next_off += 4; }
static void bad_pages(struct seg_header *h) { h->pages_off += 4096; }
static void bad_size(struct seg_header *h) { h->size = 1ull << 62; }

static void test_map_refuses_corrupt_headers(void **state)
{
	static const struct {
		void (*mutate)(struct seg_header *);
		int err;
		const char *why;
	} cases[] = {
		{bad_magic, -EBADMSG, "not an rcupool segment"},
		{bad_version, -EPROTO, "layout version 99"},
		{bad_header_size, -EBADMSG, "header size 64"},
		{bad_page_size, -EBADMSG, "page size 1000"},
		{zero_page_size, -EBADMSG, "page size 0"},
		{zero_cpus, -EBADMSG, "CPU count 0"},
		{huge_cpus, -EBADMSG, "CPU count 2147483648"},
		{zero_pages, -EBADMSG, "page count 0"},
		{huge_pages, -EBADMSG, "page count 4294967295"},
		{more_pages, -EBADMSG, "the file has"},
		{more_cpus, -EBADMSG, "offset"},
		{zero_slots, -EBADMSG, "client slot count 0"},
		{bad_global, -EBADMSG, "global pool at offset"},
		{bad_cpu, -EBADMSG, "CPU blocks at offset"},
		{bad_slot, -EBADMSG, "client slots at offset 0"},
		{bad_owner, -EBADMSG, "owner table at offset"},
		{bad_next, -EBADMSG, "link table at offset"},
		{bad_pages, -EBADMSG, "page area at offset"},
		{bad_size, -EBADMSG, "layout end at offset"},
	};
	struct seg good, s;
	struct seg_error err;

	create_small(&good, 50);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		int fd = corrupt_copy(&good, good.map_size, cases[i].mutate,
				      true);

		memset(&err, 0, sizeof(err));
		s.base = NULL;
		assert_int_equal(seg_map(fd, &s, &err), cases[i].err);
		if (!strstr(err.msg, cases[i].why))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg,
				 cases[i].why);
		assert_null(s.base);
		close(fd);
	}
	seg_unmap(&good);
}

static void test_map_refuses_bad_files(void **state)
{
	struct seg good, s;
	struct seg_error err;
	int fd, pipefd[2];

	create_small(&good, 50);

	/* Shorter than the layout: a page count that does not fit the file. */
	fd = corrupt_copy(&good, good.map_size - 4096, NULL, true);
	assert_int_equal(seg_map(fd, &s, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "need"));
	close(fd);

	/* Shorter than a header. */
	fd = corrupt_copy(&good, 100, NULL, true);
	assert_int_equal(seg_map(fd, &s, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "less than a header"));
	close(fd);

	/* Empty. */
	fd = corrupt_copy(&good, 0, NULL, true);
	assert_int_equal(seg_map(fd, &s, &err), -EBADMSG);
	close(fd);

	/* Not sealed: whoever holds it could shrink it under us. */
	fd = corrupt_copy(&good, good.map_size, NULL, false);
	assert_int_equal(seg_map(fd, &s, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "not sealed"));
	close(fd);

	/* Not a file at all. */
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(seg_map(pipefd[0], &s, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "not a regular file"));
	close(pipefd[0]);
	close(pipefd[1]);

	/* A closed fd. */
	assert_int_equal(seg_map(pipefd[0], &s, &err), -EBADF);

	/* Larger than the layout is fine (hugetlb rounds up). */
	fd = corrupt_copy(&good, good.map_size + 8192, NULL, true);
	assert_int_equal(seg_map(fd, &s, &err), 0);
	assert_int_equal(s.npages, 50);
	seg_unmap(&s);
	close(fd);

	seg_unmap(&good);
}

/* Run fn in a child with no right to lock memory; its exit status back. */
static int in_unprivileged_child(int (*fn)(void))
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = {0, 0};

		if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
			_exit(100);
		if (geteuid() == 0 && setuid(65534) < 0)
			_exit(101);
		_exit(fn());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int lock_required_fails(void)
{
	struct seg_params p = {.ncpus = 1, .npages = 16, .nslots = 1,
			       .lock = SEG_LOCK_REQUIRED};
	struct seg s;
	struct seg_error err;
	int r = seg_create(&p, &s, &err);

	if (r == 0)
		return 1;
	return strstr(err.msg, "cannot lock the reserve") ? 0 : 2;
}

static int lock_yes_carries_on(void)
{
	struct seg_params p = {.ncpus = 1, .npages = 16, .nslots = 1,
			       .lock = SEG_LOCK_YES};
	struct seg s;
	struct seg_error err;

	if (seg_create(&p, &s, &err) < 0)
		return 1;
	if (s.locked || (s.hdr->flags & SEG_F_LOCKED))
		return 2;
	seg_unmap(&s);
	return 0;
}

static void test_lock_modes(void **state)
{
	struct seg_params p = {.ncpus = 1, .npages = 16, .nslots = 1,
			       .lock = SEG_LOCK_YES};
	struct seg s;
	struct seg_error err;
	struct rlimit rl;

	assert_int_equal(seg_create(&p, &s, &err), 0);
	assert_int_equal(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
	if (geteuid() == 0 || rl.rlim_cur >= s.map_size) {
		assert_true(s.locked);
		assert_true(s.hdr->flags & SEG_F_LOCKED);
	}
	seg_unmap(&s);

	assert_int_equal(in_unprivileged_child(lock_required_fails), 0);
	assert_int_equal(in_unprivileged_child(lock_yes_carries_on), 0);
}

static long free_huge_pages(void)
{
	char line[128];
	long n = 0;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

static void test_hugetlb_fallback(void **state)
{
	struct seg_params p = {.ncpus = 2, .npages = 64, .nslots = 2,
			       .huge = SEG_HUGE_AUTO};
	struct seg s, m;
	struct seg_error err;
	struct census c;
	bool have_huge = free_huge_pages() > 0;

	/* auto: hugetlb when there are huge pages, normal pages otherwise. */
	assert_int_equal(seg_create(&p, &s, &err), 0);
	assert_int_equal(s.hugetlb, have_huge);
	assert_int_equal(!!(s.hdr->flags & SEG_F_HUGETLB), have_huge);
	assert_int_equal(seg_map(s.fd, &m, &err), 0);
	assert_int_equal(m.hugetlb, s.hugetlb);
	assert_int_equal(census_take(&m, &c), 0);
	assert_int_equal(c.free, 64);
	census_release(&c);
	seg_unmap(&m);
	seg_unmap(&s);

	/* yes: hugetlb or a clear error. */
	p.huge = SEG_HUGE_YES;
	if (have_huge) {
		assert_int_equal(seg_create(&p, &s, &err), 0);
		assert_true(s.hugetlb);
		seg_unmap(&s);
	} else {
		assert_true(seg_create(&p, &s, &err) < 0);
		assert_non_null(strstr(err.msg, "in huge pages"));
	}
}

/* --- a client's private segment over lent chunks ------------------------ */

static void perms_of(const void *addr, char perms[5])
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];

	perms[0] = 0;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char pr[5];

		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, pr) == 3 &&
		    (uintptr_t)addr >= lo && (uintptr_t)addr < hi) {
			memcpy(perms, pr, 5);
			break;
		}
	}
	fclose(f);
}

static void census_expect(struct seg *s, uint32_t lent, uint32_t free)
{
	struct census c;

	assert_int_equal(census_take(s, &c), 0);
	assert_true(census_clean(&c));
	assert_int_equal(c.bad, 0);
	assert_int_equal(c.lent, lent);
	assert_int_equal(c.free, free);
	assert_int_equal(c.absent, s->npages - lent);
	census_release(&c);
}

static void test_private_segment(void **state)
{
	struct lend_private_params pp = {.pages = 8, .chunk_pages = 4};
	struct lend_chunk c[LEND_GET_MAX];
	struct seg_error err;
	struct lender *l;
	struct seg s;
	uint32_t got, first = 0, last = 0;
	char perms[5], *slot1;
	int small, status;
	pid_t pid;

	assert_int_equal(seg_private_create(&s, 4096, 2, 0, 3, &err), -EINVAL);
	assert_int_equal(seg_private_create(&s, 1000, 2, 4, 3, &err), -EINVAL);
	assert_int_equal(seg_private_create(&s, 4096, 2, 4, 3, &err), 0);
	assert_int_equal(s.npages, 12);
	assert_int_equal(s.nchunks, 3);
	assert_int_equal(s.nslots, 1);
	assert_int_equal(s.fd, -1);
	assert_int_equal(atomic_load(&s.global->free.head), 0);
	census_expect(&s, 0, 0);
	slot1 = seg_page(&s, 4);
	perms_of(slot1, perms);
	assert_string_equal(perms, "---p"); /* reserved, inaccessible */

	/* The in-process lender: 8 pages, 2 chunks, then none. */
	assert_int_equal(lend_private_open(&pp, &l), 0);
	assert_int_equal(l->chunk_pages, 4);
	assert_int_equal(l->fd, -1);
	assert_int_equal(l->lease->magic, LEASE_MAGIC);
	assert_int_equal(l->ops->get(l, -1, LEND_GET_MAX, c, &got), 0);
	assert_int_equal(got, 2);
	assert_int_equal(l->ops->get(l, -1, 1, c + 2, &got), -ENOSPC);
	assert_int_equal(got, 0);

	/* A chunk in slot 1: pages 4..7, linked, shared, populated. */
	assert_int_equal(seg_private_map_chunk(&s, 1, c[0].fd), 0);
	assert_int_equal(seg_private_map_chunk(&s, 1, c[1].fd), -EINVAL);
	assert_int_equal(atomic_load(&s.chunk_free[1]), 4);
	perms_of(slot1, perms);
	assert_string_equal(perms, "rw-s");
	memset(slot1, 0x5a, 4 * 4096);
	stack_push_chain(&s, &s.global->free, 4, 7);
	census_expect(&s, 4, 4);

	/* A forked child never has it (MADV_DONTFORK). */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		perms_of(slot1, perms);
		_exit(strcmp(perms, "rw-s") == 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* A file too small for a chunk: refused, the slot stays empty. */
	small = memfd_create("small", MFD_CLOEXEC);
	assert_true(small >= 0);
	assert_int_equal(ftruncate(small, 4096), 0);
	assert_int_equal(seg_private_map_chunk(&s, 2, small), -EBADMSG);
	close(small);
	assert_int_equal(atomic_load(&s.chunk_present[2]), 0);
	perms_of(seg_page(&s, 8), perms);
	assert_string_equal(perms, "---p");

	/* Given back: off the lists, PROT_NONE, nothing of it anywhere. */
	assert_int_equal(stack_pop_chain(&s, &s.global->free, 4, &first, &last),
			 4);
	seg_private_unmap_chunk(&s, 1);
	perms_of(slot1, perms);
	assert_string_equal(perms, "---p");
	census_expect(&s, 0, 0);
	/* A page of an empty slot on a list is caught. */
	stack_push(&s, &s.global->free, 5);
	{
		struct census cs;

		assert_int_equal(census_take(&s, &cs), 0);
		assert_int_equal(cs.bad, 1);
		census_release(&cs);
	}
	assert_int_equal(stack_pop(&s, &s.global->free, &first), 0);

	uint64_t ids[2] = {c[0].id, c[1].id}, bogus = 77;

	close(c[0].fd);
	close(c[1].fd);
	assert_int_equal(l->ops->put(l, ids, 2), 0);
	assert_int_equal(l->ops->put(l, &bogus, 1), -EINVAL);
	assert_int_equal(l->ops->get(l, -1, 1, c, &got), 0); /* room again */
	assert_int_equal(got, 1);
	close(c[0].fd);
	l->ops->close(l);
	seg_private_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_arithmetic),
		cmocka_unit_test(test_layout_refuses_bad_numbers),
		cmocka_unit_test(test_create_and_map),
		cmocka_unit_test(test_map_refuses_corrupt_headers),
		cmocka_unit_test(test_map_refuses_bad_files),
		cmocka_unit_test(test_lock_modes),
		cmocka_unit_test(test_hugetlb_fallback),
		cmocka_unit_test(test_private_segment),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
