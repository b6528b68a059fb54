"""A documents worker killed in the middle of building a package loses nothing.

The task is acknowledged late, so Redis hands it to the next worker once the
visibility timeout passes; the build is keyed by the submission, so the
package exists once, whatever was half done before the kill.
"""

from __future__ import annotations

import pytest
import requests

from tests.harness import distributed_platform, wait_until, worker_command

pytestmark = pytest.mark.slow


def test_killed_worker_loses_nothing_and_builds_once(tmp_path):
    with distributed_platform(tmp_path, redis_db=12, visibility_timeout=8) as platform:
        log = "worker-documents"
        for _attempt in range(3):
            receipt = platform.submit()
            code, ref = receipt["tracking_code"], f"application:{receipt['id']}"
            wait_until(lambda log=log, ref=ref: seen(platform, log, ref, "package_build_start"),
                       timeout=60, interval=0.01, what="the build to start")
            platform.processes.kill(log)
            if not seen(platform, log, ref, "package_build_done"):
                break  # killed mid-task: the case under test
            log = _restart(platform, log)
        else:
            pytest.fail("the worker finished every build before it could be killed")

        assert platform.tracking(code)["status"] == "received"
        log = _restart(platform, log)
        delivered = platform.wait_status(code, "delivered", timeout=120)
        assert seen(platform, log, ref, "package_build_start")  # redelivered to the new worker
        assert seen(platform, log, ref, "package_build_done")

        officer = {"Authorization": f"Bearer {platform.token('protocollo')}"}
        packages = requests.get(platform.url + "/api/documents/packages", headers=officer,
                                timeout=10).json()
        submissions = len({p["id"] for p in packages})
        tracked = [p for p in packages if p["id"] == delivered["package_id"]]
        assert len(tracked) == 1
        # Every submission made in this test has exactly one package, the interrupted one included.
        assert submissions == _attempt + 1


def _restart(platform, old_name: str) -> str:
    name = old_name + "-again"
    platform.processes.start(name, worker_command("documents"), platform.env)
    return name


def seen(platform, log_name: str, source_ref: str, event: str) -> bool:
    return any(event in line and source_ref in line
               for line in platform.processes.log(log_name).splitlines())
