"""100 concurrent clients trying to overspend one comune's budget, on PostgreSQL and on SQLite.

Each client is a thread with its own session; all start together at a barrier and
reserve, then post in part, void or leave their reservation. However they
interleave, the budget must end at or under its allocation, and its running totals
must agree with the reservations and with the ledger.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from ambito_common.db import make_engine, make_session_factory, utcnow
from ambito_common.testing import fresh_postgres_database
from sqlalchemy import func, pool, select
from sqlalchemy.orm import Session, sessionmaker
from vouchers import services
from vouchers.models import Budget, LedgerAccount, LedgerEntry, Reservation

CLIENTS = 100
FUND, PERIOD, COMUNE = "fna-b2", "2026-2027", "azzone"


def _client(factory: sessionmaker[Session], seed: int, allocated: int, barrier: threading.Barrier,
            outcome: Callable[[str], None]) -> None:
    rng = random.Random(seed)
    # Together the clients ask for about three times the budget.
    amount = rng.randint(1, allocated * 6 // CLIENTS)
    with factory() as session:
        barrier.wait()
        try:
            reservation = services.run_transaction(session, lambda: services.reserve(
                session, fund_code=FUND, period_code=PERIOD, comune=COMUNE, amount=amount,
                reference=f"client {seed}", actor=f"client-{seed}"))
        except services.OverBudget:
            outcome("over_budget")
            return
        outcome("reserved")
        choice = rng.choice(["post", "post_part", "void", "keep"])
        if choice == "keep":
            return
        if choice == "void":
            services.run_transaction(session, lambda: services.void(
                session, reservation_id=reservation.id, actor="client", now=utcnow()))
        else:
            spent = amount if choice == "post" else rng.randint(0, amount)
            services.run_transaction(session, lambda: services.post(
                session, reservation_id=reservation.id, amount=spent, actor="client", now=utcnow()))
        outcome(choice)


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
        assert balances["reserved"] == budget.reserved
        assert balances.get("spent", 0) == budget.posted
        assert balances["available"] == budget.available
        assert session.scalar(select(func.sum(LedgerEntry.amount))) == 0


def _overspend(factory: sessionmaker[Session]) -> Counter[str]:
    with factory() as session:
        budget = services.find_budget(session, fund_code=FUND, period_code=PERIOD, comune=COMUNE)
        budget_id, allocated = budget.id, budget.allocated
    barrier = threading.Barrier(CLIENTS)
    outcomes: Counter[str] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def outcome(name: str) -> None:
        with lock:
            outcomes[name] += 1

    def run(seed: int) -> None:
        try:
            _client(factory, seed, allocated, barrier, outcome)
        except BaseException as exc:  # reported below, with its thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert outcomes["reserved"] + outcomes["over_budget"] == CLIENTS
    assert outcomes["over_budget"] > 0, "the clients never ran out of budget: no contention tested"
    _check_books(factory, budget_id, allocated)
    return outcomes


@pytest.mark.timeout(300)
def test_vouchers_100_clients_cannot_overspend_on_sqlite(vouchers_make_runtime):
    url = vouchers_make_runtime().settings.database_url
    # Each client its own connection (no pool): SQLite serialises them with BEGIN IMMEDIATE.
    factory = make_session_factory(make_engine(url, poolclass=pool.NullPool))
    _overspend(factory)


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_vouchers_100_clients_cannot_overspend_on_postgres(vouchers_make_runtime):
    with fresh_postgres_database("vouchers") as url:
        vouchers_make_runtime(VOUCHERS_DATABASE_URL=url).session_factory.kw["bind"].dispose()
        # 100 threads, each its own session; connections are capped at 40 because this server
        # allows 100 in all, so clients also queue for a connection, as behind a real pool.
        engine = make_engine(url, pool_size=40, max_overflow=0, pool_timeout=120)
        try:
            _overspend(make_session_factory(engine))
        finally:
            engine.dispose()
