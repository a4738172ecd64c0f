#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs the Debian 12 build and test dependencies when run as root;
# otherwise prints the exact apt-get line and fails if anything is missing.
set -eu

PKGS="gcc make pkg-config liburcu-dev libsystemd-dev libnl-3-dev
libnl-genl-3-dev libinih-dev libcmocka-dev jq systemd valgrind
util-linux procps groff-base man-db"

missing=""
for p in $PKGS; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "rcupool: missing Debian packages:$missing" >&2
	echo "rcupool: install them with:" >&2
	echo "  sudo apt-get install -y$missing" >&2
	exit 1
fi

echo "rcupool: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
