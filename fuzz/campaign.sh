#!/bin/sh
# A fuzz campaign: runs each target in chunks of $CHUNK seconds (default 600) for $1 seconds in all,
# keeping the corpus between chunks, and records after every chunk the CPU seconds it used, the
# executions and the coverage (edges, features, corpus units) in fuzz/artifacts/logs/campaign.tsv,
# so the table shows whether coverage has stopped growing. Targets run one after another in a lane;
# run several lanes at once (one per core) with different TARGETS.
# Usage: TARGETS="plan tags" fuzz/campaign.sh 3600      (needs nightly and `cargo install cargo-fuzz`)
# Summary: python3 fuzz/report.py
set -u
total=${1:-3600}
chunk=${CHUNK:-600}
cd "$(dirname "$0")/.." || exit 1
logs=fuzz/artifacts/logs
mkdir -p "$logs"
python3 fuzz/seed.py >/dev/null
for t in ${TARGETS:-engine plan config tags event}; do
    done_s=0
    while [ "$done_s" -lt "$total" ]; do
        started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
        log="$logs/$t-$(date -u +%Y%m%dT%H%M%S).log"
        /usr/bin/time -f 'time: %e wall %U user %S sys' \
            cargo +nightly fuzz run "$t" -- -max_total_time="$chunk" -dict=fuzz/json.dict \
            -print_final_stats=1 >"$log" 2>&1
        code=$?
        python3 fuzz/report.py --row "$t" "$started" "$code" "$log"
        [ "$code" -eq 0 ] || { echo "$t: exit $code, see $log" >&2; break; }
        done_s=$((done_s + chunk))
    done
done
