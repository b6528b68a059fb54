"""The reimbursement pages as people use them (no JavaScript): a comune operator files a request with
line items and invoices, Ambito staff decide, apply the pro-rata and record the payment."""

from __future__ import annotations

import io
import re

from ambito_common.identity import COMUNE_OPERATOR
from lxml import html
from sqlalchemy import func, select
from vouchers.models import ReimbursementRequest, SealedDocument

PDF = b"%PDF-1.4\n%fattura\n" + b"0" * 100
FUND_PERIOD = "residenzialita/2026"


def _login(client, headers: dict[str, str]) -> None:
    client.set_cookie("ambito_identity", headers["Authorization"].removeprefix("Bearer "))


def _form(client, path: str) -> dict[str, str]:
    """The hidden fields of the page's first form under /vouchers/ (CSRF token, form key)."""
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    forms = html.fromstring(page.text).xpath("//main//form[@method='post']")
    if not forms:
        return {"csrf_token": client.get_cookie("ambito_csrf").value}
    return {i.get("name"): i.get("value") for i in forms[0].xpath(".//input[@type='hidden']")}


def _line(i: int, beneficiary: str, paid: str, asked: str) -> dict[str, str]:
    return {f"lines.{i}.beneficiary_ref": beneficiary, f"lines.{i}.service": "RSA Clusone",
            f"lines.{i}.service_period": "2026", f"lines.{i}.amount_paid": paid,
            f"lines.{i}.amount_asked": asked}


def _file_by_form(client, comune: str, lines: dict[str, str]):  # type: ignore[no-untyped-def]
    hidden = _form(client, "/vouchers/rimborsi/nuova")
    return client.post("/vouchers/rimborsi/nuova", data={
        **hidden, "fund_period": FUND_PERIOD, "comune": comune, **lines,
        "invoices": [(io.BytesIO(PDF), "fattura.pdf")]}, content_type="multipart/form-data")


def test_vouchers_reimbursement_pages_file_a_request(vouchers_client, vouchers_auth, vouchers_runtime):
    _login(vouchers_client, vouchers_auth(COMUNE_OPERATOR, "gromo"))
    page = html.fromstring(vouchers_client.get("/vouchers/rimborsi/nuova").text)
    assert page.xpath("//select[@id='f-comune']/option/@value") == ["", "gromo"]  # only their comune
    assert page.xpath("//label[@for='f-lines-0-amount_paid']")

    hidden = _form(vouchers_client, "/vouchers/rimborsi/nuova")
    fields = {**hidden, "fund_period": FUND_PERIOD, "comune": "gromo",
              **_line(0, "CS-1", "1.200,00", "1.500,00"), **_line(2, "CS-2", "300", "abc")}
    refused = vouchers_client.post("/vouchers/rimborsi/nuova", data=fields)
    assert refused.status_code == 422
    doc = html.fromstring(refused.text)
    assert doc.xpath("//input[@id='f-lines-2-amount_asked']/@aria-invalid") == ["true"]
    assert doc.xpath("//input[@id='f-lines-0-beneficiary_ref']/@value") == ["CS-1"]  # values kept
    assert doc.xpath("//div[@id='riepilogo-errori']//a/@href") == ["#f-lines-2-amount_asked"]
    # The service's own rule (asked > paid) lands on the right row even with a blank row between.
    fields["lines.2.amount_asked"] = "300"
    refused = vouchers_client.post("/vouchers/rimborsi/nuova", data=fields)
    assert refused.status_code == 422, refused.text[-3000:]
    doc = html.fromstring(refused.text)
    assert doc.xpath("//input[@id='f-lines-0-amount_asked']/@aria-invalid") == ["true"]

    other = _file_by_form(vouchers_client, "clusone", _line(0, "CS-1", "100", "100"))
    assert other.status_code == 403

    hidden = _form(vouchers_client, "/vouchers/rimborsi/nuova")
    data = {**hidden, "fund_period": FUND_PERIOD, "comune": "gromo",
            **_line(0, "CS-1", "1.500,00", "1.200,50")}
    created = vouchers_client.post("/vouchers/rimborsi/nuova", data={
        **data, "invoices": [(io.BytesIO(PDF), "fattura.pdf")]}, content_type="multipart/form-data")
    assert created.status_code == 303
    again = vouchers_client.post("/vouchers/rimborsi/nuova", data={
        **data, "invoices": [(io.BytesIO(PDF), "fattura.pdf")]}, content_type="multipart/form-data")
    # A double submit of the same form: the same answer, one request.
    assert again.status_code == 303 and again.headers["Location"] == created.headers["Location"]
    with vouchers_runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(ReimbursementRequest)) == 1
        (filed,) = session.scalars(select(ReimbursementRequest)).all()
        assert [(line.amount_paid, line.amount_asked) for line in filed.lines] == [(150_000, 120_050)]
    detail = vouchers_client.get(created.headers["Location"]).text
    assert "fattura.pdf" in detail and "Richiesta di rimborso" in detail and "In preparazione" in detail
    assert 'action="/vouchers/rimborsi/' not in detail.split("Documenti sigillati")[1]  # no decision form
    no_csrf = vouchers_client.post(created.headers["Location"] + "/decisione", data={})
    assert no_csrf.status_code == 400


