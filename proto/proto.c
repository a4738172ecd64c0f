// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Control protocol framing: see proto.h for the format and the errno table.
 *
 * What libnl 3.7 does and does not check (measured against 3.7.0, and the
 * reason proto_parse walks every attribute itself before handing the message
 * to genlmsg_parse):
 *   - nla_parse() stops silently at an attribute whose nla_len overruns its
 *     container, or shorter than its header, and ignores trailing bytes (a
 *     debug message only): we reject both.
 *   - integer types only get a minimum length (a u32 of 8 bytes passes);
 *     signed types (NLA_S32...) get none at all: our policies set .maxlen
 *     on integers, use no signed types, and our walk checks exact sizes.
 *   - NLA_STRING: libnl does check that the payload is non-empty, that its
 *     last byte is NUL, and .maxlen (NUL included).  We check the same, so
 *     that the error can say which attribute.
 *   - NLA_NESTED contents are not looked at: we check that every nested
 *     attribute is a well-formed attribute stream, and SETTING with its own
 *     policy (KEY and VALUE required).
 *   - attributes above maxtype are ignored (libnl and us): this is how an
 *     older peer skips newer fields.  Type 0 (UNSPEC) is rejected, so is a
 *     second copy of an attribute that is not repeated (SETTING, CPU,
 *     CLIENT are).
 *   - nlmsg_ok() is checked, and nlmsg_len must equal the received length.
 *   - libnl reports through -NLE_* codes: proto_errno() maps them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <netlink/errno.h>
#include <netlink/genl/genl.h>

#include "proto.h"

#define ERRNO_MAX 4095

int proto_errno(int nle_err)
{
	switch (nle_err < 0 ? -nle_err : nle_err) {
	case NLE_SUCCESS:
		return 0;
	case NLE_INTR:
	case NLE_DUMP_INTR:
		return -EINTR;
	case NLE_BAD_SOCK:
		return -EBADF;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_NOMEM: /* also nla_put_* on a full message */
		return -ENOMEM;
	case NLE_EXIST:
		return -EEXIST;
	/* Validation failures of a received message: bad encoding. */
	case NLE_INVAL:
	case NLE_RANGE:
	case NLE_MSG_TRUNC:
	case NLE_MSG_TOOSHORT:
	case NLE_ATTRSIZE:
	case NLE_MSG_OVERFLOW:
	case NLE_PARSE_ERR:
		return -EBADMSG;
	case NLE_MSGSIZE:
		return -EMSGSIZE;
	case NLE_OPNOTSUPP:
	case NLE_MSGTYPE_NOSUPPORT:
	case NLE_SRCRT_NOSUPPORT:
		return -EOPNOTSUPP;
	case NLE_AF_NOSUPPORT:
		return -EAFNOSUPPORT;
	case NLE_OBJ_NOTFOUND:
	case NLE_NOCACHE:
	case NLE_PKTLOC_FILE:
		return -ENOENT;
	case NLE_NOATTR:
	case NLE_MISSING_ATTR:
		return -ENODATA;
	case NLE_AF_MISMATCH:
	case NLE_SEQ_MISMATCH:
	case NLE_OBJ_MISMATCH:
	case NLE_PROTO_MISMATCH:
		return -EPROTO;
	case NLE_NOADDR:
		return -EADDRNOTAVAIL;
	case NLE_BUSY:
		return -EBUSY;
	case NLE_NOACCESS:
		return -EACCES;
	case NLE_PERM:
	case NLE_IMMUTABLE:
		return -EPERM;
	case NLE_NODEV:
		return -ENODEV;
	case NLE_FAILURE:
	default:
		return -EIO;
	}
}

static const char *const cmd_names[__PROTO_CMD_MAX] = {
	[PROTO_CMD_ATTACH] = "ATTACH",
	[PROTO_CMD_DETACH] = "DETACH",
	[PROTO_CMD_GET_STATUS] = "GET_STATUS",
	[PROTO_CMD_GET_STATS] = "GET_STATS",
	[PROTO_CMD_GET_CLIENTS] = "GET_CLIENTS",
	[PROTO_CMD_GET_LIMITS] = "GET_LIMITS",
	[PROTO_CMD_SET_LIMITS] = "SET_LIMITS",
	[PROTO_CMD_RESET_STATS] = "RESET_STATS",
	[PROTO_CMD_RELOAD] = "RELOAD",
	[PROTO_CMD_CENSUS] = "CENSUS",
	[PROTO_CMD_ERROR] = "ERROR",
	[PROTO_CMD_UNSET_LIMITS] = "UNSET_LIMITS",
	[PROTO_CMD_CHUNK_GET] = "CHUNK_GET",
	[PROTO_CMD_CHUNK_PUT] = "CHUNK_PUT",
	[PROTO_CMD_RECALL] = "RECALL",
};

