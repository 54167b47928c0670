"""Certificates for the local control plane: a serving CA, a client CA, a service-account key.

The API server is reached over TLS only; every client (the admin, kube-controller-manager,
test users) authenticates with a client certificate signed by the client CA, whose CN is the
user name and whose O entries are its groups (what kube-apiserver's x509 authenticator reads).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class KeyPairFiles:
    cert: Path
    key: Path


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    return x509.Name(attrs)


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def create_ca(directory: Path, name: str) -> KeyPairFiles:
    """A self-signed CA `name` in `directory` (name.crt, name.key); kept if already there."""
    files = KeyPairFiles(directory / f"{name}.crt", directory / f"{name}.key")
    if files.cert.exists() and files.key.exists():
        return files
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(f"kubestack-{name}")
    cert = (
        _builder(subject, subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_key(key, files.key)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def _load(files: KeyPairFiles):
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    return cert, key


def issue(
    ca: KeyPairFiles,
    directory: Path,
    name: str,
    *,
    common_name: str,
    organizations: tuple[str, ...] = (),
    server: bool = False,
) -> KeyPairFiles:
    """A leaf certificate signed by `ca`: a serving cert for localhost/127.0.0.1 when `server`,
    otherwise a client cert for user `common_name` in groups `organizations`."""
    files = KeyPairFiles(directory / f"{name}.crt", directory / f"{name}.key")
    if files.cert.exists() and files.key.exists():
        return files
    ca_cert, ca_key = _load(ca)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _builder(_name(common_name, organizations), ca_cert.subject, key.public_key())
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_key(key, files.key)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def create_signing_key(path: Path) -> Path:
    """The service-account token signing key (kept if already there), in SEC1 form ("EC
    PRIVATE KEY"): kube-apiserver's --service-account-key-file reader does not take PKCS#8."""
    if not path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
        path.chmod(0o600)
    return path
