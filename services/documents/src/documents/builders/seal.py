"""PAdES electronic seal (baseline B-B, or B-T with an RFC 3161 timestamp) with pyHanko.

Two things here are not what a naive pyHanko integration does:

* **The key is loaded once.** :class:`pyhanko.sign.signers.SimpleSigner` deserialises its
  private key on every signature; for RSA, cryptography re-checks the key each time (about
  95 ms against 13 ms per seal). :class:`PadesSealer` keeps the parsed key object and signs
  with it directly.
* **The document metadata is left alone.** pyHanko's writers stamp themselves into the
  document-information /Producer ("WeasyPrint 70.0; pyHanko 0.38.0") but write a different
  value ("pyHanko 0.38.0") into the XMP pdf:Producer, and re-serialise the XMP packet. PDF/A
  requires the two to agree, so the sealing increment would break the PDF/A conformance of
  the document it seals. We sign with a writer whose metadata update is a no-op (the hook the
  pyHanko maintainer recommends for this, see pyHanko issue #223): the increment then only
  adds the signature field, its widget and the signature dictionary, and the Info dictionary
  and the XMP stream of the rendered PDF/A stay byte-for-byte what WeasyPrint wrote.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path

import requests
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.general import SigningError
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from .pki import common_name

__all__ = [
    "P7mCheck",
    "PadesSealer",
    "SealCheck",
    "SealIdentity",
    "load_certificates",
    "verify_p7m",
    "verify_seal",
]

SIGNATURE_FIELD = "SigilloElettronico"
_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")

# Fail at import time, not at the first seal, if a pyHanko upgrade renames the hook.
if not callable(getattr(IncrementalPdfFileWriter, "_update_meta", None)):  # pragma: no cover
    raise ImportError(
        "pyHanko no longer has IncrementalPdfFileWriter._update_meta: revisit "
        "documents.builders.seal._MetadataPreservingWriter (PDF/A Producer alignment)"
    )


class _MetadataPreservingWriter(IncrementalPdfFileWriter):
    """Incremental writer that does not touch /Info or the XMP metadata (see module doc)."""

    def _update_meta(self) -> None:
        return None


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class SealIdentity:
    """The seal's key, certificate and issuing chain, parsed once.

    Shared by the PAdES sealer and the XAdES signature of the Segnatura.
    """

    key: PrivateKey
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @classmethod
    def from_pkcs12(
        cls,
        path: Path,
        password: str | bytes | None,
        ca_chain: Iterable[Path | x509.Certificate] = (),
    ) -> SealIdentity:
        """Load from a PKCS#12 file; CA certificates inside it are part of the chain."""
        if isinstance(password, str):
            password = password.encode()
        key, cert, bundled = pkcs12.load_key_and_certificates(Path(path).read_bytes(), password or None)
        if key is None or cert is None:
            raise ValueError(f"{path}: the PKCS#12 file has no private key or certificate")
        return cls._checked(key, cert, [*bundled, *load_certificates(ca_chain)])

    @classmethod
    def from_pem(
        cls,
        key_path: Path,
        cert_path: Path,
        ca_chain_paths: Iterable[Path] = (),
        *,
        key_password: str | bytes | None = None,
    ) -> SealIdentity:
        """Load from PEM (or DER) key and certificate files."""
        if isinstance(key_password, str):
            key_password = key_password.encode()
        key_data = Path(key_path).read_bytes()
        loader = (
            serialization.load_pem_private_key
            if b"-----BEGIN" in key_data
            else serialization.load_der_private_key
        )
        key = loader(key_data, password=key_password)
        certs = load_certificates([Path(cert_path)])
        if not certs:
            raise ValueError(f"{cert_path}: no certificate found")
        return cls._checked(key, certs[0], load_certificates(ca_chain_paths))

    @classmethod
    def _checked(cls, key: object, cert: x509.Certificate, chain: Sequence[x509.Certificate]) -> SealIdentity:
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError(f"unsupported seal key type {type(key).__name__} (RSA or EC only)")
        if key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise ValueError("the seal private key does not match the certificate")
        unique: dict[bytes, x509.Certificate] = {}
        for ca in chain:
            if ca != cert:
                unique.setdefault(ca.fingerprint(hashes.SHA256()), ca)
        return cls(key=key, cert=cert, chain=tuple(unique.values()))