const char *proto_cmd_name(uint8_t cmd)
{
	return cmd < __PROTO_CMD_MAX ? cmd_names[cmd] : NULL;
}

static const char *const attr_names[__PROTO_A_MAX] = {
	[PROTO_A_UNSPEC] = "UNSPEC",
	[PROTO_A_ERROR] = "ERROR",
	[PROTO_A_MESSAGE] = "MESSAGE",
	[PROTO_A_NAME] = "NAME",
	[PROTO_A_PID] = "PID",
	[PROTO_A_MIN_PAGES] = "MIN_PAGES",
	[PROTO_A_MAX_PAGES] = "MAX_PAGES",
	[PROTO_A_SLOT] = "SLOT",
	[PROTO_A_GENERATION] = "GENERATION",
	[PROTO_A_SETTING] = "SETTING",
	[PROTO_A_STATUS] = "STATUS",
	[PROTO_A_CPU] = "CPU",
	[PROTO_A_CLIENT] = "CLIENT",
	[PROTO_A_LAYER] = "LAYER",
	[PROTO_A_DRY_RUN] = "DRY_RUN",
	[PROTO_A_PATH] = "PATH",
	[PROTO_A_PAGE_SIZE] = "PAGE_SIZE",
	[PROTO_A_CHUNK_PAGES] = "CHUNK_PAGES",
	[PROTO_A_COUNT] = "COUNT",
	[PROTO_A_CHUNK] = "CHUNK",
	[PROTO_A_CHUNK_ID] = "CHUNK_ID",
	[PROTO_A_RETURN_CHUNKS] = "RETURN_CHUNKS",
	[PROTO_A_CPU_ID] = "CPU_ID",
	[PROTO_A_REATTACH] = "REATTACH",
};

const char *proto_attr_name(int type)
{
	return type >= 0 && type < __PROTO_A_MAX ? attr_names[type] : NULL;
}

static const char *const setting_names[__PROTO_SETTING_MAX] = {
	[PROTO_SETTING_UNSPEC] = "UNSPEC",
	[PROTO_SETTING_KEY] = "KEY",
	[PROTO_SETTING_VALUE] = "VALUE",
	[PROTO_SETTING_SOURCE] = "SOURCE",
};

static const char *const chunk_names[__PROTO_CHUNK_MAX] = {
	[PROTO_CHUNK_UNSPEC] = "UNSPEC",
	[PROTO_CHUNK_ID] = "ID",
	[PROTO_CHUNK_PAGES] = "PAGES",
	[PROTO_CHUNK_CPU] = "CPU",
};

/* --- policies ------------------------------------------------------------ */

/* clang-format off */
#define POL_U32 { .type = NLA_U32, .maxlen = sizeof(uint32_t) }
#define POL_U64 { .type = NLA_U64, .maxlen = sizeof(uint64_t) }
#define POL_STR(max) { .type = NLA_STRING, .maxlen = (max) }
#define POL_NEST { .type = NLA_NESTED }
/* clang-format on */

static const struct nla_policy reply_policy[PROTO_A_MAX + 1] = {
	[PROTO_A_ERROR] = POL_U32,
	[PROTO_A_MESSAGE] = POL_STR(PROTO_MESSAGE_MAX),
	[PROTO_A_NAME] = POL_STR(PROTO_NAME_MAX),
	[PROTO_A_PID] = POL_U32,
	[PROTO_A_MIN_PAGES] = POL_U32,
	[PROTO_A_MAX_PAGES] = POL_U32,
	[PROTO_A_SLOT] = POL_U32,
	[PROTO_A_GENERATION] = POL_U64,
	[PROTO_A_SETTING] = POL_NEST,
	[PROTO_A_STATUS] = POL_NEST,
	[PROTO_A_CPU] = POL_NEST,
	[PROTO_A_CLIENT] = POL_NEST,
	[PROTO_A_PATH] = POL_STR(PROTO_PATH_MAX),
	[PROTO_A_PAGE_SIZE] = POL_U32,
	[PROTO_A_CHUNK_PAGES] = POL_U32,
	[PROTO_A_COUNT] = POL_U32,
	[PROTO_A_CHUNK] = POL_NEST,
	[PROTO_A_CHUNK_ID] = POL_U64,
	[PROTO_A_RETURN_CHUNKS] = POL_U32,
	[PROTO_A_CPU_ID] = POL_U32,
};

