"""The journey on the distributed topology: gunicorn per service behind nginx, on PostgreSQL and Redis."""

from __future__ import annotations

import pytest
import requests

from tests.harness import distributed_platform
from tests.journey import PROTOCOL_NUMBER, walk_journey

pytestmark = pytest.mark.slow


def test_coprogramming_journey_distributed(tmp_path):
    with distributed_platform(tmp_path, redis_db=11) as platform:
        result = walk_journey(platform)
        # nginx is really in front: its security headers are on every answer.
        page = requests.get(f"{platform.url}/intake/domande/{result['tracking_code']}", timeout=10)
        assert page.status_code == 200
        assert PROTOCOL_NUMBER in page.text
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
