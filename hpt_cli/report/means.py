"""Each configuration's mean objective over its date ranges and repeats, in one run folder.

What auto mode's stage 2 starts from (the best of stage 1) and what `hpt calibrate` ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hpt_cli.report.load import Run, config_labels, load_run


@dataclass(frozen=True)
class ConfigMean:
    config: str  # the configuration key: architecture + JSON of its params
    label: str  # short: the architecture and the parameters that vary
    architecture: str
    params: dict[str, Any]
    mean: float  # of the ok rows' objective values
    complete: bool  # an ok row on every (date range, repeat) the spec asks for


def configuration_means(uri: str) -> tuple[Run, list[ConfigMean]]:
    """The run at `uri` (local or gs://) and its configurations' means, in first-row order;
    configurations with no ok row are left out."""
    run = load_run(uri)
    ok = [r for r in run.rows if r.status == "ok" and math.isfinite(r.value)]
    labels = config_labels(run.rows)
    expected = set(run.cells)
    grouped: dict[str, list] = {}
    for row in ok:
        grouped.setdefault(row.config, []).append(row)
    out = []
    for config, rows in grouped.items():
        cells = {(r.date_range, r.repeat) for r in rows}
        out.append(ConfigMean(config, labels.get(config, config), rows[0].architecture, rows[0].params,
                              sum(r.value for r in rows) / len(rows), expected <= cells))
    return run, out


def best(means: list[ConfigMean], mode: str) -> ConfigMean | None:
    """The best mean among complete configurations (among all of them when none is complete)."""
    pool = [m for m in means if m.complete] or means
    if not pool:
        return None
    sign = 1 if mode == "min" else -1
    return min(pool, key=lambda m: sign * m.mean)


__all__ = ["ConfigMean", "best", "configuration_means"]
