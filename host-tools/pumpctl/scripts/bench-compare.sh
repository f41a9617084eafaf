#!/usr/bin/env bash
# Runs `pumpctl bench` for an earlier revision and for the working tree, in
# turns, so a change's speed is compared against its baseline in one run on
# one machine.
#
#   host-tools/pumpctl/scripts/bench-compare.sh <base-rev> [rounds] [bench args...]
#   e.g. host-tools/pumpctl/scripts/bench-compare.sh 7d40734 2 --mb 16
#
# The base revision is built in a git worktree under target/bench-base
# (removed afterwards), with its own target directory.
set -euo pipefail
cd "$(dirname "$0")/../../.."
base=${1:?usage: $0 <base-rev> [rounds] [bench args...]}
rounds=${2:-2}
shift $(( $# >= 2 ? 2 : 1 ))
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--mb 16)

tree=target/bench-base/tree
rm -rf "$tree"
git worktree add --force --detach "$tree" "$base" >/dev/null
trap 'git worktree remove --force "$tree" >/dev/null 2>&1 || true' EXIT
(cd "$tree" && CARGO_TARGET_DIR="$PWD/../target" cargo build --quiet --release -p pumpctl)
cargo build --quiet --release -p pumpctl
for i in $(seq "$rounds"); do
    echo "== round $i: base $(git rev-parse --short "$base")"
    target/bench-base/target/release/pumpctl bench "${args[@]}"
    echo "== round $i: working tree ($(git rev-parse --short HEAD)$(git diff --quiet || echo ', modified'))"
    target/release/pumpctl bench "${args[@]}"
done