class _PreloadedKeySigner(signers.SimpleSigner):
    """SimpleSigner that signs with an already-parsed cryptography key object."""

    def __init__(self, identity: SealIdentity) -> None:
        super().__init__(
            signing_cert=asn1_x509.Certificate.load(identity.cert.public_bytes(serialization.Encoding.DER)),
            signing_key=_exported_key(identity.key),
            cert_registry=SimpleCertificateStore.from_certs(
                asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in identity.chain
            ),
        )
        self._key = identity.key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism_spec = self.get_signature_mechanism_for_digest(digest_algorithm)
        try:
            mechanism = mechanism_spec.signature_algo
        except ValueError:
            mechanism = mechanism_spec["algorithm"].native
        hash_algo = get_pyca_cryptography_hash(digest_algorithm)
        if mechanism == "rsassa_pkcs1v15" and isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), hash_algo)
        if mechanism == "ecdsa" and isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(hash_algo))
        # Anything else (RSASSA-PSS parameters, ...): pyHanko's own path.
        return super().sign_raw(data, digest_algorithm)


def _exported_key(key: PrivateKey) -> asn1_keys.PrivateKeyInfo | None:
    """The key as pyHanko's fallback signing path wants it; ``None`` for a key that cannot
    leave its device (a remote signer: see ``documents.signers``), which then signs only
    through :meth:`_PreloadedKeySigner.sign_raw`'s direct ``key.sign`` calls."""
    try:
        key_der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    except (NotImplementedError, TypeError, ValueError):
        return None
    return asn1_keys.PrivateKeyInfo.load(key_der)


class _KeepAliveTimeStamper(RequestsHTTPTimeStamper):
    """pyHanko's requests-based TSA client over one kept-alive HTTP session per thread.

    pyHanko's own posts each request through a throwaway session on a worker thread: a new
    connection (a TLS handshake, with a remote TSA) and a thread hand-off for every seal.
    """

    def __init__(self, url: str, *, timeout: float) -> None:
        super().__init__(url, timeout=timeout)
        self._local = threading.local()

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        session = self._local.__dict__.get("session")
        if session is None:
            # urllib3 replaces a pooled connection the TSA has closed meanwhile.
            session = self._local.session = requests.Session()
        try:
            response = session.post(self.url, req.dump(), headers=self.request_headers(), auth=self.auth,
                                    timeout=self.timeout)
        except OSError as exc:
            raise TimestampRequestError("Error in communication with timestamp server") from exc
        if response.headers.get("Content-Type") != "application/timestamp-reply":
            raise TimestampRequestError("Timestamp server response is malformed.", response)
        return tsp.TimeStampResp.load(response.content)


