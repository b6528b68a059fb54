"""Worker heartbeats, so ``/healthz`` can tell whether every queue has a live worker.

Each Celery worker writes, every few seconds, which queues it consumes: to a
file under var/run/heartbeats in embedded mode, to a Redis key with a
time-to-live in distributed mode. A record of our own rather than Celery's
remote control (``inspect().active_queues()``): that broadcasts to every
worker and waits out a timeout on each health check, where reading a few
records is immediate and says how long ago each worker was last alive.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import redis
import structlog
from celery import signals

from .settings import PlatformSettings, platform_settings

log = structlog.get_logger(__name__)

INTERVAL = 5.0
MAX_AGE = 30.0
REDIS_PREFIX = "ambito:heartbeat:"


def _folder(platform: PlatformSettings) -> Path:
    return platform.var_dir / "run" / "heartbeats"


def _uses_redis(platform: PlatformSettings) -> bool:
    return platform.broker_url.startswith("redis")


def beat(platform: PlatformSettings, hostname: str, queues: list[str], *,
         client: redis.Redis | None = None, at: float | None = None) -> None:
    """Record that ``hostname`` consumes ``queues``, as of ``at`` (default: now).

    ``client`` is the worker's Redis client, reused across beats, when the
    broker is Redis; without one the record goes to a file (embedded mode).
    """
    record = json.dumps({"hostname": hostname, "queues": queues,
                         "at": time.time() if at is None else at})
    if client is not None:
        client.set(REDIS_PREFIX + hostname, record, ex=int(MAX_AGE))
        return
    folder = _folder(platform)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{hostname}.tmp"
    tmp.write_text(record)
    tmp.replace(folder / f"{hostname}.json")


def _records(platform: PlatformSettings) -> list[dict[str, Any]]:
    if _uses_redis(platform):
        client = redis.Redis.from_url(platform.broker_url, socket_timeout=2)
        try:
            keys = list(client.scan_iter(REDIS_PREFIX + "*"))
            return [json.loads(raw) for raw in client.mget(keys) if raw] if keys else []
        finally:
            client.close()
    records = []
    for path in _folder(platform).glob("*.json"):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return records


def fresh_queues(platform: PlatformSettings, max_age: float = MAX_AGE) -> set[str]:
    """Queues consumed by a worker that reported within ``max_age`` seconds."""
    now = time.time()
    return {queue for record in _records(platform) if now - record["at"] <= max_age
            for queue in record["queues"]}


@signals.worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    platform = platform_settings()
    hostname = sender.hostname
    queues = sorted(queue.name for queue in sender.task_consumer.queues)

    def loop() -> None:
        # One client for the worker's life: its pool reconnects by itself after a Redis outage.
        client = redis.Redis.from_url(platform.broker_url) if _uses_redis(platform) else None
        while True:
            try:
                beat(platform, hostname, queues, client=client)
            except Exception:  # a missed beat only delays health; never kill the worker
                log.warning("heartbeat_failed", exc_info=True)
            time.sleep(INTERVAL)

    threading.Thread(target=loop, name="ambito-heartbeat", daemon=True).start()
    log.info("worker_ready", hostname=hostname, queues=queues)
