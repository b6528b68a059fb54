"""Vouchers: valued by the fund's tariff less the comune's hourly co-payment, reserved or put on the
waiting list, promoted in order, hours posted month by month (also from CSV, all rows or none),
closing releases the rest."""

from __future__ import annotations

import datetime as dt

import pytest
from ambito_common.copayment import load_rules
from ambito_common.errors import Conflict, InvalidInput
from sqlalchemy import func, select
from vouchers import issuing, services
from vouchers.models import VoucherMonth

from .conftest import DATA_DIR

NOW = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)
COMUNE = "onore"  # the default rule (example values): ISEE up to 3,000 € pays nothing, up to 8,000 €
RULES = load_rules(DATA_DIR)  # 5.00 €/h, up to 14,000 € 10.00 €/h, up to 20,000 € 15.00 €/h


def _request(isee_euro: int, hours_per_week: int, weeks: int = 10, profile: str = "ASA",
             ref: str = "X") -> issuing.VoucherRequest:
    return issuing.operator_request({
        "fund": "fnps", "period": "wl", "comune": COMUNE, "beneficiary_ref": ref,
        "beneficiary_name": f"Beneficiario {ref}", "isee": isee_euro * 100,
        "provider": "Cooperativa Sociale Il Sentiero", "profile": profile, "hours_per_week": hours_per_week,
        "weeks": weeks}, RULES, NOW.date())


@pytest.fixture
def vouchers_session(vouchers_runtime):
    with vouchers_runtime.session_factory() as session:
        period = services.create_period(session, fund_code="fnps", code="wl", start=dt.date(2026, 1, 1),
                                        end=dt.date(2026, 12, 31), amount_received=100_000, actor="admin")
        services.allocate(session, period_id=period.id, amounts={COMUNE: 50_000}, actor="admin")
        session.commit()
        yield session


def _issue(session, request, minutes: int):  # type: ignore[no-untyped-def]
    voucher = issuing.issue_voucher(session, request, actor="op", now=NOW + dt.timedelta(minutes=minutes))
    session.commit()
    return voucher


def _budget(session):  # type: ignore[no-untyped-def]
    session.expire_all()
    return services.find_budget(session, fund_code="fnps", period_code="wl", comune=COMUNE)


def test_vouchers_value_follows_tariff_and_copayment_rules(vouchers_session):
    # 2 h a week for 10 weeks at 22.50 €/h (ASA) less 10.00 €/h paid by the family (ISEE 10,000 €): 250.00 €.
    voucher = _issue(vouchers_session, _request(10_000, 200), 0)
    assert (voucher.tariff, voucher.copayment_hourly, voucher.value) == (2250, 1000, 25_000)
    assert voucher.status == "active" and voucher.reservation.amount == 25_000
    oss = _issue(vouchers_session, _request(20_000, 100, weeks=1, profile="OSS", ref="Y"), 1)
    assert (oss.tariff, oss.copayment_hourly, oss.value) == (2480, 1500, 980)
    assert issuing.amount_for_hours(150, 2250, 450) == 2_700
    assert issuing.amount_for_hours(1, 2250, 0) == 23  # 22.5 cents, half up
    assert issuing.amount_for_hours(100, 2250, 3000) == 0  # a share above the tariff: the fund pays nothing
    with pytest.raises(InvalidInput):  # ... and such a voucher is refused
        issuing.issue_voucher(vouchers_session, issuing.VoucherRequest(**{
            **_request(1, 100).__dict__, "copayment_hourly": 2250}), actor="op", now=NOW)
    with pytest.raises(InvalidInput):
        issuing.issue_voucher(vouchers_session, _request(1, 100, profile="XYZ"), actor="op", now=NOW)


