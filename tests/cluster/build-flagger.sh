#!/usr/bin/env bash
# Builds upstream Flagger from its Go module into a version-keyed cache outside
# the repository and prints the binary's path (logs go to stderr). Only the
# fleet benchmark (`cargo bench --bench fleet`) runs Flagger, to compare it
# with Serin on the same control plane; `make test` never calls this script.
# Kept apart from build.sh on purpose: adding Flagger to versions.env would
# change that cache's key and rebuild the whole control plane.
set -euo pipefail

# The Flagger release Serin is a drop-in for; its go.mod has no replace
# directives, so a plain `go install` of the module resolves it as released.
FLAGGER_VERSION=v1.44.0

log() { echo "[flagger-build] $*" >&2; }

command -v go >/dev/null 2>&1 || { log "missing required tool: go"; exit 1; }

cache_base="${SERIN_TESTBED_CACHE:-$HOME/.cache/serin-testbed}"
# The Go version is part of the key, as in build.sh: a new toolchain builds afresh.
root="$cache_base/flagger-$FLAGGER_VERSION-$(go env GOVERSION)"
bin="$root/bin"
flagger="$bin/flagger"

if [[ -x "$flagger" ]]; then
  log "reusing $flagger"
  echo "$flagger"
  exit 0
fi

# Install into a scratch directory and move the binary into place only when the
# build succeeded, so an interrupted build never leaves a binary to be reused.
mkdir -p "$bin"
tmp="$(mktemp -d "$root/tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
log "building github.com/fluxcd/flagger/cmd/flagger@$FLAGGER_VERSION with $(go env GOVERSION)"
GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
  go install "github.com/fluxcd/flagger/cmd/flagger@$FLAGGER_VERSION" >&2
[[ -x "$tmp/flagger" ]] || { log "go install produced no flagger binary in $tmp"; exit 1; }
mv "$tmp/flagger" "$flagger"
log "built in $((SECONDS - start)) s: $flagger"
echo "$flagger"
