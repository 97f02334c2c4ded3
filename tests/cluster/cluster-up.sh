#!/usr/bin/env bash
# Starts a local Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok with fake nodes) and Prometheus,
# all on 127.0.0.1, and writes target/testbed/env for the tests.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

startup_timeout="${TESTBED_TIMEOUT:-90}"
env_file="$run_dir/env"

all_up() {
  local c
  [[ -f "$env_file" ]] || return 1
  # A testbed started by an older version of this script lacks the audit log and
  # the extra identities; it is restarted rather than reused.
  grep -q '^export AUDIT_LOG=' "$env_file" || return 1
  grep -q '^export EXTERNAL_METRICS_CERT=' "$env_file" || return 1
  for c in "${components[@]}"; do [[ -n "$(live_pid "$c")" ]] || return 1; done
  # shellcheck disable=SC1090
  (source "$env_file" && "$TESTBED_BIN/kubectl" get --raw /readyz >/dev/null 2>&1)
}

if all_up; then
  log "already up ($env_file)"
  exit 0
fi
# A half-started testbed is stopped before starting afresh.
bash "$here/cluster-down.sh" >/dev/null 2>&1 || true

bin="$(bash "$here/build.sh")"
stages="$(dirname "$bin")/stages/kwok-stages.yaml"

if ! command -v prometheus >/dev/null 2>&1; then
  log "installing prometheus from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends prometheus >/dev/null; }
fi
for tool in openssl curl python3 prometheus; do
  command -v "$tool" >/dev/null 2>&1 || { log "missing required tool: $tool"; exit 1; }
done

rm -rf "$run_dir"
mkdir -p "$run_dir" "$pid_dir" "$log_dir" "$run_dir/pki" "$run_dir/etcd" "$run_dir/prometheus"
avail_kb="$(df -Pk "$run_dir" | awk 'NR == 2 {print $4}')"
if [[ -n "$avail_kb" ]] && ((avail_kb < 1048576)); then
  log "warning: only $((avail_kb / 1024)) MB free under $run_dir; etcd, the audit log and the tests need more"
fi

# Free loopback ports, asked of the kernel all at once so they differ.
read -r p_etcd p_peer p_api p_kcm p_sched p_prom p_kwok < <(python3 - <<'PY'
import socket
socks = []
for _ in range(7):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)

# --- certificates ---------------------------------------------------------------
pki="$run_dir/pki"
(
  cd "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=serin-testbed-ca" \
    -keyout ca.key -out ca.crt
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n' >apiserver.ext
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile apiserver.ext -out apiserver.crt
  openssl req -newkey rsa:2048 -nodes -subj "/CN=admin/O=system:masters" -keyout admin.key -out admin.csr
  printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' >client.ext
  openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile client.ext -out admin.crt
  # One identity per operator, so the audit log tells their requests apart
  # (user.username); system:masters spares them any RBAC.
  for user in serin flagger; do
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$user/O=system:masters" -keyout "$user.key" -out "$user.csr"
    openssl x509 -req -in "$user.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile client.ext -out "$user.crt"
  done
  openssl genrsa -out sa.key 2048
  # The aggregation layer: the API server proxies to APIServices with the
  # front-proxy client certificate (its own CA, as kubeadm does), and the test
  # harness behind external.metrics.k8s.io serves a certificate of the testbed
  # CA for its Service's name (the APIService's caBundle is that CA).
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=serin-testbed-front-proxy-ca" -keyout front-proxy-ca.key -out front-proxy-ca.crt
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=front-proxy-client" \
    -keyout front-proxy-client.key -out front-proxy-client.csr
  openssl x509 -req -in front-proxy-client.csr -CA front-proxy-ca.crt -CAkey front-proxy-ca.key \
    -CAcreateserial -days 3650 -extfile client.ext -out front-proxy-client.crt
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=serin-external-metrics" \
    -keyout external-metrics.key -out external-metrics.csr
  printf 'subjectAltName=DNS:serin-external-metrics.kube-system.svc,IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n' >external-metrics.ext
  openssl x509 -req -in external-metrics.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile external-metrics.ext -out external-metrics.crt
  openssl rsa -in sa.key -pubout -out sa.pub
) >"$log_dir/openssl.log" 2>&1 || { log "openssl failed:"; tail -20 "$log_dir/openssl.log" >&2; exit 1; }

