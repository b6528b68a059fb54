"""An approved care plan becomes a sealed voucher on the comune's budget, and the family hears of it.

Through the running embedded platform, across the three services: the social worker of the
beneficiary's comune drafts the care plan (PAI) and approves it; the worker hands the plan to
vouchers, which reserves the comune's FNPS budget and asks documents to seal the voucher for
the comune's protocol, with courtesy copies to the family and the provider; vouchers tells
intake, whose case and tracking move to "voucher assegnato" and whose e-mail tells the family.
A comune's reimbursement request with its invoice reaches the lead comune's protocol the same way.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import hashlib
import json
import uuid
from email import policy
from email.utils import parseaddr
from zoneinfo import ZoneInfo

import pytest
import requests
from documents.builders import read_impronte

from tests.harness import Platform, embedded_platform, wait_until
from tests.journey import PDF, check_package, fetch, sad_request

pytestmark = pytest.mark.slow


def _mails(platform: Platform) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(raw, policy=policy.default) for raw in platform.mail.messages]


def _package(platform: Platform, officer: dict[str, str], search: str) -> tuple[dict, dict]:
    """The one package found by ``search`` once delivered, and its files (name → (listing, bytes))."""
    def delivered() -> dict | None:
        found = requests.get(f"{platform.url}/api/documents/packages", params={"q": search},
                             headers=officer, timeout=10).json()
        return found[0] if len(found) == 1 and found[0]["status"] == "delivered" else None

    listed = wait_until(delivered, timeout=90, what=f"the package «{search}» to be delivered")
    package = requests.get(f"{platform.url}/api/documents/packages/{listed['id']}", headers=officer,
                           timeout=10).json()
    files = {f["name"]: (f, fetch(platform, officer, package["id"], f["name"])) for f in package["files"]}
    return package, files


def _clusone_fnps(platform: Platform, headers: dict[str, str]) -> dict:
    year = str(dt.datetime.now(ZoneInfo("Europe/Rome")).year)
    budgets = requests.get(f"{platform.url}/api/vouchers/budgets", params={"fund": "fnps", "period": year},
                           headers=headers, timeout=10)
    assert budgets.status_code == 200, budgets.text
    return next(b for b in budgets.json() if b["comune"] == "clusone")


def test_approved_care_plan_becomes_a_sealed_voucher_and_the_family_hears_of_it(tmp_path):
    with embedded_platform(tmp_path) as platform:
        payload = sad_request()
        created = requests.post(platform.url + "/api/intake/sad-requests", json=payload, timeout=30)
        assert created.status_code == 201, created.text
        code = created.json()["tracking_code"]
        upload = requests.post(f"{platform.url}/api/intake/sad-requests/{code}/attachments",
                               files={"file": ("isee.pdf", PDF)}, data={"kind": "isee"}, timeout=30)
        assert upload.status_code == 201, upload.text
        assert requests.post(f"{platform.url}/api/intake/sad-requests/{code}/submit", timeout=30).ok

        operator = {"Authorization": f"Bearer {platform.token('clusone')}"}
        before = _clusone_fnps(platform, operator)
        worker = {"Authorization": f"Bearer {platform.token('as.clusone')}"}
        case = f"{platform.url}/api/intake/sad-requests/{created.json()['id']}"
        start = dt.datetime.now(ZoneInfo("Europe/Rome")).date().isoformat()
        planned = requests.post(case + "/care-plan", headers=worker, timeout=30, json={
            "asa_hours_week": 3, "oss_hours_week": 0, "start_date": start, "weeks": 10,
            "provider": "coop-sociale-scalve"})
        assert planned.status_code == 200, planned.text
        copayment = planned.json()["care_plan"]["copayment_hourly_cents"]
        approved = requests.post(case + "/approve", headers=worker, timeout=30)
        assert approved.status_code == 200, approved.text
        assert approved.json()["case_status"] == "awaiting_budget"

        def case_granted() -> dict | None:
            found = requests.get(case, headers=worker, timeout=10).json()
            return found if found["case_status"] == "voucher_granted" else None

        granted = wait_until(case_granted, timeout=90, what="the case to read voucher granted")
        assert any(h["actor"] == "servizio voucher" for h in granted["history"])
        # 30 hours at the FNPS ASA tariff (22,50 €) less what the family pays per hour by Clusone's rule.
        value = 30 * (2250 - copayment)
        after = _clusone_fnps(platform, operator)
        assert after["reserved"] - before["reserved"] == value
        assert after["available"] == before["available"] - value

        officer = {"Authorization": f"Bearer {platform.token('protocollo')}"}
        package, files = _package(platform, officer, "Buono n.")
        assert "clusone" in package["recipient"]["pec"].lower()
        check_package(files, platform.seal_ca, recipient_pec=package["recipient"]["pec"])
        primary = next(data for listing, data in files.values() if listing["role"] == "primary")

        def copies() -> dict[str, bytes] | None:
            sealed = {parseaddr(m["To"])[1]: m for m in _mails(platform)
                      if m["Subject"].startswith("Documento sigillato")}
            return sealed if len(sealed) == 2 else None

        sealed = wait_until(copies, timeout=90, what="the courtesy copies of the voucher")
        family, provider = payload["applicant"]["email"], "servizi@coop-val-di-scalve.invalid"
        assert set(sealed) == {family, provider}
        for message in sealed.values():
            (attachment,) = list(message.iter_attachments())
            assert attachment.get_content() == primary  # the very document sealed for the protocol

        def told() -> bool:
            return any(parseaddr(m["To"])[1] == family and "voucher assegnato" in text.lower()
                       for m in _mails(platform) if (text := m.get_body(("plain",)).get_content()))

        wait_until(told, timeout=60, what="the e-mail telling the family the voucher is granted")


def test_a_comune_reimbursement_request_reaches_the_lead_comune_with_its_invoice(tmp_path):
    with embedded_platform(tmp_path) as platform:
        operator = {"Authorization": f"Bearer {platform.token('clusone')}"}
        year = str(dt.datetime.now(ZoneInfo("Europe/Rome")).year)
        invoice = PDF.replace(b"trailer", b"% fattura 12/2026\ntrailer")
        filed = requests.post(
            f"{platform.url}/api/vouchers/reimbursements", timeout=30,
            headers={**operator, "Idempotency-Key": uuid.uuid4().hex},
            data={"request": json.dumps({
                "fund": "residenzialita", "period": year, "comune": "clusone", "lines": [
                    {"beneficiary_ref": "CS-9", "service": "RSA Sant'Andrea, Clusone", "service_period": year,
                     "amount_paid": 250_000, "amount_asked": 120_000}]})},
            files={"invoices": ("fattura-12.pdf", invoice, "application/pdf")})
        assert filed.status_code == 201, filed.text

        officer = {"Authorization": f"Bearer {platform.token('protocollo')}"}
        package, files = _package(platform, officer, "rimborso")
        check_package(files, platform.seal_ca, recipient_pec=package["recipient"]["pec"])
        attached = {name: data for name, (listing, data) in files.items() if listing["role"] == "attachment"}
        assert attached == {"fattura-12.pdf": invoice}
        impronte = read_impronte(files["Segnatura.xml"][1])
        assert impronte["fattura-12.pdf"] == base64.b64encode(hashlib.sha256(invoice).digest()).decode()
