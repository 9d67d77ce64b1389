"""hpt: hyperparameter sweeps from a JSON spec."""

from __future__ import annotations

from functools import cache


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hpt-cli")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0+unknown"


def __getattr__(name: str) -> str:
    # lazy: importlib.metadata costs ~30 ms, paid by every worker process otherwise
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'hpt_cli' has no attribute {name!r}")


__all__ = ["__version__"]
