#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The Debian packages (debian/, make deb): build them from this tree, unpack
# them into a temporary root (dpkg -x), check the file lists, run the
# unpacked rcupoolctl, run rcupoold's postinst against that root
# (DPKG_ROOT: systemd-sysusers, systemd-tmpfiles and deb-systemd-helper all
# honour it, and without systemd as PID 1 nothing is started) and build the
# README's library example against the unpacked rcupool.pc.  lintian must
# report no error.  Nothing here touches the host's configuration.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/lib/tap.sh

why=""
for t in dpkg-buildpackage dh lintian dpkg-parsechangelog; do
	command -v "$t" >/dev/null || why="$why $t"
done
if [ -n "$why" ]; then
	echo "1..0 # SKIP packaging tools missing:$why (make deb installs them as root)"
	exit 0
fi

tmp=$(mktemp -d /tmp/rcupool-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/deb
root=$tmp/root
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
version=$(dpkg-parsechangelog -l debian/changelog -S Version)

scripts/deb.sh "$out" >"$tmp/make-deb.log" 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then
	ok "scripts/deb.sh (make deb) builds the packages"
else
	not_ok "scripts/deb.sh (make deb) builds the packages (exit $rc)"
	sed 's/^/#   /' "$tmp/make-deb.log" | tail -n 40
	done_testing
	exit 1
fi
for p in rcupoold librcupool0 librcupool-dev; do
	check "$p ${version} built" test -f "$out/${p}_${version}_${arch}.deb"
done
sed 's/^/# lintian: /' "$out/lintian.txt"
check "lintian: no error" bash -c "! grep -q '^E: ' '$out/lintian.txt'"

list() { dpkg-deb -c "$out/${1}_${version}_${arch}.deb" | awk '{print $6}' | sed 's|^\./|/|'; }
expect_files() { # expect_files PACKAGE FILE...
	local p=$1 missing="" f
	shift
	list "$p" >"$tmp/list"
	for f in "$@"; do
		grep -qx -- "$f" "$tmp/list" || missing="$missing $f"
	done
	if [ -z "$missing" ]; then
		ok "$p holds its files"
	else
		not_ok "$p lacks:$missing"
	fi
}
expect_files rcupoold /usr/sbin/rcupoold /usr/bin/rcupoolctl \
	/etc/rcupool/rcupoold.conf /etc/rcupool/rcupoold.conf.d/ \
	/lib/systemd/system/rcupoold.service /lib/systemd/system/rcupoold.socket \
	/usr/lib/sysusers.d/rcupool.conf /usr/lib/tmpfiles.d/rcupool.conf \
	/usr/share/man/man5/rcupoold.conf.5.gz /usr/share/man/man8/rcupoold.8.gz \
	/usr/share/man/man8/rcupoolctl.8.gz \
	/usr/share/bash-completion/completions/rcupoolctl
expect_files librcupool0 "/usr/lib/$multiarch/librcupool.so.0" \
	"/usr/lib/$multiarch/librcupool.so.0.1.0"
expect_files librcupool-dev /usr/include/rcupool.h \
	"/usr/lib/$multiarch/librcupool.so" "/usr/lib/$multiarch/librcupool.a" \
	"/usr/lib/$multiarch/pkgconfig/rcupool.pc"
check "the configuration is a conffile" \
	bash -c "dpkg-deb -f '$out/rcupoold_${version}_${arch}.deb' >/dev/null && dpkg-deb --ctrl-tarfile '$out/rcupoold_${version}_${arch}.deb' | tar -xOf - ./conffiles | grep -qx /etc/rcupool/rcupoold.conf"
check "librcupool0 has a symbols file" \
	bash -c "dpkg-deb --ctrl-tarfile '$out/librcupool0_${version}_${arch}.deb' | tar -tf - | grep -qx ./symbols"

for p in rcupoold librcupool0 librcupool-dev; do
	dpkg -x "$out/${p}_${version}_${arch}.deb" "$root"
done
"$root/usr/bin/rcupoolctl" --version >"$tmp/out" 2>&1
check "the unpacked rcupoolctl --version: rcupoolctl ${version%-*}" \
	grep -qx "rcupoolctl ${version%-*}" "$tmp/out"
"$root/usr/sbin/rcupoold" --help >"$tmp/out" 2>&1
check "the unpacked rcupoold reads /etc/rcupool/rcupoold.conf" \
	grep -Eq '^ +main file: +/etc/rcupool/rcupoold.conf' "$tmp/out"

# The postinst against the unpacked root: users, directories, units enabled.
mkdir -p "$root/etc" "$root/var/lib"
touch "$root/etc/passwd" "$root/etc/group" "$root/etc/shadow" "$root/etc/gshadow"
dpkg-deb -e "$out/rcupoold_${version}_${arch}.deb" "$tmp/ctl"
DPKG_ROOT=$root DPKG_MAINTSCRIPT_PACKAGE=rcupoold sh "$tmp/ctl/postinst" configure \
	>"$tmp/postinst.log" 2>&1
rc=$?
check "rcupoold's postinst configure (DPKG_ROOT, no systemd PID 1) exits 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || sed 's/^/#   /' "$tmp/postinst.log"
check "postinst: user rcupool and groups rcupool, rcupool-admin" \
	bash -c "grep -q '^rcupool:' '$root/etc/passwd' && grep -q '^rcupool:' '$root/etc/group' && grep -q '^rcupool-admin:' '$root/etc/group'"
uid=$(awk -F: '$1 == "rcupool" { print $3 }' "$root/etc/passwd")
check "postinst: /run/rcupool owned by rcupool, /etc/rcupool/rcupoold.conf.d there" \
	bash -c "[ \"\$(stat -c %u '$root/run/rcupool' 2>/dev/null)\" = '$uid' ] && [ -d '$root/etc/rcupool/rcupoold.conf.d' ]"
check "postinst: rcupoold.socket and rcupoold.service enabled" \
	bash -c "ls '$root'/etc/systemd/system/*.wants/rcupoold.socket '$root'/etc/systemd/system/*.wants/rcupoold.service >/dev/null 2>&1"

# The README's library example against the unpacked -dev package.
sed -n '/^\/\* cc demo.c/,/^```$/p' README.md | sed '$d' >"$tmp/demo.c"
flags=$(PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_PATH=$root/usr/lib/$multiarch/pkgconfig \
	pkg-config --cflags --libs rcupool 2>"$tmp/err")
# shellcheck disable=SC2086
${CC:-cc} -o "$tmp/demo" "$tmp/demo.c" $flags >"$tmp/err" 2>&1
rc=$?
check "the README example builds against the package's rcupool.pc" test "$rc" -eq 0
[ "$rc" -eq 0 ] || sed 's/^/#   /' "$tmp/err"
LD_LIBRARY_PATH=$root/usr/lib/$multiarch RCUPOOL_SOCKET=$tmp/none.sock "$tmp/demo" \
	>"$tmp/out" 2>&1
check "... and runs with the package's librcupool.so.0" grep -q '^private: 99999 objects' "$tmp/out"

done_testing
