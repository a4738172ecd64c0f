// SPDX-License-Identifier: LGPL-2.1-or-later
/* Settings in layers: files, runtime drop-in, options; changes (settings.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "log.h"
#include "proto.h"
#include "settings.h"

/* A configured group that does not exist: nobody is a member. */
#define NO_MEMBERS ((gid_t)-2)

static const char *socket_opt;

void settings_init(const char *socket_option)
{
	socket_opt = socket_option;
}

int settings_socket_path(const struct conf *files, char *buf, size_t size)
{
	const char *sock = socket_opt;

	if (!sock && files->daemon.socket[0])
		sock = files->daemon.socket;
	if (!sock) {
		const char *rt = getenv("RUNTIME_DIRECTORY");

		if (!getenv("RCUPOOL_SOCKET") && rt && rt[0] == '/') {
			snprintf(buf, size, "%.*s/rcupoold.sock",
				 (int)strcspn(rt, ":"), rt);
			return 0;
		}
		return proto_listen_path(buf, size) < 0 ? -ENOENT : 0;
	}
	snprintf(buf, size, "%s", sock);
	return 0;
}

void settings_runtime_path(const struct conf *files, char *buf, size_t size)
{
	char sock[PATH_MAX];
	const char *slash;

	if (settings_socket_path(files, sock, sizeof(sock)) < 0) {
		buf[0] = '\0';
		return;
	}
	slash = strrchr(sock, '/');
	if (!slash)
		snprintf(buf, size, "%s/%s", CONF_DROPIN_DIR,
			 CONF_RUNTIME_FILE);
	else
		snprintf(buf, size, "%.*s/%s/%s", (int)(slash - sock), sock,
			 CONF_DROPIN_DIR, CONF_RUNTIME_FILE);
}

bool settings_live_key(const char *key)
{
	static const char *const live_access[] = {
		"access.attach_group", "access.admin_group",
		"access.idle_timeout", "access.max_connections_per_uid"};

	if (!strncmp(key, "client.", 7) || !strncmp(key, "balance.", 8))
		return true;
	if (!strncmp(key, "limits.", 7))
		return strcmp(key, "limits.max_clients") != 0;
	for (size_t i = 0; i < sizeof(live_access) / sizeof(live_access[0]);
	     i++)
		if (!strcmp(key, live_access[i]))
			return true;
	return false;
}

static void conf_warning(void *ud, const char *msg)
{
	log_warning("%s", msg);
}

/*
 * The configuration from the files (the persist drop-in as persist_text
 * when not NULL), the runtime drop-in (as runtime_text when not NULL), the
 * -o options; validated.  rpath gets the runtime drop-in's path.
 */
static int build(struct daemon *d, const char *persist_text,
		 const char *runtime_text, struct conf *c, char *rpath,
		 size_t rlen, struct conf_error *err)
{
	int r;

	conf_init(c);
	c->warn = conf_warning;
	r = conf_load_ex(c, d->config_path, d->config_explicit, persist_text,
			 err);
	if (r >= 0) {
		settings_runtime_path(c, rpath, rlen);
		if (*rpath)
			r = conf_load_layer(c, rpath, "runtime", runtime_text,
					    err);
	}
	for (size_t i = 0; r >= 0 && i < d->n_options; i++)
		r = conf_set_option(c, d->options[i], "command line", err);
	if (r >= 0)
		r = conf_validate(c, d->ncpus, err);
	if (r < 0)
		conf_free(c);
	return r;
}

int settings_load(struct daemon *d, struct conf *c, struct conf_error *err)
{
	char rpath[PATH_MAX];

	return build(d, NULL, NULL, c, rpath, sizeof(rpath), err);
}

