"""Routing by territory, with the Ambito's own aoo.json, and the public certificates."""

from __future__ import annotations

import json

import pytest
from cryptography import x509
from documents import tasks
from documents.routing import AooDirectory, RoutingError, route
from documents.services import get_package

from .conftest import DATA_DIR


@pytest.fixture(scope="module")
def routing_directory() -> AooDirectory:
    return AooDirectory.load(DATA_DIR, json.loads((DATA_DIR / "ambito.json").read_text(encoding="utf-8")))


def test_the_directory_lists_every_comune_of_the_ambito(routing_directory: AooDirectory) -> None:
    ambito = json.loads((DATA_DIR / "ambito.json").read_text(encoding="utf-8"))
    assert set(routing_directory.entries) == {comune["code"] for comune in ambito["comuni"]}
    assert len(routing_directory.entries) == 24
    for code, entry in routing_directory.entries.items():
        assert {"name", "ipa_code", "aoo_code", "pec"} <= set(entry), code
        if code != "clusone":  # demo data, marked as such and undeliverable
            assert entry["pec"].endswith(".invalid") and "pec" in entry["placeholder"]
    clusone = routing_directory.recipient("clusone")
    assert clusone["pec"] == "protocollo@pec.comune.clusone.bg.it"
    assert clusone["pec_max_bytes"] == 30 * 1024 * 1024


def test_coprogramming_goes_to_the_lead_comune(routing_directory, documents_payload) -> None:
    payload = documents_payload()
    payload["meta"]["recipient"] = {"name": "altro", "pec": "altro@example.it"}
    routed = route(payload, routing_directory)
    assert routed["meta"]["recipient"]["pec"] == "protocollo@pec.comune.clusone.bg.it"
    assert routed["meta"]["recipient"]["ipa_code"] == "c_c800"
    assert payload["meta"]["recipient"]["pec"] == "altro@example.it"  # the input is not modified


def test_a_citizen_request_goes_to_the_comune_of_residence(routing_directory, documents_payload) -> None:
    payload = {**documents_payload(), "kind": "citizen_request", "residence": {"comune": "schilpario"}}
    recipient = route(payload, routing_directory)["meta"]["recipient"]
    assert recipient["name"] == "Comune di Schilpario"
    assert recipient["comune"] == "schilpario"

    with pytest.raises(RoutingError, match="residence"):
        route({**payload, "residence": {}}, routing_directory)
    with pytest.raises(RoutingError, match="milano"):
        route({**payload, "residence": {"comune": "milano"}}, routing_directory)


def test_a_routed_package_is_addressed_to_the_comune(documents_build, documents_payload,
                                                     documents_runtime) -> None:
    payload = {**documents_payload(), "kind": "citizen_request", "residence": {"comune": "gromo"}}
    package_id = documents_build(payload=payload)
    with documents_runtime.session_factory() as session:
        package = get_package(session, package_id)
    assert (package.recipient_name, package.recipient_pec) == ("Comune di Gromo",
                                                               "protocollo.gromo@pec-demo.invalid")
    assert package.size_limit == 30 * 1024 * 1024
    segnatura = documents_runtime.store.path(package_id, "Segnatura.xml").read_bytes()
    assert b"demo_gromo" in segnatura
    assert tasks.deliver_package.run(package_id=package_id) == "delivered"


def test_certificates_are_public(documents_client, documents_runtime) -> None:
    seal = documents_client.get("/api/documents/certificates/seal.pem")
    assert seal.status_code == 200
    assert seal.mimetype == "application/x-pem-file"
    cert = x509.load_pem_x509_certificate(seal.data)
    assert cert == documents_runtime.sealer.identity.cert

    ca = documents_client.get("/api/documents/certificates/ca.pem")
    assert ca.status_code == 200
    [root] = x509.load_pem_x509_certificates(ca.data)
    cert.verify_directly_issued_by(root)
