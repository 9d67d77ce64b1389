"""A run folder on gs://: written to a local spool first, mirrored by a background uploader.

Everything the run writes lands in the spool (a local run folder) at once, so trials and the
runner never wait on the network. The uploader appends rows to the bucket's results.csv every
few seconds and uploads each trial's files as it finishes. At the end, `close` pushes what is
left; if the bucket stays unreachable it raises StorageError (exit 4) naming the spool, which
`hpt sync SPOOL` uploads later. A stop request (the run's `stop` event: SIGINT/SIGTERM) cuts
those retries short, so a signal is obeyed within a second or two also while storage is down.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from hpt_cli.errors import HptError
from hpt_cli.storage.base import RunStore
from hpt_cli.storage.gcs import (
    GcsLocation,
    StorageError,
    UploadPending,
    check_bucket,
    describe,
    make_client,
    offline_warning,
    raise_unless_transient,
    transient,
)
from hpt_cli.storage.local import LocalRunStore
from hpt_cli.storage.mirror import RESULTS, SUMMARY, Backoff, Mirror, Uploader, whole_lines
from hpt_cli.storage.results import read_rows


def spool_root() -> Path:
    """$HPT_SPOOL, else $XDG_CACHE_HOME/hpt/spool, else ~/.cache/hpt/spool."""
    if os.environ.get("HPT_SPOOL"):
        return Path(os.environ["HPT_SPOOL"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "hpt" / "spool"


def spool_for(location: GcsLocation, root: Path | None = None) -> Path:
    return (root or spool_root()) / location.bucket / location.prefix


class GcsRunStore(RunStore):
    def __init__(self, location: GcsLocation, spool: Path, client=None, interval: float = 5.0,
                 upload_timeout: float = 60.0, stop: threading.Event | None = None, offline: str = ""):
        self.location = location
        self.uri = str(location)
        self.spool = Path(spool)
        self.upload_timeout = upload_timeout
        self.stop = stop  # the run's stop request: ends the final upload's retries
        client = client or make_client()
        if offline:  # the lock just found the bucket silent: not another wait for the same answer
            self.warning = offline_warning(location, offline)
        else:
            self.warning = check_bucket(client, location)
        self.local = LocalRunStore(self.spool)
        Mirror.write_target(self.spool, location)
        self.mirror = Mirror(self.spool, location, client)
        if self.warning is None:
            try:
                self.mirror.pull_results()  # resume from the bucket's rows
            except Exception as exc:  # noqa: BLE001 - offline now: the spool's rows stand
                raise_unless_transient(exc, location)
                self.warning = offline_warning(location, describe(exc))
        self.uploader = Uploader(self.mirror, interval=interval).start()

    def notes(self) -> list[str]:
        lines = [f"spool: {self.spool} (uploaded to {self.location} as the run goes on)"]
        return lines + ([f"warning: {self.warning}"] if self.warning else [])

    def read_results(self):
        return self.local.read_results()

    def append_results(self, header: list[str], lines: list[str]) -> None:
        self.local.append_results(header, lines)

    def write_json(self, name: str, document: Any) -> None:
        self.local.write_json(name, document)
        self.uploader.notify(name)

    def trial_dir(self, trial_id: str) -> Path:
        return self.local.trial_dir(trial_id)

    def local_dir(self, name: str) -> Path:
        return self.local.local_dir(name)

    def trial_finished(self, trial_id: str) -> None:
        self.uploader.notify(f"trials/{trial_id}")

    def artifact_uri(self, trial_id: str) -> str:
        return f"{self.location}/trials/{trial_id}"

    def close(self) -> None:
        self.local.close()
        if self.uploader.close(self.upload_timeout, stop=self.stop):
            return
        rows = max(0, len(self.local.read_results()[1]))
        if self.uploader.fatal:  # `hpt sync` cannot help either: say so
            raise StorageError(f"{self.location} holds rows written by another run ({self.uploader.fatal}); "
                               f"this run's {rows} rows and trial files stay in the spool {self.spool} only")
        kept = (f"{rows} rows and the trial files are kept in the spool {self.spool}; upload them with: "
                f"hpt sync {self.spool}")
        why = self.uploader.last_error or "no answer"
        if self.uploader.stopped:
            raise UploadPending(f"{self.location} not reached before the stop request ({why}); {kept}")
        raise UploadPending(f"{self.location} unreachable after retries ({why}); {kept}")


PARTS_STALE_S = 3600.0  # `hpt sync` deletes parts older than this: no upload still composes them


def sync_spool(spool: Path, timeout: float, client=None, verify: bool = False) -> tuple[GcsLocation, int, list[str]]:
    """Upload a spool left by a run that exited 4. Returns the location, results.csv's size and,
    with `verify`, the files uploaded before that the bucket no longer held as the spool has them
    (uploaded again)."""
    spool = Path(spool)
    try:
        location = Mirror.read_target(spool)
    except FileNotFoundError:
        raise HptError(f"{spool}: not a spool folder (no .hpt-sync/target); give the path printed by "
                       "`hpt run`") from None
    client = client or make_client()
    check_bucket(client, location)  # a missing bucket or a refused permission: exit 2 now
    mirror = Mirror(spool, location, client)
    restored = _forget_missing(mirror, location, spool, timeout) if verify else []
    uploader = Uploader(mirror, interval=3600.0)
    synced = uploader.close(timeout)
    if synced and restore_summary(spool):  # the run's own summary goes up in place of upload_pending
        uploader = Uploader(mirror, interval=3600.0)
        synced = uploader.close(timeout)
    if synced:
        from hpt_cli.storage.lock import release_if_holder_gone

        for tidy in (lambda: mirror.clean_parts(older_than=PARTS_STALE_S),  # left by processes that ended
                     lambda: release_if_holder_gone(location, client)):  # the lock a run of this machine left
            try:
                tidy()
            except Exception:  # noqa: BLE001 - harmless to leave: the next sync, or staleness, ends it
                pass
        return location, whole_lines(spool / "results.csv"), restored
    if uploader.fatal:  # retrying cannot help: the bucket's rows are not this spool's
        raise HptError(_diverged(mirror, location, spool, uploader.fatal))
    why = uploader.last_error or "no answer"
    raise StorageError(f"{location} unreachable after retries ({why}); the spool {spool} is intact: "
                       f"run `hpt sync {spool}` again")


def restore_summary(spool: Path) -> bool:
    """A spool whose run exited 4 for the upload alone (summary.json says upload_pending): give
    summary.json back the run's own status and exit code, stamped `synced_at` (to upload again),
    so `hpt watch` and pipelines see how the run went once the bucket holds it all. Whether it
    changed the file."""
    import json
    from datetime import UTC, datetime

    path = spool / SUMMARY
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if summary.get("status") != UploadPending.status or "run_exit_code" not in summary:
        return False  # complete already, or written by an hpt that did not keep the run's own code
    restored = {k: v for k, v in summary.items() if k not in ("run_status", "run_exit_code", "storage_error")}
    restored.update(status=summary.get("run_status", "complete"), exit_code=summary["run_exit_code"],
                    synced_at=datetime.now(UTC).isoformat(timespec="seconds"))
    LocalRunStore(spool).write_json(SUMMARY, restored)
    return True


def _diverged(mirror: Mirror, location: GcsLocation, spool: Path, why: str) -> str:
    """The error when the bucket's results.csv is not the spool's prefix: which copy holds what."""
    ids = {}
    for name, data in (("bucket", _safe(mirror.remote_results)), ("spool", _safe((spool / RESULTS).read_bytes))):
        ids[name] = {row["trial_id"] for row in read_rows(data.decode("utf-8", "replace"))}
    only_spool, only_bucket = ids["spool"] - ids["bucket"], ids["bucket"] - ids["spool"]
    head = f"{location}/{RESULTS} is not the spool's ({why}): "
    if not only_spool:
        more = f" and {len(only_bucket)} more, written from elsewhere" if only_bucket else ""
        return head + (f"the bucket holds every trial of the spool {spool}{more}, so the spool is obsolete and "
                       f"nothing was uploaded; discard it with: rm -r {spool}")
    fix = (f"keep the spool; to make the bucket's copy the spool's: gcloud storage cp {spool}/{RESULTS} "
           f"{location}/{RESULTS} && hpt sync {spool}")
    if only_bucket:
        fix = (f"{len(only_bucket)} trials are only in the bucket: merge the two files by trial_id before "
               f"copying the result over {location}/{RESULTS}, then: hpt sync {spool}")
    return head + f"the spool {spool} holds {len(only_spool)} trials the bucket lacks; nothing was uploaded; " + fix


def _safe(read) -> bytes:
    try:
        return read()
    except Exception:  # noqa: BLE001 - an unreadable copy counts as empty in the message
        return b""


def _forget_missing(mirror: Mirror, location: GcsLocation, spool: Path, timeout: float) -> list[str]:
    """`mirror.forget_missing()`, retried on transient errors for up to `timeout` seconds."""
    backoff, deadline = Backoff(), time.monotonic() + timeout
    while True:
        try:
            return mirror.forget_missing()
        except Exception as exc:  # noqa: BLE001 - sorted below: transient ones are retried
            if not transient(exc) or time.monotonic() >= deadline:
                raise StorageError(f"{location} could not be listed ({describe(exc)}); the spool {spool} "
                                   f"is intact: run `hpt sync --verify {spool}` again") from None
            time.sleep(min(backoff.next_delay(), max(0.0, deadline - time.monotonic())))
