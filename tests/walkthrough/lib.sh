# Shared helpers for up.sh and down.sh (sourced, not run).
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
wt_dir="$repo_root/tests/walkthrough"
# PID files, ports and logs of the processes walkthrough-up starts.
state_dir="$repo_root/target/walkthrough"
testbed_env="$repo_root/target/testbed/env"
namespace=test

say() { echo "[walkthrough] $*" >&2; }

# Prints the recorded pid of process <name> if it is still the program we
# started (its cmdline contains the recorded executable), else nothing.
live_pid() {
  local f="$state_dir/$1.pid" pid exe
  [[ -f "$f" ]] || return 0
  read -r pid exe <"$f" || return 0
  [[ -n "${pid:-}" && -n "${exe:-}" && -d "/proc/$pid" ]] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$exe" || return 0
  echo "$pid"
}

# Stops process <name> by its recorded pid: SIGTERM, then SIGKILL after 10 s.
stop_process() {
  local name="$1" pid i
  pid="$(live_pid "$name")"
  if [[ -n "$pid" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      [[ -d "/proc/$pid" ]] || break
      sleep 0.1
    done
    if [[ -d "/proc/$pid" ]]; then
      say "$name (pid $pid) ignored SIGTERM; killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    say "stopped $name (pid $pid)"
  fi
  rm -f "$state_dir/$name.pid" "$state_dir/$name.port"
}

# The processes, in start order; stopped in reverse.
processes=(serin-loadtester serin traffic_simulator)
