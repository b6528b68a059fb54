"""Budget and ledger pages, and the CSV export: what admins and comune operators see."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from xml.etree import ElementTree

from ambito_common.identity import COMUNE_OPERATOR

from .conftest import vouchers_written as _write

B2 = "fund=fna-b2&period=2026-2027"


def test_vouchers_budget_page_shows_every_comune_by_sub_ambito_with_bars(vouchers_client, vouchers_auth):
    page = vouchers_client.get(f"/vouchers/budget?{B2}", headers=vouchers_auth())
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Fondo Non Autosufficienza - misura B2" in html
    for name in ("Oltressenda Alta", "Vilminore di Scalve", "Totale Val di Scalve", "Totale fondo"):
        assert name in html
    assert "450.000,00 €" in html  # the fund's total allocation
    # A bar for each of the 24 comuni, each of the 5 sub-ambiti's subtotals and the fund's total.
    assert html.count('class="progress"') == 24 + 5 + 1


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


def _bar_widths(html: str, heading: str) -> list[str]:
    """The widths (spent, reserved) of the bar in the table row headed ``heading``."""
    row = re.search(rf'<th scope="row">{re.escape(heading)}</th>(.*?)</tr>', html, re.S)
    assert row is not None, heading
    return re.findall(r'style="width: ([\d.]+)%"', row.group(1))


def test_vouchers_budget_bars_show_the_share_spent_and_reserved(vouchers_client, vouchers_auth):
    admin = vouchers_auth()
    rows = vouchers_client.get("/api/vouchers/budgets?fund=fna-b2&period=2026-2027", headers=admin).get_json()
    allocated = {row["comune"]: row["allocated"] for row in rows}
    spent, reserved = allocated["azzone"] // 4, allocated["azzone"] // 2
    reservation = {"fund": "fna-b2", "period": "2026-2027", "comune": "azzone", "reference": "x"}
    paid = _write(vouchers_client, admin, "/api/vouchers/reservations", {**reservation, "amount": spent})
    _write(vouchers_client, admin, f"/api/vouchers/reservations/{paid['id']}/post", {"amount": spent})
    _write(vouchers_client, admin, "/api/vouchers/reservations", {**reservation, "amount": reserved})

    html = vouchers_client.get(f"/vouchers/budget?{B2}", headers=admin).get_data(as_text=True)
    assert _bar_widths(html, "Azzone") == ["25.00", "50.00"]
    assert 'aria-label="Speso 25%, prenotato 50%"' in html
    assert _bar_widths(html, "Colere") == ["0.00", "0.00"]
    scalve = sum(allocated[c] for c in ("azzone", "colere", "schilpario", "vilminore-di-scalve"))
    assert _bar_widths(html, "Totale Val di Scalve") == [f"{100 * spent / scalve:.2f}",
                                                         f"{100 * reserved / scalve:.2f}"]
    assert _bar_widths(html, "Totale Val di Scalve") != ["0.00", "0.00"]
    assert _bar_widths(html, "Totale fondo") == [f"{100 * spent / 45_000_000:.2f}",
                                                 f"{100 * reserved / 45_000_000:.2f}"]


def test_vouchers_a_waiting_voucher_shows_in_the_page_and_the_csv(vouchers_client, vouchers_auth):
    admin, fnps = vouchers_auth(), "fund=fnps&period=2026"
    rows = vouchers_client.get(f"/api/vouchers/budgets?{fnps}", headers=admin).get_json()
    available = next(row for row in rows if row["comune"] == "onore")["available"]
    _write(vouchers_client, admin, "/api/vouchers/reservations", {
        "fund": "fnps", "period": "2026", "comune": "onore", "amount": available, "reference": "tutto"})
    voucher = _write(vouchers_client, admin, "/api/vouchers/vouchers", {
        "fund": "fnps", "period": "2026", "comune": "onore", "beneficiary_ref": "CS-9",
        "beneficiary_name": "Anna Verdi", "isee": 700_000, "provider": "Cooperativa Il Sentiero",
        "profile": "ASA", "hours_per_week": 200, "weeks": 10})
    assert voucher["status"] == "waiting"

    html = vouchers_client.get(f"/vouchers/budget?{fnps}", headers=admin).get_data(as_text=True)
    onore = re.search(r'<th scope="row">Onore</th>(.*?)</tr>', html, re.S).group(1)
    euro = f"{voucher['value'] // 100:,}".replace(",", ".") + f",{voucher['value'] % 100:02d} €"
    assert f"1 ({euro})" in onore
    assert re.search(r'<th scope="row">Rovetta</th>.*?<td class="text-end">–</td>', html, re.S)
    body = vouchers_client.get(f"/vouchers/budget.csv?{fnps}", headers=admin).get_data(as_text=True)
    exported = {row["comune"]: (row["in_attesa"], row["importo_in_attesa"])
                for row in csv.DictReader(io.StringIO(body.lstrip("\ufeff")), delimiter=";")}
    assert exported["onore"] == ("1", str(voucher["value"]))
    assert exported["rovetta"] == ("0", "0")


def _sheet_rows(data: bytes) -> list[list[str | int]]:
    """The first sheet of an XLSX file as rows of values: numbers as int, inline strings as str."""
    ns = {"x": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        root = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    return [[int(c.find("x:v", ns).text) if c.find("x:v", ns) is not None
             else c.find("x:is/x:t", ns).text or "" for c in row.findall("x:c", ns)]
            for row in root.iter(f"{{{ns['x']}}}row")]


def test_vouchers_ledger_xlsx_has_the_movements_and_an_operator_only_their_comune(vouchers_client,
                                                                                  vouchers_auth):
    admin = vouchers_auth(user="mario.rossi")
    made = _write(vouchers_client, admin, "/api/vouchers/reservations", {
        "fund": "fna-b2", "period": "2026-2027", "comune": "parre", "amount": 12_345, "reference": "buono 9"})
    sheet = _sheet_rows(vouchers_client.get(f"/vouchers/registro.xlsx?{B2}", headers=admin).data)
    assert sheet[0] == ["movimento", "data_utc", "tipo", "autore", "causale", "comune", "conto", "importo"]
    booked = sorted((row[5], row[6], row[7]) for row in sheet[1:] if row[2] == "reserve")
    assert booked == [("parre", "available", -12_345), ("parre", "reserved", 12_345)]
    assert all(isinstance(row[7], int) for row in sheet[1:])
    assert sum(row[7] for row in sheet[1:]) == 0  # double entry: every movement balances
    assert {row[5] for row in sheet[1:] if row[2] == "allocation"} >= {"parre", "gromo", ""}
    assert made["status"] == "reserved"

    operator = vouchers_auth(COMUNE_OPERATOR, "parre")
    own = _sheet_rows(vouchers_client.get(f"/vouchers/registro.xlsx?{B2}", headers=operator).data)
    assert len(own) > 2 and {row[5] for row in own[1:]} == {"parre"}
    assert ("reserve", "reserved", 12_345) in {(row[2], row[6], row[7]) for row in own[1:]}
