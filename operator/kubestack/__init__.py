"""kubestack: OpenStack's IaaS model as a Kubernetes-native operator."""

__version__ = "0.1.0"

API_GROUP = "kubestack.io"
API_VERSION = "v1alpha1"
