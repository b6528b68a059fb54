"""Invoices of reimbursement requests: checked by content and size, stored atomically, listed with hash
and size, downloadable only by Ambito staff and the filing comune; a refused upload stores nothing."""

from __future__ import annotations

import hashlib
import io
import json
import uuid

import pytest
from ambito_common.identity import COMUNE_OPERATOR
from sqlalchemy import func, select
from vouchers.app import create_app
from vouchers.models import ReimbursementInvoice, ReimbursementRequest

PDF = b"%PDF-1.4\n%fattura\n" + b"0" * 200
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _request(comune: str = "gromo", asked: int = 10_000) -> dict:
    return {"fund": "residenzialita", "period": "2026", "comune": comune, "lines": [
        {"beneficiary_ref": "CS-1", "service": "RSA", "service_period": "2026", "amount_paid": asked,
         "amount_asked": asked}]}


def _file(client, headers, files, body=None, key=None):  # type: ignore[no-untyped-def]
    return client.post("/api/vouchers/reimbursements",
                       headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
                       data={"request": json.dumps(body or _request()),
                             "invoices": [(io.BytesIO(data), name) for name, data in files]},
                       content_type="multipart/form-data")


@pytest.fixture
def small_limits(vouchers_make_runtime):  # type: ignore[no-untyped-def]
    runtime = vouchers_make_runtime(VOUCHERS_INVOICE_MAX_BYTES="1000", VOUCHERS_INVOICES_MAX_BYTES="1500")
    return runtime, create_app(runtime=runtime).test_client()


def _stored(runtime) -> tuple[int, int, list[str]]:  # type: ignore[no-untyped-def]
    directory = runtime.settings.invoices_dir
    with runtime.session_factory() as session:
        return (session.scalar(select(func.count()).select_from(ReimbursementRequest)),
                session.scalar(select(func.count()).select_from(ReimbursementInvoice)),
                sorted(p.name for p in directory.iterdir()) if directory.exists() else [])


def test_vouchers_reimbursement_invoices_are_stored_listed_and_replayed(small_limits, vouchers_auth):
    runtime, client = small_limits
    operator = vouchers_auth(COMUNE_OPERATOR, "gromo")
    key = uuid.uuid4().hex
    filed = _file(client, operator, [("fattura.pdf", PDF), ("ricevuta.png", PNG)], key=key)
    assert filed.status_code == 201, filed.get_json()
    assert [(i["name"], i["media_type"], i["size"], i["sha256"]) for i in filed.get_json()["invoices"]] == [
        ("fattura.pdf", "application/pdf", len(PDF), hashlib.sha256(PDF).hexdigest()),
        ("ricevuta.png", "image/png", len(PNG), hashlib.sha256(PNG).hexdigest())]
    # The same upload again (a retry): the first answer, nothing written twice.
    again = _file(client, operator, [("fattura.pdf", PDF), ("ricevuta.png", PNG)], key=key)
    assert again.status_code == 201 and again.get_json() == filed.get_json()
    assert _file(client, operator, [("fattura.pdf", PNG)], key=key).status_code == 409
    hashes = sorted([hashlib.sha256(PDF).hexdigest(), hashlib.sha256(PNG).hexdigest()])
    assert _stored(runtime) == (1, 2, hashes)


@pytest.mark.parametrize(("files", "body", "status"), [
    ([("virus.pdf", b"MZ\x90\x00" + b"\x00" * 50)], None, 415),
    ([("grande.pdf", b"%PDF-" + b"1" * 1200)], None, 413),
    ([("a.pdf", PDF * 3), ("b.pdf", PDF * 3), ("c.pdf", PDF * 3)], None, 413),
    ([("vuoto.pdf", b"")], None, 422),
    ([("fattura.pdf", PDF)], {**_request(), "lines": [{**_request()["lines"][0], "amount_asked": 20_000}]},
     422),
])
def test_vouchers_reimbursement_refused_uploads_store_nothing(small_limits, vouchers_auth, files, body,
                                                              status):
    runtime, client = small_limits
    response = _file(client, vouchers_auth(COMUNE_OPERATOR, "gromo"), files, body)
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert _stored(runtime) == (0, 0, [])


def test_vouchers_reimbursement_invoice_download_is_for_admin_and_the_filing_comune(
        vouchers_client, vouchers_auth):
    filed = _file(vouchers_client, vouchers_auth(COMUNE_OPERATOR, "gromo"), [("fattura.pdf", PDF)]).get_json()
    url = f"/api/vouchers/reimbursements/{filed['id']}/invoices/{filed['invoices'][0]['id']}"
    for headers in (vouchers_auth(), vouchers_auth(COMUNE_OPERATOR, "gromo")):
        response = vouchers_client.get(url, headers=headers)
        assert response.status_code == 200 and response.data == PDF
        assert response.mimetype == "application/pdf"
        assert "fattura.pdf" in response.headers["Content-Disposition"]
    assert vouchers_client.get(url, headers=vouchers_auth(COMUNE_OPERATOR, "clusone")).status_code == 403
    assert vouchers_client.get(url, headers=vouchers_auth("social_worker", "gromo")).status_code == 403
    assert vouchers_client.get(url).status_code == 401
    page = f"/vouchers/rimborsi/{filed['id']}/fatture/{filed['invoices'][0]['id']}"
    assert vouchers_client.get(page, headers=vouchers_auth(COMUNE_OPERATOR, "clusone")).status_code == 403
    assert vouchers_client.get(page, headers=vouchers_auth(COMUNE_OPERATOR, "gromo")).data == PDF
    assert vouchers_client.get(url + "9", headers=vouchers_auth()).status_code == 404
