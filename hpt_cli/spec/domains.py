"""Parameter domains: a fixed value, grid values, or a random distribution.

Distributions validate in their constructors (raising ValueError with what must hold and what
was given) and draw samples with scipy.stats from an injected numpy Generator. Samples are plain
Python values, so trial ids hash the same everywhere.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # numpy is imported where samples are drawn, so reading a spec stays light
    import numpy as np


class DomainError(ValueError):
    """A distribution's argument is invalid; `field` names it ("low", "sigma", ...)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class Domain:
    """The values one parameter may take."""

    def to_json(self) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Fixed(Domain):
    value: Any

    def to_json(self) -> Any:
        if isinstance(self.value, (list, dict)):
            return {"value": self.value}
        return self.value


@dataclass(frozen=True)
class Grid(Domain):
    values: tuple

    def __post_init__(self) -> None:
        if not self.values:
            raise DomainError("", "a grid needs at least one value, got an empty list")

    def to_json(self) -> Any:
        return list(self.values)

    def sample(self, rng: np.random.Generator, size: int) -> list:
        """Grid values count as a uniform choice in random search."""
        return [self.values[i] for i in rng.integers(0, len(self.values), size=size)]


class Distribution(Domain):
    """A random domain; `sample` draws `size` values."""

    names: ClassVar[tuple[str, ...]]

    def sample(self, rng: np.random.Generator, size: int) -> list:
        raise NotImplementedError


LARGEST_INT = 2**63 - 1  # integer bounds: what numpy and Optuna take
MAX_STEPS = 10**15  # values a quniform may take: exact as floats, and far more than anyone tries
_LOG_MAX = math.log(sys.float_info.max)  # 709.78: exp() of more overflows
_SIGMAS_KEPT = 6.0  # normal draws beyond mu +- 6 sigma: about 2 in 10^9


def _check_bounds(low: float, high: float, log: bool) -> None:
    if not low < high:
        raise DomainError("low", f"low < high must hold, got low={low!r}, high={high!r}")
    if log and low <= 0:
        raise DomainError("low", f"a log scale needs low > 0, got low={low!r}")
    if not math.isfinite(high - low):
        raise DomainError("high", f"high - low must be a finite number, got low={low!r}, high={high!r} "
                                  f"(high - low overflows): narrow the interval")


@dataclass(frozen=True)
class Uniform(Distribution):
    names: ClassVar = ("uniform", "loguniform")
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        _check_bounds(self.low, self.high, self.log)

    def to_json(self) -> Any:
        name = "loguniform" if self.log else "uniform"
        return {"distribution": name, "low": self.low, "high": self.high}

    def sample(self, rng, size):
        import numpy as np
        from scipy import stats

        dist = (
            stats.loguniform(self.low, self.high)
            if self.log
            else stats.uniform(loc=self.low, scale=self.high - self.low)
        )
        return [float(v) for v in np.atleast_1d(dist.rvs(size=size, random_state=rng))]


