"""Templates by URL (kubestack.cli.template_files, `kubestack stack -t URL -e URL`): what a
template, a nested template and an environment refer to is read relative to the document
that names it, as python-heatclient reads it, into the files the Stack carries; errors are
one line. With a fake fetcher, then through the CLI against files and a local http.server."""

from __future__ import annotations

import io
import json
import urllib.error

import pytest
import yaml

from kubestack.cli import main
from kubestack.cli.template_files import MAX_TEMPLATE_SIZE, FetchError, TemplateFiles, to_url
from support.http import serve

TOP = """heat_template_version: 2016-10-14
resources:
  web: {type: lib/tier.yaml, properties: {flavor: m1.tiny}}
  note:
    type: OS::Neutron::SecurityGroup
    properties:
      description: {get_file: /notes/top.txt}
  rules:
    type: OS::Neutron::SecurityGroup
    properties:
      description: {get_file: ../shared/rules.txt}
  remote:
    type: OS::Neutron::SecurityGroup
    properties:
      description: {get_file: "https://other.example/motd.txt"}
"""
TIER = """heat_template_version: 2016-10-14
parameters:
  flavor: {type: string}
resources:
  vm:
    type: OS::Nova::Server
    properties: {image: cirros, flavor: {get_param: flavor}, user_data: {get_file: scripts/boot.sh}}
  db: {type: ../db/db.yaml}
"""
DB = """heat_template_version: 2016-10-14
resources:
  sg:
    type: OS::Neutron::SecurityGroup
    properties: {description: {get_file: db.txt}}
"""


class Fake:
    """A fetcher serving a dict of URL -> text; it records what it was asked for."""

    def __init__(self, docs: dict[str, str | bytes]) -> None:
        self.docs, self.asked = docs, []

    def __call__(self, url: str, limit: int) -> bytes:
        self.asked.append(url)
        if url not in self.docs:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, io.BytesIO())
        data = self.docs[url]
        return (data.encode() if isinstance(data, str) else data)[:limit + 1]


SITE = {
    "http://h/app/top.yaml": TOP,
    "http://h/app/lib/tier.yaml": TIER,
    "http://h/app/lib/scripts/boot.sh": "#!/bin/sh\necho tier\n",
    "http://h/app/db/db.yaml": DB,
    "http://h/app/db/db.txt": "db rules",
    "http://h/notes/top.txt": "from the host's root",
    "http://h/shared/rules.txt": "shared rules",
    "https://other.example/motd.txt": "elsewhere",
}


def test_references_are_read_relative_to_the_document_naming_them():
    fake = Fake(SITE)
    reader = TemplateFiles(fake)
    template = reader.template("http://h/app/top.yaml")
    # the names the templates give, as for templates read from local paths; the template unchanged
    assert reader.files == {
        "lib/tier.yaml": TIER,
        "/notes/top.txt": "from the host's root",
        "../shared/rules.txt": "shared rules",
        "https://other.example/motd.txt": "elsewhere",
        "scripts/boot.sh": "#!/bin/sh\necho tier\n",   # relative to lib/tier.yaml
        "../db/db.yaml": DB,                           # relative to lib/tier.yaml, nested again
        "db.txt": "db rules",                          # relative to db/db.yaml
    }
    assert template["resources"]["web"]["type"] == "lib/tier.yaml"
    assert template["resources"]["note"]["properties"]["description"] == {"get_file": "/notes/top.txt"}
    assert sorted(fake.asked) == sorted(SITE)  # each once


def test_a_template_that_nests_itself_is_read_once():
    loop = "heat_template_version: 2016-10-14\nresources:\n  again: {type: loop.yaml}\n"
    fake = Fake({"http://h/t/top.yaml": "heat_template_version: 2016-10-14\nresources:\n  a: {type: loop.yaml}\n",
                 "http://h/t/loop.yaml": loop})
    reader = TemplateFiles(fake)
    reader.template("http://h/t/top.yaml")
    assert reader.files == {"loop.yaml": loop}
    assert fake.asked == ["http://h/t/top.yaml", "http://h/t/loop.yaml"]
    # one that names the top template back: its text once it is read
    fake = Fake({"http://h/t/top.yaml": "heat_template_version: 2016-10-14\nresources:\n  a: {type: back.yaml}\n",
                 "http://h/t/back.yaml": "heat_template_version: 2016-10-14\nresources:\n  b: {type: top.yaml}\n"})
    reader = TemplateFiles(fake)
    reader.template("http://h/t/top.yaml")
    assert reader.files["top.yaml"] == fake.docs["http://h/t/top.yaml"]
    assert len(fake.asked) == 2


