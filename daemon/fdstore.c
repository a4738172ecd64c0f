// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The service's fd store (fdstore.h): keeping the daemon's fds in systemd
 * and adopting them in the next instance.  Every stored fd is hostile
 * input to the instance that gets it: its type, seals and size are
 * checked against its name, and what does not fit is closed, removed from
 * the store, logged by name and counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "fdstore.h"
#include "log.h"

#define NAME_MAX_LEN 255

enum kind {
	K_NONE,	    /* not understood */
	K_LISTEN,   /* our listening socket */
	K_ACTIVATE, /* systemd's listening socket (socket activation) */
	K_CHUNK,
	K_LENT,
	K_LEASE,
	K_PIDFD,
	K_CONN,
};

struct entry {
	int fd;
	char name[NAME_MAX_LEN + 1];
	enum kind kind;
	uint64_t id, gen;
	uint32_t pages, slot, req_min, req_max;
	int32_t cpu;
	pid_t pid;
	uid_t uid;
	char cname[PROTO_NAME_MAX];
	bool used;
};

struct fdstore_in {
	struct entry *e;
	size_t n;
};

/* --- keeping ----------------------------------------------------------------
 */

void fdstore_init(struct daemon *d)
{
	const char *s = getenv("NOTIFY_SOCKET");

	d->fdstore = s && *s;
	d->next_client_gen = 1;
}

void fdstore_freeze(struct daemon *d)
{
	d->fdstore_frozen = true;
}

static bool on(const struct daemon *d)
{
	return d->fdstore && !d->fdstore_frozen;
}

static void store(struct daemon *d, int fd, const char *name)
{
	char msg[NAME_MAX_LEN + 32];
	int r;

	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	r = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
	if (r <= 0 && !d->fdstore_warned) {
		log_errno(LOG_WARNING, r < 0 ? r : -ENOTCONN,
			  "cannot keep %s in the service's fd store (%m): a "
			  "restart may lose clients (FileDescriptorStoreMax= "
			  "too low?)",
			  name);
		d->fdstore_warned = true;
	}
}

static void unstore(struct daemon *d, const char *name)
{
	char msg[NAME_MAX_LEN + 40];

	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	sd_pid_notify(0, 0, msg);
}

static void cpu_str(int32_t cpu, char *buf, size_t len)
{
	if (cpu < 0)
		snprintf(buf, len, "any");
	else
		snprintf(buf, len, "%d", (int)cpu);
}

static void chunk_name(const struct daemon *d, const struct chunk *c, bool lent,
		       char *buf, size_t len)
{
	char cpu[16];

	cpu_str(c->cpu, cpu, sizeof(cpu));
	if (lent)
		snprintf(buf, len, "lent.%" PRIu64 ".p%u.c%s.s%d.g%" PRIu64,
			 c->id, d->chunk_pages, cpu, (int)c->owner,
			 d->clients[c->owner].gen);
	else
		snprintf(buf, len, "chunk.%" PRIu64 ".p%u.c%s", c->id,
			 d->chunk_pages, cpu);
}

void fdstore_put_listener(struct daemon *d)
{
	if (on(d) && d->listen_fd >= 0)
		store(d, d->listen_fd, "listen");
}

void fdstore_drop_listener(struct daemon *d)
{
	if (on(d))
		unstore(d, "listen");
}

void fdstore_put_chunk(struct daemon *d, const struct chunk *c)
{
	char name[NAME_MAX_LEN + 1];

	if (!on(d) || c->fd < 0)
		return;
	chunk_name(d, c, false, name, sizeof(name));
	store(d, c->fd, name);
}

void fdstore_lend_chunk(struct daemon *d, const struct chunk *c)
{
	char name[NAME_MAX_LEN + 1], path[64];
	int fd;

	if (!on(d) || c->fd < 0 || c->owner < 0)
		return;
	chunk_name(d, c, true, name, sizeof(name));
	/*
	 * systemd keeps one entry per open file description (a second
	 * FDSTORE=1 of the same one is dropped as a duplicate): the lent
	 * name gets a description of its own, read-only (the daemon only
	 * keeps a lent chunk mapped and locked).
	 */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", c->fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		store(d, fd, name);
		close(fd);
		return;
	}
	/* Cannot reopen: the pool name goes first (a SIGKILL in between
	 * leaves the chunk unstored: its client keeps it, the next instance
	 * never lends it). */
	fdstore_unpool_chunk(d, c);
	store(d, c->fd, name);
}

