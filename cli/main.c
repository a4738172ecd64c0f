// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * rcupoolctl: option parsing, dispatch and exit statuses.  The requests are
 * in ctl.c, the output in print.c, watch in watch.c, set --persist in
 * persist.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "persist.h"
#include "print.h"
#include "watch.h"
#include "units.h"

/* Options, as bits: which command accepts which. */
enum {
	O_SOCKET = 1 << 0,
	O_JSON = 1 << 1,
	O_HELP = 1 << 2,
	O_VERSION = 1 << 3,
	O_PER_CPU = 1 << 4,
	O_FORMAT = 1 << 5,
	O_INTERVAL = 1 << 6,
	O_PERSIST = 1 << 7,
	O_CONFIG_DIR = 1 << 8,
	O_PRETTY = 1 << 9,
};
#define O_GLOBAL (O_SOCKET | O_JSON | O_HELP | O_VERSION | O_PRETTY)

static const struct option_desc {
	const char *name;
	unsigned int bit;
	const char *arg; /* NULL: a flag */
	const char *help;
} options[] = {
	{"socket", O_SOCKET, "PATH", "the daemon's control socket"},
	{"json", O_JSON, NULL, "one JSON document instead of text (-j)"},
	{"pretty", O_PRETTY, NULL, "indent the JSON (-p)"},
	{"help", O_HELP, NULL, "this help"},
	{"version", O_VERSION, NULL, "the version"},
	{"per-cpu", O_PER_CPU, NULL, "a line per CPU too"},
	{"format", O_FORMAT, "FORMAT", "text, json or prometheus"},
	{"interval", O_INTERVAL, "TIME", "refresh period: 2s, 500ms, 1min (10ms to 1d)"},
	{"persist", O_PERSIST, NULL, "also write a drop-in for restarts"},
	{"config-dir", O_CONFIG_DIR, "DIR",
	 "where rcupoold.conf.d/ is (--persist)"},
};

struct args {
	const char *socket;
	enum print_mode mode;
	bool per_cpu, persist, help, pretty;
	const char *config_dir;
	uint64_t interval_us;
	char **words; /* the command's positional arguments */
	size_t nwords;
};

struct command {
	const char *name;
	int (*run)(struct ctl *c, struct args *a);
	unsigned int opts; /* beyond O_GLOBAL */
	const char *usage;
	const char *summary;
	const char *help;
};

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("rcupoolctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see rcupoolctl --help)\n", stderr);
	return CTL_USAGE;
}

/* --- commands ------------------------------------------------------------ */

/* The columns a person reads first; JSON and Prometheus get every field. */
static const uint16_t top_columns[] = {
	PROTO_CLIENT_PID,	  PROTO_CLIENT_NAME,
	PROTO_CLIENT_HELD,	  PROTO_CLIENT_MIN_PAGES,
	PROTO_CLIENT_MAX_PAGES,	  PROTO_CLIENT_DENIED,
	PROTO_CLIENT_FB_OVERFLOW, 0};
static const uint16_t client_columns[] = {
	PROTO_CLIENT_SLOT,	    PROTO_CLIENT_PID,
	PROTO_CLIENT_UID,	    PROTO_CLIENT_NAME,
	PROTO_CLIENT_HELD,	    PROTO_CLIENT_HELD_PEAK,
	PROTO_CLIENT_MIN_PAGES,	    PROTO_CLIENT_MAX_PAGES,
	PROTO_CLIENT_DENIED,	    PROTO_CLIENT_DEPLETIONS,
	PROTO_CLIENT_THROTTLED,	    PROTO_CLIENT_THROTTLED_NS,
	PROTO_CLIENT_GRACE_PERIODS, PROTO_CLIENT_GP_P50_NS,
	PROTO_CLIENT_GP_P99_NS,	    PROTO_CLIENT_ATTACHED_USEC, 0};

static void print_rows(const struct stats_set *set, const char *key,
		       const char *title, const uint16_t *cols,
		       const struct stats_row *rows, size_t n)
{
	print_table_open(set, key, title, cols);
	for (size_t i = 0; i < n; i++)
		print_row(&rows[i]);
	print_table_close();
}

static int finish(int r)
{
	if (print_close() < 0 && r == CTL_OK) {
		fprintf(stderr, "rcupoolctl: write error: %s\n",
			strerror(errno));
		return CTL_DAEMON_ERROR;
	}
	return r;
}