# Writes a kubeconfig for the client certificate $pki/<user>.crt.
write_kubeconfig() {
  local user="$1" file="$2"
  cat >"$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: serin-testbed
  cluster:
    server: https://127.0.0.1:$p_api
    certificate-authority: $pki/ca.crt
users:
- name: $user
  user:
    client-certificate: $pki/$user.crt
    client-key: $pki/$user.key
contexts:
- name: serin-testbed
  context:
    cluster: serin-testbed
    user: $user
current-context: serin-testbed
KC
  chmod 600 "$file"
}
kubeconfig="$run_dir/admin.kubeconfig"
write_kubeconfig admin "$kubeconfig"
serin_kubeconfig="$run_dir/kubeconfig-serin"
write_kubeconfig serin "$serin_kubeconfig"
flagger_kubeconfig="$run_dir/kubeconfig-flagger"
write_kubeconfig flagger "$flagger_kubeconfig"

# --- audit log ------------------------------------------------------------------
# Every request at level Metadata (who, verb, resource, response code; no
# bodies), so a benchmark can count each operator's API calls by
# user.username. RequestReceived is omitted, so a request is one line (its
# ResponseComplete stage); a watch also writes a ResponseStarted line when it opens.
audit_policy="$run_dir/audit-policy.yaml"
audit_log="$log_dir/audit.log"
cat >"$audit_policy" <<'AUDIT'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages:
  - RequestReceived
rules:
  - level: Metadata
AUDIT

# A process's state letter (R, S, Z, ...); a dead child stays a zombie (Z)
# until this shell waits for it.
proc_state() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  stat="${stat##*) }"
  echo "${stat%% *}"
}

started=()
fail() {
  local name="$1" why="$2" pid rc=""
  log "FAILED: $name $why; last lines of $log_dir/$name.log:"
  tail -n 30 "$log_dir/$name.log" >&2 || true
  # What the log cannot say: how the process ended, and whether the disk was full
  # (a full disk leaves the log empty).
  [[ -s "$log_dir/$name.log" ]] || log "(the log is empty)"
  if [[ -f "$pid_dir/$name.pid" ]]; then
    read -r pid _ <"$pid_dir/$name.pid" || true
    if [[ -n "${pid:-}" && ( ! -d "/proc/$pid" || "$(proc_state "$pid")" == Z ) ]]; then
      wait "$pid" 2>/dev/null && rc=0 || rc=$?
      log "$name exited with status $rc"
    elif [[ -n "${pid:-}" ]]; then
      log "$name (pid $pid) is still there as: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-200)"
    fi
  fi
  log "free space: $(df -h --output=avail,target "$run_dir" 2>/dev/null | tail -1)"
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do stop_component "${started[$i]}" 2>/dev/null; done
  exit 1
}

start() {
  local name="$1" exe="$2"; shift 2
  setsid "$exe" "$@" >"$log_dir/$name.log" 2>&1 </dev/null &
  local pid=$! i
  echo "$pid $exe" >"$pid_dir/$name.pid"
  started+=("$name")
  # Until the child has exec'd, its cmdline is still this shell's, and
  # live_pid would take it for a dead component. On a loaded machine the exec
  # took more than the 2.5 s this once waited (a component "exited during
  # startup" with an empty log while it was still starting), so wait up to 60 s.
  for i in $(seq 1 1200); do
    [[ -d "/proc/$pid" && "$(proc_state "$pid")" != Z ]] || break
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$exe" && break
    sleep 0.05
  done
}

# Waits until the command succeeds; fails with the component's log otherwise.
wait_for() {
  local name="$1"; shift
  local deadline=$((SECONDS + startup_timeout))
  until "$@" >/dev/null 2>&1; do
    [[ -n "$(live_pid "$name")" ]] || fail "$name" "exited during startup"
    ((SECONDS < deadline)) || fail "$name" "was not ready after ${startup_timeout}s"
    sleep 0.3
  done
  log "$name is ready"
}

kctl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }

# --- etcd -------------------------------------------------------------------------
start etcd "$bin/etcd" --name=testbed --data-dir="$run_dir/etcd" \
  --listen-client-urls="http://127.0.0.1:$p_etcd" --advertise-client-urls="http://127.0.0.1:$p_etcd" \
  --listen-peer-urls="http://127.0.0.1:$p_peer" --initial-advertise-peer-urls="http://127.0.0.1:$p_peer" \
  --initial-cluster="testbed=http://127.0.0.1:$p_peer" --unsafe-no-fsync=true \
  --auto-compaction-retention=1 --quota-backend-bytes=4294967296 --log-level=warn
wait_for etcd curl -sf "http://127.0.0.1:$p_etcd/health"

