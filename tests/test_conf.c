// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "../daemon/conf.h"
#include "../daemon/dropin.h"

static char tmpdir[] = "/tmp/test_conf.XXXXXX";

/* Write text to tmpdir/rel (creating its directory); the full path in path. */
static void write_file(const char *rel, const char *text, char *path)
{
	char dir[PATH_MAX], *slash;
	FILE *f;

	snprintf(path, PATH_MAX, "%s/%s", tmpdir, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	*slash = '\0';
	for (slash = dir + strlen(tmpdir) + 1; (slash = strchr(slash, '/'));
	     slash++) {
		*slash = '\0';
		mkdir(dir, 0700);
		*slash = '/';
	}
	mkdir(dir, 0700);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void expect_msg(const struct conf_error *err, const char *prefix,
		       const char *rest)
{
	char exp[PATH_MAX + 1024];

	snprintf(exp, sizeof(exp), "%s%s", prefix, rest);
	assert_string_equal(err->msg, exp);
}

/* Load text as an explicit main file; returns conf_load's result. */
static int load_text(const char *rel, const char *text, struct conf *c,
		     struct conf_error *err, char *path)
{
	write_file(rel, text, path);
	return conf_load(c, path, true, err);
}

static bool same_count(struct conf_count a, struct conf_count b)
{
	return a.value == b.value && a.percent == b.percent;
}

/* Every value (not the sources) equal. */
static void assert_same_values(const struct conf *a, const struct conf *b)
{
	size_t i;

	assert_memory_equal(&a->reserve, &b->reserve, sizeof(a->reserve));
	assert_true(same_count(a->balance.low, b->balance.low));
	assert_true(same_count(a->balance.target, b->balance.target));
	assert_true(same_count(a->balance.high, b->balance.high));
	assert_int_equal(a->balance.interval_us, b->balance.interval_us);
	assert_int_equal(a->balance.census_interval_us,
			 b->balance.census_interval_us);
	assert_int_equal(a->limits.client_min_pages,
			 b->limits.client_min_pages);
	assert_true(same_count(a->limits.client_max_pages,
			       b->limits.client_max_pages));
	assert_int_equal(a->limits.protect_pages, b->limits.protect_pages);
	assert_int_equal(a->limits.max_clients, b->limits.max_clients);
	assert_int_equal(a->limits.overflow_pages, b->limits.overflow_pages);
	assert_int_equal(a->limits.drain_interval_us,
			 b->limits.drain_interval_us);
	assert_string_equal(a->access.attach_group, b->access.attach_group);
	assert_string_equal(a->access.admin_group, b->access.admin_group);
	assert_int_equal(a->access.socket_mode, b->access.socket_mode);
	assert_string_equal(a->daemon.socket, b->daemon.socket);
	assert_int_equal(a->n_clients, b->n_clients);
	for (i = 0; i < a->n_clients; i++) {
		const struct conf_client *x = &a->clients[i];
		const struct conf_client *y = &b->clients[i];

		assert_string_equal(x->name, y->name);
		assert_int_equal(x->has_min, y->has_min);
		assert_int_equal(x->has_max, y->has_max);
		if (x->has_min)
			assert_true(same_count(x->min_pages, y->min_pages));
		if (x->has_max)
			assert_true(same_count(x->max_pages, y->max_pages));
	}
}

static char *print_to_string(const struct conf *c)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	assert_non_null(f);
	conf_print(c, f);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void test_defaults(void **state)
{
	struct conf_error err = {""};
	char path[PATH_MAX];
	struct conf c;
	char *out;
	int i;

	conf_init(&c);
	assert_int_equal(c.reserve.pages_per_cpu, 1024);
	assert_int_equal(c.reserve.global_pages, 1024);
	assert_int_equal(c.reserve.page_size, 4096);
	assert_int_equal(c.reserve.lock_memory, CONF_LOCK_YES);
	assert_int_equal(c.reserve.hugepages, CONF_HUGE_NO);
	assert_true(c.balance.low.percent && c.balance.low.value == 25);
	assert_true(c.balance.target.percent && c.balance.target.value == 50);
	assert_true(c.balance.high.percent && c.balance.high.value == 100);
	assert_int_equal(c.balance.interval_us, 100000);
	assert_int_equal(c.balance.census_interval_us, 1000000);
	assert_int_equal(c.limits.client_min_pages, 16);
	assert_true(c.limits.client_max_pages.percent &&
		    c.limits.client_max_pages.value == 50);
	assert_int_equal(c.limits.protect_pages, 32);
	assert_int_equal(c.limits.max_clients, 256);
	assert_int_equal(c.limits.overflow_pages, 256);
	assert_int_equal(c.limits.drain_interval_us, 1000000);
	assert_string_equal(c.access.attach_group, "rcupool");
	assert_string_equal(c.access.admin_group, "rcupool-admin");
	assert_int_equal(c.access.socket_mode, 0666);
	assert_string_equal(c.daemon.socket, "");
	assert_int_equal(c.n_clients, 0);
	for (i = 0; i < CONF_KEY_COUNT; i++)
		assert_int_equal(c.src[i].file, 0);
	assert_int_equal(conf_validate(&c, 1, &err), 0);
	assert_int_equal(conf_validate(&c, 4096, &err), 0);

	/* A missing main file that was not asked for is fine. */
	snprintf(path, sizeof(path), "%s/nodir/rcupoold.conf", tmpdir);
	assert_int_equal(conf_load(&c, path, false, &err), 0);
	assert_int_equal(c.src[CONF_BALANCE_LOW].file, 0);

	out = print_to_string(&c);
	assert_non_null(
		strstr(out, "[reserve]\npages_per_cpu = 1024 ; default\n"));
	assert_non_null(strstr(out, "low = 25% ; default\n"));
	assert_non_null(strstr(out, "interval = 100ms ; default\n"));
	assert_non_null(strstr(out, "page_size = 4K ; default\n"));
	assert_non_null(strstr(out, "socket_mode = 0666 ; default\n"));
	assert_non_null(strstr(out, "lock_memory = yes ; default\n"));
	assert_non_null(strstr(out, "socket =  ; default\n"));
	free(out);
	conf_free(&c);
}

/* conf/rcupoold.conf with every "#key = value" uncommented gives exactly the
 * defaults, and names every key: the file cannot drift from the code. */
static void test_shipped_conf(void **state)
{
	char src[PATH_MAX], path[PATH_MAX], line[512];
	struct conf_error err = {""};
	struct conf c, def;
	const char *tail;
	FILE *in, *out;
	size_t len;
	int i;

	/* __FILE__ is tests/test_conf.c, relative to the source tree. */
	tail = strstr(__FILE__, "tests/test_conf.c");
	assert_non_null(tail);
	snprintf(src, sizeof(src), "%.*sconf/rcupoold.conf",
		 (int)(tail - __FILE__), __FILE__);
	in = fopen(src, "r");
	assert_non_null(in);
	snprintf(path, sizeof(path), "%s/shipped/rcupoold.conf", tmpdir);
	write_file("shipped/rcupoold.conf", "", path);
	out = fopen(path, "w");
	assert_non_null(out);
	while (fgets(line, sizeof(line), in)) {
		len = strspn(line + 1, "abcdefghijklmnopqrstuvwxyz_");
		if (line[0] == '#' && len &&
		    strncmp(line + 1 + len, " =", 2) == 0)
			fputs(line + 1, out);
		else
			fputs(line, out);
	}
	fclose(in);
	assert_int_equal(fclose(out), 0);

	conf_init(&c);
	conf_init(&def);
	assert_int_equal(conf_load(&c, path, true, &err), 0);
	assert_same_values(&c, &def);
	for (i = 0; i < CONF_KEY_COUNT; i++)
		assert_int_not_equal(c.src[i].file, 0); /* listed in the file */
	assert_int_equal(c.n_clients, 0);
	conf_free(&c);
}

struct error_case {
	const char *text;
	const char *msg; /* after the path */
};

static void test_errors(void **state)
{
	static const struct error_case cases[] = {
		{"[reserve]\npages_per_cpu = 64\n[balanse]\nlow = 1\n",
		 ":3: [balanse]: unknown section"},
		{"[reserve]\n[nosuch]\n", ":2: [nosuch]: unknown section"},
		{"[balance]\nlo = 1\n", ":2: [balance] lo: unknown key"},
		{"[reserve]\npages_per_cpu = lots\n",
		 ":2: [reserve] pages_per_cpu: \"lots\" is not a valid count"},
		{"[balance]\ninterval = 5parsecs\n",
		 ":2: [balance] interval: \"5parsecs\" is not a valid time "
		 "(a number and us, ms, s, min, h or d)"},
		{"[balance]\nlow = 120%\n",
		 ":2: [balance] low: \"120%\" is out of range (0%..100%)"},
		{"[reserve]\npages_per_cpu = 8\n",
		 ":2: [reserve] pages_per_cpu: \"8\" is out of range "
		 "(16..1048576)"},
		{"[balance]\ninterval = 2min\n",
		 ":2: [balance] interval: \"2min\" is out of range "
		 "(1ms..1min)"},
		{"[reserve]\npage_size = 2M\n",
		 ":2: [reserve] page_size: \"2M\" is not supported: only 4K "
		 "pages are supported"},
		{"[reserve]\nlock_memory = maybe\n",
		 ":2: [reserve] lock_memory: \"maybe\" is not one of no, yes, "
		 "required"},
		{"[access]\nsocket_mode = 1777\n",
		 ":2: [access] socket_mode: \"1777\" is out of range "
		 "(0000..0777)"},
		{"[daemon]\nsocket = run/x.sock\n",
		 ":2: [daemon] socket: \"run/x.sock\" is not an absolute path"},
		{"[client a/b]\n", ":1: [client a/b]: \"a/b\" is not a valid "
				   "client name (1..63 characters of A-Z "
				   "a-z 0-9 . _ -)"},
		{"[client]\nmin_pages = 1\n",
		 ":1: [client]: a client section needs a name: [client NAME]"},
		{"[client db]\nmax = 1\n", ":2: [client db] max: unknown key"},
		{"low = 1\n", ":1: low: key outside of any section"},
		/* Syntax errors, and line numbers through comments and blanks.
		 */
		{"[reserve]\npages_per_cpu = 64\nthis is not ini\n",
		 ":3: syntax error"},
		{"# comment\n; comment\n\n[reserve\n", ":4: syntax error"},
		{"[reserve] junk\n", ":1: syntax error"},
		{"\xEF\xBB\xBF# bom\n\n[balance]\n\n  # indented comment\n"
		 "high = x\n",
		 ":6: [balance] high: \"x\" is not a valid count or percent"},
		/* The first error wins, whichever kind it is. */
		{"[balance]\nnot ini\nlo = 1\n", ":2: syntax error"},
		{"[balance]\nlo = 1\nnot ini\n",
		 ":2: [balance] lo: unknown key"},
		/* Multi-line values are rejected, with or without '='. */
		{"[balance]\nlow = 10%\n  20%\n",
		 ":3: [balance]: continuation lines are not supported"},
		{"[balance]\nlow = 10%\n\thigh = 90%\n",
		 ":3: [balance]: continuation lines are not supported"},
		{"[reserve]\npages_per_cpu = 64\n\n# x\n   more\n",
		 ":5: [reserve]: continuation lines are not supported"},
	};
	char path[PATH_MAX], long_line[300];
	struct conf_error err;
	struct conf c, def;
	size_t i;

	conf_init(&def);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		conf_init(&c);
		memset(&err, 0, sizeof(err));
		assert_int_equal(
			load_text("errors.conf", cases[i].text, &c, &err, path),
			-EINVAL);
		expect_msg(&err, path, cases[i].msg);
		/* A failed load changes nothing. */
		assert_same_values(&c, &def);
		assert_null(c.files);
		conf_free(&c);
	}

	/* Lines too long for inih's buffer would be split silently. */
	memset(long_line, 'x', sizeof(long_line));
	memcpy(long_line, "[daemon]\nsocket = /", 19);
	long_line[sizeof(long_line) - 2] = '\n';
	long_line[sizeof(long_line) - 1] = '\0';
	conf_init(&c);
	assert_int_equal(load_text("long.conf", long_line, &c, &err, path),
			 -EINVAL);
	expect_msg(&err, path, ":2: line too long (max 198 characters)");
	conf_free(&c);

	/* An indented key right after its section header is not a
	 * continuation; values are trimmed; ';' after a blank is a comment. */
	conf_init(&c);
	assert_int_equal(load_text("indent.conf",
				   "[balance]\n  low = 10%   \n"
				   "high = 90% ; comment\n",
				   &c, &err, path),
			 0);
	assert_int_equal(c.balance.low.value, 10);
	assert_int_equal(c.balance.high.value, 90);
	assert_int_equal(c.src[CONF_BALANCE_HIGH].line, 3);
	conf_free(&c);
}

static void expect_set(struct conf *c, const char *key, const char *value,
		       int ret, const char *msg)
{
	struct conf_error err = {""};

	assert_int_equal(conf_set(c, key, value, "command line", &err), ret);
	if (msg)
		assert_string_equal(err.msg, msg);
}

static void test_units(void **state)
{
	static const char *const sizes[] = {"4K",  "4k",   "4KiB",
					    "4KB", "4096", "4096B"};
	struct conf c;
	size_t i;

	conf_init(&c);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		expect_set(&c, "reserve.page_size", sizes[i], 0, NULL);
	assert_int_equal(c.reserve.page_size, 4096);
	expect_set(&c, "reserve.page_size", "4Q", -EINVAL,
		   "command line: [reserve] page_size: \"4Q\" is not a valid "
		   "size (a number and B, K, M, G or T)");
	/* The one grammar (proto/units.h): a blank before the unit. */
	expect_set(&c, "reserve.page_size", "4 K", 0, NULL);
	expect_set(&c, "reserve.page_size", "1G", -EINVAL,
		   "command line: [reserve] page_size: \"1G\" is not "
		   "supported: only 4K pages are supported");
	expect_set(&c, "reserve.page_size", "99999999999999999999K", -EINVAL,
		   NULL);

	expect_set(&c, "balance.interval", "250ms", 0, NULL);
	assert_int_equal(c.balance.interval_us, 250000);
	expect_set(&c, "balance.interval", "2", 0, NULL);
	assert_int_equal(c.balance.interval_us, 2000000);
	expect_set(&c, "balance.interval", "1min", 0, NULL);
	assert_int_equal(c.balance.interval_us, 60000000);
	expect_set(&c, "balance.interval", "1000us", 0, NULL);
	assert_int_equal(c.balance.interval_us, 1000);
	expect_set(&c, "limits.drain_interval", "1h", 0, NULL);
	assert_int_equal(c.limits.drain_interval_us, 3600000000ULL);
	expect_set(&c, "balance.census_interval", "0", 0, NULL);
	assert_int_equal(c.balance.census_interval_us, 0);
	expect_set(
		&c, "balance.interval", "999us", -EINVAL,
		"command line: [balance] interval: \"999us\" is out of range "
		"(1ms..1min)");
	expect_set(&c, "balance.interval", "-5", -EINVAL,
		   "command line: [balance] interval: \"-5\" is not a valid "
		   "time (a number and us, ms, s, min, h or d)");
	expect_set(
		&c, "balance.interval", "", -EINVAL,
		"command line: [balance] interval: \"\" is not a valid time "
		"(a number and us, ms, s, min, h or d)");
	/* The one grammar: fractions, a blank before the unit, m and d. */
	expect_set(&c, "balance.interval", "1.5s", 0, NULL);
	assert_int_equal(c.balance.interval_us, 1500000);
	expect_set(&c, "balance.interval", "5 ms", 0, NULL);
	assert_int_equal(c.balance.interval_us, 5000);
	expect_set(&c, "balance.interval", "1m", 0, NULL);
	assert_int_equal(c.balance.interval_us, 60000000);
	expect_set(&c, "limits.drain_interval", "1d", -EINVAL,
		   "command line: [limits] drain_interval: \"1d\" is out of "
		   "range (1ms..1h)");
	expect_set(&c, "balance.interval", "1000us", 0, NULL);
	expect_set(&c, "balance.interval", "ms", -EINVAL, NULL);
	expect_set(
		&c, "balance.interval", "99999999999999999999ms", -EINVAL,
		"command line: [balance] interval: \"99999999999999999999ms\" "
		"is out of range (1ms..1min)");
	expect_set(&c, "balance.interval", "18446744073709551615h", -EINVAL,
		   NULL);
	assert_int_equal(c.balance.interval_us, 1000);

	expect_set(&c, "limits.max_clients", "4096", 0, NULL);
	expect_set(&c, "limits.max_clients", "0", -EINVAL,
		   "command line: [limits] max_clients: \"0\" is out of range "
		   "(1..4096)");
	expect_set(&c, "limits.max_clients", "+5", -EINVAL,
		   "command line: [limits] max_clients: \"+5\" is not a valid "
		   "count");
	expect_set(&c, "limits.max_clients", "-5", -EINVAL, NULL);
	expect_set(&c, "limits.max_clients", "5x", -EINVAL, NULL);
	expect_set(&c, "limits.max_clients", "5%", -EINVAL, NULL);
	expect_set(&c, "limits.client_min_pages", "4294967295", 0, NULL);
	expect_set(&c, "limits.client_min_pages", "4294967296", -EINVAL,
		   "command line: [limits] client_min_pages: \"4294967296\" is "
		   "out of range (0..4294967295)");
	expect_set(&c, "balance.low", "100%", 0, NULL);
	expect_set(&c, "balance.low", "0", 0, NULL);
	assert_false(c.balance.low.percent);
	expect_set(&c, "balance.low", "10%%", -EINVAL,
		   "command line: [balance] low: \"10%%\" is not a valid count "
		   "or percent");

	expect_set(&c, "reserve.lock_memory", "REQUIRED", 0, NULL);
	assert_int_equal(c.reserve.lock_memory, CONF_LOCK_REQUIRED);
	expect_set(&c, "reserve.hugepages", "Auto", 0, NULL);
	assert_int_equal(c.reserve.hugepages, CONF_HUGE_AUTO);
	expect_set(&c, "reserve.hugepages", "required", -EINVAL,
		   "command line: [reserve] hugepages: \"required\" is not one "
		   "of no, auto, yes");

	expect_set(&c, "access.socket_mode", "640", 0, NULL);
	assert_int_equal(c.access.socket_mode, 0640);
	expect_set(&c, "access.socket_mode", "0660", 0, NULL);
	assert_int_equal(c.access.socket_mode, 0660);
	expect_set(
		&c, "access.socket_mode", "0678", -EINVAL,
		"command line: [access] socket_mode: \"0678\" is not a valid "
		"octal mode");
	expect_set(&c, "access.admin_group", "", 0, NULL);
	assert_string_equal(c.access.admin_group, "");
	expect_set(
		&c, "access.attach_group", "a b", -EINVAL,
		"command line: [access] attach_group: \"a b\" is not a valid "
		"group name");
	expect_set(&c, "daemon.socket", "/run/x/rcupoold.sock", 0, NULL);
	assert_string_equal(c.daemon.socket, "/run/x/rcupoold.sock");
	conf_free(&c);
}

static void test_dropins(void **state)
{
	char main_path[PATH_MAX], path[PATH_MAX], exp[PATH_MAX + 64];
	struct conf_error err = {""};
	struct conf c;

	write_file(
		"d/rcupoold.conf",
		"[balance]\nlow = 10%\nhigh = 90%\n[limits]\nmax_clients = 8\n",
		main_path);
	write_file("d/rcupoold.conf.d/20-b.conf", "[balance]\nlow = 30%\n",
		   path);
	write_file("d/rcupoold.conf.d/10-a.conf",
		   "[balance]\nlow = 20%\n\ntarget = 60%\n", path);
	write_file("d/rcupoold.conf.d/30-c.conf.bak", "[balance]\nlow = 1%\n",
		   path);
	write_file("d/rcupoold.conf.d/README", "not ini at all\n", path);
	write_file("d/rcupoold.conf.d/.hidden.conf", "[balance]\nlow = 2%\n",
		   path);
	write_file("d/rcupoold.conf.d/40-dir.conf/x", "", path);
	/* strcmp order: upper case sorts before lower case. */
	write_file("d/rcupoold.conf.d/Z.conf", "[limits]\nmax_clients = 9\n",
		   path);
	write_file("d/rcupoold.conf.d/a.conf", "[limits]\nmax_clients = 10\n",
		   path);

	conf_init(&c);
	assert_int_equal(conf_load(&c, main_path, true, &err), 0);
	assert_int_equal(c.balance.low.value, 30);
	assert_int_equal(c.balance.target.value, 60);
	assert_int_equal(c.balance.high.value, 90);
	assert_int_equal(c.limits.max_clients, 10);
	conf_src_format(&c, c.src[CONF_BALANCE_LOW], path, sizeof(path));
	snprintf(exp, sizeof(exp), "%s/d/rcupoold.conf.d/20-b.conf:2", tmpdir);
	assert_string_equal(path, exp);
	conf_src_format(&c, c.src[CONF_BALANCE_TARGET], path, sizeof(path));
	snprintf(exp, sizeof(exp), "%s/d/rcupoold.conf.d/10-a.conf:4", tmpdir);
	assert_string_equal(path, exp);
	conf_src_format(&c, c.src[CONF_BALANCE_HIGH], path, sizeof(path));
	snprintf(exp, sizeof(exp), "%s:3", main_path);
	assert_string_equal(path, exp);
	assert_int_equal(conf_validate(&c, 2, &err), 0);
	conf_free(&c);

	/* Drop-ins apply even when the default main file is missing. */
	unlink(main_path);
	conf_init(&c);
	assert_int_equal(conf_load(&c, main_path, false, &err), 0);
	assert_int_equal(c.balance.low.value, 30);
	assert_int_equal(c.balance.high.value, 100);
	conf_free(&c);

	/* An error in a drop-in names the drop-in and rolls everything back. */
	write_file("d/rcupoold.conf", "[balance]\nlow = 10%\n", main_path);
	write_file("d/rcupoold.conf.d/50-bad.conf", "[balance]\nhigh = 1x\n",
		   path);
	conf_init(&c);
	assert_int_equal(conf_load(&c, main_path, true, &err), -EINVAL);
	expect_msg(
		&err, path,
		":2: [balance] high: \"1x\" is not a valid count or percent");
	assert_int_equal(c.balance.low.value, 25);
	conf_free(&c);
}

static void test_missing_file(void **state)
{
	struct conf_error err = {""};
	char path[PATH_MAX];
	struct conf c;

	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	conf_init(&c);
	assert_int_equal(conf_load(&c, path, true, &err), -ENOENT);
	expect_msg(&err, path, ": cannot open: No such file or directory");
	assert_int_equal(conf_load(&c, path, false, &err), 0);
	/* A directory given as the main file. */
	assert_int_equal(conf_load(&c, tmpdir, true, &err), -EINVAL);
	expect_msg(&err, tmpdir,
		   ": is a directory: the configuration must be a regular file "
		   "(or /dev/null for none)");
	conf_free(&c);
}

/* issue 10 item 8: what a configuration file may be, and bounds. */
static void test_file_edges(void **state)
{
	struct conf_error err = {""};
	char path[PATH_MAX], *big;
	struct conf c;
	FILE *f;

	/* A FIFO: an error at once, not a wait for a writer. */
	snprintf(path, sizeof(path), "%s/fifo.conf", tmpdir);
	assert_int_equal(mkfifo(path, 0600), 0);
	conf_init(&c);
	assert_int_equal(conf_load(&c, path, true, &err), -EINVAL);
	expect_msg(&err, path,
		   ": is a FIFO: the configuration must be a regular file "
		   "(or /dev/null for none)");
	/* A device other than /dev/null (/dev/zero: endless NULs). */
	assert_int_equal(conf_load(&c, "/dev/zero", true, &err), -EINVAL);
	assert_string_equal(err.msg,
			    "/dev/zero: is a character device: the "
			    "configuration must be a regular file (or "
			    "/dev/null for none)");
	/* /dev/null: an empty configuration, the defaults. */
	assert_int_equal(conf_load(&c, "/dev/null", true, &err), 0);
	assert_int_equal(c.reserve.pages_per_cpu, 1024);
	conf_free(&c);

	/* A NUL byte ends nothing silently: "16\0junk" is not 16. */
	snprintf(path, sizeof(path), "%s/nul.conf", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fwrite("[limits]\nclient_min_pages = 16\0junk\n", 1, 37, f);
	fclose(f);
	conf_init(&c);
	assert_int_equal(conf_load(&c, path, true, &err), -EINVAL);
	expect_msg(&err, path, ":2: NUL byte in the line");
	assert_int_equal(c.limits.client_min_pages, 16); /* the default */
	conf_free(&c);

	/* 8 MiB without a newline: an error at line 1, memory bounded (the
	 * reader stops at inih's line length). */
	big = malloc(8 << 20);
	assert_non_null(big);
	memset(big, 'x', 8 << 20);
	snprintf(path, sizeof(path), "%s/big.conf", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(big, 1, 8 << 20, f), 8 << 20);
	fclose(f);
	free(big);
	conf_init(&c);
	assert_int_equal(conf_load(&c, path, true, &err), -EINVAL);
	expect_msg(&err, path, ":1: line too long (max 198 characters)");
	conf_free(&c);
}

struct warnings {
	int n;
	char last[512];
};

static void collect(void *ud, const char *msg)
{
	struct warnings *w = ud;

	w->n++;
	snprintf(w->last, sizeof(w->last), "%s", msg);
}

static void test_duplicate_key_warns(void **state)
{
	struct conf_error err = {""};
	struct warnings w = {0};
	char path[PATH_MAX], dir[PATH_MAX];
	struct conf c;

	conf_init(&c);
	c.warn = collect;
	c.warn_ud = &w;
	assert_int_equal(load_text("dup/rcupoold.conf",
				   "[balance]\nlow = 10\ntarget = 20\n"
				   "low = 12\n\n[client db]\nmax_pages = 5\n"
				   "max_pages = 6\n",
				   &c, &err, path),
			 0);
	assert_int_equal(w.n, 2);
	expect_msg((struct conf_error *)&w.last, path,
		   ":8: [client db] max_pages: set again (first at line 7); "
		   "the value of line 8 is used");
	assert_int_equal(c.balance.low.value, 12);
	assert_int_equal(c.src[CONF_BALANCE_LOW].line, 4);
	assert_int_equal(c.clients[0].max_pages.value, 6);

	/* The same key in the main file and a drop-in is layering, not a
	 * duplicate; nor is rcupoolctl set over a file. */
	w.n = 0;
	snprintf(dir, sizeof(dir), "dup/%s/10-low.conf", CONF_DROPIN_DIR);
	write_file(dir, "[balance]\nlow = 11\n", path);
	snprintf(path, sizeof(path), "%s/dup/rcupoold.conf", tmpdir);
	conf_free(&c);
	c.warn = collect;
	c.warn_ud = &w;
	assert_int_equal(conf_load(&c, path, true, &err), 0);
	assert_int_equal(w.n, 2); /* the two of the main file only */
	assert_int_equal(c.balance.low.value, 11);
	assert_int_equal(conf_set(&c, "balance.low", "9", "rcupoolctl set",
				  &err),
			 0);
	assert_int_equal(w.n, 2);
	conf_free(&c);
}

/* The drop-in editor of set --persist and of the runtime layer. */
static void test_dropin_edit(void **state)
{
	static const char text[] = "# operator's note\n"
				   "[balance]\n"
				   "low = 10 ; why\n"
				   "high = 90\n"
				   "low = 11\n"
				   "\n"
				   "[client  db]\n"
				   "max_pages = 5";
	const struct dropin_change ch[] = {
		{"balance.low", "12"},
		{"balance.high", NULL},
		{"balance.target", "40"},
		{"client.db.min_pages", "1"},
		{"limits.client_max_pages", "70"},
	};
	char why[256], path[PATH_MAX], *out;
	size_t nkeys;
	struct stat st;

	assert_int_equal(dropin_edit("x.conf", text, ch, 5, "# header\n", &out,
				     &nkeys, why, sizeof(why)),
			 0);
	assert_string_equal(out, "# operator's note\n"
				 "[balance]\n"
				 "low = 12\n"
				 "target = 40\n"
				 "\n"
				 "[client  db]\n"
				 "max_pages = 5\n"
				 "min_pages = 1\n"
				 "\n"
				 "[limits]\n"
				 "client_max_pages = 70\n");
	assert_int_equal(nkeys, 5);
	/* Idempotent: the same change again gives the same text. */
	{
		char *again;

		assert_int_equal(dropin_edit("x.conf", out, ch, 5, NULL, &again,
					     &nkeys, why, sizeof(why)),
				 0);
		assert_string_equal(again, out);
		free(again);
	}
	free(out);
	/* A new file starts with the header. */
	assert_int_equal(dropin_edit("x.conf", "", ch, 1, "# header\n", &out,
				     &nkeys, why, sizeof(why)),
			 0);
	assert_string_equal(out, "# header\n\n[balance]\nlow = 12\n");
	free(out);
	/* A text inih refuses is not edited. */
	assert_int_equal(dropin_edit("x.conf", "[balance\nlow=1\n", ch, 1, NULL,
				     &out, &nkeys, why, sizeof(why)),
			 -EINVAL);
	assert_string_equal(why, "x.conf:1: syntax error (fix or remove the "
				 "file)");

	/* Writing creates missing directories; no key left removes it. */
	snprintf(path, sizeof(path), "%s/a/b/c/rcupoold.conf.d/90-x.conf",
		 tmpdir);
	assert_int_equal(dropin_write(path, "[balance]\nlow = 1\n", false,
				      0644, why, sizeof(why)),
			 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(dropin_read(path, &out, why, sizeof(why)), 0);
	assert_string_equal(out, "[balance]\nlow = 1\n");
	free(out);
	assert_int_equal(dropin_write(path, "", true, 0644, why, sizeof(why)),
			 0);
	assert_int_equal(stat(path, &st), -1);
}

static void test_too_many_clients(void **state)
{
	struct conf_error err = {""};
	char key[64];
	struct conf c;
	int i, r = 0;

	conf_init(&c);
	for (i = 0; i <= CONF_CLIENTS_MAX && r == 0; i++) {
		snprintf(key, sizeof(key), "client.c%d.max_pages", i);
		r = conf_set(&c, key, "5", "command line", &err);
	}
	assert_int_equal(r, -EINVAL);
	assert_int_equal(i, CONF_CLIENTS_MAX + 1);
	assert_non_null(strstr(err.msg, "too many client sections (max 4096)"));
	conf_free(&c);
}

static void test_set_overrides(void **state)
{
	struct conf_error err = {""};
	char path[PATH_MAX];
	struct conf c;

	conf_init(&c);
	assert_int_equal(load_text("set.conf",
				   "[balance]\nlow = 10%\n"
				   "high = 90%\n",
				   &c, &err, path),
			 0);
	assert_int_equal(
		conf_set_option(&c, "balance.low=20%", "command line", &err),
		0);
	assert_int_equal(c.balance.low.value, 20);
	assert_int_equal(
		conf_set(&c, "balance.high", "80%", "rcupoolctl set", &err), 0);
	assert_int_equal(c.balance.high.value, 80);

	/* Failures leave the value and its source alone. */
	assert_int_equal(
		conf_set(&c, "balance.low", "120%", "command line", &err),
		-EINVAL);
	assert_string_equal(err.msg, "command line: [balance] low: \"120%\" is "
				     "out of range (0%..100%)");
	assert_int_equal(
		conf_set(&c, "balance.high", "x", "rcupoolctl set", &err),
		-EINVAL);
	assert_string_equal(err.msg, "rcupoolctl set: [balance] high: \"x\" is "
				     "not a valid count or percent");
	assert_int_equal(c.balance.low.value, 20);
	assert_int_equal(c.balance.high.value, 80);

	assert_int_equal(conf_set(&c, "nosuch.key", "1", "command line", &err),
			 -EINVAL);
	assert_string_equal(err.msg, "command line: [nosuch]: unknown section");
	assert_int_equal(
		conf_set(&c, "balance.nosuch", "1", "command line", &err),
		-EINVAL);
	assert_string_equal(err.msg,
			    "command line: [balance] nosuch: unknown key");
	assert_int_equal(conf_set(&c, "balance", "1", "command line", &err),
			 -EINVAL);
	assert_string_equal(err.msg, "command line: balance: expected "
				     "section.key or client.NAME.key");
	assert_int_equal(
		conf_set(&c, "client.max_pages", "1", "command line", &err),
		-EINVAL);
	assert_int_equal(
		conf_set_option(&c, "balance.low", "command line", &err),
		-EINVAL);
	assert_string_equal(err.msg, "command line: balance.low: expected "
				     "section.key=value");
	assert_int_equal(conf_validate(&c, 2, &err), 0);

	/* A reload from files keeps what the caller applies afterwards. */
	conf_free(&c);
}

static void test_validate(void **state)
{
	char main_path[PATH_MAX], drop[PATH_MAX];
	struct conf_error err = {""};
	struct conf c;

	/* low set above the default target: names low. */
	conf_init(&c);
	assert_int_equal(load_text("v1.conf", "[balance]\nlow = 60%\n", &c,
				   &err, main_path),
			 0);
	assert_int_equal(conf_validate(&c, 2, &err), -EINVAL);
	expect_msg(&err, main_path,
		   ":2: [balance] low: low (60% = 614) is greater than target "
		   "(50% = 512)");
	conf_free(&c);

	/* The key set last among the conflicting ones is named. */
	conf_init(&c);
	assert_int_equal(load_text("v2.conf",
				   "[balance]\nlow = 300\ntarget = 250\n"
				   "high = 400\n",
				   &c, &err, main_path),
			 0);
	assert_int_equal(conf_validate(&c, 2, &err), -EINVAL);
	expect_msg(&err, main_path,
		   ":3: [balance] target: low (300) is greater than target "
		   "(250)");
	/* ... and a later command line wins the blame. */
	expect_set(&c, "balance.low", "280", 0, NULL);
	assert_int_equal(conf_validate(&c, 2, &err), -EINVAL);
	assert_string_equal(err.msg, "command line: [balance] low: low (280) "
				     "is greater than target (250)");
	expect_set(&c, "balance.low", "10%", 0, NULL);
	assert_int_equal(conf_validate(&c, 2, &err), 0);
	conf_free(&c);

	/* high lowered in a drop-in below low and target. */
	write_file("v3/rcupoold.conf", "[balance]\nlow = 400\ntarget = 500\n",
		   main_path);
	write_file("v3/rcupoold.conf.d/50-high.conf",
		   "# lower the ceiling\n[balance]\nhigh = 30%\n", drop);
	conf_init(&c);
	assert_int_equal(conf_load(&c, main_path, true, &err), 0);
	assert_int_equal(conf_validate(&c, 2, &err), -EINVAL);
	expect_msg(&err, drop,
		   ":3: [balance] high: target (500) is greater than high "
		   "(30% = 307)");
	conf_free(&c);

	/* high above pages_per_cpu; protect_pages above pages_per_cpu. */
	conf_init(&c);
	expect_set(&c, "balance.high", "2000", 0, NULL);
	assert_int_equal(conf_validate(&c, 2, &err), -EINVAL);
	assert_string_equal(err.msg, "command line: [balance] high: high "
				     "(2000) is greater than pages_per_cpu "
				     "(1024)");
	conf_free(&c);
	conf_init(&c);
	expect_set(&c, "reserve.pages_per_cpu", "16", 0, NULL);
	assert_int_equal(conf_validate(&c, 2, &err), -EINVAL);
	assert_string_equal(err.msg, "command line: [reserve] pages_per_cpu: "
				     "protect_pages (32) is greater than "
				     "pages_per_cpu (16)");
	conf_free(&c);

	/* client_min_pages above client_max_pages, a percent of the reserve:
	 * 1% of 1024 * 1 + 1024 is 20; of 1024 * 8 + 1024, 92. */
	conf_init(&c);
	expect_set(&c, "limits.client_max_pages", "1%", 0, NULL);
	expect_set(&c, "limits.client_min_pages", "50", 0, NULL);
	assert_int_equal(conf_validate(&c, 8, &err), 0);
	assert_int_equal(conf_validate(&c, 1, &err), -EINVAL);
	assert_string_equal(err.msg, "command line: [limits] client_min_pages: "
				     "client_min_pages (50) is greater than "
				     "client_max_pages (1% = 20)");
	conf_free(&c);

	/* Per client: own min > own max; own min > [limits] max. */
	conf_init(&c);
	assert_int_equal(
		load_text("v4.conf",
			  "[client db]\nmax_pages = 50\nmin_pages = 100\n", &c,
			  &err, main_path),
		0);
	assert_int_equal(conf_validate(&c, 2, &err), -EINVAL);
	expect_msg(&err, main_path,
		   ":3: [client db] min_pages: min_pages (100) is greater than "
		   "max_pages (50)");
	conf_free(&c);
	conf_init(&c);
	assert_int_equal(load_text("v5.conf", "[client db]\nmin_pages = 60%\n",
				   &c, &err, main_path),
			 0);
	assert_int_equal(conf_validate(&c, 2, &err), -EINVAL);
	expect_msg(
		&err, main_path,
		":2: [client db] min_pages: min_pages (60% = 1843) is greater "
		"than [limits] client_max_pages (50% = 1536)");
	conf_free(&c);
}

static void test_print(void **state)
{
	char main_path[PATH_MAX], drop[PATH_MAX], exp[PATH_MAX + 64];
	struct conf_error err = {""};
	struct conf c, back;
	char *out;
	FILE *f;

	write_file("p/rcupoold.conf",
		   "[balance]\nlow = 10%\ninterval = 1500ms\n[access]\n"
		   "admin_group =\n[client db]\nmin_pages = 64\n",
		   main_path);
	write_file("p/rcupoold.conf.d/10.conf", "[balance]\nlow = 30%\n", drop);
	conf_init(&c);
	assert_int_equal(conf_load(&c, main_path, true, &err), 0);
	expect_set(&c, "balance.high", "90%", 0, NULL);
	expect_set(&c, "client.db.max_pages", "10%", 0, NULL);
	out = print_to_string(&c);

	snprintf(exp, sizeof(exp), "low = 30%% ; %s:2\n", drop);
	assert_non_null(strstr(out, exp));
	snprintf(exp, sizeof(exp), "interval = 1500ms ; %s:3\n", main_path);
	assert_non_null(strstr(out, exp));
	snprintf(exp, sizeof(exp), "admin_group =  ; %s:5\n", main_path);
	assert_non_null(strstr(out, exp));
	assert_non_null(strstr(out, "high = 90% ; command line\n"));
	assert_non_null(strstr(out, "target = 50% ; default\n"));
	snprintf(exp, sizeof(exp),
		 "[client db]\nmin_pages = 64 ; %s:7\n"
		 "max_pages = 10%% ; command line\n",
		 main_path);
	assert_non_null(strstr(out, exp));

	/* The output parses back to the same values. */
	snprintf(exp, sizeof(exp), "%s/printed.conf", tmpdir);
	f = fopen(exp, "w");
	assert_non_null(f);
	fputs(out, f);
	fclose(f);
	conf_init(&back);
	assert_int_equal(conf_load(&back, exp, true, &err), 0);
	assert_same_values(&back, &c);
	free(out);
	conf_free(&back);
	conf_free(&c);
}

static void test_clients(void **state)
{
	char path[PATH_MAX], text[512], name[80];
	struct conf_error err = {""};
	const struct conf_client *cl;
	struct conf c, copy;

	/* 63 characters: longer than inih's own section buffer. */
	memset(name, 'n', 63);
	name[63] = '\0';
	snprintf(text, sizeof(text),
		 "[client db]\nmin_pages = 10\nmax_pages = 100\n"
		 "[client web.front-1]\nmax_pages = 5%%\n"
		 "[client  db ]\nmax_pages = 200\n[client %s]\nmin_pages = 1\n",
		 name);
	conf_init(&c);
	assert_int_equal(load_text("clients.conf", text, &c, &err, path), 0);
	assert_int_equal(c.n_clients, 3);
	cl = conf_client_find(&c, "db");
	assert_non_null(cl);
	assert_true(cl->has_min && cl->has_max);
	assert_int_equal(cl->min_pages.value, 10);
	assert_int_equal(cl->max_pages.value, 200); /* merged, later wins */
	assert_int_equal(cl->max_src.line, 7);
	cl = conf_client_find(&c, "web.front-1");
	assert_non_null(cl);
	assert_false(cl->has_min);
	assert_true(cl->max_pages.percent && cl->max_pages.value == 5);
	assert_non_null(conf_client_find(&c, name));
	assert_null(conf_client_find(&c, "nnn"));
	assert_int_equal(conf_validate(&c, 2, &err), 0);

	/* From the command line; NAME may hold dots. */
	expect_set(&c, "client.my.app.min_pages", "3", 0, NULL);
	cl = conf_client_find(&c, "my.app");
	assert_non_null(cl);
	assert_int_equal(cl->min_pages.value, 3);
	/* A bad value adds no client. */
	expect_set(&c, "client.new.min_pages", "x", -EINVAL,
		   "command line: [client new] min_pages: \"x\" is not a valid "
		   "count or percent");
	expect_set(&c, "client.new.min", "1", -EINVAL,
		   "command line: [client new] min: unknown key");
	expect_set(&c, "client.a b.min_pages", "1", -EINVAL,
		   "command line: [client a b]: \"a b\" is not a valid client "
		   "name (1..63 characters of A-Z a-z 0-9 . _ -)");
	assert_null(conf_client_find(&c, "new"));
	assert_int_equal(c.n_clients, 4);

	/* Copies are deep. */
	assert_int_equal(conf_copy(&copy, &c), 0);
	expect_set(&copy, "client.db.min_pages", "11", 0, NULL);
	assert_int_equal(conf_client_find(&c, "db")->min_pages.value, 10);
	assert_int_equal(conf_client_find(&copy, "db")->min_pages.value, 11);
	conf_free(&copy);

	/* 64 characters are too many. */
	snprintf(text, sizeof(text), "[client %sn]\n", name);
	assert_int_equal(load_text("client64.conf", text, &c, &err, path),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "is not a valid client name"));
	assert_int_equal(c.n_clients, 4);
	conf_free(&c);
}

/* A failed load frees everything it allocated and leaves the old config in
 * place (the ASan build checks the leaks). */
static void test_failed_load(void **state)
{
	struct conf_error err = {""};
	char path[PATH_MAX];
	struct conf c;

	conf_init(&c);
	assert_int_equal(load_text("ok.conf",
				   "[client a]\nmin_pages = 1\n[balance]\n"
				   "low = 5%\n",
				   &c, &err, path),
			 0);
	expect_set(&c, "limits.max_clients", "7", 0, NULL);
	assert_int_equal(c.n_clients, 1);
	assert_int_equal(load_text("bad.conf",
				   "[client b]\nmin_pages = 2\n[client c]\n"
				   "max_pages = 3\n[balance]\nlow = 6%\n"
				   "bogus = 1\n",
				   &c, &err, path),
			 -EINVAL);
	assert_int_equal(c.n_clients, 1);
	assert_string_equal(c.clients[0].name, "a");
	assert_int_equal(c.balance.low.value, 5);
	assert_int_equal(c.limits.max_clients, 7);
	assert_int_equal(c.n_files, 3); /* default, ok.conf, command line */
	/* And a good reload replaces it. */
	assert_int_equal(load_text("ok2.conf", "[client d]\nmax_pages = 9\n",
				   &c, &err, path),
			 0);
	assert_int_equal(c.n_clients, 2);
	conf_free(&c);
	assert_null(c.clients);
	assert_null(c.files);
}

static void test_resolve(void **state)
{
	struct conf c;

	assert_int_equal(conf_resolve((struct conf_count){25, true}, 1024),
			 256);
	assert_int_equal(conf_resolve((struct conf_count){33, true}, 100), 33);
	assert_int_equal(conf_resolve((struct conf_count){60, true}, 1024),
			 614);
	assert_int_equal(conf_resolve((struct conf_count){1, true}, 16), 1);
	assert_int_equal(conf_resolve((struct conf_count){0, true}, 16), 0);
	assert_int_equal(conf_resolve((struct conf_count){50, true}, 0), 0);
	assert_int_equal(conf_resolve((struct conf_count){77, false}, 16), 77);
	conf_init(&c);
	assert_int_equal(conf_reserve_pages(&c, 4), 5 * 1024);
	conf_free(&c);
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

static int setup(void **state)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_shipped_conf),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_dropins),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_file_edges),
		cmocka_unit_test(test_duplicate_key_warns),
		cmocka_unit_test(test_too_many_clients),
		cmocka_unit_test(test_dropin_edit),
		cmocka_unit_test(test_set_overrides),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_print),
		cmocka_unit_test(test_clients),
		cmocka_unit_test(test_failed_load),
		cmocka_unit_test(test_resolve),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
