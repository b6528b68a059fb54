"""Document builders: PDF/A rendering, PAdES seal, AgID Segnatura, protocol package.

Pure functions and classes: no Flask, no database. Typical use in a worker::

    sealer = PadesSealer.from_pkcs12(path, password)      # once per worker process
    files = build_documents(payload, sealer=sealer, message_from="ambito@pec.example.it")
"""

from .files import ROLES, FileRef, Role
from .metadata import METADATA_NAME, build_metadata
from .package import (
    DEFAULT_PEC_LIMIT,
    MANIFEST_NAME,
    MESSAGE_NAME,
    SEGNATURA_NAME,
    PackageTooLarge,
    assemble_package,
)
from .pipeline import build_documents
from .pki import DEV_P12_PASSWORD, DevPki, common_name, ensure_dev_pki
from .render import DATA_ATTACHMENT_NAME, PDF_VARIANT, render_pdf, serialise_data
from .seal import (
    P7mCheck,
    PadesSealer,
    SealCheck,
    SealIdentity,
    load_certificates,
    verify_p7m,
    verify_seal,
)
from .segnatura import (
    DEFAULT_CLASSIFICA,
    SegnaturaCheck,
    SegnaturaError,
    build_segnatura,
    read_impronte,
    registration_number,
    validate_segnatura,
    verify_segnatura,
)

__all__ = [
    "DATA_ATTACHMENT_NAME",
    "DEFAULT_CLASSIFICA",
    "DEFAULT_PEC_LIMIT",
    "DEV_P12_PASSWORD",
    "MANIFEST_NAME",
    "MESSAGE_NAME",
    "METADATA_NAME",
    "PDF_VARIANT",
    "ROLES",
    "SEGNATURA_NAME",
    "DevPki",
    "FileRef",
    "P7mCheck",
    "PackageTooLarge",
    "PadesSealer",
    "Role",
    "SealCheck",
    "SealIdentity",
    "SegnaturaCheck",
    "SegnaturaError",
    "assemble_package",
    "build_documents",
    "build_metadata",
    "build_segnatura",
    "common_name",
    "ensure_dev_pki",
    "load_certificates",
    "read_impronte",
    "registration_number",
    "render_pdf",
    "serialise_data",
    "validate_segnatura",
    "verify_p7m",
    "verify_seal",
    "verify_segnatura",
]