static const struct nla_policy chunk_get_policy[PROTO_A_MAX + 1] = {
	[PROTO_A_COUNT] = POL_U32,
	[PROTO_A_CPU_ID] = POL_U32,
};

static const struct nla_policy chunk_put_policy[PROTO_A_MAX + 1] = {
	[PROTO_A_CHUNK_ID] = POL_U64,
};

static const struct nla_policy chunk_policy[PROTO_CHUNK_MAX + 1] = {
	[PROTO_CHUNK_ID] = POL_U64,
	[PROTO_CHUNK_PAGES] = POL_U32,
	[PROTO_CHUNK_CPU] = POL_U32,
};

static const struct nla_policy attach_policy[PROTO_A_MAX + 1] = {
	[PROTO_A_NAME] = POL_STR(PROTO_NAME_MAX),
	[PROTO_A_MIN_PAGES] = POL_U32,
	[PROTO_A_MAX_PAGES] = POL_U32,
	[PROTO_A_REATTACH] = POL_U32,
};

static const struct nla_policy set_limits_policy[PROTO_A_MAX + 1] = {
	[PROTO_A_SETTING] = POL_NEST,
	[PROTO_A_LAYER] = POL_U32,
	[PROTO_A_DRY_RUN] = POL_U32,
};

/* Requests without attributes: every known attribute is NLA_UNSPEC. */
static const struct nla_policy empty_policy[PROTO_A_MAX + 1];

static const struct nla_policy setting_policy[PROTO_SETTING_MAX + 1] = {
	[PROTO_SETTING_KEY] = POL_STR(PROTO_KEY_MAX),
	[PROTO_SETTING_VALUE] = POL_STR(PROTO_VALUE_MAX),
	[PROTO_SETTING_SOURCE] = POL_STR(PROTO_VALUE_MAX),
};

const struct nla_policy *proto_request_policy(uint8_t cmd)
{
	switch (cmd) {
	case PROTO_CMD_ATTACH:
		return attach_policy;
	case PROTO_CMD_SET_LIMITS:
	case PROTO_CMD_UNSET_LIMITS:
		return set_limits_policy;
	case PROTO_CMD_CHUNK_GET:
		return chunk_get_policy;
	case PROTO_CMD_CHUNK_PUT:
		return chunk_put_policy;
	case PROTO_CMD_DETACH:
	case PROTO_CMD_GET_STATUS:
	case PROTO_CMD_GET_STATS:
	case PROTO_CMD_GET_CLIENTS:
	case PROTO_CMD_GET_LIMITS:
	case PROTO_CMD_RESET_STATS:
	case PROTO_CMD_RELOAD:
	case PROTO_CMD_CENSUS:
		return empty_policy;
	default:
		return NULL;
	}
}

const struct nla_policy *proto_reply_policy(void)
{
	return reply_policy;
}

const struct nla_policy *proto_setting_policy(void)
{
	return setting_policy;
}

#define BIT(t) (UINT64_C(1) << (t))

/* What proto_parse checks on one level of attributes. */
struct attr_set {
	const struct nla_policy *policy; /* NULL: structure only */
	int maxtype;
	const char *const *names;
	uint64_t repeated; /* may appear more than once */
	uint64_t required;
	int missing_err;     /* errno when a required one is absent */
	const char *context; /* "in a SET_LIMITS request", for words */
	const struct attr_set *const *nested; /* by type; NULL: opaque_set */
};

_Static_assert(PROTO_A_MAX < 64, "struct attr_set uses 64-bit masks");

static const struct attr_set setting_set = {
	.policy = setting_policy,
	.maxtype = PROTO_SETTING_MAX,
	.names = setting_names,
	.required = BIT(PROTO_SETTING_KEY) | BIT(PROTO_SETTING_VALUE),
	.missing_err = EINVAL,
	.context = "in SETTING",
};

/* Contents defined later (STATUS, CPU, CLIENT): a well-formed stream. */
static const struct attr_set opaque_set = {
	.maxtype = 0,
	.context = "",
};

static const struct attr_set chunk_set = {
	.policy = chunk_policy,
	.maxtype = PROTO_CHUNK_MAX,
	.names = chunk_names,
	.required = BIT(PROTO_CHUNK_ID) | BIT(PROTO_CHUNK_PAGES) |
		    BIT(PROTO_CHUNK_CPU),
	.missing_err = EBADMSG,
	.context = "in CHUNK",
};

