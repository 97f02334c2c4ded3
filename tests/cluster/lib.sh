# Shared helpers for cluster-up.sh and cluster-down.sh (sourced, not run).
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
run_dir="${TESTBED_DIR:-$repo_root/target/testbed}"
pid_dir="$run_dir/pids"
log_dir="$run_dir/logs"

log() { echo "[testbed] $*" >&2; }

# Prints the pid recorded for a component if that process is still the one we
# started (guards against a recycled pid), else nothing.
live_pid() {
  local name="$1" f="$pid_dir/$1.pid" pid exe
  [[ -f "$f" ]] || return 0
  read -r pid exe <"$f" || return 0
  [[ -n "${pid:-}" && -d "/proc/$pid" ]] || return 0
  if [[ -n "${exe:-}" ]] && ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$exe"; then
    return 0
  fi
  echo "$pid"
}

stop_component() {
  local name="$1" pid i
  pid="$(live_pid "$name")"
  if [[ -n "$pid" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      [[ -d "/proc/$pid" ]] || break
      sleep 0.1
    done
    if [[ -d "/proc/$pid" ]]; then
      log "$name (pid $pid) ignored SIGTERM; killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pid_dir/$name.pid"
}

# Components in start order; stopped in reverse.
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok prometheus)
