"""Development/test PKI: a throw-away root CA, a seal certificate and a TSA certificate.

Production mounts a real (qualified) seal certificate and uses a real TSA; this module only
exists so that embedded mode and the test suite can seal and timestamp documents with the
same code paths, validated against a known trust root.

The key material is RSA 2048 with SHA-256: every validator we care about (pyHanko, signxml,
DSS, the Italian desktop verifiers) handles it, and it is what most real seal certificates use.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["DEV_P12_PASSWORD", "DevPki", "common_name", "ensure_dev_pki"]

#: Password of ``seal.p12`` when the caller does not choose one. Test material only.
DEV_P12_PASSWORD = "sigillo-dev"

_CA_YEARS = 20
_LEAF_YEARS = 10
# Backdate notBefore a little so that a freshly generated certificate is already valid on a
# machine whose clock is slightly behind the one that generated it.
_BACKDATE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class DevPki:
    """Paths of the generated dev PKI files (all under one directory)."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    seal_cert: Path
    seal_key: Path
    seal_p12: Path
    p12_password: str
    tsa_cert: Path
    tsa_key: Path


def ensure_dev_pki(
    directory: Path,
    organisation: str,
    *,
    p12_password: str = DEV_P12_PASSWORD,
    organization_identifier: str | None = None,
) -> DevPki:
    """Create the dev PKI under ``directory`` if (part of) it is missing; return its paths.

    Idempotent: existing, consistent files are never rewritten. A file lock serialises
    concurrent callers (two workers starting together) and every file is written to a
    temporary name and moved into place with :func:`os.replace`, so a reader never sees a
    half-written file. If the CA has to be (re)generated, the certificates it issues are
    regenerated too so that the set always chains.

    Names fit X.509's 64-character limit without being cut where possible (see
    :func:`_subject`). ``organization_identifier`` (e.g. ``"VATIT-12345678901"``) goes into the
    seal subject's organizationIdentifier attribute (OID 2.5.4.97), as eIDAS seal certificates
    carry it.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pki = DevPki(
        directory=directory,
        ca_cert=directory / "ca.pem",
        ca_key=directory / "ca.key",
        seal_cert=directory / "seal.pem",
        seal_key=directory / "seal.key",
        seal_p12=directory / "seal.p12",
        p12_password=p12_password,
        tsa_cert=directory / "tsa.pem",
        tsa_key=directory / "tsa.key",
    )
    with _locked(directory / ".pki.lock"):
        now = dt.datetime.now(dt.UTC)

        ca_pair = _load_pair(pki.ca_key, pki.ca_cert)
        regenerate_children = ca_pair is None
        if ca_pair is None:
            ca_pair = _make_ca(organisation, now)
            _write_pair(pki.ca_key, pki.ca_cert, *ca_pair)
        ca_key, ca_cert = ca_pair

        seal_pair = None if regenerate_children else _load_pair(pki.seal_key, pki.seal_cert)
        if seal_pair is None or not _issued_by(seal_pair[1], ca_cert):
            seal_pair = _make_seal(organisation, organization_identifier, ca_key, ca_cert, now)
            _write_pair(pki.seal_key, pki.seal_cert, *seal_pair)
            _write_p12(pki.seal_p12, *seal_pair, ca_cert, p12_password)
        elif not _p12_matches(pki.seal_p12, p12_password, seal_pair[1]):
            _write_p12(pki.seal_p12, *seal_pair, ca_cert, p12_password)

        tsa_pair = None if regenerate_children else _load_pair(pki.tsa_key, pki.tsa_cert)
        if tsa_pair is None or not _issued_by(tsa_pair[1], ca_cert):
            tsa_pair = _make_tsa(organisation, ca_key, ca_cert, now)
            _write_pair(pki.tsa_key, pki.tsa_cert, *tsa_pair)
    return pki


# --------------------------------------------------------------------------- generation


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


_NAME_LIMIT = 64  # X.520 upper bound of commonName and organizationName (UTF-8 bytes here)
#: "Ambito Territoriale Sociale Valle Seriana Superiore e Valle di Scalve" is called
#: "Ambito Valle Seriana Superiore e Valle di Scalve" for short (ambito.json's short_name).
_AMBITO_PREFIX = re.compile(r"^Ambito\s+territoriale(\s+sociale)?\s+", re.IGNORECASE)


def _fits(text: str) -> bool:
    return len(text.encode()) <= _NAME_LIMIT


def _fit(text: str) -> str:
    """Shorten ``text`` with an ellipsis so that it fits X.509's limit (the last resort)."""
    if _fits(text):
        return text
    while not _fits(text + "…"):
        text = text[:-1]
    return text.rstrip() + "…"