void fdstore_unpool_chunk(struct daemon *d, const struct chunk *c)
{
	char name[NAME_MAX_LEN + 1];

	if (!on(d))
		return;
	chunk_name(d, c, false, name, sizeof(name));
	unstore(d, name);
}

void fdstore_drop_chunk(struct daemon *d, const struct chunk *c)
{
	char name[NAME_MAX_LEN + 1];

	if (!on(d))
		return;
	chunk_name(d, c, c->where == CHUNK_LENT && c->owner >= 0, name,
		   sizeof(name));
	unstore(d, name);
}

static void client_name(const struct client *cl, const char *what, char *buf,
			size_t len)
{
	snprintf(buf, len, "%s.s%d.g%" PRIu64, what, cl->slot, cl->gen);
}

void fdstore_put_client(struct daemon *d, const struct client *cl, int conn_fd)
{
	char name[NAME_MAX_LEN + 1];

	if (!on(d))
		return;
	/* The record first: a pidfd or connection without it is refused. */
	snprintf(name, sizeof(name),
		 "lease.s%d.g%" PRIu64 ".pid%d.uid%u.min%u.max%u.%s", cl->slot,
		 cl->gen, (int)cl->pid, (unsigned int)cl->uid, cl->req_min,
		 cl->req_max, cl->name);
	store(d, cl->lease_fd, name);
	client_name(cl, "pidfd", name, sizeof(name));
	store(d, cl->pidfd, name);
	if (conn_fd >= 0) {
		client_name(cl, "conn", name, sizeof(name));
		store(d, conn_fd, name);
	}
}

void fdstore_drop_conn(struct daemon *d, const struct client *cl)
{
	char name[NAME_MAX_LEN + 1];

	if (!on(d))
		return;
	client_name(cl, "conn", name, sizeof(name));
	unstore(d, name);
}

void fdstore_drop_client(struct daemon *d, const struct client *cl)
{
	char name[NAME_MAX_LEN + 1];

	if (!on(d))
		return;
	client_name(cl, "conn", name, sizeof(name));
	unstore(d, name);
	client_name(cl, "pidfd", name, sizeof(name));
	unstore(d, name);
	snprintf(name, sizeof(name),
		 "lease.s%d.g%" PRIu64 ".pid%d.uid%u.min%u.max%u.%s", cl->slot,
		 cl->gen, (int)cl->pid, (unsigned int)cl->uid, cl->req_min,
		 cl->req_max, cl->name);
	unstore(d, name);
}

/* --- reading names ----------------------------------------------------------
 */

/* A decimal number of at most max, ending at *end; true if it was one. */
static bool num(const char **p, uint64_t max, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > max)
		return false;
	*out = v;
	*p = s;
	return true;
}

/* The literal lit, then a number. */
static bool field(const char **p, const char *lit, uint64_t max, uint64_t *out)
{
	size_t n = strlen(lit);

	if (strncmp(*p, lit, n))
		return false;
	*p += n;
	return num(p, max, out);
}

static bool cpu_field(const char **p, int32_t *cpu)
{
	uint64_t v;

	if (!strncmp(*p, ".cany", 5)) {
		*p += 5;
		*cpu = -1;
		return true;
	}
	if (!field(p, ".c", 65535, &v))
		return false;
	*cpu = (int32_t)v;
	return true;
}

