"""Run ids: the same resolved spec gets the same run id, so a rerun resumes its run folder.

The id hashes what decides the trials and their results (architecture, command, resolved date
ranges, parameters, search strategy, seed, order and repeats, data, epochs, the scheduler; for an
adaptive strategy also the objective, which steers it), not where the output goes or how long a
trial may take. The budget is not in it either (`search.trials` or `--trials`, `search.max_time`,
`search.initial`): a larger budget resumes the run and adds to it (random search is
prefix-stable, an adaptive search replays its finished configurations), a smaller one finds its
trials done. Grid and random ids ignore the objective: their trials are the same whatever it is.
A grid spec with none of these keys keeps the id it had before (the README's quickstart-6df2cb09).

A monthly cron run with rolling windows resolves to new date ranges each month, hence a new run
id; restarted within the month, it resumes.

A spec's own data file (`data.path`) is in the id by what the trials read from it, not by its
path: a hash of its rows up to the end of the last validation window (`data_rows`). The same
spec run from another folder that holds other data, or after the file was edited, gets a new id
(a new run folder) instead of resuming rows trained on other data; rows appended after the last
window (a daily feed) leave it alone, so a cron restart within the month still resumes. The
bundled data is the package's and leaves the id as it was.

`--fresh` stamps the id with the time to the second (`<name>-<8 hex>-<YYYYmmdd-HHMMSS>`) and
`claim_fresh` makes it new: where that run folder is held by another run or already holds one
(two fresh runs within the same second), the next of `-2`, `-3` ... is taken.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from hpt_cli.errors import HptError
from hpt_cli.search.trial import canonical_json
from hpt_cli.spec.model import Spec
from hpt_cli.storage.lock import LOCK_NAME, FileLock, GcsLock, Locks, RunLock

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
BUDGET = ("trials", "max_time", "initial")  # search keys left out of the id: more budget resumes the run


def run_id(spec: Spec, fresh_at: datetime | None = None) -> str:
    """`<name>-<8 hex>`; with `fresh_at`, a new id stamped with that time (`--fresh`)."""
    doc = spec.to_json()
    key = {k: doc.get(k) for k in ("name", "architecture", "command", "date-range", "parameters",
                                   "search", "data")}
    key["search"] = {k: v for k, v in doc["search"].items() if k not in BUDGET}
    key["epochs"] = spec.trial.epochs
    if spec.scheduler is not None:  # it decides results; absent, ids stay as they were
        key["scheduler"] = doc["scheduler"]
    if spec.search.strategy not in ("grid", "random"):  # adaptive: the objective steers what runs
        key["objective"] = doc["objective"]
    rows = data_rows(spec)
    if rows is not None:  # the spec's own data: what the trials read decides their results, not its name
        key["data"] = {k: v for k, v in doc["data"].items() if k != "path"}
        key["data_rows"] = rows
    digest = hashlib.sha256(canonical_json(key).encode("ascii")).hexdigest()[:8]
    name = _UNSAFE.sub("-", spec.name).strip("-.") or "run"
    rid = f"{name}-{digest}"
    if fresh_at is not None:
        rid += fresh_at.strftime("-%Y%m%d-%H%M%S")
    return rid


def data_rows(spec: Spec) -> str | None:
    """A hash of the rows of the spec's own data file that its trials read (every row before the
    end of the last validation window; column names included), or None for the bundled data."""
    if spec.data.path is None or not spec.date_ranges:
        return None
    from hpt_cli.datasets import load_dataset

    dataset = load_dataset(spec.data)  # cached per process, as the hash is by the dataset object
    last = max(spec.data.validation.add_to(r.end) for r in spec.date_ranges)
    _, end = dataset.rows(dataset.coverage()[0], last)
    return _rows_hash(dataset, end)


@functools.lru_cache(maxsize=8)
def _rows_hash(dataset, end: int) -> str:
    """Cached per loaded dataset (hashed by identity): auto mode and calibrate ask for several ids."""
    import numpy as np

    frame = dataset.frame.iloc[:end]
    digest = hashlib.sha256(canonical_json([str(c) for c in frame.columns]).encode())
    for name in frame.columns:  # raw values, not pandas' own hashing, which may change between versions
        values = frame[name].to_numpy()
        if values.dtype.kind in "biufmM":
            digest.update(np.ascontiguousarray(values).view(np.uint8))
            digest.update(values.dtype.str.encode())
        else:
            digest.update("\x1f".join(map(str, values)).encode("utf-8", "surrogatepass"))
        digest.update(b"\x1e")
    return digest.hexdigest()[:16]


MAX_SUFFIX = 1000  # fresh runs of one spec started within one second: far fewer in practice


def claim_fresh(rid: str, open_lock: Callable[[str], RunLock],
                holds_a_run: Callable[[RunLock], bool] | None = None) -> tuple[str, RunLock]:
    """The first of `rid`, `rid-2`, `rid-3` ... whose run folder no other run holds and that holds
    no run yet, with its lock taken (`open_lock(run_id)` makes the lock of a run id).

    The lock comes first and the look second, so two fresh runs started at the same moment never
    get the same folder: the second finds it locked, or (once the first has finished and released
    it) holding the first one's files, and moves on."""
    holds_a_run = holds_a_run or folder_holds_a_run
    for n in range(1, MAX_SUFFIX + 1):
        candidate = rid if n == 1 else f"{rid}-{n}"
        lock = open_lock(candidate)
        if lock.try_acquire() is not None:
            continue  # another fresh run started within the same second holds it
        try:
            used = holds_a_run(lock)
        except BaseException:
            lock.release()
            raise
        if not used:
            return candidate, lock
        lock.release()
    raise HptError(f"{rid}: {MAX_SUFFIX} run folders of this spec stamped with the same second exist already; "
                   "start the fresh run a second later")


def folder_holds_a_run(lock: RunLock) -> bool:
    """Whether the run folder of a lock just taken holds anything but the lock: a local folder
    (or a gs:// run's spool) any other entry, the bucket any other object under the folder's
    prefix (one listing of at most two names). A bucket that cannot be asked (the lock was taken
    offline, or the listing fails for a transient reason) counts as empty: the spool still speaks
    for this machine, and the stamp to the second for the rest."""
    if isinstance(lock, Locks):
        return any(folder_holds_a_run(inner) for inner in lock.locks)
    if isinstance(lock, FileLock):
        folder = Path(lock.path).parent
        try:
            return any(entry.name != LOCK_NAME for entry in folder.iterdir())
        except FileNotFoundError:
            return False
    if isinstance(lock, GcsLock):
        return _bucket_holds_a_run(lock)
    return False


def _bucket_holds_a_run(lock: GcsLock) -> bool:
    from hpt_cli.storage.gcs import CALL_TIMEOUT, raise_unless_transient

    if lock.offline:
        return False
    try:
        blobs = lock.bucket.list_blobs(prefix=lock.location.key(""), max_results=2, timeout=CALL_TIMEOUT,
                                       retry=None)
        return any(blob.name != lock.blob_name for blob in blobs)
    except Exception as exc:  # noqa: BLE001 - classified: the user's error, or offline
        raise_unless_transient(exc, lock.location)
        return False
