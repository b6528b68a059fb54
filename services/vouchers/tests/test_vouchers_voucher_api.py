"""Vouchers through HTTP: issue, waiting list, monthly hours, CSV import, close, comune limits."""

from __future__ import annotations

import datetime as dt

from ambito_common.db import session_scope
from ambito_common.identity import COMUNE_OPERATOR
from vouchers import services

from .conftest import vouchers_write as _write

PERIOD = "2026"  # fnps runs by calendar year; the demo data is loaded as of 21/11/2026


def _voucher(comune: str = "songavazzo", **overrides) -> dict:
    body = {"fund": "fnps", "period": PERIOD, "comune": comune, "beneficiary_ref": "CS-2026-001",
            "beneficiary_name": "Maria Bianchi", "isee": 700_000, "provider": "Cooperativa Il Sentiero",
            "profile": "OSS", "hours_per_week": 300, "weeks": 20}
    return body | overrides


def _available(client, auth, comune: str) -> int:
    rows = client.get(f"/api/vouchers/budgets?fund=fnps&period={PERIOD}", headers=auth()).get_json()
    return next(r for r in rows if r["comune"] == comune)["available"]


def test_vouchers_issue_post_hours_and_close_through_the_api(vouchers_client, vouchers_auth):
    operator = vouchers_auth(COMUNE_OPERATOR, "songavazzo")
    before = _available(vouchers_client, vouchers_auth, "songavazzo")
    created = _write(vouchers_client, operator, "/api/vouchers/vouchers", json=_voucher())
    assert created.status_code == 201, created.get_json()
    voucher = created.get_json()
    # 3 h a week x 20 weeks x (24.80 €/h (OSS) - 5.00 €/h that the family pays, the default rule's
    # band for an ISEE of 7,000 €): 1,188.00 €.
    assert (voucher["status"], voucher["tariff"], voucher["copayment_hourly"], voucher["value"]) == (
        "active", 2480, 500, 118_800)
    assert _available(vouchers_client, vouchers_auth, "songavazzo") == before - 118_800

    hours = _write(vouchers_client, operator, f"/api/vouchers/vouchers/{voucher['id']}/hours",
                   json={"month": "2026-11", "hours": 1250})
    assert hours.status_code == 201
    assert hours.get_json() == {"voucher_id": voucher["id"], "month": "2026-11", "hours": 1250,
                                "amount": 24_750}
    again = _write(vouchers_client, operator, f"/api/vouchers/vouchers/{voucher['id']}/hours",
                   json={"month": "2026-11", "hours": 10})
    assert again.status_code == 409

    csv = f"buono;mese;ore\n{voucher['id']};2026-12;12,5\n{voucher['id']};2026-13;1\n"
    refused = _write(vouchers_client, operator, "/api/vouchers/hours/import", data=csv,
                     content_type="text/csv")
    assert refused.status_code == 422
    assert list(refused.get_json()["errors"]) == ["riga 3"]
    imported = _write(vouchers_client, operator, "/api/vouchers/hours/import",
                      data=f"buono;mese;ore\n{voucher['id']};2026-12;12,5\n", content_type="text/csv")
    assert imported.status_code == 201 and imported.get_json()["imported"] == 1

    closed = _write(vouchers_client, operator, f"/api/vouchers/vouchers/{voucher['id']}/close")
    assert closed.get_json()["status"] == "closed"
    assert _available(vouchers_client, vouchers_auth, "songavazzo") == before - 49_500


def test_vouchers_a_short_budget_puts_the_voucher_on_the_waiting_list(vouchers_client, vouchers_auth):
    admin = vouchers_auth()
    available = _available(vouchers_client, vouchers_auth, "azzone")
    hog = _write(vouchers_client, admin, "/api/vouchers/reservations", json={
        "fund": "fnps", "period": PERIOD, "comune": "azzone", "amount": available, "reference": "tutto"})
    waiting = _write(vouchers_client, admin, "/api/vouchers/vouchers", json=_voucher("azzone"))
    assert waiting.status_code == 201
    assert waiting.get_json()["status"] == "waiting" and waiting.get_json()["reservation_id"] is None
    _write(vouchers_client, admin, f"/api/vouchers/reservations/{hog.get_json()['id']}/void")
    promoted = _write(vouchers_client, admin, f"/api/vouchers/vouchers/{waiting.get_json()['id']}/close")
    assert promoted.get_json()["status"] == "closed"  # it had been promoted by the void, then closed