static bool parse(struct entry *e)
{
	const char *p = e->name;
	uint64_t v[6];

	if (!strcmp(p, "listen")) {
		e->kind = K_LISTEN;
		return true;
	}
	if (field(&p, "chunk.", UINT64_MAX, &v[0]) &&
	    field(&p, ".p", UINT32_MAX, &v[1]) && cpu_field(&p, &e->cpu) &&
	    !*p) {
		e->kind = K_CHUNK;
		e->id = v[0];
		e->pages = (uint32_t)v[1];
		return true;
	}
	p = e->name;
	if (field(&p, "lent.", UINT64_MAX, &v[0]) &&
	    field(&p, ".p", UINT32_MAX, &v[1]) && cpu_field(&p, &e->cpu) &&
	    field(&p, ".s", UINT32_MAX, &v[2]) &&
	    field(&p, ".g", UINT64_MAX, &v[3]) && !*p) {
		e->kind = K_LENT;
		e->id = v[0];
		e->pages = (uint32_t)v[1];
		e->slot = (uint32_t)v[2];
		e->gen = v[3];
		return true;
	}
	p = e->name;
	if (field(&p, "lease.s", UINT32_MAX, &v[0]) &&
	    field(&p, ".g", UINT64_MAX, &v[1]) &&
	    field(&p, ".pid", INT32_MAX, &v[2]) &&
	    field(&p, ".uid", UINT32_MAX - 1, &v[3]) &&
	    field(&p, ".min", UINT32_MAX, &v[4]) &&
	    field(&p, ".max", UINT32_MAX, &v[5]) && *p == '.' && p[1] &&
	    strlen(p + 1) < sizeof(e->cname)) {
		e->kind = K_LEASE;
		e->slot = (uint32_t)v[0];
		e->gen = v[1];
		e->pid = (pid_t)v[2];
		e->uid = (uid_t)v[3];
		e->req_min = (uint32_t)v[4];
		e->req_max = (uint32_t)v[5];
		snprintf(e->cname, sizeof(e->cname), "%s", p + 1);
		for (char *s = e->cname; *s; s++)
			if (!((*s >= 'a' && *s <= 'z') ||
			      (*s >= 'A' && *s <= 'Z') ||
			      (*s >= '0' && *s <= '9') || *s == '.' ||
			      *s == '-' || *s == '_'))
				return false;
		return e->pid > 0;
	}
	p = e->name;
	if (field(&p, "pidfd.s", UINT32_MAX, &v[0]) &&
	    field(&p, ".g", UINT64_MAX, &v[1]) && !*p) {
		e->kind = K_PIDFD;
		e->slot = (uint32_t)v[0];
		e->gen = v[1];
		return true;
	}
	p = e->name;
	if (field(&p, "conn.s", UINT32_MAX, &v[0]) &&
	    field(&p, ".g", UINT64_MAX, &v[1]) && !*p) {
		e->kind = K_CONN;
		e->slot = (uint32_t)v[0];
		e->gen = v[1];
		return true;
	}
	return false;
}

/* Is this one of our names at all (a prefix we write)? */
static bool ours(const char *name)
{
	static const char *const pre[] = {"listen", "chunk.", "lent.",
					  "lease.", "pidfd.", "conn."};

	for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++)
		if (!strncmp(name, pre[i], strlen(pre[i])))
			return true;
	return false;
}

/* The name as it may be logged: printable ASCII only. */
static const char *shown(const struct entry *e, char *buf, size_t len)
{
	size_t i = 0;

	for (; e->name[i] && i < len - 1; i++)
		buf[i] = e->name[i] > 0x20 && e->name[i] < 0x7f ? e->name[i]
								: '?';
	buf[i] = '\0';
	return buf;
}