# --- kube-apiserver ------------------------------------------------------------------
# ServiceAccount admission is off (as in envtest): no kubelet mounts tokens here.
# TaintNodesByCondition is off: without the node-lifecycle controller nothing
# would lift the not-ready taint it puts on new nodes.
# The audit log rotates only past 1000 MB, so none rotates during a benchmark.
start kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$p_etcd" \
  --advertise-address=127.0.0.1 --bind-address=127.0.0.1 --secure-port="$p_api" \
  --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
  --client-ca-file="$pki/ca.crt" \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 \
  --authorization-mode=RBAC \
  --disable-admission-plugins=ServiceAccount,TaintNodesByCondition \
  --endpoint-reconciler-type=none \
  --allow-privileged=true --cert-dir="$run_dir/apiserver-certs" \
  --audit-policy-file="$audit_policy" --audit-log-path="$audit_log" \
  --audit-log-maxsize=1000 \
  --requestheader-client-ca-file="$pki/front-proxy-ca.crt" \
  --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$pki/front-proxy-client.crt" --proxy-client-key-file="$pki/front-proxy-client.key"
wait_for kube-apiserver curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
  "https://127.0.0.1:$p_api/readyz"

# --- controller-manager and scheduler -------------------------------------------------
start kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig="$kubeconfig" --authentication-kubeconfig="$kubeconfig" --authorization-kubeconfig="$kubeconfig" \
  --leader-elect=false --bind-address=127.0.0.1 --secure-port="$p_kcm" \
  --controllers=deployment-controller,replicaset-controller,garbage-collector-controller,namespace-controller,horizontal-pod-autoscaler-controller,serviceaccount-controller,daemonset-controller,endpointslice-controller,job-controller \
  --root-ca-file="$pki/ca.crt" --service-account-private-key-file="$pki/sa.key" \
  --use-service-account-credentials=false --kube-api-qps=200 --kube-api-burst=400 \
  --concurrent-deployment-syncs=10 --concurrent-replicaset-syncs=10
wait_for kube-controller-manager curl -sfk "https://127.0.0.1:$p_kcm/healthz"

start kube-scheduler "$bin/kube-scheduler" \
  --kubeconfig="$kubeconfig" --authentication-kubeconfig="$kubeconfig" --authorization-kubeconfig="$kubeconfig" \
  --leader-elect=false --bind-address=127.0.0.1 --secure-port="$p_sched" \
  --kube-api-qps=200 --kube-api-burst=400
wait_for kube-scheduler curl -sfk "https://127.0.0.1:$p_sched/healthz"

# --- kwok and fake nodes ---------------------------------------------------------------
start kwok "$bin/kwok" --kubeconfig="$kubeconfig" --config="$stages" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --cidr=10.244.0.0/16 --node-ip=10.0.0.1 --node-lease-duration-seconds=0 \
  --server-address="127.0.0.1:$p_kwok"
# 2,000 pods a node: the fleet benchmark runs 2 pods per canary at its peak.
node_count="${TESTBED_NODES:-3}"
for i in $(seq 0 $((node_count - 1))); do
  cat <<NODE
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "2000"}
  capacity: {cpu: "32", memory: 256Gi, pods: "2000"}
---
NODE
done | kctl apply -f - >"$log_dir/nodes.log" 2>&1 || fail kwok "could not create fake nodes ($(cat "$log_dir/nodes.log"))"
nodes_ready() {
  local ready
  ready="$(kctl get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)"
  [[ "$ready" -eq "$node_count" ]]
}
wait_for kwok nodes_ready

# --- Prometheus -------------------------------------------------------------------------
targets_file="$run_dir/prometheus/targets.json"
echo '[]' >"$targets_file"
cat >"$run_dir/prometheus/prometheus.yml" <<PROM
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: testbed
    file_sd_configs:
      - files: ['$targets_file']
        refresh_interval: 1s
PROM
start prometheus "$(command -v prometheus)" \
  --config.file="$run_dir/prometheus/prometheus.yml" \
  --storage.tsdb.path="$run_dir/prometheus/data" \
  --web.listen-address="127.0.0.1:$p_prom" \
  --web.enable-lifecycle
wait_for prometheus curl -sf "http://127.0.0.1:$p_prom/-/ready"

cat >"$env_file.tmp" <<ENV
export KUBECONFIG=$kubeconfig
export PROMETHEUS_URL=http://127.0.0.1:$p_prom
export PROMETHEUS_TARGETS_FILE=$targets_file
export TESTBED_BIN=$bin
export TESTBED_DIR=$run_dir
export TESTBED_API_SERVER=https://127.0.0.1:$p_api
export SERIN_KUBECONFIG=$serin_kubeconfig
export FLAGGER_KUBECONFIG=$flagger_kubeconfig
export AUDIT_LOG=$audit_log
export EXTERNAL_METRICS_CERT=$pki/external-metrics.crt
export EXTERNAL_METRICS_KEY=$pki/external-metrics.key
export TESTBED_CA=$pki/ca.crt
ENV
mv "$env_file.tmp" "$env_file"
log "up: source $env_file"