static int cmd_status(struct ctl *c, struct args *a)
{
	struct ctl_report rep;
	int r = ctl_report(c, PROTO_CMD_GET_STATUS, &rep);

	if (r != CTL_OK)
		return r;
	print_open(a->mode, stdout, !a->pretty);
	print_open_object(NULL);
	print_record(&stats_status, NULL, &rep.status, PRINT_SUMMARY);
	print_rows(&stats_client, "top_clients", "top consumers", top_columns,
		   rep.clients, rep.nclients);
	print_close_object();
	ctl_report_free(&rep);
	return finish(CTL_OK);
}

static int cmd_stats(struct ctl *c, struct args *a)
{
	struct ctl_report rep;
	int r = ctl_report(c, PROTO_CMD_GET_STATS, &rep);

	if (r != CTL_OK)
		return r;
	print_open(a->mode, stdout, !a->pretty);
	print_open_object(NULL);
	print_record(&stats_status, "status", &rep.status, PRINT_FIELDS);
	/* A person asks for CPUs; the machine-readable forms always have
	 * them (the JSON document's "cpus" is part of its contract). */
	if (a->per_cpu || a->mode != PRINT_HUMAN)
		print_rows(&stats_cpu, "cpus", "cpus", NULL, rep.cpus,
			   rep.ncpus);
	print_rows(&stats_client, "clients", "clients", NULL, rep.clients,
		   rep.nclients);
	print_close_object();
	ctl_report_free(&rep);
	return finish(CTL_OK);
}

static int cmd_clients(struct ctl *c, struct args *a)
{
	struct ctl_report rep;
	int r = ctl_report(c, PROTO_CMD_GET_CLIENTS, &rep);

	if (r != CTL_OK)
		return r;
	print_open(a->mode, stdout, !a->pretty);
	print_rows(&stats_client, NULL, NULL, client_columns, rep.clients,
		   rep.nclients);
	ctl_report_free(&rep);
	return finish(CTL_OK);
}

struct setting {
	const char *key, *value, *source;
};

static bool plain_number(const char *s)
{
	size_t n = strspn(s, "0123456789");

	/* "0666" is a mode: a string as written. */
	return n && n < 20 && !s[n] && (s[0] != '0' || n == 1);
}

static int cmd_limits(struct ctl *c, struct args *a)
{
	struct setting *s = NULL;
	struct nlattr *nla;
	size_t n = 0, cap = 0;
	int kw = 3, vw = 5, r;

	r = ctl_call(c, PROTO_CMD_GET_LIMITS, NULL, 0);
	if (r != CTL_OK)
		return r;
	proto_for_each(nla, &c->reply, PROTO_A_SETTING)
	{
		struct nlattr *tb[PROTO_SETTING_MAX + 1];

		if (nla_parse_nested(
			    tb, PROTO_SETTING_MAX, nla,
			    (struct nla_policy *)proto_setting_policy()) < 0 ||
		    !tb[PROTO_SETTING_KEY] || !tb[PROTO_SETTING_VALUE])
			continue;
		if (n == cap) {
			struct setting *g;

			cap = cap ? 2 * cap : 32;
			g = realloc(s, cap * sizeof(*s));
			if (!g) {
				free(s);
				fprintf(stderr, "rcupoolctl: out of memory\n");
				return CTL_DAEMON_ERROR;
			}
			s = g;
		}
		s[n].key = nla_get_string(tb[PROTO_SETTING_KEY]);
		s[n].value = nla_get_string(tb[PROTO_SETTING_VALUE]);
		s[n].source = tb[PROTO_SETTING_SOURCE]
				      ? nla_get_string(tb[PROTO_SETTING_SOURCE])
				      : "";
		kw = (int)strlen(s[n].key) > kw ? (int)strlen(s[n].key) : kw;
		vw = (int)strlen(s[n].value) > vw ? (int)strlen(s[n].value)
						  : vw;
		n++;
	}
	print_open(a->mode, stdout, !a->pretty);
	print_open_object(NULL);
	print_human("%-*s  %-*s  %s\n", kw, "KEY", vw, "VALUE", "SOURCE");
	for (size_t i = 0; i < n; i++) {
		print_open_object(s[i].key);
		/* A count is a JSON number; percents, times, names strings
		 * as the configuration spells them. */
		if (plain_number(s[i].value))
			print_uint("value", strtoull(s[i].value, NULL, 10));
		else
			print_string("value", s[i].value);
		print_string("source", s[i].source);
		print_close_object();
		print_human("%-*s  %-*s  %s\n", kw, s[i].key, vw, s[i].value,
			    s[i].source);
	}
	print_close_object();
	free(s);
	return finish(CTL_OK);
}