class PadesSealer:
    """Applies the organisation's electronic seal to PDFs. Build one per worker and reuse it."""

    def __init__(self, identity: SealIdentity, *, timestamp_timeout: float = 10.0) -> None:
        self.identity = identity
        self._signer = _PreloadedKeySigner(identity)
        self._timestamp_timeout = timestamp_timeout
        # A timestamper is reusable across calls and caches the dummy response pyHanko uses
        # to size the signature placeholder, so keeping one per URL saves a TSA round trip
        # per seal. The requests-based client, not pyHanko's default aiohttp one: that one
        # builds an aiohttp session per request, about 60 ms more per timestamp; and with a
        # kept-alive connection (see _KeepAliveTimeStamper).
        self._timestampers: dict[str, _KeepAliveTimeStamper] = {}
        # /Contents placeholder size (hex digits) learned per timestamper URL ("" = none).
        self._reserved: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_pkcs12(
        cls,
        path: Path,
        password: str | bytes | None,
        ca_chain: Iterable[Path | x509.Certificate] = (),
    ) -> PadesSealer:
        return cls(SealIdentity.from_pkcs12(path, password, ca_chain))

    @classmethod
    def from_pem(
        cls,
        key_path: Path,
        cert_path: Path,
        ca_chain_paths: Iterable[Path] = (),
        *,
        key_password: str | bytes | None = None,
    ) -> PadesSealer:
        return cls(SealIdentity.from_pem(key_path, cert_path, ca_chain_paths, key_password=key_password))

    def seal(
        self,
        pdf: bytes,
        *,
        reason: str,
        location: str,
        timestamper_url: str | None = None,
    ) -> bytes:
        """Return ``pdf`` with an invisible PAdES seal appended as an incremental update.

        Baseline B-B without ``timestamper_url``; B-T (signature timestamp from that RFC 3161
        server) with it. The original bytes are kept unchanged as a prefix of the result.
        """
        stamper = self._timestamper(timestamper_url) if timestamper_url else None
        reserve_key = timestamper_url or ""
        reserved = self._reserved.get(reserve_key)
        try:
            out = self._sign(pdf, reason, location, stamper, reserved)
        except SigningError:
            if reserved is None:
                raise
            # The learned reservation was too small (e.g. a TSA started embedding a longer
            # chain): let pyHanko estimate again with a dry run.
            out = self._sign(pdf, reason, location, stamper, None)
        self._learn_reservation(reserve_key, out, timestamped=stamper is not None)
        return out

    def sign_cades(self, data: bytes, *, timestamper_url: str | None = None) -> bytes:
        """``data`` wrapped in a CAdES signature (attached, DER): the bytes of a ``.p7m`` file.

        CAdES-B-B, or B-T with a signature timestamp from ``timestamper_url``; for recipients
        whose protocol wants a ``.p7m`` rather than a PAdES-sealed PDF.
        """
        from .segnatura import _run_sync

        stamper = self._timestamper(timestamper_url) if timestamper_url else None
        signed = _run_sync(
            self._signer.async_sign_general_data(
                data, "sha256", detached=False, use_cades=True, timestamper=stamper
            )
        )
        return signed.dump()

    def _sign(
        self,
        pdf: bytes,
        reason: str,
        location: str,
        stamper: timestamps.TimeStamper | None,
        bytes_reserved: int | None,
    ) -> bytes:
        writer = _MetadataPreservingWriter(BytesIO(pdf))
        meta = signers.PdfSignatureMetadata(
            field_name=_free_field_name(writer),
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=reason,
            location=location,
            name=common_name(self.identity.cert),
        )
        pdf_signer = signers.PdfSigner(meta, signer=self._signer, timestamper=stamper)
        out = pdf_signer.sign_pdf(writer, bytes_reserved=bytes_reserved, output=BytesIO())
        return out.getvalue()

    def _learn_reservation(self, key: str, sealed: bytes, *, timestamped: bool) -> None:
        """Remember how much room the CMS blob needs, so later seals skip the dry run.

        Without ``bytes_reserved`` pyHanko sizes the /Contents placeholder by producing a
        complete dummy signature first (about 30 ms of ASN.1 encoding per seal).
        """
        if key in self._reserved:
            return
        der_len = _last_signature_der_length(sealed)
        if der_len is None:
            return
        margin = 8192 if timestamped else 2048  # in hex digits, on top of 25 %
        hex_len = 2 * der_len + (2 * der_len) // 4 + margin
        with self._lock:
            self._reserved.setdefault(key, hex_len + hex_len % 2)

    def _timestamper(self, url: str) -> _KeepAliveTimeStamper:
        with self._lock:
            stamper = self._timestampers.get(url)
            if stamper is None:
                stamper = _KeepAliveTimeStamper(url, timeout=self._timestamp_timeout)
                self._timestampers[url] = stamper
            return stamper


def _free_field_name(writer: IncrementalPdfFileWriter) -> str:
    """First unused signature field name (a document sealed twice gets a second field)."""
    existing: set[str] = set()
    try:
        for field in writer.root["/AcroForm"]["/Fields"]:
            existing.add(str(field.get_object().get("/T", "")))
    except KeyError:
        pass
    name, n = SIGNATURE_FIELD, 1
    while name in existing:
        n += 1
        name = f"{SIGNATURE_FIELD}{n}"
    return name


def _last_signature_der_length(sealed: bytes) -> int | None:
    """Length of the DER CMS blob in the last signature's /Contents (without padding)."""
    match = None
    for match in _BYTE_RANGE.finditer(sealed):  # noqa: B007 - we want the last one
        pass
    if match is None:
        return None
    _start1, len1, start2, _len2 = (int(v) for v in match.groups())
    hex_digits = sealed[len1 + 1 : start2 - 1]  # between "<" and ">"
    try:
        head = bytes.fromhex(hex_digits[:12].decode("ascii"))
    except ValueError:
        return None
    if len(head) < 2 or head[0] != 0x30:
        return None
    if head[1] < 0x80:
        return 2 + head[1]
    n = head[1] & 0x7F
    if n == 0 or n > 4 or len(head) < 2 + n:
        return None
    return 2 + n + int.from_bytes(head[2 : 2 + n], "big")


