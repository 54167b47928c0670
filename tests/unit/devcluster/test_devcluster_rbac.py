"""`kubestack dev up`'s share of the chart (kubestack.devcluster.rbac), without binaries: the
helm it needs, the templates it renders and the Helm ownership it claims."""

from __future__ import annotations

import json
import stat
import sys

import pytest

from kubestack.devcluster import rbac
from kubestack.devcluster.cluster import ControlPlaneError


def fake_helm(tmp_path, stdout: str, code: int = 0):
    """A `helm` that records its argv in argv.json and prints `stdout`."""
    (tmp_path / "out.yaml").write_text(stdout)
    helm = tmp_path / "helm"
    helm.write_text(f"""#!{sys.executable}
import json, sys
json.dump(sys.argv[1:], open({str(tmp_path / 'argv.json')!r}, "w"))
sys.stdout.write(open({str(tmp_path / 'out.yaml')!r}).read())
sys.stderr.write("boom\\n" if {code} else "")
sys.exit({code})
""")
    helm.chmod(helm.stat().st_mode | stat.S_IEXEC)
    return helm


def test_missing_helm_is_a_clear_error(tmp_path):
    with pytest.raises(ControlPlaneError, match=r"helm is missing.*hack/build-controlplane.sh"):
        rbac.helm_binary(tmp_path)


def test_renders_only_the_rbac_templates_in_the_operators_namespace(tmp_path):
    helm = fake_helm(tmp_path, "---\n# Source: x\napiVersion: v1\nkind: Role\nmetadata: {name: r}\n---\n")
    docs = rbac.render(helm, "ops", "v1.36.3")
    assert docs == [{"apiVersion": "v1", "kind": "Role", "metadata": {"name": "r"}}]
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv[:3] == ["template", "kubestack", str(rbac.CHART)]
    assert argv[argv.index("--namespace") + 1] == "ops"
    assert argv[argv.index("--kube-version") + 1] == "v1.36.3"
    shown = [argv[i + 1] for i, a in enumerate(argv) if a == "--show-only"]
    assert shown == ["templates/rbac-project-roles.yaml", "templates/rbac-availability-zones.yaml"]
    assert all((rbac.CHART / t).is_file() for t in shown)


def test_a_failed_render_says_why(tmp_path):
    with pytest.raises(ControlPlaneError, match="helm template of .* failed:\nboom"):
        rbac.render(fake_helm(tmp_path, "", code=1), "ops")


def test_objects_carry_helm_ownership_so_helm_install_adopts_them():
    doc = {"kind": "ClusterRole", "metadata": {"name": "kubestack-project-reader", "annotations": {"a": "b"}}}
    got = rbac.owned(doc, "ops")
    assert got["metadata"]["annotations"] == {"a": "b", "meta.helm.sh/release-name": "kubestack",
                                              "meta.helm.sh/release-namespace": "ops"}
    assert doc["metadata"]["annotations"] == {"a": "b"}  # not mutated