/* The daemon's message for an admin command: text, or {"message": ..}. */
static int print_message(struct ctl *c, struct args *a, const char *persisted)
{
	print_open(a->mode, stdout, !a->pretty);
	print_open_object(NULL);
	print_string("message", c->message);
	if (persisted)
		print_string("persisted", persisted);
	print_close_object();
	print_human("%s\n", c->message);
	if (persisted)
		print_human("written to %s\n", persisted);
	return finish(CTL_OK);
}

/*
 * KEY=VALUE words (set) or KEY words (unset): checked before connecting,
 * so that a mistake is exit 2 whether or not a daemon runs.
 */
static int check_words(const char *cmd, struct args *a, bool values)
{
	if (!a->nwords)
		return usage_error("%s: no %s given", cmd,
				   values ? "KEY=VALUE" : "KEY");
	for (size_t i = 0; i < a->nwords; i++) {
		const char *w = a->words[i], *eq = strchr(w, '=');
		size_t klen = eq ? (size_t)(eq - w) : strlen(w);

		if (values && (!eq || eq == w))
			return usage_error("%s: bad setting '%s': expected "
					   "KEY=VALUE",
					   cmd, w);
		if (!values && (eq || !*w))
			return usage_error("%s: bad key '%s': expected KEY "
					   "(no value)",
					   cmd, w);
		if (!memchr(w, '.', klen))
			return usage_error("%s: bad key '%.*s': expected "
					   "SECTION.KEY or client.NAME.KEY",
					   cmd, (int)klen, w);
		for (size_t j = 0; j < i; j++) {
			const char *v = a->words[j];
			size_t vlen = strcspn(v, "=");

			if (vlen == klen && !strncmp(v, w, klen))
				return usage_error("%s: key '%.*s' given twice",
						   cmd, (int)klen, w);
		}
	}
	return CTL_OK;
}

/* The daemon's message, and where a persisted change was written. */
static int done_message(struct ctl *c, struct args *a, const char *path,
			const char *path_key)
{
	print_open(a->mode, stdout, !a->pretty);
	print_open_object(NULL);
	print_string("message", c->message);
	if (path)
		print_string(path_key, path);
	print_close_object();
	print_human("%s\n", c->message);
	if (path)
		print_human("%s %s\n",
			    !strcmp(path_key, "persisted") ? "written to"
							   : "runtime drop-in",
			    path);
	return finish(CTL_OK);
}

static const char *reply_path(struct ctl *c, char *buf, size_t len)
{
	if (!c->reply.tb[PROTO_A_PATH])
		return NULL;
	snprintf(buf, len, "%s", nla_get_string(c->reply.tb[PROTO_A_PATH]));
	return buf;
}

/*
 * A runtime change: the daemon checks, writes its runtime drop-in and
 * applies.  A persistent one: the daemon checks the configuration it would
 * give (a dry run naming the drop-in), rcupoolctl edits the drop-in, the
 * daemon applies; if that fails the drop-in is put back.
 */