static const struct attr_set *const top_nested[PROTO_A_MAX + 1] = {
	[PROTO_A_SETTING] = &setting_set,
	[PROTO_A_CHUNK] = &chunk_set,
};

static void say(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static int int_size(int type)
{
	switch (type) {
	case NLA_U8:
	case NLA_S8:
		return 1;
	case NLA_U16:
	case NLA_S16:
		return 2;
	case NLA_U32:
	case NLA_S32:
		return 4;
	case NLA_U64:
	case NLA_S64:
	case NLA_MSECS:
		return 8;
	case NLA_FLAG:
		return 0;
	default:
		return -1;
	}
}

static int check_attrs(const struct attr_set *set, const struct nlattr *head,
		       int len, char *why, size_t whylen);

static int check_one(const struct attr_set *set, const struct nlattr *nla,
		     uint64_t *seen, char *why, size_t whylen)
{
	int type = nla_type(nla), plen = nla_len(nla);
	const struct nla_policy *pt;
	const char *name;
	const char *s;
	int r, size;

	if (type == 0) {
		say(why, whylen, "attribute type 0 (UNSPEC) is not valid");
		return -EBADMSG;
	}
	if (type > set->maxtype)
		return 0; /* newer than us: ignored */
	pt = &set->policy[type];
	name = set->names[type];
	if (pt->type == NLA_UNSPEC) {
		say(why, whylen, "attribute %d (%s) is not valid %s", type,
		    name, set->context);
		return -EINVAL;
	}
	if ((*seen & BIT(type)) && !(set->repeated & BIT(type))) {
		say(why, whylen, "attribute %d (%s) appears more than once",
		    type, name);
		return -EBADMSG;
	}
	*seen |= BIT(type);

	switch (pt->type) {
	case NLA_STRING:
		s = nla_data(nla);
		if (plen == 0) {
			say(why, whylen,
			    "attribute %d (%s): empty payload, a string needs "
			    "its NUL",
			    type, name);
			return -EBADMSG;
		}
		if (pt->maxlen && plen > pt->maxlen) {
			say(why, whylen,
			    "attribute %d (%s): string of %d bytes, at most %u "
			    "allowed (NUL included)",
			    type, name, plen, pt->maxlen);
			return -EBADMSG;
		}
		if (s[plen - 1] != '\0') {
			say(why, whylen,
			    "attribute %d (%s): string not NUL-terminated",
			    type, name);
			return -EBADMSG;
		}
		return 0;
	case NLA_NESTED: {
		const struct attr_set *sub = set->nested && set->nested[type]
						     ? set->nested[type]
						     : &opaque_set;
		char inner[192];

		inner[0] = '\0';
		r = check_attrs(sub, nla_data(nla), plen, inner, sizeof(inner));
		if (r < 0)
			say(why, whylen, "attribute %d (%s): %s", type, name,
			    inner);
		return r;
	}
	default:
		size = int_size(pt->type);
		if (size < 0) {
			/* A type our policies do not use: libnl checks it. */
			return 0;
		}
		if (plen != size) {
			say(why, whylen,
			    "attribute %d (%s): expected %d bytes, got %d",
			    type, name, size, plen);
			return -EBADMSG;
		}
		return 0;
	}
}

/* Walk one attribute stream of len bytes, checking each against set. */
static int check_attrs(const struct attr_set *set, const struct nlattr *head,
		       int len, char *why, size_t whylen)
{
	uint64_t seen = 0, missing;
	int off = 0, rem = len, r;

	while (rem > 0) {
		const struct nlattr *nla =
			(const void *)((const char *)head + off);

		if (rem < NLA_HDRLEN) {
			say(why, whylen,
			    "%d trailing bytes after the last attribute", rem);
			return -EBADMSG;
		}
		if (nla->nla_len < NLA_HDRLEN) {
			say(why, whylen,
			    "attribute at offset %d: nla_len %u is shorter "
			    "than its header",
			    off, nla->nla_len);
			return -EBADMSG;
		}
		if (nla->nla_len > rem) {
			say(why, whylen,
			    "attribute at offset %d (type %d): nla_len %u "
			    "overruns the %d bytes left",
			    off, nla_type(nla), nla->nla_len, rem);
			return -EBADMSG;
		}
		r = check_one(set, nla, &seen, why, whylen);
		if (r < 0)
			return r;
		off += NLA_ALIGN(nla->nla_len);
		rem -= NLA_ALIGN(nla->nla_len);
	}
	/* rem < 0: the last attribute lacks its padding, harmless. */

	missing = set->required & ~seen;
	if (missing) {
		int t = __builtin_ctzll(missing);

		say(why, whylen, "attribute %d (%s) missing %s", t,
		    set->names[t], set->context);
		return -set->missing_err;
	}
	return 0;
}

/* --- parsing ------------------------------------------------------------- */

int proto_parse(const void *buf, size_t len, struct proto_msg *out, char *why,
		size_t whylen)
{
	const struct nlmsghdr *nlh = buf;
	const struct genlmsghdr *ghdr;
	const struct nla_policy *policy;
	struct attr_set set;
	char ctx[48];
	struct nlattr *nla;
	int r;

	memset(out, 0, sizeof(*out));
	out->message = "";
	say(why, whylen, "%s", "");
	if ((uintptr_t)buf % NLMSG_ALIGNTO) {
		say(why, whylen, "buffer not aligned to %d bytes",
		    NLMSG_ALIGNTO);
		return -EINVAL;
	}
	if (len < NLMSG_HDRLEN) {
		say(why, whylen,
		    "message of %zu bytes is shorter than a netlink header "
		    "(%d)",
		    len, NLMSG_HDRLEN);
		return -EBADMSG;
	}
	if (len > PROTO_MSG_MAX) {
		say(why, whylen, "message of %zu bytes, at most %d allowed",
		    len, PROTO_MSG_MAX);
		return -EMSGSIZE;
	}
	if (!nlmsg_ok(nlh, (int)len)) {
		say(why, whylen,
		    "nlmsg_len %u does not fit the %zu bytes received",
		    nlh->nlmsg_len, len);
		return -EBADMSG;
	}
	if (nlh->nlmsg_len != len) {
		say(why, whylen, "nlmsg_len %u but %zu bytes received",
		    nlh->nlmsg_len, len);
		return -EBADMSG;
	}
	if (nlh->nlmsg_type != PROTO_FAMILY) {
		say(why, whylen,
		    "nlmsg_type 0x%x is not the rcupool family 0x%x",
		    nlh->nlmsg_type, PROTO_FAMILY);
		return -EPROTO;
	}
	if (nlh->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN) {
		say(why, whylen,
		    "nlmsg_len %u is too short for the generic netlink header "
		    "(%d)",
		    nlh->nlmsg_len, (int)(NLMSG_HDRLEN + GENL_HDRLEN));
		return -EBADMSG;
	}
	ghdr = nlmsg_data(nlh);
	if (ghdr->version != PROTO_VERSION) {
		say(why, whylen, "protocol version %u, expected %u",
		    ghdr->version, PROTO_VERSION);
		return -EPROTONOSUPPORT;
	}
	/* Command 0: only the daemon's refusal of a connection (a reply). */
	if (!proto_cmd_name(ghdr->cmd) &&
	    (ghdr->cmd || (nlh->nlmsg_flags & NLM_F_REQUEST))) {
		say(why, whylen, "unknown command %u", ghdr->cmd);
		return -EOPNOTSUPP;
	}

	out->cmd = ghdr->cmd;
	out->version = ghdr->version;
	out->seq = nlh->nlmsg_seq;
	out->request = nlh->nlmsg_flags & NLM_F_REQUEST;
	if (out->request && !proto_request_policy(out->cmd)) {
		/* ERROR: a reply only; RECALL: the daemon's notification. */
		say(why, whylen, "%s is not a request",
		    proto_cmd_name(out->cmd));
		return -EOPNOTSUPP;
	}

	memset(&set, 0, sizeof(set));
	set.maxtype = PROTO_A_MAX;
	set.names = attr_names;
	set.nested = top_nested;
	set.repeated = BIT(PROTO_A_SETTING) | BIT(PROTO_A_CPU) |
		       BIT(PROTO_A_CLIENT) | BIT(PROTO_A_CHUNK) |
		       BIT(PROTO_A_CHUNK_ID);
	if (out->request) {
		policy = proto_request_policy(out->cmd); /* checked above */
		snprintf(ctx, sizeof(ctx), "in a %s request",
			 proto_cmd_name(out->cmd));
		if (out->cmd == PROTO_CMD_SET_LIMITS)
			set.required = BIT(PROTO_A_SETTING);
		if (out->cmd == PROTO_CMD_CHUNK_GET)
			set.required = BIT(PROTO_A_COUNT);
		if (out->cmd == PROTO_CMD_CHUNK_PUT)
			set.required = BIT(PROTO_A_CHUNK_ID);
		set.missing_err = EINVAL;
	} else {
		policy = reply_policy;
		snprintf(ctx, sizeof(ctx), "in a %s reply",
			 out->cmd ? proto_cmd_name(out->cmd) : "refusal");
		set.required = BIT(PROTO_A_ERROR);
		set.missing_err = EBADMSG;
	}
	set.policy = policy;
	set.context = ctx;

	out->attrs = genlmsg_attrdata(ghdr, 0);
	out->attrlen = genlmsg_attrlen(ghdr, 0);
	r = check_attrs(&set, out->attrs, out->attrlen, why, whylen);
	if (r < 0)
		goto fail;

	/* libnl's own validation: a second opinion that must agree. */
	r = genlmsg_parse((struct nlmsghdr *)nlh, 0, out->tb, PROTO_A_MAX,
			  (struct nla_policy *)policy);
	if (r < 0) {
		say(why, whylen, "libnl: %s", nl_geterror(r));
		r = proto_errno(r);
		goto fail;
	}
	proto_for_each(nla, out, PROTO_A_SETTING)
	{
		struct nlattr *stb[PROTO_SETTING_MAX + 1];

		r = nla_parse_nested(stb, PROTO_SETTING_MAX, nla,
				     (struct nla_policy *)setting_policy);
		if (r < 0) {
			say(why, whylen, "libnl: SETTING: %s", nl_geterror(r));
			r = proto_errno(r);
			goto fail;
		}
	}

	if (!out->request) {
		uint32_t e = nla_get_u32(out->tb[PROTO_A_ERROR]);

		if (e > ERRNO_MAX) {
			say(why, whylen,
			    "attribute %d (ERROR): %u is not an errno",
			    PROTO_A_ERROR, e);
			r = -EBADMSG;
			goto fail;
		}
		out->error = -(int)e;
		if (out->tb[PROTO_A_MESSAGE])
			out->message = nla_get_string(out->tb[PROTO_A_MESSAGE]);
	}
	return 0;

fail:
	memset(out->tb, 0, sizeof(out->tb));
	out->attrs = NULL;
	out->attrlen = 0;
	return r;
}

struct nlattr *proto_next(const struct proto_msg *m, const struct nlattr *prev,
			  int type)
{
	const char *end = (const char *)m->attrs + m->attrlen;
	struct nlattr *nla;
	int rem;

	if (!m->attrs)
		return NULL;
	if (prev) {
		nla = (struct nlattr *)((const char *)prev +
					NLA_ALIGN(prev->nla_len));
	} else {
		nla = m->attrs;
	}
	for (rem = end - (const char *)nla; nla_ok(nla, rem);
	     nla = nla_next(nla, &rem)) {
		if (nla_type(nla) == type)
			return nla;
	}
	return NULL;
}

int proto_setting_get(const struct nlattr *setting, const char **key,
		      const char **value)
{
	struct nlattr *stb[PROTO_SETTING_MAX + 1];
	int r;

	r = nla_parse_nested(stb, PROTO_SETTING_MAX, (struct nlattr *)setting,
			     (struct nla_policy *)setting_policy);
	if (r < 0)
		return proto_errno(r);
	if (!stb[PROTO_SETTING_KEY] || !stb[PROTO_SETTING_VALUE])
		return -EINVAL;
	*key = nla_get_string(stb[PROTO_SETTING_KEY]);
	*value = nla_get_string(stb[PROTO_SETTING_VALUE]);
	return 0;
}

/* --- building ------------------------------------------------------------ */

int proto_new(struct nl_msg **ret, uint8_t cmd, uint32_t seq, bool request)
{
	struct nl_msg *msg;

	*ret = NULL;
	/* A reply echoes whatever command it answers, even an unknown one. */
	if (request && !proto_cmd_name(cmd))
		return -EINVAL;
	msg = nlmsg_alloc_size(PROTO_MSG_MAX);
	if (!msg)
		return -ENOMEM;
	if (!genlmsg_put(msg, 0, seq, PROTO_FAMILY, 0,
			 request ? NLM_F_REQUEST : 0, cmd, PROTO_VERSION)) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	*ret = msg;
	return 0;
}

int proto_new_reply(struct nl_msg **ret, const struct proto_msg *req, int error,
		    const char *fmt, ...)
{
	char text[PROTO_MESSAGE_MAX];
	struct nl_msg *msg;
	va_list ap;
	int r;

	*ret = NULL;
	if (error > 0 || error < -ERRNO_MAX)
		return -EINVAL;
	text[0] = '\0';
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(text, sizeof(text), fmt, ap);
		va_end(ap);
	}
	r = proto_new(&msg,
		      proto_request_policy(req->cmd) ? req->cmd
						     : PROTO_CMD_ERROR,
		      req->seq, false);
	if (r < 0)
		return r;
	r = nla_put_u32(msg, PROTO_A_ERROR, (uint32_t)-error);
	if (r >= 0)
		r = nla_put_string(msg, PROTO_A_MESSAGE, text);
	if (r < 0) {
		nlmsg_free(msg);
		return proto_errno(r);
	}
	*ret = msg;
	return 0;
}

