/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef RCUPOOL_CONF_H
#define RCUPOOL_CONF_H

/*
 * rcupoold configuration (DESIGN.md section 8).
 *
 * Sources, in order: built-in defaults (conf_init), the main file and the
 * drop-ins beside it (conf_load), then command-line "-o section.key=value"
 * options and live "rcupoolctl set" settings (conf_set, conf_set_option).
 * Consistency between keys is checked once every source is applied
 * (conf_validate).
 *
 * Every function returns 0 or -errno; content errors are -EINVAL.  Where a
 * user needs a reason, it is written to a struct conf_error as
 *   FILE:LINE: [section] key: what is wrong
 * where FILE:LINE is the source label ("command line", "rcupoolctl set")
 * for values that did not come from a file.  Nothing here prints (except
 * conf_print), logs or exits.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONF_DEFAULT_PATH RCUPOOL_SYSCONFDIR "/rcupool/rcupoold.conf"
#define CONF_DROPIN_DIR	  "rcupoold.conf.d"
/* The drop-in "rcupoolctl set --persist" writes, in CONF_DROPIN_DIR beside
 * the main file; its values' sources read "persist PATH:LINE". */
#define CONF_PERSIST_FILE "90-rcupoolctl.conf"
/* The drop-in "rcupoolctl set" (runtime) makes the daemon write, in
 * CONF_DROPIN_DIR of its runtime directory; sources "runtime PATH:LINE".
 * A reserved name: conf_load skips it among the configuration's drop-ins
 * (a daemon run by hand may have its socket beside its configuration). */
#define CONF_RUNTIME_FILE "rcupoolctl-runtime.conf"

#define CONF_CLIENT_NAME_MAX 63
#define CONF_CLIENTS_MAX     4096 /* [client NAME] sections, all sources */
#define CONF_GROUP_MAX	     255
#define CONF_SOCKET_MAX	     107 /* sizeof(sun_path) - 1 */

struct conf_error {
	char msg[512];
};

/* Where a value came from: file 0 is the built-in default. */
struct conf_src {
	uint32_t file; /* index into conf.files[]; 0 = default */
	uint32_t line; /* 0 for a source label such as "command line" */
	uint32_t seq;  /* order of application; 0 = default */
};

/* A page count, or a percent of some whole (see conf_resolve). */
struct conf_count {
	uint32_t value; /* the count, or the percent (0..100) when percent */
	bool percent;
};

enum conf_lock { CONF_LOCK_NO, CONF_LOCK_YES, CONF_LOCK_REQUIRED };
enum conf_huge { CONF_HUGE_NO, CONF_HUGE_AUTO, CONF_HUGE_YES };

/* One value per key of the fixed sections; indexes conf.src[]. */
enum conf_key {
	CONF_RESERVE_PAGES_PER_CPU,
	CONF_RESERVE_GLOBAL_PAGES,
	CONF_RESERVE_PAGE_SIZE,
	CONF_RESERVE_LOCK_MEMORY,
	CONF_RESERVE_HUGEPAGES,
	CONF_RESERVE_CHUNK_PAGES,
	CONF_BALANCE_LOW,
	CONF_BALANCE_TARGET,
	CONF_BALANCE_HIGH,
	CONF_BALANCE_INTERVAL,
	CONF_BALANCE_CENSUS_INTERVAL,
	CONF_LIMITS_CLIENT_MIN_PAGES,
	CONF_LIMITS_CLIENT_MAX_PAGES,
	CONF_LIMITS_PROTECT_PAGES,
	CONF_LIMITS_MAX_CLIENTS,
	CONF_LIMITS_OVERFLOW_PAGES,
	CONF_LIMITS_DRAIN_INTERVAL,
	CONF_LIMITS_RETURN_RATE,
	CONF_LIMITS_RECLAIM_MIN_GAP,
	CONF_ACCESS_ATTACH_GROUP,
	CONF_ACCESS_ADMIN_GROUP,
	CONF_ACCESS_SOCKET_MODE,
	CONF_ACCESS_IDLE_TIMEOUT,
	CONF_ACCESS_MAX_CONNECTIONS_PER_UID,
	CONF_DAEMON_SOCKET,
	CONF_KEY_COUNT
};

/* [client NAME]: per-client limits; unset ones fall back to [limits]. */
struct conf_client {
	char name[CONF_CLIENT_NAME_MAX + 1];
	struct conf_count min_pages, max_pages; /* or percents of the reserve */
	bool has_min, has_max;
	struct conf_src min_src, max_src;
};

struct conf {
	struct {
		uint32_t pages_per_cpu;
		uint32_t global_pages;
		uint32_t page_size; /* bytes */
		enum conf_lock lock_memory;
		enum conf_huge hugepages;
		uint32_t chunk_pages; /* pages per lent chunk; 0 = auto */
	} reserve;
	struct {
		/* counts, or percents of reserve.pages_per_cpu */
		struct conf_count low, target, high;
		uint64_t interval_us;
		uint64_t census_interval_us; /* 0 = off */
	} balance;
	struct {
		uint32_t client_min_pages;
		struct conf_count
			client_max_pages; /* or percent of the reserve */
		uint32_t protect_pages;	  /* per CPU */
		uint32_t max_clients;
		uint32_t overflow_pages;
		uint64_t drain_interval_us;
		uint32_t return_rate; /* chunks a client may give back per s */
		uint64_t reclaim_min_gap_us; /* between a client's grace periods */
	} limits;
	struct {
		char attach_group[CONF_GROUP_MAX + 1]; /* "" = anyone */
		char admin_group[CONF_GROUP_MAX + 1];  /* "" = root only */
		uint32_t socket_mode;
		uint64_t idle_timeout_us; /* an unattached connection's life */
		uint32_t max_connections_per_uid; /* unattached, per uid */
	} access;
	struct {
		char socket[CONF_SOCKET_MAX + 1]; /* "" = the standard rule */
	} daemon;