def _organisation_name(organisation: str) -> str:
    """``organisation`` as it fits an X.509 name: whole, else by its usual short form.

    Ambito names are often longer than the 64 characters X.509 allows; people shorten them
    to "Ambito <territory>", and so does this. Only a name still too long is cut.
    """
    if _fits(organisation):
        return organisation
    return _fit(_AMBITO_PREFIX.sub("Ambito ", organisation, count=1))


def _subject(
    organisation: str, purpose: str, *extra: tuple[x509.ObjectIdentifier, str]
) -> x509.Name:
    """The subject of a dev certificate of ``organisation`` for ``purpose``.

    OU says what the certificate is for and that it is a test one. CN, the name pages and
    validators show, adds as much of that to the organisation as fits: "Comune di Prova -
    sigillo elettronico (TEST)", else "Ambito Valle Seriana Superiore e Valle di Scalve (TEST)",
    else the organisation alone. ``extra`` attributes follow O, as organizationIdentifier does
    in eIDAS seal certificates.
    """
    name = _organisation_name(organisation)
    unit = f"{purpose} (TEST)"
    common = next((text for text in (f"{name} - {unit}", f"{name} (TEST)") if _fits(text)), name)
    return x509.Name([
        x509.NameAttribute(oid, value)
        for oid, value in [
            (NameOID.COUNTRY_NAME, "IT"),
            (NameOID.ORGANIZATION_NAME, name),
            *extra,
            (NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            (NameOID.COMMON_NAME, common),
        ]
    ])


def _make_ca(organisation: str, now: dt.datetime) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _new_key()
    subject = _subject(organisation, "CA di test")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=365 * _CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf_builder(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    now: dt.datetime,
    *,
    non_repudiation: bool,
) -> x509.CertificateBuilder:
    not_after = min(now + dt.timedelta(days=365 * _LEAF_YEARS), ca_cert.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=non_repudiation,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )


def _make_seal(
    organisation: str,
    organization_identifier: str | None,
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    now: dt.datetime,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _new_key()
    extra = [(NameOID.ORGANIZATION_IDENTIFIER, organization_identifier)] if organization_identifier else []
    subject = _subject(organisation, "sigillo elettronico", *extra)
    cert = _leaf_builder(subject, key, ca_key, ca_cert, now, non_repudiation=True).sign(
        ca_key, hashes.SHA256()
    )
    return key, cert


def _make_tsa(
    organisation: str,
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    now: dt.datetime,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _new_key()
    subject = _subject(organisation, "TSA di test")
    cert = (
        _leaf_builder(subject, key, ca_key, ca_cert, now, non_repudiation=True)
        # RFC 3161 section 2.3: the TSA certificate must carry exactly this critical EKU.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


# --------------------------------------------------------------------------- loading


def _load_pair(key_path: Path, cert_path: Path) -> tuple[rsa.RSAPrivateKey, x509.Certificate] | None:
    """Load a key + certificate, or ``None`` if either is missing, unreadable or mismatched."""
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(key, rsa.RSAPrivateKey):
        return None
    if key.public_key().public_numbers() != cert.public_key().public_numbers():
        return None
    return key, cert


def _issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca_cert)
    except Exception:  # InvalidSignature, ValueError (wrong issuer), TypeError (key type)
        return False
    return True


def _p12_matches(path: Path, password: str, cert: x509.Certificate) -> bool:
    try:
        _key, p12_cert, _chain = pkcs12.load_key_and_certificates(
            path.read_bytes(), password.encode() or None
        )
    except (OSError, ValueError):
        return False
    return p12_cert == cert


# --------------------------------------------------------------------------- writing


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _atomic_write(path: Path, data: bytes, *, private: bool) -> None:
    """Write ``data`` to a temporary sibling, fsync it, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_pair(key_path: Path, cert_path: Path, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> None:
    _atomic_write(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        private=True,
    )
    _atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)


def common_name(cert: x509.Certificate) -> str | None:
    """The certificate subject's CN (a seal's holder as people read it), if it has one."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def _write_p12(
    path: Path,
    key: rsa.RSAPrivateKey,
    cert: x509.Certificate,
    ca_cert: x509.Certificate,
    password: str,
) -> None:
    name = common_name(cert)
    data = pkcs12.serialize_key_and_certificates(
        name=name.encode() if name else None,
        key=key,
        cert=cert,
        cas=[ca_cert],
        encryption_algorithm=(
            serialization.BestAvailableEncryption(password.encode())
            if password
            else serialization.NoEncryption()
        ),
    )
    _atomic_write(path, data, private=True)