int proto_put_setting(struct nl_msg *msg, const char *key, const char *value)
{
	struct nlattr *nest;
	int r;

	if (strlen(key) + 1 > PROTO_KEY_MAX ||
	    strlen(value) + 1 > PROTO_VALUE_MAX)
		return -EINVAL;
	nest = nla_nest_start(msg, PROTO_A_SETTING);
	if (!nest)
		return -ENOMEM;
	r = nla_put_string(msg, PROTO_SETTING_KEY, key);
	if (r >= 0)
		r = nla_put_string(msg, PROTO_SETTING_VALUE, value);
	if (r < 0) {
		nla_nest_cancel(msg, nest);
		return proto_errno(r);
	}
	r = nla_nest_end(msg, nest);
	return r < 0 ? proto_errno(r) : 0;
}

/* --- transport ----------------------------------------------------------- */

int proto_send(int fd, struct nl_msg *msg, const int *fds, size_t nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * PROTO_FDS_MAX)];
	} control;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct iovec iov = {.iov_base = nlh, .iov_len = nlh->nlmsg_len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (nlh->nlmsg_len > PROTO_MSG_MAX)
		return -EMSGSIZE;
	if (nfds > PROTO_FDS_MAX || (nfds && !fds))
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != nlh->nlmsg_len)
		return -EIO; /* cannot happen on SOCK_SEQPACKET */
	return 0;
}

