"""Tables of the vouchers service."""

from __future__ import annotations

from ambito_common.outbox import OutboxMixin
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass
