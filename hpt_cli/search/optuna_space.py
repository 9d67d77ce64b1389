"""The spec's domains as Optuna distributions, and Optuna's values back as parameter values.

| hpt domain                     | Optuna distribution                                               |
| ------------------------------ | ----------------------------------------------------------------- |
| Fixed                          | none: the value passes through untouched                          |
| Uniform(low, high, log)        | FloatDistribution(low, high, log)                                 |
| Int(low, high, log, step)      | IntDistribution(low, high', log, step); high' = last value on the step |
| Quantized(low, high, q)        | FloatDistribution(lo, hi, step=q), or IntDistribution(lo, hi, step=q) when low, high and q are whole; lo, hi: the multiples of q inside [low, high], as random search rounds |
| Quantized(low, high, q, log)   | FloatDistribution(low, high, log=True), rounded to a multiple of q on the way out: Optuna cannot combine log and step, so the sampler models the unrounded value (as Hyperopt's qloguniform does) |
| Choice, Grid                   | CategoricalDistribution over the values when they are distinct scalars, else over their canonical JSON texts (lists, dicts; 1 vs true); a Choice's values of weight 0 are left out (never drawn, as in random search), its other weights are ignored (Optuna has no prior weights; `hpt validate` says so) |
| Normal(mu, sigma)              | FloatDistribution(mu - 3 sigma, mu + 3 sigma): Optuna has no normal prior; the interval holds 99.7% of its mass, searched uniformly (`hpt validate` says so) |
| Normal(mu, sigma, log) (lognormal) | FloatDistribution(exp(mu - 3 sigma), exp(mu + 3 sigma), log=True) |

With several architectures (model selection) a categorical "architecture" parameter comes first
and each architecture's parameters are asked only when it is chosen (define-by-run), under keys
"<architecture>/<name>" so two architectures' `lr` are modelled apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import BaseTrial

from hpt_cli.search.trial import canonical_json
from hpt_cli.spec.domains import (
    Choice,
    Domain,
    Fixed,
    Grid,
    Int,
    Normal,
    Quantized,
    Uniform,
)
from hpt_cli.spec.model import Spec
from hpt_cli.storage.results import LEAD, TAIL
from hpt_cli.storage.results import _text as cell_text  # how results.csv writes a value

ARCHITECTURE = "architecture"
SIGMAS = 3.0  # a normal domain is searched over mu +- SIGMAS * sigma


@dataclass(frozen=True)
class Param:
    """One tuned parameter: its Optuna key and distribution, and the conversions."""

    name: str  # the spec's parameter name
    key: str  # its name in the study
    distribution: BaseDistribution
    decode: Callable[[Any], Any]  # Optuna value -> parameter value (what the trial gets)
    parse: Callable[[str], Any]  # results.csv cell -> Optuna value; raises ValueError


def to_param(name: str, key: str, domain: Domain) -> Param:
    """The Optuna side of a (non-Fixed) domain; see the module's table."""
    if isinstance(domain, Uniform):
        return Param(name, key, FloatDistribution(domain.low, domain.high, log=domain.log), float, float)
    if isinstance(domain, Int):
        high = domain.last
        dist = IntDistribution(domain.low, high, log=domain.log, step=domain.step)
        return Param(name, key, dist, int, _parse_int)
    if isinstance(domain, Quantized):
        return _quantized(name, key, domain)
    if isinstance(domain, Choice) and domain.weights:
        return _categorical(name, key, domain.drawn)
    if isinstance(domain, (Choice, Grid)):
        return _categorical(name, key, tuple(domain.values))
    if isinstance(domain, Normal):
        low, high = domain.mu - SIGMAS * domain.sigma, domain.mu + SIGMAS * domain.sigma
        if domain.log:
            low, high = math.exp(low), math.exp(high)
        return Param(name, key, FloatDistribution(low, high, log=domain.log), float, float)
    raise TypeError(f"no Optuna distribution for {type(domain).__name__} (parameter {name!r})")


def _parse_int(cell: str) -> int:
    value = float(cell)
    if not value.is_integer():
        raise ValueError(f"not a whole number: {cell!r}")
    return int(value)