static void close_all(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

int proto_recv(int fd, void *buf, size_t size, int *fds, size_t *nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * PROTO_FDS_MAX)];
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	struct msghdr mh;
	struct cmsghdr *c;
	int got[PROTO_FDS_MAX];
	size_t cap = fds && nfds ? *nfds : 0, ngot = 0;
	ssize_t n;

	if (nfds)
		*nfds = 0;
	do {
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = control.buf;
		mh.msg_controllen = sizeof(control.buf);
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_TRUNC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (k > PROTO_FDS_MAX - ngot)
			k = PROTO_FDS_MAX -
			    ngot; /* cannot happen: buffer size */
		memcpy(got + ngot, CMSG_DATA(c), k * sizeof(int));
		ngot += k;
	}

	if (n == 0) {
		close_all(got, ngot);
		return -ECONNRESET;
	}
	if (mh.msg_flags & MSG_TRUNC || (size_t)n > size) {
		close_all(got, ngot);
		return -EMSGSIZE;
	}
	if (mh.msg_flags & MSG_CTRUNC || ngot > cap) {
		close_all(got, ngot);
		return -EBADMSG;
	}
	if (ngot)
		memcpy(fds, got, ngot * sizeof(int));
	if (nfds)
		*nfds = ngot;
	return n > INT32_MAX ? -EMSGSIZE : (int)n;
}

