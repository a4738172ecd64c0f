/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_PROTO_H
#define RCUPOOL_PROTO_H

/*
 * Control protocol (DESIGN.md section 7): framing shared by rcupoold,
 * librcupool and rcupoolctl.
 *
 * Transport: AF_UNIX SOCK_SEQPACKET, one protocol message per packet, file
 * descriptors (the client's lease memfd, chunk memfds) as SCM_RIGHTS.
 *
 * Lending (version 2, DESIGN.md section 3):
 *   ATTACH      -> reply SLOT, MIN_PAGES, MAX_PAGES (as granted, whole
 *                  chunks), GENERATION, PAGE_SIZE, CHUNK_PAGES;
 *                  fds: [0] the lease memfd (proto/lease.h).
 *   CHUNK_GET   COUNT (1..PROTO_GET_MAX), CPU_ID? (u32, PROTO_CPU_ANY = any)
 *               -> reply CHUNK* (nested: CHUNK_ID, CHUNK_PAGES, CHUNK_CPU),
 *                  fds: one per CHUNK, in the order of the CHUNK attributes.
 *                  A partial grant is a success with fewer CHUNKs; none:
 *                  -EDQUOT (at max_pages) or -ENOSPC (the reserve is empty).
 *   CHUNK_PUT   CHUNK_ID+ (at most PROTO_PUT_MAX) -> reply COUNT (ids taken
 *                  back); ids not lent to this client: -EINVAL naming them
 *                  (the others are still taken back).
 *   RECALL      sent by the daemon, unsolicited: not a request, seq 0,
 *               ERROR 0, RETURN_CHUNKS (u32): give back that many chunks
 *               (the lease's limits.return_chunks says the same).
 *
 * Message: struct nlmsghdr (nlmsg_type = PROTO_FAMILY, NLM_F_REQUEST on
 * requests, nlmsg_seq of a request echoed in its reply), struct genlmsghdr
 * (cmd = enum proto_cmd, version = PROTO_VERSION), then netlink attributes
 * (enum proto_attr), built with libnl-3 (nla_put_*, nla_nest_start/end).
 * Every reply carries PROTO_A_ERROR (u32, a positive errno, 0 = success) and
 * PROTO_A_MESSAGE (a human message, possibly empty).
 *
 * Compatibility: new fields are new attributes (appended before
 * PROTO_A_MAX, never renumbered).  A receiver ignores attributes above the
 * maximum it knows, so an older peer skips newer fields.  PROTO_VERSION only
 * changes when the meaning of an existing command or attribute changes.
 *
 * Errors (all functions return 0, a count, or -errno; nothing prints):
 *   -EBADMSG          malformed message: short or inconsistent header,
 *                     attribute overrunning its container, wrong attribute
 *                     length, string not NUL-terminated or too long,
 *                     duplicate attribute, unexpected or too many fds
 *   -EPROTO           nlmsg_type is not PROTO_FAMILY; in proto_call, a reply
 *                     with the right seq but another command, or a request
 *   -EPROTONOSUPPORT  genl version is not PROTO_VERSION
 *   -EOPNOTSUPP       unknown command
 *   -EINVAL           well-formed but not a valid request: an attribute not
 *                     allowed for the command, a required one missing
 *   -EMSGSIZE         message bigger than the buffer or PROTO_MSG_MAX
 *   -ECONNRESET       the peer closed the connection (recv returned 0)
 *   other             errno of the system call
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netlink/attr.h>
#include <netlink/msg.h>

#define PROTO_FAMILY  0x1c0 /* nlmsg_type, >= NLMSG_MIN_TYPE */
#define PROTO_VERSION 2
#define PROTO_MSG_MAX (256 * 1024) /* whole message, headers included */
#define PROTO_FDS_MAX 8		   /* SCM_RIGHTS fds in one message */

