"""/healthz: the gateway's database, every service over HTTP, and a live worker for every queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ambito_common.db import make_engine, make_session_factory
from ambito_common.heartbeat import MAX_AGE, beat
from ambito_common.testing import free_port
from ambito_common.web import create_service_app
from gateway.app import create_app
from gateway.runtime import Runtime
from gateway.settings import Settings
from vouchers.app import create_app as create_vouchers_app
from vouchers.runtime import Runtime as VouchersRuntime
from vouchers.settings import Settings as VouchersSettings
from werkzeug.serving import make_server

QUEUES = ["documents", "intake", "vouchers"]


@pytest.fixture
def gateway_live_services(gateway_environ) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    """The services answering on real ports: the vouchers app, and the common service app
    (the one intake and documents are built on, which owns /api/<service>/health) for the others."""
    environ = gateway_environ()
    platform = Settings.from_env(environ).platform  # the gateway makes the key pair services verify with
    var_dir = Path(environ["AMBITO_VAR_DIR"])
    apps = {
        "vouchers": create_vouchers_app(runtime=VouchersRuntime.build(VouchersSettings.from_env(environ))),
        **{name: create_service_app(name, f"{name}_under_test", platform=platform,
                                    session_factory=make_session_factory(
                                        make_engine(f"sqlite:///{var_dir / name}.sqlite3")))
           for name in ("intake", "documents")},
    }
    servers, urls = [], {}
    for name, app in apps.items():
        port = free_port()
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        urls[name] = f"http://127.0.0.1:{port}"
    yield urls
    for server in servers:
        server.shutdown()
        server.server_close()


def _gateway(gateway_environ, urls: dict[str, str]):  # type: ignore[no-untyped-def]
    environ = gateway_environ(GATEWAY_SERVICE_URLS=",".join(f"{k}={v}" for k, v in urls.items()))
    runtime = Runtime.build(Settings.from_env(environ))
    runtime.migrate()
    return create_app(runtime=runtime).test_client(), runtime.settings.platform


def test_healthy_when_every_part_answers(gateway_environ, gateway_live_services):
    client, platform = _gateway(gateway_environ, gateway_live_services)
    beat(platform, "worker@test", QUEUES)

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "gateway": "ok",
                                   "services": {"intake": "ok", "vouchers": "ok", "documents": "ok"},
                                   "worker": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_unhealthy_when_services_are_down(gateway_client, gateway_runtime):
    beat(gateway_runtime.settings.platform, "worker@test", QUEUES)

    response = gateway_client.get("/healthz")

    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "gateway": "ok",
                                   "services": {"intake": "unreachable", "vouchers": "unreachable",
                                                "documents": "unreachable"},
                                   "worker": "ok"}


def test_unhealthy_without_a_worker_on_every_queue(gateway_environ, gateway_live_services):
    client, platform = _gateway(gateway_environ, gateway_live_services)

    assert client.get("/healthz").get_json()["worker"] == "no live worker for intake, vouchers, documents"

    beat(platform, "worker@test", ["intake", "vouchers"])
    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.get_json()
    assert body["worker"] == "no live worker for documents"
    assert set(body["services"].values()) == {"ok"}


def test_a_worker_that_stopped_beating_no_longer_counts(gateway_environ, gateway_live_services):
    client, platform = _gateway(gateway_environ, gateway_live_services)
    beat(platform, "worker@live", ["intake", "vouchers"])
    beat(platform, "worker@gone", ["documents"], at=time.time() - MAX_AGE - 1)

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.get_json()
    assert body["worker"] == "no live worker for documents"
    assert set(body["services"].values()) == {"ok"}

    beat(platform, "worker@gone", ["documents"])  # the same worker, alive again
    assert client.get("/healthz").status_code == 200


def test_a_service_answering_an_error_is_unhealthy(gateway_environ, gateway_live_services):
    # The vouchers app has no /api/documents/health: a wrong URL must not pass for a healthy service.
    urls = {**gateway_live_services, "documents": gateway_live_services["vouchers"]}
    client, platform = _gateway(gateway_environ, urls)
    beat(platform, "worker@test", QUEUES)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.get_json()["services"] == {"intake": "ok", "vouchers": "ok", "documents": "HTTP 404"}


def test_unhealthy_when_the_gateway_database_fails(gateway_environ, gateway_live_services):
    client, platform = _gateway(gateway_environ, gateway_live_services)
    beat(platform, "worker@test", QUEUES)
    (platform.var_dir / "gateway.sqlite3").write_bytes(b"this is not a database" * 100)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.get_json()["gateway"] == "database unavailable"