def test_vouchers_operators_touch_only_their_comune_vouchers(vouchers_client, vouchers_auth):
    admin, operator = vouchers_auth(), vouchers_auth(COMUNE_OPERATOR, "clusone")
    assert _write(vouchers_client, operator, "/api/vouchers/vouchers", json=_voucher()).status_code == 403
    other = _write(vouchers_client, admin, "/api/vouchers/vouchers", json=_voucher()).get_json()
    assert _write(vouchers_client, operator, f"/api/vouchers/vouchers/{other['id']}/close").status_code == 403
    assert _write(vouchers_client, operator, f"/api/vouchers/vouchers/{other['id']}/hours",
                  json={"month": "2026-11", "hours": 1}).status_code == 403
    refused = _write(vouchers_client, operator, "/api/vouchers/hours/import",
                     data=f"buono;mese;ore\n{other['id']};2026-11;1\n", content_type="text/csv")
    assert refused.status_code == 422  # another comune's voucher does not exist for this operator
    assert vouchers_client.post("/api/vouchers/vouchers", json=_voucher()).status_code == 401


def test_vouchers_an_operator_token_without_comune_touches_and_sees_no_comune(vouchers_client, vouchers_auth):
    """A comune_operator whose token names no comune is bound to none, never to all of them."""
    admin, stray = vouchers_auth(), vouchers_auth(COMUNE_OPERATOR, None)
    other = _write(vouchers_client, admin, "/api/vouchers/vouchers", json=_voucher()).get_json()
    refused = _write(vouchers_client, stray, "/api/vouchers/hours/import",
                     data=f"buono;mese;ore\n{other['id']};2026-11;1\n", content_type="text/csv")
    assert refused.status_code == 422  # the voucher does not exist for this operator
    imported = _write(vouchers_client, admin, "/api/vouchers/hours/import",
                      data=f"buono;mese;ore\n{other['id']};2026-11;1\n", content_type="text/csv")
    assert imported.status_code == 201  # the same row was importable: refused for the comune alone

    query = f"/api/vouchers/ledger?fund=fnps&period={PERIOD}"
    assert vouchers_client.get(query, headers=admin).get_json()  # there are movements to see...
    assert vouchers_client.get(query, headers=stray).get_json() == []  # ...but none of them for this token
    budgets = vouchers_client.get(f"/api/vouchers/budgets?fund=fnps&period={PERIOD}", headers=stray)
    assert budgets.status_code == 200 and budgets.get_json() == []


def test_vouchers_a_fund_with_an_isee_cap_refuses_isee_over_it_or_missing(vouchers_runtime, vouchers_client,
                                                                          vouchers_auth):
    """fna-b2's cap (ISEE socio-sanitario up to 25.000 €, demo data) applies when a voucher is issued."""
    with session_scope(vouchers_runtime.session_factory) as session:  # the fund's tariff, as data
        services.add_rule(session, fund_code="fna-b2", kind="hourly_tariff", valid_from=dt.date(2025, 6, 1),
                          params={"providers": {"default": {"ASA": 2250, "OSS": 2480}}})
    operator = vouchers_auth(COMUNE_OPERATOR, "songavazzo")
    b2 = {"fund": "fna-b2", "period": "2026-2027"}

    over = _write(vouchers_client, operator, "/api/vouchers/vouchers", json=_voucher(**b2, isee=2_500_001))
    assert over.status_code == 422
    assert over.mimetype == "application/problem+json"
    problem = over.get_json()
    assert "25.000,00 €" in problem["detail"] and "25.000,01 €" in problem["detail"]
    assert problem["errors"]["isee"] == ["L'ISEE non può superare 25.000,00 € per questo fondo."]

    missing = _write(vouchers_client, operator, "/api/vouchers/vouchers", json=_voucher(**b2, isee=None))
    assert missing.status_code == 422
    assert "richiede un ISEE valido" in missing.get_json()["detail"]
    assert "ISEE obbligatorio" in missing.get_json()["errors"]["isee"][0]

    at_cap = _write(vouchers_client, operator, "/api/vouchers/vouchers", json=_voucher(**b2, isee=2_500_000))
    assert at_cap.status_code == 201, at_cap.get_json()
    rows = vouchers_client.get("/api/vouchers/budgets?fund=fna-b2&period=2026-2027",
                               headers=vouchers_auth()).get_json()
    assert next(r for r in rows if r["comune"] == "songavazzo")["reserved"] == at_cap.get_json()["value"]

    # fnps has no cap rule: a high ISEE, or none, is still served (with the highest co-payment).
    for isee in (9_000_000, None):
        created = _write(vouchers_client, operator, "/api/vouchers/vouchers", json=_voucher(isee=isee))
        assert created.status_code == 201, created.get_json()
