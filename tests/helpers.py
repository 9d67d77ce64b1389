"""What the subprocess tests share: the `hpt` executable, a spec file, an environment in which
workers can import `tests.archs`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HPT = str(Path(sys.executable).with_name("hpt"))


def write_spec(folder: Path, **body) -> Path:
    """folder/spec.json with `body`; one month of the bundled data unless a date range is given."""
    body.setdefault("date-range", [["2015-01-01", "2015-02-01"]])
    path = folder / "spec.json"
    path.write_text(json.dumps(body))
    return path


def subprocess_env(**extra: str) -> dict[str, str]:
    """This environment, with the repository on PYTHONPATH and CI unset (plain progress lines)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("CI", None)
    env.update(extra)
    return env