static int change(struct ctl *c, struct args *a, uint8_t cmd, bool all)
{
	const char *name = cmd == PROTO_CMD_SET_LIMITS ? "set"
			   : all			 ? "revert"
							 : "unset";
	struct dropin_change *ch = NULL;
	char path[PROTO_PATH_MAX], want[PROTO_PATH_MAX], why[1024];
	const char *expected;
	char *old = NULL;
	int r;

	if (!a->persist) {
		r = ctl_call_layer(c, cmd, a->words, a->nwords,
				   PROTO_LAYER_RUNTIME, false);
		if (r != CTL_OK)
			return r;
		return done_message(c, a, reply_path(c, path, sizeof(path)),
				    "runtime");
	}
	r = ctl_call_layer(c, cmd, a->words, a->nwords, PROTO_LAYER_PERSIST,
			   true);
	if (r != CTL_OK)
		return r;
	if (!reply_path(c, path, sizeof(path))) {
		fprintf(stderr, "rcupoolctl: %s --persist: the daemon did not "
				"name its drop-in (too old?)\n",
			name);
		return CTL_DAEMON_ERROR;
	}
	expected = persist_expected(a->config_dir, want, sizeof(want));
	if (expected && strcmp(expected, path)) {
		fprintf(stderr,
			"rcupoolctl: %s --persist: the daemon reads %s, not %s: "
			"it could not check the result (see --config-dir)\n",
			name, path, expected);
		return CTL_USAGE;
	}
	ch = calloc(a->nwords ? a->nwords : 1, sizeof(*ch));
	if (!ch) {
		fprintf(stderr, "rcupoolctl: out of memory\n");
		return CTL_DAEMON_ERROR;
	}
	for (size_t i = 0; i < a->nwords; i++) {
		char *eq = strchr(a->words[i], '=');

		if (eq)
			*eq = '\0'; /* words are ours: key, value */
		ch[i] = (struct dropin_change){a->words[i], eq ? eq + 1 : NULL};
	}
	r = persist_apply(path, ch, a->nwords, all, &old, why, sizeof(why));
	if (r < 0) {
		fprintf(stderr,
			"rcupoolctl: %s --persist: not written, nothing "
			"changed: %s\n",
			name, why);
		r = CTL_DAEMON_ERROR;
		goto out;
	}
	for (size_t i = 0; i < a->nwords; i++)
		if (ch[i].value)
			((char *)ch[i].value)[-1] = '=';
	r = ctl_call_layer(c, cmd, a->words, a->nwords, PROTO_LAYER_PERSIST,
			   false);
	if (r != CTL_OK) {
		if (persist_restore(path, old, why, sizeof(why)) < 0)
			fprintf(stderr,
				"rcupoolctl: %s --persist: cannot put %s "
				"back: %s\n",
				name, path, why);
		goto out;
	}
	r = done_message(c, a, path, "persisted");
out:
	free(ch);
	free(old);
	return r;
}

static int cmd_set(struct ctl *c, struct args *a)
{
	return change(c, a, PROTO_CMD_SET_LIMITS, false);
}

static int cmd_unset(struct ctl *c, struct args *a)
{
	return change(c, a, PROTO_CMD_UNSET_LIMITS, false);
}

static int cmd_revert(struct ctl *c, struct args *a)
{
	return change(c, a, PROTO_CMD_UNSET_LIMITS, true);
}

static int cmd_reset_stats(struct ctl *c, struct args *a)
{
	int r = ctl_call(c, PROTO_CMD_RESET_STATS, NULL, 0);

	return r != CTL_OK ? r : print_message(c, a, NULL);
}

static int cmd_reload(struct ctl *c, struct args *a)
{
	int r = ctl_call(c, PROTO_CMD_RELOAD, NULL, 0);

	return r != CTL_OK ? r : print_message(c, a, NULL);
}

/* Counts of a report row (0 when the daemon did not send the field). */
static uint64_t row_u(const struct stats_row *row, int attr)
{
	return row->has[attr] ? row->u[attr] : 0;
}

/*
 * The census: the daemon's books, checked by the daemon, as one object
 * (pages and chunks: total, free, lent; lent per client).
 */
