#!/usr/bin/env bash
# Build the local control plane (kube-apiserver, kube-controller-manager, etcd), kubectl and helm from
# their Go modules into a cache dir outside the repo. Idempotent: a binary already built for the
# pinned versions is reused, so only the first run on a machine pays for the compile.
#
#   hack/build-controlplane.sh            build what is missing, print the bin dir
#   KUBESTACK_CACHE=/some/dir ...         cache root (default ~/.cache/kubestack)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.22.0
cache=${KUBESTACK_CACHE:-$HOME/.cache/kubestack}
bin="$cache/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION"

die() { echo "build-controlplane: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "Go is not installed (need go >= 1.26 on PATH to build the control plane)"
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
[ "${go_minor:-0}" -ge 26 ] || die "Go $(go env GOVERSION) is too old: k8s.io/kubernetes $K8S_VERSION needs go 1.26"

mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=mod

# build NAME MODULE_DIR PACKAGE [LDFLAGS]
build() {
  local name=$1 dir=$2 pkg=$3 ldflags=${4:-}
  if [ -x "$bin/$name" ]; then
    echo "build-controlplane: $name cached at $bin/$name" >&2
    return
  fi
  echo "build-controlplane: building $name ($pkg) ..." >&2
  local start=$SECONDS
  (cd "$here/controlplane/$dir" && go mod download) \
    || die "cannot download the modules for $name: is the Go module proxy reachable? (GOPROXY=$(go env GOPROXY))"
  (cd "$here/controlplane/$dir" && go build -trimpath -tags selinux,notest,grpcnotrace \
      -ldflags "-s -w $ldflags" -o "$bin/$name.tmp" "$pkg") || die "go build of $name failed"
  mv "$bin/$name.tmp" "$bin/$name"
  echo "build-controlplane: built $name in $((SECONDS - start))s ($(du -m "$bin/$name" | cut -f1) MB)" >&2
}

ver=${K8S_VERSION#v}
kube_ldflags="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
 -X k8s.io/component-base/version.gitMajor=${ver%%.*} \
 -X k8s.io/component-base/version.gitMinor=$(echo "$ver" | cut -d. -f2) \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"

build etcd etcd go.etcd.io/etcd/server/v3
build kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags"
build kube-controller-manager kube k8s.io/kubernetes/cmd/kube-controller-manager "$kube_ldflags"
build kubectl kube k8s.io/kubernetes/cmd/kubectl "$kube_ldflags"
build helm helm helm.sh/helm/v3/cmd/helm "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"

echo "$bin"
