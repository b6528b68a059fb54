"""Reading replies about a package: AgID Conferma/Eccezione and PEC receipts.

Everything here parses what strangers send, so XML goes through defusedxml (no DTDs, no
entities, no network) and nothing is trusted beyond the identifiers used to find a package:

* **Conferma.xml** (``ConfermaRicezione``/``AggiornamentoConferma`` of AgID's
  ``pec_message.xsd``): its ``Identificatore`` is the recipient's protocol registration, its
  ``MessaggioRicevuto/Identificatore`` ours (register, number, date: the package's
  registration key). Both elements are in the ``pec:`` namespace (local elements of that
  schema), their children in ``prot:``.
* **Eccezione.xml** (``NotificaEccezione``): ``MessaggioRicevuto`` as above and a ``Motivo``;
  AgID's error codes (Allegato 6, e.g. ``003``) are read from the start of the Motivo
  ("003 - Segnatura non valida", "Codice 003: ...").
* **PEC receipts** (DPR 68/2005, DM 2/11/2005): a message with ``X-Ricevuta: accettazione |
  non-accettazione | avvenuta-consegna | errore-consegna | preavviso-errore-consegna``,
  correlated to our message by ``X-Riferimento-Message-ID`` or by ``daticert.xml``'s
  ``msgid``.

A message that is neither a receipt nor an XML file (a Conferma travelling by PEC, wrapped in
the provider's ``postacert.eml``) is searched part by part for a Conferma or an Eccezione.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import re
from dataclasses import dataclass
from email.message import Message
from email.policy import default as default_policy
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from .builders import registration_number

__all__ = ["ParsedReply", "ReplyError", "parse_reply"]

PROT = "{http://www.agid.gov.it/protocollo/}"
PEC = "{http://www.agid.gov.it/protocollo/pec/}"
RECEIPTS = ("accettazione", "non-accettazione", "avvenuta-consegna", "errore-consegna",
            "preavviso-errore-consegna")
_CODE = re.compile(r"^\s*(?:codice\s*:?\s*)?(\d{3})\b\s*[-:–.]?\s*", re.IGNORECASE)
_MAX_PARTS = 50


class ReplyError(ValueError):
    """Not a reply we understand."""


@dataclass(frozen=True)
class ParsedReply:
    """What a reply says. ``kind`` is ``conferma``, ``eccezione`` or a PEC receipt type;
    ``message_id`` (receipts) or ``registration_key`` (AgID replies) finds the package."""

    kind: str
    media_type: str
    message_id: str | None = None
    registration_key: str | None = None
    protocol_number: str | None = None
    protocol_date: dt.date | None = None
    code: str | None = None
    reason: str | None = None
    detail: str = ""


def parse_reply(data: bytes) -> ParsedReply:
    """Parse an uploaded or received reply (raw XML or an RFC 5322 message)."""
    if not data.strip():
        raise ReplyError("empty reply")
    if data.lstrip().startswith(b"<"):
        return _parse_agid(data)
    message = email.message_from_bytes(data, policy=default_policy)
    if not message.keys():
        raise ReplyError("neither XML nor an e-mail message")
    receipt = message.get("X-Ricevuta")
    if receipt:
        return _parse_receipt(message, str(receipt).strip().lower())
    for part in _parts(message):
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload.lstrip().startswith(b"<"):
            try:
                # The evidence kept is the whole message, not the XML inside it.
                return dataclasses.replace(_parse_agid(payload), media_type="message/rfc822")
            except ReplyError:
                continue
    raise ReplyError("the message carries no PEC receipt, Conferma.xml or Eccezione.xml")


def _parts(message: Message) -> list[Message]:
    """Every leaf part, descending into attached messages (PEC envelopes: postacert.eml)."""
    found: list[Message] = []
    pending = [message]
    while pending and len(found) < _MAX_PARTS:
        part = pending.pop(0)
        if part.is_multipart():
            pending.extend(part.get_payload())  # type: ignore[arg-type]
        elif part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            pending.extend(inner if isinstance(inner, list) else [inner])
        else:
            found.append(part)
    return found


def _xml(data: bytes) -> Element:
    try:
        return fromstring(data)
    except (ParseError, DefusedXmlException) as exc:
        raise ReplyError(f"XML not accepted: {exc}") from exc


def _text(element: Element | None, path: str) -> str:
    found = element.find(path) if element is not None else None
    return (found.text or "").strip() if found is not None else ""


def _our_registration(root: Element) -> str:
    ours = root.find(f"{PEC}MessaggioRicevuto/{PEC}Identificatore")
    if ours is None:
        raise ReplyError("MessaggioRicevuto/Identificatore missing: the reply names no message of ours")
    code, number, date = (_text(ours, f"{PROT}{name}") for name in
                          ("CodiceRegistro", "NumeroRegistrazione", "DataRegistrazione"))
    if not (code and number and date):
        raise ReplyError("incomplete MessaggioRicevuto/Identificatore")
    return f"{code}/{registration_number(number)}/{date}"


def _parse_agid(data: bytes) -> ParsedReply:
    root = _xml(data)
    if root.tag in (f"{PEC}ConfermaRicezione", f"{PEC}AggiornamentoConferma"):
        theirs = root.find(f"{PEC}Identificatore")
        number = _text(theirs, f"{PROT}NumeroRegistrazione")
        try:
            date = dt.date.fromisoformat(_text(theirs, f"{PROT}DataRegistrazione"))
        except ValueError as exc:
            raise ReplyError("Conferma: DataRegistrazione is not a date") from exc
        if not number:
            raise ReplyError("Conferma: NumeroRegistrazione missing")
        register = _text(theirs, f"{PROT}CodiceRegistro")
        aoo = _text(theirs, f"{PROT}CodiceAOO")
        return ParsedReply("conferma", "application/xml", registration_key=_our_registration(root),
                           protocol_number=number[:50], protocol_date=date,
                           detail=" (Conferma.xml" + (f", registro {register}" if register else "")
                           + (f", AOO {aoo}" if aoo else "") + ")")
    if root.tag == f"{PEC}NotificaEccezione":
        motivo = " ".join(_text(root, f"{PEC}Motivo").split())
        if not motivo:
            raise ReplyError("Eccezione: Motivo missing")
        match = _CODE.match(motivo)
        code = match.group(1) if match else None
        reason = motivo[match.end():] if match and motivo[match.end():] else motivo
        return ParsedReply("eccezione", "application/xml", registration_key=_our_registration(root),
                           code=code, reason=reason)
    raise ReplyError(f"unexpected XML root {root.tag}: not a Conferma or an Eccezione")


def _parse_receipt(message: Message, kind: str) -> ParsedReply:
    if kind not in RECEIPTS:
        raise ReplyError(f"unknown PEC receipt type {kind!r}")
    daticert = next((part for part in _parts(message)
                     if (part.get_filename() or "").lower() == "daticert.xml"), None)
    fields: dict[str, str] = {}
    if daticert is not None:
        root = _xml(daticert.get_payload(decode=True) or b"")
        fields = {"msgid": _text(root, "dati/msgid"), "consegna": _text(root, "dati/consegna"),
                  "errore": root.get("errore", ""), "errore-esteso": _text(root, "dati/errore-esteso")}
    message_id = str(message.get("X-Riferimento-Message-ID") or "").strip() or fields.get("msgid", "")
    if not message_id:
        raise ReplyError("PEC receipt without X-Riferimento-Message-ID or daticert.xml msgid")
    detail = f"ricevuta di {kind.replace('-', ' ')}"
    if fields.get("consegna"):
        detail += f" per {fields['consegna']}"
    error = fields.get("errore", "")
    reason = fields.get("errore-esteso") or (error if error != "nessuno" else "")
    if reason:
        detail += f": {reason}"
    return ParsedReply(kind, "message/rfc822", message_id=_angle(message_id), reason=reason or None,
                       detail=detail)


def _angle(message_id: str) -> str:
    message_id = message_id.strip()
    return message_id if message_id.startswith("<") else f"<{message_id}>"
