"""User data as Nova hands it to a guest, for KubeVirt's cloudInitNoCloud.

Nova passes user data to the guest unchanged and serves the key pair's public key from the
metadata service. KubeVirt's NoCloud source has no metadata keys, so the key has to travel in
user data: a cloud-config gets `ssh_authorized_keys` merged in; anything else (a shell
script, an include file, an existing MIME archive) becomes one part of a MIME multipart
archive next to a small cloud-config carrying the key, which cloud-init merges.
"""

from __future__ import annotations

import hashlib
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import yaml

CLOUD_CONFIG = "#cloud-config"

# cloud-init's part types by the first line of a user-data document
_MIME_TYPES = {
    "#!": "text/x-shellscript",
    "#include": "text/x-include-url",
    "#cloud-boothook": "text/cloud-boothook",
    "#upstart-job": "text/upstart-job",
    "#part-handler": "text/part-handler",
    CLOUD_CONFIG: "text/cloud-config",
}


def _mime_type(user_data: str) -> str:
    first = user_data.lstrip().splitlines()[0] if user_data.strip() else ""
    for prefix, mime in _MIME_TYPES.items():
        if first.startswith(prefix):
            return mime
    return "text/x-shellscript" if first.startswith("#!") else "text/plain"


def _key_config(hostname: str, keys: list[str]) -> dict:
    config: dict = {"hostname": hostname, "fqdn": hostname}
    if keys:
        config["ssh_authorized_keys"] = keys
    return config


def user_data(user_data: str | None, *, hostname: str, public_keys: list[str]) -> str:
    """The user-data document for the guest: the user's own, with hostname and keys added."""
    base = _key_config(hostname, public_keys)
    if not user_data or not user_data.strip():
        return CLOUD_CONFIG + "\n" + yaml.safe_dump(base, sort_keys=False)
    if user_data.lstrip().startswith(CLOUD_CONFIG):
        try:
            config = yaml.safe_load(user_data) or {}
        except yaml.YAMLError:
            config = None
        if isinstance(config, dict):
            merged = dict(config)
            merged.setdefault("hostname", hostname)
            merged.setdefault("fqdn", hostname)
            if public_keys:
                existing = list(merged.get("ssh_authorized_keys") or [])
                merged["ssh_authorized_keys"] = existing + [k for k in public_keys if k not in existing]
            return CLOUD_CONFIG + "\n" + yaml.safe_dump(merged, sort_keys=False)
        # not a mapping (or not YAML): pass it through untouched in its own MIME part
    if user_data.lstrip().startswith("Content-Type: multipart/"):
        # already an archive: cloud-init cannot nest it, so the user's archive wins and the
        # key is expected inside it, as with Nova's config drive.
        return user_data
    # the boundary is derived from the content: a random one (the email package's default)
    # would change the VM's user data on every render, and so restart the guest for nothing
    digest = hashlib.sha256(f"{hostname}\n{public_keys}\n{user_data}".encode()).hexdigest()[:24]
    archive = MIMEMultipart(boundary=f"==============={digest}==")
    archive.attach(MIMEText(CLOUD_CONFIG + "\n" + yaml.safe_dump(base, sort_keys=False),
                            "cloud-config"))
    # a 7bit part has its line endings rewritten on the way out (a lone CR becomes LF); base64
    # keeps the user's bytes exact, as Nova passes them, so text with a CR goes base64 (and
    # non-ASCII text already does); the rest stays readable in the VM's spec
    charset = "utf-8" if "\r" in user_data else None
    part = MIMEText(user_data, _mime_type(user_data).split("/", 1)[1], charset)
    part.add_header("Content-Disposition", 'attachment; filename="user-data"')
    archive.attach(part)
    return archive.as_string()
