#!/usr/bin/env bash
# Stops what cluster-up.sh started, by recorded pid, newest first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for ((i = ${#components[@]} - 1; i >= 0; i--)); do
  stop_component "${components[$i]}"
done
rm -f "$run_dir/env"
log "down"
