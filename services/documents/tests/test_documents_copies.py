"""Courtesy copies (contract 4): once a package is built, each ``meta["copies"]`` address gets
the sealed primary PDF by platform mail, once, recorded as ``copy_sent`` on the timeline.

Embedded mode's mail URL is ``file://var/mail``: each message sent is an .eml file there.
"""

from __future__ import annotations

import email
from email.policy import default as default_policy
from pathlib import Path

import pytest
from documents import tasks
from documents.models import Package
from documents.services import COPIES_TASK, get_package
from sqlalchemy import func, select

COPIES = [{"name": "Anna Bianchi", "email": "anna.bianchi@example.it"},
          {"name": "Cooperativa Il Sentiero", "email": "servizi@ilsentiero.example.it"},
          {"name": "Anna Bianchi", "email": "Anna.Bianchi@Example.it"}]  # the same address again


def _mails(environ: dict[str, str]) -> list[email.message.EmailMessage]:
    folder = Path(environ["AMBITO_VAR_DIR"]) / "mail"
    return [email.message_from_bytes(path.read_bytes(), policy=default_policy)  # type: ignore[misc]
            for path in sorted(folder.glob("*.eml"))]


def test_copies_are_mailed_once_after_the_build(documents_build, documents_payload, documents_outbox,
                                                documents_environ, documents_runtime, documents_client,
                                                documents_officer) -> None:
    payload = documents_payload()
    payload["meta"]["copies"] = COPIES
    package_id = documents_build(payload=payload)
    assert _mails(documents_environ) == []  # not inside the build

    [copies_task] = [kwargs for task, kwargs in documents_outbox() if task == COPIES_TASK]
    assert copies_task == {"package_id": package_id, "copies": COPIES[:2]}
    assert tasks.send_copies.run(**copies_task) == 2
    assert tasks.send_copies.run(**copies_task) == 0  # redelivered: nothing new
    # The build repeated (a redelivered build message) sends nothing either.
    assert documents_build(payload=payload) == package_id

    mails = _mails(documents_environ)
    assert sorted(mail["To"].addresses[0].addr_spec for mail in mails) == [
        "anna.bianchi@example.it", "servizi@ilsentiero.example.it"]
    with documents_runtime.session_factory() as session:
        package = get_package(session, package_id)
        primary = package.primary_file
        sealed = documents_runtime.store.path(package_id, primary.name).read_bytes()
    for mail in mails:
        assert mail["Subject"] == f"Documento sigillato: {package.subject}"
        [attachment] = list(mail.iter_attachments())
        assert (attachment.get_filename(), attachment.get_content_type()) == (primary.name, "application/pdf")
        assert attachment.get_content() == sealed  # the sealed primary, byte for byte
        assert "/protocollo/certificati" in mail.get_body(("plain",)).get_content()

    timeline = documents_client.get(f"/api/documents/packages/{package_id}",
                                    headers=documents_officer).get_json()["timeline"]
    assert [(e["event"], e["detail"]) for e in timeline if e["event"] == "copy_sent"] == [
        ("copy_sent", "anna.bianchi@example.it"), ("copy_sent", "servizi@ilsentiero.example.it")]


def test_after_a_crash_only_the_missing_copies_go(documents_build, documents_payload, documents_outbox,
                                                  documents_environ) -> None:
    payload = documents_payload()
    payload["meta"]["copies"] = COPIES[:2]
    documents_build(payload=payload)
    [copies_task] = [kwargs for task, kwargs in documents_outbox() if task == COPIES_TASK]
    # A first run that stopped after the first address (worker killed, SMTP down)...
    assert tasks.send_copies.run(package_id=copies_task["package_id"], copies=COPIES[:1]) == 1
    # ...and its redelivery sends only the address not served yet.
    assert tasks.send_copies.run(**copies_task) == 1
    assert [mail["To"].addresses[0].addr_spec for mail in _mails(documents_environ)].count(
        "anna.bianchi@example.it") == 1
    assert len(_mails(documents_environ)) == 2


@pytest.mark.parametrize("copies", [[{"name": "x"}], [{"email": "not an address"}], ["a@b.it"]])
def test_malformed_copies_fail_before_the_build(documents_build, documents_payload, documents_runtime,
                                                copies) -> None:
    payload = documents_payload()
    payload["meta"]["copies"] = copies
    with pytest.raises(ValueError, match="courtesy copy"):
        documents_build(payload=payload)
    with documents_runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Package)) == 0