/* --- socket path and connection ------------------------------------------ */

static const char *env_dir(const char *name)
{
	const char *v = secure_getenv(name);

	return v && v[0] == '/' ? v : NULL;
}

/* The path in buf if it fits sockaddr_un and buf; see proto_socket_path. */
static int path_out(char *buf, size_t size, const char *path, int n)
{
	struct sockaddr_un sa;

	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	if ((size_t)n >= size)
		return -ERANGE;
	memcpy(buf, path, n + 1);
	return n;
}

static bool is_socket(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

int proto_socket_path(char *buf, size_t size)
{
	const char *v;
	char path[4096];
	int n;

	v = secure_getenv("RCUPOOL_SOCKET");
	if (v && *v)
		return path_out(buf, size, path,
				snprintf(path, sizeof(path), "%s", v));
	/*
	 * A user's own daemon only when it is there: otherwise the system
	 * daemon serves users too.  $RUNTIME_DIRECTORY is not looked at: a
	 * client running under systemd has a runtime directory of its own.
	 */
	if (geteuid() != 0 && (v = env_dir("XDG_RUNTIME_DIR"))) {
		n = snprintf(path, sizeof(path), "%s/rcupool/rcupoold.sock", v);
		if (n > 0 && (size_t)n < sizeof(path) && is_socket(path))
			return path_out(buf, size, path, n);
	}
	return path_out(buf, size, path,
			snprintf(path, sizeof(path), "%s", PROTO_SYSTEM_SOCKET));
}

int proto_listen_path(char *buf, size_t size)
{
	const char *v;
	char path[4096];

	v = secure_getenv("RCUPOOL_SOCKET");
	if (v && *v)
		return path_out(buf, size, path,
				snprintf(path, sizeof(path), "%s", v));
	if (geteuid() == 0)
		return path_out(buf, size, path,
				snprintf(path, sizeof(path), "%s",
					 PROTO_SYSTEM_SOCKET));
	v = env_dir("XDG_RUNTIME_DIR");
	if (!v)
		return -ENOENT;
	return path_out(buf, size, path,
			snprintf(path, sizeof(path), "%s/rcupool/rcupoold.sock",
				 v));
}

int proto_socket_buffers(int fd)
{
	int want = PROTO_MSG_MAX + 4096, have = 0;
	socklen_t len = sizeof(have);

	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &have, &len) < 0)
		return -errno;
	/* The kernel doubles the value and refuses len > sndbuf - 32. */
	if (have >= 2 * want)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want)) < 0)
		return -errno;
	return 0;
}

