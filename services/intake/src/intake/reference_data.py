"""Calls are data: load them from the Ambito's data directory into the intake database.

``<data_dir>/calls/*.json`` are calls as published (fixed dates);
``<data_dir>/demo/calls/*.json`` are demonstration calls whose dates are
relative to the day they are loaded (``deadline_in_days``, ``in_days``), so a
demo installation always has an open call. Loading is an upsert by slug and
can run at every start: the call keeps its id, and so its applications; its
areas and meetings are replaced by what the file says.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Area, Call, Meeting
from .services import deadline_instant

CONTENT_KEYS = ("issuer", "object", "format", "declarations", "submission_channels", "privacy_notice")


def load_reference_data(session: Session, data_dir: Path) -> list[Call]:
    """Upsert every published call under ``data_dir/calls``; returns them."""
    return [_upsert(session, _read(path), demo=False, today=None)
            for path in sorted((data_dir / "calls").glob("*.json"))]


def load_demo_data(session: Session, data_dir: Path, today: dt.date) -> list[Call]:
    """Upsert the demo calls under ``data_dir/demo/calls``, dated from ``today``; returns them."""
    return [_upsert(session, _read(path), demo=True, today=today)
            for path in sorted((data_dir / "demo" / "calls").glob("*.json"))]


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _day(iso: str | None, in_days: int | None, today: dt.date | None) -> dt.date:
    """An absolute ISO date, or one ``in_days`` from ``today`` (demo calls only)."""
    if iso is not None:
        return dt.date.fromisoformat(iso)
    if today is None or in_days is None:
        raise ValueError("a date is missing (relative dates are for demo calls only)")
    return today + dt.timedelta(days=in_days)


def _upsert(session: Session, spec: dict[str, Any], *, demo: bool, today: dt.date | None) -> Call:
    deadline = spec["deadline"]
    call = session.scalar(select(Call).where(Call.slug == spec["slug"])) or Call(slug=spec["slug"])
    call.title = spec["title"]
    call.published_on = _day(spec.get("published_on"), spec.get("published_in_days", 0), today)
    call.deadline = deadline_instant(_day(deadline.get("date"), spec.get("deadline_in_days"), today),
                                     dt.time.fromisoformat(deadline["time"]),
                                     deadline.get("timezone", "Europe/Rome"))
    call.demo = demo
    call.content = {key: spec[key] for key in CONTENT_KEYS if key in spec}
    call.areas.clear()
    session.add(call)
    session.flush()  # delete the old areas before their codes come back
    for position, area in enumerate(spec["areas"], start=1):
        call.areas.append(Area(
            code=area["code"], title=area["title"], themes=area.get("themes", ""), position=position,
            meetings=[Meeting(number=m["number"], date=_day(m.get("date"), m.get("in_days"), today),
                              start=m["start"], end=m["end"], place=m["place"])
                      for m in area["meetings"]]))
    session.flush()
    return call
