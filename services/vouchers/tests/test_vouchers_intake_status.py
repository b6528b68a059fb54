"""Contract 2: vouchers of an approved care plan tell intake their state through the outbox
(``intake.voucher_status``) when issued, promoted from the waiting list and closed."""

from __future__ import annotations

from ambito_common.identity import COMUNE_OPERATOR
from sqlalchemy import select
from vouchers.app import create_app
from vouchers.models import OutboxMessage
from vouchers.tasks import request_voucher

from .conftest import vouchers_written as _write

PLAN = {"source": "intake", "source_ref": "sad_request:42", "comune": "ardesio",
        "beneficiary": {"first_name": "Giovanna", "last_name": "Rota", "tax_code": "RTOGNN40A41A383X"},
        "isee_cents": 950_000, "submitted_at": "2026-11-20T09:30:00+00:00",
        "care_plan": {"asa_hours_week": 2.5, "oss_hours_week": 1.0, "start_date": "2026-12-01", "weeks": 10,
                      "provider": "coop-il-sentiero", "provider_name": "Il Sentiero",
                      "copayment_hourly_cents": 1000}}
ASA_VALUE, OSS_VALUE = 31_250, 14_800  # 25 h x (22.50 - 10.00) €/h, 10 h x (24.80 - 10.00) €/h


def _reports(runtime) -> list[dict]:  # type: ignore[no-untyped-def]
    with runtime.session_factory() as session:
        return [m.kwargs for m in session.scalars(select(OutboxMessage).where(
            OutboxMessage.task_name == "intake.voucher_status").order_by(OutboxMessage.id))]


def _vouchers(ids: list[int], *statuses: str) -> list[dict]:
    return [{"id": ids[0], "profile": "ASA", "value_cents": ASA_VALUE, "status": statuses[0]},
            {"id": ids[1], "profile": "OSS", "value_cents": OSS_VALUE, "status": statuses[1]}]


def test_vouchers_plan_state_goes_to_intake_at_each_transition(vouchers_worker_env, vouchers_make_runtime,
                                                                vouchers_auth):
    runtime = vouchers_make_runtime(**vouchers_worker_env)
    client = create_app(runtime=runtime).test_client()
    admin, operator = vouchers_auth(), vouchers_auth(COMUNE_OPERATOR, "ardesio")
    budgets = client.get("/api/vouchers/budgets?fund=fnps&period=2026", headers=admin).get_json()
    available = next(row["available"] for row in budgets if row["comune"] == "ardesio")
    hog = _write(client, admin, "/api/vouchers/reservations", json={
        "fund": "fnps", "period": "2026", "comune": "ardesio", "amount": available, "reference": "tutto"})
    poorer = _write(client, operator, "/api/vouchers/vouchers", json={
        "fund": "fnps", "period": "2026", "comune": "ardesio", "beneficiary_ref": "CS-1",
        "beneficiary_name": "Anna Neri", "isee": 100_000, "provider": "Il Sentiero", "profile": "ASA",
        "hours_per_week": 100, "weeks": 4})
    assert poorer["status"] == "waiting" and _reports(runtime) == []  # an operator's voucher: no plan

    ids = request_voucher.apply(kwargs=PLAN).get()
    waiting = {"source_ref": "sad_request:42", "status": "waiting_list",
               "vouchers": _vouchers(ids, "waiting", "waiting"),
               "waiting_position": 2}  # behind the lower ISEE; its OSS voucher is third
    assert _reports(runtime) == [waiting]

    _write(client, admin, f"/api/vouchers/reservations/{hog['id']}/void")  # money freed: all promoted
    granted = {"source_ref": "sad_request:42", "status": "granted",
               "vouchers": _vouchers(ids, "active", "active"), "waiting_position": None}
    assert _reports(runtime) == [waiting, granted]

    _write(client, operator, f"/api/vouchers/vouchers/{ids[0]}/close")
    partly = {**granted, "vouchers": _vouchers(ids, "closed", "active")}  # the OSS hours go on
    _write(client, operator, f"/api/vouchers/vouchers/{ids[1]}/close")
    closed = {**granted, "status": "closed", "vouchers": _vouchers(ids, "closed", "closed")}
    _write(client, operator, f"/api/vouchers/vouchers/{poorer['id']}/close")
    assert _reports(runtime) == [waiting, granted, partly, closed]

    assert request_voucher.apply(kwargs=PLAN).get() == ids  # a redelivered plan repeats its state
    assert _reports(runtime)[-1] == closed


def test_vouchers_plan_issued_at_once_reports_granted(vouchers_worker_env, vouchers_make_runtime):
    runtime = vouchers_make_runtime(**vouchers_worker_env)
    ids = request_voucher.apply(kwargs=PLAN).get()
    assert _reports(runtime) == [{"source_ref": "sad_request:42", "status": "granted",
                                  "vouchers": _vouchers(ids, "active", "active"), "waiting_position": None}]


def test_vouchers_a_plan_without_its_copayment_is_priced_by_the_comune_rule(vouchers_worker_env,
                                                                            vouchers_make_runtime):
    """A plan approved before plans carried the hourly co-payment: the comune's rule on its start day,
    the maximum without a valid ISEE (19,00 €/h in the example values)."""
    runtime = vouchers_make_runtime(**vouchers_worker_env)
    plan = {k: v for k, v in PLAN["care_plan"].items() if k != "copayment_hourly_cents"}
    request_voucher.apply(kwargs={**PLAN, "isee_cents": None, "care_plan": plan}).get()
    (report,) = _reports(runtime)
    assert [v["value_cents"] for v in report["vouchers"]] == [25 * (2250 - 1900), 10 * (2480 - 1900)]
