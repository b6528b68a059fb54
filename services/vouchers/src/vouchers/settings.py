"""Settings of the vouchers service (``VOUCHERS_*`` environment variables)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ambito_common.settings import (
    PlatformSettings,
    platform_settings,
    read_env,
    service_database_url,
)


@dataclass(frozen=True)
class Settings:
    platform: PlatformSettings
    database_url: str  # VOUCHERS_DATABASE_URL; SQLite under var/ when embedded
    reservation_ttl: dt.timedelta  # VOUCHERS_RESERVATION_TTL_DAYS: unposted reservations then expire
    sad_fund: str  # VOUCHERS_SAD_FUND: the fund that pays SAD vouchers from intake's care plans
    # Invoices of reimbursement requests (they travel in the sealed package, whose PEC has a size limit).
    invoice_max_bytes: int = 10 * 1024 * 1024  # VOUCHERS_INVOICE_MAX_BYTES: one file
    invoices_max_bytes: int = 20 * 1024 * 1024  # VOUCHERS_INVOICES_MAX_BYTES: all files of a request
    register_code: str = "BUONI_RIMBORSI"  # VOUCHERS_REGISTER_CODE: register of the sealed documents
    # VOUCHERS_PACKAGE_RETRY_SECONDS: a document still without its package is asked for again after this.
    package_retry_seconds: int = 300
    # VOUCHERS_INVOICES_DIR (default var/vouchers/invoices): shared by the web app and the worker.
    invoices_dir: Path = Path("var/vouchers/invoices")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        platform = platform_settings(environ)
        env = read_env(environ)
        with env.prefixed("VOUCHERS_"):
            ttl_days = env.int("RESERVATION_TTL_DAYS", 180)
            sad_fund = env.str("SAD_FUND", "fnps")
            invoice_max = env.int("INVOICE_MAX_BYTES", cls.invoice_max_bytes)
            invoices_max = env.int("INVOICES_MAX_BYTES", cls.invoices_max_bytes)
            register_code = env.str("REGISTER_CODE", cls.register_code)
            package_retry = env.int("PACKAGE_RETRY_SECONDS", cls.package_retry_seconds)
            invoices_dir = env.path("INVOICES_DIR", platform.var_dir / "vouchers" / "invoices").resolve()
        return cls(platform=platform,
                   database_url=service_database_url(env, "vouchers", platform),
                   reservation_ttl=dt.timedelta(days=ttl_days), sad_fund=sad_fund,
                   invoice_max_bytes=invoice_max, invoices_max_bytes=invoices_max,
                   register_code=register_code, package_retry_seconds=package_retry,
                   invoices_dir=invoices_dir)
