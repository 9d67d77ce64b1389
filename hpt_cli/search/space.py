"""Configuration spaces: index -> (architecture, params), without building lists.

`GridSpace` decodes an index as a mixed-radix number over each architecture's grid values (the
last parameter varies fastest, as in itertools.product), optionally through a seeded
permutation. `RandomSpace` draws each parameter from its own seeded stream in fixed chunks, so
configuration i is the same whatever the number of trials asked for.
"""

from __future__ import annotations

import bisect
import math
import zlib
from functools import lru_cache
from itertools import accumulate
from typing import Any

import numpy as np

from hpt_cli.search.permutation import Permutation
from hpt_cli.spec.domains import Distribution, Fixed, Grid
from hpt_cli.spec.model import Spec

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
        picked: dict[str, Any] = {}
        for name, values in zip(reversed(self.names), reversed(self.values)):
            index, digit = divmod(index, len(values))
            picked[name] = values[digit]
        picked.update(self.fixed)
        return {n: picked[n] for n in self.order}


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


class RandomSpace:
    """`trials` configurations drawn from the distributions (grid lists as uniform choices)."""

    def __init__(self, spec: Spec):
        self.architectures = spec.architectures
        self.seed = spec.search.seed
        self.size = spec.search.trials or 0
        self.spaces = {a: spec.space_of(a) for a in self.architectures}
        self._chunk = lru_cache(maxsize=4)(self._draw_chunk)

    def __len__(self) -> int:
        return self.size

    def _stream(self, arch: str, name: str, chunk: int) -> np.random.Generator:
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

    def __getitem__(self, c: int) -> tuple[str, dict[str, Any]]:
        if not 0 <= c < self.size:
            raise IndexError(c)
        chunk, offset = divmod(c, CHUNK)
        archs, columns = self._chunk(chunk)
        arch = archs[offset]
        params = {}
        for name, domain in self.spaces[arch]:
            params[name] = domain.value if isinstance(domain, Fixed) else columns[(arch, name)][offset]
        return arch, params


def configurations_by_architecture(space: GridSpace | RandomSpace) -> dict[str, int]:
    """How many configurations each architecture gets (closed form for a full grid)."""
    if len(space.architectures) == 1:
        return {space.architectures[0]: len(space)}
    if isinstance(space, GridSpace) and space.size == space.full:
        return {a: g.size for a, g in zip(space.architectures, space.grids)}
    counts = dict.fromkeys(space.architectures, 0)
    for c in range(len(space)):
        counts[space[c][0]] += 1
    return counts