static int cmd_census(struct ctl *c, struct args *a)
{
	struct ctl_report rep;
	const struct stats_row *st = &rep.status;
	int r = ctl_report(c, PROTO_CMD_CENSUS, &rep);

	if (r != CTL_OK)
		return r;
	print_open(a->mode, stdout, !a->pretty);
	print_open_object(NULL);
	print_uint("pages", row_u(st, PROTO_STATUS_PAGES_TOTAL));
	print_uint("free", row_u(st, PROTO_STATUS_PAGES_FREE));
	print_uint("lent", row_u(st, PROTO_STATUS_PAGES_LENT));
	print_open_object("chunks");
	print_uint("total", row_u(st, PROTO_STATUS_CHUNKS_TOTAL));
	print_uint("free", row_u(st, PROTO_STATUS_CHUNKS_FREE));
	print_uint("lent", row_u(st, PROTO_STATUS_CHUNKS_TOTAL) -
				   row_u(st, PROTO_STATUS_CHUNKS_FREE));
	print_uint("pages_each", row_u(st, PROTO_STATUS_CHUNK_PAGES));
	print_uint("retired", row_u(st, PROTO_STATUS_CHUNKS_RETIRED));
	print_close_object();
	print_uint("bad", row_u(st, PROTO_STATUS_BAD_INDEX));
	print_open_array("clients");
	for (size_t i = 0; i < rep.nclients; i++) {
		const struct stats_row *cl = &rep.clients[i];

		print_open_object(NULL);
		print_uint("slot", row_u(cl, PROTO_CLIENT_SLOT));
		print_uint("pid", row_u(cl, PROTO_CLIENT_PID));
		print_string("name", cl->has[PROTO_CLIENT_NAME]
					     ? cl->s[PROTO_CLIENT_NAME]
					     : "");
		print_uint("lent", row_u(cl, PROTO_CLIENT_LENT));
		print_uint("held", row_u(cl, PROTO_CLIENT_HELD));
		print_close_object();
	}
	print_close_array();
	print_string("message", c->message);
	print_close_object();
	print_human("%s\n", c->message);
	for (size_t i = 0; i < rep.nclients; i++) {
		const struct stats_row *cl = &rep.clients[i];

		print_human("  %s (pid %llu): %llu pages lent, %llu in use\n",
			    cl->has[PROTO_CLIENT_NAME] ? cl->s[PROTO_CLIENT_NAME]
						       : "?",
			    (unsigned long long)row_u(cl, PROTO_CLIENT_PID),
			    (unsigned long long)row_u(cl, PROTO_CLIENT_LENT),
			    (unsigned long long)row_u(cl, PROTO_CLIENT_HELD));
	}
	ctl_report_free(&rep);
	return finish(CTL_OK);
}

static int cmd_watch(struct ctl *c, struct args *a)
{
	return watch_run(c, a->interval_us, a->mode);
}

