#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Runs every benchmark of a build directory side by side in one run.
#
#   scripts/run-bench.sh [BUILD_DIR] [--json] [--quick] [--[no-]callgrind]
#
# BENCH_ARGS (environment) is read as more of these options, so
# `make bench BENCH_ARGS=--json` works.  Text: one table per benchmark.
# --json: one JSON document {"machine": {...}, "benchmarks": [...]} with one
# element per benchmark run.  Instructions per object counted by callgrind
# (deterministic) are added when valgrind is installed (--callgrind: always,
# a warning without valgrind; --no-callgrind: never).  No time is asserted:
# the exit status is that of the programs only.
set -eu
B=build
json=0 quick= callgrind=auto
for a in "$@" ${BENCH_ARGS:-}; do
	case $a in
	--json) json=1 ;;
	--quick) quick=--quick ;;
	--callgrind) callgrind=1 ;;
	--no-callgrind) callgrind=0 ;;
	-*) echo "run-bench.sh: unknown option $a" >&2; exit 2 ;;
	*) B=$a ;;
	esac
done
export RCUPOOL_BUILD=${RCUPOOL_BUILD:-$B}
ncpu=$(nproc)
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
out=$(mktemp -d /tmp/rcupool-bench-run.XXXXXX)
trap 'rm -rf "$out"' EXIT

# name|command line (word-split; no quoting inside)
runs="pages|$B/bench/bench_pages
arena|$B/bench/bench_arena $quick
e2e_1_thread|$B/bench/bench_e2e $quick
pagestore|$B/bench/bench_pagestore $quick
e2e_${ncpu}_threads|$B/bench/bench_e2e $quick --threads $ncpu --no-latency
e2e_1_thread_2m|$B/bench/bench_e2e $quick --objects 2000000 --no-latency
e2e_${ncpu}_threads_2m|$B/bench/bench_e2e $quick --objects 2000000 --threads $ncpu --no-latency
neighbour|$B/bench/bench_neighbour $quick
lend|$B/bench/bench_lend $quick
sizing|$B/bench/bench_sizing $quick
sizing_flat_5s|$B/bench/bench_sizing --series-ms 5000 --rate 0"

first=1
[ $json = 1 ] && printf '{"machine":{"nproc":%s,"cpu_model":"%s","date":"%s"},"benchmarks":[' \
	"$ncpu" "$model" "$date"
[ $json = 0 ] && echo "# rcupool benchmarks: $date, $ncpu CPUs, $model"
status=0
echo "$runs" | while IFS='|' read -r name cmd; do
	prog=${cmd%% *}
	[ -x "$prog" ] || { echo "run-bench.sh: $prog missing (make benches)" >&2; exit 1; }
	if [ $json = 1 ]; then
		[ $first = 1 ] || printf ','
		first=0
		# shellcheck disable=SC2086
		$cmd --json | tr -d '\n'
	else
		echo "## $name: $cmd"
		# shellcheck disable=SC2086
		$cmd
	fi
done || status=$?

if [ $callgrind = auto ]; then
	callgrind=0
	command -v valgrind >/dev/null && callgrind=1
fi
if [ $callgrind = 1 ]; then
	if ! command -v valgrind >/dev/null; then
		echo "run-bench.sh: --callgrind needs valgrind" >&2
	else
		n=100000
		[ $json = 1 ] && printf ',{"benchmark":"callgrind","objects":%s,"instructions_per_object":{' $n
		[ $json = 0 ] && echo "## callgrind: instructions per object, one thread, $n objects, until all are freed (every thread counted)"
		sep=
		for k in free call_rcu defer_rcu rcupool_private rcupool_private_defaults proto_free_in_cb proto_local_free; do
			valgrind --tool=callgrind --instr-atstart=no \
				--callgrind-out-file="$out/cg.$k" \
				"$B/bench/bench_e2e" --callgrind $k -n $n >/dev/null 2>&1 || true
			ir=$(sed -n 's/^totals: *//p' "$out/cg.$k.1" 2>/dev/null | head -n1)
			ir=${ir:-0}
			per=$(awk -v i="$ir" -v n=$n 'BEGIN { printf "%.1f", i / n }')
			if [ $json = 1 ]; then
				printf '%s"%s":%s' "$sep" $k "$per"
				sep=,
			else
				printf '  %-20s %8s\n' $k "$per"
			fi
		done
		[ $json = 1 ] && printf '}}'
	fi
fi
[ $json = 1 ] && printf ']}\n'
exit $status
