// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "watch.h"
#include "units.h"

#define WATCH_TOP 10

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = sig;
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Sleep until deadline or a signal. */
static void wait_until(uint64_t deadline)
{
	while (!stop) {
		uint64_t now = now_usec();
		struct timespec ts;

		if (now >= deadline)
			return;
		ts.tv_sec = (deadline - now) / 1000000;
		ts.tv_nsec = (deadline - now) % 1000000 * 1000;
		if (nanosleep(&ts, NULL) < 0 && errno != EINTR)
			return;
	}
}

/* Pages taken by all clients, counting each client's growth only: a
 * client that left, or counters reset, must not give a negative rate. */
struct sample {
	uint64_t t, depletions, fallbacks;
	size_t n;
	struct {
		uint64_t slot, pid, got;
	} c[256];
};

static uint64_t grown(uint64_t now, uint64_t before)
{
	return now > before ? now - before : 0;
}

static void take(struct sample *s, const struct ctl_report *r)
{
	s->t = now_usec();
	s->depletions = r->status.u[PROTO_STATUS_DEPLETIONS];
	s->fallbacks = r->status.u[PROTO_STATUS_FALLBACKS];
	s->n = 0;
	for (size_t i = 0; i < r->nclients && s->n < 256; i++, s->n++) {
		s->c[s->n].slot = r->clients[i].u[PROTO_CLIENT_SLOT];
		s->c[s->n].pid = r->clients[i].u[PROTO_CLIENT_PID];
		s->c[s->n].got = r->clients[i].u[PROTO_CLIENT_PAGES_GOT];
	}
}

static uint64_t pages_since(const struct sample *now, const struct sample *then)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < now->n; i++) {
		uint64_t before = 0;

		for (size_t k = 0; k < then->n; k++)
			if (then->c[k].slot == now->c[i].slot &&
			    then->c[k].pid == now->c[i].pid)
				before = then->c[k].got;
		sum += grown(now->c[i].got, before);
	}
	return sum;
}

static const uint16_t watch_columns[] = {
	PROTO_CLIENT_PID,	  PROTO_CLIENT_NAME,
	PROTO_CLIENT_HELD,	  PROTO_CLIENT_MAX_PAGES,
	PROTO_CLIENT_PAGES_GOT,	  PROTO_CLIENT_DENIED,
	PROTO_CLIENT_FB_OVERFLOW, 0};

static void show(const struct ctl_report *r, const struct sample *now,
		 const struct sample *then, enum print_mode mode, bool tty,
		 uint64_t interval_us)
{
	double dt = then ? (now->t - then->t) / 1e6 : 0;
	double pages = 0, depl = 0, fb = 0;
	char iv[32];

	if (then && dt > 0) {
		pages = pages_since(now, then) / dt;
		depl = grown(now->depletions, then->depletions) / dt;
		fb = grown(now->fallbacks, then->fallbacks) / dt;
	}
	/* Home and clear-to-end after drawing, not a full clear before:
	 * no flicker. */
	if (tty && mode == PRINT_HUMAN)
		fputs("\033[H", stdout);
	print_open(mode, stdout, true);
	print_open_object(NULL);
	print_record(&stats_status, NULL, &r->status, PRINT_SUMMARY);
	print_open_object("rates");
	print_double("pages_per_sec", pages);
	print_double("depletions_per_sec", depl);
	print_double("fallbacks_per_sec", fb);
	print_double("interval_sec", dt);
	print_close_object();
	if (then)
		print_human("  rates      %.1f pages/s, %.1f depletions/s, "
			    "%.1f fallbacks/s\n",
			    pages, depl, fb);
	else
		print_human("  rates      (after the first %s)\n",
			    units_human_duration(interval_us, iv, sizeof(iv)));
	print_table_open(&stats_client, "top_clients", "top consumers",
			 watch_columns);
	for (size_t i = 0; i < r->nclients && i < WATCH_TOP; i++)
		print_row(&r->clients[i]);
	print_table_close();
	print_close_object();
	if (tty && mode == PRINT_HUMAN)
		fputs("\033[J", stdout);
	else if (mode == PRINT_HUMAN)
		fputc('\n', stdout);
	print_close();
}

int watch_run(struct ctl *c, uint64_t interval_us, enum print_mode mode)
{
	struct sigaction sa = {.sa_handler = on_signal};
	struct sample *s = calloc(2, sizeof(*s));
	bool tty = isatty(STDOUT_FILENO);
	uint64_t next;
	int r = CTL_OK, k = 0;

	if (!s) {
		fprintf(stderr, "rcupoolctl: out of memory\n");
		return CTL_DAEMON_ERROR;
	}
	/* No SA_RESTART: the sleep ends at once on Ctrl-C. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (tty && mode == PRINT_HUMAN)
		fputs("\033[?25l\033[H\033[2J", stdout); /* hide the cursor */
	next = now_usec();
	for (int round = 0; !stop; round++) {
		struct ctl_report rep;

		r = ctl_report(c, PROTO_CMD_GET_STATS, &rep);
		if (r != CTL_OK)
			break;
		take(&s[k], &rep);
		show(&rep, &s[k], round ? &s[!k] : NULL, mode, tty,
		     interval_us);
		ctl_report_free(&rep);
		if (ferror(stdout)) {
			r = CTL_DAEMON_ERROR;
			break;
		}
		k = !k;
		next += interval_us;
		wait_until(next);
	}
	if (tty && mode == PRINT_HUMAN)
		fputs("\033[?25h", stdout);
	fflush(stdout);
	free(s);
	/* Ctrl-C is how watch ends: a success, not an interruption. */
	return stop && r == CTL_OK ? CTL_OK : r;
}
