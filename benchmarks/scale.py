"""5. Expansion: count a 10^9-point grid and list 10 trials; draw 10^5 random trials.
6. Resume: skip 10,000 finished trials at the start of a run."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Figure, env_with_benchmarks

from hpt_cli.runner import RunOptions, run_spec
from hpt_cli.search import expand
from hpt_cli.spec import parse_spec
from hpt_cli.storage.results import Columns, csv_line

PROBE = """
import json, resource, sys, time
started = time.perf_counter()
from hpt_cli.spec import parse_spec
from hpt_cli.search import expand
spec = parse_spec(sys.stdin.read())
trials = expand(spec)
n = len(trials)
first = [trials[i].id for i in range(min(n, %d))]
if %d:
    for t in trials:
        pass
print(json.dumps({"seconds": time.perf_counter() - started, "count": n,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

BASELINE = """
import json, resource, time
started = time.perf_counter()
import hpt_cli.spec, hpt_cli.search
print(json.dumps({"seconds": time.perf_counter() - started,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _probe(code: str, spec: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(spec) if spec else "", capture_output=True,
                         text=True, check=True, env=env_with_benchmarks())
    return json.loads(out.stdout)


def expansion(repeat: int) -> list[Figure]:
    grid = {"architecture": "mlp", "date-range": [["2016-01-01", "2016-02-01"]],
            "parameters": {f"p{i}": list(range(10)) for i in range(9)}}
    rand = {"architecture": "mlp", "date-range": [["2016-01-01", "2016-02-01"]],
            "parameters": {"lr": {"distribution": "loguniform", "low": 1e-4, "high": 1e-1},
                           "h": {"distribution": "int", "low": 8, "high": 256, "log": True},
                           "act": ["relu", "tanh"]},
            "search": {"strategy": "random", "trials": 100_000}}
    base = [_probe(BASELINE) for _ in range(repeat)]
    big = [_probe(PROBE % (10, 0), grid) for _ in range(repeat)]
    drawn = [_probe(PROBE % (0, 1), rand) for _ in range(repeat)]
    assert big[0]["count"] == 10**9 and drawn[0]["count"] == 100_000
    f_base = Figure("expansion baseline: import the spec and search modules", [b["seconds"] * 1000 for b in base],
                    "ms")
    f_big = Figure("expansion: count a 10^9-point grid, list 10 trials", [b["seconds"] * 1000 for b in big], "ms",
                   f_base, target="instant and flat in memory")
    grow = max(b["maxrss_kib"] for b in big) - min(b["maxrss_kib"] for b in base)
    f_big.met = grow < 20 * 1024
    f_big.extra = {"peak_rss_growth_kib": grow}
    f_big.note = f"peak RSS {grow / 1024:+.1f} MiB over the baseline"
    f_rand = Figure("expansion: draw and list 10^5 random trials", [d["seconds"] * 1000 for d in drawn], "ms")
    return [f_big, f_base, f_rand]


def resume(repeat: int, trials: int = 10_000) -> list[Figure]:
    body = {"name": "resume", "architecture": "noop:train", "date-range": [["2015-01-01", "2015-02-01"]],
            "parameters": {"i": list(range(trials))}}
    spec = parse_spec(json.dumps(body))
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        from hpt_cli.runner.run_id import run_id

        folder = Path(tmp) / run_id(spec)
        folder.mkdir()
        columns = Columns(spec.parameter_names, ["val_mse"])
        lines = [csv_line(columns.header)]
        for t in expand(spec):
            fields = {"trial_id": t.id, "status": "ok", "architecture": t.architecture,
                      "start": "2015-01-01", "end": "2015-02-01", "repeat": 0, "seed": t.seed}
            lines.append(csv_line(columns.row(fields, t.params, {"val_mse": 0.0})))
        (folder / "results.csv").write_text("".join(lines))
        for _ in range(repeat):
            started = time.perf_counter()
            result = run_spec(spec, RunOptions(output=tmp, workers=2))
            samples.append(time.perf_counter() - started)
            assert result.counts["skipped"] == trials, result.counts
    f = Figure(f"resume: skip {trials:,} finished trials (whole run_spec)", samples, "s", target="<= 1 s")
    f.met = f.median <= 1
    return [f]
