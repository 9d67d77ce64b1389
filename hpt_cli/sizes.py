"""Sizes as people write them: "6GiB", "512 MiB", "10MB". Binary units throughout (a GB is a
GiB, as nvidia-smi and `ls -h` count), so the same text means the same bytes everywhere."""

from __future__ import annotations

import re

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

_UNITS = {"b": 1, "k": KIB, "kb": KIB, "kib": KIB, "m": MIB, "mb": MIB, "mib": MIB,
          "g": GIB, "gb": GIB, "gib": GIB, "t": 1024 * GIB, "tb": 1024 * GIB, "tib": 1024 * GIB}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def parse_size(text: str | int, bare: int = 1, example: str = "10MiB", what: str = "a size") -> int:
    """Bytes in `text`: a number with a unit (KiB, MiB, GiB, TiB; K/KB/M/MB... read the same), or
    a bare number counted in `bare` bytes. ValueError naming what was expected (`example`)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"{what} must be >= 0, got {text}")
        return text * bare
    m = _SIZE.fullmatch(str(text))
    unit = m[2].lower() if m else None
    if unit is None or (unit and unit not in _UNITS):
        raise ValueError(f"expected {what} such as {example}, got {text!r}")
    return int(float(m[1]) * (_UNITS[unit] if unit else bare))


def format_size(size: int) -> str:
    """1536 -> "1.5 KiB", 10485760 -> "10 MiB": the largest unit that keeps a number >= 1."""
    for name, unit in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= unit:
            return f"{size / unit:.4g} {name}"
    return f"{size} B"
