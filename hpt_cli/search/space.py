"""Configuration spaces: index -> (architecture, params), without building lists.

`GridSpace` decodes an index as a mixed-radix number over each architecture's grid values (the
last parameter varies fastest, as in itertools.product), optionally through a seeded
permutation. `RandomSpace` draws each parameter from its own seeded stream in fixed chunks and
skips a draw that repeats an earlier configuration, so configuration i is the same whatever the
number of trials asked for, and no configuration comes twice.
"""

from __future__ import annotations

import bisect
import math
import zlib
from functools import lru_cache
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from hpt_cli.search.permutation import Permutation
from hpt_cli.search.trial import canonical_json, config_key, derive_seed
from hpt_cli.spec.domains import Choice, Distribution, Fixed, Grid, Int, Quantized
from hpt_cli.spec.model import Spec

if TYPE_CHECKING:  # numpy is imported where random draws are made: `hpt --help` and grids need none
    import numpy as np

CHUNK = 1024


class _Grid:
    """One architecture's grid: names and values of its grid parameters, its fixed values."""

    def __init__(self, params):
        self.names = [n for n, d in params if isinstance(d, Grid)]
        self.values = [d.values for _, d in params if isinstance(d, Grid)]
        self.fixed = {n: d.value for n, d in params if isinstance(d, Fixed)}
        self.order = [n for n, _ in params]
        self.size = math.prod(len(v) for v in self.values)

    def point(self, index: int) -> dict[str, Any]:
        picked = {**_decode(index, self.names, self.values), **self.fixed}
        return {n: picked[n] for n in self.order}


def _decode(index: int, names: list[str], values: list) -> dict[str, Any]:
    """Index -> {name: value} as a mixed-radix number over the value lists, the last name varying
    fastest (as in itertools.product)."""
    picked: dict[str, Any] = {}
    for name, options in zip(reversed(names), reversed(values)):
        index, digit = divmod(index, len(options))
        picked[name] = options[digit]
    return picked


class GridSpace:
    """The architectures' grids one after the other, visited in declared or shuffled order."""

    def __init__(self, spec: Spec):
        self.architectures = spec.architectures
        self.grids = [_Grid(spec.space_of(a)) for a in self.architectures]
        self.starts = [0, *accumulate(g.size for g in self.grids)]
        self.full = self.starts[-1]
        self.size = min(self.full, spec.search.trials) if spec.search.trials else self.full
        self._perm = Permutation(self.full, spec.search.seed) if spec.search.order == "shuffled" else None

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, c: int) -> tuple[str, dict[str, Any]]:
        if not 0 <= c < self.size:
            raise IndexError(c)
        index = self._perm[c] if self._perm is not None else c
        a = bisect.bisect_right(self.starts, index) - 1
        return self.architectures[a], self.grids[a].point(index - self.starts[a])


class _Multiples:
    """The values a quniform / qloguniform draw can take: round(k * q, 12) for k in [first, last],
    ints when low, high and q are whole numbers (as `Quantized.sample` makes them)."""

    def __init__(self, domain: Quantized):
        self.q = domain.q
        self.first, self.last, self.as_int = domain.multiples

    def __len__(self) -> int:
        return self.last - self.first + 1

    def __getitem__(self, i: int):
        x = round((self.first + i) * self.q, 12)
        return int(x) if self.as_int else x

    def __contains__(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        i = round(value / self.q) - self.first
        return 0 <= i < len(self) and canonical_json(self[i]) == canonical_json(value)


class _Values:
    """Distinct values (by their JSON, as trial ids tell them apart), in first-seen order."""

    def __init__(self, values):
        keyed: dict[str, Any] = {}
        for v in values:
            keyed.setdefault(canonical_json(v), v)
        self.values = list(keyed.values())
        self.keys = set(keyed)

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: int):
        return self.values[i]

    def __contains__(self, value) -> bool:
        return canonical_json(value) in self.keys


