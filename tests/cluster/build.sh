#!/usr/bin/env bash
# Builds the pinned control-plane binaries from Go modules into a version-keyed
# cache outside the repository, and prints that bin directory. A warm cache is
# reused as is; the Go module and build caches stay in their usual places.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

log() { echo "[testbed-build] $*" >&2; }

cache_base="${SERIN_TESTBED_CACHE:-$HOME/.cache/serin-testbed}"
key="$( (cat "$here/versions.env"; go env GOVERSION) | sha256sum | cut -c1-16)"
root="$cache_base/$key"
bin="$root/bin"
want=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok helm)

have_all() {
  local b
  for b in "${want[@]}"; do [[ -x "$bin/$b" ]] || return 1; done
  [[ -f "$root/stages/kwok-stages.yaml" ]]
}

if have_all; then
  log "reusing $bin"
  echo "$bin"
  exit 0
fi

mkdir -p "$bin" "$root/src" "$root/stages"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
start=$SECONDS

# --- Kubernetes: a wrapper module that pins every staging module -------------
kube_src="$root/src/kube"
mkdir -p "$kube_src"
cd "$kube_src"
if [[ ! -f go.mod ]]; then
  go mod init serin.local/testbed/kube >/dev/null 2>&1
fi
log "resolving k8s.io/kubernetes@$KUBE_VERSION"
upstream_gomod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
[[ -f "$upstream_gomod" ]] || { log "cannot read go.mod of k8s.io/kubernetes@$KUBE_VERSION"; exit 1; }
# Every module that upstream resolves from ./staging/ is released separately as
# v0.<minor>.<patch>; consumers must name those versions themselves.
staging="$(awk '$2=="=>" && $3 ~ /^\.\/staging\// {print $1}' "$upstream_gomod" | sort -u)"
[[ -n "$staging" ]] || { log "no staging replace lines found in $upstream_gomod"; exit 1; }
for m in $staging; do
  go mod edit -replace="$m=$m@$KUBE_STAGING_VERSION"
done
log "$(echo "$staging" | wc -l) staging modules pinned at $KUBE_STAGING_VERSION"
godebug="$(sed -n 's/^godebug //p' "$upstream_gomod" | head -1)"
if [[ -n "$godebug" ]]; then go mod edit -godebug="$godebug"; fi

pkgs=(cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubectl)
tools=()
for p in "${pkgs[@]}"; do tools+=("k8s.io/kubernetes/$p@$KUBE_VERSION"); done
go get "${tools[@]}" >&2

ver_flags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ver_flags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done
for p in "${pkgs[@]}"; do
  name="${p#cmd/}"
  log "building $name"
  go build -ldflags "$ver_flags" -o "$bin/$name" "k8s.io/kubernetes/$p"
done

# --- etcd: the version Kubernetes pins, in its own module --------------------
etcd_version="${ETCD_VERSION:-$(awk '$1=="go.etcd.io/etcd/client/v3" {print $2; exit}' "$upstream_gomod")}"
[[ -n "$etcd_version" ]] || { log "cannot find the etcd version pinned by k8s.io/kubernetes@$KUBE_VERSION"; exit 1; }
etcd_src="$root/src/etcd"
mkdir -p "$etcd_src"
cd "$etcd_src"
[[ -f go.mod ]] || go mod init serin.local/testbed/etcd >/dev/null 2>&1
go get "go.etcd.io/etcd/server/v3@$etcd_version" >&2
log "building etcd $etcd_version"
etcd_flags="-s -w"
go build -ldflags "$etcd_flags" -o "$bin/etcd" go.etcd.io/etcd/server/v3

# --- kwok and helm: plain modules, `go install` works --------------------------
log "building kwok $KWOK_VERSION"
GOBIN="$bin" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
log "building helm $HELM_VERSION"
helm_major="${HELM_VERSION%%.*}"
GOBIN="$bin" go install -ldflags "-s -w -X helm.sh/helm/$helm_major/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/$helm_major/cmd/helm@$HELM_VERSION"

# --- kwok stages: the module's own "fast" stages ---------------------------------
stage_dir="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
stages="$root/stages/kwok-stages.yaml"
: >"$stages.tmp"
for s in node/fast/node-initialize pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
  f="$stage_dir/$s.yaml"
  [[ -f "$f" ]] || { log "kwok stage $f is missing"; exit 1; }
  { echo "---"; cat "$f"; } >>"$stages.tmp"
done
mv "$stages.tmp" "$stages"

printf 'KUBE_VERSION=%s\nETCD_VERSION=%s\nKWOK_VERSION=%s\nHELM_VERSION=%s\nBUILD_SECONDS=%s\n' \
  "$KUBE_VERSION" "$etcd_version" "$KWOK_VERSION" "$HELM_VERSION" "$((SECONDS - start))" >"$root/versions"
log "built in $((SECONDS - start)) s into $bin"
echo "$bin"
