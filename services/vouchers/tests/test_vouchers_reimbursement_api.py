"""Reimbursements through HTTP: a comune files, the Ambito plans and applies a pro-rata, then pays."""

from __future__ import annotations

import uuid

from ambito_common.identity import COMUNE_OPERATOR

FUND, PERIOD = "residenzialita", "2026"  # 180,000.00 € received in the demo, none allocated


def _post(client, headers, path: str, body: dict | None = None):  # type: ignore[no-untyped-def]
    return client.post(path, json=body or {}, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})


def _request(comune: str, asked: int) -> dict:
    return {"fund": FUND, "period": PERIOD, "comune": comune, "lines": [
        {"beneficiary_ref": "CS-9", "service": "RSA Don Stefano Palla, Piario", "service_period": "2026",
         "amount_paid": asked + 1000, "amount_asked": asked}]}


def test_vouchers_reimbursement_flow_with_pro_rata(vouchers_client, vouchers_auth):
    admin = vouchers_auth()
    clusone, rovetta = vouchers_auth(COMUNE_OPERATOR, "clusone"), vouchers_auth(COMUNE_OPERATOR, "rovetta")
    assert _post(vouchers_client, clusone, "/api/vouchers/reimbursements",
                 _request("rovetta", 100)).status_code == 403
    first = _post(vouchers_client, clusone, "/api/vouchers/reimbursements", _request("clusone", 12_000_000))
    assert first.status_code == 201 and first.get_json()["status"] == "filed"
    second = _post(vouchers_client, rovetta, "/api/vouchers/reimbursements", _request("rovetta", 12_000_001))
    assert _post(vouchers_client, clusone, f"/api/vouchers/reimbursements/{first.get_json()['id']}/decision",
                 {"outcome": "approve"}).status_code == 403

    plan = vouchers_client.get(f"/api/vouchers/reimbursements/pro-rata?fund={FUND}&period={PERIOD}",
                               headers=admin).get_json()
    assert plan["available"] == 18_000_000 and plan["asked"] == 24_000_001
    assert sum(item["granted"] for item in plan["requests"]) == 18_000_000

    applied = _post(vouchers_client, admin, "/api/vouchers/reimbursements/pro-rata",
                    {"fund": FUND, "period": PERIOD})
    assert applied.status_code == 200, applied.get_json()
    decided = applied.get_json()["decided"]
    assert [d["approved"] for d in decided] == [item["granted"] for item in plan["requests"]]
    assert {d["status"] for d in decided} == {"partially_approved"}

    paid = _post(vouchers_client, admin, f"/api/vouchers/reimbursements/{second.get_json()['id']}/payment",
                 {"payment_ref": "Mandato 456 del 21/11/2026"})
    assert paid.get_json()["status"] == "paid"
    again = _post(vouchers_client, admin, f"/api/vouchers/reimbursements/{first.get_json()['id']}/decision",
                  {"outcome": "reject", "reason": "tardi"})
    assert again.status_code == 409
