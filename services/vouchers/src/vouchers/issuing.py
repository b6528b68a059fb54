"""Vouchers: home-care hours valued by the fund's rules and paid from a comune's budget.

A voucher's value is hours a week x weeks x the provider's hourly tariff for the
profile, less the co-payment band of the beneficiary's ISEE, all rules in force
on the day it is issued. It is reserved on the budget at once, or it waits in
the ranked list (``services.promote_waiting`` moves it up when money is freed). Delivered
hours post month by month against its reservation; closing it releases the rest.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ambito_common.errors import Conflict, InvalidInput, NotFound
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import services
from .models import ACTIVE, CANCELLED, CLOSED, PROFILES, WAITING, Fund, Period, Voucher, VoucherMonth

HOURS = re.compile(r"^\d{1,4}([.,]\d{1,2})?$")
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
CSV_COLUMNS = ("buono", "mese", "ore")


def copayment_percent(session: Session, *, fund_code: str, isee: int, on: dt.date) -> int:
    """The co-payment of the first band whose ISEE ceiling (cents, null = none) covers ``isee``."""
    rule = services.rule_in_force(session, fund_code=fund_code, kind="copayment_bands", on=on)
    for band in rule.params["bands"]:
        if band["isee_up_to"] is None or isee <= band["isee_up_to"]:
            return int(band["percent"])
    raise InvalidInput("Nessuna fascia di compartecipazione copre questo ISEE.")


def hourly_tariff(session: Session, *, fund_code: str, provider: str, profile: str, on: dt.date) -> int:
    """Cents per hour for a provider and profile (the provider's own tariff, else the default)."""
    rule = services.rule_in_force(session, fund_code=fund_code, kind="hourly_tariff", on=on)
    providers = rule.params["providers"]
    tariffs = providers.get(provider) or providers["default"]
    return int(tariffs[profile])


def amount_for_hours(hours: int, tariff: int, copayment: int) -> int:
    """Cents the fund pays for ``hours`` hundredths of an hour, rounded half up."""
    return (hours * tariff * (100 - copayment) + 5000) // 10000


@dataclass(frozen=True)
class VoucherRequest:
    fund: str
    period: str
    comune: str
    beneficiary_ref: str
    beneficiary_name: str
    isee: int  # cents
    provider: str
    profile: str  # ASA or OSS
    hours_per_week: int  # hundredths of an hour
    weeks: int


def issue_voucher(session: Session, request: VoucherRequest, *, actor: str, now: dt.datetime,
                  source: str = "operator", source_ref: str | None = None,
                  submitted_at: dt.datetime | None = None) -> Voucher:
    """Value a voucher by the rules in force, then reserve it or put it on the waiting list.

    With a ``source_ref`` (a care plan from intake) issuing is idempotent: the same plan
    gives back the voucher it already produced. ``submitted_at`` (default ``now``) is when
    the citizen asked: it breaks ISEE ties on the waiting list.
    """
    if source_ref is not None:
        existing = session.scalar(select(Voucher).where(Voucher.source_ref == source_ref))
        if existing is not None:
            return existing
    if request.profile not in PROFILES:
        raise InvalidInput("Profilo non valido.", errors={"profile": ["ASA oppure OSS."]})
    if request.hours_per_week <= 0 or request.weeks <= 0 or request.isee < 0:
        raise InvalidInput("Ore, settimane e ISEE devono essere positivi.")
    on = now.date()
    tariff = hourly_tariff(session, fund_code=request.fund, provider=request.provider,
                           profile=request.profile, on=on)
    copayment = copayment_percent(session, fund_code=request.fund, isee=request.isee, on=on)
    value = amount_for_hours(request.hours_per_week * request.weeks, tariff, copayment)
    if value <= 0:
        raise InvalidInput("Con questa compartecipazione il buono non ha valore a carico del fondo.")
    budget = services.find_budget(session, fund_code=request.fund, period_code=request.period,
                                  comune=request.comune)
    voucher = Voucher(
        budget_id=budget.id, source=source, source_ref=source_ref, beneficiary_ref=request.beneficiary_ref,
        beneficiary_name=request.beneficiary_name, isee=request.isee, provider=request.provider,
        profile=request.profile, hours_per_week=request.hours_per_week, weeks=request.weeks, tariff=tariff,
        copayment_percent=copayment, value=value, status=WAITING, submitted_at=submitted_at or now,
        created_by=actor)
    session.add(voucher)
    session.flush()
    services.promote_waiting(session, [budget.id], actor)  # it queues by rank like any other
    return voucher


NO_VALID_ISEE = 10**11  # cents: without a valid ISEE the highest co-payment band applies, and it ranks last


def issue_from_care_plan(session: Session, *, fund_code: str, source_ref: str, comune: str,
                         beneficiary: Mapping[str, str], isee_cents: int | None, submitted_at: str | None,
                         care_plan: Mapping[str, Any], now: dt.datetime) -> list[Voucher]:
    """The vouchers of an approved SAD care plan from intake: one per profile with hours (ASA, OSS).

    The period is the fund's period in which the plan starts. Idempotent per plan and profile.
    """
    start = dt.date.fromisoformat(care_plan["start_date"])
    period = session.scalar(select(Period).join(Fund).where(
        Fund.code == fund_code, Period.start_date <= start, Period.end_date >= start))
    if period is None:
        raise NotFound(f"Nessun periodo del fondo {fund_code} comprende il {start:%d/%m/%Y}.")
    asked_at = dt.datetime.fromisoformat(submitted_at) if submitted_at else now
    vouchers = []
    for profile in PROFILES:
        hours = round(float(care_plan.get(f"{profile.lower()}_hours_week") or 0) * 100)
        if hours <= 0:
            continue
        request = VoucherRequest(
            fund=fund_code, period=period.code, comune=comune, beneficiary_ref=beneficiary["tax_code"],
            beneficiary_name=f"{beneficiary['first_name']} {beneficiary['last_name']}",
            isee=NO_VALID_ISEE if isee_cents is None else isee_cents, provider=care_plan["provider"],
            profile=profile, hours_per_week=hours, weeks=int(care_plan["weeks"]))
        vouchers.append(issue_voucher(session, request, actor="intake", now=now, source="intake",
                                      source_ref=f"{source_ref}:{profile}", submitted_at=asked_at))
    return vouchers


def get_voucher(session: Session, voucher_id: int) -> Voucher:
    voucher = session.get(Voucher, voucher_id)
    if voucher is None:
        raise NotFound(f"Buono inesistente: {voucher_id}.")
    return voucher


def record_hours(session: Session, *, voucher_id: int, month: str, hours: int, actor: str,
                 now: dt.datetime) -> VoucherMonth:
    """Post a month's delivered hours against the voucher's reservation (once per month)."""
    voucher = get_voucher(session, voucher_id)
    if voucher.status != ACTIVE or voucher.reservation_id is None:
        raise Conflict(f"Il buono {voucher_id} non è attivo.")
    if session.scalar(select(VoucherMonth.id).where(VoucherMonth.voucher_id == voucher_id,
                                                    VoucherMonth.month == month)):
        raise Conflict(f"Ore di {month} già registrate per il buono {voucher_id}.")
    amount = amount_for_hours(hours, voucher.tariff, voucher.copayment_percent)
    services.post(session, reservation_id=voucher.reservation_id, amount=amount, actor=actor, now=now,
                  final=False)
    row = VoucherMonth(voucher_id=voucher_id, month=month, hours=hours, amount=amount, recorded_by=actor)
    session.add(row)
    session.flush()
    return row


def close_voucher(session: Session, *, voucher_id: int, actor: str, now: dt.datetime) -> Voucher:
    """End a voucher: what it did not spend goes back to the budget (and to the waiting list)."""
    voucher = get_voucher(session, voucher_id)
    if voucher.status == WAITING:
        voucher.status, voucher.closed_at = CANCELLED, now
    elif voucher.status == ACTIVE and voucher.reservation_id is not None:
        services.post(session, reservation_id=voucher.reservation_id, amount=0, actor=actor, now=now)
        voucher.status, voucher.closed_at = CLOSED, now
    else:
        raise Conflict(f"Il buono {voucher_id} è già chiuso.")
    session.flush()
    return voucher


def import_hours_csv(session: Session, *, data: str, actor: str, now: dt.datetime,
                     comune: str | None = None) -> list[VoucherMonth]:
    """Import monthly hours (``buono;mese;ore``, hours like ``12,5``): all rows or none.

    Every row is checked first and every problem reported with its row number; one
    bad row and nothing is imported. ``comune`` limits the file to that comune's vouchers.
    """
    rows = list(csv.reader(io.StringIO(data.lstrip("\ufeff")), delimiter=";"))
    if not rows or tuple(cell.strip().lower() for cell in rows[0]) != CSV_COLUMNS:
        raise InvalidInput("Intestazione attesa: " + ";".join(CSV_COLUMNS) + ".",
                           errors={"riga 1": ["Intestazione non valida."]})
    errors: dict[str, list[str]] = {}
    parsed: list[tuple[int, str, int]] = []
    seen: set[tuple[int, str]] = set()
    open_left: dict[int, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        problems = _check_row(session, row, comune, seen, open_left)
        if problems:
            errors[f"riga {number}"] = problems
        else:
            parsed.append((int(row[0]), row[1].strip(), _hours(row[2])))
    if errors:
        raise InvalidInput(f"{len(errors)} righe non valide: nessuna riga importata.", errors=errors)
    return [record_hours(session, voucher_id=v, month=m, hours=h, actor=actor, now=now) for v, m, h in parsed]


def _hours(text: str) -> int:
    whole, _, fraction = text.strip().replace(",", ".").partition(".")
    return int(whole) * 100 + int((fraction + "00")[:2])


def _check_row(session: Session, row: list[str], comune: str | None, seen: set[tuple[int, str]],
               open_left: dict[int, int]) -> list[str]:
    if len(row) != len(CSV_COLUMNS):
        return [f"Attese {len(CSV_COLUMNS)} colonne, trovate {len(row)}."]
    voucher_text, month, hours_text = (cell.strip() for cell in row)
    problems = []
    if not MONTH.match(month):
        problems.append(f"Mese «{month}» non valido (AAAA-MM).")
    if not HOURS.match(hours_text):
        problems.append(f"Ore «{hours_text}» non valide (ad esempio 12,5).")
    voucher = session.get(Voucher, int(voucher_text)) if voucher_text.isdigit() else None
    if voucher is None or (comune is not None and voucher.budget.comune != comune):
        return [*problems, f"Buono «{voucher_text}» inesistente."]
    if voucher.status != ACTIVE or voucher.reservation is None:
        return [*problems, f"Il buono {voucher.id} non è attivo."]
    if (voucher.id, month) in seen or session.scalar(select(VoucherMonth.id).where(
            VoucherMonth.voucher_id == voucher.id, VoucherMonth.month == month)):
        problems.append(f"Ore di {month} già presenti per il buono {voucher.id}.")
    seen.add((voucher.id, month))
    if not problems:
        reservation = voucher.reservation
        left = open_left.setdefault(voucher.id, reservation.amount - reservation.posted_amount)
        amount = amount_for_hours(_hours(hours_text), voucher.tariff, voucher.copayment_percent)
        if amount > left:
            problems.append(f"Importo {services.format_eur(amount)} oltre il residuo del buono "
                            f"({services.format_eur(left)}).")
        else:
            open_left[voucher.id] = left - amount
    return problems

