#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# make deb: unsigned binary packages of the working tree into OUT
# (default build/deb): rcupoold, librcupool0, librcupool-dev, then lintian.
#
#   scripts/deb.sh [OUT]
#
# As root, installs what the build needs (apt-get) first.  The tree is
# copied (without build/ and .git) to OUT/src, so the package build never
# touches the developer's build directory.
set -eu

out=${1:-build/deb}
tools="debhelper dpkg-dev lintian"
builddeps="pkgconf liburcu-dev libsystemd-dev libnl-3-dev libnl-genl-3-dev
libinih-dev systemd gcc make"

missing=""
for p in $tools $builddeps; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "rcupool: make deb needs:$missing" >&2
		echo "  sudo apt-get install -y$missing" >&2
		exit 1
	fi
	echo "rcupool: installing:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

version=$(dpkg-parsechangelog -l debian/changelog -S Version)
upstream=${version%-*}
rm -rf "$out"
mkdir -p "$out/src/rcupool-$upstream"
tar --exclude=./build --exclude=./.git -cf - . |
	tar -C "$out/src/rcupool-$upstream" -xf -

echo "rcupool: dpkg-buildpackage -b -us -uc (log: $out/build.log)"
if ! (cd "$out/src/rcupool-$upstream" &&
	dpkg-buildpackage -b -us -uc -j"$(nproc)") >"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log" >&2
	echo "rcupool: the package build failed; see $out/build.log" >&2
	exit 1
fi
mv "$out"/src/*.deb "$out"/src/*.changes "$out"/src/*.buildinfo "$out"/
rm -rf "$out/src"

changes=$(ls "$out"/*.changes)
lintian --tag-display-limit 0 "$changes" >"$out/lintian.txt" 2>&1 || true
echo "rcupool: packages in $out:"
ls -1 "$out"/*.deb | sed 's/^/  /'
if [ -s "$out/lintian.txt" ]; then
	echo "rcupool: lintian says:"
	sed 's/^/  /' "$out/lintian.txt"
else
	echo "rcupool: lintian: nothing to say"
fi
if grep -q '^E: ' "$out/lintian.txt"; then
	echo "rcupool: lintian reported errors" >&2
	exit 1
fi
