"""Whole-platform health: the gateway's database, each service, and a live worker per queue.

``/healthz`` is what a load balancer or an operator asks "can this platform
accept and process a submission right now?": a service answering but with no
worker on its queue would accept work that nobody processes, so it counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
import structlog
from ambito_common.heartbeat import fresh_queues
from ambito_common.settings import PlatformSettings
from ambito_common.tasks import SERVICES
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

log = structlog.get_logger(__name__)

OK = "ok"
TIMEOUT_SECONDS = 2.0


def platform_health(session_factory: sessionmaker[Session], service_urls: Mapping[str, str],
                    platform: PlatformSettings) -> tuple[bool, dict[str, Any]]:
    """(healthy, report): every part is "ok" or a short description of what failed."""
    with ThreadPoolExecutor(max_workers=len(service_urls)) as pool:
        pending = {name: pool.submit(_service, name, url) for name, url in service_urls.items()}
        gateway = _database(session_factory)
        worker = _workers(platform)
        services = {name: future.result() for name, future in pending.items()}
    healthy = gateway == OK and worker == OK and all(state == OK for state in services.values())
    return healthy, {"status": OK if healthy else "error", "gateway": gateway, "services": services,
                     "worker": worker}


def _database(session_factory: sessionmaker[Session]) -> str:
    try:
        with session_factory() as session:
            session.execute(text("SELECT 1"))
    except Exception:
        log.warning("health_database_failed", exc_info=True)
        return "database unavailable"
    return OK


def _service(name: str, base_url: str) -> str:
    try:
        response = requests.get(f"{base_url}/api/{name}/health", timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        log.warning("health_service_unreachable", service=name, error=str(exc))
        return "unreachable"
    return OK if response.status_code == 200 else f"HTTP {response.status_code}"


def _workers(platform: PlatformSettings) -> str:
    try:
        live = fresh_queues(platform)
    except Exception:
        log.warning("health_heartbeats_unreadable", exc_info=True)
        return "heartbeats unreadable"
    missing = [queue for queue in SERVICES if queue not in live]
    return OK if not missing else "no live worker for " + ", ".join(missing)