#define PROTO_NAME_MAX	  64   /* PROTO_A_NAME, NUL included */
#define PROTO_MESSAGE_MAX 1024 /* PROTO_A_MESSAGE, NUL included */
#define PROTO_KEY_MAX	  128  /* PROTO_SETTING_KEY, NUL included */
#define PROTO_VALUE_MAX	  256  /* PROTO_SETTING_VALUE, NUL included */
#define PROTO_PATH_MAX	  4096 /* PROTO_A_PATH, NUL included */

/* Where a setting is kept (PROTO_A_LAYER). */
enum proto_layer {
	PROTO_LAYER_RUNTIME, /* the daemon's runtime drop-in: until reboot */
	PROTO_LAYER_PERSIST, /* the configuration directory's drop-in */
};

enum proto_cmd {
	PROTO_CMD_UNSPEC,
	PROTO_CMD_ATTACH, /* NAME?, MIN_PAGES?, MAX_PAGES?; reply + fds */
	PROTO_CMD_DETACH,
	PROTO_CMD_GET_STATUS,  /* reply: STATUS */
	PROTO_CMD_GET_STATS,   /* reply: STATUS?, CPU*, CLIENT* */
	PROTO_CMD_GET_CLIENTS, /* reply: CLIENT* */
	PROTO_CMD_GET_LIMITS,  /* reply: SETTING* */
	PROTO_CMD_SET_LIMITS,  /* SETTING+, LAYER?, DRY_RUN?; reply: PATH */
	PROTO_CMD_RESET_STATS,
	PROTO_CMD_RELOAD,
	PROTO_CMD_CENSUS, /* take a census now and repair (admin) */
	PROTO_CMD_CHUNK_GET, /* COUNT, CPU?; reply CHUNK* + one fd each */
	PROTO_CMD_CHUNK_PUT, /* CHUNK_ID+; reply COUNT */
	PROTO_CMD_RECALL,    /* daemon -> client notification, seq 0 */
	/* Appended (ops): a reply only, never a request.  The daemon answers
	 * a request it cannot parse or does not know with ERROR (ERROR >= 1,
	 * MESSAGE) and the request's seq, so that any client parses it;
	 * proto_call accepts it as the reply to whatever it sent. */
	PROTO_CMD_ERROR,
	/* Appended (ops): remove settings from a layer (admin).  SETTING*
	 * (KEY; VALUE ignored, may be ""), LAYER?, DRY_RUN?; no SETTING =
	 * every key of the layer (rcupoolctl revert).  Reply: PATH. */
	PROTO_CMD_UNSET_LIMITS,
	__PROTO_CMD_MAX,
};
#define PROTO_CMD_MAX (__PROTO_CMD_MAX - 1)

enum proto_attr {
	PROTO_A_UNSPEC,
	PROTO_A_ERROR,	    /* u32: positive errno, 0 = success (replies) */
	PROTO_A_MESSAGE,    /* string < PROTO_MESSAGE_MAX (replies) */
	PROTO_A_NAME,	    /* string < PROTO_NAME_MAX: client name */
	PROTO_A_PID,	    /* u32 */
	PROTO_A_MIN_PAGES,  /* u32 */
	PROTO_A_MAX_PAGES,  /* u32 */
	PROTO_A_SLOT,	    /* u32: client slot in the segment */
	PROTO_A_GENERATION, /* u64 */
	PROTO_A_SETTING,    /* nested enum proto_setting_attr, repeated */
	PROTO_A_STATUS,	    /* nested, enum proto_status_attr (daemon, later) */
	PROTO_A_CPU,	    /* nested, repeated, enum proto_cpu_attr (later) */
	PROTO_A_CLIENT, /* nested, repeated, enum proto_client_attr (later) */
	PROTO_A_PAGE_SIZE,     /* u32: bytes per page (ATTACH reply) */
	PROTO_A_CHUNK_PAGES,   /* u32: pages per chunk (ATTACH reply) */
	PROTO_A_COUNT,	       /* u32: chunks wanted (GET) / taken back (PUT) */
	PROTO_A_CHUNK,	       /* nested, repeated, enum proto_chunk_attr */
	PROTO_A_CHUNK_ID,      /* u64, repeated (CHUNK_PUT) */
	PROTO_A_RETURN_CHUNKS, /* u32: chunks asked back (RECALL) */
	PROTO_A_CPU_ID,	       /* u32: preferred CPU (CHUNK_GET), or ANY */
	/* Appended (ops): settings in layers (SET_LIMITS, UNSET_LIMITS). */
	PROTO_A_LAYER,	 /* u32 enum proto_layer (requests; default RUNTIME) */
	PROTO_A_DRY_RUN, /* u32 1: validate only, change nothing (requests) */
	PROTO_A_PATH,	 /* string < PROTO_PATH_MAX: the drop-in of the layer
			    (replies to SET/UNSET_LIMITS and GET_LIMITS) */
	/* Appended (restart): ATTACH from a client that lost its daemon
	 * and attaches again, u32: how many times so far (1 the first). */
	PROTO_A_REATTACH,
	/* New top-level attributes go here, never in between. */
	__PROTO_A_MAX,
};
#define PROTO_A_MAX (__PROTO_A_MAX - 1)