static const struct command commands[] = {
	{"status", cmd_status, 0, "status",
	 "the reserve at a glance and the top consumers",
	 "Free and total pages, depletions, fallbacks, clients, and the five\n"
	 "clients holding the most pages.\n"},
	{"stats", cmd_stats, O_PER_CPU | O_FORMAT,
	 "stats [--per-cpu] [--format=text|json|prometheus]",
	 "every counter of the daemon, its CPUs and its clients",
	 "--per-cpu adds the table of CPUs to the text output (JSON and\n"
	 "Prometheus always have it).  --format=prometheus prints the\n"
	 "node_exporter textfile format: rcupool_<set>_<name>[_total].\n"},
	{"clients", cmd_clients, 0, "clients", "the attached clients",
	 "One line per client: pid, name, pages held, its limits, denials.\n"},
	{"limits", cmd_limits, 0, "limits",
	 "the settings in force and where each came from", ""},
	{"set", cmd_set, O_PERSIST | O_CONFIG_DIR,
	 "set [--persist [--config-dir=DIR]] KEY=VALUE...",
	 "change settings while the daemon runs (admin)",
	 "Keys: balance.*, limits.* (not max_clients), client.NAME.min_pages,\n"
	 "client.NAME.max_pages, access.attach_group, access.admin_group,\n"
	 "access.idle_timeout, access.max_connections_per_uid.  The daemon\n"
	 "checks the whole configuration the change gives before anything is\n"
	 "written or applied.  Without --persist the values go to the daemon's\n"
	 "runtime drop-in (RUNDIR/rcupoold.conf.d/rcupoolctl.conf: kept across\n"
	 "reloads and restarts, gone at reboot).  With --persist they go to\n"
	 "CONFDIR/rcupoold.conf.d/" PERSIST_FILE " (CONFDIR: the daemon's\n"
	 "configuration directory; --config-dir or $RCUPOOL_CONFDIR, if given,\n"
	 "must name the same) and leave the runtime drop-in.  Attached clients\n"
	 "see a change on their next page request.\n"},
	{"unset", cmd_unset, O_PERSIST | O_CONFIG_DIR,
	 "unset [--persist [--config-dir=DIR]] KEY...",
	 "remove runtime (or persisted) settings (admin)",
	 "The keys fall back to the files (or, with --persist, to the rest of\n"
	 "the configuration and the defaults).\n"},
	{"revert", cmd_revert, O_PERSIST | O_CONFIG_DIR,
	 "revert [--persist [--config-dir=DIR]]",
	 "remove every runtime (and persisted) setting (admin)", ""},
	{"reset-stats", cmd_reset_stats, 0, "reset-stats",
	 "set the counters to zero (admin)", ""},
	{"reload", cmd_reload, 0, "reload",
	 "read the configuration again, as SIGHUP does (admin)",
	 "A configuration that is not valid is refused, the old one stays,\n"
	 "and the reason is printed (exit 1).\n"},
	{"census", cmd_census, 0, "census",
	 "check the daemon's books now (admin)",
	 "Every chunk is in one pool or lent to one live client, exactly:\n"
	 "the daemon checks its books and reports pages and chunks, total,\n"
	 "free and lent, and what each client is lent (it also checks them\n"
	 "every balance.census_interval).\n"},
	{"watch", cmd_watch, O_INTERVAL, "watch [--interval=TIME]",
	 "the status again and again, with rates, until Ctrl-C",
	 "TIME: 2s (default 1s), 500ms, or seconds (0.5).  On a terminal the\n"
	 "screen is redrawn in place; otherwise one block per refresh (with\n"
	 "--json, one JSON document per line).\n"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_options(FILE *out, unsigned int mask)
{
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
		char left[40];

		if (!(options[i].bit & mask))
			continue;
		snprintf(left, sizeof(left), "--%s%s%s", options[i].name,
			 options[i].arg ? "=" : "",
			 options[i].arg ? options[i].arg : "");
		fprintf(out, "  %-22s %s\n", left, options[i].help);
	}
}

static void help(const struct command *cmd)
{
	if (cmd) {
		printf("Usage: rcupoolctl [--socket=PATH] [--json] %s\n\n%s.\n",
		       cmd->usage, cmd->summary);
		if (*cmd->help)
			printf("\n%s", cmd->help);
		printf("\nOptions:\n");
		print_options(stdout, cmd->opts | O_SOCKET | O_JSON | O_HELP);
		return;
	}
	printf("Usage: rcupoolctl [--socket=PATH] [--json] COMMAND [ARGS...]\n"
	       "       rcupoolctl COMMAND --help | --help | --version\n\n"
	       "Query and control rcupoold, the shared RCU page reserve.\n\n"
	       "Commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		printf("  %-12s %s\n", commands[i].name, commands[i].summary);
	printf("\nOptions:\n");
	print_options(stdout, O_GLOBAL);
	printf("\nWithout --socket: $RCUPOOL_SOCKET; else, for a user, "
	       "$XDG_RUNTIME_DIR/rcupool/rcupoold.sock\nif it exists; else "
	       "%s.\n"
	       "Exit status: 0 ok, 1 the daemon answered with an error, "
	       "2 bad usage,\n3 the daemon cannot be reached.\n",
	       PROTO_SYSTEM_SOCKET);
}

/* --- parsing ------------------------------------------------------------- */

/* A refresh period in the one grammar (proto/units.h), 10ms to 1d: faster
 * is not something to read, slower is a mistake. */
#define INTERVAL_MIN (10 * UNITS_US_PER_MS)
#define INTERVAL_MAX UNITS_US_PER_D

static int parse_interval(const char *s, uint64_t *usec)
{
	int r = units_parse_duration(s, usec);

	if (r < 0)
		return r;
	if (*usec < INTERVAL_MIN || *usec > INTERVAL_MAX)
		return -ERANGE;
	return 0;
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static int set_format(struct args *a, const char *v)
{
	if (!strcmp(v, "prometheus"))
		a->mode = PRINT_PROMETHEUS;
	else if (!strcmp(v, "json"))
		a->mode = PRINT_JSON;
	else if (!strcmp(v, "text"))
		a->mode = PRINT_HUMAN;
	else
		return usage_error("unknown format '%s': text, json or "
				   "prometheus",
				   v);
	return CTL_OK;
}

/* One option word at argv[*i] for cmd (NULL: before the command). */
static int parse_option(struct args *a, const struct command *cmd, int argc,
			char **argv, int *i, bool *version)
{
	const char *word = argv[*i], *name = word + 2, *eq, *value = NULL;
	unsigned int allowed = O_GLOBAL | (cmd ? cmd->opts : 0);
	const struct option_desc *o = NULL;
	size_t len;

	/* The short forms of iproute2: -j JSON, -p pretty. */
	if (!strcmp(word, "-h"))
		name = "help";
	else if (!strcmp(word, "-j"))
		name = "json";
	else if (!strcmp(word, "-p"))
		name = "pretty";
	else if (strncmp(word, "--", 2) != 0)
		return usage_error("unknown option '%s'", word);
	eq = strchr(name, '=');
	len = eq ? (size_t)(eq - name) : strlen(name);
	for (size_t k = 0; k < sizeof(options) / sizeof(options[0]); k++)
		if (strlen(options[k].name) == len &&
		    !strncmp(options[k].name, name, len))
			o = &options[k];
	if (!o)
		return usage_error("unknown option '%s'", word);
	if (!(o->bit & allowed))
		return usage_error("option '--%s' does not apply to %s%s",
				   o->name,
				   cmd ? "" : "rcupoolctl without a command",
				   cmd ? cmd->name : "");
	if (o->arg) {
		if (eq)
			value = eq + 1;
		else if (*i + 1 < argc)
			value = argv[++*i];
		else
			return usage_error("option '--%s' needs a value",
					   o->name);
	} else if (eq) {
		return usage_error("option '--%s' takes no value: '%s'",
				   o->name, word);
	}
	switch (o->bit) {
	case O_SOCKET:
		if (!*value)
			return usage_error("empty --socket");
		a->socket = value;
		break;
	case O_JSON:
		a->mode = PRINT_JSON;
		break;
	case O_HELP:
		a->help = true;
		break;
	case O_PRETTY:
		a->pretty = true;
		break;
	case O_VERSION:
		*version = true;
		break;
	case O_PER_CPU:
		a->per_cpu = true;
		break;
	case O_FORMAT:
		return set_format(a, value);
	case O_INTERVAL:
		if (parse_interval(value, &a->interval_us) < 0)
			return usage_error("bad interval '%s': a time from "
					   "10ms to 1d, a number and "
					   UNITS_DURATION_WORDS
					   " (2s, 500 ms, 0.5)",
					   value);
		break;
	case O_PERSIST:
		a->persist = true;
		break;
	case O_CONFIG_DIR:
		a->config_dir = value;
		break;
	}
	return CTL_OK;
}

static void free_words(char ***words)
{
	free(*words);
}

int main(int argc, char **argv)
{
	char **words __attribute__((cleanup(free_words))) = NULL;
	struct args a = {.mode = PRINT_HUMAN, .interval_us = 1000000};
	const struct command *cmd = NULL;
	bool version = false, dashdash = false;
	struct ctl c;
	int r;

	words = a.words = calloc(argc, sizeof(*a.words));
	if (!a.words)
		return CTL_DAEMON_ERROR;
	for (int i = 1; i < argc; i++) {
		const char *w = argv[i];

		if (!dashdash && !strcmp(w, "--")) {
			dashdash = true;
		} else if (!dashdash && w[0] == '-' && w[1]) {
			r = parse_option(&a, cmd, argc, argv, &i, &version);
			if (r != CTL_OK)
				return r;
		} else if (!cmd) {
			if (!strcmp(w, "help")) {
				a.help = true;
				continue;
			}
			cmd = find_command(w);
			if (!cmd)
				return usage_error("unknown command '%s'", w);
		} else {
			a.words[a.nwords++] = argv[i];
		}
	}
	if (version) {
		printf("rcupoolctl %s\n", RCUPOOL_VERSION);
		return CTL_OK;
	}
	if (a.help) {
		help(cmd);
		return CTL_OK;
	}
	if (!cmd)
		return usage_error("no command given");
	if (a.nwords && cmd->run != cmd_set && cmd->run != cmd_unset)
		return usage_error("%s takes no argument: '%s'", cmd->name,
				   a.words[0]);
	if (cmd->run == cmd_set || cmd->run == cmd_unset) {
		r = check_words(cmd->name, &a, cmd->run == cmd_set);
		if (r != CTL_OK)
			return r;
	}
	if (a.mode == PRINT_PROMETHEUS && cmd->run != cmd_stats)
		return usage_error("--format=prometheus is for stats");
	if (a.config_dir && !a.persist)
		return usage_error("--config-dir is for --persist");
	r = ctl_open(&c, a.socket);
	if (r == CTL_OK)
		r = cmd->run(&c, &a);
	ctl_close(&c);
	return r;
}
