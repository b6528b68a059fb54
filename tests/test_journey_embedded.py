"""The whole journey on the embedded platform, started as ``make run`` starts it."""

from __future__ import annotations

import email
from email import policy

import pytest
import requests

from tests.harness import embedded_platform, wait_until
from tests.journey import walk_journey

pytestmark = pytest.mark.slow


def test_coprogramming_journey_embedded(tmp_path):
    with embedded_platform(tmp_path) as platform:
        result = walk_journey(platform)

        receipt = wait_until(lambda: [m for m in platform.mail.messages
                                      if result["tracking_code"].encode() in m.replace(b"=\r\n", b"")],
                             timeout=30, what="the receipt e-mail")[0]
        message = email.message_from_bytes(receipt, policy=policy.default)
        assert message["To"].addresses[0].addr_spec == "info@ilsentiero.example.it"

        # The request id given at submission follows the application into the worker:
        # the documents build and the status callbacks back to intake log it.
        traced = {event["event"] for event in platform.processes.events("worker")
                  if event.get("request_id") == result["request_id"]}
        assert {"package_build_start", "package_build_done"} <= traced
        assert any(event.get("request_id") == result["request_id"]
                   and event.get("task") == "intake.package_status"
                   for event in platform.processes.events("worker"))


def test_make_run_seeds_demo_budgets_for_every_comune(tmp_path):
    with embedded_platform(tmp_path) as platform:
        admin = {"Authorization": f"Bearer {platform.token('admin')}"}
        funds = requests.get(platform.url + "/api/vouchers/funds", headers=admin, timeout=10).json()
        fund = funds[0]
        period = fund["periods"][-1]
        budgets = requests.get(platform.url + "/api/vouchers/budgets", headers=admin, timeout=10,
                               params={"fund": fund["code"], "period": period["code"]}).json()
        assert len(budgets) == 24
        assert all(budget["allocated"] > 0 for budget in budgets)
