"""`kubestack stack create -t http://...` against the running stack: the CLI fetches the
template and what it refers to from a local http.server (127.0.0.1, no internet) into the
Stack's files; the operator builds the stack, a nested template and its get_file included,
from the Stack alone."""

from __future__ import annotations

import pytest

from kubestack.cli import main as cli_main
from support.compute import get
from support.http import serve
from test_stack import wait_stack

TOP = """heat_template_version: 2016-10-14
resources:
  edge: {type: lib/edge.yaml, properties: {port: 443}}
outputs:
  sg: {value: {get_attr: [edge, name]}}
"""
EDGE = """heat_template_version: 2016-10-14
parameters:
  port: {type: number}
resources:
  sg:
    type: OS::Neutron::SecurityGroup
    properties:
      description: {get_file: notes/edge.txt}
      rules: [{protocol: tcp, port_range_min: {get_param: port}, port_range_max: {get_param: port}}]
outputs:
  name: {value: {get_resource: sg}}
"""


@pytest.fixture
def served(tmp_path, monkeypatch):
    """TOP at /app/top.yaml, EDGE at /app/lib/edge.yaml and its note at /app/lib/notes/edge.txt,
    served on 127.0.0.1; the base URL."""
    (tmp_path / "app" / "lib" / "notes").mkdir(parents=True)
    (tmp_path / "app" / "top.yaml").write_text(TOP)
    (tmp_path / "app" / "lib" / "edge.yaml").write_text(EDGE)
    (tmp_path / "app" / "lib" / "notes" / "edge.txt").write_text("fetched by the CLI")

    with serve(tmp_path, monkeypatch) as base:
        yield f"{base}/app"


def test_stack_create_from_a_template_url(cluster, kubestack, namespace, served, capsys):
    kc = ["--kubeconfig", str(cluster.kubeconfig), "-n", namespace]
    assert cli_main(["stack", "create", "edge", "-t", f"{served}/top.yaml", "--wait", *kc]) == 0, \
        capsys.readouterr().err
    s = wait_stack(cluster, namespace, "edge", "CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE")
    assert s["status"]["stackStatus"] == "CREATE_COMPLETE", s["status"].get("stackStatusReason")
    # everything came in the Stack, under the names the templates give
    assert s["spec"]["files"] == {"lib/edge.yaml": EDGE, "notes/edge.txt": "fetched by the CLI"}
    child = get(cluster, namespace, "stacks", "edge-edge")
    assert child["status"]["stackStatus"] == "CREATE_COMPLETE"
    sg = get(cluster, namespace, "securitygroups", "edge-edge-sg")
    assert sg["spec"]["description"] == "fetched by the CLI"
    assert sg["spec"]["rules"][0]["portRangeMin"] == 443
    assert {o["key"]: o.get("value") for o in s["status"]["outputs"]} == {"sg": "edge-edge-sg"}
    assert cli_main(["stack", "delete", "edge", "--wait", *kc]) == 0