def _quantized(name: str, key: str, d: Quantized) -> Param:
    q = d.q
    first, last, whole = d.multiples
    lo, hi = round(first * q, 12), round(last * q, 12)
    if d.log:
        def decode(x: float) -> Any:
            v = round(min(max(round(x / q) * q, lo), hi), 12)
            return int(v) if whole else v

        return Param(name, key, FloatDistribution(d.low, d.high, log=True), decode, float)
    if whole:
        return Param(name, key, IntDistribution(int(lo), int(hi), step=int(q)), int, _parse_int)
    return Param(name, key, FloatDistribution(lo, hi, step=q), lambda x: round(x, 12), float)


def _categorical(name: str, key: str, values: tuple) -> Param:
    scalar = all(v is None or isinstance(v, (bool, int, float, str)) for v in values)
    plain = scalar and not any(isinstance(v, float) and math.isnan(v) for v in values)
    # distinct under == and hash: 1, 1.0 and True are one value to Optuna, so they go as JSON text
    plain = plain and len(set(values)) == len(values)
    choices = values if plain else tuple(canonical_json(v) for v in values)
    by_cell = {cell_text(v): c for v, c in zip(values, choices)}

    def decode(choice: Any) -> Any:
        return values[choices.index(choice)]

    def parse(cell: str) -> Any:
        if cell not in by_cell:
            raise ValueError(f"{cell!r} is not one of the values of {name!r}")
        return by_cell[cell]

    return Param(name, key, CategoricalDistribution(choices), decode, parse)


def suggest(trial: BaseTrial, key: str, dist: BaseDistribution) -> Any:
    """Ask `trial` for `key` through the public suggest_* API."""
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_categorical(key, dist.choices)


class OptunaSpace:
    """Every architecture's tuned parameters as Optuna distributions, and its fixed values."""

    def __init__(self, spec: Spec):
        self.architectures = spec.architectures
        self.several = len(self.architectures) > 1
        self.names = set(spec.parameter_names)
        self.params: dict[str, list[Param]] = {}
        self.fixed: dict[str, dict[str, Any]] = {}
        self.order: dict[str, list[str]] = {}
        for arch in self.architectures:
            space = spec.space_of(arch)
            self.order[arch] = [n for n, _ in space]
            self.fixed[arch] = {n: d.value for n, d in space if isinstance(d, Fixed)}
            self.params[arch] = [to_param(n, f"{arch}/{n}" if self.several else n, d)
                                 for n, d in space if not isinstance(d, Fixed)]

    def distributions(self, arch: str) -> dict[str, BaseDistribution]:
        """The distributions of one architecture's configurations (with "architecture" first)."""
        out: dict[str, BaseDistribution] = {}
        if self.several:
            out[ARCHITECTURE] = CategoricalDistribution(self.architectures)
        out.update((p.key, p.distribution) for p in self.params[arch])
        return out

    def suggest(self, trial: BaseTrial) -> tuple[str, dict[str, Any]]:
        """(architecture, parameters) of a new configuration, asked of `trial`."""
        arch = self.architectures[0]
        if self.several:
            arch = trial.suggest_categorical(ARCHITECTURE, self.architectures)
        return arch, self.decode(arch, {p.key: suggest(trial, p.key, p.distribution)
                                        for p in self.params[arch]})

    def decode(self, arch: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters (in the spec's order, fixed ones included) from Optuna values by key."""
        picked = dict(self.fixed[arch])
        picked.update((p.name, p.decode(values[p.key])) for p in self.params[arch])
        return {n: picked[n] for n in self.order[arch]}

    def from_row(self, row: Mapping[str, str]) -> tuple[str, dict[str, Any]] | None:
        """(architecture, Optuna values by key) of a results.csv row; None when it does not fit
        this space (another architecture, a value outside a distribution)."""
        arch = row.get("architecture", "")
        if arch not in self.params:
            return None
        values: dict[str, Any] = {ARCHITECTURE: arch} if self.several else {}
        for p in self.params[arch]:
            cell = row.get(self._column(p.name, row))
            if cell is None:
                return None
            try:
                value = p.parse(cell)
            except ValueError:
                return None
            low, high = getattr(p.distribution, "low", value), getattr(p.distribution, "high", value)
            if not low <= value <= high:
                return None
            values[p.key] = value
        return arch, values

    def _column(self, name: str, row: Mapping[str, str]) -> str:
        """The parameter's column (hpt_cli.storage.results.param_column, seen from a row: a name
        that clashes with a fixed or metric column is written as param_<name>)."""
        prefixed = f"param_{name}"
        if name in LEAD or name in TAIL or (prefixed in row and prefixed not in self.names):
            return prefixed
        return name
