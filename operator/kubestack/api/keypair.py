"""KeyPair (Nova keypair): an SSH (or x509) public key injected into servers by cloud-init.

Import a key with ``spec.publicKey``; leave it out and the operator generates a key pair,
writes the private key once into the Secret named in ``status.privateKeySecret`` and the
public key into ``status.publicKey``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .common import (
    AGE, KindInfo, KubeModel, PrinterColumn, Resource, Scope, StatusBase, cel, immutable, rule,
)

SSH_KEY_RE = (r"^(ssh-rsa|ssh-dss|ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|"
              r"ecdsa-sha2-nistp521|sk-ssh-ed25519@openssh\.com|"
              r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+=*( .*)?$")


class KeyPairType(StrEnum):
    SSH = "ssh"
    X509 = "x509"


class KeyPairSpec(KubeModel):
    """Import a public key, or leave publicKey out to have one generated."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(
            rule("!has(oldSelf.publicKey) || (has(self.publicKey) && self.publicKey == oldSelf.publicKey)",
                 "publicKey is immutable once set: create a new KeyPair to use another key",
                 field_path=".publicKey", reason="FieldValueForbidden"),
            rule("!has(self.publicKey) || self.type != 'ssh' || self.publicKey.matches("
                 "'" + SSH_KEY_RE.replace("\\", "\\\\") + "')",
                 "publicKey must be one OpenSSH public key line, e.g. "
                 "'ssh-ed25519 AAAAC3Nza... user@host'", field_path=".publicKey"),
            rule("!has(self.publicKey) || self.type != 'x509' || "
                 "self.publicKey.startsWith('-----BEGIN CERTIFICATE-----')",
                 "an x509 publicKey must be a PEM certificate starting with "
                 "'-----BEGIN CERTIFICATE-----'", field_path=".publicKey"),
        )
    }

    public_key: str | None = Field(
        default=None, min_length=1, max_length=16384,
        description="The public key to import (OpenSSH format for type ssh, PEM for x509).")
    type: KeyPairType = Field(default=KeyPairType.SSH, json_schema_extra=cel(immutable("type")))


class KeyPairStatus(StatusBase):
    fingerprint: str | None = Field(default=None, description="MD5 fingerprint, as Nova shows it.")
    public_key: str | None = Field(default=None, description="The effective public key.")
    private_key_secret: str | None = Field(
        default=None, description="Secret holding the generated private key (key 'private_key').")


class KeyPair(Resource):
    KIND = "KeyPair"
    spec: KeyPairSpec = Field(default_factory=KeyPairSpec)
    status: KeyPairStatus = Field(default_factory=KeyPairStatus)


INFO = KindInfo(
    kind="KeyPair", plural="keypairs", singular="keypair", short_names=("kp", "keypair"),
    scope=Scope.NAMESPACED, spec_model=KeyPairSpec, status_model=KeyPairStatus,
    resource_model=KeyPair,
    description="A Nova key pair: a public key injected into servers at boot.",
    printer_columns=(
        PrinterColumn("Fingerprint", ".status.fingerprint"),
        PrinterColumn("Type", ".spec.type"),
        AGE,
    ),
)
