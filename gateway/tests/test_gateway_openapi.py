"""The OpenAPI index, the gateway's own spec, and the shared static files."""

from __future__ import annotations

import pytest
from ambito_common.web import COMMON_STATIC


def test_openapi_index_names_every_service(gateway_client):
    assert gateway_client.get("/api/openapi.json").get_json() == {"services": {
        "gateway": "/api/gateway/openapi.json", "intake": "/api/intake/openapi.json",
        "vouchers": "/api/vouchers/openapi.json", "documents": "/api/documents/openapi.json"}}


def test_gateway_spec_documents_login(gateway_client):
    spec = gateway_client.get("/api/gateway/openapi.json").get_json()

    login = spec["paths"]["/auth/login"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Login"}
    assert set(login["responses"]) == {"200", "401", "422"}
    schemas = spec["components"]["schemas"]
    assert set(schemas["Login"]["required"]) == {"username", "password"}
    assert set(schemas["Token"]["properties"]) == {"access_token", "token_type", "expires_in", "roles",
                                                   "comune"}
    assert "/auth/me" in spec["paths"]


def test_gateway_health_of_its_own(gateway_client):
    assert gateway_client.get("/api/gateway/health").get_json() == {"status": "ok", "service": "gateway"}


def test_static_files_are_served_with_cache_headers(gateway_client):
    assets = sorted(path for path in COMMON_STATIC.rglob("*") if path.is_file())
    relative = assets[0].relative_to(COMMON_STATIC).as_posix()

    response = gateway_client.get(f"/static/{relative}")

    assert response.status_code == 200
    assert response.data == assets[0].read_bytes()
    assert response.cache_control.max_age == 86400 and response.headers.get("ETag")


@pytest.mark.parametrize("path", ["/static/../web.py", "/static/%2e%2e/web.py", "/static/nessuno.css"])
def test_static_never_leaves_its_directory(gateway_client, path):
    assert gateway_client.get(path, headers={"Accept": "application/json"}).status_code == 404
