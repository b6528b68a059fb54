"""100 concurrent clients trying to overspend one comune's budget, on PostgreSQL and on SQLite.

Each client is a thread with its own session; all start together at a barrier. Most
reserve on the hot comune (some on its neighbour), some with a time-to-live of zero,
then post in full or in part, void or leave their reservation; meanwhile a few clients
expire overdue reservations in a loop and a few move money back and forth between the
two comuni. Each seed gives other amounts, choices and interleavings. However they
interleave, every budget must end at or under its allocation, its running totals must
agree with the reservations and with the ledger, and the re-allocations must have
moved money without creating or losing a cent.
"""

from __future__ import annotations

import functools
import random
import threading
import traceback
from collections import Counter
from dataclasses import dataclass, field

import pytest
from ambito_common.db import make_engine, make_session_factory, utcnow
from ambito_common.errors import Conflict
from sqlalchemy import func, pool, select
from sqlalchemy.orm import Session, sessionmaker
from vouchers import services
from vouchers.models import Budget, LedgerAccount, LedgerEntry, LedgerJournal, Period, Reservation

CLIENTS, EXPIRERS, REALLOCATORS = 100, 4, 6
RESERVERS = CLIENTS - EXPIRERS - REALLOCATORS
FUND, PERIOD, COMUNE, NEIGHBOUR = "fna-b2", "2026-2027", "azzone", "colere"
SQLITE_SEEDS, POSTGRES_SEEDS = (1, 2, 3, 4, 5), (11, 12, 13)


@dataclass
class Run:
    """What the clients saw: outcomes, and the net money each comune received by re-allocation."""

    outcomes: Counter[str] = field(default_factory=Counter)
    moved: Counter[str] = field(default_factory=Counter)
    reservers_done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, outcome: str, moves: dict[str, int] | None = None, count: int = 1) -> None:
        with self.lock:
            self.outcomes[outcome] += count
            self.moved.update(moves or {})


