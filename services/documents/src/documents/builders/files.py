"""The file record passed between the builders (PDF, attachments, Segnatura, metadata, manifest, eml)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

__all__ = ["ROLES", "FileRef", "Role"]

Role = Literal["primary", "attachment", "segnatura", "metadata", "manifest", "message"]
ROLES: tuple[Role, ...] = ("primary", "attachment", "segnatura", "metadata", "manifest", "message")


@dataclass(frozen=True)
class FileRef:
    """One file of a protocol package.

    ``sealed``/``timestamped`` say whether the file carries an embedded (PAdES) seal and
    signature timestamp; the Segnatura reports them (sigillatoElettronicamente,
    marcaturaTemporale). ``description`` becomes the Segnatura's Descrizione of the file.
    """

    name: str
    media_type: str
    data: bytes
    role: Role = "attachment"
    description: str = ""
    sealed: bool = False
    timestamped: bool = False

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown file role {self.role!r}")
        if not self.name or "/" in self.name or "\\" in self.name or self.name in {".", ".."}:
            # Names end up as attachment file names and archive members.
            raise ValueError(f"invalid file name {self.name!r}")

    @cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of the content."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def sha256_b64(self) -> str:
        """Base64 SHA-256 of the content (the Segnatura's Impronta)."""
        return base64.b64encode(bytes.fromhex(self.sha256)).decode("ascii")

    @property
    def size(self) -> int:
        return len(self.data)
