"""The vouchers API through HTTP: funds, budgets, reservations, idempotent replays, role limits."""

from __future__ import annotations

import uuid

import pytest
from ambito_common.identity import AMBITO_ADMIN, COMUNE_OPERATOR, SOCIAL_WORKER
from vouchers.services import OverBudget

B2 = "fna-b2"
B2_PERIOD = "2026-2027"  # the demo data is loaded as of 21/11/2026 (conftest.TODAY)


def _budget(client, auth, comune: str) -> dict:
    rows = client.get(f"/api/vouchers/budgets?fund={B2}&period={B2_PERIOD}", headers=auth()).get_json()
    return next(row for row in rows if row["comune"] == comune)


def _reserve(client, headers, *, amount: int, comune: str = "clusone", key: str | None = None,
             reference: str = "buono 1"):
    return client.post("/api/vouchers/reservations",
                       json={"fund": B2, "period": B2_PERIOD, "comune": comune, "amount": amount,
                             "reference": reference},
                       headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})


def test_funds_list_the_demo_funds_with_their_periods(vouchers_client, vouchers_auth):
    funds = vouchers_client.get("/api/vouchers/funds", headers=vouchers_auth()).get_json()
    b2 = next(f for f in funds if f["code"] == B2)
    assert b2["name"] == "Fondo Non Autosufficienza - misura B2"
    assert b2["periods"] == [{"code": "2026-2027", "start": "2026-06-01", "end": "2027-05-31"}]


def test_demo_budgets_cover_all_24_comuni_and_sum_to_the_received_amount(vouchers_client, vouchers_auth):
    rows = vouchers_client.get(f"/api/vouchers/budgets?fund={B2}&period={B2_PERIOD}",
                               headers=vouchers_auth()).get_json()
    assert len(rows) == 24
    assert all(row["allocated"] > 200000 and row["available"] == row["allocated"] for row in rows)
    assert sum(row["allocated"] for row in rows) == 45000000
    assert set(rows[0]) == {"comune", "sub_ambito", "allocated", "reserved", "spent", "available"}
    assert next(r for r in rows if r["comune"] == "schilpario")["sub_ambito"] == "val-di-scalve"


def test_budgets_need_fund_and_period(vouchers_client, vouchers_auth):
    response = vouchers_client.get("/api/vouchers/budgets?fund=fna-b2", headers=vouchers_auth())
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"period": ["Obbligatorio."]}
    assert vouchers_client.get("/api/vouchers/budgets?fund=x&period=y",
                               headers=vouchers_auth()).status_code == 404


def test_reserve_post_in_part_and_void(vouchers_client, vouchers_auth):
    admin = vouchers_auth()
    allocated = _budget(vouchers_client, vouchers_auth, "clusone")["allocated"]
    first = _reserve(vouchers_client, admin, amount=50000)
    assert first.status_code == 201
    assert first.get_json()["status"] == "reserved"
    second = _reserve(vouchers_client, admin, amount=30000)
    assert _budget(vouchers_client, vouchers_auth, "clusone") == {
        "comune": "clusone", "sub_ambito": "clusone", "allocated": allocated, "reserved": 80000,
        "spent": 0, "available": allocated - 80000}

    posted = vouchers_client.post(f"/api/vouchers/reservations/{first.get_json()['id']}/post",
                                  json={"amount": 42000}, headers={**admin, "Idempotency-Key": "p1"})
    assert posted.status_code == 200
    assert posted.get_json()["status"] == "partially_posted"
    assert posted.get_json()["posted"] == 42000
    voided = vouchers_client.post(f"/api/vouchers/reservations/{second.get_json()['id']}/void",
                                  headers={**admin, "Idempotency-Key": "v1"})
    assert voided.get_json()["status"] == "voided"
    budget = _budget(vouchers_client, vouchers_auth, "clusone")
    assert (budget["reserved"], budget["spent"], budget["available"]) == (0, 42000, allocated - 42000)

    again = vouchers_client.post(f"/api/vouchers/reservations/{second.get_json()['id']}/void",
                                 headers={**admin, "Idempotency-Key": "v2"})
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"


