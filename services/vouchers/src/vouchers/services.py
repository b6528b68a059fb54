"""The rules of funds, budgets and the ledger.

Every function takes a session and plain values and raises ``DomainError``;
callers commit (``run_transaction`` retries what the database asks to retry).

How overspending is made impossible: every movement that touches a comune's
money first locks that comune's budget row (``SELECT ... FOR NO KEY UPDATE`` on
PostgreSQL; on SQLite every transaction is ``BEGIN IMMEDIATE``, which serialises
writers), re-reads it, checks, and only then books. NO KEY UPDATE, not FOR UPDATE:
the foreign-key checks PostgreSQL runs while a budget is written take a KEY SHARE
lock on its period, which FOR UPDATE on that period would block, a cycle (budget,
then period, against period, then budget) that surfaced as deadlocks when
re-allocations ran among reservations; no key of these rows ever changes. A reservation, post or void
locks one budget row; operations that need more rows lock the periods first (in
ascending id order), then their budgets (ascending id within a period), so two
transactions never wait on each other in a cycle. Behind the locks, the CHECK
``posted + reserved <= allocated`` on the budget row refuses any commit that
would break the invariant anyway.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from ambito_common.errors import Conflict, InvalidInput, NotFound
from ambito_common.outbox import enqueue
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from . import documents
from .models import (
    ACCOUNT_AVAILABLE,
    ACCOUNT_INCOME,
    ACCOUNT_POOL,
    ACCOUNT_RESERVED,
    ACCOUNT_SPENT,
    ACTIVE,
    CANCELLED,
    CLOSED,
    EXPIRED,
    PARTIALLY_POSTED,
    POSTED,
    PROFILES,
    RESERVED,
    VOIDED,
    WAITING,
    Budget,
    ComunePopulation,
    Fund,
    FundRule,
    LedgerAccount,
    LedgerEntry,
    LedgerJournal,
    OutboxMessage,
    Period,
    Reservation,
    Voucher,
)

T = TypeVar("T")

# Journal kinds.
RECEIPT, ALLOCATION, REALLOCATION, CARRY_OVER = "receipt", "allocation", "reallocation", "carry_over"
RESERVE, POST, VOID, EXPIRE, REVERSAL = "reserve", "post", "void", "expire", "reversal"
REIMBURSEMENT = "reimbursement"
REVERSIBLE = (RECEIPT, ALLOCATION, REALLOCATION)


def format_eur(cents: int) -> str:
    """Cents as Italians write euro: ``1.234,56 €``."""
    sign = "-" if cents < 0 else ""
    euros, rest = divmod(abs(cents), 100)
    return f"{sign}{euros:,}".replace(",", ".") + f",{rest:02d} €"


class OverBudget(Conflict):
    """The budget cannot cover the amount; the problem names what is available."""

    def __init__(self, comune: str, available: int, requested: int) -> None:
        super().__init__(
            f"Budget insufficiente per {comune}: disponibili {format_eur(available)}, "
            f"richiesti {format_eur(requested)}.",
            available=available, available_eur=format_eur(available), requested=requested)


# --- transactions -----------------------------------------------------------------------

TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available


def is_transient(error: DBAPIError) -> bool:
    """Failures a database resolves by running the same transaction again."""
    if getattr(error.orig, "sqlstate", None) in TRANSIENT_SQLSTATES:
        return True
    message = str(error.orig).lower()
    return "database is locked" in message or "database is busy" in message


def run_transaction(session: Session, work: Callable[[], T], *, attempts: int = 10) -> T:
    """Run ``work`` and commit, again from the start after a serialization failure or deadlock.

    A unique-key race (two requests creating the same row, e.g. the same idempotency key)
    is retried once: the second run sees the winner's row. ``work`` must be safe to
    re-run after a rollback, which holds for every function here.
    """
    integrity_retries = 1
    for attempt in range(attempts):
        try:
            result = work()
            session.commit()
            return result
        except IntegrityError:
            session.rollback()
            if integrity_retries == 0:
                raise
            integrity_retries -= 1
        except DBAPIError as error:
            session.rollback()
            if not is_transient(error) or attempt == attempts - 1:
                raise
            time.sleep(min(0.2, 0.005 * 2 ** attempt))
        except BaseException:
            session.rollback()
            raise
    raise RuntimeError("unreachable")  # pragma: no cover


# --- funds, periods, rules, populations ---------------------------------------------------

def upsert_fund(session: Session, *, code: str, name: str, description: str = "") -> Fund:
    fund = session.scalar(select(Fund).where(Fund.code == code)) or Fund(code=code)
    fund.name, fund.description = name, description
    session.add(fund)
    session.flush()
    return fund


def get_fund(session: Session, code: str) -> Fund:
    fund = session.scalar(select(Fund).where(Fund.code == code))
    if fund is None:
        raise NotFound(f"Fondo inesistente: {code}.")
    return fund


def list_funds(session: Session) -> Sequence[Fund]:
    return session.scalars(select(Fund).order_by(Fund.code)).all()


def get_period(session: Session, fund_code: str, period_code: str) -> Period:
    period = session.scalar(select(Period).join(Fund).where(
        Fund.code == fund_code, Period.code == period_code))
    if period is None:
        raise NotFound(f"Periodo inesistente: {fund_code}/{period_code}.")
    return period


def create_period(session: Session, *, fund_code: str, code: str, start: dt.date, end: dt.date,
                  amount_received: int, actor: str) -> Period:
    """A fund's new period with its Ambito accounts, and the money received booked."""
    if start > end:
        raise InvalidInput("Il periodo termina prima di iniziare.", errors={"end": ["Data non valida."]})
    fund = get_fund(session, fund_code)
    if session.scalar(select(Period.id).where(Period.fund_id == fund.id, Period.code == code)):
        raise Conflict(f"Il periodo {code} del fondo {fund_code} esiste già.")
    period = Period(fund=fund, code=code, start_date=start, end_date=end)
    session.add(period)
    session.flush()
    for kind in (ACCOUNT_INCOME, ACCOUNT_POOL):
        session.add(LedgerAccount(period_id=period.id, comune="", kind=kind))
    session.flush()
    if amount_received:
        record_receipt(session, period_id=period.id, amount=amount_received, actor=actor)
    return period


