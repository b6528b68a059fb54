"""Tables of the intake service: calls, applications, SAD requests, their history and our register."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ambito_common.db import UTCDateTime, utcnow
from ambito_common.outbox import OutboxMixin
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
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
    # Set when the lead comune's protocol refused the package (Eccezione.xml or a manual rejection).
    rejection_code: Mapped[str | None] = mapped_column(String(64))
    rejection_reason: Mapped[str | None] = mapped_column(Text)
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
    # Set once the organisation was e-mailed about it (only a rejection by the protocol is).
    notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    application: Mapped[Application] = relationship(back_populates="events")


class RegisterCounter(Base):
    """The last number given in a year by the platform's register of online submissions."""

    __tablename__ = "register_counters"

    register_code: Mapped[str] = mapped_column(String(50), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class SadRequest(Base):
    """A citizen's request for a SAD home-care voucher, from draft to the comune's decision.

    ``status`` is the road of the request to the protocol (draft → received →
    packaged → delivered → registered), the same steps the tracking API shows
    for an application; ``case_status`` is what the comune's social worker has
    done with it. The register number is taken only at submission.
    """

    __tablename__ = "sad_requests"
    __table_args__ = (UniqueConstraint("register_code", "register_year", "register_number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    tracking_code: Mapped[str] = mapped_column(String(20), unique=True)
    comune: Mapped[str] = mapped_column(String(100), index=True)  # of the beneficiary's residence
    applicant_email: Mapped[str] = mapped_column(String(254))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Stored so the social worker sees it at once: the ISEE had expired when the request was written.
    isee_expired: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), index=True)
    case_status: Mapped[str | None] = mapped_column(String(30), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)  # drafts only
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    register_code: Mapped[str | None] = mapped_column(String(50))
    register_year: Mapped[int | None] = mapped_column(Integer)
    register_number: Mapped[int | None] = mapped_column(Integer)
    package_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    package_id: Mapped[str | None] = mapped_column(String(64))
    protocol_number: Mapped[str | None] = mapped_column(String(64))
    protocol_date: Mapped[dt.date | None] = mapped_column(Date)
    # The PAI: {"asa_hours_week", "oss_hours_week", "start_date", "weeks", "provider",
    # "copayment_hourly_cents", "copayment_total_cents"}.
    care_plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    # Set when the comune's protocol refused the package.
    rejection_code: Mapped[str | None] = mapped_column(String(64))
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    # What the vouchers service last reported: [{"id", "profile", "value_cents", "status"}] and,
    # while the case waits for budget, its best rank on the comune's waiting list.
    vouchers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    waiting_position: Mapped[int | None] = mapped_column(Integer)
    attachments: Mapped[list[SadAttachment]] = relationship(
        back_populates="request", order_by="SadAttachment.id", cascade="all, delete-orphan")
    events: Mapped[list[SadEvent]] = relationship(
        back_populates="request", order_by="SadEvent.id", cascade="all, delete-orphan")
    notes: Mapped[list[SadNote]] = relationship(
        back_populates="request", order_by="SadNote.id", cascade="all, delete-orphan")
    supplements: Mapped[list[SadSupplement]] = relationship(
        back_populates="request", order_by="SadSupplement.number", cascade="all, delete-orphan")


class SadSupplement(Base):
    """Documents the citizen added when the social worker asked for them: a package of its own.

    It is a new incoming document for the comune's protocol, so it takes its own number of our
    register and travels on the same road (received → packaged → delivered → registered, or
    rejected) without touching the request's own status.
    """

    __tablename__ = "sad_supplements"
    __table_args__ = (UniqueConstraint("request_id", "number"),
                      UniqueConstraint("register_code", "register_year", "register_number"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("sad_requests.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2 ... within the request
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    register_code: Mapped[str] = mapped_column(String(50))
    register_year: Mapped[int] = mapped_column(Integer)
    register_number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    package_requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    package_id: Mapped[str | None] = mapped_column(String(64))
    protocol_number: Mapped[str | None] = mapped_column(String(64))
    protocol_date: Mapped[dt.date | None] = mapped_column(Date)
    rejection_code: Mapped[str | None] = mapped_column(String(64))
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    request: Mapped[SadRequest] = relationship(back_populates="supplements")
    attachments: Mapped[list[SadAttachment]] = relationship(back_populates="supplement",
                                                            order_by="SadAttachment.id")

    @property
    def submitted_at(self) -> dt.datetime:  # the name registration labels read
        return self.created_at


class SadAttachment(Base):
    """An uploaded file's metadata; the bytes live under INTAKE_STORAGE_DIR, named by their hash."""

    __tablename__ = "sad_attachments"
    __table_args__ = (UniqueConstraint("request_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("sad_requests.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(50))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The supplement that sent it to the protocol (None: the request's own package, or not sent yet).
    supplement_id: Mapped[int | None] = mapped_column(ForeignKey("sad_supplements.id", ondelete="SET NULL"),
                                                      index=True)
    request: Mapped[SadRequest] = relationship(back_populates="attachments")
    supplement: Mapped[SadSupplement | None] = relationship(back_populates="attachments")


class SadEvent(Base):
    """One transition of a request: what, who, when; the citizen is e-mailed about each."""

    __tablename__ = "sad_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("sad_requests.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(200))  # "cittadino", "sistema" or the operator's username
    actor_role: Mapped[str] = mapped_column(String(50), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    request: Mapped[SadRequest] = relationship(back_populates="events")


class SadNote(Base):
    """An assessment note of the social worker (internal: not shown to the citizen)."""

    __tablename__ = "sad_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("sad_requests.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    author: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    request: Mapped[SadRequest] = relationship(back_populates="notes")


class DeskBooking(Base):
    """An appointment at the Sportello di Tutela Giuridica.

    Capacity is enforced by the database: a live booking holds one numbered
    seat of its slot, and (location, start, seat) is unique. A cancelled
    booking gives its seat back (``seat`` becomes NULL, which a unique
    constraint never counts), so no interleaving of requests can overbook.
    """

    __tablename__ = "desk_bookings"
    __table_args__ = (UniqueConstraint("location", "start", "seat"),
                      CheckConstraint("seat IS NULL OR seat >= 1", name="desk_seat_positive"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    uid: Mapped[str] = mapped_column(String(100), unique=True)  # the calendar event's, kept on reschedule
    sequence: Mapped[int] = mapped_column(Integer, default=0)  # raised by every change, as iCalendar wants
    location: Mapped[str] = mapped_column(String(50))
    start: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    end: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    seat: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # booked | cancelled
    topic: Mapped[str] = mapped_column(String(50))
    comune: Mapped[str] = mapped_column(String(100))
    mode: Mapped[str] = mapped_column(String(20))
    email: Mapped[str] = mapped_column(String(254))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # person, concerning, contact, notes
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reminder_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    no_show: Mapped[bool] = mapped_column(Boolean, default=False)


class DeskClosure(Base):
    """A day a desk location is closed (entered by the Ambito's staff)."""

    __tablename__ = "desk_closures"
    __table_args__ = (UniqueConstraint("location", "date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    location: Mapped[str] = mapped_column(String(50))
    date: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(300))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxMessage(OutboxMixin, Base):
    pass
