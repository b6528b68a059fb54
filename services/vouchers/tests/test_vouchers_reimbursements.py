"""Reimbursement requests of comuni: approve wholly or partly, reject with a reason, pro-rata to the cent."""

from __future__ import annotations

import datetime as dt

import pytest
from ambito_common.errors import Conflict, InvalidInput
from sqlalchemy import func, select
from vouchers import reimbursements, services
from vouchers.models import LedgerEntry, Period

NOW = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)
FUND, PERIOD = "residenzialita", "rp"


def _line(asked: int, paid: int | None = None, ref: str = "CS-1") -> dict:
    return {"beneficiary_ref": ref, "service": "RSA Sant'Andrea, Clusone",
            "service_period": "2026-01/2026-06", "amount_paid": paid or asked, "amount_asked": asked}


def _file(session, comune: str, *asked: int):  # type: ignore[no-untyped-def]
    return reimbursements.file_request(session, fund_code=FUND, period_code=PERIOD, comune=comune,
                                       lines=[_line(a, ref=f"CS-{i}") for i, a in enumerate(asked)],
                                       actor=f"op-{comune}", now=NOW)


@pytest.fixture
def vouchers_session(vouchers_runtime):
    with vouchers_runtime.session_factory() as session:
        services.create_period(session, fund_code=FUND, code=PERIOD, start=dt.date(2026, 1, 1),
                               end=dt.date(2026, 12, 31), amount_received=100_000, actor="admin")
        session.commit()
        yield session


def _period(session) -> Period:  # type: ignore[no-untyped-def]
    session.expire_all()
    return services.get_period(session, FUND, PERIOD)


def test_vouchers_pro_rata_shares_what_is_left_exactly_and_explains_it(vouchers_session):
    session = vouchers_session
    requests = [_file(session, "clusone", 60_000, 20_001), _file(session, "rovetta", 50_000),
                _file(session, "gromo", 10_000, 10_000, 10_000)]
    plan = reimbursements.pro_rata_plan(session, fund_code=FUND, period_code=PERIOD)
    assert (plan["available"], plan["asked"], plan["percent"]) == (100_000, 160_001, 62.5)
    assert sum(item["granted"] for item in plan["requests"]) == 100_000
    assert [item["comune"] for item in plan["requests"]] == ["clusone", "rovetta", "gromo"]

    decided = reimbursements.apply_pro_rata(session, fund_code=FUND, period_code=PERIOD, actor="admin",
                                            now=NOW)
    session.commit()
    assert [r.status for r in decided] == ["partially_approved"] * 3
    assert [r.approved_total for r in decided] == [item["granted"] for item in plan["requests"]]
    for request in requests:
        assert sum(line.amount_approved for line in request.lines) == request.approved_total
        assert all(0 <= line.amount_approved <= line.amount_asked for line in request.lines)
        assert "62.50%" in request.decision_reason
    assert _period(session).unallocated == 0
    posted = {c: services.find_budget(session, fund_code=FUND, period_code=PERIOD, comune=c).posted
              for c in ("clusone", "rovetta", "gromo")}
    assert posted == {r.comune: r.approved_total for r in requests}
    assert session.scalar(select(func.sum(LedgerEntry.amount))) == 0
    with pytest.raises(Conflict):
        reimbursements.apply_pro_rata(session, fund_code=FUND, period_code=PERIOD, actor="admin", now=NOW)


def test_vouchers_approve_wholly_partly_reject_and_pay(vouchers_session):
    session = vouchers_session
    whole = _file(session, "cerete", 30_000)
    part = _file(session, "onore", 20_000, 10_000)
    refused = _file(session, "colere", 5_000)
    too_big = _file(session, "azzone", 90_000)

    assert reimbursements.approve(session, request_id=whole.id, approved=None, actor="admin",
                                  now=NOW).status == "approved"
    first_line = part.lines[0].id
    decided = reimbursements.approve(session, request_id=part.id, approved={first_line: 15_000},
                                     actor="admin", now=NOW, reason="Seconda fattura non pertinente")
    assert (decided.status, decided.approved_total) == ("partially_approved", 15_000)
    with pytest.raises(InvalidInput):
        reimbursements.reject(session, request_id=refused.id, reason=" ", actor="admin", now=NOW)
    assert reimbursements.reject(session, request_id=refused.id, reason="Fuori periodo", actor="admin",
                                 now=NOW).status == "rejected"
    session.commit()
    with pytest.raises(Conflict) as short:
        reimbursements.approve(session, request_id=too_big.id, approved=None, actor="admin", now=NOW)
    assert short.value.extra["available"] == 100_000 - 45_000
    session.rollback()
    with pytest.raises(Conflict):
        reimbursements.approve(session, request_id=whole.id, approved=None, actor="admin", now=NOW)

    paid = reimbursements.record_payment(session, request_id=whole.id, payment_ref="Mandato 123/2026",
                                         actor="admin", now=NOW)
    assert paid.status == "paid"
    with pytest.raises(Conflict):
        reimbursements.record_payment(session, request_id=refused.id, payment_ref="x", actor="admin", now=NOW)


def test_vouchers_a_request_asks_no_more_than_was_paid(vouchers_session):
    with pytest.raises(InvalidInput) as refused:
        reimbursements.file_request(vouchers_session, fund_code=FUND, period_code=PERIOD, comune="gorno",
                                    lines=[_line(100), _line(200, paid=150)], actor="op", now=NOW)
    assert list(refused.value.errors) == ["lines.1.amount_asked"]
    with pytest.raises(InvalidInput):
        reimbursements.file_request(vouchers_session, fund_code=FUND, period_code=PERIOD, comune="gorno",
                                    lines=[], actor="op", now=NOW)