	struct conf_client *clients; /* in order of first appearance */
	size_t n_clients;

	struct conf_src src[CONF_KEY_COUNT];

	/* Warnings (a key set twice in one file), one message each as
	 * "FILE:LINE: [section] key: ..."; NULL: none.  Set by the caller
	 * after conf_init; conf_copy copies it, conf_free clears it. */
	void (*warn)(void *ud, const char *msg);
	void *warn_ud;

	char **files; /* source names; files[0] is NULL (default) */
	size_t n_files;
	uint32_t seq; /* last conf_src.seq handed out */
};

/* Fill *c with the built-in defaults.  Owns no memory until a conf_set or
 * conf_load; always pair with conf_free. */
void conf_init(struct conf *c);

/* Release what *c owns and leave it at the defaults (conf_init). */
void conf_free(struct conf *c);

/* Deep copy; *dst must not hold memory (fresh, or conf_free'd).  On -ENOMEM
 * *dst is left at the defaults. */
int conf_copy(struct conf *dst, const struct conf *src);

/*
 * Apply the main file and then CONF_DROPIN_DIR/ *.conf beside it, in strcmp
 * name order (other names are ignored).  main_path NULL means
 * CONF_DEFAULT_PATH.  A missing main file is an error only when
 * explicit_path.  Every file must be a regular file (a FIFO, a device or a
 * directory is an error; /dev/null reads as an empty file); lines are read
 * with a bound (longer lines and NUL bytes are errors naming FILE:LINE), so
 * memory stays bounded whatever the input.  A key set twice in one file
 * is a warning (c->warn) naming both lines; the later value wins.  Stops at the first error.  On any error *c is unchanged;
 * on success it holds the values of the files over what it held before.
 * Does not check consistency: call conf_validate after the last conf_set.
 */
int conf_load(struct conf *c, const char *main_path, bool explicit_path,
	      struct conf_error *err);

/* The drop-in directory beside main_path, and the persist drop-in in it. */
void conf_dropin_dir(const char *main_path, char *buf, size_t size);
void conf_persist_path(const char *main_path, char *buf, size_t size);

/* conf_load, with the persist drop-in read as persist_text instead of the
 * file (NULL: the file as it is; "": no such file), in its place among the
 * drop-ins: the configuration as it would be after a change. */
int conf_load_ex(struct conf *c, const char *main_path, bool explicit_path,
		 const char *persist_text, struct conf_error *err);

/*
 * Apply one more file over *c (the runtime layer): its values' sources read
 * "LABEL PATH:LINE".  text instead of the file when not NULL.  A missing
 * file adds nothing.  Same checks and errors as conf_load; on error *c is
 * unchanged.
 */
int conf_load_layer(struct conf *c, const char *path, const char *label,
		    const char *text, struct conf_error *err);

/*
 * Set one key: "section.key" ("balance.low") or "client.NAME.key"
 * ("client.db.max_pages").  label names the source in errors and in
 * conf_print ("command line", "rcupoolctl set").  On error *c is unchanged.
 */
int conf_set(struct conf *c, const char *dotted_key, const char *value,
	     const char *label, struct conf_error *err);

/* Whether dotted_key names a key ("balance.low", "client.NAME.max_pages"). */
bool conf_key_exists(const char *dotted_key);

/* Same, for "section.key=value" (the argument of -o). */
int conf_set_option(struct conf *c, const char *assignment, const char *label,
		    struct conf_error *err);

/*
 * Check the values against each other, percents resolved for a reserve of
 * ncpus CPUs: low <= target <= high <= pages_per_cpu, protect_pages <=
 * pages_per_cpu, client_min_pages <= client_max_pages, and for every
 * client its min <= max (unset ones taken from [limits]).  The error names
 * the source of the conflicting key that was set last.
 */
int conf_validate(const struct conf *c, unsigned int ncpus,
		  struct conf_error *err);

/* Percent -> count: whole * percent / 100, rounded down, but at least 1 when
 * both the percent and the whole are non-zero.  A count is returned as is. */
uint64_t conf_resolve(struct conf_count v, uint64_t whole);

/* Whole reserve in pages: pages_per_cpu * ncpus + global_pages. */
uint64_t conf_reserve_pages(const struct conf *c, unsigned int ncpus);

/* [client NAME], or NULL. */
const struct conf_client *conf_client_find(const struct conf *c,
					   const char *name);

/* Effective configuration in ini form; every key ends with a comment naming
 * its source ("; default", "; FILE:LINE", "; command line").  The output
 * parses back to the same values. */
void conf_print(const struct conf *c, FILE *f);

/*
 * Call fn for every key in conf_print's order, as a dotted key
 * ("balance.low", "client.NAME.max_pages"), its value as the config file
 * would spell it, and where it came from ("default", "FILE:LINE", ...).
 */
void conf_foreach(const struct conf *c,
		  void (*fn)(void *ud, const char *key, const char *value,
			     const char *source),
		  void *ud);

/* "FILE:LINE", a label, or "default". */
void conf_src_format(const struct conf *c, struct conf_src s, char *buf,
		     size_t size);

#endif
