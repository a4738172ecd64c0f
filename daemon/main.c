// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * rcupoold: owns the reserve, serves the control socket, and talks to
 * systemd (notify, watchdog, socket activation, reload).
 */
#include <errno.h>
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
#include "hotplug.h"
#include "log.h"

/* A configured group that does not exist: nobody is a member. */
#define NO_MEMBERS ((gid_t)-2)

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rcupoold [OPTION]...\n"
		"Owns the rcupool page reserve and serves its control socket.\n"
		"\n"
		"  -c, --config FILE     read FILE instead of %s\n"
		"                        (drop-ins from rcupoold.conf.d/ beside it)\n"
		"  -o SECTION.KEY=VALUE  set a key after the files (repeatable)\n"
		"  -s, --socket PATH     listen on PATH (unless socket-activated)\n"
		"      --check-config    check the configuration, print it with\n"
		"                        where each value came from, and exit\n"
		"  -v, --verbose         log debug messages\n"
		"      --version         print the version and exit\n"
		"  -h, --help            print this help and exit\n"
		"\n"
		"Exit status: 0 stopped cleanly, 1 failed, 2 bad usage, 78 bad "
		"configuration.\n",
		CONF_DEFAULT_PATH);
}

static int resolve_group(const char *key, const char *name, bool configured,
			 gid_t *ret)
{
	int r = peer_group_lookup(name, ret);

	if (r == -ENOENT) {
		/* The built-in name on a machine without the package's groups
		 * (make run) is expected; a configured one is a mistake. */
		log_msg(configured ? LOG_WARNING : LOG_NOTICE,
			"%s: group \"%s\" does not exist: only root and this "
			"daemon's user qualify",
			key, name);
		*ret = NO_MEMBERS;
		return 0;
	}
	if (r < 0)
		return log_errno(LOG_ERR, r, "%s: cannot look up group \"%s\": %m",
				 key, name);
	return 0;
}

/* Files, then -o options, then consistency: into *c, or an error in err. */
static int load_config(struct daemon *d, struct conf *c, struct conf_error *err)
{
	int r;

	conf_init(c);
	r = conf_load(c, d->config_path, d->config_explicit, err);
	for (size_t i = 0; r >= 0 && i < d->n_options; i++)
		r = conf_set_option(c, d->options[i], "command line", err);
	if (r >= 0)
		r = conf_validate(c, d->ncpus, err);
	if (r < 0)
		conf_free(c);
	return r;
}

static int resolve_groups(struct daemon *d)
{
	int r = resolve_group("access.attach_group",
			      d->conf.access.attach_group,
			      d->conf.src[CONF_ACCESS_ATTACH_GROUP].seq != 0,
			      &d->attach_gid);

	if (r >= 0)
		r = resolve_group("access.admin_group",
				  d->conf.access.admin_group,
				  d->conf.src[CONF_ACCESS_ADMIN_GROUP].seq != 0,
				  &d->admin_gid);
	return r;
}

void daemon_notify_status(struct daemon *d)
{
	char line[160];

	server_status_line(d, line, sizeof(line));
	sd_notifyf(0, "STATUS=%s", line);
}

int daemon_reload(struct daemon *d, char *why, size_t whylen)
{
	struct conf next, old;
	struct conf_error err;
	uint64_t now;
	int r;

	sd_event_now(d->event, CLOCK_MONOTONIC, &now);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)now);
	r = load_config(d, &next, &err);
	if (r < 0) {
		log_error("reload failed, keeping the running configuration: %s",
			  err.msg);
		snprintf(why, whylen, "reload failed, configuration unchanged: %s",
			 err.msg);
		goto out;
	}
	/* What sizes the reserve or the socket needs a restart. */
	if (memcmp(&next.reserve, &d->conf.reserve, sizeof(next.reserve)) ||
	    next.limits.max_clients != d->conf.limits.max_clients ||
	    strcmp(next.daemon.socket, d->conf.daemon.socket) ||
	    next.access.socket_mode != d->conf.access.socket_mode) {
		log_warning("reload: [reserve], limits.max_clients, "
			    "access.socket_mode and daemon.socket changes take "
			    "effect at the next start");
		next.reserve = d->conf.reserve;
		next.limits.max_clients = d->conf.limits.max_clients;
		next.access.socket_mode = d->conf.access.socket_mode;
		memcpy(next.daemon.socket, d->conf.daemon.socket,
		       sizeof(next.daemon.socket));
	}
	old = d->conf;
	d->conf = next;
	r = resolve_groups(d);
	if (r < 0) {
		d->conf = old;
		conf_free(&next);
		resolve_groups(d);
		snprintf(why, whylen,
			 "reload failed, configuration unchanged: bad group");
		goto out;
	}
	conf_free(&old);
	reserve_apply_limits(d);
	reserve_start_timers(d);
	reserve_resync_cpus(d);
	reserve_balance(d);
	d->stats.reloads++;
	log_info("configuration reloaded");
	snprintf(why, whylen, "configuration reloaded");
	r = 0;
out:
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
	log_info("%s: stopping", strsignal((int)si->ssi_signo));
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
	r = lending_init(d);
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
	bool check = false;
	int level = LOG_INFO, c, r;
	struct conf_error err;

	clock_gettime(CLOCK_MONOTONIC, &started);
	d.start_usec = (uint64_t)started.tv_sec * 1000000 +
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
			usage(stdout);
			return 0;
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
	r = load_config(&d, &d.conf, &err);
	if (r < 0) {
		fprintf(stderr, "%s\n", err.msg);
		free(d.options);
		return EX_CONFIG;
	}
	if (check) {
		conf_print(&d.conf, stdout);
		printf("\n; reserve: %llu pages on %u possible CPUs\n",
		       (unsigned long long)conf_reserve_pages(&d.conf, d.ncpus),
		       d.ncpus);
		conf_free(&d.conf);
		free(d.options);
		return 0;
	}
	if (resolve_groups(&d) < 0) {
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