/* Close it, take it out of the store, count it, say why. */
static void reject(struct daemon *d, struct entry *e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reject(struct daemon *d, struct entry *e, const char *fmt, ...)
{
	char why[256], name[NAME_MAX_LEN + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warning("fd store: %s (fd %d): %s: closed",
		    shown(e, name, sizeof(name)), e->fd, why);
	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
	e->used = true;
	d->fdstore_rejected++;
	/* A garbage name is not ours to keep; never remove "listen" by a
	 * bad twin (the good one would go with it). */
	if (d->fdstore && e->kind != K_LISTEN && !strchr(e->name, '\n'))
		unstore(d, e->name);
}

/* Dropped on purpose (stale, gone): closed and removed, not an error. */
static void drop(struct daemon *d, struct entry *e)
{
	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
	e->used = true;
	if (d->fdstore)
		unstore(d, e->name);
}

/* --- loading ----------------------------------------------------------------
 */

#define CHUNK_PAGES_MAX 65536 /* reserve.chunk_pages' upper bound */

static bool memfd_fits(int fd, uint64_t size);

int fdstore_load(struct daemon *d)
{
	struct fdstore_in *in;
	char **names = NULL;
	bool any = false;
	int n;

	n = sd_listen_fds_with_names(0, &names);
	if (n <= 0 || !names) {
		if (names)
			for (char **s = names; *s; s++)
				free(*s);
		free(names);
		return 0;
	}
	for (int i = 0; i < n && names[i]; i++)
		if (ours(names[i]))
			any = true;
	if (!any) {
		/* Socket activation alone: listen_from_systemd() takes it. */
		for (char **s = names; *s; s++)
			free(*s);
		free(names);
		return 0;
	}
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	in = calloc(1, sizeof(*in));
	if (in)
		in->e = calloc((size_t)n, sizeof(*in->e));
	if (!in || !in->e) {
		for (int i = 0; i < n; i++)
			close(SD_LISTEN_FDS_START + i);
		for (char **s = names; *s; s++)
			free(*s);
		free(names);
		free(in);
		return log_errno(LOG_ERR, -ENOMEM, "out of memory");
	}
	in->n = (size_t)n;
	for (int i = 0; i < n; i++) {
		struct entry *e = &in->e[i];

		e->fd = SD_LISTEN_FDS_START + i;
		fcntl(e->fd, F_SETFD, FD_CLOEXEC);
		snprintf(e->name, sizeof(e->name), "%s",
			 names[i] ? names[i] : "");
	}
	for (char **s = names; *s; s++)
		free(*s);
	free(names);
	d->fds_in = in;

	/* The listening socket: ours ("listen"), else systemd's. */
	for (size_t i = 0; i < in->n; i++) {
		struct entry *e = &in->e[i];

		if (!parse(e)) {
			e->kind = ours(e->name) ? K_NONE : K_ACTIVATE;
			if (e->kind == K_NONE)
				reject(d, e, "not a name this daemon writes");
		}
	}
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < in->n; i++) {
			struct entry *e = &in->e[i];
			int flags;

			if (e->used ||
			    e->kind != (pass == 0 ? K_LISTEN : K_ACTIVATE))
				continue;
			if (sd_is_socket_unix(e->fd, SOCK_SEQPACKET, 1, NULL,
					      0) <= 0) {
				reject(d, e,
				       "not a listening AF_UNIX "
				       "SOCK_SEQPACKET socket");
				continue;
			}
			if (d->listen_fd >= 0) {
				reject(d, e, "a second listening socket");
				continue;
			}
			flags = fcntl(e->fd, F_GETFL);
			if (flags >= 0)
				fcntl(e->fd, F_SETFL, flags | O_NONBLOCK);
			d->listen_fd = e->fd;
			d->listen_owned = e->kind == K_LISTEN;
			d->listen_adopted = true;
			e->used = true;
		}
	/* The geometry of the leases (fdstore_geometry). */
	for (size_t i = 0; i < in->n; i++) {
		struct entry *e = &in->e[i];
		struct lease_shm h;

		if (e->used || e->kind != K_LEASE)
			continue;
		/* Hostile too: a sealed lease of the configured page size
		 * and a chunk size the configuration could have said. */
		if (memfd_fits(e->fd, LEASE_SIZE) &&
		    pread(e->fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
		    h.magic == LEASE_MAGIC && h.version == LEASE_VERSION &&
		    h.page_size == d->conf.reserve.page_size &&
		    h.chunk_pages >= 1 && h.chunk_pages <= CHUNK_PAGES_MAX) {
			d->adopt_page_size = h.page_size;
			d->adopt_chunk_pages = h.chunk_pages;
			break;
		}
	}
	return 0;
}

void fdstore_geometry(struct daemon *d)
{
	if (!d->adopt_chunk_pages)
		return;
	if (d->adopt_page_size == d->page_size &&
	    d->adopt_chunk_pages == d->chunk_pages)
		return;
	log_warning("reserve: the adopted clients' chunks are %u pages of %u "
		    "bytes, the configuration says %u pages of %u bytes: "
		    "keeping the adopted geometry until a start without "
		    "adopted clients",
		    d->adopt_chunk_pages, d->adopt_page_size, d->chunk_pages,
		    d->page_size);
	d->page_size = d->adopt_page_size;
	d->chunk_pages = d->adopt_chunk_pages;
}

/* --- adopting
 * ----------------------------------------------------------------- */

/* The pid a pidfd follows (-1: exited), from /proc/self/fdinfo; 0: not a
 * pidfd. */
static pid_t pidfd_pid(int fd)
{
	char path[64], line[128];
	pid_t pid = 0;
	bool is_pidfd = false;
	FILE *f;
	struct stat st;

	if (fstat(fd, &st) < 0 || S_ISREG(st.st_mode) || S_ISSOCK(st.st_mode))
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		int v;

		if (sscanf(line, "Pid:\t%d", &v) == 1) {
			pid = v;
			is_pidfd = true;
		}
	}
	fclose(f);
	if (!is_pidfd)
		return 0;
	return pid;
}

static struct entry *find(struct fdstore_in *in, enum kind k, uint32_t slot,
			  uint64_t gen)
{
	for (size_t i = 0; i < in->n; i++) {
		struct entry *e = &in->e[i];

		if (!e->used && e->kind == k && e->slot == slot &&
		    e->gen == gen)
			return e;
	}
	return NULL;
}

static bool memfd_fits(int fd, uint64_t size)
{
	struct stat st;
	int seals;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != size)
		return false;
	seals = fcntl(fd, F_GET_SEALS);
	return seals >= 0 && (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) ==
				     (F_SEAL_SHRINK | F_SEAL_GROW);
}

