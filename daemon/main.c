// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * rcupoold: owns the reserve, serves the control socket, and talks to
 * systemd (notify, watchdog, socket activation, reload).
 */
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "cpu.h"
#include "daemon.h"
#include "fdstore.h"
#include "hotplug.h"
#include "log.h"
#include "settings.h"


/* "" or " (absent: ...)" for path. */
static const char *presence(const char *path, const char *absent)
{
	struct stat st;

	return stat(path, &st) == 0 ? "" : absent;
}

/* The files and the socket this daemon would use, as comment lines
 * (prefix "; " for --check-config, "  " for --help). */
static void print_paths(FILE *f, const char *prefix, const struct daemon *d,
			const struct conf *files)
{
	char dir[PATH_MAX], persist[PATH_MAX], runtime[PATH_MAX],
		sock[PATH_MAX];

	conf_dropin_dir(d->config_path, dir, sizeof(dir));
	conf_persist_path(d->config_path, persist, sizeof(persist));
	settings_runtime_path(files, runtime, sizeof(runtime));
	if (settings_socket_path(files, sock, sizeof(sock)) < 0)
		snprintf(sock, sizeof(sock), "(none: set --socket)");
	fprintf(f, "%smain file:       %s%s\n", prefix, d->config_path,
		presence(d->config_path, d->config_explicit
						 ? " (absent)"
						 : " (absent: built-in defaults)"));
	fprintf(f, "%sdrop-ins:        %s/*.conf%s\n", prefix, dir,
		presence(dir, " (no such directory)"));
	fprintf(f, "%spersist drop-in: %s%s\n", prefix, persist,
		presence(persist, " (absent)"));
	fprintf(f, "%sruntime drop-in: %s%s\n", prefix,
		*runtime ? runtime : "(none)",
		*runtime ? presence(runtime, " (absent)") : "");
	fprintf(f, "%ssocket:          %s\n", prefix, sock);
}

static void usage(FILE *f, const struct daemon *d)
{
	struct conf none;

	fprintf(f,
		"Usage: rcupoold [OPTION]...\n"
		"Owns the rcupool page reserve and serves its control socket.\n"
		"\n"
		"  -c, --config FILE     read FILE instead of %s\n"
		"                        (drop-ins from rcupoold.conf.d/ beside it;\n"
		"                        /dev/null: no file at all)\n"
		"  -o SECTION.KEY=VALUE  set a key after the files (repeatable)\n"
		"  -s, --socket PATH     listen on PATH (unless socket-activated)\n"
		"      --check-config    check the configuration, print it with\n"
		"                        where each value came from, and exit\n"
		"  -v, --verbose         log debug messages\n"
		"      --version         print the version and exit\n"
		"  -h, --help            print this help and exit\n"
		"\n"
		"Paths (with the options given):\n",
		CONF_DEFAULT_PATH);
	conf_init(&none);
	print_paths(f, "  ", d, &none);
	fprintf(f,
		"\n"
		"Exit status: 0 stopped cleanly, 1 failed, 2 bad usage, 78 bad "
		"configuration.\n");
}

/* --check-config: a configured group that does not exist is an error. */
static int check_groups(const struct conf *c, struct conf_error *err)
{
	static const struct {
		enum conf_key k;
		const char *key;
	} g[] = {{CONF_ACCESS_ATTACH_GROUP, "[access] attach_group"},
		 {CONF_ACCESS_ADMIN_GROUP, "[access] admin_group"}};
	char where[PATH_MAX + 32];
	gid_t gid;

	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		const char *name = g[i].k == CONF_ACCESS_ATTACH_GROUP
					   ? c->access.attach_group
					   : c->access.admin_group;

		if (!c->src[g[i].k].seq || !*name)
			continue;
		if (peer_group_lookup(name, &gid) != -ENOENT)
			continue;
		conf_src_format(c, c->src[g[i].k], where, sizeof(where));
		snprintf(err->msg, sizeof(err->msg),
			 "%.200s: %s: group \"%.200s\" does not exist", where,
			 g[i].key, name);
		return -EINVAL;
	}
	return 0;
}

void daemon_notify_status(struct daemon *d)
{
	char line[224];

	server_status_line(d, line, sizeof(line));
	sd_notifyf(0, "STATUS=%s", line);
}

int daemon_reload(struct daemon *d, char *why, size_t whylen)
{
	uint64_t now;
	int r;

	sd_event_now(d->event, CLOCK_MONOTONIC, &now);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)now);
	r = settings_reload(d, why, whylen);
	sd_event_now(d->event, CLOCK_MONOTONIC, &now);
	sd_notifyf(0, "READY=1\nMONOTONIC_USEC=%llu", (unsigned long long)now);
	daemon_notify_status(d);
	return r;
}

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si,
		     void *data)
{
	struct daemon *d = data;
	char why[256];

	if (si->ssi_signo == SIGHUP) {
		log_info("SIGHUP: reloading the configuration");
		daemon_reload(d, why, sizeof(why));
		return 0;
	}
	if (d->fdstore) {
		/* systemctl restart sends SIGTERM: what is in the store stays
		 * for the next instance (systemd drops it on a stop). */
		fdstore_freeze(d);
		log_info("%s: stopping; the reserve and %u clients stay in the "
			 "service's fd store for the next instance",
			 strsignal((int)si->ssi_signo), d->n_attached);
	} else {
		log_info("%s: stopping", strsignal((int)si->ssi_signo));
	}
	sd_notify(0, "STOPPING=1");
	return sd_event_exit(d->event, 0);
}

