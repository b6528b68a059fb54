"""Per-process resources of the documents service, built once and shared by views and tasks.

The seal key is the expensive one: it is parsed on first use and then kept for
the life of the process, so a worker seals every package with the same loaded
key (about 13 ms a seal instead of 95 ms when reloading it each time). The
trust roots are read once too, and a seal check is kept per content digest: a
package never changes, so its page need not re-run a 20 ms validation on every
view. In
embedded mode without ``DOCUMENTS_TSA_URL`` the worker also starts, on first
use, the local timestamp authority its seals are timestamped by.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ambito_common.db import make_engine, make_session_factory, migrate
from ambito_common.outbox import OutboxRelay
from ambito_common.tasks import make_celery
from ambito_common.web import load_ambito
from celery import Celery
from cryptography import x509
from sqlalchemy.orm import Session, sessionmaker

from .builders import (
    FileRef,
    PadesSealer,
    SealCheck,
    build_documents,
    common_name,
    ensure_dev_pki,
    load_certificates,
    verify_seal,
)
from .delivery import BACKENDS, DeliveryBackend
from .models import OutboxMessage
from .routing import AooDirectory, submitted_attachments
from .settings import Settings
from .signers import SIGNERS
from .storage import PackageStore
from .tsa_server import LocalTsa

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
#: Seal checks remembered per process (a few hundred bytes each).
SEAL_CHECKS_KEPT = 4096


@dataclass
class Runtime:
    settings: Settings
    session_factory: sessionmaker[Session]
    celery: Celery
    outbox: OutboxRelay
    store: PackageStore
    delivery: DeliveryBackend
    aoo: AooDirectory = field(repr=False)
    _sealer: PadesSealer | None = field(default=None, init=False, repr=False)
    _local_tsa: LocalTsa | None = field(default=None, init=False, repr=False)
    _sealer_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _trust_roots: list[x509.Certificate] | None = field(default=None, init=False, repr=False)
    _seal_checks: dict[str, SealCheck] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        ambito = load_ambito(settings.platform)
        if settings.platform.embedded:
            # A fresh checkout seals with a generated test CA; idempotent and safe across processes.
            ensure_dev_pki(settings.pki_dir, ambito["name"],
                           p12_password=settings.seal_p12_password)
        session_factory = make_session_factory(make_engine(settings.database_url))
        celery = make_celery("documents", settings.platform)
        outbox = OutboxRelay(OutboxMessage, session_factory, celery).install()
        store = PackageStore(settings.storage_dir)
        return cls(settings, session_factory, celery, outbox, store,
                   BACKENDS[settings.delivery_backend](settings, store),
                   AooDirectory.load(settings.platform.data_dir, ambito))

    def migrate(self) -> None:
        migrate(MIGRATIONS, self.settings.database_url)

    @property
    def sealer(self) -> PadesSealer:
        """The seal, loaded by the signer plugin on first use (web processes never need it)."""
        if self._sealer is None:
            with self._sealer_lock:
                if self._sealer is None:
                    identity = SIGNERS[self.settings.seal_signer]().load(self.settings)
                    self._sealer = PadesSealer(identity)
        return self._sealer

    @property
    def tsa_url(self) -> str | None:
        """The configured TSA; in embedded mode without one, the local TSA (started on first use)."""
        if self.settings.tsa_url or not self.settings.platform.embedded:
            return self.settings.tsa_url
        with self._sealer_lock:
            if self._local_tsa is None:
                pki = self.settings.pki_dir
                self._local_tsa = LocalTsa(pki / "tsa.pem", pki / "tsa.key", pki / "ca.pem").start()
        return self._local_tsa.url

    def close(self) -> None:
        """Stop what the runtime started (the local TSA); the process may go on."""
        with self._sealer_lock:
            if self._local_tsa is not None:
                self._local_tsa.stop()
                self._local_tsa = None

    @property
    def seal_detail(self) -> str:
        """What the timeline says about the seal applied to a package."""
        level = "B-T con marca temporale" if self.tsa_url else "B-B"
        cert = self.sealer.identity.cert
        return f"PAdES {level}, certificato «{common_name(cert) or cert.subject.rfc4514_string()}»"

    def build_documents(self, payload: dict[str, Any]) -> list[FileRef]:
        return build_documents(payload, sealer=self.sealer, font_dir=self.settings.font_dir,
                               attachments=submitted_attachments(payload),
                               timestamper_url=self.tsa_url,
                               message_from=self.settings.message_from)

    def verify_seal(self, pdf: bytes) -> SealCheck:
        """The check of ``pdf``'s seal against our trust roots, remembered by its SHA-256
        (keyed by the bytes read, so a file altered on disk is checked afresh)."""
        digest = hashlib.sha256(pdf).hexdigest()
        check = self._seal_checks.get(digest)
        if check is None:
            if self._trust_roots is None:
                self._trust_roots = load_certificates([self.settings.seal_trust_file])
            check = verify_seal(pdf, self._trust_roots)
            with self._sealer_lock:
                if len(self._seal_checks) >= SEAL_CHECKS_KEPT:
                    del self._seal_checks[next(iter(self._seal_checks))]  # the oldest
                self._seal_checks[digest] = check
        return check


@functools.cache
def worker_runtime() -> Runtime:
    """The runtime of a worker process, built from the environment on first use."""
    return Runtime.build(Settings.from_env())
