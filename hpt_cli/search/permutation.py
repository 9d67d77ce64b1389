"""A seeded permutation of range(n) that needs O(1) memory: a Feistel network with cycle walking.

`Permutation(n, seed)[i]` is the i-th element of a shuffled range(n) for n up to 2**62, so a grid
of 10**9 points can be visited in a random order without building a list.
"""

from __future__ import annotations

_M64 = (1 << 64) - 1
_ROUNDS = 4


def _mix(x: int) -> int:
    """splitmix64's finaliser: a fast, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


class Permutation:
    def __init__(self, n: int, seed: int):
        if n < 0:
            raise ValueError(f"n >= 0 must hold, got {n}")
        self.n = n
        bits = max(2, (max(n, 1) - 1).bit_length())
        bits += bits % 2
        self._half = bits // 2
        self._mask = (1 << self._half) - 1
        self._keys = [_mix((seed & _M64) ^ _mix(r + 1)) for r in range(_ROUNDS)]

    def __len__(self) -> int:
        return self.n

    def _encrypt(self, x: int) -> int:
        half, mask = self._half, self._mask
        left, right = x >> half, x & mask
        for key in self._keys:
            left, right = right, left ^ (_mix(right ^ key) & mask)
        return (left << half) | right

    def __getitem__(self, i: int) -> int:
        if not 0 <= i < self.n:
            raise IndexError(i)
        x = self._encrypt(i)
        while x >= self.n:  # cycle walking: the domain is < 4n, so few steps on average
            x = self._encrypt(x)
        return x
