"""Worker tasks: expiry gives unposted reservations back; intake's care plans become vouchers."""

from __future__ import annotations

from vouchers import services
from vouchers.app import create_app
from vouchers.models import Reservation, Voucher
from vouchers.tasks import expire_reservations, request_voucher


def test_vouchers_expiry_task_releases_reservations(vouchers_worker_env, vouchers_make_runtime,
                                                    vouchers_auth):
    runtime = vouchers_make_runtime(**vouchers_worker_env)
    client = create_app(runtime=runtime).test_client()
    created = client.post("/api/vouchers/reservations", headers={**vouchers_auth(), "Idempotency-Key": "e"},
                          json={"fund": "fna-b2", "period": "2026-2027", "comune": "valgoglio", "amount": 999,
                                "reference": "scade"})
    assert created.status_code == 201
    assert expire_reservations.apply().get() == 1
    with runtime.session_factory() as session:
        assert session.get(Reservation, created.get_json()["id"]).status == "expired"
        budget = services.find_budget(session, fund_code="fna-b2", period_code="2026-2027",
                                      comune="valgoglio")
        assert budget.reserved == 0 and budget.available == budget.allocated
    assert expire_reservations.apply().get() == 0


def test_vouchers_care_plans_from_intake_become_vouchers_once(vouchers_worker_env, vouchers_make_runtime):
    runtime = vouchers_make_runtime(**vouchers_worker_env)
    kwargs = {"source": "intake", "source_ref": "sad_request:7", "comune": "ardesio",
              "beneficiary": {"first_name": "Giovanna", "last_name": "Rota", "tax_code": "RTOGNN40A41A383X",
                              "email": "famiglia.rota@example.org"},
              "isee_cents": None, "submitted_at": "2026-11-20T09:30:00+00:00",
              "care_plan": {"asa_hours_week": 2.5, "oss_hours_week": 1.0, "start_date": "2026-12-01",
                            "weeks": 10, "provider": "coop-il-sentiero", "provider_name": "Il Sentiero",
                            "copayment_hourly_cents": 1000}}
    ids = request_voucher.apply(kwargs=kwargs).get()
    assert len(ids) == 2 and request_voucher.apply(kwargs=kwargs).get() == ids
    with runtime.session_factory() as session:
        asa, oss = (session.get(Voucher, i) for i in ids)
        # The plan's hourly co-payment (what the family agreed to) stays, whatever the rule says today:
        # 25 h x (22.50 - 10.00) €/h and 10 h x (24.80 - 10.00) €/h.
        assert (asa.profile, asa.hours_per_week, asa.copayment_hourly) == ("ASA", 250, 1000)
        assert asa.value == 31_250
        assert (oss.profile, oss.value, oss.status) == ("OSS", 14_800, "active")
        assert asa.source_ref == "intake:sad_request:7:ASA" and asa.beneficiary_ref == "RTOGNN40A41A383X"
        assert asa.contact_email == oss.contact_email == "famiglia.rota@example.org"
        assert asa.submitted_at.isoformat() == "2026-11-20T09:30:00+00:00"
