"""Calls as published: the API, the pages and the reference data behind them."""

from __future__ import annotations

import datetime as dt

from ambito_common.db import session_scope
from ambito_common.web import ROME
from intake.models import Area, Call, Meeting
from intake.reference_data import load_demo_data, load_reference_data
from lxml import html
from sqlalchemy import func, select

PLACE = "Sala Legrenzi – Palazzo Marinoni Barca – Clusone, ingresso da Vicolo Caio"


def test_intake_calls_api_lists_open_calls_first_with_areas_and_meetings(intake_client) -> None:
    response = intake_client.get("/api/intake/calls")
    assert response.status_code == 200
    calls = response.get_json()
    assert [c["slug"] for c in calls] == ["pdz-demo", "pdz-2025-2027"]
    demo, seed = calls
    assert set(seed) == {"slug", "title", "status", "deadline", "areas"}
    assert seed["title"] == ("Avviso di manifestazione d'interesse per partecipare alla co-programmazione "
                             "del Piano di Zona 2025-2027 dell'Ambito Territoriale Sociale Valle Seriana "
                             "Superiore e Valle di Scalve")
    assert seed["status"] == "closed"
    assert seed["deadline"] == "2024-10-02T23:59:59+02:00"
    assert [(a["code"], a["title"]) for a in seed["areas"]] == [
        ("invecchiamento-disabilita", "Invecchiamento, disabilità, non autosufficienza"),
        ("minori-famiglia", "Minori e famiglia"),
        ("inclusione-sociale", "Inclusione sociale"),
    ]
    meetings = {a["code"]: [m["date"] for m in a["meetings"]] for a in seed["areas"]}
    assert meetings == {"invecchiamento-disabilita": ["2024-10-07", "2024-10-28"],
                        "minori-famiglia": ["2024-10-09", "2024-10-23"],
                        "inclusione-sociale": ["2024-10-14", "2024-10-21"]}
    first = seed["areas"][0]["meetings"][0]
    assert first == {"number": 1, "date": "2024-10-07", "start": "16:00", "end": "19:00", "place": PLACE}
    assert demo["status"] == "open" and demo["title"].startswith("[DEMO] ")
    deadline = dt.datetime.fromisoformat(demo["deadline"])
    assert deadline.date() == dt.date.today() + dt.timedelta(days=60)
    assert (deadline.hour, deadline.minute, deadline.second) == (23, 59, 59)
    assert deadline.utcoffset() == deadline.astimezone(ROME).utcoffset()


def test_intake_calls_api_one_call_and_unknown_call(intake_client) -> None:
    one = intake_client.get("/api/intake/calls/pdz-2025-2027")
    assert one.status_code == 200 and one.get_json()["deadline"] == "2024-10-02T23:59:59+02:00"
    missing = intake_client.get("/api/intake/calls/nessuno")
    assert missing.status_code == 404
    assert missing.mimetype == "application/problem+json"
    assert missing.get_json()["detail"] == "Avviso non trovato."


def test_intake_calls_reference_data_loads_idempotently(intake_runtime, intake_data_dir) -> None:
    with session_scope(intake_runtime.session_factory) as session:
        before = _counts(session)
        seed_id = session.scalar(select(Call.id).where(Call.slug == "pdz-2025-2027"))
        load_reference_data(session, intake_data_dir)
        calls = load_demo_data(session, intake_data_dir, dt.date(2030, 1, 10))
    assert before == (2, 6, 12)
    with session_scope(intake_runtime.session_factory) as session:
        assert _counts(session) == before
        assert session.scalar(select(Call.id).where(Call.slug == "pdz-2025-2027")) == seed_id
        seed = session.scalar(select(Call).where(Call.slug == "pdz-2025-2027"))
        assert seed.published_on == dt.date(2024, 9, 12) and seed.demo is False
        assert seed.deadline == dt.datetime(2024, 10, 2, 21, 59, 59, tzinfo=dt.UTC)
        assert {m.place for a in seed.areas for m in a.meetings} == {PLACE}
        assert {(m.start, m.end) for a in seed.areas for m in a.meetings} == {("16:00", "19:00")}
        demo = session.get(Call, calls[0].id)
        # The demo call's dates follow the day it is loaded.
        assert demo.demo is True
        assert demo.deadline.astimezone(ROME) == dt.datetime(2030, 3, 11, 23, 59, 59, tzinfo=ROME)
        assert demo.published_on == dt.date(2030, 1, 7)
        assert all(m.date > dt.date(2030, 3, 11) for a in demo.areas for m in a.meetings)


def _counts(session) -> tuple[int, int, int]:
    return (session.scalar(select(func.count()).select_from(Call)),
            session.scalar(select(func.count()).select_from(Area)),
            session.scalar(select(func.count()).select_from(Meeting)))


def test_intake_calls_page_lists_calls_open_first(intake_client) -> None:
    page = intake_client.get("/intake/avvisi")
    assert page.status_code == 200
    doc = html.fromstring(page.text)
    cards = doc.xpath("//li[contains(@class, 'card-wrapper')]")
    items = [" ".join(li.text_content().split()) for li in cards]
    assert len(items) == 2
    assert items[0].startswith("DEMO Aperto [DEMO]")
    assert "Chiuso" in items[1] and "chiuso il 02/10/2024" in items[1]
    assert doc.xpath("//a[@href='/intake/avvisi/pdz-2025-2027']")


def test_intake_calls_page_of_the_closed_seed_call(intake_client) -> None:
    page = intake_client.get("/intake/avvisi/pdz-2025-2027")
    assert page.status_code == 200
    text = " ".join(html.fromstring(page.text).text_content().split())
    assert "Avviso chiuso il 02/10/2024" in text
    assert "Presenta la domanda" not in text and "DEMO" not in text
    assert "Lunedì 07/10/2024 16:00–19:00 " + PLACE in text
    assert "Mercoledì 23/10/2024" in text
    assert "protocollo@pec.comune.clusone.bg.it" in text
    assert "a) Ente del Terzo settore iscritto al RUNTS" in text and "Ente di patronato" in text
    assert "Oggetto del procedimento di co-programmazione" in text


def test_intake_calls_page_of_the_open_demo_call(intake_client) -> None:
    page = intake_client.get("/intake/avvisi/pdz-demo")
    doc = html.fromstring(page.text)
    assert doc.xpath("//span[contains(@class, 'badge')][normalize-space()='DEMO']")
    button = doc.xpath("//a[normalize-space()='Presenta la domanda']")
    assert button and button[0].get("href") == "/intake/avvisi/pdz-demo/domanda"
    deadline = (dt.date.today() + dt.timedelta(days=60)).strftime("%d/%m/%Y")
    assert f"{deadline} alle 23:59" in " ".join(doc.text_content().split())


def test_intake_calls_closed_or_unknown_call_pages(intake_client) -> None:
    closed = intake_client.get("/intake/avvisi/pdz-2025-2027/domanda")
    assert closed.status_code == 409
    assert "02/10/2024" in closed.text
    missing = intake_client.get("/intake/avvisi/nessuno")
    assert missing.status_code == 404
    assert "Avviso non trovato." in missing.text
