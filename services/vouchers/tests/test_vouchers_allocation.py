"""Allocation to comuni (by hand, by formula), re-allocation, carry-over, reversal, rules, immutability."""

from __future__ import annotations

import datetime as dt

import pytest
from ambito_common.errors import Conflict, InvalidInput, NotFound
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from vouchers import services
from vouchers.models import Budget, LedgerJournal, Period

weights = st.dictionaries(st.text("abcdefgh", min_size=1, max_size=6), st.integers(0, 10**6),
                          min_size=1, max_size=30).filter(lambda w: sum(w.values()) > 0)


@settings(max_examples=300, deadline=None)
@given(total=st.integers(0, 10**12), weights=weights)
def test_vouchers_largest_remainder_sums_exactly(total, weights):
    shares = services.largest_remainder(total, weights)
    assert sum(shares.values()) == total
    weight_sum = sum(weights.values())
    for key, share in shares.items():
        exact = total * weights[key] / weight_sum
        assert abs(share - exact) < 1  # each share is its exact value rounded down or up
        assert share >= 0


@settings(max_examples=200, deadline=None)
@given(total=st.integers(0, 10**10), base=st.integers(0, 10**6),
       populations=st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(1, 10**5),
                                   min_size=1))
def test_vouchers_formula_with_a_fixed_base_sums_exactly(total, base, populations):
    if base * len(populations) > total:
        with pytest.raises(InvalidInput):
            services.formula_shares(total, populations, base)
        return
    shares = services.formula_shares(total, populations, base)
    assert sum(shares.values()) == total
    assert all(share >= base for share in shares.values())


@settings(max_examples=200, deadline=None)
@given(available=st.integers(0, 10**9), asked=weights)
def test_vouchers_pro_rata_sums_exactly_and_never_exceeds_the_request(available, asked):
    shares = services.pro_rata(available, asked)
    assert sum(shares.values()) == min(available, sum(asked.values()))
    assert all(0 <= shares[key] <= asked[key] for key in asked)