static int resolve_group(const struct conf *c, enum conf_key k, const char *key,
			 const char *name, const char *old, gid_t *ret)
{
	bool configured = c->src[k].seq != 0;
	char where[PATH_MAX + 32];
	int r = peer_group_lookup(name, ret);

	if (r == -ENOENT) {
		/* The built-in name on a machine without the package's groups
		 * (make run) is expected; a configured one is a mistake
		 * (--check-config refuses it). */
		*ret = NO_MEMBERS;
		if (old && !strcmp(old, name))
			return 0; /* said when it was set */
		conf_src_format(c, c->src[k], where, sizeof(where));
		log_msg(configured ? LOG_WARNING : LOG_NOTICE,
			"%s: %s: group \"%s\" does not exist: only root and "
			"this daemon's user qualify",
			where, key, name);
		*ret = NO_MEMBERS;
		return 0;
	}
	if (r < 0)
		return log_errno(LOG_ERR, r,
				 "%s: cannot look up group \"%s\": %m", key,
				 name);
	return 0;
}

static int resolve_groups(struct daemon *d, const struct conf *old)
{
	int r = resolve_group(
		&d->conf, CONF_ACCESS_ATTACH_GROUP, "[access] attach_group",
		d->conf.access.attach_group,
		old ? old->access.attach_group : NULL, &d->attach_gid);

	if (r >= 0)
		r = resolve_group(
			&d->conf, CONF_ACCESS_ADMIN_GROUP,
			"[access] admin_group", d->conf.access.admin_group,
			old ? old->access.admin_group : NULL, &d->admin_gid);
	return r;
}

int settings_resolve_groups(struct daemon *d)
{
	return resolve_groups(d, NULL);
}

/* Put next in force, as a reload does; *next is consumed. */
static int commit(struct daemon *d, struct conf *next, char *why, size_t whylen)
{
	struct conf old;

	/* What sizes the reserve or the socket needs a restart. */
	if (memcmp(&next->reserve, &d->conf.reserve, sizeof(next->reserve)) ||
	    next->limits.max_clients != d->conf.limits.max_clients ||
	    strcmp(next->daemon.socket, d->conf.daemon.socket) ||
	    next->access.socket_mode != d->conf.access.socket_mode) {
		log_warning("[reserve], limits.max_clients, access.socket_mode "
			    "and daemon.socket changes take effect at the "
			    "next start");
		next->reserve = d->conf.reserve;
		next->limits.max_clients = d->conf.limits.max_clients;
		next->access.socket_mode = d->conf.access.socket_mode;
		memcpy(next->daemon.socket, d->conf.daemon.socket,
		       sizeof(next->daemon.socket));
	}
	old = d->conf;
	d->conf = *next;
	if (resolve_groups(d, &old) < 0) {
		d->conf = old;
		conf_free(next);
		resolve_groups(d, &d->conf);
		snprintf(why, whylen, "configuration unchanged: bad group");
		return -EINVAL;
	}
	conf_free(&old);
	reserve_apply_limits(d);
	reserve_start_timers(d);
	reserve_resync_cpus(d);
	reserve_balance(d);
	return 0;
}

int settings_reload(struct daemon *d, char *why, size_t whylen)
{
	char rpath[PATH_MAX];
	struct conf_error err;
	struct conf next;
	int r;

	r = build(d, NULL, NULL, &next, rpath, sizeof(rpath), &err);
	if (r < 0) {
		log_error(
			"reload failed, keeping the running configuration: %s",
			err.msg);
		snprintf(why, whylen,
			 "reload failed, configuration unchanged: %s", err.msg);
		return r;
	}
	r = commit(d, &next, why, whylen);
	if (r < 0)
		return r;
	d->stats.reloads++;
	if (*rpath && access(rpath, F_OK) == 0)
		log_info("configuration reloaded, with the runtime settings "
			 "of %s",
			 rpath);
	else
		log_info("configuration reloaded");
	snprintf(why, whylen, "configuration reloaded");
	return 0;
}

/* --- changes ------------------------------------------------------------- */

struct keylist {
	struct dropin_change *ch;
	char **keys;
	size_t n;
	int err;
};

static int collect_key(void *ud, const char *key, const char *value)
{
	struct keylist *l = ud;
	struct dropin_change *ch;
	char **keys;

	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->keys[i], key))
			return 0;
	ch = realloc(l->ch, (l->n + 1) * sizeof(*ch));
	if (ch)
		l->ch = ch;
	keys = realloc(l->keys, (l->n + 1) * sizeof(*keys));
	if (keys)
		l->keys = keys;
	if (!ch || !keys || !(l->keys[l->n] = strdup(key))) {
		l->err = -ENOMEM;
		return 1;
	}
	l->ch[l->n] = (struct dropin_change){l->keys[l->n], NULL};
	l->n++;
	return 0;
}

