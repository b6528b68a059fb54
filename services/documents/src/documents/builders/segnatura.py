"""Segnatura informatica di protocollo (AgID, SegnaturaInformatica 3.0.0), XAdES-sealed.

Structure produced (``prot:`` = ``http://www.agid.gov.it/protocollo/``; every attribute is
``prot:``-qualified because the schema has ``attributeFormDefault="qualified"``)::

    SegnaturaInformatica @versione=3.0.0 @lang=it
      Intestazione
        Identificatore            our registration: the platform's register of online
          CodiceAmministrazione     submissions, a register of the Ambito's AOO
          CodiceAOO                 (@descrizione carries the names when known)
          CodiceRegistro
          NumeroRegistrazione       >= 7 digits
          DataRegistrazione
          OraRegistrazione?
        Oggetto
        Classifica                Denominazione + CodiceFlat (meta["classifica"])
        Fascicolo?                (meta["fascicolo"])
      Descrizione
        Mittente/Amministrazione  the Ambito's AOO that registered and sends the message
        Destinatario/Amministrazione @confermaRicezione=true   the recipient AOO (PEC)
        DocumentoPrimario @nomeFile @mimeType
          Descrizione               who submitted it (the schema has a single Mittente, so
          Impronta @algoritmo=SHA-256  the applicant organisation is described here)
          sigillatoElettronicamente/UnDetached?  marcaturaTemporale/UnDetached?
        Allegato*                 same shape
      ds:Signature                XAdES baseline B (enveloped, C14N 1.1), mandatory

``IndirizzoPostale`` is never written: the schema's CAP type wants 6 digits, so no real
Italian address validates.
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree

from .files import FileRef

if TYPE_CHECKING:
    from .seal import PadesSealer, SealIdentity

__all__ = [
    "DEFAULT_CLASSIFICA",
    "NS",
    "SegnaturaCheck",
    "SegnaturaError",
    "build_segnatura",
    "read_impronte",
    "registration_number",
    "validate_segnatura",
    "verify_segnatura",
]

NS = "http://www.agid.gov.it/protocollo/"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
IMPRONTA_ALGORITHM = "SHA-256"

#: Fallback classification (Titolario dei Comuni, Titolo VII "Servizi alla persona",
#: classe 8). Callers should pass the classification configured for the call in
#: ``meta["classifica"]``.
DEFAULT_CLASSIFICA = {
    "denominazione": (
        "Servizi alla persona - Pianificazione e accordi strategici con enti pubblici "
        "e privati e con il volontariato sociale"
    ),
    "codice": "VII.8",
}

_PARTITA_IVA = re.compile(r"^[0-9]{11}$")
_REGISTER_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,16}$")

# lxml parser and schema objects must not be shared between threads.
_local = threading.local()


class SegnaturaError(ValueError):
    """The Segnatura is not valid; ``errors`` lists every schema violation found."""

    def __init__(self, message: str, errors: Iterable[str] = ()) -> None:
        self.errors = list(errors)
        detail = "".join(f"\n  - {e}" for e in self.errors)
        super().__init__(f"{message}{detail}")


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def _el(parent: etree._Element, name: str, text: str | None = None, **attrs: str | None) -> etree._Element:
    element = etree.SubElement(parent, _q(name))
    for key, value in attrs.items():
        if value not in (None, ""):
            element.set(_q(key), str(value))
    if text is not None:
        element.text = text
    return element


def _required(mapping: Mapping[str, Any], key: str, where: str) -> str:
    value = mapping.get(key)
    if value in (None, ""):
        raise SegnaturaError(f"meta[{where!r}][{key!r}] is required")
    return str(value)


def registration_number(value: Any) -> str:
    """A registration number as AgID writes it (NumeroRegistrazione: at least seven digits,
    zero-padded), the one spelling of it in the Segnatura, the metadata, the PEC message and
    the key by which a Conferma names our registration."""
    return str(value).strip().zfill(7)


def _registration_number(value: Any) -> str:
    text = str(value).strip()
    if not text.isdigit():
        raise SegnaturaError(f"registration number must be digits, got {value!r}")
    return registration_number(text)


def _iso_date(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(str(value)).isoformat()


def build_segnatura(
    meta: Mapping[str, Any],
    primary: FileRef,
    attachments: list[FileRef],
    *,
    signer: SealIdentity | PadesSealer,
) -> bytes:
    """Build the XAdES-sealed Segnatura.xml for a protocol message.

    ``meta`` keys:

    - ``registration``: ``ipa_code``, ``aoo_code``, ``register_code``, ``number`` (digits,
      zero-padded to 7), ``date`` (ISO date); optional ``time`` (xs:time, e.g.
      ``"10:15:00+01:00"``), ``name`` (administration), ``aoo_name``, ``pec``, ``tax_code``
    - ``sender``: the submitting organisation: ``name``, ``tax_code``, ``pec``, ``email``
    - ``recipient``: ``name``, ``ipa_code``, ``aoo_code``, ``aoo_name``, ``pec``; optional
      ``tax_code`` (11 digits)
    - ``subject``: the Oggetto
    - optional ``classifica`` ``{"denominazione", "codice"}`` (default
      :data:`DEFAULT_CLASSIFICA`), ``fascicolo`` ``{"denominazione", "codice"}``

    The schema makes ``ds:Signature`` mandatory, hence ``signer`` (the seal identity or
    the :class:`~documents.builders.seal.PadesSealer` holding it).
    """
    registration = meta.get("registration") or {}
    sender = meta.get("sender") or {}
    recipient = meta.get("recipient") or {}
    subject = meta.get("subject")
    if not subject:
        raise SegnaturaError("meta['subject'] (Oggetto) is required")
    register_code = _required(registration, "register_code", "registration")
    if not _REGISTER_CODE.match(register_code):
        raise SegnaturaError(f"register_code {register_code!r} must be 1-16 of A-Z a-z 0-9 _ . -")

    root = etree.Element(_q("SegnaturaInformatica"), nsmap={"prot": NS})
    root.set(_q("versione"), "3.0.0")
    root.set(_q("lang"), "it")

    # -- Intestazione
    intestazione = _el(root, "Intestazione")
    identificatore = _el(intestazione, "Identificatore")
    _el(
        identificatore,
        "CodiceAmministrazione",
        _required(registration, "ipa_code", "registration"),
        descrizione=registration.get("name"),
    )
    _el(
        identificatore,
        "CodiceAOO",
        _required(registration, "aoo_code", "registration"),
        descrizione=registration.get("aoo_name"),
    )
    _el(identificatore, "CodiceRegistro", register_code)
    _el(
        identificatore,
        "NumeroRegistrazione",
        _registration_number(_required(registration, "number", "registration")),
    )
    _el(identificatore, "DataRegistrazione", _iso_date(_required(registration, "date", "registration")))
    if registration.get("time"):
        _el(identificatore, "OraRegistrazione", str(registration["time"]))
    _el(intestazione, "Oggetto", str(subject))
    classifica = meta.get("classifica") or DEFAULT_CLASSIFICA
    classifica_el = _el(intestazione, "Classifica")
    _el(classifica_el, "Denominazione", str(classifica["denominazione"]))
    _el(classifica_el, "CodiceFlat", str(classifica["codice"]))
    fascicolo = meta.get("fascicolo")
    if fascicolo:
        fascicolo_el = _el(intestazione, "Fascicolo")
        _el(fascicolo_el, "Denominazione", str(fascicolo["denominazione"]))
        _el(fascicolo_el, "CodiceFascicolo", str(fascicolo["codice"]))

    # -- Descrizione
    descrizione = _el(root, "Descrizione")
    mittente = _el(descrizione, "Mittente")
    _amministrazione(
        mittente,
        name=registration.get("name") or registration["ipa_code"],
        tax_code=registration.get("tax_code"),
        ipa_code=registration["ipa_code"],
        aoo_code=registration["aoo_code"],
        aoo_name=registration.get("aoo_name"),
        pec=registration.get("pec"),
    )
    destinatario = _el(descrizione, "Destinatario", confermaRicezione="true")
    _amministrazione(
        destinatario,
        name=_required(recipient, "name", "recipient"),
        tax_code=recipient.get("tax_code"),
        ipa_code=_required(recipient, "ipa_code", "recipient"),
        aoo_code=recipient.get("aoo_code"),
        aoo_name=recipient.get("aoo_name"),
        pec=_required(recipient, "pec", "recipient"),
    )
    _documento(
        descrizione,
        "DocumentoPrimario",
        primary,
        " - ".join(part for part in (primary.description, _submitted_by(sender)) if part),
    )
    for attachment in attachments:
        _documento(descrizione, "Allegato", attachment, attachment.description)

    etree.indent(root, space="  ")  # before signing: whitespace is covered by the signature
    signed = _xades_sign(root, signer)
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def _amministrazione(
    parent: etree._Element,
    *,
    name: str,
    tax_code: str | None,
    ipa_code: str,
    aoo_code: str | None,
    aoo_name: str | None,
    pec: str | None,
) -> None:
    amministrazione = _el(parent, "Amministrazione")
    _el(amministrazione, "DenominazioneAmministrazione", str(name))
    if tax_code and _PARTITA_IVA.match(str(tax_code)):
        _el(amministrazione, "CFAmministrazione", str(tax_code))
    _el(amministrazione, "CodiceIPAAmministrazione", str(ipa_code), descrizione=str(name))
    if aoo_code:
        _el(amministrazione, "CodiceIPAAOO", str(aoo_code), descrizione=aoo_name)
        if pec:
            contatti = _el(amministrazione, "ContattiAOO")
            _el(contatti, "IndirizzoTelematico", str(pec), tipo="smtp", note="PEC")
    elif pec:
        contatti = _el(amministrazione, "ContattiAmministrazione")
        _el(contatti, "IndirizzoTelematico", str(pec), tipo="smtp", note="PEC")


def _submitted_by(sender: Mapping[str, Any]) -> str:
    if not sender.get("name"):
        return ""
    parts = [f"Domanda presentata da {sender['name']}"]
    if sender.get("tax_code"):
        parts.append(f"C.F. {sender['tax_code']}")
    if sender.get("pec"):
        parts.append(f"PEC {sender['pec']}")
    if sender.get("email"):
        parts.append(f"e-mail {sender['email']}")
    return ", ".join(parts)


def _documento(parent: etree._Element, tag: str, file: FileRef, description: str) -> None:
    documento = _el(parent, tag, nomeFile=file.name, mimeType=file.media_type)
    if description:
        _el(documento, "Descrizione", description)
    _el(documento, "Impronta", file.sha256_b64, algoritmo=IMPRONTA_ALGORITHM)
    if file.sealed:
        _el(_el(documento, "sigillatoElettronicamente"), "UnDetached", "true")
    if file.timestamped:
        _el(_el(documento, "marcaturaTemporale"), "UnDetached", "true")


def _identity(signer: SealIdentity | PadesSealer) -> SealIdentity:
    return getattr(signer, "identity", signer)  # type: ignore[return-value]


def _xades_sign(root: etree._Element, signer: SealIdentity | PadesSealer) -> etree._Element:
    """Enveloped XAdES baseline B signature appended as the last child of ``root``.

    signxml's default canonicalisation (C14N 1.1) is kept on purpose: with exclusive C14N
    the signature stops verifying once the Segnatura is re-parsed by other tools.
    """
    from signxml import SignatureMethod
    from signxml.xades import XAdESDataObjectFormat, XAdESSigner

    identity = _identity(signer)
    method = (
        SignatureMethod.ECDSA_SHA256
        if isinstance(identity.key, ec.EllipticCurvePrivateKey)
        else SignatureMethod.RSA_SHA256
    )
    xades = XAdESSigner(
        signature_algorithm=method,
        digest_algorithm="sha256",
        data_object_format=XAdESDataObjectFormat(
            Description="Segnatura informatica di protocollo", MimeType="text/xml"
        ),
    )
    return xades.sign(root, key=identity.key, cert=[identity.cert, *identity.chain])


# --------------------------------------------------------------------------- reading


def _schema(xsd_path: str) -> etree.XMLSchema:
    schemas = getattr(_local, "schemas", None)
    if schemas is None:
        schemas = _local.schemas = {}
    if xsd_path not in schemas:
        # Trusted local file; its xmldsig import is resolved relative to it.
        schemas[xsd_path] = etree.XMLSchema(etree.parse(xsd_path))
    return schemas[xsd_path]


def _parse(xml: bytes) -> etree._Element:
    """Parse XML that may come from outside (a received Segnatura): no DTD, no entities,
    no network."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        return etree.fromstring(xml, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise SegnaturaError("Segnatura is not well-formed XML", [str(exc)]) from exc


