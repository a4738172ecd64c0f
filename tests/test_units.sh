#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# systemd units, sysusers/tmpfiles snippets, man pages, bash completion and
# make install, checked the way a distribution would use them:
#
#  - make install DESTDIR=... PREFIX=/usr installs every file;
#  - systemd-analyze verify prints nothing on stderr (it exits 0 on unknown
#    keys, so stderr is what counts); the units are verified as installed
#    by "make install PREFIX=$tmp/prefix" so that ExecStart= exists and
#    Documentation=man: finds the installed pages;
#  - systemd-analyze security --offline=true: exposure at most 1.5;
#  - systemd-sysusers / systemd-tmpfiles --root on the DESTDIR;
#  - the installed daemon, socket-activated on a seqpacket socket the way
#    rcupoold.socket does it, answers "rcupoolctl status".
#
# Runs as root (CI) or not: nothing here touches the host's configuration.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib/tap.sh

build=${RCUPOOL_BUILD:-build}
tmp=$(mktemp -d /tmp/rcupool-units.XXXXXX)
# Installing with other directories rebuilds what names them: do it in a
# build directory of our own, not under the other tests' feet.
ibuild=$tmp/build
daemon_pid=
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

root=$tmp/root     # make install DESTDIR=$root PREFIX=/usr
prefix=$tmp/prefix # make install PREFIX=$prefix (for systemd-analyze verify)

# Run "$@", keeping stdout and stderr apart in $tmp/out and $tmp/err.
run() {
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}
show() { # show FILE: its lines as TAP diagnostics
	sed 's/^/#   /' "$1"
}

# --- make install -----------------------------------------------------------

run make -j2 --no-print-directory B="$ibuild" install DESTDIR="$root" PREFIX=/usr
if [ "$rc" -eq 0 ]; then
	ok "make install DESTDIR=... PREFIX=/usr"
else
	not_ok "make install DESTDIR=... PREFIX=/usr (exit $rc)"
	show "$tmp/err"
fi

multiarch=$(${CC:-cc} -dumpmachine)
libdir=/usr/lib/$multiarch
# Where this system's systemd wants units (Debian 12: /lib/systemd/system).
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null)
unitdir=${unitdir:-/lib/systemd/system}
missing=""
for f in /usr/sbin/rcupoold /usr/bin/rcupoolctl \
	"$libdir/librcupool.so.0.1.0" "$libdir/librcupool.a" \
	/usr/include/rcupool.h "$libdir/pkgconfig/rcupool.pc" \
	"$unitdir/rcupoold.service" \
	"$unitdir/rcupoold.socket" \
	/usr/lib/sysusers.d/rcupool.conf /usr/lib/tmpfiles.d/rcupool.conf \
	/etc/rcupool/rcupoold.conf \
	/usr/share/man/man8/rcupoold.8 /usr/share/man/man8/rcupoolctl.8 \
	/usr/share/man/man5/rcupoold.conf.5 \
	/usr/share/bash-completion/completions/rcupoolctl; do
	[ -f "$root$f" ] || missing="$missing $f"
done
[ -d "$root/etc/rcupool/rcupoold.conf.d" ] || missing="$missing /etc/rcupool/rcupoold.conf.d/"
if [ -z "$missing" ]; then
	ok "make install installs every file"
else
	not_ok "make install installs every file; missing:$missing"
fi
check "soname links: librcupool.so -> librcupool.so.0 -> librcupool.so.0.1.0" \
	test "$(readlink "$root$libdir/librcupool.so")" = librcupool.so.0 -a \
	"$(readlink "$root$libdir/librcupool.so.0")" = librcupool.so.0.1.0 -a \
	-x "$root$libdir/librcupool.so.0.1.0"
check "installed rcupoold.service runs /usr/sbin/rcupoold" \
	grep -qx 'ExecStart=/usr/sbin/rcupoold' \
	"$root$unitdir/rcupoold.service"
check "installed rcupoold.socket listens on /run/rcupool/rcupoold.sock" \
	grep -qx 'ListenSequentialPacket=/run/rcupool/rcupoold.sock' \
	"$root$unitdir/rcupoold.socket"

run make -j2 --no-print-directory B="$ibuild" uninstall DESTDIR="$root" PREFIX=/usr
left=$(cd "$root" && find . ! -type d ! -path ./etc/rcupool/rcupoold.conf | sort)
if [ "$rc" -eq 0 ] && [ -z "$left" ]; then
	ok "make uninstall removes every file but the configuration"
