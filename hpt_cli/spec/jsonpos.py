"""Map JSON paths to the line they stand on, so spec errors can say "spec.json:7".

Runs only on text that `json.loads` has already accepted, so the walk can stay simple.
"""

from __future__ import annotations

import bisect
import re
from json.decoder import scanstring

_WS = re.compile(r"[ \t\n\r]*")
_SCALAR = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null|NaN|-?Infinity")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def join(path: str, key: str | int) -> str:
    """Extend a JSON path: `parameters` + `lr` -> `parameters.lr`; + 0 -> `[0]`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENT.match(key):
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


def line_index(text: str) -> dict[str, int]:
    """Every JSON path in `text` (object members at their key, array items at their start)."""
    newlines = [i for i, ch in enumerate(text) if ch == "\n"]
    lines: dict[str, int] = {}

    def line_of(pos: int) -> int:
        return bisect.bisect_right(newlines, pos - 1) + 1

    def skip(pos: int) -> int:
        return _WS.match(text, pos).end()

    def value(pos: int, path: str) -> int:
        pos = skip(pos)
        ch = text[pos]
        if ch == "{":
            pos = skip(pos + 1)
            if text[pos] == "}":
                return pos + 1
            while True:
                key_pos = pos
                key, pos = scanstring(text, pos + 1)
                child = join(path, key)
                lines.setdefault(child, line_of(key_pos))
                pos = skip(pos)  # at ':'
                pos = skip(value(pos + 1, child))
                if text[pos] == "}":
                    return pos + 1
                pos = skip(pos + 1)  # past ','
        if ch == "[":
            pos = skip(pos + 1)
            if text[pos] == "]":
                return pos + 1
            index = 0
            while True:
                child = join(path, index)
                lines.setdefault(child, line_of(skip(pos)))
                pos = skip(value(pos, child))
                if text[pos] == "]":
                    return pos + 1
                pos, index = pos + 1, index + 1
        if ch == '"':
            return scanstring(text, pos + 1)[1]
        return _SCALAR.match(text, pos).end()

    start = skip(0)
    if start < len(text):
        lines[""] = line_of(start)
        value(start, "")
    return lines


def nearest_line(lines: dict[str, int], path: str) -> int | None:
    """The line of `path`, or of its closest ancestor that exists in the text."""
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