/*
 * A chunk in a pool holds an fd (docs/DECISIONS.md, fd budget): the soft
 * RLIMIT_NOFILE goes up to the hard one.
 */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warning("cannot raise RLIMIT_NOFILE: %m");
	}
}

static int run(struct daemon *d, const char *socket_option)
{
	int r;

	r = sd_event_default(&d->event);
	if (r < 0)
		return log_errno(LOG_ERR, r, "sd_event: %m");
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((r = sd_event_add_signal(d->event, NULL, SIGTERM, on_signal, d)) < 0 ||
	    (r = sd_event_add_signal(d->event, NULL, SIGINT, on_signal, d)) < 0 ||
	    (r = sd_event_add_signal(d->event, NULL, SIGHUP, on_signal, d)) < 0)
		return log_errno(LOG_ERR, r, "signals: %m");
	r = sd_event_set_watchdog(d->event, true);
	if (r < 0)
		log_errno(LOG_WARNING, r, "watchdog: %m");

	raise_nofile();
	d->generation = (uint64_t)getpid() << 32 ^ d->start_usec;
	fdstore_init(d);
	r = lending_init(d);
	if (r < 0)
		return r;
	r = fdstore_load(d);
	if (r < 0)
		return r;
	/* Another daemon on the socket is found before the reserve is
	 * allocated and locked. */
	r = server_listen(d, socket_option);
	if (r < 0)
		return r;
	r = reserve_create(d);
	if (r < 0)
		return r;
	r = reserve_open_hotplug(d);
	if (r < 0)
		return r;
	r = reserve_start_timers(d);
	if (r < 0)
		return r;

	log_info("rcupoold %s ready; control socket %s", RCUPOOL_VERSION,
		 d->socket_path);
	log_info("restart: %u clients adopted at start; clients of a "
		 "previous instance re-attach by themselves",
		 d->clients_adopted);
	sd_notify(0, "READY=1");
	daemon_notify_status(d);
	r = sd_event_loop(d->event);
	if (r < 0)
		log_errno(LOG_ERR, r, "event loop: %m");
	return r;
}

static struct timespec started;

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"socket", required_argument, NULL, 's'},
		{"check-config", no_argument, NULL, 'C'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{}};
	struct daemon d = {
		.config_path = CONF_DEFAULT_PATH,
		.listen_fd = -1,
		.uid = geteuid(),
	};
	const char *socket_option = NULL;
	bool check = false, help = false;
	int level = LOG_INFO, c, r;
	struct conf_error err;

	clock_gettime(CLOCK_MONOTONIC, &started);
	d.start_usec = (uint64_t)started.tv_sec * 1000000 +
		       (uint64_t)started.tv_nsec / 1000;
	clock_gettime(CLOCK_REALTIME, &started);
	d.started_realtime_usec = (uint64_t)started.tv_sec * 1000000 +
				  (uint64_t)started.tv_nsec / 1000;
	d.options = calloc((size_t)argc, sizeof(char *));
	if (!d.options)
		return 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:o:s:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			d.config_path = optarg;
			d.config_explicit = true;
			break;
		case 'o':
			d.options[d.n_options++] = optarg;
			break;
		case 's':
			socket_option = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'v':
			level = LOG_DEBUG;
			break;
		case 'V':
			printf("rcupoold %s\n", RCUPOOL_VERSION);
			return 0;
		case 'h':
			help = true;
			break;
		case ':':
			fprintf(stderr, "rcupoold: option %s needs a value\n",
				argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr,
				"rcupoold: unknown option %s (see --help)\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (help) {
		settings_init(socket_option);
		usage(stdout, &d);
		free(d.options);
		return 0;
	}
	if (optind < argc) {
		fprintf(stderr, "rcupoold: unexpected argument \"%s\" (see --help)\n",
			argv[optind]);
		return 2;
	}
	log_open(level);

	r = cpu_possible_count();
	if (r < 0) {
		log_errno(LOG_ERR, r, "cannot count the possible CPUs: %m");
		return 1;
	}
	d.ncpus = (unsigned int)r;
	settings_init(socket_option);
	r = settings_load(&d, &d.conf, &err);
	if (r < 0) {
		fprintf(stderr, "%s\n", err.msg);
		free(d.options);
		return EX_CONFIG;
	}
	if (check && check_groups(&d.conf, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		conf_free(&d.conf);
		free(d.options);
		return EX_CONFIG;
	}
	if (check) {
		print_paths(stdout, "; ", &d, &d.conf);
		putchar('\n');
		conf_print(&d.conf, stdout);
		printf("\n; reserve: %llu pages on %u possible CPUs\n",
		       (unsigned long long)conf_reserve_pages(&d.conf, d.ncpus),
		       d.ncpus);
		conf_free(&d.conf);
		free(d.options);
		return 0;
	}
	if (settings_resolve_groups(&d) < 0) {
		conf_free(&d.conf);
		free(d.options);
		return EX_CONFIG;
	}

	r = run(&d, socket_option);
	server_close(&d);
	lending_destroy(&d);
	reserve_destroy(&d);
	sd_event_source_disable_unref(d.hotplug_src);
	hotplug_close(d.hotplug);
	sd_event_source_disable_unref(d.balance_timer);
	sd_event_source_disable_unref(d.census_timer);
	sd_event_unref(d.event);
	conf_free(&d.conf);
	free(d.options);
	return r < 0 ? 1 : 0;
}