int proto_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char def[sizeof(sa.sun_path)];
	int fd, r;

	if (!path) {
		r = proto_socket_path(def, sizeof(def));
		if (r < 0)
			return r;
		path = def;
	}
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	(void)proto_socket_buffers(fd);
	return fd;
}

/* --- one call ------------------------------------------------------------ */

int proto_call(int fd, struct nl_msg *req, void *buf, size_t size,
	       struct proto_msg *reply, int *fds, size_t *nfds, char *errmsg,
	       size_t errlen)
{
	struct nlmsghdr *nlh = nlmsg_hdr(req);
	const struct genlmsghdr *ghdr = nlmsg_data(nlh);
	size_t cap = fds && nfds ? *nfds : 0, n;
	uint32_t seq = nlh->nlmsg_seq;
	uint8_t cmd = ghdr->cmd;
	int r;

	say(errmsg, errlen, "%s", "");
	if (nfds)
		*nfds = 0;
	r = proto_send(fd, req, NULL, 0);
	if (r < 0)
		return r;
	for (;;) {
		n = cap;
		r = proto_recv(fd, buf, size, fds, &n);
		if (r < 0)
			return r;
		r = proto_parse(buf, r, reply, errmsg, errlen);
		if (r < 0)
			goto drop;
		if (reply->request) {
			say(errmsg, errlen,
			    "received a %s request, not a reply",
			    proto_cmd_name(reply->cmd));
			r = -EPROTO;
			goto drop;
		}
		if (reply->seq == 0 &&
		    (reply->cmd == PROTO_CMD_UNSPEC ||
		     reply->cmd == PROTO_CMD_ERROR) &&
		    reply->error) {
			/* The daemon refused the connection (too many). */
			say(errmsg, errlen, "%s", reply->message);
			r = reply->error;
			goto drop;
		}
		if (reply->seq != seq) {
			/* A late reply to an earlier, abandoned call, or a
			 * notification (RECALL) the caller does not want. */
			close_all(fds, n);
			continue;
		}
		if (reply->cmd == PROTO_CMD_ERROR && cmd != PROTO_CMD_ERROR) {
			say(errmsg, errlen, "%s", reply->message);
			r = reply->error ? reply->error : -EPROTO;
			if (!reply->error)
				say(errmsg, errlen,
				    "an ERROR reply without an error");
			goto drop;
		}
		if (reply->cmd != cmd) {
			say(errmsg, errlen, "reply to %s, expected %s",
			    proto_cmd_name(reply->cmd), proto_cmd_name(cmd));
			r = -EPROTO;
			goto drop;
		}
		if (reply->error) {
			say(errmsg, errlen, "%s", reply->message);
			r = reply->error;
			goto drop;
		}
		if (nfds)
			*nfds = n;
		return 0;
	}
drop:
	close_all(fds, n);
	return r;
}
