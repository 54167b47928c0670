"""The third-party CRDs installed in the local control plane are Established, and the API
server itself rejects a VirtualMachine or DataVolume that KubeVirt/CDI would reject."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubestack.devcluster.crds import CRD_DIRS, crd_manifests


def vm(domain_extra=None, volume=None) -> dict:
    domain = {"cpu": {"cores": 1}, "memory": {"guest": "512Mi"},
              "devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}]}}
    domain.update(domain_extra or {})
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "vm"},
            "spec": {"runStrategy": "Halted", "template": {"spec": {
                "domain": domain,
                "volumes": [volume or {"name": "root", "containerDisk": {"image": "quay.io/kubevirt/cirros"}}]}}}}


def test_every_crd_is_established(cluster):
    ext = client.ApiextensionsV1Api(cluster.api)
    names = [c["metadata"]["name"] for c in crd_manifests(CRD_DIRS)]
    assert len(names) >= 22  # 13 of ours + KubeVirt, CDI, Multus, snapshot kinds
    for name in names:
        conds = {c.type: c.status for c in ext.read_custom_resource_definition(name).status.conditions}
        assert conds.get("Established") == "True", name


def _create(cluster, namespace, body, group="kubevirt.io", plural="virtualmachines", version="v1"):
    return client.CustomObjectsApi(cluster.api).create_namespaced_custom_object(
        group, version, namespace, plural, body, field_validation="Strict")


def test_a_valid_vm_is_accepted(cluster, namespace):
    assert _create(cluster, namespace, vm())["metadata"]["uid"]


@pytest.mark.parametrize("body,message", [
    (vm(domain_extra={"cpuu": {"cores": 2}}), 'unknown field "spec.template.spec.domain.cpuu"'),
    (vm(domain_extra={"cpu": {"cores": "two"}}), "spec.template.spec.domain.cpu.cores"),
    (vm(volume={"name": "root", "containerDsik": {"image": "x"}}), 'unknown field "spec.template.spec.volumes[0].containerDsik"'),
    (vm(domain_extra={"devices": {"disks": [{"name": "root", "disk": {"buss": "virtio"}}]}}),
     'unknown field "spec.template.spec.domain.devices.disks[0].disk.buss"'),
])
def test_a_wrong_vm_is_rejected_by_the_api_server(cluster, namespace, body, message):
    with pytest.raises(ApiException) as err:
        _create(cluster, namespace, body)
    assert err.value.status in (400, 422)
    assert message in json.loads(err.value.body)["message"]


def test_a_wrong_datavolume_is_rejected(cluster, namespace):
    body = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": {"name": "dv"},
            "spec": {"source": {"htpp": {"url": "https://example.com/x.img"}},
                     "storage": {"resources": {"requests": {"storage": "1Gi"}}}}}
    with pytest.raises(ApiException) as err:
        _create(cluster, namespace, body, "cdi.kubevirt.io", "datavolumes", "v1beta1")
    assert 'unknown field "spec.source.htpp"' in json.loads(err.value.body)["message"]