def test_vouchers_reimbursement_pages_decide_and_pay(vouchers_client, vouchers_auth, vouchers_runtime):
    _login(vouchers_client, vouchers_auth(COMUNE_OPERATOR, "onore"))
    created = _file_by_form(vouchers_client, "onore", {**_line(0, "CS-1", "1.000", "1.000"),
                                                       **_line(1, "CS-2", "500", "400")})
    detail_url = created.headers["Location"]
    request_id = int(detail_url.rsplit("/", 1)[1])
    hidden = _form(vouchers_client, detail_url)  # the operator's page has no decision form
    assert "form_key" not in hidden
    forbidden = vouchers_client.post(detail_url + "/decisione", data={**hidden, "outcome": "approve"})
    assert forbidden.status_code == 403

    _login(vouchers_client, vouchers_auth(user="anna.bianchi"))
    hidden = _form(vouchers_client, detail_url)
    refused = vouchers_client.post(detail_url + "/decisione",
                                   data={**hidden, "outcome": "reject", "reason": " "})
    assert refused.status_code == 422 and "Indicare il motivo del rigetto." in refused.text
    with vouchers_runtime.session_factory() as session:
        line_ids = [line.id for line in session.get(ReimbursementRequest, request_id).lines]
    typo = vouchers_client.post(detail_url + "/decisione", data={
        **hidden, "outcome": "partial", f"approved.{line_ids[0]}": "mille", f"approved.{line_ids[1]}": "400"})
    assert typo.status_code == 422
    assert html.fromstring(typo.text).xpath(f"//input[@id='f-approved-{line_ids[0]}']/@value") == ["mille"]
    decided = vouchers_client.post(detail_url + "/decisione", data={
        **hidden, "outcome": "partial", f"approved.{line_ids[0]}": "800,00", f"approved.{line_ids[1]}": "400",
        "reason": "Una retta oltre il tetto."})
    assert decided.status_code == 303
    page = vouchers_client.get(detail_url).text
    assert "Approvata in parte" in page and "1.200,00 €" in page and "Decisione sulla richiesta" in page

    hidden = _form(vouchers_client, detail_url)
    missing = vouchers_client.post(detail_url + "/pagamento", data={**hidden, "payment_ref": ""})
    assert missing.status_code == 422
    paid = vouchers_client.post(detail_url + "/pagamento", data={**hidden, "payment_ref": "Mandato 77/2026"})
    assert paid.status_code == 303
    assert vouchers_client.post(detail_url + "/pagamento", data={
        **hidden, "payment_ref": "Mandato 77/2026"}).status_code == 303  # double submit: same answer
    page = vouchers_client.get(detail_url).text
    assert "Pagata" in page and "Mandato 77/2026" in page and "Pagamento del rimborso" in page
    with vouchers_runtime.session_factory() as session:
        refs = session.scalars(select(SealedDocument.source_ref).order_by(SealedDocument.id)).all()
    assert refs == [f"reimbursement:{request_id}", f"reimbursement:{request_id}:decision:1",
                    f"reimbursement:{request_id}:decision:2"]


def test_vouchers_reimbursement_pages_pro_rata_shown_then_applied(vouchers_client, vouchers_auth,
                                                                 vouchers_runtime):
    for comune in ("clusone", "rovetta"):
        _login(vouchers_client, vouchers_auth(COMUNE_OPERATOR, comune))
        filed = _file_by_form(vouchers_client, comune, _line(0, "CS-1", "120.000,00", "120.000,00"))
        assert filed.status_code == 303
    _login(vouchers_client, vouchers_auth())
    url = "/vouchers/rimborsi/riparto?fund=residenzialita&period=2026"
    page = vouchers_client.get(url).text
    assert "chiedono 240.000,00 €" in page and "75,00%" in page and page.count("90.000,00 €") == 2
    hidden = _form(vouchers_client, url)
    stale = vouchers_client.post("/vouchers/rimborsi/riparto", data={**hidden, "asked": "1"})
    assert stale.status_code == 409 and "sono cambiate" in stale.text
    applied = vouchers_client.post("/vouchers/rimborsi/riparto", data=hidden)
    assert applied.status_code == 303
    # The same confirmation again (a double submit): the first answer, nothing applied twice.
    assert vouchers_client.post("/vouchers/rimborsi/riparto", data=hidden).status_code == 303
    with vouchers_runtime.session_factory() as session:
        requests = session.scalars(select(ReimbursementRequest)).all()
        assert [(r.status, r.approved_total) for r in requests] == [("partially_approved", 9_000_000)] * 2
    listing = vouchers_client.get("/vouchers/rimborsi?fund=residenzialita&period=2026").text
    assert len(re.findall(r"Decisione sulla richiesta di rimborso: In preparazione", listing)) == 2
