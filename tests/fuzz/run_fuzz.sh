#!/bin/sh
# run_fuzz.sh TARGET CORPUS WORK SECONDS: runs a libFuzzer target for SECONDS, starting from the
# seed corpus CORPUS (read only) and keeping what it finds in WORK. A crash, leak, sanitizer
# finding or timeout exits non-zero; the input that caused it is saved in WORK/artifacts.
set -eu
target=$1 corpus=$2 work=$3 seconds=$4
mkdir -p "$work/found" "$work/artifacts"
exec "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/found" "$corpus"
