"""Every service's OpenAPI document is valid OpenAPI 3, as served by the embedded platform.

The documents are fetched through the same dispatcher ``ambito serve`` runs, by following the
gateway's index, so a service missing from the index or answering an invalid spec fails here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openapi_spec_validator import validate
from werkzeug.test import Client

from ambito.embedded import create_embedded_app
from ambito.runtimes import ALL
from tests.harness import base_env


@pytest.fixture(scope="module")
def embedded_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    yield Client(create_embedded_app(base_env(tmp_path_factory.mktemp("openapi"))))


@pytest.mark.parametrize("service", ALL)
def test_each_service_serves_a_valid_openapi_document(embedded_client: Client, service: str) -> None:
    index = embedded_client.get("/api/openapi.json").json["services"]
    assert index[service] == f"/api/{service}/openapi.json"

    response = embedded_client.get(index[service])

    assert response.status_code == 200
    spec = response.json
    validate(spec)
    assert spec["openapi"].startswith("3.")
    assert spec["paths"]
