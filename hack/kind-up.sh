#!/usr/bin/env bash
# A real cluster for kubestack: kind + KubeVirt + CDI + Multus, then the chart.
#
# Needs Docker, kind, kubectl, helm, and KVM on the host (/dev/kvm; without it set
# KUBEVIRT_EMULATION=true for slow software emulation). This project's own machines have no
# Docker engine and no KVM, so this script is not run by the test suite: there the local
# control plane and the simulator stand in (hack/quickstart.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cluster=${KIND_CLUSTER:-kubestack}
KUBEVIRT_VERSION=${KUBEVIRT_VERSION:-v1.9.0}
CDI_VERSION=${CDI_VERSION:-v1.66.0}
MULTUS_VERSION=${MULTUS_VERSION:-v4.3.0}
gh=https://github.com

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "kind-up: $tool is required" >&2; exit 1; }
done

kind get clusters | grep -qx "$cluster" || kind create cluster --name "$cluster"
kubectl config use-context "kind-$cluster"

kubectl apply -f "$gh/kubevirt/kubevirt/releases/download/$KUBEVIRT_VERSION/kubevirt-operator.yaml"
kubectl apply -f "$gh/kubevirt/kubevirt/releases/download/$KUBEVIRT_VERSION/kubevirt-cr.yaml"
if [ "${KUBEVIRT_EMULATION:-false}" = true ]; then
  kubectl -n kubevirt patch kubevirt kubevirt --type merge \
    -p '{"spec":{"configuration":{"developerConfiguration":{"useEmulation":true}}}}'
fi
kubectl apply -f "$gh/kubevirt/containerized-data-importer/releases/download/$CDI_VERSION/cdi-operator.yaml"
kubectl apply -f "$gh/kubevirt/containerized-data-importer/releases/download/$CDI_VERSION/cdi-cr.yaml"
kubectl apply -f "https://raw.githubusercontent.com/k8snetworkplumbingwg/multus-cni/$MULTUS_VERSION/deployments/multus-daemonset-thick.yml"
kubectl -n kubevirt wait kv kubevirt --for condition=Available --timeout=15m
kubectl wait cdi cdi --for condition=Available --timeout=15m

# label every worker as a compute host (DESIGN §1)
kubectl label nodes --all kubestack.io/compute-host=true --overwrite

docker build -f "$root/hack/Dockerfile" -t kubestack:dev "$root"
kind load docker-image kubestack:dev --name "$cluster"
helm upgrade --install kubestack "$root/charts/kubestack" -n kubestack-system --create-namespace \
  --set image.repository=kubestack --set image.tag=dev --set image.pullPolicy=Never
kubectl -n kubestack-system rollout status deploy/kubestack-operator --timeout=5m
