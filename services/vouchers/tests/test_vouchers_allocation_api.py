"""Allocation and the ledger through HTTP: Ambito staff allocate; everyone sees who moved what."""

from __future__ import annotations

from ambito_common.identity import COMUNE_OPERATOR

from .conftest import vouchers_write as _write


def _allocate(client, headers, body: dict):  # type: ignore[no-untyped-def]
    return _write(client, headers, "/api/vouchers/allocations", body)


def _budgets(client, auth) -> dict[str, int]:
    rows = client.get("/api/vouchers/budgets?fund=residenzialita&period=2026", headers=auth()).get_json()
    return {r["comune"]: r["allocated"] for r in rows}


def test_vouchers_admin_allocates_by_formula_then_by_hand(vouchers_client, vouchers_auth):
    admin = vouchers_auth(user="anna.ambito")
    assert sum(_budgets(vouchers_client, vouchers_auth).values()) == 0  # the demo leaves it unallocated
    by_formula = _allocate(vouchers_client, admin, {"fund": "residenzialita", "period": "2026",
                                                    "total": 10_000_001, "base_per_comune": 100_000})
    assert by_formula.status_code == 201, by_formula.get_json()
    allocated = _budgets(vouchers_client, vouchers_auth)
    assert sum(allocated.values()) == 10_000_001 and min(allocated.values()) > 100_000

    moved = _allocate(vouchers_client, admin, {"fund": "residenzialita", "period": "2026",
                                               "amounts": {"clusone": -50_000, "azzone": 50_000}})
    assert moved.get_json()["amounts"] == {"azzone": 50_000, "clusone": -50_000}
    over = _allocate(vouchers_client, admin, {"fund": "residenzialita", "period": "2026",
                                              "amounts": {"clusone": 8_000_000}})
    assert over.status_code == 409 and over.get_json()["available"] == 18_000_000 - 10_000_001

    ledger = vouchers_client.get("/api/vouchers/ledger?fund=residenzialita&period=2026", headers=admin)
    kinds = [(m["kind"], m["actor"]) for m in ledger.get_json()]
    assert kinds == [("allocation", "anna.ambito"), ("allocation", "anna.ambito"), ("receipt", "demo")]


def test_vouchers_allocation_requests_are_checked(vouchers_client, vouchers_auth):
    admin = vouchers_auth()
    both = _allocate(vouchers_client, admin, {"fund": "residenzialita", "period": "2026", "total": 1,
                                              "amounts": {"clusone": 1}})
    assert both.status_code == 422
    unknown = _allocate(vouchers_client, admin, {"fund": "residenzialita", "period": "2026",
                                                 "amounts": {"milano": 1}})
    assert unknown.status_code == 422 and "milano" in unknown.get_json()["detail"]
    operator = vouchers_auth(COMUNE_OPERATOR, "clusone")
    assert _allocate(vouchers_client, operator, {"fund": "residenzialita", "period": "2026",
                                                 "amounts": {"clusone": 1}}).status_code == 403


def test_vouchers_an_operator_sees_only_their_comune_movements(vouchers_client, vouchers_auth):
    operator = vouchers_auth(COMUNE_OPERATOR, "gromo")
    vouchers_client.post("/api/vouchers/reservations", headers={**operator, "Idempotency-Key": "g1"}, json={
        "fund": "fna-b2", "period": "2026-2027", "comune": "gromo", "amount": 100, "reference": "buono"})
    movements = vouchers_client.get("/api/vouchers/ledger?fund=fna-b2&period=2026-2027",
                                    headers=operator).get_json()
    assert [m["kind"] for m in movements] == ["reserve", "allocation"]
    assert movements[0]["actor"] == "comune_operator-gromo"
    assert {e["comune"] for m in movements for e in m["entries"]} == {"gromo"}
    everything = vouchers_client.get("/api/vouchers/ledger?fund=fna-b2&period=2026-2027",
                                     headers=vouchers_auth()).get_json()
    assert len(everything[1]["entries"]) == 25  # the demo allocation: the pool and 24 comuni


def test_vouchers_populations_are_data_the_ambito_edits(vouchers_client, vouchers_auth):
    admin = vouchers_auth(user="anna.ambito")
    populations = {p["comune"]: p for p in vouchers_client.get("/api/vouchers/populations",
                                                                headers=admin).get_json()}
    assert len(populations) == 24 and populations["clusone"]["population"] == 8800
    edited = vouchers_client.put("/api/vouchers/populations/clusone",
                                 headers={**admin, "Idempotency-Key": "p"},
                                 json={"population": 8_912, "as_of": "2026-01-01"})
    assert edited.get_json() == {"comune": "clusone", "population": 8_912, "as_of": "2026-01-01",
                                 "updated_by": "anna.ambito"}
    operator = vouchers_auth(COMUNE_OPERATOR, "clusone")
    body = {"population": 1, "as_of": "2026-01-01"}
    assert vouchers_client.put("/api/vouchers/populations/clusone", json=body,
                               headers={**operator, "Idempotency-Key": "q"}).status_code == 403
    assert vouchers_client.put("/api/vouchers/populations/milano", json=body,
                               headers={**admin, "Idempotency-Key": "r"}).status_code == 404


def test_vouchers_reversal_and_carry_over_through_the_api(vouchers_client, vouchers_auth):
    admin = vouchers_auth()
    moved = _allocate(vouchers_client, admin, {"fund": "residenzialita", "period": "2026",
                                               "amounts": {"premolo": 70_000}}).get_json()
    reversal = _write(vouchers_client, admin, f"/api/vouchers/ledger/{moved['journal']}/reversal",
                              {"reason": "comune sbagliato"})
    assert reversal.status_code == 201 and reversal.get_json()["reversal_of"] == moved["journal"]
    assert _budgets(vouchers_client, vouchers_auth)["premolo"] == 0
    twice = _write(vouchers_client, admin, f"/api/vouchers/ledger/{moved['journal']}/reversal",
                           {"reason": "ancora"})
    assert twice.status_code == 409
    # Only one period per fund in the demo: carrying within the same period is refused.
    same = _write(vouchers_client, admin, "/api/vouchers/carry-overs", {
        "fund": "fna-b2", "from_period": "2026-2027", "to_period": "2026-2027", "comune": "premolo"})
    assert same.status_code == 422