else
	not_ok "make uninstall removes every file but the configuration (exit $rc)"
	echo "$left" | sed 's/^/#   left: /'
fi
run make -j2 --no-print-directory B="$ibuild" install DESTDIR="$root" PREFIX=/usr
[ "$rc" -eq 0 ] || { diag "make install again failed"; show "$tmp/err"; }

# --- the README's library example, built as a user builds it ----------------

# The installed header and rcupool.pc, nothing from the source tree.
sed -n '/^\/\* cc demo.c/,/^```$/p' README.md | sed '$d' >"$tmp/demo.c"
pcdir=$root$libdir/pkgconfig
run env PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$pcdir" \
	pkg-config --cflags --libs rcupool
flags=$(cat "$tmp/out")
if [ -s "$tmp/demo.c" ] && [ "$rc" -eq 0 ]; then
	# shellcheck disable=SC2086
	run ${CC:-cc} -o "$tmp/demo" "$tmp/demo.c" $flags
	check "the README example compiles against the installed rcupool.pc" \
		test "$rc" -eq 0
	[ "$rc" -eq 0 ] || show "$tmp/err"
	# No daemon on this path: AUTO falls back to a private reserve.
	run env LD_LIBRARY_PATH="$root$libdir" RCUPOOL_SOCKET="$tmp/none.sock" \
		"$tmp/demo"
	check "the README example runs: 99999 objects freed privately" \
		grep -q '^private: 99999 objects' "$tmp/out"
else
	not_ok "the README example and pkg-config rcupool (exit $rc)"
	show "$tmp/err"
fi

# --- systemd-analyze --------------------------------------------------------

run make -j2 --no-print-directory B="$ibuild" install PREFIX="$prefix"
[ "$rc" -eq 0 ] || { diag "make install PREFIX=$prefix failed"; show "$tmp/err"; }
units=("$prefix/lib/systemd/system/rcupoold.service"
	"$prefix/lib/systemd/system/rcupoold.socket")
# Documentation=man:... is checked against the installed pages.
MANPATH="$prefix/share/man:" run systemd-analyze verify "${units[@]}"
if [ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ]; then
	ok "systemd-analyze verify: exit 0, nothing on stderr"
else
	not_ok "systemd-analyze verify: exit $rc, stderr:"
	show "$tmp/err"
fi

run systemd-analyze security --offline=true "${units[0]}"
exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$tmp/out")
if [ -n "$exposure" ]; then
	diag "systemd-analyze security exposure: $exposure"
	check "systemd-analyze security: exposure $exposure <= 1.5" \
		awk -v e="$exposure" 'BEGIN { exit !(e <= 1.5) }'
else
	not_ok "systemd-analyze security printed no exposure (exit $rc)"
	show "$tmp/err"
fi