def _reserver(factory: sessionmaker[Session], rng: random.Random, allocated: int, run: Run) -> None:
    # Together the clients ask for about three times the hot budget.
    comune = COMUNE if rng.random() < 0.85 else NEIGHBOUR
    amount = rng.randint(1, allocated * 6 // RESERVERS)
    expires_at = utcnow() if rng.random() < 0.3 else None  # a TTL of zero: overdue at once
    with factory() as session:
        try:
            reservation = services.run_transaction(session, lambda: services.reserve(
                session, fund_code=FUND, period_code=PERIOD, comune=comune, amount=amount,
                reference="client", actor="client", expires_at=expires_at))
        except services.OverBudget:
            run.record("over_budget")
            return
        run.record("reserved")
        choice = rng.choice(["post", "post_part", "void", "keep"])
        if choice == "keep":
            return
        try:
            if choice == "void":
                services.run_transaction(session, lambda: services.void(
                    session, reservation_id=reservation.id, actor="client", now=utcnow()))
            else:
                spent = amount if choice == "post" else rng.randint(0, amount)
                services.run_transaction(session, lambda: services.post(
                    session, reservation_id=reservation.id, amount=spent, actor="client", now=utcnow()))
        except Conflict as closed:  # an expirer was first
            assert closed.extra["reservation_status"] == "expired", closed.detail
            run.record("found_expired")
            return
        run.record(choice)


def _expirer(factory: sessionmaker[Session], rng: random.Random, run: Run) -> None:
    with factory() as session:
        while run.reservers_done < RESERVERS:
            expired = services.run_transaction(session, lambda: services.expire_reservations(
                session, now=utcnow(), actor="expirer"))
            run.record("expired_concurrently", count=expired)
            threading.Event().wait(rng.uniform(0.001, 0.01))


def _reallocator(factory: sessionmaker[Session], rng: random.Random, period_id: int, allocated: int,
                 run: Run) -> None:
    with factory() as session:
        for _ in range(5):
            source, target = rng.sample([COMUNE, NEIGHBOUR], 2)
            amount = rng.randint(1, allocated // 10)
            try:
                services.run_transaction(session, functools.partial(
                    services.reallocate, session, period_id=period_id, from_comune=source, to_comune=target,
                    amount=amount, actor="reallocator"))
            except services.OverBudget:
                run.record("reallocation_refused")
                continue
            run.record("reallocated", {source: -amount, target: amount})


def _check_books(factory: sessionmaker[Session], budget_id: int, allocated: int) -> None:
    with factory() as session:
        budget = session.get(Budget, budget_id)
        assert budget is not None
        assert budget.allocated == allocated
        assert 0 <= budget.posted + budget.reserved <= budget.allocated
        open_amount = session.scalar(select(func.coalesce(func.sum(Reservation.amount), 0)).where(
            Reservation.budget_id == budget_id, Reservation.status == "reserved"))
        posted_amount = session.scalar(select(func.coalesce(func.sum(Reservation.posted_amount), 0)).where(
            Reservation.budget_id == budget_id))
        assert (budget.reserved, budget.posted) == (open_amount, posted_amount)
        balances = dict(session.execute(
            select(LedgerAccount.kind, func.sum(LedgerEntry.amount)).join(LedgerEntry)
            .where(LedgerAccount.budget_id == budget_id).group_by(LedgerAccount.kind)).all())
        assert balances.get("reserved", 0) == budget.reserved
        assert balances.get("spent", 0) == budget.posted
        assert balances["available"] == budget.available
        assert session.scalar(select(func.sum(LedgerEntry.amount))) == 0


def _reallocated(factory: sessionmaker[Session], period_id: int) -> dict[str, int]:
    """Per comune, the net of the re-allocation journals' entries on its accounts, as booked."""
    with factory() as session:
        rows = session.execute(
            select(LedgerAccount.comune, func.sum(LedgerEntry.amount)).join(LedgerEntry).join(LedgerJournal)
            .where(LedgerJournal.kind == services.REALLOCATION, LedgerAccount.period_id == period_id)
            .group_by(LedgerAccount.comune)).all()
    return {comune: int(net) for comune, net in rows}


def _overspend(factory: sessionmaker[Session], seed: int) -> Run:
    with factory() as session:
        budgets = {c: services.find_budget(session, fund_code=FUND, period_code=PERIOD, comune=c)
                   for c in (COMUNE, NEIGHBOUR)}
        before = {c: (b.id, b.allocated) for c, b in budgets.items()}
        period_id = budgets[COMUNE].period_id
        period_allocated = session.get(Period, period_id).allocated
    booked_before = _reallocated(factory, period_id)
    allocated = before[COMUNE][1]
    barrier = threading.Barrier(CLIENTS)
    run = Run()
    errors: list[str] = []

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        try:
            barrier.wait()
            if index < EXPIRERS:
                _expirer(factory, rng, run)
            elif index < EXPIRERS + REALLOCATORS:
                _reallocator(factory, rng, period_id, allocated, run)
            else:
                try:
                    _reserver(factory, rng, allocated, run)
                finally:
                    with run.lock:
                        run.reservers_done += 1
        except BaseException:  # reported below, with where it happened
            errors.append(traceback.format_exc())
            barrier.abort()

    threads = [threading.Thread(target=client, args=(index,)) for index in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, "\n".join(errors)
    assert run.outcomes["reserved"] + run.outcomes["over_budget"] == RESERVERS
    assert run.outcomes["over_budget"] > 0, "the clients never ran out of budget: no contention tested"
    assert run.outcomes["reallocated"] > 0
    for comune, (budget_id, start) in before.items():  # the reference model: start + what was moved
        _check_books(factory, budget_id, start + run.moved[comune])
    with factory() as session:  # the last overdue reservations, then the books again
        swept = services.run_transaction(session, lambda: services.expire_reservations(session, now=utcnow()))
        assert run.outcomes["expired_concurrently"] + swept > 0, "no reservation expired: expiry not tested"
        assert session.get(Period, period_id).allocated == period_allocated  # no cent created or lost
        assert not session.scalar(select(func.count(Reservation.id)).where(
            Reservation.status == "reserved", Reservation.expires_at.is_not(None)))
    for comune, (budget_id, start) in before.items():
        _check_books(factory, budget_id, start + run.moved[comune])
    # The re-allocations as the database booked them: each comune's allocation changed by exactly the
    # net of its re-allocation entries, which is what the clients saw moved, and no cent was created
    # or lost between the comuni.
    booked = _reallocated(factory, period_id)
    net = {c: booked.get(c, 0) - booked_before.get(c, 0) for c in booked.keys() | booked_before.keys()}
    assert {c: net.get(c, 0) for c in before} == {c: run.moved[c] for c in before}
    with factory() as session:
        for comune, (budget_id, start) in before.items():
            assert session.get(Budget, budget_id).allocated - start == net.get(comune, 0)
    assert sum(net.values()) == 0 and set(net) <= set(before)
    return run


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", SQLITE_SEEDS)
def test_vouchers_100_clients_cannot_overspend_on_sqlite(vouchers_make_runtime, seed):
    url = vouchers_make_runtime().settings.database_url
    # Each client its own connection (no pool): SQLite serialises them with BEGIN IMMEDIATE.
    engine = make_engine(url, poolclass=pool.NullPool)
    try:
        _overspend(make_session_factory(engine), seed)
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", POSTGRES_SEEDS)
def test_vouchers_100_clients_cannot_overspend_on_postgres(vouchers_pg_runtime, seed):
    vouchers_pg_runtime.session_factory.kw["bind"].dispose()
    # 100 threads, each its own session; connections are capped at 40 because this server
    # allows 100 in all, so clients also queue for a connection, as behind a real pool.
    engine = make_engine(vouchers_pg_runtime.settings.database_url, pool_size=40, max_overflow=0,
                         pool_timeout=120)
    try:
        _overspend(make_session_factory(engine), seed)
    finally:
        engine.dispose()

