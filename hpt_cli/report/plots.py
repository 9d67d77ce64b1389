"""PNG plots for the HTML report (matplotlib, the optional extra `[plots]`).

Figures are built with `matplotlib.figure.Figure` and saved with the Agg canvas: no pyplot, no
global backend switch, no display needed. Each function returns PNG bytes.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict

from hpt_cli.report.build import Report
from hpt_cli.report.load import Results, canonical

TOP_LINES = 5  # configurations drawn in the per-date-range plot
MAX_PANELS = 12


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def trajectory_png(report: Report) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for t in report.trajectories:
        if not t.steps:
            continue
        ys = [s.best for s in t.steps] + [t.steps[-1].best]
        for ax, xs in ((axes[0], [s.trial_time_s for s in t.steps] + [t.trial_time_s]),
                       (axes[1], [s.wall_time_s for s in t.steps] + [t.wall_time_s])):
            ax.step(xs, ys, where="post", label=t.run)
            ax.plot(xs[:-1], ys[:-1], "o", color=ax.lines[-1].get_color(), markersize=4)
    axes[0].set_xlabel("cumulative trial time (s, sum of duration_s in finish order)")
    axes[1].set_xlabel("wall time since the run's first trial started (s)")
    axes[0].set_ylabel(f"best mean {report.metric} so far ({report.mode})")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.set_xlim(left=0)
    if len(report.trajectories) > 1:
        axes[1].legend(title="run", fontsize="small")
    fig.suptitle(f"Is the search still improving? Best configuration's mean {report.metric} so far")
    return _png(fig)


def parameters_png(report: Report, results: Results) -> bytes | None:
    """Objective against each parameter: every trial (colour = date range) and the mean per
    value or bin (black line)."""
    effects = report.effects[:MAX_PANELS]
    if not effects:
        return None
    from matplotlib.figure import Figure

    cols = min(3, len(effects))
    nrows = math.ceil(len(effects) / cols)
    width = max(4.2 * cols, 8.0)  # room for the title and a legend row of date ranges with one or two panels
    fig = Figure(figsize=(width, 3.6 * nrows + 1.0), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    colours = {r: f"C{i % 10}" for i, r in enumerate(results.ranges)}
    rows = results.ok
    for ax, effect in zip(axes, effects):
        name = effect.parameter
        if name == "architecture":
            here = [(r.architecture, r) for r in rows]
        else:
            here = [(r.params[name], r) for r in rows if name in r.params]
        if effect.kind == "bins":
            xs = [float(v) for v, _ in here]
            if min(xs) > 0 and max(xs) / min(xs) > 100:
                ax.set_xscale("log")
            ax.scatter(xs, [r.value for _, r in here], s=10, alpha=0.5, c=[colours[r.date_range] for _, r in here])
            centres = _bin_centres(effect, here)
            ax.plot(centres, [lv.mean for lv in effect.levels], "k-o", markersize=5, label="mean per bin")
        else:
            index = {lv.key: i for i, lv in enumerate(effect.levels)}
            jitter = defaultdict(int)
            xs = []
            for v, r in here:
                i = index[canonical(v)]
                jitter[i] += 1
                xs.append(i + ((jitter[i] * 0.618) % 1 - 0.5) * 0.3)
            ax.scatter(xs, [r.value for _, r in here], s=10, alpha=0.5, c=[colours[r.date_range] for _, r in here])
            ax.plot(range(len(effect.levels)), [lv.mean for lv in effect.levels], "k-o", markersize=5,
                    label="mean per value")
            ax.set_xticks(range(len(effect.levels)), [_short(lv.value, 12) for lv in effect.levels])
        ax.set_xlabel(name + (" (value)" if effect.kind == "values" else ""))
        ax.set_ylabel(report.metric)
        best = f", best everywhere: {effect.consistent}" if effect.consistent else ""
        ax.set_title(f"{name}{best}", fontsize="medium")
        ax.grid(alpha=0.3)
    for ax in axes[len(effects):]:
        ax.set_visible(False)
    handles = [_dot(colours[r], r) for r in results.ranges]
    fig.legend(handles=handles, title="date range", loc="outside lower center",
               ncols=max(1, min(len(handles), int(width // 2.4))), fontsize="small")
    fig.suptitle(f"How does each parameter move {report.metric}?\nTrials (dots) and the mean per value (line)")
    return _png(fig)


def _dot(colour: str, label: str):
    from matplotlib.lines import Line2D

    return Line2D([], [], marker="o", linestyle="", color=colour, label=label)


def _bin_centres(effect, here) -> list[float]:
    centres = []
    for lv in effect.levels:
        low, high = lv.low, lv.high
        centres.append(math.sqrt(low * high) if low > 0 and high / low > 10 else (low + high) / 2)
    return centres


def ranges_png(report: Report) -> bytes | None:
    """The top configurations' mean objective on each date range."""
    top = report.ranking[:TOP_LINES]
    if len(report.ranges) < 1 or not top:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.8), layout="constrained")
    ax = fig.subplots()
    xs = range(len(report.ranges))
    for c in top:
        ys = [c.range_means.get(r, math.nan) for r in report.ranges]
        ax.plot(xs, ys, "-o", label=f"#{c.rank} {_short(c.label)}", linewidth=2.5 if c.rank == 1 else 1.2)
    ax.set_xticks(list(xs), report.ranges, rotation=20, ha="right")
    ax.set_xlabel("date range (training window)")
    better = "lower" if report.mode == "min" else "higher"
    ax.set_ylabel(f"mean {report.metric} on the range ({better} is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", title="configuration (overall rank)")
    fig.suptitle(f"Does the best configuration win on every date range? Top {len(top)} by mean {report.metric}")
    return _png(fig)
