"""The vouchers' form pages as a browser uses them (identity cookie, CSRF token, the form's hidden
Idempotency-Key): enter a voucher, record hours, import a CSV, close; allocate, re-allocate, carry over."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from ambito_common.db import session_scope
from ambito_common.identity import AMBITO_ADMIN, COMUNE_OPERATOR
from sqlalchemy import func, select
from vouchers import services
from vouchers.models import Voucher, VoucherMonth

FNPS = "fund=fnps&period=2026"


@pytest.fixture
def vouchers_browser(vouchers_client, vouchers_auth):  # type: ignore[no-untyped-def]
    """The test client with a person's identity cookie, as the gateway sets it."""

    def login(role: str = AMBITO_ADMIN, comune: str | None = None):  # type: ignore[no-untyped-def]
        token = vouchers_auth(role, comune)["Authorization"].removeprefix("Bearer ")
        vouchers_client.set_cookie("ambito_identity", token)
        return vouchers_client

    return login


def _hidden(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', html).group(1)


def _form(client, path: str, marker: str = "") -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The CSRF token and the idempotency key of the form on ``path`` (the one after ``marker``)."""
    html = client.get(path).get_data(as_text=True)
    html = html[html.index(marker):] if marker else html
    return {"csrf_token": _hidden(html, "csrf_token"), "form_key": _hidden(html, "form_key")}


def _count(runtime, model) -> int:  # type: ignore[no-untyped-def]
    with runtime.session_factory() as session:
        return session.scalar(select(func.count()).select_from(model))


VOUCHER = {"comune": "songavazzo", "beneficiary_name": "Maria Bianchi", "beneficiary_ref": "CS-2026-001",
           "isee": "7.000,00", "provider": "Cooperativa Il Sentiero", "profile": "OSS",
           "hours_per_week": "3", "weeks": "20", "contact_email": "maria.bianchi@example.org"}


def test_vouchers_operator_enters_a_voucher_once_even_on_a_double_submit(vouchers_browser, vouchers_runtime):
    client = vouchers_browser(COMUNE_OPERATOR, "songavazzo")
    new = client.get(f"/vouchers/buoni/nuovo?{FNPS}").get_data(as_text=True)
    assert 'value="songavazzo"' in new and 'value="clusone"' not in new  # only their comune to choose
    form = {**_form(client, f"/vouchers/buoni/nuovo?{FNPS}"), **VOUCHER}
    first = client.post(f"/vouchers/buoni/nuovo?{FNPS}", data=form)
    again = client.post(f"/vouchers/buoni/nuovo?{FNPS}", data=form)  # the same form sent twice
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    assert _count(vouchers_runtime, Voucher) == 1
    page = client.get(first.headers["Location"]).get_data(as_text=True)
    # 3 h x 20 weeks x (24,80 € - 5,00 € that the family pays by the comune's rule for ISEE 7.000 €).
    assert "Buono registrato." in page and "5,00 €" in page and "1.188,00 €" in page and "Attivo" in page
    assert re.search(r'id="documento">n\. 0000001/\d{4}: In preparazione<', page)  # sealed by documents
    with vouchers_runtime.session_factory() as session:
        assert session.scalar(select(Voucher.contact_email)) == "maria.bianchi@example.org"
    listing = client.get(f"/vouchers/buoni?{FNPS}").get_data(as_text=True)
    assert "Maria Bianchi" in listing and "1.188,00 €" in listing


def test_vouchers_voucher_form_shows_errors_per_field_and_keeps_values(vouchers_browser, vouchers_runtime):
    client = vouchers_browser(COMUNE_OPERATOR, "songavazzo")
    form = {**_form(client, f"/vouchers/buoni/nuovo?{FNPS}"), **VOUCHER, "beneficiary_name": "",
            "hours_per_week": "tre", "isee": "7,000.00"}
    refused = client.post(f"/vouchers/buoni/nuovo?{FNPS}", data=form)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Il modulo contiene 3 errori" in html
    assert "Ore non valide: ad esempio 2,5." in html and "Importo non valido" in html
    assert 'value="tre"' in html and 'value="CS-2026-001"' in html  # what was typed stays
    assert _hidden(html, "form_key") == form["form_key"]
    other = client.post(f"/vouchers/buoni/nuovo?{FNPS}", data={**form, **VOUCHER, "comune": "clusone"})
    assert other.status_code == 422 and "Scegliere una delle voci" in other.get_data(as_text=True)
    assert _count(vouchers_runtime, Voucher) == 0
    no_token = client.post(f"/vouchers/buoni/nuovo?{FNPS}", data={**VOUCHER, "form_key": "x"})
    assert no_token.status_code == 400 and _count(vouchers_runtime, Voucher) == 0


def _issue(client) -> str:  # type: ignore[no-untyped-def]
    created = client.post(f"/vouchers/buoni/nuovo?{FNPS}",
                          data={**_form(client, f"/vouchers/buoni/nuovo?{FNPS}"), **VOUCHER})
    return created.headers["Location"].split("?")[0]


def test_vouchers_hours_and_closing_through_the_voucher_page(vouchers_browser, vouchers_runtime):
    client = vouchers_browser(COMUNE_OPERATOR, "songavazzo")
    path = _issue(client)
    hours = {**_form(client, path, 'id="ore"'), "month": "2026-11", "hours": "12,5"}
    assert client.post(path + "/ore", data=hours).status_code == 303
    assert client.post(path + "/ore", data=hours).status_code == 303  # a double submit: recorded once
    page = client.get(path).get_data(as_text=True)
    assert "12,50" in page and "247,50 €" in page  # 12.5 h x 19,80 €
    assert _count(vouchers_runtime, VoucherMonth) == 1

    same_month = client.post(path + "/ore", data={**_form(client, path, 'id="ore"'), "month": "2026-11",
                                                  "hours": "1"})
    html = same_month.get_data(as_text=True)
    assert same_month.status_code == 409 and "già registrate" in html and 'value="1"' in html
    bad = client.post(path + "/ore", data={**_form(client, path, 'id="ore"'), "month": "11/2026",
                                           "hours": ""})
    assert bad.status_code == 422 and "Mese nel formato AAAA-MM" in bad.get_data(as_text=True)

    close = _form(client, path, 'id="chiusura"')
    assert client.post(path + "/chiusura", data=close).status_code == 303
    assert client.post(path + "/chiusura", data=close).status_code == 303  # the same form: no second close
    closed = client.get(path).get_data(as_text=True)
    assert "Chiuso" in closed and 'id="chiusura"' not in closed
    with session_scope(vouchers_runtime.session_factory) as session:
        budget = services.find_budget(session, fund_code="fnps", period_code="2026", comune="songavazzo")
        assert budget.reserved == 0 and budget.posted == 24_750


def test_vouchers_operator_cannot_open_another_comune_voucher(vouchers_browser):
    client = vouchers_browser(COMUNE_OPERATOR, "songavazzo")
    path = _issue(client)
    other = vouchers_browser(COMUNE_OPERATOR, "clusone")
    assert other.get(path).status_code == 403
    assert other.get(f"/vouchers/assegnazioni?{FNPS}").status_code == 403  # Ambito staff only


def test_vouchers_csv_page_reports_each_bad_row_and_imports_none(vouchers_browser, vouchers_runtime):
    client = vouchers_browser(COMUNE_OPERATOR, "songavazzo")
    voucher_id = _issue(client).rsplit("/", 1)[1]
    broken = f"buono;mese;ore\n{voucher_id};2026-10;4,5\n{voucher_id};2026-13;1\n999;2026-10;x\n".encode()
    refused = client.post("/vouchers/ore/importa", data={
        **_form(client, "/vouchers/ore/importa"), "file": (io.BytesIO(broken), "ore.csv")})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "2 righe non valide: nessuna riga importata." in html
    assert "riga 3" in html and "Mese «2026-13» non valido" in html and "riga 4" in html
    assert "Buono «999» inesistente." in html and "riga 2" not in html
    assert _count(vouchers_runtime, VoucherMonth) == 0

    good = f"buono;mese;ore\n{voucher_id};2026-10;4,5\n".encode()
    form = _form(client, "/vouchers/ore/importa")
    done = client.post("/vouchers/ore/importa", data={**form, "file": (io.BytesIO(good), "ore.csv")})
    twice = client.post("/vouchers/ore/importa", data={**form, "file": (io.BytesIO(good), "ore.csv")})
    assert done.status_code == twice.status_code == 303
    assert "Righe importate: 1." in client.get(done.headers["Location"]).get_data(as_text=True)
    assert _count(vouchers_runtime, VoucherMonth) == 1


def _budgets(runtime, fund: str, period: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with runtime.session_factory() as session:
        return {row["comune"]: row["available"] for row in services.budget_rows(
            session, fund_code=fund, period_code=period,
            comuni=[{"code": c} for c in ("clusone", "gromo", "ardesio", "azzone")])}


def test_vouchers_admin_allocates_by_formula_and_by_hand_then_moves_money(vouchers_browser, vouchers_runtime):
    client = vouchers_browser()
    page = "/vouchers/assegnazioni?fund=residenzialita&period=2026"
    path = "/vouchers/assegnazioni/{}?fund=residenzialita&period=2026"
    formula = {**_form(client, page, 'id="formula"'), "total": "100.000,00", "base_per_comune": "1.000"}
    assert client.post(path.format("formula"), data=formula).status_code == 303
    assert client.post(path.format("formula"), data=formula).status_code == 303  # allocated once
    with vouchers_runtime.session_factory() as session:
        period = services.get_period(session, "residenzialita", "2026")
        assert period.allocated == 10_000_000  # the shares add up to the cent

    hand = {**_form(client, page, 'id="mano"'), "gromo": "-500,00", "azzone": "250"}
    done = client.post(path.format("mano"), data=hand)
    assert done.status_code == 303 and "Assegnazione registrata." in client.get(done.headers["Location"]).text
    before = _budgets(vouchers_runtime, "residenzialita", "2026")
    moved = client.post(path.format("riassegnazione"), data={
        **_form(client, page, 'id="riassegnazione"'), "from_comune": "clusone", "to_comune": "gromo",
        "amount": "100,00"})
    assert moved.status_code == 303
    after = _budgets(vouchers_runtime, "residenzialita", "2026")
    assert (after["clusone"], after["gromo"]) == (before["clusone"] - 10_000, before["gromo"] + 10_000)

    too_much = client.post(path.format("riassegnazione"), data={
        **_form(client, page, 'id="riassegnazione"'), "from_comune": "azzone", "to_comune": "gromo",
        "amount": "1.000.000,00"})
    html = too_much.get_data(as_text=True)
    assert too_much.status_code in (409, 422) and "Il modulo contiene un errore" in html
    assert 'value="1.000.000,00"' in html
    empty = client.post(path.format("mano"), data=_form(client, page, 'id="mano"'))
    assert empty.status_code == 422 and "Indicare almeno un importo." in empty.get_data(as_text=True)


def test_vouchers_admin_carries_unspent_money_into_the_next_period(vouchers_browser, vouchers_runtime):
    with session_scope(vouchers_runtime.session_factory) as session:
        services.create_period(session, fund_code="fnps", code="2027", start=dt.date(2027, 1, 1),
                               end=dt.date(2027, 12, 31), amount_received=0, actor="admin")
    client = vouchers_browser()
    page = f"/vouchers/assegnazioni?{FNPS}"
    assert "Riporta nel periodo successivo" in client.get(page).get_data(as_text=True)
    before = _budgets(vouchers_runtime, "fnps", "2026")["azzone"]
    carried = client.post(f"/vouchers/assegnazioni/riporto?{FNPS}", data={
        **_form(client, page, 'id="riporto"'), "comune": "azzone", "to_period": "2027",
        "carry_amount": "10,00"})
    assert carried.status_code == 303
    assert _budgets(vouchers_runtime, "fnps", "2026")["azzone"] == before - 1_000
    assert _budgets(vouchers_runtime, "fnps", "2027")["azzone"] == 1_000
    wrong = client.post(f"/vouchers/assegnazioni/riporto?{FNPS}", data={
        **_form(client, page, 'id="riporto"'), "comune": "azzone", "to_period": "2025"})
    assert wrong.status_code == 422 and "Scegliere una delle voci" in wrong.get_data(as_text=True)


def test_vouchers_csv_page_refuses_a_missing_a_large_or_a_binary_file(vouchers_browser, vouchers_runtime):
    client = vouchers_browser(COMUNE_OPERATOR, "songavazzo")
    for upload, message in ((None, "Scegliere un file CSV."),
                            ((io.BytesIO(b"x" * (1024 * 1024 + 1)), "ore.csv"), "dimensione massima di 1 MB"),
                            ((io.BytesIO(b"\xff\xfe\x00bin"), "ore.csv"), "CSV in UTF-8")):
        data = _form(client, "/vouchers/ore/importa") | ({"file": upload} if upload else {})
        refused = client.post("/vouchers/ore/importa", data=data)
        assert refused.status_code == 422 and message in refused.get_data(as_text=True)
    assert _count(vouchers_runtime, VoucherMonth) == 0
