#!/usr/bin/env bash
# `make walkthrough-down`: stops what walkthrough-up started (by recorded PID),
# deletes namespace `test`, then stops the local control plane if
# walkthrough-up started it. Running it again is harmless.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$repo_root"

# Newest first: the simulator removes its Prometheus target as it exits.
for ((i = ${#processes[@]} - 1; i >= 0; i--)); do
  stop_process "${processes[$i]}"
done

if [[ -f "$testbed_env" ]]; then
  source "$testbed_env"
  # A simulator that was killed (not stopped) leaves its scrape target behind.
  python3 - "$PROMETHEUS_TARGETS_FILE" "traffic-simulator-$namespace" <<'PY'
import fcntl, json, sys
path, label = sys.argv[1:]
try:
    f = open(path, "r+")
except FileNotFoundError:
    sys.exit(0)
with f:
    fcntl.flock(f, fcntl.LOCK_EX)  # the lock the test harness takes
    try:
        groups = json.load(f)
    except ValueError:
        sys.exit(0)
    kept = [g for g in groups if g.get("labels", {}).get("testbed_target") != label]
    if kept != groups:
        f.seek(0); f.truncate(); json.dump(kept, f, indent=2)
PY
  kubectl() { "$TESTBED_BIN/kubectl" "$@"; }
  if kubectl get namespace "$namespace" >/dev/null 2>&1; then
    # No operator runs any more to clear a finalizer it may have set.
    for c in $(kubectl -n "$namespace" get canaries -o name 2>/dev/null || true); do
      kubectl -n "$namespace" patch "$c" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null || true
    done
    kubectl delete namespace "$namespace" --ignore-not-found --timeout=120s
  fi
fi

# Only a control plane that walkthrough-up started is stopped; one that was
# already running (or that an earlier walkthrough-down left) stays up.
if [[ "$(cat "$state_dir/cluster" 2>/dev/null)" == ours ]]; then
  bash tests/cluster/cluster-down.sh
elif [[ -f "$testbed_env" ]]; then
  say "leaving the control plane up: walkthrough-up did not start it (make cluster-down stops it)"
fi
rm -f "$state_dir/cluster"
