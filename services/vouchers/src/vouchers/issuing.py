"""Vouchers: home-care hours valued by the fund's rules and paid from a comune's budget.

A voucher's value is hours a week x weeks x (the provider's hourly tariff for the
profile, the fund's rule in force on the day it is issued, less the family's hourly
co-payment, never below zero): the family pays its share to the provider, the fund
the rest. The co-payment is the comune's rule (``ambito_common.copayment``, the same
intake's care plan uses); a voucher from a care plan keeps the plan's figure, the one
the family agreed to. The voucher is reserved on the budget at once, or it waits in
the ranked list (``services.promote_waiting`` moves it up when money is freed).
Delivered hours post month by month against its reservation; closing it releases
the rest. Vouchers from a care plan report their state back to intake
(``services.report_to_intake``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ambito_common.copayment import CopaymentRules, hourly_copayment
from ambito_common.errors import Conflict, InvalidInput, NotFound
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import services
from .models import (
    ACTIVE,
    CANCELLED,
    CLOSED,
    PROFILES,
    WAITING,
    Budget,
    Fund,
    Period,
    Voucher,
    VoucherMonth,
)

HOURS = re.compile(r"^\d{1,4}([.,]\d{1,2})?$")
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
CSV_COLUMNS = ("buono", "mese", "ore")


def hourly_tariff(session: Session, *, fund_code: str, provider: str, profile: str, on: dt.date) -> int:
    """Cents per hour for a provider and profile (the provider's own tariff, else the default)."""
    rule = services.rule_in_force(session, fund_code=fund_code, kind="hourly_tariff", on=on)
    providers = rule.params["providers"]
    tariffs = providers.get(provider) or providers["default"]
    return int(tariffs[profile])


def amount_for_hours(hours: int, tariff: int, copayment_hourly: int) -> int:
    """Cents the fund pays for ``hours`` hundredths of an hour: the tariff less the family's share,
    rounded half up."""
    return (hours * max(tariff - copayment_hourly, 0) + 50) // 100


NO_VALID_ISEE = 10**11  # cents: without a valid ISEE the maximum co-payment applies, and it ranks last

ISEE_CAP_KEY = "isee_sociosanitario"  # the cap of the ISEE these vouchers carry (adults' socio-sanitario)


def check_isee_cap(session: Session, *, fund_code: str, isee: int, on: dt.date) -> None:
    """Refuse a voucher the fund may not pay: its ISEE cap rule in force on ``on``, if it has one.

    A fund with a cap is reserved to families under it, so a request without a valid ISEE
    cannot show it qualifies and is refused too; a fund without a cap rule (FNPS) takes any.
    """
    rule = services.find_rule_in_force(session, fund_code=fund_code, kind="isee_cap", on=on)
    if rule is None or ISEE_CAP_KEY not in rule.params:
        return
    cap = int(rule.params[ISEE_CAP_KEY])
    if isee == NO_VALID_ISEE:
        raise InvalidInput(f"Il fondo {fund_code} richiede un ISEE valido, non superiore a "
                           f"{services.format_eur(cap)}: indicare l'ISEE.",
                           errors={"isee": [f"ISEE obbligatorio per questo fondo (massimo "
                                            f"{services.format_eur(cap)})."]})
    if isee > cap:
        raise InvalidInput(f"ISEE di {services.format_eur(isee)} oltre il limite di "
                           f"{services.format_eur(cap)} del fondo {fund_code}.",
                           errors={"isee": [f"L'ISEE non può superare {services.format_eur(cap)} "
                                            "per questo fondo."]})


@dataclass(frozen=True)
class VoucherRequest:
    fund: str
    period: str
    comune: str
    beneficiary_ref: str
    beneficiary_name: str
    isee: int  # cents (NO_VALID_ISEE without a valid one)
    provider: str
    profile: str  # ASA or OSS
    hours_per_week: int  # hundredths of an hour
    weeks: int
    copayment_hourly: int  # cents per hour the family pays the provider
    contact_email: str | None = None  # the family's, for the courtesy copy of the voucher


def operator_request(data: Mapping[str, Any], rules: CopaymentRules, on: dt.date) -> VoucherRequest:
    """A voucher entered by a comune operator (``VoucherIn``'s fields), with the co-payment of the
    comune's rule in force on ``on``; ``isee`` None means no valid ISEE (the maximum)."""
    isee = data["isee"]
    return VoucherRequest(**{**data, "isee": NO_VALID_ISEE if isee is None else isee},
                          copayment_hourly=hourly_copayment(rules, data["comune"], isee, on))


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
    if request.hours_per_week <= 0 or request.weeks <= 0 or request.isee < 0 or request.copayment_hourly < 0:
        raise InvalidInput("Ore, settimane, ISEE e compartecipazione devono essere positivi.")
    check_isee_cap(session, fund_code=request.fund, isee=request.isee, on=now.date())
    tariff = hourly_tariff(session, fund_code=request.fund, provider=request.provider,
                           profile=request.profile, on=now.date())
    value = amount_for_hours(request.hours_per_week * request.weeks, tariff, request.copayment_hourly)
    if value <= 0:
        raise InvalidInput("La compartecipazione oraria copre l'intera tariffa: il buono non ha valore "
                           "a carico del fondo.")
    budget = services.find_budget(session, fund_code=request.fund, period_code=request.period,
                                  comune=request.comune)
    voucher = Voucher(
        budget_id=budget.id, source=source, source_ref=source_ref, beneficiary_ref=request.beneficiary_ref,
        beneficiary_name=request.beneficiary_name, isee=request.isee, provider=request.provider,
        profile=request.profile, hours_per_week=request.hours_per_week, weeks=request.weeks, tariff=tariff,
        copayment_hourly=request.copayment_hourly, value=value, status=WAITING,
        contact_email=request.contact_email or None,
        submitted_at=submitted_at or now, created_by=actor)
    session.add(voucher)
    session.flush()
    # It queues by rank like any other; a care plan reports once, with all its vouchers.
    services.promote_waiting(session, [budget.id], actor, report=False)
    return voucher


def issue_from_care_plan(session: Session, *, fund_code: str, source: str, source_ref: str, comune: str,
                         beneficiary: Mapping[str, str], isee_cents: int | None, submitted_at: str | None,
                         care_plan: Mapping[str, Any], rules: CopaymentRules,
                         now: dt.datetime) -> list[Voucher]:
    """The vouchers of an approved SAD care plan from intake: one per profile with hours (ASA, OSS).

    The period is the fund's period in which the plan starts. The hourly co-payment is the
    plan's (what the family agreed to); only a plan written before plans carried it is
    priced by the comune's rule on its start date. Idempotent per plan and profile; the
    plan's state goes back to intake (again on a redelivery: intake ignores a repeat).
    """
    start = dt.date.fromisoformat(care_plan["start_date"])
    period = session.scalar(select(Period).join(Fund).where(
        Fund.code == fund_code, Period.start_date <= start, Period.end_date >= start))
    if period is None:
        raise NotFound(f"Nessun periodo del fondo {fund_code} comprende il {start:%d/%m/%Y}.")
    asked_at = dt.datetime.fromisoformat(submitted_at) if submitted_at else now
    copayment = care_plan.get("copayment_hourly_cents")
    if copayment is None:
        copayment = hourly_copayment(rules, comune, isee_cents, start)
    vouchers = []
    for profile in PROFILES:
        hours = round(float(care_plan.get(f"{profile.lower()}_hours_week") or 0) * 100)
        if hours <= 0:
            continue
        request = VoucherRequest(
            fund=fund_code, period=period.code, comune=comune, beneficiary_ref=beneficiary["tax_code"],
            beneficiary_name=f"{beneficiary['first_name']} {beneficiary['last_name']}",
            isee=NO_VALID_ISEE if isee_cents is None else isee_cents, provider=care_plan["provider"],
            profile=profile, hours_per_week=hours, weeks=int(care_plan["weeks"]),
            copayment_hourly=int(copayment), contact_email=beneficiary.get("email"))
        vouchers.append(issue_voucher(session, request, actor=source, now=now, source=source,
                                      source_ref=services.plan_voucher_ref(source, source_ref, profile),
                                      submitted_at=asked_at))
    services.report_to_intake(session, vouchers)
    return vouchers


def get_voucher(session: Session, voucher_id: int) -> Voucher:
    voucher = session.get(Voucher, voucher_id)
    if voucher is None:
        raise NotFound(f"Buono inesistente: {voucher_id}.")
    return voucher


def list_vouchers(session: Session, *, period_id: int, comune: str | None) -> list[dict[str, Any]]:
    """A period's vouchers, newest first (``comune``: only its own), waiting ones with their rank."""
    query = select(Voucher).join(Voucher.budget).where(Budget.period_id == period_id)
    if comune is not None:
        query = query.where(Budget.comune == comune)
    found = session.scalars(query.order_by(Voucher.id.desc())).all()
    ranks = {budget_id: {v.id: rank for rank, v in enumerate(services.waiting_list(session, budget_id), 1)}
             for budget_id in {v.budget_id for v in found if v.status == WAITING}}
    return [{"voucher": v, "position": ranks.get(v.budget_id, {}).get(v.id)} for v in found]


def voucher_months(session: Session, voucher_id: int) -> Sequence[VoucherMonth]:
    return session.scalars(select(VoucherMonth).where(VoucherMonth.voucher_id == voucher_id)
                           .order_by(VoucherMonth.month)).all()


def record_hours(session: Session, *, voucher_id: int, month: str, hours: int, actor: str,
                 now: dt.datetime) -> VoucherMonth:
    """Post a month's delivered hours against the voucher's reservation (once per month)."""
    voucher = get_voucher(session, voucher_id)
    if voucher.status != ACTIVE or voucher.reservation_id is None:
        raise Conflict(f"Il buono {voucher_id} non è attivo.")
    if session.scalar(select(VoucherMonth.id).where(VoucherMonth.voucher_id == voucher_id,
                                                    VoucherMonth.month == month)):
        raise Conflict(f"Ore di {month} già registrate per il buono {voucher_id}.")
    amount = amount_for_hours(hours, voucher.tariff, voucher.copayment_hourly)
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
    services.report_to_intake(session, [voucher])
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
            parsed.append((int(row[0]), row[1].strip(), parse_hours(row[2])))
    if errors:
        raise InvalidInput(f"{len(errors)} righe non valide: nessuna riga importata.", errors=errors)
    return [record_hours(session, voucher_id=v, month=m, hours=h, actor=actor, now=now) for v, m, h in parsed]


def parse_hours(text: str) -> int:
    """Hours typed as ``12,5`` (or ``12.5``; checked against ``HOURS`` first) in hundredths."""
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
        amount = amount_for_hours(parse_hours(hours_text), voucher.tariff, voucher.copayment_hourly)
        if amount > left:
            problems.append(f"Importo {services.format_eur(amount)} oltre il residuo del buono "
                            f"({services.format_eur(left)}).")
        else:
            open_left[voucher.id] = left - amount
    return problems