def test_one_name_for_two_files_keeps_the_later_one_under_its_url():
    top = ("heat_template_version: 2016-10-14\nresources:\n  t: {type: lib/tier.yaml}\n"
           "  sg: {type: OS::Neutron::SecurityGroup, properties: {description: {get_file: boot.sh}}}\n")
    tier = ("heat_template_version: 2016-10-14\nresources:\n"
            "  sg: {type: OS::Neutron::SecurityGroup, properties: {description: {get_file: boot.sh}}}\n")
    reader = TemplateFiles(Fake({"http://h/top.yaml": top, "http://h/lib/tier.yaml": tier,
                                 "http://h/boot.sh": "top", "http://h/lib/boot.sh": "tier"}))
    template = reader.template("http://h/top.yaml")
    # the top template's references keep their names; the nested one's is its URL, in its text
    assert template["resources"]["sg"]["properties"]["description"] == {"get_file": "boot.sh"}
    assert reader.files["boot.sh"] == "top" and reader.files["http://h/lib/boot.sh"] == "tier"
    nested = json.loads(reader.files["lib/tier.yaml"])
    assert nested["resources"]["sg"]["properties"]["description"] == {"get_file": "http://h/lib/boot.sh"}

    # and the engine reads each where it should
    from kubestack.orchestration import load_stack

    stack = load_stack(template, {}, reader.files, {}, stack_name="s")
    assert {r.name: r.properties.get("description") for r in stack.plan(defaults=False).resources} == {
        "t": None, "sg": "top"}
    child = load_stack(nested, {}, reader.files, {}, stack_name="s-t")  # a child Stack gets the parent's files
    assert [r.properties["description"] for r in child.plan(defaults=False).resources] == ["tier"]


def test_environment_registry_relative_to_the_environment_or_its_base_url():
    tier = "heat_template_version: 2016-10-14\nresources: {}\n"
    env = {
        "parameter_defaults": {"flavor": "m1.tiny"},
        "resource_registry": {
            "My::Tier": "../lib/tier.yaml",
            "My::Server": "OS::Nova::Server",            # an alias: nothing to read
            "My::Remote": "https://other.example/r.yaml",
            "resources": {
                "web": {"My::Tier": "web.yaml", "base_url": "http://cdn/web/", "hooks": "pre-create"},
                "db": {"My::Tier": "db.yaml"},
            },
        },
    }
    fake = Fake({"http://h/env/env.yaml": yaml.safe_dump(env), "http://h/lib/tier.yaml": tier,
                 "https://other.example/r.yaml": tier, "http://cdn/web/web.yaml": tier,
                 "http://h/env/db.yaml": tier})
    reader = TemplateFiles(fake)
    doc = reader.environment("http://h/env/env.yaml")
    assert doc["resource_registry"]["My::Tier"] == "../lib/tier.yaml"
    assert reader.files == {"../lib/tier.yaml": tier, "https://other.example/r.yaml": tier,
                            "web.yaml": tier, "db.yaml": tier}
    # the whole registry's base_url
    fake = Fake({"http://h/env/env.yaml": "resource_registry: {base_url: 'http://h/tiers', My::T: t.yaml}\n",
                 "http://h/tiers/t.yaml": tier})
    reader = TemplateFiles(fake)
    reader.environment("http://h/env/env.yaml")
    assert reader.files == {"t.yaml": tier}


def test_fetch_errors_are_one_line_naming_the_url_and_where_it_was_named():
    reader = TemplateFiles(Fake({k: v for k, v in SITE.items() if not k.endswith("db.txt")}))
    with pytest.raises(FetchError) as e:
        reader.template("http://h/app/top.yaml")
    assert str(e.value) == ("cannot read http://h/app/db/db.txt (get_file in http://h/app/db/db.yaml): "
                            "HTTP 404 Not Found")
    with pytest.raises(FetchError, match=r"^cannot read http://h/nothing.yaml: HTTP 404 Not Found$"):
        TemplateFiles(Fake({})).template("http://h/nothing.yaml")

    def refused(url, limit):
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    with pytest.raises(FetchError, match=r"^cannot read http://h/t.yaml: Connection refused$"):
        TemplateFiles(refused).template("http://h/t.yaml")


def test_size_limit_is_heats_max_template_size():
    assert MAX_TEMPLATE_SIZE == 524288
    big = "heat_template_version: 2016-10-14\ndescription: " + "x" * 100 + "\n"
    with pytest.raises(FetchError, match=r"^cannot read http://h/t.yaml: it exceeds the maximum allowed size "
                                         r"\(64 bytes, Heat's max_template_size\)$"):
        TemplateFiles(Fake({"http://h/t.yaml": big}), limit=64).template("http://h/t.yaml")
    top = "heat_template_version: 2016-10-14\nresources:\n  a: {type: OS::Heat::None, properties: {x: {get_file: f}}}\n"
    reader = TemplateFiles(Fake({"http://h/t.yaml": top, "http://h/f": "y" * 129}), limit=128)
    with pytest.raises(FetchError, match=r"^cannot read http://h/f \(get_file in http://h/t.yaml\): it exceeds"):
        reader.template("http://h/t.yaml")


