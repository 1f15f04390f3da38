#!/bin/sh
# Runs every fuzz target for $1 seconds (default 600), one after another, at low priority.
# Usage: fuzz/run.sh [seconds]   (needs nightly and `cargo install cargo-fuzz`)
set -u
secs=${1:-600}
cd "$(dirname "$0")/.." || exit 1
mkdir -p fuzz/artifacts/logs
for t in ${TARGETS:-engine plan config tags event}; do
    python3 fuzz/seed.py >/dev/null
    nice -n 19 cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -dict=fuzz/json.dict \
        -print_final_stats=1 >"fuzz/artifacts/logs/$t.log" 2>&1
    echo "$t exit $?" >>fuzz/artifacts/logs/summary.txt
done
