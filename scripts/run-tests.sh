#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs test programs and prints one summary line for the whole run.
#
#   run-tests.sh --group LABEL BUILDDIR TEST... [--group ...]
#
# Each test prints TAP (cmocka with CMOCKA_MESSAGE_OUTPUT=TAP, shell tests
# through tests/lib/tap.sh); every "ok"/"not ok" line counts.  A program
# that dies without reporting a failure counts as one failure, and so does
# one that exits 0 without reporting any result.
#
# Hermetic: every test program gets a fresh temporary directory holding
# RCUPOOL_SOCKET (where no daemon listens) and XDG_RUNTIME_DIR, so that
# nothing reaches a daemon running on this machine through the default
# socket; tests that start a daemon set their own socket.
set -u

passed=0
failed=0
skipped=0
failures=()

export CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
TEST_TIMEOUT=${TEST_TIMEOUT:-600}

run_one() {
	local label=$1 dir=$2 name=$3 cmd log rc ok notok
	if [ -x "$dir/tests/$name" ]; then
		cmd=("$dir/tests/$name")
	elif [ -f "tests/$name.sh" ]; then
		cmd=(bash "tests/$name.sh")
	else
		echo "FAIL $label/$name: no such test program"
		failed=$((failed + 1)); failures+=("$label/$name")
		return
	fi
	log="$dir/tests/$name.log"
	mkdir -p "$dir/tests"
	local t0=$SECONDS rt
	rt=$(mktemp -d /tmp/rcupool-test.XXXXXX) && chmod 0755 "$rt"
	mkdir -m 0700 "$rt/xdg"
	env -u RUNTIME_DIRECTORY -u RCUPOOL_CONFDIR RCUPOOL_BUILD="$dir" \
		RCUPOOL_SOCKET="$rt/no-daemon.sock" XDG_RUNTIME_DIR="$rt/xdg" \
		timeout -k 10 "$TEST_TIMEOUT" "${cmd[@]}" >"$log" 2>&1
	rc=$?
	rm -rf "$rt"
	ok=$(grep -E '^ok [0-9]+' "$log" | grep -cvE '# *SKIP')
	skip=$(grep -cE '^(not )?ok [0-9]+.*# *SKIP' "$log")
	# A whole program skipped says so in its plan: "1..0 # SKIP why".
	if grep -qE '^1\.\.0 *# *SKIP' "$log"; then
		skip=$((skip + 1))
	fi
	notok=$(grep -E '^not ok [0-9]+' "$log" | grep -cvE '# *SKIP')
	skipped=$((skipped + skip))
	if [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; then
		notok=1
	fi
	if [ "$rc" -eq 0 ] && [ $((ok + skip + notok)) -eq 0 ]; then
		echo "no result reported (exit 0 but no ok/not ok line)" >>"$log"
		notok=1
	fi
	passed=$((passed + ok))
	failed=$((failed + notok))
	if [ "$notok" -ne 0 ]; then
		echo "FAIL $label/$name: $ok passed, $notok failed, exit $rc ($((SECONDS - t0))s); log $log:"
		tail -n 60 "$log" | sed 's/^/    /'
		failures+=("$label/$name")
	else
		echo "ok   $label/$name: $ok passed$([ "$skip" -gt 0 ] && echo ", $skip skipped") ($((SECONDS - t0))s)"
	fi
}

label="" dir=""
while [ $# -gt 0 ]; do
	if [ "$1" = --group ]; then
		label=$2 dir=$3
		shift 3
		continue
	fi
	run_one "$label" "$dir" "$1"
	shift
done

if [ ${#failures[@]} -gt 0 ]; then
	echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