def test_schemes_and_local_files_from_remote_documents():
    def tmpl(ref):
        return f"heat_template_version: 2016-10-14\nresources:\n  a: {{type: {ref}}}\n"
    fake = Fake({"http://h/t.yaml": tmpl("file:///etc/passwd.yaml")})
    with pytest.raises(FetchError, match="a document fetched over http may not read local files"):
        TemplateFiles(fake).template("http://h/t.yaml")
    assert fake.asked == ["http://h/t.yaml"]
    with pytest.raises(FetchError, match=r"unsupported URL scheme ftp \(http, https and file are read\)"):
        TemplateFiles(Fake({"http://h/t.yaml": tmpl("ftp://h/x.yaml")})).template("http://h/t.yaml")
    with pytest.raises(FetchError, match="unsupported URL scheme ftp"):
        TemplateFiles(Fake({})).template("ftp://h/t.yaml")
    with pytest.raises(FetchError, match="a file URL names an absolute path"):
        to_url("file:t.yaml")
    assert to_url("/srv/heat/t.yaml") == "file:///srv/heat/t.yaml"
    assert to_url("https://h/t.yaml") == "https://h/t.yaml"


def test_contents_that_are_not_text_are_sent_base64_encoded_as_heatclient_does():
    top = ("heat_template_version: 2016-10-14\nresources:\n"
           "  a: {type: OS::Heat::None, properties: {x: {get_file: logo.png}}}\n")
    reader = TemplateFiles(Fake({"http://h/t.yaml": top, "http://h/logo.png": b"\x89PNG\r\n\x1a\n\xff"}))
    reader.template("http://h/t.yaml")
    assert reader.files == {"logo.png": "iVBORw0KGgr/\n"}
    with pytest.raises(FetchError, match="the template is not UTF-8 text"):
        TemplateFiles(Fake({"http://h/t.yaml": b"\xff\xfe"})).template("http://h/t.yaml")


def test_a_get_file_of_yaml_that_is_not_a_template_is_kept_as_it_is():
    top = ("heat_template_version: 2016-10-14\nresources:\n"
           "  a: {type: OS::Heat::None, properties: {x: {get_file: cloud.yaml}, y: {get_file: child.yaml}}}\n")
    cloud = "#cloud-config\nruncmd:\n  - {type: notes.yaml}\n"
    child = "heat_template_version: 2016-10-14\nresources:\n  b: {type: OS::Heat::None, properties: {z: {get_file: c.txt}}}\n"
    reader = TemplateFiles(Fake({"http://h/t.yaml": top, "http://h/cloud.yaml": cloud,
                                 "http://h/child.yaml": child, "http://h/c.txt": "c"}))
    reader.template("http://h/t.yaml")
    # a HOT template read with get_file (OS::Heat::Stack's template) is read for what it names
    assert reader.files == {"cloud.yaml": cloud, "child.yaml": child, "c.txt": "c"}


# ---------------------------------------------------------------------------- the CLI


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _by_name(dry_run: dict) -> dict:
    return {r["name"]: r for r in dry_run["resources"]}


def _write_site(root):
    (root / "lib" / "scripts").mkdir(parents=True)
    (root / "env").mkdir()
    (root / "top.yaml").write_text(
        "heat_template_version: 2016-10-14\nparameters:\n  motd: {type: string}\nresources:\n"
        "  web: {type: lib/tier.yaml, properties: {flavor: m1.tiny}}\n"
        "  app: {type: My::Tier, properties: {flavor: {get_attr: [web, ip]}}}\n"
        "  sg: {type: OS::Neutron::SecurityGroup, properties: {description: {get_param: motd}}}\n")
    (root / "lib" / "tier.yaml").write_text(TIER.replace("  db: {type: ../db/db.yaml}\n", "")
                                            + "outputs:\n  ip: {value: {get_attr: [vm, first_address]}}\n")
    (root / "lib" / "scripts" / "boot.sh").write_text("#!/bin/sh\necho tier\n")
    (root / "env" / "env.yaml").write_text("resource_registry:\n  My::Tier: ../lib/tier.yaml\n")
    (root / "motd.txt").write_text("hello")


