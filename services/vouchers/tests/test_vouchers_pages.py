"""Budget and ledger pages, and the CSV export: what admins and comune operators see."""

from __future__ import annotations

import csv
import io
import re
import zipfile

from ambito_common.identity import COMUNE_OPERATOR

B2 = "fund=fna-b2&period=2026-2027"


def test_vouchers_budget_page_shows_every_comune_by_sub_ambito_with_bars(vouchers_client, vouchers_auth):
    page = vouchers_client.get(f"/vouchers/budget?{B2}", headers=vouchers_auth())
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Fondo Non Autosufficienza - misura B2" in html
    for name in ("Oltressenda Alta", "Vilminore di Scalve", "Totale Val di Scalve", "Totale fondo"):
        assert name in html
    assert "450.000,00 €" in html  # the fund's total allocation
    assert html.count('class="progress"') == 24


def test_vouchers_operator_pages_show_only_their_comune(vouchers_client, vouchers_auth):
    operator = vouchers_auth(COMUNE_OPERATOR, "gromo")
    html = vouchers_client.get(f"/vouchers/budget?{B2}", headers=operator).get_data(as_text=True)
    assert "Gromo" in html and "Clusone</th>" not in html and "Totale fondo" not in html
    rows = list(csv.reader(io.StringIO(vouchers_client.get(f"/vouchers/budget.csv?{B2}", headers=operator)
                                       .get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))
    assert [row[0] for row in rows] == ["comune", "gromo"]
    ledger = vouchers_client.get(f"/vouchers/registro?{B2}", headers=operator).get_data(as_text=True)
    assert "Assegnazione" in ledger and "gromo · Disponibile" in ledger
    assert "clusone · " not in ledger and "Ambito · " not in ledger


def test_vouchers_csv_export_has_every_comune_in_cents(vouchers_client, vouchers_auth):
    response = vouchers_client.get(f"/vouchers/budget.csv?{B2}", headers=vouchers_auth())
    assert response.mimetype == "text/csv"
    assert "budget-fna-b2-2026-2027.csv" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))
    assert len(rows) == 24
    assert sum(int(row["assegnato"]) for row in rows) == 45_000_000


def test_vouchers_ledger_page_lists_movements_and_who_made_them(vouchers_client, vouchers_auth):
    admin = vouchers_auth(user="mario.rossi")
    vouchers_client.post("/api/vouchers/reservations", headers={**admin, "Idempotency-Key": "k"}, json={
        "fund": "fna-b2", "period": "2026-2027", "comune": "parre", "amount": 12_345, "reference": "buono 9"})
    html = vouchers_client.get(f"/vouchers/registro?{B2}", headers=admin).get_data(as_text=True)
    assert "Prenotazione" in html and "mario.rossi" in html and "buono 9" in html and "123,45 €" in html
    assert "Somma ricevuta" in html


def test_vouchers_pages_send_anonymous_people_to_log_in(vouchers_client):
    response = vouchers_client.get(f"/vouchers/budget?{B2}")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/refresh?next=")


def test_vouchers_xlsx_exports_are_spreadsheets_with_numbers(vouchers_client, vouchers_auth):
    response = vouchers_client.get(f"/vouchers/budget.xlsx?{B2}", headers=vouchers_auth())
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.testzip() is None
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    assert sheet.count("<row ") == 25
    allocated = [int(v) for v in re.findall(r'<c r="C\d+"><v>(\d+)</v>', sheet)]
    assert sum(allocated) == 45_000_000

    operator = vouchers_auth(COMUNE_OPERATOR, "piario")
    ledger = vouchers_client.get(f"/vouchers/registro.csv?{B2}", headers=operator)
    rows = list(csv.DictReader(io.StringIO(ledger.get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))
    assert {row["comune"] for row in rows} == {"piario"} and rows[0]["tipo"] == "allocation"
    assert vouchers_client.get(f"/vouchers/registro.xlsx?{B2}", headers=vouchers_auth()).status_code == 200


def test_vouchers_reimbursement_page_explains_the_pro_rata(vouchers_client, vouchers_auth):
    for comune, asked in (("clusone", 12_000_000), ("rovetta", 12_000_000)):
        vouchers_client.post("/api/vouchers/reimbursements", headers={
            **vouchers_auth(COMUNE_OPERATOR, comune), "Idempotency-Key": comune}, json={
            "fund": "residenzialita", "period": "2026", "comune": comune, "lines": [{
                "beneficiary_ref": "CS-1", "service": "RSA", "service_period": "2026",
                "amount_paid": asked, "amount_asked": asked}]})
    query = "fund=residenzialita&period=2026"
    html = vouchers_client.get(f"/vouchers/rimborsi?{query}", headers=vouchers_auth()).get_data(as_text=True)
    assert "chiedono 240.000,00 €" in html and "restano 180.000,00 €" in html and "75,00%" in html
    assert html.count("90.000,00 €") == 2
    operator = vouchers_auth(COMUNE_OPERATOR, "rovetta")
    text = vouchers_client.get(f"/vouchers/rimborsi?{query}", headers=operator).get_data(as_text=True)
    assert "Rovetta</th>" in text and "Clusone</th>" not in text and "Riparto proporzionale" not in text
