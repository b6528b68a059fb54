"""The build and delivery tasks, run in-process through the real task objects."""

from __future__ import annotations

import email
import hashlib
import json
import threading
from email.policy import default as default_policy

import pytest
import structlog
from documents import services, tasks
from documents.models import Package, PackageFile
from documents.runtime import Runtime
from documents.signers import SIGNERS, Pkcs12Signer
from sqlalchemy import func, select

CALLBACK = "intake.package_status"


def _package(runtime: Runtime, package_id: str) -> Package:
    with runtime.session_factory() as session:
        return services.get_package(session, package_id)


def _count(runtime: Runtime, model: type) -> int:
    with runtime.session_factory() as session:
        return session.scalar(select(func.count()).select_from(model))


def _package_folders(runtime: Runtime) -> list[str]:
    if not runtime.store.root.exists():
        return []
    return sorted(p.name for p in runtime.store.root.iterdir() if p.is_dir() and p.name != ".tmp")


def test_build_stores_sealed_files_matching_the_database(documents_build, documents_runtime,
                                                         documents_payload) -> None:
    with structlog.testing.capture_logs() as logs:
        package_id = documents_build()
    package = _package(documents_runtime, package_id)

    assert package.status == "built"
    assert (package.source, package.source_ref) == ("intake", "application:1")
    assert package.subject == documents_payload()["subject"]
    assert (package.sender_name, package.sender_pec) == ("Cooperativa Sociale L'Àncora",
                                                         "ancora@pec.example.it")
    assert package.recipient_pec == "protocollo@pec.comune.clusone.bg.it"
    assert [(f.name, f.role) for f in package.files] == [
        ("domanda-K7P2M9QX.pdf", "primary"), ("Segnatura.xml", "segnatura"),
        ("metadata.xml", "metadata"), ("manifest.json", "manifest"), ("message.eml", "message")]
    for file in package.files:
        data = documents_runtime.store.path(package_id, file.name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == file.sha256
        assert len(data) == file.size
    assert package.total_size == sum(f.size for f in package.files)
    assert services.verify_files(documents_runtime.store, package) == []
    assert [e.event for e in package.events] == ["built", "sealed"]

    message = email.message_from_bytes(
        documents_runtime.store.path(package_id, "message.eml").read_bytes(), policy=default_policy)
    assert package.message_id == message["Message-ID"]
    manifest = json.loads(documents_runtime.store.path(package_id, "manifest.json").read_bytes())
    assert package.files[0].sha256 in json.dumps(manifest)

    primary = documents_runtime.store.path(package_id, "domanda-K7P2M9QX.pdf").read_bytes()
    assert documents_runtime.verify_seal(primary).ok
    # Checked once: a package never changes, so its page reuses the result.
    assert documents_runtime.verify_seal(primary) is documents_runtime.verify_seal(primary)

    events = [entry["event"] for entry in logs]
    assert "package_build_start" in events and "package_build_done" in events
    done = next(entry for entry in logs if entry["event"] == "package_build_done")
    assert (done["source_ref"], done["package_id"]) == ("application:1", package_id)


def test_build_enqueues_delivery_and_the_packaged_callback(documents_build, documents_outbox) -> None:
    package_id = documents_build()
    assert documents_outbox() == [
        ("documents.deliver_package", {"package_id": package_id}),
        (CALLBACK, {"source_ref": "application:1", "package_id": package_id, "status": "packaged"}),
    ]


def test_outbox_rows_reach_the_broker(documents_build, documents_runtime) -> None:
    documents_build()
    assert documents_runtime.outbox.pending() == 0
    queued = list((documents_runtime.settings.platform.var_dir / "broker" / "queue").iterdir())
    assert len(queued) == 2


def test_verify_files_reports_a_changed_file(documents_build, documents_runtime) -> None:
    package_id = documents_build()
    path = documents_runtime.store.path(package_id, "Segnatura.xml")
    path.write_bytes(path.read_bytes().replace(b"Clusone", b"Clus0ne", 1))
    assert services.verify_files(documents_runtime.store, _package(documents_runtime, package_id)) == [
        "Segnatura.xml"]


def test_a_repeated_build_message_builds_once_and_repeats_the_callbacks(
        documents_build, documents_runtime, documents_outbox) -> None:
    first = documents_build()
    with structlog.testing.capture_logs() as logs:
        second = documents_build()

    assert second == first
    assert _count(documents_runtime, Package) == 1
    assert _count(documents_runtime, PackageFile) == 5
    assert _package_folders(documents_runtime) == [first]
    assert "package_build_start" not in [entry["event"] for entry in logs]
    assert documents_outbox()[2:] == [
        ("documents.deliver_package", {"package_id": first}),
        (CALLBACK, {"source_ref": "application:1", "package_id": first, "status": "packaged"}),
    ]


def test_concurrent_builds_of_one_reference_make_one_package(documents_build, documents_runtime,
                                                             documents_outbox) -> None:
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        try:
            results.append(documents_build())
        except BaseException as exc:  # reported below, with the test's own assertion
            errors.append(exc)

    with structlog.testing.capture_logs() as logs:
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    assert _count(documents_runtime, Package) == 1
    assert _count(documents_runtime, PackageFile) == 5
    assert _package_folders(documents_runtime) == [results[0]]
    assert list((documents_runtime.store.root / ".tmp").iterdir()) == []
    events = [entry["event"] for entry in logs]
    # Either both built and the unique key settled it, or the second saw the first's row.
    assert events.count("package_build_lost_race") + events.count("package_build_duplicate") == 1
    packaged = [kwargs for task, kwargs in documents_outbox() if task == CALLBACK]
    assert all(kwargs["package_id"] == results[0] for kwargs in packaged)


def test_a_malformed_payload_fails_without_leaving_anything(documents_build, documents_runtime,
                                                            documents_payload) -> None:
    payload = documents_payload()
    del payload["meta"]["sender"]
    with pytest.raises(ValueError, match="sender"):
        documents_build(payload=payload)
    assert _count(documents_runtime, Package) == 0
    assert _package_folders(documents_runtime) == []


def test_delivery_moves_the_package_to_the_inbox_and_reports_it(documents_build, documents_runtime,
                                                                documents_outbox) -> None:
    package_id = documents_build()
    assert tasks.deliver_package.run(package_id=package_id) == "delivered"

    package = _package(documents_runtime, package_id)
    assert package.status == "delivered"
    assert package.delivered_at is not None
    assert package.events[-1].event == "delivered"
    assert documents_outbox()[-1] == (
        CALLBACK, {"source_ref": "application:1", "package_id": package_id, "status": "delivered"})


def test_a_repeated_delivery_only_repeats_the_callback(documents_delivered, documents_runtime,
                                                       documents_outbox, documents_build) -> None:
    assert tasks.deliver_package.run(package_id=documents_delivered) == "delivered"
    assert [e.event for e in _package(documents_runtime, documents_delivered).events].count(
        "delivered") == 1
    delivered = (CALLBACK, {"source_ref": "application:1", "package_id": documents_delivered,
                            "status": "delivered"})
    assert documents_outbox()[-2:] == [delivered, delivered]

    # A build message redelivered after that neither rebuilds nor re-delivers.
    documents_build()
    assert documents_outbox()[-1] == delivered
    assert [task for task, _ in documents_outbox()].count("documents.deliver_package") == 1


def test_the_worker_loads_the_seal_once(documents_worker, documents_build, documents_payload,
                                        monkeypatch) -> None:
    loads: list[str] = []

    class CountingSigner(Pkcs12Signer):
        """The default signer plugin, counting how often the key is actually read."""

        def load(self, settings):  # type: ignore[no-untyped-def]
            loads.append(settings.seal_signer)
            return super().load(settings)

    monkeypatch.setitem(SIGNERS, "pkcs12", CountingSigner)
    documents_build(1)
    sealer = documents_worker.sealer
    documents_build(2, documents_payload(tracking="Q4W8E2RT", number="0000002"))
    assert documents_worker.sealer is sealer
    assert loads == ["pkcs12"]  # two builds, one load of the key
