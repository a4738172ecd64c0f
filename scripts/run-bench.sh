#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs every benchmark of build dir $1, side by side in one run.
set -eu
B=${1:-build}
echo "# rcupool benchmarks: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
for b in "$B"/bench/bench_*; do
	[ -x "$b" ] || continue
	echo "## $(basename "$b")"
	"$b" ${BENCH_ARGS:-}
done
