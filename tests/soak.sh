#!/usr/bin/env bash
# Memory soak for the daemon (issue: flat memory). Not part of `cargo test`.
#
# Runs the release daemon under a 1-second schedule against the fake GitLab
# (its demo data set, 3 projects, 9 repositories) for PASSES passes and reports
# RSS and open file descriptors after the first few passes and every 100.
#
#   PASSES=500 tests/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PASSES=${PASSES:-500}
WARMUP=${WARMUP:-5}
PORT=${PORT:-18099}
target=${CARGO_TARGET_DIR:-target}

cargo build --release --quiet --bin gitlab-registry-cleaner -p gitlab-registry-cleaner
cargo build --release --quiet -p fake-gitlab
work=$(mktemp -d)
trap 'kill $daemon $fake 2>/dev/null || true; rm -rf "$work"' EXIT

"$target/release/fake-gitlab" --listen "127.0.0.1:$PORT" >"$work/fake.log" 2>&1 &
fake=$!
cat >"$work/config.json" <<JSON
{"schedule": "* * * * * *", "run_on_start": true,
 "projects": {"repo_1": {"id": 1, "delete_older_than": {"days": 2}},
              "repo_2": {"id": 2, "delete_older_than": {"minutes": 50}},
              "repo_3": {"id": 3, "delete_older_than": {"minutes": 2}}}}
JSON
sleep 1
"$target/release/gitlab-registry-cleaner" daemon -u "http://127.0.0.1:$PORT" -t demo-token \
  -c "$work/config.json" >"$work/daemon.log" 2>&1 &
daemon=$!

passes() { grep -c '"operation":"pass_finished"' "$work/daemon.log" || true; }
sample() { echo "$(awk '/VmRSS/ {print $2}' /proc/$daemon/status) $(ls /proc/$daemon/fd | wc -l)"; }
wait_passes() { while [ "$(passes)" -lt "$1" ]; do kill -0 $daemon; sleep 1; done; }

started=$(date +%s)
rows=()
for mark in "$WARMUP" $(seq 100 100 "$PASSES"); do
  wait_passes "$mark"
  read -r rss fds <<<"$(sample)"
  rows+=("| $mark | $rss | $fds |")
done
elapsed=$(( $(date +%s) - started ))
kill -TERM $daemon; wait $daemon || true

skipped=$(grep -c '"operation":"pass_skipped"' "$work/daemon.log" || true)
failed=$(grep '"operation":"pass_finished"' "$work/daemon.log" | grep -vc '"result":"success"' || true)
echo "| after pass | RSS (KiB) | open fds |"
echo "|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "elapsed ${elapsed}s, skipped ticks $skipped, passes not successful $failed"