def validate_segnatura(xml: bytes, xsd_path: Path) -> None:
    """Raise :class:`SegnaturaError` listing every violation of the AgID schema."""
    schema = _schema(str(Path(xsd_path).resolve()))
    document = _parse(xml)
    if schema.validate(document):
        return
    errors = [f"line {e.line}: {e.message}" for e in schema.error_log]
    raise SegnaturaError("Segnatura does not validate against the AgID schema", errors)


def read_impronte(xml: bytes) -> dict[str, str]:
    """``{nomeFile: base64 digest}`` of the primary document and every attachment."""
    document = _parse(xml)
    result: dict[str, str] = {}
    for tag in ("DocumentoPrimario", "Allegato"):
        for element in document.iterfind(f"{{{NS}}}Descrizione/{{{NS}}}{tag}"):
            impronta = element.find(_q("Impronta"))
            if impronta is not None:
                result[element.get(_q("nomeFile"), "")] = (impronta.text or "").strip()
    return result


@dataclass(frozen=True)
class SegnaturaCheck:
    """Outcome of :func:`verify_segnatura`."""

    valid: bool
    trusted: bool
    signer_subject: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.valid and self.trusted


def verify_segnatura(xml: bytes, trust_roots: list[Path]) -> SegnaturaCheck:
    """Verify the XAdES signature of a Segnatura and that its certificate chains to a root.

    The certificate path is validated with pyhanko-certvalidator (no fetching, soft-fail
    revocation), like :func:`documents.builders.seal.verify_seal`, so PAdES and XAdES get
    the same trust decision.
    """
    from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier

    document = _parse(xml)
    signature = document.find(f"{{{DS_NS}}}Signature")
    if signature is None:
        return SegnaturaCheck(valid=False, trusted=False, error="no ds:Signature")
    try:
        certs = _leaf_first(
            [
                x509.load_der_x509_certificate(_b64decode(node.text or ""))
                for node in signature.iterfind(f".//{{{DS_NS}}}X509Certificate")
            ]
        )
    except ValueError as exc:
        return SegnaturaCheck(valid=False, trusted=False, error=f"certificate: {exc}")
    if not certs:
        return SegnaturaCheck(valid=False, trusted=False, error="no signing certificate")
    signing_cert = certs[0]
    try:
        results = XAdESVerifier().verify(
            document,
            x509_cert=signing_cert,
            expect_config=XAdESSignatureConfiguration(expect_references=3),
        )
    except Exception as exc:  # signxml raises several unrelated exception types
        return SegnaturaCheck(valid=False, trusted=False, error=f"signature: {exc}")
    # The data reference must be the whole Segnatura (enveloped, URI=""), not a fragment.
    signed = results[0].signed_xml if results else None
    if signed is None or signed.tag != document.tag:
        return SegnaturaCheck(valid=False, trusted=False, error="the signature does not cover the Segnatura")
    subject = signing_cert.subject.rfc4514_string()
    try:
        _validate_chain(signing_cert, certs[1:], trust_roots)
    except Exception as exc:
        return SegnaturaCheck(valid=True, trusted=False, signer_subject=subject, error=str(exc))
    return SegnaturaCheck(valid=True, trusted=True, signer_subject=subject)


def _b64decode(text: str) -> bytes:
    return base64.b64decode("".join(text.split()))


def _leaf_first(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    """Put the end-entity certificate first (KeyInfo order is not significant)."""
    issuers = {c.issuer for c in certs}
    leaves = [c for c in certs if c.subject not in issuers]
    leaf = leaves[0] if leaves else certs[0]
    return [leaf, *(c for c in certs if c is not leaf)]


def _run_sync(coro: Any) -> Any:
    """asyncio.run, also from code that already runs inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    outcome: dict[str, Any] = {}

    def runner() -> None:
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=runner)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _validate_chain(
    leaf: x509.Certificate, intermediates: list[x509.Certificate], trust_roots: list[Path]
) -> None:
    from asn1crypto import x509 as asn1_x509
    from pyhanko_certvalidator import CertificateValidator, ValidationContext

    from .seal import load_certificates

    def to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    context = ValidationContext(
        trust_roots=[to_asn1(c) for c in load_certificates(trust_roots)], allow_fetching=False
    )
    validator = CertificateValidator(
        to_asn1(leaf), [to_asn1(c) for c in intermediates], validation_context=context
    )
    _run_sync(validator.async_validate_usage({"digital_signature"}))
