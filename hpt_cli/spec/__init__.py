"""The spec: JSON in, a validated and resolved `Spec` out."""

from hpt_cli.spec.model import DataSpec, Objective, Resources, Rolling, Search, Spec, TrialSettings
from hpt_cli.spec.parse import load_spec, parse_spec, schema

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
