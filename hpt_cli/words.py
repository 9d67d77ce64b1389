"""Small words for one-line messages, shared by the CLI and the core (no click here)."""

from __future__ import annotations


def plural(n: int, word: str) -> str:
    """`1 configuration`, `2 configurations`."""
    return f"{n} {word}" + ("s" if n != 1 else "")


def signal_name(number: int) -> str:
    """`SIGTERM` for 15; the number itself for a signal Python does not know."""
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def first_of(names: list[str], n: int = 3) -> str:
    """`a, b, c and 4 more`: the first `n` names, and how many more there are."""
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def and_list(names: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
