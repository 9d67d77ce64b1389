"""`hpt calibrate`: does quick mode rank configurations as full mode does?

Runs one sample of configurations twice through `run_spec`, in quick mode and in full mode (the
spec's own date ranges and epochs), and reports the Spearman rank correlation of the
configurations' mean objectives with a 95% confidence interval.

The sample is the spec turned into a random search with `sample` distinct configurations: grid
lists become uniform choices, distributions are drawn from, fixed values stay fixed. With several
architectures each configuration first draws its architecture (uniformly), then that
architecture's parameters (its own block when the spec has one per architecture), so the sample
spans every architecture and the correlation covers ranking across them too.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from hpt_cli.errors import ExitCode, HptError
from hpt_cli.search import space
from hpt_cli.spec.model import Spec
from hpt_cli.spec.modes import apply_quick
from hpt_cli.spec.parse import parse_spec

DEFAULT_SAMPLE = 8
BOOTSTRAP_RESAMPLES = 2000
CI_METHODS = ("bootstrap", "fisher")

__all__ = ["CI_METHODS", "Calibration", "Ranked", "calibrate", "chance_p", "rank_correlation", "sample_spec"]


def sample_spec(spec: Spec, sample: int, seed: int = 0) -> Spec:
    """`spec` as a random search over `sample` distinct configurations (fewer when its space
    has fewer), named `<name>-calibrate`. Random search draws distinct configurations (a draw
    that repeats an earlier one is skipped) and caps their count at what the space holds."""
    doc = spec.to_json()
    doc["name"] = f"{spec.name}-calibrate"
    doc["search"] = {"strategy": "random", "trials": sample, "seed": seed, "repeats": spec.search.repeats}
    drawn = parse_spec(json.dumps(doc), source=f"calibration sample of {spec.name}", today=spec.today)
    count = len(space(drawn))
    if count < 3:
        raise HptError(f"{spec.name}: its space has {count} distinct configuration"
                       f"{'s' if count != 1 else ''}; a rank correlation needs at least 3")
    return replace(drawn, search=replace(drawn.search, trials=count), rolling=spec.rolling, mode="full")


@dataclass(frozen=True)
class Ranked:
    """One configuration of the sample: its label, mean objective and rank (1 = best) per mode."""

    label: str
    quick: float
    full: float
    quick_rank: float
    full_rank: float


@dataclass
class Calibration:
    quick_spec: Spec
    full_spec: Spec
    quick_uri: str = ""
    full_uri: str = ""
    quick_seconds: float = 0.0
    full_seconds: float = 0.0
    rows: list[Ranked] = field(default_factory=list)
    rho: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    method: str = "bootstrap"
    p: float = float("nan")  # chance_p: a random ordering agrees at least as well
    left_out: list[str] = field(default_factory=list)  # why configurations are not in the rows
    exit_code: int = ExitCode.OK

    @property
    def n(self) -> int:
        return len(self.rows)

    def line(self) -> str:
        """`Spearman rho = 0.83 (95% CI 0.41..0.96, bootstrap, n=8; by chance p = 0.006)`: p is how
        often a random ordering agrees with full mode's at least as well (`chance_p`)."""
        if math.isnan(self.low):
            why = "every resample agrees" if self.method == "bootstrap" else "Fisher's z has none at |rho| = 1"
            interval = f"95% CI: none, {why}, n={self.n}"
        else:
            interval = f"95% CI {self.low:.2f}..{self.high:.2f}, {self.method}, n={self.n}"
        return f"Spearman rho = {self.rho:.2f} ({interval}; by chance p = {self.p:.3g})"

    def notes(self) -> list[str]:
        if self.n < DEFAULT_SAMPLE:
            return [f"{self.n} configurations are few to judge by (an interval of so few is wide or none): "
                    f"use --sample {DEFAULT_SAMPLE} or more"]
        return []


def rank_correlation(quick: Sequence[float], full: Sequence[float], method: str = "bootstrap",
                     seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float, float]:
    """Spearman's rho of the two value lists and its 95% confidence interval; the interval is
    (nan, nan) where the method has none to give (every resample agrees; |rho| = 1 for Fisher):
    a perfect agreement of a few configurations is no certainty (see `chance_p`).

    bootstrap: percentile interval over `resamples` resamples of the configurations (a numpy
    Generator seeded by `seed`; resamples whose ranks are all tied are dropped). fisher: z =
    atanh(rho) with Bonett and Wright's (2000) standard error for Spearman's rho,
    sqrt((1 + rho^2 / 2) / (n - 3)); needs n > 3.
    """
    from scipy.stats import rankdata, spearmanr

    q, f = np.asarray(quick, dtype=float), np.asarray(full, dtype=float)
    n = len(q)
    if n < 3:
        raise HptError(f"a rank correlation needs at least 3 configurations with results in both modes, got {n}")
    if np.ptp(q) == 0 or np.ptp(f) == 0:
        raise HptError("every configuration has the same objective in one of the modes: no ranking to compare")
    rho = float(spearmanr(q, f)[0])
    nan = float("nan")
    if method == "fisher":
        if n <= 3:
            raise HptError("the Fisher interval needs more than 3 configurations; use --ci bootstrap")
        if abs(rho) > 1 - 1e-12:
            return rho, nan, nan
        z, se = np.arctanh(rho), np.sqrt((1 + rho * rho / 2) / (n - 3))
        return rho, float(np.tanh(z - 1.959964 * se)), float(np.tanh(z + 1.959964 * se))
    if method != "bootstrap":
        raise ValueError(f"method must be one of {', '.join(CI_METHODS)}, got {method!r}")
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    rq, rf = rankdata(q[idx], axis=1), rankdata(f[idx], axis=1)
    rq -= rq.mean(axis=1, keepdims=True)
    rf -= rf.mean(axis=1, keepdims=True)
    denom = np.sqrt((rq * rq).sum(axis=1) * (rf * rf).sum(axis=1))
    ok = denom > 0
    rhos = (rq * rf).sum(axis=1)[ok] / denom[ok]
    low, high = np.percentile(rhos, [2.5, 97.5])
    if np.ptp(rhos) < 1e-12:  # every resample agrees: the bootstrap sees no variation, which is no certainty
        return rho, nan, nan
    return rho, float(low), float(high)


