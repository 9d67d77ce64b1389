"""What every benchmark shares: medians with min and max, the machine, the hpt executable."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HPT = str(Path(sys.executable).with_name("hpt"))


@dataclass
class Figure:
    """One line of the table: a median of samples, its unit, and optionally a baseline and target."""

    name: str
    samples: list[float]
    unit: str
    baseline: Figure | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline.median:
            return None
        return self.median / self.baseline.median

    def to_json(self) -> dict:
        out = {"median": self.median, "min": min(self.samples), "max": max(self.samples), "runs": len(self.samples),
               "unit": self.unit, "target": self.target, "met": self.met, "note": self.note, **self.extra}
        if self.baseline is not None:
            out["baseline"] = self.baseline.name
            out["ratio"] = self.ratio
        return out


def machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{platform.machine()}, {cpus} usable CPUs, Python {platform.python_version()}, {platform.system()}"


def env_with_benchmarks(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("CI", None)
    env.update(extra)
    return env
