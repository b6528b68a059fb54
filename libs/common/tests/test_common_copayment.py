"""The one co-payment rule: bands or linear by comune, versions by date, the maximum without an ISEE."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
from ambito_common.copayment import CopaymentRules, hourly_copayment, load_rules
from ambito_common.errors import InvalidInput
from ambito_common.testing import REPO_ROOT

BANDS = {"valid_from": "2025-01-01", "rule": "bands", "max_hourly_cents": 1900,
         "bands": [{"up_to_cents": 300000, "hourly_cents": 0}, {"up_to_cents": 800000, "hourly_cents": 500}]}
LINEAR = {"valid_from": "2025-01-01", "rule": "linear", "from_cents": 300000, "to_cents": 3000000,
          "max_hourly_cents": 1868}
RULES = CopaymentRules.from_data({
    "default": [BANDS, {**BANDS, "valid_from": "2027-01-01", "max_hourly_cents": 2100}],
    "by_comune": {"clusone": [LINEAR]}})
DAY = dt.date(2026, 11, 21)


@pytest.mark.parametrize(("comune", "isee", "expected"), [
    ("gromo", 250000, 0),  # first band
    ("gromo", 300001, 500),  # just over a band's ceiling: the next band
    ("gromo", 800001, 1900),  # above the last band: the maximum
    ("gromo", None, 1900),  # no valid ISEE: the maximum
    ("clusone", 300000, 0),
    ("clusone", 1650000, 934),  # halfway on the linear scale
    ("clusone", 1650001, 934),
    ("clusone", 4000000, 1868),
    ("clusone", None, 1868),
])
def test_common_copayment_by_comune_rule(comune, isee, expected) -> None:
    assert hourly_copayment(RULES, comune, isee, DAY) == expected


def test_common_copayment_follows_the_version_in_force() -> None:
    assert hourly_copayment(RULES, "gromo", None, dt.date(2026, 12, 31)) == 1900
    assert hourly_copayment(RULES, "gromo", None, dt.date(2027, 1, 1)) == 2100
    with pytest.raises(InvalidInput):
        hourly_copayment(RULES, "gromo", 0, dt.date(2024, 12, 31))


def test_common_copayment_comune_rule_not_yet_in_force_falls_back_to_the_default() -> None:
    rules = CopaymentRules.from_data({"default": [BANDS], "by_comune": {"clusone": [
        {**LINEAR, "valid_from": "2027-01-01"}]}})
    assert hourly_copayment(rules, "clusone", 1650000, DAY) == 1900  # default's maximum
    assert hourly_copayment(rules, "clusone", 1650000, dt.date(2027, 1, 1)) == 934


def test_common_copayment_refuses_an_unknown_rule_kind_at_load() -> None:
    with pytest.raises(ValueError, match="percent"):
        CopaymentRules.from_data({"default": [{**BANDS, "rule": "percent"}]})


def test_common_copayment_ambito_file_is_marked_as_example_values() -> None:
    rules = load_rules(REPO_ROOT / "data" / "ambiti" / "vsssc")
    assert rules.placeholder
    assert hourly_copayment(rules, "schilpario", 950000, DAY) == 1000
    assert hourly_copayment(rules, "clusone", None, DAY) == 1868


def test_common_copayment_rules_are_parsed_once_per_version_of_the_file(tmp_path) -> None:
    path = tmp_path / "copayment.json"
    path.write_text(json.dumps({"default": [BANDS]}), encoding="utf-8")
    first = load_rules(tmp_path)
    assert load_rules(tmp_path) is first  # unchanged file: the parsed rules are reused
    path.write_text(json.dumps({"default": [{**BANDS, "max_hourly_cents": 2500}]}), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a later edit, even in one tick
    edited = load_rules(tmp_path)
    assert edited is not first
    assert hourly_copayment(edited, "clusone", None, DAY) == 2500  # the edit applies without a restart
