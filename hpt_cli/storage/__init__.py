"""Storage: a run's folder (spec.json, results.csv, trials/, summary.json), local or gs://."""

from __future__ import annotations

import threading
from pathlib import Path

from hpt_cli.storage.base import RunStore
from hpt_cli.storage.gcs import GcsLocation, StorageError, is_gcs
from hpt_cli.storage.local import LocalRunStore
from hpt_cli.storage.results import Columns, read_rows


def open_store(output: str, run_id: str, spool: Path | None = None, interval: float = 5.0,
               upload_timeout: float = 60.0, stop: threading.Event | None = None, offline: str = "") -> RunStore:
    """The run folder `<output>/<run_id>`: a local folder, or gs:// through a local spool.

    `stop` (the run's stop request, set by SIGINT/SIGTERM) cuts a gs:// store's final upload
    retries short: close() then raises StorageError at once if the bucket does not answer.
    `offline`: why the bucket did not answer a moment ago (taking the lock): not asked again."""
    if is_gcs(output):
        from hpt_cli.storage.remote import GcsRunStore

        return GcsRunStore(GcsLocation.parse(output).child(run_id), spool_path(output, run_id, spool),
                           interval=interval, upload_timeout=upload_timeout, stop=stop, offline=offline)
    return LocalRunStore(Path(output) / run_id)


def spool_path(output: str, run_id: str, spool: Path | None = None) -> Path | None:
    """Where a gs:// run folder's local spool is (None for a local output)."""
    if not is_gcs(output):
        return None
    from hpt_cli.storage.remote import spool_for

    return spool_for(GcsLocation.parse(output).child(run_id), spool)


def open_lock(output: str, run_id: str, spool: Path | None = None):
    """The lock of the run folder `<output>/<run_id>` (see hpt_cli.storage.lock)."""
    from hpt_cli.storage.lock import FileLock, GcsLock, Locks

    if is_gcs(output):
        from hpt_cli.storage.gcs import make_client
        from hpt_cli.storage.remote import spool_for

        location = GcsLocation.parse(output).child(run_id)
        return Locks(FileLock(spool_for(location, spool)), GcsLock(location, make_client()))
    return FileLock(Path(output) / run_id)


__all__ = ["Columns", "GcsLocation", "LocalRunStore", "RunStore", "StorageError", "open_lock", "open_store", "read_rows",
           "spool_path"]
