"""The statistics of the report: mean with a t-based confidence interval, the paired test that
compares two configurations, and Holm's correction for comparing the best with several others.

scipy is imported inside the functions that need it (it costs most of a second to import).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

# The exact two-sided signed-rank test's smallest p-value with n non-zero differences is
# 2 / 2**n: 0.0625 for n = 5, 0.03125 for n = 6. Below 6 pairs it can never say p < 0.05.
MIN_WILCOXON = 6


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float | None  # sample standard deviation (ddof 1); None for n < 2
    ci_low: float | None  # 95% confidence interval of the mean, t distribution with n - 1 df
    ci_high: float | None


def summarize(values: Sequence[float], level: float = 0.95) -> Summary:
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return Summary(n, mean, None, None, None)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = _t_quantile(0.5 + level / 2, n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


@functools.lru_cache(maxsize=None)
def _t_quantile(q: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(q, df))


@dataclass(frozen=True)
class PairedTest:
    test: str | None  # "wilcoxon", "t-test", "sign", or None when no test can be made
    why: str
    p: float | None


# Differences within this fraction of the largest value compared are rounding, not results: the
# same data must get the same verdict whatever order its means were summed in.
REL_TOL = 1e-12


def paired_test(best: Sequence[float], other: Sequence[float]) -> PairedTest:
    """Two-sided paired test of `best` against `other` (same pairs, same order).

    Wilcoxon signed-rank (no assumption on the shape of the differences) with at least
    MIN_WILCOXON non-zero differences; below that it cannot reach p < 0.05, so a paired t-test
    (which assumes roughly normal differences) is used instead. The same non-zero difference on
    every pair (up to rounding) has no spread for either: an exact sign test, p = 2 / 2**n.
    """
    n = len(best)
    if n < 2:
        return PairedTest(None, f"{n} shared date range: too few to test", None)
    tol = REL_TOL * max(max(abs(v) for v in best), max(abs(v) for v in other))
    diffs = [0.0 if abs(b - o) <= tol else b - o for b, o in zip(best, other)]
    nonzero = sum(1 for d in diffs if d != 0.0)
    if nonzero == 0:
        return PairedTest(None, f"identical results on all {n} shared date ranges", None)
    if nonzero == n and max(diffs) - min(diffs) <= tol:
        why = (f"the same difference on all {n} date ranges, no spread for a t-test or Wilcoxon: exact sign "
               f"test, p = 2/2^{n}")
        return PairedTest("sign", why, min(1.0, 2 * 0.5 ** n))
    import warnings

    from scipy import stats

    with warnings.catch_warnings():  # scipy's precision and approximation warnings are not the user's
        warnings.simplefilter("ignore")
        if nonzero >= MIN_WILCOXON:
            why = (f"{nonzero} non-zero paired differences (>= {MIN_WILCOXON}): signed-rank test, no normality "
                   "assumed")
            return PairedTest("wilcoxon", why, _finite(stats.wilcoxon(diffs).pvalue))
        why = (f"only {nonzero} non-zero paired differences: Wilcoxon cannot reach p < 0.05 with fewer than "
               f"{MIN_WILCOXON}, so a paired t-test (assumes roughly normal differences)")
        return PairedTest("t-test", why, _finite(stats.ttest_1samp(diffs, 0.0).pvalue))


def _finite(p) -> float | None:
    p = float(p)
    return p if math.isfinite(p) else None


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values, in the input order; None stays None (not counted).

    Sorted ascending, the i-th smallest (from 0) of m p-values becomes (m - i) * p, made
    monotone (never below the previous adjusted one) and capped at 1.
    """
    order = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(order)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out