def test_over_budget_is_a_409_naming_the_available_amount(vouchers_client, vouchers_auth):
    admin = vouchers_auth()
    available = _budget(vouchers_client, vouchers_auth, "azzone")["available"]
    response = _reserve(vouchers_client, admin, comune="azzone", amount=available + 1)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["available"] == available
    euros, cents = divmod(available, 100)
    assert body["available_eur"] == f"{euros:,}".replace(",", ".") + f",{cents:02d} €"
    assert body["available_eur"] in body["detail"]
    assert _reserve(vouchers_client, admin, comune="azzone", amount=available).status_code == 201


def test_every_write_needs_an_idempotency_key(vouchers_client, vouchers_auth):
    response = vouchers_client.post("/api/vouchers/reservations", headers=vouchers_auth(), json={
        "fund": B2, "period": B2_PERIOD, "comune": "clusone", "amount": 100, "reference": "x"})
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert "Idempotency-Key" in response.get_json()["detail"]
    for action in ("post", "void"):
        response = vouchers_client.post(f"/api/vouchers/reservations/1/{action}", json={"amount": 1},
                                        headers=vouchers_auth())
        assert response.status_code == 400


def test_same_key_same_body_replays_the_first_answer(vouchers_client, vouchers_auth):
    admin = vouchers_auth()
    first = _reserve(vouchers_client, admin, amount=12345, key="k-1")
    replay = _reserve(vouchers_client, admin, amount=12345, key="k-1")
    assert replay.status_code == first.status_code == 201
    assert replay.get_json() == first.get_json()
    assert _budget(vouchers_client, vouchers_auth, "clusone")["reserved"] == 12345

    path = f"/api/vouchers/reservations/{first.get_json()['id']}/post"
    posted = vouchers_client.post(path, json={"amount": 10000}, headers={**admin, "Idempotency-Key": "k-2"})
    replayed = vouchers_client.post(path, json={"amount": 10000}, headers={**admin, "Idempotency-Key": "k-2"})
    assert posted.status_code == replayed.status_code == 200
    assert replayed.get_json() == posted.get_json()
    assert _budget(vouchers_client, vouchers_auth, "clusone")["spent"] == 10000


def test_same_key_different_body_is_a_409(vouchers_client, vouchers_auth):
    admin = vouchers_auth()
    assert _reserve(vouchers_client, admin, amount=100, key="k-1").status_code == 201
    response = _reserve(vouchers_client, admin, amount=200, key="k-1")
    assert response.status_code == 409
    assert "Idempotency-Key" in response.get_json()["detail"]
    assert _budget(vouchers_client, vouchers_auth, "clusone")["reserved"] == 100


def test_a_refused_write_is_remembered_under_its_key(vouchers_app, vouchers_client, vouchers_auth):
    """An over-budget 409 is the first answer: a replay, even once money is there, gets it again."""
    admin = vouchers_auth()
    available = _budget(vouchers_client, vouchers_auth, "onore")["available"]
    blocker = _reserve(vouchers_client, admin, comune="onore", amount=available)
    refused = _reserve(vouchers_client, admin, comune="onore", amount=500, key="later")
    assert refused.status_code == 409
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["available"] == 0
    vouchers_client.post(f"/api/vouchers/reservations/{blocker.get_json()['id']}/void",
                         headers={**admin, "Idempotency-Key": "free"})
    replay = _reserve(vouchers_client, admin, comune="onore", amount=500, key="later")
    assert (replay.status_code, replay.mimetype) == (409, "application/problem+json")
    assert replay.get_json() == refused.get_json()
    assert replay.data == refused.data  # byte for byte
    # ...and byte for byte what the error handlers answer for the same refusal when nothing is stored.
    with vouchers_app.test_request_context("/api/vouchers/reservations", method="POST"):
        live = vouchers_app.make_response(vouchers_app.handle_user_exception(OverBudget("onore", 0, 500)))
    assert (live.status_code, live.mimetype, live.data) == (409, "application/problem+json", refused.data)
    assert _budget(vouchers_client, vouchers_auth, "onore")["reserved"] == 0
    # A different body under the refused key is still a 409 for the reuse; a new key books.
    reused = _reserve(vouchers_client, admin, comune="onore", amount=400, key="later")
    assert reused.status_code == 409 and "richiesta diversa" in reused.get_json()["detail"]
    assert _reserve(vouchers_client, admin, comune="onore", amount=500, key="fresh").status_code == 201