#define PROTO_CPU_ANY UINT32_MAX /* PROTO_A_CPU_ID, CHUNK_CPU: no CPU */
#define PROTO_GET_MAX 8	       /* chunks in one CHUNK_GET (== LEND_GET_MAX) */
#define PROTO_PUT_MAX 64       /* ids in one CHUNK_PUT */

/* Inside PROTO_A_CHUNK: one chunk lent, all required. */
enum proto_chunk_attr {
	PROTO_CHUNK_UNSPEC,
	PROTO_CHUNK_ID,	   /* u64: the daemon's name for it */
	PROTO_CHUNK_PAGES, /* u32 */
	PROTO_CHUNK_CPU,   /* u32: CPU whose pool it came from, or ANY */
	__PROTO_CHUNK_MAX,
};
#define PROTO_CHUNK_MAX (__PROTO_CHUNK_MAX - 1)

/* Inside PROTO_A_SETTING: one key=value pair, both required. */
enum proto_setting_attr {
	PROTO_SETTING_UNSPEC,
	PROTO_SETTING_KEY,   /* string < PROTO_KEY_MAX */
	PROTO_SETTING_VALUE, /* string < PROTO_VALUE_MAX */
	PROTO_SETTING_SOURCE, /* string < PROTO_VALUE_MAX: where a value came
				 from (GET_LIMITS replies) */
	__PROTO_SETTING_MAX,
};
#define PROTO_SETTING_MAX (__PROTO_SETTING_MAX - 1)

/*
 * Nested attribute sets of PROTO_A_STATUS, PROTO_A_CPU and PROTO_A_CLIENT.
 * Their names, types and meanings are described once, in stats.h, which the
 * daemon fills from and the CLI prints from.  New fields are appended.
 */
