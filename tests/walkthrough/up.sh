#!/usr/bin/env bash
# `make walkthrough-up`: Flagger's NGINX walkthrough, ready to try by hand on
# the local control plane. Starts the control plane (tests/cluster/), builds
# Serin, applies the walkthrough's manifests in namespace `test`, and starts
# serin, serin-loadtester and the traffic simulator in the background (PIDs
# and logs in target/walkthrough/). Running it again is harmless.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$repo_root"
mkdir -p "$state_dir"

# Remember whether the control plane was already up, so walkthrough-down
# leaves a cluster it did not start running.
if [[ ! -f "$state_dir/cluster" ]]; then
  if [[ -f "$testbed_env" ]] && bash -c "source tests/cluster/lib.sh && [[ -n \"\$(live_pid kube-apiserver)\" ]]"; then
    echo theirs >"$state_dir/cluster"
  else
    echo ours >"$state_dir/cluster"
  fi
fi
bash tests/cluster/cluster-up.sh
source "$testbed_env"
kubectl() { "$TESTBED_BIN/kubectl" "$@"; }

say "building serin, serin-loadtester and the traffic_simulator example (release)"
cargo build --release --bin serin --bin serin-loadtester --example traffic_simulator

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts <name> in the background unless it already runs; records "pid exe",
# the port (if any) and logs to target/walkthrough/<name>.log.
start_process() {
  local name="$1" exe="$2" port="$3"
  shift 3
  if [[ -n "$(live_pid "$name")" ]]; then
    say "$name already runs (pid $(live_pid "$name"))"
    return
  fi
  nohup "$exe" "$@" >"$state_dir/$name.log" 2>&1 </dev/null &
  echo "$! $exe" >"$state_dir/$name.pid"
  [[ -z "$port" ]] || echo "$port" >"$state_dir/$name.port"
  say "started $name (pid $!, log target/walkthrough/$name.log)"
}

# Waits up to 60 s for http://127.0.0.1:<port>/healthz.
wait_healthz() {
  local name="$1" port="$2" i
  for i in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0
    [[ -n "$(live_pid "$name")" ]] || break
    sleep 0.5
  done
  say "$name did not become healthy on port $port; last log lines:"
  tail -n 20 "$state_dir/$name.log" >&2
  exit 1
}

# A process that already runs keeps its port.
port_of() { cat "$state_dir/$1.port" 2>/dev/null || free_port; }

release="$repo_root/target/release"

# The CRDs, the namespace and the walkthrough's workloads.
kubectl apply --server-side -f deploy/crds/ >/dev/null
kubectl wait --for condition=established --timeout=60s -f deploy/crds/ >/dev/null
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# The Deployment only when missing: re-applying it would undo the user's
# `kubectl set image` and start a new analysis.
if ! kubectl -n "$namespace" get deployment podinfo >/dev/null 2>&1; then
  kubectl -n "$namespace" apply -f "$wt_dir/podinfo-deployment.yaml"
fi
kubectl -n "$namespace" apply -f "$wt_dir/podinfo-hpa.yaml" -f "$wt_dir/ingress.yaml"
sed "s|__PROMETHEUS_URL__|$PROMETHEUS_URL|g" "$wt_dir/metrictemplate-latency.yaml" | kubectl apply -f -

# The load tester first: the Canary's webhooks point at it.
lt_port="$(port_of serin-loadtester)"
start_process serin-loadtester "$release/serin-loadtester" "$lt_port" -port "$lt_port"
wait_healthz serin-loadtester "$lt_port"
sed "s|__LOADTESTER_URL__|http://127.0.0.1:$lt_port|g" "$wt_dir/canary.yaml" | kubectl apply -f -

# Serin, watching namespace `test` only, so it leaves alone the test
# namespaces of any `cargo test` run sharing this control plane.
serin_port="$(port_of serin)"
start_process serin "$release/serin" "$serin_port" \
  -kubeconfig "$KUBECONFIG" -namespace "$namespace" -mesh-provider nginx \
  -metrics-server "$PROMETHEUS_URL" -log-level info -port "$serin_port"
wait_healthz serin "$serin_port"

# The traffic simulator standing in for ingress-nginx and the podinfo pods.
start_process traffic_simulator "$release/examples/traffic_simulator" "" \
  --namespace "$namespace" --ingress podinfo --target podinfo

say "waiting for canary/podinfo to be Initialized"
phase=""
for _ in $(seq 1 120); do
  phase="$(kubectl -n "$namespace" get canary podinfo -o jsonpath='{.status.phase}' 2>/dev/null || true)"
  [[ "$phase" == Initialized || "$phase" == Succeeded || "$phase" == Failed ]] && break
  sleep 1
done
if [[ "$phase" != Initialized && "$phase" != Succeeded && "$phase" != Failed ]]; then
  say "canary/podinfo is not Initialized (phase '${phase}'); serin's log: target/walkthrough/serin.log"
  tail -n 20 "$state_dir/serin.log" >&2
  exit 1
fi
kubectl get canaries --all-namespaces

cat <<EOM

The walkthrough is ready: canary/podinfo is $phase. In this shell:

  source target/testbed/env && alias kubectl=\$TESTBED_BIN/kubectl

Trigger a canary deployment, then follow it (about 2½ minutes):

  kubectl -n test set image deployment/podinfo podinfod=ghcr.io/stefanprodan/podinfo:6.0.1
  kubectl -n test describe canary/podinfo
  watch $TESTBED_BIN/kubectl get canaries --all-namespaces

A failing revision (HTTP 500s from the simulator; or latency=1500ms):

  kubectl -n test patch deployment/podinfo -p '{"spec":{"template":{"metadata":{"annotations":{"test.serin.dev/fault":"errors=50"}}}}}'

Logs: target/walkthrough/{serin,serin-loadtester,traffic_simulator}.log
Stop everything: make walkthrough-down
EOM