def record_receipt(session: Session, *, period_id: int, amount: int, actor: str,
                   memo: str = "Somma ricevuta dall'Ambito") -> LedgerJournal:
    """Money reaching the Ambito for a period: income → the period's unallocated pool."""
    _positive(amount)
    _lock_periods(session, [period_id])
    return _book(session, RECEIPT, actor, memo, [
        (_account(session, period_id, "", ACCOUNT_INCOME), -amount),
        (_account(session, period_id, "", ACCOUNT_POOL), amount)])


# The kinds of a fund's rules. The co-payment is not one: it is the comune's (ambito_common.copayment).
RULE_KINDS = ("isee_cap", "monthly_amount", "hourly_tariff")


def add_rule(session: Session, *, fund_code: str, kind: str, params: Mapping[str, Any],
             valid_from: dt.date, valid_to: dt.date | None = None) -> FundRule:
    if kind not in RULE_KINDS:
        raise InvalidInput(f"Tipo di regola sconosciuto: {kind}.",
                           errors={"kind": ["Uno tra: " + ", ".join(RULE_KINDS) + "."]})
    if valid_to is not None and valid_to < valid_from:
        raise InvalidInput("La regola scade prima di entrare in vigore.")
    rule = FundRule(fund=get_fund(session, fund_code), kind=kind, params=dict(params),
                    valid_from=valid_from, valid_to=valid_to)
    session.add(rule)
    session.flush()
    return rule


def find_rule_in_force(session: Session, *, fund_code: str, kind: str, on: dt.date) -> FundRule | None:
    """The rule of ``kind`` valid on a day (the most recent one if validities overlap), if any:
    for the rules a fund may not have (an ISEE cap)."""
    return session.scalar(
        select(FundRule).join(Fund).where(
            Fund.code == fund_code, FundRule.kind == kind, FundRule.valid_from <= on,
            (FundRule.valid_to.is_(None)) | (FundRule.valid_to >= on))
        .order_by(FundRule.valid_from.desc()).limit(1))


def rule_in_force(session: Session, *, fund_code: str, kind: str, on: dt.date) -> FundRule:
    """The rule of ``kind`` valid on a day, which the fund must have (a tariff)."""
    rule = find_rule_in_force(session, fund_code=fund_code, kind=kind, on=on)
    if rule is None:
        raise NotFound(f"Nessuna regola «{kind}» del fondo {fund_code} in vigore il {on:%d/%m/%Y}.")
    return rule