@dataclass(frozen=True)
class Int(Distribution):
    """Integers in [low, high], both included; `step` spaces them, `log` samples on a log scale."""

    names: ClassVar = ("int", "randint")
    low: int
    high: int
    log: bool = False
    step: int = 1

    def __post_init__(self) -> None:
        for name, value in (("low", self.low), ("high", self.high), ("step", self.step)):
            if abs(value) > LARGEST_INT:
                raise DomainError(name, f"{name} must be within +-(2^63 - 1), got {value}")
        _check_bounds(self.low, self.high, self.log)
        if self.step < 1:
            raise DomainError("step", f"step >= 1 must hold, got step={self.step!r}")
        if self.log and self.step != 1:
            raise DomainError("step", "log and step cannot be combined (as in Optuna)")

    def to_json(self) -> Any:
        out: dict[str, Any] = {"distribution": "int", "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step != 1:
            out["step"] = self.step
        return out

    @property
    def last(self) -> int:
        """The highest value drawn: the last step within high (random search, Optuna, the checks)."""
        return self.low + (self.high - self.low) // self.step * self.step

    def sample(self, rng, size):
        import numpy as np
        from scipy import stats

        if self.log:
            # low >= 1 here, so the widened interval stays positive (Optuna does the same)
            raw = stats.loguniform(self.low - 0.5, self.high + 0.5).rvs(size=size, random_state=rng)
            vals = np.clip(np.rint(np.atleast_1d(raw)), self.low, self.high)
            return [int(v) for v in vals]
        count = (self.high - self.low) // self.step + 1
        raw = stats.randint(0, count).rvs(size=size, random_state=rng)
        return [int(self.low + self.step * v) for v in np.atleast_1d(raw)]


@dataclass(frozen=True)
class Choice(Distribution):
    names: ClassVar = ("choice",)
    values: tuple
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not self.values:
            raise DomainError("values", "choice needs at least one value, got an empty list")
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise DomainError(
                    "weights",
                    f"weights must have one number per value: {len(self.values)} values, "
                    f"{len(self.weights)} weights"
                )
            if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise DomainError("weights", "weights must be >= 0 with a positive sum")

    def to_json(self) -> Any:
        out: dict[str, Any] = {"distribution": "choice", "values": list(self.values)}
        if self.weights is not None:
            out["weights"] = list(self.weights)
        return out

    @property
    def drawn(self) -> tuple[Any, ...]:
        """The values ever drawn: those of weight > 0 (all, without weights)."""
        weights = self.weights or (1,) * len(self.values)
        return tuple(v for v, w in zip(self.values, weights) if w > 0)

    def sample(self, rng, size):
        p = None
        if self.weights is not None:
            total = float(sum(self.weights))
            p = [w / total for w in self.weights]
        idx = rng.choice(len(self.values), size=size, p=p)
        return [self.values[int(i)] for i in idx]


@dataclass(frozen=True)
class Normal(Distribution):
    """normal(mu, sigma); lognormal: exp of normal(mu, sigma)."""

    names: ClassVar = ("normal", "lognormal")
    mu: float
    sigma: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise DomainError("sigma", f"sigma > 0 must hold, got sigma={self.sigma!r}")
        far = self.mu + _SIGMAS_KEPT * self.sigma
        if self.log and far > _LOG_MAX:  # exp() of a draw would overflow to inf
            most = (_LOG_MAX - self.mu) / _SIGMAS_KEPT
            hint = f"sigma <= {most:.4g}" if most > 0 else f"mu <= {_LOG_MAX - _SIGMAS_KEPT * self.sigma:.4g}"
            raise DomainError("sigma", f"lognormal draws would overflow (exp(mu + 6 sigma) = exp({far:.4g}) is "
                                       f"beyond the largest float): use {hint}")
        if not (math.isfinite(far) and math.isfinite(self.mu - _SIGMAS_KEPT * self.sigma)):
            raise DomainError("sigma", f"mu +- 6 sigma must be finite numbers, got mu={self.mu!r}, "
                                       f"sigma={self.sigma!r}: use a smaller sigma")

    def to_json(self) -> Any:
        name = "lognormal" if self.log else "normal"
        return {"distribution": name, "mu": self.mu, "sigma": self.sigma}

    def sample(self, rng, size):
        import numpy as np
        from scipy import stats

        dist = (
            stats.lognorm(s=self.sigma, scale=math.exp(self.mu))
            if self.log
            else stats.norm(loc=self.mu, scale=self.sigma)
        )
        return [float(v) for v in np.atleast_1d(dist.rvs(size=size, random_state=rng))]


@dataclass(frozen=True)
class Quantized(Distribution):
    """quniform / qloguniform: a uniform (or log-uniform) draw rounded to a multiple of q."""

    names: ClassVar = ("quniform", "qloguniform")
    low: float
    high: float
    q: float
    log: bool = False

    def __post_init__(self) -> None:
        _check_bounds(self.low, self.high, self.log)
        if not self.q > 0:
            raise DomainError("q", f"q > 0 must hold, got q={self.q!r}")
        if self.q > self.high - self.low:
            raise DomainError("q", f"q must not exceed high - low, got q={self.q!r}")
        if (self.high - self.low) / self.q > MAX_STEPS:
            raise DomainError("q", f"q={self.q!r} makes {(self.high - self.low) / self.q:.3g} steps between low and "
                                   f"high; at most 10^15: use a larger q, or uniform for a continuous value")

    def to_json(self) -> Any:
        name = "qloguniform" if self.log else "quniform"
        return {"distribution": name, "low": self.low, "high": self.high, "q": self.q}

    @property
    def multiples(self) -> tuple[int, int, bool]:
        """(first, last, whole): the values are k * q for k in [first, last] (the multiples of q
        inside [low, high]), ints where low, high and q are whole numbers. Random search, its
        finite-space count and Optuna all take them from here."""
        return (math.ceil(self.low / self.q - 1e-9), math.floor(self.high / self.q + 1e-9),
                all(float(x).is_integer() for x in (self.low, self.high, self.q)))

    def sample(self, rng, size):
        raw = Uniform(self.low, self.high, self.log).sample(rng, size)
        first, last, as_int = self.multiples
        lo, hi = first * self.q, last * self.q
        out = []
        for v in raw:
            x = min(max(round(v / self.q) * self.q, lo), hi)
            x = round(x, 12)
            out.append(int(x) if as_int else x)
        return out


def is_tuned(domain: Domain) -> bool:
    """Whether a parameter's domain gives it more than one value: a distribution, or a grid of two or more."""
    return isinstance(domain, Distribution) or (isinstance(domain, Grid) and len(domain.values) > 1)


DISTRIBUTIONS: dict[str, type[Distribution]] = {
    name: cls for cls in (Uniform, Int, Choice, Normal, Quantized) for name in cls.names
}
