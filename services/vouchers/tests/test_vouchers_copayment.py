"""One co-payment rule: an operator's voucher is valued by the comune's hourly co-payment
(ambito_common.copayment, data/ambiti/<ambito>/copayment.json), not by a rule of the fund."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from ambito_common.errors import InvalidInput, NotFound
from vouchers import services

PERIOD = "2026"


def _voucher(client, headers, comune: str, isee: int | None, ref: str = "CS-1"):  # type: ignore[no-untyped-def]
    response = client.post("/api/vouchers/vouchers", headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                           json={"fund": "fnps", "period": PERIOD, "comune": comune, "beneficiary_ref": ref,
                                 "beneficiary_name": "Beneficiario", "isee": isee, "provider": "Il Sentiero",
                                 "profile": "ASA", "hours_per_week": 200, "weeks": 10})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.mark.parametrize(("comune", "isee", "hourly"), [
    ("clusone", 1_650_000, 934),  # Clusone's linear scale (example values), halfway
    ("clusone", None, 1868),  # no valid ISEE: Clusone's maximum
    ("gromo", 950_000, 1000),  # the default bands
    ("gromo", None, 1900),  # the default maximum
])
def test_vouchers_operator_voucher_uses_the_comune_rule(vouchers_client, vouchers_auth, comune, isee, hourly):
    voucher = _voucher(vouchers_client, vouchers_auth(), comune, isee)
    # 20 h at 22,50 €/h (ASA), less what the family pays the provider each hour.
    assert (voucher["copayment_hourly"], voucher["value"]) == (hourly, 20 * (2250 - hourly))


def test_vouchers_without_isee_rank_last_on_the_waiting_list(vouchers_client, vouchers_auth,
                                                             vouchers_runtime):
    admin = vouchers_auth()
    rows = vouchers_client.get(f"/api/vouchers/budgets?fund=fnps&period={PERIOD}", headers=admin).get_json()
    available = next(r["available"] for r in rows if r["comune"] == "azzone")
    vouchers_client.post("/api/vouchers/reservations", headers={**admin, "Idempotency-Key": "hog"}, json={
        "fund": "fnps", "period": PERIOD, "comune": "azzone", "amount": available, "reference": "tutto"})
    no_isee = _voucher(vouchers_client, admin, "azzone", None, "A")
    richer = _voucher(vouchers_client, admin, "azzone", 1_900_000, "B")
    assert no_isee["status"] == richer["status"] == "waiting"
    with vouchers_runtime.session_factory() as session:
        budget = services.find_budget(session, fund_code="fnps", period_code=PERIOD, comune="azzone")
        assert [v.id for v in services.waiting_list(session, budget.id)] == [richer["id"], no_isee["id"]]


def test_vouchers_funds_have_no_copayment_rule_any_more(vouchers_runtime):
    day = dt.date(2026, 11, 21)
    with vouchers_runtime.session_factory() as session:
        assert services.rule_in_force(session, fund_code="fnps", kind="hourly_tariff", on=day)
        with pytest.raises(NotFound):
            services.rule_in_force(session, fund_code="fnps", kind="copayment_bands", on=day)
        with pytest.raises(InvalidInput):  # and none can be added
            services.add_rule(session, fund_code="fnps", kind="copayment_bands", params={}, valid_from=day)
