"""Storage: a run's folder (spec.json, results.csv, trials/, summary.json)."""

from hpt_cli.storage.base import RunStore
from hpt_cli.storage.local import LocalRunStore
from hpt_cli.storage.results import Columns, read_rows


def open_store(output: str, run_id: str) -> RunStore:
    """The run folder `<output>/<run_id>` (local path; gs:// comes with the GCS storage)."""
    if output.startswith("gs://"):
        from hpt_cli.errors import HptError

        raise HptError(f"output {output}: gs:// outputs are not supported yet; give a local folder")
    from pathlib import Path

    return LocalRunStore(Path(output) / run_id)


__all__ = ["Columns", "LocalRunStore", "RunStore", "open_store", "read_rows"]
