"""The simulator: plays KubeVirt (virt-controller, virt-handler, virt-api's actions), CDI and a CSI
volume provisioner/resizer/snapshotter on a control plane without kubelets, like Nova's fake virt
driver. Run it as `kubestack simulate`; never against a real cluster.

Pure transition logic lives in `kubevirt`, `cdi` and `storage` (plain dicts in, writes out, no
I/O); `main` is the process (watches, cache, work queue, writes).
"""
