"""Assemble a protocol package: the files to archive and the PEC message that carries them.

Package files, in order::

    <primary>.pdf      role "primary"     the sealed PDF/A
    <attachments...>   role "attachment"
    Segnatura.xml      role "segnatura"   XAdES-sealed AgID segnatura
    metadata.xml       role "metadata"    Allegato 5 metadata of the primary (if given)
    manifest.json      role "manifest"    name, role, media type, SHA-256 and size of EVERY
                                          other file of the package, message.eml included
    message.eml        role "message"     RFC 5322 message to the recipient AOO's PEC address
                                          with the primary, the attachments and Segnatura.xml

manifest.json does not list itself (its hash cannot be inside it); it does list
message.eml, which is built first. The message carries neither manifest.json nor
metadata.xml: the protocol message defined by AgID is primary + attachments + Segnatura, and
the other two are our archive's (and the conservation system's) record of the package.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Any

from .files import FileRef
from .segnatura import registration_number

__all__ = [
    "DEFAULT_PEC_LIMIT",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "MESSAGE_NAME",
    "SEGNATURA_NAME",
    "PackageTooLarge",
    "assemble_package",
]

SEGNATURA_NAME = "Segnatura.xml"
MANIFEST_NAME = "manifest.json"
MESSAGE_NAME = "message.eml"
MANIFEST_FORMAT = "documents.protocol-package/1"
#: Usual PEC provider limit for a whole message (envelope included).
DEFAULT_PEC_LIMIT = 30 * 1024 * 1024


class PackageTooLarge(ValueError):
    """The PEC message would exceed the provider's size limit."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"the PEC message is {size} bytes, over the {limit}-byte limit: "
            "send the attachments separately or reduce them"
        )


def assemble_package(
    *,
    primary: FileRef,
    attachments: list[FileRef],
    segnatura: bytes,
    meta: Mapping[str, Any],
    message_from: str,
    max_message_bytes: int | None = None,
    metadata: FileRef | None = None,
) -> list[FileRef]:
    """Return the package files (see module doc), raising :class:`PackageTooLarge` when the
    message exceeds ``max_message_bytes``. The default (``None``) is what the pipeline uses:
    delivery checks the size against the recipient's own limit, where an oversize package can
    be shown to the protocol officer rather than lost."""
    if not primary.name.lower().endswith(".pdf"):
        raise ValueError(f"the primary document must be a .pdf, got {primary.name!r}")
    primary = dataclasses.replace(primary, role="primary")
    attachments = [dataclasses.replace(a, role="attachment") for a in attachments]
    segnatura_file = FileRef(SEGNATURA_NAME, "application/xml", segnatura, role="segnatura")
    payload = [primary, *attachments, segnatura_file]
    archived = [*payload, metadata] if metadata is not None else payload
    names = [f.name for f in archived]
    duplicates = {n for n in names if names.count(n) > 1} | (set(names) & {MANIFEST_NAME, MESSAGE_NAME})
    if duplicates:
        raise ValueError(f"duplicate or reserved file names in the package: {sorted(duplicates)}")

    now = datetime.now(UTC).replace(microsecond=0)
    message_bytes, message_id = _build_message(payload, meta, message_from, now)
    if max_message_bytes is not None and len(message_bytes) > max_message_bytes:
        raise PackageTooLarge(len(message_bytes), max_message_bytes)
    message = FileRef(MESSAGE_NAME, "message/rfc822", message_bytes, role="message")

    manifest = FileRef(
        MANIFEST_NAME,
        "application/json",
        _build_manifest([*archived, message], meta, message_id, message_from, now),
        role="manifest",
    )
    return [*archived, manifest, message]


def _build_manifest(
    files: list[FileRef],
    meta: Mapping[str, Any],
    message_id: str,
    message_from: str,
    now: datetime,
) -> bytes:
    registration = meta.get("registration") or {}
    recipient = meta.get("recipient") or {}
    document = {
        "format": MANIFEST_FORMAT,
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "registration": {
            key: registration.get(key)
            for key in ("ipa_code", "aoo_code", "register_code", "number", "date", "time")
            if registration.get(key) is not None
        },
        "subject": meta.get("subject"),
        "recipient": {
            key: recipient.get(key)
            for key in ("name", "ipa_code", "aoo_code", "pec")
            if recipient.get(key) is not None
        },
        "message": {"message_id": message_id, "from": message_from},
        "files": [
            {
                "name": f.name,
                "role": f.role,
                "media_type": f.media_type,
                "sha256": f.sha256,
                "size": f.size,
            }
            for f in files
        ],
    }
    return (json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n").encode()


def _build_message(
    files: list[FileRef],
    meta: Mapping[str, Any],
    message_from: str,
    now: datetime,
) -> tuple[bytes, str]:
    recipient = meta.get("recipient") or {}
    to = recipient.get("pec")
    if not to:
        raise ValueError("meta['recipient']['pec'] is required for the PEC message")
    subject = str(meta.get("subject") or "")

    message = EmailMessage(policy=SMTP)
    message["From"] = message_from
    message["To"] = (
        Address(display_name=str(recipient["name"]), addr_spec=str(to)) if recipient.get("name") else str(to)
    )
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    domain = message_from.rpartition("@")[2].strip("> ") or None
    message_id = make_msgid(domain=domain)
    message["Message-ID"] = message_id
    message.set_content(_body(meta), subtype="plain", charset="utf-8")
    for file in files:
        maintype, _, subtype = file.media_type.partition("/")
        message.add_attachment(
            file.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=file.name,
        )
    return message.as_bytes(policy=SMTP), message_id


def _italian_date(value: Any) -> str:
    try:
        parsed = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return parsed.strftime("%d/%m/%Y")


def _body(meta: Mapping[str, Any]) -> str:
    registration = meta.get("registration") or {}
    sender = meta.get("sender") or {}
    lines = [
        "Si trasmette, per la protocollazione, la documentazione relativa a:",
        str(meta.get("subject") or ""),
        "",
    ]
    if registration:
        number = registration_number(registration.get("number", ""))
        lines.append(
            "Registrazione di origine: "
            f"{registration.get('register_code', '')} n. {number} "
            f"del {_italian_date(registration.get('date', ''))}"
        )
    if sender.get("name"):
        presented = f"Domanda presentata da: {sender['name']}"
        if sender.get("tax_code"):
            presented += f" (C.F. {sender['tax_code']})"
        lines.append(presented)
    lines += [
        "",
        "Il documento principale è sigillato elettronicamente; la segnatura informatica di",
        "protocollo (Segnatura.xml) con le impronte dei documenti è allegata al messaggio.",
        "",
        "Messaggio generato automaticamente dalla piattaforma dei servizi sociali d'Ambito.",
    ]
    return "\n".join(lines) + "\n"