enum proto_status_attr {
	PROTO_STATUS_UNSPEC,
	PROTO_STATUS_VERSION,	       /* string: daemon version */
	PROTO_STATUS_PID,	       /* u32 */
	PROTO_STATUS_UPTIME_USEC,      /* u64 */
	PROTO_STATUS_PAGE_SIZE,	       /* u32 */
	PROTO_STATUS_CPUS,	       /* u32: possible CPUs */
	PROTO_STATUS_CPUS_ONLINE,      /* u32 */
	PROTO_STATUS_PAGES_TOTAL,      /* u64: every page of the reserve */
	PROTO_STATUS_PAGES_FREE,       /* u64: on a CPU list or the pool */
	PROTO_STATUS_PAGES_GLOBAL,     /* u64: on the global pool */
	PROTO_STATUS_PAGES_HELD,       /* u64: owned by clients */
	PROTO_STATUS_CLIENTS,	       /* u32: attached now */
	PROTO_STATUS_MAX_CLIENTS,      /* u32 */
	PROTO_STATUS_DEPLETIONS,       /* u64: client requests that found all empty */
	PROTO_STATUS_DENIED,	       /* u64: requests over a client's max */
	PROTO_STATUS_FALLBACKS,	       /* u64: overflow + head + sync */
	PROTO_STATUS_KICKS,	       /* u64: depletion kicks received */
	PROTO_STATUS_BALANCE_RUNS,     /* u64 */
	PROTO_STATUS_PAGES_MOVED,      /* u64: by the balancer */
	PROTO_STATUS_PAGES_RECLAIMED,  /* u64: from clients that went away */
	PROTO_STATUS_PAGES_REPAIRED,   /* u64: lost pages the census returned */
	PROTO_STATUS_CENSUS_RUNS,      /* u64 */
	PROTO_STATUS_BAD_INDEX,	       /* u64: corrupt indices seen */
	PROTO_STATUS_LOCKED,	       /* u32: 1 when the reserve is mlocked */
	PROTO_STATUS_HUGETLB,	       /* u32: 1 when backed by huge pages */
	PROTO_STATUS_RELOADS,	       /* u64 */
	PROTO_STATUS_PAGES_LENT,       /* u64: in chunks lent to clients */
	PROTO_STATUS_CHUNK_PAGES,      /* u32: pages per chunk */
	PROTO_STATUS_CHUNKS_TOTAL,     /* u64: chunks in pools or lent */
	PROTO_STATUS_CHUNKS_FREE,      /* u64: chunks in pools */
	PROTO_STATUS_CHUNKS_RETIRED,   /* u64: chunks closed after their lease */
	PROTO_STATUS_BAD,	       /* u64: bad ids and scribbled counters */
	/* Appended (restart). */
	PROTO_STATUS_STARTED_USEC,	  /* u64: this instance's start, since
					     the epoch (CLOCK_REALTIME) */
	PROTO_STATUS_CLIENTS_ADOPTED,	  /* u32: taken over at start */
	PROTO_STATUS_CLIENTS_REATTACHED, /* u64: attached again to us after
					     losing a former instance */
	/* Appended (shortage recall). */
	PROTO_STATUS_PAGES_RECALLED, /* u64: asked back from idle surplus */
	__PROTO_STATUS_MAX,
};
#define PROTO_STATUS_MAX (__PROTO_STATUS_MAX - 1)

enum proto_cpu_attr {
	PROTO_CPU_UNSPEC,
	PROTO_CPU_ID,	     /* u32 */
	PROTO_CPU_ONLINE,    /* u32: 0 or 1 */
	PROTO_CPU_FREE,	     /* u64: pages on its free list */
	PROTO_CPU_PROTECT,   /* u64: pages on its protect list */
	PROTO_CPU_LOW,	     /* u32: watermarks, in pages */
	PROTO_CPU_TARGET,    /* u32 */
	PROTO_CPU_HIGH,	     /* u32 */
	PROTO_CPU_EMPTY,     /* u64: times a client found it empty */
	PROTO_CPU_MOVED_IN,  /* u64: pages the balancer put there */
	PROTO_CPU_MOVED_OUT, /* u64: pages the balancer took away */
	__PROTO_CPU_MAX,
};
#define PROTO_CPU_MAX (__PROTO_CPU_MAX - 1)