def test_vouchers_largest_remainder_gives_leftover_cents_to_the_largest_remainders():
    # 100 cents in thirds: 33.33 each; the one leftover cent goes to the first key on a tie.
    assert services.largest_remainder(100, {"b": 1, "a": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    # 10 by 1:2:3 is 1.67, 3.33, 5: the largest remainder (0.67) takes the cent.
    assert services.largest_remainder(10, {"x": 1, "y": 2, "z": 3}) == {"x": 2, "y": 3, "z": 5}


def test_vouchers_demo_allocation_uses_base_plus_population(vouchers_runtime):
    with vouchers_runtime.session_factory() as session:
        period = services.get_period(session, "fna-b2", "2026-2027")
        budgets = {b.comune: b.allocated for b in session.scalars(
            select(Budget).where(Budget.period_id == period.id))}
        assert len(budgets) == 24 and sum(budgets.values()) == 45_000_000 == period.allocated
        assert period.unallocated == 0
        assert budgets["clusone"] > budgets["rovetta"] > budgets["oltressenda-alta"] > 200_000


def _new_period(session, code: str, amount: int, start: dt.date = dt.date(2030, 1, 1)) -> Period:
    return services.create_period(session, fund_code="fnps", code=code, start=start,
                                  end=start.replace(year=start.year + 1) - dt.timedelta(days=1),
                                  amount_received=amount, actor="admin")


def test_vouchers_allocation_by_hand_reallocation_and_the_pool(vouchers_runtime):
    with vouchers_runtime.session_factory() as session:
        period = _new_period(session, "p1", 10_000)
        services.allocate(session, period_id=period.id, amounts={"clusone": 6_000, "gromo": 3_000}, actor="a")
        with pytest.raises(Conflict) as over:
            services.allocate(session, period_id=period.id, amounts={"onore": 1_001}, actor="a")
        assert over.value.extra["available"] == 1_000
        services.reallocate(session, period_id=period.id, from_comune="clusone", to_comune="onore",
                            amount=2_500, actor="a")
        services.reserve(session, fund_code="fnps", period_code="p1", comune="gromo", amount=2_000,
                         reference="r", actor="a")
        with pytest.raises(services.OverBudget):  # 1,000 of gromo's 3,000 is free
            services.allocate(session, period_id=period.id, amounts={"gromo": -1_001}, actor="a")
        services.allocate(session, period_id=period.id, amounts={"gromo": -1_000}, actor="a")
        session.commit()
        rows = {r["comune"]: r for r in services.budget_rows(
            session, fund_code="fnps", period_code="p1",
            comuni=[{"code": c} for c in ("clusone", "gromo", "onore")])}
        allocated = {c: r["allocated"] for c, r in rows.items()}
        assert allocated == {"clusone": 3_500, "gromo": 2_000, "onore": 2_500}
        assert rows["gromo"]["available"] == 0
        assert session.get(Period, period.id).unallocated == 2_000


def test_vouchers_carry_over_moves_unspent_money_into_the_next_period(vouchers_runtime):
    with vouchers_runtime.session_factory() as session:
        first = _new_period(session, "p1", 10_000)
        second = _new_period(session, "p2", 0, start=dt.date(2031, 1, 1))
        services.allocate(session, period_id=first.id, amounts={"cerete": 10_000}, actor="a")
        reservation = services.reserve(session, fund_code="fnps", period_code="p1", comune="cerete",
                                       amount=4_000, reference="r", actor="a")
        services.post(session, reservation_id=reservation.id, amount=3_000, actor="a",
                      now=services_now())
        with pytest.raises(InvalidInput):  # only forward
            services.carry_over(session, from_period_id=second.id, to_period_id=first.id, comune="cerete",
                                amount=None, actor="a")
        journal = services.carry_over(session, from_period_id=first.id, to_period_id=second.id,
                                      comune="cerete", amount=None, actor="a")
        session.commit()
        assert [e.amount for e in journal.entries] == [-7_000, 7_000]
        old = services.find_budget(session, fund_code="fnps", period_code="p1", comune="cerete")
        new = services.find_budget(session, fund_code="fnps", period_code="p2", comune="cerete")
        assert (old.allocated, old.posted, old.available) == (3_000, 3_000, 0)
        assert (new.allocated, new.available) == (7_000, 7_000)
        first, second = session.get(Period, first.id), session.get(Period, second.id)
        assert (first.carried_out, first.unallocated) == (7_000, 0)
        assert (second.carried_in, second.unallocated) == (7_000, 0)
        with pytest.raises(Conflict):
            services.reverse(session, journal_id=journal.id, actor="a", reason="no")


def services_now() -> dt.datetime:
    return dt.datetime(2030, 3, 1, tzinfo=dt.UTC)


def test_vouchers_corrections_are_reversals_and_entries_are_immutable(vouchers_runtime):
    with vouchers_runtime.session_factory() as session:
        period = _new_period(session, "p1", 10_000)
        journal = services.allocate(session, period_id=period.id, amounts={"colere": 4_000}, actor="a")
        reversal = services.reverse(session, journal_id=journal.id, actor="b", reason="importo errato")
        session.commit()
        assert [e.amount for e in reversal.entries] == [-e.amount for e in journal.entries]
        assert reversal.reversal_of_id == journal.id and reversal.actor == "b"
        colere = services.find_budget(session, fund_code="fnps", period_code="p1", comune="colere")
        assert colere.allocated == 0
        with pytest.raises(Conflict):
            services.reverse(session, journal_id=journal.id, actor="b", reason="again")
        with pytest.raises(NotFound):
            services.reverse(session, journal_id=10**6, actor="b", reason="none")
        session.rollback()
        for statement in ("UPDATE ledger_entries SET amount = amount + 1",
                          "DELETE FROM ledger_entries", "UPDATE ledger_journals SET actor = 'x'",
                          "DELETE FROM ledger_journals"):
            with pytest.raises(DBAPIError, match="immutable"):
                session.execute(text(statement))
            session.rollback()
        assert session.scalar(select(LedgerJournal).where(LedgerJournal.id == journal.id)).actor == "a"


def test_vouchers_the_database_refuses_an_overspent_budget_row(vouchers_runtime):
    """The CHECK behind the locks: even a direct UPDATE cannot commit posted + reserved > allocated."""
    with vouchers_runtime.session_factory() as session:
        with pytest.raises(DBAPIError):
            session.execute(text("UPDATE budgets SET reserved = allocated + 1 - posted"))
        session.rollback()


def test_vouchers_rules_in_force_by_date_and_populations_as_data(vouchers_runtime):
    with vouchers_runtime.session_factory() as session:
        cap = services.rule_in_force(session, fund_code="fna-b2", kind="isee_cap", on=dt.date(2026, 11, 21))
        assert cap.params["isee_sociosanitario"] == 2_500_000
        services.add_rule(session, fund_code="fna-b2", kind="isee_cap",
                          params={"isee_sociosanitario": 3_000_000}, valid_from=dt.date(2027, 6, 1),
                          valid_to=dt.date(2028, 5, 31))
        assert services.rule_in_force(session, fund_code="fna-b2", kind="isee_cap",
                                      on=dt.date(2027, 7, 1)).params["isee_sociosanitario"] == 3_000_000
        assert services.rule_in_force(session, fund_code="fna-b2", kind="isee_cap",
                                      on=dt.date(2027, 5, 31)).params["isee_sociosanitario"] == 2_500_000
        with pytest.raises(NotFound):
            services.rule_in_force(session, fund_code="fna-b2", kind="isee_cap", on=dt.date(2020, 1, 1))

        services.set_population(session, comune="azzone", population=10_000, as_of=dt.date(2026, 1, 1),
                                actor="admin")
        period = _new_period(session, "p1", 100_000)
        services.allocate_by_formula(session, period_id=period.id, total=100_000, base_per_comune=10_000,
                                     comuni=["azzone", "clusone"], actor="admin")
        azzone = services.find_budget(session, fund_code="fnps", period_code="p1", comune="azzone")
        clusone = services.find_budget(session, fund_code="fnps", period_code="p1", comune="clusone")
        # 80,000 shared 10,000 : 8,800 after 10,000 each.
        assert (azzone.allocated, clusone.allocated) == (10_000 + 42_553, 10_000 + 37_447)
        with pytest.raises(InvalidInput, match="nowhere"):
            services.allocate_by_formula(session, period_id=period.id, total=1, comuni=["nowhere"],
                                         actor="admin")
