"""Settings of the documents service (``DOCUMENTS_*`` environment variables).

In embedded mode a development PKI (test CA, seal certificate, TSA certificate)
is generated under ``var/pki``, the seal defaults to its ``seal.p12`` and, unless
``DOCUMENTS_TSA_URL`` names one, the worker runs a local RFC 3161 timestamp
authority in-process with the dev TSA certificate (``documents.tsa_server``), so
seals are PAdES B-T as in production. In distributed mode the seal (a PKCS#12
file and its password, or another signer plugin) and the trust root its seals
are verified against are mounted secrets, and a missing one stops the process at
start-up; without ``DOCUMENTS_TSA_URL`` seals there are B-B.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ambito_common.settings import (
    PlatformSettings,
    SettingsError,
    platform_settings,
    read_env,
    require,
    service_database_url,
)
from ambito_common.web import load_ambito

from .builders import DEV_P12_PASSWORD
from .delivery import BACKENDS
from .signers import SIGNERS


@dataclass(frozen=True)
class Settings:
    platform: PlatformSettings
    database_url: str  # DOCUMENTS_DATABASE_URL; SQLite var/documents.sqlite3 when embedded
    storage_dir: Path  # DOCUMENTS_STORAGE_DIR: package files, one folder per package (var/documents)
    pki_dir: Path  # DOCUMENTS_PKI_DIR: the development PKI generated in embedded mode (var/pki)
    seal_p12_file: Path  # DOCUMENTS_SEAL_P12_FILE: the seal key + certificate (required when distributed)
    seal_p12_password: str  # DOCUMENTS_SEAL_P12_PASSWORD or ..._PASSWORD_FILE (required when distributed)
    seal_trust_file: Path  # DOCUMENTS_SEAL_TRUST_FILE: PEM CA(s) seals are verified against (pki/ca.pem)
    seal_signer: str  # DOCUMENTS_SEAL_SIGNER: signer plugin holding the seal key ("pkcs12")
    tsa_url: str | None  # DOCUMENTS_TSA_URL: RFC 3161 timestamp authority; none = B-B (local TSA if embedded)
    message_from: str  # DOCUMENTS_PEC_FROM (or DOCUMENTS_MESSAGE_FROM): the PEC sender (default: lead's PEC)
    font_dir: Path | None  # DOCUMENTS_FONT_DIR: other Titillium Web files; none = shipped (builders/fonts)
    delivery_backend: str  # DOCUMENTS_DELIVERY_BACKEND: "pec" when a PEC SMTP URL is set, else "inbox"
    pec_smtp_url: str | None  # DOCUMENTS_PEC_SMTP_URL: smtps://user:pass@host:465, smtp://host:2525...
    pec_imap_url: str | None  # DOCUMENTS_PEC_IMAP_URL: imaps://user:pass@host:993/INBOX, replies poller
    # DOCUMENTS_PEC_RESEND_AFTER_SECONDS (default 900): how long a PEC send whose outcome is unknown
    # (worker stopped mid-send) waits for the provider's accettazione before the same message goes again
    pec_resend_after: dt.timedelta
    # (DOCUMENTS_PEC_POLL_SECONDS, default 60: the beat interval, read by documents.worker)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        platform = platform_settings(environ)
        env = read_env(environ)
        with env.prefixed("DOCUMENTS_"):
            storage_dir = env.path("STORAGE_DIR", platform.var_dir / "documents")
            pki_dir = env.path("PKI_DIR", platform.var_dir / "pki")
            p12_file = env.str("SEAL_P12_FILE", "")
            p12_password = env.str("SEAL_P12_PASSWORD", "")
            # A password kept in a mounted secret file rather than in the environment.
            p12_password_file = env.str("SEAL_P12_PASSWORD_FILE", "")
            trust_file = env.str("SEAL_TRUST_FILE", "")
            seal_signer = env.str("SEAL_SIGNER", "pkcs12")
            tsa_url = env.str("TSA_URL", "") or None
            message_from = env.str("PEC_FROM", "") or env.str("MESSAGE_FROM", "")
            font_dir = env.str("FONT_DIR", "")
            pec_smtp_url = env.str("PEC_SMTP_URL", "") or None
            pec_imap_url = env.str("PEC_IMAP_URL", "") or None
            pec_resend_after = env.int("PEC_RESEND_AFTER_SECONDS", 900)
            delivery_backend = env.str("DELIVERY_BACKEND", "pec" if pec_smtp_url else "inbox")
        if p12_password_file and not p12_password:
            p12_password = Path(p12_password_file).read_text(encoding="utf-8").strip()
        if platform.embedded:
            p12_file = p12_file or str(pki_dir / "seal.p12")
            p12_password = p12_password or DEV_P12_PASSWORD
            trust_file = trust_file or str(pki_dir / "ca.pem")
        if seal_signer not in SIGNERS:
            raise SettingsError(f"DOCUMENTS_SEAL_SIGNER must be one of {', '.join(sorted(SIGNERS))}, "
                                f"not {seal_signer!r}")
        if seal_signer == "pkcs12":
            require(p12_file, "DOCUMENTS_SEAL_P12_FILE")
            require(p12_password, "DOCUMENTS_SEAL_P12_PASSWORD")
        require(trust_file, "DOCUMENTS_SEAL_TRUST_FILE")
        if font_dir and not Path(font_dir).is_dir():
            raise SettingsError(f"DOCUMENTS_FONT_DIR: {font_dir} is not a directory")
        if delivery_backend not in BACKENDS:
            raise SettingsError(f"DOCUMENTS_DELIVERY_BACKEND must be one of {', '.join(sorted(BACKENDS))}, "
                                f"not {delivery_backend!r}")
        if delivery_backend == "pec" and not pec_smtp_url:
            raise SettingsError("DOCUMENTS_DELIVERY_BACKEND=pec needs DOCUMENTS_PEC_SMTP_URL")
        return cls(
            platform=platform,
            database_url=service_database_url(env, "documents", platform),
            storage_dir=storage_dir.resolve(),
            pki_dir=pki_dir.resolve(),
            seal_p12_file=Path(p12_file),
            seal_p12_password=p12_password,
            seal_trust_file=Path(trust_file),
            seal_signer=seal_signer,
            tsa_url=tsa_url,
            message_from=message_from or load_ambito(platform)["lead_body"]["pec"],
            font_dir=Path(font_dir) if font_dir else None,
            delivery_backend=delivery_backend,
            pec_smtp_url=pec_smtp_url,
            pec_imap_url=pec_imap_url,
            pec_resend_after=dt.timedelta(seconds=pec_resend_after),
        )