def test_vouchers_waiting_list_ranks_by_isee_then_time_and_promotes_in_order(vouchers_session):
    session = vouchers_session
    first = _issue(session, _request(10_000, 300, ref="A"), 0)          # 375.00 € reserved, 125.00 € left
    costly = _issue(session, _request(12_000, 200, ref="B"), 1)         # 250.00 €: waits
    poorer = _issue(session, _request(3_000, 100, weeks=8, ref="C"), 2)  # 180.00 €, lower ISEE: waits first
    small = _issue(session, _request(3_000, 50, weeks=4, ref="D"), 3)    # 45.00 € would fit, but C is ahead
    assert first.status == "active"
    assert [v.beneficiary_ref for v in services.waiting_list(session, first.budget_id)] == ["C", "D", "B"]
    assert _budget(session).available == 12_500

    hours = issuing.record_hours(session, voucher_id=first.id, month="2026-11", hours=500, actor="op",
                                 now=NOW)
    session.commit()
    assert hours.amount == 6_250
    with pytest.raises(Conflict):
        issuing.record_hours(session, voucher_id=first.id, month="2026-11", hours=100, actor="op", now=NOW)
    session.rollback()

    issuing.close_voucher(session, voucher_id=first.id, actor="op", now=NOW)  # frees 312.50 €
    session.commit()
    session.expire_all()
    assert (poorer.status, small.status, costly.status) == ("active", "active", "waiting")
    budget = _budget(session)
    assert (budget.posted, budget.reserved, budget.available) == (6_250, 18_000 + 4_500, 21_250)
    assert first.reservation.status == "partially_posted"

    services.allocate(session, period_id=budget.period_id, amounts={COMUNE: 10_000}, actor="admin")
    session.commit()
    session.expire_all()
    assert costly.status == "active"
    assert services.waiting_list(session, first.budget_id) == []
    assert 0 <= _budget(session).available == 6_250


def test_vouchers_closing_a_waiting_voucher_cancels_it(vouchers_session):
    big = _issue(vouchers_session, _request(1_000, 1000, weeks=10), 0)  # 2,250.00 €: never fits
    assert big.status == "waiting"
    closed = issuing.close_voucher(vouchers_session, voucher_id=big.id, actor="op", now=NOW)
    assert closed.status == "cancelled"


def test_vouchers_intake_care_plans_issue_once(vouchers_session):
    one = issuing.issue_voucher(vouchers_session, _request(5_000, 100), actor="intake", now=NOW,
                                source="intake", source_ref="care_plan:7")
    again = issuing.issue_voucher(vouchers_session, _request(5_000, 100), actor="intake", now=NOW,
                                  source="intake", source_ref="care_plan:7")
    assert one.id == again.id
    assert _budget(vouchers_session).reserved == one.value


def test_vouchers_csv_import_reports_bad_rows_and_imports_none(vouchers_session):
    session = vouchers_session
    a = _issue(session, _request(10_000, 100, ref="A"), 0)  # 125.00 €: 10 h at 12.50 €/h
    b = _issue(session, _request(3_000, 100, ref="B"), 1)   # 225.00 €
    broken = "\n".join([
        "buono;mese;ore",
        f"{a.id};2026-10;4,5",          # fine
        f"{a.id};2026-13;1",            # bad month
        "999;2026-10;1",                # unknown voucher
        f"{b.id};2026-10;abc",          # bad hours
        f"{a.id};2026-10;1",            # same month twice in the file
        f"{b.id};2026-11;10,5",         # 236.25 €, more than the 225.00 € reserved
        f"{b.id};2026-12",              # missing column
    ])
    with pytest.raises(InvalidInput) as refused:
        issuing.import_hours_csv(session, data=broken, actor="op", now=NOW)
    session.rollback()
    assert set(refused.value.errors) == {f"riga {n}" for n in range(3, 9)}
    assert "nessuna riga importata" in refused.value.detail
    assert session.scalar(select(func.count()).select_from(VoucherMonth)) == 0
    assert _budget(session).posted == 0

    good = "\ufeffbuono;mese;ore\n" + f"{a.id};2026-10;4,5\n{a.id};2026-11;5\n{b.id};2026-10;10\n\n"
    imported = issuing.import_hours_csv(session, data=good, actor="op", now=NOW)
    session.commit()
    assert [row.amount for row in imported] == [5_625, 6_250, 22_500]
    assert _budget(session).posted == 34_375
    with pytest.raises(InvalidInput):
        issuing.import_hours_csv(session, data="voucher,month,hours\n1,2026-10,1", actor="op", now=NOW)


def test_vouchers_comune_limit_on_csv(vouchers_session):
    a = _issue(vouchers_session, _request(10_000, 100), 0)
    with pytest.raises(InvalidInput) as refused:
        issuing.import_hours_csv(vouchers_session, data=f"buono;mese;ore\n{a.id};2026-10;1", actor="op",
                                 now=NOW, comune="clusone")
    assert "inesistente" in refused.value.errors["riga 2"][0]