def test_a_refused_rule_422_is_remembered_too(vouchers_client, vouchers_auth):
    admin = {**vouchers_auth(), "Idempotency-Key": "same-move"}
    body = {"fund": B2, "period": B2_PERIOD, "amounts": {"atlantide": 100}}
    first = vouchers_client.post("/api/vouchers/allocations", json=body, headers=admin)
    second = vouchers_client.post("/api/vouchers/allocations", json=body, headers=admin)
    assert first.status_code == second.status_code == 422
    assert "atlantide" in first.get_json()["detail"]
    assert first.get_json() == second.get_json()
    assert first.data == second.data


def test_invalid_bodies_are_422_with_field_errors(vouchers_client, vouchers_auth):
    response = _reserve(vouchers_client, vouchers_auth(), amount=-5)
    assert response.status_code == 422
    assert "amount" in response.get_json()["errors"]
    response = vouchers_client.post("/api/vouchers/reservations", json={"amount": "12.5"},
                                    headers={**vouchers_auth(), "Idempotency-Key": "x"})
    assert set(response.get_json()["errors"]) >= {"fund", "period", "comune", "amount", "reference"}


def test_anonymous_callers_get_401(vouchers_client):
    assert vouchers_client.get("/api/vouchers/funds").status_code == 401
    assert vouchers_client.get(f"/api/vouchers/budgets?fund={B2}&period={B2_PERIOD}").status_code == 401
    response = vouchers_client.post("/api/vouchers/reservations", json={},
                                    headers={"Idempotency-Key": "x"})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_other_roles_get_403(vouchers_client, vouchers_auth):
    worker = vouchers_auth(SOCIAL_WORKER, "clusone")
    assert vouchers_client.get("/api/vouchers/funds", headers=worker).status_code == 403
    assert _reserve(vouchers_client, worker, amount=100).status_code == 403


def test_a_comune_operator_sees_and_spends_only_their_comune(vouchers_client, vouchers_auth):
    operator = vouchers_auth(COMUNE_OPERATOR, "clusone")
    rows = vouchers_client.get(f"/api/vouchers/budgets?fund={B2}&period={B2_PERIOD}",
                               headers=operator).get_json()
    assert [row["comune"] for row in rows] == ["clusone"]
    own = _reserve(vouchers_client, operator, amount=100)
    assert own.status_code == 201
    assert _reserve(vouchers_client, operator, amount=100, comune="rovetta").status_code == 403

    rovetta = _reserve(vouchers_client, vouchers_auth(AMBITO_ADMIN), amount=100, comune="rovetta")
    for action in ("post", "void"):
        response = vouchers_client.post(f"/api/vouchers/reservations/{rovetta.get_json()['id']}/{action}",
                                        json={"amount": 100}, headers={**operator, "Idempotency-Key": action})
        assert response.status_code == 403
    response = vouchers_client.post(f"/api/vouchers/reservations/{own.get_json()['id']}/post",
                                    json={"amount": 100}, headers={**operator, "Idempotency-Key": "own"})
    assert response.get_json()["status"] == "posted"


@pytest.mark.parametrize("path", ["/api/vouchers/funds", "/api/vouchers/budgets",
                                  "/api/vouchers/reservations",
                                  "/api/vouchers/reservations/{reservation_id}/post",
                                  "/api/vouchers/reservations/{reservation_id}/void"])
def test_openapi_documents_the_contract(vouchers_client, path):
    spec = vouchers_client.get("/api/vouchers/openapi.json").get_json()
    assert path in spec["paths"]
    for operation in spec["paths"][path].values():
        if isinstance(operation, dict) and "responses" in operation:
            assert {"401", "403"} <= set(operation["responses"])
    if path.startswith("/api/vouchers/reservations"):
        operation = spec["paths"][path]["post"]
        assert any(p["name"] == "Idempotency-Key" and p["required"] for p in operation["parameters"])
        assert "409" in operation["responses"]
