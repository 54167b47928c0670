"""Key pairs as Nova handles them: validate an imported public key, compute its fingerprint,
generate a new key pair. Pure: no kubernetes client, no kopf.

Fingerprints are what `openstack keypair list` shows:

* ssh keys: MD5 of the base64-decoded key blob, as colon-separated lower-case hex
  (``ssh-keygen -l -E md5`` without the ``MD5:`` prefix);
* x509 certificates: SHA1 of the DER-encoded certificate, colon-separated lower-case hex.

Generated keys are RSA 2048-bit, like Nova's own ``generate_key_pair``: every guest image
that accepts any ssh key accepts RSA (cirros' dropbear and older OpenSSH releases do not
know ed25519). The private key is PEM ("BEGIN RSA PRIVATE KEY"), which `ssh -i` reads, as
Nova hands it out. A generated x509 key pair is a self-signed certificate (CN = the key
pair's name, 10 years) for the RSA key.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import struct
from dataclasses import dataclass

SSH_TYPES = (
    "ssh-rsa", "ssh-dss", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
)
RSA_BITS = 2048


class InvalidKey(ValueError):
    """The key data is not a usable public key; str() is the reason Nova would give."""


@dataclass(frozen=True)
class PublicKey:
    type: str  # "ssh" or "x509"
    algorithm: str  # e.g. ssh-ed25519, or x509
    public_key: str  # normalised: one line for ssh ("<algo> <base64> [comment]"), PEM for x509
    fingerprint: str


@dataclass(frozen=True)
class GeneratedKey:
    private_key: str  # PEM
    public: PublicKey


def colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02x}" for b in digest)


# ------------------------------------------------------------------------------ ssh


def _ssh_strings(blob: bytes) -> list[bytes]:
    """Split an SSH wire-format blob into its length-prefixed strings (RFC 4253 §6.6)."""
    out: list[bytes] = []
    pos = 0
    while pos < len(blob):
        if pos + 4 > len(blob):
            raise InvalidKey("the key blob is truncated")
        (length,) = struct.unpack(">I", blob[pos:pos + 4])
        pos += 4
        if pos + length > len(blob):
            raise InvalidKey("the key blob is truncated")
        out.append(blob[pos:pos + length])
        pos += length
    return out


def parse_ssh_public_key(text: str) -> PublicKey:
    """Validate one OpenSSH public key line and return it with its MD5 fingerprint."""
    line = (text or "").strip()
    if not line:
        raise InvalidKey("the public key is empty")
    if "\n" in line:
        raise InvalidKey("the public key must be a single line (one key per key pair)")
    if "PRIVATE KEY" in line:
        raise InvalidKey("this is a private key: import the public key (the .pub file)")
    parts = line.split(None, 2)
    algorithm = parts[0]
    if algorithm not in SSH_TYPES:
        raise InvalidKey(f"unsupported key type {algorithm[:40]!r}; expected one of {', '.join(SSH_TYPES)}")
    if len(parts) < 2:
        raise InvalidKey("the key data (base64) is missing after the key type")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey("the key data is not valid base64") from None
    strings = _ssh_strings(blob)
    if not strings or strings[0].decode("ascii", "replace") != algorithm:
        inner = strings[0].decode("ascii", "replace")[:40] if strings else ""
        raise InvalidKey(f"the key data is a {inner!r} key but the line says {algorithm!r}")
    _check_ssh_key_material(algorithm, parts[1], strings)
    normalised = " ".join(parts[:2] + ([parts[2].strip()] if len(parts) > 2 and parts[2].strip() else []))
    return PublicKey(type="ssh", algorithm=algorithm, public_key=normalised,
                     fingerprint=colon_hex(hashlib.md5(blob).digest()))  # noqa: S324 - Nova's fingerprint


def _check_ssh_key_material(algorithm: str, b64: str, strings: list[bytes]) -> None:
    """Let `cryptography` load what it knows (rsa, ed25519, ecdsa): that checks the key's
    numbers, not only its framing. DSA and security-key types are checked for framing."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    expected = {"ssh-rsa": 3, "ssh-dss": 5, "ssh-ed25519": 2, "sk-ssh-ed25519@openssh.com": 3,
                "sk-ecdsa-sha2-nistp256@openssh.com": 4}.get(algorithm, 3)
    if len(strings) != expected:
        raise InvalidKey(f"the {algorithm} key data has {len(strings)} fields, expected {expected}")
    if algorithm in ("ssh-dss",) or algorithm.startswith("sk-"):
        return
    try:
        key = load_ssh_public_key(f"{algorithm} {b64}".encode())
    except UnsupportedAlgorithm:
        return
    except ValueError as exc:
        raise InvalidKey(f"the {algorithm} key data is not a valid key ({exc})") from None
    size = getattr(key, "key_size", None)
    if algorithm == "ssh-rsa" and size is not None and size < 1024:
        raise InvalidKey(f"the RSA key is {size} bits; at least 1024 are needed")


# ------------------------------------------------------------------------------ x509


def parse_x509_certificate(text: str) -> PublicKey:
    """Validate a PEM certificate and return it with its SHA1 fingerprint."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = (text or "").strip()
    if not pem.startswith("-----BEGIN CERTIFICATE-----"):
        raise InvalidKey("an x509 key must be a PEM certificate ('-----BEGIN CERTIFICATE-----')")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise InvalidKey(f"the certificate cannot be read ({exc})") from None
    der = cert.public_bytes(Encoding.DER)
    return PublicKey(type="x509", algorithm="x509", public_key=pem + "\n",
                     fingerprint=colon_hex(hashlib.sha1(der).digest()))  # noqa: S324 - Nova's fingerprint


def parse_public_key(text: str, key_type: str = "ssh") -> PublicKey:
    if key_type == "x509":
        return parse_x509_certificate(text)
    if key_type != "ssh":
        raise InvalidKey(f"unknown key pair type {key_type!r}; expected ssh or x509")
    return parse_ssh_public_key(text)


# ------------------------------------------------------------------------------ generation


def generate(name: str, key_type: str = "ssh", comment: str | None = None) -> GeneratedKey:
    """A new RSA 2048-bit key pair (see the module docstring); `comment` ends the ssh line."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    return _from_private(key, name, key_type, comment)


def public_from_private(private_pem: str, name: str, key_type: str = "ssh",
                        comment: str | None = None) -> PublicKey:
    """The ssh public key of a PEM private key (used to recover a key pair whose Secret was
    written but whose status was not)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(private_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidKey(f"the stored private key cannot be read ({exc})") from None
    return _from_private(key, name, key_type, comment).public


def _from_private(key, name: str, key_type: str, comment: str | None) -> GeneratedKey:
    from cryptography.hazmat.primitives.serialization import (
        Encoding, NoEncryption, PrivateFormat, PublicFormat,
    )

    private_pem = key.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption()).decode()
    if key_type == "x509":
        return GeneratedKey(private_key=private_pem, public=parse_x509_certificate(_self_signed(key, name)))
    line = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    if comment:
        line = f"{line} {comment}"
    return GeneratedKey(private_key=private_pem, public=parse_ssh_public_key(line))


def _self_signed(key, name: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name[:64] or "kubestack")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.PEM).decode()