/* A client's record: its lease, pidfd and connection. */
static void adopt_client(struct daemon *d, struct fdstore_in *in,
			 struct entry *e)
{
	struct entry *pe, *ce;
	struct lease_shm *m;
	struct client *cl;
	pid_t pid;
	int pidfd;

	if (e->slot >= d->nslots) {
		reject(d, e, "slot %u, but limits.max_clients is %u now",
		       e->slot, d->nslots);
		return;
	}
	if (d->clients[e->slot].state != CLIENT_FREE) {
		reject(d, e, "slot %u taken twice", e->slot);
		return;
	}
	if (!memfd_fits(e->fd, LEASE_SIZE)) {
		reject(d, e, "not a sealed memfd of %d bytes", LEASE_SIZE);
		return;
	}
	m = mmap(NULL, LEASE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, e->fd,
		 0);
	if (m == MAP_FAILED) {
		reject(d, e, "cannot map it: %s", strerror(errno));
		return;
	}
	if (m->magic != LEASE_MAGIC || m->version != LEASE_VERSION ||
	    m->size != sizeof(*m) || m->page_size != d->page_size ||
	    m->chunk_pages != d->chunk_pages || m->client_id != e->slot) {
		munmap(m, LEASE_SIZE);
		reject(d, e,
		       "its header does not match (magic, version, "
		       "geometry, slot)");
		return;
	}
	pe = find(in, K_PIDFD, e->slot, e->gen);
	pid = pe ? pidfd_pid(pe->fd) : 0;
	if (pe && pid != e->pid) {
		if (pid == -1)
			drop(d, pe); /* exited: said below */
		else {
			reject(d, pe, "not the pidfd of pid %d", (int)e->pid);
		}
		pe = NULL;
	}
	ce = find(in, K_CONN, e->slot, e->gen);
	if (ce) {
		struct ucred uc;
		socklen_t len = sizeof(uc);

		if (sd_is_socket_unix(ce->fd, SOCK_SEQPACKET, 0, NULL, 0) <=
			    0 ||
		    getsockopt(ce->fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) <
			    0 ||
		    uc.pid != e->pid || uc.uid != e->uid) {
			reject(d, ce, "not a connection from pid %d uid %u",
			       (int)e->pid, (unsigned int)e->uid);
			ce = NULL;
		}
	}
	if (!pe) {
		/* No pidfd: the process has exited (or cannot be followed):
		 * its record goes, its lent chunks are retired below. */
		log_info("fd store: client %s (pid %d, slot %u): no pidfd of "
			 "it (it exited while no rcupoold ran): its chunks are "
			 "retired",
			 e->cname, (int)e->pid, e->slot);
		munmap(m, LEASE_SIZE);
		if (ce)
			drop(d, ce);
		drop(d, e);
		return;
	}
	pidfd = pe->fd;
	cl = lending_adopt(d, e->slot, e->gen, e->pid, e->uid, e->cname,
			   e->req_min, e->req_max, e->fd, m, pidfd);
	if (!cl) {
		munmap(m, LEASE_SIZE);
		reject(d, e, "cannot watch its process");
		return;
	}
	e->used = true;
	pe->used = true;
	if (ce) {
		if (server_adopt_conn(d, ce->fd, cl) < 0) {
			drop(d, ce);
			lending_detach(d, cl);
		} else {
			ce->used = true;
		}
	} else {
		cl->state = CLIENT_DETACHED;
	}
	d->clients_adopted++;
	if (e->gen >= d->next_client_gen)
		d->next_client_gen = e->gen + 1;
}

