"""Worker heartbeats, so ``/healthz`` can tell whether every queue has a live worker.

Each Celery worker writes, every few seconds, which queues it consumes: to a
file under var/run/heartbeats in embedded mode (the filesystem broker has no
remote control), to a Redis key with a time-to-live in distributed mode.
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


def beat(platform: PlatformSettings, hostname: str, queues: list[str]) -> None:
    record = json.dumps({"hostname": hostname, "queues": queues, "at": time.time()})
    if platform.broker_url.startswith("redis"):
        client = redis.Redis.from_url(platform.broker_url)
        client.set(REDIS_PREFIX + hostname, record, ex=int(MAX_AGE))
        client.close()
        return
    folder = _folder(platform)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{hostname}.tmp"
    tmp.write_text(record)
    tmp.replace(folder / f"{hostname}.json")


def _records(platform: PlatformSettings) -> list[dict[str, Any]]:
    if platform.broker_url.startswith("redis"):
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
        while True:
            try:
                beat(platform, hostname, queues)
            except Exception:  # a missed beat only delays health; never kill the worker
                log.warning("heartbeat_failed", exc_info=True)
            time.sleep(INTERVAL)

    threading.Thread(target=loop, name="ambito-heartbeat", daemon=True).start()
    log.info("worker_ready", hostname=hostname, queues=queues)
