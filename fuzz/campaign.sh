#!/usr/bin/env bash
# Runs a libFuzzer campaign of every target (or those named) and appends one
# line per target to a figures file (default: fuzz/campaign-latest.txt):
#   target  seconds  executions  exec/s  coverage (edges)  features  corpus  findings
#
#   fuzz/campaign.sh 600                    # 10 min per target, all targets
#   fuzz/campaign.sh 60 oracle stream       # only these
#   FUZZ_JOBS=2 fuzz/campaign.sh 600 oracle # two workers (both cores)
#   FUZZ_FAIL_ON_FINDING=1: exit 1 if a target found something (CI)
#   FUZZ_RUNS=1000000 fuzz/campaign.sh 7200 rx_check  # stop after N executions
#                                           (or the time, whichever first)
#   FUZZ_ARGS="-max_len=1024" fuzz/campaign.sh 3600 oracle  # more libFuzzer flags
#
# Needs cargo-fuzz and the nightly toolchain (NIGHTLY, default
# nightly-2025-05-19). Built without a sanitizer (the crates under test
# forbid unsafe code; -s address is the same command with ASan, about half
# the speed). Findings land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:?seconds per target}
shift || true
nightly=${NIGHTLY:-nightly-2025-05-19}
jobs=${FUZZ_JOBS:-1}
out=${FUZZ_FIGURES:-campaign-latest.txt}
targets=("$@")
runs=()
[ -n "${FUZZ_RUNS:-}" ] && runs=(-runs="$FUZZ_RUNS")
par=()
[ "$jobs" -gt 1 ] && par=(-jobs="$jobs" -workers="$jobs")
tdir=()
[ -n "${FUZZ_TARGET_DIR:-}" ] && tdir=(--target-dir "$FUZZ_TARGET_DIR")
# Word-split on purpose: a list of libFuzzer flags.
# shellcheck disable=SC2206
extra=(${FUZZ_ARGS:-})
if [ ${#targets[@]} -eq 0 ]; then
    targets=(stream prescription refill relay signed_command dosing_record saved_state telemetry_link rx_check oracle)
fi
cargo "+$nightly" fuzz build -s none "${tdir[@]}" >/dev/null
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log=$(mktemp)
    start=$(date +%s)
    set +e
    cargo "+$nightly" fuzz run -s none "${tdir[@]}" "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 "${par[@]}" "${runs[@]}" "${extra[@]}" \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1
    status=$?
    set -e
    # With -jobs, libFuzzer copies each job's log (fuzz-N.log) into its own
    # output when the job ends, so $log already holds every worker's final
    # stats; appending the files again counted every execution twice (the
    # oracle run of 2026-12-07 reported 16 133 592 for 8 066 796).
    [ "$jobs" -gt 1 ] && rm -f fuzz-*.log
    took=$(( $(date +%s) - start ))
    execs=$(grep -h 'stat::number_of_executed_units' "$log" | awk '{s+=$2} END {print s+0}')
    rate=$(( execs / (took > 0 ? took : 1) ))
    last=$(grep -hE '^#[0-9]+' "$log" | grep -E 'cov: [0-9]+' | tail -1)
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.*corp: ([0-9]+).*/\1/p' <<<"$last")
    found=$(find "artifacts/$t" -type f | wc -l)
    [ $status -ne 0 ] && [ "$found" -eq 0 ] && found="exit $status"
    printf '%-15s %6ss %12s %8s/s  cov %-6s ft %-6s corpus %-6s findings %s\n' \
        "$t" "$took" "$execs" "$rate" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$found" | tee -a "$out"
    rm -f "$log"
    [ "$found" != 0 ] && failed=1
done
[ "${FUZZ_FAIL_ON_FINDING:-0}" = 1 ] && [ "${failed:-0}" = 1 ] && exit 1
exit 0