static int count_keys(void *ud, const char *key, const char *value)
{
	(*(size_t *)ud)++;
	return 0;
}

static void keylist_free(struct keylist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->keys[i]);
	free(l->keys);
	free(l->ch);
}

/* Every setting must name a live key with a valid value, once. */
static int check_request(const struct settings_req *req, char *why,
			 size_t whylen)
{
	struct conf_error err;
	struct conf scratch;
	int r = 0;

	conf_init(&scratch);
	for (size_t i = 0; i < req->n && r == 0; i++) {
		const char *key = req->ch[i].key;

		for (size_t j = 0; j < i; j++) {
			if (!strcmp(req->ch[j].key, key)) {
				snprintf(why, whylen,
					 "%s: given twice in one request", key);
				r = -EINVAL;
			}
		}
		if (r)
			break;
		if (!conf_key_exists(key)) {
			snprintf(why, whylen, "%s: unknown key", key);
			r = -EINVAL;
			break;
		}
		if (!settings_live_key(key)) {
			snprintf(why, whylen,
				 "%s cannot change while the daemon runs: edit "
				 "the configuration and restart",
				 key);
			r = -EINVAL;
			break;
		}
		if (!req->unset) {
			r = conf_set(&scratch, key, req->ch[i].value,
				     "rcupoolctl set", &err);
			if (r < 0)
				snprintf(why, whylen, "%s", err.msg);
		}
		/* A group that does not exist: --check-config would refuse
		 * the files, so no layer may hold it. */
		if (r == 0 && !req->unset && *req->ch[i].value &&
		    (!strcmp(key, "access.attach_group") ||
		     !strcmp(key, "access.admin_group"))) {
			gid_t gid;

			if (peer_group_lookup(req->ch[i].value, &gid) ==
			    -ENOENT) {
				snprintf(why, whylen,
					 "%s: group \"%s\" does not exist", key,
					 req->ch[i].value);
				r = -EINVAL;
			}
		}
	}
	conf_free(&scratch);
	return r;
}

static int edit(const char *path, const char *text,
		const struct dropin_change *ch, size_t n, char **out,
		size_t *nkeys, char *why, size_t whylen)
{
	static const char header[] =
		"# Written by rcupoolctl; rcupoolctl unset KEY or revert "
		"removes settings.\n";

	return dropin_edit(path, text, ch, n, header, out, nkeys, why, whylen);
}

