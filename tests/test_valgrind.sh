#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# librcupool under valgrind memcheck: every client test (memb and qsbr),
# no error, no leak beyond liburcu's never-joined threads (valgrind.supp).
# rseq is not available under valgrind, so the global-pool path runs.
cd "$(dirname "$0")/.." || exit 1
. tests/lib/tap.sh
B=${RCUPOOL_BUILD:-build}
# Hermetic: the clients must not find a daemon running on this machine.
rt=$(mktemp -d /tmp/rcupool-vg.XXXXXX) || exit 1
trap 'rm -rf "$rt"' EXIT
export RCUPOOL_SOCKET=$rt/no-daemon.sock XDG_RUNTIME_DIR=$rt

if ! command -v valgrind >/dev/null; then
	echo "1..0 # SKIP valgrind not installed"
	exit 0
fi
for t in test_pool test_pool_qsbr; do
	if [ ! -x "$B/tests/$t" ]; then
		not_ok "$t: $B/tests/$t not built"
		continue
	fi
	log=$(mktemp)
	RCUPOOL_TEST_SLOW=1 CMOCKA_MESSAGE_OUTPUT=TAP valgrind -q --error-exitcode=1 \
		--leak-check=full --errors-for-leak-kinds=definite,possible \
		--suppressions=tests/valgrind.supp --child-silent-after-fork=yes \
		"$B/tests/$t" >"$log" 2>&1
	rc=$?
	if [ $rc -eq 0 ] && ! grep -q '^not ok [0-9]* -' "$log"; then
		ok "$t under valgrind memcheck: clean ($(grep -c '^ok' "$log") tests)"
	else
		not_ok "$t under valgrind memcheck (exit $rc)"
		sed 's/^/# /' "$log" | tail -n 60
	fi
	rm -f "$log"
done
done_testing
