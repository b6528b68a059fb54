"""Uploaded files: what they really are, how big they may be, and where they are kept.

The type is read from the first bytes of the content, never from the name or
the browser's Content-Type, so an executable renamed ``.pdf`` is refused.
Files are written atomically (a temporary file in the same directory, then
``os.replace``) under a name that is their SHA-256, so a half-written file is
never seen and the same file is stored once.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from ambito_common.errors import DomainError, InvalidInput

# (leading bytes, media type, extension)
SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
)
ACCEPTED = "PDF, JPEG o PNG"


class TooLarge(DomainError):
    status = 413
    title = "File troppo grande"


class UnsupportedType(DomainError):
    status = 415
    title = "Tipo di file non ammesso"


def sniff(head: bytes) -> tuple[str, str] | None:
    """(media type, extension) of content starting with ``head``, or None if not accepted."""
    for magic, media_type, extension in SIGNATURES:
        if head.startswith(magic):
            return media_type, extension
    return None


def read_limited(stream: BinaryIO, limit: int) -> bytes:
    """The whole stream, or :class:`TooLarge` as soon as it passes ``limit`` bytes."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"Il file supera la dimensione massima di {megabytes(limit)}.")
    return data


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB".replace(".", ",")


def safe_name(filename: str, extension: str) -> str:
    """A name fit for a package entry: the person's words, no path, the real extension."""
    stem = Path(filename.replace("\\", "/")).name.rsplit(".", 1)[0] or "allegato"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")[:80] or "allegato"
    return f"{stem}.{extension}"


def check_content(data: bytes) -> tuple[str, str]:
    if not data:
        raise InvalidInput("Il file è vuoto.", errors={"file": ["Il file è vuoto."]})
    found = sniff(data[:16])
    if found is None:
        raise UnsupportedType(f"Sono ammessi solo file {ACCEPTED}: il contenuto di questo file non lo è.",
                              errors={"file": [f"Sono ammessi solo file {ACCEPTED}."]})
    return found


def store(directory: Path, data: bytes) -> tuple[Path, str]:
    """Write ``data`` atomically under ``directory``/<sha256>; returns (path, sha256)."""
    digest = hashlib.sha256(data).hexdigest()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / digest
    if not target.exists():
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return target, digest
