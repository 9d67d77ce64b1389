"""Run ids: the same resolved spec gets the same run id, so a rerun resumes its run folder.

The id hashes what decides the trials and their results (architecture, command, resolved date
ranges, parameters, search, data, epochs, the scheduler), not where the output goes or how long a trial may
take. A monthly cron run with rolling windows resolves to new date ranges each month, hence a
new run id; restarted within the month, it resumes.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from hpt_cli.search.trial import canonical_json
from hpt_cli.spec.model import Spec

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_id(spec: Spec, fresh_at: datetime | None = None) -> str:
    """`<name>-<8 hex>`; with `fresh_at`, a new id stamped with that time (`--fresh`)."""
    doc = spec.to_json()
    key = {k: doc.get(k) for k in ("name", "architecture", "command", "date-range", "parameters",
                                   "search", "data")}
    key["epochs"] = spec.trial.epochs
    if spec.scheduler is not None:  # it decides results; absent, ids stay as they were
        key["scheduler"] = doc["scheduler"]
    digest = hashlib.sha256(canonical_json(key).encode("ascii")).hexdigest()[:8]
    name = _UNSAFE.sub("-", spec.name).strip("-.") or "run"
    rid = f"{name}-{digest}"
    if fresh_at is not None:
        rid += fresh_at.strftime("-%Y%m%d-%H%M%S")
    return rid
