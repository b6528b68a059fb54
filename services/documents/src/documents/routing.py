"""Routing by territory: which protocol (AOO) must register each kind of submission.

The comuni's AOOs (name, IPA code, AOO code, PEC, PEC size limit, whether they want a CAdES
``.p7m``) are configuration, read from ``<AMBITO_DATA_DIR>/aoo.json``; the directory, not the
sender, is authoritative for where a package goes:

* a co-programming application (``coprogramming_application``) goes to the lead comune's
  protocol, on behalf of the whole Ambito;
* a citizen's request (``citizen_request``, ``sad_request``) and the documents the citizen adds
  to it later (``sad_supplement``) go to the protocol of the comune of residence, named by the
  payload as ``payload["residence"]["comune"]`` (a comune code of ambito.json);
* a comune's reimbursement request (``reimbursement_request``) goes to the lead comune, which
  manages the Ambito's funds; the Ambito's decision on it (``reimbursement_decision``) and a
  voucher issued on a comune's budget (``voucher``) go to that comune's protocol, named the same
  way as a residence.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .builders import DEFAULT_PEC_LIMIT, FileRef

__all__ = ["AooDirectory", "RoutingError", "route", "submitted_attachments"]

LEAD = "lead"
RESIDENCE = "residence"
#: Kind of submission -> whose protocol registers it.
ROUTES = {
    "coprogramming_application": LEAD,
    "citizen_request": RESIDENCE,
    "sad_request": RESIDENCE,
    "sad_supplement": RESIDENCE,
    "reimbursement_request": LEAD,
    "reimbursement_decision": RESIDENCE,
    "voucher": RESIDENCE,
}
_RECIPIENT_KEYS = ("name", "ipa_code", "aoo_code", "aoo_name", "pec", "cades")


class RoutingError(ValueError):
    """The submission names no AOO we know: it cannot be delivered anywhere."""


@dataclass(frozen=True)
class AooDirectory:
    """The comuni's AOOs by comune code, and which comune leads the Ambito."""

    entries: Mapping[str, Mapping[str, Any]]
    lead_comune: str
    default_limit: int = DEFAULT_PEC_LIMIT

    @classmethod
    def load(cls, data_dir: Path, ambito: Mapping[str, Any]) -> AooDirectory:
        """``data_dir``'s aoo.json; ``ambito`` (ambito.json, as the runtime loaded it) names the lead."""
        directory = json.loads((data_dir / "aoo.json").read_text(encoding="utf-8"))
        return cls(entries=directory["aoo"], lead_comune=ambito["lead_body"]["comune"],
                   default_limit=int(directory.get("default_pec_max_bytes", DEFAULT_PEC_LIMIT)))

    def recipient(self, comune: str) -> dict[str, Any]:
        """The ``meta["recipient"]`` of a package for ``comune``'s protocol."""
        entry = self.entries.get(comune)
        if entry is None:
            raise RoutingError(f"no protocol AOO configured for comune {comune!r}")
        recipient = {key: entry[key] for key in _RECIPIENT_KEYS if key in entry}
        recipient["comune"] = comune
        recipient["pec_max_bytes"] = int(entry.get("pec_max_bytes", self.default_limit))
        return recipient


def route(payload: Mapping[str, Any], directory: AooDirectory) -> dict[str, Any]:
    """``payload`` with ``meta["recipient"]`` set to the AOO its kind of submission goes to.

    Kinds without a route keep the recipient the sender gave (a caller that knows better);
    the size limit then defaults to the directory's.
    """
    meta = dict(payload.get("meta") or {})
    rule = ROUTES.get(str(payload.get("kind")))
    if rule == LEAD:
        recipient = directory.recipient(directory.lead_comune)
    elif rule == RESIDENCE:
        comune = (payload.get("residence") or {}).get("comune")
        if not comune:
            raise RoutingError(f"a {payload.get('kind')} must name its comune "
                               "(payload['residence']['comune'])")
        recipient = directory.recipient(str(comune))
    else:
        recipient = {"pec_max_bytes": directory.default_limit, **(meta.get("recipient") or {})}
    meta["recipient"] = recipient
    return {**payload, "meta": meta}


def submitted_attachments(payload: Mapping[str, Any]) -> list[FileRef]:
    """The files the citizen uploaded, as package attachments.

    They travel in the payload (``[{"name", "media_type", "sha256", "content_b64"}]``); each
    is checked against the hash the sender recorded, so what the segnatura fingerprints is
    exactly what was uploaded. A mismatch is a broken message, not a transient fault.
    """
    files = []
    taken = {f"{payload.get('file_stem')}.pdf"}  # the primary document's name
    for item in payload.get("attachments") or []:
        try:
            data = base64.b64decode(item["content_b64"], validate=True)
        except (KeyError, binascii.Error) as exc:
            raise ValueError(f"attachment {item.get('name')!r} carries no valid content") from exc
        if hashlib.sha256(data).hexdigest() != item.get("sha256"):
            raise ValueError(f"attachment {item.get('name')!r} does not match its SHA-256")
        files.append(FileRef(name=_unique(Path(item["name"]).name, taken),
                             media_type=item["media_type"], data=data,
                             role="attachment", description=item.get("description", "")))
    return files


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``stem-2.ext``, ``stem-3.ext``… when two uploads share it."""
    stem, dot, extension = name.rpartition(".")
    candidate, counter = name, 1
    while candidate in taken:
        counter += 1
        candidate = f"{stem}-{counter}{dot}{extension}" if dot else f"{name}-{counter}"
    taken.add(candidate)
    return candidate