def load_certificates(sources: Iterable[Path | x509.Certificate]) -> list[x509.Certificate]:
    """The certificates of PEM (one or more each) or DER files; certificates pass through,
    so a caller can read its trust roots once and hand the objects to every verification."""
    certs: list[x509.Certificate] = []
    for source in sources:
        if isinstance(source, x509.Certificate):
            certs.append(source)
            continue
        data = Path(source).read_bytes()
        if b"-----BEGIN CERTIFICATE-----" in data:
            certs.extend(x509.load_pem_x509_certificates(data))
        else:
            certs.append(x509.load_der_x509_certificate(data))
    return certs


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class SealCheck:
    """Outcome of validating the last PAdES seal of a PDF.

    ``intact``: the covered bytes hash to the signed digest; ``valid``: the CMS signature is
    cryptographically valid; ``trusted``: the signer chains to one of the trust roots.
    """

    present: bool
    intact: bool = False
    valid: bool = False
    trusted: bool = False
    covers_whole_file: bool = False
    signer_subject: str | None = None
    signing_time: datetime | None = None
    timestamp_time: datetime | None = None
    timestamp_valid: bool | None = None
    summary: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Intact, valid and trusted (and, when timestamped, a valid timestamp)."""
        return (
            self.present and self.intact and self.valid and self.trusted and self.timestamp_valid is not False
        )


def verify_seal(pdf: bytes, trust_roots: Iterable[Path | x509.Certificate]) -> SealCheck:
    """Validate the last signature in ``pdf`` against ``trust_roots`` only.

    No network access (``allow_fetching=False``) and soft-fail revocation checking: this
    answers "was this sealed by a certificate we trust and not altered since", not a full
    AdES long-term validation.
    """
    roots = [
        asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
        for c in load_certificates(trust_roots)
    ]
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        embedded = reader.embedded_signatures
    except Exception as exc:  # unreadable PDF: not a pyHanko-specific error class
        return SealCheck(present=False, error=f"unreadable PDF: {exc}")
    if not embedded:
        return SealCheck(present=False, summary="no signature")
    sig = embedded[-1]
    try:
        status = validate_pdf_signature(
            sig,
            signer_validation_context=ValidationContext(trust_roots=roots, allow_fetching=False),
            ts_validation_context=ValidationContext(trust_roots=roots, allow_fetching=False),
        )
    except Exception as exc:  # malformed CMS, broken ByteRange...: report, don't raise
        return SealCheck(present=True, error=str(exc))
    ts = status.timestamp_validity
    return SealCheck(
        present=True,
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        covers_whole_file=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        signer_subject=status.signing_cert.subject.human_friendly,
        signing_time=status.signer_reported_dt,
        timestamp_time=ts.timestamp if ts is not None else None,
        timestamp_valid=(ts.intact and ts.valid and ts.trusted) if ts is not None else None,
        summary=status.summary(),
    )


@dataclass(frozen=True)
class P7mCheck:
    """Outcome of :func:`verify_p7m`; ``content`` is the signed document when it parsed."""

    intact: bool
    valid: bool
    trusted: bool
    content: bytes | None = None
    signer_subject: str | None = None
    timestamped: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.intact and self.valid and self.trusted


def verify_p7m(p7m: bytes, trust_roots: list[Path]) -> P7mCheck:
    """Validate an attached CAdES signature against ``trust_roots`` only (no fetching)."""
    from asn1crypto import cms
    from pyhanko.sign.validation.generic_cms import async_validate_cms_signature

    from .segnatura import _run_sync

    roots = [
        asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
        for c in load_certificates(trust_roots)
    ]
    try:
        signed_data = cms.ContentInfo.load(p7m)["content"]
        content = signed_data["encap_content_info"]["content"].native
        signer_info = signed_data["signer_infos"][0]
        status = _run_sync(
            async_validate_cms_signature(
                signed_data,
                validation_context=ValidationContext(trust_roots=roots, allow_fetching=False),
            )
        )
    except Exception as exc:  # malformed DER/CMS: report, don't raise
        return P7mCheck(intact=False, valid=False, trusted=False, error=str(exc))
    unsigned = signer_info["unsigned_attrs"].native or []
    return P7mCheck(
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        content=content,
        signer_subject=status.signing_cert.subject.human_friendly,
        timestamped=any(attr["type"] == "signature_time_stamp_token" for attr in unsigned),
    )
