#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# rcupoolctl end to end against the real rcupoold: every command, the JSON
# documents checked with jq for the documented keys and types, the
# Prometheus text line by line, set (and --persist), the admin commands
# refused to a user, and the exit statuses 2 (bad usage) and 3 (no daemon).
#
# Run from the repository root; RCUPOOL_BUILD names the build (default build).
. tests/lib/tap.sh

build=$(cd "${RCUPOOL_BUILD:-build}" && pwd)
tmp=$(mktemp -d /tmp/test_cli.XXXXXX)
chmod 0755 "$tmp" # a user (nobody) reaches the socket too
daemon_pid=
client_pid=
cleanup() {
	[ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

sock=$tmp/s.sock
: >"$tmp/empty.conf"
unset RCUPOOL_SOCKET RCUPOOL_CONFDIR
# A copy a user may run whatever the permissions of the build tree.
mkdir "$tmp/bin"
cp "$build/rcupoolctl" "$tmp/bin/rcupoolctl"
ctl=$tmp/bin/rcupoolctl

# run ARGS...: rcupoolctl on our socket; $rc, $tmp/out, $tmp/err
run() {
	"$ctl" --socket "$sock" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}
# as_nobody ARGS...: the same as uid/gid 65534 with no groups
as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$ctl" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}
show() { sed 's/^/# /' "$@"; }
# expect CODE "description" [grep-pattern-in-stderr]
expect() {
	local code=$1 what=$2 pattern=$3
	if [ "$rc" -eq "$code" ] && { [ -z "$pattern" ] || grep -q -- "$pattern" "$tmp/err"; }; then
		ok "$what"
	else
		not_ok "$what (exit $rc, want $code${pattern:+ and stderr with '$pattern'})"
		show "$tmp/err"
	fi
}
jq_true() { jq -e "$1" "$tmp/out" >/dev/null; }
jqcheck() { # jqcheck "description" FILTER  (on $tmp/out)
	check "$1" jq_true "$2"
}

"$build/rcupoold" --config "$tmp/empty.conf" --socket "$sock" \
	-o reserve.pages_per_cpu=64 -o reserve.lock_memory=no 2>"$tmp/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do
	[ -S "$sock" ] && break
	sleep 0.05
done
check "rcupoold listens on $sock" test -S "$sock"

# A real client holding a few pages, named to be found.
"$build/tests/test_cli_set" --attach "$sock" cli_client >"$tmp/client.out" &
client_pid=$!
for _ in $(seq 100); do
	grep -qs ready "$tmp/client.out" && break
	sleep 0.05
done
check "a client is attached" grep -qs ready "$tmp/client.out"

# --- help and version -------------------------------------------------------

run --version
check "--version prints the version" grep -Eq '^rcupoolctl [0-9]+\.[0-9]+\.[0-9]+$' "$tmp/out"
run --help
expect 0 "--help exits 0"
for c in status stats clients limits set reset-stats reload census watch; do
	if ! grep -q "^  $c " "$tmp/out"; then
		not_ok "--help lists $c"
		continue
	fi
	"$ctl" "$c" --help >"$tmp/out.c" 2>&1
	if [ $? -eq 0 ] && grep -q "Usage: rcupoolctl .*$c" "$tmp/out.c"; then
		ok "--help lists $c, and $c --help explains it"
	else
		not_ok "$c --help"
		show "$tmp/out.c"
	fi
done

# --- status -----------------------------------------------------------------

run status
expect 0 "status exits 0"
check "status: free of total pages with a bar" \
	grep -Eq '\[[#.]+\] [0-9]+ of [0-9]+ free' "$tmp/out"
check "status: depletions and fallbacks" grep -Eq '[0-9]+ depletions.*[0-9]+ fallbacks' "$tmp/out"
check "status: the top consumers list the client" grep -q 'cli_client' "$tmp/out"
check "status on a pipe: no escape codes" bash -c "! grep -q $'\e' '$tmp/out'"

run --json status
expect 0 "status --json exits 0"
jqcheck "status --json: documented keys are numbers" \
	'[.pages_total, .pages_free, .pages_held, .clients, .depletions, .denied, .fallbacks, .uptime_usec] | all(type == "number")'
jqcheck "status --json: version is a string" '.version | type == "string"'
jqcheck "status --json: top_clients is an array of client objects" \
	'.top_clients | type == "array" and length == 1 and .[0].name == "cli_client"'
jqcheck "status --json: pages_free <= pages_total, one client" \
	'.pages_free <= .pages_total and .clients == 1 and .pages_total > 0'

# --- clients ----------------------------------------------------------------

run clients
expect 0 "clients exits 0"
check "clients: a header and the client's row" \
	bash -c "grep -q 'PID' '$tmp/out' && grep -q cli_client '$tmp/out'"
run --json clients
jqcheck "clients --json is an array" 'type == "array" and length == 1'
jqcheck "clients --json: pid held min_pages max_pages denied are numbers" \
	'.[0] | [.pid, .held, .min_pages, .max_pages, .denied, .slot, .pages_got, .attached_usec] | all(type == "number")'
jqcheck "clients --json: the reclaim engine's counters are numbers" \
	'.[0] | [.throttled, .throttled_ns, .grace_periods, .gp_latency_p50_ns, .gp_latency_p99_ns] | all(type == "number")'
jqcheck "clients --json: gp_latency_p99_ns >= gp_latency_p50_ns" \
	'.[0] | .gp_latency_p99_ns >= .gp_latency_p50_ns'
jqcheck "clients --json: name is a string" '.[0].name == "cli_client"'
jqcheck "clients --json: the client holds pages" ".[0].held > 0 and .[0].pid == $client_pid"

# --- stats ------------------------------------------------------------------

run stats
expect 0 "stats exits 0"
check "stats: status fields and a client table" \
	bash -c "grep -Eq '^  pages_total +[0-9]+' '$tmp/out' && grep -Eq '^ +SLOT +PID' '$tmp/out'"
check "stats without --per-cpu: no CPU table" bash -c "! grep -Eq '^ +CPU +ONLINE' '$tmp/out'"
run stats --per-cpu
check "stats --per-cpu: one row per CPU" \
	test "$(grep -Ec '^ +[0-9]+ +[01] +[0-9]+' "$tmp/out")" -ge 1
# Aligned: every row of the CPU table as long as its header.
check "stats --per-cpu: the CPU table is aligned" bash -c "
	awk '/^ +CPU +ONLINE/ {w = length(\$0); t = 1; next}
	     t && /^\$/ {exit}
	     t && length(\$0) != w {bad = 1}
	     END {exit bad || !w}' '$tmp/out'"
run --json stats
jqcheck "stats --json: cpus array, clients array, status object" \
	'(.cpus | type == "array") and (.clients | type == "array") and (.status | type == "object")'
jqcheck "stats --json: a row per CPU with numeric fields" \
	'(.cpus | length) == .status.cpus and (.cpus | all(([.cpu, .free, .low, .target, .high, .empty] | all(type == "number"))))'
jqcheck "stats --json: client rows have the documented keys" \
	'.clients[0] | has("pid") and has("name") and has("held") and has("min_pages") and has("max_pages") and has("denied") and has("throttled") and has("throttled_ns") and has("grace_periods") and has("gp_latency_p50_ns") and has("gp_latency_p99_ns")'
run stats --json
jqcheck "stats --json after the command works too" '.cpus | type == "array"'

# --- Prometheus -------------------------------------------------------------

run stats --format=prometheus
expect 0 "stats --format=prometheus exits 0"
cp "$tmp/out" "$tmp/prom"
# Every sample has a TYPE before it, every TYPE a HELP, names are legal,
# counters end in _total and nothing else does, label values are quoted,
# values are numbers, no family is declared twice.
awk '
function fail(why) { printf "# line %d: %s: %s\n", NR, why, $0; bad = 1 }
/^# HELP / { help[$3] = 1; next }
/^# TYPE / {
	if (!($3 in help)) fail("TYPE without HELP")
	if ($3 in type) fail("family declared twice")
	type[$3] = $4
	if ($4 != "counter" && $4 != "gauge") fail("unknown type")
	if (($4 == "counter") != ($3 ~ /_total$/)) fail("counter/_total mismatch")
	next
}
/^#/ { fail("unknown comment"); next }
/^$/ { next }
{
	name = $0; sub(/[{ ].*/, "", name)
	if (name !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) fail("illegal name")
	if (!(name in type)) fail("sample without TYPE")
	if (name !~ /^rcupool_/) fail("not rcupool_")
	rest = substr($0, length(name) + 1)
	if (rest ~ /^\{/) {
		labels = rest; sub(/\} [^ ]+$/, "", labels); labels = substr(labels, 2)
		if (labels !~ /^[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*$/)
			fail("bad labels")
	}
	value = $NF
	if (value !~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/) fail("bad value")
	samples++
}
END { if (!samples) { print "# no samples"; bad = 1 }; exit bad }
' "$tmp/prom"
check "prometheus: every sample typed, names legal, counters _total" test $? -eq 0
check "prometheus: status gauges (pages_total as rcupool_status_pages) and counters" \
	bash -c "grep -q '^rcupool_status_pages [0-9]' '$tmp/prom' && grep -q '^rcupool_status_depletions_total [0-9]' '$tmp/prom'"
check "prometheus: per-CPU samples labelled cpu" grep -q '^rcupool_cpu_free{cpu="0"} [0-9]' "$tmp/prom"
check "prometheus: per-client samples labelled slot and name (no pid)" \
	grep -Eq "^rcupool_client_held\{slot=\"[0-9]+\",name=\"cli_client\"\} [0-9]+$" "$tmp/prom"
check "prometheus: the pid only on rcupool_client_info" \
	bash -c "grep -Eq '^rcupool_client_info\{slot=\"[0-9]+\",pid=\"$client_pid\",uid=\"[0-9]+\",name=\"cli_client\"\} 1$' '$tmp/prom' && [ \$(grep -c '^rcupool_client_.*pid=' '$tmp/prom') -eq 1 ]"
check "prometheus: base units (uptime_seconds, page_size_bytes, attached_seconds), no _usec" \
	bash -c "grep -Eq '^rcupool_status_uptime_seconds [0-9]+\.[0-9]{6}$' '$tmp/prom' && grep -q '^rcupool_status_page_size_bytes 4096$' '$tmp/prom' && grep -q '^rcupool_client_attached_seconds{' '$tmp/prom' && ! grep -q usec '$tmp/prom'"
check "prometheus: the reclaim engine's times in seconds (throttled_seconds_total, gp_latency_p99_seconds), no _ns" \
	bash -c "grep -Eq '^rcupool_client_throttled_seconds_total\{slot=\"[0-9]+\",name=\"cli_client\"\} [0-9]+\.[0-9]{9}$' '$tmp/prom' && grep -Eq '^rcupool_client_gp_latency_p99_seconds\{' '$tmp/prom' && grep -Eq '^rcupool_client_grace_periods_total\{' '$tmp/prom' && ! grep -q '_ns' '$tmp/prom'"
check "prometheus: a # HELP for every family" \
	bash -c "[ \$(grep -c '^# HELP ' '$tmp/prom') -eq \$(grep -c '^# TYPE ' '$tmp/prom') ]"
check "prometheus: the version as an info metric" grep -q '^rcupool_status_info{version="' "$tmp/prom"
run --json stats --format=prometheus
check "--format=prometheus wins over an earlier --json" grep -q '^# TYPE' "$tmp/out"

# --- limits and set ---------------------------------------------------------

run limits
expect 0 "limits exits 0"
check "limits: KEY VALUE SOURCE table" \
	bash -c "grep -Eq '^KEY +VALUE +SOURCE' '$tmp/out' && grep -Eq '^balance.low +[^ ]+ +default' '$tmp/out'"
run --json limits
jqcheck "limits --json: counts are numbers, other values strings, every source a string" \
	'(to_entries | length > 5 and all(.value.value | type == "number" or type == "string") and all(.value.source | type == "string")) and ."balance.low".value == "25%" and ."balance.interval".value == "100ms" and ."access.socket_mode".value == "0666"'
jqcheck "limits --json: the command-line option's source, its value a number" '."reserve.pages_per_cpu" == {"value": 64, "source": "command line"}'
run -j limits
check "-j is --json, compact: one line" test "$(wc -l <"$tmp/out")" -eq 1
jqcheck "-j limits parses" '."reserve.pages_per_cpu".value == 64'
run -j -p limits
check "-j -p: pretty, several lines" test "$(wc -l <"$tmp/out")" -gt 10
jqcheck "-j -p limits parses" '."reserve.pages_per_cpu".value == 64'
run stats
check "human stats: no _usec name, durations and sizes in unit words" \
	bash -c "! grep -q usec '$tmp/out' && grep -Eq '^  uptime +[0-9.]+(us|ms|s|min) ' '$tmp/out' && grep -Eq '^  page_size +4KiB ' '$tmp/out'"

run set limits.client_min_pages=0 limits.client_max_pages=50
expect 0 "set two keys exits 0"
check "set prints the daemon's message" grep -q '2 settings changed' "$tmp/out"
run --json limits
jqcheck "set: limits shows the value and its source (the runtime drop-in)" '."limits.client_max_pages".value == 50 and (."limits.client_max_pages".source | test("^runtime .*/rcupoold.conf.d/rcupoolctl-runtime.conf:[0-9]+$"))'
# A client's max is lent in whole chunks: rounded down to chunk_pages.
cp=$("$ctl" --socket "$sock" -j status | jq .chunk_pages)
chunks_of() { echo $(( $1 / cp * cp )); }
run --json clients
jqcheck "set: the attached client's max_pages changed (whole chunks)" ".[0].max_pages == $(chunks_of 50)"
run set client.cli_client.max_pages=30
run --json clients
jqcheck "set client.NAME.max_pages reaches that client" ".[0].max_pages == $(chunks_of 30)"

run set reserve.page_size=8K
expect 1 "set of a key that cannot change live: exit 1 with the daemon's reason" 'cannot change while the daemon runs'
run set limits.client_max_pages=lots
expect 1 "set of a bad value: exit 1 naming the value" 'lots'
run set limits.nonsense=1
expect 1 "set of an unknown key: exit 1 naming it" 'limits.nonsense: unknown key'
run set nonexist.key=1
expect 1 "set of an unknown section: unknown key" 'nonexist.key: unknown key'
run set balance.low=10 balance.low=20
expect 2 "the same key twice in one set: exit 2" "key 'balance.low' given twice"
"$ctl" --socket "$tmp/nothing.sock" set foo >/dev/null 2>"$tmp/err"
rc=$?
expect 2 "set foo (no '='): exit 2 before connecting" "bad setting 'foo'"
if grep -q 'rcupoolctl: rcupoolctl' "$tmp/err"; then not_ok "no doubled prefix"; else ok "no doubled prefix"; fi
run set limits.client_max_pages
expect 2 "set without '=': exit 2 naming the word" "'limits.client_max_pages'"
run set
expect 2 "set without a setting: exit 2" 'KEY=VALUE'
run --json set limits.client_max_pages=40
jqcheck "set --json: the message as JSON" '.message | test("1 setting changed")'

# --persist: the drop-in of the daemon's configuration directory (here $tmp,
# where its --config is), checked by the daemon, read back by its parser.
dropin=$tmp/rcupoold.conf.d/90-rcupoolctl.conf
run set --persist limits.client_max_pages=60
expect 0 "set --persist exits 0"
check "set --persist says where it wrote" grep -q "$dropin" "$tmp/out"
RCUPOOL_CONFDIR=$tmp "$ctl" --socket "$sock" set --persist client.cli_client.max_pages=25 \
	balance.low=10 >/dev/null 2>"$tmp/err"
check "set --persist with RCUPOOL_CONFDIR (the daemon's directory) exits 0" test $? -eq 0
check "the drop-in keeps the earlier key and adds sections" \
	bash -c "grep -qx 'client_max_pages = 60' '$dropin' && grep -qx '\[client cli_client\]' '$dropin' && grep -qx 'low = 10' '$dropin'"
"$build/rcupoold" --check-config --config "$tmp/empty.conf" >"$tmp/check" 2>&1
check "rcupoold reads the drop-in back" \
	bash -c "grep -q '^client_max_pages = 60 ; persist .*90-rcupoolctl.conf' '$tmp/check' && grep -q '^max_pages = 25 ; persist .*90-rcupoolctl.conf' '$tmp/check'"
run set --persist --config-dir="$tmp/etc" limits.client_max_pages=61
expect 2 "--config-dir naming another directory than the daemon's: exit 2" 'could not check'
check "... and nothing written there" test ! -e "$tmp/etc"
run set --config-dir="$tmp/etc" limits.client_max_pages=61
expect 2 "--config-dir without --persist: exit 2" 'config-dir'
run --json clients
jqcheck "set --persist applied the value live too" ".[0].max_pages == $(chunks_of 25)"
run unset --persist balance.low
expect 0 "unset --persist exits 0"
check "unset --persist removed the key, kept the rest" \
	bash -c "! grep -q '^low' '$dropin' && grep -qx 'client_max_pages = 60' '$dropin'"

# --- reset-stats and reload -------------------------------------------------

run reset-stats
expect 0 "reset-stats exits 0"
check "reset-stats prints the daemon's message" grep -q 'reset' "$tmp/out"
run reload
expect 0 "reload exits 0"
check "reload prints the daemon's message" grep -q 'reload' "$tmp/out"
echo '[limits]
client_max_pages = nonsense' >"$tmp/empty.conf"
run reload
expect 1 "reload of a bad configuration: exit 1 with the reason" 'nonsense'
: >"$tmp/empty.conf"
run reload
expect 0 "reload of the fixed configuration exits 0"
run --json status
jqcheck "status counts the reloads" '.reloads >= 2'
run census
expect 0 "census exits 0"
check "census reports every page accounted for" grep -q '0 on no list, 0 on two lists, 0 bad' "$tmp/out"
run --json census
jqcheck "census --json: an object of numbers" \
	'(.pages | type == "number") and .pages > 0 and .bad == 0 and (.free | type == "number") and .pages == .free + .lent and .chunks.total * .chunks.pages_each == .pages and (.clients | type == "array") and ([.clients[].lent] | add // 0) == .lent'
run --json status
jqcheck "status counts the census runs" '.census_runs >= 1'

# --- a user who is not an admin ---------------------------------------------

as_nobody --socket "$sock" status
expect 0 "status as nobody works (the socket is world-readable)"
for c in "set limits.client_max_pages=10" reset-stats reload census; do
	as_nobody --socket "$sock" $c
	expect 1 "$c as nobody: exit 1 with the daemon's refusal" 'may not'
done
as_nobody --socket "$sock" --json clients
jqcheck "clients --json as nobody" 'type == "array"'

# --- the socket path rule -----------------------------------------------------

mkdir -p "$tmp/xdg/rcupool"
ln "$sock" "$tmp/xdg/rcupool/rcupoold.sock"
XDG_RUNTIME_DIR=$tmp/xdg setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$ctl" status >"$tmp/out" 2>"$tmp/err"
rc=$?
expect 0 "a user finds the daemon in \$XDG_RUNTIME_DIR/rcupool"
RUNTIME_DIRECTORY=$tmp/xdg/rcupool RCUPOOL_SOCKET=$sock "$ctl" status >/dev/null 2>"$tmp/err"
rc=$?
expect 0 "RCUPOOL_SOCKET names the socket"
# Whether or not a system daemon runs here: a private mount namespace with
# an empty /run (root only), else only when no system socket exists.
if unshare --mount true 2>/dev/null; then
	XDG_RUNTIME_DIR=$tmp/xdg RUNTIME_DIRECTORY=$tmp/xdg/rcupool \
		unshare --mount sh -c 'mount -t tmpfs tmpfs /run && exec "$@"' sh \
		"$ctl" status >/dev/null 2>"$tmp/err"
	rc=$?
	expect 3 "root ignores \$XDG_RUNTIME_DIR and \$RUNTIME_DIRECTORY: the system socket" \
		'/run/rcupool/rcupoold.sock: no such file (is it running?)'
elif [ ! -e /run/rcupool/rcupoold.sock ]; then
	XDG_RUNTIME_DIR=$tmp/xdg RUNTIME_DIRECTORY=$tmp/xdg/rcupool "$ctl" status >/dev/null 2>"$tmp/err"
	rc=$?
	expect 3 "root ignores \$XDG_RUNTIME_DIR and \$RUNTIME_DIRECTORY: the system socket" \
		'/run/rcupool/rcupoold.sock: no such file (is it running?)'
else
	ok "# SKIP a system rcupoold runs here and no mount namespace is allowed"
fi

# --- watch --------------------------------------------------------------------

timeout --preserve-status -s INT 1.5 "$ctl" --socket "$sock" watch --interval 0.2 \
	>"$tmp/out" 2>"$tmp/err"
rc=$?
expect 0 "watch ends with exit 0 on SIGINT"
check "watch on a pipe: no escape codes" bash -c "! grep -q $'\e' '$tmp/out'"
check "watch refreshes with rates" \
	test "$(grep -Ec '^  rates +[0-9.]+ pages/s, [0-9.]+ depletions/s, [0-9.]+ fallbacks/s' "$tmp/out")" -ge 2
timeout --preserve-status -s INT 1 "$ctl" --socket "$sock" --json watch --interval=200ms \
	>"$tmp/out" 2>"$tmp/err"
rc=$?
expect 0 "watch --json ends with exit 0"
check "watch --json: one document per line, with rates" \
	bash -c "test \$(wc -l <'$tmp/out') -ge 2 && jq -e -s 'all(.[]; (.rates.pages_per_sec | type == \"number\") and (.pages_free | type == \"number\"))' '$tmp/out' >/dev/null"
timeout --preserve-status -s TERM 1 "$ctl" --socket "$sock" watch --interval 0.2 >/dev/null 2>&1
check "watch ends with exit 0 on SIGTERM" test $? -eq 0

# --- bash completion ----------------------------------------------------------

complete_words() {
	bash -c '
		. completion/rcupoolctl
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		_rcupoolctl rcupoolctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		printf "%s\n" "${COMPREPLY[@]}"' _ "$@" 2>/dev/null
}
check "completion: rcupoolctl set --p -> --persist" \
	test "$(complete_words rcupoolctl set --p)" = "--persist"
check "completion: rcupoolctl set client.db.m -> both per-client keys" \
	test "$(complete_words rcupoolctl set client.db.m | sort | tr '\n' ' ')" = "client.db.max_pages= client.db.min_pages= "
check "completion: rcupoolctl stats --format=p -> prometheus" \
	test "$(complete_words rcupoolctl stats --format=p)" = "--format=prometheus"
check "completion: rcupoolctl --socket /x w -> watch" \
	test "$(complete_words rcupoolctl --socket /x w)" = "watch"

# --- bad usage: exit 2, the bad word named ------------------------------------

run frobnicate
expect 2 "unknown command: exit 2" "'frobnicate'"
run --frob status
expect 2 "unknown option: exit 2" "'--frob'"
run status --per-cpu
expect 2 "an option of another command: exit 2" "per-cpu"
run stats --format=xml
expect 2 "unknown format: exit 2" "'xml'"
run watch --interval=soon
expect 2 "bad interval: exit 2" "'soon'"
run watch --interval=2d
expect 2 "interval over a day: exit 2" "10ms to 1d"
# The one time grammar: 1h and "1 min" are intervals as in the configuration.
for iv in 1h "1 min"; do
	timeout --preserve-status -s INT 0.5 "$ctl" --socket "$sock" watch --interval "$iv" \
		>/dev/null 2>"$tmp/err"
	rc=$?
	expect 0 "watch --interval '$iv' runs (exit 0 on SIGINT)"
done
run status extra
expect 2 "an extra argument: exit 2" "'extra'"
run status --format=prometheus
expect 2 "--format elsewhere than stats: exit 2" "'--format'"
run
expect 2 "no command: exit 2" "no command"
"$ctl" --socket >/dev/null 2>"$tmp/err"
rc=$?
expect 2 "--socket without a value: exit 2" "socket"

# --- cannot reach: exit 3, the path and why -----------------------------------

"$ctl" --socket "$tmp/nothing.sock" status >/dev/null 2>"$tmp/err"
rc=$?
expect 3 "no socket: exit 3 naming the path, missing" "$tmp/nothing.sock: no such file (is it running?)"
mkdir -m 0700 "$tmp/private"
ln "$sock" "$tmp/private/s.sock"
as_nobody --socket "$tmp/private/s.sock" status
expect 3 "socket in a 0700 directory as nobody: exit 3, permission denied" \
	"$tmp/private/s.sock: permission denied"
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.bind(sys.argv[1])" \
	"$tmp/stale.sock" 2>/dev/null
"$ctl" --socket "$tmp/stale.sock" status >/dev/null 2>"$tmp/err"
rc=$?
expect 3 "a stale socket nobody listens on: exit 3" "connection refused"
kill "$client_pid" "$daemon_pid" 2>/dev/null
wait "$client_pid" "$daemon_pid" 2>/dev/null
client_pid= daemon_pid=
run status
expect 3 "the daemon gone: exit 3" "cannot reach rcupoold at $sock"

done_testing