# The syscall filter as systemd applies it: the first SystemCallFilter= is
# the allow list, each ~ line takes calls away; groups expand recursively.
# Every call the daemon makes on its normal paths must survive, or it
# degrades silently (an EPERM from sched_setaffinity leaves every CPU list
# empty).
expand_calls() {
	local w
	for w in "$@"; do
		case $w in
		@*) expand_calls $(systemd-analyze syscall-filter "$w" 2>/dev/null |
			sed -n 's/^    \([-@a-z_0-9]*\)$/\1/p') ;;
		*) echo "$w" ;;
		esac
	done
}
allowed=$tmp/allowed
first=1
while IFS= read -r line; do
	words=${line#SystemCallFilter=}
	if [ $first = 1 ]; then
		expand_calls $words | sort -u >"$allowed"
		first=0
	else
		expand_calls ${words#\~} | sort -u >"$tmp/denied"
		comm -23 "$allowed" "$tmp/denied" >"$tmp/left" && mv "$tmp/left" "$allowed"
	fi
done < <(grep '^SystemCallFilter=' "${units[0]}")
missing=""
for call in sched_setaffinity sched_getaffinity memfd_create fcntl ftruncate \
	fallocate mmap munmap mlock socket bind listen accept4 connect sendmsg \
	recvmsg getsockopt setsockopt eventfd2 epoll_ctl epoll_wait signalfd4 \
	timerfd_create timerfd_settime rt_sigprocmask chmod mkdir unlink \
	openat read write close rseq clock_gettime getrandom; do
	grep -qx "$call" "$allowed" || missing="$missing $call"
done
check "the syscall filter lets through every call the daemon makes${missing:+ (refused:$missing)}" \
	test -z "$missing"

# Settings the issue asks for, and those that must not be there.
svc=${units[0]}
want=(Type=notify 'ExecReload=/bin/kill -HUP $MAINPID' WatchdogSec=
	Restart=on-failure User=rcupool LimitMEMLOCK= ProtectSystem=strict
	ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes
	'RestrictAddressFamilies=AF_UNIX AF_NETLINK'
	SystemCallFilter=@system-service CapabilityBoundingSet= RuntimeDirectory=rcupool)
bad=""
for w in "${want[@]}"; do
	grep -qF -- "$w" <(grep -v '^#' "$svc") || bad="$bad missing:$w"
done
for w in DynamicUser RemoveIPC PrivateNetwork PrivateUsers Type=notify-reload; do
	grep -q "^$w" "$svc" && bad="$bad present:$w"
done
if [ -z "$bad" ]; then
	ok "rcupoold.service has the required settings and none of the forbidden"
else
	not_ok "rcupoold.service settings:$bad"
fi
check "rcupoold.socket: SocketGroup=rcupool, SocketMode=0666" \
	grep -qzP 'SocketGroup=rcupool\n(.*\n)*SocketMode=0666\n' "${units[1]}"

# --- sysusers and tmpfiles on the DESTDIR -----------------------------------

run systemd-sysusers --root="$root"
if [ "$rc" -eq 0 ]; then
	ok "systemd-sysusers --root"
else
	not_ok "systemd-sysusers --root (exit $rc)"
	show "$tmp/err"
fi
uid=$(awk -F: '$1 == "rcupool" { print $3 }' "$root/etc/passwd" 2>/dev/null)
gid=$(awk -F: '$1 == "rcupool" { print $3 }' "$root/etc/group" 2>/dev/null)
check "user rcupool in etc/passwd, with its group rcupool" \
	test -n "$uid" -a -n "$gid" -a \
	"$(awk -F: '$1 == "rcupool" { print $4 }' "$root/etc/passwd")" = "$gid"
check "group rcupool-admin in etc/group" \
	grep -q '^rcupool-admin:' "$root/etc/group"

run systemd-tmpfiles --root="$root" --create
if [ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ]; then
	ok "systemd-tmpfiles --root --create"
else
	not_ok "systemd-tmpfiles --root --create (exit $rc)"
	show "$tmp/err"
fi
check "run/rcupool: a directory, 0755, owned by rcupool:rcupool" \
	test -d "$root/run/rcupool" -a \
	"$(stat -c '%a %u %g' "$root/run/rcupool" 2>/dev/null)" = "755 $uid $gid"
check "etc/rcupool/rcupoold.conf.d is a directory" \
	test -d "$root/etc/rcupool/rcupoold.conf.d"

# --- man pages ----------------------------------------------------------------

# The pages as installed (generated from man/*.in with the install paths).
for page in "$root"/usr/share/man/man8/rcupoold.8 "$root"/usr/share/man/man8/rcupoolctl.8 \
	"$root"/usr/share/man/man5/rcupoold.conf.5; do
	run groff -man -Tutf8 -ww -z "$page"
	if [ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ]; then
		ok "groff -man -ww ${page#"$root"}: no warning"
	else
		not_ok "groff -man -ww ${page#"$root"}: exit $rc"
		show "$tmp/err"
	fi
done
MANWIDTH=80 run man -l "$root/usr/share/man/man8/rcupoolctl.8"
check "man -l renders the installed rcupoolctl(8)" \
	grep -q 'reset-stats' "$tmp/out"

# Paths agree: what the installed pages and tmpfiles name is what the
# installed daemon reads (PREFIX=/usr: /etc/rcupool).
conf_path=$("$root/usr/sbin/rcupoold" --help | sed -n 's/^ *main file: *\([^ ]*\).*/\1/p')
check "installed rcupoold --help: main file /etc/rcupool/rcupoold.conf" \
	test "$conf_path" = /etc/rcupool/rcupoold.conf
check "the installed man pages name the same file, and no @...@ is left" \
	bash -c "grep -q '/etc/rcupool/rcupoold.conf' '$root/usr/share/man/man5/rcupoold.conf.5' && grep -q '/etc/rcupool/rcupoold.conf' '$root/usr/share/man/man8/rcupoold.8' && ! grep -q '@[A-Z]*@' '$root'/usr/share/man/man*/rcupool*"
check "the installed tmpfiles snippet creates /etc/rcupool/rcupoold.conf.d" \
	grep -q '^d /etc/rcupool/rcupoold.conf.d ' "$root/usr/lib/tmpfiles.d/rcupool.conf"
diag "PREFIX=$prefix rcupoold reads: $("$prefix/sbin/rcupoold" --help 2>&1 | grep 'main file')"
local_path=$("$prefix/sbin/rcupoold" --help | sed -n 's/^ *main file: *\([^ ]*\).*/\1/p')
check "a PREFIX=$prefix build reads $prefix/etc/rcupool/rcupoold.conf, its pages say so" \
	bash -c "test '$local_path' = '$prefix/etc/rcupool/rcupoold.conf' && grep -q '$prefix/etc/rcupool/rcupoold.conf' '$prefix/share/man/man5/rcupoold.conf.5'"

# rcupoold.conf(5) documents every key of the shipped configuration.
undoc=""
section=""
while IFS= read -r line; do
	case $line in
	'['*']') section=${line#[}; section=${section%]} ;;
	'#'[a-z]*' = '* | '#'[a-z]*' ='*)
		key=${line#\#}; key=${key%% *}
		grep -q "^\.B $key\$\|^\.BR $key " man/rcupoold.conf.5.in ||
			undoc="$undoc $section.$key"
		;;
	esac
done <conf/rcupoold.conf
if [ -z "$undoc" ]; then
	ok "rcupoold.conf(5) documents every key of conf/rcupoold.conf"
else
	not_ok "rcupoold.conf(5) lacks:$undoc"
fi

# --- bash completion ------------------------------------------------------------

complete_words() { # complete_words WORD...: COMPREPLY for the last word
	bash -c '
		. completion/rcupoolctl
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		f=$(complete -p rcupoolctl | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
		"$f" rcupoolctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		printf "%s\n" "${COMPREPLY[@]}"' completion "$@" 2>&1
}
check "completion: rcupoolctl s -> set stats status" \
	test "$(complete_words rcupoolctl s | sort | tr '\n' ' ')" = "set stats status "
check "completion: rcupoolctl --json re -> reload reset-stats revert" \
	test "$(complete_words rcupoolctl --json re | sort | tr '\n' ' ')" = "reload reset-stats revert "
check "completion: rcupoolctl set balance.l -> balance.low=" \
	test "$(complete_words rcupoolctl set balance.l)" = "balance.low="
check "completion: rcupoolctl unset balance.l -> balance.low (no =)" \
	test "$(complete_words rcupoolctl unset balance.l)" = "balance.low"
check "completion: rcupoolctl stats --f -> --format=" \
	test "$(complete_words rcupoolctl stats --f)" = "--format="

# --- the installed daemon, socket-activated -------------------------------------

sock=$tmp/sock/rcupoold.sock
mkdir -p "$tmp/sock"
if ! "$build/rcupoold" --version >/dev/null 2>&1; then
	not_ok "rcupoold --version works"
else
	systemd-socket-activate --seqpacket -l "$sock" \
		"$root/usr/sbin/rcupoold" --config /dev/null >"$tmp/daemon.log" 2>&1 &
	daemon_pid=$!
	# systemd-socket-activate listens before it execs the daemon, so a
	# request waits in the backlog until the daemon reads it.
	for _ in $(seq 50); do
		[ -S "$sock" ] && break
		sleep 0.1
	done
	run timeout 20 "$root/usr/bin/rcupoolctl" --socket "$sock" status
	if [ "$rc" -eq 0 ]; then
		ok "socket-activated rcupoold answers rcupoolctl status"
		show "$tmp/out"
	else
		not_ok "socket-activated rcupoold answers rcupoolctl status (exit $rc)"
		show "$tmp/err"
		show "$tmp/daemon.log"
	fi
	kill -TERM "$daemon_pid" 2>/dev/null
	wait "$daemon_pid"
	drc=$?
	daemon_pid=
	if [ "$drc" -eq 0 ]; then
		ok "rcupoold stops on SIGTERM with exit 0"
	else
		not_ok "rcupoold stops on SIGTERM with exit 0 (exit $drc)"
		show "$tmp/daemon.log"
	fi
fi

done_testing
