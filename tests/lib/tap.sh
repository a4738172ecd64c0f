# SPDX-License-Identifier: LGPL-2.1-or-later
# Minimal TAP for shell tests: source it, call ok/not_ok/check, then done_testing.
_tap_n=0
_tap_fail=0
ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
not_ok() { _tap_n=$((_tap_n + 1)); _tap_fail=$((_tap_fail + 1)); echo "not ok $_tap_n - $*"; }
# check "description" command args...: ok when the command succeeds
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
diag() { echo "# $*"; }
done_testing() { echo "1..$_tap_n"; [ "$_tap_fail" -eq 0 ]; }
