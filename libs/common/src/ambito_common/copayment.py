"""The family's co-payment for home care (SAD): one rule, the comune's, shared by intake and vouchers.

Why one rule. Until now intake's care plan charged an hourly co-payment by the
comune's rule (``sad.json``), while vouchers took a percentage off the value by a
per-fund ISEE band rule: the same family could be told one figure by its social
worker and have its voucher valued by another. The co-payment is set by each
comune's regulations (ISEE bands or a linear scale, DPCM 159/2013), not by the fund
that pays the rest, so the comune's rule wins and lives in one file of the Ambito's
data directory, ``copayment.json``:

* ``default`` and ``by_comune[<code>]`` are lists of versions, each with
  ``valid_from`` (ISO date) and either ``"rule": "bands"`` (``bands``:
  ``[{"up_to_cents", "hourly_cents"}]`` ascending, above the last band the maximum)
  or ``"rule": "linear"`` (nothing up to ``from_cents``, the maximum from
  ``to_cents``, linear in between), plus ``max_hourly_cents``;
* a comune without a version in force on the day uses the default's.

The result is cents per operator hour. The family pays it to the provider, so the
fund pays ``max(tariff - co-payment, 0)`` per hour: a voucher is worth
``hours x max(tariff - hourly co-payment, 0)``. Intake writes the figure into the
care plan the family agrees to, and a voucher issued from that plan keeps it (a
later change of the rule does not rewrite an agreed plan); vouchers entered by a
comune operator compute it here on the day of issue. Without an ISEE, or with an
expired one (the caller passes ``None``), the family pays the maximum, as the
regulations say.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidInput

FILE_NAME = "copayment.json"
RULE_KINDS = ("bands", "linear")


@dataclass(frozen=True)
class CopaymentRules:
    """The versions of the default rule and of each comune's own rule, newest first."""

    default: Sequence[Mapping[str, Any]]
    by_comune: Mapping[str, Sequence[Mapping[str, Any]]]
    placeholder: bool = False  # the values are examples, not the deliberated ones

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> CopaymentRules:
        """Rules from the file's content, checked once so a typo fails at load, not on a family's plan."""
        return cls(default=_versions(data["default"]),
                   by_comune={code: _versions(versions)
                              for code, versions in data.get("by_comune", {}).items()},
                   placeholder=bool(data.get("placeholder", False)))

    def rule_for(self, comune: str, on: dt.date) -> Mapping[str, Any]:
        """The comune's rule in force on ``on``, else the default's."""
        for versions in (self.by_comune.get(comune, ()), self.default):
            for version in versions:
                if version["valid_from"] <= on:
                    return version
        raise InvalidInput(f"Nessuna regola di compartecipazione in vigore il {on:%d/%m/%Y}.")


def _versions(raw: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    versions = []
    for item in raw:
        if item["rule"] not in RULE_KINDS:
            raise ValueError(f"unknown co-payment rule {item['rule']!r}")
        int(item["max_hourly_cents"])
        versions.append({**item, "valid_from": dt.date.fromisoformat(item["valid_from"])})
    return sorted(versions, key=lambda version: version["valid_from"], reverse=True)


def load_rules(data_dir: Path) -> CopaymentRules:
    """The Ambito's rules (``<data_dir>/copayment.json``).

    Parsed once per version of the file: the cache is keyed on the file's path and modification
    time, so callers may ask on every request (vouchers does) or once at start-up (intake does),
    and an edited file still applies at the next call without a restart.
    """
    path = (data_dir / FILE_NAME).resolve()
    return _parsed(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, _mtime_ns: int) -> CopaymentRules:
    return CopaymentRules.from_data(json.loads(path.read_text(encoding="utf-8")))


def hourly_copayment(rules: CopaymentRules, comune: str, isee_cents: int | None, on: dt.date) -> int:
    """Cents per operator hour the family pays, by the comune's rule in force on ``on``.

    ``isee_cents`` is None when there is no valid ISEE: the maximum applies.
    """
    rule = rules.rule_for(comune, on)
    maximum = int(rule["max_hourly_cents"])
    if isee_cents is None:
        return maximum
    if rule["rule"] == "bands":
        for band in rule["bands"]:
            if isee_cents <= band["up_to_cents"]:
                return int(band["hourly_cents"])
        return maximum
    low, high = int(rule["from_cents"]), int(rule["to_cents"])
    if isee_cents <= low:
        return 0
    if isee_cents >= high:
        return maximum
    span = high - low
    return (maximum * (isee_cents - low) + span // 2) // span  # rounded half up, in integers
