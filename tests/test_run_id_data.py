"""A spec's own data file is in the run id by the rows its trials read: other data (another folder,
an edited file) is a new run, rows appended after the last validation window are not."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hpt_cli.datasets import _load
from hpt_cli.runner.run_id import run_id
from hpt_cli.spec import parse_spec


@pytest.fixture(autouse=True)
def fresh_data_cache():
    _load.cache_clear()  # a file rewritten within one process: read it again
    yield
    _load.cache_clear()


def write(path: Path, days: int = 400, scale: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    dates = pd.date_range("2021-01-01", periods=days, freq="D")
    units = np.arange(days, dtype=float) * scale
    pd.DataFrame({"day": dates.strftime("%Y-%m-%d"), "units": units}).to_csv(path, index=False)
    return path


def spec_for(path: Path):
    return parse_spec(json.dumps({"name": "sales", "architecture": "ridge",
                                  "date-range": [["2021-01-01", "2021-07-01"]],
                                  "data": {"path": str(path), "date_column": "day", "target": "units"},
                                  "parameters": {"alpha": [1.0]}}), today=date(2026, 11, 22))


def test_the_same_rows_elsewhere_resume_other_rows_are_a_new_run(tmp_path):
    first = run_id(spec_for(write(tmp_path / "a" / "sales.csv")))
    assert run_id(spec_for(write(tmp_path / "b" / "sales.csv"))) == first  # same rows, another folder
    _load.cache_clear()
    assert run_id(spec_for(write(tmp_path / "c" / "sales.csv", scale=10.0))) != first  # other values


def test_rows_appended_after_the_last_validation_window_keep_the_id(tmp_path):
    path = write(tmp_path / "sales.csv", days=220)  # through 2021-08-08: past July's validation month
    before = run_id(spec_for(path))
    _load.cache_clear()
    write(path, days=400)  # a daily feed grew the file
    assert run_id(spec_for(path)) == before
    _load.cache_clear()
    frame = pd.read_csv(path)
    frame.loc[10, "units"] = -1.0  # an edit inside a training range
    frame.to_csv(path, index=False)
    assert run_id(spec_for(path)) != before


def test_the_bundled_data_leaves_the_id_as_it_was():
    spec = parse_spec(Path("experiments/quickstart.json").read_text(), today=date(2026, 11, 22))
    assert run_id(spec) == "quickstart-6df2cb09"
