"""Tables of the documents service.

A package is built once per business reference: ``(source, source_ref)`` is
unique, so a duplicate or redelivered build message can never make a second
package. Its files live on disk (see ``storage``); the rows keep their names,
roles and SHA-256 so the store can be checked against what was sealed.
"""

from __future__ import annotations

import datetime as dt
import uuid

from ambito_common.db import UTCDateTime, utcnow
from ambito_common.outbox import OutboxMixin
from sqlalchemy import BigInteger, Date, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

BUILT = "built"
SENT = "sent"  # handed to the PEC provider (accettazione), not yet in the recipient's mailbox
DELIVERED = "delivered"
REGISTERED = "registered"
REJECTED = "rejected"  # the recipient's protocol refused it (Eccezione.xml, or by hand)
STATUSES = (BUILT, SENT, DELIVERED, REGISTERED, REJECTED)



class Base(DeclarativeBase):
    pass


class Package(Base):
    __tablename__ = "package"
    __table_args__ = (UniqueConstraint("source", "source_ref", name="uq_package_source_ref"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    source: Mapped[str] = mapped_column(String(50))
    source_ref: Mapped[str] = mapped_column(String(200))
    callback: Mapped[str] = mapped_column(String(200))  # task told about each status change
    kind: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(500))
    sender_name: Mapped[str] = mapped_column(String(300))
    sender_pec: Mapped[str | None] = mapped_column(String(254))
    sender_email: Mapped[str | None] = mapped_column(String(254))
    recipient_name: Mapped[str] = mapped_column(String(300))
    recipient_pec: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(20), default=BUILT, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    protocol_number: Mapped[str | None] = mapped_column(String(50))
    protocol_date: Mapped[dt.date | None] = mapped_column(Date)
    registered_by: Mapped[str | None] = mapped_column(String(200))
    registered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[str | None] = mapped_column(String(255), index=True)
    total_size: Mapped[int] = mapped_column(BigInteger, default=0)
    # Our registration as the Segnatura's Identificatore names it: "<register>/<number>/<date>";
    # a Conferma.xml or Eccezione.xml finds its package by it.
    registration_key: Mapped[str | None] = mapped_column(String(100), index=True)
    size_limit: Mapped[int | None] = mapped_column(BigInteger)  # recipient's PEC limit in bytes
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # A PEC handed to the SMTP server whose outcome we do not know yet: set (and committed)
    # before the SMTP conversation, cleared when it ends either way or a receipt settles it.
    sending_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    delivery_error: Mapped[str | None] = mapped_column(String(1000))  # last failure, until it works
    rejection_code: Mapped[str | None] = mapped_column(String(50))
    rejection_reason: Mapped[str | None] = mapped_column(String(1000))

    files: Mapped[list[PackageFile]] = relationship(
        back_populates="package", order_by="PackageFile.position", cascade="all, delete-orphan")
    events: Mapped[list[PackageEvent]] = relationship(
        back_populates="package", order_by="PackageEvent.id", cascade="all, delete-orphan")
    replies: Mapped[list[PackageReply]] = relationship(
        back_populates="package", order_by="PackageReply.id", cascade="all, delete-orphan")

    @property
    def primary_file(self) -> PackageFile | None:
        return next((f for f in self.files if f.role == "primary"), None)

    def file_named(self, name: str) -> PackageFile | None:
        return next((f for f in self.files if f.name == name), None)


class PackageFile(Base):
    __tablename__ = "package_file"
    __table_args__ = (UniqueConstraint("package_id", "name", name="uq_package_file_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[str] = mapped_column(ForeignKey("package.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    media_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)

    package: Mapped[Package] = relationship(back_populates="files")


class PackageEvent(Base):
    """The package's timeline, shown to the protocol officer."""

    __tablename__ = "package_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[str] = mapped_column(ForeignKey("package.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    event: Mapped[str] = mapped_column(String(50))
    detail: Mapped[str] = mapped_column(String(1000), default="")
    actor: Mapped[str | None] = mapped_column(String(200))

    package: Mapped[Package] = relationship(back_populates="events")


class PackageReply(Base):
    """A reply about a package (PEC receipt, Conferma.xml, Eccezione.xml), kept as evidence."""

    __tablename__ = "package_reply"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[str] = mapped_column(ForeignKey("package.id", ondelete="CASCADE"), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    channel: Mapped[str] = mapped_column(String(20))  # "upload" or "imap"
    media_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)

    package: Mapped[Package] = relationship(back_populates="replies")


class OutboxMessage(OutboxMixin, Base):
    pass
