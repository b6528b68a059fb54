"""Tables of the vouchers service.

Money is integer cents everywhere. Two layers keep the books:

* the **ledger** (``ledger_journals`` / ``ledger_entries`` on ``ledger_accounts``) is the
  double-entry history: every movement is a journal whose signed entries sum to zero;
  entries are never updated or deleted (database triggers refuse it), a mistake is
  corrected by a reversing journal;
* the **budget row** (``budgets``, one per comune and period) holds the running totals
  ``allocated``, ``reserved`` and ``posted``, updated in the same transaction as the
  journal, under a row lock; its CHECK constraint ``posted + reserved <= allocated`` is
  the invariant itself, so even a bug in the service layer cannot commit an overspend.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ambito_common.db import UTCDateTime, utcnow
from ambito_common.outbox import OutboxMixin
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class Fund(Base):
    """A source of money reaching the Ambito (FNPS, FSR, FNA misura B2, ...)."""

    __tablename__ = "funds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000), default="")

    periods: Mapped[list[Period]] = relationship(back_populates="fund", order_by="Period.start_date")
    rules: Mapped[list[FundRule]] = relationship(back_populates="fund", order_by="FundRule.valid_from")


class Period(Base):
    """A fund's period (not necessarily a calendar year: B2 runs June to May).

    ``allocated`` is the sum of its budgets' allocations; the CHECK keeps the Ambito
    from handing out more than it received plus what earlier periods carried in.
    """

    __tablename__ = "periods"
    __table_args__ = (
        UniqueConstraint("fund_id", "code"),
        CheckConstraint("start_date <= end_date", name="period_dates"),
        CheckConstraint("amount_received >= 0 AND carried_in >= 0 AND carried_out >= 0 "
                        "AND allocated >= 0", name="period_non_negative"),
        CheckConstraint("allocated + carried_out <= amount_received + carried_in",
                        name="period_not_overallocated"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fund_id: Mapped[int] = mapped_column(ForeignKey("funds.id"))
    code: Mapped[str] = mapped_column(String(40))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    amount_received: Mapped[int] = mapped_column(BigInteger, default=0)
    carried_in: Mapped[int] = mapped_column(BigInteger, default=0)
    carried_out: Mapped[int] = mapped_column(BigInteger, default=0)
    allocated: Mapped[int] = mapped_column(BigInteger, default=0)

    fund: Mapped[Fund] = relationship(back_populates="periods")

    @property
    def unallocated(self) -> int:
        return self.amount_received + self.carried_in - self.carried_out - self.allocated


class FundRule(Base):
    """A rule of a fund valid between two dates: ISEE caps, monthly amounts, hourly tariffs.
    ``params`` is the rule's data (its shape depends on ``kind``). The co-payment is not a
    fund's rule but the comune's (``ambito_common.copayment``)."""

    __tablename__ = "fund_rules"
    __table_args__ = (
        CheckConstraint("valid_to IS NULL OR valid_from <= valid_to", name="rule_dates"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fund_id: Mapped[int] = mapped_column(ForeignKey("funds.id"))
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)

    fund: Mapped[Fund] = relationship(back_populates="rules")


class ComunePopulation(Base):
    """A comune's resident population, the weight of the population-share formula.
    Data the Ambito edits, not code."""

    __tablename__ = "comune_populations"
    __table_args__ = (CheckConstraint("population >= 0", name="population_non_negative"),)

    comune: Mapped[str] = mapped_column(String(60), primary_key=True)
    population: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[dt.date] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(120), default="")


class Budget(Base):
    """A comune's share of a period: the balance row that is locked for every movement."""

    __tablename__ = "budgets"
    __table_args__ = (
        UniqueConstraint("period_id", "comune"),
        CheckConstraint("allocated >= 0 AND reserved >= 0 AND posted >= 0", name="budget_non_negative"),
        CheckConstraint("posted + reserved <= allocated", name="budget_not_overspent"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"))
    comune: Mapped[str] = mapped_column(String(60))
    allocated: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    posted: Mapped[int] = mapped_column(BigInteger, default=0)

    period: Mapped[Period] = relationship()

    @property
    def available(self) -> int:
        return self.allocated - self.reserved - self.posted


# Account kinds: money received from outside, the Ambito's unallocated pool of a period,
# and the three states of a comune's money.
ACCOUNT_INCOME, ACCOUNT_POOL = "income", "pool"
ACCOUNT_AVAILABLE, ACCOUNT_RESERVED, ACCOUNT_SPENT = "available", "reserved", "spent"


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("period_id", "comune", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"))
    comune: Mapped[str] = mapped_column(String(60), default="")  # "" for the Ambito's own accounts
    kind: Mapped[str] = mapped_column(String(20))
    budget_id: Mapped[int | None] = mapped_column(ForeignKey("budgets.id"))  # a comune's accounts


class LedgerJournal(Base):
    """One movement: who, when, why; its entries sum to zero."""

    __tablename__ = "ledger_journals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    memo: Mapped[str] = mapped_column(String(500), default="")
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservations.id"), index=True)
    reversal_of_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_journals.id"), unique=True)

    entries: Mapped[list[LedgerEntry]] = relationship(order_by="LedgerEntry.id")


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (CheckConstraint("amount <> 0", name="entry_not_zero"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    journal_id: Mapped[int] = mapped_column(ForeignKey("ledger_journals.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # signed cents

    account: Mapped[LedgerAccount] = relationship()


RESERVED, POSTED, PARTIALLY_POSTED, VOIDED, EXPIRED = (
    "reserved", "posted", "partially_posted", "voided", "expired")
RESERVATION_STATUSES = (RESERVED, POSTED, PARTIALLY_POSTED, VOIDED, EXPIRED)


class Reservation(Base):
    """Money set aside on a budget (phase one); posting spends it, voiding or expiry frees it."""

    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("amount > 0", name="reservation_positive"),
        CheckConstraint("posted_amount >= 0 AND posted_amount <= amount", name="reservation_posted_range"),
        CheckConstraint(f"status IN ({', '.join(repr(status) for status in RESERVATION_STATUSES)})",
                        name="reservation_status"),  # the same text as migration 0002's
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    budget_id: Mapped[int] = mapped_column(ForeignKey("budgets.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    posted_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(20), default=RESERVED, index=True)
    reference: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    budget: Mapped[Budget] = relationship()


class IdempotencyKey(Base):
    """The first answer to a write, kept so that a retried request gets it again."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(300))  # caller and operation
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


WAITING, ACTIVE, CLOSED, CANCELLED = "waiting", "active", "closed", "cancelled"
PROFILES = ("ASA", "OSS")


class Voucher(Base):
    """Home-care hours for a beneficiary, paid from a comune's budget.

    Its value is reserved on the budget (``active``), or it waits (``waiting``) ranked by
    ISEE ascending, then submission time, and is promoted in that order when money is freed.
    Hours are hundredths (1.5 h = 150), money cents.
    """

    __tablename__ = "vouchers"
    __table_args__ = (
        CheckConstraint("value > 0 AND weeks > 0 AND hours_per_week > 0 AND tariff > 0 AND isee >= 0",
                        name="voucher_positive"),
        CheckConstraint("copayment_hourly >= 0", name="voucher_copayment_hourly"),
        CheckConstraint("profile IN ('ASA', 'OSS')", name="voucher_profile"),
        CheckConstraint("status IN ('waiting', 'active', 'closed', 'cancelled')", name="voucher_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    budget_id: Mapped[int] = mapped_column(ForeignKey("budgets.id"), index=True)
    source: Mapped[str] = mapped_column(String(20))  # "operator" or "intake"
    source_ref: Mapped[str | None] = mapped_column(String(200), unique=True)
    beneficiary_ref: Mapped[str] = mapped_column(String(120))
    beneficiary_name: Mapped[str] = mapped_column(String(200))
    isee: Mapped[int] = mapped_column(BigInteger)
    provider: Mapped[str] = mapped_column(String(200))
    profile: Mapped[str] = mapped_column(String(3))
    hours_per_week: Mapped[int] = mapped_column(Integer)
    weeks: Mapped[int] = mapped_column(Integer)
    tariff: Mapped[int] = mapped_column(Integer)  # cents per hour
    copayment_hourly: Mapped[int] = mapped_column(Integer)  # cents per hour the family pays the provider
    # The beneficiary's or family's e-mail: a courtesy copy of the sealed voucher goes there.
    contact_email: Mapped[str | None] = mapped_column(String(254))
    value: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default=WAITING, index=True)
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservations.id"))
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(120))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    reservation: Mapped[Reservation | None] = relationship()
    budget: Mapped[Budget] = relationship()


class VoucherMonth(Base):
    """Hours delivered in one month of a voucher, posted once against its reservation."""

    __tablename__ = "voucher_months"
    __table_args__ = (UniqueConstraint("voucher_id", "month"),
                      CheckConstraint("hours >= 0 AND amount >= 0", name="voucher_month_non_negative"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    voucher_id: Mapped[int] = mapped_column(ForeignKey("vouchers.id"))
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    hours: Mapped[int] = mapped_column(Integer)  # hundredths
    amount: Mapped[int] = mapped_column(BigInteger)
    recorded_by: Mapped[str] = mapped_column(String(120))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


FILED, APPROVED, PARTIALLY_APPROVED, REJECTED, PAID = (
    "filed", "approved", "partially_approved", "rejected", "paid")


class ReimbursementRequest(Base):
    """A comune asks the Ambito to repay, after the fact, what it paid (rimborso a consuntivo)."""

    __tablename__ = "reimbursement_requests"
    __table_args__ = (
        CheckConstraint("status IN ('filed', 'approved', 'partially_approved', 'rejected', 'paid')",
                        name="reimbursement_status"),
        CheckConstraint("approved_total >= 0", name="reimbursement_approved_non_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"), index=True)
    comune: Mapped[str] = mapped_column(String(60), index=True)
    status: Mapped[str] = mapped_column(String(20), default=FILED, index=True)
    filed_by: Mapped[str] = mapped_column(String(120))
    filed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str] = mapped_column(String(2000), default="")
    approved_total: Mapped[int] = mapped_column(BigInteger, default=0)
    journal_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_journals.id"))  # the money granted
    paid_by: Mapped[str | None] = mapped_column(String(120))
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    payment_ref: Mapped[str] = mapped_column(String(200), default="")

    period: Mapped[Period] = relationship()
    lines: Mapped[list[ReimbursementLine]] = relationship(order_by="ReimbursementLine.id",
                                                          cascade="all, delete-orphan")
    invoices: Mapped[list[ReimbursementInvoice]] = relationship(order_by="ReimbursementInvoice.id")
    documents: Mapped[list[SealedDocument]] = relationship(order_by="SealedDocument.id")

    @property
    def asked_total(self) -> int:
        return sum(line.amount_asked for line in self.lines)


class ReimbursementLine(Base):
    __tablename__ = "reimbursement_lines"
    __table_args__ = (
        CheckConstraint("amount_asked > 0 AND amount_asked <= amount_paid", name="line_asked_range"),
        CheckConstraint("amount_approved IS NULL OR "
                        "(amount_approved >= 0 AND amount_approved <= amount_asked)",
                        name="line_approved_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("reimbursement_requests.id"), index=True)
    beneficiary_ref: Mapped[str] = mapped_column(String(120))
    service: Mapped[str] = mapped_column(String(200))  # the structure or service
    service_period: Mapped[str] = mapped_column(String(60))
    amount_paid: Mapped[int] = mapped_column(BigInteger)
    amount_asked: Mapped[int] = mapped_column(BigInteger)
    amount_approved: Mapped[int | None] = mapped_column(BigInteger)


# --- sealed documents and invoices (helper vouchers-documents; migration 0005) ----------------------

DOC_REQUESTED, DOC_PACKAGED, DOC_DELIVERED, DOC_REGISTERED, DOC_REJECTED = (
    "requested", "packaged", "delivered", "registered", "rejected")
#: The road of a package, in order; ``rejected`` (the protocol refused it) ends it anywhere.
DOCUMENT_STATUSES = (DOC_REQUESTED, DOC_PACKAGED, DOC_DELIVERED, DOC_REGISTERED, DOC_REJECTED)


class DocumentCounter(Base):
    """The last number given in a year by the vouchers register (requests, decisions, vouchers)."""

    __tablename__ = "document_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class SealedDocument(Base):
    """A document sent to the documents service to be sealed and registered by a protocol.

    One row per act (a request filed, each decision on it, a voucher reserved): its register
    number is taken in the transaction of the act, and documents' reports move its status.
    """

    __tablename__ = "sealed_documents"
    __table_args__ = (
        UniqueConstraint("register_year", "register_number"),
        CheckConstraint("status IN ('requested', 'packaged', 'delivered', 'registered', 'rejected')",
                        name="sealed_document_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_ref: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    reimbursement_id: Mapped[int | None] = mapped_column(ForeignKey("reimbursement_requests.id"), index=True)
    voucher_id: Mapped[int | None] = mapped_column(ForeignKey("vouchers.id"), index=True)
    register_year: Mapped[int] = mapped_column(Integer)
    register_number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # What the act said when it was taken (a decision's outcome, amounts, reason, pro-rata figures):
    # the document shows that, not the request's later state.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    package_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    package_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=DOC_REQUESTED)
    protocol_number: Mapped[str | None] = mapped_column(String(60))
    protocol_date: Mapped[str | None] = mapped_column(String(20))
    rejection_code: Mapped[str | None] = mapped_column(String(60))
    rejection_reason: Mapped[str] = mapped_column(String(2000), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReimbursementInvoice(Base):
    """An invoice filed with a reimbursement request; the file is kept under its SHA-256."""

    __tablename__ = "reimbursement_invoices"
    __table_args__ = (CheckConstraint("size > 0", name="invoice_not_empty"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("reimbursement_requests.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(60))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    uploaded_by: Mapped[str] = mapped_column(String(120))
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