enum proto_client_attr {
	PROTO_CLIENT_UNSPEC,
	PROTO_CLIENT_SLOT,	  /* u32 */
	PROTO_CLIENT_PID,	  /* u32 */
	PROTO_CLIENT_UID,	  /* u32 */
	PROTO_CLIENT_NAME,	  /* string */
	PROTO_CLIENT_HELD,	  /* u64: reserve pages owned now */
	PROTO_CLIENT_HELD_PEAK,	  /* u64 */
	PROTO_CLIENT_MIN_PAGES,	  /* u32 */
	PROTO_CLIENT_MAX_PAGES,	  /* u32 */
	PROTO_CLIENT_PAGES_GOT,	  /* u64 */
	PROTO_CLIENT_DENIED,	  /* u64 */
	PROTO_CLIENT_DEPLETIONS,  /* u64 */
	PROTO_CLIENT_FB_OVERFLOW, /* u64: heap pages used as fallback */
	PROTO_CLIENT_FB_HEAD,	  /* u64: objects freed through their rcu_head */
	PROTO_CLIENT_FB_SYNC,	  /* u64: objects freed after synchronize_rcu */
	PROTO_CLIENT_ATTACHED_USEC, /* u64: how long ago it attached */
	PROTO_CLIENT_OBJECTS,	  /* u64: objects freed through the reserve */
	PROTO_CLIENT_LENT,	  /* u64: pages in chunks lent to it now */
	PROTO_CLIENT_BAD,	  /* u64: bad ids sent, counters scribbled */
	PROTO_CLIENT_DETACHED,	  /* u32: 1 when its connection closed but
				     its process lives (chunks still its) */
	/* Its pool's reclaim engine (the lease's counters). */
	PROTO_CLIENT_THROTTLED,	   /* u64: backpressure waits */
	PROTO_CLIENT_THROTTLED_NS, /* u64: their total time, ns */
	PROTO_CLIENT_GRACE_PERIODS, /* u64: grace periods run */
	PROTO_CLIENT_GP_P50_NS,	   /* u64: submission to return, p50, ns */
	PROTO_CLIENT_GP_P99_NS,	   /* u64: ... p99, ns */
	__PROTO_CLIENT_MAX,
};
#define PROTO_CLIENT_MAX (__PROTO_CLIENT_MAX - 1)

/* A parsed message.  tb[] and message point into the receive buffer. */
struct proto_msg {
	uint8_t cmd;
	uint8_t version;
	uint32_t seq;
	bool request;	     /* NLM_F_REQUEST */
	int error;	     /* replies: 0 or -errno from PROTO_A_ERROR */
	const char *message; /* replies: PROTO_A_MESSAGE or "" */
	struct nlattr *tb[PROTO_A_MAX + 1]; /* last of each type, or NULL */
	struct nlattr *attrs; /* all attributes, for repeated ones */
	int attrlen;
};

/* Map a libnl error (-NLE_* or NLE_*) to -errno; 0 stays 0. */
int proto_errno(int nle_err);

/* "ATTACH", ... or NULL for an unknown command. */
const char *proto_cmd_name(uint8_t cmd);

/* Name of a top-level attribute ("MIN_PAGES"), or NULL. */
const char *proto_attr_name(int type);

/*
 * Policies over the top-level attributes (maxtype PROTO_A_MAX).  A request
 * policy types the attributes allowed for cmd (NLA_UNSPEC = not allowed);
 * NULL for an unknown command.  The reply policy types every attribute.
 * Integer entries set .maxlen too, so libnl checks their exact size.
 */
const struct nla_policy *proto_request_policy(uint8_t cmd);
const struct nla_policy *proto_reply_policy(void);
const struct nla_policy *proto_setting_policy(void); /* PROTO_SETTING_MAX */

/* Allocate a PROTO_MSG_MAX message with both headers; add attributes with
 * nla_put_* (their -NLE_* through proto_errno: a full message is -ENOMEM). */
int proto_new(struct nl_msg **ret, uint8_t cmd, uint32_t seq, bool request);

/* A reply to req carrying ERROR (error: 0 or -errno) and MESSAGE (fmt may be
 * NULL for an empty message; truncated to PROTO_MESSAGE_MAX - 1 bytes).
 * A request whose command is unknown (or is ERROR) gets a PROTO_CMD_ERROR
 * reply; set req->cmd to PROTO_CMD_ERROR to get one for a malformed
 * request too. */