EXACT_UP_TO = 8  # n! orderings: 40,320 at 8
PERMUTATIONS = 20_000


def chance_p(quick: Sequence[float], full: Sequence[float], seed: int = 0) -> float:
    """How often a random ordering of the configurations agrees with quick mode's at least as well
    as full mode's does: P(rho of a permutation >= rho), exact over every ordering up to
    EXACT_UP_TO configurations, else over PERMUTATIONS seeded ones (counting the observed one)."""
    from itertools import permutations

    from scipy.stats import rankdata

    rq, rf = rankdata(np.asarray(quick, dtype=float)), rankdata(np.asarray(full, dtype=float))
    n = len(rq)
    if n <= EXACT_UP_TO:
        orders = np.array(list(permutations(range(n))))
    else:
        rng = np.random.default_rng(seed)
        orders = np.array([rng.permutation(n) for _ in range(PERMUTATIONS)])
    cq, cf = rq - rq.mean(), rf - rf.mean()
    observed = float(cq @ cf)
    scores = cf[orders] @ cq
    hits = int((scores >= observed - 1e-9).sum())
    return hits / len(orders) if n <= EXACT_UP_TO else (hits + 1) / (len(orders) + 1)


def calibrate(
    spec: Spec,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    method: str = "bootstrap",
    run=None,
    stop: threading.Event | None = None,
) -> Calibration:
    """Run the sample in quick mode, then in full mode, and rank both.

    `run(spec) -> RunResult` runs one spec (the CLI passes `run_spec` with its options and
    observers); a rerun resumes both runs (their run ids are deterministic).
    """
    from hpt_cli.report.load import config_key
    from hpt_cli.report.means import configuration_means

    if run is None:
        from hpt_cli.runner import run_spec

        run = run_spec
    full = sample_spec(spec, sample, seed)
    quick = replace(apply_quick(full, fix_epochs=False), name=f"{spec.name}-calibrate-quick")  # pairs by key
    full = replace(full, name=f"{spec.name}-calibrate-full")
    out = Calibration(quick, full, method=method)
    for mode, one in (("quick", quick), ("full", full)):
        started = time.perf_counter()
        result = run(one)
        setattr(out, f"{mode}_seconds", time.perf_counter() - started)
        setattr(out, f"{mode}_uri", result.uri)
        if result.exit_code not in (ExitCode.OK, ExitCode.TRIALS_FAILED):
            out.exit_code = result.exit_code  # interrupted, storage, locked, time cap: no ranking
            return out
        if stop is not None and stop.is_set():
            out.exit_code = ExitCode.INTERRUPTED
            return out
    sample = space(full)  # a run folder may hold more (an earlier, larger --sample): rank this sample's
    wanted = {config_key(*sample[c]) for c in range(len(sample))}
    _, quick_means = configuration_means(out.quick_uri)
    _, full_means = configuration_means(out.full_uri)
    q = {m.config: m for m in quick_means if m.complete and m.config in wanted}
    f = {m.config: m for m in full_means if m.complete and m.config in wanted}
    for name, mine, other in (("quick", q, f), ("full", f, q)):
        missing = len(set(other) - set(mine))
        if missing:
            out.left_out.append(f"{missing} configuration{'s' if missing != 1 else ''} with a failed "
                                f"trial in {name} mode")
    shared = [c for c in f if c in q]
    if not shared:
        raise HptError("no configuration of the sample finished in both modes; see the runs' results.csv")
    sign = 1 if spec.objective.mode == "min" else -1
    qv = [q[c].mean for c in shared]
    fv = [f[c].mean for c in shared]
    from scipy.stats import rankdata

    q_ranks = rankdata([sign * v for v in qv])
    f_ranks = rankdata([sign * v for v in fv])
    rows = [Ranked(f[c].label, a, b, float(x), float(y)) for c, a, b, x, y in zip(shared, qv, fv, q_ranks, f_ranks)]
    out.rows = sorted(rows, key=lambda r: (r.full_rank, r.quick_rank))
    out.rho, out.low, out.high = rank_correlation(qv, fv, method, seed)
    out.p = chance_p([sign * v for v in qv], [sign * v for v in fv], seed)
    return out
