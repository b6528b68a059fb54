"""Demonstration funds, periods, rules, populations and allocations.

``<data_dir>/demo/vouchers.json`` describes funds whose current period is computed
from the day of loading (``start_month``: the period starting on the 1st of that
month that contains ``today``, twelve months long), so a demo always has money to
spend now. Loading can run at every start: funds are upserted; a period, its
receipt and its allocation are booked only when the period is new (money moves are
movements, never rewritten); rules are added when absent; populations are only
filled in where missing, so the Ambito's edits survive.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import services
from .models import ComunePopulation, FundRule, Period

DEMO_ACTOR = "demo"


def current_period(today: dt.date, start_month: int) -> tuple[str, dt.date, dt.date]:
    """Code, start and end of the twelve-month period starting in ``start_month`` containing ``today``."""
    year = today.year if today.month >= start_month else today.year - 1
    start = dt.date(year, start_month, 1)
    end = dt.date(year + 1, start_month, 1) - dt.timedelta(days=1)
    code = str(year) if start_month == 1 else f"{year}-{year + 1}"
    return code, start, end


def load_demo_data(session: Session, data_dir: Path, today: dt.date) -> list[Period]:
    """Load ``demo/vouchers.json``; returns the current period of every demo fund."""
    spec = json.loads((data_dir / "demo" / "vouchers.json").read_text(encoding="utf-8"))
    comuni = [c["code"] for c in json.loads((data_dir / "ambito.json").read_text(encoding="utf-8"))["comuni"]]
    _load_populations(session, spec["populations"])
    return [_load_fund(session, fund, comuni, today) for fund in spec["funds"]]


def _load_populations(session: Session, spec: dict[str, Any]) -> None:
    as_of = dt.date.fromisoformat(spec["as_of"])
    for comune, population in spec["comuni"].items():
        if session.get(ComunePopulation, comune) is None:
            services.set_population(session, comune=comune, population=population, as_of=as_of,
                                    actor=DEMO_ACTOR)


def _load_fund(session: Session, spec: dict[str, Any], comuni: list[str], today: dt.date) -> Period:
    fund = services.upsert_fund(session, code=spec["code"], name=spec["name"],
                                description=spec.get("description", ""))
    for rule in spec.get("rules", []):
        valid_from = dt.date.fromisoformat(rule["valid_from"])
        known = select(FundRule.id).where(FundRule.fund_id == fund.id, FundRule.kind == rule["kind"],
                                          FundRule.valid_from == valid_from)
        if session.scalar(known) is None:
            services.add_rule(session, fund_code=fund.code, kind=rule["kind"], params=rule["params"],
                              valid_from=valid_from)
    code, start, end = current_period(today, spec["period"]["start_month"])
    existing = session.scalar(select(Period).where(Period.fund_id == fund.id, Period.code == code))
    if existing is not None:
        return existing
    period = services.create_period(session, fund_code=fund.code, code=code, start=start, end=end,
                                    amount_received=spec["period"]["amount_received"], actor=DEMO_ACTOR)
    allocation = spec.get("allocation")
    if allocation:
        services.allocate_by_formula(session, period_id=period.id, total=period.amount_received,
                                     base_per_comune=allocation.get("base_per_comune", 0), comuni=comuni,
                                     actor=DEMO_ACTOR)
    return period