int proto_new_reply(struct nl_msg **ret, const struct proto_msg *req, int error,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Add one PROTO_A_SETTING {KEY, VALUE}. */
int proto_put_setting(struct nl_msg *msg, const char *key, const char *value);

/*
 * Send msg with nfds (<= PROTO_FDS_MAX) descriptors (sendmsg, MSG_NOSIGNAL,
 * EINTR retried).  The fds stay open in the caller.  0 or -errno.
 */
int proto_send(int fd, struct nl_msg *msg, const int *fds, size_t nfds);

/*
 * Receive one message into buf (4-byte aligned, e.g. malloc'ed; size up to
 * PROTO_MSG_MAX is enough).  fds/nfds: capacity in, count out (fds may be
 * NULL with nfds NULL or 0: no descriptor expected).  Returns the message
 * length or -errno:
 *   -EMSGSIZE     the message was bigger than size (it is discarded)
 *   -EBADMSG      more fds than the capacity, or truncated control data
 *   -ECONNRESET   the peer closed the connection (EOF)
 * On any error every fd received is closed and *nfds is 0.  Received fds
 * are O_CLOEXEC.  EINTR is retried; a non-blocking socket gives -EAGAIN.
 */
int proto_recv(int fd, void *buf, size_t size, int *fds, size_t *nfds);

/*
 * Check and parse one received message of len bytes: headers, then the
 * request policy of its command (requests) or the reply policy (replies).
 * buf must be 4-byte aligned (-EINVAL otherwise).  On error, why (if not
 * NULL) says what was wrong, e.g. "attribute 5 (MIN_PAGES): expected 4
 * bytes, got 2".  Attributes above PROTO_A_MAX are ignored.
 */
int proto_parse(const void *buf, size_t len, struct proto_msg *out, char *why,
		size_t whylen);

/* Next attribute of type after prev (NULL: the first), or NULL. */
struct nlattr *proto_next(const struct proto_msg *m, const struct nlattr *prev,
			  int type);
#define proto_for_each(nla, m, type)                                           \
	for ((nla) = proto_next((m), NULL, (type)); (nla);                     \
	     (nla) = proto_next((m), (nla), (type)))

/* Key and value of a PROTO_A_SETTING that proto_parse accepted. 0/-EINVAL. */
int proto_setting_get(const struct nlattr *setting, const char **key,
		      const char **value);

#define PROTO_SYSTEM_SOCKET "/run/rcupool/rcupoold.sock"

/*
 * The control socket a client connects to (DESIGN.md section 4; the CLI and
 * the library): $RCUPOOL_SOCKET; else, when euid is not 0,
 * $XDG_RUNTIME_DIR/rcupool/rcupoold.sock if that socket exists (a daemon the
 * user started by hand); else PROTO_SYSTEM_SOCKET (the system daemon).
 * $RUNTIME_DIRECTORY is deliberately ignored: a client that runs under
 * systemd has a runtime directory of its own, not the daemon's.  Empty
 * RCUPOOL_SOCKET, empty or relative XDG_RUNTIME_DIR count as unset.
 * Returns the length, -ENAMETOOLONG when the path does not fit sockaddr_un,
 * -ERANGE when it does not fit buf.
 */
int proto_socket_path(char *buf, size_t size);

/*
 * Where a daemon started by hand listens (it handles $RUNTIME_DIRECTORY
 * itself, before this): $RCUPOOL_SOCKET; else PROTO_SYSTEM_SOCKET for root;
 * else $XDG_RUNTIME_DIR/rcupool/rcupoold.sock, -ENOENT without it.  Same
 * return values as proto_socket_path.
 */
int proto_listen_path(char *buf, size_t size);

/* Give fd socket buffers for PROTO_MSG_MAX messages (the daemon calls it on
 * accepted connections).  Best effort: 0 or -errno of setsockopt. */
int proto_socket_buffers(int fd);

/* Connect to path (NULL: proto_socket_path); SOCK_CLOEXEC.  fd or -errno. */
int proto_connect(const char *path);

/*
 * Send req and wait for its reply into buf: replies with another seq are
 * stale (an earlier call given up) and dropped with their fds.  Returns 0,
 * -errno of the transport or of a malformed reply (-EPROTO: right seq but
 * another command, or not a reply), or the daemon's error as -errno.  A
 * PROTO_CMD_ERROR reply with the right seq answers any request: its error
 * is returned (-EPROTO if it carries none).
 * errmsg gets the daemon's message, or what was wrong with the reply, or "".
 * reply is filled whenever a reply was parsed (also on a daemon error).
 */
int proto_call(int fd, struct nl_msg *req, void *buf, size_t size,
	       struct proto_msg *reply, int *fds, size_t *nfds, char *errmsg,
	       size_t errlen);

#endif