void fdstore_adopt(struct daemon *d)
{
	struct fdstore_in *in = d->fds_in;
	uint32_t lent = 0, pooled = 0, gone = 0, stale = 0;
	char name[NAME_MAX_LEN + 1];

	if (!in)
		return;
	/* Ids and generations are never reused, not even those dropped. */
	for (size_t i = 0; i < in->n; i++) {
		struct entry *e = &in->e[i];

		if ((e->kind == K_CHUNK || e->kind == K_LENT) &&
		    e->id > d->next_id)
			d->next_id = e->id;
		if ((e->kind == K_LEASE || e->kind == K_LENT ||
		     e->kind == K_PIDFD || e->kind == K_CONN) &&
		    e->gen >= d->next_client_gen && e->gen < UINT64_MAX)
			d->next_client_gen = e->gen + 1;
	}
	/* 1. Clients. */
	for (size_t i = 0; i < in->n; i++)
		if (!in->e[i].used && in->e[i].kind == K_LEASE)
			adopt_client(d, in, &in->e[i]);
	/* 2. Lent chunks: the lent name wins over a pool name. */
	for (size_t i = 0; i < in->n; i++) {
		struct entry *e = &in->e[i];
		struct client *cl;

		if (e->used || e->kind != K_LENT)
			continue;
		if (e->pages != d->chunk_pages ||
		    !memfd_fits(e->fd, (uint64_t)e->pages * d->page_size)) {
			reject(d, e,
			       "not a sealed memfd of %u pages of %u "
			       "bytes",
			       e->pages, d->page_size);
			continue;
		}
		if (reserve_find(d, e->id)) {
			reject(d, e, "chunk %" PRIu64 " twice", e->id);
			continue;
		}
		cl = e->slot < d->nslots ? &d->clients[e->slot] : NULL;
		if (!cl || cl->state == CLIENT_FREE || cl->gen != e->gen) {
			/* Its client exited: retired, as it would have been. */
			drop(d, e);
			gone++;
			if (e->id > d->next_id)
				d->next_id = e->id;
			continue;
		}
		if (!reserve_adopt_chunk(d, e->id, e->fd, e->cpu, cl)) {
			reject(d, e, "cannot map it: %s", strerror(errno));
			continue;
		}
		e->used = true;
		lent++;
	}
	/* 3. Pool chunks. */
	for (size_t i = 0; i < in->n; i++) {
		struct entry *e = &in->e[i];

		if (e->used || e->kind != K_CHUNK)
			continue;
		if (reserve_find(d, e->id)) {
			/* Lent, and killed before its pool name went. */
			drop(d, e);
			stale++;
			continue;
		}
		if (e->pages != d->chunk_pages ||
		    !memfd_fits(e->fd, (uint64_t)e->pages * d->page_size)) {
			if (e->pages != d->chunk_pages &&
			    memfd_fits(e->fd,
				       (uint64_t)e->pages * d->page_size)) {
				log_info("fd store: %s: chunks are %u pages "
					 "now: replaced",
					 shown(e, name, sizeof(name)),
					 d->chunk_pages);
				drop(d, e);
				gone++;
			} else {
				reject(d, e,
				       "not a sealed memfd of %u pages "
				       "of %u bytes",
				       e->pages, d->page_size);
			}
			continue;
		}
		if (!reserve_adopt_chunk(d, e->id, e->fd, e->cpu, NULL)) {
			reject(d, e, "cannot map it: %s", strerror(errno));
			continue;
		}
		e->used = true;
		pooled++;
	}
	/* Adopted without a connection and holding nothing: nothing to keep. */
	for (uint32_t i = 0; i < d->nslots; i++)
		if (d->clients[i].state == CLIENT_DETACHED &&
		    !d->clients[i].lent.n)
			lending_release(d, &d->clients[i]);
	/* 4. What is left: pidfds and connections of no client, strays. */
	for (size_t i = 0; i < in->n; i++) {
		struct entry *e = &in->e[i];

		if (e->used)
			continue;
		if (e->kind == K_PIDFD || e->kind == K_CONN)
			drop(d, e);
		else
			reject(d, e, "not adopted");
	}
	log_notice("fd store: adopted %u clients, %u lent chunks, %u pool "
		   "chunks%s; %u chunks of exited clients retired, %u stale "
		   "names dropped, %u fds rejected",
		   d->clients_adopted, lent, pooled,
		   d->listen_adopted ? ", the listening socket" : "", gone,
		   stale, d->fdstore_rejected);
	free(in->e);
	free(in);
	d->fds_in = NULL;
}
