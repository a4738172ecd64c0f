#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The configuration as an operator meets it, through the real programs:
# rcupoold --check-config on files that are not files (issue 10 item 8),
# duplicate keys, missing groups, and the layers of settings
# (files, runtime "rcupoolctl set", "set --persist", unset/revert, reload;
# issue 13 items 1, 2, 4).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib/tap.sh

build=${RCUPOOL_BUILD:-build}
tmp=$(mktemp -d /tmp/test_settings.XXXXXX)
daemon_pid=
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
unset RCUPOOL_CONFDIR RUNTIME_DIRECTORY

d=$build/rcupoold
ctl=$build/rcupoolctl

# run PROGRAM ARGS...: $rc, $tmp/out, $tmp/err
run() {
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}
show() { sed 's/^/# /' "$@"; }
# expect CODE "description" [grep-pattern-in-stderr]
expect() {
	local code=$1 what=$2 pattern=${3:-}
	if [ "$rc" -eq "$code" ] && { [ -z "$pattern" ] || grep -qF -- "$pattern" "$tmp/err"; }; then
		ok "$what"
	else
		not_ok "$what (exit $rc, want $code${pattern:+ and stderr with '$pattern'})"
		show "$tmp/err"
	fi
}

# --- what --config may be -----------------------------------------------------

mkfifo "$tmp/fifo"
run timeout 10 "$d" --check-config --config "$tmp/fifo"
expect 78 "--config FIFO: exit 78 at once, not a wait" "$tmp/fifo: is a FIFO"
run timeout 10 "$d" --check-config --config /dev/zero
expect 78 "--config /dev/zero: exit 78 (a device)" "/dev/zero: is a character device"
run timeout 10 "$d" --check-config --config "$tmp"
expect 78 "--config a directory: exit 78" "is a directory"
run timeout 10 "$d" --check-config --config /dev/null
expect 0 "--config /dev/null: the empty configuration"
printf '[limits]\nclient_min_pages = 16\0junk\n' >"$tmp/nul.conf"
run "$d" --check-config --config "$tmp/nul.conf"
expect 78 "a NUL byte: exit 78 naming file:line" "$tmp/nul.conf:2: NUL byte"
head -c 4000000 /dev/zero | tr '\0' x >"$tmp/long.conf"
run "$d" --check-config --config "$tmp/long.conf"
expect 78 "a 4 MB line: exit 78 naming file:line" "$tmp/long.conf:1: line too long"

printf '[balance]\nlow = 10\nlow = 20\n' >"$tmp/dup.conf"
run "$d" --check-config --config "$tmp/dup.conf"
expect 0 "a duplicate key: still valid" "$tmp/dup.conf:3: [balance] low: set again (first at line 2)"
if grep -q '^low = 20 ; .*dup.conf:3' "$tmp/out"; then
	ok "a duplicate key: the later value wins"
else
	not_ok "a duplicate key: the later value wins"
	show "$tmp/out"
fi

printf '[access]\nadmin_group = no-such-group-rcupool\n' >"$tmp/grp.conf"
run "$d" --check-config --config "$tmp/grp.conf"
expect 78 "--check-config: a configured group that does not exist is an error" \
	"$tmp/grp.conf:2: [access] admin_group: group \"no-such-group-rcupool\" does not exist"
"$d" --config "$tmp/grp.conf" --socket "$tmp/grp.sock" -o reserve.pages_per_cpu=64 \
	-o reserve.global_pages=0 -o reserve.lock_memory=no >/dev/null 2>"$tmp/err" &
daemon_pid=$!
for _ in $(seq 50); do [ -S "$tmp/grp.sock" ] && break; sleep 0.1; done
"$ctl" --socket "$tmp/grp.sock" status >/dev/null 2>&1
src=$?
kill "$daemon_pid" 2>/dev/null
wait "$daemon_pid"
daemon_pid=
if [ "$src" -eq 0 ] && grep -qF 'admin_group: group "no-such-group-rcupool" does not exist' "$tmp/err"; then
	ok "at start: a missing group is a warning, the daemon runs"
else
	not_ok "at start: a missing group is a warning, the daemon runs (status exit $src)"
	show "$tmp/err"
fi

done_testing
