"""render -> seal -> segnatura -> package, for one accepted submission."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from .files import FileRef
from .metadata import build_metadata
from .package import assemble_package
from .render import render_pdf
from .seal import PadesSealer
from .segnatura import build_segnatura, registration_number

__all__ = ["build_documents"]


def _ms(start: float) -> int:
    return round((time.perf_counter() - start) * 1000)


def build_documents(
    payload: Mapping[str, Any],
    *,
    sealer: PadesSealer,
    font_dir: Path | None = None,
    timestamper_url: str | None = None,
    message_from: str,
    attachments: list[FileRef] | None = None,
) -> list[FileRef]:
    """Build the protocol package for ``payload``.

    ``payload``: ``{"document": {...}, "data": {...}, "meta": {...}, "file_stem": "domanda-…"}``
    (``document`` as for :func:`~documents.builders.render.render_pdf`, ``meta`` as for
    :func:`~documents.builders.segnatura.build_segnatura`), optionally
    ``"seal": {"reason": ..., "location": ...}``. ``attachments`` are uploaded files that
    travel with the primary document (they are listed in the Segnatura, not sealed).

    A recipient with ``meta["recipient"]["cades"]`` also gets the sealed PDF wrapped in a
    CAdES signature (``<stem>.pdf.p7m``, an attachment listed in the Segnatura). The primary
    document's Allegato 5 metadata travel in the package as ``metadata.xml``.
    """
    log = structlog.get_logger(__name__).bind(file_stem=payload["file_stem"])
    document = payload["document"]
    meta = payload["meta"]
    attachments = list(attachments or [])

    start = time.perf_counter()
    log.info("pdf_generation_start")
    pdf = render_pdf(document, payload.get("data") or {}, font_dir=font_dir)
    log.info("pdf_generation_done", size=len(pdf), duration_ms=_ms(start))

    start = time.perf_counter()
    seal_options = payload.get("seal") or {}
    sealed = sealer.seal(
        pdf,
        reason=seal_options.get("reason") or _default_reason(meta),
        location=seal_options.get("location") or (document.get("header") or {}).get("lead_body", ""),
        timestamper_url=timestamper_url,
    )
    log.info(
        "seal_done",
        size=len(sealed),
        timestamped=timestamper_url is not None,
        duration_ms=_ms(start),
    )

    primary = FileRef(
        f"{payload['file_stem']}.pdf",
        "application/pdf",
        sealed,
        role="primary",
        description=str(document.get("title") or ""),
        sealed=True,
        timestamped=timestamper_url is not None,
    )
    if (meta.get("recipient") or {}).get("cades"):
        start = time.perf_counter()
        p7m = sealer.sign_cades(sealed, timestamper_url=timestamper_url)
        attachments.insert(0, FileRef(
            f"{primary.name}.p7m",
            "application/pkcs7-mime",
            p7m,
            description="Documento principale con firma CAdES (.p7m)",
            sealed=True,
            timestamped=timestamper_url is not None,
        ))
        log.info("cades_done", size=len(p7m), duration_ms=_ms(start))
    start = time.perf_counter()
    segnatura = build_segnatura(meta, primary, attachments, signer=sealer)
    files = assemble_package(
        primary=primary,
        attachments=attachments,
        segnatura=segnatura,
        meta=meta,
        message_from=message_from,
        metadata=build_metadata(str(payload.get("kind") or ""), meta, primary, attachments),
    )
    log.info(
        "package_assembled",
        files=[f.name for f in files],
        message_size=files[-1].size,
        duration_ms=_ms(start),
    )
    return files


def _default_reason(meta: Mapping[str, Any]) -> str:
    registration = meta.get("registration") or {}
    if registration.get("register_code") and registration.get("number"):
        return (
            "Domanda registrata: "
            f"{registration['register_code']} n. {registration_number(registration['number'])} "
            f"del {registration.get('date', '')}"
        )
    return "Sigillo elettronico della domanda"
