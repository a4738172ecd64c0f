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

rcupoold=$build/rcupoold
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
run timeout 10 "$rcupoold" --check-config --config "$tmp/fifo"
expect 78 "--config FIFO: exit 78 at once, not a wait" "$tmp/fifo: is a FIFO"
run timeout 10 "$rcupoold" --check-config --config /dev/zero
expect 78 "--config /dev/zero: exit 78 (a device)" "/dev/zero: is a character device"
run timeout 10 "$rcupoold" --check-config --config "$tmp"
expect 78 "--config a directory: exit 78" "is a directory"
run timeout 10 "$rcupoold" --check-config --config /dev/null
expect 0 "--config /dev/null: the empty configuration"
printf '[limits]\nclient_min_pages = 16\0junk\n' >"$tmp/nul.conf"
run "$rcupoold" --check-config --config "$tmp/nul.conf"
expect 78 "a NUL byte: exit 78 naming file:line" "$tmp/nul.conf:2: NUL byte"
head -c 4000000 /dev/zero | tr '\0' x >"$tmp/long.conf"
run "$rcupoold" --check-config --config "$tmp/long.conf"
expect 78 "a 4 MB line: exit 78 naming file:line" "$tmp/long.conf:1: line too long"

printf '[balance]\nlow = 10\nlow = 20\n' >"$tmp/dup.conf"
run "$rcupoold" --check-config --config "$tmp/dup.conf"
expect 0 "a duplicate key: still valid" "$tmp/dup.conf:3: [balance] low: set again (first at line 2)"
if grep -q '^low = 20 ; .*dup.conf:3' "$tmp/out"; then
	ok "a duplicate key: the later value wins"
else
	not_ok "a duplicate key: the later value wins"
	show "$tmp/out"
fi

printf '[access]\nadmin_group = no-such-group-rcupool\n' >"$tmp/grp.conf"
run "$rcupoold" --check-config --config "$tmp/grp.conf"
expect 78 "--check-config: a configured group that does not exist is an error" \
	"$tmp/grp.conf:2: [access] admin_group: group \"no-such-group-rcupool\" does not exist"
"$rcupoold" --config "$tmp/grp.conf" --socket "$tmp/grp.sock" -o reserve.pages_per_cpu=64 \
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

# --help and --check-config say which paths they use and what is absent.
run "$rcupoold" --help --config "$tmp/nothing/rcupoold.conf"
check "--help names the main file" grep -q "main file: *$tmp/nothing/rcupoold.conf (absent)" "$tmp/out"
run "$rcupoold" --config "$tmp/nothing/rcupoold.conf" --socket "$tmp/x/s.sock" --help
check "--help names the runtime drop-in beside the socket and the socket" \
	bash -c "grep -q 'runtime drop-in: $tmp/x/rcupoold.conf.d/rcupoolctl-runtime.conf (absent)' '$tmp/out' && grep -q 'socket: *$tmp/x/s.sock' '$tmp/out'"
: >"$tmp/present.conf"
run "$rcupoold" --check-config --config "$tmp/present.conf"
check "--check-config prints the paths as comments" \
	bash -c "grep -q '^; main file: *$tmp/present.conf\$' '$tmp/out' && grep -q '^; drop-ins: *$tmp/rcupoold.conf.d/\*.conf' '$tmp/out'"

# --- settings in layers ---------------------------------------------------------

etc=$tmp/etc
rundir=$tmp/run
sock=$rundir/rcupoold.sock
rt=$rundir/rcupoold.conf.d/rcupoolctl-runtime.conf
pd=$etc/rcupoold.conf.d/90-rcupoolctl.conf
mkdir -p "$etc" "$rundir"
: >"$etc/rcupoold.conf"
dopts=(--config "$etc/rcupoold.conf" --socket "$sock" -o reserve.pages_per_cpu=64
	-o reserve.lock_memory=no)
start_daemon() {
	"$rcupoold" "${dopts[@]}" >/dev/null 2>>"$tmp/daemon.log" &
	daemon_pid=$!
	for _ in $(seq 100); do
		"$ctl" --socket "$sock" status >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	show "$tmp/daemon.log"
	return 1
}
stop_daemon() {
	kill "$daemon_pid" 2>/dev/null
	wait "$daemon_pid"
	local r=$?
	daemon_pid=
	return $r
}
c() { run "$ctl" --socket "$sock" "$@"; }
# source KEY: the source column of rcupoolctl limits for KEY
source_of() { "$ctl" --socket "$sock" --json limits | jq -r --arg k "$1" '.[$k].source'; }
value_of() { "$ctl" --socket "$sock" --json limits | jq -r --arg k "$1" '.[$k].value'; }

check "the daemon starts" start_daemon

