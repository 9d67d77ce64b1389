"""The Trial record and its stable id."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hpt_cli.dates import DateRange

ID_LENGTH = 12


def canonical_json(value: Any) -> str:
    """Key-sorted, compact, ASCII JSON: the same bytes in every process and on every machine."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def trial_id(architecture: str, params: dict[str, Any], date_range: DateRange, repeat: int) -> str:
    """A short hash of what makes a trial: rerunning the same spec finds the same ids."""
    key = {
        "architecture": architecture,
        "params": params,
        "date_range": date_range.to_json(),
        "repeat": repeat,
    }
    return hashlib.sha256(canonical_json(key).encode("ascii")).hexdigest()[:ID_LENGTH]


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from any JSON-able parts (one master seed derives every trial's seed)."""
    digest = hashlib.sha256(canonical_json(list(parts)).encode("ascii")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def config_key(architecture: str, params: Mapping[str, Any]) -> str:
    """A configuration's key (architecture and parameter values; not the date range or repeat)."""
    return canonical_json({"architecture": architecture, "params": params})


@dataclass(frozen=True)
class Trial:
    """One configuration on one date range (and one repeat): the unit that runs and gets a row."""

    index: int
    architecture: str
    params: dict[str, Any]
    date_range: DateRange
    repeat: int = 0
    seed: int = 0
    id: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(
                self, "id", trial_id(self.architecture, self.params, self.date_range, self.repeat)
            )

    def config_key(self) -> str:
        """What identifies the configuration across date ranges and repeats."""
        return config_key(self.architecture, self.params)