int settings_change(struct daemon *d, const struct settings_req *req, char *why,
		    size_t whylen, char *path, size_t plen)
{
	char rpath[PATH_MAX], ppath[PATH_MAX];
	char *rt_old = NULL, *rt_new = NULL, *p_old = NULL, *p_new = NULL;
	struct keylist all = {0};
	const struct dropin_change *ch = req->ch;
	struct dropin_change *rm = NULL;
	struct conf_error err;
	struct conf files, next;
	size_t n = req->n, rt_keys = 0, p_keys = 0, changed;
	bool persist = req->layer == PROTO_LAYER_PERSIST;
	int r;

	path[0] = '\0';
	if (req->layer > PROTO_LAYER_PERSIST) {
		snprintf(why, whylen, "unknown layer %u", req->layer);
		return -EINVAL;
	}
	r = check_request(req, why, whylen);
	if (r < 0)
		return r;

	/* Where the layers are. */
	conf_init(&files);
	r = conf_load(&files, d->config_path, d->config_explicit, &err);
	if (r >= 0)
		settings_runtime_path(&files, rpath, sizeof(rpath));
	conf_free(&files);
	if (r < 0) {
		snprintf(why, whylen, "configuration unchanged: %s", err.msg);
		return r;
	}
	conf_persist_path(d->config_path, ppath, sizeof(ppath));
	if (!persist && !*rpath) {
		snprintf(why, whylen,
			 "this daemon has no runtime directory for settings");
		return -ENOENT;
	}
	if (persist && !strcmp(d->config_path, "/dev/null")) {
		snprintf(why, whylen,
			 "this daemon runs with --config /dev/null: no "
			 "configuration directory to persist into");
		return -ENOENT;
	}
	snprintf(path, plen, "%s", persist ? ppath : rpath);

	if (*rpath) {
		r = dropin_read(rpath, &rt_old, why, whylen);
		if (r < 0)
			goto out;
	}
	if (persist) {
		r = dropin_read(ppath, &p_old, why, whylen);
		if (r < 0)
			goto out;
	}

	/* revert: every key of the layer (and, for persist, the runtime
	 * ones too, which would shadow what is persisted). */
	if (req->unset && n == 0) {
		if (persist)
			dropin_foreach(p_old, collect_key, &all);
		if (rt_old)
			dropin_foreach(rt_old, collect_key, &all);
		if (all.err) {
			r = all.err;
			goto out;
		}
		ch = all.ch;
		n = all.n;
	}
	/* The runtime layer loses the keys a persist change sets or removes:
	 * what is persisted is then in force. */
	rm = calloc(n ? n : 1, sizeof(*rm));
	if (!rm) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		rm[i] = (struct dropin_change){
			ch[i].key, persist || req->unset ? NULL : ch[i].value};
	if (rt_old) {
		r = edit(rpath, rt_old, rm, n, &rt_new, &rt_keys, why, whylen);
		if (r < 0)
			goto out;
	}
	if (persist) {
		for (size_t i = 0; i < n; i++)
			rm[i].value = req->unset ? NULL : ch[i].value;
		r = edit(ppath, p_old, rm, n, &p_new, &p_keys, why, whylen);
		if (r < 0)
			goto out;
	}

	/* The whole configuration as it would be. */
	r = build(d, p_new, rt_new ? rt_new : NULL, &next, rpath, sizeof(rpath),
		  &err);
	if (r < 0) {
		snprintf(why, whylen, "refused, nothing changed: %s", err.msg);
		goto out;
	}
	/* What is persisted must hold on its own too: the next boot has no
	 * runtime layer. */
	if (persist && *rpath) {
		struct conf alone;
		char rp2[PATH_MAX];

		r = build(d, p_new, "", &alone, rp2, sizeof(rp2), &err);
		if (r < 0) {
			conf_free(&next);
			snprintf(
				why, whylen,
				"refused, nothing changed: without the runtime "
				"settings (as at the next boot): %s",
				err.msg);
			goto out;
		}
		conf_free(&alone);
	}
	if (req->dry_run) {
		conf_free(&next);
		snprintf(why, whylen, "valid");
		r = 0;
		goto out;
	}
	if (rt_new && strcmp(rt_new, rt_old)) {
		r = dropin_write(rpath, rt_new, rt_keys == 0, 0644, why,
				 whylen);
		if (r < 0) {
			conf_free(&next);
			goto out;
		}
	}
	r = commit(d, &next, why, whylen);
	if (r < 0) {
		/* Nothing half-applied: the runtime drop-in as it was. */
		if (rt_new && strcmp(rt_new, rt_old))
			dropin_write(rpath, rt_old, !*rt_old, 0644, NULL, 0);
		goto out;
	}
	changed = n;
	if (req->unset && persist) {
		snprintf(why, whylen, "persisted settings removed");
	} else if (req->unset) {
		size_t before = 0, after = 0;

		dropin_foreach(rt_old, count_keys, &before);
		dropin_foreach(rt_new, count_keys, &after);
		changed = before - after;
		snprintf(why, whylen, "%zu runtime setting%s removed", changed,
			 changed == 1 ? "" : "s");
	} else
		snprintf(why, whylen, "%zu setting%s changed (%s)", changed,
			 changed == 1 ? "" : "s",
			 persist ? "persist" : "runtime");
	r = 0;
out:
	keylist_free(&all);
	free(rm);
	free(rt_old);
	free(rt_new);
	free(p_old);
	free(p_new);
	return r;
}
