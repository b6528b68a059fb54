"""Tables of the intake service: calls, applications, their history and our register."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ambito_common.db import UTCDateTime, utcnow
from ambito_common.outbox import OutboxMixin
from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Call(Base):
    """A published call (avviso); its content is reference data loaded from JSON."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    published_on: Mapped[dt.date] = mapped_column(Date)
    # The last instant at which a submission is accepted (the published date
    # and time in Europe/Rome, stored in UTC).
    deadline: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    demo: Mapped[bool] = mapped_column(Boolean, default=False)
    # The rest of the published text: object, channels, declarations, privacy notice.
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    areas: Mapped[list[Area]] = relationship(back_populates="call", order_by="Area.position",
                                             cascade="all, delete-orphan")


class Area(Base):
    __tablename__ = "areas"
    __table_args__ = (UniqueConstraint("call_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    themes: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer)
    call: Mapped[Call] = relationship(back_populates="areas")
    meetings: Mapped[list[Meeting]] = relationship(back_populates="area", order_by="Meeting.number",
                                                   cascade="all, delete-orphan")


class Meeting(Base):
    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    date: Mapped[dt.date] = mapped_column(Date)
    start: Mapped[str] = mapped_column(String(5))  # "16:00", local time in Europe/Rome
    end: Mapped[str] = mapped_column(String(5))
    place: Mapped[str] = mapped_column(String(300))
    area: Mapped[Area] = relationship(back_populates="meetings")


class Application(Base):
    """An accepted application; it exists only once it has its register number."""

    __tablename__ = "applications"
    __table_args__ = (
        # One application per organisation and call, enforced by the database as well.
        UniqueConstraint("call_id", "organisation_tax_code"),
        UniqueConstraint("register_code", "register_year", "register_number"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"))
    tracking_code: Mapped[str] = mapped_column(String(20), unique=True)
    organisation_tax_code: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))
    register_code: Mapped[str] = mapped_column(String(50))
    register_year: Mapped[int] = mapped_column(Integer)
    register_number: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # When documents was last asked to build the package (the reconcile task re-asks).
    package_requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    receipt_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    package_id: Mapped[str | None] = mapped_column(String(64))
    protocol_number: Mapped[str | None] = mapped_column(String(64))
    protocol_date: Mapped[dt.date | None] = mapped_column(Date)
    call: Mapped[Call] = relationship()
    events: Mapped[list[ApplicationEvent]] = relationship(
        back_populates="application", order_by="ApplicationEvent.id", cascade="all, delete-orphan")


class ApplicationEvent(Base):
    """The status history shown on the receipt page."""

    __tablename__ = "application_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"),
                                                index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(String(500), default="")
    application: Mapped[Application] = relationship(back_populates="events")


class RegisterCounter(Base):
    """The last number given in a year by the platform's register of online submissions."""

    __tablename__ = "register_counters"

    register_code: Mapped[str] = mapped_column(String(50), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class OutboxMessage(OutboxMixin, Base):
    pass
