"""Refused uploads: a disguised file, a file or a request too large; nothing of them is stored."""

from __future__ import annotations

import pytest
from intake.models import SadAttachment
from sqlalchemy import func, select

PDF_HEAD = b"%PDF-1.7\n"
EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 200  # a Windows .exe


@pytest.fixture
def intake_env(intake_env: dict[str, str]) -> dict[str, str]:
    """Small limits, so the test needs no megabytes: 1,000 bytes a file, 2,500 a request."""
    return {**intake_env, "INTAKE_UPLOAD_MAX_FILE_BYTES": "1000", "INTAKE_UPLOAD_MAX_REQUEST_BYTES": "2500"}


def _stored(runtime) -> tuple[int, list[str]]:
    with runtime.session_factory() as session:
        rows = session.scalar(select(func.count()).select_from(SadAttachment))
    root = runtime.settings.storage_dir
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []
    return rows, files


@pytest.fixture
def draft_code(intake_client, intake_sad_payload) -> str:
    created = intake_client.post("/api/intake/sad-requests", json=intake_sad_payload())
    return created.get_json()["tracking_code"]


def test_intake_sad_uploads_refuse_an_executable_renamed_pdf(intake_upload, intake_runtime,
                                                             draft_code) -> None:
    response = intake_upload(draft_code, EXECUTABLE, name="attestazione.pdf")
    assert response.status_code == 415 and response.mimetype == "application/problem+json"
    assert "PDF, JPEG o PNG" in response.get_json()["detail"]
    assert _stored(intake_runtime) == (0, [])


def test_intake_sad_uploads_refuse_a_file_over_the_limit(intake_upload, intake_runtime, draft_code) -> None:
    response = intake_upload(draft_code, PDF_HEAD + b"x" * 1000)
    assert response.status_code == 413
    assert "dimensione massima" in response.get_json()["detail"]
    assert _stored(intake_runtime) == (0, [])
    assert intake_upload(draft_code, PDF_HEAD + b"x" * 991).status_code == 201  # exactly 1,000 bytes


def test_intake_sad_uploads_refuse_what_passes_the_request_limit(intake_upload, intake_runtime,
                                                                 draft_code) -> None:
    for n in range(2):
        assert intake_upload(draft_code, PDF_HEAD + bytes([n]) * 991, name=f"f{n}.pdf").status_code == 201
    before = _stored(intake_runtime)
    response = intake_upload(draft_code, PDF_HEAD + b"z" * 600, name="troppo.pdf")
    assert response.status_code == 413 and "in tutto" in response.get_json()["detail"]
    assert _stored(intake_runtime) == before and before[0] == 2
    assert intake_upload(draft_code, PDF_HEAD + b"z" * 400, name="ancora.pdf").status_code == 201


def test_intake_sad_uploads_need_a_kind_and_a_file(intake_client, intake_upload, intake_runtime,
                                                  draft_code) -> None:
    response = intake_upload(draft_code, PDF_HEAD, kind="selfie")
    assert response.status_code == 422 and "kind" in response.get_json()["errors"]
    assert intake_upload(draft_code, b"").status_code == 422
    assert intake_upload("AAAA-BBBB-CCCC-DDDD-EEEE", PDF_HEAD).status_code == 404
    assert _stored(intake_runtime) == (0, [])
