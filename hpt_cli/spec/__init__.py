"""The spec: JSON in, a validated and resolved `Spec` out.

The parser is imported on first use, so a worker process that only needs the records (DataSpec,
Length ...) does not pay for it.
"""

from hpt_cli.spec.model import DataSpec, Objective, Resources, Rolling, Search, Spec, TrialSettings

__all__ = [
    "DataSpec",
    "Objective",
    "Resources",
    "Rolling",
    "Search",
    "Spec",
    "TrialSettings",
    "load_spec",
    "parse_spec",
    "schema",
]


def __getattr__(name: str):
    if name in ("load_spec", "parse_spec", "schema"):
        from hpt_cli.spec import parse

        return getattr(parse, name)
    raise AttributeError(f"module 'hpt_cli.spec' has no attribute {name!r}")
