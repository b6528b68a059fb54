"""Uploaded files travel in the build payload and become the package's attachments."""

from __future__ import annotations

import base64
import hashlib

import pytest
from documents.routing import RESIDENCE, ROUTES, submitted_attachments


def _item(name: str, data: bytes, **extra: str) -> dict:
    return {"name": name, "media_type": "application/pdf", "sha256": hashlib.sha256(data).hexdigest(),
            "content_b64": base64.b64encode(data).decode(), **extra}


def test_attachments_are_decoded_checked_and_named_uniquely():
    payload = {"file_stem": "richiesta-X", "attachments": [
        _item("isee.pdf", b"%PDF-1 a"), _item("isee.pdf", b"%PDF-1 b"),
        _item("../../richiesta-X.pdf", b"%PDF-1 c")]}
    files = submitted_attachments(payload)
    assert [f.name for f in files] == ["isee.pdf", "isee-2.pdf", "richiesta-X-2.pdf"]
    assert [f.data for f in files] == [b"%PDF-1 a", b"%PDF-1 b", b"%PDF-1 c"]
    assert {f.role for f in files} == {"attachment"}


def test_an_attachment_that_does_not_match_its_hash_is_refused():
    item = _item("isee.pdf", b"%PDF-1 a")
    item["content_b64"] = base64.b64encode(b"%PDF-1 tampered").decode()
    with pytest.raises(ValueError, match="SHA-256"):
        submitted_attachments({"file_stem": "x", "attachments": [item]})


def test_sad_requests_go_to_the_comune_of_residence():
    assert ROUTES["sad_request"] == RESIDENCE