def list_populations(session: Session) -> Sequence[ComunePopulation]:
    return session.scalars(select(ComunePopulation).order_by(ComunePopulation.comune)).all()


def set_population(session: Session, *, comune: str, population: int, as_of: dt.date,
                   actor: str) -> ComunePopulation:
    if population < 0:
        raise InvalidInput("La popolazione non può essere negativa.")
    row = session.get(ComunePopulation, comune) or ComunePopulation(comune=comune)
    row.population, row.as_of, row.updated_by = population, as_of, actor
    session.add(row)
    session.flush()
    return row


# --- allocation ----------------------------------------------------------------------------

def largest_remainder(total: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Split ``total`` cents in proportion to ``weights``, exactly.

    Each share is first rounded down; the cents left over go one each to the largest
    remainders (ties by key, so the result does not depend on dict order). The shares
    always sum to ``total``.
    """
    if total < 0:
        raise InvalidInput("L'importo da ripartire non può essere negativo.")
    weight_sum = sum(weights.values())
    if weight_sum <= 0 or any(w < 0 for w in weights.values()):
        raise InvalidInput("I pesi della ripartizione devono essere positivi.")
    shares = {key: total * w // weight_sum for key, w in weights.items()}
    left = total - sum(shares.values())
    by_remainder = sorted(weights, key=lambda key: (-(total * weights[key] % weight_sum), key))
    for key in by_remainder[:left]:
        shares[key] += 1
    return shares


def pro_rata(available: int, asked: Mapping[str, int]) -> dict[str, int]:
    """What each reimbursement request gets when a fund cannot pay them all.

    In proportion to what was asked, to the cent, never more than asked; when the
    money suffices everybody gets what they asked.
    """
    if sum(asked.values()) <= available:
        return dict(asked)
    return largest_remainder(available, asked)


def formula_shares(total: int, populations: Mapping[str, int], base_per_comune: int = 0) -> dict[str, int]:
    """A fixed base for every comune, the rest by population share (largest remainder)."""
    rest = total - base_per_comune * len(populations)
    if base_per_comune < 0 or rest < 0:
        raise InvalidInput(f"La quota fissa ({format_eur(base_per_comune)} per comune) supera il totale.")
    return {comune: base_per_comune + share
            for comune, share in largest_remainder(rest, populations).items()}


def allocate(session: Session, *, period_id: int, amounts: Mapping[str, int], actor: str,
             memo: str = "Assegnazione ai comuni") -> LedgerJournal:
    """Give (positive) or take back (negative) money between the period's pool and comuni."""
    amounts = {comune: a for comune, a in amounts.items() if a != 0}
    if not amounts:
        raise InvalidInput("Nessun importo da assegnare.")
    (period,) = _lock_periods(session, [period_id])
    budgets = _ensure_budgets(session, period, amounts)
    total = sum(amounts.values())
    if total > period.unallocated:
        raise Conflict(f"Somme non assegnate insufficienti: disponibili {format_eur(period.unallocated)}, "
                       f"richiesti {format_eur(total)}.", available=period.unallocated,
                       available_eur=format_eur(period.unallocated))
    for comune, amount in amounts.items():
        if -amount > budgets[comune].available:
            raise OverBudget(comune, budgets[comune].available, -amount)
    journal = _book(session, ALLOCATION, actor, memo, [
        (_account(session, period_id, "", ACCOUNT_POOL), -total),
        *((_account(session, period_id, comune, ACCOUNT_AVAILABLE), amount)
          for comune, amount in sorted(amounts.items()))])
    promote_waiting(session, [b.id for b in budgets.values()], actor)
    return journal


def allocate_by_formula(session: Session, *, period_id: int, total: int, base_per_comune: int = 0,
                        comuni: Iterable[str], actor: str) -> LedgerJournal:
    """Allocate ``total`` by population share (plus an optional fixed base), to the cent."""
    comuni = list(comuni)
    rows = {row.comune: row.population for row in session.scalars(
        select(ComunePopulation).where(ComunePopulation.comune.in_(comuni)))}
    missing = sorted(set(comuni) - set(rows))
    if missing:
        raise InvalidInput("Popolazione mancante per: " + ", ".join(missing) + ".")
    shares = formula_shares(total, rows, base_per_comune)
    memo = "Riparto per popolazione" + (f" con quota fissa di {format_eur(base_per_comune)}"
                                        if base_per_comune else "")
    return allocate(session, period_id=period_id, amounts=shares, actor=actor, memo=memo)


def grant_from_pool(session: Session, *, period_id: int, comune: str, amount: int, actor: str,
                    memo: str) -> LedgerJournal:
    """Pay a comune straight from the period's unallocated money (an approved reimbursement).

    The money lands on the comune's spent account in one journal: it raises what the
    comune was given and what it spent alike, so its available money, and with it the
    waiting list, is untouched.
    """
    _positive(amount)
    (period,) = _lock_periods(session, [period_id])
    _ensure_budgets(session, period, [comune])
    if amount > period.unallocated:
        raise Conflict(f"Fondo insufficiente: restano {format_eur(period.unallocated)}, "
                       f"richiesti {format_eur(amount)}. Valutare il riparto proporzionale.",
                       available=period.unallocated, available_eur=format_eur(period.unallocated))
    return _book(session, REIMBURSEMENT, actor, memo, [
        (_account(session, period_id, "", ACCOUNT_POOL), -amount),
        (_account(session, period_id, comune, ACCOUNT_SPENT), amount)])


def reallocate(session: Session, *, period_id: int, from_comune: str, to_comune: str, amount: int,
               actor: str, memo: str = "Riassegnazione tra comuni") -> LedgerJournal:
    """Move unspent, unreserved money of a period from one comune to another."""
    _positive(amount)
    if from_comune == to_comune:
        raise InvalidInput("Comune di origine e di destinazione coincidono.")
    (period,) = _lock_periods(session, [period_id])
    budgets = _ensure_budgets(session, period, [from_comune, to_comune])
    if amount > budgets[from_comune].available:
        raise OverBudget(from_comune, budgets[from_comune].available, amount)
    journal = _book(session, REALLOCATION, actor, memo, [
        (_account(session, period_id, from_comune, ACCOUNT_AVAILABLE), -amount),
        (_account(session, period_id, to_comune, ACCOUNT_AVAILABLE), amount)])
    promote_waiting(session, [budgets[to_comune].id], actor)
    return journal


def carry_over(session: Session, *, from_period_id: int, to_period_id: int, comune: str,
               amount: int | None, actor: str) -> LedgerJournal:
    """Carry a comune's unspent money into the next period of the same fund (all of it by default)."""
    periods = {p.id: p for p in _lock_periods(session, [from_period_id, to_period_id])}
    source, target = periods[from_period_id], periods[to_period_id]
    if source.fund_id != target.fund_id or target.start_date <= source.start_date:
        raise InvalidInput("Si riporta solo in un periodo successivo dello stesso fondo.")
    target_budget = _ensure_budgets(session, target, [comune])[comune]
    available = _ensure_budgets(session, source, [comune])[comune].available
    amount = available if amount is None else amount
    _positive(amount)
    if amount > available:
        raise OverBudget(comune, available, amount)
    entries = [(_account(session, from_period_id, comune, ACCOUNT_AVAILABLE), -amount),
               (_account(session, to_period_id, comune, ACCOUNT_AVAILABLE), amount)]
    # Flushed in one UPDATE per period with the allocations _book moves, so the CHECKs hold.
    source.carried_out += amount
    target.carried_in += amount
    journal = _book(session, CARRY_OVER, actor, f"Riporto da {source.code} a {target.code}", entries)
    promote_waiting(session, [target_budget.id], actor)
    return journal


def reverse(session: Session, *, journal_id: int, actor: str, reason: str) -> LedgerJournal:
    """Correct a receipt, allocation or re-allocation by a journal with the opposite entries.

    Reservations are corrected by voiding them; carry-overs by carrying back.
    """
    original = session.get(LedgerJournal, journal_id)
    if original is None:
        raise NotFound("Movimento inesistente.")
    if original.kind not in REVERSIBLE:
        raise Conflict("Questo movimento non si storna: si annulla la prenotazione o si riporta indietro.")
    if session.scalar(select(LedgerJournal.id).where(LedgerJournal.reversal_of_id == journal_id)):
        raise Conflict("Movimento già stornato.")
    accounts = [entry.account for entry in original.entries]
    _lock_periods(session, {a.period_id for a in accounts})
    _lock_budgets(session, {a.budget_id for a in accounts if a.budget_id is not None})
    entries = [(entry.account, -entry.amount) for entry in original.entries]
    for account, amount in entries:
        if account.budget_id is not None:
            budget = session.get(Budget, account.budget_id)
            assert budget is not None
            if -amount > budget.available:
                raise OverBudget(account.comune, budget.available, -amount)
        elif account.kind == ACCOUNT_POOL:
            period = session.get(Period, account.period_id)
            assert period is not None
            if -amount > period.unallocated:
                raise Conflict(f"Somme non assegnate insufficienti per lo storno: disponibili "
                               f"{format_eur(period.unallocated)}.", available=period.unallocated)
    journal = _book(session, REVERSAL, actor, reason, entries, reversal_of_id=journal_id)
    promote_waiting(session, [a.budget_id for a, amount in entries if a.budget_id and amount > 0], actor)
    return journal


def movements(session: Session, *, period_id: int, comune: str | None = None) -> list[dict[str, Any]]:
    """Every journal touching a period, newest first, with who made it.

    With ``comune``, only that comune's movements and, of each, only its own entries. The
    Ambito's own accounts (comune "") are no comune's: ``comune=""`` (an operator whose token
    names no comune) sees nothing.
    """
    accounts = select(LedgerAccount.id).where(LedgerAccount.period_id == period_id)
    if comune is not None:
        accounts = accounts.where(LedgerAccount.comune == comune, LedgerAccount.comune != "")
    journal_ids = select(LedgerEntry.journal_id).where(LedgerEntry.account_id.in_(accounts))
    journals = session.scalars(select(LedgerJournal).where(LedgerJournal.id.in_(journal_ids))
                               .order_by(LedgerJournal.id.desc())).all()
    return [{"id": j.id, "kind": j.kind, "created_at": j.created_at, "actor": j.actor, "memo": j.memo,
             "reversal_of": j.reversal_of_id,
             "entries": [{"comune": e.account.comune, "account": e.account.kind, "amount": e.amount}
                         for e in j.entries if comune is None or e.account.comune == comune]}
            for j in journals]


# --- reservations -------------------------------------------------------------------------

def find_budget(session: Session, *, fund_code: str, period_code: str, comune: str,
                lock: bool = False) -> Budget:
    """A comune's budget in a period; ``lock``: its row locked (FOR NO KEY UPDATE) and re-read,
    so that a balance checked afterwards cannot move under the caller."""
    query = select(Budget).join(Period).join(Fund).where(
        Fund.code == fund_code, Period.code == period_code, Budget.comune == comune)
    if lock:
        query = query.with_for_update(of=Budget, key_share=True).execution_options(populate_existing=True)
    budget = session.scalar(query)
    if budget is None:
        raise NotFound(f"Nessun budget per {comune} sul fondo {fund_code}, periodo {period_code}.")
    return budget


def budget_rows(session: Session, *, fund_code: str, period_code: str,
                comuni: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    """Every comune of the Ambito (in its order) with its money in a period; zeros if none.

    ``waiting`` and ``waiting_amount`` are the vouchers on its waiting list.
    """
    period = get_period(session, fund_code, period_code)
    budgets = {b.comune: b for b in session.scalars(select(Budget).where(Budget.period_id == period.id))}
    waiting = {comune: (count, amount) for comune, count, amount in session.execute(
        select(Budget.comune, func.count(Voucher.id), func.sum(Voucher.value)).join(Voucher)
        .where(Budget.period_id == period.id, Voucher.status == WAITING).group_by(Budget.comune))}
    rows = []
    for comune in comuni:
        budget = budgets.get(comune["code"])
        allocated, reserved, spent = ((budget.allocated, budget.reserved, budget.posted) if budget
                                      else (0, 0, 0))
        count, amount = waiting.get(comune["code"], (0, 0))
        rows.append({"comune": comune["code"], "sub_ambito": comune.get("sub_ambito", ""),
                     "allocated": allocated, "reserved": reserved, "spent": spent,
                     "available": allocated - reserved - spent, "waiting": count, "waiting_amount": amount})
    return rows


def reserve(session: Session, *, fund_code: str, period_code: str, comune: str, amount: int,
            reference: str, actor: str, expires_at: dt.datetime | None = None) -> Reservation:
    """Set money aside on a comune's budget, or raise ``OverBudget`` naming what is available."""
    _positive(amount)
    budget = find_budget(session, fund_code=fund_code, period_code=period_code, comune=comune, lock=True)
    return _reserve_locked(session, budget, amount, reference, actor, expires_at)


def _reserve_locked(session: Session, budget: Budget, amount: int, reference: str, actor: str,
                    expires_at: dt.datetime | None) -> Reservation:
    if amount > budget.available:
        raise OverBudget(budget.comune, budget.available, amount)
    reservation = Reservation(budget_id=budget.id, amount=amount, reference=reference,
                              created_by=actor, expires_at=expires_at, status=RESERVED)
    session.add(reservation)
    accounts = _budget_accounts(session, budget.id)
    session.flush()
    _book(session, RESERVE, actor, reference, [
        (accounts[ACCOUNT_AVAILABLE], -amount), (accounts[ACCOUNT_RESERVED], amount)],
        reservation_id=reservation.id)
    return reservation


def get_reservation(session: Session, reservation_id: int) -> Reservation:
    reservation = session.get(Reservation, reservation_id)
    if reservation is None:
        raise NotFound("Prenotazione inesistente.")
    return reservation


def post(session: Session, *, reservation_id: int, amount: int, actor: str, now: dt.datetime,
         final: bool = True) -> Reservation:
    """Spend ``amount`` of what a reservation still holds.

    Final (the API's post, closing a voucher): the rest goes back to the budget and the
    reservation is closed. Not final (a month of a voucher): the rest stays reserved.
    """
    if amount < 0:
        raise InvalidInput("L'importo non può essere negativo.", errors={"amount": ["Minimo 0."]})
    reservation = _lock_open_reservation(session, reservation_id)
    still_open = reservation.amount - reservation.posted_amount
    if amount > still_open:
        raise Conflict(f"Si possono contabilizzare al massimo {format_eur(still_open)}.", reserved=still_open)
    if final:
        _close(session, reservation, POST, amount, actor, now)
        promote_waiting(session, [reservation.budget_id], actor)
    elif amount:
        accounts = _budget_accounts(session, reservation.budget_id)
        reservation.posted_amount += amount
        _book(session, POST, actor, reservation.reference, [
            (accounts[ACCOUNT_RESERVED], -amount), (accounts[ACCOUNT_SPENT], amount)],
            reservation_id=reservation.id)
    return reservation


def void(session: Session, *, reservation_id: int, actor: str, now: dt.datetime) -> Reservation:
    """Release what a reservation still holds."""
    reservation = _close(session, _lock_open_reservation(session, reservation_id), VOID, 0, actor, now)
    promote_waiting(session, [reservation.budget_id], actor)
    return reservation


def expire_reservations(session: Session, *, now: dt.datetime, actor: str = "sistema") -> int:
    """Release every reservation past its expiry; returns how many."""
    ids = session.scalars(select(Reservation.id).where(
        Reservation.status == RESERVED, Reservation.expires_at <= now).order_by(Reservation.id)).all()
    budget_ids = session.scalars(select(Reservation.budget_id).where(Reservation.id.in_(ids))).all()
    _lock_budgets(session, budget_ids)
    expired = 0
    for reservation in _fresh_reservations(session, ids):
        if reservation.status == RESERVED:
            _close(session, reservation, EXPIRE, 0, actor, now)
            expired += 1
    promote_waiting(session, budget_ids, actor)
    return expired


def _lock_open_reservation(session: Session, reservation_id: int) -> Reservation:
    budget_id = get_reservation(session, reservation_id).budget_id
    _lock_budgets(session, [budget_id])
    (reservation,) = _fresh_reservations(session, [reservation_id])
    if reservation.status != RESERVED:
        raise Conflict(f"La prenotazione è già chiusa (stato: {reservation.status}).",
                       reservation_status=reservation.status)
    return reservation


def _fresh_reservations(session: Session, ids: Sequence[int]) -> Sequence[Reservation]:
    """Reservations as committed now (read after their budget was locked)."""
    return session.scalars(select(Reservation).where(Reservation.id.in_(ids)).order_by(Reservation.id)
                           .execution_options(populate_existing=True)).all()


def _close(session: Session, reservation: Reservation, kind: str, spent: int, actor: str,
           now: dt.datetime) -> Reservation:
    """Spend ``spent`` of what the reservation still holds, release the rest, close it."""
    accounts = _budget_accounts(session, reservation.budget_id)
    still_open = reservation.amount - reservation.posted_amount
    _book(session, kind, actor, reservation.reference, [
        (accounts[ACCOUNT_RESERVED], -still_open), (accounts[ACCOUNT_SPENT], spent),
        (accounts[ACCOUNT_AVAILABLE], still_open - spent)], reservation_id=reservation.id)
    reservation.posted_amount += spent
    reservation.closed_at = now
    if kind == POST:
        reservation.status = POSTED if reservation.posted_amount == reservation.amount else PARTIALLY_POSTED
    else:
        reservation.status = VOIDED if kind == VOID else EXPIRED
    return reservation


def waiting_list(session: Session, budget_id: int) -> Sequence[Voucher]:
    """A budget's waiting vouchers in the order they are served: lowest ISEE, then earliest."""
    return session.scalars(select(Voucher).where(Voucher.budget_id == budget_id, Voucher.status == WAITING)
                           .order_by(Voucher.isee, Voucher.submitted_at, Voucher.id)).all()


def waiting_position(session: Session, voucher: Voucher) -> int | None:
    """The voucher's rank on its comune's waiting list (1 = served first), None when not waiting."""
    if voucher.status != WAITING:
        return None
    return [v.id for v in waiting_list(session, voucher.budget_id)].index(voucher.id) + 1


def promote_waiting(session: Session, budget_ids: Iterable[int], actor: str, *,
                    report: bool = True) -> list[Voucher]:
    """Reserve for waiting vouchers, in rank order, while the budget covers the next one.

    Runs after every movement that may free money on a budget. It stops at the first
    voucher that does not fit, so nobody is overtaken by a cheaper request behind them.
    Promoted vouchers of care plans are reported to intake unless ``report`` is False
    (issuing a plan reports once, for all its vouchers).
    """
    promoted = []
    for budget in _lock_budgets(session, budget_ids):
        for voucher in waiting_list(session, budget.id):
            if voucher.value > budget.available:
                break
            voucher.reservation_id = _reserve_locked(session, budget, voucher.value, f"buono {voucher.id}",
                                                     actor, None).id
            voucher.status = ACTIVE
            documents.voucher_reserved(session, voucher)  # the sealed voucher document (vouchers-documents)
            promoted.append(voucher)
    session.flush()
    if report:
        report_to_intake(session, promoted)
    return promoted


# --- vouchers' state told to intake --------------------------------------------------------

INTAKE_VOUCHER_STATUS = "intake.voucher_status"


def plan_voucher_ref(source: str, plan_ref: str, profile: str) -> str:
    """A care plan's voucher for one profile: ``<source>:<the source_ref intake sent>:<profile>``."""
    return f"{source}:{plan_ref}:{profile}"


def _plan_of(voucher: Voucher) -> tuple[str, str] | None:
    """(source, the source_ref intake sent) of a care plan's voucher; None for an operator's."""
    if voucher.source_ref is None:
        return None
    return voucher.source, voucher.source_ref.removeprefix(f"{voucher.source}:").rsplit(":", 1)[0]


def report_to_intake(session: Session, vouchers: Iterable[Voucher]) -> None:
    """Tell intake, through the outbox, the state of the care plans these vouchers belong to.

    One message per plan with all its vouchers: ``granted`` when all are reserved (or some
    already closed), ``waiting_list`` while one waits, with its best rank on the comune's
    list, ``closed`` when all are closed or cancelled.
    """
    plans = {plan for plan in map(_plan_of, vouchers) if plan is not None}
    for source, plan_ref in sorted(plans):
        refs = [plan_voucher_ref(source, plan_ref, profile) for profile in PROFILES]
        members = session.scalars(select(Voucher).where(Voucher.source_ref.in_(refs))
                                  .order_by(Voucher.id)).all()
        ranks = [rank for rank in (waiting_position(session, v) for v in members) if rank is not None]
        if ranks:
            status = "waiting_list"
        else:
            status = "closed" if all(v.status in (CLOSED, CANCELLED) for v in members) else "granted"
        enqueue(session, OutboxMessage, INTAKE_VOUCHER_STATUS, source_ref=plan_ref, status=status,
                vouchers=[{"id": v.id, "profile": v.profile, "value_cents": v.value, "status": v.status}
                          for v in members],
                waiting_position=min(ranks, default=None))


# --- locks and booking ---------------------------------------------------------------------

def _lock_periods(session: Session, ids: Iterable[int]) -> Sequence[Period]:
    wanted = sorted(set(ids))
    rows = session.scalars(select(Period).where(Period.id.in_(wanted)).order_by(Period.id)
                           .with_for_update(key_share=True).execution_options(populate_existing=True)).all()
    if len(rows) != len(wanted):
        raise NotFound("Periodo inesistente.")
    return rows


def _lock_budgets(session: Session, ids: Iterable[int]) -> Sequence[Budget]:
    """Lock budget rows in ascending id order and read them as committed."""
    return session.scalars(select(Budget).where(Budget.id.in_(sorted(set(ids)))).order_by(Budget.id)
                           .with_for_update(key_share=True).execution_options(populate_existing=True)).all()


def _ensure_budgets(session: Session, period: Period, comuni: Iterable[str]) -> dict[str, Budget]:
    """The period's budgets for ``comuni``, created with their accounts if new, locked.

    The caller holds the period's lock, so two transactions never create the same budget.
    """
    comuni = sorted(set(comuni))
    existing = {b.comune: b for b in session.scalars(select(Budget).where(
        Budget.period_id == period.id, Budget.comune.in_(comuni)))}
    for comune in comuni:
        if comune not in existing:
            budget = Budget(period_id=period.id, comune=comune, allocated=0, reserved=0, posted=0)
            session.add(budget)
            session.flush()
            session.add_all(LedgerAccount(period_id=period.id, comune=comune, kind=kind, budget_id=budget.id)
                            for kind in (ACCOUNT_AVAILABLE, ACCOUNT_RESERVED, ACCOUNT_SPENT))
            existing[comune] = budget
    session.flush()
    locked = {b.id: b for b in _lock_budgets(session, [b.id for b in existing.values()])}
    return {comune: locked[budget.id] for comune, budget in existing.items()}


def _account(session: Session, period_id: int, comune: str, kind: str) -> LedgerAccount:
    account = session.scalar(select(LedgerAccount).where(
        LedgerAccount.period_id == period_id, LedgerAccount.comune == comune, LedgerAccount.kind == kind))
    if account is None:
        raise NotFound(f"Conto inesistente: {kind} {comune}.")
    return account


def _budget_accounts(session: Session, budget_id: int) -> dict[str, LedgerAccount]:
    """A comune's three accounts in a period (available, reserved, spent), in one query."""
    accounts = session.scalars(select(LedgerAccount).where(LedgerAccount.budget_id == budget_id))
    return {account.kind: account for account in accounts}


def _book(session: Session, kind: str, actor: str, memo: str,
          entries: Sequence[tuple[LedgerAccount, int]], *, reservation_id: int | None = None,
          reversal_of_id: int | None = None) -> LedgerJournal:
    """Write a balanced journal and move the (locked) budget and period totals with it.

    Nothing is flushed until the end, so each row's new totals reach the database in
    one UPDATE that its CHECK constraints judge whole. The totals follow from the
    entries alone: a comune's allocation is the sum of its three accounts, its reserved
    and posted money are two of them, the period's allocation the sum of its comuni's,
    and income is the money received.
    """
    if sum(amount for _, amount in entries) != 0:
        raise ValueError(f"unbalanced journal {kind}: {entries}")
    journal = LedgerJournal(kind=kind, actor=actor, memo=memo[:500], reservation_id=reservation_id,
                            reversal_of_id=reversal_of_id)
    session.add(journal)
    allocated: dict[int, int] = {}  # per period; a reservation moves none, so its period is not touched
    received: dict[int, int] = {}
    with session.no_autoflush:  # rows locked by the caller may be read again: never flush half a move
        for account, amount in entries:
            if amount == 0:
                continue
            journal.entries.append(LedgerEntry(account_id=account.id, amount=amount))
            if account.budget_id is not None:
                budget = session.get(Budget, account.budget_id)
                assert budget is not None
                budget.allocated += amount
                allocated[account.period_id] = allocated.get(account.period_id, 0) + amount
                if account.kind == ACCOUNT_RESERVED:
                    budget.reserved += amount
                elif account.kind == ACCOUNT_SPENT:
                    budget.posted += amount
            elif account.kind == ACCOUNT_INCOME:
                received[account.period_id] = received.get(account.period_id, 0) - amount
        for period_id in {p for p, delta in [*allocated.items(), *received.items()] if delta}:
            period = session.get(Period, period_id)
            assert period is not None
            period.allocated += allocated.get(period_id, 0)
            period.amount_received += received.get(period_id, 0)
    session.flush()
    return journal


def _positive(amount: int) -> None:
    if not isinstance(amount, int) or amount <= 0:
        raise InvalidInput("L'importo deve essere positivo (in centesimi).",
                           errors={"amount": ["Deve essere un intero positivo."]})
