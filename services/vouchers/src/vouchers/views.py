"""Pages of vouchers (``/vouchers/...``): budgets per comune, sub-ambito and fund, the ledger, CSV exports.

ambito_admin sees every comune; a comune_operator only their own.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from ambito_common.db import db_session
from ambito_common.errors import NotFound
from ambito_common.identity import AMBITO_ADMIN, COMUNE_OPERATOR, current_identity, require_roles
from flask import Blueprint, Response, current_app, render_template, request

from . import reimbursements, services, xlsx
from .models import Fund, Period

bp = Blueprint("vouchers_pages", __name__)
STAFF = (AMBITO_ADMIN, COMUNE_OPERATOR)

MOVEMENT_LABELS = {
    services.RECEIPT: "Somma ricevuta", services.ALLOCATION: "Assegnazione",
    services.REALLOCATION: "Riassegnazione", services.CARRY_OVER: "Riporto", services.RESERVE: "Prenotazione",
    services.POST: "Spesa", services.VOID: "Annullamento", services.EXPIRE: "Scadenza",
    services.REVERSAL: "Storno", services.REIMBURSEMENT: "Rimborso",
}
ACCOUNT_LABELS = {"income": "Entrate", "pool": "Da assegnare", "available": "Disponibile",
                  "reserved": "Prenotato", "spent": "Speso"}
REQUEST_LABELS = {"filed": "Presentata", "approved": "Approvata", "partially_approved": "Approvata in parte",
                  "rejected": "Respinta", "paid": "Pagata"}
CSV_HEADER: list[str | int] = ["comune", "sub_ambito", "assegnato", "prenotato", "speso", "disponibile",
                               "in_attesa", "importo_in_attesa"]
LEDGER_HEADER: list[str | int] = ["movimento", "data_utc", "tipo", "autore", "causale", "comune", "conto",
                                  "importo"]


def _selection() -> tuple[list[Fund], Fund, Period]:
    """The funds, and the fund and period asked for (by default the first fund, its latest period)."""
    funds = [f for f in services.list_funds(db_session()) if f.periods]
    if not funds:
        raise NotFound("Nessun fondo con periodi.")
    fund = next((f for f in funds if f.code == request.args.get("fund")), funds[0])
    period = next((p for p in fund.periods if p.code == request.args.get("period")), fund.periods[-1])
    return funds, fund, period


def _visible_rows(fund: Fund, period: Period) -> list[dict[str, Any]]:
    rows = services.budget_rows(db_session(), fund_code=fund.code, period_code=period.code,
                                comuni=current_app.extensions["ambito"]["comuni"])
    comune = _comune_filter()
    return rows if comune is None else [row for row in rows if row["comune"] == comune]


def _total(rows: list[dict[str, Any]], label: str) -> dict[str, Any]:
    keys = ("allocated", "reserved", "spent", "available", "waiting", "waiting_amount")
    return {"label": label, **{key: sum(row[key] for row in rows) for key in keys}}


@bp.get("/vouchers/")
@bp.get("/vouchers/budget")
@require_roles(*STAFF)
def budget():  # type: ignore[no-untyped-def]
    """Allocated, reserved, spent, available and waiting per comune, with subtotals per sub-ambito."""
    funds, fund, period = _selection()
    rows = _visible_rows(fund, period)
    ambito = current_app.extensions["ambito"]
    names = {c["code"]: c["name"] for c in ambito["comuni"]}
    groups = []
    for sub in ambito.get("sub_ambiti", []):
        members = [row for row in rows if row["sub_ambito"] == sub["code"]]
        if members:
            groups.append({"name": sub["name"], "rows": members, "total": _total(members, sub["name"])})
    return render_template("vouchers/budget.html", funds=funds, fund=fund, period=period, groups=groups,
                           names=names, total=_total(rows, fund.name), show_totals=len(rows) > 1)


def _budget_table(fund: Fund, period: Period) -> list[list[str | int]]:
    return [CSV_HEADER, *([row["comune"], row["sub_ambito"], row["allocated"], row["reserved"], row["spent"],
                           row["available"], row["waiting"], row["waiting_amount"]]
                          for row in _visible_rows(fund, period))]


def _ledger_table(period: Period) -> list[list[str | int]]:
    rows: list[list[str | int]] = [LEDGER_HEADER]
    for m in services.movements(db_session(), period_id=period.id, comune=_comune_filter()):
        rows += [[m["id"], m["created_at"].isoformat(), m["kind"], m["actor"], m["memo"], e["comune"],
                  e["account"], e["amount"]] for e in m["entries"]]
    return rows


def _download(rows: list[list[str | int]], stem: str, fmt: str) -> Response:
    if fmt == "xlsx":
        body: bytes | str = xlsx.workbook(stem, rows)
        mimetype = xlsx.MIMETYPE
    else:
        out = io.StringIO()
        csv.writer(out, delimiter=";").writerows(rows)
        body, mimetype = "\ufeff" + out.getvalue(), "text/csv"
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'})


@bp.get("/vouchers/budget.<any(csv, xlsx):fmt>")
@require_roles(*STAFF)
def budget_export(fmt: str):  # type: ignore[no-untyped-def]
    """The budget table as CSV or XLSX (cents), for spreadsheets."""
    _, fund, period = _selection()
    return _download(_budget_table(fund, period), f"budget-{fund.code}-{period.code}", fmt)


@bp.get("/vouchers/registro.<any(csv, xlsx):fmt>")
@require_roles(*STAFF)
def ledger_export(fmt: str):  # type: ignore[no-untyped-def]
    """Every ledger entry of the period, one row each, as CSV or XLSX."""
    _, fund, period = _selection()
    return _download(_ledger_table(period), f"registro-{fund.code}-{period.code}", fmt)


def _comune_filter() -> str | None:
    """None for Ambito staff (everything), else the operator's comune."""
    identity = current_identity()
    if identity is not None and AMBITO_ADMIN in identity.roles:
        return None
    return (identity.comune if identity is not None else None) or ""


@bp.get("/vouchers/registro")
@require_roles(*STAFF)
def ledger():  # type: ignore[no-untyped-def]
    """Every movement of the period and who made it (a comune operator: their comune's only)."""
    funds, fund, period = _selection()
    movements = services.movements(db_session(), period_id=period.id, comune=_comune_filter())
    return render_template("vouchers/ledger.html", funds=funds, fund=fund, period=period, movements=movements,
                           labels=MOVEMENT_LABELS, accounts=ACCOUNT_LABELS)


@bp.get("/vouchers/rimborsi")
@require_roles(*STAFF)
def reimbursement_requests():  # type: ignore[no-untyped-def]
    """The period's reimbursement requests and, for Ambito staff, the pro-rata plan explained per comune."""
    funds, fund, period = _selection()
    comune = _comune_filter()
    requests = reimbursements.list_requests(db_session(), period_id=period.id, comune=comune)
    plan = (reimbursements.pro_rata_plan(db_session(), fund_code=fund.code, period_code=period.code)
            if comune is None else None)
    names = {c["code"]: c["name"] for c in current_app.extensions["ambito"]["comuni"]}
    return render_template("vouchers/reimbursements.html", funds=funds, fund=fund, period=period,
                           requests=requests, plan=plan, names=names, labels=REQUEST_LABELS)
