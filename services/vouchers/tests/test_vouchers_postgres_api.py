"""The API on PostgreSQL: concurrent retries with one Idempotency-Key reserve once."""

from __future__ import annotations

import threading

import pytest
from vouchers.app import create_app

CLIENTS = 12


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_vouchers_concurrent_replays_of_one_key_reserve_once(vouchers_pg_runtime, vouchers_auth):
    app = create_app(runtime=vouchers_pg_runtime)
    headers = {**vouchers_auth(), "Idempotency-Key": "same-key"}
    body = {"fund": "fna-b2", "period": "2026-2027", "comune": "gorno", "amount": 777, "reference": "x"}
    barrier = threading.Barrier(CLIENTS)
    answers: list[tuple[int, dict]] = []

    def client() -> None:
        test_client = app.test_client()
        barrier.wait()
        response = test_client.post("/api/vouchers/reservations", json=body, headers=headers)
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == CLIENTS
    assert {status for status, _ in answers} == {201}
    assert len({answer["id"] for _, answer in answers}) == 1
    rows = app.test_client().get("/api/vouchers/budgets?fund=fna-b2&period=2026-2027",
                                 headers=vouchers_auth()).get_json()
    assert next(r for r in rows if r["comune"] == "gorno")["reserved"] == 777