# issue 13 item 1: a persisted value that the files alone would refuse.
c set client.nginx.min_pages=2 client.nginx.max_pages=4
expect 0 "runtime set of client.nginx min 2, max 4"
check "the runtime drop-in is beside the socket, created with its directory" test -f "$rt"
check "limits: the source is the runtime drop-in" \
	bash -c "[[ \"\$(\"$ctl\" --socket \"$sock\" --json limits | jq -r '.\"client.nginx.max_pages\".source')\" == runtime\ $rt:* ]]"
c set --persist client.nginx.max_pages=6
expect 1 "set --persist max_pages=6 is refused (16 > 6 without the runtime layer)" \
	"refused, nothing changed: without the runtime settings (as at the next boot)"
check "the refused persist left no file" test ! -e "$pd"
check "... and no directory either" test ! -e "$etc/rcupoold.conf.d"
run "$rcupoold" --check-config --config "$etc/rcupoold.conf" --socket "$sock"
expect 0 "--check-config passes after the refusal"
check "the running value is unchanged (4)" test "$(value_of client.nginx.max_pages)" = 4
check "the daemon restarts fine" bash -c "kill $daemon_pid; wait $daemon_pid 2>/dev/null; true"
daemon_pid=
check "... started again" start_daemon
check "runtime settings survive a restart (same runtime directory)" \
	test "$(value_of client.nginx.max_pages)" = 4

# A persist the files accept: written, in force, the runtime key gone.
c set --persist client.nginx.min_pages=2 client.nginx.max_pages=6
expect 0 "set --persist min 2, max 6"
check "the persist drop-in holds both keys" \
	bash -c "grep -qx 'min_pages = 2' '$pd' && grep -qx 'max_pages = 6' '$pd'"
check "limits: the source is persist" \
	bash -c "[[ \"\$(\"$ctl\" --socket \"$sock\" --json limits | jq -r '.\"client.nginx.max_pages\".source')\" == persist\ $pd:* ]]"
check "the runtime layer gave the keys up (no key left: no file)" test ! -e "$rt"
run "$rcupoold" --check-config --config "$etc/rcupoold.conf"
expect 0 "--check-config passes with the persist drop-in alone"

# Comments in the persist drop-in are kept by later edits.
sed -i '1i # local note: keep me' "$pd"
c set --persist balance.low=10
expect 0 "set --persist balance.low=10"
check "a comment of the operator is kept" grep -qx '# local note: keep me' "$pd"

# issue 13 item 2: reload keeps runtime settings.
c set balance.interval=200ms
expect 0 "runtime set balance.interval=200ms"
c reload
expect 0 "reload"
check "reload keeps the runtime setting" test "$(value_of balance.interval)" = 200ms
check "... with its runtime source" bash -c "[[ \"\$(\"$ctl\" --socket \"$sock\" --json limits | jq -r '.\"balance.interval\".source')\" == runtime* ]]"

# unset and revert.
c unset balance.interval
expect 0 "unset balance.interval"
check "unset: back to the default" test "$(source_of balance.interval)" = default
c set balance.high=90% balance.target=40%
c revert
expect 0 "revert"
check "revert: no runtime drop-in left" test ! -e "$rt"
check "revert: balance.high back to default" test "$(source_of balance.high)" = default
check "revert: persisted values stay" test "$(value_of balance.low)" = 10
c revert --persist
expect 0 "revert --persist"
check "revert --persist: the persist drop-in is gone" test ! -e "$pd"
check "revert --persist: back to defaults" test "$(source_of client.nginx.max_pages)" = null

# A group that does not exist: --check-config would refuse it, so no layer
# may hold it.
c set --persist access.admin_group=no-such-group-rcupool
expect 1 "set --persist of a group that does not exist: refused" \
	'access.admin_group: group "no-such-group-rcupool" does not exist'
check "... nothing written" test ! -e "$pd"
c set access.attach_group=root
expect 0 "set access.attach_group=root (a group that exists): live"
c unset access.attach_group
expect 0 "unset access.attach_group"

# A runtime change that would make the whole configuration invalid.
c set balance.low=900
expect 1 "set balance.low=900 (> pages_per_cpu): refused" "refused, nothing changed"
check "the refused runtime set wrote nothing" test ! -e "$rt"

# Every admin request is logged, allowed or refused, with peer and key.
check "the daemon logged an allowed set with its key and value" \
	grep -q "(rcupoolctl) uid 0: set client.nginx.min_pages=2 client.nginx.max_pages=4: 2 settings changed" "$tmp/daemon.log"
check "the daemon logged a refused set with its key and value" \
	grep -q "uid 0: set balance.low=900: refused" "$tmp/daemon.log"
check "the daemon stops cleanly" stop_daemon

done_testing