def test_file_urls_offline(capsys, tmp_path):
    _write_site(tmp_path)
    top, env = (tmp_path / "top.yaml").as_uri(), (tmp_path / "env" / "env.yaml").as_uri()
    code, out, err = run(capsys, "stack", "validate", "-t", top, "-e", env, "--parameter", "motd=x", "-f", "json")
    assert code == 0, err
    assert json.loads(out)["Parameters"]["motd"]["Value"] == "x"
    code, out, err = run(capsys, "stack", "create", "s", "--dry-run", "-f", "json", "-t", top, "-e", env,
                         "--parameter-file", f"motd={(tmp_path / 'motd.txt').as_uri()}")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["valid"] is True
    assert {r["name"]: (r["type"], r["depends_on"]) for r in doc["resources"]} == {
        "web": ("lib/tier.yaml", []), "app": ("../lib/tier.yaml", ["web"]), "sg": ("OS::Neutron::SecurityGroup", [])}
    assert _by_name(doc)["sg"]["properties"]["description"] == "hello"


def test_local_paths_are_paths(capsys, tmp_path):
    # relative to a local template a reference is a path: % and spaces are part of its name
    (tmp_path / "100% done.sh").write_text("done")
    (tmp_path / "t.yaml").write_text(
        "heat_template_version: 2016-10-14\nresources:\n"
        "  sg: {type: OS::Neutron::SecurityGroup, properties: {description: {get_file: '100% done.sh'}}}\n")
    code, out, err = run(capsys, "stack", "create", "s", "-t", str(tmp_path / "t.yaml"), "-o", "json")
    assert code == 0, err
    assert json.loads(out)["spec"]["files"] == {"100% done.sh": "done"}
    code, out, err = run(capsys, "stack", "validate", "-t", str(tmp_path / "t.yaml").replace("t.yaml", "u.yaml"))
    assert code == 1 and err == f"ERROR: Failed to validate: cannot read {tmp_path / 'u.yaml'}: No such file or directory\n"


@pytest.fixture
def site(tmp_path, monkeypatch):
    """The files under tmp_path/site served on 127.0.0.1 (an ephemeral port); its base URL."""
    root = tmp_path / "site"
    root.mkdir()
    with serve(root, monkeypatch) as base:
        yield root, base


def test_templates_served_over_http(capsys, site):
    root, base = site
    _write_site(root)
    code, out, err = run(capsys, "stack", "create", "s", "--dry-run", "-f", "json", "-t", f"{base}/top.yaml",
                         "-e", f"{base}/env/env.yaml", "--parameter-file", f"motd={base}/motd.txt")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["valid"] is True and _by_name(doc)["sg"]["properties"]["description"] == "hello"
    assert {r["name"]: r["type"] for r in doc["resources"]} == {
        "web": "lib/tier.yaml", "app": "../lib/tier.yaml", "sg": "OS::Neutron::SecurityGroup"}
    # the manifest: the files the openstack client would send, under the names the templates give
    code, out, err = run(capsys, "stack", "create", "s", "-o", "json", "-t", f"{base}/top.yaml",
                         "-e", f"{base}/env/env.yaml", "--parameter", "motd=x")
    assert code == 0, err
    spec = json.loads(out)["spec"]
    tier = (root / "lib" / "tier.yaml").read_text()
    assert spec["files"] == {"lib/tier.yaml": tier, "scripts/boot.sh": "#!/bin/sh\necho tier\n",
                             "../lib/tier.yaml": tier}
    assert spec["environment"] == {"resource_registry": {"My::Tier": "../lib/tier.yaml"}}
    assert spec["template"]["resources"]["web"]["type"] == "lib/tier.yaml"


def test_http_errors_are_one_line(capsys, site):
    root, base = site
    _write_site(root)
    (root / "lib" / "scripts" / "boot.sh").unlink()
    code, out, err = run(capsys, "stack", "create", "s", "--dry-run", "-f", "json", "-t", f"{base}/top.yaml",
                         "-e", f"{base}/env/env.yaml", "--parameter", "motd=x")
    assert code == 1 and "Traceback" not in err
    assert json.loads(out)["error"] == (f"cannot read {base}/lib/scripts/boot.sh (get_file in {base}/lib/tier.yaml): "
                                        "HTTP 404 File not found")
    code, out, err = run(capsys, "stack", "validate", "-t", f"{base}/nothing.yaml")
    assert (code, out, err) == (1, "", f"ERROR: Failed to validate: cannot read {base}/nothing.yaml: HTTP 404 File not found\n")
    (root / "big.yaml").write_text("heat_template_version: 2016-10-14\ndescription: " + "x" * MAX_TEMPLATE_SIZE + "\n")
    code, out, err = run(capsys, "stack", "validate", "-t", f"{base}/big.yaml")
    assert code == 1 and err == (f"ERROR: Failed to validate: cannot read {base}/big.yaml: it exceeds the maximum "
                                 f"allowed size ({MAX_TEMPLATE_SIZE} bytes, Heat's max_template_size)\n")
