"""Key pair validation and fingerprints (kubestack.compute.keys), checked against digests
computed here independently: MD5 of the base64-decoded OpenSSH blob, SHA1 of the DER cert."""

from __future__ import annotations

import base64
import datetime
import hashlib
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from kubestack.compute import keys


def ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def md5_colons(blob: bytes) -> str:
    digest = hashlib.md5(blob).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def line_of(blob: bytes, algo: str, comment: str = "") -> str:
    return f"{algo} {base64.b64encode(blob).decode()}" + (f" {comment}" if comment else "")


# a fixed vector: an ed25519 key whose 32 key bytes are 0..31
FIXED_ED25519_BLOB = ssh_string(b"ssh-ed25519") + ssh_string(bytes(range(32)))


def test_fixed_ed25519_vector():
    parsed = keys.parse_ssh_public_key(line_of(FIXED_ED25519_BLOB, "ssh-ed25519", "me@host"))
    assert parsed.fingerprint == md5_colons(FIXED_ED25519_BLOB)
    assert len(parsed.fingerprint.split(":")) == 16
    assert parsed.public_key.endswith(" me@host") and parsed.type == "ssh"


@pytest.mark.parametrize("make, algo", [
    (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "ssh-rsa"),
    (lambda: ed25519.Ed25519PrivateKey.generate(), "ssh-ed25519"),
    (lambda: ec.generate_private_key(ec.SECP256R1()), "ecdsa-sha2-nistp256"),
    (lambda: ec.generate_private_key(ec.SECP384R1()), "ecdsa-sha2-nistp384"),
    (lambda: ec.generate_private_key(ec.SECP521R1()), "ecdsa-sha2-nistp521"),
])
def test_openssh_keys_fingerprint_is_md5_of_blob(make, algo):
    line = make().public_key().public_bytes(serialization.Encoding.OpenSSH,
                                            serialization.PublicFormat.OpenSSH).decode()
    blob = base64.b64decode(line.split()[1])
    parsed = keys.parse_ssh_public_key(line + " user@example\n")
    assert parsed.algorithm == algo
    assert parsed.fingerprint == md5_colons(blob)
    assert parsed.public_key == line + " user@example"


def test_x509_fingerprint_is_sha1_of_der():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "winrm")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    der = cert.public_bytes(serialization.Encoding.DER)
    expected = ":".join(f"{b:02x}" for b in hashlib.sha1(der).digest())
    parsed = keys.parse_public_key(pem, "x509")
    assert parsed.fingerprint == expected and parsed.type == "x509"


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("ssh-foo AAAA", "unsupported key type"),
    ("ssh-ed25519", "missing"),
    ("ssh-ed25519 !!!notbase64", "not valid base64"),
    (line_of(FIXED_ED25519_BLOB, "ssh-rsa"), "line says 'ssh-rsa'"),
    (line_of(FIXED_ED25519_BLOB[:-3], "ssh-ed25519"), "truncated"),
    (line_of(ssh_string(b"ssh-ed25519") + ssh_string(bytes(31)), "ssh-ed25519"), "not a valid key"),
    ("ssh-ed25519 AAAA\nssh-ed25519 AAAA", "single line"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
])
def test_invalid_ssh_keys_say_why(text, reason):
    with pytest.raises(keys.InvalidKey, match=reason):
        keys.parse_ssh_public_key(text)


def test_small_rsa_key_refused():
    # a 512-bit modulus, framed as OpenSSH does: e then n, both mpints
    n = (1 << 511) | 0x1234567  # odd, 512 bits
    mpint = lambda v: ssh_string(b"\x00" + v.to_bytes((v.bit_length() + 7) // 8, "big"))  # noqa: E731
    blob = ssh_string(b"ssh-rsa") + mpint(65537) + mpint(n)
    with pytest.raises(keys.InvalidKey, match="512 bits"):
        keys.parse_ssh_public_key(line_of(blob, "ssh-rsa"))


def test_invalid_x509():
    with pytest.raises(keys.InvalidKey, match="PEM certificate"):
        keys.parse_public_key("ssh-ed25519 AAAA", "x509")
    with pytest.raises(keys.InvalidKey, match="cannot be read"):
        keys.parse_public_key("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "x509")


def test_generated_ssh_key_pair_matches():
    gen = keys.generate("kp", "ssh", comment="kp")
    assert gen.private_key.startswith("-----BEGIN RSA PRIVATE KEY-----")
    private = serialization.load_pem_private_key(gen.private_key.encode(), password=None)
    assert private.key_size == keys.RSA_BITS
    expected_line = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                      serialization.PublicFormat.OpenSSH).decode()
    assert gen.public.public_key == expected_line + " kp"
    assert gen.public.fingerprint == md5_colons(base64.b64decode(expected_line.split()[1]))
    # recovering the public half from the stored private key gives the same key
    assert keys.public_from_private(gen.private_key, "kp", comment="kp") == gen.public


def test_generated_x509_key_pair_matches():
    gen = keys.generate("win", "x509")
    cert = x509.load_pem_x509_certificate(gen.public.public_key.encode())
    private = serialization.load_pem_private_key(gen.private_key.encode(), password=None)
    assert cert.public_key().public_numbers() == private.public_key().public_numbers()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "win"
    der = cert.public_bytes(serialization.Encoding.DER)
    assert gen.public.fingerprint == ":".join(f"{b:02x}" for b in hashlib.sha1(der).digest())


def test_keypair_controller_status_for_imported_keys():
    """The KeyPair controller's status for spec.publicKey: Nova's message on bad data."""
    from kubestack.controllers.keypair import imported_status

    kp = {"metadata": {"name": "k", "namespace": "p", "generation": 2},
          "spec": {"publicKey": line_of(FIXED_ED25519_BLOB, "ssh-ed25519")}}
    st = imported_status(kp)
    assert st["fingerprint"] == md5_colons(FIXED_ED25519_BLOB)
    (cond,) = st["conditions"]
    assert (cond["status"], cond["reason"], cond["observedGeneration"]) == ("True", "Imported", 2)
    bad = imported_status({**kp, "spec": {"publicKey": line_of(FIXED_ED25519_BLOB, "ssh-rsa")}})
    (cond,) = bad["conditions"]
    assert cond["status"] == "False" and cond["reason"] == "InvalidKeypair"
    assert cond["message"].startswith("Keypair data is invalid: ")
    assert bad["fingerprint"] is None and bad["publicKey"] is None  # removed from status