class _Ints:
    def __init__(self, low: int, high: int, step: int):
        self.range = range(low, high + 1, step)

    def __len__(self) -> int:
        return len(self.range)

    def __getitem__(self, i: int) -> int:
        return self.range[i]

    def __contains__(self, value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value in self.range


def support(domain):
    """Every value a random draw from `domain` can give, as a lazy sequence (len, [i], `in`), or
    None when there are too many to enumerate (continuous distributions)."""
    if isinstance(domain, Fixed):
        return _Values([domain.value])
    if isinstance(domain, Grid):
        return _Values(domain.values)
    if isinstance(domain, Choice):
        return _Values(list(domain.drawn))
    if isinstance(domain, Int) and isinstance(domain.low, int) and isinstance(domain.high, int):
        return _Ints(domain.low, domain.high, 1 if domain.log else domain.step)
    if isinstance(domain, Quantized) and domain.q >= 1e-9 * max(abs(domain.low), abs(domain.high), 1):
        return _Multiples(domain)
    return None


class _Finite:
    """One architecture's space when every domain is finite: its configurations by index."""

    def __init__(self, params):
        self.names = [n for n, _ in params]
        self.supports = [support(d) for _, d in params]
        self.size = math.prod(len(s) for s in self.supports)

    def point(self, index: int) -> dict[str, Any]:
        picked = _decode(index, self.names, self.supports)
        return {n: picked[n] for n in self.names}

    def contains(self, params: dict[str, Any]) -> bool:
        return set(params) == set(self.names) and all(params[n] in s for n, s in zip(self.names, self.supports))


class RandomSpace:
    """`trials` distinct configurations drawn from the distributions (grid lists as uniform choices).

    Raw draws: each parameter has its own seeded stream in chunks of CHUNK, so raw draw r depends
    only on (seed, r). Random search (`strategy` "random") skips a raw draw that repeats an
    earlier configuration (same trial ids) or a `search.initial` one: configuration i is the
    i-th new one, which depends only on the seed (asking for more trials keeps the first ones),
    and is distributed as the draws are (weights and all), without replacement. Only
    architectures whose every domain is finite (lists, choices, ints, quniform, fixed values)
    are remembered: a continuous draw repeats with probability 0, so a space with one draws
    exactly as before, at no cost. When every architecture is finite, the count is capped at
    the number of configurations the space has (`distinct`), and after `_budget()` raw draws (so
    that rare values of a weighted choice are not waited for) the rest come in the order of a
    seeded permutation of the whole product, skipping those already drawn. Adaptive strategies
    get the raw draws (their space is only listed as a sample, and they skip repeated proposals
    themselves) and the same cap: they too run each configuration once at most.
    """

    def __init__(self, spec: Spec):
        self.architectures = spec.architectures
        self.seed = spec.search.seed
        self.strategy = spec.search.strategy
        self.asked = spec.search.trials or 0
        self.spaces = {a: spec.space_of(a) for a in self.architectures}
        self._chunk = lru_cache(maxsize=4)(self._draw_chunk)
        finite = {a: _Finite(p) for a, p in self.spaces.items() if all(support(d) is not None for _, d in p)}
        self._finite = finite if spec.search.strategy == "random" else {}
        self._seen: set[str] = set()
        excluded = dict.fromkeys(self.architectures, 0)
        for arch, params in spec.search.initial:
            key = config_key(arch, params)
            if arch in finite and key not in self._seen:
                self._seen.add(key)  # only looked at for architectures in _finite
                excluded[arch] += finite[arch].contains(params)
        # per architecture: how many configurations it can still give; None: unbounded
        self.available = {a: finite[a].size - excluded[a] if a in finite else None for a in self.architectures}
        self.initial_in_space = sum(excluded.values())  # initial configurations the space holds
        counts = list(self.available.values())
        self.distinct = None if None in counts else sum(counts)
        self.size = self.asked if self.distinct is None else min(self.asked, self.distinct)
        self._order: list[int] = []  # configuration c -> raw draw r >= 0, or -1 - product index
        self._next_raw = 0
        self._rest: Permutation | None = None
        self._next_rest = 0

    def __len__(self) -> int:
        return self.size

    def _stream(self, arch: str, name: str, chunk: int) -> np.random.Generator:
        import numpy as np

        tags = [zlib.crc32(arch.encode("utf-8")), zlib.crc32(name.encode("utf-8"))]
        return np.random.default_rng(np.random.SeedSequence([self.seed, *tags, chunk]))

    def _draw_chunk(self, chunk: int):
        archs = [self.architectures[0]] * CHUNK
        if len(self.architectures) > 1:
            rng = self._stream("", "\0architecture", chunk)
            archs = [self.architectures[i] for i in rng.integers(0, len(self.architectures), CHUNK)]
        columns = {
            (a, n): d.sample(self._stream(a, n, chunk), CHUNK)
            for a, params in self.spaces.items()
            for n, d in params
            if isinstance(d, (Grid, Distribution))
        }
        return archs, columns

    def draw(self, r: int) -> tuple[str, dict[str, Any]]:
        """Raw draw r: a configuration drawn from the distributions, repeats and all."""
        chunk, offset = divmod(r, CHUNK)
        archs, columns = self._chunk(chunk)
        arch = archs[offset]
        params = {}
        for name, domain in self.spaces[arch]:
            params[name] = domain.value if isinstance(domain, Fixed) else columns[(arch, name)][offset]
        return arch, params

    def _budget(self) -> int:
        return min(4 * self.distinct, 1 << 18) if self.distinct is not None else -1

    def _product(self, index: int) -> tuple[str, dict[str, Any]]:
        for arch in self.architectures:
            size = self._finite[arch].size
            if index < size:
                return arch, self._finite[arch].point(index)
            index -= size
        raise IndexError(index)

    def _extend(self, c: int) -> None:
        """Find configurations up to c: new raw draws, then (past the budget) the product's rest."""
        budget = self._budget()
        while len(self._order) <= c:
            if self._next_raw != budget:
                r = self._next_raw
                self._next_raw += 1
                arch, params = self.draw(r)
                entry = r
            else:
                if self._rest is None:
                    full = sum(f.size for f in self._finite.values())
                    self._rest = Permutation(full, derive_seed(self.seed, "random search: the rest"))
                if self._next_rest >= len(self._rest):  # cannot happen: `distinct` counts them all
                    raise IndexError(c)
                index = self._rest[self._next_rest]
                self._next_rest += 1
                arch, params = self._product(index)
                entry = -1 - index
            if arch in self._finite:
                key = config_key(arch, params)
                if key in self._seen:
                    continue
                self._seen.add(key)
            self._order.append(entry)

    def __getitem__(self, c: int) -> tuple[str, dict[str, Any]]:
        if not 0 <= c < self.size:
            raise IndexError(c)
        if not self._finite:  # nothing can repeat: configuration c is raw draw c
            return self.draw(c)
        self._extend(c)
        entry = self._order[c]
        return self.draw(entry) if entry >= 0 else self._product(-1 - entry)


def capped(space) -> tuple[int, int, int] | None:
    """(asked, has, initial): random or adaptive search asked for more configurations than its
    space has besides the `initial` search.initial ones it holds, so it runs each of them once at
    most; None otherwise."""
    inner = getattr(space, "space", space)  # InitialFirst: the space after the initial ones
    if isinstance(inner, RandomSpace) and inner.distinct is not None and inner.asked > inner.distinct:
        return inner.asked, inner.distinct, inner.initial_in_space
    return None


def configurations_by_architecture(space: GridSpace | RandomSpace) -> dict[str, int]:
    """How many configurations each architecture gets (closed form for a full grid, and for a
    random search that runs the whole of a finite space)."""
    if len(space.architectures) == 1:
        return {space.architectures[0]: len(space)}
    if isinstance(space, GridSpace) and space.size == space.full:
        return {a: g.size for a, g in zip(space.architectures, space.grids)}
    if isinstance(space, RandomSpace) and space.distinct is not None and space.size == space.distinct:
        return dict(space.available)
    counts = dict.fromkeys(space.architectures, 0)
    for c in range(len(space)):
        counts[space[c][0]] += 1
    return counts
